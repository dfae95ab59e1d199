#!/usr/bin/env bash
# bench.sh — `quarrel bench` on stories260K with tiny settings (-p 16 -n 8 -r 2, a 16 MiB
# bandwidth probe). No timing assertions: only shape and sanity.
#   1. the text table has a pp16 and a tg8 row; -p 0 / -n 0 drop the row;
#   2. --json parses and every key holds a positive finite number; bytes_per_token equals
#      the value computed here from the file by an independent stdlib-Python GGUF reader
#      (every tensor's bytes, with one row of token_embd when output.weight exists), on
#      stories260K (separate output matrix) and granite-spm512-Q4_K_M (tied embeddings);
#   2b. -d DEPTH: the rows are named "pp16 @ d40" / "tg8 @ d40" and the JSON says depth 40;
#      a depth over the context limit is a usage error;
#   3. --profile: the table gains a profile section; the JSON's "profile" object has pp and
#      tg parts, each with every op, "unaccounted" and the matmul / attention / rest groups;
#      ops + unaccounted sum to the total, the groups too, and a decode runs each per-layer
#      op the number of times the model's shape says (matmul calls 4 per layer + 1: q/k/v
#      and gate/up are fused, ...), and it reports thread-pool dispatches per token;
#   4. a bad model path exits 1 with one line on stderr; bad flags exit 2.
set -euo pipefail
BIN=${QUARREL_BIN:-build/quarrel}
TOOLS=$(cd "$(dirname "$0")/../tools" && pwd)   # gguf_tensors.py
SHARED=${QUARREL_SHARED:-../shared}
M=$SHARED/models/stories260K.gguf
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ARGS=(-m "$M" -p 16 -n 8 -r 2 -t 2 --probe-mib 16)

# 1. the table
"$BIN" bench "${ARGS[@]}" > "$TMP/table" 2> "$TMP/err" || fail "exit $?: $(cat "$TMP/err")"
grep -Eq '^\|.*\| +pp16 \| +[0-9.]+ ± +[0-9.]+ \|$' "$TMP/table" || fail "no pp16 row: $(cat "$TMP/table")"
grep -Eq '^\|.*\| +tg8 \| +[0-9.]+ ± +[0-9.]+ \|$' "$TMP/table" || fail "no tg8 row: $(cat "$TMP/table")"
grep -q 'decode efficiency' "$TMP/table" || fail "no efficiency line: $(cat "$TMP/table")"
"$BIN" bench -m "$M" -p 0 -n 4 -r 1 --probe-mib 16 > "$TMP/tg_only"
grep -q ' pp' "$TMP/tg_only" && fail "-p 0 still ran pp: $(cat "$TMP/tg_only")"
grep -q ' tg4 ' "$TMP/tg_only" || fail "-p 0 lost tg: $(cat "$TMP/tg_only")"

# 2. JSON, and bytes per token from the file itself; granite-spm512-Q4_K_M has tied embeddings
for model in "$M" "$SHARED/models/granite-spm512-Q4_K_M.gguf"; do
"$BIN" bench -m "$model" "${ARGS[@]:2}" --json > "$TMP/json" 2> "$TMP/err" || fail "json exit $?: $(cat "$TMP/err")"
PYTHONPATH="$TOOLS" python3 - "$TMP/json" "$model" <<'PY' || fail "json check on $model"
import json, math, sys

from gguf_tensors import TYPES, tensors

j = json.load(open(sys.argv[1]))
ts = tensors(sys.argv[2])
names = {n for n, _, _ in ts}
want = total = 0
for name, ne, t in ts:
    be, bb = TYPES[t]
    nbytes = ne[0] // be * bb * math.prod(ne[1:])
    total += nbytes
    if name == "token_embd.weight" and "output.weight" in names:
        nbytes = ne[0] // be * bb
    want += nbytes
errs = []
if j["tied_embeddings"] != ("output.weight" not in names):
    errs.append(f"tied_embeddings {j['tied_embeddings']}")
if j["bytes_per_token"] != want:
    errs.append(f"bytes_per_token {j['bytes_per_token']} != {want}")
if j["model_bytes"] != total:
    errs.append(f"model_bytes {j['model_bytes']} != {total}")
exact = {"threads": 2, "n_prompt": 16, "n_gen": 8, "reps": 2, "model": sys.argv[2]}
for k, v in exact.items():
    if j.get(k) != v:
        errs.append(f"{k} = {j.get(k)!r}, want {v!r}")
for k in ("pp_tok_s", "tg_tok_s", "effective_gbps", "probe_gbps", "decode_efficiency"):
    v = j.get(k)
    if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        errs.append(f"{k} = {v!r} is not a positive finite number")
for k in ("pp_tok_s_std", "tg_tok_s_std"):
    v = j.get(k)
    if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        errs.append(f"{k} = {v!r} is not a finite number >= 0")
for k in ("pp_samples", "tg_samples"):
    if len(j.get(k) or []) != 2:
        errs.append(f"{k} should hold 2 runs: {j.get(k)!r}")
if abs(j["effective_gbps"] - j["bytes_per_token"] * j["tg_tok_s"] / 1e9) > 1e-9 * j["effective_gbps"] + 1e-12:
    errs.append("effective_gbps != bytes_per_token * tg_tok_s / 1e9")
if abs(j["decode_efficiency"] - j["effective_gbps"] / j["probe_gbps"]) > 1e-9:
    errs.append("decode_efficiency != effective_gbps / probe_gbps")
if not j.get("model_desc") or j.get("probe_isa") not in ("scalar", "avx2", "avx512"):
    errs.append(f"model_desc / probe_isa: {j.get('model_desc')!r} {j.get('probe_isa')!r}")
if j.get("kernels") not in ("scalar", "avx2", "avx512"):
    errs.append(f"kernels: {j.get('kernels')!r}")
for e in errs:
    print("  " + e)
sys.exit(1 if errs else 0)
PY
done

# 2b. -d: tests after 40 tokens of context
"$BIN" bench "${ARGS[@]}" -d 40 > "$TMP/dtable" 2> "$TMP/err" || fail "-d exit $?: $(cat "$TMP/err")"
grep -Eq '^\|.*\| +pp16 @ d40 \| +[0-9.]+ ± +[0-9.]+ \|$' "$TMP/dtable" || fail "no pp16 @ d40 row: $(cat "$TMP/dtable")"
grep -Eq '^\|.*\| +tg8 @ d40 \| +[0-9.]+ ± +[0-9.]+ \|$' "$TMP/dtable" || fail "no tg8 @ d40 row: $(cat "$TMP/dtable")"
"$BIN" bench "${ARGS[@]}" -d 40 --json | python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j["depth"] == 40 and j["tg_tok_s"] > 0 and j["pp_tok_s"] > 0, j' || fail "-d json"
rc=0
"$BIN" bench -m "$M" -d 20000000 -r 1 > /dev/null 2> "$TMP/err" || rc=$?
[ $rc -eq 2 ] || fail "-d too deep: exit $rc"

# 3. --profile
"$BIN" bench "${ARGS[@]}" --profile > "$TMP/ptable" 2> "$TMP/err" || fail "profile exit $?: $(cat "$TMP/err")"
grep -Eq '^\| matmul\.ffn +\| +[0-9.]+ +[0-9.]+% \| +[0-9.]+ +[0-9.]+% \|$' "$TMP/ptable" ||
    fail "no matmul.ffn profile row: $(cat "$TMP/ptable")"
grep -Eq '^\| total +\| +[0-9.]+ +100\.0% \|' "$TMP/ptable" || fail "no profile total: $(cat "$TMP/ptable")"
"$BIN" bench "${ARGS[@]}" --profile --json > "$TMP/pjson" 2> "$TMP/err" || fail "profile json exit $?: $(cat "$TMP/err")"
python3 - "$TMP/pjson" <<'PY' || fail "profile json check"
import json, math, sys
j = json.load(open(sys.argv[1]))
n_layer = 5   # stories260K
OPS = ["matmul.attn_qkv", "matmul.attn_out", "matmul.ffn", "matmul.output", "matmul.other", "attention",
       "rmsnorm", "rope", "swiglu", "add", "scale", "softmax", "get_rows", "kv_store"]
# calls per decoded token in tg (one token per decode); pp's 16 tokens share one forward pass
# (q/k/v are one fused call, gate/up another)
TG_CALLS = {"matmul.attn_qkv": n_layer, "matmul.attn_out": n_layer, "matmul.ffn": 2 * n_layer,
            "matmul.output": 1, "attention": n_layer, "rmsnorm": 2 * n_layer + 1, "rope": 2 * n_layer,
            "swiglu": n_layer, "add": 2 * n_layer, "get_rows": 1, "kv_store": n_layer}
errs = []
p = j.get("profile")
if not isinstance(p, dict):
    sys.exit("no profile object")
for test, tokens in (("pp", 16 * 2), ("tg", 8 * 2)):
    t = p.get(test) or {}
    ops, groups = t.get("ops", {}), t.get("groups", {})
    total = t.get("total_ms_per_token")
    if t.get("tokens") != tokens:
        errs.append(f"{test}: tokens {t.get('tokens')} != {tokens}")
    if not isinstance(total, float) or not total > 0:
        errs.append(f"{test}: total {total!r}")
        continue
    if sorted(ops) != sorted(OPS + ["unaccounted"]) or sorted(groups) != ["attention", "matmul", "rest"]:
        errs.append(f"{test}: keys {sorted(ops)} {sorted(groups)}")
        continue
    for name, row in list(ops.items()) + list(groups.items()):
        ms, pct = row["ms_per_token"], row["pct"]
        if not (math.isfinite(ms) and ms >= 0 and abs(pct - 100 * ms / total) < 1e-6 * max(1, pct)):
            errs.append(f"{test}.{name}: {row}")
    s_ops = sum(r["ms_per_token"] for r in ops.values())
    s_groups = sum(r["ms_per_token"] for r in groups.values())
    if abs(s_ops - total) > 1e-3 * total or abs(s_groups - total) > 1e-3 * total:
        errs.append(f"{test}: ops sum {s_ops}, groups sum {s_groups}, total {total}")
    mm = sum(ops[k]["ms_per_token"] for k in OPS if k.startswith("matmul."))
    if abs(groups["matmul"]["ms_per_token"] - mm) > 1e-9 * total + 1e-12:
        errs.append(f"{test}: matmul group {groups['matmul']} != sum of matmul ops {mm}")
    if ops["matmul.ffn"]["ms_per_token"] <= 0 or ops["attention"]["ms_per_token"] <= 0:
        errs.append(f"{test}: ffn matmul or attention took no time")
    if not (isinstance(t.get("dispatches_per_token"), float) and t["dispatches_per_token"] >= 0):
        errs.append(f"{test}: dispatches_per_token {t.get('dispatches_per_token')!r}")
    if test == "tg":
        for k in OPS:
            want = TG_CALLS.get(k, 0)
            if abs(ops[k].get("calls_per_token", -1) - want) > 1e-9:
                errs.append(f"tg.{k}: {ops[k].get('calls_per_token')} calls per token, want {want}")
for e in errs:
    print("  " + e)
sys.exit(1 if errs else 0)
PY
"$BIN" bench "${ARGS[@]}" --json | python3 -c 'import json,sys; sys.exit("profile" in json.load(sys.stdin))' ||
    fail "profile object without --profile"

# 4. errors
set +e
"$BIN" bench -m "$TMP/missing.gguf" -p 4 -n 2 -r 1 --probe-mib 16 > "$TMP/out" 2> "$TMP/err"
rc=$?
[ $rc -eq 1 ] || fail "missing model exit $rc"
[ "$(wc -l < "$TMP/err")" -eq 1 ] || fail "missing model: not one line: $(cat "$TMP/err")"
[ -s "$TMP/out" ] && fail "missing model printed to stdout"
for bad in "--bogus" "-p -3" "-r 0" "-t" "--probe-mib x"; do
    # shellcheck disable=SC2086
    "$BIN" bench -m "$M" $bad > /dev/null 2> "$TMP/err"
    rc=$?
    [ $rc -eq 2 ] || fail "'$bad' exit $rc"
    [ "$(wc -l < "$TMP/err")" -eq 1 ] || fail "'$bad': not one line: $(cat "$TMP/err")"
done
"$BIN" bench -p 4 > /dev/null 2>&1
[ $? -eq 2 ] || fail "no -m should exit 2"
set -e
echo "bench.sh: ok"
