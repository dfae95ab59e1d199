/* kern_avx512_q32.c — the AVX-512 set's gemm tiles for the row-major 32-element block
 * types, for batches; decode (one token) is bound by memory and runs the AVX2 tile. The
 * types whose scalar order is one float accumulator per output (Q4_0, Q4_1, Q5_0, Q5_1,
 * IQ4_NL, MXFP4) share the engine below; Q8_0, 8 float lanes per output, has its own
 * section at the end (its weights are normally repacked: cpu/repack_avx512.c).
 *
 * One engine, a table of kinds. Each weight block is decoded once per K chunk to 32
 * unsigned codes, value + offset (nibbles; the fifth bit; a grid lookup), and 16 rows'
 * codes are interleaved so that dword r of vector j holds row r's elements 4j..4j+3. Then
 * every token of the pass runs VNNI's vpdpbusd (codes unsigned, activations signed) over
 * them: 16 rows x 4 elements per instruction. sumi = that - offset * sum(a), exact, and
 * the float step is the scalar body's, one for one, on 16 lanes (lane r = row r):
 *   FMA (Q4_0):              acc = fma(sumi, dy * dx, acc)
 *   MUL (Q5_0, IQ4_NL, MXFP4): acc = acc + sumi * (dx * dy)       (dx: 2^(e-128) for MXFP4)
 *   MUL_MIN (Q4_1, Q5_1):    acc = acc + (sumi * (dx * dy) + m * s)  (Q8_1's s = dy * sum(a))
 * each product and sum rounded on its own. Rows past nr in the last 16 are row 0 again,
 * computed and never stored.
 *
 * Compiled for AVX-512 F/BW/VL + VNNI by cpu/avx512_begin.h's region (or over SIMDe with
 * Q_AVX512_EMU); cpu/matmul.c lists these only for the AVX-512 set. Memory: stack scratch
 * only (< 32 KiB per call; Q8_0 < 160 KiB). */
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

/* ---- Q8_0 row-major: 8 float lanes per output ----
 * The scalar order keeps lane L = elements 4L..4L+3 of each block, fma(d, lane, acc[L])
 * per block, x86_hsum8 at the end, so one register holds two outputs: row r against
 * tokens t (lanes 0-7) and t+1 (lanes 8-15). The row's block, biased to unsigned (w + 128),
 * is broadcast to both halves; vpdpbusd against the two tokens' activations gives each
 * half's 8 lanes, and -128 * (a_4L + .. + a_4L+3), prepared per token pair and block,
 * starts the accumulation. (Used only where the weights are not repacked to x8.) */

typedef struct w8_prep {
    __m512i corr[W_TOK / 2][W_KB];   /* -128 x the 4-sums, [token t | token t+1] */
    __m512  dy[W_TOK / 2][W_KB];     /* [dy_t x 8 | dy_t+1 x 8] */
} w8_prep;

static void w8_prep_pairs(w8_prep *pp, const uint8_t *a, size_t as, int nt, int64_t k0, int nbk) {
    const __m512i ones = _mm512_set1_epi8(1);
    for (int p = 0; 2 * p < nt; p++) {
        const int t1 = 2 * p + 1 < nt ? 2 * p + 1 : 2 * p;
        const block_q8_0 *y0 = (const block_q8_0 *)(const void *)(a + (size_t)(2 * p) * as) + k0;
        const block_q8_0 *y1 = (const block_q8_0 *)(const void *)(a + (size_t)t1 * as) + k0;
        for (int b = 0; b < nbk; b++) {
            const __m512i av = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)y0[b].qs)),
                                                  _mm256_loadu_si256((const __m256i *)y1[b].qs), 1);
            pp->corr[p][b] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, av), 7));
            const __m256 d0 = _mm256_set1_ps(w_h2f(y0[b].d)), d1 = _mm256_set1_ps(w_h2f(y1[b].d));
            pp->dy[p][b] = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(d0)), _mm256_castps_pd(d1), 1));
        }
    }
}

/* x86_hsum8 of the 8 lanes of v: ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)). */
W_INLINE float w8_hsum8(__m256 v) {
    const __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    const __m128 s2 = _mm_add_ps(r, _mm_movehl_ps(r, r));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

enum { W8_R = 4, W8_P = 2 };   /* rows x token pairs per register tile: 8 accumulators */

/* R rows (block pointers x[r] at the chunk) x P token pairs (pairs p0..) over the chunk. */
W_INLINE void w8_tile(const int R, const int P, int nbk, const block_q8_0 *const *x, const uint8_t *a, size_t as,
                      int c0, int p0, int nt, int64_t k0, const w8_prep *pp, __m512 (*acc)[W8_P]) {
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    __m512 c[W8_R][W8_P];
    W_UNROLL for (int r = 0; r < R; r++) W_UNROLL for (int q = 0; q < P; q++) c[r][q] = acc[r][q];
    const block_q8_0 *ya[W8_P], *yb[W8_P];
    W_UNROLL for (int q = 0; q < P; q++) {
        const int t0 = 2 * (p0 + q), t1 = t0 + 1 < nt ? t0 + 1 : t0;
        ya[q] = (const block_q8_0 *)(const void *)(a + (size_t)(c0 + t0) * as) + k0;
        yb[q] = (const block_q8_0 *)(const void *)(a + (size_t)(c0 + t1) * as) + k0;
    }
    for (int b = 0; b < nbk; b++) {
        __m512i av[W8_P];
        W_UNROLL for (int q = 0; q < P; q++)
            av[q] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)ya[q][b].qs)),
                                       _mm256_loadu_si256((const __m256i *)yb[q][b].qs), 1);
        W_UNROLL for (int r = 0; r < R; r++) {
            const __m512i wu = _mm512_xor_si512(_mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)x[r][b].qs)), bias);
            const __m512 dx = _mm512_set1_ps(w_h2f(x[r][b].d));
            W_UNROLL for (int q = 0; q < P; q++) {
                const __m512i si = _mm512_dpbusd_epi32(pp->corr[p0 + q][b], wu, av[q]);
                c[r][q] = _mm512_fmadd_ps(_mm512_mul_ps(dx, pp->dy[p0 + q][b]), _mm512_cvtepi32_ps(si), c[r][q]);
            }
        }
    }
    W_UNROLL for (int r = 0; r < R; r++) W_UNROLL for (int q = 0; q < P; q++) acc[r][q] = c[r][q];
}

enum { W8_PASS = 32 };   /* rows per pass sharing one activation prep (the matmul op's prefill tile) */

static void w8_gemm(int64_t n, int32_t nr, int32_t nc, const uint8_t *w, size_t ws, const uint8_t *a, size_t as,
                    float *y, int64_t ldy) {
    const int64_t nb = n / 32;
    w8_prep pp;
    __m512 acc[W8_PASS / W8_R][W_TOK / 2][W8_R];   /* [row group][pair][row]: 64 KiB */
    for (int32_t c0 = 0; c0 < nc; c0 += W_TOK) {
        const int ncc = Q_MIN(W_TOK, nc - c0), npairs = (ncc + 1) / 2;
        for (int32_t g0 = 0; g0 < nr; g0 += W8_PASS) {
            const int ng = (Q_MIN(W8_PASS, nr - g0) + W8_R - 1) / W8_R;
            for (int g = 0; g < ng; g++)
                for (int p = 0; p < npairs; p++)
                    for (int r = 0; r < W8_R; r++) acc[g][p][r] = _mm512_setzero_ps();
            for (int64_t k0 = 0; k0 < nb; k0 += W_KB) {
                const int nbk = (int)Q_MIN(W_KB, nb - k0);
                w8_prep_pairs(&pp, a + (size_t)c0 * as, as, ncc, k0, nbk);
                for (int g = 0; g < ng; g++) {
                    const int32_t r0 = g0 + W8_R * g;
                    const int nrr = Q_MIN(W8_R, nr - r0);   /* rows past nr repeat row r0 */
                    const block_q8_0 *x[W8_R];
                    for (int r = 0; r < W8_R; r++)
                        x[r] = (const block_q8_0 *)(const void *)(w + (size_t)(r0 + (r < nrr ? r : 0)) * ws) + k0;
                    for (int p = 0; p < npairs; p += W8_P) {
                        __m512 t[W8_R][W8_P];
                        for (int r = 0; r < W8_R; r++)
                            for (int q = 0; q < W8_P; q++) t[r][q] = acc[g][Q_MIN(p + q, npairs - 1)][r];
                        if (npairs - p >= 2) w8_tile(W8_R, 2, nbk, x, a, as, c0, p, ncc, k0, &pp, t);
                        else w8_tile(W8_R, 1, nbk, x, a, as, c0, p, ncc, k0, &pp, t);
                        for (int r = 0; r < W8_R; r++)
                            for (int q = 0; q < W8_P && p + q < npairs; q++) acc[g][p + q][r] = t[r][q];
                    }
                }
            }
            for (int g = 0; g < ng; g++)
                for (int p = 0; p < npairs; p++)
                    for (int r = 0; r < W8_R && g0 + W8_R * g + r < nr; r++) {
                        const __m512 v = acc[g][p][r];
                        float *yc = y + (int64_t)(c0 + 2 * p) * ldy + g0 + W8_R * g + r;
                        yc[0] = w8_hsum8(_mm512_castps512_ps256(v));
                        if (2 * p + 1 < ncc) yc[ldy] = w8_hsum8(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
                    }
        }
    }
}

void Q_AVX512_NAME(q_avx512_gemm_q8_0_q8_0)(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws,
                                            const void *a, size_t as, float *y, int64_t ldy) {
    if (nc == 1) q_avx2_gemm_q8_0_q8_0(n, nr, nc, w, ws, a, as, y, ldy);
    else w8_gemm(n, nr, nc, w, ws, a, as, y, ldy);
}

#define W_GEMM(name, type, decode)                                                                    \
    void Q_AVX512_NAME(name)(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws, const void *a, \
                             size_t as, float *y, int64_t ldy) {                                     \
        if (nc == 1) decode(n, nr, nc, w, ws, a, as, y, ldy);                                         \
        else w_gemm(&w_kinds[type], n, nr, nc, w, ws, a, as, y, ldy);                                \
    }

W_GEMM(q_avx512_gemm_q4_0_q8_0, Q_TYPE_Q4_0, q_avx2_gemm_q4_0_q8_0)
W_GEMM(q_avx512_gemm_q4_1_q8_1, Q_TYPE_Q4_1, q_avx2_gemm_q4_1_q8_1)
W_GEMM(q_avx512_gemm_q5_0_q8_0, Q_TYPE_Q5_0, q_avx2_gemm_q5_0_q8_0)
W_GEMM(q_avx512_gemm_q5_1_q8_1, Q_TYPE_Q5_1, q_avx2_gemm_q5_1_q8_1)
W_GEMM(q_avx512_gemm_iq4_nl_q8_0, Q_TYPE_IQ4_NL, q_avx2_gemm_iq4_nl_q8_0)
W_GEMM(q_avx512_gemm_mxfp4_q8_0, Q_TYPE_MXFP4, q_avx2_gemm_mxfp4_q8_0)

#include "cpu/avx512_end.h"
#endif
