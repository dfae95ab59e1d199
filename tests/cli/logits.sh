#!/usr/bin/env bash
# logits.sh — `quarrel logits` against llama.cpp's goldens: for stories260K and
# llama-gqa-spm512-F16 (both prompts, batch and --single), the token ids printed on
# stdout equal the golden's, the file is n_pos * n_vocab little-endian floats, and every
# row is within the README's rel-L2 bound (F32 1e-3, F16 3e-3). Then
# `quarrel perplexity` on golden/stories260K/ppl-input.txt with its settings must give
# perplexity.json's final PPL within 0.1% (and the same running values to 0.1%).
set -euo pipefail
BIN=${QUARREL_BIN:-build/quarrel}
SHARED=${QUARREL_SHARED:-../shared}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for spec in stories260K:1e-3 llama-gqa-spm512-F16:3e-3; do
  model=${spec%%:*}; tol=${spec##*:}
  for case in story unicode; do
    g=$SHARED/golden/$model/$case.json
    prompt=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["prompt"], end="")' "$g")
    for mode in "" --single; do
      ids=$("$BIN" logits -m "$SHARED/models/$model.gguf" -p "$prompt" -o "$TMP/out.f32" -t 2 $mode)
      python3 - "$g" "$TMP/out.f32" "$ids" "$tol" <<'PY' || fail "$model/$case $mode"
import json, math, struct, sys
g = json.load(open(sys.argv[1])); tol = float(sys.argv[4])
ids = [int(x) for x in sys.argv[3].split()]
assert ids == g["tokens"], f"ids {ids} != {g['tokens']}"
n, V = g["n_pos"], g["n_vocab"]
data = open(sys.argv[2], "rb").read()
assert len(data) == 4 * n * V, f"size {len(data)} != {4 * n * V}"
ref = open(sys.argv[1].rsplit("/", 1)[0] + "/" + g["logits_file"], "rb").read()
a = struct.unpack(f"<{n * V}f", data); b = struct.unpack(f"<{n * V}f", ref)
worst = 0.0
for i in range(n):
    num = sum((a[i*V+j] - b[i*V+j]) ** 2 for j in range(V))
    den = sum(b[i*V+j] ** 2 for j in range(V))
    worst = max(worst, math.sqrt(num / den))
assert worst <= tol, f"worst rel {worst:.3g} > {tol}"
PY
    done
  done
done

# perplexity
P=$SHARED/golden/stories260K
"$BIN" perplexity -m "$SHARED/models/stories260K.gguf" -f "$P/ppl-input.txt" -c 128 -b 128 -t 2 > "$TMP/ppl" 2>/dev/null
python3 - "$P/perplexity.json" "$TMP/ppl" <<'PY' || fail "perplexity: $(cat "$TMP/ppl")"
import json, re, sys
g = json.load(open(sys.argv[1])); out = open(sys.argv[2]).read()
final = float(re.search(r"PPL = ([0-9.]+) \+/- ([0-9.]+)", out).group(1))
assert abs(final / g["final_ppl"] - 1) < 1e-3, f"final {final} vs {g['final_ppl']}"
running = [float(x) for x in re.findall(r"\[\d+\]([0-9.]+),", out)]
assert len(running) == g["n_chunks"], running
for r, w in zip(running, g["running_ppl_per_chunk"]):
    assert abs(r / w - 1) < 1e-3, (r, w)
PY
echo "logits.sh: ok"
