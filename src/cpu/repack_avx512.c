/* repack_avx512.c — the AVX-512 set's tiles over x8 weights (layouts in cpu/repack.h)
 * times Q8_0 activations, Q4_0 and Q8_0: batches multiply with VNNI's vpdpbusd (four
 * unsigned x signed byte products added into an int32 lane by one instruction, where
 * AVX2 needs maddubs + madd; 512-bit, two row groups side by side, 16 rows per register).
 * Decode (one token) reads each weight once and is bound by memory, not by multiplies:
 * it runs the AVX2 tile. Each output is bit-identical to the scalar body in
 * cpu/vec_dot_impl.h, float steps one for one as in cpu/repack_avx2.c:
 * - Q4_0: sumi = sum(nibble * a) - 8 * sum(a) (nibbles are vpdpbusd's unsigned operand,
 *   the activations its signed one; 8 * sum(a) once per token and block); acc =
 *   fma(sumi, dy * dx, acc) per block, lane r = row r of the group.
 * - Q8_0: sumi = sum((w + 128) * a) - 128 * sum(a): the weights are biased to unsigned
 *   once per K chunk, the correction (per token and block, shared by every row) starts
 *   the accumulation of a block's 8 vpdpbusd; acc = acc + sumi * (dx * dy) per block
 *   (lane r = row r).
 * Integer sums are exact (|lane| <= 4 x 255 x 128), so only the float order matters.
 * Work order as the AVX2 tiles: per pass of 64 tokens and V_PG row groups, K in chunks;
 * a group pair's chunk is unpacked once and every token of the pass runs over it (an odd
 * last group is paired with itself: computed twice, stored once). The float steps run on
 * 16 lanes, each lane's sequence that of its row.
 *
 * Compiled for AVX-512 F/BW/VL + VNNI by cpu/avx512_begin.h's region; cpu/repack.c lists
 * these only for the AVX-512 set, which cpu/matmul.c picks only on CPUs that have all of
 * it. tests/test_avx512_emu.c compiles this file again over SIMDe (Q_AVX512_EMU) and
 * checks it on any CPU. Memory: stack scratch only (< 128 KiB per call). */
#include <stdint.h>
#include <string.h>

#include "core/base.h"
#include "cpu/kern_avx512.h"
#include "cpu/repack.h"
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
    V_Q4_BLOCK = 144,   /* bytes of a Q4_0 group block: 8 scales + 128 bytes of nibbles */
    V_Q8_BLOCK = 272,   /* bytes of a Q8_0 group block: 8 scales + 256 bytes of quants */
    V_TOK = 64,         /* tokens per pass (the matmul op's tile width) */
    V_PG = 4,           /* row groups per pass (32 rows: the matmul op's prefill tile) */
    V_KB = 16,          /* blocks per K chunk (unpacked weights 4 KiB, token terms 8-36 KiB) */
    V_C = 4,            /* tokens per register tile */
};

V_INLINE int32_t v_load_i32(const void *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The 8 row scales at the start of a group block, as floats. */
V_INLINE __m256 v_scales(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

V_INLINE float v_h2f(q_half h) {
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128((int)h)));
}

/* Small batches stream the weights from memory as decode does: each unpacked block
 * prefetches the one V_KB blocks ahead in the group's run (one chunk ahead). */
V_INLINE void v_prefetch(const uint8_t *p, size_t size) {
    for (size_t off = 0; off < size; off += 64) _mm_prefetch((const char *)(p + off), _MM_HINT_T0);
}

/* Two row groups side by side in one 512-bit register: lanes 0-7 group g, 8-15 group g1
 * (g1 = g for the odd last group of a pass: computed twice, its second half never stored). */
V_INLINE __m512 v_pair_ps(__m256 lo, __m256 hi) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1));
}
V_INLINE __m512i v_pair_si(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

/* Stores the rows of a pair: lanes 0-7 to y[0..8), lanes 8-15 to y[8..16) when g1 is real. */
V_INLINE void v_store_pair(float *y, __m512 v, bool both) {
    _mm256_storeu_ps(y, _mm512_castps512_ps256(v));
    if (both) _mm256_storeu_ps(y + 8, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

/* ---- Q4_0 ---- */

/* One group pair's chunk: u[b][j] = nibbles (0..15) of elements 4j..4j+3 (j < 4) or
 * 16 + 4(j-4).. (j >= 4) of the 16 rows; dx the scales. */
typedef struct v_q4_unp {
    __m512i u[V_KB][8];
    __m512  dx[V_KB];
} v_q4_unp;

/* Per token of the pass and block of the chunk: 8 * sum(a) and dy. */
typedef struct v_q4_prep {
    int32_t s8[V_TOK][V_KB];
    float   dy[V_TOK][V_KB];
} v_q4_prep;

static void v_q4_unpack(v_q4_unp *up, const uint8_t *p0, const uint8_t *p1, int nbk, bool pf) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int b = 0; b < nbk; b++, p0 += V_Q4_BLOCK, p1 += V_Q4_BLOCK) {
        if (pf) {
            v_prefetch(p0 + V_KB * V_Q4_BLOCK, V_Q4_BLOCK);
            v_prefetch(p1 + V_KB * V_Q4_BLOCK, V_Q4_BLOCK);
        }
        for (int j = 0; j < 4; j++) {
            const __m512i v = v_pair_si(_mm256_loadu_si256((const __m256i *)(p0 + 16 + 32 * j)),
                                        _mm256_loadu_si256((const __m256i *)(p1 + 16 + 32 * j)));
            up->u[b][j] = _mm512_and_si512(v, m4);
            up->u[b][4 + j] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        }
        up->dx[b] = v_pair_ps(v_scales(p0), v_scales(p1));
    }
}

static void v_q4_prep_rows(v_q4_prep *pp, const uint8_t *a, size_t as, int nt, int64_t k0, int nbk) {
    const __m256i ones = _mm256_set1_epi8(1);
    for (int t = 0; t < nt; t++) {
        const block_q8_0 *yb = (const block_q8_0 *)(const void *)(a + (size_t)t * as) + k0;
        for (int b = 0; b < nbk; b++) {
            /* lane q = a_4q + .. + a_4q+3; their total, exact in int32 */
            const __m256i s4 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, _mm256_loadu_si256((const __m256i *)yb[b].qs));
            const __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
            const __m128i q = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
            pp->s8[t][b] = 8 * _mm_cvtsi128_si32(_mm_add_epi32(q, _mm_shuffle_epi32(q, 0xB1)));
            pp->dy[t][b] = v_h2f(yb[b].d);
        }
    }
}

/* C <= V_C tokens (rows t.. of the pass; activation blocks y[i] at the chunk) x 16 rows
 * over the chunk; acc[0..C). Two integer chains per token (nibble vectors 0-3, 4-7) keep
 * vpdpbusd's latency off the critical path. */
V_INLINE void v_q4_tile(const int C, int nbk, const v_q4_unp *up, const v_q4_prep *pp, int t,
                        const block_q8_0 *const *y, __m512 *acc) {
    __m512 c[V_C];
    V_UNROLL for (int i = 0; i < C; i++) c[i] = acc[i];
    for (int b = 0; b < nbk; b++) {
        __m512i lo[V_C], hi[V_C];
        V_UNROLL for (int i = 0; i < C; i++) lo[i] = hi[i] = _mm512_setzero_si512();
        V_UNROLL for (int j = 0; j < 4; j++) {
            const __m512i wl = _mm512_load_si512((const void *)&up->u[b][j]), wh = _mm512_load_si512((const void *)&up->u[b][4 + j]);
            V_UNROLL for (int i = 0; i < C; i++) {
                lo[i] = _mm512_dpbusd_epi32(lo[i], wl, _mm512_set1_epi32(v_load_i32(y[i][b].qs + 4 * j)));
                hi[i] = _mm512_dpbusd_epi32(hi[i], wh, _mm512_set1_epi32(v_load_i32(y[i][b].qs + 16 + 4 * j)));
            }
        }
        const __m512 dx = up->dx[b];
        V_UNROLL for (int i = 0; i < C; i++) {
            const __m512i sumi = _mm512_sub_epi32(_mm512_add_epi32(lo[i], hi[i]), _mm512_set1_epi32(pp->s8[t + i][b]));
            c[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(_mm512_set1_ps(pp->dy[t + i][b]), dx), c[i]);
        }
    }
    V_UNROLL for (int i = 0; i < C; i++) acc[i] = c[i];
}

/* ---- Q8_0 ---- */

/* One group pair's chunk: wu[b][q] = quants + 128 (unsigned) of vector q (elements
 * 4q..4q+3 of the 16 rows); dx the scales. */
typedef struct v_q8_unp {
    __m512i wu[V_KB][8];
    __m512  dx[V_KB];
} v_q8_unp;

/* Per token of the pass and block of the chunk: corr = -128 * sum(a) (what the bias adds,
 * negated) and dy. */
typedef struct v_q8_prep {
    int32_t corr[V_TOK][V_KB];
    float   dy[V_TOK][V_KB];
} v_q8_prep;

static void v_q8_unpack(v_q8_unp *up, const uint8_t *p0, const uint8_t *p1, int nbk, bool pf) {
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    for (int b = 0; b < nbk; b++, p0 += V_Q8_BLOCK, p1 += V_Q8_BLOCK) {
        if (pf) {
            v_prefetch(p0 + V_KB * V_Q8_BLOCK, V_Q8_BLOCK);
            v_prefetch(p1 + V_KB * V_Q8_BLOCK, V_Q8_BLOCK);
        }
        for (int q = 0; q < 8; q++)
            up->wu[b][q] = _mm512_xor_si512(v_pair_si(_mm256_loadu_si256((const __m256i *)(p0 + 16 + 32 * q)),
                                                      _mm256_loadu_si256((const __m256i *)(p1 + 16 + 32 * q))), bias);
        up->dx[b] = v_pair_ps(v_scales(p0), v_scales(p1));
    }
}

static void v_q8_prep_rows(v_q8_prep *pp, const uint8_t *a, size_t as, int nt, int64_t k0, int nbk) {
    const __m256i ones = _mm256_set1_epi8(1);
    for (int t = 0; t < nt; t++) {
        const block_q8_0 *yb = (const block_q8_0 *)(const void *)(a + (size_t)t * as) + k0;
        for (int b = 0; b < nbk; b++) {
            const __m256i s4 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, _mm256_loadu_si256((const __m256i *)yb[b].qs));
            const __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
            const __m128i q = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
            pp->corr[t][b] = -128 * _mm_cvtsi128_si32(_mm_add_epi32(q, _mm_shuffle_epi32(q, 0xB1)));
            pp->dy[t][b] = v_h2f(yb[b].d);
        }
    }
}

/* C <= V_C tokens x 16 rows over the chunk; acc[0..C). Lane r of every vector is row r:
 * the 8 vpdpbusd of a block add up to row r's whole sum, then one multiply and add. */
V_INLINE void v_q8_tile(const int C, int nbk, const v_q8_unp *up, const v_q8_prep *pp, int t,
                        const block_q8_0 *const *y, __m512 *acc) {
    __m512 c[V_C];
    V_UNROLL for (int i = 0; i < C; i++) c[i] = acc[i];
    for (int b = 0; b < nbk; b++) {
        __m512i s[V_C];
        V_UNROLL for (int i = 0; i < C; i++) s[i] = _mm512_set1_epi32(pp->corr[t + i][b]);
        V_UNROLL for (int q = 0; q < 8; q++) {
            const __m512i wq = _mm512_load_si512((const void *)&up->wu[b][q]);
            V_UNROLL for (int i = 0; i < C; i++)
                s[i] = _mm512_dpbusd_epi32(s[i], wq, _mm512_set1_epi32(v_load_i32(y[i][b].qs + 4 * q)));
        }
        V_UNROLL for (int i = 0; i < C; i++)   /* sum += sumi * (dx * dy), as the scalar */
            c[i] = _mm512_add_ps(c[i], _mm512_mul_ps(_mm512_cvtepi32_ps(s[i]),
                                                     _mm512_mul_ps(up->dx[b], _mm512_set1_ps(pp->dy[t + i][b]))));
    }
    V_UNROLL for (int i = 0; i < C; i++) acc[i] = c[i];
}

/* ---- the batch driver of both types ----
 * Per pass of V_TOK tokens and V_PG row groups: K in chunks of V_KB blocks; per chunk the
 * tokens' terms once (PREP), then per group pair its weights once (UNPACK) and every
 * token's tile over them (TILE; the last 1..3 tokens as one tile of that many: nothing
 * padded is computed). Decode (one token) is AVX2's (DECODE). */
#define V_X8_GEMM(NAME, DECODE, QK, BLOCK, PREP_T, UNP_T, PREP, UNPACK, TILE)                                     \
    void Q_AVX512_NAME(NAME)(int64_t n, int32_t nr, int32_t nc, const void *vw, size_t ws, const void *va,         \
                             size_t as, float *y, int64_t ldy) {                                                   \
        Q_ASSERT(nr % 8 == 0);                                                                                     \
        if (nc == 1) {                                                                                             \
            DECODE(n, nr, nc, vw, ws, va, as, y, ldy);                                                             \
            return;                                                                                                \
        }                                                                                                          \
        const int64_t nb = n / (QK);                                                                               \
        const uint8_t *w = vw, *a = va;                                                                            \
        const size_t gs = 8 * ws; /* bytes per row group */                                                        \
        PREP_T pp;                                                                                                 \
        UNP_T up;                                                                                                  \
        __m512 acc[V_PG / 2][V_TOK];                                                                               \
        for (int32_t c0 = 0; c0 < nc; c0 += V_TOK) {                                                               \
            const int ncc = Q_MIN(V_TOK, nc - c0);                                                                 \
            for (int32_t g0 = 0; g0 < nr / 8; g0 += V_PG) {                                                        \
                const int ng = Q_MIN(V_PG, nr / 8 - g0), npair = (ng + 1) / 2;                                     \
                for (int h = 0; h < npair; h++)                                                                    \
                    for (int t = 0; t < ncc; t++) acc[h][t] = _mm512_setzero_ps();                                 \
                for (int64_t k0 = 0; k0 < nb; k0 += V_KB) {                                                        \
                    const int nbk = (int)Q_MIN(V_KB, nb - k0);                                                     \
                    PREP(&pp, a + (size_t)c0 * as, as, ncc, k0, nbk);                                              \
                    for (int h = 0; h < npair; h++) {                                                              \
                        const int g = g0 + 2 * h, g1 = 2 * h + 1 < ng ? g + 1 : g;                                 \
                        UNPACK(&up, w + (size_t)g * gs + (size_t)k0 * (BLOCK),                                     \
                               w + (size_t)g1 * gs + (size_t)k0 * (BLOCK), nbk, nc <= 16);                         \
                        for (int t = 0; t < ncc; t += V_C) {                                                       \
                            const block_q8_0 *yt[V_C] = { 0 };                                                    \
                            for (int i = 0; i < V_C && t + i < ncc; i++)                                           \
                                yt[i] = (const block_q8_0 *)(const void *)(a + (size_t)(c0 + t + i) * as) + k0;    \
                            const int left = ncc - t;                                                              \
                            if (left >= 4) TILE(4, nbk, &up, &pp, t, yt, &acc[h][t]);                              \
                            else if (left == 3) TILE(3, nbk, &up, &pp, t, yt, &acc[h][t]);                         \
                            else if (left == 2) TILE(2, nbk, &up, &pp, t, yt, &acc[h][t]);                         \
                            else TILE(1, nbk, &up, &pp, t, yt, &acc[h][t]);                                        \
                        }                                                                                          \
                    }                                                                                              \
                }                                                                                                  \
                for (int h = 0; h < npair; h++)                                                                    \
                    for (int t = 0; t < ncc; t++)                                                                  \
                        v_store_pair(y + (c0 + t) * ldy + 8 * (g0 + 2 * h), acc[h][t], 2 * h + 1 < ng);            \
            }                                                                                                      \
        }                                                                                                          \
    }

V_X8_GEMM(q_avx512_gemm_x8_q4_0_q8_0, q_avx2_gemm_x8_q4_0_q8_0, QK4_0, V_Q4_BLOCK, v_q4_prep, v_q4_unp,
          v_q4_prep_rows, v_q4_unpack, v_q4_tile)
V_X8_GEMM(q_avx512_gemm_x8_q8_0_q8_0, q_avx2_gemm_x8_q8_0_q8_0, QK8_0, V_Q8_BLOCK, v_q8_prep, v_q8_unp,
          v_q8_prep_rows, v_q8_unpack, v_q8_tile)
#undef V_X8_GEMM

#include "cpu/avx512_end.h"
#endif
