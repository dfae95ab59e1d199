/* gguf_write.c — GGUF v3 writer (public API in include/quarrel/gguf.h; the format is
 * specified at the top of gguf_read.c).
 *
 * What it is: collects key/values (insertion order; re-setting a key replaces its value
 * in place) and tensor infos, then streams the file: header, key/values, tensor infos,
 * zero padding to ALIGN, then each tensor's bytes followed by zero padding to ALIGN.
 * Tensor offsets are the running sum of padded sizes. These are gguf-py GGUFWriter's
 * layout rules, so a gguf-py file copied key by key and tensor by tensor comes out byte
 * identical. A file with no tensors ends right after the (empty) infos, as gguf-py's
 * vocab-only files do. What it is not: a converter; tensor bytes are written as given.
 * Memory: the writer deep-copies keys and values; tensor data passed to add_tensor is
 * borrowed until gguf_writer_write; data supplied by the fill callback lives in one
 * scratch buffer (the largest tensor), so a large model never sits in memory at once.
 * Output goes to PATH.tmp, is fsync'ed, then renamed over PATH. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base.h"
#include "gguf/gguf_priv.h"

typedef struct w_kv {
    gguf_str   key;   /* owned */
    gguf_value val;   /* owned, deep */
} w_kv;

typedef struct w_tensor {
    char       *name;
    q_type      type;
    uint32_t    n_dims;
    int64_t     ne[GGUF_MAX_DIMS];
    uint64_t    nbytes;
    uint64_t    offset;   /* relative to the data section, set at write time */
    const void *data;     /* borrowed, or NULL for the fill callback */
} w_tensor;

struct gguf_writer {
    w_kv     *kv;
    uint64_t  n_kv, cap_kv;
    w_tensor *tensors;
    uint64_t  n_tensors, cap_tensors;
};

gguf_writer *gguf_writer_new(void) {
    return q_xcalloc(1, sizeof(gguf_writer));
}

static gguf_str str_copy(const char *p, uint64_t n) {
    char *d = q_xmalloc((size_t)n + 1);
    if (n) memcpy(d, p, (size_t)n);
    d[n] = '\0';
    return (gguf_str){ .ptr = d, .len = n };
}

static void value_free(gguf_value *v) {
    if (v->type == GGUF_VT_STRING) {
        free((void *)v->str.ptr);
    } else if (v->type == GGUF_VT_ARRAY) {
        if (v->arr.strs)
            for (uint64_t i = 0; i < v->arr.n; i++) free((void *)v->arr.strs[i].ptr);
        if (v->arr.items)
            for (uint64_t i = 0; i < v->arr.n; i++) value_free(&v->arr.items[i]);
        free(v->arr.strs);
        free(v->arr.items);
        free((void *)v->arr.data);
    }
    memset(v, 0, sizeof *v);
}

static void value_copy(gguf_value *dst, const gguf_value *src) {
    Q_ASSERT((unsigned)src->type < GGUF_VT_COUNT);
    *dst = *src;
    if (src->type == GGUF_VT_STRING) {
        dst->str = str_copy(src->str.ptr, src->str.len);
    } else if (src->type == GGUF_VT_ARRAY) {
        uint64_t n = src->arr.n;
        gguf_vtype et = src->arr.type;
        Q_ASSERT((unsigned)et < GGUF_VT_COUNT);
        dst->arr.data = NULL;
        dst->arr.strs = NULL;
        dst->arr.items = NULL;
        if (et == GGUF_VT_STRING) {
            dst->arr.strs = q_xcalloc((size_t)(n ? n : 1), sizeof(gguf_str));
            for (uint64_t i = 0; i < n; i++) dst->arr.strs[i] = str_copy(src->arr.strs[i].ptr, src->arr.strs[i].len);
        } else if (et == GGUF_VT_ARRAY) {
            dst->arr.items = q_xcalloc((size_t)(n ? n : 1), sizeof(gguf_value));
            for (uint64_t i = 0; i < n; i++) value_copy(&dst->arr.items[i], &src->arr.items[i]);
        } else {
            size_t bytes = (size_t)n * gguf_vtype_size(et);
            void *d = q_xmalloc(bytes);
            if (bytes) memcpy(d, src->arr.data, bytes);
            dst->arr.data = d;
        }
    }
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (uint64_t i = 0; i < w->n_kv; i++) {
        free((void *)w->kv[i].key.ptr);
        value_free(&w->kv[i].val);
    }
    for (uint64_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->kv);
    free(w->tensors);
    free(w);
}

/* The slot for key: the existing one (its old value freed) or a new one at the end. */
static gguf_value *kv_slot(gguf_writer *w, const char *key, uint64_t len) {
    Q_ASSERT(len > 0);
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (w->kv[i].key.len == len && memcmp(w->kv[i].key.ptr, key, (size_t)len) == 0) {
            value_free(&w->kv[i].val);
            return &w->kv[i].val;
        }
    if (w->n_kv == w->cap_kv) {
        w->cap_kv = w->cap_kv ? 2 * w->cap_kv : 32;
        w->kv = q_xrealloc(w->kv, (size_t)w->cap_kv * sizeof *w->kv);
    }
    w_kv *kv = &w->kv[w->n_kv++];
    kv->key = str_copy(key, len);
    memset(&kv->val, 0, sizeof kv->val);
    return &kv->val;
}

static void set_scalar(gguf_writer *w, const char *key, gguf_value v) {
    *kv_slot(w, key, strlen(key)) = v;
}

void gguf_writer_set_u8(gguf_writer *w, const char *key, uint8_t v) {
    set_scalar(w, key, (gguf_value){ .type = GGUF_VT_UINT8, .u64 = v });
}
void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) {
    set_scalar(w, key, (gguf_value){ .type = GGUF_VT_UINT32, .u64 = v });
}
void gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) {
    set_scalar(w, key, (gguf_value){ .type = GGUF_VT_INT32, .i64 = v });
}
void gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v) {
    set_scalar(w, key, (gguf_value){ .type = GGUF_VT_UINT64, .u64 = v });
}
void gguf_writer_set_f32(gguf_writer *w, const char *key, float v) {
    set_scalar(w, key, (gguf_value){ .type = GGUF_VT_FLOAT32, .f64 = v });
}
void gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    set_scalar(w, key, (gguf_value){ .type = GGUF_VT_BOOL, .b = v });
}

void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    gguf_value *slot = kv_slot(w, key, strlen(key));
    slot->type = GGUF_VT_STRING;
    slot->str = str_copy(v, strlen(v));
}

void gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_vtype elem, const void *data, uint64_t n) {
    Q_ASSERT((unsigned)elem < GGUF_VT_COUNT && gguf_vtype_size(elem) > 0);  /* scalars only */
    gguf_value src = { .type = GGUF_VT_ARRAY };
    src.arr.type = elem;
    src.arr.n = n;
    src.arr.data = data;
    value_copy(kv_slot(w, key, strlen(key)), &src);
}

void gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v, uint64_t n) {
    gguf_value *slot = kv_slot(w, key, strlen(key));
    slot->type = GGUF_VT_ARRAY;
    slot->arr.type = GGUF_VT_STRING;
    slot->arr.n = n;
    slot->arr.strs = q_xcalloc((size_t)(n ? n : 1), sizeof(gguf_str));
    for (uint64_t i = 0; i < n; i++) slot->arr.strs[i] = str_copy(v[i], strlen(v[i]));
}

void gguf_writer_set_value(gguf_writer *w, gguf_str key, const gguf_value *v) {
    gguf_value copy;
    value_copy(&copy, v);   /* before kv_slot: v may be the very value being replaced */
    *kv_slot(w, key.ptr, key.len) = copy;
}

uint64_t gguf_writer_add_tensor(gguf_writer *w, const char *name, q_type type, uint32_t n_dims,
                                const int64_t *ne, const void *data) {
    const q_type_traits *tr = q_type_get((uint32_t)type);
    Q_ASSERT(tr && n_dims >= 1 && n_dims <= GGUF_MAX_DIMS && name[0]);
    if (w->n_tensors == w->cap_tensors) {
        w->cap_tensors = w->cap_tensors ? 2 * w->cap_tensors : 64;
        w->tensors = q_xrealloc(w->tensors, (size_t)w->cap_tensors * sizeof *w->tensors);
    }
    w_tensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = q_xstrdup(name);
    t->type = type;
    t->n_dims = n_dims;
    uint64_t rows = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = d < n_dims ? ne[d] : 1;
        Q_ASSERT(t->ne[d] > 0);
        if (d > 0) Q_ASSERT(!__builtin_mul_overflow(rows, (uint64_t)t->ne[d], &rows));
    }
    Q_ASSERT(t->ne[0] % tr->blck_size == 0);
    Q_ASSERT(!__builtin_mul_overflow((uint64_t)q_row_size(type, t->ne[0]), rows, &t->nbytes));
    t->data = data;
    return w->n_tensors++;
}

/* ---- serialisation ------------------------------------------------------------------- */

typedef struct wfile {
    FILE       *fp;
    uint64_t    pos;
    bool        failed;
} wfile;

static void put(wfile *o, const void *p, size_t n) {
    if (o->failed || n == 0) return;
    if (fwrite(p, 1, n, o->fp) != n) o->failed = true;
    o->pos += n;
}
static void put_u32(wfile *o, uint32_t v) { put(o, &v, 4); }
static void put_u64(wfile *o, uint64_t v) { put(o, &v, 8); }
static void put_str(wfile *o, gguf_str s) { put_u64(o, s.len); put(o, s.ptr, (size_t)s.len); }

static void put_pad(wfile *o, uint64_t align) {
    static const uint8_t zeros[256];
    uint64_t n = (align - o->pos % align) % align;
    while (n) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        put(o, zeros, k);
        n -= k;
    }
}

/* A scalar narrowed back to its on-disk width. */
static void put_scalar(wfile *o, const gguf_value *v) {
    uint8_t u8; uint16_t u16; uint32_t u32; float f32;
    switch (v->type) {
    case GGUF_VT_UINT8:  case GGUF_VT_INT8:  u8 = (uint8_t)v->u64;   put(o, &u8, 1); break;
    case GGUF_VT_UINT16: case GGUF_VT_INT16: u16 = (uint16_t)v->u64; put(o, &u16, 2); break;
    case GGUF_VT_UINT32: case GGUF_VT_INT32: u32 = (uint32_t)v->u64; put(o, &u32, 4); break;
    case GGUF_VT_UINT64: case GGUF_VT_INT64: put(o, &v->u64, 8); break;
    case GGUF_VT_FLOAT32: f32 = (float)v->f64; put(o, &f32, 4); break;
    case GGUF_VT_FLOAT64: put(o, &v->f64, 8); break;
    case GGUF_VT_BOOL:   u8 = v->b ? 1 : 0; put(o, &u8, 1); break;
    default: Q_ASSERT(!"not a scalar");
    }
}

/* The payload of v (not its type tag; arrays carry element type and count). */
static void put_value(wfile *o, const gguf_value *v) {
    if (v->type == GGUF_VT_STRING) { put_str(o, v->str); return; }
    if (v->type != GGUF_VT_ARRAY) { put_scalar(o, v); return; }
    put_u32(o, (uint32_t)v->arr.type);
    put_u64(o, v->arr.n);
    if (v->arr.type == GGUF_VT_STRING) {
        for (uint64_t i = 0; i < v->arr.n; i++) put_str(o, v->arr.strs[i]);
    } else if (v->arr.type == GGUF_VT_ARRAY) {
        for (uint64_t i = 0; i < v->arr.n; i++) put_value(o, &v->arr.items[i]);
    } else {
        put(o, v->arr.data, (size_t)(v->arr.n * gguf_vtype_size(v->arr.type)));  /* host is little-endian */
    }
}

static q_status writer_alignment(const gguf_writer *w, uint64_t *align, q_error *err) {
    *align = GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < w->n_kv; i++) {
        if (!gguf_str_eq(w->kv[i].key, "general.alignment")) continue;
        const gguf_value *v = &w->kv[i].val;
        if (v->type != GGUF_VT_UINT32 || v->u64 == 0 || (v->u64 & (v->u64 - 1)))
            return q_fail(err, Q_ERR_INVALID_ARG, "general.alignment must be a u32 power of two");
        *align = v->u64;
    }
    return Q_OK;
}

static q_status write_body(gguf_writer *w, wfile *o, uint64_t align, gguf_tensor_fill_fn fill, void *user,
                           q_error *err) {
    put(o, "GGUF", 4);
    put_u32(o, 3);
    put_u64(o, w->n_tensors);
    put_u64(o, w->n_kv);
    for (uint64_t i = 0; i < w->n_kv; i++) {
        put_str(o, w->kv[i].key);
        put_u32(o, (uint32_t)w->kv[i].val.type);
        put_value(o, &w->kv[i].val);
    }
    uint64_t off = 0, biggest = 0;
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        w_tensor *t = &w->tensors[i];
        t->offset = off;
        uint64_t padded = (t->nbytes + align - 1) / align * align;
        if (__builtin_add_overflow(off, padded, &off))
            return q_fail(err, Q_ERR_INVALID_ARG, "tensor data exceeds 2^64 bytes");
        if (!t->data && t->nbytes > biggest) biggest = t->nbytes;
        put_str(o, (gguf_str){ .ptr = t->name, .len = strlen(t->name) });
        put_u32(o, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) put_u64(o, (uint64_t)t->ne[d]);
        put_u32(o, (uint32_t)t->type);
        put_u64(o, t->offset);
    }
    if (w->n_tensors == 0) return Q_OK;
    put_pad(o, align);
    void *scratch = NULL;
    if (biggest) {
        if (!fill) return q_fail(err, Q_ERR_INVALID_ARG, "tensor without data and no fill callback");
        if (biggest > SIZE_MAX || !(scratch = malloc((size_t)biggest)))
            return q_fail(err, Q_ERR_NOMEM, "cannot allocate %llu bytes for tensor data", (unsigned long long)biggest);
    }
    q_status s = Q_OK;
    for (uint64_t i = 0; i < w->n_tensors && !s && !o->failed; i++) {
        w_tensor *t = &w->tensors[i];
        const void *src = t->data;
        if (!src) {
            s = fill(user, i, scratch, (size_t)t->nbytes, err);
            src = scratch;
        }
        if (!s) {
            put(o, src, (size_t)t->nbytes);
            put_pad(o, align);
        }
    }
    free(scratch);
    return s;
}

q_status gguf_writer_write(gguf_writer *w, const char *path, gguf_tensor_fill_fn fill, void *user, q_error *err) {
    uint64_t align;
    q_status s = writer_alignment(w, &align, err);
    if (s) return s;
    size_t plen = strlen(path);
    char *tmp = q_xmalloc(plen + 5);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    wfile o = { .fp = fopen(tmp, "wb") };
    if (!o.fp) {
        s = q_fail(err, Q_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return s;
    }
    setvbuf(o.fp, NULL, _IOFBF, 1 << 20);
    s = write_body(w, &o, align, fill, user, err);
    int e = 0;
    if (!s && (o.failed || fflush(o.fp) != 0 || fsync(fileno(o.fp)) != 0)) e = errno ? errno : EIO;
    if (fclose(o.fp) != 0 && !e) e = errno;
    if (!s && e) s = q_fail(err, Q_ERR_IO, "cannot write %s: %s", tmp, strerror(e));
    if (!s && rename(tmp, path) != 0) s = q_fail(err, Q_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (s) unlink(tmp);
    else q_error_clear(err);
    free(tmp);
    return s;
}
