#!/usr/bin/env bash
# prefix.sh — prefix KV reuse in `quarrel serve` (stories260K on loopback): a second turn
# whose prompt extends the first turn's prompt and reply, concurrent requests sharing a
# long system prompt (reuse across slots), and prompts that diverge early, all give the
# same text at temperature 0 as a server with --prefix-cache 0, while the
# quarrel_prefix_cache_* counters show the reuse happened (and stay 0 with it off).
set -euo pipefail
export QUARREL_BIN=${QUARREL_BIN:-build/quarrel}
export QUARREL_SHARED=${QUARREL_SHARED:-../shared}
exec timeout 240 python3 "$(dirname "$0")/prefix_client.py"
