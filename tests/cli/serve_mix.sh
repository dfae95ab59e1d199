#!/usr/bin/env bash
# serve_mix.sh — 32 concurrent clients (SSE /api/stream, streamed /v1/chat/completions and
# WebSocket /ws, 8 prompts, --parallel 6) each get the same token ids and text as the same
# request served alone (checks in serve_mix.py; python3 stdlib).
set -euo pipefail
export QUARREL_BIN=${QUARREL_BIN:-build/quarrel}
export QUARREL_SHARED=${QUARREL_SHARED:-../shared}
exec timeout 240 python3 "$(dirname "$0")/serve_mix.py"
