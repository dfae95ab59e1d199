#!/usr/bin/env bash
# membw.sh — memory read bandwidth (bench/membw.c) at 1 and 2 threads, 1 GiB buffer.
#   usage: bench/membw.sh [BUILD_DIR]
set -euo pipefail
"${1:-build}/bench_membw" 2
