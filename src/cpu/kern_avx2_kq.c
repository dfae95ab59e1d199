/* kern_avx2_kq.c — hand-written AVX2+FMA+F16C kernels for the k-quants (Q2_K..Q6_K)
 * times Q8_K activations: a vec_dot (one output) and a gemm tile (nr rows x nc tokens)
 * per type. Not the reference: every output is bit-identical to the scalar body of
 * cpu/vec_dot_impl.h, whose comments define the summation order (tests/test_matmul.c
 * checks). Owns no memory; reads weight and activation blocks in place.
 *
 * How the order is kept. Integer sums are exact, so their order is free: weights are
 * unpacked to unsigned bytes and multiplied with _mm256_maddubs_epi16 (pairs of
 * products, int16, never saturating for these ranges) then _mm256_madd_epi16 with the
 * sub-block scale (int32 lane L = scale * elements 4L..4L+3 of a 32-element group: the
 * scalar body's x86 lane). Float steps are the scalar's, one for one:
 *   Q4_K, Q6_K: 8 float lanes, one fused multiply-add per lane per super-block, then
 *               x86_hsum8 (Q4_K also 4 min lanes, summed (m0+m2)+(m1+m3));
 *   Q2_K, Q3_K, Q5_K: one float chain per output, sum += d*isum - dmin*summs with the
 *               products, difference and sum each rounded (never fused).
 * The gemm tile shares work between outputs without touching any one output's order:
 * a weight block is unpacked once for C tokens, an activation block loaded once for R
 * rows (R x C outputs in registers: 2 x 4 for prefill, 4 x 1 for decode).
 *
 * Compiled for AVX2+FMA+F16C with a target pragma (as cpu/vec_dot_avx2.c), so the rest
 * of the build stays baseline x86-64; cpu/matmul.c uses these only on CPUs that have
 * them. Empty on other architectures. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cpu/kern_avx2.h"
#include "tensor/quants/blocks.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

/* The tile bodies take their shape (R rows, C tokens) as constants: always inlined into
 * one instance per shape, with the shape loops fully unrolled so the per-output
 * accumulators live in registers. */
#define KQ_INLINE static inline __attribute__((always_inline))
#define KQ_UNROLL _Pragma("GCC unroll 8")
enum { KQ_RMAX = 4, KQ_CMAX = 4 };

KQ_INLINE float kq_h2f(q_half h) { return _cvtsh_ss(h); }   /* exact, as the scalar table */

/* x86_hsum8: ((a0+a4) + (a2+a6)) + ((a1+a5) + (a3+a7)). */
KQ_INLINE float kq_hsum8(__m256 v) {
    const __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    const __m128 s = _mm_add_ps(r, _mm_movehl_ps(r, r));   /* r0+r2, r1+r3 */
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* Shuffle mask picking int16 element p (of a 128-bit half) into all 8 positions. */
KQ_INLINE __m128i kq_pick16(int p) { return _mm_set1_epi16((short)(((2 * p + 1) << 8) | (2 * p))); }

/* 16 scales as int16 (s0..s15 in v) -> out[i] = [s_2i x 8 | s_2i+1 x 8]: the scales of
 * the two 16-element groups of the i-th 32 elements. */
KQ_INLINE void kq_bcast16(__m256i v, __m256i out[8]) {
    const __m256i lo = _mm256_permute2x128_si256(v, v, 0x00), hi = _mm256_permute2x128_si256(v, v, 0x11);
    KQ_UNROLL for (int i = 0; i < 8; i++)
        out[i] = _mm256_shuffle_epi8(i < 4 ? lo : hi, _mm256_set_m128i(kq_pick16((2 * i + 1) % 8), kq_pick16((2 * i) % 8)));
}

/* pshufb masks: KQ_SC_MASK[j] puts byte j, zero-extended, in every int16 position;
 * KQ_MIN_MASK puts byte 8 + k/2 in int16 position k (k = 0..15). */
#define KQ_W16(b) b, 0x80, b, 0x80, b, 0x80, b, 0x80, b, 0x80, b, 0x80, b, 0x80, b, 0x80
#define KQ_W32(b) KQ_W16(b), KQ_W16(b)
static const uint8_t KQ_SC_MASK[8][32] __attribute__((aligned(32))) = {
    { KQ_W32(0) }, { KQ_W32(1) }, { KQ_W32(2) }, { KQ_W32(3) },
    { KQ_W32(4) }, { KQ_W32(5) }, { KQ_W32(6) }, { KQ_W32(7) },
};
static const uint8_t KQ_MIN_MASK[32] __attribute__((aligned(32))) = {
    8, 0x80, 8, 0x80, 9, 0x80, 9, 0x80, 10, 0x80, 10, 0x80, 11, 0x80, 11, 0x80,
    12, 0x80, 12, 0x80, 13, 0x80, 13, 0x80, 14, 0x80, 14, 0x80, 15, 0x80, 15, 0x80,
};

/* Q4_K / Q5_K: 8 six-bit scales and 8 mins packed in 12 bytes (as kq_scale_min in
 * vec_dot_impl.h): with little-endian words w0 = bytes 0..3, w1 = 4..7, w2 = 8..11,
 *   sc0..3 = w0 & 0x3f.., m0..3 = w1 & 0x3f..,
 *   sc4..7 = (w2 & 0x0f..) | ((w0 >> 2) & 0x30..), m4..7 = ((w2 >> 4) & 0x0f..) | ((w1 >> 2) & 0x30..).
 * q points at the 12 bytes and 4 more readable ones. Returns bytes sc0..7, m0..7 in
 * both 128-bit halves. */
KQ_INLINE __m256i kq_scale_min8(const uint8_t *q) {
    const __m128i v = _mm_loadu_si128((const __m128i *)q);
    const __m128i a = _mm_srlv_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)), _mm_set_epi32(4, 0, 0, 0));
    const __m128i lo = _mm_and_si128(a, _mm_set_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f));
    const __m128i hi = _mm_and_si128(_mm_srli_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)), 2),
                                     _mm_set_epi32(0x30303030, 0, 0x30303030, 0));
    return _mm256_broadcastsi128_si256(_mm_or_si128(lo, hi));
}

/* Scale j of kq_scale_min8's bytes in all 16 int16 positions. */
KQ_INLINE __m256i kq_sc16(__m256i sm, int j) {
    return _mm256_shuffle_epi8(sm, _mm256_load_si256((const __m256i *)KQ_SC_MASK[j]));
}

/* The Q4_K min lanes of two tokens: with pm_t = m_j * (bsums[2j] + bsums[2j+1]) (8 int32
 * per token), returns [p0, p1 of t0, p0, p1 of t1 | p2, p3 of t0, p2, p3 of t1] where p_i
 * covers sub-blocks 2i and 2i+1. */
KQ_INLINE __m256i kq_min_lanes2(const int16_t *bs0, const int16_t *bs1, __m256i mdup) {
    const __m256i p0 = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs0), mdup);
    const __m256i p1 = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs1), mdup);
    return _mm256_hadd_epi32(p0, p1);
}

/* A gemm over tiles of 2 rows x 4 tokens (decode: 4 rows x 1 token), with the
 * remainders run by smaller instances of the same tile body. */
#define KQ_GEMM(name, tile)                                                                          \
    void name(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws, const void *a, size_t as, \
              float *y, int64_t ldy) {                                                               \
        const int64_t nb = n / QK_K;                                                                 \
        const uint8_t *wb = w, *ab = a;                                                              \
        int32_t r = 0;                                                                               \
        if (nc == 1) {                                                                               \
            for (; r + 4 <= nr; r += 4) tile(4, 1, nb, wb + (size_t)r * ws, ws, ab, as, y + r, ldy); \
            for (; r < nr; r++) tile(1, 1, nb, wb + (size_t)r * ws, ws, ab, as, y + r, ldy);          \
            return;                                                                                  \
        }                                                                                            \
        for (; r < nr; r += 2) {                                                                     \
            const uint8_t *wr = wb + (size_t)r * ws;                                                 \
            int32_t t = 0;                                                                           \
            if (r + 2 <= nr) {                                                                       \
                for (; t + 4 <= nc; t += 4) tile(2, 4, nb, wr, ws, ab + (size_t)t * as, as, y + t * ldy + r, ldy); \
                for (; t < nc; t++) tile(2, 1, nb, wr, ws, ab + (size_t)t * as, as, y + t * ldy + r, ldy);        \
            } else {                                                                                 \
                for (; t + 4 <= nc; t += 4) tile(1, 4, nb, wr, ws, ab + (size_t)t * as, as, y + t * ldy + r, ldy); \
                for (; t < nc; t++) tile(1, 1, nb, wr, ws, ab + (size_t)t * as, as, y + t * ldy + r, ldy);        \
            }                                                                                        \
        }                                                                                            \
    }

/* ---- Q4_K: sub-block 2c = low nibbles of qs[32c..32c+31], 2c+1 = high nibbles ---- */

/* Sub-blocks 2c (low nibbles of qs[32c..]) and 2c+1 (high nibbles) of R rows x C
 * tokens, added to the integer lanes. */
KQ_INLINE void q4k_pair(const int R, const int C, int c, const block_q4_K *const *x, const block_q8_K *const *q8,
                        const __m256i *sm, __m256i sumi[][KQ_CMAX]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    KQ_UNROLL for (int h = 0; h < 2; h++) {
        __m256i q[KQ_RMAX], sc[KQ_RMAX];
        KQ_UNROLL for (int r = 0; r < R; r++) {
            const __m256i raw = _mm256_loadu_si256((const __m256i *)(x[r]->qs + 32 * c));
            q[r] = _mm256_and_si256(h ? _mm256_srli_epi16(raw, 4) : raw, m4);
            sc[r] = kq_sc16(sm[r], 2 * c + h);
        }
        KQ_UNROLL for (int t = 0; t < C; t++) {
            const __m256i av = _mm256_loadu_si256((const __m256i *)(q8[t]->qs + 64 * c + 32 * h));
            KQ_UNROLL for (int r = 0; r < R; r++)
                sumi[r][t] = _mm256_add_epi32(sumi[r][t], _mm256_madd_epi16(_mm256_maddubs_epi16(q[r], av), sc[r]));
        }
    }
}

KQ_INLINE void q4k_tile(const int R, const int C, int64_t nb, const uint8_t *w, size_t ws, const uint8_t *a,
                        size_t as, float *y, int64_t ldy) {
    enum { CP = (KQ_CMAX + 1) / 2 };
    __m256 acc[KQ_RMAX][KQ_CMAX];
    __m256 accm[KQ_RMAX][CP];   /* min lanes of tokens 2p and 2p+1 (kq_min_lanes2 order) */
    KQ_UNROLL for (int r = 0; r < R; r++) {
        KQ_UNROLL for (int t = 0; t < C; t++) acc[r][t] = _mm256_setzero_ps();
        KQ_UNROLL for (int p = 0; p < (C + 1) / 2; p++) accm[r][p] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++) {
        const block_q4_K *x[KQ_RMAX];
        const block_q8_K *q8[KQ_CMAX];
        __m256i sm[KQ_RMAX], sumi[KQ_RMAX][KQ_CMAX];
        KQ_UNROLL for (int r = 0; r < R; r++) {
            x[r] = (const block_q4_K *)(w + (size_t)r * ws) + b;
            sm[r] = kq_scale_min8(x[r]->scales);
            KQ_UNROLL for (int t = 0; t < C; t++) sumi[r][t] = _mm256_setzero_si256();
        }
        KQ_UNROLL for (int t = 0; t < C; t++) q8[t] = (const block_q8_K *)(a + (size_t)t * as) + b;
        /* Decode (one token) unrolls the super-block for more loads in flight; larger
         * tiles do not: with all of it in view, the compiler reassociates the integer
         * sums into a tree and spills every product. */
        if (C == 1) {
            KQ_UNROLL for (int c = 0; c < 4; c++) q4k_pair(R, C, c, x, q8, sm, sumi);
        } else {
            _Pragma("GCC unroll 1") for (int c = 0; c < 4; c++) q4k_pair(R, C, c, x, q8, sm, sumi);
        }
        __m256 yd[KQ_CMAX];
        KQ_UNROLL for (int t = 0; t < C; t++) yd[t] = _mm256_broadcast_ss(&q8[t]->d);
        KQ_UNROLL for (int r = 0; r < R; r++) {
            const __m256 xd = _mm256_set1_ps(kq_h2f(x[r]->d)), xdmin = _mm256_set1_ps(-kq_h2f(x[r]->dmin));
            const __m256i mdup = _mm256_shuffle_epi8(sm[r], _mm256_load_si256((const __m256i *)KQ_MIN_MASK));
            KQ_UNROLL for (int t = 0; t < C; t++)   /* d = y.d * x.d, one rounding, as the scalar */
                acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(yd[t], xd), _mm256_cvtepi32_ps(sumi[r][t]), acc[r][t]);
            KQ_UNROLL for (int p = 0; p < (C + 1) / 2; p++) {
                /* dmin = -y.d * x.dmin: [t0 x4 | t1 x4] in kq_min_lanes2's order */
                const int t1 = 2 * p + 1 < C ? 2 * p + 1 : 2 * p;
                const __m256 ydp = _mm256_shuffle_ps(yd[2 * p], yd[t1], 0);
                const __m256 dmin = _mm256_mul_ps(ydp, xdmin);
                const __m256i prod = kq_min_lanes2(q8[2 * p]->bsums, q8[t1]->bsums, mdup);
                accm[r][p] = _mm256_fmadd_ps(dmin, _mm256_cvtepi32_ps(prod), accm[r][p]);
            }
        }
    }
    KQ_UNROLL for (int r = 0; r < R; r++) KQ_UNROLL for (int t = 0; t < C; t++) {
        /* token t's min lanes: [m0, m1] at 4(t%2)/2.., [m2, m3] 4 floats later */
        const __m256 m = accm[r][t / 2];
        const __m128 mlo = _mm256_castps256_ps128(m), mhi = _mm256_extractf128_ps(m, 1);
        const __m128 ml = t % 2 ? _mm_movehl_ps(mlo, mlo) : mlo, mh = t % 2 ? _mm_movehl_ps(mhi, mhi) : mhi;
        const __m128 s2 = _mm_add_ps(ml, mh);   /* m0+m2, m1+m3 */
        const float msum = _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
        y[t * ldy + r] = kq_hsum8(acc[r][t]) + msum;
    }
}

void q_avx2_vec_dot_q4_K_q8_K(int64_t n, float *s, const void *x, const void *y) {
    q4k_tile(1, 1, n / QK_K, x, 0, y, 0, s, 1);
}

KQ_GEMM(q_avx2_gemm_q4_K_q8_K, q4k_tile)

/* ---- Q6_K: element 128c + 32k + l = (4 bits of ql, 2 of qh) - 32; 16 int8 scales ---- */

/* Elements 128c + 32k .. +31 of R rows x C tokens, added to the integer lanes (lanes
 * 0..3 take scale 8c + 2k, lanes 4..7 scale 8c + 2k + 1). u = the quant + 32 (0..63,
 * unsigned for maddubs); the 32 comes off as 32 * the activation pair sums, computed
 * once for all rows (both int16, no saturation: |u q8 pair| <= 16128, 32 q8 <= 8192). */
KQ_INLINE void q6k_chunk(const int R, const int C, int c, int k, const block_q6_K *const *x,
                         const block_q8_K *const *q8, __m256i sc[][8], __m256i sumi[][KQ_CMAX]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30), k32 = _mm256_set1_epi8(32);
    __m256i u[KQ_RMAX];
    KQ_UNROLL for (int r = 0; r < R; r++) {
        const __m256i ql = _mm256_loadu_si256((const __m256i *)(x[r]->ql + 64 * c + 32 * (k & 1)));
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(x[r]->qh + 32 * c));
        const __m256i lo4 = _mm256_and_si256(k < 2 ? ql : _mm256_srli_epi16(ql, 4), m4);
        const __m256i hi2 = k == 0 ? _mm256_slli_epi16(qh, 4)
                          : k == 1 ? _mm256_slli_epi16(qh, 2)
                          : k == 2 ? qh : _mm256_srli_epi16(qh, 2);   /* bits 2k, 2k+1 -> 4, 5 */
        u[r] = _mm256_or_si256(lo4, _mm256_and_si256(hi2, m30));
    }
    KQ_UNROLL for (int t = 0; t < C; t++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(q8[t]->qs + 128 * c + 32 * k));
        const __m256i off = _mm256_maddubs_epi16(k32, q);
        KQ_UNROLL for (int r = 0; r < R; r++) {
            const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(u[r], q), off);
            sumi[r][t] = _mm256_add_epi32(sumi[r][t], _mm256_madd_epi16(p, sc[r][4 * c + k]));
        }
    }
}

KQ_INLINE void q6k_tile(const int R, const int C, int64_t nb, const uint8_t *w, size_t ws, const uint8_t *a,
                        size_t as, float *y, int64_t ldy) {
    __m256 acc[KQ_RMAX][KQ_CMAX];
    KQ_UNROLL for (int r = 0; r < R; r++) KQ_UNROLL for (int t = 0; t < C; t++) acc[r][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const block_q6_K *x[KQ_RMAX];
        const block_q8_K *q8[KQ_CMAX];
        __m256i sc[KQ_RMAX][8], sumi[KQ_RMAX][KQ_CMAX];
        KQ_UNROLL for (int r = 0; r < R; r++) {
            x[r] = (const block_q6_K *)(w + (size_t)r * ws) + b;
            kq_bcast16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[r]->scales)), sc[r]);
            KQ_UNROLL for (int t = 0; t < C; t++) sumi[r][t] = _mm256_setzero_si256();
        }
        KQ_UNROLL for (int t = 0; t < C; t++) q8[t] = (const block_q8_K *)(a + (size_t)t * as) + b;
        if (C == 1) {   /* as in q4k_tile */
            KQ_UNROLL for (int c = 0; c < 2; c++) KQ_UNROLL for (int k = 0; k < 4; k++) q6k_chunk(R, C, c, k, x, q8, sc, sumi);
        } else {
            _Pragma("GCC unroll 1") for (int c = 0; c < 2; c++) KQ_UNROLL for (int k = 0; k < 4; k++)
                q6k_chunk(R, C, c, k, x, q8, sc, sumi);
        }
        KQ_UNROLL for (int r = 0; r < R; r++) {
            const __m256 xd = _mm256_set1_ps(kq_h2f(x[r]->d));
            KQ_UNROLL for (int t = 0; t < C; t++)   /* d = y.d * x.d */
                acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_broadcast_ss(&q8[t]->d), xd),
                                            _mm256_cvtepi32_ps(sumi[r][t]), acc[r][t]);
        }
    }
    KQ_UNROLL for (int r = 0; r < R; r++) KQ_UNROLL for (int t = 0; t < C; t++) y[t * ldy + r] = kq_hsum8(acc[r][t]);
}

void q_avx2_vec_dot_q6_K_q8_K(int64_t n, float *s, const void *x, const void *y) {
    q6k_tile(1, 1, n / QK_K, x, 0, y, 0, s, 1);
}

KQ_GEMM(q_avx2_gemm_q6_K_q8_K, q6k_tile)

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
