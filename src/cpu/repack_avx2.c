/* repack_avx2.c — AVX2+FMA+F16C tiles over x8 weights (layouts in cpu/repack.h) times
 * Q8_0 activations: Q4_0 and Q8_0. Each output is bit-identical to the scalar body in
 * cpu/vec_dot_impl.h (tests/test_matmul.c checks every shape class):
 * - Q4_0: one float accumulator per output, acc = fma(sumi, dy * dx, acc) block after
 *   block. Lane r of every vector is row r of the group, so one fma serves 8 outputs.
 *   sumi = sum(nibble * a) - 8 * sum(a): the nibbles (0..15, unsigned) are maddubs'
 *   first operand against 4 broadcast activation bytes; the 8 maddubs of a block add up
 *   in int16 (8 pairs of 15 x 128 <= 30720, no saturation); 8 * sum(a) is computed once
 *   per token and block, shared by every row.
 * - Q8_0: the same one accumulator per output, sum += sumi * (dx * dy) (a multiply, then
 *   an add) block after block. Decode: |w| x sign(a, w) with maddubs, exact while
 *   activations avoid -128, which the activation quantizer never produces. Batches:
 *   weights and activations widened to int16 and multiplied in pairs with vpmaddwd (one
 *   multiply per 16 products, where the sign trick needs three per 32: sign, maddubs and
 *   madd); the weights once per group and K chunk, the activations once per K chunk.
 * Work order: decode (one token) streams each group's contiguous run once; several
 * tokens take each block of weights once and run every token over it (accumulators in
 * a stack table), the tokens' per-block terms prepared per K chunk.
 *
 * Memory: stack scratch only (< 96 KiB per call: Q8_0's int16 activation table is 64
 * KiB); nothing allocated or owned. Compiled for AVX2+FMA+F16C by the target region;
 * cpu/repack.c lists these only for the AVX2 set, which cpu/matmul.c picks only when
 * the CPU has it. Empty on other architectures. */
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
    X8_Q8_KB = 16,       /* Q8_0 batches: blocks per K chunk (int16 weights 8 KiB per group) */
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

/* Decode prefetch: a decode tile (16 rows) is one contiguous run, and the pool gives each
 * thread a contiguous share of the tiles (core/pool.c), so a thread's next tile is the
 * next one in memory. Each block step prefetches the same offset one tile ahead into L2,
 * in address order; addresses past the matrix are only prefetched, never read. At the
 * end of a share that tile is another thread's: one tile of wasted reads per thread and
 * call. Two tiles ahead (session 4) wasted two, which is most of a share when many
 * threads split a small matrix (16 threads, a 256-row K projection: one tile each);
 * at 2 threads here the two distances decode at the same speed. */
typedef struct x8_pf {
    uintptr_t p, end;
} x8_pf;

X8_INLINE void x8_pf_to(x8_pf *f, uintptr_t upto) {
    const uintptr_t e = upto < f->end ? upto : f->end;
    for (; f->p < e; f->p += 64) _mm_prefetch((const char *)f->p, _MM_HINT_T1);
}

/* Decode's form of the same prefetch: the block of `bytes` at p, one tile ahead, with
 * one prefetch per 48 bytes (every line it touches gets one, some two) and no loop: the
 * loop's compares and branches were ~16 of the ~75 instructions a Q4_0 block took. */
X8_INLINE void x8_pf_block(const uint8_t *p, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 48) _mm_prefetch((const char *)p + o, _MM_HINT_T1);
}

/* A small batch (up to 16 tokens) still streams W from memory much as decode does: the
 * same prefetch, stepped where each block is first unpacked. Larger batches are
 * compute-bound: an empty range. */
X8_INLINE x8_pf x8_pf_small(const uint8_t *w, size_t tile, int32_t nc) {
    const uintptr_t p = (uintptr_t)w + tile;
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
 * Each group's chunk of blocks is one contiguous run; the token terms are shared. Not
 * inlined: inside the batch driver it lost its registers to the driver's and reloaded
 * pointers from the stack every block. */
__attribute__((noinline)) static void q4_0_x8_tok1(int64_t nb, const uint8_t *w, size_t gs, int ng, size_t tile,
                                                   const block_q8_0 *y, float *out) {
    enum { KB = 256 };   /* blocks per chunk of token terms */
    __m256 acc[X8_PG];
    float dy[KB];
    int32_t s8[KB];
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
                    x8_pf_block(p + tile, X8_Q4_BLOCK);
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
                    q4_0_x8_unpack_chunk(&up, w + (size_t)(g0 + g) * gs + (size_t)k0 * X8_Q4_BLOCK, nbk, &pf, tile);
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

/* Integer sums of 8 rows over one group block p (lane r = row r) with activation quants
 * qs: lane r of vector q is row r's elements 4q..4q+3, against qs[4q..4q+3] broadcast. */
X8_INLINE __m256i q8_0_sumi(const uint8_t *p, const int8_t *qs) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i s = _mm256_setzero_si256();
    for (int q = 0; q < 8; q++) {
        const __m256i wv = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * q));
        const __m256i pr = _mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(x8_bcast4(qs + 4 * q), wv));
        s = _mm256_add_epi32(s, _mm256_madd_epi16(pr, ones));
    }
    return s;
}

/* sum += sumi * (dx * dy), the scalar body's two roundings, lane by lane. */
X8_INLINE __m256 q8_0_fin(__m256 sum, __m256i sumi, __m256 dx, float dy) {
    return _mm256_add_ps(sum, _mm256_mul_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(dx, _mm256_set1_ps(dy))));
}

/* Batches multiply int16 pairs (vpmaddwd): no sign trick, no second multiply per 32
 * products. One group's K chunk, unpacked once for every token: p[b][k] lane r = row r's
 * elements 2k, 2k+1 (int16); dx the scales. */
typedef struct q8_0_x8_w16 {
    __m256i p[X8_Q8_KB][16];
    __m256  dx[X8_Q8_KB];
} q8_0_x8_w16;

/* Every token's K chunk: a[t][b][k] = activation elements 2k, 2k+1 of block b (int16
 * pair, broadcast by one load), dy the scales. 64 KiB: an L2 table read by every group. */
typedef struct q8_0_x8_a16 {
    int32_t a[X8_TOK][X8_Q8_KB][16];
    float   dy[X8_TOK][X8_Q8_KB];
} q8_0_x8_a16;

static void q8_0_x8_prep16(q8_0_x8_a16 *pa, const uint8_t *a, size_t as, int nt, int64_t k0, int nbk) {
    for (int t = 0; t < nt; t++) {
        const block_q8_0 *yb = (const block_q8_0 *)(const void *)(a + (size_t)t * as) + k0;
        for (int b = 0; b < nbk; b++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)yb[b].qs);
            _mm256_storeu_si256((__m256i *)pa->a[t][b], _mm256_cvtepi8_epi16(_mm256_castsi256_si128(v)));
            _mm256_storeu_si256((__m256i *)(pa->a[t][b] + 8), _mm256_cvtepi8_epi16(_mm256_extracti128_si256(v, 1)));
            pa->dy[t][b] = _cvtsh_ss(yb[b].d);
        }
    }
}

/* Vector q of a group block (rows 0..3 | rows 4..7, 4 bytes each) -> pairs 2q and 2q+1. */
X8_INLINE void q8_0_x8_unpack16(const uint8_t *p, int nbk, q8_0_x8_w16 *uw, x8_pf *pf, size_t pf_ahead) {
    const __m256i even_odd = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    for (int b = 0; b < nbk; b++, p += X8_Q8_BLOCK) {
        x8_pf_to(pf, (uintptr_t)p + pf_ahead + X8_Q8_BLOCK);
        for (int q = 0; q < 8; q++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * q));
            /* dwords [r0 2q, r0 2q+1, r1 .., ..] -> [r0..r3 pair 2q | r0..r3 pair 2q+1] */
            const __m256i lo = _mm256_permutevar8x32_epi32(_mm256_cvtepi8_epi16(_mm256_castsi256_si128(v)), even_odd);
            const __m256i hi = _mm256_permutevar8x32_epi32(_mm256_cvtepi8_epi16(_mm256_extracti128_si256(v, 1)), even_odd);
            uw->p[b][2 * q] = _mm256_permute2x128_si256(lo, hi, 0x20);
            uw->p[b][2 * q + 1] = _mm256_permute2x128_si256(lo, hi, 0x31);
        }
        uw->dx[b] = x8_scales(p);
    }
}

/* C <= 4 tokens (t..t+C-1) x 8 rows over the chunk; acc[0..C). int32 sums: 16 pairs of
 * |.| <= 127 * 127 * 2 per block, far inside. */
X8_INLINE void q8_0_x8_tile(const int C, int nbk, const q8_0_x8_w16 *uw, const q8_0_x8_a16 *pa, int t, __m256 *acc) {
    __m256 c[4];
    X8_UNROLL for (int i = 0; i < C; i++) c[i] = acc[i];
    /* tokens past C alias token t and are never used */
    const int32_t *a0 = pa->a[t][0], *a1 = pa->a[t + (C > 1)][0], *a2 = pa->a[t + 2 * (C > 2)][0],
                  *a3 = pa->a[t + 3 * (C > 3)][0];
    for (int b = 0; b < nbk; b++, a0 += 16, a1 += 16, a2 += 16, a3 += 16) {
        const __m256i *wp = uw->p[b];
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
        /* each sum pinned to its register after each step (as X8_PIN4, one at a time:
         * pinning the four together made gcc shuffle them between registers) */
#pragma GCC unroll 16
        for (int k = 0; k < 16; k++) {
            const __m256i wk = _mm256_load_si256(wp + k);
            s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(wk, _mm256_set1_epi32(a0[k])));
            __asm__("" : "+x"(s0));
            if (C > 1) s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(wk, _mm256_set1_epi32(a1[k])));
            __asm__("" : "+x"(s1));
            if (C > 2) s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(wk, _mm256_set1_epi32(a2[k])));
            __asm__("" : "+x"(s2));
            if (C > 3) s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(wk, _mm256_set1_epi32(a3[k])));
            __asm__("" : "+x"(s3));
        }
        const __m256i s[4] = { s0, s1, s2, s3 };
        X8_UNROLL for (int i = 0; i < C; i++) c[i] = q8_0_fin(c[i], s[i], uw->dx[b], pa->dy[t + i][b]);
    }
    X8_UNROLL for (int i = 0; i < C; i++) acc[i] = c[i];
}

/* Two groups (uw[0], uw[1]) x 4 tokens: one broadcast serves both groups. */
X8_INLINE void q8_0_x8_tile2(int nbk, const q8_0_x8_w16 *uw, const q8_0_x8_a16 *pa, int t, __m256 *acc0, __m256 *acc1) {
    __m256 c0[4], c1[4];
    X8_UNROLL for (int i = 0; i < 4; i++) c0[i] = acc0[i], c1[i] = acc1[i];
    const int32_t *a0 = pa->a[t][0], *a1 = pa->a[t + 1][0], *a2 = pa->a[t + 2][0], *a3 = pa->a[t + 3][0];
    for (int b = 0; b < nbk; b++, a0 += 16, a1 += 16, a2 += 16, a3 += 16) {
        const __m256i *wp = uw[0].p[b], *wq = uw[1].p[b];
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0, u0 = s0, u1 = s0, u2 = s0, u3 = s0;
#pragma GCC unroll 16
        for (int k = 0; k < 16; k++) {
            const __m256i wk = _mm256_load_si256(wp + k), vk = _mm256_load_si256(wq + k);
#define X8_Q8_STEP(s, u, ap)                                                   \
            {                                                                  \
                const __m256i ak = _mm256_set1_epi32(ap[k]);                   \
                s = _mm256_add_epi32(s, _mm256_madd_epi16(wk, ak));            \
                u = _mm256_add_epi32(u, _mm256_madd_epi16(vk, ak));            \
                __asm__("" : "+x"(s), "+x"(u));                                \
            }
            X8_Q8_STEP(s0, u0, a0) X8_Q8_STEP(s1, u1, a1) X8_Q8_STEP(s2, u2, a2) X8_Q8_STEP(s3, u3, a3)
#undef X8_Q8_STEP
        }
        const __m256i s[4] = { s0, s1, s2, s3 }, u[4] = { u0, u1, u2, u3 };
        X8_UNROLL for (int i = 0; i < 4; i++) {
            c0[i] = q8_0_fin(c0[i], s[i], uw[0].dx[b], pa->dy[t + i][b]);
            c1[i] = q8_0_fin(c1[i], u[i], uw[1].dx[b], pa->dy[t + i][b]);
        }
    }
    X8_UNROLL for (int i = 0; i < 4; i++) acc0[i] = c0[i], acc1[i] = c1[i];
}

/* Decode, as q4_0_x8_tok1 (and not inlined for the same reason). */
__attribute__((noinline)) static void q8_0_x8_tok1(int64_t nb, const uint8_t *w, size_t gs, int ng, size_t tile,
                                                   const block_q8_0 *y, float *out) {
    for (int g = 0; g < ng; g++) {
        __m256 acc = _mm256_setzero_ps();
        const uint8_t *p = w + (size_t)g * gs;
        for (int64_t b = 0; b < nb; b++, p += X8_Q8_BLOCK) {
            x8_pf_block(p + tile, X8_Q8_BLOCK);
            acc = q8_0_fin(acc, q8_0_sumi(p, y[b].qs), x8_scales(p), _cvtsh_ss(y[b].d));
        }
        x8_store(out + 8 * g, acc);
    }
}

void q_avx2_gemm_x8_q8_0_q8_0(int64_t n, int32_t nr, int32_t nc, const void *vw, size_t ws, const void *va,
                              size_t as, float *y, int64_t ldy) {
    Q_ASSERT(nr % 8 == 0);
    const int64_t nb = n / QK8_0;
    const uint8_t *w = vw, *a = va;
    const size_t gs = 8 * ws, tile = (size_t)nr * ws;
    if (nc == 1) {   /* decode: each group's run streamed once */
        q8_0_x8_tok1(nb, w, gs, nr / 8, tile, va, y);
        return;
    }
    /* Several tokens: per K chunk, every token's activations as int16 pairs once; per
     * group, its weights unpacked once, then every token's tile over them. */
    q8_0_x8_a16 pa;
    q8_0_x8_w16 uw[2];
    __m256 acc[X8_PG][X8_TOK];
    x8_pf pf = x8_pf_small(w, tile, nc);
    for (int32_t c0 = 0; c0 < nc; c0 += X8_TOK) {
        const int ncc = Q_MIN(X8_TOK, nc - c0);
        for (int32_t g0 = 0; g0 < nr / 8; g0 += X8_PG) {
            const int ng = Q_MIN(X8_PG, nr / 8 - g0);
            for (int g = 0; g < ng; g++)
                for (int t = 0; t < ncc; t++) acc[g][t] = _mm256_setzero_ps();
            for (int64_t k0 = 0; k0 < nb; k0 += X8_Q8_KB) {
                const int nbk = (int)Q_MIN(X8_Q8_KB, nb - k0);
                q8_0_x8_prep16(&pa, a + (size_t)c0 * as, as, ncc, k0, nbk);
                for (int g = 0; g < ng; g += 2) {   /* groups in pairs, an odd last one alone */
                    const int gn = Q_MIN(2, ng - g);
                    for (int h = 0; h < gn; h++)
                        q8_0_x8_unpack16(w + (size_t)(g0 + g + h) * gs + (size_t)k0 * X8_Q8_BLOCK, nbk, &uw[h], &pf, tile);
                    int t = 0;
                    if (gn == 2)
                        for (; t + 4 <= ncc; t += 4) q8_0_x8_tile2(nbk, uw, &pa, t, &acc[g][t], &acc[g + 1][t]);
                    for (int h = 0; h < gn; h++) {
                        int u = t;
                        for (; u + 4 <= ncc; u += 4) q8_0_x8_tile(4, nbk, &uw[h], &pa, u, &acc[g + h][u]);
                        /* the last 1..3 tokens as one tile of that many: nothing padded is computed */
                        if (ncc - u == 3) q8_0_x8_tile(3, nbk, &uw[h], &pa, u, &acc[g + h][u]);
                        if (ncc - u == 2) q8_0_x8_tile(2, nbk, &uw[h], &pa, u, &acc[g + h][u]);
                        if (ncc - u == 1) q8_0_x8_tile(1, nbk, &uw[h], &pa, u, &acc[g + h][u]);
                    }
                }
            }
            for (int g = 0; g < ng; g++)
                for (int t = 0; t < ncc; t++) x8_store(y + (c0 + t) * ldy + 8 * (g0 + g), acc[g][t]);
        }
    }
}

#include "cpu/avx2_end.h"
#endif
