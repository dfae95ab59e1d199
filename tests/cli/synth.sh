#!/usr/bin/env bash
# synth.sh — `quarrel synth` end to end: the tiny shape at Q4_K_M and F16 is written,
# `quarrel info` describes it (llama, 2 blocks, the stories260K tokenizer), the same
# seed gives the same bytes; usage errors exit 2, a bad vocab exits 1 with one line.
set -euo pipefail
: "${QUARREL_BIN:?}" "${QUARREL_SHARED:?}"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for type in Q4_K_M f16; do
  out="$TMP/tiny-$type.gguf"
  "$QUARREL_BIN" synth --shape tiny --type "$type" -o "$out" --seed 5 --threads 2 >"$TMP/stdout" 2>"$TMP/stderr" \
    || fail "synth $type exited $?: $(cat "$TMP/stderr")"
  [ ! -s "$TMP/stderr" ] || fail "synth $type printed on stderr: $(cat "$TMP/stderr")"
  grep -q "^synth tiny .*512-token vocab" "$TMP/stdout" || fail "no summary line: $(cat "$TMP/stdout")"
  [ "$(head -c 4 "$out")" = "GGUF" ] || fail "$type output is not GGUF"
  if "$QUARREL_BIN" info --help >/dev/null 2>&1; then
    "$QUARREL_BIN" info "$out" >"$TMP/info" || fail "quarrel info rejects the $type file"
    grep -q "architecture: *llama" "$TMP/info" || fail "info: no llama architecture"
    grep -q "llama.block_count = 2" "$TMP/info" || fail "info: block_count"
    grep -q "vocab size: *512" "$TMP/info" || fail "info: vocab size"
  fi
done
q4=$(stat -c %s "$TMP/tiny-Q4_K_M.gguf"); f16=$(stat -c %s "$TMP/tiny-f16.gguf")
[ "$q4" -lt "$f16" ] || fail "Q4_K_M ($q4) not smaller than F16 ($f16)"

# Determinism through the CLI; the default vocab resolves from the working directory too.
(cd "$QUARREL_SOURCE" && env -u QUARREL_SHARED "$QUARREL_BIN" synth --shape tiny --type Q4_K_M -o "$TMP/again.gguf" \
  --seed 5 --threads 1 >/dev/null) || fail "synth from the source dir (../shared) failed"
cmp -s "$TMP/tiny-Q4_K_M.gguf" "$TMP/again.gguf" || fail "same seed, different bytes"

# Errors.
set +e
expect() {   # expect RC CMD... : exit status RC and exactly one stderr line
  local want=$1; shift
  "$QUARREL_BIN" "$@" >/dev/null 2>"$TMP/err"; local rc=$?
  [ $rc -eq "$want" ] || fail "'$*': exit $rc, want $want ($(cat "$TMP/err"))"
  [ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "'$*': want one stderr line, got: $(cat "$TMP/err")"
}
expect 2 synth --shape nope --type Q8_0 -o "$TMP/x.gguf"
expect 2 synth --shape tiny --type Q9_9 -o "$TMP/x.gguf"
expect 2 synth --shape tiny --type Q8_0
expect 2 synth --shape tiny --type Q8_0 -o "$TMP/x.gguf" --seed abc
expect 2 synth --shape tiny --type Q8_0 -o "$TMP/x.gguf" --threads 0
expect 2 synth --shape tiny --type Q8_0 -o "$TMP/x.gguf" --bogus
expect 2 synth --shape
expect 1 synth --shape tiny --type Q8_0 -o "$TMP/x.gguf" --vocab "$TMP/missing.gguf"
grep -q "missing.gguf" "$TMP/err" || fail "bad vocab message does not name the path: $(cat "$TMP/err")"
expect 1 synth --shape tiny --type Q8_0 -o "$TMP/nodir/x.gguf"
[ ! -e "$TMP/x.gguf" ] || fail "a failed synth left a file"
"$QUARREL_BIN" synth --help | grep -q "mistral-7b" || fail "--help does not list the shapes"
echo ok
