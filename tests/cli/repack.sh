#!/usr/bin/env bash
# repack.sh — load-time weight repacking (cpu/repack.c) end to end, on the shared Q4_0
# and Q8_0 models:
#   1. `quarrel logits` writes byte-identical logits with QUARREL_REPACK=0 and with the
#      default (repacked), batch and --single: the x8 kernels are bit-identical;
#   2. `quarrel bench --json` (and `quarrel info --json`, from the file alone) report as
#      repacked exactly the matrices an independent
#      stdlib-Python reading of the file says are eligible (Q4_0 / Q8_0 layer matrices and
#      a separate output, rows a multiple of 8; never token_embd), with their bytes, and
#      none with QUARREL_REPACK=0 or QUARREL_CPU=scalar (the reference never repacks).
#   3. resident memory does not double: on a synthesized SmolLM2-360M Q4_0 (219 MiB, 169 MiB
#      repacked), maxrss with repacking stays within 16 MiB of maxrss without (the file
#      pages a tensor came from are dropped once it is repacked).
# Skips (exit 0) when the CPU has no AVX2 (no kernel set with repack entries).
set -euo pipefail
BIN=${QUARREL_BIN:-build/quarrel}
TOOLS=$(cd "$(dirname "$0")/../tools" && pwd)   # gguf_tensors.py
SHARED=${QUARREL_SHARED:-../shared}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
grep -qw avx2 /proc/cpuinfo || { echo "repack.sh: skip (no AVX2)"; exit 0; }

for model in llama-gqa-spm512-Q4_0 llama-gqa-spm512-Q8_0; do
  M=$SHARED/models/$model.gguf
  for mode in "" --single; do
    QUARREL_REPACK=0 "$BIN" logits -m "$M" -p "Once upon a time, in a small village" -o "$TMP/a.f32" -t 2 $mode > /dev/null
    "$BIN" logits -m "$M" -p "Once upon a time, in a small village" -o "$TMP/b.f32" -t 2 $mode > /dev/null
    cmp -s "$TMP/a.f32" "$TMP/b.f32" || fail "$model $mode: logits differ with and without repacking"
  done
  ARGS=(bench -m "$M" -p 8 -n 4 -r 1 -t 2 --probe-mib 16 --json)
  "$BIN" "${ARGS[@]}" > "$TMP/on.json"
  QUARREL_REPACK=0 "$BIN" "${ARGS[@]}" > "$TMP/off.json"
  QUARREL_CPU=scalar "$BIN" "${ARGS[@]}" > "$TMP/scalar.json"
  "$BIN" info "$M" --json > "$TMP/info.json"
  QUARREL_REPACK=0 "$BIN" info "$M" --json > "$TMP/info0.json"
  PYTHONPATH="$TOOLS" python3 - "$M" "$TMP/on.json" "$TMP/off.json" "$TMP/scalar.json" "$TMP/info.json" "$TMP/info0.json" <<'PY' || fail "$model: repack counts"
import json, re, sys
from gguf_tensors import tensors
BLOCK = {2: 18, 8: 34}   # ggml types Q4_0, Q8_0: bytes per 32 elements
matrix = re.compile(r"blk\.\d+\.(attn_[qkv]|attn_output|ffn_gate|ffn_up|ffn_down)\.weight|output\.weight")
n = size = 0
for name, ne, t in tensors(sys.argv[1]):
    if matrix.fullmatch(name) and t in BLOCK and len(ne) == 2 and ne[1] % 8 == 0:
        n += 1
        size += (ne[0] // 32 * BLOCK[t] * ne[1] + 63) // 64 * 64   # 64-byte aligned slices
on, off, sc, info, info0 = (json.load(open(p)) for p in sys.argv[2:7])
assert n > 0, "the model has no eligible matrix"
assert (on["repacked_tensors"], on["repacked_bytes"]) == (n, size), (on["repacked_tensors"], on["repacked_bytes"], n, size)
assert (off["repacked_tensors"], off["repacked_bytes"]) == (0, 0), off
assert (sc["repacked_tensors"], sc["repacked_bytes"]) == (0, 0), sc
assert (info["repack"]["tensors"], info["repack"]["bytes"]) == (n, size), info["repack"]
assert (info0["repack"]["tensors"], info0["repack"]["bytes"]) == (0, 0), info0["repack"]
PY
done
# 3. RSS
"$BIN" synth --shape smollm2-360m --type Q4_0 -o "$TMP/smol.gguf" --threads 2 > /dev/null 2>&1 || fail "synth"
rss() {  # maxrss in KiB of one short bench run (python's getrusage of the child), env as given
  env "$@" python3 -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[1:-1], stdout=open(sys.argv[-1] + ".out", "w"), stderr=subprocess.STDOUT)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if r.returncode == 0 else -1)' \
    "$BIN" bench -m "$TMP/smol.gguf" -p 8 -n 2 -r 1 -t 2 --probe-mib 0 "$TMP/rss"
}
off=$(rss QUARREL_REPACK=0)
[ "$off" -gt 0 ] || fail "bench (QUARREL_REPACK=0): $(cat "$TMP/rss.out")"
on=$(rss QUARREL_REPACK=1)
[ "$on" -gt 0 ] || fail "bench: $(cat "$TMP/rss.out")"
grep -q "repacked weights: [1-9]" "$TMP/rss.out" || fail "smol: nothing repacked: $(cat "$TMP/rss.out")"
[ "$on" -le $((off + 16384)) ] || fail "maxrss $on KiB with repacking vs $off KiB without"
echo "repack.sh: ok (maxrss $on KiB repacked, $off KiB not)"
