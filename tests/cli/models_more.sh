#!/usr/bin/env bash
# models_more.sh — the model registry's follow-ups end to end: lazy loads over /ws run off
# the WebSocket reactor, per-model request metrics, --max-loaded makes room only after a
# load succeeded (draining versions in the memory gauges), --models-dir rescans on SIGHUP
# and on unknown names. The checks live in models_more_client.py (python3 stdlib).
set -euo pipefail
export QUARREL_BIN=${QUARREL_BIN:-build/quarrel}
export QUARREL_SHARED=${QUARREL_SHARED:-../shared}
exec timeout 120 python3 "$(dirname "$0")/models_more_client.py"
