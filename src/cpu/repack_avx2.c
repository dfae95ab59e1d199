/* repack_avx2.c — AVX2+FMA+F16C tiles over x8 weights (layouts in cpu/repack.h) times
 * Q8_0 activations: Q4_0 and Q8_0. Each output is bit-identical to the scalar body in
 * cpu/vec_dot_impl.h (tests/test_matmul.c checks every shape class):
 * - Q4_0: one float accumulator per output, acc = fma(sumi, dy * dx, acc) block after
 *   block. Lane r of every vector is row r of the group, so one fma serves 8 outputs.
 *   sumi = sum(nibble * a) - 8 * sum(a): the nibbles (0..15, unsigned) are maddubs'
 *   first operand against 4 broadcast activation bytes; the 8 maddubs of a block add up
 *   in int16 (8 pairs of 15 x 128 <= 30720, no saturation); 8 * sum(a) is computed once
 *   per token and block, shared by every row.
 * - Q8_0: 8 float lanes per output (lane L = elements 4L..4L+3 of each block), fma(d,
 *   lane, acc[L]) per block, x86_hsum8 at the end. Vector q of a group block holds lane
 *   q of 8 rows, so acc[q] lane r is row r's lane q: 8 accumulators per 8 outputs, and
 *   x86_hsum8 becomes 7 vector adds over them. |w| x sign(a, w): exact while activations
 *   avoid -128, which the activation quantizer never produces.
 * Work order: decode (one token) streams each group's contiguous run once; several
 * tokens take each block of weights once and run every token over it (accumulators in
 * a stack table), the tokens' per-block terms prepared per K chunk.
 *
 * Memory: stack scratch only (< 48 KiB per call); nothing allocated or owned. Compiled
 * for AVX2+FMA+F16C by the target region; cpu/repack.c lists these only for the AVX2
 * set, which cpu/matmul.c picks only when the CPU has it. Empty on other architectures. */
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/base.h"
#include "cpu/repack.h"
#include "tensor/quants/blocks.h"

#if defined(__x86_64__)
#include "cpu/avx2_begin.h"

#define X8_INLINE static inline __attribute__((always_inline))
#if defined(__clang__)
#define X8_UNROLL _Pragma("clang loop unroll(full)")
#else
#define X8_UNROLL _Pragma("GCC unroll 8")
#endif
/* Empty asm that claims to change its operands: keeps a running int16 sum in a register
 * chain instead of a reassociated tree (which spills). Generates no instruction. */
#define X8_PIN4(a, b, c, d) __asm__("" : "+x"(a), "+x"(b), "+x"(c), "+x"(d))

enum {
    X8_Q4_BLOCK = 144,   /* bytes of a Q4_0 group block: 8 scales + 128 bytes of nibbles */
    X8_Q8_BLOCK = 272,   /* bytes of a Q8_0 group block: 8 scales + 256 bytes of quants */
    X8_TOK = 64,         /* tokens per pass (the matmul op's tile width) */
    X8_PG = 4,           /* row groups per pass (32 rows: the matmul op's prefill tile) */
    X8_KB = 32,          /* Q8_0 batches: blocks per K chunk (|w| table 8 KiB) */
    X8_KB4 = 16,         /* Q4_0 batches: blocks per K chunk (token table 64 x 16 x 32 B = 32 KiB) */
};

X8_INLINE int32_t x8_load_i32(const void *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

X8_INLINE __m256i x8_bcast4(const int8_t *p) { return _mm256_set1_epi32(x8_load_i32(p)); }

/* The 8 row scales at the start of a group block, as floats. */
X8_INLINE __m256 x8_scales(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

/* Stores lanes 0..7 of v to y (rows of one group). */
X8_INLINE void x8_store(float *y, __m256 v) { _mm256_storeu_ps(y, v); }

/* Decode prefetch: a decode tile (16 rows) is one contiguous run; with the pool handing
 * out tiles in order, the run after next is this thread's next one when two threads
 * alternate. Each block step prefetches the same offset two tiles ahead into L2, in
 * address order; addresses past the matrix are only prefetched, never read. */
typedef struct x8_pf {
    uintptr_t p, end;
} x8_pf;

X8_INLINE void x8_pf_to(x8_pf *f, uintptr_t upto) {
    const uintptr_t e = upto < f->end ? upto : f->end;
    for (; f->p < e; f->p += 64) _mm_prefetch((const char *)f->p, _MM_HINT_T1);
}

/* A small batch (up to 16 tokens) still streams W from memory much as decode does: the
 * same prefetch, stepped where each block is first unpacked. Larger batches are
 * compute-bound: an empty range. */
X8_INLINE x8_pf x8_pf_small(const uint8_t *w, size_t tile, int32_t nc) {
    const uintptr_t p = (uintptr_t)w + 2 * tile;
    return (x8_pf){ p, nc <= 16 ? p + tile : p };
}

/* ---- Q4_0 ---- */

/* 8 * sum of a block's 32 activations (exact), in every lane. */
X8_INLINE __m256i q4_0_sum8(const int8_t *qs) {
    const __m256i av = _mm256_loadu_si256((const __m256i *)qs);
    __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(8), av), _mm256_set1_epi16(1));
    s = _mm256_add_epi32(s, _mm256_permute2x128_si256(s, s, 0x01));
    s = _mm256_add_epi32(s, _mm256_shuffle_epi32(s, 0x4E));
    return _mm256_add_epi32(s, _mm256_shuffle_epi32(s, 0xB1));
}

/* The nibbles of a group block p: lo[j] = elements 4j..4j+3, hi[j] = 16+4j.. of 8 rows. */
X8_INLINE void q4_0_unpack(const uint8_t *p, __m256i lo[4], __m256i hi[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int j = 0; j < 4; j++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * j));
        lo[j] = _mm256_and_si256(v, m4);
        hi[j] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    }
}

/* sum(nibble * a) of 8 rows over one block with activation quants qs (int32 lanes). */
X8_INLINE __m256i q4_0_dot(const __m256i lo[4], const __m256i hi[4], const int8_t *qs) {
    __m256i s = _mm256_maddubs_epi16(lo[0], x8_bcast4(qs));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(hi[0], x8_bcast4(qs + 16)));
    for (int j = 1; j < 4; j++) {
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(lo[j], x8_bcast4(qs + 4 * j)));
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(hi[j], x8_bcast4(qs + 16 + 4 * j)));
    }
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
}

/* Batches: per token and block of one K chunk, the quants + 128 (maddubs' unsigned
 * operand) and the scale dy. */
typedef struct q4_0_x8_prep {
    __m256i ax[X8_TOK][X8_KB4];
    float   dy[X8_TOK][X8_KB4];
} q4_0_x8_prep;

static void q4_0_x8_prep_rows(q4_0_x8_prep *pp, const uint8_t *a, size_t as, int nt, int64_t k0, int nbk) {
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    for (int t = 0; t < nt; t++) {
        const block_q8_0 *yb = (const block_q8_0 *)(const void *)(a + (size_t)t * as) + k0;
        for (int b = 0; b < nbk; b++) {
            pp->ax[t][b] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)yb[b].qs), bias);
            pp->dy[t][b] = _cvtsh_ss(yb[b].d);
        }
    }
}

/* Decode: ng groups from w (group stride gs bytes) times one activation row y; out[8g + r].
 * Each group's chunk of blocks is one contiguous run; the token terms are shared. */
static void q4_0_x8_tok1(int64_t nb, const uint8_t *w, size_t gs, int ng, size_t tile, const block_q8_0 *y,
                         float *out) {
    enum { KB = 256 };   /* blocks per chunk of token terms */
    __m256 acc[X8_PG];
    float dy[KB];
    int32_t s8[KB];
    x8_pf pf = { (uintptr_t)w + 2 * tile, (uintptr_t)w + 3 * tile };
    for (int g0 = 0; g0 < ng; g0 += X8_PG) {
        const int ngp = Q_MIN(X8_PG, ng - g0);
        for (int g = 0; g < ngp; g++) acc[g] = _mm256_setzero_ps();
        for (int64_t k0 = 0; k0 < nb; k0 += KB) {
            const int nbk = (int)Q_MIN(KB, nb - k0);
            for (int b = 0; b < nbk; b++) {
                dy[b] = _cvtsh_ss(y[k0 + b].d);
                s8[b] = _mm256_cvtsi256_si32(q4_0_sum8(y[k0 + b].qs));
            }
            for (int g = 0; g < ngp; g++) {
                const uint8_t *p = w + (size_t)(g0 + g) * gs + (size_t)k0 * X8_Q4_BLOCK;
                __m256 c = acc[g];
                for (int b = 0; b < nbk; b++, p += X8_Q4_BLOCK) {
                    x8_pf_to(&pf, (uintptr_t)p + 2 * tile + X8_Q4_BLOCK);
                    __m256i lo[4], hi[4];
                    q4_0_unpack(p, lo, hi);
                    const __m256i sumi = _mm256_sub_epi32(q4_0_dot(lo, hi, y[k0 + b].qs), _mm256_set1_epi32(s8[b]));
                    const __m256 d = _mm256_mul_ps(_mm256_set1_ps(dy[b]), x8_scales(p));
                    c = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), d, c);
                }
                acc[g] = c;
            }
        }
        for (int g = 0; g < ngp; g++) x8_store(out + 8 * (g0 + g), acc[g]);
    }
}

/* One group's chunk of blocks unpacked for reuse by every token: u[b][j] = nibbles - 8
 * (signed) of elements 4j..4j+3 (j < 4) or 16+4(j-4).. (j >= 4) of the 8 rows; corr[b]
 * lane r = 128 * sum of row r's nibbles - 8 (what the + 128 on the activations adds);
 * dx the scales. */
typedef struct q4_0_x8_unp {
    __m256i u[X8_KB4][8];
    __m256i corr[X8_KB4];
    __m256  dx[X8_KB4];
} q4_0_x8_unp;

X8_INLINE void q4_0_x8_unpack_chunk(q4_0_x8_unp *up, const uint8_t *p, int nbk, x8_pf *pf, size_t pf_ahead) {
    const __m256i eights = _mm256_set1_epi8(8), ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int b = 0; b < nbk; b++, p += X8_Q4_BLOCK) {
        x8_pf_to(pf, (uintptr_t)p + pf_ahead + X8_Q4_BLOCK);
        __m256i *u = up->u[b];
        q4_0_unpack(p, u, u + 4);
        for (int j = 0; j < 8; j++) u[j] = _mm256_sub_epi8(u[j], eights);
        __m256i z = u[0];   /* int8 sums of 8 values in -8..7 stay in -64..56 */
        for (int j = 1; j < 8; j++) z = _mm256_add_epi8(z, u[j]);
        /* maddubs(1, z) adds signed bytes pairwise: exact */
        up->corr[b] = _mm256_slli_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(ones8, z), ones16), 7);
        up->dx[b] = x8_scales(p);
    }
}

/* C <= 4 tokens (prep rows t..t+C-1) x 8 rows over the chunk; acc[0..C). C is a constant
 * at each call: the loops unroll and the sums stay in registers. */
X8_INLINE void q4_0_x8_tile(const int C, int nbk, const q4_0_x8_unp *up, const q4_0_x8_prep *pp, int t, __m256 *acc) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 c[4];
    X8_UNROLL for (int i = 0; i < C; i++) c[i] = acc[i];
    for (int b = 0; b < nbk; b++) {
        __m256i s[4];
        X8_UNROLL for (int i = 0; i < 4; i++) s[i] = _mm256_setzero_si256();
        /* int16: 8 pairs of 1..255 x -8..7 per lane, within -32640..28560 */
        X8_UNROLL for (int j = 0; j < 8; j++) {
            const __m256i wq = _mm256_load_si256(&up->u[b][j]);
            const int off = j < 4 ? 4 * j : 16 + 4 * (j - 4);   /* quants 4j.. of the block */
            X8_UNROLL for (int i = 0; i < C; i++)
                s[i] = _mm256_add_epi16(s[i], _mm256_maddubs_epi16(x8_bcast4((const int8_t *)&pp->ax[t + i][b] + off), wq));
            X8_PIN4(s[0], s[1], s[2], s[3]);
        }
        const __m256i corr = _mm256_load_si256(&up->corr[b]);
        const __m256 dx = up->dx[b];
        X8_UNROLL for (int i = 0; i < C; i++) {
            const __m256i sumi = _mm256_sub_epi32(_mm256_madd_epi16(s[i], ones), corr);
            c[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(_mm256_set1_ps(pp->dy[t + i][b]), dx), c[i]);
        }
    }
    X8_UNROLL for (int i = 0; i < C; i++) acc[i] = c[i];
}

void q_avx2_gemm_x8_q4_0_q8_0(int64_t n, int32_t nr, int32_t nc, const void *vw, size_t ws, const void *va,
                              size_t as, float *y, int64_t ldy) {
    Q_ASSERT(nr % 8 == 0);
    const int64_t nb = n / QK4_0;
    const uint8_t *w = vw, *a = va;
    const size_t gs = 8 * ws;   /* bytes per row group */
    if (nc == 1) {
        q4_0_x8_tok1(nb, w, gs, nr / 8, (size_t)nr * ws, (const block_q8_0 *)va, y);
        return;
    }
    q4_0_x8_prep pp;
    q4_0_x8_unp up;
    __m256 acc[X8_PG][X8_TOK];
    const size_t tile = (size_t)nr * ws;
    x8_pf pf = x8_pf_small(w, tile, nc);
    for (int32_t c0 = 0; c0 < nc; c0 += X8_TOK) {
        const int ncc = Q_MIN(X8_TOK, nc - c0);
        for (int32_t g0 = 0; g0 < nr / 8; g0 += X8_PG) {
            const int ng = Q_MIN(X8_PG, nr / 8 - g0);
            for (int g = 0; g < ng; g++)
                for (int t = 0; t < ncc; t++) acc[g][t] = _mm256_setzero_ps();
            for (int64_t k0 = 0; k0 < nb; k0 += X8_KB4) {
                const int nbk = (int)Q_MIN(X8_KB4, nb - k0);
                q4_0_x8_prep_rows(&pp, a + (size_t)c0 * as, as, ncc, k0, nbk);
                for (int g = 0; g < ng; g++) {
                    q4_0_x8_unpack_chunk(&up, w + (size_t)(g0 + g) * gs + (size_t)k0 * X8_Q4_BLOCK, nbk, &pf, 2 * tile);
                    int t = 0;
                    for (; t + 4 <= ncc; t += 4) q4_0_x8_tile(4, nbk, &up, &pp, t, &acc[g][t]);
                    /* the last 1..3 tokens as one tile of that many: nothing padded is computed */
                    if (ncc - t == 3) q4_0_x8_tile(3, nbk, &up, &pp, t, &acc[g][t]);
                    if (ncc - t == 2) q4_0_x8_tile(2, nbk, &up, &pp, t, &acc[g][t]);
                    if (ncc - t == 1) q4_0_x8_tile(1, nbk, &up, &pp, t, &acc[g][t]);
                }
            }
            for (int g = 0; g < ng; g++)
                for (int t = 0; t < ncc; t++) x8_store(y + (c0 + t) * ldy + 8 * (g0 + g), acc[g][t]);
        }
    }
}

/* ---- Q8_0 ---- */

/* acc[q] += d * (lane q of 8 rows) over one group block p with activation quants qs. */
X8_INLINE void q8_0_block(const uint8_t *p, const int8_t *qs, __m256 d, __m256 acc[8]) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int q = 0; q < 8; q++) {
        const __m256i wv = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * q));
        const __m256i pr = _mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(x8_bcast4(qs + 4 * q), wv));
        acc[q] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_madd_epi16(pr, ones)), acc[q]);
    }
}

/* x86_hsum8 of each row: ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)), lane r = row r. */
X8_INLINE __m256 q8_0_hsum(const __m256 acc[8]) {
    const __m256 r0 = _mm256_add_ps(acc[4], acc[0]), r1 = _mm256_add_ps(acc[5], acc[1]);
    const __m256 r2 = _mm256_add_ps(acc[6], acc[2]), r3 = _mm256_add_ps(acc[7], acc[3]);
    return _mm256_add_ps(_mm256_add_ps(r0, r2), _mm256_add_ps(r1, r3));
}

/* One group's chunk of blocks for reuse by every token: aw[b][q] = |w| of vector q, dx
 * the scales. */
typedef struct q8_0_x8_unp {
    __m256i aw[X8_KB][8];
    __m256  dx[X8_KB];
} q8_0_x8_unp;

/* One token (activation blocks yb[0..nbk)) x 8 rows over a chunk starting at group block
 * p: acc[0..8) the 8 lane accumulators. */
X8_INLINE void q8_0_x8_chunk_tok(int nbk, const uint8_t *p, const q8_0_x8_unp *up, const block_q8_0 *yb,
                                 __m256 acc[8]) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 c[8];
    X8_UNROLL for (int q = 0; q < 8; q++) c[q] = acc[q];
    for (int b = 0; b < nbk; b++, p += X8_Q8_BLOCK) {
        const __m256 d = _mm256_mul_ps(up->dx[b], _mm256_set1_ps(_cvtsh_ss(yb[b].d)));
        X8_UNROLL for (int q = 0; q < 8; q++) {
            const __m256i wv = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * q));
            const __m256i pr = _mm256_maddubs_epi16(_mm256_load_si256(&up->aw[b][q]),
                                                    _mm256_sign_epi8(x8_bcast4(yb[b].qs + 4 * q), wv));
            c[q] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_madd_epi16(pr, ones)), c[q]);
        }
    }
    X8_UNROLL for (int q = 0; q < 8; q++) acc[q] = c[q];
}

void q_avx2_gemm_x8_q8_0_q8_0(int64_t n, int32_t nr, int32_t nc, const void *vw, size_t ws, const void *va,
                              size_t as, float *y, int64_t ldy) {
    Q_ASSERT(nr % 8 == 0);
    const int64_t nb = n / QK8_0;
    const uint8_t *w = vw, *a = va;
    const size_t gs = 8 * ws, tile = (size_t)nr * ws;
    if (nc == 1) {   /* decode: each group's run streamed once, the 8 accumulators in registers */
        const block_q8_0 *yt = va;
        x8_pf pf = { (uintptr_t)w + 2 * tile, (uintptr_t)w + 3 * tile };
        for (int32_t g = 0; g < nr / 8; g++) {
            __m256 acc[8];
            for (int q = 0; q < 8; q++) acc[q] = _mm256_setzero_ps();
            const uint8_t *p = w + (size_t)g * gs;
            for (int64_t b = 0; b < nb; b++, p += X8_Q8_BLOCK) {
                x8_pf_to(&pf, (uintptr_t)p + 2 * tile + X8_Q8_BLOCK);
                const __m256 d = _mm256_mul_ps(x8_scales(p), _mm256_set1_ps(_cvtsh_ss(yt[b].d)));
                q8_0_block(p, yt[b].qs, d, acc);
            }
            x8_store(y + 8 * g, q8_0_hsum(acc));
        }
        return;
    }
    /* Several tokens: per group and K chunk, |w| once, then each token's 8 accumulators
     * run over the chunk in registers (a table keeps them between chunks). */
    q8_0_x8_unp up;
    x8_pf pf = x8_pf_small(w, tile, nc);
    __m256 acc[X8_TOK][8];
    for (int32_t c0 = 0; c0 < nc; c0 += X8_TOK) {
        const int ncc = Q_MIN(X8_TOK, nc - c0);
        for (int32_t g = 0; g < nr / 8; g++) {
            for (int t = 0; t < ncc; t++)
                for (int q = 0; q < 8; q++) acc[t][q] = _mm256_setzero_ps();
            for (int64_t k0 = 0; k0 < nb; k0 += X8_KB) {
                const int nbk = (int)Q_MIN(X8_KB, nb - k0);
                const uint8_t *p = w + (size_t)g * gs + (size_t)k0 * X8_Q8_BLOCK;
                for (int b = 0; b < nbk; b++) {
                    const uint8_t *pb = p + (size_t)b * X8_Q8_BLOCK;
                    x8_pf_to(&pf, (uintptr_t)pb + 2 * tile + X8_Q8_BLOCK);
                    for (int q = 0; q < 8; q++)
                        up.aw[b][q] = _mm256_abs_epi8(_mm256_loadu_si256((const __m256i *)(pb + 16 + 32 * q)));
                    up.dx[b] = x8_scales(pb);
                }
                for (int t = 0; t < ncc; t++)
                    q8_0_x8_chunk_tok(nbk, p, &up, (const block_q8_0 *)(const void *)(a + (size_t)(c0 + t) * as) + k0,
                                      acc[t]);
            }
            for (int t = 0; t < ncc; t++) x8_store(y + (c0 + t) * ldy + 8 * g, q8_0_hsum(acc[t]));
        }
    }
}

#include "cpu/avx2_end.h"
#endif
