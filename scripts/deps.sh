#!/usr/bin/env bash
# deps.sh — install the Debian packages Quarrel builds, tests and fuzzes with (and Debian's
# nodejs + npm when no node/npm is on PATH; the npm packages themselves are pinned in
# tests/node/package-lock.json and installed by tests/cli/node.sh).
# Idempotent: packages already present are skipped, and `apt-get update` runs only
# when something is missing. Safe to run on every `make` target.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config   # toolchain
  clang libclang-rt-14-dev                       # libFuzzer + sanitizers for `make fuzz`
  libcmocka-dev                                  # unit tests
  libsimde-dev                                   # unit tests: the AVX-512 kernels emulated on any CPU
  libpcre2-dev libutf8proc-dev                   # tokenizers: split regexes, normalization
  libjansson-dev                                 # JSON (templates, CLI --json, server)
  libmicrohttpd-dev libwslay-dev                 # quarrel serve: HTTP, WebSocket
  libsodium-dev                                  # API keys: random secrets, salted hashes, constant-time compare
  python3                                        # test helpers
  prometheus                                     # promtool: the serve test lints /metrics
  openssl                                        # the TLS test makes a self-signed certificate
  chromium                                       # the web UI's browser tests (tests/web)
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node and npm run tests/node (the openai and ws npm clients against quarrel serve). A node
# already on PATH (e.g. a newer one from elsewhere) is kept: Debian's packages would clash with it.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  for p in nodejs npm; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
