#!/usr/bin/env bash
# node.sh — quarrel serve with real Node clients: the official `openai` npm client
# (tests/node/openai.test.mjs) and the `ws` WebSocket client (tests/node/ws.test.mjs).
# Their versions are pinned by tests/node/package-lock.json; `npm ci` installs them into
# <build dir>/node-tests (the build dir is QUARREL_BIN's folder), once per lockfile: a stamp
# holding the lockfile's sha256 skips reinstalling. Needs node and npm (scripts/deps.sh) and
# the npm registry the first time; without them this test FAILS (it never skips).
set -euo pipefail
SRC=${QUARREL_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
export QUARREL_BIN=$(realpath "${QUARREL_BIN:-build/quarrel}")
export QUARREL_SHARED=$(realpath "${QUARREL_SHARED:-../shared}")
DIR=$(dirname "$QUARREL_BIN")/node-tests

fail() { echo "FAIL: $*" >&2; exit 1; }
command -v node >/dev/null || fail "node is not installed (scripts/deps.sh installs Debian's nodejs)"
command -v npm >/dev/null || fail "npm is not installed (scripts/deps.sh installs Debian's npm)"

mkdir -p "$DIR"
cp "$SRC"/tests/node/package.json "$SRC"/tests/node/package-lock.json "$SRC"/tests/node/*.mjs "$DIR"/
want=$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$DIR/node_modules/.quarrel-lock" 2>/dev/null)" != "$want" ]; then
  echo "node: npm ci (openai, ws as pinned in tests/node/package-lock.json)" >&2
  rm -rf "$DIR/node_modules"
  if ! (cd "$DIR" && timeout 300 npm ci --no-audit --no-fund --fetch-retries=2 --fetch-timeout=60000 >&2); then
    fail "npm ci could not install the pinned openai and ws packages (is the npm registry reachable?)"
  fi
  echo "$want" > "$DIR/node_modules/.quarrel-lock"
fi

cd "$DIR"
for t in openai ws; do
  echo "node: $t.test.mjs ($(node --version))" >&2
  timeout 180 node --test-reporter=spec "$t.test.mjs" || fail "$t.test.mjs"
done
echo "node: all checks passed"
