/* kern_avx512_q6k.c — the AVX-512 set's Q6_K x Q8_K gemm tile (row-major weights, as
 * stored in the file). Not a vec_dot: one output runs AVX2's (cpu/kern_avx2_kq.c), and so
 * does decode (nc == 1), which reads each weight once and is bound by memory, not by
 * multiplies. Each output is bit-identical to the scalar body in cpu/vec_dot_impl.h.
 *
 * The integer part. Per super-block (256 elements) and output the scalar keeps 8 int32
 * lanes: lane L sums scale(e) * q(e) * a(e) over the elements e with e % 32 in 4L..4L+3,
 * scale(e) the int8 scale of e's 16 elements, q = 6-bit quant - 32. Integer sums are
 * exact, so any order gives the same lanes. Here, per 32 elements j (j = 0..7):
 *   vpmaddubsw: (a + 128) x s, pairs as int16 (|.| <= 2 x 255 x 32, never saturating),
 *   vpdpwssd:   x the scale as int16, pairs added into the int32 lanes,
 * 2 instructions where AVX2 needs maddubs + madd + add, each on 512 bits: one zmm holds
 * TWO outputs, rows r and r' (a row pair) of one token: weights [r's 32 | r''s 32], the
 * token's 32 activations broadcast to both halves, so the low 8 int32 lanes are row r's
 * scalar lanes and the high 8 row r''s, with no horizontal step. The a + 128 adds
 * 128 * sum(scale * s) to each lane; it depends on the row alone, so each row pair's
 * correction is computed once per super-block and starts every token's accumulator
 * (negated). Per 256 MACs and output the tile's loop runs 4 vpmaddubsw + 4 vpdpwssd
 * (AVX2's A tile: 8 + 8 + 8 adds), 2 activation loads, then the float step.
 *
 * The float part, in 256 bits (lane for lane as the scalar): per super-block d = y.d *
 * x.d (rounded), acc[L] = fma(d, (float)lane[L], acc[L]); at the end x86_hsum8:
 * ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)).
 *
 * Work order. Per pass of V_TOK tokens and V_ROWS rows, K in chunks of V_KB super-blocks:
 * the pass's activations of the chunk are prepared once (a + 128, and y.d) for all its
 * rows; each quad of rows (two pairs) is unpacked once (signed quants, per-lane scale
 * words, correction, x.d) for all the pass's tokens; then tiles of V_RP pairs x V_C
 * tokens run over it; the float lanes wait in acc between chunks.
 * Why 2 pairs (4 rows) x 3 tokens: its 6 zmm integer accumulators and 12 ymm float
 * lanes stay in registers over a chunk with an activation and temporaries (of 32); one
 * activation broadcast feeds 2 pairs, each weight and scale vector (memory operands) 3
 * tokens. A larger tile spills or moves the float lanes to memory. V_KB = 2 keeps the
 * prepared activations (32 KiB) in L1 and costs one float-lane load and store per
 * output and 2 super-blocks. Chosen by instruction count (the asm: per output and 256
 * MACs ~15.5 instructions in the tile's loop, ~18 with unpack, prep and the lanes'
 * reload at 32 rows x 64 tokens; AVX2's tile ~53); no AVX-512 CPU measured it.
 *
 * Compiled for AVX-512 F/BW/VL + VNNI by cpu/avx512_begin.h's region; cpu/matmul.c
 * lists it only in the AVX-512 table, which it picks only on CPUs that have all of it.
 * tests/test_avx512_q6k.c compiles this file again over SIMDe (Q_AVX512_EMU) and checks
 * it on any AVX2 CPU. Memory: stack scratch only (~101 KiB per call), weights and
 * activations read in place. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/base.h"
#include "cpu/kern_avx2.h"
#include "cpu/kern_avx512.h"
#include "tensor/quants/blocks.h"

#if defined(__x86_64__) || defined(Q_AVX512_EMU)
#include "cpu/avx512_begin.h"

#define V_INLINE static inline __attribute__((always_inline))
#if defined(__clang__)
#define V_UNROLL _Pragma("clang loop unroll(full)")
#else
#define V_UNROLL _Pragma("GCC unroll 8")
#endif

enum {
    V_TOK = 64,    /* tokens per pass (the matmul op's tile width) */
    V_ROWS = 32,   /* rows per pass (the matmul op's prefill tile): one activation prep for 32 */
    V_KB = 2,      /* super-blocks per K chunk: prepared activations 32.5 KiB (L1) */
    V_QUAD = 4,    /* rows unpacked together: V_RP pairs */
    V_RP = 2,      /* row pairs per register tile */
    V_C = 3,       /* tokens per register tile */
};

/* One quad's chunk, pair p = rows 2p, 2p+1 of the quad (a lone last row is its own
 * partner; the copy's outputs are dropped): w[p][b][j] the signed quants (-32..31) of
 * elements 32j..32j+31, [row 2p | row 2p+1]; s[p][b][j] their scales as int16, one per
 * maddubs pair (words 0-7 of a half: scale 2j, 8-15: scale 2j+1); ncorr[p][b] minus the
 * bias correction per int32 lane; dx[p][b][h] row 2p+h's x.d in 8 lanes (a vector, so
 * that d = y.d * x.d is one vmulps with y.d broadcast from memory: from two broadcasts
 * gcc multiplies the scalars and broadcasts the product, two instructions). */
typedef struct v_unp {
    __m512i w[V_RP][V_KB][8];
    __m512i s[V_RP][V_KB][8];
    __m512i ncorr[V_RP][V_KB];
    __m256  dx[V_RP][V_KB][2];
} v_unp;

/* The pass's activations of the chunk: a[b][t][j] = elements 32j.. of token t's block
 * b, + 128 (unsigned); dy its y.d. Block-major: token-major would put a[t + 1][b] at
 * a[t][b + V_KB], and gcc -O3's predictive commoning then carries a tile's loads from
 * one block to a later one in registers (spilling them) instead of reloading. */
typedef struct v_prep {
    __m256i a[V_KB][V_TOK][8];
    float   dy[V_KB][V_TOK];
} v_prep;

V_INLINE float v_h2f(q_half h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128((int)h))); }

/* x86_hsum8: ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)). */
V_INLINE float v_hsum8(__m256 v) {
    const __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    const __m128 s = _mm_add_ps(r, _mm_movehl_ps(r, r));   /* r0+r2, r1+r3 */
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* [32 bytes at p | 32 bytes at q] */
V_INLINE __m512i v_pair256(const uint8_t *p, const uint8_t *q) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)p)),
                              _mm256_loadu_si256((const __m256i *)(const void *)q), 1);
}

/* A small batch streams the weights from memory as decode does: each unpacked block
 * prefetches the one a chunk ahead in its row (an address maybe past the end). */
V_INLINE void v_prefetch(uintptr_t p) {
    for (size_t off = 0; off < sizeof(block_q6_K) + 63; off += 64) _mm_prefetch((const char *)(p + off), _MM_HINT_T0);
}

/* One row pair's super-block: xa row 2p, xb row 2p+1 (or xa again). Element 128c + 32k
 * + l (j = 4c + k): low 4 bits ql[64c + 32(k&1) + l] (high nibble for k >= 2), high 2
 * bits (qh[32c + l] >> 2k) & 3. */
static void v_unpack_pair(const block_q6_K *xa, const block_q6_K *xb, __m512i w[8], __m512i s[8], __m512i *ncorr,
                          __m256 dx[2]) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    const __m512i k32 = _mm512_set1_epi8(32), k80 = _mm512_set1_epi8((char)0x80);
    /* the 16 + 16 scales as int16; word p of s[j] takes scale 16 (p / 16) + 2j + (p % 16) / 8 */
    const __m256i sc8 = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)xa->scales)),
                                                _mm_loadu_si128((const __m128i *)(const void *)xb->scales), 1);
    const __m512i sc16 = _mm512_cvtepi8_epi16(sc8);
    const __m512i idx = _mm512_set_epi16(17, 17, 17, 17, 17, 17, 17, 17, 16, 16, 16, 16, 16, 16, 16, 16,
                                         1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512i corr = _mm512_setzero_si512();
    V_UNROLL for (int c = 0; c < 2; c++) {
        const __m512i qh = v_pair256(xa->qh + 32 * c, xb->qh + 32 * c);
        V_UNROLL for (int k = 0; k < 4; k++) {
            const int j = 4 * c + k;
            const __m512i ql = v_pair256(xa->ql + 64 * c + 32 * (k & 1), xb->ql + 64 * c + 32 * (k & 1));
            const __m512i lo4 = _mm512_and_si512(k < 2 ? ql : _mm512_srli_epi16(ql, 4), m4);
            /* bits 2k, 2k+1 -> 4, 5 (a 16-bit shift: what crosses a byte is masked off) */
            const __m512i hi2 = k == 0 ? _mm512_slli_epi16(qh, 4)
                              : k == 1 ? _mm512_slli_epi16(qh, 2)
                              : k == 2 ? qh : _mm512_srli_epi16(qh, 2);
            /* 0xF8: lo4 | (hi2 & m30); minus 32: the signed quant */
            w[j] = _mm512_sub_epi8(_mm512_ternarylogic_epi32(lo4, hi2, m30, 0xF8), k32);
            s[j] = _mm512_permutexvar_epi16(_mm512_add_epi16(idx, _mm512_set1_epi16((short)(2 * j))), sc16);
            /* what a + 128 adds: 128 (s_2i + s_2i+1) pairs, times the scale */
            corr = _mm512_dpwssd_epi32(corr, _mm512_maddubs_epi16(k80, w[j]), s[j]);
        }
    }
    *ncorr = _mm512_sub_epi32(_mm512_setzero_si512(), corr);
    dx[0] = _mm256_set1_ps(v_h2f(xa->d));
    dx[1] = _mm256_set1_ps(v_h2f(xb->d));
}

/* Rows w (row-major, stride ws) of the quad, nq of them, super-blocks b0..b0+nbk. */
static void v_unpack(v_unp *up, const uint8_t *w, size_t ws, int nq, int64_t b0, int nbk, bool pf) {
    for (int p = 0; 2 * p < nq; p++) {
        const uint8_t *ra = w + (size_t)(2 * p) * ws, *rb = w + (size_t)Q_MIN(2 * p + 1, nq - 1) * ws;
        for (int b = 0; b < nbk; b++) {
            const block_q6_K *xa = (const block_q6_K *)(const void *)ra + b0 + b;
            const block_q6_K *xb = (const block_q6_K *)(const void *)rb + b0 + b;
            if (pf) {
                v_prefetch((uintptr_t)xa + V_KB * sizeof *xa);
                if (xb != xa) v_prefetch((uintptr_t)xb + V_KB * sizeof *xb);
            }
            v_unpack_pair(xa, xb, up->w[p][b], up->s[p][b], &up->ncorr[p][b], up->dx[p][b]);
        }
    }
}

static void v_prep_rows(v_prep *pp, const uint8_t *a, size_t as, int nt, int64_t b0, int nbk) {
    const __m512i k80 = _mm512_set1_epi8((char)0x80);
    for (int t = 0; t < nt; t++) {
        const block_q8_K *yb = (const block_q8_K *)(const void *)(a + (size_t)t * as) + b0;
        for (int b = 0; b < nbk; b++) {
            for (int q = 0; q < 4; q++)
                _mm512_storeu_si512(&pp->a[b][t][2 * q], _mm512_xor_si512(_mm512_loadu_si512(yb[b].qs + 64 * q), k80));
            pp->dy[b][t] = yb[b].d;
        }
    }
}

/* RP row pairs x C tokens (t0..) over the chunk; acc[r][t] the quad's float lanes
 * (r = 2p + half). */
V_INLINE void v_tile(const int RP, const int C, int nbk, const v_unp *up, const v_prep *pp, int t0,
                     __m256 (*acc)[V_TOK]) {
    __m256 f[V_RP][2][V_C];
    V_UNROLL for (int p = 0; p < RP; p++) V_UNROLL for (int h = 0; h < 2; h++)
        V_UNROLL for (int i = 0; i < C; i++) f[p][h][i] = acc[2 * p + h][t0 + i];
    for (int b = 0; b < nbk; b++) {
        __m512i s[V_RP][V_C];
        V_UNROLL for (int p = 0; p < RP; p++) V_UNROLL for (int i = 0; i < C; i++) s[p][i] = up->ncorr[p][b];
        V_UNROLL for (int j = 0; j < 8; j++) {
            V_UNROLL for (int i = 0; i < C; i++) {
                const __m512i a = _mm512_broadcast_i64x4(_mm256_load_si256(&pp->a[b][t0 + i][j]));
                V_UNROLL for (int p = 0; p < RP; p++)
                    s[p][i] = _mm512_dpwssd_epi32(s[p][i], _mm512_maddubs_epi16(a, up->w[p][b][j]), up->s[p][b][j]);
            }
        }
        V_UNROLL for (int p = 0; p < RP; p++) {
            const __m256 xd0 = up->dx[p][b][0], xd1 = up->dx[p][b][1];
            V_UNROLL for (int i = 0; i < C; i++) {   /* d = y.d * x.d, then one fma per lane */
                const __m256 yd = _mm256_set1_ps(pp->dy[b][t0 + i]);
                const __m256 l0 = _mm256_cvtepi32_ps(_mm512_castsi512_si256(s[p][i]));
                const __m256 l1 = _mm256_cvtepi32_ps(_mm512_extracti64x4_epi64(s[p][i], 1));
                f[p][0][i] = _mm256_fmadd_ps(_mm256_mul_ps(yd, xd0), l0, f[p][0][i]);
                f[p][1][i] = _mm256_fmadd_ps(_mm256_mul_ps(yd, xd1), l1, f[p][1][i]);
            }
        }
    }
    V_UNROLL for (int p = 0; p < RP; p++) V_UNROLL for (int h = 0; h < 2; h++)
        V_UNROLL for (int i = 0; i < C; i++) acc[2 * p + h][t0 + i] = f[p][h][i];
}

#define V_TILE_FN(RP, C)                                                                                    \
    static void v_tile_##RP##x##C(int nbk, const v_unp *up, const v_prep *pp, int t0, __m256 (*acc)[V_TOK]) { \
        v_tile(RP, C, nbk, up, pp, t0, acc);                                                                \
    }
V_TILE_FN(1, 1) V_TILE_FN(1, 2) V_TILE_FN(1, 3) V_TILE_FN(2, 1) V_TILE_FN(2, 2) V_TILE_FN(2, 3)
#undef V_TILE_FN
typedef void (*v_tile_fn)(int nbk, const v_unp *up, const v_prep *pp, int t0, __m256 (*acc)[V_TOK]);
/* [row pairs][tokens] */
static const v_tile_fn V_TILES[V_RP + 1][V_C + 1] = {
    [1] = { [1] = v_tile_1x1, [2] = v_tile_1x2, [3] = v_tile_1x3 },
    [2] = { [1] = v_tile_2x1, [2] = v_tile_2x2, [3] = v_tile_2x3 },
};

void Q_AVX512_NAME(q_avx512_gemm_q6_K_q8_K)(int64_t n, int32_t nr, int32_t nc, const void *vw, size_t ws,
                                            const void *va, size_t as, float *y, int64_t ldy) {
    if (nc == 1) {
        q_avx2_gemm_q6_K_q8_K(n, nr, nc, vw, ws, va, as, y, ldy);
        return;
    }
    const int64_t nb = n / QK_K;
    const uint8_t *w = vw, *a = va;
    v_prep pp;
    v_unp up;
    __m256 acc[V_ROWS][V_TOK];   /* 64 KiB */
    for (int32_t c0 = 0; c0 < nc; c0 += V_TOK) {
        const int ncc = Q_MIN(V_TOK, nc - c0);
        for (int32_t g0 = 0; g0 < nr; g0 += V_ROWS) {
            const int ng = Q_MIN(V_ROWS, nr - g0);
            for (int r = 0; r < ng + (ng & 1); r++)   /* and a lone last row's partner */
                for (int t = 0; t < ncc; t++) acc[r][t] = _mm256_setzero_ps();
            for (int64_t k0 = 0; k0 < nb; k0 += V_KB) {
                const int nbk = (int)Q_MIN(V_KB, nb - k0);
                v_prep_rows(&pp, a + (size_t)c0 * as, as, ncc, k0, nbk);
                for (int q0 = 0; q0 < ng; q0 += V_QUAD) {
                    const int nq = Q_MIN(V_QUAD, ng - q0);
                    v_unpack(&up, w + (size_t)(g0 + q0) * ws, ws, nq, k0, nbk, nc <= 16);
                    for (int t = 0; t < ncc; t += V_C) V_TILES[(nq + 1) / 2][Q_MIN(V_C, ncc - t)](nbk, &up, &pp, t, &acc[q0]);
                }
            }
            for (int r = 0; r < ng; r++)
                for (int t = 0; t < ncc; t++) y[(c0 + t) * ldy + g0 + r] = v_hsum8(acc[r][t]);
        }
    }
}

#include "cpu/avx512_end.h"
#endif
