#!/usr/bin/env python3
"""make_vocab_seeds.py — writes the seed corpus of fuzz_vocab (tests/fuzz/corpus/fuzz_vocab/):
small crafted tokenizer-only GGUF files (v3, no tensors), one per vocab shape, plus shrunken
versions of hostile vocabs a review found. Deterministic, standard library only.

GGUF v3 layout written here (little endian):
  0   "GGUF"          magic
  4   u32 3           version
  8   u64 0           tensor count
  16  u64 n_kv        then n_kv of: key (u64 len + bytes), u32 type, value
  value: u8/i32/u32/f32/bool/u64 as is; string = u64 len + bytes;
         array = u32 elem type, u64 n, n elems
Usage: tests/fuzz/make_vocab_seeds.py [OUT_DIR]
"""
import os
import struct
import sys

U8, I32, U32, F32, BOOL, STR, ARR, U64 = 0, 5, 4, 6, 7, 8, 9, 10


def s(b):
    if isinstance(b, str):
        b = b.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def val(t, v):
    if t == STR:
        return s(v)
    fmt = {U8: "<B", I32: "<i", U32: "<I", F32: "<f", BOOL: "<?", U64: "<Q"}[t]
    return struct.pack(fmt, v)


def gguf(kvs):
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs))
    for key, t, v in kvs:
        out += s(key) + struct.pack("<I", t)
        if t == ARR:
            et, items = v
            out += struct.pack("<IQ", et, len(items)) + b"".join(val(et, x) for x in items)
        else:
            out += val(t, v)
    return out


K = "tokenizer.ggml."


def spm():
    toks = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    toks += ["\u2581", "\u2581H", "ello", "\u2581w", "or", "ld", "!", "\u2581Hello", "\u2581world", "ab", "\u2581\u2581"]
    types = [2, 3, 3] + [6] * 256 + [1] * 11
    scores = [0.0] * 259 + [-float(i) for i in range(11)]
    return gguf([(K + "model", STR, "llama"), (K + "tokens", ARR, (STR, toks)),
                 (K + "scores", ARR, (F32, scores)), (K + "token_type", ARR, (I32, types)),
                 (K + "bos_token_id", U32, 1), (K + "eos_token_id", U32, 2), (K + "unknown_token_id", U32, 0),
                 (K + "add_bos_token", BOOL, True)])


def byte_map():
    """GPT-2's bytes_to_unicode: printable bytes keep their codepoint, the others 256+."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    m, extra = {}, 0
    for b in range(256):
        if b in keep:
            m[b] = chr(b)
        else:
            m[b] = chr(256 + extra)
            extra += 1
    return m


def bpe(pre="gpt-2", extra_tokens=(), name="bpe"):
    m = byte_map()
    toks = [m[b] for b in range(256)]
    merges = ["H e", "l l", "He ll", "Hell o", "\u0120 w", "o r", "\u0120w or", "l d", "\u0120wor ld", "1 2"]
    for mg in merges:
        a, b = mg.split(" ")
        toks.append(a + b)
    toks += ["<|endoftext|>"] + list(extra_tokens)
    types = [1] * (len(toks) - 1 - len(extra_tokens)) + [3] + [1] * len(extra_tokens)
    return gguf([(K + "model", STR, "gpt2"), (K + "pre", STR, pre), (K + "tokens", ARR, (STR, toks)),
                 (K + "token_type", ARR, (I32, types)), (K + "merges", ARR, (STR, merges)),
                 (K + "bos_token_id", U32, len(toks) - 1 - len(extra_tokens))])


def wpm(extra_tokens=()):
    toks = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "\u2581hello", "\u2581world", "!", "\u2581ab", "12",
            "\u2581", ",", "3", "\u2581caf", "e", "\u4e2d", "\u6587", "x"] + list(extra_tokens)
    return gguf([(K + "model", STR, "bert"), (K + "tokens", ARR, (STR, toks)),
                 (K + "token_type", ARR, (I32, [3, 2, 3, 3, 3] + [1] * (len(toks) - 5))),
                 (K + "unknown_token_id", U32, 1), (K + "cls_token_id", U32, 2), (K + "seperator_token_id", U32, 3),
                 (K + "padding_token_id", U32, 0)])


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "fuzz_vocab")
    os.makedirs(out, exist_ok=True)
    cjk = "\u4e00" * 2000  # 6000 bytes, none of it in the byte map: "[UNK_BYTE_..]" pieces
    seeds = {
        "spm.gguf": spm(),
        "bpe_gpt2.gguf": bpe(),
        "bpe_llama3.gguf": bpe(pre="llama3"),
        "wpm.gguf": wpm(),
        # shrunken /tmp/rv/cjk_many: long BPE normal tokens of unmapped codepoints (the
        # pieces used to grow quadratically: a 20 KB token took 573 MB)
        "bpe_cjk_long.gguf": bpe(extra_tokens=(cjk, cjk + "a", cjk + "b")),
        # one token just over the 64 KiB limit: a clean Q_ERR_LIMIT
        "bpe_token_too_long.gguf": bpe(extra_tokens=("x" * (64 * 1024 + 1),)),
        # WordPiece with a long token: the match loop must not try every length
        "wpm_long_token.gguf": wpm(extra_tokens=("\u2581hello" + "o" * 300, "a" * 200)),
    }
    for name, data in sorted(seeds.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
