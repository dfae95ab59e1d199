#!/usr/bin/env bash
# webui.sh — unit tests of the UI's pure modules (tests/web/units.test.mjs, node --test), then
# the web UI in real Chromium (tests/web/webui.test.mjs, driven by playwright-core)
# against real `quarrel serve` processes on loopback with stories260K: streaming, stop frees
# the slot, settings/history persistence and export, theme, a 390×844 phone, sanitized
# markdown, SSE fallback, reconnect after a restart, API keys (once the server has them).
# Needs node, npm (the build installs playwright-core into <build>/web/node_modules) and
# Debian's chromium (scripts/deps.sh); without them this test FAILS, it never skips.
# Screenshots: <build>/web-screenshots/NN-name.png (the build dir is QUARREL_BIN's folder).
set -euo pipefail
SRC=${QUARREL_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
export QUARREL_BIN=$(realpath "${QUARREL_BIN:-build/quarrel}")
export QUARREL_SHARED=$(realpath "${QUARREL_SHARED:-../shared}")
BUILD=$(dirname "$QUARREL_BIN")
export WEB_MODULES="$BUILD/web/node_modules"
export SCREENSHOTS="$BUILD/web-screenshots"
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

fail() { echo "FAIL: $*" >&2; exit 1; }
command -v node >/dev/null || fail "node is not installed (scripts/deps.sh installs Debian's nodejs)"
command -v npm >/dev/null || fail "npm is not installed (scripts/deps.sh installs Debian's npm); the UI cannot be built without it"
[ -x "$CHROMIUM" ] || fail "$CHROMIUM is missing (scripts/deps.sh installs Debian's chromium)"
[ -f "$BUILD/web/manifest.json" ] || fail "the web UI was not built into $QUARREL_BIN (see the build log: web/build.sh needs npm ci to reach the registry)"
[ -d "$WEB_MODULES/playwright-core" ] || fail "playwright-core is not in $WEB_MODULES (web/build.sh installs it with npm ci)"

echo "webui: unit tests of the UI's pure modules (node --test)"
timeout 60 node --test "$SRC/tests/web/units.test.mjs" || fail "tests/web/units.test.mjs"
rm -rf "$SCREENSHOTS"
exec timeout 300 node "$SRC/tests/web/webui.test.mjs"
