/* kern_avx2_kq.c — hand-written AVX2+FMA+F16C kernels for the k-quants (Q2_K..Q6_K)
 * times Q8_K activations: a vec_dot (one output) and a gemm tile (nr rows x nc tokens)
 * per type. Not the reference: every output is bit-identical to the scalar body of
 * cpu/vec_dot_impl.h, whose comments define the summation order (tests/test_matmul.c
 * checks). Owns no memory; reads weight and activation blocks in place (Q6_K also keeps
 * a 41 KiB stack scratch per call, the Q4_K gemm 32 KiB: prepared activations and carried
 * float lanes).
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
 * rows (R x C integer accumulators in registers: prefill 1 x 8, the faster shape on
 * this machine's Zen 3 (2 x 4 was, for Q4_K before its paired path); a batch of fewer
 * tokens, or the last nc % C, one tile of that many (Q6_K: near-equal groups of at
 * most 8); decode takes the rows one by one, in memory order). Their speed limit is the
 * multiplier ports: a 32-element product costs one maddubs and one madd, and Zen 3
 * issues two of those (or FMAs) per cycle. The Q4_K gemm (2+ tokens) pairs two
 * sub-blocks per madd on rearranged operands: 3 multiplies per 64 elements, not 4
 * (see "Q4_K gemm" below; 1 x 8 tiles: with 2 x 4 the second row's rearranged weights
 * leave too few registers).
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
#include "cpu/avx2_begin.h"

#include "cpu/kq_simd.h"

/* Pins an accumulator to a register after each update: without it the compiler delays
 * every product of a super-block to a final sum (integer adds reassociate freely) and
 * spills them all to the stack. */
#define KQ_KEEP(v) __asm__("" : "+x"(v))

/* A gemm over tiles of RP rows x CP tokens (decode, one token: row by row), with the
 * remainders run by smaller instances of the same tile body: the last nc % CP tokens as
 * one tile of that many (so a small batch, nc < CP, still reads each weight block once
 * for all its tokens), the last nr % RP rows one by one. Tokens are the outer loop: a
 * tile's activations (CP tokens, up to 26 KiB for 5632 inputs) stay in L1 while the
 * task's weight rows (16 rows: <= 56 KiB) cycle through L2; rows outside would re-read
 * all 64 tokens' activations (up to 411 KiB) per row group. */
#define KQ_ROWS(tile, RP, C)                                                                         \
    do {                                                                                             \
        int32_t r = 0;                                                                               \
        for (; r + RP <= nr; r += RP) tile(RP, C, nb, wb + (size_t)r * ws, ws, at, as, y + t * ldy + r, ldy); \
        for (; r < nr; r++) tile(1, C, nb, wb + (size_t)r * ws, ws, at, as, y + t * ldy + r, ldy);          \
    } while (0)
#define KQ_GEMM(name, tile, RP, CP)                                                                  \
    void name(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws, const void *a, size_t as, \
              float *y, int64_t ldy) {                                                               \
        const int64_t nb = n / QK_K;                                                                 \
        const uint8_t *wb = w, *ab = a;                                                              \
        if (nc == 1) {   /* decode: rows in memory order, one stream for the prefetcher */           \
            for (int32_t r = 0; r < nr; r++) tile(1, 1, nb, wb + (size_t)r * ws, ws, ab, as, y + r, ldy); \
            return;                                                                                  \
        }                                                                                            \
        int32_t t = 0;                                                                               \
        for (; t + CP <= nc; t += CP) {                                                              \
            const uint8_t *at = ab + (size_t)t * as;                                                 \
            KQ_ROWS(tile, RP, CP);                                                                   \
        }                                                                                            \
        const int rem = nc - t;   /* < CP <= 8: one instance per count */                           \
        const uint8_t *at = ab + (size_t)t * as;                                                     \
        if (rem == 1) KQ_ROWS(tile, RP, 1);                                                          \
        if (CP > 2 && rem == 2) KQ_ROWS(tile, RP, (CP > 2 ? 2 : 1));                                 \
        if (CP > 3 && rem == 3) KQ_ROWS(tile, RP, (CP > 3 ? 3 : 1));                                 \
        if (CP > 4 && rem == 4) KQ_ROWS(tile, RP, (CP > 4 ? 4 : 1));                                 \
        if (CP > 5 && rem == 5) KQ_ROWS(tile, RP, (CP > 5 ? 5 : 1));                                 \
        if (CP > 6 && rem == 6) KQ_ROWS(tile, RP, (CP > 6 ? 6 : 1));                                 \
        if (CP > 7 && rem == 7) KQ_ROWS(tile, RP, (CP > 7 ? 7 : 1));                                 \
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
            KQ_UNROLL for (int r = 0; r < R; r++) {
                sumi[r][t] = _mm256_add_epi32(sumi[r][t], _mm256_madd_epi16(_mm256_maddubs_epi16(q[r], av), sc[r]));
                KQ_KEEP(sumi[r][t]);
            }
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
            kq_prefetch((uintptr_t)x[r] + KQ_PF_BLOCKS * sizeof *x[r], sizeof *x[r]);
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
            KQ_NO_UNROLL for (int c = 0; c < 4; c++) q4k_pair(R, C, c, x, q8, sm, sumi);
        }
        __m256 yd[KQ_CMAX];
        KQ_UNROLL for (int t = 0; t < C; t++) yd[t] = _mm256_broadcast_ss(&q8[t]->d);
        KQ_UNROLL for (int r = 0; r < R; r++) {
            const __m256 xd = _mm256_set1_ps(kq_h2f(x[r]->d)), xdmin = _mm256_set1_ps(-kq_h2f(x[r]->dmin));
            const __m256i m4 = _mm256_shuffle_epi8(sm[r], _mm256_load_si256((const __m256i *)KQ_MIN4_MASK));
            KQ_UNROLL for (int t = 0; t < C; t++)   /* d = y.d * x.d, one rounding, as the scalar */
                acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(yd[t], xd), _mm256_cvtepi32_ps(sumi[r][t]), acc[r][t]);
            KQ_UNROLL for (int p = 0; p < (C + 1) / 2; p++) {
                /* dmin = -y.d * x.dmin: [t0 x4 | t1 x4] in kq_min_lanes2's order */
                const int t1 = 2 * p + 1 < C ? 2 * p + 1 : 2 * p;
                const __m256 ydp = _mm256_shuffle_ps(yd[2 * p], yd[t1], 0);
                const __m256 dmin = _mm256_mul_ps(ydp, xdmin);
                const __m256i prod = kq_min_lanes2(q8[2 * p]->bsums, q8[t1]->bsums, m4);
                accm[r][p] = _mm256_fmadd_ps(dmin, _mm256_cvtepi32_ps(prod), accm[r][p]);
            }
        }
    }
    KQ_UNROLL for (int r = 0; r < R; r++) KQ_UNROLL for (int t = 0; t < C; t++) {
        y[t * ldy + r] = kq_hsum8(acc[r][t]) + kq_min4_sum(accm[r][t / 2], t % 2);
    }
}

/* Decode (one token) over nr rows: q4k_tile(1, 1) row by row, with what depends on the
 * token alone (per super-block: the bsums pair sums kq_min_lanes2 forms, y.d) formed once
 * per call instead of once per row. Same operations per output, same order. */
enum { KQ4_DEC_NB = 128 };   /* super-blocks prepared per call (32768 inputs); longer rows: q4k_tile */
static void q4k_decode(int32_t nr, int64_t nb, const uint8_t *w, size_t ws, const block_q8_K *q8, float *y) {
    __m256i bsp[KQ4_DEC_NB];
    __m256 ydv[KQ4_DEC_NB];
    for (int64_t b = 0; b < nb; b++) {
        const __m256i bs = _mm256_loadu_si256((const __m256i *)q8[b].bsums);
        bsp[b] = _mm256_hadd_epi16(bs, bs);
        ydv[b] = _mm256_set1_ps(q8[b].d);
    }
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int32_t r = 0; r < nr; r++) {
        __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
        const block_q4_K *x = (const block_q4_K *)(w + (size_t)r * ws);
        for (int64_t b = 0; b < nb; b++, x++) {
            kq_prefetch((uintptr_t)x + KQ_PF_BLOCKS * sizeof *x, sizeof *x);
            const __m256i sm = kq_scale_min8(x->scales);
            __m256i sumi = _mm256_setzero_si256();
            KQ_UNROLL for (int c = 0; c < 4; c++) {
                const __m256i raw = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * c));
                const __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
                const __m256i alo = _mm256_loadu_si256((const __m256i *)(q8[b].qs + 64 * c));
                const __m256i ahi = _mm256_loadu_si256((const __m256i *)(q8[b].qs + 64 * c + 32));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(lo, alo), kq_sc16(sm, 2 * c)));
                KQ_KEEP(sumi);
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(hi, ahi), kq_sc16(sm, 2 * c + 1)));
                KQ_KEEP(sumi);
            }
            const __m256 xd = _mm256_set1_ps(kq_h2f(x->d)), xdmin = _mm256_set1_ps(-kq_h2f(x->dmin));
            acc = _mm256_fmadd_ps(_mm256_mul_ps(ydv[b], xd), _mm256_cvtepi32_ps(sumi), acc);
            const __m256i mm = _mm256_shuffle_epi8(sm, _mm256_load_si256((const __m256i *)KQ_MIN4_MASK));
            accm = _mm256_fmadd_ps(_mm256_mul_ps(ydv[b], xdmin), _mm256_cvtepi32_ps(_mm256_madd_epi16(bsp[b], mm)), accm);
        }
        y[r] = kq_hsum8(acc) + kq_min4_sum(accm, 0);
    }
}

void q_avx2_vec_dot_q4_K_q8_K(int64_t n, float *s, const void *x, const void *y) {
    q4k_tile(1, 1, n / QK_K, x, 0, y, 0, s, 1);
}

/* The Q4_K gemm (2+ tokens): sub-blocks paired per madd (cpu/kq4_pair.h). */
#define KQ4P_DOT(s, p, sc)                                         \
    do {                                                           \
        (s) = _mm256_add_epi32((s), _mm256_madd_epi16((p), (sc))); \
        KQ_KEEP(s);                                                \
    } while (0)
#include "cpu/kq4_pair.h"
#undef KQ4P_DOT

void q_avx2_gemm_q4_K_q8_K(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws, const void *a, size_t as,
                           float *y, int64_t ldy) {
    const int64_t nb = n / QK_K;
    if (nc == 1) {   /* decode: rows in memory order, one stream for the prefetcher */
        if (nb <= KQ4_DEC_NB) q4k_decode(nr, nb, w, ws, (const block_q8_K *)a, y);
        else for (int32_t r = 0; r < nr; r++) q4k_tile(1, 1, nb, (const uint8_t *)w + (size_t)r * ws, ws, a, as, y + r, ldy);
        return;
    }
    q4kp_gemm(n, nr, nc, w, ws, a, as, y, ldy);
}

/* ---- Q6_K: element 128c + 32k + l = (4 bits of ql, 2 of qh) - 32; 16 int8 scales ----
 * maddubs needs one unsigned operand. Two exact ways, both keeping every int32 lane the
 * scalar's (integer sums are exact; only the operands' offsets move):
 *  - U (decode; tiles of 2..KQ6_UMAX tokens on short rows): the weight u = quant + 32
 *    (0..63) is the unsigned operand (pairs within 63 * 128 * 2), and 32 * (a_2i +
 *    a_2i+1), prepared per call from the activations alone, comes off each int16 pair
 *    before the scale (|u a - 32 a| pairs <= 32 * 128 * 2). Per 32 elements and output:
 *    maddubs, sub, madd, add; per row: the unpack.
 *  - A (the other tiles): the activation a + 128 (prepared per call) is the unsigned
 *    operand and the signed quant s the other (pairs within 255 * 32 * 2); the 128 *
 *    (s_2i + s_2i+1) it adds (|.| <= 8192) depend on the row alone, so their scaled sum
 *    comes off each output's lanes once per super-block. Per 32 elements and output:
 *    maddubs, madd, add (as Q4_K); per row: the unpack and the correction's maddubs,
 *    madd, add. Neither needs Q8_K's "never -128" (the sign trick did).
 * Either replaces the sign trick (|s|, sign(a, s) per row and output), whose psignb runs
 * on the multiplier pipes with maddubs and madd (Zen 3 here: 2 of the three per cycle). */
enum {
    KQ6_PREP = 128,   /* prepared super-blocks per pass, all of its tokens together: 32.5 KiB */
    KQ6_ROWS = 32,    /* rows per pass (the matmul op's prefill tile) */
    KQ6_CP = 8,       /* tokens per tile */
    KQ6_UMAX = 4,     /* tiles of up to this many tokens may take U, larger ones A (fewer ops) */
    KQ6_UBLOCKS = 48, /* ... if tokens x super-blocks per pass <= this (24 KiB of the two streams) */
};

/* Elements 128c + 32k .. +31 of R rows x C tokens, added to the integer lanes (lanes
 * 0..3 take scale 8c + 2k, lanes 4..7 scale 8c + 2k + 1). pa[t]: token t's prepared
 * block; corr[r]: A's row correction. */
KQ_INLINE void q6k_chunk(const int R, const int C, const int A, int c, int k, const block_q6_K *const *x,
                         const block_q8_K *const *q8, const __m256i *const *pa, __m256i sc[][8],
                         __m256i sumi[][KQ_CMAX], __m256i *corr) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    const __m256i k32 = _mm256_set1_epi8(32), k80 = _mm256_set1_epi8((char)0x80);
    __m256i u[KQ_RMAX];
    KQ_UNROLL for (int r = 0; r < R; r++) {
        const __m256i ql = _mm256_loadu_si256((const __m256i *)(x[r]->ql + 64 * c + 32 * (k & 1)));
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(x[r]->qh + 32 * c));
        const __m256i lo4 = _mm256_and_si256(k < 2 ? ql : _mm256_srli_epi16(ql, 4), m4);
        const __m256i hi2 = k == 0 ? _mm256_slli_epi16(qh, 4)
                          : k == 1 ? _mm256_slli_epi16(qh, 2)
                          : k == 2 ? qh : _mm256_srli_epi16(qh, 2);   /* bits 2k, 2k+1 -> 4, 5 */
        u[r] = _mm256_or_si256(lo4, _mm256_and_si256(hi2, m30));
        if (A) {   /* s = u - 32; corr += scale * 128 * (s_2i + s_2i+1) */
            u[r] = _mm256_sub_epi8(u[r], k32);
            corr[r] = _mm256_add_epi32(corr[r], _mm256_madd_epi16(_mm256_maddubs_epi16(k80, u[r]), sc[r][4 * c + k]));
            KQ_KEEP(corr[r]);
        }
    }
    KQ_UNROLL for (int t = 0; t < C; t++) {
        const __m256i pv = _mm256_load_si256(pa[t] + 4 * c + k);
        const __m256i q = A ? pv : _mm256_loadu_si256((const __m256i *)(q8[t]->qs + 128 * c + 32 * k));
        KQ_UNROLL for (int r = 0; r < R; r++) {
            const __m256i p = A ? _mm256_maddubs_epi16(pv, u[r])                       /* (a + 128) s */
                                : _mm256_sub_epi16(_mm256_maddubs_epi16(u[r], q), pv);   /* u a - 32 a */
            sumi[r][t] = _mm256_add_epi32(sumi[r][t], _mm256_madd_epi16(p, sc[r][4 * c + k]));
            KQ_KEEP(sumi[r][t]);
        }
    }
}

/* A pass's prepared activations, block-major (index b * C + t: token t of block b): v
 * the 8 x 32 elements (U: 32 * pair sums, int16; A: a + 128), d the scale (so A reads no
 * Q8_K line: 8 tokens' prepared blocks and scales stay within L1). */
typedef struct q6k_prep {
    __m256i v[KQ6_PREP][8];
    float   d[KQ6_PREP];
} q6k_prep;

/* R rows x C tokens over nbk super-blocks; w and a at the pass's first block, pp the
 * pass's prepared blocks, acc[r][t] the running float lanes. */
KQ_INLINE void q6k_tile(const int R, const int C, const int A, int64_t nbk, const uint8_t *w, size_t ws,
                        const uint8_t *a, size_t as, const q6k_prep *pp, __m256 acc[][KQ_CMAX]) {
    __m256 ac[KQ_RMAX][KQ_CMAX];
    KQ_UNROLL for (int r = 0; r < R; r++) KQ_UNROLL for (int t = 0; t < C; t++) ac[r][t] = acc[r][t];
    for (int64_t b = 0; b < nbk; b++) {
        const block_q6_K *x[KQ_RMAX];
        const block_q8_K *q8[KQ_CMAX];
        const __m256i *pa[KQ_CMAX];
        __m256i sc[KQ_RMAX][8], sumi[KQ_RMAX][KQ_CMAX], corr[KQ_RMAX];
        KQ_UNROLL for (int r = 0; r < R; r++) {
            x[r] = (const block_q6_K *)(w + (size_t)r * ws) + b;
            kq_prefetch((uintptr_t)x[r] + KQ_PF_BLOCKS * sizeof *x[r], sizeof *x[r]);
            kq_bcast16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[r]->scales)), sc[r]);
            corr[r] = _mm256_setzero_si256();
            KQ_UNROLL for (int t = 0; t < C; t++) sumi[r][t] = _mm256_setzero_si256();
        }
        KQ_UNROLL for (int t = 0; t < C; t++) {
            q8[t] = (const block_q8_K *)(a + (size_t)t * as) + b;
            pa[t] = pp->v[b * C + t];
        }
        if (C == 1) {   /* as in q4k_tile */
            KQ_UNROLL for (int c = 0; c < 2; c++) KQ_UNROLL for (int k = 0; k < 4; k++)
                q6k_chunk(R, C, A, c, k, x, q8, pa, sc, sumi, corr);
        } else {
            KQ_NO_UNROLL for (int c = 0; c < 2; c++) KQ_UNROLL for (int k = 0; k < 4; k++)
                q6k_chunk(R, C, A, c, k, x, q8, pa, sc, sumi, corr);
        }
        KQ_UNROLL for (int r = 0; r < R; r++) {
            const __m256 xd = _mm256_set1_ps(kq_h2f(x[r]->d));
            KQ_UNROLL for (int t = 0; t < C; t++) {   /* d = y.d * x.d */
                const __m256i s = A ? _mm256_sub_epi32(sumi[r][t], corr[r]) : sumi[r][t];
                const __m256 d = _mm256_mul_ps(_mm256_broadcast_ss(&pp->d[b * C + t]), xd);
                ac[r][t] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), ac[r][t]);
            }
        }
    }
    KQ_UNROLL for (int r = 0; r < R; r++) KQ_UNROLL for (int t = 0; t < C; t++) acc[r][t] = ac[r][t];
}

/* One pass of C tokens over nr rows, one by one in memory order (one stream for the
 * prefetcher): two rows per tile measured no faster, the multiplier pipes being the limit.
 * Q6K_PASS[A][C]: U for 1..KQ6_UMAX tokens, A for 2..KQ6_CP. */
#define KQ6_PASS(C, A, name)                                                                                  \
    static void name(int32_t nr, int64_t nbk, const uint8_t *w, size_t ws, const uint8_t *a, size_t as,       \
                     const q6k_prep *pp, __m256 acc[][KQ_CMAX]) {                                              \
        for (int32_t r = 0; r < nr; r++) q6k_tile(1, C, A, nbk, w + (size_t)r * ws, ws, a, as, pp, acc + r);   \
    }
KQ6_PASS(1, 0, q6k_pass_u1) KQ6_PASS(2, 0, q6k_pass_u2) KQ6_PASS(3, 0, q6k_pass_u3) KQ6_PASS(4, 0, q6k_pass_u4)
KQ6_PASS(2, 1, q6k_pass_a2) KQ6_PASS(3, 1, q6k_pass_a3) KQ6_PASS(4, 1, q6k_pass_a4) KQ6_PASS(5, 1, q6k_pass_a5)
KQ6_PASS(6, 1, q6k_pass_a6) KQ6_PASS(7, 1, q6k_pass_a7) KQ6_PASS(8, 1, q6k_pass_a8)
#undef KQ6_PASS
typedef void (*q6k_pass_fn)(int32_t nr, int64_t nbk, const uint8_t *w, size_t ws, const uint8_t *a, size_t as,
                            const q6k_prep *pp, __m256 acc[][KQ_CMAX]);
static const q6k_pass_fn Q6K_PASS[2][KQ6_CP + 1] = {
    [0] = { [1] = q6k_pass_u1, [2] = q6k_pass_u2, [3] = q6k_pass_u3, [4] = q6k_pass_u4 },
    [1] = { [2] = q6k_pass_a2, [3] = q6k_pass_a3, [4] = q6k_pass_a4, [5] = q6k_pass_a5,
            [6] = q6k_pass_a6, [7] = q6k_pass_a7, [8] = q6k_pass_a8 },
};

/* Tokens in near-equal groups of at most KQ6_CP (a small batch reads each weight block
 * once for all its tokens; the per-row work is shared by as many tokens as it can), rows in groups of KQ6_ROWS,
 * super-blocks in passes of KQ6_PREP / C (decode: up to 32768 inputs in one pass). Per
 * pass the tokens' blocks are prepared once (U: 32 * pair sums, int16; A: a + 128), then
 * every row of the group runs; its float lanes wait in acc between passes (each
 * output's order is unchanged). The prepared blocks sit block-major (all tokens of a
 * block together): token-major at a 4 KiB stride measured ~10% slower (L1 set conflicts). */
void q_avx2_gemm_q6_K_q8_K(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws, const void *a, size_t as,
                           float *y, int64_t ldy) {
    const int64_t nb = n / QK_K;
    const uint8_t *wb = w, *ab = a;
    q6k_prep pp;
    __m256 acc[KQ6_ROWS][KQ_CMAX];
    const __m256i k32 = _mm256_set1_epi8(32), k80 = _mm256_set1_epi8((char)0x80);
    for (int32_t t0 = 0, C; t0 < nc; t0 += C) {
        const int32_t left = nc - t0, groups = (left + KQ6_CP - 1) / KQ6_CP;
        C = (left + groups - 1) / groups;   /* near-equal groups: 12 tokens as 6 + 6, not 8 + 4 */
        /* super-blocks per pass: near-equal passes of at most KQ6_PREP / C (22 blocks as
         * 11 + 11 at 8 tokens, not 16 + 6: 22 KiB of prepared blocks, not 32, in L1) */
        const int64_t most = KQ6_PREP / C, n_pass = (nb + most - 1) / most;
        const int64_t pass = n_pass ? (nb + n_pass - 1) / n_pass : most;
        /* U reads two activation streams (quants and pair sums): while they fit L1 it
         * is the faster one; past that A, one stream (measured at 2048 / 5632 inputs). */
        const int A = C > KQ6_UMAX || (C > 1 && C * pass > KQ6_UBLOCKS);
        const uint8_t *at = ab + (size_t)t0 * as;
        for (int32_t r0 = 0; r0 < nr; r0 += KQ6_ROWS) {
            const int32_t R = nr - r0 < KQ6_ROWS ? nr - r0 : KQ6_ROWS;
            for (int32_t r = 0; r < R; r++)
                for (int t = 0; t < C; t++) acc[r][t] = _mm256_setzero_ps();
            for (int64_t b0 = 0; b0 < nb; b0 += pass) {
                const int64_t nbk = nb - b0 < pass ? nb - b0 : pass;
                for (int64_t b = 0; b < nbk; b++)
                    for (int t = 0; t < C; t++) {
                        const block_q8_K *yb = (const block_q8_K *)(at + (size_t)t * as) + b0 + b;
                        pp.d[b * C + t] = yb->d;
                        for (int j = 0; j < 8; j++) {
                            const __m256i q = _mm256_loadu_si256((const __m256i *)(yb->qs + 32 * j));
                            pp.v[b * C + t][j] = A ? _mm256_xor_si256(q, k80) : _mm256_maddubs_epi16(k32, q);
                        }
                    }
                Q6K_PASS[A][C](R, nbk, wb + (size_t)r0 * ws + (size_t)b0 * sizeof(block_q6_K), ws,
                            at + (size_t)b0 * sizeof(block_q8_K), as, &pp, acc);
            }
            for (int32_t r = 0; r < R; r++)
                for (int t = 0; t < C; t++) y[(t0 + t) * ldy + r0 + r] = kq_hsum8(acc[r][t]);
        }
    }
}

void q_avx2_vec_dot_q6_K_q8_K(int64_t n, float *s, const void *x, const void *y) {
    q_avx2_gemm_q6_K_q8_K(n, 1, 1, x, 0, y, 0, s, 1);
}

/* ---- Q5_K, Q3_K, Q2_K: one float chain per output ----
 * Their scalar bodies sum each super-block's integers (isum, and the mins' summs) and
 * then round sum += d*isum - dmin*summs step by step, so a tile keeps one float lane per
 * output: lane o = r*C + t of a vector (R*C <= 8). */

/* Q5_K: as Q4_K plus a fifth bit, bit j of qh[l] for element 32j + l. hb[r] holds qh
 * shifted right by 2c (in 16-bit lanes; bits 0 and 1 of each byte stay that byte's). */
KQ_INLINE void q5k_pair(const int R, const int C, int c, const block_q5_K *const *x, const block_q8_K *const *q8,
                        const __m256i *sm, __m256i *hb, __m256i sumi[][KQ_CMAX]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m10 = _mm256_set1_epi8(0x10);
    KQ_UNROLL for (int h = 0; h < 2; h++) {
        __m256i q[KQ_RMAX], sc[KQ_RMAX];
        KQ_UNROLL for (int r = 0; r < R; r++) {
            const __m256i raw = _mm256_loadu_si256((const __m256i *)(x[r]->qs + 32 * c));
            const __m256i nib = _mm256_and_si256(h ? _mm256_srli_epi16(raw, 4) : raw, m4);
            const __m256i bit = _mm256_and_si256(h ? _mm256_slli_epi16(hb[r], 3) : _mm256_slli_epi16(hb[r], 4), m10);
            q[r] = _mm256_or_si256(nib, bit);   /* 0..31 */
            sc[r] = kq_sc16(sm[r], 2 * c + h);
        }
        KQ_UNROLL for (int t = 0; t < C; t++) {
            const __m256i av = _mm256_loadu_si256((const __m256i *)(q8[t]->qs + 64 * c + 32 * h));
            KQ_UNROLL for (int r = 0; r < R; r++) {
                sumi[r][t] = _mm256_add_epi32(sumi[r][t], _mm256_madd_epi16(_mm256_maddubs_epi16(q[r], av), sc[r]));
                KQ_KEEP(sumi[r][t]);
            }
        }
    }
    KQ_UNROLL for (int r = 0; r < R; r++) hb[r] = _mm256_srli_epi16(hb[r], 2);
}

KQ_INLINE void q5k_tile(const int R, const int C, int64_t nb, const uint8_t *w, size_t ws, const uint8_t *a,
                        size_t as, float *y, int64_t ldy) {
    __m256 sum = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const block_q5_K *x[KQ_RMAX];
        const block_q8_K *q8[KQ_CMAX];
        __m256i sm[KQ_RMAX], hb[KQ_RMAX], sumi[KQ_RMAX][KQ_CMAX], mins[KQ_RMAX][KQ_CMAX];
        float xd[KQ_RMAX], xdmin[KQ_RMAX], yd[KQ_CMAX];
        KQ_UNROLL for (int r = 0; r < R; r++) {
            x[r] = (const block_q5_K *)(w + (size_t)r * ws) + b;
            kq_prefetch((uintptr_t)x[r] + KQ_PF_BLOCKS * sizeof *x[r], sizeof *x[r]);
            sm[r] = kq_scale_min8(x[r]->scales);
            hb[r] = _mm256_loadu_si256((const __m256i *)x[r]->qh);
            xd[r] = kq_h2f(x[r]->d);
            xdmin[r] = kq_h2f(x[r]->dmin);
            KQ_UNROLL for (int t = 0; t < C; t++) sumi[r][t] = _mm256_setzero_si256();
        }
        KQ_UNROLL for (int t = 0; t < C; t++) {
            q8[t] = (const block_q8_K *)(a + (size_t)t * as) + b;
            yd[t] = q8[t]->d;
        }
        if (C == 1) {   /* as in q4k_tile */
            KQ_UNROLL for (int c = 0; c < 4; c++) q5k_pair(R, C, c, x, q8, sm, hb, sumi);
        } else {
            KQ_NO_UNROLL for (int c = 0; c < 4; c++) q5k_pair(R, C, c, x, q8, sm, hb, sumi);
        }
        KQ_UNROLL for (int r = 0; r < R; r++) {   /* summs: m_j * (bsums[2j] + bsums[2j+1]) */
            const __m256i mdup = _mm256_shuffle_epi8(sm[r], _mm256_load_si256((const __m256i *)KQ_MIN_MASK));
            KQ_UNROLL for (int t = 0; t < C; t++)
                mins[r][t] = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)q8[t]->bsums), mdup);
        }
        __m256i isum, summs;
        kq_tile_totals(R, C, sumi, mins, &isum, &summs);
        sum = kq_chain(sum, kq_outer(R, C, xd, yd), isum, kq_outer(R, C, xdmin, yd), summs);
    }
    kq_store_lanes(R, C, sum, y, ldy);
}

void q_avx2_vec_dot_q5_K_q8_K(int64_t n, float *s, const void *x, const void *y) {
    q5k_tile(1, 1, n / QK_K, x, 0, y, 0, s, 1);
}

KQ_GEMM(q_avx2_gemm_q5_K_q8_K, q5k_tile, 1, 8)

/* Q2_K: scales[g] = scale (low nibble) | min (high nibble), all unsigned. */
KQ_INLINE void q2k_chunk(const int R, const int C, int c, int k, const block_q2_K *const *x,
                         const block_q8_K *const *q8, __m256i sc[][8], __m256i sumi[][KQ_CMAX]) {
    __m256i q[KQ_RMAX];
    KQ_UNROLL for (int r = 0; r < R; r++) q[r] = kq_2bit(x[r]->qs, c, k);
    KQ_UNROLL for (int t = 0; t < C; t++) {
        const __m256i av = _mm256_loadu_si256((const __m256i *)(q8[t]->qs + 128 * c + 32 * k));
        KQ_UNROLL for (int r = 0; r < R; r++) {
            sumi[r][t] = _mm256_add_epi32(sumi[r][t], _mm256_madd_epi16(_mm256_maddubs_epi16(q[r], av), sc[r][4 * c + k]));
            KQ_KEEP(sumi[r][t]);
        }
    }
}

KQ_INLINE void q2k_tile(const int R, const int C, int64_t nb, const uint8_t *w, size_t ws, const uint8_t *a,
                        size_t as, float *y, int64_t ldy) {
    __m256 sum = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const block_q2_K *x[KQ_RMAX];
        const block_q8_K *q8[KQ_CMAX];
        __m256i sc[KQ_RMAX][8], mn[KQ_RMAX], sumi[KQ_RMAX][KQ_CMAX], mins[KQ_RMAX][KQ_CMAX];
        float xd[KQ_RMAX], xdmin[KQ_RMAX], yd[KQ_CMAX];
        KQ_UNROLL for (int r = 0; r < R; r++) {
            x[r] = (const block_q2_K *)(w + (size_t)r * ws) + b;
            kq_prefetch((uintptr_t)x[r] + KQ_PF_BLOCKS * sizeof *x[r], sizeof *x[r]);
            const __m256i s16 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)x[r]->scales));
            kq_bcast16(_mm256_and_si256(s16, _mm256_set1_epi16(0x0F)), sc[r]);
            mn[r] = _mm256_srli_epi16(s16, 4);
            xd[r] = kq_h2f(x[r]->d);
            xdmin[r] = kq_h2f(x[r]->dmin);
            KQ_UNROLL for (int t = 0; t < C; t++) sumi[r][t] = _mm256_setzero_si256();
        }
        KQ_UNROLL for (int t = 0; t < C; t++) {
            q8[t] = (const block_q8_K *)(a + (size_t)t * as) + b;
            yd[t] = q8[t]->d;
        }
        if (C == 1) {   /* as in q4k_tile */
            KQ_UNROLL for (int c = 0; c < 2; c++) KQ_UNROLL for (int k = 0; k < 4; k++) q2k_chunk(R, C, c, k, x, q8, sc, sumi);
        } else {
            KQ_NO_UNROLL for (int c = 0; c < 2; c++) KQ_UNROLL for (int k = 0; k < 4; k++)
                q2k_chunk(R, C, c, k, x, q8, sc, sumi);
        }
        KQ_UNROLL for (int r = 0; r < R; r++) KQ_UNROLL for (int t = 0; t < C; t++)   /* summs: bsums[g] * min[g] */
            mins[r][t] = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)q8[t]->bsums), mn[r]);
        __m256i isum, summs;
        kq_tile_totals(R, C, sumi, mins, &isum, &summs);
        /* dall = y.d * x.d, dmin = y.d * x.dmin */
        sum = kq_chain(sum, kq_outer(R, C, xd, yd), isum, kq_outer(R, C, xdmin, yd), summs);
    }
    kq_store_lanes(R, C, sum, y, ldy);
}

void q_avx2_vec_dot_q2_K_q8_K(int64_t n, float *s, const void *x, const void *y) {
    q2k_tile(1, 1, n / QK_K, x, 0, y, 0, s, 1);
}

KQ_GEMM(q_avx2_gemm_q2_K_q8_K, q2k_tile, 1, 8)

/* u = the 2 low bits | high bit << 2 (0..7, unsigned for maddubs); the quant is u - 4,
 * and the 4 comes off once per super-block as 4 * scale * bsums. hb[r] holds hmask
 * shifted right by 4c (16-bit lanes; bits 0..3 of each byte stay that byte's). */
KQ_INLINE void q3k_chunk(const int R, const int C, int c, int k, const block_q3_K *const *x,
                         const block_q8_K *const *q8, __m256i sc[][8], const __m256i *hb, __m256i sumi[][KQ_CMAX]) {
    const __m256i m04 = _mm256_set1_epi8(4);
    __m256i q[KQ_RMAX];
    KQ_UNROLL for (int r = 0; r < R; r++) {
        const __m256i h = k == 0 ? _mm256_slli_epi16(hb[r], 2) : k == 1 ? _mm256_slli_epi16(hb[r], 1)
                        : k == 2 ? hb[r] : _mm256_srli_epi16(hb[r], 1);   /* bit k -> bit 2 */
        q[r] = _mm256_or_si256(kq_2bit(x[r]->qs, c, k), _mm256_and_si256(h, m04));
    }
    KQ_UNROLL for (int t = 0; t < C; t++) {
        const __m256i av = _mm256_loadu_si256((const __m256i *)(q8[t]->qs + 128 * c + 32 * k));
        KQ_UNROLL for (int r = 0; r < R; r++) {
            sumi[r][t] = _mm256_add_epi32(sumi[r][t], _mm256_madd_epi16(_mm256_maddubs_epi16(q[r], av), sc[r][4 * c + k]));
            KQ_KEEP(sumi[r][t]);
        }
    }
}

KQ_INLINE void q3k_tile(const int R, const int C, int64_t nb, const uint8_t *w, size_t ws, const uint8_t *a,
                        size_t as, float *y, int64_t ldy) {
    __m256 sum = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const block_q3_K *x[KQ_RMAX];
        const block_q8_K *q8[KQ_CMAX];
        __m256i sc[KQ_RMAX][8], s16[KQ_RMAX], hb[KQ_RMAX], sumi[KQ_RMAX][KQ_CMAX];
        float xd[KQ_RMAX], yd[KQ_CMAX];
        KQ_UNROLL for (int r = 0; r < R; r++) {
            x[r] = (const block_q3_K *)(w + (size_t)r * ws) + b;
            kq_prefetch((uintptr_t)x[r] + KQ_PF_BLOCKS * sizeof *x[r], sizeof *x[r]);
            s16[r] = q3k_scales(x[r]->scales);
            kq_bcast16(s16[r], sc[r]);
            hb[r] = _mm256_loadu_si256((const __m256i *)x[r]->hmask);
            xd[r] = kq_h2f(x[r]->d);
        }
        KQ_UNROLL for (int t = 0; t < C; t++) {
            q8[t] = (const block_q8_K *)(a + (size_t)t * as) + b;
            yd[t] = q8[t]->d;
            /* the -4 of every quant: -4 * sum over groups of scale * bsums */
            const __m256i bs = _mm256_loadu_si256((const __m256i *)q8[t]->bsums);
            KQ_UNROLL for (int r = 0; r < R; r++) sumi[r][t] = _mm256_slli_epi32(_mm256_madd_epi16(bs, s16[r]), 2);
            KQ_UNROLL for (int r = 0; r < R; r++) sumi[r][t] = _mm256_sub_epi32(_mm256_setzero_si256(), sumi[r][t]);
        }
        if (C == 1) {   /* as in q4k_tile */
            KQ_UNROLL for (int c = 0; c < 2; c++) {
                KQ_UNROLL for (int k = 0; k < 4; k++) q3k_chunk(R, C, c, k, x, q8, sc, hb, sumi);
                KQ_UNROLL for (int r = 0; r < R; r++) hb[r] = _mm256_srli_epi16(hb[r], 4);
            }
        } else {
            KQ_NO_UNROLL for (int c = 0; c < 2; c++) {
                KQ_UNROLL for (int k = 0; k < 4; k++) q3k_chunk(R, C, c, k, x, q8, sc, hb, sumi);
                KQ_UNROLL for (int r = 0; r < R; r++) hb[r] = _mm256_srli_epi16(hb[r], 4);
            }
        }
        __m256i isum, none;
        kq_tile_totals(R, C, sumi, NULL, &isum, &none);
        /* sum += (x.d * y.d) * isum */
        sum = _mm256_add_ps(sum, _mm256_mul_ps(kq_outer(R, C, xd, yd), _mm256_cvtepi32_ps(isum)));
    }
    kq_store_lanes(R, C, sum, y, ldy);
}

void q_avx2_vec_dot_q3_K_q8_K(int64_t n, float *s, const void *x, const void *y) {
    q3k_tile(1, 1, n / QK_K, x, 0, y, 0, s, 1);
}

KQ_GEMM(q_avx2_gemm_q3_K_q8_K, q3k_tile, 1, 8)

#include "cpu/avx2_end.h"
#endif
