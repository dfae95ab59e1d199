#!/usr/bin/env bash
# kernel_sets.sh — QUARREL_CPU end to end:
#   1. a name that is no kernel set is a one-line error naming the choices (exit 1);
#   2. a set this CPU lacks (CPUID, as /proc/cpuinfo reports it) is a one-line error,
#      never a silent fallback to another set;
#   3. every set the CPU runs gives the same greedy text on Q4_K_M, Q4_0, Q8_0 and F16
#      models (all sets are bit-identical to the scalar reference), with a prompt long
#      enough that prefill runs the batched tiles;
#   4. `quarrel bench --json` names the set that ran ("kernels").
set -euo pipefail
BIN=${QUARREL_BIN:-build/quarrel}
SHARED=${QUARREL_SHARED:-../shared}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
M=$SHARED/models/llama-gqa-spm512-Q4_K_M.gguf
P="Once upon a time there was a little girl who lived in a village near the forest and loved to play"

# 1. not a set
if QUARREL_CPU=sse9 "$BIN" run -m "$M" -p hi -n 1 > /dev/null 2> "$TMP/err"; then fail "QUARREL_CPU=sse9 ran"; fi
[ "$(wc -l < "$TMP/err")" -eq 1 ] || fail "not one line: $(cat "$TMP/err")"
grep -q "expected scalar, avx2 or avx512" "$TMP/err" || fail "message: $(cat "$TMP/err")"

# 2. which sets this CPU runs
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { for f in "$@"; do [[ " $flags " == *" $f "* ]] || return 1; done; }
sets=(scalar)
has avx2 fma f16c && sets+=(avx2)
if has avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni; then
  sets+=(avx512)
else
  if QUARREL_CPU=avx512 "$BIN" run -m "$M" -p hi -n 1 > /dev/null 2> "$TMP/err"; then fail "QUARREL_CPU=avx512 ran on a CPU without it"; fi
  [ "$(wc -l < "$TMP/err")" -eq 1 ] || fail "not one line: $(cat "$TMP/err")"
  grep -q "QUARREL_CPU=avx512: this CPU lacks that instruction set" "$TMP/err" || fail "message: $(cat "$TMP/err")"
fi

# 3. the same greedy text from every set it runs
for model in llama-gqa-spm512-Q4_K_M llama-gqa-spm512-Q4_0 llama-gqa-spm512-Q8_0 llama-gqa-spm512-F16; do
  for s in "${sets[@]}"; do
    QUARREL_CPU=$s "$BIN" run -m "$SHARED/models/$model.gguf" -p "$P" --temp 0 -n 24 -t 2 > "$TMP/$model.$s" 2> /dev/null \
      || fail "$model with QUARREL_CPU=$s failed"
    [ -s "$TMP/$model.$s" ] || fail "$model: no text with QUARREL_CPU=$s"
    cmp -s "$TMP/$model.$s" "$TMP/$model.scalar" || fail "$model: QUARREL_CPU=$s text differs from scalar"
  done
done
# 4. `quarrel bench` names the set that ran
for s in "${sets[@]}"; do
  got=$(QUARREL_CPU=$s "$BIN" bench -m "$M" -p 8 -n 2 -r 1 --probe-mib 0 --json 2> /dev/null \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["kernels"])') || fail "bench with QUARREL_CPU=$s"
  [ "$got" = "$s" ] || fail "bench reports kernels $got under QUARREL_CPU=$s"
done
echo "kernel sets run here: ${sets[*]}"
