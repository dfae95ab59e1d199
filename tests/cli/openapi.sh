#!/usr/bin/env bash
# openapi.sh — docs/openapi.json against itself and against a real `quarrel serve`
# (tests/openapi/openapi.test.mjs: OpenAPI 3.1 meta-schema, examples, http.c's route table,
# every endpoint's real responses incl. SSE events and WebSocket messages, the /docs page in
# jsdom). The npm packages (ajv, ajv-formats, @seriousme/openapi-schema-validator, ws, jsdom)
# are pinned by tests/openapi/package-lock.json; `npm ci` installs them into
# <build dir>/openapi-tests (the build dir is QUARREL_BIN's folder) once per lockfile: a stamp
# holding the lockfile's sha256 skips reinstalling. Needs node >= 18 and npm (scripts/deps.sh)
# and the npm registry the first time; without them this test FAILS (it never skips).
set -euo pipefail
SRC=${QUARREL_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
export QUARREL_SOURCE=$SRC
export QUARREL_BIN=$(realpath "${QUARREL_BIN:-build/quarrel}")
export QUARREL_SHARED=$(realpath "${QUARREL_SHARED:-../shared}")
DIR=$(dirname "$QUARREL_BIN")/openapi-tests

fail() { echo "FAIL: $*" >&2; exit 1; }
command -v node >/dev/null || fail "node is not installed (scripts/deps.sh installs Debian's nodejs)"
command -v npm >/dev/null || fail "npm is not installed (scripts/deps.sh installs Debian's npm)"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || fail "node $(node --version) is too old: the OpenAPI test needs node >= 18"

mkdir -p "$DIR"
cp "$SRC"/tests/openapi/package.json "$SRC"/tests/openapi/package-lock.json "$SRC"/tests/openapi/*.mjs "$DIR"/
want=$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$DIR/node_modules/.quarrel-lock" 2>/dev/null)" != "$want" ]; then
  echo "openapi: npm ci (as pinned in tests/openapi/package-lock.json)" >&2
  rm -rf "$DIR/node_modules"
  if ! (cd "$DIR" && timeout 300 npm ci --no-audit --no-fund --fetch-retries=2 --fetch-timeout=60000 >&2); then
    fail "npm ci could not install the pinned packages of tests/openapi (is the npm registry reachable?)"
  fi
  echo "$want" > "$DIR/node_modules/.quarrel-lock"
fi

cd "$DIR"
echo "openapi: openapi.test.mjs ($(node --version))" >&2
timeout 120 node openapi.test.mjs || fail "openapi.test.mjs"
