/* kern_avx512_kq.c — the AVX-512 set's Q2_K..Q5_K x Q8_K gemms (cpu/kern_avx512.h), for
 * batches; decode (one token) is bound by memory and runs the AVX2 tile. Bit-identical to
 * the scalar bodies in cpu/vec_dot_impl.h (tests/test_avx512_kq.c checks the emulated
 * build, tests/test_matmul.c the native one on CPUs that have it).
 *
 * Q4_K is cpu/kq4_pair.h's paired body, compiled here with vpdpwssd on 256-bit registers:
 * on a Xeon with AMX it ran 1.27x the 512-bit tile below did for Q4_K (session 7).
 *
 * Q5_K, Q2_K, Q3_K: what changes from the AVX2 tiles (cpu/kern_avx2_kq.c) is the integer
 * part only. A super-block's sub-blocks 2c and 2c+1 are the low and high nibbles of the
 * same 32 bytes (Q5_K: plus bits 2c and 2c+1 of qh), and their activations are 64
 * consecutive bytes, so one 512-bit register holds both: maddubs makes the pair products
 * (int16, |p| <= 2 x 31 x 127) and VNNI's vpdpwssd multiplies each pair by its sub-block's
 * scale and adds it into the int32 lanes: two instructions per 64 products where AVX2
 * spends maddubs + madd + add per 32. Lanes 0-7 collect the even sub-blocks, 8-15 the odd
 * ones; lane L of either is the scalar body's x86 lane L (scale x elements 4L..4L+3 of a
 * 32-element group), so the two halves added give its lanes exactly (integer sums are
 * exact). The float steps are the AVX2 tiles', one for one (cpu/kq_simd.h): one float
 * chain per output, sum += d*isum - dmin*summs, each step rounded. Tile: 2 rows x 4 tokens
 * (8 integer accumulators of 512 bits), the remainders as smaller instances of the same
 * body. These three are unmeasured on a CPU with AVX-512 (the Q4_K tile they share their
 * shape with was slower than AVX2 on the Xeon).
 *
 * Compiled for AVX-512 F/BW/VL + VNNI by cpu/avx512_begin.h's region (or over SIMDe with
 * Q_AVX512_EMU); cpu/matmul.c lists these only for the AVX-512 set. Owns no memory. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cpu/kern_avx2.h"
#include "cpu/kern_avx512.h"
#include "tensor/quants/blocks.h"

#if defined(__x86_64__) || defined(Q_AVX512_EMU)
#include "cpu/avx512_begin.h"

#include "cpu/kq_simd.h"

enum { K5_R = 2, K5_C = 4 };

/* Keeps an accumulator in its register after each update (as kern_avx2_kq.c's KQ_KEEP):
 * otherwise the compiler sums a super-block's products as a tree and spills them. */
#if defined(Q_AVX512_EMU)
#define K5_KEEP(v) ((void)0)   /* SIMDe's vectors are not registers */
#else
#define K5_KEEP(v) __asm__("" : "+v"(v))
#endif

/* vpermw indices: words 0-15 take scale 2c, words 16-31 scale 2c+1 (c = 0..3). */
static const uint16_t K5_SC_IDX[4][32] __attribute__((aligned(64))) = {
#define K5_I16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
    { K5_I16(0), K5_I16(1) }, { K5_I16(2), K5_I16(3) }, { K5_I16(4), K5_I16(5) }, { K5_I16(6), K5_I16(7) },
#undef K5_I16
};

/* kq_scale_min8's scale bytes sc0..7 as int16 in words 0..7 (the rest unused). */
#define K5_SC8(sm) _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm256_castsi256_si128(sm)))

/* Sub-blocks 2c and 2c+1 of R rows x C tokens into the 512-bit integer lanes; q[r] the
 * rows' quants of the pair (0..15 or 0..31), low sub-block in bits 0-255. */
KQ_INLINE void k5_pair(const int R, const int C, int c, const __m512i *q, const block_q8_K *const *q8,
                       const __m512i *sc8, __m512i sumi[][K5_C]) {
    const __m512i idx = _mm512_load_si512((const void *)K5_SC_IDX[c]);
    __m512i sc[K5_R];
    KQ_UNROLL for (int r = 0; r < R; r++) sc[r] = _mm512_permutexvar_epi16(idx, sc8[r]);
    KQ_UNROLL for (int t = 0; t < C; t++) {
        const __m512i av = _mm512_loadu_si512((const void *)(q8[t]->qs + 64 * c));
        KQ_UNROLL for (int r = 0; r < R; r++) {
            sumi[r][t] = _mm512_dpwssd_epi32(sumi[r][t], _mm512_maddubs_epi16(q[r], av), sc[r]);
            K5_KEEP(sumi[r][t]);
        }
    }
}

KQ_INLINE __m512i k5_join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

/* Lane L of the even plus the odd sub-blocks: the scalar body's x86 lane L. */
KQ_INLINE __m256i k5_fold(__m512i v) { return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1)); }

/* ---- Q5_K: as Q4_K plus a fifth bit, bit j of qh[l] for element 32j + l ---- */

KQ_INLINE void q5k_tile(const int R, const int C, int64_t nb, const uint8_t *w, size_t ws, const uint8_t *a,
                        size_t as, float *y, int64_t ldy) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m10 = _mm256_set1_epi8(0x10);
    __m256 sum = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const block_q5_K *x[K5_R];
        const block_q8_K *q8[K5_C];
        __m256i sm[K5_R], hb[K5_R], sumi8[K5_R][KQ_CMAX], mins[K5_R][KQ_CMAX];
        __m512i sc8[K5_R], sumi[K5_R][K5_C];
        float xd[K5_R], xdmin[K5_R], yd[K5_C];
        KQ_UNROLL for (int r = 0; r < R; r++) {
            x[r] = (const block_q5_K *)(w + (size_t)r * ws) + b;
            kq_prefetch((uintptr_t)x[r] + KQ_PF_BLOCKS * sizeof *x[r], sizeof *x[r]);
            sm[r] = kq_scale_min8(x[r]->scales);
            sc8[r] = K5_SC8(sm[r]);
            hb[r] = _mm256_loadu_si256((const __m256i *)x[r]->qh);   /* shifted right by 2c below */
            xd[r] = kq_h2f(x[r]->d);
            xdmin[r] = kq_h2f(x[r]->dmin);
            KQ_UNROLL for (int t = 0; t < C; t++) sumi[r][t] = _mm512_setzero_si512();
        }
        KQ_UNROLL for (int t = 0; t < C; t++) {
            q8[t] = (const block_q8_K *)(a + (size_t)t * as) + b;
            yd[t] = q8[t]->d;
        }
        KQ_NO_UNROLL for (int c = 0; c < 4; c++) {
            __m512i q[K5_R];
            KQ_UNROLL for (int r = 0; r < R; r++) {
                /* in 16-bit lanes, bits 0 and 1 of each byte of hb are bits 2c, 2c+1 of that qh byte */
                const __m256i raw = _mm256_loadu_si256((const __m256i *)(x[r]->qs + 32 * c));
                const __m256i lo = _mm256_or_si256(_mm256_and_si256(raw, m4), _mm256_and_si256(_mm256_slli_epi16(hb[r], 4), m10));
                const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(raw, 4), m4),
                                                   _mm256_and_si256(_mm256_slli_epi16(hb[r], 3), m10));
                q[r] = k5_join(lo, hi);   /* 0..31 */
                hb[r] = _mm256_srli_epi16(hb[r], 2);
            }
            k5_pair(R, C, c, q, q8, sc8, sumi);
        }
        KQ_UNROLL for (int r = 0; r < R; r++) {   /* summs: m_j * (bsums[2j] + bsums[2j+1]) */
            const __m256i mdup = _mm256_shuffle_epi8(sm[r], _mm256_load_si256((const __m256i *)KQ_MIN_MASK));
            KQ_UNROLL for (int t = 0; t < C; t++) {
                mins[r][t] = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)q8[t]->bsums), mdup);
                sumi8[r][t] = k5_fold(sumi[r][t]);
            }
        }
        __m256i isum, summs;
        kq_tile_totals(R, C, sumi8, mins, &isum, &summs);
        sum = kq_chain(sum, kq_outer(R, C, xd, yd), isum, kq_outer(R, C, xdmin, yd), summs);
    }
    kq_store_lanes(R, C, sum, y, ldy);
}

/* ---- Q2_K, Q3_K: 16-element groups with their own scales ----
 * Element 128c + 32k + l has its 2 low bits at (qs[32c + l] >> 2k) & 3 (kq_2bit); the
 * chunks k and k+1 (k even) share one 512-bit register, as their 64 activations are
 * consecutive, with their scale vectors (kq_bcast16: [s_2i x 8 | s_2i+1 x 8]) side by
 * side. Only the super-block's integer total matters here (kq_tile_totals), so the lanes
 * may mix freely. */

/* Chunks k, k+1 of R rows x C tokens: q[r] the rows' quants (chunk k in bits 0-255),
 * sc[r] their scales. */
KQ_INLINE void k5_chunk2(const int R, const int C, int c, int k, const __m512i *q, const __m512i *sc,
                         const block_q8_K *const *q8, __m512i sumi[][K5_C]) {
    KQ_UNROLL for (int t = 0; t < C; t++) {
        const __m512i av = _mm512_loadu_si512((const void *)(q8[t]->qs + 128 * c + 32 * k));
        KQ_UNROLL for (int r = 0; r < R; r++) {
            sumi[r][t] = _mm512_dpwssd_epi32(sumi[r][t], _mm512_maddubs_epi16(q[r], av), sc[r]);
            K5_KEEP(sumi[r][t]);
        }
    }
}

/* Q2_K: scales[g] = scale (low nibble) | min (high nibble), all unsigned. */
KQ_INLINE void q2k_tile(const int R, const int C, int64_t nb, const uint8_t *w, size_t ws, const uint8_t *a,
                        size_t as, float *y, int64_t ldy) {
    __m256 sum = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const block_q2_K *x[K5_R];
        const block_q8_K *q8[K5_C];
        __m256i sc[K5_R][8], mn[K5_R], sumi8[K5_R][KQ_CMAX], mins[K5_R][KQ_CMAX];
        __m512i sumi[K5_R][K5_C];
        float xd[K5_R], xdmin[K5_R], yd[K5_C];
        KQ_UNROLL for (int r = 0; r < R; r++) {
            x[r] = (const block_q2_K *)(w + (size_t)r * ws) + b;
            kq_prefetch((uintptr_t)x[r] + KQ_PF_BLOCKS * sizeof *x[r], sizeof *x[r]);
            const __m256i s16 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)x[r]->scales));
            kq_bcast16(_mm256_and_si256(s16, _mm256_set1_epi16(0x0F)), sc[r]);
            mn[r] = _mm256_srli_epi16(s16, 4);
            xd[r] = kq_h2f(x[r]->d);
            xdmin[r] = kq_h2f(x[r]->dmin);
            KQ_UNROLL for (int t = 0; t < C; t++) sumi[r][t] = _mm512_setzero_si512();
        }
        KQ_UNROLL for (int t = 0; t < C; t++) {
            q8[t] = (const block_q8_K *)(a + (size_t)t * as) + b;
            yd[t] = q8[t]->d;
        }
        KQ_NO_UNROLL for (int c = 0; c < 2; c++) KQ_UNROLL for (int k = 0; k < 4; k += 2) {
            __m512i q[K5_R], s[K5_R];
            KQ_UNROLL for (int r = 0; r < R; r++) {
                q[r] = k5_join(kq_2bit(x[r]->qs, c, k), kq_2bit(x[r]->qs, c, k + 1));
                s[r] = k5_join(sc[r][4 * c + k], sc[r][4 * c + k + 1]);
            }
            k5_chunk2(R, C, c, k, q, s, q8, sumi);
        }
        KQ_UNROLL for (int r = 0; r < R; r++) KQ_UNROLL for (int t = 0; t < C; t++) {   /* summs: bsums[g] * min[g] */
            mins[r][t] = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)q8[t]->bsums), mn[r]);
            sumi8[r][t] = k5_fold(sumi[r][t]);
        }
        __m256i isum, summs;
        kq_tile_totals(R, C, sumi8, mins, &isum, &summs);
        sum = kq_chain(sum, kq_outer(R, C, xd, yd), isum, kq_outer(R, C, xdmin, yd), summs);
    }
    kq_store_lanes(R, C, sum, y, ldy);
}

/* Q3_K: 16 six-bit scales - 32 (q3k_scales), quants u - 4 with u = the 2 low bits | the
 * hmask bit << 2 (0..7: maddubs' unsigned operand); the 4 comes off once per super-block
 * as 4 * scale * bsums. */
/* u of chunk k: hb holds hmask shifted right by 4c (bits 0..3 of each byte its own). */
KQ_INLINE __m256i k5_q3_u(const uint8_t *qs, __m256i hb, int c, int k) {
    const __m256i h = k == 0 ? _mm256_slli_epi16(hb, 2) : k == 1 ? _mm256_slli_epi16(hb, 1)
                    : k == 2 ? hb : _mm256_srli_epi16(hb, 1);   /* bit k -> bit 2 */
    return _mm256_or_si256(kq_2bit(qs, c, k), _mm256_and_si256(h, _mm256_set1_epi8(4)));
}

KQ_INLINE void q3k_tile(const int R, const int C, int64_t nb, const uint8_t *w, size_t ws, const uint8_t *a,
                        size_t as, float *y, int64_t ldy) {
    __m256 sum = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const block_q3_K *x[K5_R];
        const block_q8_K *q8[K5_C];
        __m256i sc[K5_R][8], s16[K5_R], hb[K5_R], sumi8[K5_R][KQ_CMAX];
        __m512i sumi[K5_R][K5_C];
        float xd[K5_R], yd[K5_C];
        KQ_UNROLL for (int r = 0; r < R; r++) {
            x[r] = (const block_q3_K *)(w + (size_t)r * ws) + b;
            kq_prefetch((uintptr_t)x[r] + KQ_PF_BLOCKS * sizeof *x[r], sizeof *x[r]);
            s16[r] = q3k_scales(x[r]->scales);
            kq_bcast16(s16[r], sc[r]);
            hb[r] = _mm256_loadu_si256((const __m256i *)x[r]->hmask);
            xd[r] = kq_h2f(x[r]->d);
            KQ_UNROLL for (int t = 0; t < C; t++) sumi[r][t] = _mm512_setzero_si512();
        }
        KQ_UNROLL for (int t = 0; t < C; t++) {
            q8[t] = (const block_q8_K *)(a + (size_t)t * as) + b;
            yd[t] = q8[t]->d;
        }
        KQ_NO_UNROLL for (int c = 0; c < 2; c++) {
            KQ_UNROLL for (int k = 0; k < 4; k += 2) {
                __m512i q[K5_R], s[K5_R];
                KQ_UNROLL for (int r = 0; r < R; r++) {
                    q[r] = k5_join(k5_q3_u(x[r]->qs, hb[r], c, k), k5_q3_u(x[r]->qs, hb[r], c, k + 1));
                    s[r] = k5_join(sc[r][4 * c + k], sc[r][4 * c + k + 1]);
                }
                k5_chunk2(R, C, c, k, q, s, q8, sumi);
            }
            KQ_UNROLL for (int r = 0; r < R; r++) hb[r] = _mm256_srli_epi16(hb[r], 4);
        }
        KQ_UNROLL for (int t = 0; t < C; t++) {   /* the -4 of every quant: -4 * sum of scale * bsums */
            const __m256i bs = _mm256_loadu_si256((const __m256i *)q8[t]->bsums);
            KQ_UNROLL for (int r = 0; r < R; r++)
                sumi8[r][t] = _mm256_sub_epi32(k5_fold(sumi[r][t]), _mm256_slli_epi32(_mm256_madd_epi16(bs, s16[r]), 2));
        }
        __m256i isum, none;
        kq_tile_totals(R, C, sumi8, NULL, &isum, &none);
        /* sum += (x.d * y.d) * isum */
        sum = _mm256_add_ps(sum, _mm256_mul_ps(kq_outer(R, C, xd, yd), _mm256_cvtepi32_ps(isum)));
    }
    kq_store_lanes(R, C, sum, y, ldy);
}

/* A gemm of 2-row x 4-token tiles, tokens outer (a tile's activations stay in L1 while
 * the task's rows cycle through L2); the last nr % 2 rows one by one, the last nc % 4
 * tokens as one tile of that many. Decode (one token) is the AVX2 gemm's. */
#define K5_ROWS(tile, C)                                                                             \
    do {                                                                                             \
        int32_t r = 0;                                                                               \
        for (; r + K5_R <= nr; r += K5_R) tile(K5_R, C, nb, wb + (size_t)r * ws, ws, at, as, y + t * ldy + r, ldy); \
        for (; r < nr; r++) tile(1, C, nb, wb + (size_t)r * ws, ws, at, as, y + t * ldy + r, ldy);  \
    } while (0)
#define K5_GEMM(name, tile, decode)                                                                  \
    void Q_AVX512_NAME(name)(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws, const void *a, \
                             size_t as, float *y, int64_t ldy) {                                    \
        if (nc == 1) {                                                                               \
            decode(n, nr, nc, w, ws, a, as, y, ldy);                                                 \
            return;                                                                                  \
        }                                                                                            \
        const int64_t nb = n / QK_K;                                                                 \
        const uint8_t *wb = w, *ab = a;                                                              \
        int32_t t = 0;                                                                               \
        for (; t + K5_C <= nc; t += K5_C) {                                                          \
            const uint8_t *at = ab + (size_t)t * as;                                                 \
            K5_ROWS(tile, K5_C);                                                                     \
        }                                                                                            \
        const uint8_t *at = ab + (size_t)t * as;                                                     \
        const int rem = nc - t;                                                                      \
        if (rem == 3) K5_ROWS(tile, 3);                                                              \
        if (rem == 2) K5_ROWS(tile, 2);                                                              \
        if (rem == 1) K5_ROWS(tile, 1);                                                              \
    }

K5_GEMM(q_avx512_gemm_q5_K_q8_K, q5k_tile, q_avx2_gemm_q5_K_q8_K)
K5_GEMM(q_avx512_gemm_q2_K_q8_K, q2k_tile, q_avx2_gemm_q2_K_q8_K)
K5_GEMM(q_avx512_gemm_q3_K_q8_K, q3k_tile, q_avx2_gemm_q3_K_q8_K)

/* Q4_K: the paired body of cpu/kq4_pair.h with vpdpwssd on 256-bit registers (its
 * comment says why not 512); decode is the AVX2 gemm's, as above. */
#define KQ4P_DOT(s, p, sc)                                  \
    do {                                                    \
        (s) = _mm256_dpwssd_epi32((s), (p), (sc));          \
        K5_KEEP(s);                                         \
    } while (0)
#include "cpu/kq4_pair.h"
#undef KQ4P_DOT

void Q_AVX512_NAME(q_avx512_gemm_q4_K_q8_K)(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws,
                                            const void *a, size_t as, float *y, int64_t ldy) {
    if (nc == 1) {
        q_avx2_gemm_q4_K_q8_K(n, nr, nc, w, ws, a, as, y, ldy);
        return;
    }
    q4kp_gemm(n, nr, nc, w, ws, a, as, y, ldy);
}

#include "cpu/avx512_end.h"
#endif
