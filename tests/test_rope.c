/* test_rope.c — the RoPE variants no golden covers: NORM and NEOX ordering, freq_base,
 * linear scaling, YaRN, Llama-3 frequency factors (rope_freqs.weight), partial rotary
 * (n_rot < head_dim), and the llama loader's handling of the rope.scaling.* keys.
 *
 * The reference below is written from ggml's documented rope (ggml_rope_ext, see
 * ../shared/golden/README.md "YaRN"), not from src/cpu/ops.c: per pair index i,
 *   theta_extrap = pos * base^(-2i/n_rot) / freq_factors[i]
 *   theta_interp = theta_extrap / factor                     (linear and YaRN)
 *   YaRN: ramp = (1 - clamp((i - low) / max(0.001, high - low), 0, 1)) * ext_factor,
 *         theta = theta_interp * (1 - ramp) + theta_extrap * ramp,
 *         mscale = attn_factor * (1 + 0.1 ln factor)   (llama arch; attn_factor is
 *         rope.scaling.attn_factor, default 1)
 *   without YaRN theta = theta_interp and mscale = attn_factor;
 *   NORM rotates (2i, 2i+1), NEOX rotates (i, i + n_rot/2); dims >= n_rot are copied.
 * One fact of ggml's arithmetic the reference keeps: the angle is advanced pair by pair by
 * a float multiply with powf(base, -2/n_rot), and the YaRN ramp and mix are done in float,
 * the mix as one FMA (theta_interp * (1 - ramp) fused: GCC contracts ggml's expression;
 * verified bit-identical against the reference build's rope output). At
 * position 1e5 that recurrence is ~0.1 rad away from the exact angle, so matching
 * llama.cpp there means matching the recurrence; test_rope_exact_angles checks the
 * formula itself against double-precision angles at small positions. The rotation and
 * the magnitude are computed in double. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cpu/backend.h"
#include "golden_util.h"
#include "model/model.h"
#include "quarrel/gguf.h"
#include "quarrel/quarrel.h"

/* ---- the reference ------------------------------------------------------------------ */

typedef struct rope_cfg {
    q_rope_mode  mode;
    int          n_rot;
    float        base;
    float        factor;       /* 0: no scaling */
    bool         yarn;
    int          n_ctx_orig;   /* YaRN */
    float        beta_fast, beta_slow, attn_factor;
    const float *ff;           /* [n_rot/2] or NULL */
} rope_cfg;

/* YaRN correction dim: the pair index whose wavelength makes r turns over n_ctx_orig. */
static double ref_corr_dim(int n_rot, int n_ctx_orig, double r, double base) {
    return n_rot * log(n_ctx_orig / (r * 2.0 * M_PI)) / (2.0 * log(base));
}

static void ref_corr_dims(const rope_cfg *c, float dims[2]) {
    const double lo = floor(ref_corr_dim(c->n_rot, c->n_ctx_orig, c->beta_fast, c->base));
    const double hi = ceil(ref_corr_dim(c->n_rot, c->n_ctx_orig, c->beta_slow, c->base));
    dims[0] = (float)(lo > 0 ? lo : 0);
    dims[1] = (float)(hi < c->n_rot - 1 ? hi : c->n_rot - 1);
}

/* The angle and magnitude of pair i at pos. exact: angles in double from the closed form. */
static void ref_angle(const rope_cfg *c, int64_t pos, int i, bool exact, double *theta, double *mscale) {
    double th_ex;
    float th_ex_f;
    if (exact) {
        th_ex = (double)pos * pow(c->base, -2.0 * i / c->n_rot) / (c->ff ? c->ff[i] : 1.0);
        th_ex_f = (float)th_ex;
    } else {
        const float step = powf(c->base, -2.0f / (float)c->n_rot);
        float t = (float)pos;
        for (int k = 0; k < i; k++) t *= step;
        th_ex_f = t / (c->ff ? c->ff[i] : 1.0f);
        th_ex = th_ex_f;
    }
    const float fs = c->factor > 0 ? 1.0f / c->factor : 1.0f;
    const float th_in_f = fs * th_ex_f;
    double th = exact ? th_ex * fs : th_in_f;
    double ms = c->attn_factor;
    if (c->yarn) {
        float dims[2];
        ref_corr_dims(c, dims);
        float y = ((float)i - dims[0]) / fmaxf(0.001f, dims[1] - dims[0]);   /* float, as ggml */
        y = y < 0 ? 0 : y > 1 ? 1 : y;
        const float ramp = 1.0f - y;
        th = exact ? th_ex * fs * (1.0 - ramp) + th_ex * ramp : (double)fmaf(th_in_f, 1.0f - ramp, th_ex_f * ramp);
        ms *= 1.0 + 0.1 * log(c->factor);
    }
    *theta = th;
    *mscale = ms;
}

/* x: (n_tok rows of ld floats), n_head heads of head_dim each at the row start. */
static void ref_rope(const rope_cfg *c, float *x, int n_tok, int64_t ld, int n_head, int head_dim,
                     const q_pos *pos, bool exact) {
    for (int t = 0; t < n_tok; t++)
        for (int h = 0; h < n_head; h++) {
            float *v = x + t * ld + (int64_t)h * head_dim;
            for (int i = 0; i < c->n_rot / 2; i++) {
                double th, ms;
                ref_angle(c, pos[t], i, exact, &th, &ms);
                const int a = c->mode == Q_ROPE_NORM ? 2 * i : i;
                const int b = c->mode == Q_ROPE_NORM ? 2 * i + 1 : i + c->n_rot / 2;
                const double x0 = v[a], x1 = v[b];
                v[a] = (float)(ms * (x0 * cos(th) - x1 * sin(th)));
                v[b] = (float)(ms * (x0 * sin(th) + x1 * cos(th)));
            }
        }
}

/* The q_rope our op takes, filled from the facts (not from the loader). */
static q_rope op_params(const rope_cfg *c) {
    q_rope r = { .mode = c->mode, .n_rot = c->n_rot, .freq_base = c->base,
                 .freq_scale = c->factor > 0 ? 1.0f / c->factor : 1.0f, .attn_factor = c->attn_factor,
                 .freq_factors = c->ff };
    if (c->yarn) {
        r.ext_factor = 1.0f;
        ref_corr_dims(c, r.corr_dims);
    }
    return r;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float rnd(void) {   /* uniform in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}

enum { HEAD_DIM = 64, N_HEAD = 3, LD = N_HEAD * HEAD_DIM + 5, N_POS = 5 };
static const q_pos POS[N_POS] = { 0, 1, 17, 4095, 100000 };

/* Runs our rope and the reference on the same random rows; max error relative to
 * max(1, |ref|); dims past n_rot and the row padding must come back bit-identical. */
static double rope_compare(const rope_cfg *c, bool exact, int n_pos) {
    float x[N_POS * LD], ours[N_POS * LD], ref[N_POS * LD];
    for (int i = 0; i < N_POS * LD; i++) x[i] = rnd() * 3.0f;
    memcpy(ours, x, sizeof x);
    memcpy(ref, x, sizeof x);
    const q_rope r = op_params(c);
    q_backend_cpu.rope(ours, n_pos, LD, N_HEAD, HEAD_DIM, POS, &r);
    ref_rope(c, ref, n_pos, LD, N_HEAD, HEAD_DIM, POS, exact);
    double worst = 0;
    for (int t = 0; t < n_pos; t++)
        for (int j = 0; j < LD; j++) {
            const int64_t k = (int64_t)t * LD + j;
            const int d = j % HEAD_DIM;
            if (j >= N_HEAD * HEAD_DIM || d >= c->n_rot) {
                if (memcmp(&ours[k], &x[k], sizeof(float)))
                    fail_msg("pos %d dim %d (not rotated) changed: %g -> %g", (int)POS[t], j, x[k], ours[k]);
                continue;
            }
            const double e = fabs((double)ours[k] - ref[k]) / fmax(1.0, fabs(ref[k]));
            if (e > worst) worst = e;
        }
    return worst;
}

static float ff_llama3[32];   /* Llama-3.1-style factors for n_rot 64: 1 (high freq) .. 8 (low freq) */

static void fill_ff(int n) {
    for (int i = 0; i < n; i++) ff_llama3[i] = i < n / 4 ? 1.0f : i < n / 2 ? 1.0f + 7.0f * (float)(i - n / 4) / (float)(n / 4) : 8.0f;
}

static void run_variants(bool exact, int n_pos, double tol) {
    fill_ff(32);
    const q_rope_mode modes[2] = { Q_ROPE_NORM, Q_ROPE_NEOX };
    const int rots[2] = { 64, 32 };
    for (int m = 0; m < 2; m++)
        for (int ri = 0; ri < 2; ri++) {
            const int nr = rots[ri];
            const rope_cfg cfgs[] = {
                { modes[m], nr, 10000.0f, 0, false, 0, 32, 1, 1.0f, NULL },          /* plain */
                { modes[m], nr, 500000.0f, 0, false, 0, 32, 1, 1.0f, ff_llama3 },    /* Llama 3 factors */
                { modes[m], nr, 10000.0f, 4.0f, false, 0, 32, 1, 1.0f, NULL },       /* linear x4 */
                { modes[m], nr, 10000.0f, 2.5f, false, 0, 32, 1, 1.0f, NULL },       /* linear x2.5 */
                { modes[m], nr, 10000.0f, 8.0f, true, 4096, 32, 1, 1.0f, NULL },     /* YaRN */
                { modes[m], nr, 150000.0f, 32.0f, true, 4096, 32, 1, 1.0f, NULL },   /* gpt-oss's YaRN */
                { modes[m], nr, 1000000.0f, 4.0f, true, 32768, 16, 2, 0.8f, ff_llama3 }, /* all of it */
            };
            for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
                const double e = rope_compare(&cfgs[k], exact, n_pos);
                if (e > tol)
                    fail_msg("%s n_rot %d variant %zu: max rel error %.3g > %.3g", m ? "NEOX" : "NORM", nr, k, e, tol);
            }
        }
}

/* Every variant at positions 0, 1, 17, 4095, 100000 within 1e-5 relative. */
static void test_rope_variants(void **state) {
    (void)state;
    run_variants(false, N_POS, 1e-5);
}

/* The closed form in double at positions 0, 1, 17 (where float angle rounding is ~1e-6). */
static void test_rope_exact_angles(void **state) {
    (void)state;
    run_variants(true, 3, 2e-5);
}

/* README fact for gpt-oss: n_rot 64, n_ctx_orig 4096, base 150000 -> low 8, high 18. */
static void test_rope_corr_dims(void **state) {
    (void)state;
    const rope_cfg c = { Q_ROPE_NEOX, 64, 150000.0f, 32.0f, true, 4096, 32, 1, 1.0f, NULL };
    float d[2];
    ref_corr_dims(&c, d);
    assert_true(d[0] == 8.0f && d[1] == 18.0f);
}

/* ---- the loader ------------------------------------------------------------------------ */

static q_model *base_model;
static char tmp_path[256];
static const q_token PROMPT[12] = { 1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315 };

static int setup(void **state) {
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/models/llama-gqa-spm512-F32.gguf", golden_shared_dir());
    q_error err;
    if (q_model_load(path, &base_model, &err) != Q_OK) {
        fprintf(stderr, "cannot load %s: %s\n", path, err.msg);
        return -1;
    }
    snprintf(tmp_path, sizeof tmp_path, "/tmp/quarrel_test_rope_%d.gguf", (int)getpid());
    return 0;
}

static int teardown(void **state) {
    (void)state;
    q_model_free(base_model);
    unlink(tmp_path);
    return 0;
}

typedef struct extra_kv {
    const char *key;
    const char *str;   /* string value, or NULL for f32 / u32 */
    double      num;
    bool        is_u32;
} extra_kv;

/* The base model plus the extra keys (and a rope_freqs.weight when ff != NULL), loaded. */
static q_status load_variant(const extra_kv *kv, int n_kv, const float *ff, int n_ff, q_model **out, q_error *err) {
    const gguf_file *f = q_model_gguf(base_model);
    gguf_writer *w = gguf_writer_new();
    for (uint64_t i = 0; i < f->n_kv; i++)
        assert_int_equal(gguf_writer_set_value(w, f->kv[i].key, &f->kv[i].val, NULL), Q_OK);
    for (int i = 0; i < n_kv; i++) {
        if (kv[i].str) gguf_writer_set_str(w, kv[i].key, kv[i].str);
        else if (kv[i].is_u32) gguf_writer_set_u32(w, kv[i].key, (uint32_t)kv[i].num);
        else gguf_writer_set_f32(w, kv[i].key, (float)kv[i].num);
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor_info *ti = &f->tensors[i];
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)ti->name.len, ti->name.ptr);
        assert_int_equal(gguf_writer_add_tensor(w, gguf_str_of(name), ti->type, ti->n_dims, ti->ne, ti->data, NULL),
                         Q_OK);
    }
    if (ff) {
        const int64_t ne[1] = { n_ff };
        assert_int_equal(gguf_writer_add_tensor(w, gguf_str_of("rope_freqs.weight"), Q_TYPE_F32, 1, ne, ff, NULL), Q_OK);
    }
    q_error werr;
    if (gguf_writer_write(w, tmp_path, NULL, NULL, &werr) != Q_OK) fail_msg("write %s: %s", tmp_path, werr.msg);
    gguf_writer_free(w);
    return q_model_load(tmp_path, out, err);
}

/* Last-position logits of PROMPT. */
static void prompt_logits(q_model *m, float *out) {
    q_context_params p = q_context_default_params();
    p.n_ctx = 32;
    q_context *c = NULL;
    q_error err;
    assert_int_equal(q_context_new(m, &p, &c, &err), Q_OK);
    q_batch b = q_batch_init(12);
    for (int i = 0; i < 12; i++) q_batch_add(&b, PROMPT[i], i, 0, i == 11);
    assert_int_equal(q_decode(c, &b, &err), Q_OK);
    memcpy(out, q_get_logits_ith(c, -1), sizeof(float) * (size_t)q_model_n_vocab(m));
    q_batch_free(&b);
    q_context_free(c);
}

/* The keys reach q_rope as the facts say, and scaling changes the logits (it is applied);
 * "none" with a factor and unit rope_freqs leave the logits bit-identical. */
static void test_loader_scaling_applied(void **state) {
    (void)state;
    const int V = q_model_n_vocab(base_model);
    const int n_rot = base_model->hp.rope.n_rot;
    float *ref = malloc(sizeof(float) * V), *got = malloc(sizeof(float) * V);
    prompt_logits(base_model, ref);
    q_model *m = NULL;
    q_error err;

    const extra_kv yarn[] = { { "llama.rope.scaling.type", "yarn", 0, false }, { "llama.rope.scaling.factor", NULL, 4, false },
                              { "llama.rope.scaling.original_context_length", NULL, 256, true } };
    assert_int_equal(load_variant(yarn, 3, NULL, 0, &m, &err), Q_OK);
    const rope_cfg cy = { Q_ROPE_NORM, n_rot, 10000.0f, 4.0f, true, 256, 32, 1, 1.0f, NULL };
    float dims[2];
    ref_corr_dims(&cy, dims);
    const q_rope *r = &m->hp.rope;
    assert_true(r->mode == Q_ROPE_NORM && r->freq_scale == 0.25f && r->ext_factor == 1.0f && r->attn_factor == 1.0f);
    assert_true(r->corr_dims[0] == dims[0] && r->corr_dims[1] == dims[1]);
    prompt_logits(m, got);
    assert_true(golden_rel_l2(got, ref, V) > 1e-3);
    q_model_free(m);

    const extra_kv lin[] = { { "llama.rope.scaling.type", "linear", 0, false }, { "llama.rope.scaling.factor", NULL, 2, false },
                             { "llama.rope.scaling.attn_factor", NULL, 0.9, false } };
    assert_int_equal(load_variant(lin, 3, NULL, 0, &m, &err), Q_OK);
    assert_true(m->hp.rope.freq_scale == 0.5f && m->hp.rope.ext_factor == 0.0f && m->hp.rope.attn_factor == 0.9f);
    prompt_logits(m, got);
    assert_true(golden_rel_l2(got, ref, V) > 1e-3);
    q_model_free(m);

    /* the old key name, no type: linear (llama.cpp's default type) */
    const extra_kv old[] = { { "llama.rope.scale_linear", NULL, 2, false } };
    assert_int_equal(load_variant(old, 1, NULL, 0, &m, &err), Q_OK);
    assert_true(m->hp.rope.freq_scale == 0.5f);
    q_model_free(m);

    /* type none: a factor is ignored */
    const extra_kv none[] = { { "llama.rope.scaling.type", "none", 0, false }, { "llama.rope.scaling.factor", NULL, 4, false } };
    assert_int_equal(load_variant(none, 2, NULL, 0, &m, &err), Q_OK);
    prompt_logits(m, got);
    assert_memory_equal(got, ref, sizeof(float) * V);
    q_model_free(m);

    /* rope_freqs.weight: all ones changes nothing; Llama-3 style factors do */
    float ones[64];
    for (int i = 0; i < n_rot / 2; i++) ones[i] = 1.0f;
    assert_int_equal(load_variant(NULL, 0, ones, n_rot / 2, &m, &err), Q_OK);
    assert_non_null(m->hp.rope.freq_factors);
    prompt_logits(m, got);
    assert_memory_equal(got, ref, sizeof(float) * V);
    q_model_free(m);
    fill_ff(n_rot / 2);
    assert_int_equal(load_variant(NULL, 0, ff_llama3, n_rot / 2, &m, &err), Q_OK);
    prompt_logits(m, got);
    assert_true(golden_rel_l2(got, ref, V) > 1e-4);
    q_model_free(m);
    free(ref);
    free(got);
}

/* Invalid values fail to load with a message naming the key. */
static void test_loader_rejects(void **state) {
    (void)state;
    q_model *m = NULL;
    q_error err;
    const extra_kv neg[] = { { "llama.rope.scaling.type", "linear", 0, false }, { "llama.rope.scaling.factor", NULL, -2, false } };
    assert_int_equal(load_variant(neg, 2, NULL, 0, &m, &err), Q_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "rope.scaling.factor"));
    const extra_kv zero[] = { { "llama.rope.scaling.type", "yarn", 0, false }, { "llama.rope.scaling.factor", NULL, 0, false } };
    assert_int_equal(load_variant(zero, 2, NULL, 0, &m, &err), Q_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "rope.scaling.factor"));
    const extra_kv nan_f[] = { { "llama.rope.scaling.factor", NULL, NAN, false } };
    assert_int_equal(load_variant(nan_f, 1, NULL, 0, &m, &err), Q_ERR_FORMAT);
    const extra_kv unk[] = { { "llama.rope.scaling.type", "longrope", 0, false }, { "llama.rope.scaling.factor", NULL, 2, false } };
    assert_int_equal(load_variant(unk, 2, NULL, 0, &m, &err), Q_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "rope.scaling.type"));
    assert_non_null(strstr(err.msg, "longrope"));
    const extra_kv af[] = { { "llama.rope.scaling.attn_factor", NULL, 0, false } };
    assert_int_equal(load_variant(af, 1, NULL, 0, &m, &err), Q_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "attn_factor"));
    const extra_kv orig0[] = { { "llama.rope.scaling.type", "yarn", 0, false }, { "llama.rope.scaling.factor", NULL, 4, false },
                               { "llama.rope.scaling.original_context_length", NULL, 0, true } };
    assert_int_equal(load_variant(orig0, 3, NULL, 0, &m, &err), Q_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "original_context_length"));
    /* rope_freqs of the wrong length is named */
    float ff[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };
    assert_int_equal(load_variant(NULL, 0, ff, 8, &m, &err), Q_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "rope_freqs.weight"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rope_variants),
        cmocka_unit_test(test_rope_exact_angles),
        cmocka_unit_test(test_rope_corr_dims),
        cmocka_unit_test(test_loader_scaling_applied),
        cmocka_unit_test(test_loader_rejects),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
