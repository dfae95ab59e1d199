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

/* Every ISA variant must equal the scalar reference bit for bit (same summation order,
 * exact fused multiply-adds), on many lengths including ones that take the tails. */
static void test_isa_variants_bit_identical(void **state) {
    (void)state;
    if (!q_matmul_traits_isa(Q_TYPE_F32, Q_CPU_ISA_AVX2)) {
        printf("no AVX2 variant built on this architecture\n");
        skip();
    }
    static const q_type types[] = { Q_TYPE_F32, Q_TYPE_F16, Q_TYPE_BF16, Q_TYPE_Q4_0, Q_TYPE_Q4_1,
                                    Q_TYPE_Q5_0, Q_TYPE_Q5_1, Q_TYPE_Q8_0, Q_TYPE_IQ4_NL, Q_TYPE_MXFP4,
                                    Q_TYPE_Q2_K, Q_TYPE_Q3_K, Q_TYPE_Q4_K, Q_TYPE_Q5_K, Q_TYPE_Q6_K };
    static const int64_t lens[] = { 8, 64, 172, 256, 768, 1024 };
    float *w = malloc(1024 * sizeof(float)), *x = malloc(1024 * sizeof(float));
    uint8_t *wq = malloc(1024 * 4), *xq = malloc(1024 * 4);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const q_matmul_traits *ref = q_matmul_traits_isa(types[ti], Q_CPU_ISA_SCALAR);
        const q_matmul_traits *fast = q_matmul_traits_isa(types[ti], Q_CPU_ISA_AVX2);
        assert_non_null(fast);
        const q_type_traits *wt = q_type_get(types[ti]), *vt = q_type_get(ref->vec_dot_type);
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            const int64_t n = lens[li];
            if (n % wt->blck_size || n % vt->blck_size) continue;
            for (int trial = 0; trial < 4; trial++) {
                for (int64_t i = 0; i < n; i++) { w[i] = frand() * 3; x[i] = frand() * (trial + 1); }
                wt->from_float(w, wq, n);
                vt->from_float(x, xq, n);
                float a, b;
                ref->vec_dot(n, &a, wq, xq);
                fast->vec_dot(n, &b, wq, xq);
                if (memcmp(&a, &b, sizeof a))
                    fail_msg("%s n=%lld: scalar %.9g, avx2 %.9g", q_type_name(types[ti]), (long long)n, a, b);
            }
        }
    }
    free(w); free(x); free(wq); free(xq);
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
        cmocka_unit_test(test_matmul_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
