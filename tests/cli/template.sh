#!/usr/bin/env bash
# template.sh — `quarrel template` on real chat-template case files from
# $QUARREL_SHARED/chat-templates: stdout must equal the case's `expected` (what Python
# jinja2 rendered) byte for byte; a template that raises must exit 1 with the message
# on stderr and nothing on stdout; usage errors exit 2.
set -euo pipefail
BIN=${QUARREL_BIN:-build/quarrel}
CASES=${QUARREL_SHARED:-../shared}/chat-templates
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0

# Writes $TMP/<name>/{template.jinja,messages.json,tools.json?,expected,args} for a case.
prepare() {
    python3 - "$CASES/$1.json" "$TMP/$1" <<'PY'
import json, os, sys
c = json.load(open(sys.argv[1], encoding="utf-8"))
d = sys.argv[2]
os.makedirs(d, exist_ok=True)
open(os.path.join(d, "template.jinja"), "w", encoding="utf-8", newline="").write(c["template"])
json.dump(c["messages"], open(os.path.join(d, "messages.json"), "w", encoding="utf-8"), ensure_ascii=False)
args = ["--template-file", os.path.join(d, "template.jinja"), "--messages", os.path.join(d, "messages.json"),
        "--bos", c["bos_token"], "--eos", c["eos_token"], "--date", "2026-01-15"]
if c["tools"] is not None:
    json.dump(c["tools"], open(os.path.join(d, "tools.json"), "w", encoding="utf-8"), ensure_ascii=False)
    args += ["--tools", os.path.join(d, "tools.json")]
if not c["add_generation_prompt"]:
    args.append("--no-generation-prompt")
for k, v in (c.get("extra_context") or {}).items():
    args += ["--var", k + "=" + json.dumps(v, ensure_ascii=False)]
open(os.path.join(d, "args"), "wb").write(b"\0".join(a.encode("utf-8") for a in args))
if c.get("expected_error"):
    open(os.path.join(d, "error"), "w", encoding="utf-8").write(c["error"])
else:
    open(os.path.join(d, "expected"), "w", encoding="utf-8", newline="").write(c["expected"])
PY
}

run_case() {
    local name=$1 dir="$TMP/$1"
    prepare "$name"
    local -a args
    mapfile -d '' args < "$dir/args"
    set +e
    "$BIN" template "${args[@]}" > "$dir/out" 2> "$dir/err"
    local rc=$?
    set -e
    if [[ -f "$dir/expected" ]]; then
        if [[ $rc -ne 0 ]] || ! cmp -s "$dir/out" "$dir/expected"; then
            echo "FAIL $name: rc=$rc $(head -c 300 "$dir/err")"
            cmp "$dir/out" "$dir/expected" || true
            fail=1
        else
            echo "ok   $name"
        fi
    else
        local want
        want=$(cat "$dir/error")
        if [[ $rc -ne 1 ]] || [[ -s "$dir/out" ]] || ! grep -qF "${want}" "$dir/err"; then
            echo "FAIL $name: rc=$rc, stderr: $(cat "$dir/err"), want: $want"
            fail=1
        else
            echo "ok   $name (error)"
        fi
    fi
}

run_case meta-llama-llama-3-2-3b-instruct--tools            # strftime_now, tools, tojson(indent=4)
run_case meta-llama-llama-3-1-8b-instruct--unicode
run_case fireworks-ai-llama-3-firefunction-v2-b9553--tools  # extra variables via --var
run_case qwen-qwen3-0-6b--conv6-nogen                        # --no-generation-prompt
run_case openai-gpt-oss-120b--tools
run_case tc-google-gemma-7b-it--conv6                        # raise_exception -> exit 1
run_case google-gemma-2-2b-it--unicode

# -m: the template and the bos/eos texts come from a GGUF (written here with python3:
# GGUF v3, no tensors, metadata only).
python3 - "$TMP/chat.gguf" <<'PY'
import struct, sys
def s(x): b = x.encode(); return struct.pack("<Q", len(b)) + b
kvs = [("general.architecture", 8, s("llama")),
       ("tokenizer.chat_template", 8, s("{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}")),
       ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 3) + s("<unk>") + s("<s>") + s("</s>")),
       ("tokenizer.ggml.bos_token_id", 4, struct.pack("<I", 1)),
       ("tokenizer.ggml.eos_token_id", 4, struct.pack("<I", 2))]
out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs))
for k, t, v in kvs: out += s(k) + struct.pack("<I", t) + v
out += b"\0" * (-len(out) % 32)
open(sys.argv[1], "wb").write(out)
PY
echo '[{"role": "user", "content": "Hi"}]' > "$TMP/hi.json"
set +e
"$BIN" template -m "$TMP/chat.gguf" --messages "$TMP/hi.json" > "$TMP/m.out" 2> "$TMP/m.err"; rc=$?
set -e
if [[ $rc -ne 0 ]] || [[ "$(cat "$TMP/m.out")" != "<s><user>Hi</s><assistant>" ]]; then
    echo "FAIL -m: rc=$rc out=$(cat "$TMP/m.out") err=$(cat "$TMP/m.err")"; fail=1
else
    echo "ok   -m"
fi
# A model without a chat template is an error (exit 1), not a silent fallback.
set +e
"$BIN" template -m "$CASES/../models/llama-2-tiny-random.gguf" --messages "$TMP/hi.json" > /dev/null 2> "$TMP/m.err"; rc=$?
set -e
if [[ $rc -ne 1 ]] || ! grep -q "no tokenizer.chat_template" "$TMP/m.err"; then echo "FAIL -m without template: rc=$rc"; fail=1; fi

# Usage errors exit 2.
set +e
"$BIN" template --messages /dev/null > /dev/null 2>&1; rc=$?
set -e
if [[ $rc -ne 2 ]]; then echo "FAIL usage: rc=$rc, want 2"; fail=1; fi

# A template syntax error exits 1.
printf '{%% if x %%}unclosed' > "$TMP/bad.jinja"
echo '[]' > "$TMP/empty.json"
set +e
"$BIN" template --template-file "$TMP/bad.jinja" --messages "$TMP/empty.json" > "$TMP/out" 2> "$TMP/err"; rc=$?
set -e
if [[ $rc -ne 1 ]] || ! grep -q "TemplateSyntaxError" "$TMP/err"; then echo "FAIL syntax error: rc=$rc $(cat "$TMP/err")"; fail=1; fi

exit $fail
