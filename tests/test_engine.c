/* test_engine.c — the engine API and KV cache (src/runtime/engine.c, kv_cache.c,
 * src/model/registry.c) on llama-gqa-spm512-F32:
 *   - interleaved sequences in one batch give the same logits as each sequence alone,
 *   - a token never reads another sequence's cells (their K/V poisoned with NaN),
 *   - seq_rm + re-decode, seq_cp of a shared prefix, seq_keep, seq_add (context shift:
 *     re-roped K keeps logits invariant under a shift of every position),
 *   - a full cache is a clear Q_ERR_LIMIT that changes nothing; bad ids are rejected,
 *   - loading names a missing or mis-shaped tensor (files written with the GGUF writer),
 *   - chat rendering uses the file's template, or ChatML when there is none,
 *   - sliding-window attention limits what a token sees (receptive-field check).
 * "Same logits" means rel L2 <= 1e-5 (same arithmetic per row; only summation order in
 * attention may differ), except after a context shift (F16 cache: K rounded twice). */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <unistd.h>
#include <cmocka.h>

#include "golden_util.h"
#include "quarrel/gguf.h"
#include "quarrel/quarrel.h"
#include "runtime/kv_cache.h"

static q_model *model;
static int32_t V;
static const q_token A[12] = { 1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315 };
static const q_token B[10] = { 1, 72, 260, 486, 301, 288, 110, 330, 277, 263 };
static char model_path[1024];

static int setup(void **state) {
    (void)state;
    snprintf(model_path, sizeof model_path, "%s/models/llama-gqa-spm512-F32.gguf", golden_shared_dir());
    q_error err;
    if (q_model_load(model_path, &model, &err) != Q_OK) {
        fprintf(stderr, "cannot load %s: %s\n", model_path, err.msg);
        return -1;
    }
    V = q_model_n_vocab(model);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    q_model_free(model);
    return 0;
}

static q_context *new_ctx(int n_ctx, int n_seq, q_type kv) {
    q_context_params p = q_context_default_params();
    p.n_ctx = n_ctx;
    p.n_seq_max = n_seq;
    p.kv_type = kv;
    q_context *c = NULL;
    q_error err;
    assert_int_equal(q_context_new(model, &p, &c, &err), Q_OK);
    return c;
}

/* Decodes toks[0..n) at positions p0.. in seq; copies all logits rows into out. */
static void decode(q_context *c, const q_token *toks, int n, q_pos p0, q_seq_id seq, float *out) {
    q_batch b = q_batch_init(n);
    for (int i = 0; i < n; i++) q_batch_add(&b, toks[i], p0 + i, seq, true);
    q_error err;
    if (q_decode(c, &b, &err) != Q_OK) fail_msg("decode: %s", err.msg);
    for (int i = 0; i < n && out; i++) memcpy(out + (size_t)i * V, q_get_logits_ith(c, i), sizeof(float) * V);
    q_batch_free(&b);
}

static void expect_rows(const float *got, const float *want, int n, double tol) {
    for (int i = 0; i < n; i++) {
        const double rel = golden_rel_l2(got + (size_t)i * V, want + (size_t)i * V, V);
        if (!(rel <= tol)) fail_msg("row %d: rel %.3g > %.3g", i, rel, tol);
    }
}

static void test_interleaved_sequences(void **state) {
    (void)state;
    float *la = malloc(sizeof(float) * V * 12), *lb = malloc(sizeof(float) * V * 10);
    q_context *c = new_ctx(64, 1, Q_TYPE_F16);
    decode(c, A, 12, 0, 0, la);
    q_kv_clear(c);
    decode(c, B, 10, 0, 0, lb);
    q_context_free(c);

    c = new_ctx(64, 2, Q_TYPE_F16);
    q_batch b = q_batch_init(22);
    for (int i = 0; i < 12; i++) {   /* A0 B0 A1 B1 ... then the rest of A */
        q_batch_add(&b, A[i], i, 0, true);
        if (i < 10) q_batch_add(&b, B[i], i, 1, true);
    }
    q_error err;
    assert_int_equal(q_decode(c, &b, &err), Q_OK);
    float *ga = malloc(sizeof(float) * V * 12), *gb = malloc(sizeof(float) * V * 10);
    for (int i = 0, ia = 0, ib = 0; i < b.n_tokens; i++) {
        float *dst = b.seq_id[i] == 0 ? ga + (size_t)ia++ * V : gb + (size_t)ib++ * V;
        memcpy(dst, q_get_logits_ith(c, i), sizeof(float) * V);
    }
    expect_rows(ga, la, 12, 1e-5);
    expect_rows(gb, lb, 10, 1e-5);
    assert_int_equal(q_kv_seq_pos_max(c, 0), 11);
    assert_int_equal(q_kv_seq_pos_max(c, 1), 9);
    assert_int_equal(q_kv_n_used(c), 22);

    /* seq_keep(1) drops every cell of seq 0 */
    q_kv_seq_keep(c, 1);
    assert_int_equal(q_kv_n_used(c), 10);
    assert_int_equal(q_kv_seq_pos_max(c, 0), -1);
    q_batch_free(&b);
    q_context_free(c);
    free(la); free(lb); free(ga); free(gb);
}

static void test_seq_rm_and_cp(void **state) {
    (void)state;
    float *la = malloc(sizeof(float) * V * 12), *lx = malloc(sizeof(float) * V * 12);
    q_context *c = new_ctx(64, 2, Q_TYPE_F16);
    decode(c, A, 12, 0, 0, la);
    /* drop positions 8.. and decode them again: same logits */
    assert_true(q_kv_seq_rm(c, 0, 8, -1));
    assert_int_equal(q_kv_seq_pos_max(c, 0), 7);
    decode(c, A + 8, 4, 8, 0, lx);
    expect_rows(lx, la + (size_t)8 * V, 4, 1e-5);

    /* share the prefix 0..7 with seq 1, continue seq 1 from there */
    q_kv_seq_rm(c, 0, 8, -1);
    q_kv_seq_cp(c, 0, 1, 0, 8);
    assert_int_equal(q_kv_n_used(c), 8);   /* shared cells are not copied */
    decode(c, A + 8, 4, 8, 1, lx);
    expect_rows(lx, la + (size_t)8 * V, 4, 1e-5);
    /* seq 0 does not see seq 1's new cells: continuing seq 0 gives the same rows too */
    decode(c, A + 8, 4, 8, 0, lx);
    expect_rows(lx, la + (size_t)8 * V, 4, 1e-5);
    /* removing seq 0 keeps the shared cells alive for seq 1 */
    q_kv_seq_rm(c, 0, -1, -1);
    assert_int_equal(q_kv_n_used(c), 12);
    q_context_free(c);
    free(la); free(lx);
}

/* Context shift moves cells to new positions and re-ropes their K by the delta. RoPE
 * scores depend only on position differences, so shifting the whole sequence by +5 and
 * decoding the next token 5 positions later must reproduce the unshifted logits. A
 * missing re-rope would misalign q and k by 5 positions (rel error ~0.2). */
static void test_seq_add_shift(void **state) {
    (void)state;
    const q_token next = 286;
    float *want = malloc(sizeof(float) * V), *got = malloc(sizeof(float) * V);
    for (int kv = 0; kv < 2; kv++) {
        const q_type t = kv ? Q_TYPE_F32 : Q_TYPE_F16;
        q_context *c = new_ctx(32, 1, t);
        decode(c, A, 12, 0, 0, NULL);
        decode(c, &next, 1, 12, 0, want);
        q_kv_seq_rm(c, 0, 12, -1);
        q_kv_seq_add(c, 0, 0, -1, 5);
        assert_int_equal(q_kv_seq_pos_max(c, 0), 16);
        decode(c, &next, 1, 17, 0, got);
        expect_rows(got, want, 1, t == Q_TYPE_F32 ? 1e-4 : 3e-3);
        /* shifting back down (as --context-shift does after dropping old tokens) */
        q_kv_seq_rm(c, 0, 17, -1);
        q_kv_seq_add(c, 0, 3, -1, -3);   /* positions 5..16 -> 2..13 */
        assert_int_equal(q_kv_seq_pos_max(c, 0), 13);
        decode(c, &next, 1, 14, 0, got);
        expect_rows(got, want, 1, t == Q_TYPE_F32 ? 1e-4 : 3e-3);
        q_context_free(c);
    }
    free(want); free(got);
}

/* A batch larger than n_ubatch runs as several forward passes: same logits, bit for bit;
 * only flagged tokens have logits; index -1 is the last flagged one. */
static void test_ubatch_split_and_output_flags(void **state) {
    (void)state;
    float *whole = malloc(sizeof(float) * V * 12);
    q_context *c = new_ctx(64, 1, Q_TYPE_F16);
    decode(c, A, 12, 0, 0, whole);
    q_context_free(c);
    q_context_params p = q_context_default_params();
    p.n_ctx = 64;
    p.n_batch = 16;
    p.n_ubatch = 5;
    q_error err;
    assert_int_equal(q_context_new(model, &p, &c, &err), Q_OK);
    q_batch b = q_batch_init(16);
    for (int i = 0; i < 12; i++) q_batch_add(&b, A[i], i, 0, i % 3 == 2);
    assert_int_equal(q_decode(c, &b, &err), Q_OK);
    for (int i = 0; i < 12; i++) {
        const float *lg = q_get_logits_ith(c, i);
        if (i % 3 != 2) { assert_null(lg); continue; }
        assert_non_null(lg);
        assert_memory_equal(lg, whole + (size_t)i * V, sizeof(float) * V);
    }
    assert_ptr_equal(q_get_logits_ith(c, -1), q_get_logits_ith(c, 11));
    assert_null(q_get_logits_ith(c, 12));
    /* more tokens than n_batch is a caller error */
    q_batch big = q_batch_init(20);
    for (int i = 0; i < 17; i++) q_batch_add(&big, A[i % 12], 12 + i, 0, false);
    assert_int_equal(q_decode(c, &big, &err), Q_ERR_INVALID_ARG);
    q_batch_free(&big);
    q_batch_free(&b);
    q_context_free(c);
    free(whole);
}

/* The tokenizer wrappers give the golden's ids for its prompt and invert them. */
static void test_tokenize_wrappers(void **state) {
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/golden/llama-gqa-spm512-F32/story.json", golden_shared_dir());
    json_error_t je;
    json_t *js = json_load_file(path, JSON_ALLOW_NUL, &je);
    assert_non_null(js);
    const char *prompt = json_string_value(json_object_get(js, "prompt"));
    int32_t n;
    int32_t *want = golden_int_array(json_object_get(js, "tokens"), &n);
    q_tokens toks = { 0 };
    q_error err;
    assert_int_equal(q_model_tokenize(model, prompt, strlen(prompt), true, false, &toks, &err), Q_OK);
    assert_int_equal(toks.n, n);
    assert_memory_equal(toks.ids, want, sizeof(int32_t) * (size_t)n);
    char *text;
    size_t len;
    assert_int_equal(q_model_detokenize(model, toks.ids + 1, toks.n - 1, &text, &len, &err), Q_OK);
    assert_string_equal(text, prompt);
    free(text);
    q_tokens_free(&toks);
    free(want);
    json_decref(js);
}

static void test_limits_and_bad_input(void **state) {
    (void)state;
    q_context *c = new_ctx(16, 1, Q_TYPE_F16);
    q_token t16[16];
    for (int i = 0; i < 16; i++) t16[i] = A[i % 12];
    decode(c, t16, 16, 0, 0, NULL);
    q_batch b = q_batch_init(4);
    q_batch_add(&b, 5, 16, 0, true);
    q_error err;
    assert_int_equal(q_decode(c, &b, &err), Q_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "context is full"));
    assert_int_equal(q_kv_n_used(c), 16);
    q_kv_clear(c);
    q_batch_clear(&b);
    q_batch_add(&b, V, 0, 0, true);
    assert_int_equal(q_decode(c, &b, &err), Q_ERR_INVALID_ARG);
    q_batch_clear(&b);
    q_batch_add(&b, 1, 0, 3, true);
    assert_int_equal(q_decode(c, &b, &err), Q_ERR_INVALID_ARG);
    assert_int_equal(q_kv_n_used(c), 0);
    q_batch_free(&b);
    q_context_free(c);

    q_model *m = NULL;
    assert_int_equal(q_model_load("/nonexistent/model.gguf", &m, &err), Q_ERR_IO);
    assert_null(m);
}

/* Rewrites the F32 model with one tensor dropped or reshaped; loading must name it. */
static void write_variant(const char *path, const char *drop, const char *reshape) {
    const gguf_file *f = q_model_gguf(model);
    gguf_writer *w = gguf_writer_new();
    for (uint64_t i = 0; i < f->n_kv; i++)
        assert_int_equal(gguf_writer_set_value(w, f->kv[i].key, &f->kv[i].val, NULL), Q_OK);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor_info *ti = &f->tensors[i];
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)ti->name.len, ti->name.ptr);
        if (drop && !strcmp(name, drop)) continue;
        int64_t ne[4] = { ti->ne[0], ti->ne[1], ti->ne[2], ti->ne[3] };
        if (reshape && !strcmp(name, reshape)) ne[1] /= 2;   /* half the rows, same data start */
        assert_int_equal(gguf_writer_add_tensor(w, gguf_str_of(name), ti->type, ti->n_dims, ne, ti->data, NULL),
                         Q_OK);
    }
    q_error err;
    if (gguf_writer_write(w, path, NULL, NULL, &err) != Q_OK) fail_msg("write %s: %s", path, err.msg);
    gguf_writer_free(w);
}

/* q_model_chat_apply renders the file's tokenizer.chat_template (written into a copy of
 * the model), and falls back to ChatML, saying so, when the file has none. */
static void test_chat_apply(void **state) {
    (void)state;
    json_t *msgs = json_pack("[{s:s, s:s}, {s:s, s:s}]", "role", "system", "content", "be brief",
                             "role", "user", "content", "hi");
    char *out = NULL;
    bool fallback = false;
    q_error err;
    assert_int_equal(q_model_chat_apply(model, msgs, true, &out, &fallback, &err), Q_OK);
    assert_true(fallback);
    assert_string_equal(out, "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
                             "<|im_start|>assistant\n");
    free(out);

    char path[256];
    snprintf(path, sizeof path, "/tmp/quarrel_test_engine_chat_%d.gguf", (int)getpid());
    const gguf_file *f = q_model_gguf(model);
    gguf_writer *w = gguf_writer_new();
    for (uint64_t i = 0; i < f->n_kv; i++)
        assert_int_equal(gguf_writer_set_value(w, f->kv[i].key, &f->kv[i].val, NULL), Q_OK);
    gguf_writer_set_str(w, "tokenizer.chat_template",
                        "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
                        "{% if add_generation_prompt %}[assistant] {% endif %}");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor_info *ti = &f->tensors[i];
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)ti->name.len, ti->name.ptr);
        assert_int_equal(gguf_writer_add_tensor(w, gguf_str_of(name), ti->type, ti->n_dims, ti->ne, ti->data, NULL),
                         Q_OK);
    }
    assert_int_equal(gguf_writer_write(w, path, NULL, NULL, &err), Q_OK);
    gguf_writer_free(w);
    q_model *m = NULL;
    assert_int_equal(q_model_load(path, &m, &err), Q_OK);
    assert_int_equal(q_model_chat_apply(m, msgs, true, &out, &fallback, &err), Q_OK);
    assert_false(fallback);
    assert_string_equal(out, "<s>[system] be brief\n[user] hi\n[assistant] ");
    free(out);
    q_model_free(m);
    unlink(path);
    json_decref(msgs);
}

/* Sliding-window attention: with llama.attention.sliding_window = 2 on all 3 layers, the
 * last token sees 3 * (2 - 1) + 1 = 4 tokens through the stack, so decoding only those 4
 * (at their original positions) must give the same logits; without the window it must
 * not. The cache layout differs between the runs, hence 1e-5 rather than bit-identity. */
static void test_sliding_window(void **state) {
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "/tmp/quarrel_test_engine_swa_%d.gguf", (int)getpid());
    const gguf_file *f = q_model_gguf(model);
    gguf_writer *w = gguf_writer_new();
    for (uint64_t i = 0; i < f->n_kv; i++)
        assert_int_equal(gguf_writer_set_value(w, f->kv[i].key, &f->kv[i].val, NULL), Q_OK);
    gguf_writer_set_u32(w, "llama.attention.sliding_window", 2);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor_info *ti = &f->tensors[i];
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)ti->name.len, ti->name.ptr);
        assert_int_equal(gguf_writer_add_tensor(w, gguf_str_of(name), ti->type, ti->n_dims, ti->ne, ti->data, NULL),
                         Q_OK);
    }
    q_error err;
    assert_int_equal(gguf_writer_write(w, path, NULL, NULL, &err), Q_OK);
    gguf_writer_free(w);
    q_model *swa = NULL;
    assert_int_equal(q_model_load(path, &swa, &err), Q_OK);
    unlink(path);

    float *full = malloc(sizeof(float) * V), *tail = malloc(sizeof(float) * V), *dense = malloc(sizeof(float) * V);
    q_context_params p = q_context_default_params();
    p.n_ctx = 32;
    q_context *c;
    q_batch b = q_batch_init(12);
    for (int run = 0; run < 3; run++) {   /* full prompt (SWA), last 4 only (SWA), full (dense) */
        assert_int_equal(q_context_new(run == 2 ? model : swa, &p, &c, &err), Q_OK);
        q_batch_clear(&b);
        for (int i = run == 1 ? 8 : 0; i < 12; i++) q_batch_add(&b, A[i], i, 0, i == 11);
        assert_int_equal(q_decode(c, &b, &err), Q_OK);
        memcpy(run == 0 ? full : run == 1 ? tail : dense, q_get_logits_ith(c, -1), sizeof(float) * V);
        q_context_free(c);
    }
    expect_rows(tail, full, 1, 1e-5);
    assert_true(golden_rel_l2(dense, full, V) > 1e-3);
    q_batch_free(&b);
    q_model_free(swa);
    free(full); free(tail); free(dense);
}

static void test_load_errors_name_tensor(void **state) {
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "/tmp/quarrel_test_engine_%d.gguf", (int)getpid());
    q_model *m = NULL;
    q_error err;
    write_variant(path, "blk.1.ffn_up.weight", NULL);
    assert_int_equal(q_model_load(path, &m, &err), Q_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "blk.1.ffn_up.weight"));
    assert_non_null(strstr(err.msg, "missing"));
    write_variant(path, NULL, "blk.0.attn_k.weight");
    assert_int_equal(q_model_load(path, &m, &err), Q_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "blk.0.attn_k.weight"));
    assert_non_null(strstr(err.msg, "expected [256, 128]"));
    /* tied output: dropping output.weight still loads (token_embd is the output) */
    write_variant(path, "output.weight", NULL);
    assert_int_equal(q_model_load(path, &m, &err), Q_OK);
    q_model_free(m);
    unlink(path);
}

/* A token reads only its own sequence's cells: three sequences decoded interleaved, then
 * every cell not in seq 0 gets NaN K and V rows (all layers). Seq 0's next tokens must
 * equal the solo run and stay finite, while seq 1 (which does read its own poisoned
 * cells) turns NaN, showing the poison is live. The per-sequence cell lists hold each
 * sequence's cells, ascending. */
static void test_other_sequences_never_read(void **state) {
    (void)state;
    float *solo = malloc(sizeof(float) * V * 8), *got = malloc(sizeof(float) * V * 4);
    q_context *c = new_ctx(64, 1, Q_TYPE_F16);
    decode(c, A, 8, 0, 0, solo);
    q_context_free(c);

    c = new_ctx(64, 3, Q_TYPE_F16);
    q_batch b = q_batch_init(12);
    for (int i = 0; i < 4; i++) {   /* A0 B0 C0 A1 B1 C1 ... : seq 0 in cells 0, 3, 6, 9 */
        q_batch_add(&b, A[i], i, 0, false);
        q_batch_add(&b, B[i], i, 1, false);
        q_batch_add(&b, B[9 - i], i, 2, false);
    }
    q_error err;
    assert_int_equal(q_decode(c, &b, &err), Q_OK);
    q_kv_cache *kv = kv_cache_of_context(c);
    for (int32_t s = 0; s < 3; s++) {
        assert_int_equal(kv->seq_n[s], 4);
        for (int32_t i = 0; i < 4; i++) {
            const int32_t cell = kv->seq_cells[(size_t)s * (size_t)kv->n_ctx + (size_t)i];
            assert_int_equal(cell, 3 * i + s);
            assert_true(kv->cells[cell].seq & (1ull << s));
        }
    }
    for (int32_t cell = 0; cell < kv->n_ctx; cell++) {
        if (!kv->cells[cell].seq || (kv->cells[cell].seq & 1ull)) continue;
        for (int32_t l = 0; l < kv->n_layer; l++) {
            uint16_t *k16 = (uint16_t *)(kv->k[l] + (size_t)cell * kv->row_bytes[l]);
            uint16_t *v16 = (uint16_t *)(kv->v[l] + (size_t)cell * kv->row_bytes[l]);
            for (int32_t d = 0; d < kv->width[l]; d++) k16[d] = v16[d] = 0x7e00;   /* F16 NaN */
        }
    }
    b.n_tokens = 0;
    for (int i = 4; i < 8; i++) q_batch_add(&b, A[i], i, 0, true);
    q_batch_add(&b, B[4], 4, 1, true);
    assert_int_equal(q_decode(c, &b, &err), Q_OK);
    for (int i = 0; i < 4; i++) {
        const float *row = q_get_logits_ith(c, i);
        for (int32_t t = 0; t < V; t++) assert_true(isfinite(row[t]));
        memcpy(got + (size_t)i * V, row, sizeof(float) * V);
    }
    expect_rows(got, solo + (size_t)4 * V, 4, 1e-5);
    assert_true(isnan(q_get_logits_ith(c, 4)[0]));
    q_batch_free(&b);
    q_context_free(c);
    free(solo); free(got);
}

/* Last-row logits of toks[0..n) decoded in seq `seq` of c in chunks of `chunk` tokens. */
static void decode_chunks(q_context *c, const q_token *toks, int n, int chunk, q_seq_id seq, q_pos p0, float *last) {
    for (int i = 0; i < n; i += chunk) {
        const int k = n - i < chunk ? n - i : chunk;
        q_batch b = q_batch_init(k);
        for (int t = 0; t < k; t++) q_batch_add(&b, toks[i + t], p0 + i + t, seq, i + t == n - 1);
        q_error err;
        if (q_decode(c, &b, &err) != Q_OK) fail_msg("decode: %s", err.msg);
        if (i + k == n) memcpy(last, q_get_logits_ith(c, k - 1), sizeof(float) * V);
        q_batch_free(&b);
    }
}

static void expect_same_bits(const float *got, const float *want, const char *what) {
    if (memcmp(got, want, sizeof(float) * V)) fail_msg("%s: logits differ from the sequence decoded alone", what);
}

/* A sequence's logits are bit-identical wherever its cells sit and however its tokens were
 * batched: attention sums in position order with lanes by position, and a token takes the
 * flash path iff its position is deep enough (never because of what else is in the batch).
 * The server's "concurrent == alone" promise rests on this. */
static void test_placement_and_batching_bit_identical(void **state) {
    (void)state;
    float *ref = malloc(sizeof(float) * V), *got = malloc(sizeof(float) * V);
    q_context *c = new_ctx(64, 4, Q_TYPE_F16);
    decode_chunks(c, B, 10, 10, 1, 0, ref);
    q_context_free(c);

    c = new_ctx(64, 4, Q_TYPE_F16);   /* BOS shared from a sequence whose cells come first */
    decode_chunks(c, A, 12, 12, 0, 0, got);
    q_kv_seq_cp(c, 0, 1, 0, 1);
    decode_chunks(c, B + 1, 9, 9, 1, 1, got);
    expect_same_bits(got, ref, "shared BOS cell");
    q_context_free(c);

    c = new_ctx(64, 4, Q_TYPE_F16);   /* positions 5.. land in holes before positions 0..4 */
    decode_chunks(c, A, 12, 12, 0, 0, got);
    decode_chunks(c, B, 5, 5, 1, 0, got);
    q_kv_seq_rm(c, 0, -1, -1);
    decode_chunks(c, B + 5, 5, 5, 1, 5, got);
    expect_same_bits(got, ref, "cells in holes");
    q_context_free(c);

    c = new_ctx(64, 4, Q_TYPE_F16);   /* one token at a time */
    decode_chunks(c, B, 10, 1, 1, 0, got);
    expect_same_bits(got, ref, "token by token");
    q_context_free(c);

    /* past the flash threshold: chunks of 512 and of 300, and a last token alone, agree
     * (on stories260K: a deep context on a small model keeps the test quick) */
    enum { N = 1040 };
    char path[1024];
    snprintf(path, sizeof path, "%s/models/stories260K.gguf", golden_shared_dir());
    q_model *small = NULL;
    q_error err;
    assert_int_equal(q_model_load(path, &small, &err), Q_OK);
    const int32_t V0 = V;
    V = q_model_n_vocab(small);
    q_token *toks = malloc(sizeof(q_token) * N);
    for (int i = 0; i < N; i++) toks[i] = i ? (q_token)(3 + (i * 37) % (V - 3)) : 1;
    q_context_params p = q_context_default_params();
    p.n_ctx = N + 8;
    assert_int_equal(q_context_new(small, &p, &c, &err), Q_OK);
    decode_chunks(c, toks, N, 512, 0, 0, ref);
    q_kv_clear(c);
    decode_chunks(c, toks, N, 300, 0, 0, got);
    expect_same_bits(got, ref, "deep prompt in other chunks");
    q_kv_clear(c);
    decode_chunks(c, toks, N - 1, 512, 0, 0, got);
    decode_chunks(c, toks + N - 1, 1, 1, 0, N - 1, got);
    expect_same_bits(got, ref, "deep prompt, last token alone");
    q_context_free(c);
    q_model_free(small);
    V = V0;
    free(toks); free(ref); free(got);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_placement_and_batching_bit_identical),
        cmocka_unit_test(test_interleaved_sequences),
        cmocka_unit_test(test_other_sequences_never_read),
        cmocka_unit_test(test_seq_rm_and_cp),
        cmocka_unit_test(test_seq_add_shift),
        cmocka_unit_test(test_ubatch_split_and_output_flags),
        cmocka_unit_test(test_tokenize_wrappers),
        cmocka_unit_test(test_limits_and_bad_input),
        cmocka_unit_test(test_load_errors_name_tensor),
        cmocka_unit_test(test_chat_apply),
        cmocka_unit_test(test_sliding_window),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
