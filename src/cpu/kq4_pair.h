/* kq4_pair.h — the Q4_K x Q8_K gemm for batches (2+ tokens), as one body that each kernel
 * set compiles in its own target region: cpu/kern_avx2_kq.c (AVX2) and
 * cpu/kern_avx512_kq.c (AVX-512 VL + VNNI). Bit-identical to the scalar body of
 * cpu/vec_dot_impl.h in both.
 *
 * The includer defines KQ4P_DOT(s, p, sc): int32 lanes s += madd(p, sc), with s pinned to
 * its register. AVX2 spends a madd and an add; AVX-512 one vpdpwssd on 256-bit registers.
 * Both are exact (integers). Why 256 bits in the AVX-512 set: Intel's server cores run
 * 512-bit vector work on two ports instead of three, and this loop is bound by its
 * vector instructions. Measured on a Xeon with AMX (docs/performance.md, session 7): 1.27x
 * the 512-bit tile it replaced, and 1.11x the AVX2 body (512 tokens, 1 thread).
 *
 * Needs cpu/kq_simd.h first. Static: each includer gets its own q4kp_gemm. Owns no
 * memory; 32 KiB of stack per call (prepared activations, carried float lanes). */
#ifndef QUARREL_CPU_KQ4_PAIR_H
#define QUARREL_CPU_KQ4_PAIR_H

/* ---- Q4_K gemm (2+ tokens): two sub-blocks per madd ----
 * The row-major tile above spends two multiplies per 32 elements and output (maddubs,
 * then madd with the scale). Here sub-blocks j = 2c and j' = 2c+1 share one madd: the
 * weights and activations are rearranged so that in int32 position p the low int16
 * carries only j's products and the high one only j''s, each with lane p's elements
 * (4p..4p+3 of its 32) and nothing else:
 *   A: dword p = [j:4p, j:4p+1, j':4p, j':4p+1]   B: dword p = [j:4p+2, j:4p+3, j':4p+2, j':4p+3]
 * maddubs(A_w, A_a) + maddubs(B_w, B_a) (int16: |.| <= 4 * 15 * 128 = 7680) then one madd
 * with [sc_j, sc_j'] per dword gives int32 lane p = sc_j * (lane p of j) + sc_j' * (lane
 * p of j'): the scalar's lane sums, exact, in another order. Per 64 elements and output:
 * 2 maddubs, 1 add, 1 madd, 1 add (3 multiplies, not 4). The weight side is rearranged
 * per row and pair (7 ops, shared by the C tokens), the activation side once per call
 * into a stack buffer (q4kp_prep, with the min lanes' bsums pair sums), shared by the
 * rows. The float steps are the row tile's (q4k_tile in cpu/kern_avx2_kq.c), one for one. */
enum {
    KQ4_PREP = 8,    /* super-blocks per prepared pass: 20 KiB of the stack buffer, with 16 KiB of L1 left */
    KQ4_ROWS = 32,   /* rows per pass (the matmul op's prefill tile); st carries their float lanes */
    KQ4_CP = 8,      /* tokens per tile */
    KQ4_PSTR = 9 * KQ4_CP + KQ4_CP,   /* prepared vectors per super-block: A, B per pair and token, bsums pairs, y.d pairs, y.d */
    KQ4_ST = 8 * (KQ4_CP + KQ4_CP / 2),   /* carried floats per row: acc lanes per token, then min lanes per pair */
};

/* pshufb mask: int16 positions 2p, 2p+1 take scale bytes 2c, 2c+1 (KQ_SCP_MASK[c]). */
#define KQ_P4(c) 2 * (c), 0x80, 2 * (c) + 1, 0x80
#define KQ_P32(c) KQ_P4(c), KQ_P4(c), KQ_P4(c), KQ_P4(c), KQ_P4(c), KQ_P4(c), KQ_P4(c), KQ_P4(c)
static const uint8_t KQ_SCP_MASK[4][32] __attribute__((aligned(32))) = { { KQ_P32(0) }, { KQ_P32(1) }, { KQ_P32(2) }, { KQ_P32(3) } };

/* Tokens t0.. (C of them) of super-blocks k0..k0+kn-1, prepared: per super-block, token t's
 * A, B of pair c at 8t + 2c, 8t + 2c + 1; per token pair p (t0 = 2p, t1 = 2p+1, or 2p
 * again past C) the bsums pair sums as kq_min_lanes2 gives them at 8C + p, and y.d in that
 * order ([t0, t0, t1, t1] in each half) at 8C + (C+1)/2 + p; token t's y.d in all lanes at
 * 8C + 2((C+1)/2) + t. Per call, so every row of the pass shares it. */
static void q4kp_prep(int C, const uint8_t *a, size_t as, int64_t k0, int64_t kn, __m256i *pa) {
    for (int64_t b = 0; b < kn; b++, pa += KQ4_PSTR) {
        for (int t = 0; t < C; t++) {
            const block_q8_K *q = (const block_q8_K *)(a + (size_t)t * as) + k0 + b;
            KQ_UNROLL for (int c = 0; c < 4; c++) {
                const __m256i x = _mm256_loadu_si256((const __m256i *)(q->qs + 64 * c));
                const __m256i z = _mm256_loadu_si256((const __m256i *)(q->qs + 64 * c + 32));
                pa[8 * t + 2 * c] = _mm256_blend_epi16(x, _mm256_slli_epi32(z, 16), 0xAA);
                pa[8 * t + 2 * c + 1] = _mm256_blend_epi16(_mm256_srli_epi32(x, 16), z, 0xAA);
            }
        }
        for (int p = 0; 2 * p < C; p++) {
            const int t1 = 2 * p + 1 < C ? 2 * p + 1 : 2 * p;
            const block_q8_K *q0 = (const block_q8_K *)(a + (size_t)(2 * p) * as) + k0 + b;
            const block_q8_K *q1 = (const block_q8_K *)(a + (size_t)t1 * as) + k0 + b;
            pa[8 * C + p] = _mm256_hadd_epi16(_mm256_loadu_si256((const __m256i *)q0->bsums),
                                              _mm256_loadu_si256((const __m256i *)q1->bsums));
            pa[8 * C + (C + 1) / 2 + p] = _mm256_castps_si256(_mm256_setr_ps(q0->d, q0->d, q1->d, q1->d, q0->d, q0->d, q1->d, q1->d));
        }
        for (int t = 0; t < C; t++)
            pa[8 * C + 2 * ((C + 1) / 2) + t] = _mm256_castps_si256(_mm256_set1_ps(((const block_q8_K *)(a + (size_t)t * as) + k0 + b)->d));
    }
}

/* R rows x C tokens over kn super-blocks from k0. st: each row's carried float lanes
 * (KQ4_ST floats per row): zero when first, kept when not last, summed into y when last. */
KQ_INLINE void q4kp_tile(const int R, const int C, int64_t k0, int64_t kn, const uint8_t *w, size_t ws,
                         const __m256i *pa, float *st, int first, int last, float *y, int64_t ldy) {
    enum { CP = (KQ_CMAX + 1) / 2 };
    __m256 acc[KQ_RMAX][KQ_CMAX];
    __m256 accm[KQ_RMAX][CP];   /* min lanes of tokens 2p and 2p+1 (kq_min_lanes2 order) */
    KQ_UNROLL for (int r = 0; r < R; r++) {
        KQ_UNROLL for (int t = 0; t < C; t++) acc[r][t] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(st + r * KQ4_ST + 8 * t);
        KQ_UNROLL for (int p = 0; p < (C + 1) / 2; p++)
            accm[r][p] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(st + r * KQ4_ST + 8 * (KQ4_CP + p));
    }
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t b = 0; b < kn; b++, pa += KQ4_PSTR) {
        const block_q4_K *x[KQ_RMAX];
        __m256i sm[KQ_RMAX], sumi[KQ_RMAX][KQ_CMAX];
        KQ_UNROLL for (int r = 0; r < R; r++) {
            x[r] = (const block_q4_K *)(w + (size_t)r * ws) + k0 + b;
            /* the same block two tiles of rows on: a pass reads each row's kn blocks, then
             * jumps a row stride, which the hardware prefetcher does not follow (measured at
             * 5632 inputs: +5-10 % over KQ_PF_BLOCKS ahead in the row); past the end a no-op */
            kq_prefetch((uintptr_t)x[r] + 2 * R * ws, sizeof *x[r]);
            sm[r] = kq_scale_min8(x[r]->scales);
            KQ_UNROLL for (int t = 0; t < C; t++) sumi[r][t] = _mm256_setzero_si256();
        }
        /* unrolled (unlike q4k_tile's prefill): KQ4P_DOT holds each sum in its register,
         * and the whole super-block in view schedules better (measured +2-10 %) */
        KQ_UNROLL for (int c = 0; c < 4; c++) {
            __m256i qa[KQ_RMAX], qb[KQ_RMAX], sc[KQ_RMAX];
            KQ_UNROLL for (int r = 0; r < R; r++) {
                const __m256i raw = _mm256_loadu_si256((const __m256i *)(x[r]->qs + 32 * c));
                qa[r] = _mm256_and_si256(_mm256_blend_epi16(raw, _mm256_slli_epi32(raw, 12), 0xAA), m4);
                qb[r] = _mm256_and_si256(_mm256_blend_epi16(_mm256_srli_epi32(raw, 16), _mm256_srli_epi32(raw, 4), 0xAA), m4);
                sc[r] = _mm256_shuffle_epi8(sm[r], _mm256_load_si256((const __m256i *)KQ_SCP_MASK[c]));
            }
            KQ_UNROLL for (int t = 0; t < C; t++) {
                const __m256i aa = pa[8 * t + 2 * c], ab = pa[8 * t + 2 * c + 1];
                KQ_UNROLL for (int r = 0; r < R; r++) {
                    const __m256i p16 = _mm256_add_epi16(_mm256_maddubs_epi16(qa[r], aa), _mm256_maddubs_epi16(qb[r], ab));
                    KQ4P_DOT(sumi[r][t], p16, sc[r]);
                }
            }
        }
        const __m256 *yd = (const __m256 *)(pa + 8 * C + 2 * ((C + 1) / 2));   /* y.d by token */
        const __m256 *ydp = (const __m256 *)(pa + 8 * C + (C + 1) / 2);      /* y.d of 2p, 2p, 2p+1, 2p+1 in each half */
        KQ_UNROLL for (int r = 0; r < R; r++) {
            const __m256 xd = _mm256_set1_ps(kq_h2f(x[r]->d)), xdmin = _mm256_set1_ps(-kq_h2f(x[r]->dmin));
            const __m256i mm = _mm256_shuffle_epi8(sm[r], _mm256_load_si256((const __m256i *)KQ_MIN4_MASK));
            KQ_UNROLL for (int t = 0; t < C; t++)   /* d = y.d * x.d, one rounding, as the scalar */
                acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(yd[t], xd), _mm256_cvtepi32_ps(sumi[r][t]), acc[r][t]);
            KQ_UNROLL for (int p = 0; p < (C + 1) / 2; p++) {
                const __m256 dmin = _mm256_mul_ps(ydp[p], xdmin);
                const __m256i prod = _mm256_madd_epi16(pa[8 * C + p], mm);
                accm[r][p] = _mm256_fmadd_ps(dmin, _mm256_cvtepi32_ps(prod), accm[r][p]);
            }
        }
    }
    if (!last) {
        KQ_UNROLL for (int r = 0; r < R; r++) {
            KQ_UNROLL for (int t = 0; t < C; t++) _mm256_storeu_ps(st + r * KQ4_ST + 8 * t, acc[r][t]);
            KQ_UNROLL for (int p = 0; p < (C + 1) / 2; p++) _mm256_storeu_ps(st + r * KQ4_ST + 8 * (KQ4_CP + p), accm[r][p]);
        }
        return;
    }
    KQ_UNROLL for (int r = 0; r < R; r++) KQ_UNROLL for (int t = 0; t < C; t++) {
        y[t * ldy + r] = kq_hsum8(acc[r][t]) + kq_min4_sum(accm[r][t / 2], t % 2);
    }
}

/* All rows of one prepared pass, in 1-row tiles of C tokens (the tile body takes R rows:
 * 2 x 4 measured ~10 % slower than 1 x 8 on the Zen 3 development machine, and on the Xeon
 * of session 7 2 x 8 under AVX-512 was no steadier gain). */
#define KQ4_ROWS_C(C)                                                                                    \
    do {                                                                                                 \
        for (int32_t r = 0; r < rn; r++)                                                                 \
            q4kp_tile(1, C, k0, kn, wr + (size_t)r * ws, ws, pa, st + r * KQ4_ST, first, last, yt + r, ldy); \
    } while (0)

static void q4kp_gemm(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws, const void *a, size_t as,
                      float *y, int64_t ldy) {
    const int64_t nb = n / QK_K;
    const uint8_t *wb = w, *ab = a;
    __m256i pa[KQ4_PREP * KQ4_PSTR];
    float st[KQ4_ROWS * KQ4_ST];
    for (int32_t r0 = 0; r0 < nr; r0 += KQ4_ROWS) {
        const int32_t rn = nr - r0 < KQ4_ROWS ? nr - r0 : KQ4_ROWS;
        const uint8_t *wr = wb + (size_t)r0 * ws;
        for (int32_t t0 = 0; t0 < nc; t0 += KQ4_CP) {
            const int C = nc - t0 < KQ4_CP ? nc - t0 : KQ4_CP;
            const uint8_t *at = ab + (size_t)t0 * as;
            float *yt = y + t0 * ldy + r0;
            for (int64_t k0 = 0; k0 < nb; k0 += KQ4_PREP) {
                const int64_t kn = nb - k0 < KQ4_PREP ? nb - k0 : KQ4_PREP;
                const int first = k0 == 0, last = k0 + kn == nb;
                q4kp_prep(C, at, as, k0, kn, pa);
                if (C == KQ4_CP) KQ4_ROWS_C(KQ4_CP);
                else if (C == 1) KQ4_ROWS_C(1);
                else if (C == 2) KQ4_ROWS_C(2);
                else if (C == 3) KQ4_ROWS_C(3);
                else if (C == 4) KQ4_ROWS_C((KQ4_CP > 4 ? 4 : 1));
                else if (C == 5) KQ4_ROWS_C((KQ4_CP > 5 ? 5 : 1));
                else if (C == 6) KQ4_ROWS_C((KQ4_CP > 6 ? 6 : 1));
                else if (C == 7) KQ4_ROWS_C((KQ4_CP > 7 ? 7 : 1));
            }
        }
    }
}

#endif
