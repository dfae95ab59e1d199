#!/usr/bin/env python3
"""make_bad.py — writes the bad-GGUF corpus (one small file per validation rule of
src/gguf/gguf_read.c) and its manifest expect.txt, plus the valid seed files of the GGUF
fuzz target. Python 3 standard library only; output is deterministic.

    tests/data/bad-gguf/make_bad.py            # rewrites tests/data/bad-gguf/*.gguf,
                                               # expect.txt and tests/fuzz/corpus/fuzz_gguf/

expect.txt: `file<TAB>substring of the expected error message`. The GGUF encoding here is
written from the format description (little-endian, u64 string lengths), independently
of the C reader, so the valid files double as reader test vectors (tests/test_gguf.c
checks their values)."""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus", "fuzz_gguf")
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared"))

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR_FMT = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f",
              BOOL: "B", U64: "Q", I64: "q", F64: "d"}
T_F32, T_F16, T_Q4_0, T_Q8_0, T_Q4_K = 0, 1, 2, 8, 12


def u32(v): return struct.pack("<I", v)
def u64(v): return struct.pack("<Q", v)
def gstr(b): return u64(len(b)) + b


def header(n_tensors, n_kv, version=3):
    return b"GGUF" + u32(version) + u64(n_tensors) + u64(n_kv)


def val(t, v):
    """Encodes a value payload (no type tag). Arrays: v = (elem_type, [items])."""
    if t == STR:
        return gstr(v)
    if t == ARR:
        et, items = v
        return u32(et) + u64(len(items)) + b"".join(val(et, x) for x in items)
    return struct.pack("<" + SCALAR_FMT[t], v)


def kv(key, t, v):
    return gstr(key) + u32(t) + val(t, v)


def tinfo(name, ne, ttype, off):
    return gstr(name) + u32(len(ne)) + b"".join(u64(x) for x in ne) + u32(ttype) + u64(off)


def pad(b, align=32):
    return b + b"\0" * ((-len(b)) % align)


def gguf(kvs, tensors=(), align=32, version=3, data=None):
    """A valid file: kvs = [(key, type, value)], tensors = [(name, ne, type, nbytes)],
    data laid out back to back, each padded to align (gguf-py's rule)."""
    body = header(len(tensors), len(kvs), version) + b"".join(kv(k, t, v) for k, t, v in kvs)
    off, infos, blob = 0, b"", b""
    for i, (name, ne, tt, nbytes) in enumerate(tensors):
        infos += tinfo(name, ne, tt, off)
        chunk = bytes((i * 7 + j) & 0xFF for j in range(nbytes)) if data is None else data[i]
        blob += pad(chunk, align)
        off += len(pad(chunk, align))
    out = body + infos
    if tensors:
        out = pad(out, align) + blob
    return out


def one_tensor_file(name=b"w", ne=(8,), ttype=T_F32, off=0, nbytes=32, kvs=(), extra=b""):
    """A file with one hand-placed tensor info and nbytes of data."""
    body = header(1, len(kvs)) + b"".join(kv(k, t, v) for k, t, v in kvs)
    return pad(body + tinfo(name, list(ne), ttype, off)) + b"\x11" * nbytes + extra


def cases():
    ok_kv = kv(b"general.architecture", STR, b"llama")
    c = []  # (file, bytes, expected substring)
    add = lambda f, b, e: c.append((f, b, e))

    add("bad_magic.gguf", b"GGUX" + header(0, 0)[4:], "bad magic 47 47 55 58 (not a GGUF file) in header at offset 0")
    add("too_short.gguf", b"GGU", "not a GGUF file: only 3 bytes")
    add("empty_file.gguf", b"", "not a GGUF file: only 0 bytes in header at offset 0")
    add("version1.gguf", header(0, 0, version=1), "GGUF version 1 is not supported (re-convert the model) in header at offset 4")
    add("version99.gguf", header(0, 0, version=99), "unsupported GGUF version 99 (expected 2 or 3) in header at offset 4")
    add("big_endian.gguf", b"GGUF" + struct.pack(">IQQ", 3, 0, 1) + gstr(b"a")[::-1] + b"a",
        "big-endian GGUF file (version 3 byte-swapped)")
    add("truncated_header.gguf", header(0, 1)[:20], "truncated file: key/value count needs 8 bytes, only 4 left in header at offset 16")
    add("n_kv_absurd.gguf", header(0, 1 << 62) + ok_kv, "key/value count 4611686018427387904 cannot fit")
    add("n_tensors_absurd.gguf", header(1 << 40, 1) + ok_kv, "tensor count 1099511627776 cannot fit")
    # key at 24, 8 + 3 bytes, u32 type: the value starts at 39
    add("truncated_value.gguf", header(0, 1) + gstr(b"a.b") + u32(U32) + b"\1\2",
        "truncated file: value needs 4 bytes, only 2 left in key 'a.b' at offset 39")
    add("key_past_end.gguf", header(0, 1) + u64(100) + b"abc" + b"\0" * 17, "key length 100 runs past the end of the file (20 bytes left) in key/value #0 at offset 24")
    add("string_past_end.gguf", header(0, 1) + gstr(b"k") + u32(STR) + u64(50) + b"short",
        "string value length 50 runs past the end")
    add("array_count_absurd.gguf", header(0, 1) + gstr(b"k") + u32(ARR) + u32(U32) + u64(1000) + b"\0" * 16,
        "array of 1000 u32 elements cannot fit in the 16 bytes left in key 'k'")
    add("array_string_past_end.gguf", header(0, 1) + gstr(b"k") + u32(ARR) + u32(STR) + u64(2) + gstr(b"x") + u64(99) + b"\0" * 8,
        "array string length 99 runs past the end")
    add("unknown_value_type.gguf", header(0, 1) + gstr(b"k") + u32(13) + u32(0), "unknown value type 13 in key 'k' at offset 33")
    add("unknown_array_type.gguf", header(0, 1) + gstr(b"k") + u32(ARR) + u32(42) + u64(0), "unknown array element type 42 in key 'k' at offset 37")
    add("bad_bool.gguf", header(0, 1) + gstr(b"k") + u32(BOOL) + b"\2",
        "invalid bool byte 0x02 (must be 0 or 1) in key 'k' at offset 37")
    add("bad_bool_array.gguf", header(0, 1) + gstr(b"k") + u32(ARR) + u32(BOOL) + u64(3) + b"\0\1\7",
        "invalid bool byte 0x07 (must be 0 or 1) in key 'k' at offset 51")
    deep = u32(U8) + u64(0)
    for _ in range(9):
        deep = u32(ARR) + u64(1) + deep
    add("nested_too_deep.gguf", header(0, 1) + gstr(b"k") + u32(ARR) + deep, "arrays nested deeper than 8 levels in key 'k'")
    add("nested_count_absurd.gguf", header(0, 1) + gstr(b"k") + u32(ARR) + u32(ARR) + u64(1 << 50) + b"\0" * 24,
        "array of 1125899906842624 array elements cannot fit")
    add("duplicate_key.gguf", header(0, 2) + kv(b"a.b", U32, 1) + kv(b"a.b", U32, 2), "duplicate key (first at offset 24) in key 'a.b' at offset 43")
    add("empty_key.gguf", header(0, 1) + kv(b"", U32, 1), "empty key in key/value #0 at offset 24")
    add("key_too_long.gguf", header(0, 1) + u64((1 << 20) + 1) + b"x" * 64, "key length 1048577 exceeds the limit of 1048576 bytes")
    add("alignment_wrong_type.gguf", header(0, 1) + kv(b"general.alignment", U64, 32), "general.alignment must be a u32, not u64")
    add("alignment_not_pow2.gguf", header(0, 1) + kv(b"general.alignment", U32, 48), "general.alignment 48 is not a nonzero power of two")
    add("alignment_zero.gguf", header(0, 1) + kv(b"general.alignment", U32, 0), "general.alignment 0 is not a nonzero power of two")
    add("empty_tensor_name.gguf", one_tensor_file(name=b""), "empty tensor name in tensor info #0 at offset 24")
    add("tensor_name_too_long.gguf", header(1, 0) + u64(70000) + b"x" * 64, "tensor name length 70000 exceeds the limit of 65536 bytes")
    add("duplicate_tensor.gguf",
        pad(header(2, 0) + tinfo(b"w", [8], T_F32, 0) + tinfo(b"w", [8], T_F32, 32)) + b"\0" * 64,
        "duplicate tensor name (first is tensor #0) in tensor 'w'")
    add("n_dims_zero.gguf", one_tensor_file(ne=()), "n_dims 0 is not in 1..4 in tensor 'w' at offset 33")
    add("n_dims_five.gguf", one_tensor_file(ne=(1, 1, 1, 1, 8)), "n_dims 5 is not in 1..4 in tensor 'w'")
    add("dim_zero.gguf", one_tensor_file(ne=(8, 0)), "dimension 1 is 0 (must be 1..INT64_MAX) in tensor 'w' at offset 45")
    add("dim_negative.gguf", one_tensor_file(ne=(8, (1 << 64) - 1)), "dimension 1 is 18446744073709551615")
    add("elem_count_overflow.gguf", one_tensor_file(ne=(1 << 40, 1 << 40)), "element count overflows 64 bits in tensor 'w'")
    add("byte_size_overflow.gguf", one_tensor_file(ne=(1 << 31, 1 << 31)), "byte size overflows 64 bits in tensor 'w'")
    add("unknown_tensor_type.gguf", one_tensor_file(ttype=4), "unknown tensor type 4 in tensor 'w' at offset 45")
    add("unknown_tensor_type_big.gguf", one_tensor_file(ttype=0xFFFFFFFF), "unknown tensor type 4294967295")
    add("row_not_block_multiple.gguf", one_tensor_file(ne=(33,), ttype=T_Q4_0), "row length 33 is not a multiple of q4_0's block size 32")
    add("tensor_misaligned.gguf", one_tensor_file(off=4, nbytes=64), "data offset 4 is not a multiple of the alignment 32")
    add("tensor_past_end.gguf", one_tensor_file(ne=(16,), nbytes=32), "data [0, +64 bytes) lies outside the file (data section has 32 bytes) in tensor 'w'")
    add("tensor_offset_past_end.gguf", one_tensor_file(off=1 << 40), "lies outside the file")
    add("tensor_overlap.gguf",
        pad(header(2, 0) + tinfo(b"a", [16], T_F32, 0) + tinfo(b"b", [8], T_F32, 32)) + b"\0" * 64,
        "data overlaps tensor 'a' in tensor 'b'")
    add("truncated_tensor_info.gguf", header(1, 0) + gstr(b"w") + u32(4) + u64(8) * 3, "truncated file: dimension needs 8 bytes, only 0 left in tensor 'w' at offset 61")
    add("data_section_past_end.gguf", header(1, 0) + tinfo(b"w", [8], T_F32, 0), "data section starts at 64 past the end")
    return c


def valid_files():
    """Small valid files: reader test vectors and fuzz seeds."""
    f = {}
    f["all_types.gguf"] = gguf([
        (b"general.architecture", STR, b"testarch"),
        (b"t.u8", U8, 200), (b"t.i8", I8, -100), (b"t.u16", U16, 60000), (b"t.i16", I16, -30000),
        (b"t.u32", U32, 4000000000), (b"t.i32", I32, -2000000000), (b"t.f32", F32, 1.5),
        (b"t.bool", BOOL, 1), (b"t.str", STR, "héllo".encode()), (b"t.empty_str", STR, b""),
        (b"t.u64", U64, 1 << 63), (b"t.i64", I64, -(1 << 62)), (b"t.f64", F64, -2.25),
        (b"t.arr_i32", ARR, (I32, [1, -2, 3])), (b"t.arr_str", ARR, (STR, [b"a", b"", b"ccc"])),
        (b"t.arr_empty", ARR, (F32, [])), (b"t.arr_bool", ARR, (BOOL, [1, 0])),
        (b"t.nested", ARR, (ARR, [(U16, [7, 8]), (STR, [b"x"]), (ARR, [])])),
    ], [
        (b"f32", [8], T_F32, 32), (b"f16", [4, 2, 3], T_F16, 48), (b"q8", [64, 2], T_Q8_0, 136),
        (b"q4k", [256], T_Q4_K, 144), (b"q40", [32, 1, 1, 2], T_Q4_0, 36),
    ])
    f["v2_align64.gguf"] = gguf([(b"general.alignment", U32, 64), (b"general.name", STR, b"v2")],
                                [(b"x", [3], T_F32, 12), (b"y", [5], T_F32, 20)], align=64, version=2)
    f["no_tensors.gguf"] = gguf([(b"tokenizer.ggml.tokens", ARR, (STR, [b"<s>", b"</s>", b"a"]))])
    f["empty.gguf"] = gguf([])
    return f


def main():
    expect = []
    for name, data, msg in cases():
        with open(os.path.join(HERE, name), "wb") as fp:
            fp.write(data)
        expect.append(f"{name}\t{msg}\n")
    with open(os.path.join(HERE, "expect.txt"), "w") as fp:
        fp.writelines(expect)
    os.makedirs(CORPUS, exist_ok=True)
    seeds = dict(valid_files())
    for name, data, _ in cases():
        if len(data) <= 4096:
            seeds["bad_" + name] = data
    vocab = os.path.join(SHARED, "vocab", "ggml-vocab-llama-spm.gguf")
    if os.path.exists(vocab):
        with open(vocab, "rb") as fp:
            seeds["vocab_head.gguf"] = fp.read(64 * 1024)
    for name, data in seeds.items():
        with open(os.path.join(CORPUS, name), "wb") as fp:
            fp.write(data)
    for name, data in valid_files().items():
        with open(os.path.join(HERE, "..", "valid-" + name), "wb") as fp:
            fp.write(data)
    print(f"wrote {len(expect)} bad cases, {len(seeds)} fuzz seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
