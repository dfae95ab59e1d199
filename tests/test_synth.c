/* test_synth.c — src/model/synth.c: random-weight models of real shapes.
 *
 * The tiny shape (llama, 256 embd, 2 layers, 4/2 heads, ffn 512, stories260K's 512-token
 * vocab) is written at several targets and read back with gguf_open:
 *   - the hyperparameter keys and general.* keys hold the shape's values;
 *   - every tensor of a converted llama checkpoint is there with its ggml dims, and
 *     its type is what llama-quantize chooses, from an expectation table written here
 *     from llama.cpp's rules (not from src/quant/mix.c): e.g. Q4_K_M's output.weight is
 *     Q6_K and its attn_v/ffn_down are Q6_K in layer 1 (use_more_bits) only;
 *   - the tokenizer.* key/values are exactly the vocab file's (also for a BPE vocab
 *     with merges);
 *   - the bytes are a function of the seed (same seed: same file at 1 and 2 threads;
 *     other seed: other file);
 *   - every block dequantizes to finite values at the scale of real weights.
 * The shape table is checked against the published configs of the models it names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/base.h"
#include "quarrel/gguf.h"
#include "quarrel/synth.h"
#include "quarrel/types.h"

#include "test_util.h"

/* ---- fixtures ---------------------------------------------------------------------- */

static int group_setup(void **state) {
    (void)state;
    return test_tmpdir_setup("synth");
}

static int group_teardown(void **state) {
    (void)state;
    return test_tmpdir_teardown();
}

static void shared_path(char *out, size_t n, const char *rel) {
    snprintf(out, n, "%s/%s", test_shared_dir(), rel);
}

/* Writes shape `shape` at `type` to test_tmp_dir/name; returns the opened file. */
static gguf_file *synth_tiny(const char *name, const char *type, const char *vocab_rel, uint64_t seed, int threads,
                             char *path, size_t n) {
    char vocab[512];
    shared_path(vocab, sizeof vocab, vocab_rel);
    snprintf(path, n, "%s/%s", test_tmp_dir, name);
    q_synth_params p = { .shape = q_synth_shape_find("tiny"), .vocab_path = vocab, .seed = seed,
                         .n_threads = threads };
    assert_non_null(p.shape);
    assert_true(q_quant_target_parse(type, &p.target));
    q_synth_stats st;
    q_error err;
    q_status s = q_synth_write(path, &p, &st, &err);
    if (s != Q_OK) fail_msg("synth %s: %s", type, err.msg);
    gguf_file *f = NULL;
    if (gguf_open(path, &f, &err) != Q_OK) fail_msg("gguf_open %s: %s", path, err.msg);
    assert_int_equal(st.n_tensors, f->n_tensors);
    assert_int_equal(st.out_size, f->size);
    return f;
}

static uint64_t get_u64(const gguf_file *f, const char *key) {
    uint64_t v;
    if (!gguf_get_u64(f, key, &v)) fail_msg("missing integer key %s", key);
    return v;
}

/* ---- expected layout (llama.cpp facts) ----------------------------------------------- */

enum { TINY_EMBD = 256, TINY_FF = 512, TINY_KV = 128 /* 2 KV heads x 64 */, TINY_VOCAB = 512 };

typedef enum tkind { K_EMBD, K_OUTPUT, K_NORM, K_Q, K_K, K_V, K_O, K_GATE, K_UP, K_DOWN } tkind;

typedef struct expect_tensor {
    char    name[64];
    tkind   kind;
    int     layer;
    int64_t ne0, ne1;   /* ne1 = 1 for vectors */
} expect_tensor;

static size_t tiny_expected(expect_tensor *e) {
    size_t n = 0;
#define ADD(nm, k, l, a, b) do { snprintf(e[n].name, sizeof e[n].name, "%s", nm); \
        e[n].kind = k; e[n].layer = l; e[n].ne0 = a; e[n].ne1 = b; n++; } while (0)
    ADD("token_embd.weight", K_EMBD, -1, TINY_EMBD, TINY_VOCAB);
    ADD("output.weight", K_OUTPUT, -1, TINY_EMBD, TINY_VOCAB);
    ADD("output_norm.weight", K_NORM, -1, TINY_EMBD, 1);
    for (int l = 0; l < 2; l++) {
        char nm[64];
#define BLK(suf, k, a, b) do { snprintf(nm, sizeof nm, "blk.%d." suf, l); ADD(nm, k, l, a, b); } while (0)
        BLK("attn_norm.weight", K_NORM, TINY_EMBD, 1);
        BLK("attn_q.weight", K_Q, TINY_EMBD, TINY_EMBD);
        BLK("attn_k.weight", K_K, TINY_EMBD, TINY_KV);
        BLK("attn_v.weight", K_V, TINY_EMBD, TINY_KV);
        BLK("attn_output.weight", K_O, TINY_EMBD, TINY_EMBD);
        BLK("ffn_norm.weight", K_NORM, TINY_EMBD, 1);
        BLK("ffn_gate.weight", K_GATE, TINY_EMBD, TINY_FF);
        BLK("ffn_up.weight", K_UP, TINY_EMBD, TINY_FF);
        BLK("ffn_down.weight", K_DOWN, TINY_FF, TINY_EMBD);
#undef BLK
    }
#undef ADD
    return n;
}

/* llama-quantize's choice for the tiny model (2 layers, GQA 2, untied output):
 * use_more_bits(i, 2) holds for layer 1 only (i >= 7n/8); n/8 = n/16 = 0. */
static q_type expected_type(const char *target, const expect_tensor *t) {
    if (t->kind == K_NORM) return Q_TYPE_F32;
    if (!strcmp(target, "F32")) return Q_TYPE_F32;
    if (!strcmp(target, "F16")) return Q_TYPE_F16;
    if (!strcmp(target, "BF16")) return Q_TYPE_BF16;
    if (!strcmp(target, "Q8_0")) return Q_TYPE_Q8_0;   /* output stays Q8_0 for Q8_0 */
    if (t->kind == K_OUTPUT) return Q_TYPE_Q6_K;         /* every other quantized target */
    if (!strcmp(target, "Q4_0")) return Q_TYPE_Q4_0;
    if (!strcmp(target, "Q5_1")) return Q_TYPE_Q5_1;
    if (!strcmp(target, "IQ4_NL")) return Q_TYPE_IQ4_NL;   /* GQA < 4: attn_v not bumped */
    if (!strcmp(target, "Q6_K")) return Q_TYPE_Q6_K;
    if (!strcmp(target, "Q4_K_M")) {
        if ((t->kind == K_V || t->kind == K_DOWN) && t->layer == 1) return Q_TYPE_Q6_K;
        return Q_TYPE_Q4_K;
    }
    if (!strcmp(target, "Q3_K_M")) {
        if (t->kind == K_V) return Q_TYPE_Q5_K;                         /* i < 2 */
        if (t->kind == K_DOWN || t->kind == K_O) return Q_TYPE_Q4_K;    /* not falcon */
        return Q_TYPE_Q3_K;
    }
    fail_msg("no expectation for %s", target);
    return Q_TYPE_COUNT;
}

static const struct { const char *target; uint32_t ftype; } targets[] = {
    { "F32", 0 }, { "F16", 1 }, { "BF16", 32 }, { "Q8_0", 7 }, { "Q4_0", 2 }, { "Q5_1", 9 },
    { "IQ4_NL", 25 }, { "Q6_K", 18 }, { "Q4_K_M", 15 }, { "Q3_K_M", 12 },
};

/* ---- checks ------------------------------------------------------------------------ */

static void check_hparams(const gguf_file *f, uint32_t ftype) {
    gguf_str s;
    assert_true(gguf_get_str(f, "general.architecture", &s));
    assert_true(gguf_str_eq(s, "llama"));
    assert_true(gguf_get_str(f, "general.name", &s));
    assert_int_equal(get_u64(f, "general.file_type"), ftype);
    assert_int_equal(get_u64(f, "general.quantization_version"), 2);
    assert_int_equal(get_u64(f, "llama.context_length"), 2048);
    assert_int_equal(get_u64(f, "llama.embedding_length"), TINY_EMBD);
    assert_int_equal(get_u64(f, "llama.block_count"), 2);
    assert_int_equal(get_u64(f, "llama.feed_forward_length"), TINY_FF);
    assert_int_equal(get_u64(f, "llama.attention.head_count"), 4);
    assert_int_equal(get_u64(f, "llama.attention.head_count_kv"), 2);
    assert_int_equal(get_u64(f, "llama.rope.dimension_count"), 64);
    assert_int_equal(get_u64(f, "llama.vocab_size"), TINY_VOCAB);
    double d;
    assert_true(gguf_get_f64(f, "llama.rope.freq_base", &d));
    assert_true(d == 10000.0);
    assert_true(gguf_get_f64(f, "llama.attention.layer_norm_rms_epsilon", &d));
    assert_true(fabs(d - 1e-5) < 1e-9);
    assert_null(gguf_find(f, "llama.attention.sliding_window"));
}

/* Dequantizes every row: finite, matrices ~N(0, 0.02), norms ~1. */
static void check_values(const gguf_tensor_info *ti, bool is_norm) {
    const q_type_traits *tr = q_type_get(ti->type);
    assert_non_null(tr);
    assert_non_null(tr->to_float);
    const int64_t ne0 = ti->ne[0], rows = ti->ne[1];
    const size_t rs = q_row_size(ti->type, ne0);
    float *row = malloc((size_t)ne0 * sizeof *row);
    double sum = 0, sum2 = 0;
    for (int64_t r = 0; r < rows; r++) {
        tr->to_float((const uint8_t *)ti->data + (size_t)r * rs, row, ne0);
        for (int64_t k = 0; k < ne0; k++) {
            if (!isfinite(row[k])) fail_msg("%.*s row %lld: non-finite value", (int)ti->name.len, ti->name.ptr, (long long)r);
            if (is_norm && fabsf(row[k] - 1.0f) > 0.05f)
                fail_msg("%.*s: norm gain %g", (int)ti->name.len, ti->name.ptr, row[k]);
            if (!is_norm && fabsf(row[k]) > 0.5f)
                fail_msg("%.*s: weight %g far outside N(0, 0.02)", (int)ti->name.len, ti->name.ptr, row[k]);
            sum += row[k];
            sum2 += (double)row[k] * row[k];
        }
    }
    free(row);
    if (!is_norm) {
        double n = (double)(ne0 * rows), mean = sum / n, sd = sqrt(sum2 / n - mean * mean);
        if (fabs(mean) > 0.005 || sd < 0.012 || sd > 0.03)
            fail_msg("%.*s (%s): mean %g sd %g, want ~0 and ~0.02", (int)ti->name.len, ti->name.ptr, tr->name, mean, sd);
    }
}

/* Deep equality of two values (same type, same content). */
static bool value_eq(const gguf_value *a, const gguf_value *b) {
    if (a->type != b->type) return false;
    switch (a->type) {
    case GGUF_VT_STRING:
        return a->str.len == b->str.len && !memcmp(a->str.ptr, b->str.ptr, a->str.len);
    case GGUF_VT_ARRAY:
        if (a->arr.type != b->arr.type || a->arr.n != b->arr.n) return false;
        if (a->arr.type == GGUF_VT_STRING) {
            for (uint64_t i = 0; i < a->arr.n; i++)
                if (a->arr.strs[i].len != b->arr.strs[i].len ||
                    memcmp(a->arr.strs[i].ptr, b->arr.strs[i].ptr, a->arr.strs[i].len))
                    return false;
            return true;
        }
        if (a->arr.type == GGUF_VT_ARRAY) return false;   /* no nested arrays in tokenizers */
        return !memcmp(a->arr.data, b->arr.data, a->arr.n * gguf_vtype_size(a->arr.type));
    case GGUF_VT_FLOAT32: case GGUF_VT_FLOAT64:
        return a->f64 == b->f64;
    case GGUF_VT_BOOL:
        return a->b == b->b;
    case GGUF_VT_INT8: case GGUF_VT_INT16: case GGUF_VT_INT32: case GGUF_VT_INT64:
        return a->i64 == b->i64;
    default:
        return a->u64 == b->u64;
    }
}

/* Every tokenizer.* key of the vocab is in f with an equal value, and f has no other. */
static void check_tokenizer(const gguf_file *f, const char *vocab_rel) {
    char vpath[512];
    shared_path(vpath, sizeof vpath, vocab_rel);
    gguf_file *v = NULL;
    q_error err;
    assert_int_equal(gguf_open(vpath, &v, &err), Q_OK);
    int n_vocab_keys = 0, n_file_keys = 0;
    for (uint64_t i = 0; i < v->n_kv; i++) {
        const gguf_kv *kv = &v->kv[i];
        if (kv->key.len < 10 || memcmp(kv->key.ptr, "tokenizer.", 10)) continue;
        n_vocab_keys++;
        char *key = gguf_str_dup(kv->key);
        const gguf_kv *got = gguf_find(f, key);
        if (!got) fail_msg("tokenizer key %s missing", key);
        if (!value_eq(&kv->val, &got->val)) fail_msg("tokenizer key %s differs from the vocab's", key);
        free(key);
    }
    for (uint64_t i = 0; i < f->n_kv; i++)
        n_file_keys += f->kv[i].key.len >= 10 && !memcmp(f->kv[i].key.ptr, "tokenizer.", 10);
    assert_int_equal(n_file_keys, n_vocab_keys);
    assert_true(n_vocab_keys >= 3);   /* model, tokens, token_type at least */
    gguf_close(v);
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_tiny_every_target(void **state) {
    (void)state;
    expect_tensor exp[32];
    size_t n_exp = tiny_expected(exp);
    for (size_t t = 0; t < Q_ARRAY_LEN(targets); t++) {
        char path[512], name[64];
        snprintf(name, sizeof name, "tiny-%s.gguf", targets[t].target);
        gguf_file *f = synth_tiny(name, targets[t].target, "models/stories260K.gguf", 1, 2, path, sizeof path);
        check_hparams(f, targets[t].ftype);
        check_tokenizer(f, "models/stories260K.gguf");
        assert_int_equal(f->n_tensors, n_exp);
        for (size_t i = 0; i < n_exp; i++) {
            const gguf_tensor_info *ti = gguf_find_tensor(f, exp[i].name);
            if (!ti) fail_msg("%s: tensor %s missing", targets[t].target, exp[i].name);
            assert_int_equal(ti->n_dims, exp[i].ne1 > 1 ? 2 : 1);
            assert_int_equal(ti->ne[0], exp[i].ne0);
            assert_int_equal(ti->ne[1], exp[i].ne1);
            q_type want = expected_type(targets[t].target, &exp[i]);
            if (ti->type != want)
                fail_msg("%s: %s is %s, llama-quantize makes it %s", targets[t].target, exp[i].name,
                         q_type_name(ti->type), q_type_name(want));
            check_values(ti, exp[i].kind == K_NORM);
        }
        gguf_close(f);
        unlink(path);
    }
}

/* A BPE vocab (merges, pre-tokenizer): copied verbatim; n_vocab follows it. */
static void test_bpe_vocab(void **state) {
    (void)state;
    char path[512];
    gguf_file *f = synth_tiny("tiny-starcoder.gguf", "Q4_0", "vocab/ggml-vocab-starcoder.gguf", 3, 2, path,
                              sizeof path);
    check_tokenizer(f, "vocab/ggml-vocab-starcoder.gguf");
    assert_non_null(gguf_get_arr(f, "tokenizer.ggml.merges"));
    assert_int_equal(get_u64(f, "llama.vocab_size"), 49152);
    const gguf_tensor_info *te = gguf_find_tensor(f, "token_embd.weight");
    assert_non_null(te);
    assert_int_equal(te->ne[1], 49152);
    assert_int_equal(gguf_find_tensor(f, "output.weight")->ne[1], 49152);
    gguf_close(f);
    unlink(path);
}

static bool files_equal(const char *a, const char *b) {
    gguf_file *fa = NULL, *fb = NULL;
    assert_int_equal(gguf_open(a, &fa, NULL), Q_OK);
    assert_int_equal(gguf_open(b, &fb, NULL), Q_OK);
    bool eq = fa->size == fb->size && !memcmp(fa->base, fb->base, fa->size);
    gguf_close(fa);
    gguf_close(fb);
    return eq;
}

static void test_deterministic(void **state) {
    (void)state;
    char p1[512], p2[512], p3[512];
    gguf_close(synth_tiny("seed7-t1.gguf", "Q4_K_M", "models/stories260K.gguf", 7, 1, p1, sizeof p1));
    gguf_close(synth_tiny("seed7-t2.gguf", "Q4_K_M", "models/stories260K.gguf", 7, 2, p2, sizeof p2));
    gguf_close(synth_tiny("seed8-t2.gguf", "Q4_K_M", "models/stories260K.gguf", 8, 2, p3, sizeof p3));
    assert_true(files_equal(p1, p2));
    assert_false(files_equal(p1, p3));
    /* Different seeds differ in the weights, not just somewhere: compare one matrix. */
    gguf_file *a = NULL, *b = NULL;
    assert_int_equal(gguf_open(p1, &a, NULL), Q_OK);
    assert_int_equal(gguf_open(p3, &b, NULL), Q_OK);
    const gguf_tensor_info *ta = gguf_find_tensor(a, "blk.0.attn_q.weight"), *tb = gguf_find_tensor(b, "blk.0.attn_q.weight");
    assert_true(ta->nbytes == tb->nbytes && memcmp(ta->data, tb->data, ta->nbytes) != 0);
    gguf_close(a);
    gguf_close(b);
}

static void test_bad_vocab(void **state) {
    (void)state;
    char out[512];
    snprintf(out, sizeof out, "%s/never.gguf", test_tmp_dir);
    q_synth_params p = { .shape = q_synth_shape_find("tiny"), .vocab_path = "/nonexistent/vocab.gguf", .seed = 1 };
    assert_true(q_quant_target_parse("Q8_0", &p.target));
    q_error err;
    assert_int_equal(q_synth_write(out, &p, NULL, &err), Q_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/vocab.gguf"));
    /* A valid GGUF without a tokenizer. */
    p.vocab_path = "tests/data/valid-all_types.gguf";
    assert_int_equal(q_synth_write(out, &p, NULL, &err), Q_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "tokenizer"));
    assert_int_equal(access(out, F_OK), -1);   /* nothing written */
}

/* The table's rows against the models' published config.json values. */
static void test_shape_table(void **state) {
    (void)state;
    static const struct {
        const char *name, *arch;
        uint32_t embd, layer, ff, head, head_kv, vocab, ctx, swa;
        float base;
        bool tied;
    } facts[] = {
        { "tinyllama-1.1b", "llama", 2048, 22,  5632, 32,  4, 32000,  2048,    0, 10000.0f,  false },
        { "llama-7b",     "llama",   4096, 32, 11008, 32, 32, 32000,  4096,    0, 10000.0f,  false },
        { "mistral-7b",   "llama",   4096, 32, 14336, 32,  8, 32000, 32768, 4096, 10000.0f,  false },
        { "smollm2-360m", "llama",    960, 32,  2560, 15,  5, 49152,  8192,    0, 100000.0f, true  },
        { "granite-3b",   "granite", 2048, 40,  8192, 32,  8, 49155,  4096,    0, 10000.0f,  true  },
    };
    for (size_t i = 0; i < Q_ARRAY_LEN(facts); i++) {
        const q_synth_shape *s = q_synth_shape_find(facts[i].name);
        if (!s) fail_msg("no shape %s", facts[i].name);
        assert_string_equal(s->arch, facts[i].arch);
        assert_int_equal(s->n_embd, facts[i].embd);
        assert_int_equal(s->n_layer, facts[i].layer);
        assert_int_equal(s->n_ff, facts[i].ff);
        assert_int_equal(s->n_head, facts[i].head);
        assert_int_equal(s->n_head_kv, facts[i].head_kv);
        assert_int_equal(s->n_vocab_real, facts[i].vocab);
        assert_int_equal(s->n_ctx, facts[i].ctx);
        assert_int_equal(s->sliding_window, facts[i].swa);
        assert_true(s->rope_base == facts[i].base);
        assert_int_equal(s->tied, facts[i].tied);
        char vocab[512];
        shared_path(vocab, sizeof vocab, s->vocab);
        if (access(vocab, R_OK) != 0) fail_msg("%s: default vocab %s not found", s->name, vocab);
    }
    const q_synth_shape *g = q_synth_shape_find("granite-3b");
    assert_true(g->embedding_scale == 12.0f && g->residual_scale == 0.22f && g->attention_scale == 0.015625f &&
                g->logit_scale == 8.0f);
    /* the names are the table's; the older names stay accepted */
    assert_ptr_equal(q_synth_shape_find("tinyllama"), q_synth_shape_find("tinyllama-1.1b"));
    assert_ptr_equal(q_synth_shape_find("llama2-7b"), q_synth_shape_find("llama-7b"));
    assert_null(q_synth_shape_find("nope"));
    size_t n = 0;
    while (q_synth_shape_at(n)) n++;
    assert_int_equal(n, Q_ARRAY_LEN(facts) + 1);   /* + tiny */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_table),
        cmocka_unit_test(test_tiny_every_target),
        cmocka_unit_test(test_bpe_vocab),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_bad_vocab),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
