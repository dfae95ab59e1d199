/* kern_avx2_float.c — AVX2+FMA+F16C kernels for F32, F16 and BF16 weights: vec_dot (one
 * output) and gemm (a tile of outputs), bit-identical to the scalar reference in
 * cpu/vec_dot_impl.h. Not here: the quantized types (kern_avx2_q32.c, kern_avx2_kq.c).
 * Owns no memory.
 *
 * The reference orders, and how the registers hold them:
 *   16 lanes (tinyBLAS; rows of a multiple of 16): lane l sums elements l, l+16, l+32, ...
 *     with fused multiply-adds, then the lanes reduce as q_lanes16_sum. Lanes 0..7 are one
 *     __m256 and lanes 8..15 another; each lane's chain of FMAs is kept in order, so a
 *     register may hold any set of chains (several rows, several tokens) at once.
 *   BF16 pairs (rows of a multiple of 32): lane l of 16 adds, per 32 elements, the odd
 *     product of pair (2l, 2l+1) then the even one, each addition rounded (bf16 products
 *     are exact in float, so mul then add is the reference). Within 16 bf16 values loaded
 *     as 8 dwords, dword l holds the pair: << 16 gives the even value, & 0xffff0000 the odd.
 *   F32 of other lengths: ggml's 4 x 16 lanes over steps of 64, folded 0+2, 1+3, 0+1,
 *     reduced, then the tail fused in one element at a time.
 *   F16 / BF16 of other lengths: float products summed in double, in order (scalar here).
 *
 * gemm tiles: a token column of one output (decode) keeps both lane halves of 4 rows in 8
 * registers; wider tiles take 4 rows x 3 tokens in 12 registers, lanes 0..7 in a first pass
 * over the row and lanes 8..15 in a second (the rows are in L1/L2 by then), and combine
 * the halves at the end. Edge tiles repeat the last row / token and store only real
 * outputs. */
#include <stdbool.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cpu/f16.h"
#include "cpu/kern_avx2_float.h"

#if defined(__x86_64__)
#include "cpu/avx2_begin.h"

#define KI static inline __attribute__((always_inline))

/* Element kinds; a compile-time constant in every inlined body. */
enum { KF_F32, KF_F16, KF_BF16 };

/* 8 consecutive elements from element i of row p, as floats (exact conversions). */
KI __m256 kf_load8(int kind, const void *p, int64_t i) {
    if (kind == KF_F32) return _mm256_loadu_ps((const float *)p + i);
    const __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)p + i));
    if (kind == KF_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* q_lanes16_sum of lanes lo (0..7) and hi (8..15): t8 = hi + lo, t4 = t8[4..7] + t8[0..3],
 * then (t4[0] + t4[2]) + (t4[1] + t4[3]). */
KI float kf_hsum16(__m256 lo, __m256 hi) {
    const __m256 t8 = _mm256_add_ps(hi, lo);
    const __m128 t4 = _mm_add_ps(_mm256_extractf128_ps(t8, 1), _mm256_castps256_ps128(t8));
    const __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
    return _mm_cvtss_f32(_mm_add_ss(t2, _mm_movehdup_ps(t2)));
}

/* The BF16 pair order's step for one 16-value group: acc = (acc + odd * odd') + even * even'. */
KI __m256 kf_bf16_pairs(__m256 acc, __m256i x, __m256i y) {
    const __m256i hi = _mm256_set1_epi32((int)0xFFFF0000u);
    const __m256 xo = _mm256_castsi256_ps(_mm256_and_si256(x, hi)), yo = _mm256_castsi256_ps(_mm256_and_si256(y, hi));
    const __m256 xe = _mm256_castsi256_ps(_mm256_slli_epi32(x, 16)), ye = _mm256_castsi256_ps(_mm256_slli_epi32(y, 16));
    return _mm256_add_ps(_mm256_add_ps(acc, _mm256_mul_ps(xo, yo)), _mm256_mul_ps(xe, ye));
}

KI __m256i kf_load16i(const void *p, int64_t i) {
    return _mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i));
}

/* ---- one output ---- */

/* 16-lane order, n % 16 == 0. */
KI float kf_dot16(int kind, int64_t n, const void *x, const void *y) {
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        lo = _mm256_fmadd_ps(kf_load8(kind, x, i), kf_load8(kind, y, i), lo);
        hi = _mm256_fmadd_ps(kf_load8(kind, x, i + 8), kf_load8(kind, y, i + 8), hi);
    }
    return kf_hsum16(lo, hi);
}

/* BF16 pair order, n % 32 == 0. */
static float kf_dot_bf16_pairs(int64_t n, const void *x, const void *y) {
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 32) {
        lo = kf_bf16_pairs(lo, kf_load16i(x, i), kf_load16i(y, i));
        hi = kf_bf16_pairs(hi, kf_load16i(x, i + 16), kf_load16i(y, i + 16));
    }
    return kf_hsum16(lo, hi);
}

static inline float kf_bf16_to_f32(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* F16 / BF16 rows of other lengths: float products added in double, in order. */
static float kf_dot_double(int kind, int64_t n, const uint16_t *x, const uint16_t *y) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float a = kind == KF_F16 ? _cvtsh_ss(x[i]) : kf_bf16_to_f32(x[i]);
        const float b = kind == KF_F16 ? _cvtsh_ss(y[i]) : kf_bf16_to_f32(y[i]);
        const float p = a * b;
        sum += (double)p;
    }
    return (float)sum;
}

void q_avx2_vec_dot_f32(int64_t n, float *s, const void *vx, const void *vy) {
    if (n % 16 == 0) {
        *s = kf_dot16(KF_F32, n, vx, vy);
        return;
    }
    const float *x = vx, *y = vy;
    __m256 acc[8];   /* acc[2j] = lanes 0..7 of ggml's accumulator j, acc[2j+1] lanes 8..15 */
    for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_ps();
    const int64_t np = n & ~(int64_t)63;
    for (int64_t i = 0; i < np; i += 64)
        for (int j = 0; j < 8; j++) acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8 * j), _mm256_loadu_ps(y + i + 8 * j), acc[j]);
    for (int h = 0; h < 2; h++) {
        acc[h] = _mm256_add_ps(acc[h], acc[4 + h]);       /* 0 += 2 */
        acc[2 + h] = _mm256_add_ps(acc[2 + h], acc[6 + h]); /* 1 += 3 */
        acc[h] = _mm256_add_ps(acc[h], acc[2 + h]);       /* 0 += 1 */
    }
    float sum = kf_hsum16(acc[0], acc[1]);
    for (int64_t i = np; i < n; i++) sum = __builtin_fmaf(x[i], y[i], sum);
    *s = sum;
}

void q_avx2_vec_dot_f16(int64_t n, float *s, const void *x, const void *y) {
    *s = n % 16 == 0 ? kf_dot16(KF_F16, n, x, y) : kf_dot_double(KF_F16, n, x, y);
}

void q_avx2_vec_dot_bf16(int64_t n, float *s, const void *x, const void *y) {
    if (n % 32 == 0) *s = kf_dot_bf16_pairs(n, x, y);
    else *s = n % 16 == 0 ? kf_dot16(KF_BF16, n, x, y) : kf_dot_double(KF_BF16, n, x, y);
}

/* ---- tiles ---- */

enum { TR = 4, TC = 3 };   /* rows x tokens of a wide tile */

/* Steps one 16-lane (or, pairs, one 32-element) group of a half's chains: acc[r][c] for
 * the half h of every group. */
KI __m256 kf_step(int kind, bool pairs, __m256 acc, const void *w, const void *a, int64_t i, int h) {
    if (pairs) return kf_bf16_pairs(acc, kf_load16i(w, i + 16 * h), kf_load16i(a, i + 16 * h));
    return _mm256_fmadd_ps(kf_load8(kind, w, i + 8 * h), kf_load8(kind, a, i + 8 * h), acc);
}

/* Decode column: TR rows x 1 token, both halves in one pass. */
KI void kf_tile_col(int kind, bool pairs, int64_t n, const uint8_t *const wr[TR], const uint8_t *a, float out[TR]) {
    const int64_t step = pairs ? 32 : 16;
    __m256 acc[TR][2];
    for (int r = 0; r < TR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += step)
        for (int r = 0; r < TR; r++)
            for (int h = 0; h < 2; h++) acc[r][h] = kf_step(kind, pairs, acc[r][h], wr[r], a, i, h);
    for (int r = 0; r < TR; r++) out[r] = kf_hsum16(acc[r][0], acc[r][1]);
}

/* Wide tile: TR rows x TC tokens, one half per pass. */
KI void kf_tile_wide(int kind, bool pairs, int64_t n, const uint8_t *const wr[TR], const uint8_t *const ac[TC],
                     float out[TR][TC]) {
    const int64_t step = pairs ? 32 : 16;
    __m256 half[2][TR][TC];
    for (int h = 0; h < 2; h++) {
        __m256 acc[TR][TC];
        for (int r = 0; r < TR; r++)
            for (int c = 0; c < TC; c++) acc[r][c] = _mm256_setzero_ps();
        for (int64_t i = 0; i < n; i += step)
            for (int r = 0; r < TR; r++)
                for (int c = 0; c < TC; c++) acc[r][c] = kf_step(kind, pairs, acc[r][c], wr[r], ac[c], i, h);
        memcpy(half[h], acc, sizeof acc);
    }
    for (int r = 0; r < TR; r++)
        for (int c = 0; c < TC; c++) out[r][c] = kf_hsum16(half[0][r][c], half[1][r][c]);
}

KI void kf_gemm(int kind, bool pairs, int64_t n, int32_t nr, int32_t nc, const uint8_t *w, size_t ws,
                const uint8_t *a, size_t as, float *y, int64_t ldy) {
    for (int32_t c0 = 0; c0 < nc; c0 += (nc == 1 ? 1 : TC)) {
        for (int32_t r0 = 0; r0 < nr; r0 += TR) {
            const uint8_t *wr[TR];
            for (int r = 0; r < TR; r++) wr[r] = w + (size_t)(r0 + r < nr ? r0 + r : nr - 1) * ws;
            if (nc == 1) {
                float out[TR];
                kf_tile_col(kind, pairs, n, wr, a, out);
                for (int r = 0; r < TR && r0 + r < nr; r++) y[r0 + r] = out[r];
                continue;
            }
            const uint8_t *ac[TC];
            for (int c = 0; c < TC; c++) ac[c] = a + (size_t)(c0 + c < nc ? c0 + c : nc - 1) * as;
            float out[TR][TC];
            kf_tile_wide(kind, pairs, n, wr, ac, out);
            for (int c = 0; c < TC && c0 + c < nc; c++)
                for (int r = 0; r < TR && r0 + r < nr; r++) y[(int64_t)(c0 + c) * ldy + r0 + r] = out[r][c];
        }
    }
}

/* Outputs one at a time, for the orders no tile covers. */
static void kf_gemm_each(void (*dot)(int64_t, float *, const void *, const void *), int64_t n, int32_t nr,
                         int32_t nc, const uint8_t *w, size_t ws, const uint8_t *a, size_t as, float *y, int64_t ldy) {
    for (int32_t c = 0; c < nc; c++)
        for (int32_t r = 0; r < nr; r++) dot(n, &y[(int64_t)c * ldy + r], w + (size_t)r * ws, a + (size_t)c * as);
}

void q_avx2_gemm_f32(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws, const void *a, size_t as,
                     float *y, int64_t ldy) {
    if (n % 16) kf_gemm_each(q_avx2_vec_dot_f32, n, nr, nc, w, ws, a, as, y, ldy);
    else kf_gemm(KF_F32, false, n, nr, nc, w, ws, a, as, y, ldy);
}

void q_avx2_gemm_f16(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws, const void *a, size_t as,
                     float *y, int64_t ldy) {
    if (n % 16) kf_gemm_each(q_avx2_vec_dot_f16, n, nr, nc, w, ws, a, as, y, ldy);
    else kf_gemm(KF_F16, false, n, nr, nc, w, ws, a, as, y, ldy);
}

void q_avx2_gemm_bf16(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws, const void *a, size_t as,
                      float *y, int64_t ldy) {
    if (n % 32 == 0) kf_gemm(KF_BF16, true, n, nr, nc, w, ws, a, as, y, ldy);
    else if (n % 16 == 0) kf_gemm(KF_BF16, false, n, nr, nc, w, ws, a, as, y, ldy);
    else kf_gemm_each(q_avx2_vec_dot_bf16, n, nr, nc, w, ws, a, as, y, ldy);
}

#include "cpu/avx2_end.h"
#endif
