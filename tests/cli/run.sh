#!/usr/bin/env bash
# run.sh — `quarrel run` and `quarrel chat` on stories260K:
#   1. --temp 0 -n 64 on the golden story prompt prints exactly llama.cpp's greedy text
#      (golden/stories260K/story.json greedy_text, 64 tokens) with stats on stderr;
#   2. the same seed gives the same sampled text; --stop never prints the stop string;
#   3. a context smaller than prompt + output stops cleanly, and --context-shift
#      generates all -n tokens;
#   4. chat keeps the KV cache between turns (turn 2 decodes only its new tokens);
#   5. usage errors exit 2, a missing model exits 1 with one line.
set -euo pipefail
BIN=${QUARREL_BIN:-build/quarrel}
SHARED=${QUARREL_SHARED:-../shared}
M=$SHARED/models/stories260K.gguf
G=$SHARED/golden/stories260K/story.json
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

prompt=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["prompt"], end="")' "$G")
python3 -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))["greedy_text"] + "\n")' "$G" > "$TMP/want"

# 1. greedy text, byte for byte
"$BIN" run -m "$M" -p "$prompt" --temp 0 -n 64 -t 2 > "$TMP/got" 2> "$TMP/err"
cmp "$TMP/got" "$TMP/want" || fail "greedy text differs: $(cat "$TMP/got")"
grep -q "prompt: 16 tokens" "$TMP/err" || fail "stats line: $(cat "$TMP/err")"
grep -q "generation: 64 tokens" "$TMP/err" || fail "stats line: $(cat "$TMP/err")"

# 2. seeds and stop strings
a=$("$BIN" run -m "$M" -p "Once upon a time" -n 40 --seed 7 --temp 0.9 2>/dev/null)
b=$("$BIN" run -m "$M" -p "Once upon a time" -n 40 --seed 7 --temp 0.9 -t 1 2>/dev/null)
[ "$a" = "$b" ] || fail "same seed, different text: '$a' vs '$b'"
c=$("$BIN" run -m "$M" -p "$prompt" --temp 0 -n 64 --stop "park" 2>/dev/null)
[ "$c" = " She loved to play outside in the " ] || fail "stop string: '$c'"

# 3. context limits
"$BIN" run -m "$M" -p "$prompt" --temp 0 -n 100 -c 32 > "$TMP/short" 2> "$TMP/err"
grep -q "context full" "$TMP/err" || fail "no context-full message: $(cat "$TMP/err")"
"$BIN" run -m "$M" -p "$prompt" --temp 0 -n 100 -c 32 --context-shift > /dev/null 2> "$TMP/err"
grep -q "generation: 100 tokens" "$TMP/err" || fail "context shift: $(cat "$TMP/err")"

# 4. chat: the second turn reuses the first turn's cache
printf 'Hello\nTell me a story\n' | "$BIN" chat -m "$M" --temp 0 -n 12 -c 256 > "$TMP/chat" 2> "$TMP/err"
grep -c '^> \[turn' "$TMP/err" | grep -qx 2 || fail "chat turns: $(cat "$TMP/err")"
cached=$(grep -o '([0-9]* cached)' "$TMP/err" | sed -n 2p | tr -dc 0-9)
[ "${cached:-0}" -gt 40 ] || fail "turn 2 did not reuse the cache: $(cat "$TMP/err")"

# 5. errors
set +e
"$BIN" run -m "$M" 2> "$TMP/err"; rc=$?
[ $rc -eq 2 ] || fail "missing -p: rc $rc"
"$BIN" run -m /nonexistent.gguf -p x 2> "$TMP/err"; rc=$?
[ $rc -eq 1 ] && [ "$(wc -l < "$TMP/err")" -eq 1 ] || fail "missing model: rc $rc, $(cat "$TMP/err")"
"$BIN" run -m "$M" -p x --temp abc 2> /dev/null; rc=$?
[ $rc -eq 2 ] || fail "bad --temp: rc $rc"
echo "run.sh: ok"
