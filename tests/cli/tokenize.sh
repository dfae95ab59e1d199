#!/usr/bin/env bash
# tokenize.sh — `quarrel tokenize` / `quarrel detokenize` on the shared vocab-only GGUF
# files: --ids must equal llama.cpp's expected ids (the .inp/.out test vectors, fed
# through stdin byte for byte and through -f), a trailing newline on stdin is text,
# --json parses, detokenize inverts tokenize, and errors exit non-zero with one line.
set -euo pipefail
BIN=${QUARREL_BIN:-build/quarrel}
SHARED=${QUARREL_SHARED:-../shared}
V=$SHARED/vocab
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. Every 8th test vector of every vocab, via stdin (and the first ones via -f too),
#    must give the .out ids.
python3 - "$V" "$TMP" <<'PY'
import sys, os
vdir, tmp = sys.argv[1], sys.argv[2]
n = 0
for name in ["bert-bge", "deepseek-coder", "gpt-2", "llama-spm", "phi-3", "refact", "starcoder"]:
    inp = open(f"{vdir}/ggml-vocab-{name}.gguf.inp", "rb").read().split(b"\n__ggml_vocab_test__\n")
    out = open(f"{vdir}/ggml-vocab-{name}.gguf.out").read().split("\n")
    for i in range(0, len(out) - 1, 8):
        open(f"{tmp}/case{n}.txt", "wb").write(inp[i])
        open(f"{tmp}/case{n}.want", "w").write(f"{name}\n{out[i].strip()}\n{int(i == 0)}\n")
        n += 1
PY
count=0
for want in "$TMP"/case*.want; do
  base=${want%.want}
  name=$(sed -n 1p "$want"); ids=$(sed -n 2p "$want")
  got=$("$BIN" tokenize -m "$V/ggml-vocab-$name.gguf" --no-bos --ids < "$base.txt")
  [ "$got" = "$ids" ] || fail "$name stdin $(od -c "$base.txt" | head -2): want '$ids' got '$got'"
  if [ "$(sed -n 3p "$want")" = 1 ]; then
    got=$("$BIN" tokenize -m "$V/ggml-vocab-$name.gguf" --no-bos --ids -f "$base.txt")
    [ "$got" = "$ids" ] || fail "$name -f: want '$ids' got '$got'"
  fi
  count=$((count + 1))
done
[ "$count" -ge 40 ] || fail "only $count vector cases"

# 2. stdin is byte-exact: the trailing newline is a token (GPT-2: Hello=15496, \n=198).
got=$(printf 'Hello\n' | "$BIN" tokenize -m "$V/ggml-vocab-gpt-2.gguf" --ids --no-bos)
[ "$got" = "15496 198" ] || fail "stdin newline: got '$got'"
got=$("$BIN" tokenize -m "$V/ggml-vocab-gpt-2.gguf" --ids --no-bos -p Hello)
[ "$got" = "15496" ] || fail "-p: got '$got'"

# 3. BOS: SPM adds <s>=1 by default, --no-bos does not; --special parses "<s>".
got=$("$BIN" tokenize -m "$V/ggml-vocab-llama-spm.gguf" --ids -p "Hello world")
[ "$got" = "1 15043 3186" ] || fail "spm bos: got '$got'"
got=$("$BIN" tokenize -m "$V/ggml-vocab-llama-spm.gguf" --ids --no-bos --special -p "<s>Hello world")
[ "$got" = "1 15043 3186" ] || fail "spm --special: got '$got'"

# 4. --json parses and carries ids and pieces.
"$BIN" tokenize -m "$V/ggml-vocab-llama-spm.gguf" --json -p "Hi 🦙" > "$TMP/out.json"
python3 - "$TMP/out.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
assert a[0] == {"id": 1, "piece": "<s>"}, a
assert all(isinstance(x["id"], int) and isinstance(x["piece"], str) for x in a), a
PY

# 5. detokenize inverts tokenize (SPM drops the added space prefix).
ids=$("$BIN" tokenize -m "$V/ggml-vocab-llama-spm.gguf" --ids --no-bos -p "Café – naïve 東京 🚀")
got=$("$BIN" detokenize -m "$V/ggml-vocab-llama-spm.gguf" $ids)
[ "$got" = "Café – naïve 東京 🚀" ] || fail "detokenize: got '$got'"
got=$("$BIN" detokenize -m "$V/ggml-vocab-llama-spm.gguf" --special "1, 15043,3186")
[ "$got" = "<s> Hello world" ] || fail "detokenize --special: got '$got'"

# 6. Errors: one line on stderr, exit 1 (bad input) or 2 (usage).
set +e
"$BIN" detokenize -m "$V/ggml-vocab-gpt-2.gguf" 99999999 2> "$TMP/err"; rc=$?
[ $rc -eq 1 ] && [ "$(wc -l < "$TMP/err")" -eq 1 ] || fail "bad id: rc $rc"
"$BIN" tokenize -m "$TMP/missing.gguf" -p x 2> "$TMP/err"; rc=$?
[ $rc -eq 1 ] || fail "missing model: rc $rc"
"$BIN" tokenize -p x 2> /dev/null; rc=$?
[ $rc -eq 2 ] || fail "no model: rc $rc"
set -e
echo "cli tokenize: $count vector cases ok"
