/* kern_avx2_q32.c — hand-written AVX2+FMA+F16C kernels for the weight types with
 * 32-element blocks (Q4_0, Q8_0, Q4_1, Q5_0, Q5_1, IQ4_NL, MXFP4) times Q8_0 / Q8_1
 * activations: a vec_dot (one output) and a gemm tile (rows x tokens) per type.
 * Not the reference: every output is bit-identical to the scalar body in
 * cpu/vec_dot_impl.h, i.e. the same per-block roundings in the same order (FMA where it
 * has QFMA, a separate multiply and add where it has a*b+c); SIMD only chooses which
 * loads are shared and which outputs share a register. Integer block sums are exact, so
 * their order is free.
 *
 * Every type's scalar order is one float accumulator per output fed block after block,
 * so the kernels work on 8 weight rows at once, one row per float lane: one vector
 * multiply-add (or multiply, add) per block serves 8 outputs.
 * - Decode (one token): rows k and k+4 share a vector (low nibbles against activation
 *   elements 0..15 duplicated in both halves, high nibbles against 16..31); maddubs +
 *   madd give 4 int32 partial sums per row, and a 4x4 transpose-add per 128-bit half
 *   turns 8 rows' partials into one vector of 8 row sums.
 * - Prefill (several tokens): the tile's 8 rows are first repacked (unpacked to bytes,
 *   interleaved 4 bytes per row) so that one maddubs of a repacked vector against a
 *   broadcast 4-byte group of one token's activations yields int16 partial sums for all
 *   8 rows; a repacked block is reused by every token of the tile.
 * - Small batches (Q4_0, 2..8 tokens, the server's batched decode): the decode layout,
 *   each block of the tile's rows unpacked once and used for every token; the repack
 *   would cost more than it saves at a few tokens.
 * (Q4_0 and Q8_0 matrices are normally repacked at load into cpu/repack.h's x8 layout
 * and multiplied by cpu/repack_avx2.c; these row-major kernels serve the rest.)
 *
 * maddubs multiplies unsigned by signed bytes and saturates its int16 pair sums, so
 * each kind picks which operand is unsigned and how many pairs an int16 lane may hold
 * (bounds at each use). Offsets (Q4_0's -8, Q5_0's -16, MXFP4 as grid + 12) are taken
 * off as offset * sum(activations) in decode; in prefill the activations get + 128
 * (unsigned) and the signed codes' 128 * sum comes off per row and block. Q8_0 and
 * IQ4_NL multiply |w| by sign(a, w): exact while activations avoid -128, which the
 * activation quantizer never produces.
 *
 * Memory: scratch tables live on the stack (< 64 KiB per call); nothing is allocated or
 * owned. Compiled for AVX2+FMA+F16C by the target pragma below; cpu/matmul.c only picks
 * these when the CPU has them. Empty on other architectures. */
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/base.h"
#include "cpu/kern_avx2.h"
#include "tensor/quants/blocks.h"

#if defined(__x86_64__)
#include "cpu/avx2_begin.h"

#define KA_INLINE static inline __attribute__((always_inline))
#if defined(__clang__)
#define KA_UNROLL _Pragma("clang loop unroll(full)")
#else
#define KA_UNROLL _Pragma("GCC unroll 8")
#endif

enum {
    KA_TOK = 64,     /* tokens per pass (the matmul op's tile width) */
    KA_ROWS = 16,    /* rows per pass (the matmul op's tile height) */
    KA_PROWS = 32,   /* prefill of the one-accumulator kinds: rows sharing one activation prep
                      * (a 32-row tile runs ~9% faster than two 16-row ones) */
    KA_KB = 16,      /* blocks per K chunk of Q4_0 prefill: activation tables 64 tokens x 16 blocks = 34 KiB */
    KA_SMALL = 8,    /* Q4_0: batches up to this many tokens take the small-batch path */
};

/* Empty asm that claims to change its operands: keeps each in a register at this point,
 * so the compiler cannot reassociate a running integer sum into a tree of partial sums
 * (which needs every term live at once and spills). Generates no instruction. */
#define KA_PIN4(a, b, c, d) __asm__("" : "+x"(a), "+x"(b), "+x"(c), "+x"(d))

KA_INLINE float h2f(q_half h) { return _cvtsh_ss(h); }

KA_INLINE int32_t load_i32(const void *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* 16 packed nibbles -> 32 bytes 0..15 in element order (byte e = element e: the low
 * nibbles are elements 0..15, the high ones 16..31). */
KA_INLINE __m256i nib32(const uint8_t *qs) {
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    return _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_set_epi64x(4, 4, 0, 0)), _mm256_set1_epi8(0x0F));
}

/* Sum of 8 int32 lanes (exact). */
KA_INLINE int32_t hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

/* 4x4 transposes of int32 lanes in each 128-bit half: v[k] = [4 dwords of row k | 4 of
 * row k + 4], k < 4 -> out[j] = [dword j of rows 0..3 | dword j of rows 4..7]. */
KA_INLINE void transpose4x2_epi32(const __m256i v[4], __m256i out[4]) {
    const __m256i t0 = _mm256_unpacklo_epi32(v[0], v[1]), t1 = _mm256_unpackhi_epi32(v[0], v[1]);
    const __m256i t2 = _mm256_unpacklo_epi32(v[2], v[3]), t3 = _mm256_unpackhi_epi32(v[2], v[3]);
    out[0] = _mm256_unpacklo_epi64(t0, t2);
    out[1] = _mm256_unpackhi_epi64(t0, t2);
    out[2] = _mm256_unpacklo_epi64(t1, t3);
    out[3] = _mm256_unpackhi_epi64(t1, t3);
}

/* The 8 halves at row[r] + off, r = 0..7, as one vector: packed in general registers
 * (idle in these kernels), which beats a gather on Zen 3. */
KA_INLINE __m128i halves8(const uint8_t *const row[8], size_t off) {
    uint64_t lo = 0, hi = 0;
    for (int r = 0; r < 4; r++) {
        uint16_t a, b;
        memcpy(&a, row[r] + off, 2);
        memcpy(&b, row[r + 4] + off, 2);
        lo |= (uint64_t)a << (16 * r);
        hi |= (uint64_t)b << (16 * r);
        __asm__("" : "+r"(lo), "+r"(hi));   /* keep it scalar: no vectorized zero-extends */
    }
    return _mm_set_epi64x((long long)hi, (long long)lo);
}

/* Floats of the 8 halves at p + i * stride, i = 0..7, stored to out[0..7]. */
KA_INLINE void halves8_to(const uint8_t *p, size_t stride, float *out) {
    const uint8_t *row[8];
    for (int i = 0; i < 8; i++) row[i] = p + (size_t)i * stride;
    _mm256_storeu_ps(out, _mm256_cvtph_ps(halves8(row, 0)));
}

/* out[i] = the half at p + i * stride as a float, i < n; 8 at a time. */
KA_INLINE void halves_to(const uint8_t *p, size_t stride, int n, float *out) {
    int i = 0;
    for (; i + 8 <= n; i += 8) halves8_to(p + (size_t)i * stride, stride, out + i);
    for (; i < n; i++) {
        q_half h;
        memcpy(&h, p + (size_t)i * stride, 2);
        out[i] = h2f(h);
    }
}

/* Decode prefetch. A decode tile's rows are short streams (a TinyLlama row is 18 cache
 * lines) read 16 at a time, which the hardware prefetchers barely ramp up on: alone,
 * the kernels reached ~40% of the read bandwidth. So each decode call prefetches into L2,
 * in address order and spread evenly over its block loop, the same rows of the next
 * tile: the pool gives each thread a contiguous share of the tiles (core/pool.c), so
 * that is this thread's next call but at the end of its share (cpu/repack_avx2.c's x8
 * decode says why not two ahead). Addresses past the tensor's end are only prefetched,
 * never read. */
typedef struct ka_pf {
    uintptr_t p, end;
    size_t    step;   /* bytes per block step, whole lines */
} ka_pf;

KA_INLINE ka_pf ka_pf_init(const uint8_t *rows, size_t bytes, size_t tile_bytes, int64_t nb) {
    const uintptr_t p = (uintptr_t)rows + tile_bytes;
    const size_t lines = (bytes + 63) / 64, per = nb > 0 ? (lines + (size_t)nb - 1) / (size_t)nb : 0;
    return (ka_pf){ p, p + bytes, per * 64 };
}

KA_INLINE void ka_pf_step(ka_pf *f) {
    const uintptr_t e = Q_MIN(f->p + f->step, f->end);
    for (; f->p < e; f->p += 64) _mm_prefetch((const char *)f->p, _MM_HINT_T1);
}

/* Stores lanes 0..nv-1 of v to y[0..nv-1]. */
KA_INLINE void store_rows(float *y, __m256 v, int nv) {
    if (nv == 8) {
        _mm256_storeu_ps(y, v);
        return;
    }
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_maskstore_ps(y, _mm256_cmpgt_epi32(_mm256_set1_epi32(nv), lane), v);
}

/* ---- Q4_0 x Q8_0: acc = fma(sumi, dy * dx, acc) per block, one accumulator per output ---- */

void q_avx2_vec_dot_q4_0_q8_0(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_0 *x = vx;
    const block_q8_0 *y = vy;
    const __m256i ones = _mm256_set1_epi16(1), eights = _mm256_set1_epi8(8);
    float acc = 0.0f;
    for (int64_t b = 0; b < n / QK4_0; b++) {
        const __m256i av = _mm256_loadu_si256((const __m256i *)y[b].qs);
        const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(nib32(x[b].qs), av), _mm256_maddubs_epi16(eights, av));
        const int32_t sumi = hsum_i32(_mm256_madd_epi16(p, ones));
        acc = __builtin_fmaf((float)sumi, h2f(y[b].d) * h2f(x[b].d), acc);
    }
    *s = acc;
}

/* 16 bytes at lo and 16 at hi as one vector [lo | hi]. */
KA_INLINE __m256i load_2x128(const uint8_t *lo, const uint8_t *hi) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)lo)),
                                   _mm_loadu_si128((const __m128i *)hi), 1);
}

/* s[k] = [4 int32 of row k | 4 int32 of row k + 4], k < 4 -> [sum row 0..3 | sum row 4..7]. */
KA_INLINE __m256i reduce4x2(const __m256i s[4]) {
    const __m256i t0 = _mm256_add_epi32(_mm256_unpacklo_epi32(s[0], s[1]), _mm256_unpackhi_epi32(s[0], s[1]));
    const __m256i t1 = _mm256_add_epi32(_mm256_unpacklo_epi32(s[2], s[3]), _mm256_unpackhi_epi32(s[2], s[3]));
    return _mm256_add_epi32(_mm256_unpacklo_epi64(t0, t1), _mm256_unpackhi_epi64(t0, t1));
}

/* Decode: outputs out[0..nrr) (nrr <= 16) of rows w + r*ws times one activation row y,
 * over nb blocks. Groups of 8 rows, lane r = row r; rows past nrr repeat the last one
 * and are not stored. Per block, rows k and k+4 share a vector: their low nibbles meet
 * elements 0..15 of y (duplicated in both halves), their high nibbles 16..31. */
static void q4_0_tok1(int64_t nb, const uint8_t *w, size_t ws, int nrr, size_t tile, const block_q8_0 *y, float *out) {
    const uint8_t *row[16];
    for (int r = 0; r < 16; r++) row[r] = w + (size_t)Q_MIN(r, nrr - 1) * ws;
    const int ng = (nrr + 7) / 8;
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1), eights = _mm256_set1_epi8(8);
    __m256 acc[2] = { _mm256_setzero_ps(), _mm256_setzero_ps() };
    ka_pf pf = ka_pf_init(w, (size_t)nrr * ws, tile, nb);
    for (int64_t b = 0; b < nb; b++) {
        const size_t bo = (size_t)b * sizeof(block_q4_0);
        ka_pf_step(&pf);
        const __m256i av = _mm256_loadu_si256((const __m256i *)y[b].qs);
        const __m256i alo = _mm256_permute4x64_epi64(av, 0x44), ahi = _mm256_permute4x64_epi64(av, 0xEE);
        /* the -8 offset: 8 * sum(a) in every lane */
        __m256i sa = _mm256_madd_epi16(_mm256_maddubs_epi16(eights, av), ones);
        sa = _mm256_add_epi32(sa, _mm256_permute2x128_si256(sa, sa, 0x01));
        sa = _mm256_add_epi32(sa, _mm256_shuffle_epi32(sa, 0x4E));
        sa = _mm256_add_epi32(sa, _mm256_shuffle_epi32(sa, 0xB1));
        const __m256 dy = _mm256_set1_ps(h2f(y[b].d));
        for (int g = 0; g < ng; g++) {
            const uint8_t *const *rg = row + 8 * g;
            __m256i s[4];
            for (int k = 0; k < 4; k++) {
                const __m256i v = load_2x128(rg[k] + bo + 2, rg[k + 4] + bo + 2);   /* + 2: the nibbles */
                const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                /* int16: two pairs of 0..15 x -128..127, |.| <= 7680 */
                const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, alo), _mm256_maddubs_epi16(hi, ahi));
                s[k] = _mm256_madd_epi16(p, ones);
            }
            const __m256i sumi = _mm256_sub_epi32(reduce4x2(s), sa);
            const __m256 dx = _mm256_cvtph_ps(halves8(rg, bo));
            acc[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(dy, dx), acc[g]);
        }
    }
    for (int g = 0; g < ng; g++) store_rows(out + 8 * g, acc[g], Q_MIN(8, nrr - 8 * g));
}

/* Small batches (2..KA_SMALL tokens): the decode layout of q4_0_tok1, with each block
 * of the nrr <= 16 rows unpacked once and multiplied by every token's activations. No
 * repack and no padded tokens: at a few tokens the prefill path's per-tile repack and
 * its 4-token groups cost more than the products. The weights stream as in decode
 * (same prefetch), so a small batch reads W once per step. */
static void q4_0_small(int64_t nb, const uint8_t *w, size_t ws, int nrr, size_t tile, const uint8_t *a, size_t as,
                       int nc, float *y, int64_t ldy) {
    const uint8_t *row[16];
    for (int r = 0; r < 16; r++) row[r] = w + (size_t)Q_MIN(r, nrr - 1) * ws;
    const int ng = (nrr + 7) / 8;
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1), eights = _mm256_set1_epi8(8);
    __m256 acc[KA_SMALL][2];
    for (int t = 0; t < nc; t++) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    ka_pf pf = ka_pf_init(w, (size_t)nrr * ws, tile, nb);
    for (int64_t b = 0; b < nb; b++) {
        const size_t bo = (size_t)b * sizeof(block_q4_0);
        ka_pf_step(&pf);
        __m256i lo[2][4], hi[2][4];   /* rows k and k + 4 of group g: nibbles of elements 0..15, 16..31 */
        __m256 dx[2];
        for (int g = 0; g < ng; g++) {
            const uint8_t *const *rg = row + 8 * g;
            for (int k = 0; k < 4; k++) {
                const __m256i v = load_2x128(rg[k] + bo + 2, rg[k + 4] + bo + 2);
                lo[g][k] = _mm256_and_si256(v, m4);
                hi[g][k] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            }
            dx[g] = _mm256_cvtph_ps(halves8(rg, bo));
        }
        for (int t = 0; t < nc; t++) {
            const block_q8_0 *yb = (const block_q8_0 *)(const void *)(a + (size_t)t * as) + b;
            const __m256i av = _mm256_loadu_si256((const __m256i *)yb->qs);
            const __m256i alo = _mm256_permute4x64_epi64(av, 0x44), ahi = _mm256_permute4x64_epi64(av, 0xEE);
            __m256i sa = _mm256_madd_epi16(_mm256_maddubs_epi16(eights, av), ones);   /* 8 * sum(a), every lane */
            sa = _mm256_add_epi32(sa, _mm256_permute2x128_si256(sa, sa, 0x01));
            sa = _mm256_add_epi32(sa, _mm256_shuffle_epi32(sa, 0x4E));
            sa = _mm256_add_epi32(sa, _mm256_shuffle_epi32(sa, 0xB1));
            const __m256 dy = _mm256_set1_ps(h2f(yb->d));
            for (int g = 0; g < ng; g++) {
                __m256i sv[4];
                for (int k = 0; k < 4; k++)   /* int16: two pairs of 0..15 x -128..127 */
                    sv[k] = _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(lo[g][k], alo),
                                                               _mm256_maddubs_epi16(hi[g][k], ahi)), ones);
                const __m256i sumi = _mm256_sub_epi32(reduce4x2(sv), sa);
                acc[t][g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(dy, dx[g]), acc[t][g]);
            }
        }
    }
    for (int t = 0; t < nc; t++)
        for (int g = 0; g < ng; g++) store_rows(y + t * ldy + 8 * g, acc[t][g], Q_MIN(8, nrr - 8 * g));
}

/* Prefill. The activations of one K chunk, per token: quants + 128 (so they can be the
 * unsigned operand of maddubs) and the scales as floats. */
typedef struct q4_0_prep {
    __m256i ax[KA_TOK + 3][KA_KB];   /* + 3: a padded last token group */
    float   dy[KA_TOK + 3][KA_KB];
} q4_0_prep;

/* Repacked weights of 8 rows over one K chunk: for block b and 4-element group q, 32
 * bytes holding quants 4q..4q+3 minus 8 (signed) of rows 0..7 in turn; corr[b] lane r =
 * 128 * sum of row r's quants minus 8 (what the +128 on the activations adds); dx the
 * scales. */
typedef struct q4_0_pack {
    __m256i q[KA_KB][8];
    __m256i corr[KA_KB];
    float   dx[KA_KB][8];
} q4_0_pack;

static void q4_0_repack(q4_0_pack *pk, const uint8_t *w, size_t ws, int nv, int64_t b0, int nbk) {
    const uint8_t *row[8];
    for (int r = 0; r < 8; r++) row[r] = w + (size_t)(r < nv ? r : nv - 1) * ws + (size_t)b0 * sizeof(block_q4_0);
    const __m256i m4 = _mm256_set1_epi8(0x0F), eights = _mm256_set1_epi8(8);
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int b = 0; b < nbk; b++) {
        const size_t bo = (size_t)b * sizeof(block_q4_0);
        __m256i lo[4], hi[4];   /* rows k and k + 4: elements 0..15 (lo) and 16..31 (hi), minus 8 */
        for (int k = 0; k < 4; k++) {
            const __m256i v = load_2x128(row[k] + bo + 2, row[k + 4] + bo + 2);
            lo[k] = _mm256_sub_epi8(_mm256_and_si256(v, m4), eights);
            hi[k] = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), eights);
        }
        transpose4x2_epi32(lo, pk->q[b]);
        transpose4x2_epi32(hi, pk->q[b] + 4);
        __m256i z = pk->q[b][0];   /* int8 sums of 8 values in -8..7 stay in -64..56 */
        for (int q = 1; q < 8; q++) z = _mm256_add_epi8(z, pk->q[b][q]);
        pk->corr[b] = _mm256_slli_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(ones8, z), ones16), 7);
        _mm256_storeu_ps(pk->dx[b], _mm256_cvtph_ps(halves8(row, bo)));
    }
}

/* 4 tokens x 8 rows over nbk blocks of a chunk: acc[t] lane r += per block
 * fma(sumi, dy * dx). ax/dy point at token t0's chunk tables (stride KA_KB); the caller
 * pads a short token group by repeating its last token (and discards those sums). */
static void q4_0_pack_tok4(int nbk, const q4_0_pack *pk, const __m256i *ax, const float *dy, __m256 *acc) {
    const __m256i ones = _mm256_set1_epi16(1);
    const uint8_t *a0 = (const uint8_t *)ax, *a1 = (const uint8_t *)(ax + KA_KB);
    const uint8_t *a2 = (const uint8_t *)(ax + 2 * KA_KB), *a3 = (const uint8_t *)(ax + 3 * KA_KB);
    __m256 c0 = acc[0], c1 = acc[1], c2 = acc[2], c3 = acc[3];
    for (int b = 0; b < nbk; b++) {
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
        /* int16 lanes sum 8 pairs of 0..255 x -8..7: within -32640..28560 */
        for (int q = 0; q < 8; q++) {
            const __m256i wq = _mm256_load_si256(&pk->q[b][q]);
            const int o = 32 * b + 4 * q;
            s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(_mm256_set1_epi32(load_i32(a0 + o)), wq));
            s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(_mm256_set1_epi32(load_i32(a1 + o)), wq));
            s2 = _mm256_add_epi16(s2, _mm256_maddubs_epi16(_mm256_set1_epi32(load_i32(a2 + o)), wq));
            s3 = _mm256_add_epi16(s3, _mm256_maddubs_epi16(_mm256_set1_epi32(load_i32(a3 + o)), wq));
            KA_PIN4(s0, s1, s2, s3);
        }
        const __m256i corr = _mm256_load_si256(&pk->corr[b]);
        const __m256 dx = _mm256_load_ps(pk->dx[b]);
#define Q4_0_FIN(c, s, t)                                                                                  \
        c = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_madd_epi16(s, ones), corr)),       \
                            _mm256_mul_ps(_mm256_set1_ps(dy[(t) * KA_KB + b]), dx), c)
        Q4_0_FIN(c0, s0, 0);
        Q4_0_FIN(c1, s1, 1);
        Q4_0_FIN(c2, s2, 2);
        Q4_0_FIN(c3, s3, 3);
#undef Q4_0_FIN
    }
    acc[0] = c0, acc[1] = c1, acc[2] = c2, acc[3] = c3;
}

static void q4_0_gemm_pack(int64_t nb, int32_t nr, int32_t nc, const uint8_t *w, size_t ws, const uint8_t *a,
                           size_t as, float *y, int64_t ldy) {
    q4_0_prep pp;
    q4_0_pack pk;
    __m256 acc[KA_PROWS / 8][KA_TOK + 3];   /* + 3: a padded last token group */
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    for (int32_t c0 = 0; c0 < nc; c0 += KA_TOK) {
        const int ncc = Q_MIN(KA_TOK, nc - c0), nc4 = (ncc + 3) & ~3;
        for (int32_t r0 = 0; r0 < nr; r0 += KA_PROWS) {
            const int nrr = Q_MIN(KA_PROWS, nr - r0), ng = (nrr + 7) / 8;
            for (int g = 0; g < ng; g++)
                for (int t = 0; t < nc4; t++) acc[g][t] = _mm256_setzero_ps();
            for (int64_t k0 = 0; k0 < nb; k0 += KA_KB) {
                const int nbk = (int)Q_MIN(KA_KB, nb - k0);
                for (int t = 0; t < nc4; t++) {   /* tokens past ncc repeat the last one */
                    const block_q8_0 *yb = (const block_q8_0 *)(const void *)(a + (size_t)(c0 + Q_MIN(t, ncc - 1)) * as) + k0;
                    for (int b = 0; b < nbk; b++)
                        pp.ax[t][b] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)yb[b].qs), bias);
                    halves_to((const uint8_t *)yb, sizeof(block_q8_0), nbk, pp.dy[t]);
                }
                for (int g = 0; g < ng; g++) {
                    q4_0_repack(&pk, w + (size_t)(r0 + 8 * g) * ws, ws, Q_MIN(8, nrr - 8 * g), k0, nbk);
                    for (int t = 0; t < ncc; t += 4) q4_0_pack_tok4(nbk, &pk, pp.ax[t], pp.dy[t], &acc[g][t]);
                }
            }
            for (int g = 0; g < ng; g++)
                for (int t = 0; t < ncc; t++)
                    store_rows(y + (c0 + t) * ldy + r0 + 8 * g, acc[g][t], Q_MIN(8, nrr - 8 * g));
        }
    }
}

void q_avx2_gemm_q4_0_q8_0(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws, const void *a, size_t as,
                           float *y, int64_t ldy) {
    const int64_t nb = n / QK4_0;
    if (nc >= 2 && nc <= KA_SMALL) {
        for (int32_t r = 0; r < nr; r += 16)
            q4_0_small(nb, (const uint8_t *)w + (size_t)r * ws, ws, Q_MIN(16, nr - r), (size_t)nr * ws, a, as, nc, y + r, ldy);
        return;
    }
    if (nc >= 2) {
        q4_0_gemm_pack(nb, nr, nc, w, ws, a, as, y, ldy);
        return;
    }
    for (int32_t c = 0; c < nc; c++)
        for (int32_t r = 0; r < nr; r += 16)
            q4_0_tok1(nb, (const uint8_t *)w + (size_t)r * ws, ws, Q_MIN(16, nr - r), (size_t)nr * ws,
                      (const block_q8_0 *)(const void *)((const uint8_t *)a + (size_t)c * as), y + c * ldy + r);
}

/* ---- Q8_0, Q4_1, Q5_0, Q5_1, IQ4_NL, MXFP4: sum += sumi * (dx * dy) [+ m * s] per block ----
 *
 * One float accumulator per output fed block after block with a separate multiply and
 * add (no FMA), as the scalar bodies. One code path for the six, specialized by a
 * constant kind (every switch below folds away):
 *   kind    block  weight code for maddubs          activations  int16 sums per block
 *   Q8_0    34 B   int8 -127..127: |w| x sign(a, w)  Q8_0         1 pair (madd each)
 *   Q4_1    20 B   nibble 0..15 (unsigned)           Q8_1 as is   8 pairs <= 30720
 *   Q5_1    24 B   5-bit 0..31 (unsigned)            Q8_1 as is   4 pairs <= 31744
 *   Q5_0    22 B   decode: 0..31, -16 sum(a) after;  Q8_0         4 pairs
 *                  prefill: -16..15 x (a + 128), - 128 sum(w) after
 *   MXFP4   17 B   decode: grid + 12 in 0..24, -12 sum(a) after; prefill: grid -12..12
 *                  x (a + 128), - 128 sum(w) after  Q8_0         4 pairs
 *   IQ4_NL  18 B   grid -127..113: |w| x sign(a, w)  Q8_0         1 pair (madd each)
 * (The sign trick is exact while activations avoid -128, which the activation quantizer
 * never produces.) */
typedef enum q32_kind { Q32_Q8_0, Q32_Q4_1, Q32_Q5_0, Q32_Q5_1, Q32_IQ4_NL, Q32_MXFP4 } q32_kind;

KA_INLINE size_t q32_bsize(q32_kind k) {
    switch (k) {
    case Q32_Q8_0: return sizeof(block_q8_0);
    case Q32_Q4_1: return sizeof(block_q4_1);
    case Q32_Q5_0: return sizeof(block_q5_0);
    case Q32_Q5_1: return sizeof(block_q5_1);
    case Q32_IQ4_NL: return sizeof(block_iq4_nl);
    default: return sizeof(block_mxfp4);
    }
}
KA_INLINE int q32_qs(q32_kind k) {   /* byte offset of the codes */
    return k == Q32_Q4_1 ? 4 : k == Q32_Q5_0 ? 6 : k == Q32_Q5_1 ? 8 : k == Q32_IQ4_NL || k == Q32_Q8_0 ? 2 : 1;
}
KA_INLINE int q32_signed(q32_kind k) { return k == Q32_IQ4_NL || k == Q32_Q8_0; }   /* |w| x sign(a, w) */
KA_INLINE int q32_is_q5(q32_kind k) { return k == Q32_Q5_0 || k == Q32_Q5_1; }
KA_INLINE int q32_has_m(q32_kind k) { return k == Q32_Q4_1 || k == Q32_Q5_1; }    /* Q8_1 activations */
KA_INLINE int q32_offset(q32_kind k) { return k == Q32_Q5_0 ? 16 : k == Q32_MXFP4 ? 12 : 0; }
KA_INLINE int q32_split(q32_kind k) { return q32_is_q5(k) || k == Q32_MXFP4; }    /* int16 holds 4 pairs */
KA_INLINE size_t q32_abytes(q32_kind k) { return q32_has_m(k) ? sizeof(block_q8_1) : sizeof(block_q8_0); }

/* The nibble lookup tables of IQ4_NL (signed grid) and MXFP4 (grid + 12, unsigned). */
KA_INLINE __m256i q32_table(q32_kind k) {
    if (k == Q32_IQ4_NL)
        return _mm256_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
                                -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
    return _mm256_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0,
                            12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0);
}

/* 16 bits of qh (bit j -> element j of the half) as bytes 0x10 / 0; q holds the row's qh
 * word in every dword of its 128-bit half; ctrl picks qh byte 0/1 (low half of the block)
 * or 2/3 (high half) for bytes 0..7 / 8..15. */
KA_INLINE __m256i q32_bit5(__m256i q, __m256i ctrl) {
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    const __m256i b = _mm256_and_si256(_mm256_shuffle_epi8(q, ctrl), sel);
    return _mm256_and_si256(_mm256_cmpeq_epi8(b, sel), _mm256_set1_epi8(0x10));
}

/* Weight codes of rows p0 (low 128 bits) and p1 (high 128) at block start: *lo = elements
 * 0..15, *hi = elements 16..31 of each row, in the decode form of the table above. */
KA_INLINE void q32_unpack2(q32_kind k, const uint8_t *p0, const uint8_t *p1, __m256i *lo, __m256i *hi) {
    if (k == Q32_Q8_0) {   /* bytes in element order */
        *lo = load_2x128(p0 + 2, p1 + 2);
        *hi = load_2x128(p0 + 18, p1 + 18);
        return;
    }
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i v = load_2x128(p0 + q32_qs(k), p1 + q32_qs(k));
    __m256i l = _mm256_and_si256(v, m4), h = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    if (q32_is_q5(k)) {
        const int qh = k == Q32_Q5_0 ? 2 : 4;
        const __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi32(load_i32(p0 + qh))),
                                                  _mm_set1_epi32(load_i32(p1 + qh)), 1);
        l = _mm256_or_si256(l, q32_bit5(q, _mm256_set_epi64x(0x0101010101010101ll, 0, 0x0101010101010101ll, 0)));
        h = _mm256_or_si256(h, q32_bit5(q, _mm256_set_epi64x(0x0303030303030303ll, 0x0202020202020202ll,
                                                              0x0303030303030303ll, 0x0202020202020202ll)));
    } else if (k == Q32_IQ4_NL || k == Q32_MXFP4) {
        l = _mm256_shuffle_epi8(q32_table(k), l);
        h = _mm256_shuffle_epi8(q32_table(k), h);
    }
    *lo = l;
    *hi = h;
}

/* Row scales of 8 rows (row[r] at block start + off): d as floats (MXFP4: 2^(e - 128)). */
KA_INLINE __m256 q32_dx(q32_kind k, const uint8_t *const row[8], size_t off) {
    if (k != Q32_MXFP4) return _mm256_cvtph_ps(halves8(row, off));
    const __m256i e = _mm256_setr_epi32(row[0][off], row[1][off], row[2][off], row[3][off], row[4][off],
                                        row[5][off], row[6][off], row[7][off]);
    /* e >= 2: exponent field e - 1; e = 0, 1: the subnormals 2^-128, 2^-127 */
    const __m256i normal = _mm256_slli_epi32(_mm256_sub_epi32(e, _mm256_set1_epi32(1)), 23);
    const __m256i sub = _mm256_sllv_epi32(_mm256_set1_epi32(0x00200000), e);
    const __m256i is_sub = _mm256_cmpgt_epi32(_mm256_set1_epi32(2), e);
    return _mm256_castsi256_ps(_mm256_blendv_epi8(normal, sub, is_sub));
}

/* acc += sumi * (dx * dy) [+ mx * sy] lane by lane, in the scalar body's rounding steps. */
KA_INLINE __m256 q32_fin(q32_kind k, __m256 acc, __m256i sumi, __m256 dx, __m256 dy, __m256 mx, __m256 sy) {
    const __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(dx, dy));
    return _mm256_add_ps(acc, q32_has_m(k) ? _mm256_add_ps(t, _mm256_mul_ps(mx, sy)) : t);
}

/* Decode: out[0..nrr) (nrr <= 16) = rows w + r*ws times one activation row, as q4_0_tok1. */
KA_INLINE void q32_tok1(q32_kind k, int64_t nb, const uint8_t *w, size_t ws, int nrr, size_t tile, const uint8_t *a,
                        float *out) {
    const size_t bs = q32_bsize(k), abs_ = q32_abytes(k);
    const int aq = q32_has_m(k) ? 4 : 2;   /* activation quants offset */
    const uint8_t *row[16];
    for (int r = 0; r < 16; r++) row[r] = w + (size_t)Q_MIN(r, nrr - 1) * ws;
    const int ng = (nrr + 7) / 8;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[2] = { _mm256_setzero_ps(), _mm256_setzero_ps() };
    ka_pf pf = ka_pf_init(w, (size_t)nrr * ws, tile, nb);
    for (int64_t b = 0; b < nb; b++) {
        const size_t bo = (size_t)b * bs;
        ka_pf_step(&pf);
        const uint8_t *ab = a + (size_t)b * abs_;
        const __m256i av = _mm256_loadu_si256((const __m256i *)(ab + aq));
        const __m256i alo = _mm256_permute4x64_epi64(av, 0x44), ahi = _mm256_permute4x64_epi64(av, 0xEE);
        __m256i off = _mm256_setzero_si256();
        if (q32_offset(k)) {   /* offset * sum(a) in every lane */
            off = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8((char)q32_offset(k)), av), ones);
            off = _mm256_add_epi32(off, _mm256_permute2x128_si256(off, off, 0x01));
            off = _mm256_add_epi32(off, _mm256_shuffle_epi32(off, 0x4E));
            off = _mm256_add_epi32(off, _mm256_shuffle_epi32(off, 0xB1));
        }
        uint16_t hd, hs = 0;
        memcpy(&hd, ab, 2);
        if (q32_has_m(k)) memcpy(&hs, ab + 2, 2);
        const __m256 dy = _mm256_set1_ps(h2f(hd)), sy = _mm256_set1_ps(h2f(hs));
        for (int g = 0; g < ng; g++) {
            const uint8_t *const *rg = row + 8 * g;
            __m256i s[4];
            for (int i = 0; i < 4; i++) {
                __m256i lo, hi;
                q32_unpack2(k, rg[i] + bo, rg[i + 4] + bo, &lo, &hi);
                if (q32_signed(k)) {
                    const __m256i pl = _mm256_maddubs_epi16(_mm256_abs_epi8(lo), _mm256_sign_epi8(alo, lo));
                    const __m256i ph = _mm256_maddubs_epi16(_mm256_abs_epi8(hi), _mm256_sign_epi8(ahi, hi));
                    s[i] = _mm256_add_epi32(_mm256_madd_epi16(pl, ones), _mm256_madd_epi16(ph, ones));
                } else {
                    const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, alo), _mm256_maddubs_epi16(hi, ahi));
                    s[i] = _mm256_madd_epi16(p, ones);
                }
            }
            const __m256i sumi = _mm256_sub_epi32(reduce4x2(s), off);
            const __m256 dx = q32_dx(k, rg, bo);
            const __m256 mx = q32_has_m(k) ? _mm256_cvtph_ps(halves8(rg, bo + 2)) : dx;
            acc[g] = q32_fin(k, acc[g], sumi, dx, dy, mx, sy);
        }
    }
    for (int g = 0; g < ng; g++) store_rows(out + 8 * g, acc[g], Q_MIN(8, nrr - 8 * g));
}

/* Prefill: one K chunk of activations per token (quants, + 128 for the offset kinds),
 * with the scales dy and (Q8_1) sy. */
typedef struct q32_prep {
    __m256i ax[KA_TOK + 2][KA_KB];   /* + 2: a padded last token group of 3 */
    float   dy[KA_TOK + 2][KA_KB];
    float   sy[KA_TOK + 2][KA_KB];
} q32_prep;

/* 8 rows of one K chunk, repacked as q4_0_pack: q[b][g] = codes 4g..4g+3 of rows 0..7
 * (prefill form), aq = |q| (Q8_0, IQ4_NL), corr[b] = 128 * sum of each row's codes (offset
 * kinds), dx / mx the row scales. */
typedef struct q32_pack {
    __m256i q[KA_KB][8];
    __m256i aq[KA_KB][8];
    __m256i corr[KA_KB];
    float   dx[KA_KB][8];
    float   mx[KA_KB][8];
} q32_pack;

KA_INLINE void q32_repack(q32_kind k, q32_pack *pk, const uint8_t *w, size_t ws, int nv, int64_t b0, int nbk) {
    const size_t bs = q32_bsize(k);
    const uint8_t *row[8];
    for (int r = 0; r < 8; r++) row[r] = w + (size_t)(r < nv ? r : nv - 1) * ws + (size_t)b0 * bs;
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int b = 0; b < nbk; b++) {
        const size_t bo = (size_t)b * bs;
        __m256i lo[4], hi[4];   /* rows i and i + 4: elements 0..15 (lo) and 16..31 (hi) */
        for (int i = 0; i < 4; i++) {
            q32_unpack2(k, row[i] + bo, row[i + 4] + bo, &lo[i], &hi[i]);
            if (q32_offset(k)) {
                lo[i] = _mm256_sub_epi8(lo[i], _mm256_set1_epi8((char)q32_offset(k)));
                hi[i] = _mm256_sub_epi8(hi[i], _mm256_set1_epi8((char)q32_offset(k)));
            }
        }
        transpose4x2_epi32(lo, pk->q[b]);
        transpose4x2_epi32(hi, pk->q[b] + 4);
        if (q32_signed(k))
            for (int g = 0; g < 8; g++) pk->aq[b][g] = _mm256_abs_epi8(pk->q[b][g]);
        if (q32_offset(k)) {   /* int8 sums of 8 codes in -16..15 stay in -128..120 */
            __m256i z = pk->q[b][0];
            for (int g = 1; g < 8; g++) z = _mm256_add_epi8(z, pk->q[b][g]);
            /* maddubs(1, z) adds signed bytes pairwise: exact */
            pk->corr[b] = _mm256_slli_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(ones8, z), ones16), 7);
        }
        _mm256_storeu_ps(pk->dx[b], q32_dx(k, row, bo));
        if (q32_has_m(k)) _mm256_storeu_ps(pk->mx[b], _mm256_cvtph_ps(halves8(row, bo + 2)));
    }
}

/* Integer sums of 8 rows for 3 tokens over one block (lane r = row r). */
KA_INLINE void q32_block3(q32_kind k, const q32_pack *pk, int b, const uint8_t *a0, const uint8_t *a1,
                          const uint8_t *a2, __m256i *s0, __m256i *s1, __m256i *s2) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i i0 = _mm256_setzero_si256(), i1 = i0, i2 = i0;
    if (q32_signed(k)) {
        for (int g = 0; g < 8; g++) {
            const __m256i wq = _mm256_load_si256(&pk->q[b][g]), wa = _mm256_load_si256(&pk->aq[b][g]);
            const int o = 32 * b + 4 * g;
#define Q32_SIGNED(i, ap) \
            i = _mm256_add_epi32(i, _mm256_madd_epi16(_mm256_maddubs_epi16(wa, _mm256_sign_epi8(_mm256_set1_epi32(load_i32(ap + o)), wq)), ones))
            Q32_SIGNED(i0, a0);
            Q32_SIGNED(i1, a1);
            Q32_SIGNED(i2, a2);
#undef Q32_SIGNED
        }
    } else {
        /* unsigned codes x activations, or (activations + 128) x signed codes */
        const int per = q32_split(k) ? 4 : 8;
        for (int h = 0; h < 8; h += per) {
            __m256i p0 = _mm256_setzero_si256(), p1 = p0, p2 = p0;
            for (int g = h; g < h + per; g++) {
                const __m256i wq = _mm256_load_si256(&pk->q[b][g]);
                const int o = 32 * b + 4 * g;
#define Q32_MAC(p, ap)                                                                               \
                p = _mm256_add_epi16(p, q32_offset(k) ? _mm256_maddubs_epi16(_mm256_set1_epi32(load_i32(ap + o)), wq) \
                                                      : _mm256_maddubs_epi16(wq, _mm256_set1_epi32(load_i32(ap + o))))
                Q32_MAC(p0, a0);
                Q32_MAC(p1, a1);
                Q32_MAC(p2, a2);
#undef Q32_MAC
                __asm__("" : "+x"(p0), "+x"(p1), "+x"(p2));   /* see KA_PIN4 */
            }
            i0 = _mm256_add_epi32(i0, _mm256_madd_epi16(p0, ones));
            i1 = _mm256_add_epi32(i1, _mm256_madd_epi16(p1, ones));
            i2 = _mm256_add_epi32(i2, _mm256_madd_epi16(p2, ones));
        }
        if (q32_offset(k)) {
            const __m256i corr = _mm256_load_si256(&pk->corr[b]);
            i0 = _mm256_sub_epi32(i0, corr);
            i1 = _mm256_sub_epi32(i1, corr);
            i2 = _mm256_sub_epi32(i2, corr);
        }
    }
    *s0 = i0, *s1 = i1, *s2 = i2;
}

/* 3 tokens (prep rows t..t+2) x 8 rows over the chunk's nbk blocks; acc[0..2]. */
KA_INLINE void q32_pack_tok3(q32_kind k, int nbk, const q32_pack *pk, const q32_prep *pp, int t, __m256 *acc) {
    const uint8_t *a0 = (const uint8_t *)pp->ax[t], *a1 = (const uint8_t *)pp->ax[t + 1], *a2 = (const uint8_t *)pp->ax[t + 2];
    __m256 c0 = acc[0], c1 = acc[1], c2 = acc[2];
    for (int b = 0; b < nbk; b++) {
        __m256i s0, s1, s2;
        q32_block3(k, pk, b, a0, a1, a2, &s0, &s1, &s2);
        const __m256 dx = _mm256_load_ps(pk->dx[b]);
        const __m256 mx = q32_has_m(k) ? _mm256_load_ps(pk->mx[b]) : dx;
        c0 = q32_fin(k, c0, s0, dx, _mm256_set1_ps(pp->dy[t][b]), mx, _mm256_set1_ps(pp->sy[t][b]));
        c1 = q32_fin(k, c1, s1, dx, _mm256_set1_ps(pp->dy[t + 1][b]), mx, _mm256_set1_ps(pp->sy[t + 1][b]));
        c2 = q32_fin(k, c2, s2, dx, _mm256_set1_ps(pp->dy[t + 2][b]), mx, _mm256_set1_ps(pp->sy[t + 2][b]));
    }
    acc[0] = c0, acc[1] = c1, acc[2] = c2;
}

KA_INLINE void q32_gemm(q32_kind k, int64_t n, int32_t nr, int32_t nc, const uint8_t *w, size_t ws, const uint8_t *a,
                        size_t as, float *y, int64_t ldy) {
    const int64_t nb = n / 32;
    const size_t abs_ = q32_abytes(k);
    if (nc == 1) {
        for (int32_t r = 0; r < nr; r += 16) q32_tok1(k, nb, w + (size_t)r * ws, ws, Q_MIN(16, nr - r), (size_t)nr * ws, a, y + r);
        return;
    }
    q32_prep pp;
    q32_pack pk;
    __m256 acc[KA_PROWS / 8][KA_TOK + 2];
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    for (int32_t c0 = 0; c0 < nc; c0 += KA_TOK) {
        const int ncc = Q_MIN(KA_TOK, nc - c0), nc3 = (ncc + 2) / 3 * 3;
        for (int32_t r0 = 0; r0 < nr; r0 += KA_PROWS) {
            const int nrr = Q_MIN(KA_PROWS, nr - r0), ng = (nrr + 7) / 8;
            for (int g = 0; g < ng; g++)
                for (int t = 0; t < nc3; t++) acc[g][t] = _mm256_setzero_ps();
            for (int64_t k0 = 0; k0 < nb; k0 += KA_KB) {
                const int nbk = (int)Q_MIN(KA_KB, nb - k0);
                for (int t = 0; t < nc3; t++) {   /* tokens past ncc repeat the last one */
                    const uint8_t *yb = a + (size_t)(c0 + Q_MIN(t, ncc - 1)) * as + (size_t)k0 * abs_;
                    for (int b = 0; b < nbk; b++) {
                        const __m256i q = _mm256_loadu_si256((const __m256i *)(yb + (size_t)b * abs_ + (q32_has_m(k) ? 4 : 2)));
                        pp.ax[t][b] = q32_offset(k) ? _mm256_xor_si256(q, bias) : q;
                    }
                    halves_to(yb, abs_, nbk, pp.dy[t]);
                    if (q32_has_m(k)) halves_to(yb + 2, abs_, nbk, pp.sy[t]);
                }
                for (int g = 0; g < ng; g++) {
                    q32_repack(k, &pk, w + (size_t)(r0 + 8 * g) * ws, ws, Q_MIN(8, nrr - 8 * g), k0, nbk);
                    for (int t = 0; t < ncc; t += 3) q32_pack_tok3(k, nbk, &pk, &pp, t, &acc[g][t]);
                }
            }
            for (int g = 0; g < ng; g++)
                for (int t = 0; t < ncc; t++)
                    store_rows(y + (c0 + t) * ldy + r0 + 8 * g, acc[g][t], Q_MIN(8, nrr - 8 * g));
        }
    }
}

/* The exported kernels: a gemm per kind, and vec_dot as the 1 x 1 tile (the decode path
 * with every lane on the one row: the row is read once, the spare lanes are free). */
#define Q32_EXPORT(name, kind)                                                                                  \
    void q_avx2_gemm_##name(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws, const void *a,       \
                            size_t as, float *y, int64_t ldy) {                                                \
        q32_gemm(kind, n, nr, nc, w, ws, a, as, y, ldy);                                                       \
    }                                                                                                          \
    void q_avx2_vec_dot_##name(int64_t n, float *s, const void *x, const void *y) {                           \
        q32_tok1(kind, n / 32, x, 0, 1, 0, y, s);                                                                 \
    }
Q32_EXPORT(q8_0_q8_0, Q32_Q8_0)
Q32_EXPORT(q4_1_q8_1, Q32_Q4_1)
Q32_EXPORT(q5_0_q8_0, Q32_Q5_0)
Q32_EXPORT(q5_1_q8_1, Q32_Q5_1)
Q32_EXPORT(iq4_nl_q8_0, Q32_IQ4_NL)
Q32_EXPORT(mxfp4_q8_0, Q32_MXFP4)
#undef Q32_EXPORT

#include "cpu/avx2_end.h"
#endif
