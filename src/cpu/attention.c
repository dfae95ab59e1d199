/* attention.c — scaled dot-product attention over the KV cache, and K/V stores, as
 * ggml computes them without flash attention:
 *
 *   kv_store   K (after RoPE) and V rows are converted to the cache type (F16 rounds).
 *   scores     s_c = (q_h . K_c) * scale, with q_h rounded to F16 when K is F16 (the
 *              matmul's vec_dot_type); masked cells (other sequence, future position,
 *              outside the sliding window) are -inf. Only the token's own sequence's
 *              cells (kv_cache_seq_index_build's list) are visited, so a token's cost
 *              grows with its sequence's cells, not with every sequence's.
 *   softmax    p_c = exp(s_c - max) / sum, the sum in double.
 *   output     out_h = sum_c p_c V_c, p rounded to F16 first when V is F16.
 *
 * GQA: query head h reads KV head h / (n_head / n_head_kv). Work is split over
 * (token, head) pairs; each thread uses its slice of q_exec's att scratch. */
#include <math.h>
#include <string.h>

#include "core/base.h"
#include "cpu/backend.h"
#include "cpu/f16.h"
#include "cpu/vec_dot.h"
#include "runtime/kv_cache.h"

void q_cpu_kv_store(q_kv_cache *kv, int32_t il, const float *k, const float *v,
                    const int32_t *cells, int32_t n_tok) {
    const int32_t w = kv->width[il];
    const size_t rb = kv->row_bytes[il];
    for (int32_t t = 0; t < n_tok; t++) {
        uint8_t *kd = kv->k[il] + (size_t)cells[t] * rb, *vd = kv->v[il] + (size_t)cells[t] * rb;
        const float *ks = k + (int64_t)t * w, *vs = v + (int64_t)t * w;
        if (kv->type == Q_TYPE_F16) {
            uint16_t *k16 = (uint16_t *)kd, *v16 = (uint16_t *)vd;
            for (int32_t i = 0; i < w; i++) {
                k16[i] = q_fp32_to_fp16(ks[i]);
                v16[i] = q_fp32_to_fp16(vs[i]);
            }
        } else {
            memcpy(kd, ks, (size_t)w * sizeof(float));
            memcpy(vd, vs, (size_t)w * sizeof(float));
        }
    }
}

/* the cell-id scratch takes the n_ctx floats of the dense probability row it replaced */
_Static_assert(sizeof(int32_t) == sizeof(float), "cell ids fit float slots");

typedef struct attn_job {
    q_exec            *ex;
    const q_attn_args *a;
    const q_ubatch    *ub;
    const float       *q;
    float             *out;
} attn_job;

static void attn_task(void *ctx, int64_t task, int thread) {
    const attn_job *j = ctx;
    const q_attn_args *a = j->a;
    const q_kv_cache *kv = a->kv;
    const int32_t hd = a->head_dim;
    const int32_t t = (int32_t)(task / a->n_head), h = (int32_t)(task % a->n_head);
    const int32_t kvh = h / (a->n_head / a->n_head_kv);
    const q_pos pos = j->ub->pos[t];
    const q_seq_id seq = j->ub->seq[t];
    const bool f16 = kv->type == Q_TYPE_F16;
    const size_t rb = kv->row_bytes[a->layer];
    const uint8_t *kbase = kv->k[a->layer], *vbase = kv->v[a->layer];
    Q_ASSERT(kv->seq_indexed & (1ull << seq));   /* kv_cache_seq_index_build ran */
    const int32_t *list = kv->seq_cells + (size_t)seq * (size_t)kv->n_ctx;
    const int32_t n_list = kv->seq_n[seq];

    /* thread scratch: scores (n_ctx) | cell ids (n_ctx) | q (hd). Entry k is the k-th
     * visible cell in ascending cell index; scores[k] later holds its probability. */
    float *scores = j->ex->att + (size_t)thread * j->ex->att_stride;
    int32_t *vis = (int32_t *)(scores + kv->n_ctx);
    float *qv = scores + 2 * (size_t)kv->n_ctx;

    const float *qh = j->q + (int64_t)t * a->n_head * hd + (int64_t)h * hd;
    uint16_t *q16 = (uint16_t *)qv;   /* q rounded to F16 for an F16 cache, else F32 */
    for (int32_t d = 0; d < hd; d++) {
        if (f16) q16[d] = q_fp32_to_fp16(qh[d]);
        else qv[d] = qh[d];
    }

    /* Only the sequence's own cells are visited. Every other cell is masked (-inf, so
     * an exact 0 probability), and the sums below keep each visited cell at the slot its
     * cell index gives it (chunk c/16, lane c%16): skipping masked cells leaves every
     * rounding as the dense scan over all cells had it, bit for bit. */
    const q_vec_dot_fn dot = q_matmul_traits_get(f16 ? Q_TYPE_F16 : Q_TYPE_F32)->vec_dot;
    float max = -INFINITY;
    int32_t nv = 0;
    for (int32_t i = 0; i < n_list; i++) {
        const int32_t c = list[i];
        if (!kv_cache_visible(kv, c, seq, pos, a->swa_window)) continue;
        const uint8_t *krow = kbase + (size_t)c * rb;
        float qk;
        if (f16) dot(hd, &qk, (const uint16_t *)krow + (size_t)kvh * hd, q16);
        else dot(hd, &qk, (const float *)krow + (size_t)kvh * hd, qv);
        vis[nv] = c;
        scores[nv] = qk * a->scale;
        if (scores[nv] > max) max = scores[nv];
        nv++;
    }
    /* exp in chunks of 16 cells (by cell index), each chunk summed in float by a pairwise
     * tree (ggml's AVX-512 softmax), chunk sums accumulated in double; masked cells are
     * exact zeros in their lanes, and chunks with none visible add 0.0, so are skipped */
    double sum = 0.0;
    for (int32_t k = 0; k < nv;) {
        const int32_t c0 = vis[k] & ~15;
        float e[16] = { 0 };
        for (; k < nv && vis[k] < c0 + 16; k++) {
            const float ex = scores[k] != -INFINITY ? q_cpu_expf(scores[k] - max) : 0.0f;
            e[vis[k] - c0] = ex;
            scores[k] = ex;
        }
        float t8[8], t4[4];
        for (int32_t i = 0; i < 8; i++) t8[i] = e[8 + i] + e[i];
        for (int32_t i = 0; i < 4; i++) t4[i] = t8[4 + i] + t8[i];
        sum += (double)((t4[0] + t4[2]) + (t4[1] + t4[3]));
    }
    const float inv = sum > 0.0 ? (float)(1.0 / sum) : 0.0f;
    /* out_d = sum_c p_c V_c,d with p rounded to F16 (F16 cache). tinyBLAS order: 16 lanes
     * by cell index (llama.cpp attends over cell blocks padded to 32, and a sequence's
     * cells are its positions), fused multiply-adds in cell order, then the lane tree.
     * Cells with p = 0 add exactly nothing. */
    for (int32_t k = 0; k < nv; k++) {
        const float p = scores[k] * inv;
        scores[k] = f16 ? q_cpu_h2f(q_fp32_to_fp16(p)) : p;
    }
    float *o = j->out + (int64_t)t * a->n_head * hd + (int64_t)h * hd;
    for (int32_t d = 0; d < hd; d++) {
        float lanes[16] = { 0 };
        for (int32_t k = 0; k < nv; k++) {
            if (scores[k] == 0.0f) continue;
            const int32_t c = vis[k];
            const uint8_t *vrow = vbase + (size_t)c * rb;
            const float vv = f16 ? q_cpu_h2f(((const uint16_t *)vrow)[(size_t)kvh * hd + d])
                                 : ((const float *)vrow)[(size_t)kvh * hd + d];
            lanes[c % 16] = fmaf(scores[k], vv, lanes[c % 16]);
        }
        o[d] = q_lanes16_sum(lanes);
    }
}

void q_cpu_attention(q_exec *ex, const q_attn_args *a, const q_ubatch *ub,
                     const float *q, float *out) {
    Q_ASSERT(a->n_head % a->n_head_kv == 0);
    attn_job j = { .ex = ex, .a = a, .ub = ub, .q = q, .out = out };
    q_exec_parallel(ex, attn_task, &j, (int64_t)ub->n * a->n_head);
}
