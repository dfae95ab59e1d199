/* test_quants.c — src/tensor/types.c, fp16.c and quants/<family>.c: the traits table, the
 * half/bfloat16 converters, and every reference (de)quantizer.
 *
 * Checks against independent facts only:
 *   - traits: ggml's block sizes / bytes per block, typed in from ggml-common.h facts;
 *   - fp16/bf16: IEEE 754 values and round-to-nearest-even ties worked out by hand;
 *   - dequantization: ../shared/quant/TYPE.bin decoded by an independent (numpy)
 *     implementation into TYPE.f32, reproduced bit for bit;
 *   - quantizer quality: RMSE on TYPE.src.f32 within 1.02x llama.cpp's (index.json);
 *   - round trips on random rows: finite, error bounded by a per-type fraction of the
 *     row's max-abs, and stable (idempotent) where the format makes that exact. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "quarrel/types.h"
#include "tensor/quants/blocks.h"

/* ---- helpers ----------------------------------------------------------------------- */

static uint32_t fbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bitsf(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static const char *shared_dir(void) {
    const char *s = getenv("QUARREL_SHARED");
    return s ? s : "../shared";
}

/* Reads a whole file into a malloc'd buffer; *size gets its length. */
static void *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", path); return NULL; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc(n > 0 ? (size_t)n : 1);
    size_t got = p ? fread(p, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!p || got != (size_t)n) { free(p); return NULL; }
    *size = (size_t)n;
    return p;
}

static void *read_quant_file(const char *type, const char *ext, size_t *size) {
    char path[1024];
    snprintf(path, sizeof path, "%s/quant/%s.%s", shared_dir(), type, ext);
    return read_all(path, size);
}

/* Simple deterministic PRNG (xorshift64*), uniform in [0,1) and roughly normal. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rng_u32(void) {
    rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}
static float rng_uniform(void) { return (float)(rng_u32() >> 8) * 0x1p-24f; }
static float rng_normal(void) {
    float s = 0;
    for (int i = 0; i < 6; i++) s += rng_uniform();
    return (s - 3.0f) * 1.41421356f;
}

/* ---- traits table ------------------------------------------------------------------ */

/* ggml facts: block size and bytes per block, by ggml type id. */
static const struct { int id; const char *name; int64_t bs; size_t ts; } ggml_facts[] = {
    { 0, "f32", 1, 4 },          { 1, "f16", 1, 2 },          { 2, "q4_0", 32, 18 },
    { 3, "q4_1", 32, 20 },       { 6, "q5_0", 32, 22 },       { 7, "q5_1", 32, 24 },
    { 8, "q8_0", 32, 34 },       { 9, "q8_1", 32, 36 },       { 10, "q2_K", 256, 84 },
    { 11, "q3_K", 256, 110 },    { 12, "q4_K", 256, 144 },    { 13, "q5_K", 256, 176 },
    { 14, "q6_K", 256, 210 },    { 15, "q8_K", 256, 292 },    { 16, "iq2_xxs", 256, 66 },
    { 17, "iq2_xs", 256, 74 },   { 18, "iq3_xxs", 256, 98 },  { 19, "iq1_s", 256, 50 },
    { 20, "iq4_nl", 32, 18 },    { 21, "iq3_s", 256, 110 },   { 22, "iq2_s", 256, 82 },
    { 23, "iq4_xs", 256, 136 },  { 24, "i8", 1, 1 },          { 25, "i16", 1, 2 },
    { 26, "i32", 1, 4 },         { 27, "i64", 1, 8 },         { 28, "f64", 1, 8 },
    { 29, "iq1_m", 256, 56 },    { 30, "bf16", 1, 2 },        { 34, "tq1_0", 256, 54 },
    { 35, "tq2_0", 256, 66 },    { 39, "mxfp4", 32, 17 },
};

static void test_traits_table(void **state) {
    (void)state;
    int assigned = 0;
    for (size_t i = 0; i < sizeof ggml_facts / sizeof ggml_facts[0]; i++) {
        const q_type_traits *t = q_type_get((uint32_t)ggml_facts[i].id);
        assert_non_null(t);
        assert_string_equal(t->name, ggml_facts[i].name);
        assert_int_equal(t->blck_size, ggml_facts[i].bs);
        assert_int_equal(t->type_size, ggml_facts[i].ts);
        assert_string_equal(q_type_name((q_type)ggml_facts[i].id), ggml_facts[i].name);
        assert_int_equal(q_type_from_name(ggml_facts[i].name), ggml_facts[i].id);
        assert_int_equal(q_row_size((q_type)ggml_facts[i].id, 4096), ggml_facts[i].ts * (size_t)(4096 / ggml_facts[i].bs));
        /* quantized = more than one element per block */
        assert_int_equal(t->is_quantized, ggml_facts[i].bs > 1);
        /* a type with a quantizer has a dequantizer */
        if (t->from_float) assert_non_null(t->to_float);
        assigned++;
    }
    int rows = 0;
    for (uint32_t id = 0; id < 64; id++) rows += q_type_get(id) != NULL;
    assert_int_equal(rows, assigned);
    const uint32_t removed[] = { 4, 5, 31, 32, 33, 36, 37, 38, 40, 1000, 0xffffffffu };
    for (size_t i = 0; i < sizeof removed / sizeof removed[0]; i++) {
        assert_null(q_type_get(removed[i]));
        assert_string_equal(q_type_name((q_type)removed[i]), "?");
    }
    assert_int_equal(q_type_from_name("Q4_K"), Q_TYPE_Q4_K);
    assert_int_equal(q_type_from_name("q4_k"), Q_TYPE_Q4_K);
    assert_int_equal(q_type_from_name("BF16"), Q_TYPE_BF16);
    assert_int_equal(q_type_from_name("MXFP4"), Q_TYPE_MXFP4);
    assert_int_equal(q_type_from_name("q4_2"), -1);
    assert_int_equal(q_type_from_name(""), -1);
    assert_int_equal(q_type_from_name(NULL), -1);
}

/* ---- fp16 / bf16 ------------------------------------------------------------------- */

/* Value of half bits h from the IEEE 754 definition, via ldexp (no bit tricks). */
static double half_value(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

static void test_fp16_exhaustive(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = q_fp16_to_fp32((uint16_t)h);
        int e = (h >> 10) & 31, m = h & 1023;
        if (e == 31 && m != 0) {
            assert_true(isnan(f));
            uint16_t back = q_fp32_to_fp16(f);
            assert_int_equal(back & 0x7c00, 0x7c00);
            assert_int_not_equal(back & 0x03ff, 0);
            continue;
        }
        if (e == 31) assert_true(isinf(f) && (signbit(f) != 0) == (h >> 15));
        else assert_true((double)f == half_value((uint16_t)h) && (signbit(f) != 0) == (h >> 15));
        if (q_fp32_to_fp16(f) != h) fail_msg("fp16 round trip: 0x%04x -> %a -> 0x%04x", h, (double)f, q_fp32_to_fp16(f));
    }
}

static void test_fp16_rounding(void **state) {
    (void)state;
    static const struct { float f; uint16_t h; } cases[] = {
        { 1.0f, 0x3c00 }, { -2.0f, 0xc000 }, { 65504.0f, 0x7bff }, { 0.0f, 0x0000 }, { -0.0f, 0x8000 },
        { 0x1p-14f, 0x0400 }, { 0x1p-24f, 0x0001 }, { 0x1.ff8p-15f, 0x03ff },
        { 1.0f + 0x1p-11f, 0x3c00 },             /* tie, even mantissa stays */
        { 1.0f + 3 * 0x1p-11f, 0x3c02 },         /* tie, odd mantissa rounds up */
        { 1.0f + 0x1p-11f + 0x1p-20f, 0x3c01 },  /* just over the tie */
        { 1.0f + 0x1p-11f - 0x1p-23f, 0x3c00 },  /* just under the tie */
        { 65519.0f, 0x7bff },                    /* below halfway to 2^16 */
        { 65520.0f, 0x7c00 },                    /* halfway: ties to even = inf */
        { 1e10f, 0x7c00 }, { -1e10f, 0xfc00 }, { INFINITY, 0x7c00 }, { -INFINITY, 0xfc00 },
        { 0x1p-25f, 0x0000 },                    /* half the smallest subnormal: tie -> 0 */
        { 0x1.000002p-25f, 0x0001 },             /* just over */
        { 3 * 0x1p-25f, 0x0002 },                /* 1.5 ulp: tie -> 2 (even) */
        { 5 * 0x1p-25f, 0x0002 },                /* 2.5 ulp: tie -> 2 (even) */
        { -7 * 0x1p-25f, 0x8004 },               /* 3.5 ulp: tie -> 4 (even) */
        { 0x1p-30f, 0x0000 }, { -0x1p-30f, 0x8000 },
        { 0x1.ffcp-15f, 0x0400 },                /* 1023.5 subnormal ulps: tie -> 1024 = min normal */
        { 0.1f, 0x2e66 }, { 0.333333333f, 0x3555 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t h = q_fp32_to_fp16(cases[i].f);
        if (h != cases[i].h) fail_msg("fp16(%a) = 0x%04x, want 0x%04x", (double)cases[i].f, h, cases[i].h);
    }
    assert_true(isnan(q_fp16_to_fp32(q_fp32_to_fp16(NAN))));
    assert_true(isnan(q_fp16_to_fp32(q_fp32_to_fp16(bitsf(0x7f800001u)))));  /* low-payload sNaN */
    assert_true(isnan(q_fp16_to_fp32(q_fp32_to_fp16(bitsf(0xffc00000u)))));
}

static void test_bf16(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = q_bf16_to_fp32((uint16_t)h);
        assert_int_equal(fbits(f), h << 16);  /* bf16 is the top half of binary32, by definition */
        if (isnan(f)) { assert_true(isnan(q_bf16_to_fp32(q_fp32_to_bf16(f)))); continue; }
        assert_int_equal(q_fp32_to_bf16(f), h);
    }
    static const struct { uint32_t f; uint16_t h; } cases[] = {
        { 0x3f808000u, 0x3f80 },  /* 1 + 2^-8: tie, even stays */
        { 0x3f818000u, 0x3f82 },  /* 1 + 3*2^-8: tie, odd rounds up */
        { 0x3f808001u, 0x3f81 },  /* just over */
        { 0x3f807fffu, 0x3f80 },  /* just under */
        { 0xbf818000u, 0xbf82 },  /* negative tie */
        { 0x7f7fffffu, 0x7f80 },  /* FLT_MAX is past max-bf16 + half ulp: inf */
        { 0x7f7f7fffu, 0x7f7f },
        { 0x00018000u, 0x0002 },  /* subnormal tie, odd -> even */
        { 0x7f800000u, 0x7f80 }, { 0xff800000u, 0xff80 }, { 0x80000000u, 0x8000 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t h = q_fp32_to_bf16(bitsf(cases[i].f));
        if (h != cases[i].h) fail_msg("bf16(0x%08x) = 0x%04x, want 0x%04x", cases[i].f, h, cases[i].h);
    }
    assert_true(isnan(q_bf16_to_fp32(q_fp32_to_bf16(bitsf(0x7f800001u)))));  /* would truncate to inf */
    assert_true(isnan(q_bf16_to_fp32(q_fp32_to_bf16(bitsf(0xff800001u)))));
}

/* ---- shared goldens ---------------------------------------------------------------- */

/* Types with goldens in ../shared/quant, by index.json key. Every key must be here. */
static const char *const golden_types[] = {
    "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
    "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "MXFP4",
};
#define N_GOLDEN (sizeof golden_types / sizeof golden_types[0])

static json_t *load_index(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/quant/index.json", shared_dir());
    json_error_t jerr;
    json_t *idx = json_load_file(path, 0, &jerr);
    if (!idx) fail_msg("cannot load %s: %s", path, jerr.text);
    return idx;
}

static void test_golden_index_covered(void **state) {
    (void)state;
    json_t *idx = load_index();
    const char *key;
    json_t *v;
    json_object_foreach(idx, key, v) {
        int found = 0;
        for (size_t i = 0; i < N_GOLDEN; i++) found |= strcmp(golden_types[i], key) == 0;
        if (!found) fail_msg("golden type %s in index.json is not tested", key);
    }
    json_decref(idx);
}

static void test_golden_dequant(void **state) {
    (void)state;
    json_t *idx = load_index();
    for (size_t i = 0; i < N_GOLDEN; i++) {
        const char *name = golden_types[i];
        json_t *e = json_object_get(idx, name);
        assert_non_null(e);
        int tid = (int)json_integer_value(json_object_get(e, "type_id"));
        int64_t n = json_integer_value(json_object_get(e, "n_elements"));
        int64_t row_len = json_integer_value(json_object_get(e, "row_len"));
        const q_type_traits *t = q_type_get((uint32_t)tid);
        assert_non_null(t);
        assert_int_equal(q_type_from_name(name), tid);
        if (!t->to_float) fail_msg("%s: no to_float", name);
        size_t nb, nf;
        uint8_t *bin = read_quant_file(name, "bin", &nb);
        float *want = read_quant_file(name, "f32", &nf);
        assert_non_null(bin);
        assert_non_null(want);
        assert_int_equal(nb, q_row_size((q_type)tid, row_len) * (size_t)(n / row_len));
        assert_int_equal(nf, (size_t)n * 4);
        float *got = malloc((size_t)n * 4);
        assert_non_null(got);
        t->to_float(bin, got, n);
        for (int64_t k = 0; k < n; k++) {
            if (fbits(got[k]) != fbits(want[k]))
                fail_msg("%s: dequant mismatch at element %lld: got %a (0x%08x), want %a (0x%08x)", name,
                         (long long)k, (double)got[k], fbits(got[k]), (double)want[k], fbits(want[k]));
        }
        print_message("%-7s dequant: %lld values bit-exact\n", name, (long long)n);
        free(got);
        free(bin);
        free(want);
    }
    json_decref(idx);
}

static void test_golden_quantize_quality(void **state) {
    (void)state;
    json_t *idx = load_index();
    for (size_t i = 0; i < N_GOLDEN; i++) {
        const char *name = golden_types[i];
        json_t *e = json_object_get(idx, name);
        int tid = (int)json_integer_value(json_object_get(e, "type_id"));
        int64_t n = json_integer_value(json_object_get(e, "n_elements"));
        int64_t row_len = json_integer_value(json_object_get(e, "row_len"));
        double ref = json_real_value(json_object_get(e, "reference_rmse"));
        const q_type_traits *t = q_type_get((uint32_t)tid);
        if (!t->from_float) fail_msg("%s: no from_float", name);
        size_t ns;
        float *src = read_quant_file(name, "src.f32", &ns);
        assert_non_null(src);
        assert_int_equal(ns, (size_t)n * 4);
        size_t rs = q_row_size((q_type)tid, row_len);
        uint8_t *q = malloc(rs * (size_t)(n / row_len));
        float *back = malloc((size_t)n * 4);
        assert_non_null(q);
        assert_non_null(back);
        for (int64_t r = 0; r < n / row_len; r++) {
            t->from_float(src + r * row_len, q + (size_t)r * rs, row_len);
            t->to_float(q + (size_t)r * rs, back + r * row_len, row_len);
        }
        double se = 0;
        for (int64_t k = 0; k < n; k++) se += ((double)back[k] - src[k]) * ((double)back[k] - src[k]);
        double rmse = sqrt(se / (double)n);
        /* informational: how many blocks are byte-identical to the reference quantizer's */
        size_t nref;
        uint8_t *ref_bin = read_quant_file(name, "bin", &nref);
        assert_non_null(ref_bin);
        size_t bsz = q_type_get((uint32_t)tid)->type_size, nblk = nref / bsz, same = 0;
        for (size_t k = 0; k < nblk; k++) same += memcmp(q + k * bsz, ref_bin + k * bsz, bsz) == 0;
        print_message("%-7s quantize: %zu of %zu blocks byte-identical to the reference file\n", name, same, nblk);
        free(ref_bin);
        print_message("%-7s quantize: rmse %.6g, reference %.6g, ratio %.4f\n", name, rmse, ref, rmse / ref);
        if (!(rmse <= 1.02 * ref)) fail_msg("%s: rmse %g > 1.02 x reference %g", name, rmse, ref);
        free(src);
        free(q);
        free(back);
    }
    json_decref(idx);
}

/* ---- round trips on random rows ---------------------------------------------------- */

/* Per-type bound on |dequant(quant(x)) - x| as a fraction of the row's max-abs.
 * Derivations (d = step, A = max-abs of the block <= row max-abs):
 *   Q8_0/Q8_1: d = A/127, rounding error d/2, plus the half scale's relative error
 *              2^-11 times |q| <= 127 steps: A*(1/254 + 2^-11) = 0.0044A.
 *   Q4_0: d = A/8 with the extreme at q=0; the opposite side clips at 7d, so up to d
 *         = A/8 of error there (0.125A) plus the half rounding of d: 0.13A.
 *   Q5_0: same argument with 16 levels per side: A/16 + rounding: 0.066A.
 *   Q4_1: step (max-min)/15 <= 2A/15, half of it 0.067A, plus half rounding of d and
 *         m (2^-11 of 2A): 0.07A.   Q5_1: 2A/62 + same: 0.035A.
 *   F16: relative 2^-11.  BF16: relative 2^-8.  F32: exact.
 *   Q8_K: binary32 d = A/127, rounding only: 1/254 = 0.0039A -> 0.004A.
 *   MXFP4: d = 2^(floor(log2 A) - 3), so A is in [8d, 16d) while the largest level is
 *         12d: clipping costs up to 16d - 12d = 4d <= A/4, and the widest gap (8d..12d)
 *         costs 2d <= A/4 too: 0.25A (+ float slack).
 *   Q6_K: 6-bit signed q with the extreme at -32 steps: half step A/64 plus the int8
 *         sub-scale's rounding (1/256 of its range, times 32 steps): 0.016A + 0.004A
 *         -> 0.025A.
 *   Q5_K: 5-bit unsigned q over [min, max] of 32: half step 2A/62 = 0.032A, plus 6-bit
 *         scale and min rounding (0.5/63 of the largest, times 31 steps ~ 0.016A each)
 *         -> 0.08A.
 *   Q4_K: same with 4 bits: 2A/30 = 0.067A plus ~0.016A each for scale and min -> 0.12A.
 *   Q3_K: 3-bit signed q in -4..3 with the extreme at -4 steps: the opposite side clips
 *         at 3 steps, up to A/4 = 0.25A, plus 6-bit sub-scale rounding -> 0.3A.
 *   Q2_K: 4 levels over [min, max] of 16: half step (2A/3)/2 = 0.33A; the fit minimises
 *         the weighted absolute error, which may trade a little max error, plus 4-bit
 *         scale/min rounding -> 0.45A.
 *   IQ4_NL: the table's widest gap is 24 units (89..113) and the fitted |d| ~ A/120, so
 *         half a gap is ~0.1A; the least-squares refit may shrink d and clip the
 *         extreme a little: 0.15A.
 * Tiny blocks have half scales in the subnormal range, where the scale's absolute error
 * is up to 2^-25 (half a subnormal ulp), times the largest multiplier of d (or dmin) a
 * value sees (qmax, or sc*q for k-quants): `tiny` allows tiny * 2^-25 of absolute error
 * on top. */
typedef struct rt_case { q_type type; double bound; double tiny; bool idempotent; } rt_case;
static const rt_case rt_cases[] = {
    { Q_TYPE_F32,    0.0,     0,    true },
    { Q_TYPE_F16,    0x1p-11, 1,    true },
    { Q_TYPE_BF16,   0x1p-8,  0,    true },
    { Q_TYPE_Q4_0,   0.13,    8,    true },
    { Q_TYPE_Q4_1,   0.07,    16,   false },
    { Q_TYPE_Q5_0,   0.066,   16,   true },
    { Q_TYPE_Q5_1,   0.035,   32,   false },
    { Q_TYPE_Q8_0,   0.0044,  127,  true },
    { Q_TYPE_Q8_1,   0.0044,  127,  true },
    /* Q8_K: d is binary32 1/iscale; a re-quantization may land d one ulp away */
    { Q_TYPE_Q8_K,   0.004,   0,    false },
    { Q_TYPE_Q2_K,   0.45,    64,   false },
    { Q_TYPE_Q3_K,   0.3,     128,  false },
    { Q_TYPE_Q4_K,   0.12,    1024, false },
    { Q_TYPE_Q5_K,   0.08,    2048, false },
    { Q_TYPE_Q6_K,   0.025,   4096, false },
    { Q_TYPE_IQ4_NL, 0.15,    127,  false },
    { Q_TYPE_MXFP4,  0.2501,  0,    false },
};

enum { SHAPE_NORMAL, SHAPE_ZERO, SHAPE_CONST, SHAPE_TINY, SHAPE_HUGE, SHAPE_OUTLIER, SHAPE_UNIFORM,
       SHAPE_NEGCONST, SHAPE_COUNT };

static void fill_row(float *x, int64_t n, int shape) {
    for (int64_t i = 0; i < n; i++) {
        switch (shape) {
        case SHAPE_NORMAL:   x[i] = rng_normal(); break;
        case SHAPE_ZERO:     x[i] = 0.0f; break;
        case SHAPE_CONST:    x[i] = 0.75f; break;
        case SHAPE_NEGCONST: x[i] = -3.0f; break;
        case SHAPE_TINY:     x[i] = rng_normal() * 1e-6f; break;
        /* fp16 scales hold up to 65504, so the largest blocks ggml can store are ~65504*q;
         * 1000 keeps every format's scale in range while exercising large magnitudes */
        case SHAPE_HUGE:     x[i] = rng_normal() * 1000.0f; break;
        case SHAPE_OUTLIER:  x[i] = rng_normal() * 0.01f; break;
        case SHAPE_UNIFORM:  x[i] = rng_uniform() * 2.0f - 1.0f; break;
        }
    }
    if (shape == SHAPE_OUTLIER) x[rng_u32() % (uint32_t)n] = 50.0f;
}

static void test_round_trip(void **state) {
    (void)state;
    for (size_t c = 0; c < sizeof rt_cases / sizeof rt_cases[0]; c++) {
        const q_type_traits *t = q_type_get(rt_cases[c].type);
        assert_non_null(t);
        if (!t->from_float) fail_msg("%s: no from_float", t->name);
        const int64_t bs = t->blck_size > 32 ? t->blck_size : 32;
        const int64_t lens[] = { bs, 2 * bs, 3 * bs, 8 * bs, 17 * bs };
        double worst = 0;
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            int64_t n = lens[li];
            size_t rs = q_row_size(rt_cases[c].type, n);
            float *x = malloc((size_t)n * 4), *y = malloc((size_t)n * 4), *y2 = malloc((size_t)n * 4);
            uint8_t *q = malloc(rs), *q2 = malloc(rs);
            assert_true(x && y && y2 && q && q2);
            for (int shape = 0; shape < SHAPE_COUNT; shape++) {
                fill_row(x, n, shape);
                float amax = 0;
                for (int64_t i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
                memset(q, 0xa5, rs);
                t->from_float(x, q, n);
                t->to_float(q, y, n);
                double err = 0;
                for (int64_t i = 0; i < n; i++) {
                    if (!isfinite(y[i])) fail_msg("%s: non-finite output at %lld (shape %d)", t->name, (long long)i, shape);
                    err = fmax(err, fabs((double)y[i] - x[i]));
                }
                double rel = amax > 0 ? err / amax : err;
                if (amax == 0) assert_true(err == 0.0);  /* zeros stay exact zeros */
                if (shape != SHAPE_TINY) worst = fmax(worst, rel);
                if (err > rt_cases[c].bound * amax + rt_cases[c].tiny * 0x1p-25)
                    fail_msg("%s n=%lld shape %d: max error %g of max-abs %g (%.4g > bound %.4g)", t->name,
                             (long long)n, shape, err, (double)amax, rel, rt_cases[c].bound);
                /* re-quantizing the dequantized row */
                t->from_float(y, q2, n);
                t->to_float(q2, y2, n);
                if (rt_cases[c].idempotent) {
                    /* compared after dequantization: a half scale that underflowed to 0
                     * gives other bytes but the same (zero) values */
                    for (int64_t i = 0; i < n; i++)
                        if (y2[i] != y[i])  /* value compare: -0 == +0 */
                            fail_msg("%s n=%lld shape %d: dequant(quant(y)) != y at %lld: %a vs %a", t->name,
                                     (long long)n, shape, (long long)i, (double)y2[i], (double)y[i]);
                } else {
                    double err2 = 0;
                    for (int64_t i = 0; i < n; i++) err2 = fmax(err2, fabs((double)y2[i] - y[i]));
                    if (err2 > rt_cases[c].bound * amax + rt_cases[c].tiny * 0x1p-25)
                        fail_msg("%s n=%lld shape %d: second pass moved by %g", t->name, (long long)n, shape, err2);
                }
            }
            free(x); free(y); free(y2); free(q); free(q2);
        }
        print_message("%-7s round trip: worst error %.4g of row max-abs (bound %.4g)\n", t->name, worst, rt_cases[c].bound);
    }
}

/* Activation-type side fields: Q8_1's s is d * sum(q) (so ~ the sum of the block's
 * dequantized values), Q8_K's bsums are the sums of each 16 quants. */
static void test_activation_sums(void **state) {
    (void)state;
    float x[512];
    for (int i = 0; i < 512; i++) x[i] = rng_normal() + (i % 7 == 0 ? 0.5f : 0.0f);
    block_q8_1 b1[512 / QK8_1];
    q_type_get(Q_TYPE_Q8_1)->from_float(x, b1, 512);
    for (int i = 0; i < 512 / QK8_1; i++) {
        double sum = 0;
        for (int j = 0; j < QK8_1; j++) sum += b1[i].qs[j] * (double)q_fp16_to_fp32(b1[i].d);
        double s = q_fp16_to_fp32(b1[i].s);
        assert_true(fabs(s - sum) <= 1e-3 * fabs(sum) + 1e-3);
    }
    block_q8_K bk[2];
    q_type_get(Q_TYPE_Q8_K)->from_float(x, bk, 512);
    for (int i = 0; i < 2; i++)
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += bk[i].qs[16 * g + l];
            assert_int_equal(bk[i].bsums[g], sum);
        }
}

/* Non-finite input is out of contract for the quantizers (the result is unspecified),
 * but must not crash or read/write out of bounds: run every from_float over rows with
 * NaN, inf and FLT_MAX under the sanitizers. */
static void test_nonfinite_input_is_safe(void **state) {
    (void)state;
    enum { N = 512 };
    float x[N];
    uint8_t *q = malloc(N * 4);
    float *y = malloc(N * 4);
    assert_true(q && y);
    for (int kind = 0; kind < 4; kind++) {
        for (int i = 0; i < N; i++) x[i] = rng_normal();
        for (int i = 0; i < N; i += 37)
            x[i] = kind == 0 ? NAN : kind == 1 ? INFINITY : kind == 2 ? -INFINITY : 3.4e38f;
        for (uint32_t t = 0; t < Q_TYPE_COUNT; t++) {
            const q_type_traits *tr = q_type_get(t);
            if (!tr || !tr->from_float) continue;
            tr->from_float(x, q, N);
            tr->to_float(q, y, N);
        }
    }
    free(q);
    free(y);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traits_table),
        cmocka_unit_test(test_fp16_exhaustive),
        cmocka_unit_test(test_fp16_rounding),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_golden_index_covered),
        cmocka_unit_test(test_golden_dequant),
        cmocka_unit_test(test_golden_quantize_quality),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_activation_sums),
        cmocka_unit_test(test_nonfinite_input_is_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
