#!/usr/bin/env bash
# models.sh — `quarrel serve` with a model registry end to end: --models-dir names, lazy
# loading, --preload, --max-loaded LRU eviction and draining, unknown and broken models on
# /api, /v1 and /ws, admin load/unload/swap and their auth rules, and a hot swap under 8
# concurrent streams (no request dropped, old output intact, new output after, old version
# freed). The checks live in models_client.py (python3 stdlib); every wait there is bounded.
set -euo pipefail
export QUARREL_BIN=${QUARREL_BIN:-build/quarrel}
export QUARREL_SHARED=${QUARREL_SHARED:-../shared}
exec timeout 170 python3 "$(dirname "$0")/models_client.py"
