/* attention.c — scaled dot-product attention over the KV cache, and K/V stores, as
 * ggml computes them without flash attention:
 *
 *   kv_store   K (after RoPE) and V rows are converted to the cache type (F16 rounds).
 *   scores     s_c = (q_h . K_c) * scale, with q_h rounded to F16 when K is F16 (the
 *              matmul's vec_dot_type); masked cells (other sequence, future position,
 *              outside the sliding window) are -inf.
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

typedef struct attn_job {
    q_exec            *ex;
    const q_attn_args *a;
    const q_ubatch    *ub;
    const float       *q;
    float             *out;
    int32_t            n_scan;
} attn_job;

static void attn_task(void *ctx, int64_t task, int thread) {
    const attn_job *j = ctx;
    const q_attn_args *a = j->a;
    const q_kv_cache *kv = a->kv;
    const int32_t hd = a->head_dim, n_scan = j->n_scan;
    const int32_t t = (int32_t)(task / a->n_head), h = (int32_t)(task % a->n_head);
    const int32_t kvh = h / (a->n_head / a->n_head_kv);
    const q_pos pos = j->ub->pos[t];
    const q_seq_id seq = j->ub->seq[t];
    const bool f16 = kv->type == Q_TYPE_F16;
    const size_t rb = kv->row_bytes[a->layer];
    const uint8_t *kbase = kv->k[a->layer], *vbase = kv->v[a->layer];

    /* thread scratch: scores (n_ctx) | probs (n_ctx) | q (hd) */
    float *scores = j->ex->att + (size_t)thread * j->ex->att_stride;
    float *probs = scores + kv->n_ctx;
    float *qv = probs + kv->n_ctx;

    const float *qh = j->q + (int64_t)t * a->n_head * hd + (int64_t)h * hd;
    uint16_t *q16 = (uint16_t *)qv;   /* q rounded to F16 for an F16 cache, else F32 */
    for (int32_t d = 0; d < hd; d++) {
        if (f16) q16[d] = q_fp32_to_fp16(qh[d]);
        else qv[d] = qh[d];
    }

    const q_vec_dot_fn dot = q_matmul_traits_get(f16 ? Q_TYPE_F16 : Q_TYPE_F32)->vec_dot;
    float max = -INFINITY;
    for (int32_t c = 0; c < n_scan; c++) {
        if (!kv_cache_visible(kv, c, seq, pos, a->swa_window)) { scores[c] = -INFINITY; continue; }
        const uint8_t *krow = kbase + (size_t)c * rb;
        float qk;
        if (f16) dot(hd, &qk, (const uint16_t *)krow + (size_t)kvh * hd, q16);
        else dot(hd, &qk, (const float *)krow + (size_t)kvh * hd, qv);
        scores[c] = qk * a->scale;
        if (scores[c] > max) max = scores[c];
    }
    /* exp in chunks of 16, each chunk summed in float by a pairwise tree (ggml's AVX-512
     * softmax), chunk sums accumulated in double; masked cells add exact zeros */
    double sum = 0.0;
    for (int32_t c0 = 0; c0 < n_scan; c0 += 16) {
        float e[16];
        for (int32_t i = 0; i < 16; i++)
            e[i] = c0 + i < n_scan && scores[c0 + i] != -INFINITY ? q_cpu_expf(scores[c0 + i] - max) : 0.0f;
        for (int32_t i = 0; i < 16 && c0 + i < n_scan; i++) probs[c0 + i] = e[i];
        float t8[8], t4[4];
        for (int32_t i = 0; i < 8; i++) t8[i] = e[8 + i] + e[i];
        for (int32_t i = 0; i < 4; i++) t4[i] = t8[4 + i] + t8[i];
        sum += (double)((t4[0] + t4[2]) + (t4[1] + t4[3]));
    }
    const float inv = sum > 0.0 ? (float)(1.0 / sum) : 0.0f;
    /* out_d = sum_c p_c V_c,d with p rounded to F16 (F16 cache). tinyBLAS order: 16 lanes
     * by cell index (llama.cpp attends over cell blocks padded to 32, and a sequence's
     * cells are its positions), fused multiply-adds in cell order, then the lane tree.
     * Masked cells have p = 0 and add exactly nothing. */
    for (int32_t c = 0; c < n_scan; c++) {
        const float p = probs[c] * inv;
        probs[c] = f16 ? q_cpu_h2f(q_fp32_to_fp16(p)) : p;
    }
    float *o = j->out + (int64_t)t * a->n_head * hd + (int64_t)h * hd;
    for (int32_t d = 0; d < hd; d++) {
        float lanes[16] = { 0 };
        for (int32_t c = 0; c < n_scan; c++) {
            if (probs[c] == 0.0f) continue;
            const uint8_t *vrow = vbase + (size_t)c * rb;
            const float vv = f16 ? q_cpu_h2f(((const uint16_t *)vrow)[(size_t)kvh * hd + d])
                                 : ((const float *)vrow)[(size_t)kvh * hd + d];
            lanes[c % 16] = fmaf(probs[c], vv, lanes[c % 16]);
        }
        o[d] = q_lanes16_sum(lanes);
    }
}

void q_cpu_attention(q_exec *ex, const q_attn_args *a, const q_ubatch *ub,
                     const float *q, float *out) {
    Q_ASSERT(a->n_head % a->n_head_kv == 0);
    attn_job j = { .ex = ex, .a = a, .ub = ub, .q = q, .out = out,
                   .n_scan = kv_cache_n_scan(a->kv) };
    q_exec_parallel(ex, attn_task, &j, (int64_t)ub->n * a->n_head);
}
