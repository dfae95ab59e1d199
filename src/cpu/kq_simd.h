/* kq_simd.h — helpers of the k-quant tiles shared by the AVX2 and AVX-512 kernel files:
 * the packed 6-bit scales and mins, the x86 lane sums, the min lanes, the per-output
 * float chain. Include it inside a target region (cpu/avx2_begin.h or avx512_begin.h):
 * everything here is static inline (or a small static table), so each including file
 * compiles it for its own kernel set. Not a public interface; no include guard needed
 * beyond one inclusion per file. Owns nothing. */
#ifndef QUARREL_CPU_KQ_SIMD_H
#define QUARREL_CPU_KQ_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tensor/quants/blocks.h"

/* The tile bodies take their shape (R rows, C tokens) as constants: always inlined into
 * one instance per shape, with the shape loops fully unrolled so the per-output
 * accumulators live in registers. */
#define KQ_INLINE static inline __attribute__((always_inline))
#if defined(__clang__)
#define KQ_UNROLL _Pragma("clang loop unroll(full)")
#define KQ_NO_UNROLL _Pragma("clang loop unroll(disable)")
#else
#define KQ_UNROLL _Pragma("GCC unroll 8")
#define KQ_NO_UNROLL _Pragma("GCC unroll 1")
#endif
enum { KQ_RMAX = 4, KQ_CMAX = 8 };

/* Decode streams each weight row from RAM once: the block KQ_PF_BLOCKS ahead is
 * prefetched (past a row's end that is the next row, which comes next; past the
 * matrix's end a prefetch is a no-op). Measured here: +20-40 % over the hardware
 * prefetcher alone at one thread. Every tile shape prefetches: a small batch (2..8
 * tokens) streams W from RAM just as decode does (1 thread, W of 16384 x 2048, CPU
 * time: Q4_K 8 tokens 6.6 -> 5.2 ms, 4 tokens 3.9 -> 2.5 ms); in prefill it is an L2 hit. */
enum { KQ_PF_BLOCKS = 16 };
KQ_INLINE void kq_prefetch(uintptr_t p, size_t size) {   /* an address, maybe past the end */
    for (size_t off = 0; off < size; off += 64) _mm_prefetch((const char *)(p + off), _MM_HINT_T0);
}

/* exact, as the scalar table (vcvtph2ps on one value) */
KQ_INLINE float kq_h2f(q_half h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128((int)h))); }

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
static const uint8_t KQ_SC_MASK[8][32] __attribute__((aligned(32), unused)) = {
    { KQ_W32(0) }, { KQ_W32(1) }, { KQ_W32(2) }, { KQ_W32(3) },
    { KQ_W32(4) }, { KQ_W32(5) }, { KQ_W32(6) }, { KQ_W32(7) },
};
static const uint8_t KQ_MIN_MASK[32] __attribute__((aligned(32), unused)) = {
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

/* pshufb mask: int16 position k takes min byte 8 + k%4 (low half), 12 + k%4 (high half). */
static const uint8_t KQ_MIN4_MASK[32] __attribute__((aligned(32), unused)) = {
    8, 0x80, 9, 0x80, 10, 0x80, 11, 0x80, 8, 0x80, 9, 0x80, 10, 0x80, 11, 0x80,
    12, 0x80, 13, 0x80, 14, 0x80, 15, 0x80, 12, 0x80, 13, 0x80, 14, 0x80, 15, 0x80,
};

/* The Q4_K min lanes of two tokens: p_i = m_2i * S_2i + m_2i+1 * S_2i+1 with S_j =
 * bsums[2j] + bsums[2j+1] (int16: |S| <= 4064), as [p0, p1 of t0, p0, p1 of t1 | p2, p3
 * of t0, p2, p3 of t1]. m4 = kq_scale_min8's bytes through KQ_MIN4_MASK. */
KQ_INLINE __m256i kq_min_lanes2(const int16_t *bs0, const int16_t *bs1, __m256i m4) {
    const __m256i s = _mm256_hadd_epi16(_mm256_loadu_si256((const __m256i *)bs0), _mm256_loadu_si256((const __m256i *)bs1));
    return _mm256_madd_epi16(s, m4);
}

/* The scalar's min-lane sum (m0 + m2) + (m1 + m3) of token t of a pair, from accumulated
 * kq_min_lanes2 lanes m: [m0, m1] at floats 2(t%2).. of the low half, [m2, m3] at the same
 * place in the high half. odd = t % 2. */
KQ_INLINE float kq_min4_sum(__m256 m, int odd) {
    const __m128 mlo = _mm256_castps256_ps128(m), mhi = _mm256_extractf128_ps(m, 1);
    const __m128 ml = odd ? _mm_movehl_ps(mlo, mlo) : mlo, mh = odd ? _mm_movehl_ps(mhi, mhi) : mhi;
    const __m128 s2 = _mm_add_ps(ml, mh);   /* m0+m2, m1+m3 */
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

/* ---- Q5_K, Q3_K, Q2_K: one float chain per output ----
 * Their scalar bodies sum each super-block's integers (isum, and the mins' summs) and
 * then round sum += d*isum - dmin*summs step by step, so a tile keeps one float lane per
 * output: lane o = r*C + t of a vector (R*C <= 8). */

/* Lane o = the sum of v[o]'s 8 lanes (integers: exact in any order). */
KQ_INLINE __m256i kq_hsum_x8(const __m256i v[8]) {
    const __m256i a = _mm256_hadd_epi32(v[0], v[1]), b = _mm256_hadd_epi32(v[2], v[3]);
    const __m256i c = _mm256_hadd_epi32(v[4], v[5]), d = _mm256_hadd_epi32(v[6], v[7]);
    const __m256i e = _mm256_hadd_epi32(a, b), f = _mm256_hadd_epi32(c, d);   /* halves: v0..3 | v4..7 sums */
    return _mm256_add_epi32(_mm256_permute2x128_si256(e, f, 0x20), _mm256_permute2x128_si256(e, f, 0x31));
}

/* Per-output totals of the tile's integer lanes: *isum lane o = sum of sumi[o], *summs
 * lane o = sum of mins[o] (mins may be NULL: no mins). */
KQ_INLINE void kq_tile_totals(const int R, const int C, __m256i sumi[][KQ_CMAX], __m256i mins[][KQ_CMAX],
                              __m256i *isum, __m256i *summs) {
    const int N = R * C;
    __m256i v[8];
    if (N == 1) {   /* decode: both totals in three steps */
        const __m256i h = _mm256_hadd_epi32(sumi[0][0], mins ? mins[0][0] : _mm256_setzero_si256());
        __m128i q = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        q = _mm_hadd_epi32(q, q);   /* isum, summs, isum, summs */
        *isum = _mm256_castsi128_si256(q);
        *summs = _mm256_castsi128_si256(_mm_shuffle_epi32(q, 1));
        return;
    }
    if (mins && N <= 4) {   /* one reduction: isums in slots 0..3, summs in 4..7 */
        KQ_UNROLL for (int i = 0; i < 8; i++) v[i] = _mm256_setzero_si256();
        KQ_UNROLL for (int r = 0; r < R; r++) KQ_UNROLL for (int t = 0; t < C; t++) {
            v[r * C + t] = sumi[r][t];
            v[4 + r * C + t] = mins[r][t];
        }
        const __m256i tot = kq_hsum_x8(v);
        *isum = tot;
        *summs = _mm256_permute2x128_si256(tot, tot, 0x01);
        return;
    }
    KQ_UNROLL for (int i = 0; i < 8; i++) v[i] = _mm256_setzero_si256();
    KQ_UNROLL for (int r = 0; r < R; r++) KQ_UNROLL for (int t = 0; t < C; t++) v[r * C + t] = sumi[r][t];
    *isum = kq_hsum_x8(v);
    if (!mins) return;
    KQ_UNROLL for (int r = 0; r < R; r++) KQ_UNROLL for (int t = 0; t < C; t++) v[r * C + t] = mins[r][t];
    *summs = kq_hsum_x8(v);
}

/* Lane o = r*C + t holds xs[r] * ys[t] (one rounding, as the scalar's d products). */
KQ_INLINE __m256 kq_outer(const int R, const int C, const float *xs, const float *ys) {
    float v[8] = { 0 };
    KQ_UNROLL for (int r = 0; r < R; r++) KQ_UNROLL for (int t = 0; t < C; t++) v[r * C + t] = xs[r] * ys[t];
    return _mm256_setr_ps(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]);
}

/* sum += d*isum - dmin*summs, with the two products, the difference and the sum each
 * rounded (separate intrinsics; the build does not contract them). */
KQ_INLINE __m256 kq_chain(__m256 sum, __m256 d, __m256i isum, __m256 dmin, __m256i summs) {
    const __m256 a = _mm256_mul_ps(d, _mm256_cvtepi32_ps(isum));
    const __m256 b = _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(summs));
    return _mm256_add_ps(sum, _mm256_sub_ps(a, b));
}

KQ_INLINE void kq_store_lanes(const int R, const int C, __m256 sum, float *y, int64_t ldy) {
    float v[8];
    _mm256_storeu_ps(v, sum);
    KQ_UNROLL for (int r = 0; r < R; r++) KQ_UNROLL for (int t = 0; t < C; t++) y[t * ldy + r] = v[r * C + t];
}

/* Q2_K / Q3_K quants: element 128c + 32k + l has its 2 low bits at (qs[32c + l] >> 2k)
 * & 3; 16-element group g = 8c + 2k + l/16 has its own scale (kq_bcast16 index 4c + k). */
KQ_INLINE __m256i kq_2bit(const uint8_t *qs, int c, int k) {
    const __m256i raw = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
    const __m256i sh = k == 0 ? raw : k == 1 ? _mm256_srli_epi16(raw, 2) : k == 2 ? _mm256_srli_epi16(raw, 4)
                                                                                  : _mm256_srli_epi16(raw, 6);
    return _mm256_and_si256(sh, _mm256_set1_epi8(3));
}

/* Q3_K: 16 six-bit scales - 32, packed in 12 bytes (words w0, w1, w2): low 4 bits of
 * s0..3 = w0 & 0x0f.., s4..7 = w1 & 0x0f.., s8..11 = (w0 >> 4) & 0x0f.., s12..15 =
 * (w1 >> 4) & 0x0f..; high 2 bits of s(4i..4i+3) = (w2 >> 2i) & 0x03... Returns int16. */
KQ_INLINE __m256i q3k_scales(const uint8_t *q) {
    uint32_t u[3];
    memcpy(u, q, 12);   /* the block ends 2 bytes after: no 16-byte load */
    const __m128i v = _mm_setr_epi32((int)u[0], (int)u[1], (int)u[2], 0);
    const __m128i lo = _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 1, 0)), _mm_setr_epi32(0, 0, 4, 4)),
                                     _mm_set1_epi8(0x0F));
    const __m128i hi = _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(2, 2, 2, 2)), _mm_setr_epi32(0, 2, 4, 6)),
                                     _mm_set1_epi8(3));
    return _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_or_si128(lo, _mm_slli_epi32(hi, 4))), _mm256_set1_epi16(32));
}

#endif
