#!/usr/bin/env bash
# run.sh — `make bench`: runs every bench/*.sh benchmark (except this one) against the
# Release build in BUILD_DIR. Benchmarks are never part of `make test`.
#   usage: bench/run.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
for b in "$HERE"/*.sh; do
  [ "$(basename "$b")" = run.sh ] && continue
  echo "== $(basename "$b" .sh)"
  bash "$b" "$BUILD"
done
