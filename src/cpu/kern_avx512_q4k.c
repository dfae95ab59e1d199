/* kern_avx512_q4k.c — the AVX-512 set's Q4_K x Q8_K gemm tile (cpu/kern_avx512.h), for
 * batches; decode (one token) is bound by memory and runs the AVX2 tile. Bit-identical to
 * the scalar body in cpu/vec_dot_impl.h (tests/test_avx512_q4k.c checks the emulated
 * build, tests/test_matmul.c the native one on CPUs that have it).
 *
 * What changes from the AVX2 tile (cpu/kern_avx2_kq.c) is the integer part only. A
 * super-block's sub-blocks 2c and 2c+1 are the low and high nibbles of the same 32 bytes,
 * and their activations are 64 consecutive bytes, so one 512-bit register holds both:
 * maddubs makes the pair products (int16, |p| <= 2 x 15 x 127) and VNNI's vpdpwssd
 * multiplies each pair by its sub-block's scale and adds it into the int32 lanes: two
 * instructions per 64 products where AVX2 spends maddubs + madd + add per 32. Lanes 0-7
 * collect the even sub-blocks, 8-15 the odd ones; lane L of either is the scalar body's
 * x86 lane L (scale x elements 4L..4L+3 of a 32-element group), so adding the two halves
 * gives its lanes exactly (integer sums are exact). The float steps are the AVX2 tile's,
 * one for one: d = y.d * x.d, 8 float lanes with one fma per super-block, the 4 min lanes
 * summed (m0+m2)+(m1+m3), x86_hsum8. Tile: 2 rows x 4 tokens (8 accumulators of 512
 * bits, 8 + 4 float accumulators: 24 of the 32 registers), the remainders as smaller
 * instances of the same body.
 *
 * Compiled for AVX-512 F/BW/VL + VNNI by cpu/avx512_begin.h's region (or over SIMDe with
 * Q_AVX512_EMU); cpu/matmul.c lists it only for the AVX-512 set. Owns no memory. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cpu/kern_avx2.h"
#include "cpu/kern_avx512.h"
#include "tensor/quants/blocks.h"

#if defined(__x86_64__) || defined(Q_AVX512_EMU)
#include "cpu/avx512_begin.h"

#define K5_INLINE static inline __attribute__((always_inline))
#if defined(__clang__)
#define K5_UNROLL _Pragma("clang loop unroll(full)")
#define K5_NO_UNROLL _Pragma("clang loop unroll(disable)")
#else
#define K5_UNROLL _Pragma("GCC unroll 8")
#define K5_NO_UNROLL _Pragma("GCC unroll 1")
#endif
enum { K5_R = 2, K5_C = 4, K5_PF_BLOCKS = 16 };

/* Keeps an accumulator in its register after each update (as kern_avx2_kq.c's KQ_KEEP):
 * otherwise the compiler sums a super-block's products as a tree and spills them. */
#if defined(Q_AVX512_EMU)
#define K5_KEEP(v) ((void)0)   /* SIMDe's vectors are not registers */
#else
#define K5_KEEP(v) __asm__("" : "+v"(v))
#endif

K5_INLINE void k5_prefetch(uintptr_t p, size_t size) {   /* small batches stream W from memory */
    for (size_t off = 0; off < size; off += 64) _mm_prefetch((const char *)(p + off), _MM_HINT_T0);
}

K5_INLINE float k5_h2f(q_half h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128((int)h))); }

/* x86_hsum8: ((a0+a4) + (a2+a6)) + ((a1+a5) + (a3+a7)). */
K5_INLINE float k5_hsum8(__m256 v) {
    const __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    const __m128 s = _mm_add_ps(r, _mm_movehl_ps(r, r));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* The 12 packed bytes of 8 six-bit scales and 8 mins (cpu/vec_dot_impl.h's
 * kq_scale_min): bytes sc0..7, m0..7 in both 128-bit halves. q has 4 more readable bytes. */
K5_INLINE __m256i k5_scale_min8(const uint8_t *q) {
    const __m128i v = _mm_loadu_si128((const __m128i *)q);
    const __m128i a = _mm_srlv_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)), _mm_set_epi32(4, 0, 0, 0));
    const __m128i lo = _mm_and_si128(a, _mm_set_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f));
    const __m128i hi = _mm_and_si128(_mm_srli_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)), 2),
                                     _mm_set_epi32(0x30303030, 0, 0x30303030, 0));
    return _mm256_broadcastsi128_si256(_mm_or_si128(lo, hi));
}

/* int16 position k takes min byte 8 + k%4 (low half), 12 + k%4 (high half). */
static const uint8_t K5_MIN4_MASK[32] __attribute__((aligned(32))) = {
    8, 0x80, 9, 0x80, 10, 0x80, 11, 0x80, 8, 0x80, 9, 0x80, 10, 0x80, 11, 0x80,
    12, 0x80, 13, 0x80, 14, 0x80, 15, 0x80, 12, 0x80, 13, 0x80, 14, 0x80, 15, 0x80,
};

/* vpermw indices: words 0-15 take scale 2c, words 16-31 scale 2c+1 (c = 0..3). */
static const uint16_t K5_SC_IDX[4][32] __attribute__((aligned(64))) = {
#define K5_I16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
    { K5_I16(0), K5_I16(1) }, { K5_I16(2), K5_I16(3) }, { K5_I16(4), K5_I16(5) }, { K5_I16(6), K5_I16(7) },
#undef K5_I16
};

/* The Q4_K min lanes of two tokens (kern_avx2_kq.c's kq_min_lanes2): p_i = m_2i * S_2i +
 * m_2i+1 * S_2i+1, S_j = bsums[2j] + bsums[2j+1], as [p0, p1 of t0, p0, p1 of t1 | p2, p3
 * of t0, p2, p3 of t1]. */
K5_INLINE __m256i k5_min_lanes2(const int16_t *bs0, const int16_t *bs1, __m256i m4) {
    const __m256i s = _mm256_hadd_epi16(_mm256_loadu_si256((const __m256i *)bs0), _mm256_loadu_si256((const __m256i *)bs1));
    return _mm256_madd_epi16(s, m4);
}

/* Sub-blocks 2c and 2c+1 of R rows x C tokens into the 512-bit integer lanes. */
K5_INLINE void k5_pair(const int R, const int C, int c, const block_q4_K *const *x, const block_q8_K *const *q8,
                       const __m512i *sc8, __m512i sumi[][K5_C]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m512i idx = _mm512_load_si512((const void *)K5_SC_IDX[c]);
    __m512i q[K5_R], sc[K5_R];
    K5_UNROLL for (int r = 0; r < R; r++) {
        const __m256i raw = _mm256_loadu_si256((const __m256i *)(x[r]->qs + 32 * c));
        q[r] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(raw, m4)),
                                  _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4), 1);
        sc[r] = _mm512_permutexvar_epi16(idx, sc8[r]);
    }
    K5_UNROLL for (int t = 0; t < C; t++) {
        const __m512i av = _mm512_loadu_si512((const void *)(q8[t]->qs + 64 * c));
        K5_UNROLL for (int r = 0; r < R; r++) {
            sumi[r][t] = _mm512_dpwssd_epi32(sumi[r][t], _mm512_maddubs_epi16(q[r], av), sc[r]);
            K5_KEEP(sumi[r][t]);
        }
    }
}

K5_INLINE void k5_tile(const int R, const int C, int64_t nb, const uint8_t *w, size_t ws, const uint8_t *a,
                       size_t as, float *y, int64_t ldy) {
    enum { CP = (K5_C + 1) / 2 };
    __m256 acc[K5_R][K5_C];
    __m256 accm[K5_R][CP];   /* min lanes of tokens 2p and 2p+1 (k5_min_lanes2 order) */
    K5_UNROLL for (int r = 0; r < R; r++) {
        K5_UNROLL for (int t = 0; t < C; t++) acc[r][t] = _mm256_setzero_ps();
        K5_UNROLL for (int p = 0; p < (C + 1) / 2; p++) accm[r][p] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++) {
        const block_q4_K *x[K5_R];
        const block_q8_K *q8[K5_C];
        __m256i sm[K5_R];
        __m512i sc8[K5_R], sumi[K5_R][K5_C];
        K5_UNROLL for (int r = 0; r < R; r++) {
            x[r] = (const block_q4_K *)(w + (size_t)r * ws) + b;
            k5_prefetch((uintptr_t)x[r] + K5_PF_BLOCKS * sizeof *x[r], sizeof *x[r]);
            sm[r] = k5_scale_min8(x[r]->scales);
            sc8[r] = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm256_castsi256_si128(sm[r])));   /* sc0..7 as int16 */
            K5_UNROLL for (int t = 0; t < C; t++) sumi[r][t] = _mm512_setzero_si512();
        }
        K5_UNROLL for (int t = 0; t < C; t++) q8[t] = (const block_q8_K *)(a + (size_t)t * as) + b;
        K5_NO_UNROLL for (int c = 0; c < 4; c++) k5_pair(R, C, c, x, q8, sc8, sumi);
        __m256 yd[K5_C];
        K5_UNROLL for (int t = 0; t < C; t++) yd[t] = _mm256_broadcast_ss(&q8[t]->d);
        K5_UNROLL for (int r = 0; r < R; r++) {
            const __m256 xd = _mm256_set1_ps(k5_h2f(x[r]->d)), xdmin = _mm256_set1_ps(-k5_h2f(x[r]->dmin));
            const __m256i m4 = _mm256_shuffle_epi8(sm[r], _mm256_load_si256((const __m256i *)K5_MIN4_MASK));
            K5_UNROLL for (int t = 0; t < C; t++) {   /* the two halves' lanes, then d = y.d * x.d */
                const __m256i s = _mm256_add_epi32(_mm512_castsi512_si256(sumi[r][t]), _mm512_extracti64x4_epi64(sumi[r][t], 1));
                acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(yd[t], xd), _mm256_cvtepi32_ps(s), acc[r][t]);
            }
            K5_UNROLL for (int p = 0; p < (C + 1) / 2; p++) {
                const int t1 = 2 * p + 1 < C ? 2 * p + 1 : 2 * p;
                const __m256 dmin = _mm256_mul_ps(_mm256_shuffle_ps(yd[2 * p], yd[t1], 0), xdmin);
                const __m256i prod = k5_min_lanes2(q8[2 * p]->bsums, q8[t1]->bsums, m4);
                accm[r][p] = _mm256_fmadd_ps(dmin, _mm256_cvtepi32_ps(prod), accm[r][p]);
            }
        }
    }
    K5_UNROLL for (int r = 0; r < R; r++) K5_UNROLL for (int t = 0; t < C; t++) {
        /* token t's min lanes: [m0, m1] at 4(t%2)/2.., [m2, m3] 4 floats later */
        const __m256 m = accm[r][t / 2];
        const __m128 mlo = _mm256_castps256_ps128(m), mhi = _mm256_extractf128_ps(m, 1);
        const __m128 ml = t % 2 ? _mm_movehl_ps(mlo, mlo) : mlo, mh = t % 2 ? _mm_movehl_ps(mhi, mhi) : mhi;
        const __m128 s2 = _mm_add_ps(ml, mh);   /* m0+m2, m1+m3 */
        const float msum = _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
        y[t * ldy + r] = k5_hsum8(acc[r][t]) + msum;
    }
}

/* R rows at a time, then the last nr % R one by one, for one tile of C tokens at a. */
#define K5_ROWS(C)                                                                                   \
    do {                                                                                             \
        int32_t r = 0;                                                                               \
        for (; r + K5_R <= nr; r += K5_R) k5_tile(K5_R, C, nb, wb + (size_t)r * ws, ws, at, as, y + t * ldy + r, ldy); \
        for (; r < nr; r++) k5_tile(1, C, nb, wb + (size_t)r * ws, ws, at, as, y + t * ldy + r, ldy);  \
    } while (0)

void Q_AVX512_NAME(q_avx512_gemm_q4_K_q8_K)(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws,
                                            const void *a, size_t as, float *y, int64_t ldy) {
    if (nc == 1) {   /* decode: memory-bound, the AVX2 tile streams the rows */
        q_avx2_gemm_q4_K_q8_K(n, nr, nc, w, ws, a, as, y, ldy);
        return;
    }
    const int64_t nb = n / QK_K;
    const uint8_t *wb = w, *ab = a;
    int32_t t = 0;
    /* tokens outer: a tile's activations stay in L1 while the task's rows cycle through L2 */
    for (; t + K5_C <= nc; t += K5_C) {
        const uint8_t *at = ab + (size_t)t * as;
        K5_ROWS(K5_C);
    }
    const uint8_t *at = ab + (size_t)t * as;
    const int rem = nc - t;   /* < K5_C: one instance per count */
    if (rem == 3) K5_ROWS(3);
    if (rem == 2) K5_ROWS(2);
    if (rem == 1) K5_ROWS(1);
}

#include "cpu/avx512_end.h"
#endif
