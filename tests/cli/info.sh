#!/usr/bin/env bash
# info.sh — `quarrel info` on every shared model and vocab file (text and --json), and on
# every bad-GGUF case (exit 1, exactly one line on stderr, nothing on stdout).
# The JSON's architecture and vocab size are compared with an independent Python reading
# of each file (a minimal GGUF key/value parser below) and, for models, with
# ../shared/golden/manifest.json.
set -u
bin=${QUARREL_BIN:?QUARREL_BIN must point at the quarrel binary}
shared=${QUARREL_SHARED:-../shared}
src=${QUARREL_SOURCE:-.}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/quarrel-info.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

check_json() {  # FILE JSON: arch / vocab size as read independently, and the manifest
    python3 - "$1" "$2" "$shared/golden/manifest.json" <<'PY'
import json, os, struct, sys
path, out, manifest = sys.argv[1:4]
j = json.load(open(out))
b = open(path, "rb").read()
pos = 24
n_kv = struct.unpack_from("<Q", b, 16)[0]
SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
def rstr():
    global pos
    n = struct.unpack_from("<Q", b, pos)[0]; pos += 8
    s = b[pos:pos + n]; pos += n
    return s
def skip(t):
    global pos
    if t == 8: return rstr()
    if t == 9:
        et, n = struct.unpack_from("<IQ", b, pos); pos += 12
        items = [skip(et) for _ in range(n)]
        return items
    pos += SIZES[t]
kv = {}
for _ in range(n_kv):
    k = rstr().decode()
    t = struct.unpack_from("<I", b, pos)[0]; pos += 4
    kv[k] = skip(t)
arch = kv.get("general.architecture")
errs = []
if arch is not None and j["architecture"] != arch.decode():
    errs.append(f"arch {j['architecture']} != {arch.decode()}")
ntok = len(kv["tokenizer.ggml.tokens"]) if "tokenizer.ggml.tokens" in kv else None
if j["tokenizer"]["vocab_size"] != ntok:
    errs.append(f"vocab size {j['tokenizer']['vocab_size']} != {ntok}")
if j["size"] != os.path.getsize(path) or j["n_kv"] != n_kv:
    errs.append("size or n_kv mismatch")
m = json.load(open(manifest))
for e in m["models"] + m["real_models"]:
    if e["file"] == os.path.basename(path):
        if j["architecture"] != e["arch"]: errs.append(f"manifest arch {e['arch']}")
        if "n_vocab" in e and j["tokenizer"]["vocab_size"] != e["n_vocab"]: errs.append("manifest n_vocab")
        if "tensor_types" in e and j["n_tensors"] != len(e["tensor_types"]): errs.append("manifest tensor count")
        if "tensors" in j and "tensor_types" in e and {t["name"]: t["type"].upper() for t in j["tensors"]} != \
                {k: v.upper() for k, v in e.get("tensor_types", {}).items()}:
            errs.append("manifest tensor types")
if errs:
    print("; ".join(errs)); sys.exit(1)
PY
}

n=0
for f in "$shared"/models/*.gguf "$shared"/vocab/*.gguf; do
    n=$((n + 1))
    "$bin" info "$f" >"$tmp/out.txt" 2>"$tmp/err.txt" || { fail "info $f: exit $?: $(cat "$tmp/err.txt")"; continue; }
    grep -q '^architecture:' "$tmp/out.txt" || fail "info $f: no architecture line"
    "$bin" info "$f" --json --tensors >"$tmp/out.json" 2>"$tmp/err.txt" || { fail "info --json $f: exit $?"; continue; }
    python3 -c 'import json,sys; json.load(sys.stdin)' <"$tmp/out.json" || { fail "info --json $f: invalid JSON"; continue; }
    msg=$(check_json "$f" "$tmp/out.json") || fail "info --json $f: $msg"
done
[ $n -ge 38 ] || fail "only $n shared files found under $shared"

b=0
while IFS=$'\t' read -r name expect; do
    b=$((b + 1))
    f=$src/tests/data/bad-gguf/$name
    "$bin" info "$f" >"$tmp/out.txt" 2>"$tmp/err.txt"
    rc=$?
    lines=$(wc -l <"$tmp/err.txt")
    [ $rc -eq 1 ] || fail "$name: exit $rc, expected 1"
    [ "$lines" -eq 1 ] || fail "$name: $lines stderr lines, expected 1"
    [ -s "$tmp/out.txt" ] && fail "$name: wrote to stdout"
    grep -qF "quarrel info: $f: " "$tmp/err.txt" || fail "$name: stderr lacks 'quarrel info: FILE: ': $(cat "$tmp/err.txt")"
    grep -qF -- "$expect" "$tmp/err.txt" || fail "$name: stderr lacks '$expect'"
done <"$src/tests/data/bad-gguf/expect.txt"
[ $b -ge 30 ] || fail "only $b bad cases"

"$bin" info >/dev/null 2>&1; [ $? -eq 2 ] || fail "no MODEL: expected exit 2"
"$bin" info --bogus x >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown option: expected exit 2"
"$bin" info "$tmp/missing.gguf" 2>"$tmp/err.txt"; [ $? -eq 1 ] || fail "missing file: expected exit 1"

echo "info.sh: $n shared files, $b bad files, $fails failures"
[ $fails -eq 0 ]
