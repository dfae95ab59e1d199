#!/usr/bin/env bash
# serve.sh — `quarrel serve` end to end on loopback (stories260K): probes, golden greedy
# text over /api/generate, SSE, OpenAI routes, WebSocket /ws, 8 concurrent clients vs solo results,
# disconnect frees the slot, timeouts, 4xx errors, queue full -> 503, SIGTERM -> exit 0,
# the metric set (promtool check metrics must accept /metrics), malformed WebSocket frames -> close codes.
# The checks live in serve_client.py (python3 stdlib); every wait there is bounded.
set -euo pipefail
export QUARREL_BIN=${QUARREL_BIN:-build/quarrel}
export QUARREL_SHARED=${QUARREL_SHARED:-../shared}
exec timeout 300 python3 "$(dirname "$0")/serve_client.py"
