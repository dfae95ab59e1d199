#!/usr/bin/env bash
# limits.sh — `quarrel serve` limits that act on live connections: --max-conns answers 503
# with Retry-After (instead of MHD's silent refusal), a WebSocket session whose key is
# revoked is closed with UNAUTHORIZED after the reload, and the generated tokens of a
# WebSocket generation cut off by its connection's end are charged to the key's tpm
# bucket. The checks live in limits_client.py (python3 stdlib); every wait is bounded.
set -euo pipefail
export QUARREL_BIN=${QUARREL_BIN:-build/quarrel}
export QUARREL_SHARED=${QUARREL_SHARED:-../shared}
exec timeout 120 python3 "$(dirname "$0")/limits_client.py"
