/* attention_avx2.c — the AVX2+FMA+F16C attention kernels (cpu/attention.h), bit-identical
 * to the scalar ones in attention.c. Probabilities live transposed, one row of 8 floats
 * per visible cell (lane s = query head s of the task), so softmax and mix handle all of
 * a task's heads in one register:
 *
 *   scores   per cell, the K row is loaded (and converted) for 4 query heads at a time;
 *            each head keeps vec_dot's 16-lane order (two registers of 8 lanes, FMAs in
 *            element order), and the four lane trees run together on shuffles. Head dims
 *            that are not a multiple of 16 use the matmul table's vec_dot (its
 *            double-sum order).
 *   softmax  per chunk of 16 cells by position: the vector exp, each cell's value in
 *            the lane of its position, the chunk's lane tree, one double sum per head;
 *            the F16 rounding of p is one vcvtps2ph (round to nearest even, as
 *            q_fp32_to_fp16).
 *   mix      blocks of Q_ATT_VBLOCK cells: V rows converted to floats and regrouped by
 *            lane (position % 16; a lane's cells stay in order) with their p rows; per
 *            lane and 8 dims, 8 registers of 8 heads run the lane's cells:
 *            acc = fma(p, broadcast V[d], acc). The lane tree and the scatter to each
 *            head's output run once at the end.
 * Owns no memory. Empty on other architectures. */
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/base.h"
#include "cpu/attention.h"
#include "cpu/vec_dot.h"
#include "runtime/kv_cache.h"

#if defined(__x86_64__)
#include "cpu/avx2_begin.h"

#include "cpu/simd_avx2.h"

/* Cells ahead to prefetch: a head's K/V rows are a few lines every rb bytes, a stride the
 * hardware prefetchers follow poorly. */
enum { ATT_PF = 32 };

/* Both lines of the first 128 bytes of cell vis[k]'s row (a 64-dim F16 head; longer
 * rows stream behind them). */
QS_INLINE void att_prefetch(const q_attn_work *w, const uint8_t *base, int32_t k) {
    if (k >= w->nv) return;
    const char *r = (const char *)(base + (size_t)w->vis[k] * w->rb);
    _mm_prefetch(r, _MM_HINT_T0);
    _mm_prefetch(r + 64, _MM_HINT_T0);
}

QS_INLINE __m256 att_load8(bool f16, const uint8_t *row, int32_t i) {
    if (f16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i)));
    return _mm256_loadu_ps((const float *)row + i);
}

/* p layout of this set: row k (visible cell k) holds 8 floats, lane s = query head s of
 * the task (lanes >= S carry a zero query's values and are never read back). */
enum { PT = 8 };

/* ---- scores ---- */

/* The 16-lane dot of 4 query heads (rows of qf) with one K row, the four lane trees run
 * together: t8 = hi + lo per head, t4 = t8's halves added (two heads per register),
 * then (t4[0] + t4[2]) + (t4[1] + t4[3]) per head by one shuffle pair and hadd. */
QS_INLINE __m128 att_dot4(bool f16, int32_t hd, const uint8_t *krow, const float *qf) {
    __m256 lo[4], hi[4];
    for (int s = 0; s < 4; s++) lo[s] = hi[s] = _mm256_setzero_ps();
    for (int32_t i = 0; i < hd; i += 16) {
        const __m256 kl = att_load8(f16, krow, i), kh = att_load8(f16, krow, i + 8);
        for (int s = 0; s < 4; s++) {
            lo[s] = _mm256_fmadd_ps(kl, _mm256_loadu_ps(qf + (size_t)s * hd + i), lo[s]);
            hi[s] = _mm256_fmadd_ps(kh, _mm256_loadu_ps(qf + (size_t)s * hd + i + 8), hi[s]);
        }
    }
    __m256 t8[4];
    for (int s = 0; s < 4; s++) t8[s] = _mm256_add_ps(hi[s], lo[s]);
    const __m256 x = _mm256_add_ps(_mm256_permute2f128_ps(t8[0], t8[1], 0x31), _mm256_permute2f128_ps(t8[0], t8[1], 0x20));
    const __m256 z = _mm256_add_ps(_mm256_permute2f128_ps(t8[2], t8[3], 0x31), _mm256_permute2f128_ps(t8[2], t8[3], 0x20));
    /* x = [t4 of head 0 | head 1], z = [head 2 | head 3]; r = [x0+x2, z0+z2, x1+x3, z1+z3 | y.., w..] */
    const __m256 r = _mm256_hadd_ps(_mm256_shuffle_ps(x, z, 0x88), _mm256_shuffle_ps(x, z, 0xDD));
    const __m256 f = _mm256_add_ps(r, _mm256_permute_ps(r, 0x4E));   /* [h0, h2, ., . | h1, h3, ., .] */
    return _mm_unpacklo_ps(_mm256_castps256_ps128(f), _mm256_extractf128_ps(f, 1));
}

static void avx2_scores(const q_attn_work *w, float *max) {
    const int32_t hd = w->hd, nq = (w->n_head + 3) / 4;
    float *pt = w->p;
    __m256 m = _mm256_set1_ps(-INFINITY);
    if (hd % 16) {   /* vec_dot's double-sum order: the table's kernel per cell and head */
        const q_vec_dot_fn dot = q_matmul_traits_isa(w->f16 ? Q_TYPE_F16 : Q_TYPE_F32, Q_CPU_ISA_AVX2)->vec_dot;
        for (int32_t k = 0; k < w->nv; k++) {
            float *row = pt + (size_t)k * PT;
            for (int32_t s = 0; s < PT; s++) {
                float qk = 0.0f;
                if (s < w->n_head) {
                    const void *q = w->f16 ? (const void *)(w->q16 + (size_t)s * hd) : (const void *)(w->qf + (size_t)s * hd);
                    dot(hd, &qk, w->k + (size_t)w->vis[k] * w->rb, q);
                }
                row[s] = qk * w->scale;
            }
            m = _mm256_max_ps(_mm256_loadu_ps(row), m);
        }
    } else {
        const __m256 sc = _mm256_set1_ps(w->scale);
        for (int32_t k = 0; k < w->nv; k++) {
            const uint8_t *krow = w->k + (size_t)w->vis[k] * w->rb;
            att_prefetch(w, w->k, k + ATT_PF);
            const __m128 d0 = w->f16 ? att_dot4(true, hd, krow, w->qf) : att_dot4(false, hd, krow, w->qf);
            __m128 d1 = _mm_setzero_ps();
            if (nq > 1) d1 = w->f16 ? att_dot4(true, hd, krow, w->qf + 4 * (size_t)hd) : att_dot4(false, hd, krow, w->qf + 4 * (size_t)hd);
            const __m256 row = _mm256_mul_ps(_mm256_insertf128_ps(_mm256_castps128_ps256(d0), d1, 1), sc);
            _mm256_storeu_ps(pt + (size_t)k * PT, row);
            m = _mm256_max_ps(row, m);   /* p > max ? p : max, as the scalar scan */
        }
    }
    float mm[8];
    _mm256_storeu_ps(mm, m);
    for (int32_t s = 0; s < w->n_head; s++) max[s] = mm[s];
}

/* ---- softmax ---- */

/* All heads at once (one lane each): per chunk of 16 cells by position, e = exp(p - max)
 * in the lane of its cell (zeros elsewhere), the chunk's lane tree, and a double sum per
 * head (two registers of 4 heads); p = -inf gives 0 as in the scalar code. */
static void avx2_softmax(const q_attn_work *w, const float *max) {
    float mx[8] = { 0 };
    for (int32_t s = 0; s < w->n_head; s++) mx[s] = max[s];
    const __m256 vmax = _mm256_loadu_ps(mx), ninf = _mm256_set1_ps(-INFINITY), zero = _mm256_setzero_ps();
    float *pt = w->p;
    __m256d sum_lo = _mm256_setzero_pd(), sum_hi = _mm256_setzero_pd();
    for (int32_t k = 0; k < w->nv;) {
        const int32_t c0 = w->vpos[k] & ~15;
        __m256 e[16];
        for (int i = 0; i < 16; i++) e[i] = zero;
        for (; k < w->nv && w->vpos[k] < c0 + 16; k++) {
            const __m256 x = _mm256_loadu_ps(pt + (size_t)k * PT);
            const __m256 ex = _mm256_andnot_ps(_mm256_cmp_ps(x, ninf, _CMP_EQ_OQ), qs_expf8(_mm256_sub_ps(x, vmax)));
            e[w->vpos[k] - c0] = ex;
            _mm256_storeu_ps(pt + (size_t)k * PT, ex);
        }
        __m256 t8[8], t4[4];
        for (int i = 0; i < 8; i++) t8[i] = _mm256_add_ps(e[8 + i], e[i]);
        for (int i = 0; i < 4; i++) t4[i] = _mm256_add_ps(t8[4 + i], t8[i]);
        const __m256 cs = _mm256_add_ps(_mm256_add_ps(t4[0], t4[2]), _mm256_add_ps(t4[1], t4[3]));
        sum_lo = _mm256_add_pd(sum_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(cs)));
        sum_hi = _mm256_add_pd(sum_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(cs, 1)));
    }
    /* inv = sum > 0 ? (float)(1 / sum) : 0 per head */
    const __m256d one = _mm256_set1_pd(1.0), dz = _mm256_setzero_pd();
    const __m128 inv_lo = _mm256_cvtpd_ps(_mm256_and_pd(_mm256_div_pd(one, sum_lo), _mm256_cmp_pd(sum_lo, dz, _CMP_GT_OQ)));
    const __m128 inv_hi = _mm256_cvtpd_ps(_mm256_and_pd(_mm256_div_pd(one, sum_hi), _mm256_cmp_pd(sum_hi, dz, _CMP_GT_OQ)));
    const __m256 inv = _mm256_insertf128_ps(_mm256_castps128_ps256(inv_lo), inv_hi, 1);
    for (int32_t k = 0; k < w->nv; k++) {
        __m256 pk = _mm256_mul_ps(_mm256_loadu_ps(pt + (size_t)k * PT), inv);
        if (w->f16) pk = _mm256_cvtph_ps(_mm256_cvtps_ph(pk, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        _mm256_storeu_ps(pt + (size_t)k * PT, pk);
    }
}

/* ---- mix ---- */

/* acc holds, per lane L (position % 16) and dim d, the 8 heads' sums in one register:
 * acc[(L * hd + d) * 8 + s]. A block's V rows are converted to floats and, with their p
 * rows, regrouped by lane (cells of one lane stay in order); then per lane and 8 dims the
 * sums stay in 8 registers over the lane's cells: acc_d = fma(p_k, V_k[d], acc_d), the
 * scalar's fmaf(p, v, lane). */
static void avx2_mix(const q_attn_work *w) {
    const int32_t hd = w->hd, S = w->n_head;
    float *acc = w->acc;
    memset(acc, 0, sizeof(float) * 16 * (size_t)hd * PT);
    float *vb = w->vtmp, *pb = w->vtmp + (size_t)Q_ATT_VBLOCK * (size_t)hd;
    for (int32_t k0 = 0; k0 < w->nv; k0 += Q_ATT_VBLOCK) {
        const int32_t nb = Q_MIN(Q_ATT_VBLOCK, w->nv - k0);
        int32_t start[17] = { 0 }, at[16];
        for (int32_t kk = 0; kk < nb; kk++) start[(w->vpos[k0 + kk] & 15) + 1]++;
        for (int l = 0; l < 16; l++) start[l + 1] += start[l];
        memcpy(at, start, sizeof at);
        for (int32_t kk = 0; kk < nb; kk++) {
            const int32_t c = w->vis[k0 + kk], dst = at[w->vpos[k0 + kk] & 15]++;
            const uint8_t *vrow = w->v + (size_t)c * w->rb;
            att_prefetch(w, w->v, k0 + kk + ATT_PF);
            float *vd = vb + (size_t)dst * (size_t)hd;
            int32_t d = 0;
            for (; d + 8 <= hd; d += 8) _mm256_storeu_ps(vd + d, att_load8(w->f16, vrow, d));
            for (; d < hd; d++) vd[d] = w->f16 ? _cvtsh_ss(((const uint16_t *)vrow)[d]) : ((const float *)vrow)[d];
            _mm256_storeu_ps(pb + (size_t)dst * PT, _mm256_loadu_ps(w->p + (size_t)(k0 + kk) * PT));
        }
        for (int l = 0; l < 16; l++) {
            const int32_t m0 = start[l], m1 = start[l + 1];
            if (m0 == m1) continue;
            int32_t d0 = 0;
            for (; d0 + 8 <= hd; d0 += 8) {
                float *ad = acc + ((size_t)l * (size_t)hd + (size_t)d0) * PT;
                __m256 a[8];
                for (int i = 0; i < 8; i++) a[i] = _mm256_loadu_ps(ad + (size_t)i * PT);
                for (int32_t m = m0; m < m1; m++) {
                    const __m256 pv = _mm256_loadu_ps(pb + (size_t)m * PT);
                    const float *vd = vb + (size_t)m * (size_t)hd + d0;
                    for (int i = 0; i < 8; i++) a[i] = _mm256_fmadd_ps(pv, _mm256_broadcast_ss(vd + i), a[i]);
                }
                for (int i = 0; i < 8; i++) _mm256_storeu_ps(ad + (size_t)i * PT, a[i]);
            }
            for (; d0 < hd; d0++) {   /* dims past the last 8 */
                float *ad = acc + ((size_t)l * (size_t)hd + (size_t)d0) * PT;
                __m256 a = _mm256_loadu_ps(ad);
                for (int32_t m = m0; m < m1; m++)
                    a = _mm256_fmadd_ps(_mm256_loadu_ps(pb + (size_t)m * PT), _mm256_broadcast_ss(vb + (size_t)m * (size_t)hd + d0), a);
                _mm256_storeu_ps(ad, a);
            }
        }
    }
    /* the lane tree per dim (8 heads per register), then head s's row of the output */
    for (int32_t d = 0; d < hd; d++) {
        __m256 t8[8], t4[4];
        for (int i = 0; i < 8; i++)
            t8[i] = _mm256_add_ps(_mm256_loadu_ps(acc + ((size_t)(8 + i) * (size_t)hd + (size_t)d) * PT),
                                  _mm256_loadu_ps(acc + ((size_t)i * (size_t)hd + (size_t)d) * PT));
        for (int i = 0; i < 4; i++) t4[i] = _mm256_add_ps(t8[4 + i], t8[i]);
        float o[8];
        _mm256_storeu_ps(o, _mm256_add_ps(_mm256_add_ps(t4[0], t4[2]), _mm256_add_ps(t4[1], t4[3])));
        for (int32_t s = 0; s < S; s++) w->out[(size_t)s * w->os + (size_t)d] = o[s];
    }
}

/* ---- flash (order in attention.c) ---- */

enum { FB = Q_ATT_FLASH_BLOCK, FR = Q_ATT_FLASH_ROWS };

/* Scores of NI cells (block rows j..j+NI-1, clamped to the block) x NRV row registers:
 * acc = fma(K_j[d], q^T[d], acc) over d from 0, times scale, -inf where not visible. Each
 * accumulator is one dependent FMA chain over d, so NI x NRV chains run together to hide
 * the FMA latency (8 x 1 for a decode task of <= 8 rows, 4 x 2 otherwise). */
QS_INLINE void flash_scores_tile(int NI, int NRV, const q_attn_flash *f, const float *kb, const float *qt, int32_t j,
                                 int32_t nb, int32_t rv0, const int32_t *pc, const __m256i *posv, float *sc) {
    const int32_t hd = f->hd;
    int32_t jj[8];
    for (int i = 0; i < NI; i++) jj[i] = j + i < nb ? j + i : nb - 1;
    __m256 acc[8][2];
    for (int i = 0; i < NI; i++)
        for (int v = 0; v < NRV; v++) acc[i][v] = _mm256_setzero_ps();
    for (int32_t d = 0; d < hd; d++) {
        __m256 q[2];
        for (int v = 0; v < NRV; v++) q[v] = _mm256_loadu_ps(qt + (size_t)d * FR + (size_t)(rv0 + v) * 8);
        for (int i = 0; i < NI; i++) {
            const __m256 k = _mm256_broadcast_ss(kb + (size_t)jj[i] * (size_t)hd + d);
            for (int v = 0; v < NRV; v++) acc[i][v] = _mm256_fmadd_ps(k, q[v], acc[i][v]);
        }
    }
    const __m256 scale = _mm256_set1_ps(f->scale), ninf = _mm256_set1_ps(-INFINITY);
    for (int i = 0; i < NI && j + i < nb; i++) {
        const __m256i pcv = _mm256_set1_epi32(pc[j + i]);
        for (int v = 0; v < NRV; v++) {
            /* invisible: cell pos > row pos, or outside the window (pos - pc >= swa) */
            __m256i hide = _mm256_cmpgt_epi32(pcv, posv[rv0 + v]);
            if (f->swa > 0)
                hide = _mm256_or_si256(hide, _mm256_cmpgt_epi32(_mm256_sub_epi32(posv[rv0 + v], pcv),
                                                                _mm256_set1_epi32(f->swa - 1)));
            const __m256 sv = _mm256_blendv_ps(_mm256_mul_ps(acc[i][v], scale), ninf, _mm256_castsi256_ps(hide));
            _mm256_storeu_ps(sc + (size_t)(j + i) * FR + (size_t)(rv0 + v) * 8, sv);
        }
    }
}

/* O^T[d..d+NI)[rv0..rv0+NRV) = O^T * a, then fma(V_j[d], p_j, O^T) over the block's cells:
 * NI x NRV independent chains (8 x 1 for a decode task, 4 x 2 otherwise). */
QS_INLINE void flash_pv_tile(int NI, int NRV, const q_attn_flash *f, const float *vb, const float *sc, int32_t nb,
                             int32_t d, int32_t rv0, const __m256 *av, float *ot) {
    const int32_t hd = f->hd;
    __m256 acc[8][2];
    for (int i = 0; i < NI; i++)
        for (int v = 0; v < NRV; v++)
            acc[i][v] = _mm256_mul_ps(_mm256_loadu_ps(ot + (size_t)(d + i) * FR + (size_t)(rv0 + v) * 8), av[rv0 + v]);
    for (int32_t j = 0; j < nb; j++) {
        __m256 p[2];
        for (int v = 0; v < NRV; v++) p[v] = _mm256_loadu_ps(sc + (size_t)j * FR + (size_t)(rv0 + v) * 8);
        for (int i = 0; i < NI; i++) {
            const __m256 vv = _mm256_broadcast_ss(vb + (size_t)j * (size_t)hd + d + i);
            for (int v = 0; v < NRV; v++) acc[i][v] = _mm256_fmadd_ps(vv, p[v], acc[i][v]);
        }
    }
    for (int i = 0; i < NI; i++)
        for (int v = 0; v < NRV; v++) _mm256_storeu_ps(ot + (size_t)(d + i) * FR + (size_t)(rv0 + v) * 8, acc[i][v]);
}

/* Cells ahead that the flash pass prefetches: every line of their K and V slices. */
enum { FLASH_PF = ATT_PF };

/* Every line of list entry j's K and V slices (bytes each). */
QS_INLINE void flash_prefetch(const q_attn_flash *f, int32_t j, size_t bytes) {
    const size_t cn = (size_t)f->cells_list[j] * f->rb;
    for (size_t o = 0; o < bytes; o += 64) {
        _mm_prefetch((const char *)(f->k + cn + o), _MM_HINT_T0);
        _mm_prefetch((const char *)(f->v + cn + o), _MM_HINT_T0);
    }
}

/* The K and V rows of list entries j0..j0+nb as floats (kb, vb: [nb][hd]) and their
 * positions; the cache type is a constant of each instance (no test per load). */
QS_INLINE void flash_convert(bool F16, bool CV, const q_attn_flash *f, int32_t j0, int32_t nb, int32_t *pc, float *kb,
                             float *vb) {
    const int32_t hd = f->hd;
    const size_t bytes = (size_t)hd * (F16 ? sizeof(uint16_t) : sizeof(float));
    for (int32_t j = 0; j < nb; j++) {
        const int32_t c = f->cells_list[j0 + j];
        pc[j] = f->cells[c].pos;
        const uint8_t *kr = f->k + (size_t)c * f->rb, *vr = f->v + (size_t)c * f->rb;
        if (j0 + j + FLASH_PF < f->n_list) flash_prefetch(f, j0 + j + FLASH_PF, bytes);
        float *kd = kb + (size_t)j * (size_t)hd, *vd = vb + (size_t)j * (size_t)hd;
        int32_t d = 0;
        for (; d + 8 <= hd; d += 8) {
            _mm256_storeu_ps(kd + d, att_load8(F16, kr, d));
            if (CV) _mm256_storeu_ps(vd + d, att_load8(F16, vr, d));
        }
        for (; d < hd; d++) {
            kd[d] = F16 ? _cvtsh_ss(((const uint16_t *)kr)[d]) : ((const float *)kr)[d];
            if (CV) vd[d] = F16 ? _cvtsh_ss(((const uint16_t *)vr)[d]) : ((const float *)vr)[d];
        }
    }
}

/* The decode p.V (rows in registers, 8 dims per register): O[r][d..d+8) = O * a_r, then
 * fma(p_j[r], V_j[d..d+8), O) over the block's cells, V converted as it is loaded; the same
 * per-element order as flash_pv_tile. ot holds O as [8][hd]. */
QS_INLINE void flash_pv_direct(bool F16, const q_attn_flash *f, int32_t j0, const float *sc, int32_t nb, __m256 av,
                               float *ot) {
    const int32_t hd = f->hd;
    float a8[8];
    _mm256_storeu_ps(a8, av);
    for (int32_t d = 0; d < hd; d += 8) {
        __m256 acc[8];
        for (int r = 0; r < 8; r++) acc[r] = _mm256_mul_ps(_mm256_loadu_ps(ot + (size_t)r * (size_t)hd + d), _mm256_set1_ps(a8[r]));
        for (int32_t j = 0; j < nb; j++) {
            const __m256 v = att_load8(F16, f->v + (size_t)f->cells_list[j0 + j] * f->rb, d);
            const float *pj = sc + (size_t)j * FR;
            for (int r = 0; r < 8; r++) acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(pj + r), v, acc[r]);
        }
        for (int r = 0; r < 8; r++) _mm256_storeu_ps(ot + (size_t)r * (size_t)hd + d, acc[r]);
    }
}

static void avx2_flash(const q_attn_flash *f) {
    const int32_t hd = f->hd, nr = f->n_rows, nrv = (nr + 7) / 8;
    float *sc = f->scratch, *ot = sc + FB * FR, *qt = ot + (size_t)hd * FR, *kb = qt + (size_t)hd * FR;
    float *vb = kb + (size_t)FB * (size_t)hd;
    if (hd % 4) {   /* the tiles step 4 dims: other head dims run the reference */
        q_attn_flash_scalar(f);
        return;
    }
    /* a decode task (<= 8 rows, dims in 8s): p.V reads V straight from the cache, O as rows */
    const bool vdirect = nrv == 1 && hd % 8 == 0;
    int32_t pc[FB], posr[FR];
    for (int32_t r = 0; r < FR; r++) posr[r] = r < nr ? f->pos[r] : -1;   /* padding rows see nothing */
    __m256i posv[4];
    __m256 m[4], l[4], av[4];
    for (int v = 0; v < 4; v++) {
        posv[v] = _mm256_loadu_si256((const __m256i *)(posr + 8 * v));
        m[v] = _mm256_set1_ps(-INFINITY);
        l[v] = _mm256_setzero_ps();
    }
    for (int32_t d = 0; d < hd; d++)
        for (int32_t r = 0; r < nrv * 8; r++) qt[(size_t)d * FR + r] = r < nr ? f->q[(size_t)r * hd + d] : 0.0f;   /* registers in use */
    memset(ot, 0, sizeof(float) * (size_t)hd * FR);
    {   /* the chunk's first cells (the loop prefetches FLASH_PF ahead of itself) */
        const size_t bytes = (size_t)hd * (f->f16 ? sizeof(uint16_t) : sizeof(float));
        for (int32_t j = 0; j < FLASH_PF && j < f->n; j++) flash_prefetch(f, j, bytes);
    }
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    for (int32_t j0 = 0; j0 < f->n; j0 += FB) {
        const int32_t nb = Q_MIN(FB, f->n - j0);
        /* the block's K (and, unless vdirect, V) rows as floats */
        if (f->f16) {
            if (vdirect) flash_convert(true, false, f, j0, nb, pc, kb, vb);
            else flash_convert(true, true, f, j0, nb, pc, kb, vb);
        } else {
            if (vdirect) flash_convert(false, false, f, j0, nb, pc, kb, vb);
            else flash_convert(false, true, f, j0, nb, pc, kb, vb);
        }
        if (nrv == 1) {
            for (int32_t j = 0; j < nb; j += 8) flash_scores_tile(8, 1, f, kb, qt, j, nb, 0, pc, posv, sc);
        } else {
            for (int32_t j = 0; j < nb; j += 4)
                for (int32_t rv = 0; rv < nrv; rv += 2) {
                    if (nrv - rv >= 2) flash_scores_tile(4, 2, f, kb, qt, j, nb, rv, pc, posv, sc);
                    else flash_scores_tile(4, 1, f, kb, qt, j, nb, rv, pc, posv, sc);
                }
        }
        for (int32_t rv = 0; rv < nrv; rv++) {   /* online softmax, 8 rows per register */
            __m256 mb = ninf;
            for (int32_t j = 0; j < nb; j++) mb = _mm256_max_ps(_mm256_loadu_ps(sc + (size_t)j * FR + (size_t)rv * 8), mb);
            const __m256 mn = _mm256_max_ps(m[rv], mb);
            av[rv] = _mm256_andnot_ps(_mm256_cmp_ps(m[rv], ninf, _CMP_EQ_OQ), qs_expf8(_mm256_sub_ps(m[rv], mn)));
            __m256 lv = _mm256_mul_ps(l[rv], av[rv]);
            for (int32_t j = 0; j < nb; j++) {
                float *sj = sc + (size_t)j * FR + (size_t)rv * 8;
                const __m256 x = _mm256_loadu_ps(sj);
                const __m256 p = _mm256_andnot_ps(_mm256_cmp_ps(x, ninf, _CMP_EQ_OQ), qs_expf8(_mm256_sub_ps(x, mn)));
                _mm256_storeu_ps(sj, p);
                lv = _mm256_add_ps(lv, p);
            }
            l[rv] = lv;
            m[rv] = mn;
        }
        if (vdirect) {
            if (f->f16) flash_pv_direct(true, f, j0, sc, nb, av[0], ot);
            else flash_pv_direct(false, f, j0, sc, nb, av[0], ot);
        } else {
            for (int32_t d = 0; d < hd; d += 4)
                for (int32_t rv = 0; rv < nrv; rv += 2) {
                    if (nrv - rv >= 2) flash_pv_tile(4, 2, f, vb, sc, nb, d, rv, av, ot);
                    else flash_pv_tile(4, 1, f, vb, sc, nb, d, rv, av, ot);
                }
        }
    }
    float mo[FR], lo[FR];   /* the chunk's state (the op folds and divides) */
    if (vdirect) {   /* O rows [8][hd] */
        _mm256_storeu_ps(mo, m[0]);
        _mm256_storeu_ps(lo, l[0]);
        for (int32_t r = 0; r < nr; r++) memcpy(f->out[r], ot + (size_t)r * (size_t)hd, sizeof(float) * (size_t)hd);
    }
    for (int32_t rv = 0; rv < nrv && !vdirect; rv++) {
        _mm256_storeu_ps(mo + rv * 8, m[rv]);
        _mm256_storeu_ps(lo + rv * 8, l[rv]);
        for (int32_t d = 0; d < hd; d++) {
            float o[8];
            _mm256_storeu_ps(o, _mm256_loadu_ps(ot + (size_t)d * FR + (size_t)rv * 8));
            for (int32_t i = 0; i < 8 && rv * 8 + i < nr; i++) f->out[rv * 8 + i][d] = o[i];
        }
    }
    for (int32_t r = 0; r < nr; r++) {
        f->m_out[r] = mo[r];
        f->l_out[r] = lo[r];
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
    .flash     = avx2_flash,
};

#include "cpu/avx2_end.h"
#endif
