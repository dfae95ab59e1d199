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

check_all_json() {  # LIST (file<TAB>json): arch / vocab size read independently, and the manifest
    python3 - "$1" "$shared/golden/manifest.json" <<'PY'
import json, os, struct, sys

SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

def read_kvs(b):
    """A minimal GGUF key/value reader: {key: value}, strings as bytes, arrays as lists."""
    pos = 24
    def rstr():
        nonlocal pos
        n = struct.unpack_from("<Q", b, pos)[0]
        pos += 8 + n
        return b[pos - n:pos]
    def value(t):
        nonlocal pos
        if t == 8:
            return rstr()
        if t == 9:
            et, n = struct.unpack_from("<IQ", b, pos)
            pos += 12
            return [value(et) for _ in range(n)]
        pos += SIZES[t]
    kv = {}
    for _ in range(struct.unpack_from("<Q", b, 16)[0]):
        k = rstr().decode()
        t = struct.unpack_from("<I", b, pos)[0]
        pos += 4
        kv[k] = value(t)
    return kv

def check(path, out, manifest):
    try:
        j = json.load(open(out))
    except ValueError as e:
        return [f"invalid JSON: {e}"]
    kv = read_kvs(open(path, "rb").read())
    errs = []
    arch = kv.get("general.architecture")
    if arch is not None and j["architecture"] != arch.decode():
        errs.append(f"arch {j['architecture']} != {arch.decode()}")
    ntok = len(kv["tokenizer.ggml.tokens"]) if "tokenizer.ggml.tokens" in kv else None
    if j["tokenizer"]["vocab_size"] != ntok:
        errs.append(f"vocab size {j['tokenizer']['vocab_size']} != {ntok}")
    if j["size"] != os.path.getsize(path) or j["n_kv"] != len(kv):
        errs.append("size or n_kv mismatch")
    for e in manifest["models"] + manifest["real_models"]:
        if e["file"] != os.path.basename(path):
            continue
        if j["architecture"] != e["arch"]:
            errs.append(f"manifest arch {e['arch']}")
        if "n_vocab" in e and j["tokenizer"]["vocab_size"] != e["n_vocab"]:
            errs.append("manifest n_vocab")
        if "tensor_types" in e:
            got = {t["name"]: t["type"].upper() for t in j["tensors"]}
            if got != {k: v.upper() for k, v in e["tensor_types"].items()}:
                errs.append("manifest tensor types")
    return errs

manifest = json.load(open(sys.argv[2]))
bad = 0
for line in open(sys.argv[1]):
    path, out = line.rstrip("\n").split("\t")
    errs = check(path, out, manifest)
    if errs:
        print(f"FAIL: info --json {path}: {'; '.join(errs)}")
        bad += 1
sys.exit(1 if bad else 0)
PY
}

n=0
for f in "$shared"/models/*.gguf "$shared"/vocab/*.gguf; do
    n=$((n + 1))
    "$bin" info "$f" >"$tmp/out.txt" 2>"$tmp/err.txt" || { fail "info $f: exit $?: $(cat "$tmp/err.txt")"; continue; }
    grep -q '^architecture:' "$tmp/out.txt" || fail "info $f: no architecture line"
    "$bin" info "$f" --json --tensors >"$tmp/$n.json" 2>"$tmp/err.txt" || { fail "info --json $f: exit $?"; continue; }
    printf '%s\t%s\n' "$f" "$tmp/$n.json" >>"$tmp/list.txt"
done
# One Python run for every file: the interpreter's start-up dominates otherwise.
check_all_json "$tmp/list.txt" || fails=$((fails + 1))
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
