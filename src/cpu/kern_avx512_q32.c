/* kern_avx512_q32.c — the AVX-512 set's gemm tiles for the row-major 32-element block
 * types, for batches; decode (one token) is bound by memory and runs the AVX2 tile. The
 * types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, MXFP4), whose scalar order is one float
 * accumulator per output, share the engine below (Q4_0 and Q8_0 weights are normally
 * repacked at load: cpu/repack_avx512.c).
 *
 * One engine, a table of kinds. Each weight block is decoded once per K chunk to 32
 * unsigned codes, value + offset (int8 + 128; nibbles; the fifth bit; a grid lookup),
 * and 16 rows' codes are interleaved so that dword r of vector j holds row r's elements
 * 4j..4j+3. Then
 * every token of the pass runs VNNI's vpdpbusd (codes unsigned, activations signed) over
 * them: 16 rows x 4 elements per instruction. sumi = that - offset * sum(a), exact, and
 * the float step is the scalar body's, one for one, on 16 lanes (lane r = row r):
 *   FMA (Q4_0):                      acc = fma(sumi, dy * dx, acc)
 *   MUL (Q8_0, Q5_0, IQ4_NL, MXFP4): acc = acc + sumi * (dx * dy)   (MXFP4's dx: 2^(e-128))
 *   MUL_MIN (Q4_1, Q5_1):            acc = acc + (sumi * (dx * dy) + m * s)   (Q8_1: s = dy * sum(a))
 * each product and sum rounded on its own. Rows past nr in the last 16 are row 0 again,
 * computed and never stored.
 *
 * Compiled for AVX-512 F/BW/VL + VNNI by cpu/avx512_begin.h's region (or over SIMDe with
 * Q_AVX512_EMU); cpu/matmul.c lists these only for the AVX-512 set. Memory: stack scratch
 * only (< 32 KiB per call). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/base.h"
#include "quarrel/types.h"
#include "cpu/kern_avx2.h"
#include "cpu/kern_avx512.h"
#include "tensor/quants/blocks.h"

#if defined(__x86_64__) || defined(Q_AVX512_EMU)
#include "cpu/avx512_begin.h"

#define W_INLINE static inline __attribute__((always_inline))
#if defined(__clang__)
#define W_UNROLL _Pragma("clang loop unroll(full)")
#else
#define W_UNROLL _Pragma("GCC unroll 8")
#endif

enum {
    W_ROWS = 16,   /* rows per register (one per lane) */
    W_TOK = 64,    /* tokens per pass (the matmul op's tile width) */
    W_KB = 16,     /* blocks per K chunk */
    W_C = 4,       /* tokens per register tile */
};

typedef enum { W_FMA, W_MUL, W_MUL_MIN } w_step;

/* A weight kind: how a block decodes, and the float step of its scalar body. */
typedef struct w_kind {
    size_t bsize;                                      /* bytes per weight block */
    int    offset;                                     /* value = code - offset */
    w_step step;
    bool   q8_1;                                       /* activations Q8_1 (d, s, qs), else Q8_0 (d, qs) */
    void (*codes)(const uint8_t *blk, uint8_t *out);   /* the 32 codes, element order */
    float (*scale)(const uint8_t *blk);                /* dx */
    float (*min)(const uint8_t *blk);                  /* m (W_MUL_MIN) */
} w_kind;

W_INLINE float w_h2f(q_half h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128((int)h))); }

W_INLINE int32_t w_load_i32(const void *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* ---- decoders: 16 packed bytes -> 32 codes (low nibbles = elements 0..15) ---- */

W_INLINE void w_nibbles(const uint8_t *qs, __m128i *lo, __m128i *hi) {
    const __m128i v = _mm_loadu_si128((const __m128i *)qs), m4 = _mm_set1_epi8(0x0F);
    *lo = _mm_and_si128(v, m4);
    *hi = _mm_and_si128(_mm_srli_epi16(v, 4), m4);
}

/* 0x10 in byte j where bit j of the 32-bit qh is set (the fifth bit). */
W_INLINE void w_fifth(const uint8_t *qh, __m128i *lo, __m128i *hi) {
    const __m128i v = _mm_set1_epi32(w_load_i32(qh));
    const __m128i bits = _mm_set1_epi64x((long long)0x8040201008040201ull);
    const __m128i sel_lo = _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m128i sel_hi = _mm_setr_epi8(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m128i ten = _mm_set1_epi8(0x10);
    *lo = _mm_and_si128(_mm_cmpeq_epi8(_mm_and_si128(_mm_shuffle_epi8(v, sel_lo), bits), bits), ten);
    *hi = _mm_and_si128(_mm_cmpeq_epi8(_mm_and_si128(_mm_shuffle_epi8(v, sel_hi), bits), bits), ten);
}

W_INLINE void w_store32(uint8_t *out, __m128i lo, __m128i hi) {
    _mm_storeu_si128((__m128i *)out, lo);
    _mm_storeu_si128((__m128i *)(out + 16), hi);
}

static void w_codes_q8_0(const uint8_t *blk, uint8_t *out) {   /* offset 128: int8 + 128 */
    const __m256i v = _mm256_loadu_si256((const __m256i *)((const block_q8_0 *)(const void *)blk)->qs);
    _mm256_storeu_si256((__m256i *)out, _mm256_xor_si256(v, _mm256_set1_epi8((char)0x80)));
}

static void w_codes_q4_0(const uint8_t *blk, uint8_t *out) {   /* offset 8 */
    __m128i lo, hi;
    w_nibbles(((const block_q4_0 *)(const void *)blk)->qs, &lo, &hi);
    w_store32(out, lo, hi);
}

static void w_codes_q4_1(const uint8_t *blk, uint8_t *out) {   /* offset 0 */
    __m128i lo, hi;
    w_nibbles(((const block_q4_1 *)(const void *)blk)->qs, &lo, &hi);
    w_store32(out, lo, hi);
}

static void w_codes_q5_0(const uint8_t *blk, uint8_t *out) {   /* offset 16 */
    const block_q5_0 *b = (const block_q5_0 *)(const void *)blk;
    __m128i lo, hi, flo, fhi;
    w_nibbles(b->qs, &lo, &hi);
    w_fifth(b->qh, &flo, &fhi);
    w_store32(out, _mm_or_si128(lo, flo), _mm_or_si128(hi, fhi));
}

static void w_codes_q5_1(const uint8_t *blk, uint8_t *out) {   /* offset 0 */
    const block_q5_1 *b = (const block_q5_1 *)(const void *)blk;
    __m128i lo, hi, flo, fhi;
    w_nibbles(b->qs, &lo, &hi);
    w_fifth(b->qh, &flo, &fhi);
    w_store32(out, _mm_or_si128(lo, flo), _mm_or_si128(hi, fhi));
}

/* IQ4_NL's grid (cpu/vec_dot_impl.h) + 128, and MXFP4's doubled E2M1 values + 12: codes
 * 1..241 and 0..24, looked up by nibble. */
static void w_codes_iq4_nl(const uint8_t *blk, uint8_t *out) {   /* offset 128 */
    const __m128i grid = _mm_setr_epi8((char)1, (char)24, (char)45, (char)63, (char)79, (char)93, (char)106, (char)118,
                                       (char)129, (char)141, (char)153, (char)166, (char)181, (char)197, (char)217, (char)241);
    __m128i lo, hi;
    w_nibbles(((const block_iq4_nl *)(const void *)blk)->qs, &lo, &hi);
    w_store32(out, _mm_shuffle_epi8(grid, lo), _mm_shuffle_epi8(grid, hi));
}

static void w_codes_mxfp4(const uint8_t *blk, uint8_t *out) {   /* offset 12 */
    const __m128i grid = _mm_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0);
    __m128i lo, hi;
    w_nibbles(((const block_mxfp4 *)(const void *)blk)->qs, &lo, &hi);
    w_store32(out, _mm_shuffle_epi8(grid, lo), _mm_shuffle_epi8(grid, hi));
}

/* The row scales: every block starts with its fp16 d, but MXFP4's E8M0 exponent. */
static float w_d_first(const uint8_t *blk) { return w_h2f(w_load_i32(blk) & 0xFFFF); }
static float w_m_second(const uint8_t *blk) { return w_h2f((w_load_i32(blk) >> 16) & 0xFFFF); }
static float w_d_mxfp4(const uint8_t *blk) { return ldexpf(1.0f, (int)((const block_mxfp4 *)(const void *)blk)->e - 128); }

static const w_kind w_kinds[Q_TYPE_COUNT] = {
    [Q_TYPE_Q8_0]   = { sizeof(block_q8_0), 128, W_MUL, false, w_codes_q8_0, w_d_first, NULL },
    [Q_TYPE_Q4_0]   = { sizeof(block_q4_0), 8, W_FMA, false, w_codes_q4_0, w_d_first, NULL },
    [Q_TYPE_Q4_1]   = { sizeof(block_q4_1), 0, W_MUL_MIN, true, w_codes_q4_1, w_d_first, w_m_second },
    [Q_TYPE_Q5_0]   = { sizeof(block_q5_0), 16, W_MUL, false, w_codes_q5_0, w_d_first, NULL },
    [Q_TYPE_Q5_1]   = { sizeof(block_q5_1), 0, W_MUL_MIN, true, w_codes_q5_1, w_d_first, w_m_second },
    [Q_TYPE_IQ4_NL] = { sizeof(block_iq4_nl), 128, W_MUL, false, w_codes_iq4_nl, w_d_first, NULL },
    [Q_TYPE_MXFP4]  = { sizeof(block_mxfp4), 12, W_MUL, false, w_codes_mxfp4, w_d_mxfp4, NULL },
};

/* ---- the engine ---- */

/* One 16-row group's chunk: v[b][j] dword r = codes 4j..4j+3 of row r; dx, mx per row. */
typedef struct w_unp {
    __m512i v[W_KB][8];
    __m512  dx[W_KB], mx[W_KB];
} w_unp;

/* Per token of the pass and block of the chunk: offset * sum(a), dy, and Q8_1's s. */
typedef struct w_prep {
    int32_t so[W_TOK][W_KB];
    float   dy[W_TOK][W_KB], sy[W_TOK][W_KB];
} w_prep;

static void w_unpack(const w_kind *k, w_unp *up, const uint8_t *const *rows, int64_t k0, int nbk) {
    int32_t tab[8][W_ROWS] __attribute__((aligned(64)));
    float dx[W_ROWS], mx[W_ROWS];
    uint8_t codes[32];
    for (int b = 0; b < nbk; b++) {
        for (int r = 0; r < W_ROWS; r++) {
            const uint8_t *blk = rows[r] + (size_t)(k0 + b) * k->bsize;
            k->codes(blk, codes);
            for (int j = 0; j < 8; j++) tab[j][r] = w_load_i32(codes + 4 * j);
            dx[r] = k->scale(blk);
            mx[r] = k->min ? k->min(blk) : 0.0f;
        }
        for (int j = 0; j < 8; j++) up->v[b][j] = _mm512_load_si512((const void *)tab[j]);
        up->dx[b] = _mm512_loadu_ps(dx);
        up->mx[b] = _mm512_loadu_ps(mx);
    }
}

/* Activation block t, b: Q8_0 = d, qs; Q8_1 = d, s, qs. */
W_INLINE const int8_t *w_qs(const w_kind *k, const uint8_t *blk) { return (const int8_t *)blk + (k->q8_1 ? 4 : 2); }

static void w_prep_rows(const w_kind *k, w_prep *pp, const uint8_t *a, size_t as, int nt, int64_t k0, int nbk) {
    const size_t ab = k->q8_1 ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const __m256i ones = _mm256_set1_epi8(1);
    for (int t = 0; t < nt; t++)
        for (int b = 0; b < nbk; b++) {
            const uint8_t *blk = a + (size_t)t * as + (size_t)(k0 + b) * ab;
            const __m256i s4 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, _mm256_loadu_si256((const __m256i *)w_qs(k, blk)));
            const __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
            const __m128i q = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
            pp->so[t][b] = k->offset * _mm_cvtsi128_si32(_mm_add_epi32(q, _mm_shuffle_epi32(q, 0xB1)));
            pp->dy[t][b] = w_h2f(w_load_i32(blk) & 0xFFFF);
            pp->sy[t][b] = k->q8_1 ? w_h2f((w_load_i32(blk) >> 16) & 0xFFFF) : 0.0f;
        }
}

/* C <= W_C tokens x 16 rows over the chunk; acc[0..C). Two integer chains per token. */
W_INLINE void w_tile(const int C, const w_kind *k, int nbk, const w_unp *up, const w_prep *pp, int t,
                     const uint8_t *const *y, size_t ab, __m512 *acc) {
    __m512 c[W_C];
    W_UNROLL for (int i = 0; i < C; i++) c[i] = acc[i];
    for (int b = 0; b < nbk; b++) {
        __m512i lo[W_C], hi[W_C];
        W_UNROLL for (int i = 0; i < C; i++) lo[i] = hi[i] = _mm512_setzero_si512();
        W_UNROLL for (int j = 0; j < 4; j++) {
            const __m512i wl = _mm512_load_si512((const void *)&up->v[b][j]);
            const __m512i wh = _mm512_load_si512((const void *)&up->v[b][4 + j]);
            W_UNROLL for (int i = 0; i < C; i++) {
                const int8_t *qs = w_qs(k, y[i] + (size_t)b * ab);
                lo[i] = _mm512_dpbusd_epi32(lo[i], wl, _mm512_set1_epi32(w_load_i32(qs + 4 * j)));
                hi[i] = _mm512_dpbusd_epi32(hi[i], wh, _mm512_set1_epi32(w_load_i32(qs + 16 + 4 * j)));
            }
        }
        const __m512 dx = up->dx[b];
        W_UNROLL for (int i = 0; i < C; i++) {
            const __m512 si = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_add_epi32(lo[i], hi[i]), _mm512_set1_epi32(pp->so[t + i][b])));
            const __m512 dy = _mm512_set1_ps(pp->dy[t + i][b]);
            if (k->step == W_FMA) {
                c[i] = _mm512_fmadd_ps(si, _mm512_mul_ps(dy, dx), c[i]);
            } else if (k->step == W_MUL) {
                c[i] = _mm512_add_ps(c[i], _mm512_mul_ps(si, _mm512_mul_ps(dx, dy)));
            } else {
                const __m512 mins = _mm512_mul_ps(up->mx[b], _mm512_set1_ps(pp->sy[t + i][b]));
                c[i] = _mm512_add_ps(c[i], _mm512_add_ps(_mm512_mul_ps(si, _mm512_mul_ps(dx, dy)), mins));
            }
        }
    }
    W_UNROLL for (int i = 0; i < C; i++) acc[i] = c[i];
}

static void w_gemm(const w_kind *k, int64_t n, int32_t nr, int32_t nc, const uint8_t *w, size_t ws,
                   const uint8_t *a, size_t as, float *y, int64_t ldy) {
    const int64_t nb = n / 32;
    const size_t ab = k->q8_1 ? sizeof(block_q8_1) : sizeof(block_q8_0);
    w_prep pp;
    w_unp up;
    __m512 acc[W_TOK];
    for (int32_t c0 = 0; c0 < nc; c0 += W_TOK) {
        const int ncc = Q_MIN(W_TOK, nc - c0);
        for (int32_t r0 = 0; r0 < nr; r0 += W_ROWS) {
            const int nrr = Q_MIN(W_ROWS, nr - r0);
            const uint8_t *rows[W_ROWS];
            for (int r = 0; r < W_ROWS; r++) rows[r] = w + (size_t)(r0 + (r < nrr ? r : 0)) * ws;
            for (int t = 0; t < ncc; t++) acc[t] = _mm512_setzero_ps();
            for (int64_t k0 = 0; k0 < nb; k0 += W_KB) {
                const int nbk = (int)Q_MIN(W_KB, nb - k0);
                if (r0 == 0 || nb > W_KB) w_prep_rows(k, &pp, a + (size_t)c0 * as, as, ncc, k0, nbk);
                w_unpack(k, &up, rows, k0, nbk);
                for (int t = 0; t < ncc; t += W_C) {
                    const uint8_t *yt[W_C] = { 0 };
                    for (int i = 0; i < W_C && t + i < ncc; i++) yt[i] = a + (size_t)(c0 + t + i) * as + (size_t)k0 * ab;
                    const int left = ncc - t;   /* the last 1..3 tokens as one tile of that many */
                    if (left >= 4) w_tile(4, k, nbk, &up, &pp, t, yt, ab, &acc[t]);
                    else if (left == 3) w_tile(3, k, nbk, &up, &pp, t, yt, ab, &acc[t]);
                    else if (left == 2) w_tile(2, k, nbk, &up, &pp, t, yt, ab, &acc[t]);
                    else w_tile(1, k, nbk, &up, &pp, t, yt, ab, &acc[t]);
                }
            }
            for (int t = 0; t < ncc; t++) {
                float v[W_ROWS];
                _mm512_storeu_ps(v, acc[t]);
                memcpy(y + (c0 + t) * ldy + r0, v, (size_t)nrr * sizeof(float));
            }
        }
    }
}

#define W_GEMM(name, type, decode)                                                                    \
    void Q_AVX512_NAME(name)(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws, const void *a, \
                             size_t as, float *y, int64_t ldy) {                                     \
        if (nc == 1) decode(n, nr, nc, w, ws, a, as, y, ldy);                                         \
        else w_gemm(&w_kinds[type], n, nr, nc, w, ws, a, as, y, ldy);                                \
    }

W_GEMM(q_avx512_gemm_q8_0_q8_0, Q_TYPE_Q8_0, q_avx2_gemm_q8_0_q8_0)
W_GEMM(q_avx512_gemm_q4_0_q8_0, Q_TYPE_Q4_0, q_avx2_gemm_q4_0_q8_0)
W_GEMM(q_avx512_gemm_q4_1_q8_1, Q_TYPE_Q4_1, q_avx2_gemm_q4_1_q8_1)
W_GEMM(q_avx512_gemm_q5_0_q8_0, Q_TYPE_Q5_0, q_avx2_gemm_q5_0_q8_0)
W_GEMM(q_avx512_gemm_q5_1_q8_1, Q_TYPE_Q5_1, q_avx2_gemm_q5_1_q8_1)
W_GEMM(q_avx512_gemm_iq4_nl_q8_0, Q_TYPE_IQ4_NL, q_avx2_gemm_iq4_nl_q8_0)
W_GEMM(q_avx512_gemm_mxfp4_q8_0, Q_TYPE_MXFP4, q_avx2_gemm_mxfp4_q8_0)

#include "cpu/avx512_end.h"
#endif
