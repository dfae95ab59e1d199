/* gguf_read.c — GGUF v2/v3 reader and validator (public API in include/quarrel/gguf.h).
 *
 * What it is: a zero-copy parser over a read-only mapping (gguf_open) or caller memory
 * (gguf_open_buffer) that validates the whole file before returning Q_OK, so every
 * pointer and length it hands out is in bounds. What it is not: a loader (no tensor is
 * copied or converted) and not a writer (gguf_write.c).
 * Memory: strings, numeric arrays and tensor data point into the mapping; the kv and
 * tensor tables, string-array indexes (gguf_str[n]) and nested-array items are owned by
 * the gguf_file and freed by gguf_close, which also unmaps.
 *
 * ---- The format (all integers little-endian; there is no implicit alignment) ----
 *
 *   File
 *   offset  size  field
 *   0       4     magic "GGUF" (0x47 0x47 0x55 0x46)
 *   4       4     u32 version: 2 or 3 (1 used u32 counts and is rejected; a byte-swapped
 *                 version means a big-endian file, also rejected)
 *   8       8     u64 n_tensors
 *   16      8     u64 n_kv
 *   24      ...   n_kv key/value pairs
 *   ...     ...   n_tensors tensor infos
 *   ...     ...   zero padding up to the next multiple of ALIGN
 *   D       ...   data section; D is a multiple of ALIGN. A file without tensors may end
 *                 before D (vocab-only files written by gguf-py do).
 *
 *   string       u64 len, then len bytes (UTF-8 expected, not NUL-terminated)
 *
 *   key/value    string key (non-empty, unique), u32 value type, value
 *
 *   value type   size   encoding
 *   0  u8        1
 *   1  i8        1
 *   2  u16       2
 *   3  i16       2
 *   4  u32       4
 *   5  i32       4
 *   6  f32       4      IEEE-754 binary32
 *   7  bool      1      byte 0 or 1, anything else is invalid
 *   8  string    8+len
 *   9  array     4+8+.. u32 element type, u64 count, count elements back to back; the
 *                       element type may itself be array (nested arrays, depth <= 8)
 *   10 u64       8
 *   11 i64       8
 *   12 f64       8      IEEE-754 binary64
 *
 *   tensor info  string name (non-empty, unique)
 *                u32 n_dims (1..4)
 *                u64 ne[n_dims]   ne[0] = row length; each in 1..INT64_MAX; ne[0] a
 *                                 multiple of the type's block size
 *                u32 type         a ggml type id (quarrel/types.h)
 *                u64 offset       of the data, relative to D; a multiple of ALIGN
 *
 *   ALIGN = general.alignment if present (must be a u32, a nonzero power of two), else 32.
 *   Tensor bytes = (ne[0] / block size) * bytes per block * ne[1] * ne[2] * ne[3];
 *   [D + offset, D + offset + bytes) must lie inside the file and not overlap another.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/base.h"
#include "gguf/gguf_priv.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader assumes a little-endian host"
#endif

enum {
    GGUF_MAX_DEPTH       = 8,            /* nested array levels, bounds recursion */
    GGUF_HEADER_SIZE     = 24,
    GGUF_MIN_KV_SIZE     = 8 + 1 + 4 + 1, /* key len, 1-byte key, type, 1-byte value */
    GGUF_MIN_TINFO_SIZE  = 8 + 1 + 4 + 8 + 4 + 8,
};
#define GGUF_MAX_KEY_LEN  (1u << 20)     /* 1 MiB: generous, yet bounds a hostile length */
#define GGUF_MAX_NAME_LEN (1u << 16)     /* tensor names; real ones are < 64 bytes */

/* ---- small shared helpers ---------------------------------------------------------- */

static const char *const vtype_names[GGUF_VT_COUNT] = {
    [GGUF_VT_UINT8] = "u8",   [GGUF_VT_INT8] = "i8",       [GGUF_VT_UINT16] = "u16",
    [GGUF_VT_INT16] = "i16",  [GGUF_VT_UINT32] = "u32",    [GGUF_VT_INT32] = "i32",
    [GGUF_VT_FLOAT32] = "f32", [GGUF_VT_BOOL] = "bool",    [GGUF_VT_STRING] = "string",
    [GGUF_VT_ARRAY] = "array", [GGUF_VT_UINT64] = "u64",   [GGUF_VT_INT64] = "i64",
    [GGUF_VT_FLOAT64] = "f64",
};

static const uint8_t vtype_sizes[GGUF_VT_COUNT] = {
    [GGUF_VT_UINT8] = 1, [GGUF_VT_INT8] = 1,    [GGUF_VT_UINT16] = 2,  [GGUF_VT_INT16] = 2,
    [GGUF_VT_UINT32] = 4, [GGUF_VT_INT32] = 4,  [GGUF_VT_FLOAT32] = 4, [GGUF_VT_BOOL] = 1,
    [GGUF_VT_UINT64] = 8, [GGUF_VT_INT64] = 8,  [GGUF_VT_FLOAT64] = 8,
};

/* Smallest encoding of one element of each type: bounds counts before allocating. */
static const uint8_t vtype_min_sizes[GGUF_VT_COUNT] = {
    [GGUF_VT_UINT8] = 1, [GGUF_VT_INT8] = 1,    [GGUF_VT_UINT16] = 2,  [GGUF_VT_INT16] = 2,
    [GGUF_VT_UINT32] = 4, [GGUF_VT_INT32] = 4,  [GGUF_VT_FLOAT32] = 4, [GGUF_VT_BOOL] = 1,
    [GGUF_VT_STRING] = 8, [GGUF_VT_ARRAY] = 12, [GGUF_VT_UINT64] = 8,  [GGUF_VT_INT64] = 8,
    [GGUF_VT_FLOAT64] = 8,
};

typedef enum { NUM_UINT, NUM_INT, NUM_FLOAT, NUM_BOOL, NUM_NONE } num_kind;

static const num_kind vtype_kinds[GGUF_VT_COUNT] = {
    [GGUF_VT_UINT8] = NUM_UINT, [GGUF_VT_INT8] = NUM_INT,      [GGUF_VT_UINT16] = NUM_UINT,
    [GGUF_VT_INT16] = NUM_INT,  [GGUF_VT_UINT32] = NUM_UINT,   [GGUF_VT_INT32] = NUM_INT,
    [GGUF_VT_FLOAT32] = NUM_FLOAT, [GGUF_VT_BOOL] = NUM_BOOL,  [GGUF_VT_STRING] = NUM_NONE,
    [GGUF_VT_ARRAY] = NUM_NONE, [GGUF_VT_UINT64] = NUM_UINT,   [GGUF_VT_INT64] = NUM_INT,
    [GGUF_VT_FLOAT64] = NUM_FLOAT,
};

const char *gguf_vtype_name(gguf_vtype t) {
    return (unsigned)t < GGUF_VT_COUNT ? vtype_names[t] : "?";
}

size_t gguf_vtype_size(gguf_vtype t) {
    return (unsigned)t < GGUF_VT_COUNT ? vtype_sizes[t] : 0;
}

bool gguf_str_eq(gguf_str s, const char *z) {
    size_t n = strlen(z);
    return s.len == n && (n == 0 || memcmp(s.ptr, z, n) == 0);
}

char *gguf_str_dup(gguf_str s) {
    char *d = q_xmalloc((size_t)s.len + 1);
    if (s.len) memcpy(d, s.ptr, (size_t)s.len);
    d[s.len] = '\0';
    return d;
}

uint64_t gguf_hash_bytes(uint64_t seed, const void *p, uint64_t n) {
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (uint64_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    h ^= seed + n;
    h ^= h >> 33;                       /* murmur3 fmix64: low bits depend on all bits */
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

char *gguf_str_print(gguf_str s, char *buf, size_t cap) {
    Q_ASSERT(cap >= 16);
    const uint64_t keep = 80;            /* chars kept from each long name */
    size_t o = 0;
    for (uint64_t i = 0; i < s.len && o + 8 < cap; i++) {
        if (s.len > 2 * keep && i == keep) {
            o += (size_t)snprintf(buf + o, cap - o, "...");
            i = s.len - keep;
        }
        unsigned char c = (unsigned char)s.ptr[i];
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') buf[o++] = (char)c;
        else o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    }
    buf[o] = '\0';
    return buf;
}

/* ---- element access ------------------------------------------------------------------ */

/* Raw little-endian scalar of type t at p, widened into the value union. */
static void scalar_load(gguf_vtype t, const uint8_t *p, gguf_value *v) {
    uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
    float f32;
    v->type = t;
    switch (t) {
    case GGUF_VT_UINT8:   memcpy(&u8, p, 1);  v->u64 = u8; break;
    case GGUF_VT_INT8:    memcpy(&i8, p, 1);  v->i64 = i8; break;
    case GGUF_VT_UINT16:  memcpy(&u16, p, 2); v->u64 = u16; break;
    case GGUF_VT_INT16:   memcpy(&i16, p, 2); v->i64 = i16; break;
    case GGUF_VT_UINT32:  memcpy(&u32, p, 4); v->u64 = u32; break;
    case GGUF_VT_INT32:   memcpy(&i32, p, 4); v->i64 = i32; break;
    case GGUF_VT_FLOAT32: memcpy(&f32, p, 4); v->f64 = f32; break;
    case GGUF_VT_BOOL:    v->b = p[0] != 0; break;
    case GGUF_VT_UINT64:  memcpy(&v->u64, p, 8); break;
    case GGUF_VT_INT64:   memcpy(&v->i64, p, 8); break;
    case GGUF_VT_FLOAT64: memcpy(&v->f64, p, 8); break;
    default: Q_ASSERT(!"not a scalar type");
    }
}

static gguf_value arr_elem(const gguf_value *arr, uint64_t i) {
    Q_ASSERT(arr->type == GGUF_VT_ARRAY && i < arr->arr.n);
    Q_ASSERT((unsigned)arr->arr.type < GGUF_VT_COUNT && vtype_kinds[arr->arr.type] != NUM_NONE);
    gguf_value v;
    size_t sz = vtype_sizes[arr->arr.type];
    scalar_load(arr->arr.type, (const uint8_t *)arr->arr.data + i * sz, &v);
    return v;
}

static int64_t f64_to_i64(double d) {
    /* Out-of-range or NaN floats have no integer meaning; 0 keeps the cast defined. */
    return d >= -9.2233720368547758e18 && d < 9.2233720368547758e18 ? (int64_t)d : 0;
}

int64_t gguf_arr_i64(const gguf_value *arr, uint64_t i) {
    gguf_value v = arr_elem(arr, i);
    switch (vtype_kinds[v.type]) {
    case NUM_UINT:  return (int64_t)v.u64;
    case NUM_INT:   return v.i64;
    case NUM_FLOAT: return f64_to_i64(v.f64);
    default:        return v.b;
    }
}

uint64_t gguf_arr_u64(const gguf_value *arr, uint64_t i) {
    gguf_value v = arr_elem(arr, i);
    switch (vtype_kinds[v.type]) {
    case NUM_UINT:  return v.u64;
    case NUM_INT:   return (uint64_t)v.i64;
    case NUM_FLOAT: return (uint64_t)f64_to_i64(v.f64);
    default:        return v.b;
    }
}

double gguf_arr_f64(const gguf_value *arr, uint64_t i) {
    gguf_value v = arr_elem(arr, i);
    switch (vtype_kinds[v.type]) {
    case NUM_UINT:  return (double)v.u64;
    case NUM_INT:   return (double)v.i64;
    case NUM_FLOAT: return v.f64;
    default:        return v.b;
    }
}

/* ---- lookup indexes ------------------------------------------------------------------ */

static uint64_t index_cap_for(uint64_t n) {
    uint64_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    return cap;
}

static uint64_t index_seed(const void *salt) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return gguf_hash_bytes((uint64_t)(uintptr_t)salt, &ts, sizeof ts) | 1;
}

/* Returns (index + 1) of the entry named s, or 0. names(i) gives entry i's name. */
typedef gguf_str (*name_of_fn)(const gguf_file *f, uint64_t i);

static gguf_str kv_name(const gguf_file *f, uint64_t i) { return f->kv[i].key; }
static gguf_str tensor_name(const gguf_file *f, uint64_t i) { return f->tensors[i].name; }

static uint64_t index_lookup(const gguf_file *f, const gguf_index *ix, name_of_fn name_of,
                             const char *s, uint64_t n) {
    if (!ix->slots) return 0;
    uint64_t mask = ix->cap - 1;
    for (uint64_t h = gguf_hash_bytes(ix->seed, s, n) & mask;; h = (h + 1) & mask) {
        uint64_t slot = ix->slots[h];
        if (!slot) return 0;
        gguf_str nm = name_of(f, slot - 1);
        if (nm.len == n && memcmp(nm.ptr, s, (size_t)n) == 0) return slot;
    }
}

/* Inserts entry i; returns 0, (index + 1) of an earlier entry with the same name, or
 * UINT64_MAX when the probe chain is pathologically long. */
static uint64_t index_insert(const gguf_file *f, gguf_index *ix, name_of_fn name_of, uint64_t i) {
    gguf_str s = name_of(f, i);
    uint64_t mask = ix->cap - 1, probes = 0;
    for (uint64_t h = gguf_hash_bytes(ix->seed, s.ptr, s.len) & mask;; h = (h + 1) & mask) {
        uint64_t slot = ix->slots[h];
        if (!slot) { ix->slots[h] = i + 1; return 0; }
        if (++probes > GGUF_INDEX_MAX_PROBE) return UINT64_MAX;
        gguf_str nm = name_of(f, slot - 1);
        if (nm.len == s.len && memcmp(nm.ptr, s.ptr, (size_t)s.len) == 0) return slot;
    }
}

const gguf_kv *gguf_find(const gguf_file *f, const char *key) {
    uint64_t slot = index_lookup(f, &f->priv->kv_index, kv_name, key, strlen(key));
    return slot ? &f->kv[slot - 1] : NULL;
}

const gguf_tensor_info *gguf_find_tensor(const gguf_file *f, const char *name) {
    uint64_t slot = index_lookup(f, &f->priv->t_index, tensor_name, name, strlen(name));
    return slot ? &f->tensors[slot - 1] : NULL;
}

/* ---- typed getters ------------------------------------------------------------------- */

static const gguf_value *find_val(const gguf_file *f, const char *key) {
    const gguf_kv *kv = gguf_find(f, key);
    return kv ? &kv->val : NULL;
}

bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out) {
    const gguf_value *v = find_val(f, key);
    if (!v) return false;
    if (vtype_kinds[v->type] == NUM_UINT) { *out = v->u64; return true; }
    if (vtype_kinds[v->type] == NUM_INT && v->i64 >= 0) { *out = (uint64_t)v->i64; return true; }
    return false;
}

bool gguf_get_i64(const gguf_file *f, const char *key, int64_t *out) {
    const gguf_value *v = find_val(f, key);
    if (!v) return false;
    if (vtype_kinds[v->type] == NUM_INT) { *out = v->i64; return true; }
    if (vtype_kinds[v->type] == NUM_UINT && v->u64 <= INT64_MAX) { *out = (int64_t)v->u64; return true; }
    return false;
}

bool gguf_get_f64(const gguf_file *f, const char *key, double *out) {
    const gguf_value *v = find_val(f, key);
    if (!v) return false;
    switch (vtype_kinds[v->type]) {
    case NUM_UINT:  *out = (double)v->u64; return true;
    case NUM_INT:   *out = (double)v->i64; return true;
    case NUM_FLOAT: *out = v->f64; return true;
    default:        return false;
    }
}

bool gguf_get_bool(const gguf_file *f, const char *key, bool *out) {
    const gguf_value *v = find_val(f, key);
    if (!v || v->type != GGUF_VT_BOOL) return false;
    *out = v->b;
    return true;
}

bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out) {
    const gguf_value *v = find_val(f, key);
    if (!v || v->type != GGUF_VT_STRING) return false;
    *out = v->str;
    return true;
}

const gguf_value *gguf_get_arr(const gguf_file *f, const char *key) {
    const gguf_value *v = find_val(f, key);
    return v && v->type == GGUF_VT_ARRAY ? v : NULL;
}

/* ---- the parser ---------------------------------------------------------------------- */

typedef struct parser {
    const uint8_t *base;
    uint64_t       size;
    uint64_t       pos;
    gguf_file     *f;
    q_error       *err;
    char           what[200];   /* "key 'x'", "tensor 'y'", "header": for messages */
} parser;

static void *file_alloc(gguf_file *f, size_t n) {
    gguf_alloc *a = malloc(sizeof *a + (n ? n : 1));
    if (!a) return NULL;
    a->next = f->priv->allocs;
    f->priv->allocs = a;
    return a->data;
}

__attribute__((format(printf, 4, 5)))
static q_status perr(parser *p, q_status s, uint64_t off, const char *fmt, ...) {
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return q_fail(p->err, s, "%s in %s at offset %llu", msg, p->what, (unsigned long long)off);
}

static uint64_t remaining(const parser *p) { return p->size - p->pos; }

/* Ensures n more bytes exist at pos; `field` names them in the message. */
static q_status need(parser *p, uint64_t n, const char *field) {
    if (n <= remaining(p)) return Q_OK;
    return perr(p, Q_ERR_FORMAT, p->pos, "truncated file: %s needs %llu bytes, only %llu left",
                field, (unsigned long long)n, (unsigned long long)remaining(p));
}

static q_status read_u32(parser *p, uint32_t *v, const char *field) {
    q_status s = need(p, 4, field);
    if (s) return s;
    memcpy(v, p->base + p->pos, 4);
    p->pos += 4;
    return Q_OK;
}

static q_status read_u64(parser *p, uint64_t *v, const char *field) {
    q_status s = need(p, 8, field);
    if (s) return s;
    memcpy(v, p->base + p->pos, 8);
    p->pos += 8;
    return Q_OK;
}

/* A string; max_len bounds names (0 = only the file bounds it). */
static q_status read_str(parser *p, gguf_str *out, uint64_t max_len, const char *field) {
    uint64_t at = p->pos, len;
    q_status s = read_u64(p, &len, field);
    if (s) return s;
    if (max_len && len > max_len)
        return perr(p, Q_ERR_LIMIT, at, "%s length %llu exceeds the limit of %llu bytes", field,
                    (unsigned long long)len, (unsigned long long)max_len);
    if (len > remaining(p))
        return perr(p, Q_ERR_FORMAT, at, "%s length %llu runs past the end of the file (%llu bytes left)",
                    field, (unsigned long long)len, (unsigned long long)remaining(p));
    out->ptr = (const char *)p->base + p->pos;
    out->len = len;
    p->pos += len;
    return Q_OK;
}

static q_status parse_value(parser *p, gguf_vtype t, gguf_value *v, int depth);

static q_status check_vtype(parser *p, uint32_t t, uint64_t at, const char *what) {
    if (t < GGUF_VT_COUNT) return Q_OK;
    return perr(p, Q_ERR_FORMAT, at, "unknown %s type %u", what, t);
}

static q_status parse_array(parser *p, gguf_value *v, int depth) {
    if (depth > GGUF_MAX_DEPTH)
        return perr(p, Q_ERR_LIMIT, p->pos, "arrays nested deeper than %d levels", GGUF_MAX_DEPTH);
    uint64_t at = p->pos, n;
    uint32_t et;
    q_status s = read_u32(p, &et, "array element type");
    if (s || (s = check_vtype(p, et, at, "array element"))) return s;
    at = p->pos;
    if ((s = read_u64(p, &n, "array length"))) return s;
    /* Reject impossible counts before allocating anything sized by them. */
    if (n > remaining(p) / vtype_min_sizes[et])
        return perr(p, Q_ERR_FORMAT, at, "array of %llu %s elements cannot fit in the %llu bytes left",
                    (unsigned long long)n, vtype_names[et], (unsigned long long)remaining(p));
    v->arr.type = (gguf_vtype)et;
    v->arr.n = n;
    v->arr.data = p->base + p->pos;
    v->arr.strs = NULL;
    v->arr.items = NULL;
    if (et == GGUF_VT_STRING) {
        v->arr.strs = file_alloc(p->f, (size_t)n * sizeof(gguf_str));
        if (!v->arr.strs) return perr(p, Q_ERR_NOMEM, at, "out of memory for %llu strings", (unsigned long long)n);
        for (uint64_t i = 0; i < n; i++)
            if ((s = read_str(p, &v->arr.strs[i], 0, "array string"))) return s;
    } else if (et == GGUF_VT_ARRAY) {
        v->arr.items = file_alloc(p->f, (size_t)n * sizeof(gguf_value));
        if (!v->arr.items) return perr(p, Q_ERR_NOMEM, at, "out of memory for %llu arrays", (unsigned long long)n);
        for (uint64_t i = 0; i < n; i++)
            if ((s = parse_value(p, GGUF_VT_ARRAY, &v->arr.items[i], depth + 1))) return s;
    } else {
        uint64_t bytes = n * vtype_sizes[et];   /* cannot overflow: n <= remaining / size */
        if (et == GGUF_VT_BOOL)
            for (uint64_t i = 0; i < n; i++)
                if (p->base[p->pos + i] > 1)
                    return perr(p, Q_ERR_FORMAT, p->pos + i, "invalid bool byte 0x%02x (must be 0 or 1)",
                                p->base[p->pos + i]);
        p->pos += bytes;
    }
    return Q_OK;
}

static q_status parse_value(parser *p, gguf_vtype t, gguf_value *v, int depth) {
    memset(v, 0, sizeof *v);
    v->type = t;
    if (t == GGUF_VT_STRING) return read_str(p, &v->str, 0, "string value");
    if (t == GGUF_VT_ARRAY) return parse_array(p, v, depth);
    q_status s = need(p, vtype_sizes[t], "value");
    if (s) return s;
    if (t == GGUF_VT_BOOL && p->base[p->pos] > 1)
        return perr(p, Q_ERR_FORMAT, p->pos, "invalid bool byte 0x%02x (must be 0 or 1)", p->base[p->pos]);
    scalar_load(t, p->base + p->pos, v);
    p->pos += vtype_sizes[t];
    return Q_OK;
}

static void set_what(parser *p, const char *kind, gguf_str name) {
    char buf[180];
    snprintf(p->what, sizeof p->what, "%s '%s'", kind, gguf_str_print(name, buf, sizeof buf));
}

static q_status parse_header(parser *p) {
    gguf_file *f = p->f;
    snprintf(p->what, sizeof p->what, "header");
    if (p->size < 4 || memcmp(p->base, "GGUF", 4) != 0) {
        if (p->size < 4) return perr(p, Q_ERR_FORMAT, 0, "not a GGUF file: only %llu bytes", (unsigned long long)p->size);
        return perr(p, Q_ERR_FORMAT, 0, "bad magic %02x %02x %02x %02x (not a GGUF file)",
                    p->base[0], p->base[1], p->base[2], p->base[3]);
    }
    p->pos = 4;
    q_status s = read_u32(p, &f->version, "version");
    if (s) return s;
    uint32_t v = f->version, swapped = __builtin_bswap32(v);
    if (v == 1) return perr(p, Q_ERR_UNSUPPORTED, 4, "GGUF version 1 is not supported (re-convert the model)");
    if (v != 2 && v != 3) {
        if (swapped >= 1 && swapped <= 3)
            return perr(p, Q_ERR_UNSUPPORTED, 4, "big-endian GGUF file (version %u byte-swapped) is not supported", swapped);
        return perr(p, Q_ERR_UNSUPPORTED, 4, "unsupported GGUF version %u (expected 2 or 3)", v);
    }
    if ((s = read_u64(p, &f->n_tensors, "tensor count"))) return s;
    if ((s = read_u64(p, &f->n_kv, "key/value count"))) return s;
    if (f->n_kv > remaining(p) / GGUF_MIN_KV_SIZE)
        return perr(p, Q_ERR_FORMAT, 16, "key/value count %llu cannot fit in the %llu bytes left",
                    (unsigned long long)f->n_kv, (unsigned long long)remaining(p));
    if (f->n_tensors > remaining(p) / GGUF_MIN_TINFO_SIZE)
        return perr(p, Q_ERR_FORMAT, 8, "tensor count %llu cannot fit in the %llu bytes left",
                    (unsigned long long)f->n_tensors, (unsigned long long)remaining(p));
    return Q_OK;
}

static q_status parse_kvs(parser *p) {
    gguf_file *f = p->f;
    f->kv = file_alloc(f, (size_t)(f->n_kv ? f->n_kv : 1) * sizeof(gguf_kv));
    gguf_index *ix = &f->priv->kv_index;
    ix->cap = index_cap_for(f->n_kv);
    ix->seed = index_seed(ix);
    ix->slots = file_alloc(f, (size_t)ix->cap * sizeof(uint64_t));
    if (!f->kv || !ix->slots) return perr(p, Q_ERR_NOMEM, 16, "out of memory for %llu keys", (unsigned long long)f->n_kv);
    memset(ix->slots, 0, (size_t)ix->cap * sizeof(uint64_t));
    for (uint64_t i = 0; i < f->n_kv; i++) {
        gguf_kv *kv = &f->kv[i];
        kv->offset = p->pos;
        snprintf(p->what, sizeof p->what, "key/value #%llu", (unsigned long long)i);
        q_status s = read_str(p, &kv->key, GGUF_MAX_KEY_LEN, "key");
        if (s) return s;
        if (kv->key.len == 0) return perr(p, Q_ERR_FORMAT, kv->offset, "empty key");
        set_what(p, "key", kv->key);
        uint64_t dup = index_insert(f, ix, kv_name, i);
        if (dup == UINT64_MAX) return perr(p, Q_ERR_LIMIT, kv->offset, "too many key hash collisions");
        if (dup)
            return perr(p, Q_ERR_FORMAT, kv->offset, "duplicate key (first at offset %llu)",
                        (unsigned long long)f->kv[dup - 1].offset);
        uint64_t at = p->pos;
        uint32_t t;
        if ((s = read_u32(p, &t, "value type")) || (s = check_vtype(p, t, at, "value"))) return s;
        if ((s = parse_value(p, (gguf_vtype)t, &kv->val, 1))) return s;
    }
    return Q_OK;
}

static q_status parse_alignment(parser *p) {
    gguf_file *f = p->f;
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *kv = gguf_find(f, "general.alignment");
    if (!kv) return Q_OK;
    set_what(p, "key", kv->key);
    if (kv->val.type != GGUF_VT_UINT32)
        return perr(p, Q_ERR_FORMAT, kv->offset, "general.alignment must be a u32, not %s",
                    vtype_names[kv->val.type]);
    uint64_t a = kv->val.u64;
    if (a == 0 || (a & (a - 1)))
        return perr(p, Q_ERR_FORMAT, kv->offset, "general.alignment %llu is not a nonzero power of two",
                    (unsigned long long)a);
    f->alignment = a;
    return Q_OK;
}

static q_status parse_tensor_info(parser *p, uint64_t i) {
    gguf_file *f = p->f;
    gguf_tensor_info *t = &f->tensors[i];
    uint64_t at = p->pos;
    snprintf(p->what, sizeof p->what, "tensor info #%llu", (unsigned long long)i);
    q_status s = read_str(p, &t->name, GGUF_MAX_NAME_LEN, "tensor name");
    if (s) return s;
    if (t->name.len == 0) return perr(p, Q_ERR_FORMAT, at, "empty tensor name");
    set_what(p, "tensor", t->name);
    uint64_t dup = index_insert(f, &f->priv->t_index, tensor_name, i);
    if (dup == UINT64_MAX) return perr(p, Q_ERR_LIMIT, at, "too many tensor name hash collisions");
    if (dup) return perr(p, Q_ERR_FORMAT, at, "duplicate tensor name (first is tensor #%llu)", (unsigned long long)(dup - 1));
    uint64_t dims_at = p->pos;
    if ((s = read_u32(p, &t->n_dims, "n_dims"))) return s;
    if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
        return perr(p, Q_ERR_FORMAT, dims_at, "n_dims %u is not in 1..%d", t->n_dims, GGUF_MAX_DIMS);
    int64_t nelem = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t ne, ne_at = p->pos;
        if ((s = read_u64(p, &ne, "dimension"))) return s;
        if (ne == 0 || ne > INT64_MAX)
            return perr(p, Q_ERR_FORMAT, ne_at, "dimension %u is %llu (must be 1..INT64_MAX)", d, (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
        if (__builtin_mul_overflow(nelem, t->ne[d], &nelem))
            return perr(p, Q_ERR_FORMAT, ne_at, "element count overflows 64 bits");
    }
    uint64_t type_at = p->pos;
    uint32_t type;
    if ((s = read_u32(p, &type, "tensor type"))) return s;
    const q_type_traits *tr = q_type_get(type);
    if (!tr) return perr(p, Q_ERR_UNSUPPORTED, type_at, "unknown tensor type %u", type);
    t->type = (q_type)type;
    if (t->ne[0] % tr->blck_size)
        return perr(p, Q_ERR_FORMAT, dims_at, "row length %lld is not a multiple of %s's block size %lld",
                    (long long)t->ne[0], tr->name, (long long)tr->blck_size);
    uint64_t off_at = p->pos;
    if ((s = read_u64(p, &t->offset, "tensor offset"))) return s;
    uint64_t row = (uint64_t)(t->ne[0] / tr->blck_size), nbytes;
    if (__builtin_mul_overflow(row, (uint64_t)tr->type_size, &nbytes) ||
        __builtin_mul_overflow(nbytes, (uint64_t)(nelem / t->ne[0]), &nbytes))
        return perr(p, Q_ERR_FORMAT, dims_at, "byte size overflows 64 bits");
    t->nbytes = nbytes;
    if (t->offset % f->alignment)
        return perr(p, Q_ERR_FORMAT, off_at, "data offset %llu is not a multiple of the alignment %llu",
                    (unsigned long long)t->offset, (unsigned long long)f->alignment);
    return Q_OK;
}

static int cmp_by_offset(const void *a, const void *b) {
    const gguf_tensor_info *x = *(const gguf_tensor_info *const *)a, *y = *(const gguf_tensor_info *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Places every tensor inside the data section and rejects overlaps. */
static q_status check_tensor_data(parser *p, uint64_t infos_end) {
    gguf_file *f = p->f;
    uint64_t data;
    if (__builtin_add_overflow(infos_end, f->alignment - 1, &data))
        return perr(p, Q_ERR_FORMAT, infos_end, "data section offset overflows");
    data &= ~(f->alignment - 1);
    snprintf(p->what, sizeof p->what, "data section");
    if (f->n_tensors == 0) {
        /* Vocab-only files end after the infos, without padding. */
        f->data_offset = data <= p->size ? data : p->size;
        return Q_OK;
    }
    if (data > p->size)
        return perr(p, Q_ERR_FORMAT, infos_end, "truncated file: data section starts at %llu past the end (%llu bytes)",
                    (unsigned long long)data, (unsigned long long)p->size);
    /* Padding bytes are not checked: llama.cpp does not require them to be zero. */
    f->data_offset = data;
    uint64_t room = p->size - data;
    gguf_tensor_info **order = malloc((size_t)f->n_tensors * sizeof *order);
    if (!order) return perr(p, Q_ERR_NOMEM, infos_end, "out of memory");
    q_status s = Q_OK;
    for (uint64_t i = 0; i < f->n_tensors && !s; i++) {
        gguf_tensor_info *t = &f->tensors[i];
        order[i] = t;
        if (t->offset > room || t->nbytes > room - t->offset) {
            set_what(p, "tensor", t->name);
            s = perr(p, Q_ERR_FORMAT, data + (t->offset <= room ? t->offset : room),
                     "data [%llu, +%llu bytes) lies outside the file (data section has %llu bytes)",
                     (unsigned long long)t->offset, (unsigned long long)t->nbytes, (unsigned long long)room);
        } else {
            t->data = p->base + data + t->offset;
        }
    }
    if (!s) {
        qsort(order, (size_t)f->n_tensors, sizeof *order, cmp_by_offset);
        for (uint64_t i = 1; i < f->n_tensors && !s; i++) {
            const gguf_tensor_info *a = order[i - 1], *b = order[i];
            if (a->offset + a->nbytes > b->offset) {
                char buf[180];
                set_what(p, "tensor", b->name);
                s = perr(p, Q_ERR_FORMAT, data + b->offset, "data overlaps tensor '%s'",
                         gguf_str_print(a->name, buf, sizeof buf));
            }
        }
    }
    free(order);
    return s;
}

static q_status parse_file(parser *p) {
    gguf_file *f = p->f;
    q_status s;
    if ((s = parse_header(p)) || (s = parse_kvs(p)) || (s = parse_alignment(p))) return s;
    f->tensors = file_alloc(f, (size_t)(f->n_tensors ? f->n_tensors : 1) * sizeof(gguf_tensor_info));
    gguf_index *ix = &f->priv->t_index;
    ix->cap = index_cap_for(f->n_tensors);
    ix->seed = index_seed(ix);
    ix->slots = file_alloc(f, (size_t)ix->cap * sizeof(uint64_t));
    if (!f->tensors || !ix->slots) return perr(p, Q_ERR_NOMEM, 8, "out of memory for tensors");
    memset(ix->slots, 0, (size_t)ix->cap * sizeof(uint64_t));
    memset(f->tensors, 0, (size_t)f->n_tensors * sizeof(gguf_tensor_info));
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if ((s = parse_tensor_info(p, i))) return s;
    return check_tensor_data(p, p->pos);
}

static q_status open_mem(const uint8_t *base, uint64_t size, void *map, gguf_file **out, q_error *err) {
    gguf_file *f = q_xcalloc(1, sizeof *f);
    f->priv = q_xcalloc(1, sizeof *f->priv);
    f->priv->map = map;
    f->priv->map_size = (size_t)size;
    f->base = base;
    f->size = size;
    parser p = { .base = base, .size = size, .f = f, .err = err };
    q_status s = parse_file(&p);
    if (s) {
        gguf_close(f);
        *out = NULL;
        return s;
    }
    q_error_clear(err);
    *out = f;
    return Q_OK;
}

q_status gguf_open_buffer(const void *buf, size_t size, gguf_file **out, q_error *err) {
    Q_ASSERT(out && (buf || size == 0));
    static const uint8_t empty[1];
    return open_mem(buf ? buf : empty, size, NULL, out, err);
}

q_status gguf_open(const char *path, gguf_file **out, q_error *err) {
    Q_ASSERT(path && out);
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return q_fail(err, Q_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return q_fail(err, Q_ERR_IO, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return q_fail(err, Q_ERR_IO, "not a regular file");
    }
    if (st.st_size == 0) {   /* mmap cannot map 0 bytes; the parser words the error */
        close(fd);
        return gguf_open_buffer(NULL, 0, out, err);
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return q_fail(err, Q_ERR_IO, "cannot map %lld bytes: %s", (long long)st.st_size, strerror(e));
    return open_mem(map, (uint64_t)st.st_size, map, out, err);
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    if (f->priv) {
        for (gguf_alloc *a = f->priv->allocs, *next; a; a = next) {
            next = a->next;
            free(a);
        }
        if (f->priv->map) munmap(f->priv->map, f->priv->map_size);
        free(f->priv);
    }
    free(f);
}
