/* test_gguf.c — src/gguf: reader, validator, writer.
 *
 * Facts come from outside the reader: the valid vectors and the bad-GGUF corpus are
 * written by tests/data/bad-gguf/make_bad.py (an independent Python encoder), and the
 * shared models are checked against ../shared/golden/manifest.json (arch, size, vocab
 * size, hyperparameters, every tensor's type). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "core/base.h"
#include "quarrel/gguf.h"

static const char *shared_dir(void) {
    const char *s = getenv("QUARREL_SHARED");
    return s ? s : "../shared";
}

/* A scratch path outside the source tree, unique per process. */
static const char *tmp_path(char *buf, size_t cap, const char *tag) {
    const char *dir = getenv("TMPDIR");
    snprintf(buf, cap, "%s/quarrel-test-gguf-%d-%s.gguf", dir ? dir : "/tmp", (int)getpid(), tag);
    return buf;
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(len > 0 ? (size_t)len : 1);
    assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

static gguf_file *open_ok(const char *path) {
    gguf_file *f = NULL;
    q_error err;
    q_status s = gguf_open(path, &f, &err);
    if (s) fail_msg("%s: %s", path, err.msg);
    assert_int_equal(err.status, Q_OK);
    return f;
}

/* ---- bad corpus ---------------------------------------------------------------------- */

static void test_bad_corpus(void **state) {
    (void)state;
    FILE *m = fopen("tests/data/bad-gguf/expect.txt", "r");
    assert_non_null(m);
    char line[1024];
    int n = 0, bad = 0;
    while (fgets(line, sizeof line, m)) {
        line[strcspn(line, "\n")] = '\0';
        char *tab = strchr(line, '\t');
        assert_non_null(tab);
        *tab = '\0';
        const char *expect = tab + 1;
        char path[1200];
        snprintf(path, sizeof path, "tests/data/bad-gguf/%s", line);
        gguf_file *f = NULL;
        q_error err;
        q_status s = gguf_open(path, &f, &err);
        if (s == Q_OK || !strstr(err.msg, expect) || !strstr(err.msg, "at offset ") || strchr(err.msg, '\n')) {
            print_error("%s: status %s, message '%s', expected '%s'\n", line, q_status_name(s), err.msg, expect);
            bad++;
        }
        assert_null(f);
        /* The buffer entry point gives the same verdict on an exact-size copy. */
        size_t len;
        uint8_t *b = slurp(path, &len);
        q_error err2;
        assert_int_equal(gguf_open_buffer(b, len, &f, &err2), s);
        assert_string_equal(err2.msg, err.msg);
        free(b);
        n++;
    }
    fclose(m);
    assert_int_equal(bad, 0);
    assert_true(n >= 30);
}

static void test_empty_and_missing(void **state) {
    (void)state;
    gguf_file *f;
    q_error err;
    assert_int_equal(gguf_open("tests/data/does-not-exist.gguf", &f, &err), Q_ERR_IO);
    assert_non_null(strstr(err.msg, "cannot open"));
    assert_int_equal(gguf_open("tests/data", &f, &err), Q_ERR_IO);
    assert_int_equal(gguf_open_buffer(NULL, 0, &f, &err), Q_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "not a GGUF file"));
}

/* ---- valid vectors (values as make_bad.py wrote them) -------------------------------- */

static void test_all_types_vector(void **state) {
    (void)state;
    gguf_file *f = open_ok("tests/data/valid-all_types.gguf");
    assert_int_equal(f->version, 3);
    assert_int_equal(f->n_kv, 19);
    assert_int_equal(f->n_tensors, 5);
    assert_int_equal(f->alignment, 32);
    uint64_t u; int64_t i; double d; bool b; gguf_str s;
    assert_true(gguf_get_u64(f, "t.u8", &u) && u == 200);
    assert_true(gguf_get_i64(f, "t.i8", &i) && i == -100);
    assert_false(gguf_get_u64(f, "t.i8", &u));             /* negative does not fit */
    assert_true(gguf_get_u64(f, "t.u16", &u) && u == 60000);
    assert_true(gguf_get_i64(f, "t.i16", &i) && i == -30000);
    assert_true(gguf_get_u64(f, "t.u32", &u) && u == 4000000000u);
    assert_true(gguf_get_i64(f, "t.u32", &i) && i == 4000000000ll);
    assert_true(gguf_get_i64(f, "t.i32", &i) && i == -2000000000);
    assert_true(gguf_get_f64(f, "t.f32", &d) && d == 1.5);
    assert_true(gguf_get_f64(f, "t.i32", &d) && d == -2e9);
    assert_true(gguf_get_bool(f, "t.bool", &b) && b);
    assert_false(gguf_get_bool(f, "t.u8", &b));
    assert_true(gguf_get_str(f, "t.str", &s) && gguf_str_eq(s, "h\xc3\xa9llo"));
    assert_true(gguf_get_str(f, "t.empty_str", &s) && s.len == 0);
    assert_true(gguf_get_u64(f, "t.u64", &u) && u == (1ull << 63));
    assert_false(gguf_get_i64(f, "t.u64", &i));            /* 2^63 > INT64_MAX */
    assert_true(gguf_get_i64(f, "t.i64", &i) && i == -(1ll << 62));
    assert_true(gguf_get_f64(f, "t.f64", &d) && d == -2.25);
    assert_false(gguf_get_str(f, "t.u8", &s));
    assert_false(gguf_get_u64(f, "no.such.key", &u));
    assert_null(gguf_get_arr(f, "t.str"));

    const gguf_value *a = gguf_get_arr(f, "t.arr_i32");
    assert_non_null(a);
    assert_int_equal(a->arr.type, GGUF_VT_INT32);
    assert_int_equal(a->arr.n, 3);
    assert_int_equal(gguf_arr_i64(a, 1), -2);
    assert_true(gguf_arr_f64(a, 2) == 3.0);
    a = gguf_get_arr(f, "t.arr_str");
    assert_int_equal(a->arr.n, 3);
    assert_true(gguf_str_eq(a->arr.strs[0], "a") && gguf_str_eq(a->arr.strs[1], "") && gguf_str_eq(a->arr.strs[2], "ccc"));
    a = gguf_get_arr(f, "t.arr_empty");
    assert_int_equal(a->arr.type, GGUF_VT_FLOAT32);
    assert_int_equal(a->arr.n, 0);
    a = gguf_get_arr(f, "t.arr_bool");
    assert_int_equal(gguf_arr_u64(a, 0), 1);
    assert_int_equal(gguf_arr_u64(a, 1), 0);
    a = gguf_get_arr(f, "t.nested");
    assert_int_equal(a->arr.type, GGUF_VT_ARRAY);
    assert_int_equal(a->arr.n, 3);
    assert_int_equal(a->arr.items[0].arr.type, GGUF_VT_UINT16);
    assert_int_equal(gguf_arr_u64(&a->arr.items[0], 1), 8);
    assert_true(gguf_str_eq(a->arr.items[1].arr.strs[0], "x"));
    assert_int_equal(a->arr.items[2].arr.n, 0);
    assert_int_equal(a->arr.items[2].arr.type, GGUF_VT_ARRAY);  /* an empty array of arrays */

    /* Tensors: make_bad.py fills byte j of tensor i with (7i + j) & 0xff. */
    static const struct { const char *name; q_type type; uint32_t n_dims; int64_t ne[4]; uint64_t nbytes; } want[] = {
        { "f32", Q_TYPE_F32, 1, { 8, 1, 1, 1 }, 32 },
        { "f16", Q_TYPE_F16, 3, { 4, 2, 3, 1 }, 48 },
        { "q8", Q_TYPE_Q8_0, 2, { 64, 2, 1, 1 }, 136 },
        { "q4k", Q_TYPE_Q4_K, 1, { 256, 1, 1, 1 }, 144 },
        { "q40", Q_TYPE_Q4_0, 4, { 32, 1, 1, 2 }, 36 },
    };
    uint64_t off = 0;
    for (size_t k = 0; k < Q_ARRAY_LEN(want); k++) {
        const gguf_tensor_info *t = gguf_find_tensor(f, want[k].name);
        assert_ptr_equal(t, &f->tensors[k]);
        assert_int_equal(t->type, want[k].type);
        assert_int_equal(t->n_dims, want[k].n_dims);
        assert_memory_equal(t->ne, want[k].ne, sizeof t->ne);
        assert_int_equal(t->nbytes, want[k].nbytes);
        assert_int_equal(t->offset, off);
        off += (t->nbytes + 31) / 32 * 32;
        const uint8_t *p = t->data;
        assert_ptr_equal(p, f->base + f->data_offset + t->offset);
        for (uint64_t j = 0; j < t->nbytes; j++) assert_int_equal(p[j], (7 * k + j) & 0xff);
    }
    assert_int_equal(f->data_offset + off, f->size);
    assert_null(gguf_find_tensor(f, "f3"));
    assert_string_equal(gguf_vtype_name(GGUF_VT_UINT32), "u32");
    assert_string_equal(gguf_vtype_name((gguf_vtype)99), "?");
    assert_int_equal(gguf_vtype_size(GGUF_VT_FLOAT64), 8);
    assert_int_equal(gguf_vtype_size(GGUF_VT_STRING), 0);
    gguf_close(f);
}

static void test_v2_and_alignment(void **state) {
    (void)state;
    gguf_file *f = open_ok("tests/data/valid-v2_align64.gguf");
    assert_int_equal(f->version, 2);
    assert_int_equal(f->alignment, 64);
    assert_int_equal(f->data_offset % 64, 0);
    assert_int_equal(gguf_find_tensor(f, "y")->offset, 64);
    gguf_close(f);
    f = open_ok("tests/data/valid-no_tensors.gguf");
    assert_int_equal(f->n_tensors, 0);
    assert_int_equal(gguf_get_arr(f, "tokenizer.ggml.tokens")->arr.n, 3);
    gguf_close(f);
    f = open_ok("tests/data/valid-empty.gguf");
    assert_int_equal(f->n_kv, 0);
    assert_null(gguf_find(f, "x"));
    gguf_close(f);
}

/* ---- truncation ---------------------------------------------------------------------- */

/* Every prefix shorter than the end of the last tensor's data must fail cleanly (ASan
 * sees an exact-size heap copy, so any read past it is caught). */
static void truncate_at(const uint8_t *b, size_t n, size_t must_fail_below) {
    uint8_t *c = malloc(n ? n : 1);
    memcpy(c, b, n);
    gguf_file *f = NULL;
    q_error err;
    q_status s = gguf_open_buffer(c, n, &f, &err);
    if (n < must_fail_below && s == Q_OK) fail_msg("truncation at %zu accepted", n);
    if (s) {
        assert_null(f);
        assert_non_null(strstr(err.msg, "offset"));
    }
    gguf_close(f);
    free(c);
}

/* File offset just past the last tensor's bytes; *meta = the data section's offset. */
static size_t data_end(const char *path, size_t *meta) {
    gguf_file *f = open_ok(path);
    const gguf_tensor_info *last = &f->tensors[0];
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (f->tensors[i].offset > last->offset) last = &f->tensors[i];
    size_t end = (size_t)(f->data_offset + last->offset + last->nbytes);
    *meta = (size_t)f->data_offset;
    gguf_close(f);
    return end;
}

static void test_truncation(void **state) {
    (void)state;
    size_t n, meta, end = data_end("tests/data/valid-all_types.gguf", &meta);
    uint8_t *b = slurp("tests/data/valid-all_types.gguf", &n);
    for (size_t k = 0; k < n; k++) truncate_at(b, k, end);
    free(b);

    char path[4096];
    snprintf(path, sizeof path, "%s/models/stories260K.gguf", shared_dir());
    b = slurp(path, &n);
    end = data_end(path, &meta);
    for (size_t k = 0; k <= meta; k++) truncate_at(b, k, end);       /* every metadata byte */
    for (size_t k = meta; k < n; k += 4099) truncate_at(b, k, end);   /* a sample of the data */
    free(b);

    /* A vocab file: metadata only, ~700 KB; a dense sample. */
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-llama-spm.gguf", shared_dir());
    b = slurp(path, &n);
    for (size_t k = 0; k < n; k += 1409) truncate_at(b, k, n);
    free(b);
}

/* ---- shared models and vocabs vs the manifest ---------------------------------------- */

static void check_arch_u64(const gguf_file *f, const char *arch, const char *suffix, json_t *dims, const char *dim) {
    json_t *want = json_object_get(dims, dim);
    if (!want) return;
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    uint64_t v;
    if (!gguf_get_u64(f, key, &v)) fail_msg("missing %s", key);
    assert_int_equal(v, (uint64_t)json_integer_value(want));
}

static void check_manifest_model(json_t *m) {
    char path[4096];
    const char *file = json_string_value(json_object_get(m, "file"));
    snprintf(path, sizeof path, "%s/models/%s", shared_dir(), file);
    gguf_file *f = open_ok(path);
    assert_int_equal(f->size, (uint64_t)json_integer_value(json_object_get(m, "size")));
    gguf_str arch_s;
    assert_true(gguf_get_str(f, "general.architecture", &arch_s));
    const char *arch = json_string_value(json_object_get(m, "arch"));
    if (!gguf_str_eq(arch_s, arch)) fail_msg("%s: arch mismatch, want %s", file, arch);
    json_t *nv = json_object_get(m, "n_vocab");
    if (nv) assert_int_equal(gguf_get_arr(f, "tokenizer.ggml.tokens")->arr.n, (uint64_t)json_integer_value(nv));
    json_t *dims = json_object_get(m, "dims");
    if (dims) {
        check_arch_u64(f, arch, "embedding_length", dims, "n_embd");
        check_arch_u64(f, arch, "block_count", dims, "n_layer");
        check_arch_u64(f, arch, "context_length", dims, "n_ctx_train");
    }
    json_t *types = json_object_get(m, "tensor_types");
    if (types) {
        assert_int_equal(f->n_tensors, json_object_size(types));
        const char *name;
        json_t *tv;
        json_object_foreach(types, name, tv) {
            const gguf_tensor_info *t = gguf_find_tensor(f, name);
            if (!t) fail_msg("%s: no tensor %s", file, name);
            if (strcasecmp(q_type_name(t->type), json_string_value(tv)) != 0)
                fail_msg("%s: %s is %s, manifest says %s", file, name, q_type_name(t->type), json_string_value(tv));
        }
    }
    gguf_close(f);
}

static void test_manifest_models(void **state) {
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/golden/manifest.json", shared_dir());
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    assert_non_null(root);
    json_t *models = json_object_get(root, "models");
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m) check_manifest_model(m);
    json_array_foreach(json_object_get(root, "real_models"), i, m) check_manifest_model(m);
    json_decref(root);
}

/* Every .gguf in models/ and vocab/ opens; every key and tensor is found by name. */
static void open_dir_all(const char *sub, int *count) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", shared_dir(), sub);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 5, ".gguf") != 0) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        gguf_file *f = open_ok(path);
        for (uint64_t k = 0; k < f->n_kv; k++) {
            char *key = gguf_str_dup(f->kv[k].key);
            assert_ptr_equal(gguf_find(f, key), &f->kv[k]);
            free(key);
        }
        for (uint64_t k = 0; k < f->n_tensors; k++) {
            char *name = gguf_str_dup(f->tensors[k].name);
            assert_ptr_equal(gguf_find_tensor(f, name), &f->tensors[k]);
            free(name);
        }
        gguf_str tm;
        assert_true(gguf_get_str(f, "tokenizer.ggml.model", &tm));
        gguf_close(f);
        (*count)++;
    }
    closedir(d);
}

static void test_shared_files_open(void **state) {
    (void)state;
    int n = 0;
    open_dir_all("models", &n);
    assert_true(n >= 30);
    int v = 0;
    open_dir_all("vocab", &v);
    assert_true(v >= 8);
    /* Spot facts read with an independent parser (python3 struct): */
    char path[4096];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-bert-bge.gguf", shared_dir());
    gguf_file *f = open_ok(path);
    assert_int_equal(f->n_kv, 20);
    gguf_str s;
    assert_true(gguf_get_str(f, "tokenizer.ggml.model", &s) && gguf_str_eq(s, "bert"));
    gguf_close(f);
}

/* ---- writer -------------------------------------------------------------------------- */

typedef struct fill_ctx { int calls; bool fail_at_2; } fill_ctx;

static q_status fill_pattern(void *user, uint64_t i, void *dst, size_t nbytes, q_error *err) {
    fill_ctx *c = user;
    c->calls++;
    if (c->fail_at_2 && i == 2) return q_fail(err, Q_ERR_IO, "fill failed on purpose");
    for (size_t j = 0; j < nbytes; j++) ((uint8_t *)dst)[j] = (uint8_t)(i * 31 + j);
    return Q_OK;
}

static void test_writer_roundtrip(void **state) {
    (void)state;
    char pbuf[512];
    const char *path = tmp_path(pbuf, sizeof pbuf, "roundtrip");
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "general.architecture", "first");
    gguf_writer_set_u8(w, "a.u8", 250);
    gguf_writer_set_u32(w, "a.u32", 0xdeadbeef);
    gguf_writer_set_i32(w, "a.i32", -7);
    gguf_writer_set_u64(w, "a.u64", 1ull << 40);
    gguf_writer_set_f32(w, "a.f32", 0.25f);
    gguf_writer_set_bool(w, "a.bool", true);
    gguf_writer_set_str(w, "a.empty", "");
    const float fl[3] = { 1.0f, -2.5f, 3.25f };
    gguf_writer_set_arr(w, "a.arr_f32", GGUF_VT_FLOAT32, fl, 3);
    gguf_writer_set_arr(w, "a.arr_empty", GGUF_VT_INT64, NULL, 0);
    const char *strs[] = { "x", "", "long string" };
    gguf_writer_set_arr_str(w, "a.arr_str", strs, 3);
    gguf_writer_set_u32(w, "general.alignment", 64);
    gguf_writer_set_str(w, "general.architecture", "second");  /* replaced in place */

    /* Nested arrays, copied from the independent test vector. */
    gguf_file *src = open_ok("tests/data/valid-all_types.gguf");
    const gguf_kv *nested = gguf_find(src, "t.nested");
    gguf_writer_set_value(w, nested->key, &nested->val);
    const gguf_kv *i16 = gguf_find(src, "t.i16");
    gguf_writer_set_value(w, i16->key, &i16->val);
    gguf_close(src);

    uint8_t q8[2 * 34];
    for (size_t j = 0; j < sizeof q8; j++) q8[j] = (uint8_t)(j ^ 0x5a);
    const int64_t ne_q8[2] = { 32, 2 }, ne_f32[1] = { 5 }, ne_q4k[3] = { 256, 1, 2 };
    assert_int_equal(gguf_writer_add_tensor(w, "q8", Q_TYPE_Q8_0, 2, ne_q8, q8), 0);
    assert_int_equal(gguf_writer_add_tensor(w, "f32", Q_TYPE_F32, 1, ne_f32, NULL), 1);
    assert_int_equal(gguf_writer_add_tensor(w, "q4k", Q_TYPE_Q4_K, 3, ne_q4k, NULL), 2);
    fill_ctx fc = { 0, false };
    q_error err;
    assert_int_equal(gguf_writer_write(w, path, fill_pattern, &fc, &err), Q_OK);
    assert_int_equal(fc.calls, 2);
    gguf_writer_free(w);

    gguf_file *f = open_ok(path);
    assert_int_equal(f->version, 3);
    assert_int_equal(f->n_kv, 14);
    assert_int_equal(f->alignment, 64);
    assert_true(gguf_str_eq(f->kv[0].key, "general.architecture"));
    assert_true(gguf_str_eq(f->kv[0].val.str, "second"));
    assert_true(gguf_str_eq(f->kv[13].key, "t.i16"));
    assert_int_equal(f->kv[1].val.type, GGUF_VT_UINT8);
    assert_int_equal(f->kv[1].val.u64, 250);
    assert_int_equal(f->kv[2].val.u64, 0xdeadbeef);
    assert_int_equal(f->kv[3].val.type, GGUF_VT_INT32);
    assert_int_equal(f->kv[3].val.i64, -7);
    assert_int_equal(f->kv[4].val.u64, 1ull << 40);
    assert_true(f->kv[5].val.f64 == 0.25);
    assert_true(f->kv[6].val.b);
    assert_int_equal(f->kv[7].val.str.len, 0);
    const gguf_value *a = &f->kv[8].val;
    assert_int_equal(a->arr.n, 3);
    assert_true(gguf_arr_f64(a, 1) == -2.5);
    assert_int_equal(f->kv[9].val.arr.type, GGUF_VT_INT64);
    assert_int_equal(f->kv[9].val.arr.n, 0);
    a = &f->kv[10].val;
    assert_true(gguf_str_eq(a->arr.strs[2], "long string") && a->arr.strs[1].len == 0);
    assert_int_equal(f->kv[11].val.type, GGUF_VT_UINT32);
    a = &f->kv[12].val;
    assert_int_equal(a->arr.n, 3);
    assert_int_equal(gguf_arr_u64(&a->arr.items[0], 0), 7);
    assert_true(gguf_str_eq(a->arr.items[1].arr.strs[0], "x"));
    assert_int_equal(f->kv[13].val.type, GGUF_VT_INT16);
    assert_int_equal(f->kv[13].val.i64, -30000);

    assert_int_equal(f->n_tensors, 3);
    assert_memory_equal(f->tensors[0].data, q8, sizeof q8);
    assert_int_equal(f->tensors[1].offset, 128);   /* 68 bytes padded to 64 */
    assert_int_equal(f->tensors[1].nbytes, 20);
    assert_int_equal(f->tensors[2].offset, 192);
    assert_int_equal(f->tensors[2].nbytes, 288);
    assert_int_equal(f->tensors[2].ne[2], 2);
    const uint8_t *p = f->tensors[2].data;
    for (size_t j = 0; j < 288; j++) assert_int_equal(p[j], (uint8_t)(2 * 31 + j));
    /* Padding is zero and the file ends padded. */
    const uint8_t *pad = (const uint8_t *)f->tensors[0].data + sizeof q8;
    for (size_t j = 0; j < 128 - sizeof q8; j++) assert_int_equal(pad[j], 0);
    assert_int_equal(f->size, f->data_offset + 192 + 320);
    gguf_close(f);
    unlink(path);
}

static void test_writer_errors(void **state) {
    (void)state;
    char pbuf[512], tbuf[600];
    const char *path = tmp_path(pbuf, sizeof pbuf, "errors");
    snprintf(tbuf, sizeof tbuf, "%s.tmp", path);
    unlink(path);
    gguf_writer *w = gguf_writer_new();
    const int64_t ne[1] = { 4 };
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        gguf_writer_add_tensor(w, name, Q_TYPE_F32, 1, ne, NULL);
    }
    fill_ctx fc = { 0, true };
    q_error err;
    assert_int_equal(gguf_writer_write(w, path, fill_pattern, &fc, &err), Q_ERR_IO);
    assert_string_equal(err.msg, "fill failed on purpose");
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(access(tbuf, F_OK), -1);
    gguf_writer_set_u32(w, "general.alignment", 24);
    assert_int_equal(gguf_writer_write(w, path, fill_pattern, &fc, &err), Q_ERR_INVALID_ARG);
    assert_int_equal(gguf_writer_write(w, "/nonexistent-dir/x.gguf", fill_pattern, &fc, &err), Q_ERR_INVALID_ARG);
    gguf_writer_set_u32(w, "general.alignment", 32);
    assert_int_equal(gguf_writer_write(w, "/nonexistent-dir/x.gguf", fill_pattern, &fc, &err), Q_ERR_IO);
    gguf_writer_free(w);
}

/* Copies every key and tensor of a gguf-py file and expects the same bytes back. */
static void rewrite_identical(const char *sub, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", shared_dir(), sub, name);
    gguf_file *f = open_ok(path);
    gguf_writer *w = gguf_writer_new();
    for (uint64_t i = 0; i < f->n_kv; i++) gguf_writer_set_value(w, f->kv[i].key, &f->kv[i].val);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor_info *t = &f->tensors[i];
        char *tn = gguf_str_dup(t->name);
        gguf_writer_add_tensor(w, tn, t->type, t->n_dims, t->ne, t->data);
        free(tn);
    }
    char obuf[512];
    const char *out = tmp_path(obuf, sizeof obuf, "rewrite");
    q_error err;
    assert_int_equal(gguf_writer_write(w, out, NULL, NULL, &err), Q_OK);
    gguf_writer_free(w);
    size_t n;
    uint8_t *b = slurp(out, &n);
    if (n != f->size) fail_msg("%s: rewrite is %zu bytes, original %llu", name, n, (unsigned long long)f->size);
    for (size_t k = 0; k < n; k++)
        if (b[k] != f->base[k]) fail_msg("%s: rewrite differs at byte %zu", name, k);
    free(b);
    gguf_close(f);
    unlink(out);
}

/* Every shared file (gguf-py and llama-quantize outputs alike) comes back identical. */
static void test_rewrite_identical(void **state) {
    (void)state;
    static const char *const subs[] = { "models", "vocab" };
    int n = 0;
    for (size_t i = 0; i < Q_ARRAY_LEN(subs); i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", shared_dir(), subs[i]);
        DIR *d = opendir(dir);
        assert_non_null(d);
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t l = strlen(e->d_name);
            if (l < 5 || strcmp(e->d_name + l - 5, ".gguf") != 0) continue;
            rewrite_identical(subs[i], e->d_name);
            n++;
        }
        closedir(d);
    }
    assert_true(n >= 38);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_corpus),
        cmocka_unit_test(test_empty_and_missing),
        cmocka_unit_test(test_all_types_vector),
        cmocka_unit_test(test_v2_and_alignment),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_manifest_models),
        cmocka_unit_test(test_shared_files_open),
        cmocka_unit_test(test_writer_roundtrip),
        cmocka_unit_test(test_writer_errors),
        cmocka_unit_test(test_rewrite_identical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
