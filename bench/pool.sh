#!/usr/bin/env bash
# pool.sh — per-call overhead of the thread pool (bench/pool.c) for 1..N threads.
#   usage: bench/pool.sh [BUILD_DIR]
set -euo pipefail
"${1:-build}/bench_pool" "$(nproc)" 20000
