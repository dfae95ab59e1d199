#!/usr/bin/env bash
# engine.sh — decode speed and RSS (bench/engine.c) on the shared models, 1..nproc threads.
#   usage: bench/engine.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build}
SHARED=${QUARREL_SHARED:-../shared}
for m in stories260K llama-spm32000-F16 llama-gqa-spm512-Q4_K_M; do
  "$BUILD/bench_engine" "$SHARED/models/$m.gguf" "$(nproc)" 128 64
done
