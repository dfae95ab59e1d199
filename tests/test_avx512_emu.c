/* test_avx512_emu.c — the AVX-512 kernel set checked on a CPU without AVX-512: its
 * sources compiled a second time over SIMDe's emulation of the intrinsics (CMakeLists.txt:
 * quarrel_avx512_emu, names suffixed _emu) must equal the scalar reference vec_dot bit
 * for bit, as tests/test_matmul.c asks of every native set (which also runs these kernels
 * natively on CPUs that have AVX-512). Shapes: quantized random data and raw saturating
 * patterns (all-0xFF nibbles, Q8_0 weights of -128 and +127, activations of +-127), K from
 * one block to past several K chunks, 8..40 rows (group pairs, an odd group, passes),
 * 2..17 tokens (register tiles and their remainders) and 64 / 65 (a full token pass, and
 * a pass plus one). Decode (one token) runs the AVX2 tile, which needs an AVX2 CPU, as do
 * the x8 pack functions: without one the test is skipped. Also checks that the set is
 * wired: on a CPU that runs it, its repack table names these tiles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cpu/backend.h"
#include "cpu/kern_avx512.h"
#include "cpu/repack.h"
#include "tensor/quants/blocks.h"
#include "avx512_check.h"
#include "test_util.h"

static const struct {
    q_type    type;
    q_gemm_fn emu;
    q_gemm_fn native;
} kernels[] = {
    { Q_TYPE_Q4_0, q_avx512_gemm_x8_q4_0_q8_0_emu, q_avx512_gemm_x8_q4_0_q8_0 },
    { Q_TYPE_Q8_0, q_avx512_gemm_x8_q8_0_q8_0_emu, q_avx512_gemm_x8_q8_0_q8_0 },
};

static void test_emulated_tiles_bit_identical(void **state) {
    (void)state;
    if (!q_cpu_isa_supported(Q_CPU_ISA_AVX2)) skip();
    static const int64_t lens[] = { 32, 96, 1056 };
    static const int32_t rows[] = { 8, 16, 24, 40 };
    static const int32_t toks[] = { 1, 2, 3, 5, 8, 11, 17, 64, 65 };
    enum { MAXR = 40, MAXC = 65, MAXN = 1056 };
    const size_t astride = MAXN / 32 * sizeof(block_q8_0) + 24;
    float *w = malloc(MAXN * sizeof(float)), *x = malloc(MAXN * sizeof(float));
    uint8_t *wq = malloc(MAXR * MAXN / 32 * sizeof(block_q8_0)), *wp = malloc(MAXR * MAXN / 32 * sizeof(block_q8_0));
    uint8_t *xq = malloc(MAXC * astride);
    float *y = malloc(sizeof(float) * MAXC * (MAXR + 3)), *want = malloc(sizeof(float) * MAXC * (MAXR + 3));
    int n_cases = 0;
    for (size_t ki = 0; ki < sizeof kernels / sizeof kernels[0]; ki++) {
        const q_type t = kernels[ki].type;
        const q_repack_traits *rt = q_repack_traits_isa(t, Q_CPU_ISA_AVX2);   /* the same x8 layout */
        const q_matmul_traits *ref = q_matmul_traits_isa(t, Q_CPU_ISA_SCALAR);
        assert_non_null(rt);
        const q_type_traits *wt = q_type_get(t), *vt = q_type_get(ref->vec_dot_type);
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            const int64_t n = lens[li];
            const size_t ws = q_row_size(t, n);
            for (int pat = 0; pat < 3; pat++) {   /* 0 quantized data, 1 all 0xFF / -127, 2 0x80 / +127 */
                for (int r = 0; r < MAXR; r++) {
                    for (int64_t i = 0; i < n; i++) w[i] = test_frand() * (r % 3 ? 2.0f : 0.01f);
                    wt->from_float(w, wq + r * ws, n);
                    if (pat)
                        for (int64_t b = 0; b < n / 32; b++)
                            memset(wq + r * ws + b * wt->type_size + 2, pat == 1 ? 0xFF : (r % 2 ? 0x80 : 0x7F),
                                   wt->type_size - 2);
                }
                for (int c = 0; c < MAXC; c++) {
                    for (int64_t i = 0; i < n; i++) x[i] = test_frand() * (float)(1 + c % 5);
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
                        /* a tile that starts at row group 1 when there is room, as the matmul op's */
                        const int32_t r0 = nr + 8 <= MAXR ? 8 : 0;
                        const avx512_case k = { q_type_name(t), kernels[ki].emu, ref->vec_dot, wp + (size_t)r0 * ws,
                                                wq + (size_t)r0 * ws, xq, ws, astride, n, nr + 3, MAXC * (nr + 3), nr, nc, pat };
                        avx512_check(&k, y, want);
                        n_cases++;
                    }
            }
        }
    }
    printf("%d emulated AVX-512 tile cases checked\n", n_cases);
    free(w); free(x); free(wq); free(wp); free(xq); free(y); free(want);
}

/* The set's tables: where the CPU runs AVX-512 (F/BW/VL + VNNI), its repack entries are
 * these tiles over the AVX2 set's layout and pack functions; elsewhere it is not offered. */
static void test_avx512_set_wiring(void **state) {
    (void)state;
    const bool runs = q_cpu_isa_supported(Q_CPU_ISA_AVX512);
    printf("this CPU %s the AVX-512 set\n", runs ? "runs" : "does not run");
    for (size_t ki = 0; ki < sizeof kernels / sizeof kernels[0]; ki++) {
        const q_repack_traits *rt = q_repack_traits_isa(kernels[ki].type, Q_CPU_ISA_AVX512);
        if (!runs) {
            assert_null(rt);
            continue;
        }
        const q_repack_traits *r2 = q_repack_traits_isa(kernels[ki].type, Q_CPU_ISA_AVX2);
        assert_non_null(rt);
        assert_true(rt->gemm == kernels[ki].native);
        assert_true(rt->pack == r2->pack && rt->layout == r2->layout);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_emulated_tiles_bit_identical),
        cmocka_unit_test(test_avx512_set_wiring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
