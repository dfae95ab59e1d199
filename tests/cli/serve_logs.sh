#!/usr/bin/env bash
# serve_logs.sh — log redaction of `quarrel serve`: prompts, messages and generated text
# only with --log-prompts / QUARREL_LOG_PROMPTS; credentials never (checks in serve_logs.py).
set -euo pipefail
export QUARREL_BIN=${QUARREL_BIN:-build/quarrel}
export QUARREL_SHARED=${QUARREL_SHARED:-../shared}
exec timeout 120 python3 "$(dirname "$0")/serve_logs.py"
