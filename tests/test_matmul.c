/* test_matmul.c — every row of the CPU matmul table against an independent reference:
 * the weight row and the converted activation row are dequantized with the reference
 * to_float of src/tensor (not cpu/ code) and dotted in double; the integer-block vec_dot
 * must agree to float rounding. Also checks the vec_dot_type pairing is ggml's, and the
 * matmul op's (rows x tokens) layout on a small F32 case computed by hand, and that the
 * AVX2+FMA variant equals the scalar reference bit for bit. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <stdio.h>

#include "cpu/backend.h"
#include "cpu/repack.h"
#include "tensor/quants/blocks.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float frand(void) {   /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static void test_vec_dot_types(void **state) {
    (void)state;
    static const struct { q_type w, vt; } pairs[] = {
        { Q_TYPE_F32, Q_TYPE_F32 },   { Q_TYPE_F16, Q_TYPE_F16 },   { Q_TYPE_BF16, Q_TYPE_BF16 },
        { Q_TYPE_Q4_0, Q_TYPE_Q8_0 }, { Q_TYPE_Q4_1, Q_TYPE_Q8_1 }, { Q_TYPE_Q5_0, Q_TYPE_Q8_0 },
        { Q_TYPE_Q5_1, Q_TYPE_Q8_1 }, { Q_TYPE_Q8_0, Q_TYPE_Q8_0 }, { Q_TYPE_IQ4_NL, Q_TYPE_Q8_0 },
        { Q_TYPE_MXFP4, Q_TYPE_Q8_0 }, { Q_TYPE_Q2_K, Q_TYPE_Q8_K }, { Q_TYPE_Q3_K, Q_TYPE_Q8_K },
        { Q_TYPE_Q4_K, Q_TYPE_Q8_K }, { Q_TYPE_Q5_K, Q_TYPE_Q8_K }, { Q_TYPE_Q6_K, Q_TYPE_Q8_K },
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const q_matmul_traits *mt = q_matmul_traits_get(pairs[i].w);
        assert_non_null(mt);
        assert_int_equal(mt->vec_dot_type, pairs[i].vt);
    }
    assert_null(q_matmul_traits_get(Q_TYPE_IQ2_XXS));
}

static void test_vec_dot_vs_dequant(void **state) {
    (void)state;
    enum { N = 1024 };
    static const q_type types[] = { Q_TYPE_F32, Q_TYPE_F16, Q_TYPE_BF16, Q_TYPE_Q4_0, Q_TYPE_Q4_1,
                                    Q_TYPE_Q5_0, Q_TYPE_Q5_1, Q_TYPE_Q8_0, Q_TYPE_IQ4_NL, Q_TYPE_MXFP4,
                                    Q_TYPE_Q2_K, Q_TYPE_Q3_K, Q_TYPE_Q4_K, Q_TYPE_Q5_K, Q_TYPE_Q6_K };
    float *w = malloc(N * sizeof(float)), *x = malloc(N * sizeof(float));
    float *wd = malloc(N * sizeof(float)), *xd = malloc(N * sizeof(float));
    uint8_t *wq = malloc(N * 4), *xq = malloc(N * 4);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const q_type t = types[ti];
        const q_matmul_traits *mt = q_matmul_traits_get(t);
        const q_type_traits *wt = q_type_get(t), *vt = q_type_get(mt->vec_dot_type);
        for (int trial = 0; trial < 8; trial++) {
            for (int i = 0; i < N; i++) {
                w[i] = frand() * (1.0f + (float)(i % 7));   /* uneven magnitudes across blocks */
                x[i] = frand() * (trial + 1);
            }
            wt->from_float(w, wq, N);
            vt->from_float(x, xq, N);
            wt->to_float(wq, wd, N);
            vt->to_float(xq, xd, N);
            double ref = 0, mag = 0;
            for (int i = 0; i < N; i++) {
                ref += (double)wd[i] * xd[i];
                mag += fabs((double)wd[i] * xd[i]);
            }
            if (mt->vec_dot_type == Q_TYPE_Q8_1) {
                /* Q8_1 keeps s = d * sum(q) as a half: the weight offset m multiplies that
                 * rounded s, not the sum of the dequantized values. */
                const block_q8_1 *yb = (const block_q8_1 *)xq;
                const size_t wsz = wt->type_size;
                for (int b = 0; b < N / 32; b++) {
                    q_half mh;
                    memcpy(&mh, wq + (size_t)b * wsz + 2, 2);   /* d, then m, in both Q4_1 and Q5_1 */
                    double sx = 0;
                    for (int i = 0; i < 32; i++) sx += xd[32 * b + i];
                    ref += (double)q_fp16_to_fp32(mh) * ((double)q_fp16_to_fp32(yb[b].s) - sx);
                }
            }
            float got;
            mt->vec_dot(N, &got, wq, xq);
            if (!(fabs(got - ref) <= 1e-5 * mag + 1e-6))
                fail_msg("%s: vec_dot %.9g, dequantized reference %.9g (sum |terms| %.3g)",
                         q_type_name(t), got, ref, mag);
        }
    }
    free(w); free(x); free(wd); free(xd); free(wq); free(xq);
}

static const q_type all_types[] = { Q_TYPE_F32, Q_TYPE_F16, Q_TYPE_BF16, Q_TYPE_Q4_0, Q_TYPE_Q4_1,
                                    Q_TYPE_Q5_0, Q_TYPE_Q5_1, Q_TYPE_Q8_0, Q_TYPE_IQ4_NL, Q_TYPE_MXFP4,
                                    Q_TYPE_Q2_K, Q_TYPE_Q3_K, Q_TYPE_Q4_K, Q_TYPE_Q5_K, Q_TYPE_Q6_K };

/* Every ISA variant must equal the scalar reference bit for bit (same summation order,
 * exact fused multiply-adds), on many lengths including ones that take the tails, and on
 * inputs with wide dynamic range (large blocks next to tiny ones). */
static void test_isa_variants_bit_identical(void **state) {
    (void)state;
    static const int64_t lens[] = { 8, 16, 32, 48, 64, 96, 172, 256, 512, 768, 1024, 1056, 2048 };
    float *w = malloc(2048 * sizeof(float)), *x = malloc(2048 * sizeof(float));
    uint8_t *wq = malloc(2048 * 4), *xq = malloc(2048 * 4);
    int n_isa = 0;
    for (int isa = 1; isa < Q_CPU_ISA_COUNT; isa++) {
        if (!q_cpu_isa_supported((q_cpu_isa)isa)) {
            printf("%s: not run by this CPU or build\n", q_cpu_isa_name((q_cpu_isa)isa));
            continue;
        }
        n_isa++;
        for (size_t ti = 0; ti < sizeof all_types / sizeof all_types[0]; ti++) {
            const q_matmul_traits *ref = q_matmul_traits_isa(all_types[ti], Q_CPU_ISA_SCALAR);
            const q_matmul_traits *fast = q_matmul_traits_isa(all_types[ti], (q_cpu_isa)isa);
            assert_non_null(fast);
            assert_int_equal(fast->vec_dot_type, ref->vec_dot_type);
            const q_type_traits *wt = q_type_get(all_types[ti]), *vt = q_type_get(ref->vec_dot_type);
            for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
                const int64_t n = lens[li];
                if (n % wt->blck_size || n % vt->blck_size) continue;
                for (int trial = 0; trial < 6; trial++) {
                    for (int64_t i = 0; i < n; i++) {
                        const float sw = trial >= 4 && (i / 64) % 3 == 0 ? 1e-3f : 3.0f;
                        w[i] = frand() * sw;
                        x[i] = frand() * (float)(trial + 1) * (trial == 5 && i % 7 == 0 ? 100.0f : 1.0f);
                    }
                    wt->from_float(w, wq, n);
                    vt->from_float(x, xq, n);
                    float a, b;
                    ref->vec_dot(n, &a, wq, xq);
                    fast->vec_dot(n, &b, wq, xq);
                    if (memcmp(&a, &b, sizeof a))
                        fail_msg("%s n=%lld: scalar %.9g, %s %.9g", q_type_name(all_types[ti]), (long long)n, a,
                                 q_cpu_isa_name((q_cpu_isa)isa), b);
                }
            }
        }
    }
    if (!n_isa) printf("only the scalar kernels run here\n");
    free(w); free(x); free(wq); free(xq);
}

/* One raw-block case: every (row, token) of an nr x nc tile through the kernel set's vec_dot
 * and its gemm, each compared bit for bit with the scalar vec_dot. */
static void raw_compare(const q_matmul_traits *ref, const q_matmul_traits *fast, q_cpu_isa isa, q_type t, int pat,
                        int64_t N, int32_t nr, int32_t nc, const uint8_t *wq, size_t ws, const uint8_t *xq, size_t as,
                        float *y, float *want) {
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < nr; r++) {
            ref->vec_dot(N, &want[c * nr + r], wq + r * ws, xq + c * as);
            float v;
            fast->vec_dot(N, &v, wq + r * ws, xq + c * as);
            if (memcmp(&v, &want[c * nr + r], sizeof v))
                fail_msg("%s %s vec_dot pattern %d: %.9g, scalar %.9g", q_cpu_isa_name(isa), q_type_name(t), pat, v,
                         want[c * nr + r]);
        }
    if (!fast->gemm) return;
    fast->gemm(N, nr, nc, wq, ws, xq, as, y, nr);
    for (int i = 0; i < nr * nc; i++)
        if (memcmp(&y[i], &want[i], sizeof(float)))
            fail_msg("%s %s gemm %dx%d pattern %d: y[%d] = %.9g, scalar %.9g", q_cpu_isa_name(isa), q_type_name(t), nr,
                     nc, pat, i, y[i], want[i]);
}

/* 32-element-block kernels of every ISA on raw blocks: random bytes and saturating
 * patterns (all-ones nibbles and fifth bits, Q8_0 weights of -128, activations of
 * +-127) that quantizing real data rarely produces, against the scalar vec_dot, bit for
 * bit, for vec_dot and for gemm tiles of decode and prefill shapes. Scales are random
 * finite halves (MXFP4: exponents 0..200, or 0..3 alone so that the subnormal scales
 * 2^-128 and 2^-127 are not rounded away next to larger blocks);
 * activation quants lie in [-127, 127], as the Q8_0 / Q8_1 quantizers write them. */
static void test_q32_raw_blocks_bit_identical(void **state) {
    (void)state;
    /* type, block bytes, offset of d (-1: MXFP4's exponent byte at 0), of m (-1: none) */
    static const struct { q_type t; size_t size; int d, m; } q32[] = {
        { Q_TYPE_Q4_0, sizeof(block_q4_0), 0, -1 },   { Q_TYPE_Q4_1, sizeof(block_q4_1), 0, 2 },
        { Q_TYPE_Q5_0, sizeof(block_q5_0), 0, -1 },   { Q_TYPE_Q5_1, sizeof(block_q5_1), 0, 2 },
        { Q_TYPE_Q8_0, sizeof(block_q8_0), 0, -1 },   { Q_TYPE_IQ4_NL, sizeof(block_iq4_nl), 0, -1 },
        { Q_TYPE_MXFP4, sizeof(block_mxfp4), -1, -1 },
    };
    static const int32_t shapes[][2] = { { 1, 1 }, { 5, 1 }, { 16, 1 }, { 17, 1 }, { 3, 2 }, { 9, 5 }, { 16, 64 } };
    enum { NB = 40, N = NB * 32, MAXR = 17, MAXC = 64 };   /* 40 blocks: past every K chunk */
    const size_t as = NB * sizeof(block_q8_1);
    uint8_t *wq = malloc(MAXR * NB * sizeof(block_q8_0)), *xq = malloc(MAXC * as);   /* the largest blocks */
    float *y = malloc(sizeof(float) * MAXR * MAXC), *want = malloc(sizeof(float) * MAXR * MAXC);
    for (int isa = 1; isa < Q_CPU_ISA_COUNT; isa++) {
        if (!q_cpu_isa_supported((q_cpu_isa)isa)) continue;
        for (size_t ki = 0; ki < sizeof q32 / sizeof q32[0]; ki++) {
            const q_matmul_traits *ref = q_matmul_traits_isa(q32[ki].t, Q_CPU_ISA_SCALAR);
            const q_matmul_traits *fast = q_matmul_traits_isa(q32[ki].t, (q_cpu_isa)isa);
            const size_t ws = NB * q32[ki].size, abytes = q_row_size(ref->vec_dot_type, 32);
            for (int pat = 0; pat < 5; pat++) {
                /* weight bytes: 0 random, 1 all 0xFF, 2 all 0x80, 3 all 0x00, 4 random */
                const int wfill = pat == 1 ? 0xFF : pat == 2 ? 0x80 : pat == 3 ? 0x00 : -1;
                for (size_t i = 0; i < MAXR * ws; i++)
                    wq[i] = (uint8_t)(wfill >= 0 ? wfill : (int)((frand() + 1.0f) * 128.0f) & 0xFF);
                for (int r = 0; r < MAXR; r++)
                    for (int b = 0; b < NB; b++) {
                        uint8_t *blk = wq + r * ws + b * q32[ki].size;
                        const q_half d = q_fp32_to_fp16(frand() * 0.01f), m = q_fp32_to_fp16(frand() * 0.01f);
                        if (q32[ki].d < 0)   /* pattern 4: only the smallest exponents, so they show */
                            blk[0] = (uint8_t)((frand() + 1.0f) * (pat == 4 ? 2.0f : 100.5f));
                        else memcpy(blk + q32[ki].d, &d, 2);
                        if (q32[ki].m >= 0) memcpy(blk + q32[ki].m, &m, 2);
                    }
                for (int c = 0; c < MAXC; c++)
                    for (int b = 0; b < NB; b++) {
                        uint8_t *yb = xq + c * as + b * abytes;   /* d, [s,] 32 quants */
                        const q_half d = q_fp32_to_fp16(frand() * 0.1f), sum = q_fp32_to_fp16(frand() * 4.0f);
                        memcpy(yb, &d, 2);
                        if (abytes == sizeof(block_q8_1)) memcpy(yb + 2, &sum, 2);
                        int8_t *qs = (int8_t *)(yb + abytes - 32);
                        for (int i = 0; i < 32; i++)
                            qs[i] = (int8_t)(pat == 1 || pat == 3 ? -127 : pat == 2 ? 127 : (int)(frand() * 127.5f));
                    }
                for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
                    raw_compare(ref, fast, (q_cpu_isa)isa, q32[ki].t, pat, N, shapes[si][0], shapes[si][1], wq, ws, xq, as,
                                y, want);
            }
        }
    }
    free(wq); free(xq); free(y); free(want);
}

/* Tile kernels (gemm) of every ISA, the scalar one included, against the scalar vec_dot
 * per output: bit-identical, over tile shapes that hit every remainder (rows and tokens
 * not multiples of the register tile), padded strides, and a ldy larger than nr. */
static void test_gemm_tiles_bit_identical(void **state) {
    (void)state;
    /* 4160: more blocks than one K chunk of any tile kernel; 70 tokens: more than one
     * token pass; 13, 16, 17 rows x 1 token: the decode paths' row groups and remainders;
     * 2..16 tokens: the small-batch paths, each token count its own instance */
    static const int64_t lens[] = { 32, 48, 64, 172, 256, 512, 1056, 4160 };
    static const int32_t shapes[][2] = { { 1, 1 }, { 1, 7 }, { 3, 1 }, { 4, 4 }, { 5, 3 }, { 8, 1 }, { 8, 9 },
                                         { 13, 1 }, { 13, 2 }, { 16, 1 }, { 16, 16 }, { 17, 1 }, { 17, 5 },
                                         { 16, 64 }, { 9, 70 },
                                         /* small batches (nc 2..16): the per-count paths */
                                         { 16, 6 }, { 7, 8 }, { 16, 11 }, { 3, 15 } };
    enum { MAXR = 17, MAXC = 70, MAXN = 4160, PAD = 40 };
    float *w = malloc(MAXN * sizeof(float)), *x = malloc(MAXN * sizeof(float));
    const size_t wstride = MAXN * 4 + PAD, astride = MAXN * 4 + PAD + 24;
    uint8_t *wq = calloc(MAXR, wstride), *xq = calloc(MAXC, astride);
    float *y = malloc(sizeof(float) * MAXC * (MAXR + 3)), *want = malloc(sizeof(float) * MAXC * (MAXR + 3));
    int n_gemm = 0;
    for (int isa = 0; isa < Q_CPU_ISA_COUNT; isa++) {
        if (!q_cpu_isa_supported((q_cpu_isa)isa)) continue;
        for (size_t ti = 0; ti < sizeof all_types / sizeof all_types[0]; ti++) {
            const q_matmul_traits *ref = q_matmul_traits_isa(all_types[ti], Q_CPU_ISA_SCALAR);
            const q_matmul_traits *fast = q_matmul_traits_isa(all_types[ti], (q_cpu_isa)isa);
            if (!fast->gemm) continue;
            n_gemm++;
            const q_type_traits *wt = q_type_get(all_types[ti]), *vt = q_type_get(ref->vec_dot_type);
            for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
                const int64_t n = lens[li];
                if (n % wt->blck_size || n % vt->blck_size) continue;
                for (int r = 0; r < MAXR; r++) {
                    for (int64_t i = 0; i < n; i++) w[i] = frand() * (r % 3 ? 2.0f : 0.01f);
                    wt->from_float(w, wq + r * wstride, n);
                }
                for (int c = 0; c < MAXC; c++) {
                    for (int64_t i = 0; i < n; i++) x[i] = frand() * (float)(1 + c % 5);
                    vt->from_float(x, xq + c * astride, n);
                }
                for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
                    const int32_t nr = shapes[si][0], nc = shapes[si][1];
                    const int64_t ldy = nr + 3;
                    for (int64_t i = 0; i < MAXC * ldy; i++) y[i] = want[i] = -7.0f;   /* untouched gaps stay */
                    for (int c = 0; c < nc; c++)
                        for (int r = 0; r < nr; r++) ref->vec_dot(n, &want[c * ldy + r], wq + r * wstride, xq + c * astride);
                    fast->gemm(n, nr, nc, wq, wstride, xq, astride, y, ldy);
                    for (int64_t i = 0; i < nc * ldy; i++)
                        if (memcmp(&y[i], &want[i], sizeof(float)))
                            fail_msg("%s %s gemm n=%lld %dx%d: y[%lld] = %.9g, vec_dot %.9g", q_cpu_isa_name((q_cpu_isa)isa),
                                     q_type_name(all_types[ti]), (long long)n, nr, nc, (long long)i, y[i], want[i]);
                }
            }
        }
    }
    printf("%d tile kernels checked\n", n_gemm);
    free(w); free(x); free(wq); free(xq); free(y); free(want);
}

/* k-quant kernels of every ISA on raw blocks: random bytes and saturating patterns
 * (all-ones quants and scales, Q6_K scales of -128, activations of +-127) that
 * quantizing real data rarely produces, against the scalar vec_dot, bit for bit, for
 * vec_dot and for gemm tiles of decode and prefill shapes. Block scales (halves) are
 * random finite values; Q8_K quants lie in [-127, 127] and bsums are their true sums,
 * as the Q8_K quantizer writes them (kernels may rely on both). */
static void test_kquant_raw_blocks_bit_identical(void **state) {
    (void)state;
#define KQ_ROW(T, B, DMIN) { Q_TYPE_##T, sizeof(B), offsetof(B, d), DMIN, offsetof(B, scales), sizeof(((B *)0)->scales) }
    static const struct { q_type t; size_t size, d, dmin, sc, nsc; } kq[] = {   /* dmin 0: none */
        KQ_ROW(Q2_K, block_q2_K, offsetof(block_q2_K, dmin)), KQ_ROW(Q3_K, block_q3_K, 0),
        KQ_ROW(Q4_K, block_q4_K, offsetof(block_q4_K, dmin)), KQ_ROW(Q5_K, block_q5_K, offsetof(block_q5_K, dmin)),
        KQ_ROW(Q6_K, block_q6_K, 0),
    };
#undef KQ_ROW
    static const int32_t shapes[][2] = { { 1, 1 }, { 4, 1 }, { 7, 1 }, { 2, 4 }, { 3, 6 }, { 16, 64 } };
    enum { NB = 8, N = NB * QK_K, MAXR = 16, MAXC = 64 };
    const size_t as = NB * sizeof(block_q8_K);
    uint8_t *wq = malloc(MAXR * NB * sizeof(block_q6_K)), *xq = malloc(MAXC * as);
    float *y = malloc(sizeof(float) * MAXR * MAXC), *want = malloc(sizeof(float) * MAXR * MAXC);
    for (int isa = 1; isa < Q_CPU_ISA_COUNT; isa++) {
        if (!q_cpu_isa_supported((q_cpu_isa)isa)) continue;
        for (size_t ki = 0; ki < sizeof kq / sizeof kq[0]; ki++) {
            const q_matmul_traits *ref = q_matmul_traits_isa(kq[ki].t, Q_CPU_ISA_SCALAR);
            const q_matmul_traits *fast = q_matmul_traits_isa(kq[ki].t, (q_cpu_isa)isa);
            const size_t ws = NB * kq[ki].size;
            for (int pat = 0; pat < 6; pat++) {
                /* weight bytes: 0 random, 1 all 0xFF, 2 all 0x80, 3 all 0x00 (random scales),
                 * 4 all 0x7F, 5 random */
                const int wfill = pat == 1 ? 0xFF : pat == 2 ? 0x80 : pat == 3 ? 0x00 : pat == 4 ? 0x7F : -1;
                for (size_t i = 0; i < MAXR * ws; i++)
                    wq[i] = (uint8_t)(wfill >= 0 ? wfill : (int)((frand() + 1.0f) * 128.0f) & 0xFF);
                for (int r = 0; r < MAXR; r++)
                    for (int b = 0; b < NB; b++) {
                        uint8_t *blk = wq + r * ws + b * kq[ki].size;
                        const q_half d = q_fp32_to_fp16(frand() * 0.01f), m = q_fp32_to_fp16(frand() * 0.01f);
                        memcpy(blk + kq[ki].d, &d, 2);
                        if (kq[ki].dmin) memcpy(blk + kq[ki].dmin, &m, 2);
                        if (pat == 3)
                            for (size_t i = 0; i < kq[ki].nsc; i++)
                                blk[kq[ki].sc + i] = (uint8_t)((int)((frand() + 1.0f) * 128.0f) & 0xFF);
                    }
                for (int c = 0; c < MAXC; c++)
                    for (int b = 0; b < NB; b++) {
                        block_q8_K *yb = (block_q8_K *)(xq + c * as) + b;
                        yb->d = frand() * 0.1f;
                        for (int i = 0; i < QK_K; i++)   /* activations: -127, 127 or random */
                            yb->qs[i] = (int8_t)(pat == 1 || pat == 3 ? -127 : pat == 2 ? 127 : (int)(frand() * 127.5f));
                        for (int g = 0; g < QK_K / 16; g++) {
                            int sum = 0;
                            for (int i = 0; i < 16; i++) sum += yb->qs[16 * g + i];
                            yb->bsums[g] = (int16_t)sum;
                        }
                    }
                for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
                    raw_compare(ref, fast, (q_cpu_isa)isa, kq[ki].t, pat, N, shapes[si][0], shapes[si][1], wq, ws, xq, as,
                                y, want);
            }
        }
    }
    free(wq); free(xq); free(y); free(want);
}

/* The x8 layouts byte for byte as cpu/repack.h specifies them (an independent reading of
 * the spec, not the pack code): group block (g, b) holds the 8 rows' scales, then dword
 * r of vector j = dword j of row 8g + r's quants. */
static void test_repack_x8_layout(void **state) {
    (void)state;
    static const struct { q_type t; size_t bs; int n_dw; } kinds[] = {
        { Q_TYPE_Q4_0, sizeof(block_q4_0), 4 }, { Q_TYPE_Q8_0, sizeof(block_q8_0), 8 } };
    enum { NR = 16, NB = 3 };
    uint8_t src[NR * NB * sizeof(block_q8_0)], dst[sizeof src];
    for (size_t i = 0; i < sizeof src; i++) src[i] = (uint8_t)(i * 131 + 7);
    int n_sets = 0;
    for (int isa = 0; isa < Q_CPU_ISA_COUNT; isa++) {
        if (!q_cpu_isa_supported((q_cpu_isa)isa)) continue;
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            const q_repack_traits *rt = q_repack_traits_isa(kinds[k].t, (q_cpu_isa)isa);
            if (!rt) continue;
            n_sets++;
            assert_int_equal(rt->layout, Q_LAYOUT_X8);
            const size_t bs = kinds[k].bs, gb = 8 * bs, rb = NB * bs;
            memset(dst, 0xEE, sizeof dst);
            rt->pack(NB * 32, NR, src, dst);
            for (int g = 0; g < NR / 8; g++)
                for (int b = 0; b < NB; b++) {
                    const uint8_t *p = dst + (size_t)(g * NB + b) * gb;
                    for (int r = 0; r < 8; r++) {
                        const uint8_t *blk = src + (size_t)(8 * g + r) * rb + (size_t)b * bs;
                        assert_memory_equal(p + 2 * r, blk, 2);
                        for (int j = 0; j < kinds[k].n_dw; j++) assert_memory_equal(p + 16 + 32 * j + 4 * r, blk + 2 + 4 * j, 4);
                    }
                }
        }
    }
    /* the scalar reference set never repacks */
    assert_null(q_repack_traits_isa(Q_TYPE_Q4_0, Q_CPU_ISA_SCALAR));
    printf("%d repack entries checked\n", n_sets);
}

/* Every x8 tile kernel against the scalar vec_dot on the row-major rows, bit for bit:
 * quantized random data and raw saturating patterns (all-0xFF nibbles, Q8_0 weights of
 * -128, activations of +-127), K from one block to past several K chunks, 8..40 rows,
 * 1 token (decode), 2..17 (small batches), 64 and 65 (a full pass, and a pass plus one). */
static void test_repack_x8_gemm_bit_identical(void **state) {
    (void)state;
    static const q_type types[] = { Q_TYPE_Q4_0, Q_TYPE_Q8_0 };
    static const int64_t lens[] = { 32, 96, 1056, 4160 };
    static const int32_t rows[] = { 8, 16, 40 };
    static const int32_t toks[] = { 1, 2, 3, 5, 8, 11, 16, 17, 64, 65 };
    enum { MAXR = 40, MAXC = 65, MAXN = 4160 };
    const size_t astride = MAXN / 32 * sizeof(block_q8_0) + 24;
    float *w = malloc(MAXN * sizeof(float)), *x = malloc(MAXN * sizeof(float));
    uint8_t *wq = malloc(MAXR * MAXN / 32 * sizeof(block_q8_0)), *wp = malloc(MAXR * MAXN / 32 * sizeof(block_q8_0));
    uint8_t *xq = malloc(MAXC * astride);
    float *y = malloc(sizeof(float) * MAXC * (MAXR + 3)), *want = malloc(sizeof(float) * MAXC * (MAXR + 3));
    int n_cases = 0;
    for (int isa = 0; isa < Q_CPU_ISA_COUNT; isa++) {
        if (!q_cpu_isa_supported((q_cpu_isa)isa)) continue;
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            const q_repack_traits *rt = q_repack_traits_isa(types[ti], (q_cpu_isa)isa);
            if (!rt) continue;
            const q_matmul_traits *ref = q_matmul_traits_isa(types[ti], Q_CPU_ISA_SCALAR);
            const q_type_traits *wt = q_type_get(types[ti]), *vt = q_type_get(ref->vec_dot_type);
            for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
                const int64_t n = lens[li];
                const size_t ws = q_row_size(types[ti], n);
                for (int pat = 0; pat < 3; pat++) {   /* 0 quantized data, 1 all 0xFF / -127, 2 0x80 / +127 */
                    for (int r = 0; r < MAXR; r++) {
                        for (int64_t i = 0; i < n; i++) w[i] = frand() * (r % 3 ? 2.0f : 0.01f);
                        wt->from_float(w, wq + r * ws, n);
                        if (pat)   /* keep the (random) scales, saturate the quants */
                            for (int64_t b = 0; b < n / 32; b++)
                                memset(wq + r * ws + b * wt->type_size + 2, pat == 1 ? 0xFF : 0x80, wt->type_size - 2);
                    }
                    for (int c = 0; c < MAXC; c++) {
                        for (int64_t i = 0; i < n; i++) x[i] = frand() * (float)(1 + c % 5);
                        vt->from_float(x, xq + c * astride, n);
                        if (pat)
                            for (int64_t b = 0; b < n / 32; b++)
                                memset(xq + c * astride + b * sizeof(block_q8_0) + 2, pat == 1 ? 0x81 : 0x7F, 32);
                    }
                    rt->pack(n, MAXR, wq, wp);
                    for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++)
                        for (size_t ci = 0; ci < sizeof toks / sizeof toks[0]; ci++) {
                            const int32_t nr = rows[ri], nc = toks[ci];
                            if (pat && nc > 17) continue;
                            const int64_t ldy = nr + 3;
                            for (int64_t i = 0; i < MAXC * ldy; i++) y[i] = want[i] = -7.0f;
                            for (int c = 0; c < nc; c++)
                                for (int r = 0; r < nr; r++) ref->vec_dot(n, &want[c * ldy + r], wq + r * ws, xq + c * astride);
                            /* a tile that starts at row group 1 when there is room: offsets as the matmul op's */
                            const int32_t r0 = nr + 8 <= MAXR ? 8 : 0;
                            if (r0)
                                for (int c = 0; c < nc; c++)
                                    for (int r = 0; r < nr; r++)
                                        ref->vec_dot(n, &want[c * ldy + r], wq + (r0 + r) * ws, xq + c * astride);
                            rt->gemm(n, nr, nc, wp + (size_t)r0 * ws, ws, xq, astride, y, ldy);
                            n_cases++;
                            for (int64_t i = 0; i < MAXC * ldy; i++)
                                if (memcmp(&y[i], &want[i], sizeof(float)))
                                    fail_msg("%s %s x8 gemm n=%lld %dx%d pattern %d: y[%lld] = %.9g, vec_dot %.9g",
                                             q_cpu_isa_name((q_cpu_isa)isa), q_type_name(types[ti]), (long long)n, nr, nc,
                                             pat, (long long)i, y[i], want[i]);
                        }
                }
            }
        }
    }
    printf("%d x8 tile cases checked\n", n_cases);
    free(w); free(x); free(wq); free(wp); free(xq); free(y); free(want);
}

/* The matmul op routes a tensor with layout x8 to the x8 tiles: a repacked copy of a
 * 48 x 1056 Q4_0 / Q8_0 matrix gives the row-major matrix's outputs bit for bit, for
 * decode, a small batch and a prefill of two token passes, through the thread-less op. */
static void test_repack_matmul_op(void **state) {
    (void)state;
    enum { NR = 48, N = 1056, NT = 70 };
    float *w = malloc(N * sizeof(float)), *x = malloc((size_t)NT * N * sizeof(float));
    float *y0 = malloc(sizeof(float) * NT * NR), *y1 = malloc(sizeof(float) * NT * NR);
    const size_t wsz = q_matmul_wsize(Q_TYPE_Q8_0, N, NT);
    void *scratch = malloc(wsz);
    q_exec ex = { .be = &q_backend_cpu, .wdata = scratch, .wdata_size = wsz };
    for (int64_t i = 0; i < (int64_t)NT * N; i++) x[i] = frand();
    const q_type types[] = { Q_TYPE_Q4_0, Q_TYPE_Q8_0 };
    for (size_t ti = 0; ti < 2; ti++) {
        const q_repack_traits *rt = q_repack_traits_get(types[ti]);
        if (!rt) {
            printf("%s: no repack in the %s set\n", q_type_name(types[ti]), q_cpu_isa_name(q_cpu_isa_best()));
            continue;
        }
        const size_t ws = q_row_size(types[ti], N);
        uint8_t *wq = malloc(NR * ws), *wp = malloc(NR * ws);
        for (int r = 0; r < NR; r++) {
            for (int i = 0; i < N; i++) w[i] = frand();
            q_type_get(types[ti])->from_float(w, wq + r * ws, N);
        }
        rt->pack(N, NR, wq, wp);
        const q_tensor trow = { .type = types[ti], .ne = { N, NR, 1, 1 }, .row_bytes = ws, .data = wq };
        q_tensor tx8 = trow;
        tx8.layout = rt->layout;
        tx8.data = wp;
        assert_true(q_repack_eligible(&trow));
        assert_false(q_repack_eligible(&tx8));   /* already repacked */
        const int32_t ntoks[] = { 1, 5, NT };
        for (int k = 0; k < 3; k++) {
            q_backend_cpu.matmul(&ex, &trow, x, N, y0, NR, ntoks[k]);
            q_backend_cpu.matmul(&ex, &tx8, x, N, y1, NR, ntoks[k]);
            assert_memory_equal(y0, y1, sizeof(float) * (size_t)ntoks[k] * NR);
        }
        /* 3-D experts: the same bytes seen as 3 experts of 16 rows, each slice packed on its
         * own (as the load pass does); q_tensor_expert's view of the packed tensor must
         * give the row-major expert's outputs */
        q_tensor e3 = trow;
        e3.ne[1] = NR / 3;
        e3.ne[2] = 3;
        for (int e = 0; e < 3; e++) rt->pack(N, NR / 3, wq + (size_t)e * (NR / 3) * ws, wp + (size_t)e * (NR / 3) * ws);
        q_tensor e3x = e3;
        e3x.layout = rt->layout;
        e3x.data = wp;
        assert_true(q_repack_eligible(&e3));
        for (int e = 0; e < 3; e++) {
            const q_tensor vr = q_tensor_expert(&e3, e), vx = q_tensor_expert(&e3x, e);
            q_backend_cpu.matmul(&ex, &vr, x, N, y0, NR / 3, 1);
            q_backend_cpu.matmul(&ex, &vx, x, N, y1, NR / 3, 1);
            assert_memory_equal(y0, y1, sizeof(float) * NR / 3);
        }
        free(wq); free(wp);
    }
    free(w); free(x); free(y0); free(y1); free(scratch);
}

/* k-quant kernels of every ISA on rows longer than any kernel's K pass (Q6_K prepares
 * the activations of at most 128 super-blocks per pass: 128 at decode, 128 / C for a
 * C-token group), so the float lanes carried between passes are checked: 130
 * super-blocks, token groups of 1, 2, 3, 5, 5 + 4 and 8 + 8 (on rows this long, Q6_K's
 * 2..4-token groups take its +128-activation path, which short rows do not), bit for
 * bit against the scalar vec_dot (as raw_compare). */
static void test_kquant_long_rows_bit_identical(void **state) {
    (void)state;
    static const q_type kt[] = { Q_TYPE_Q2_K, Q_TYPE_Q3_K, Q_TYPE_Q4_K, Q_TYPE_Q5_K, Q_TYPE_Q6_K };
    static const int32_t shapes[][2] = { { 3, 1 }, { 2, 2 }, { 1, 3 }, { 2, 5 }, { 2, 9 }, { 1, 16 } };
    enum { N = 130 * QK_K, MAXR = 3, MAXC = 16 };
    const size_t as = q_row_size(Q_TYPE_Q8_K, N);
    float *f = malloc(N * sizeof(float));
    uint8_t *xq = malloc(MAXC * as);
    float *y = malloc(sizeof(float) * MAXR * MAXC), *want = malloc(sizeof(float) * MAXR * MAXC);
    for (int c = 0; c < MAXC; c++) {
        for (int64_t i = 0; i < N; i++) f[i] = frand() * (float)(1 + c % 3);
        q_type_get(Q_TYPE_Q8_K)->from_float(f, xq + c * as, N);
    }
    for (int isa = 1; isa < Q_CPU_ISA_COUNT; isa++) {
        if (!q_cpu_isa_supported((q_cpu_isa)isa)) continue;
        for (size_t ki = 0; ki < sizeof kt / sizeof kt[0]; ki++) {
            const size_t ws = q_row_size(kt[ki], N);
            uint8_t *wq = malloc(MAXR * ws);
            for (int r = 0; r < MAXR; r++) {
                for (int64_t i = 0; i < N; i++) f[i] = frand();
                q_type_get(kt[ki])->from_float(f, wq + r * ws, N);
            }
            const q_matmul_traits *ref = q_matmul_traits_isa(kt[ki], Q_CPU_ISA_SCALAR);
            const q_matmul_traits *fast = q_matmul_traits_isa(kt[ki], (q_cpu_isa)isa);
            for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
                raw_compare(ref, fast, (q_cpu_isa)isa, kt[ki], -1, N, shapes[si][0], shapes[si][1], wq, ws, xq, as, y, want);
            free(wq);
        }
    }
    free(f); free(xq); free(y); free(want);
}

/* The Q4_K gemm's passes (cpu/kern_avx2_kq.c: 32-row groups, 8-token tiles, prepared
 * activations of 8 super-blocks per pass): 37 rows (a second, short row group), 9
 * super-blocks (float lanes carried into a second pass), every token count 1..9 and 17 (each
 * tile instance, and remainders after whole tiles), on raw blocks: random bytes, and all
 * nibbles 15 with all six-bit scales and mins 63 against activations of -127 or +127 (the
 * paired int16 sums at their largest). Bit for bit against the scalar vec_dot. */
static void test_q4k_gemm_passes_bit_identical(void **state) {
    (void)state;
    enum { NB = 9, N = NB * QK_K, NR = 37, MAXC = 17 };
    const size_t ws = NB * sizeof(block_q4_K), as = NB * sizeof(block_q8_K);
    uint8_t *wq = malloc(NR * ws), *xq = malloc(MAXC * as);
    float *y = malloc(sizeof(float) * NR * MAXC), *want = malloc(sizeof(float) * NR * MAXC);
    for (int isa = 1; isa < Q_CPU_ISA_COUNT; isa++) {
        if (!q_cpu_isa_supported((q_cpu_isa)isa)) continue;
        const q_matmul_traits *ref = q_matmul_traits_isa(Q_TYPE_Q4_K, Q_CPU_ISA_SCALAR);
        const q_matmul_traits *fast = q_matmul_traits_isa(Q_TYPE_Q4_K, (q_cpu_isa)isa);
        for (int pat = 0; pat < 3; pat++) {   /* 0 random; 1, 2 saturating with activations -127, +127 */
            for (size_t i = 0; i < NR * ws; i++) wq[i] = pat ? 0xFF : (uint8_t)((int)((frand() + 1.0f) * 128.0f) & 0xFF);
            for (int r = 0; r < NR; r++)
                for (int b = 0; b < NB; b++) {
                    block_q4_K *blk = (block_q4_K *)(wq + r * ws) + b;
                    blk->d = q_fp32_to_fp16(frand() * 0.01f);
                    blk->dmin = q_fp32_to_fp16(frand() * 0.01f);
                }
            for (int c = 0; c < MAXC; c++)
                for (int b = 0; b < NB; b++) {
                    block_q8_K *yb = (block_q8_K *)(xq + c * as) + b;
                    yb->d = frand() * 0.1f;
                    for (int i = 0; i < QK_K; i++)
                        yb->qs[i] = (int8_t)(pat == 1 ? -127 : pat == 2 ? 127 : (int)(frand() * 127.5f));
                    for (int g = 0; g < QK_K / 16; g++) {
                        int sum = 0;
                        for (int i = 0; i < 16; i++) sum += yb->qs[16 * g + i];
                        yb->bsums[g] = (int16_t)sum;
                    }
                }
            for (int32_t nc = 1; nc <= MAXC; nc = nc == 9 ? MAXC : nc + 1)
                raw_compare(ref, fast, (q_cpu_isa)isa, Q_TYPE_Q4_K, pat, N, NR, nc, wq, ws, xq, as, y, want);
        }
    }
    free(wq); free(xq); free(y); free(want);
}

/* y(t, r) = W(r, :) . x(t, :) for a 3x2 weight (2 inputs, 3 outputs) and 2 tokens. */
static void test_matmul_layout(void **state) {
    (void)state;
    const float wdata[6] = { 1, 2,  3, 4,  5, 6 };   /* rows r = 0..2 */
    const float x[4] = { 1, 1,  2, -1 };             /* tokens t = 0..1 */
    q_tensor w = { .type = Q_TYPE_F32, .ne = { 2, 3, 1, 1 }, .row_bytes = 8, .data = wdata };
    float y[6], wbuf[16];
    q_exec ex = { .be = &q_backend_cpu, .wdata = wbuf, .wdata_size = sizeof wbuf };
    q_backend_cpu.matmul(&ex, &w, x, 2, y, 3, 2);
    const float want[6] = { 3, 7, 11,  0, 2, 4 };
    for (int i = 0; i < 6; i++) assert_float_equal(y[i], want[i], 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vec_dot_types),
        cmocka_unit_test(test_vec_dot_vs_dequant),
        cmocka_unit_test(test_isa_variants_bit_identical),
        cmocka_unit_test(test_q32_raw_blocks_bit_identical),
        cmocka_unit_test(test_gemm_tiles_bit_identical),
        cmocka_unit_test(test_kquant_raw_blocks_bit_identical),
        cmocka_unit_test(test_kquant_long_rows_bit_identical),
        cmocka_unit_test(test_q4k_gemm_passes_bit_identical),
        cmocka_unit_test(test_matmul_layout),
        cmocka_unit_test(test_repack_x8_layout),
        cmocka_unit_test(test_repack_x8_gemm_bit_identical),
        cmocka_unit_test(test_repack_matmul_op),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
