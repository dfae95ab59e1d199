#!/usr/bin/env bash
# pack.sh — one tarball that measures Quarrel on another x86-64 Linux machine, whatever its
# distribution: the Release binaries with every shared library they load and this
# machine's ELF loader (run.sh starts each binary through it, so the other machine's libc
# does not matter), optionally a llama.cpp build to compare with, the test data the native
# checks read, and bench/portable/run.sh. Used for session 7's Xeon measurements
# (docs/performance.md, "AVX-512 on a Xeon").
#   usage: bench/portable/pack.sh [-b BUILD_DIR (build)] [-l LLAMA_BIN_DIR] [-s SHARED (../shared)]
#                                 [-o OUT (quarrel-portable.tar.gz)]
# LLAMA_BIN_DIR: llama.cpp's bin/ with llama-bench and its .so files. Build it with
# -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DGGML_NATIVE=OFF so that it picks its
# best kernels on the other CPU, as a native build there would.
# Not a test; writes only OUT.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=build LLAMA= SHARED=$ROOT/../shared OUT=quarrel-portable.tar.gz
while getopts "b:l:s:o:" o; do
  case $o in
    b) BUILD=$OPTARG ;;
    l) LLAMA=$OPTARG ;;
    s) SHARED=$OPTARG ;;
    o) OUT=$OPTARG ;;
    *) sed -n '2,13p' "$0" >&2; exit 2 ;;
  esac
done
BINS="quarrel bench_matmul bench_loadgen test_matmul test_ops test_act_quant test_golden_quant"
for b in $BINS; do
  [ -x "$BUILD/$b" ] || { echo "pack.sh: no $BUILD/$b (ninja -C $BUILD first)" >&2; exit 1; }
done
STAGE=$(mktemp -d /tmp/quarrel-portable.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"/{bin,lib,bench/llama,shared/golden,shared/models,shared/vocab}
for b in $BINS; do cp "$BUILD/$b" "$STAGE/bin/" && strip "$STAGE/bin/$b"; done
if [ -n "$LLAMA" ]; then
  mkdir -p "$STAGE/llama"
  cp "$LLAMA/llama-bench" "$LLAMA"/*.so "$STAGE/llama/"
fi
# every library the binaries load, resolved to its file, under its soname; then the loader
for f in "$STAGE"/bin/* "$STAGE"/llama/*; do [ -e "$f" ] && ldd "$f"; done |
  awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u | while read -r lib; do
    case $lib in "$LLAMA"/*) continue ;; esac
    cp -L "$lib" "$STAGE/lib/"
  done
LOADER=$(ldd "$STAGE/bin/quarrel" | awk '$1 ~ /ld-linux/ {print $1}')
cp -L "$LOADER" "$STAGE/lib/ld-linux-x86-64.so.2"
# the quantized llama/granite goldens (what test_golden_quant reads) and their models,
# and the vocabulary `quarrel synth` copies into the tinyllama shape
for d in "$SHARED"/golden/*/; do
  d=${d%/}
  j=$(ls "$d"/*.json 2>/dev/null | grep -v -e perplexity -e embeddings | head -1) || true
  [ -n "$j" ] || continue
  read -r arch model < <(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["arch"], j["model"])' "$j")
  case $arch in llama | granite) ;; *) continue ;; esac
  case $model in *-F32.gguf | *-F16.gguf | *-BF16.gguf | stories*) continue ;; esac
  cp -r "$d" "$STAGE/shared/golden/"
  cp "$SHARED/models/$model" "$STAGE/shared/models/"
done
cp "$SHARED/vocab/ggml-vocab-llama-spm.gguf" "$STAGE/shared/vocab/"
cp "$ROOT/bench/llama/vs_llama.py" "$STAGE/bench/llama/"
cp "$ROOT/bench/serve_sweep.sh" "$HERE/run.sh" "$STAGE/bench/"
tar czf "$OUT" -C "$STAGE" .
echo "pack.sh: $OUT ($(du -h "$OUT" | cut -f1)); on the other machine: mkdir q && tar xzf $(basename "$OUT") -C q && bash q/bench/run.sh [OUT_DIR]"
