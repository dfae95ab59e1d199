/* gguf_priv.h — what the GGUF reader and writer share privately: the reader's owned
 * state behind gguf_file.priv, the key hash, and a byte-safe printer for names that
 * come from untrusted files. Not part of the public API. */
#ifndef QUARREL_GGUF_PRIV_H
#define QUARREL_GGUF_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "quarrel/gguf.h"

/* One owned allocation of a gguf_file (kv/tensor tables, string-array indexes, nested
 * array items); all are freed together by gguf_close. */
typedef struct gguf_alloc {
    struct gguf_alloc *next;
    max_align_t        data[];
} gguf_alloc;

/* Open-addressing index: slot holds (index + 1), 0 = empty; cap is a power of two.
 * The hash is seeded per index (from the clock and addresses), so a file cannot be
 * crafted to collide every key into one probe chain; a chain longer than
 * GGUF_INDEX_MAX_PROBE is rejected anyway, which bounds the build at O(n) work. */
typedef struct gguf_index {
    uint64_t *slots;
    uint64_t  cap;
    uint64_t  seed;
} gguf_index;

#define GGUF_INDEX_MAX_PROBE 512

struct gguf_priv {
    void       *map;        /* mmap'ed file, NULL for gguf_open_buffer */
    size_t      map_size;
    gguf_alloc *allocs;     /* everything else the file owns */
    gguf_index  kv_index;   /* key -> index into kv[] */
    gguf_index  t_index;    /* tensor name -> index into tensors[] */
};

/* Seeded FNV-1a over n bytes, finished with a 64-bit avalanche mix. */
uint64_t gguf_hash_bytes(uint64_t seed, const void *p, uint64_t n);

/* Writes at most cap-1 bytes of s into buf, NUL-terminated, escaping non-printable bytes
 * as \xNN and eliding the middle past ~80 chars: for error messages. Returns buf. */
char *gguf_str_print(gguf_str s, char *buf, size_t cap);

#endif
