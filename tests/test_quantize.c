/* test_quantize.c — src/quant/: mix rules and the quantize driver, against llama.cpp.
 *
 * The references are llama-quantize's real outputs in ../shared/models, listed with
 * their sources in ../shared/golden/manifest.json (`tensor_types`, `base_file`):
 *   - every tensor's planned type equals the type llama.cpp chose;
 *   - quantizing the same source gives a byte-identical file: key/values, tensor order,
 *     names, types, shapes, offsets, padding and data (the reference quantizers of
 *     src/tensor are llama.cpp's), and every tensor dequantizes close to its source;
 *   - output bytes do not depend on the thread count.
 * Rules no golden exercises are checked on synthetic tensor lists against the facts
 * of llama.cpp's llama_tensor_get_type (src/llama-quant.cpp). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "core/base.h"
#include "quant/mix.h"
#include "quarrel/gguf.h"
#include "quarrel/quantize.h"
#include "quarrel/types.h"

#include "test_util.h"

/* ---- fixtures ---------------------------------------------------------------------- */

static int group_setup(void **state) {
    (void)state;
    return test_tmpdir_setup("quantize");
}

static int group_teardown(void **state) {
    (void)state;
    return test_tmpdir_teardown();
}

static void model_path(char *out, size_t n, const char *file) {
    snprintf(out, n, "%s/models/%s", test_shared_dir(), file);
}

/* One llama-quantize output of the manifest. */
typedef struct golden_case {
    const char *file;      /* the llama.cpp output, in models/ */
    const char *base;      /* the source it was made from */
    const char *quant;     /* llama-quantize's TYPE argument */
    json_t     *types;     /* name -> type name */
} golden_case;

static json_t *manifest;

static size_t golden_cases(golden_case *out, size_t max) {
    if (!manifest) {
        char path[512];
        snprintf(path, sizeof path, "%s/golden/manifest.json", test_shared_dir());
        json_error_t je;
        manifest = json_load_file(path, 0, &je);
        assert_non_null(manifest);
    }
    size_t n = 0;
    json_t *models = json_object_get(manifest, "models");
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m) {
        const char *by = json_string_value(json_object_get(m, "produced_by"));
        if (!by || strncmp(by, "llama-quantize", 14) != 0) continue;
        assert_true(n < max);
        out[n++] = (golden_case){
            .file = json_string_value(json_object_get(m, "file")),
            .base = json_string_value(json_object_get(m, "base_file")),
            .quant = json_string_value(json_object_get(m, "quant")),
            .types = json_object_get(m, "tensor_types"),
        };
    }
    return n;
}

static q_type expected_type(const golden_case *c, const char *name) {
    const char *t = json_string_value(json_object_get(c->types, name));
    if (!t) fail_msg("%s: tensor %s missing from the manifest", c->file, name);
    int id = q_type_from_name(t);
    if (id < 0) fail_msg("%s: unknown type name %s", c->file, t);
    return (q_type)id;
}

/* ---- per-tensor types vs llama.cpp ------------------------------------------------ */

static void test_plan_matches_llama_cpp(void **state) {
    (void)state;
    golden_case cases[64];
    size_t n = golden_cases(cases, 64);
    assert_true(n >= 14);
    for (size_t c = 0; c < n; c++) {
        char path[512];
        model_path(path, sizeof path, cases[c].base);
        gguf_file *f = NULL;
        q_error err;
        if (gguf_open(path, &f, &err) != Q_OK) fail_msg("%s: %s", path, err.msg);
        q_quant_target t;
        assert_true(q_quant_target_parse(cases[c].quant, &t));
        q_type *types = calloc(f->n_tensors, sizeof *types);
        if (q_quantize_plan(f, t, types, NULL, &err) != Q_OK) fail_msg("%s: %s", cases[c].file, err.msg);
        assert_int_equal(json_object_size(cases[c].types), f->n_tensors);
        for (uint64_t i = 0; i < f->n_tensors; i++) {
            char *name = gguf_str_dup(f->tensors[i].name);
            q_type want = expected_type(&cases[c], name);
            if (types[i] != want)
                fail_msg("%s %s: %s planned %s, llama.cpp wrote %s", cases[c].base, cases[c].quant, name,
                         q_type_name(types[i]), q_type_name(want));
            free(name);
        }
        free(types);
        gguf_close(f);
    }
}

/* ---- quantize for real ------------------------------------------------------------ */

/* Normalized RMS error bounds ||deq - src|| / ||src|| per produced type, for the
 * roughly Gaussian weights of the test models (about 2x what each format achieves). */
static const double max_rel_err[Q_TYPE_COUNT] = {
    [Q_TYPE_F32] = 0.0,    [Q_TYPE_F16] = 5e-4,   [Q_TYPE_BF16] = 4e-3,
    [Q_TYPE_Q8_0] = 0.01,  [Q_TYPE_Q6_K] = 0.03,  [Q_TYPE_Q5_K] = 0.06,
    [Q_TYPE_Q5_0] = 0.07,  [Q_TYPE_Q5_1] = 0.07,  [Q_TYPE_Q4_K] = 0.12,
    [Q_TYPE_Q4_0] = 0.14,  [Q_TYPE_Q4_1] = 0.14,  [Q_TYPE_IQ4_NL] = 0.14,
    [Q_TYPE_MXFP4] = 0.2,  [Q_TYPE_Q3_K] = 0.25,  [Q_TYPE_Q2_K] = 0.5,
};

static float *tensor_to_f32(const gguf_tensor_info *ti) {
    int64_t n = ti->ne[0] * ti->ne[1] * ti->ne[2] * ti->ne[3];
    float *x = malloc((size_t)n * sizeof *x);
    if (ti->type == Q_TYPE_F32) {
        memcpy(x, ti->data, (size_t)n * sizeof *x);
    } else {
        const q_type_traits *tr = q_type_get(ti->type);
        assert_non_null(tr);
        assert_non_null(tr->to_float);
        tr->to_float(ti->data, x, n);
    }
    return x;
}

static bool value_equal(const gguf_value *a, const gguf_value *b);

static bool value_equal(const gguf_value *a, const gguf_value *b) {
    if (a->type != b->type) return false;
    switch (a->type) {
    case GGUF_VT_STRING: return a->str.len == b->str.len && !memcmp(a->str.ptr, b->str.ptr, a->str.len);
    case GGUF_VT_FLOAT32: case GGUF_VT_FLOAT64: return a->f64 == b->f64 || (isnan(a->f64) && isnan(b->f64));
    case GGUF_VT_BOOL: return a->b == b->b;
    case GGUF_VT_INT8: case GGUF_VT_INT16: case GGUF_VT_INT32: case GGUF_VT_INT64: return a->i64 == b->i64;
    case GGUF_VT_ARRAY:
        if (a->arr.type != b->arr.type || a->arr.n != b->arr.n) return false;
        for (uint64_t i = 0; i < a->arr.n; i++) {
            if (a->arr.type == GGUF_VT_STRING) {
                if (a->arr.strs[i].len != b->arr.strs[i].len ||
                    memcmp(a->arr.strs[i].ptr, b->arr.strs[i].ptr, a->arr.strs[i].len))
                    return false;
            } else if (a->arr.type == GGUF_VT_ARRAY) {
                if (!value_equal(&a->arr.items[i], &b->arr.items[i])) return false;
            }
        }
        if (a->arr.type != GGUF_VT_STRING && a->arr.type != GGUF_VT_ARRAY)
            return !memcmp(a->arr.data, b->arr.data, a->arr.n * gguf_vtype_size(a->arr.type));
        return true;
    default: return a->u64 == b->u64;
    }
}

/* Every tensor of out dequantizes close to its namesake in src; unchanged ones are
 * byte copies. */
static void check_close_to_source(const char *what, const gguf_file *out, const gguf_file *src) {
    assert_int_equal(out->n_tensors, src->n_tensors);
    for (uint64_t i = 0; i < out->n_tensors; i++) {
        const gguf_tensor_info *a = &out->tensors[i];
        char *name = gguf_str_dup(a->name);
        const gguf_tensor_info *s = gguf_find_tensor(src, name);
        assert_non_null(s);
        for (int d = 0; d < GGUF_MAX_DIMS; d++) assert_int_equal(a->ne[d], s->ne[d]);
        if (a->type == s->type) {
            assert_int_equal(a->nbytes, s->nbytes);
            assert_memory_equal(a->data, s->data, a->nbytes);
        } else {
            float *x = tensor_to_f32(s), *y = tensor_to_f32(a);
            int64_t n = a->ne[0] * a->ne[1] * a->ne[2] * a->ne[3];
            double num = 0, den = 0;
            for (int64_t k = 0; k < n; k++) {
                num += ((double)y[k] - x[k]) * ((double)y[k] - x[k]);
                den += (double)x[k] * x[k];
            }
            double rel = den > 0 ? sqrt(num / den) : sqrt(num);
            if (!(rel <= max_rel_err[a->type]))
                fail_msg("%s: %s as %s: relative error %.4g above %.4g", what, name, q_type_name(a->type), rel,
                         max_rel_err[a->type]);
            free(x);
            free(y);
        }
        free(name);
    }
}

/* Quantizes c's source, then compares with llama.cpp's file and with the source. */
static void check_case(const golden_case *c) {
    char src_path[512], ref_path[512], out_path[512];
    model_path(src_path, sizeof src_path, c->base);
    model_path(ref_path, sizeof ref_path, c->file);
    snprintf(out_path, sizeof out_path, "%s/%s", test_tmp_dir, c->file);
    q_quant_target t;
    assert_true(q_quant_target_parse(c->quant, &t));
    q_quantize_params p = { .target = t, .n_threads = 2 };
    q_quantize_stats st;
    q_error err;
    if (q_quantize_file(src_path, out_path, &p, &st, &err) != Q_OK) fail_msg("%s: %s", c->file, err.msg);

    gguf_file *out = NULL, *ref = NULL, *src = NULL;
    if (gguf_open(out_path, &out, &err) != Q_OK) fail_msg("our %s does not open: %s", c->file, err.msg);
    assert_int_equal(gguf_open(ref_path, &ref, &err), Q_OK);
    assert_int_equal(gguf_open(src_path, &src, &err), Q_OK);
    assert_int_equal(st.out_size, out->size);

    /* Key/values: llama.cpp's, in its order (source order, then quantization_version
     * and file_type appended). */
    assert_int_equal(out->n_kv, ref->n_kv);
    for (uint64_t i = 0; i < out->n_kv; i++) {
        char *k = gguf_str_dup(out->kv[i].key);
        if (out->kv[i].key.len != ref->kv[i].key.len || memcmp(out->kv[i].key.ptr, ref->kv[i].key.ptr, out->kv[i].key.len))
            fail_msg("%s: key %llu is %s, llama.cpp has another", c->file, (unsigned long long)i, k);
        if (!value_equal(&out->kv[i].val, &ref->kv[i].val)) fail_msg("%s: value of %s differs from llama.cpp's", c->file, k);
        free(k);
    }
    uint64_t ft = 99, qv = 0;
    assert_true(gguf_get_u64(out, "general.file_type", &ft));
    assert_true(gguf_get_u64(out, "general.quantization_version", &qv));
    assert_int_equal(ft, (uint64_t)t.ftype);
    assert_int_equal(qv, 2);

    /* Tensor directory: same order, names, types, shapes, offsets. */
    assert_int_equal(out->n_tensors, ref->n_tensors);
    for (uint64_t i = 0; i < out->n_tensors; i++) {
        const gguf_tensor_info *a = &out->tensors[i], *b = &ref->tensors[i];
        char *name = gguf_str_dup(a->name);
        if (!gguf_str_eq(b->name, name)) fail_msg("%s: tensor %llu is %s, not llama.cpp's", c->file, (unsigned long long)i, name);
        if (a->type != b->type) fail_msg("%s: %s is %s, llama.cpp wrote %s", c->file, name, q_type_name(a->type), q_type_name(b->type));
        assert_int_equal(a->n_dims, b->n_dims);
        for (int d = 0; d < GGUF_MAX_DIMS; d++) assert_int_equal(a->ne[d], b->ne[d]);
        assert_int_equal(a->offset, b->offset);
        free(name);
    }
    /* Hence the whole header, padding included, is byte-identical. */
    assert_int_equal(out->data_offset, ref->data_offset);
    assert_int_equal(out->size, ref->size);
    assert_memory_equal(out->base, ref->base, out->data_offset);

    check_close_to_source(c->file, out, src);

    /* And the quantizers are llama.cpp's reference ones: the whole file is identical. */
    for (uint64_t i = 0; i < out->n_tensors; i++) {
        const gguf_tensor_info *a = &out->tensors[i];
        if (memcmp(a->data, ref->tensors[i].data, a->nbytes)) {
            char *name = gguf_str_dup(a->name);
            fail_msg("%s: data of %s (%s) differs from llama.cpp's", c->file, name, q_type_name(a->type));
        }
    }
    assert_memory_equal(out->base, ref->base, out->size);
    gguf_close(out);
    gguf_close(ref);
    gguf_close(src);
    unlink(out_path);
}

static void test_quantize_matches_llama_cpp(void **state) {
    (void)state;
    golden_case cases[64];
    size_t n = golden_cases(cases, 64);
    for (size_t c = 0; c < n; c++) check_case(&cases[c]);
}

/* Every target, on an F16 source (granite-spm512, 256-wide rows): the output opens,
 * carries the file type, keeps the key/values in order, and every tensor is close to
 * its source. */
static void test_every_target(void **state) {
    (void)state;
    static const char *const targets[] = {
        "F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L",
        "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "IQ4_NL", "MXFP4_MOE", "Q3_K", "Q4_K", "Q5_K", "MXFP4",
    };
    char src_path[512], out_path[512];
    model_path(src_path, sizeof src_path, "granite-spm512-F16.gguf");
    snprintf(out_path, sizeof out_path, "%s/every.gguf", test_tmp_dir);
    q_error err;
    gguf_file *src = NULL;
    assert_int_equal(gguf_open(src_path, &src, &err), Q_OK);
    for (size_t k = 0; k < Q_ARRAY_LEN(targets); k++) {
        q_quant_target t;
        assert_true(q_quant_target_parse(targets[k], &t));
        q_quantize_params p = { .target = t, .n_threads = 2 };
        if (q_quantize_file(src_path, out_path, &p, NULL, &err) != Q_OK) fail_msg("%s: %s", targets[k], err.msg);
        gguf_file *out = NULL;
        if (gguf_open(out_path, &out, &err) != Q_OK) fail_msg("%s output: %s", targets[k], err.msg);

        /* Key/values: the source's in order (file_type dropped from its place), then
         * quantization_version and file_type. */
        uint64_t j = 0;
        for (uint64_t i = 0; i < src->n_kv; i++) {
            if (gguf_str_eq(src->kv[i].key, "general.file_type")) continue;
            assert_true(j < out->n_kv);
            assert_int_equal(out->kv[j].key.len, src->kv[i].key.len);
            assert_memory_equal(out->kv[j].key.ptr, src->kv[i].key.ptr, src->kv[i].key.len);
            assert_true(value_equal(&out->kv[j].val, &src->kv[i].val));
            j++;
        }
        assert_int_equal(out->n_kv, j + 2);
        assert_true(gguf_str_eq(out->kv[j].key, "general.quantization_version"));
        assert_true(gguf_str_eq(out->kv[j + 1].key, "general.file_type"));
        assert_int_equal(out->kv[j + 1].val.u64, (uint64_t)t.ftype);

        /* The base type is really used where no rule applies. */
        const gguf_tensor_info *up = gguf_find_tensor(out, "blk.0.ffn_up.weight");
        assert_int_equal(up->type, t.pure || t.ftype != Q_FTYPE_MOSTLY_MXFP4_MOE ? q_ftype_base_type(t.ftype)
                                                                                 : Q_TYPE_Q8_0);
        check_close_to_source(targets[k], out, src);
        gguf_close(out);
    }
    gguf_close(src);
}

static uint8_t *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static void test_deterministic_across_threads(void **state) {
    (void)state;
    /* 1, 2 and 3 threads (3 oversubscribes a 2-core machine): the same bytes. */
    char src[512], path[3][512];
    model_path(src, sizeof src, "llama-gqa-spm512-F32.gguf");
    q_quant_target t;
    assert_true(q_quant_target_parse("q4_k_m", &t));
    q_error err;
    uint8_t *bytes[3];
    size_t size[3];
    for (int k = 0; k < 3; k++) {
        snprintf(path[k], sizeof path[k], "%s/det%d.gguf", test_tmp_dir, k + 1);
        q_quantize_params p = { .target = t, .n_threads = k + 1 };
        assert_int_equal(q_quantize_file(src, path[k], &p, NULL, &err), Q_OK);
        bytes[k] = read_all(path[k], &size[k]);
    }
    for (int k = 1; k < 3; k++) {
        assert_int_equal(size[k], size[0]);
        assert_memory_equal(bytes[k], bytes[0], size[0]);
    }
    for (int k = 0; k < 3; k++) free(bytes[k]);
}

/* A BF16 source takes the same types as the F32 one (llama.cpp's Q4_K_M of
 * llama-gqa-spm512) and dequantizes close to the BF16 values. */
static void test_bf16_source(void **state) {
    (void)state;
    char src_path[512], ref_path[512], out_path[512];
    model_path(src_path, sizeof src_path, "llama-gqa-spm512-BF16.gguf");
    model_path(ref_path, sizeof ref_path, "llama-gqa-spm512-Q4_K_M.gguf");
    snprintf(out_path, sizeof out_path, "%s/bf16-q4km.gguf", test_tmp_dir);
    q_quant_target t;
    assert_true(q_quant_target_parse("Q4_K_M", &t));
    q_quantize_params p = { .target = t, .n_threads = 2 };
    q_error err;
    if (q_quantize_file(src_path, out_path, &p, NULL, &err) != Q_OK) fail_msg("%s", err.msg);
    gguf_file *out = NULL, *ref = NULL, *src = NULL;
    assert_int_equal(gguf_open(out_path, &out, &err), Q_OK);
    assert_int_equal(gguf_open(ref_path, &ref, &err), Q_OK);
    assert_int_equal(gguf_open(src_path, &src, &err), Q_OK);
    assert_int_equal(out->n_tensors, ref->n_tensors);
    for (uint64_t i = 0; i < out->n_tensors; i++) {
        assert_true(out->tensors[i].name.len == ref->tensors[i].name.len &&
                    !memcmp(out->tensors[i].name.ptr, ref->tensors[i].name.ptr, ref->tensors[i].name.len));
        assert_int_equal(out->tensors[i].type, ref->tensors[i].type);
    }
    check_close_to_source("bf16 source", out, src);
    gguf_close(out);
    gguf_close(ref);
    gguf_close(src);
}

/* stories260K: 64-wide rows (not a multiple of 256) and a 172-wide ffn_down (not even a
 * multiple of 32): the fallback types. */
static void test_fallback_types_on_real_model(void **state) {
    (void)state;
    char src[512], out[512];
    model_path(src, sizeof src, "stories260K.gguf");
    snprintf(out, sizeof out, "%s/stories-q4km.gguf", test_tmp_dir);
    q_quant_target t;
    assert_true(q_quant_target_parse("Q4_K_M", &t));
    q_quantize_params p = { .target = t, .n_threads = 2 };
    q_quantize_stats st;
    q_error err;
    if (q_quantize_file(src, out, &p, &st, &err) != Q_OK) fail_msg("%s", err.msg);
    gguf_file *f = NULL;
    assert_int_equal(gguf_open(out, &f, &err), Q_OK);
    assert_int_equal(gguf_find_tensor(f, "output.weight")->type, Q_TYPE_Q8_0);       /* 64 % 256: Q8_0 */
    assert_int_equal(gguf_find_tensor(f, "token_embd.weight")->type, Q_TYPE_Q5_0);   /* Q4_K -> Q5_0 */
    assert_int_equal(gguf_find_tensor(f, "blk.0.attn_q.weight")->type, Q_TYPE_Q5_0);
    /* attn_v of 5 layers: use_more_bits picks layers 2 and 4 for Q6_K, whose fallback is Q8_0. */
    static const q_type attn_v[5] = { Q_TYPE_Q5_0, Q_TYPE_Q5_0, Q_TYPE_Q8_0, Q_TYPE_Q5_0, Q_TYPE_Q8_0 };
    for (int i = 0; i < 5; i++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", i);
        assert_int_equal(gguf_find_tensor(f, name)->type, attn_v[i]);
    }
    assert_int_equal(gguf_find_tensor(f, "blk.0.ffn_down.weight")->type, Q_TYPE_F16); /* 172 % 32 */
    assert_int_equal(gguf_find_tensor(f, "blk.0.ffn_norm.weight")->type, Q_TYPE_F32);
    assert_true(st.n_fallback > 0);
    gguf_close(f);
}

static void test_input_errors(void **state) {
    (void)state;
    char src[512], out[512];
    snprintf(out, sizeof out, "%s/err.gguf", test_tmp_dir);
    q_quant_target t;
    assert_true(q_quant_target_parse("Q4_K_M", &t));
    q_quantize_params p = { .target = t, .n_threads = 1 };
    q_error err;

    /* Requantizing: Q8_0 tensors cannot become Q4_K. */
    model_path(src, sizeof src, "llama-gqa-spm512-Q8_0.gguf");
    assert_int_equal(q_quantize_file(src, out, &p, NULL, &err), Q_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "q8_0"));
    assert_int_equal(access(out, F_OK), -1);   /* no half file */

    /* Already of the target type: copied as is. */
    assert_true(q_quant_target_parse("Q8_0", &p.target));
    assert_int_equal(q_quantize_file(src, out, &p, NULL, &err), Q_OK);

    model_path(src, sizeof src, "no-such-model.gguf");
    assert_int_equal(q_quantize_file(src, out, &p, NULL, &err), Q_ERR_IO);

    /* A NaN in a weight matrix: refused with the tensor's name, and no output. */
    char bad[512];
    snprintf(bad, sizeof bad, "%s/nan.gguf", test_tmp_dir);
    float w[64 * 4];
    for (int i = 0; i < 64 * 4; i++) w[i] = (float)(i % 7) - 3.0f;
    w[64 * 2 + 5] = NAN;
    gguf_writer *gw = gguf_writer_new();
    gguf_writer_set_str(gw, "general.architecture", "llama");
    gguf_writer_set_u32(gw, "llama.block_count", 1);
    const int64_t ne[2] = { 64, 4 };
    assert_int_equal(gguf_writer_add_tensor(gw, gguf_str_of("blk.0.ffn_up.weight"), Q_TYPE_F32, 2, ne, w, &err), Q_OK);
    assert_int_equal(gguf_writer_write(gw, bad, NULL, NULL, &err), Q_OK);
    gguf_writer_free(gw);
    unlink(out);
    assert_int_equal(q_quantize_file(bad, out, &p, NULL, &err), Q_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "blk.0.ffn_up.weight"));
    assert_non_null(strstr(err.msg, "row 2"));
    assert_int_equal(access(out, F_OK), -1);
}

/* ---- targets ------------------------------------------------------------------------ */

static void test_target_names(void **state) {
    (void)state;
    /* llama.cpp's ftype numbers (llama.h). */
    static const struct { const char *name; int ftype; bool pure; } want[] = {
        { "F32", 0, false },     { "f16", 1, false },     { "Q4_0", 2, false },    { "q4_1", 3, false },
        { "Q8_0", 7, false },    { "Q5_0", 8, false },    { "Q5_1", 9, false },    { "Q2_K", 10, false },
        { "Q3_K_S", 11, false }, { "q3_k_m", 12, false }, { "Q3_K_L", 13, false }, { "Q4_K_S", 14, false },
        { "q4_k_m", 15, false }, { "Q5_K_S", 16, false }, { "Q5_K_M", 17, false }, { "Q6_K", 18, false },
        { "IQ4_NL", 25, false }, { "bf16", 32, false },   { "MXFP4_MOE", 38, false },
        { "Q4_K", 15, true },    { "q3_k", 12, true },    { "Q5_K", 17, true },    { "mxfp4", 38, true },
    };
    for (size_t i = 0; i < Q_ARRAY_LEN(want); i++) {
        q_quant_target t;
        assert_true(q_quant_target_parse(want[i].name, &t));
        assert_int_equal(t.ftype, want[i].ftype);
        assert_int_equal(t.pure, want[i].pure);
    }
    q_quant_target t;
    assert_false(q_quant_target_parse("Q4_K_XL", &t));
    assert_false(q_quant_target_parse("", &t));
    assert_int_equal(q_ftype_base_type(Q_FTYPE_MOSTLY_Q4_K_M), Q_TYPE_Q4_K);
    assert_int_equal(q_ftype_base_type(Q_FTYPE_MOSTLY_Q3_K_L), Q_TYPE_Q3_K);
    assert_int_equal(q_ftype_base_type((q_ftype)4), Q_TYPE_COUNT);   /* removed Q4_1_F16 */
    assert_null(q_ftype_name((q_ftype)4));
}

/* ---- rules no golden covers (facts of llama_tensor_get_type) ---------------------- */

#define T2(nm, a, b) { .name = nm, .ne = { a, b, 1, 1 }, .type = Q_TYPE_F32 }

static q_type plan_one(const mix_model *m, const char *ftype_name, const mix_tensor *ts, size_t n, size_t which) {
    q_quant_target t;
    assert_true(q_quant_target_parse(ftype_name, &t));
    q_type types[256];
    assert_true(n <= 256);
    q_error err;
    assert_int_equal(mix_plan(m, t, ts, n, types, NULL, &err), Q_OK);
    return types[which];
}

static void test_rule_not_quantized(void **state) {
    (void)state;
    static const mix_tensor keep[] = {
        T2("blk.0.attn_norm.weight", 256, 1),      /* 1-D */
        T2("blk.0.ffn_gate_inp.weight", 256, 8),   /* router */
        T2("blk.0.ssm_conv1d.weight", 4, 256),     /* conv kernel */
        T2("position_embd.weight", 256, 512),      /* learned positions */
        T2("token_types.weight", 256, 2),
        T2("blk.0.ssm_norm.weight", 128, 2),       /* a 2-D norm */
        T2("blk.0.ssm_a", 1, 8),                   /* no .weight suffix */
        T2("blk.0.attn_q.bias", 256, 4),
        T2("blk.0.wide_row.weight", 256, 1),       /* trailing 1: 1-D for ggml */
    };
    mix_model m = { .n_layer = 1, .n_gqa = 1 };
    for (size_t i = 0; i < Q_ARRAY_LEN(keep); i++) {
        assert_false(mix_tensor_quantizable(&keep[i]));
        assert_int_equal(plan_one(&m, "Q4_K_M", keep, Q_ARRAY_LEN(keep), i), Q_TYPE_F32);
    }
    static const mix_tensor quant[] = { T2("blk.0.attn_q.weight", 256, 256), T2("blk.0.ssm_in.weight", 256, 512) };
    for (size_t i = 0; i < Q_ARRAY_LEN(quant); i++) assert_true(mix_tensor_quantizable(&quant[i]));
}

static void test_rule_more_bits_pattern(void **state) {
    (void)state;
    /* 32 layers of Q4_K_M: attn_v and ffn_down get Q6_K on layers i < 4, i >= 28, and
     * every third one between starting at 6. */
    mix_tensor ts[65];
    char names[64][40];
    for (int i = 0; i < 32; i++) {
        snprintf(names[2 * i], 40, "blk.%d.attn_v.weight", i);
        snprintf(names[2 * i + 1], 40, "blk.%d.ffn_down.weight", i);
        ts[2 * i] = (mix_tensor)T2(names[2 * i], 4096, 1024);
        ts[2 * i + 1] = (mix_tensor)T2(names[2 * i + 1], 14336, 4096);
    }
    ts[64] = (mix_tensor)T2("output.weight", 4096, 32000);
    mix_model m = { .n_layer = 32, .n_gqa = 4 };
    q_quant_target t = { Q_FTYPE_MOSTLY_Q4_K_M, false };
    q_type types[65];
    q_error err;
    assert_int_equal(mix_plan(&m, t, ts, 65, types, NULL, &err), Q_OK);
    static const int bumped[] = { 0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31 };
    for (int i = 0; i < 32; i++) {
        bool want = false;
        for (size_t k = 0; k < Q_ARRAY_LEN(bumped); k++) want |= bumped[k] == i;
        assert_int_equal(types[2 * i], want ? Q_TYPE_Q6_K : Q_TYPE_Q4_K);
        assert_int_equal(types[2 * i + 1], want ? Q_TYPE_Q6_K : Q_TYPE_Q4_K);
    }
    assert_int_equal(types[64], Q_TYPE_Q6_K);

    /* Q3_K_M on the same model: attn_v Q5_K for the first two, then Q4_K; ffn_down Q5_K
     * below n/16 = 2, then Q4_K (not falcon). */
    t.ftype = Q_FTYPE_MOSTLY_Q3_K_M;
    assert_int_equal(mix_plan(&m, t, ts, 65, types, NULL, &err), Q_OK);
    for (int i = 0; i < 32; i++) {
        assert_int_equal(types[2 * i], i < 2 ? Q_TYPE_Q5_K : Q_TYPE_Q4_K);
        assert_int_equal(types[2 * i + 1], i < 2 ? Q_TYPE_Q5_K : Q_TYPE_Q4_K);
    }
    /* Q4_K_S: attn_v Q5_K for the first four; ffn_down Q5_K below n/8 = 4. */
    t.ftype = Q_FTYPE_MOSTLY_Q4_K_S;
    assert_int_equal(mix_plan(&m, t, ts, 65, types, NULL, &err), Q_OK);
    for (int i = 0; i < 32; i++) {
        assert_int_equal(types[2 * i], i < 4 ? Q_TYPE_Q5_K : Q_TYPE_Q4_K);
        assert_int_equal(types[2 * i + 1], i < 4 ? Q_TYPE_Q5_K : Q_TYPE_Q4_K);
    }
    /* 70B (80-layer GQA llama): attn_v Q4_K -> Q5_K. */
    m.is_70b = true;
    assert_int_equal(mix_plan(&m, t, ts, 65, types, NULL, &err), Q_OK);
    for (int i = 0; i < 32; i++) assert_int_equal(types[2 * i], Q_TYPE_Q5_K);
}

static void test_rule_q2_k_and_experts(void **state) {
    (void)state;
    static const mix_tensor ts[] = {
        T2("token_embd.weight", 4096, 32000), T2("output.weight", 4096, 32000),
        T2("blk.0.attn_v.weight", 4096, 1024), T2("blk.0.attn_k.weight", 4096, 1024),
        T2("blk.0.attn_q.weight", 4096, 4096), T2("blk.0.attn_output.weight", 4096, 4096),
        T2("blk.0.ffn_down.weight", 14336, 4096), T2("blk.0.ffn_up.weight", 4096, 14336),
    };
    const size_t n = Q_ARRAY_LEN(ts);
    mix_model gqa4 = { .n_layer = 1, .n_gqa = 4 }, gqa2 = { .n_layer = 1, .n_gqa = 2 };
    assert_int_equal(plan_one(&gqa4, "Q2_K", ts, n, 2), Q_TYPE_Q4_K);
    assert_int_equal(plan_one(&gqa2, "Q2_K", ts, n, 2), Q_TYPE_Q3_K);
    assert_int_equal(plan_one(&gqa2, "Q2_K", ts, n, 5), Q_TYPE_Q3_K);   /* attn_output */
    assert_int_equal(plan_one(&gqa2, "Q2_K", ts, n, 6), Q_TYPE_Q3_K);   /* ffn_down */
    assert_int_equal(plan_one(&gqa2, "Q2_K", ts, n, 7), Q_TYPE_Q2_K);
    assert_int_equal(plan_one(&gqa2, "Q2_K", ts, n, 0), Q_TYPE_Q2_K);   /* untied embeddings */
    assert_int_equal(plan_one(&gqa2, "Q2_K", ts, n, 1), Q_TYPE_Q6_K);
    assert_int_equal(plan_one(&gqa2, "Q3_K_L", ts, n, 5), Q_TYPE_Q5_K);
    assert_int_equal(plan_one(&gqa2, "Q3_K_L", ts, n, 6), Q_TYPE_Q5_K);
    assert_int_equal(plan_one(&gqa2, "Q3_K_S", ts, n, 6), Q_TYPE_Q3_K);
    assert_int_equal(plan_one(&gqa4, "IQ4_NL", ts, n, 2), Q_TYPE_Q5_K);
    assert_int_equal(plan_one(&gqa2, "IQ4_NL", ts, n, 2), Q_TYPE_IQ4_NL);
    assert_int_equal(plan_one(&gqa2, "Q8_0", ts, n, 1), Q_TYPE_Q8_0);   /* output stays Q8_0 */
    assert_int_equal(plan_one(&gqa2, "Q5_0", ts, n, 1), Q_TYPE_Q6_K);
    assert_int_equal(plan_one(&gqa2, "F16", ts, n, 1), Q_TYPE_F16);
    assert_int_equal(plan_one(&gqa2, "Q4_K", ts, n, 1), Q_TYPE_Q4_K);   /* pure: no output rule */

    /* 8 experts (Mixtral): attn_v and attn_k Q8_0, attn_output Q5_K for Q4_K_M. */
    mix_tensor moe[] = {
        T2("output.weight", 4096, 32000), T2("blk.0.attn_v.weight", 4096, 1024),
        T2("blk.0.attn_k.weight", 4096, 1024), T2("blk.0.attn_output.weight", 4096, 4096),
        { .name = "blk.0.ffn_down_exps.weight", .ne = { 14336, 4096, 8, 1 }, .type = Q_TYPE_F32 },
    };
    mix_model e8 = { .n_layer = 1, .n_expert = 8, .n_gqa = 4 };
    assert_int_equal(plan_one(&e8, "Q4_K_M", moe, 5, 1), Q_TYPE_Q8_0);
    assert_int_equal(plan_one(&e8, "Q4_K_M", moe, 5, 2), Q_TYPE_Q8_0);
    assert_int_equal(plan_one(&e8, "Q4_K_M", moe, 5, 3), Q_TYPE_Q5_K);
    assert_int_equal(plan_one(&e8, "Q4_K_M", moe, 5, 4), Q_TYPE_Q6_K);   /* layer 0 of 1 */
    assert_int_equal(plan_one(&e8, "MXFP4_MOE", moe, 5, 4), Q_TYPE_MXFP4);
    assert_int_equal(plan_one(&e8, "MXFP4_MOE", moe, 5, 3), Q_TYPE_Q8_0);
    assert_int_equal(plan_one(&e8, "MXFP4_MOE", moe, 5, 0), Q_TYPE_Q8_0);

    /* MoE layer numbers come from the names; a tensor without one is an error. */
    mix_tensor bad[] = { { .name = "ffn_down_exps.weight", .ne = { 256, 256, 4, 1 }, .type = Q_TYPE_F32 } };
    mix_model e4 = { .n_layer = 1, .n_expert = 4 };
    q_type ty;
    q_error err;
    q_quant_target t = { Q_FTYPE_MOSTLY_Q4_K_M, false };
    assert_int_equal(mix_plan(&e4, t, bad, 1, &ty, NULL, &err), Q_ERR_FORMAT);
    /* A block number past int (sscanf's %d would be undefined): not a layer, an error. */
    mix_tensor huge[] = { { .name = "blk.99999999999999999999.ffn_down_exps.weight", .ne = { 256, 256, 4, 1 },
                            .type = Q_TYPE_F32 } };
    assert_int_equal(mix_plan(&e4, t, huge, 1, &ty, NULL, &err), Q_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "cannot determine the layer"));
}

/* "blk.N." with N in 0..MIX_MAX_LAYER, plain digits: anything else is not a block. */
static void test_block_number(void **state) {
    (void)state;
    static const struct { const char *name; int want; } cases[] = {
        { "blk.0.attn_q.weight", 0 }, { "blk.17.ffn_up.weight", 17 }, { "blk.007.x", 7 },
        { "blk.1048576.x", 1048576 }, { "blk.1048577.x", -1 }, { "blk.2147483648.x", -1 },
        { "blk.99999999999999999999.x", -1 }, { "blk.-1.x", -1 }, { "blk.+1.x", -1 },
        { "blk. 1.x", -1 }, { "blk.1", -1 }, { "blk.1x.y", -1 }, { "blk..x", -1 }, { "blk.", -1 },
        { "output.weight", -1 }, { "xblk.1.y", -1 },
    };
    for (size_t i = 0; i < Q_ARRAY_LEN(cases); i++)
        if (mix_block_number(cases[i].name) != cases[i].want)
            fail_msg("%s: got %d, want %d", cases[i].name, mix_block_number(cases[i].name), cases[i].want);
}

/* Scratch rows are sized by the tensors that are converted, not by one that is only
 * copied: a 1-D norm of 65536 floats stays F32, the 64-wide matrix becomes Q8_0, so two
 * threads need 2 x 64 x 4 bytes. A tensor named blk.<huge>. sorts as a non-block one. */
static void test_scratch_and_odd_names(void **state) {
    (void)state;
    char in[512], out[512];
    snprintf(in, sizeof in, "%s/scratch.gguf", test_tmp_dir);
    snprintf(out, sizeof out, "%s/scratch-q8.gguf", test_tmp_dir);
    static float norm[65536], mat[64 * 4];
    for (int i = 0; i < 64 * 4; i++) mat[i] = (float)(i % 5) - 2.0f;
    gguf_writer *gw = gguf_writer_new();
    q_error err;
    gguf_writer_set_str(gw, "general.architecture", "llama");
    gguf_writer_set_u32(gw, "llama.block_count", 1);
    const int64_t ne_norm[1] = { 65536 }, ne_mat[2] = { 64, 4 };
    assert_int_equal(gguf_writer_add_tensor(gw, gguf_str_of("blk.99999999999999999999.norm.weight"), Q_TYPE_F32, 1,
                                            ne_norm, norm, &err), Q_OK);
    assert_int_equal(gguf_writer_add_tensor(gw, gguf_str_of("blk.0.ffn_up.weight"), Q_TYPE_F32, 2, ne_mat, mat, &err),
                     Q_OK);
    assert_int_equal(gguf_writer_write(gw, in, NULL, NULL, &err), Q_OK);
    gguf_writer_free(gw);
    q_quantize_params p = { .n_threads = 2 };
    assert_true(q_quant_target_parse("Q8_0", &p.target));
    q_quantize_stats st;
    assert_int_equal(q_quantize_file(in, out, &p, &st, &err), Q_OK);
    assert_int_equal(st.n_converted, 1);
    assert_int_equal(st.scratch_bytes, 2 * 64 * sizeof(float));
    gguf_file *f = NULL;
    assert_int_equal(gguf_open(out, &f, &err), Q_OK);
    assert_int_equal(f->n_tensors, 2);
    /* llama.cpp's order: non-block tensors (layer -1) first, then block 0. */
    assert_true(gguf_str_eq(f->tensors[0].name, "blk.99999999999999999999.norm.weight"));
    assert_int_equal(f->tensors[0].type, Q_TYPE_F32);
    assert_true(gguf_str_eq(f->tensors[1].name, "blk.0.ffn_up.weight"));
    assert_int_equal(f->tensors[1].type, Q_TYPE_Q8_0);
    gguf_close(f);
    unlink(in);
    unlink(out);
}

static void test_rule_row_fallbacks(void **state) {
    (void)state;
    static const struct { const char *ftype; int64_t ne0; q_type want; } cases[] = {
        { "Q4_K", 128, Q_TYPE_Q5_0 }, { "Q5_K", 128, Q_TYPE_Q5_1 }, { "Q6_K", 64, Q_TYPE_Q8_0 },
        { "Q2_K", 96, Q_TYPE_Q4_0 },  { "Q3_K_S", 160, Q_TYPE_Q4_0 }, { "Q4_K", 100, Q_TYPE_F16 },
        { "Q8_0", 100, Q_TYPE_F16 },  { "Q4_0", 48, Q_TYPE_F16 },  { "Q4_K", 512, Q_TYPE_Q4_K },
    };
    mix_model m = { .n_layer = 1, .n_gqa = 1 };
    for (size_t i = 0; i < Q_ARRAY_LEN(cases); i++) {
        mix_tensor t = T2("blk.0.ffn_up.weight", cases[i].ne0, 64);
        assert_int_equal(plan_one(&m, cases[i].ftype, &t, 1, 0), cases[i].want);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_target_names),
        cmocka_unit_test(test_rule_not_quantized),
        cmocka_unit_test(test_rule_more_bits_pattern),
        cmocka_unit_test(test_rule_q2_k_and_experts),
        cmocka_unit_test(test_rule_row_fallbacks),
        cmocka_unit_test(test_plan_matches_llama_cpp),
        cmocka_unit_test(test_quantize_matches_llama_cpp),
        cmocka_unit_test(test_every_target),
        cmocka_unit_test(test_bf16_source),
        cmocka_unit_test(test_deterministic_across_threads),
        cmocka_unit_test(test_fallback_types_on_real_model),
        cmocka_unit_test(test_input_errors),
        cmocka_unit_test(test_block_number),
        cmocka_unit_test(test_scratch_and_odd_names),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    json_decref(manifest);
    return rc;
}
