/* fuzz_gguf.c — libFuzzer target for the GGUF reader (src/gguf/gguf_read.c).
 *
 * Parses the input with gguf_open_buffer; on success walks every key/value and tensor and
 * touches every byte they point to (strings, array payloads, nested items, tensor data),
 * so a validator that lets an out-of-bounds pointer through is caught by ASan. The input
 * buffer is libFuzzer's exact-size copy. Seeds: tests/fuzz/corpus/fuzz_gguf/ (written by
 * tests/data/bad-gguf/make_bad.py). */
#include <stddef.h>
#include <stdint.h>

#include "quarrel/gguf.h"

static volatile uint64_t sink;

static uint64_t sum_bytes(const void *p, uint64_t n) {
    const uint8_t *b = p;
    uint64_t s = 0;
    for (uint64_t i = 0; i < n; i++) s += b[i];
    return s;
}

static uint64_t walk_value(const gguf_value *v) {
    uint64_t s = (uint64_t)v->type;
    if (v->type == GGUF_VT_STRING) return s + sum_bytes(v->str.ptr, v->str.len);
    if (v->type != GGUF_VT_ARRAY) return s + v->u64;
    if (v->arr.type == GGUF_VT_STRING) {
        for (uint64_t i = 0; i < v->arr.n; i++) s += sum_bytes(v->arr.strs[i].ptr, v->arr.strs[i].len);
    } else if (v->arr.type == GGUF_VT_ARRAY) {
        for (uint64_t i = 0; i < v->arr.n; i++) s += walk_value(&v->arr.items[i]);
    } else {
        s += sum_bytes(v->arr.data, v->arr.n * gguf_vtype_size(v->arr.type));
        for (uint64_t i = 0; i < v->arr.n; i++) s += (uint64_t)gguf_arr_i64(v, i);
    }
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file *f = NULL;
    q_error err;
    if (gguf_open_buffer(data, size, &f, &err) != Q_OK) return 0;
    uint64_t s = 0;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        s += sum_bytes(f->kv[i].key.ptr, f->kv[i].key.len);
        s += walk_value(&f->kv[i].val);
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor_info *t = &f->tensors[i];
        s += sum_bytes(t->name.ptr, t->name.len) + sum_bytes(t->data, t->nbytes);
    }
    uint64_t u;
    if (gguf_get_u64(f, "general.alignment", &u)) s += u;
    sink = s;
    gguf_close(f);
    return 0;
}
