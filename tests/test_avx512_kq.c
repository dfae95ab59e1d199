/* test_avx512_kq.c — the AVX-512 set's Q2_K..Q5_K gemm tiles (cpu/kern_avx512_kq.c)
 * checked on a CPU without AVX-512: their emulated build (SIMDe, names suffixed _emu; see
 * tests/test_avx512_emu.c) must equal the scalar reference vec_dot bit for bit. Data:
 * quantized random rows and activations, and raw extreme blocks (all quants at their
 * maximum, every six-bit scale and min 63, activations +127 / -127), K of 1, 2 and 9 super-blocks, rows
 * 1..5 and 17 (the 2-row tile and its remainder), tokens 1..9 and 17 (decode, the 4-token
 * tile and each remainder). Decode runs the AVX2 tile, as do the other helpers it calls:
 * without AVX2 the test is skipped. Also: the set's Q2_K..Q5_K rows name these tiles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cpu/backend.h"
#include "cpu/kern_avx512.h"
#include "tensor/quants/blocks.h"
#include "avx512_check.h"
#include "test_util.h"


static const struct {
    q_type    type;
    q_gemm_fn emu, native;
} kernels[] = {
    { Q_TYPE_Q4_K, q_avx512_gemm_q4_K_q8_K_emu, q_avx512_gemm_q4_K_q8_K },
    { Q_TYPE_Q5_K, q_avx512_gemm_q5_K_q8_K_emu, q_avx512_gemm_q5_K_q8_K },
    { Q_TYPE_Q2_K, q_avx512_gemm_q2_K_q8_K_emu, q_avx512_gemm_q2_K_q8_K },
    { Q_TYPE_Q3_K, q_avx512_gemm_q3_K_q8_K_emu, q_avx512_gemm_q3_K_q8_K },
};

/* Sets every quant of a block to its maximum (nibbles 15, fifth / third bits set, 2-bit
 * quants 3) and every scale byte to 0xFF (six-bit scales and mins 63, Q2_K scale and min
 * 15, Q3_K scales 31); d and dmin stay. */
static void saturate(q_type t, uint8_t *blk) {
    if (t == Q_TYPE_Q4_K) {
        block_q4_K *b = (block_q4_K *)(void *)blk;
        memset(b->scales, 0xFF, sizeof b->scales);
        memset(b->qs, 0xFF, sizeof b->qs);
    } else if (t == Q_TYPE_Q5_K) {
        block_q5_K *b = (block_q5_K *)(void *)blk;
        memset(b->scales, 0xFF, sizeof b->scales);
        memset(b->qs, 0xFF, sizeof b->qs);
        memset(b->qh, 0xFF, sizeof b->qh);
    } else if (t == Q_TYPE_Q2_K) {
        block_q2_K *b = (block_q2_K *)(void *)blk;
        memset(b->scales, 0xFF, sizeof b->scales);
        memset(b->qs, 0xFF, sizeof b->qs);
    } else {
        block_q3_K *b = (block_q3_K *)(void *)blk;
        memset(b->scales, 0xFF, sizeof b->scales);
        memset(b->qs, 0xFF, sizeof b->qs);
        memset(b->hmask, 0xFF, sizeof b->hmask);
    }
}

static void check_tile(size_t ki) {
    const q_type kt = kernels[ki].type;
    static const int64_t lens[] = { 256, 512, 2304 };
    static const int32_t rows[] = { 1, 2, 3, 4, 5, 17 };
    static const int32_t toks[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 17 };
    enum { MAXR = 17, MAXC = 17, MAXN = 2304 };
    const q_matmul_traits *ref = q_matmul_traits_isa(kt, Q_CPU_ISA_SCALAR);
    const q_type_traits *wt = q_type_get(kt), *vt = q_type_get(Q_TYPE_Q8_K);
    const size_t ws_max = q_row_size(kt, MAXN), as = q_row_size(Q_TYPE_Q8_K, MAXN) + 16;
    float *v = malloc(MAXN * sizeof(float));
    uint8_t *wq = malloc(MAXR * ws_max), *xq = malloc(MAXC * as);
    float *y = malloc(sizeof(float) * MAXC * (MAXR + 2)), *want = malloc(sizeof(float) * MAXC * (MAXR + 2));
    int n_cases = 0;
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const int64_t n = lens[li], nb = n / QK_K;
        const size_t ws = q_row_size(kt, n);
        for (int pat = 0; pat < 3; pat++) {   /* 0 random, 1 extremes with +127, 2 extremes with -127 */
            for (int r = 0; r < MAXR; r++) {
                for (int64_t i = 0; i < n; i++) v[i] = test_frand() * (r % 3 ? 2.0f : 0.01f) + (r % 4 == 1 ? 0.5f : 0.0f);
                wt->from_float(v, wq + r * ws, n);
                if (pat)
                    for (int64_t b = 0; b < nb; b++) saturate(kt, wq + r * ws + (size_t)b * wt->type_size);
            }
            for (int c = 0; c < MAXC; c++) {
                for (int64_t i = 0; i < n; i++) v[i] = test_frand() * (float)(1 + c % 5);
                vt->from_float(v, xq + c * as, n);
                if (pat)   /* bsums stay the sums of 16 quants, as every Q8_K row has them */
                    for (int64_t b = 0; b < nb; b++) {
                        block_q8_K *blk = (block_q8_K *)(void *)(xq + c * as) + b;
                        memset(blk->qs, pat == 1 ? 0x7F : 0x81, QK_K);
                        for (int g = 0; g < QK_K / 16; g++) blk->bsums[g] = (int16_t)(pat == 1 ? 16 * 127 : -16 * 127);
                    }
            }
            for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++)
                for (size_t ci = 0; ci < sizeof toks / sizeof toks[0]; ci++) {
                    const int32_t nr = rows[ri], nc = toks[ci];
                    const avx512_case k = { q_type_name(kt), kernels[ki].emu, ref->vec_dot, wq, wq, xq, ws, as, n,
                                            nr + 2, MAXC * (nr + 2), nr, nc, pat };
                    avx512_check(&k, y, want);
                    n_cases++;
                }
        }
    }
    printf("%d emulated AVX-512 %s tile cases checked\n", n_cases, q_type_name(kt));
    free(v); free(wq); free(xq); free(y); free(want);
}

static void test_kq_emulated_tiles_bit_identical(void **state) {
    (void)state;
    if (!q_cpu_isa_supported(Q_CPU_ISA_AVX2)) skip();
    for (size_t ki = 0; ki < sizeof kernels / sizeof kernels[0]; ki++) check_tile(ki);
}

/* The AVX-512 set's Q2_K..Q5_K rows are these tiles (a table lookup: no AVX-512
 * needed). */
static void test_kq_row_wiring(void **state) {
    (void)state;
    for (size_t ki = 0; ki < sizeof kernels / sizeof kernels[0]; ki++) {
        const q_matmul_traits *row = q_matmul_traits_isa(kernels[ki].type, Q_CPU_ISA_AVX512);
        assert_non_null(row);
        assert_true(row->gemm == kernels[ki].native);
        assert_int_equal(row->vec_dot_type, Q_TYPE_Q8_K);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kq_emulated_tiles_bit_identical),
        cmocka_unit_test(test_kq_row_wiring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
