"""gguf_tensors.py — a minimal GGUF reader for the shell tests: the tensor table
(name, ne, ggml type) after skipping every key/value, and the block sizes of the
types the test models use. Independent of Quarrel's own parser (src/gguf), so tests can
check what the C code reports against the file itself. Not a general GGUF library:
no tensor data, no validation beyond what struct raises on a short file."""
import struct

# ggml type -> (block elements, block bytes), for the types a test model may use
TYPES = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24),
         8: (32, 34), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210)}
# GGUF metadata value type -> bytes (8 = string and 9 = array are walked)
SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def tensors(path):
    """[(name, ne, type)] of the GGUF file at path, in file order."""
    b = open(path, "rb").read()
    pos = 24

    def skip_str():
        nonlocal pos
        pos += 8 + struct.unpack_from("<Q", b, pos)[0]

    def skip(t):
        nonlocal pos
        if t == 8:
            skip_str()
        elif t == 9:
            et, n = struct.unpack_from("<IQ", b, pos)
            pos += 12
            for _ in range(n):
                skip(et)
        else:
            pos += SIZES[t]

    n_tensors, n_kv = struct.unpack_from("<QQ", b, 8)
    for _ in range(n_kv):
        skip_str()
        t = struct.unpack_from("<I", b, pos)[0]
        pos += 4
        skip(t)
    out = []
    for _ in range(n_tensors):
        n = struct.unpack_from("<Q", b, pos)[0]
        name = b[pos + 8:pos + 8 + n].decode()
        pos += 8 + n
        nd = struct.unpack_from("<I", b, pos)[0]
        ne = list(struct.unpack_from("<%dQ" % nd, b, pos + 4))
        t = struct.unpack_from("<I", b, pos + 4 + 8 * nd)[0]
        pos += 4 + 8 * nd + 4 + 8
        out.append((name, ne, t))
    return out
