#!/usr/bin/env bash
# tokenize.sh — tokenizer benchmark: generates the 1 MiB mixed-language text and runs
# bench_tokenize over every shared vocab.   usage: bench/tokenize.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
TEXT=$(mktemp --suffix=.txt)
trap 'rm -f "$TEXT"' EXIT
python3 "$HERE/gen_tokenize_text.py" "$TEXT"
QUARREL_SHARED=${QUARREL_SHARED:-$HERE/../../shared} "$BUILD/bench_tokenize" "$TEXT"
