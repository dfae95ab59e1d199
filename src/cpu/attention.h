/* attention.h — the inner kernels of the CPU attention (cpu/attention.c), one table per
 * kernel set (scalar reference in attention.c, AVX2 in attention_avx2.c), and the op
 * with an explicit set for tests. A task is one query token and a group of query heads
 * that share one KV head (GQA); the kernels run its three passes over the visible cells:
 *
 *   scores   p[s][k] = (q_s . K[vis[k]]) * scale   as the matmul table's vec_dot
 *   softmax  p[s][k] = exp(p - max_s) / sum_s, rounded to F16 for an F16 cache
 *   mix      out_s[d] = sum_k p[s][k] V[vis[k]][d] in 16 lanes by cell index
 *
 * (orders in attention.c). Every set is bit-identical to the scalar one. Kernels own no
 * memory: scratch comes from q_exec.att. */
#ifndef QUARREL_CPU_ATTENTION_H
#define QUARREL_CPU_ATTENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu/backend.h"

enum {
    Q_ATT_S_MAX  = 8,     /* query heads per task at most */
    Q_ATT_VBLOCK = 128,   /* cells per block of the mix (V rows converted to F32) */
};

typedef struct q_attn_work {
    int32_t         n_head;   /* S: query heads of this task, <= Q_ATT_S_MAX */
    int32_t         hd;       /* head dim */
    int32_t         nv;       /* visible cells */
    bool            f16;      /* cache type: F16, else F32 */
    const int32_t  *vis;      /* [nv] visible cell ids, ascending */
    const uint8_t  *k;        /* K row of cell c at k + c * rb (this KV head's slice) */
    const uint8_t  *v;        /* V likewise */
    size_t          rb;       /* bytes per cache row */
    float           scale;
    const float    *qf;       /* [S_MAX][hd] query heads as floats (F16-rounded for F16);
                               * rows S.. are zeros */
    const uint16_t *q16;      /* [S][hd] the same as F16 bits (F16 cache only) */
    float          *p;        /* S_MAX x ps floats: scores, then probabilities, in a layout
                               * of the set's own (scalar: [S][ps]; AVX2: [cell][8]) */
    size_t          ps;       /* >= nv */
    float          *acc;      /* scratch: S_MAX x 16 x hd lane sums */
    float          *vtmp;     /* scratch: Q_ATT_VBLOCK x (hd + 8) floats */
    float          *out;      /* head s's output at out + s * os */
    size_t          os;
} q_attn_work;

typedef struct q_attn_kernels {
    /* p[s][k] = (q_s . K[vis[k]]) * scale; max[s] = the largest */
    void (*scores)(const q_attn_work *w, float *max);
    void (*softmax)(const q_attn_work *w, const float *max);
    void (*mix)(const q_attn_work *w);
    /* dst[i] = F16(src[i]) (round to nearest even) */
    void (*store_f16)(uint16_t *dst, const float *src, int32_t n);
} q_attn_kernels;

/* The kernels of a set (NULL if that set is not built here). */
const q_attn_kernels *q_attn_kernels_isa(q_cpu_isa isa);

/* The scalar kernels, which the other sets fall back to for shapes they do not cover. */
void q_attn_scores_scalar(const q_attn_work *w, float *max);
void q_attn_softmax_scalar(const q_attn_work *w, const float *max);
void q_attn_mix_scalar(const q_attn_work *w);

#if defined(__x86_64__)
extern const q_attn_kernels q_attn_kernels_avx2;
#endif

/* Floats of q_exec.att per thread (att_stride) for n_ctx cells and head_dim; the op uses
 * n_threads + 1 strides (one shared by all threads). */
size_t q_cpu_attention_stride(int32_t n_ctx, int32_t head_dim);

/* The attention op with the kernels of a given set (tests compare sets). */
struct q_kv_cache;
void q_cpu_attention_isa(q_exec *ex, const q_attn_args *a, const q_ubatch *ub, const float *q, float *out,
                         q_cpu_isa isa);

#endif
