/* test_avx512_q6k.c — the AVX-512 set's Q6_K x Q8_K gemm tile (cpu/kern_avx512_q6k.c)
 * checked on a CPU without AVX-512: the source compiled a second time over SIMDe's
 * emulation of the intrinsics (CMakeLists.txt: quarrel_avx512_emu, the name suffixed
 * _emu) must equal the scalar reference vec_dot bit for bit, output by output. Where the
 * CPU runs the set, the native tile is checked the same way. Data: quantized random
 * rows, and raw blocks written here from the Q6_K layout (quants of 0 and 63, scales of
 * -128 and 127, activations of +-127), both as uniform blocks (the largest |lanes|) and
 * mixed per element. Shapes: K of 1 to 17 super-blocks (K chunks and their remainder),
 * 1..9, 16, 17 and 33 rows (row pairs, quads, a lone last row, a second 32-row pass),
 * 1..9, 16, 17, 64, 65 tokens (decode, which runs the AVX2 tile, register tiles and
 * their remainders, a full 64-token pass and a pass plus one). The outputs are written
 * into a wider matrix (ldy = rows + 3) prefilled with a sentinel: nothing else may
 * change. Decode runs AVX2 code: without AVX2 the test is skipped. Also checks the
 * wiring: the AVX-512 matmul table's Q6_K row names this tile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cpu/backend.h"
#include "cpu/kern_avx2.h"
#include "cpu/kern_avx512.h"
#include "tensor/quants/blocks.h"
#include "test_util.h"


/* Sets element e (0..255) of a Q6_K block to the 6-bit quant q (0..63), as the layout
 * says (tensor/quants): e = 128c + 32k + l keeps its low 4 bits in ql[64c + 32(k & 1) +
 * l] (the low nibble for k < 2, the high one for k >= 2), its high 2 bits in bits 2k,
 * 2k+1 of qh[32c + l]. */
static void q6_set(block_q6_K *x, int e, int q) {
    const int c = e / 128, k = e % 128 / 32, l = e % 32;
    uint8_t *lo = &x->ql[64 * c + 32 * (k & 1) + l], *hi = &x->qh[32 * c + l];
    const int ls = k < 2 ? 0 : 4;
    *lo = (uint8_t)((*lo & ~(0x0F << ls)) | ((q & 0x0F) << ls));
    *hi = (uint8_t)((*hi & ~(3 << 2 * k)) | ((q >> 4) << 2 * k));
}

/* Pattern 1, uniform: every quant of a row 0 (-32 once offset) or 63 (+31), every scale
 * -128 or 127, by row; every activation of a token -127 or +127, by token. Pattern 2,
 * mixed: each quant, scale and activation picked from those at random. Block scales
 * (d) stay the quantizer's. */
static void raw_weights(block_q6_K *x, int64_t nb, int r, int pat) {
    for (int64_t b = 0; b < nb; b++) {
        for (int e = 0; e < QK_K; e++) q6_set(&x[b], e, (pat == 1 ? r % 2 : (int)(test_rng_next() >> 63)) ? 63 : 0);
        for (int i = 0; i < QK_K / 16; i++)
            x[b].scales[i] = (int8_t)((pat == 1 ? r / 2 % 2 : (int)(test_rng_next() >> 63)) ? 127 : -128);
    }
}

static void raw_acts(block_q8_K *y, int64_t nb, int c, int pat) {
    for (int64_t b = 0; b < nb; b++) {
        for (int e = 0; e < QK_K; e++) y[b].qs[e] = (int8_t)((pat == 1 ? c % 2 : (int)(test_rng_next() >> 63)) ? 127 : -127);
        for (int i = 0; i < QK_K / 16; i++) {   /* true sums, as the quantizer writes them */
            int s = 0;
            for (int e = 0; e < 16; e++) s += y[b].qs[16 * i + e];
            y[b].bsums[i] = (int16_t)s;
        }
    }
}

static void test_q6k_tile_bit_identical(void **state) {
    (void)state;
    if (!q_cpu_isa_supported(Q_CPU_ISA_AVX2)) skip();
    static const int64_t lens[] = { 256, 768, 1280, 4352 };   /* super-blocks: 1, 3, 5, 17 */
    static const int32_t rows_all[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 33 };
    static const int32_t toks_all[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 64, 65 };
    static const int32_t rows_long[] = { 1, 3, 8, 9, 17, 33 }, toks_long[] = { 1, 2, 3, 4, 9, 17, 64, 65 };
    enum { MAXR = 40, MAXC = 65, MAXN = 4352, ROW0 = 3 };
    const size_t as = MAXN / QK_K * sizeof(block_q8_K) + 24;   /* a stride wider than the row */
    q_gemm_fn tiles[2] = { q_avx512_gemm_q6_K_q8_K_emu, NULL };
    if (q_cpu_isa_supported(Q_CPU_ISA_AVX512)) tiles[1] = q_avx512_gemm_q6_K_q8_K;
    const q_matmul_traits *ref = q_matmul_traits_isa(Q_TYPE_Q6_K, Q_CPU_ISA_SCALAR);
    assert_non_null(ref);
    assert_int_equal(ref->vec_dot_type, Q_TYPE_Q8_K);
    const q_type_traits *wt = q_type_get(Q_TYPE_Q6_K), *vt = q_type_get(Q_TYPE_Q8_K);
    float *buf = malloc(MAXN * sizeof(float));
    uint8_t *wq = malloc(MAXR * MAXN / QK_K * sizeof(block_q6_K)), *xq = malloc(MAXC * as);
    float *y = malloc(sizeof(float) * MAXC * (MAXR + 3)), *want = malloc(sizeof(float) * MAXC * (MAXR + 3));
    int n_cases = 0;
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const int64_t n = lens[li], nb = n / QK_K;
        const size_t ws = q_row_size(Q_TYPE_Q6_K, n);
        const bool full = n <= 768;
        const int32_t *rows = full ? rows_all : rows_long, *toks = full ? toks_all : toks_long;
        const size_t n_rows = full ? sizeof rows_all / sizeof rows_all[0] : sizeof rows_long / sizeof rows_long[0];
        const size_t n_toks = full ? sizeof toks_all / sizeof toks_all[0] : sizeof toks_long / sizeof toks_long[0];
        for (int pat = 0; pat < 3; pat++) {   /* 0 quantized data, 1 uniform extremes, 2 mixed extremes */
            for (int r = 0; r < MAXR; r++) {
                for (int64_t i = 0; i < n; i++) buf[i] = test_frand() * (r % 3 ? 2.0f : 0.01f) * (float)(1 + i % 5);
                wt->from_float(buf, wq + r * ws, n);
                if (pat) raw_weights((block_q6_K *)(void *)(wq + r * ws), nb, r, pat);
            }
            for (int c = 0; c < MAXC; c++) {
                for (int64_t i = 0; i < n; i++) buf[i] = test_frand() * (float)(1 + c % 5);
                vt->from_float(buf, xq + c * as, n);
                if (pat) raw_acts((block_q8_K *)(void *)(xq + c * as), nb, c, pat);
            }
            for (size_t ri = 0; ri < n_rows; ri++)
                for (size_t ci = 0; ci < n_toks; ci++) {
                    const int32_t nr = rows[ri], nc = toks[ci];
                    const int64_t ldy = nr + 3;
                    for (int64_t i = 0; i < MAXC * ldy; i++) want[i] = -7.0f;
                    for (int c = 0; c < nc; c++)   /* the tile starts at row ROW0 of the matrix */
                        for (int r = 0; r < nr; r++)
                            ref->vec_dot(n, &want[c * ldy + r], wq + (ROW0 + r) * ws, xq + c * as);
                    for (int k = 0; k < 2 && tiles[k]; k++) {
                        for (int64_t i = 0; i < MAXC * ldy; i++) y[i] = -7.0f;
                        tiles[k](n, nr, nc, wq + ROW0 * ws, ws, xq, as, y, ldy);
                        n_cases++;
                        for (int64_t i = 0; i < MAXC * ldy; i++)
                            if (memcmp(&y[i], &want[i], sizeof(float)))
                                fail_msg("%s avx512 Q6_K gemm n=%lld %dx%d pattern %d: y[%lld] (token %lld, row %lld) = "
                                         "%.9g, vec_dot %.9g", k ? "native" : "emulated", (long long)n, nr, nc, pat,
                                         (long long)i, (long long)(i / ldy), (long long)(i % ldy), y[i], want[i]);
                    }
                }
        }
    }
    printf("%d AVX-512 Q6_K tile cases checked (native too: %s)\n", n_cases, tiles[1] ? "yes" : "no");
    free(buf); free(wq); free(xq); free(y); free(want);
}

/* The AVX-512 table's Q6_K row: this tile for batches, AVX2's vec_dot for one output
 * (the row is the build's, whatever this CPU runs). */
static void test_q6k_wiring(void **state) {
    (void)state;
    const q_matmul_traits *mt = q_matmul_traits_isa(Q_TYPE_Q6_K, Q_CPU_ISA_AVX512);
    assert_non_null(mt);
    assert_int_equal(mt->vec_dot_type, Q_TYPE_Q8_K);
    assert_true(mt->gemm == q_avx512_gemm_q6_K_q8_K);
    assert_true(mt->vec_dot == q_avx2_vec_dot_q6_K_q8_K);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q6k_tile_bit_identical),
        cmocka_unit_test(test_q6k_wiring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
