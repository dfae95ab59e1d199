#!/usr/bin/env python3
"""gen_tokenize_text.py — writes the tokenizer benchmark text: exactly 1 MiB (1048576
bytes) of valid UTF-8 built from the lines of bench/tokenize_seed.txt (prose in several
languages and scripts, code, numbers, emoji), picked and lightly varied by a fixed LCG, so
that every run writes the same bytes.

usage: gen_tokenize_text.py OUT [SIZE]"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
out_path = sys.argv[1]
size = int(sys.argv[2]) if len(sys.argv) > 2 else 1 << 20
lines = open(os.path.join(here, "tokenize_seed.txt"), encoding="utf-8").read().split("\n")

state = 0x2545F491
def rnd(n):
    global state
    state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
    return (state >> 33) % n

buf = bytearray()
while len(buf) < size:
    line = lines[rnd(len(lines))]
    r = rnd(8)
    if r == 0:
        line = line.upper()
    elif r == 1:
        line = f"{line} {rnd(100000)}"
    buf += (line + "\n").encode("utf-8")

# cut at a character boundary, then pad with ASCII to the exact size
cut = size
while cut > 0 and (buf[cut] & 0xC0) == 0x80:
    cut -= 1
data = bytes(buf[:cut]) + b"." * (size - cut)
data.decode("utf-8")
open(out_path, "wb").write(data)
