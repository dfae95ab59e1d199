/* test_avx512_q32.c — the AVX-512 set's row-major 32-element-block tiles
 * (cpu/kern_avx512_q32.c: Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, MXFP4, Q8_0) checked on a CPU without
 * AVX-512: their emulated build (SIMDe, names suffixed _emu; see tests/test_avx512_emu.c)
 * must equal the scalar reference vec_dot bit for bit. Data: quantized random rows and
 * activations, and raw extreme blocks (every quant byte 0xFF, then 0x00, with every fifth
 * bit set; Q8_0: +127, then -128; activations +127 / -127), K of 1, 3 and 33 blocks (past two K chunks), rows 1,
 * 5, 16, 17 and 33 (a partial 16-row group, whole groups, both), tokens 1..5, 8, 17, 64
 * and 65 (decode, every register-tile remainder, a full pass, a pass plus one). Decode
 * runs the AVX2 tile: without AVX2 the test is skipped. Also: the set's rows for these
 * types name these tiles. */
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
    size_t    quant_at;   /* first quant byte (qh and qs) of a block: after the scales */
    uint8_t   top, bottom;   /* the quant bytes of the two extreme patterns */
} kernels[] = {
    { Q_TYPE_Q4_0, q_avx512_gemm_q4_0_q8_0_emu, q_avx512_gemm_q4_0_q8_0, 2, 0xFF, 0x00 },
    { Q_TYPE_Q4_1, q_avx512_gemm_q4_1_q8_1_emu, q_avx512_gemm_q4_1_q8_1, 4, 0xFF, 0x00 },
    { Q_TYPE_Q5_0, q_avx512_gemm_q5_0_q8_0_emu, q_avx512_gemm_q5_0_q8_0, 2, 0xFF, 0x00 },
    { Q_TYPE_Q5_1, q_avx512_gemm_q5_1_q8_1_emu, q_avx512_gemm_q5_1_q8_1, 4, 0xFF, 0x00 },
    { Q_TYPE_IQ4_NL, q_avx512_gemm_iq4_nl_q8_0_emu, q_avx512_gemm_iq4_nl_q8_0, 2, 0xFF, 0x00 },
    { Q_TYPE_MXFP4, q_avx512_gemm_mxfp4_q8_0_emu, q_avx512_gemm_mxfp4_q8_0, 1, 0xFF, 0x00 },
    { Q_TYPE_Q8_0, q_avx512_gemm_q8_0_q8_0_emu, q_avx512_gemm_q8_0_q8_0, 2, 0x7F, 0x80 },
};

static void check_tile(size_t ki) {
    static const int64_t lens[] = { 32, 96, 1056 };
    static const int32_t rows[] = { 1, 5, 16, 17, 33 };
    static const int32_t toks[] = { 1, 2, 3, 4, 5, 8, 17, 64, 65 };
    enum { MAXR = 33, MAXC = 65, MAXN = 1056 };
    const q_type kt = kernels[ki].type;
    const q_matmul_traits *ref = q_matmul_traits_isa(kt, Q_CPU_ISA_SCALAR);
    const q_type_traits *wt = q_type_get(kt), *vt = q_type_get(ref->vec_dot_type);
    const size_t as = q_row_size(ref->vec_dot_type, MAXN) + 12;
    float *v = malloc(MAXN * sizeof(float));
    uint8_t *wq = malloc(MAXR * q_row_size(kt, MAXN)), *xq = malloc(MAXC * as);
    float *y = malloc(sizeof(float) * MAXC * (MAXR + 2)), *want = malloc(sizeof(float) * MAXC * (MAXR + 2));
    int n_cases = 0;
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const int64_t n = lens[li];
        const size_t ws = q_row_size(kt, n);
        for (int pat = 0; pat < 3; pat++) {   /* 0 random, 1 quants 0xFF / a +127, 2 quants 0x00 (fifth bits set) / a -127 */
            for (int r = 0; r < MAXR; r++) {
                for (int64_t i = 0; i < n; i++) v[i] = test_frand() * (r % 3 ? 2.0f : 0.01f) + (r % 4 == 1 ? 0.5f : 0.0f);
                wt->from_float(v, wq + r * ws, n);
                if (pat)
                    for (int64_t b = 0; b < n / 32; b++) {
                        uint8_t *blk = wq + r * ws + (size_t)b * wt->type_size;
                        memset(blk + kernels[ki].quant_at, pat == 1 ? kernels[ki].top : kernels[ki].bottom,
                               wt->type_size - kernels[ki].quant_at);
                        if (pat == 2 && (kt == Q_TYPE_Q5_0 || kt == Q_TYPE_Q5_1))
                            memset(blk + kernels[ki].quant_at, 0xFF, 4);   /* qh: every fifth bit */
                    }
            }
            const size_t vq = (ref->vec_dot_type == Q_TYPE_Q8_1) ? 4 : 2, vb = q_type_get(ref->vec_dot_type)->type_size;
            for (int c = 0; c < MAXC; c++) {
                for (int64_t i = 0; i < n; i++) v[i] = test_frand() * (float)(1 + c % 5);
                vt->from_float(v, xq + c * as, n);
                if (pat)
                    for (int64_t b = 0; b < n / 32; b++) memset(xq + c * as + (size_t)b * vb + vq, pat == 1 ? 0x7F : 0x81, 32);
            }
            for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++)
                for (size_t ci = 0; ci < sizeof toks / sizeof toks[0]; ci++) {
                    const int32_t nr = rows[ri], nc = toks[ci];
                    if (pat && nc > 17) continue;
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

static void test_q32_emulated_tiles_bit_identical(void **state) {
    (void)state;
    if (!q_cpu_isa_supported(Q_CPU_ISA_AVX2)) skip();
    for (size_t ki = 0; ki < sizeof kernels / sizeof kernels[0]; ki++) check_tile(ki);
}

/* The set's rows for these types are these tiles (a table lookup: no AVX-512 needed). */
static void test_q32_row_wiring(void **state) {
    (void)state;
    for (size_t ki = 0; ki < sizeof kernels / sizeof kernels[0]; ki++) {
        const q_matmul_traits *row = q_matmul_traits_isa(kernels[ki].type, Q_CPU_ISA_AVX512);
        assert_non_null(row);
        assert_true(row->gemm == kernels[ki].native);
        assert_int_equal(row->vec_dot_type, q_matmul_traits_isa(kernels[ki].type, Q_CPU_ISA_SCALAR)->vec_dot_type);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q32_emulated_tiles_bit_identical),
        cmocka_unit_test(test_q32_row_wiring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
