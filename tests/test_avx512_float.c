/* test_avx512_float.c — the AVX-512 set's F32, F16 and BF16 gemm tiles
 * (cpu/kern_avx512_float.c) checked on a CPU without AVX-512: their emulated build (SIMDe,
 * names suffixed _emu; see tests/test_avx512_emu.c) must equal the scalar reference
 * vec_dot bit for bit. Rows of 16 and 1040 elements (the 16-lane order; BF16's too, as
 * 1040 is not a multiple of 32), 32 and 1056 (BF16's pair order), 100 (no tile: the AVX2
 * fallback); rows 1, 3, 4, 5 and 9 (tile edges), tokens 1 (decode: AVX2), 2..5 and 9;
 * values of mixed magnitude (1e-3..1e3, both signs) so the roundings differ by order.
 * Decode runs the AVX2 tile: without AVX2 the test is skipped. Also: the set's rows for
 * these types name these tiles. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cpu/backend.h"
#include "cpu/kern_avx512.h"
#include "avx512_check.h"
#include "test_util.h"

static const struct {
    q_type    type;
    q_gemm_fn emu, native;
} kernels[] = {
    { Q_TYPE_F32, q_avx512_gemm_f32_emu, q_avx512_gemm_f32 },
    { Q_TYPE_F16, q_avx512_gemm_f16_emu, q_avx512_gemm_f16 },
    { Q_TYPE_BF16, q_avx512_gemm_bf16_emu, q_avx512_gemm_bf16 },
};

static float mixed(void) { return test_frand() * powf(10.0f, 3.0f * test_frand()); }

static void check_tile(size_t ki) {
    static const int64_t lens[] = { 16, 32, 100, 1040, 1056 };
    static const int32_t rows[] = { 1, 3, 4, 5, 9 };
    static const int32_t toks[] = { 1, 2, 3, 4, 5, 9 };
    enum { MAXR = 9, MAXC = 9, MAXN = 1056 };
    const q_type kt = kernels[ki].type;
    const q_matmul_traits *ref = q_matmul_traits_isa(kt, Q_CPU_ISA_SCALAR);
    const q_type_traits *wt = q_type_get(kt), *vt = q_type_get(ref->vec_dot_type);
    float *v = malloc(MAXN * sizeof(float));
    uint8_t *wq = malloc(MAXR * MAXN * 4), *xq = malloc(MAXC * MAXN * 4);
    float *y = malloc(sizeof(float) * MAXC * (MAXR + 2)), *want = malloc(sizeof(float) * MAXC * (MAXR + 2));
    int n_cases = 0;
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const int64_t n = lens[li];
        const size_t ws = q_row_size(kt, n), as = q_row_size(ref->vec_dot_type, n);
        for (int r = 0; r < MAXR; r++) {
            for (int64_t i = 0; i < n; i++) v[i] = mixed();
            wt->from_float(v, wq + r * ws, n);
        }
        for (int c = 0; c < MAXC; c++) {
            for (int64_t i = 0; i < n; i++) v[i] = mixed();
            vt->from_float(v, xq + c * as, n);
        }
        for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++)
            for (size_t ci = 0; ci < sizeof toks / sizeof toks[0]; ci++) {
                const int32_t nr = rows[ri], nc = toks[ci];
                const avx512_case k = { q_type_name(kt), kernels[ki].emu, ref->vec_dot, wq, wq, xq, ws, as, n,
                                        nr + 2, MAXC * (nr + 2), nr, nc, 0 };
                avx512_check(&k, y, want);
                n_cases++;
            }
    }
    printf("%d emulated AVX-512 %s tile cases checked\n", n_cases, q_type_name(kt));
    free(v); free(wq); free(xq); free(y); free(want);
}

static void test_float_emulated_tiles_bit_identical(void **state) {
    (void)state;
    if (!q_cpu_isa_supported(Q_CPU_ISA_AVX2)) skip();
    for (size_t ki = 0; ki < sizeof kernels / sizeof kernels[0]; ki++) check_tile(ki);
}

static void test_float_row_wiring(void **state) {
    (void)state;
    for (size_t ki = 0; ki < sizeof kernels / sizeof kernels[0]; ki++) {
        const q_matmul_traits *row = q_matmul_traits_isa(kernels[ki].type, Q_CPU_ISA_AVX512);
        assert_non_null(row);
        assert_true(row->gemm == kernels[ki].native);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float_emulated_tiles_bit_identical),
        cmocka_unit_test(test_float_row_wiring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
