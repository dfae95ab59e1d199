/* kern_avx512_float.c — the AVX-512 set's gemm tiles for F32, F16 and BF16 weights, for
 * batches (decode, one token, is bound by memory and runs the AVX2 tile; so do rows whose
 * length is not a multiple of 16, whose orders no tile covers). Bit-identical to the
 * scalar reference in cpu/vec_dot_impl.h, in its two tiled orders:
 *   16 lanes (tinyBLAS; rows of a multiple of 16): lane l sums elements l, l+16, ... with
 *     fused multiply-adds, then the lanes reduce as q_lanes16_sum. One 512-bit register is
 *     exactly one output's 16 chains (AVX2 needs two, or two passes).
 *   BF16 pairs (rows of a multiple of 32): lane l adds, per 32 elements, the odd product of
 *     pair (2l, 2l+1) then the even one, each addition rounded (bf16 products are exact in
 *     float). 32 bf16 values load as 16 dwords: & 0xffff0000 gives the odd value, << 16
 *     the even one. (Not vdpbf16ps: it flushes denormal inputs and outputs, the reference
 *     does not.)
 * Tile: 4 rows x 4 tokens, 16 accumulators; edge tiles repeat the last row / token and
 * store only real outputs. Owns no memory. Compiled for AVX-512 by cpu/avx512_begin.h's
 * region (or over SIMDe with Q_AVX512_EMU); cpu/matmul.c lists these only for the AVX-512
 * set. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cpu/kern_avx2_float.h"
#include "cpu/kern_avx512.h"

#if defined(__x86_64__) || defined(Q_AVX512_EMU)
#include "cpu/avx512_begin.h"

#define F5_INLINE static inline __attribute__((always_inline))
#if defined(__clang__)
#define F5_UNROLL _Pragma("clang loop unroll(full)")
#else
#define F5_UNROLL _Pragma("GCC unroll 8")
#endif

enum { F5_F32, F5_F16, F5_BF16 };   /* element kinds; constant in every inlined body */
enum { F5_R = 4, F5_C = 4 };

/* 16 consecutive elements from element i of row p, as floats (exact conversions). */
F5_INLINE __m512 f5_load16(int kind, const void *p, int64_t i) {
    if (kind == F5_F32) return _mm512_loadu_ps((const float *)p + i);
    const __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i));
    if (kind == F5_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* q_lanes16_sum: t8 = lanes 8..15 + lanes 0..7, t4 = t8[4..7] + t8[0..3], then
 * (t4[0] + t4[2]) + (t4[1] + t4[3]). */
F5_INLINE float f5_hsum16(__m512 v) {
    const __m256 lo = _mm512_castps512_ps256(v), hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    const __m256 t8 = _mm256_add_ps(hi, lo);
    const __m128 t4 = _mm_add_ps(_mm256_extractf128_ps(t8, 1), _mm256_castps256_ps128(t8));
    const __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
    return _mm_cvtss_f32(_mm_add_ss(t2, _mm_movehdup_ps(t2)));
}

/* A tile of R rows x C tokens over the whole row: acc[r][c] = one output's 16 lanes. */
F5_INLINE void f5_tile(int kind, bool pairs, int64_t n, const uint8_t *const wr[F5_R], const uint8_t *const ac[F5_C],
                       float out[F5_R][F5_C]) {
    __m512 acc[F5_R][F5_C];
    F5_UNROLL for (int r = 0; r < F5_R; r++) F5_UNROLL for (int c = 0; c < F5_C; c++) acc[r][c] = _mm512_setzero_ps();
    if (pairs) {
        const __m512i odd = _mm512_set1_epi32((int)0xFFFF0000u);
        for (int64_t i = 0; i < n; i += 32) {
            __m512 wo[F5_R], we[F5_R];
            F5_UNROLL for (int r = 0; r < F5_R; r++) {
                const __m512i x = _mm512_loadu_si512((const void *)((const uint16_t *)(const void *)wr[r] + i));
                wo[r] = _mm512_castsi512_ps(_mm512_and_si512(x, odd));
                we[r] = _mm512_castsi512_ps(_mm512_slli_epi32(x, 16));
            }
            F5_UNROLL for (int c = 0; c < F5_C; c++) {
                const __m512i yv = _mm512_loadu_si512((const void *)((const uint16_t *)(const void *)ac[c] + i));
                const __m512 yo = _mm512_castsi512_ps(_mm512_and_si512(yv, odd)), ye = _mm512_castsi512_ps(_mm512_slli_epi32(yv, 16));
                F5_UNROLL for (int r = 0; r < F5_R; r++)
                    acc[r][c] = _mm512_add_ps(_mm512_add_ps(acc[r][c], _mm512_mul_ps(wo[r], yo)), _mm512_mul_ps(we[r], ye));
            }
        }
    } else {
        for (int64_t i = 0; i < n; i += 16) {
            __m512 wv[F5_R];
            F5_UNROLL for (int r = 0; r < F5_R; r++) wv[r] = f5_load16(kind, wr[r], i);
            F5_UNROLL for (int c = 0; c < F5_C; c++) {
                const __m512 yv = f5_load16(kind, ac[c], i);
                F5_UNROLL for (int r = 0; r < F5_R; r++) acc[r][c] = _mm512_fmadd_ps(wv[r], yv, acc[r][c]);
            }
        }
    }
    F5_UNROLL for (int r = 0; r < F5_R; r++) F5_UNROLL for (int c = 0; c < F5_C; c++) out[r][c] = f5_hsum16(acc[r][c]);
}

F5_INLINE void f5_gemm(int kind, bool pairs, int64_t n, int32_t nr, int32_t nc, const uint8_t *w, size_t ws,
                       const uint8_t *a, size_t as, float *y, int64_t ldy) {
    for (int32_t c0 = 0; c0 < nc; c0 += F5_C) {
        const uint8_t *ac[F5_C];
        for (int c = 0; c < F5_C; c++) ac[c] = a + (size_t)(c0 + c < nc ? c0 + c : nc - 1) * as;
        for (int32_t r0 = 0; r0 < nr; r0 += F5_R) {
            const uint8_t *wr[F5_R];
            for (int r = 0; r < F5_R; r++) wr[r] = w + (size_t)(r0 + r < nr ? r0 + r : nr - 1) * ws;
            float out[F5_R][F5_C];
            f5_tile(kind, pairs, n, wr, ac, out);
            for (int c = 0; c < F5_C && c0 + c < nc; c++)
                for (int r = 0; r < F5_R && r0 + r < nr; r++) y[(int64_t)(c0 + c) * ldy + r0 + r] = out[r][c];
        }
    }
}

void Q_AVX512_NAME(q_avx512_gemm_f32)(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws, const void *a,
                                      size_t as, float *y, int64_t ldy) {
    if (nc == 1 || n % 16) q_avx2_gemm_f32(n, nr, nc, w, ws, a, as, y, ldy);
    else f5_gemm(F5_F32, false, n, nr, nc, w, ws, a, as, y, ldy);
}

void Q_AVX512_NAME(q_avx512_gemm_f16)(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws, const void *a,
                                      size_t as, float *y, int64_t ldy) {
    if (nc == 1 || n % 16) q_avx2_gemm_f16(n, nr, nc, w, ws, a, as, y, ldy);
    else f5_gemm(F5_F16, false, n, nr, nc, w, ws, a, as, y, ldy);
}

void Q_AVX512_NAME(q_avx512_gemm_bf16)(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws, const void *a,
                                       size_t as, float *y, int64_t ldy) {
    if (nc == 1 || n % 16) q_avx2_gemm_bf16(n, nr, nc, w, ws, a, as, y, ldy);
    else f5_gemm(F5_BF16, n % 32 == 0, n, nr, nc, w, ws, a, as, y, ldy);
}

#include "cpu/avx512_end.h"
#endif
