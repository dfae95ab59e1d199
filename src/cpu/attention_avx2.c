/* attention_avx2.c — the AVX2+FMA+F16C attention kernels (cpu/attention.h), bit-identical
 * to the scalar ones in attention.c:
 *
 *   scores   per cell, the K row is loaded (and converted) once for up to 4 query heads;
 *            each head keeps the 16-lane order of vec_dot (two registers of 8 lanes, FMAs
 *            in element order, then the lane tree). Head dims that are not a multiple of
 *            16 use the matmul table's vec_dot (its double-sum order).
 *   softmax  whole chunks of 16 consecutive cells take the vector exp and the lane tree
 *            in registers; chunks with gaps take the scalar path; the F16 rounding of p
 *            is one vcvtps2ph (round to nearest even, as q_fp32_to_fp16).
 *   mix      blocks of Q_ATT_VBLOCK cells: V rows converted to float once, cells bucketed
 *            by lane (cell index % 16), then per lane a register tile of 2 heads x 4
 *            slices of 8 dims runs that lane's cells in order; lane sums live in acc
 *            between blocks; the lane tree runs on 8 dims at a time at the end.
 * Owns no memory. Empty on other architectures. */
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/base.h"
#include "cpu/attention.h"
#include "cpu/vec_dot.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

#include "cpu/simd_avx2.h"

QS_INLINE __m256 att_load8(bool f16, const uint8_t *row, int32_t i) {
    if (f16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i)));
    return _mm256_loadu_ps((const float *)row + i);
}

/* ---- scores ---- */

/* NS heads (1..4) against one K row, 16-lane order. */
QS_INLINE void att_dots(bool f16, int NS, int32_t hd, const uint8_t *krow, const float *qf, float *out) {
    __m256 lo[4], hi[4];
    for (int s = 0; s < NS; s++) lo[s] = hi[s] = _mm256_setzero_ps();
    for (int32_t i = 0; i < hd; i += 16) {
        const __m256 kl = att_load8(f16, krow, i), kh = att_load8(f16, krow, i + 8);
        for (int s = 0; s < NS; s++) {
            lo[s] = _mm256_fmadd_ps(kl, _mm256_loadu_ps(qf + (size_t)s * hd + i), lo[s]);
            hi[s] = _mm256_fmadd_ps(kh, _mm256_loadu_ps(qf + (size_t)s * hd + i + 8), hi[s]);
        }
    }
    for (int s = 0; s < NS; s++) out[s] = qs_hsum16(lo[s], hi[s]);
}

QS_INLINE void att_scores_ns(bool f16, int NS, const q_attn_work *w, int32_t s0, float *max) {
    float m[4] = { -INFINITY, -INFINITY, -INFINITY, -INFINITY };
    const float *qf = w->qf + (size_t)s0 * w->hd;
    float *p = w->p + (size_t)s0 * w->ps;
    for (int32_t k = 0; k < w->nv; k++) {
        float d[4];
        att_dots(f16, NS, w->hd, w->k + (size_t)w->vis[k] * w->rb, qf, d);
        for (int s = 0; s < NS; s++) {
            const float sc = d[s] * w->scale;
            p[(size_t)s * w->ps + k] = sc;
            if (sc > m[s]) m[s] = sc;
        }
    }
    for (int s = 0; s < NS; s++) max[s0 + s] = m[s];
}

static void avx2_scores(const q_attn_work *w, float *max) {
    if (w->hd % 16) {   /* vec_dot's double-sum order: the table's kernel per cell */
        const q_vec_dot_fn dot = q_matmul_traits_isa(w->f16 ? Q_TYPE_F16 : Q_TYPE_F32, Q_CPU_ISA_AVX2)->vec_dot;
        for (int32_t s = 0; s < w->n_head; s++) {
            float *p = w->p + (size_t)s * w->ps, m = -INFINITY;
            const void *q = w->f16 ? (const void *)(w->q16 + (size_t)s * w->hd) : (const void *)(w->qf + (size_t)s * w->hd);
            for (int32_t k = 0; k < w->nv; k++) {
                float qk;
                dot(w->hd, &qk, w->k + (size_t)w->vis[k] * w->rb, q);
                p[k] = qk * w->scale;
                if (p[k] > m) m = p[k];
            }
            max[s] = m;
        }
        return;
    }
    for (int32_t s0 = 0; s0 < w->n_head; s0 += 4) {
        const int ns = Q_MIN(4, w->n_head - s0);
        if (w->f16) {
            if (ns == 4) att_scores_ns(true, 4, w, s0, max);
            else if (ns == 3) att_scores_ns(true, 3, w, s0, max);
            else if (ns == 2) att_scores_ns(true, 2, w, s0, max);
            else att_scores_ns(true, 1, w, s0, max);
        } else {
            if (ns == 4) att_scores_ns(false, 4, w, s0, max);
            else if (ns == 3) att_scores_ns(false, 3, w, s0, max);
            else if (ns == 2) att_scores_ns(false, 2, w, s0, max);
            else att_scores_ns(false, 1, w, s0, max);
        }
    }
}

/* ---- softmax ---- */

static void avx2_softmax(const q_attn_work *w, const float *max) {
    for (int32_t s = 0; s < w->n_head; s++) {
        float *p = w->p + (size_t)s * w->ps;
        const __m256 vmax = _mm256_set1_ps(max[s]);
        double sum = 0.0;
        for (int32_t k = 0; k < w->nv;) {
            const int32_t c0 = w->vis[k] & ~15;
            if (max[s] != -INFINITY && w->vis[k] == c0 && k + 16 <= w->nv && w->vis[k + 15] == c0 + 15) {
                /* a whole chunk: cells c0..c0+15 are entries k..k+15 (ascending, distinct) */
                const __m256 lo = qs_expf8(_mm256_sub_ps(_mm256_loadu_ps(p + k), vmax));
                const __m256 hi = qs_expf8(_mm256_sub_ps(_mm256_loadu_ps(p + k + 8), vmax));
                _mm256_storeu_ps(p + k, lo);
                _mm256_storeu_ps(p + k + 8, hi);
                sum += (double)qs_hsum16(lo, hi);
                k += 16;
                continue;
            }
            float e[16] = { 0 };
            for (; k < w->nv && w->vis[k] < c0 + 16; k++) {
                const float ex = p[k] != -INFINITY ? q_cpu_expf(p[k] - max[s]) : 0.0f;
                e[w->vis[k] - c0] = ex;
                p[k] = ex;
            }
            sum += (double)qs_hsum16(_mm256_loadu_ps(e), _mm256_loadu_ps(e + 8));
        }
        const float inv = sum > 0.0 ? (float)(1.0 / sum) : 0.0f;
        const __m256 vi = _mm256_set1_ps(inv);
        int32_t k = 0;
        for (; k + 8 <= w->nv; k += 8) {
            __m256 pk = _mm256_mul_ps(_mm256_loadu_ps(p + k), vi);
            if (w->f16) pk = _mm256_cvtph_ps(_mm256_cvtps_ph(pk, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            _mm256_storeu_ps(p + k, pk);
        }
        for (; k < w->nv; k++) {
            const float pk = p[k] * inv;
            p[k] = w->f16 ? _cvtsh_ss(_cvtss_sh(pk, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)) : pk;
        }
    }
}

/* ---- mix ---- */

/* Lane sums of NS heads (1..2) x NJ slices (1..4) of 8 dims from j0, over the cells of
 * one lane in this block (idx: entries relative to the block, ascending). */
QS_INLINE void att_mix_tile(int NS, int NJ, const q_attn_work *w, int32_t s0, int32_t lane, int32_t j0,
                            const float *vt, const float *pb, const int16_t *idx, int32_t n_idx) {
    const int32_t hd = w->hd;
    __m256 a[2][4];
    for (int s = 0; s < NS; s++)
        for (int j = 0; j < NJ; j++)
            a[s][j] = _mm256_loadu_ps(w->acc + ((size_t)(s0 + s) * 16 + (size_t)lane) * (size_t)hd + (size_t)(j0 + j) * 8);
    for (int32_t m = 0; m < n_idx; m++) {
        const int32_t kk = idx[m];
        const float *vr = vt + (size_t)kk * (size_t)hd + (size_t)j0 * 8;
        __m256 pv[2];
        for (int s = 0; s < NS; s++) pv[s] = _mm256_broadcast_ss(pb + (size_t)(s0 + s) * w->ps + kk);
        for (int j = 0; j < NJ; j++) {
            const __m256 v = _mm256_loadu_ps(vr + 8 * j);
            for (int s = 0; s < NS; s++) a[s][j] = _mm256_fmadd_ps(pv[s], v, a[s][j]);
        }
    }
    for (int s = 0; s < NS; s++)
        for (int j = 0; j < NJ; j++)
            _mm256_storeu_ps(w->acc + ((size_t)(s0 + s) * 16 + (size_t)lane) * (size_t)hd + (size_t)(j0 + j) * 8, a[s][j]);
}

#define MIX_NJ(NS)                                                                          \
    switch (nj) {                                                                           \
    case 4: att_mix_tile(NS, 4, w, s0, lane, j0, vt, pb, idx, n_idx); break;                \
    case 3: att_mix_tile(NS, 3, w, s0, lane, j0, vt, pb, idx, n_idx); break;                \
    case 2: att_mix_tile(NS, 2, w, s0, lane, j0, vt, pb, idx, n_idx); break;                \
    default: att_mix_tile(NS, 1, w, s0, lane, j0, vt, pb, idx, n_idx); break;               \
    }

static void avx2_mix(const q_attn_work *w) {
    const int32_t hd = w->hd, S = w->n_head;
    if (hd % 8) {
        q_attn_mix_scalar(w);
        return;
    }
    memset(w->acc, 0, sizeof(float) * (size_t)S * 16 * (size_t)hd);
    int16_t bucket[16][Q_ATT_VBLOCK];
    for (int32_t k0 = 0; k0 < w->nv; k0 += Q_ATT_VBLOCK) {
        const int32_t nb = Q_MIN(Q_ATT_VBLOCK, w->nv - k0);
        int32_t cnt[16] = { 0 };
        float *vt = w->vtmp;
        for (int32_t kk = 0; kk < nb; kk++) {   /* V rows as floats, cells by lane */
            const int32_t c = w->vis[k0 + kk];
            const uint8_t *vrow = w->v + (size_t)c * w->rb;
            for (int32_t d = 0; d < hd; d += 8) _mm256_storeu_ps(vt + (size_t)kk * (size_t)hd + d, att_load8(w->f16, vrow, d));
            bucket[c & 15][cnt[c & 15]++] = (int16_t)kk;
        }
        const float *pb = w->p + k0;
        for (int32_t lane = 0; lane < 16; lane++) {
            const int32_t n_idx = cnt[lane];
            if (!n_idx) continue;
            const int16_t *idx = bucket[lane];
            for (int32_t s0 = 0; s0 < S; s0 += 2)
                for (int32_t j0 = 0; j0 < hd / 8; j0 += 4) {
                    const int32_t nj = Q_MIN(4, hd / 8 - j0);
                    if (S - s0 >= 2) { MIX_NJ(2) } else { MIX_NJ(1) }
                }
        }
    }
    /* the lane tree, 8 dims at a time: t8 = l[8+i] + l[i], t4 = t8[4+i] + t8[i],
     * (t4[0] + t4[2]) + (t4[1] + t4[3]) */
    for (int32_t s = 0; s < S; s++) {
        const float *a = w->acc + (size_t)s * 16 * (size_t)hd;
        float *o = w->out + (size_t)s * w->os;
        for (int32_t d = 0; d < hd; d += 8) {
            __m256 t8[8], t4[4];
            for (int i = 0; i < 8; i++)
                t8[i] = _mm256_add_ps(_mm256_loadu_ps(a + (size_t)(8 + i) * (size_t)hd + d), _mm256_loadu_ps(a + (size_t)i * (size_t)hd + d));
            for (int i = 0; i < 4; i++) t4[i] = _mm256_add_ps(t8[4 + i], t8[i]);
            _mm256_storeu_ps(o + d, _mm256_add_ps(_mm256_add_ps(t4[0], t4[2]), _mm256_add_ps(t4[1], t4[3])));
        }
    }
}

static void avx2_store_f16(uint16_t *dst, const float *src, int32_t n) {
    int32_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

const q_attn_kernels q_attn_kernels_avx2 = {
    .scores    = avx2_scores,
    .softmax   = avx2_softmax,
    .mix       = avx2_mix,
    .store_f16 = avx2_store_f16,
};

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
