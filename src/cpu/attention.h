/* attention.h — the inner kernels of the CPU attention (cpu/attention.c), one table per
 * kernel set (scalar reference in attention.c, AVX2 in attention_avx2.c), and the op
 * with an explicit set for tests. A task is one query token and a group of query heads
 * that share one KV head (GQA); the kernels run its three passes over the visible cells:
 *
 *   scores   p[s][k] = (q_s . K[vis[k]]) * scale   as the matmul table's vec_dot
 *   softmax  p[s][k] = exp(p - max_s) / sum_s, rounded to F16 for an F16 cache
 *   mix      out_s[d] = sum_k p[s][k] V[vis[k]][d] in 16 lanes by position
 *
 * Lanes and chunks follow a cell's position: that is its cell index when a sequence is
 * decoded alone into a fresh cache (llama.cpp's order, which the goldens have), and using
 * the position instead keeps the result the same wherever the cells sit (reused holes,
 * a prefix shared from another sequence).
 *
 * (orders in attention.c). Every set is bit-identical to the scalar one. Kernels own no
 * memory: scratch comes from q_exec.att.
 *
 * Tokens at positions Q_ATT_FLASH_MIN and later take a flash path instead: a task is up to Q_ATT_FLASH_ROWS query rows (tokens x heads of
 * one KV head) and one pass over the sequence's cells in blocks of Q_ATT_FLASH_BLOCK,
 * with an online softmax (running max and sum, the output rescaled when the max grows),
 * so each K and V block is read once for all its rows. The pass restarts at every chunk of
 * Q_ATT_FLASH_CHUNK positions and the chunks' states are folded in position order, so a
 * decode token's chunks can run on different threads (attention.c) and still give the
 * bits that one task running them all gives. It is not bit-identical to the
 * exact path (the softmax is normalized at the end, not before the V sum, and p is not
 * rounded to F16), which is why it runs only past the contexts the goldens use; its
 * sets are bit-identical to each other. */
#ifndef QUARREL_CPU_ATTENTION_H
#define QUARREL_CPU_ATTENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu/backend.h"

enum {
    Q_ATT_S_MAX  = 8,     /* query heads per task at most */
    Q_ATT_VBLOCK = 128,   /* cells per block of the mix (V rows converted to F32) */
    Q_ATT_FLASH_MIN   = 1024,   /* cells of the sequence from which a ubatch goes flash */
    Q_ATT_FLASH_ROWS  = 32,     /* query rows per flash task (4 registers of 8) */
    Q_ATT_FLASH_BLOCK = 64,     /* cells per flash block */
    Q_ATT_FLASH_CHUNK = 256,    /* positions per flash chunk (a multiple of the block) */
};

typedef struct q_attn_work {
    int32_t         n_head;   /* S: query heads of this task, <= Q_ATT_S_MAX */
    int32_t         hd;       /* head dim */
    int32_t         nv;       /* visible cells */
    bool            f16;      /* cache type: F16, else F32 */
    const int32_t  *vis;      /* [nv] visible cell ids, in position order */
    const int32_t  *vpos;     /* [nv] their positions, ascending: the lane slots (below) */
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

/* One flash kernel call: rows r < n_rows, each a query vector q + r * hd (floats, F16-rounded
 * for an F16 cache) at position pos[r], over one chunk of the sequence's list (ascending),
 * cell c visible to row r iff cells[c].pos <= pos[r] (and within the window when swa > 0).
 * Output: the chunk's state per row, m_out[r] (running max, -inf if the row saw nothing),
 * l_out[r] (sum of p) and out[r][d] = O (the unnormalized sum of p V); the op folds the
 * chunks' states in position order (attention.c) and divides at the end. */
typedef struct q_attn_flash {
    int32_t                 n_rows;   /* <= Q_ATT_FLASH_ROWS */
    int32_t                 hd;
    int32_t                 n;        /* cells in the list (the chunk) */
    int32_t                 n_list;   /* entries of cells_list readable, >= n: the AVX2 set
                                       * prefetches past the chunk's end */
    bool                    f16;
    const int32_t          *cells_list;
    const struct q_kv_cell *cells;
    int32_t                 swa;
    const uint8_t          *k, *v;    /* as q_attn_work */
    size_t                  rb;
    float                   scale;
    const float            *q;        /* [n_rows][hd] */
    const q_pos            *pos;      /* [n_rows] */
    float                 **out;      /* [n_rows] rows of hd floats: O */
    float                  *m_out;    /* [n_rows] */
    float                  *l_out;    /* [n_rows] */
    float                  *scratch;  /* q_attn_flash_scratch(hd) floats */
} q_attn_flash;

/* Floats of scratch a flash task needs for head dim hd. */
size_t q_attn_flash_scratch(int32_t hd);

typedef struct q_attn_kernels {
    /* p[s][k] = (q_s . K[vis[k]]) * scale; max[s] = the largest */
    void (*scores)(const q_attn_work *w, float *max);
    void (*softmax)(const q_attn_work *w, const float *max);
    void (*mix)(const q_attn_work *w);
    /* dst[i] = F16(src[i]) (round to nearest even) */
    void (*store_f16)(uint16_t *dst, const float *src, int32_t n);
    /* the flash task */
    void (*flash)(const q_attn_flash *f);
} q_attn_kernels;

/* The kernels of a set (NULL if that set is not built here). */
const q_attn_kernels *q_attn_kernels_isa(q_cpu_isa isa);

/* The scalar kernels, which the other sets fall back to for shapes they do not cover. */
void q_attn_scores_scalar(const q_attn_work *w, float *max);
void q_attn_softmax_scalar(const q_attn_work *w, const float *max);
void q_attn_mix_scalar(const q_attn_work *w);
void q_attn_flash_scalar(const q_attn_flash *f);

#if defined(__x86_64__)
extern const q_attn_kernels q_attn_kernels_avx2;
#endif

/* Floats of q_exec.att per thread (att_stride) for n_ctx cells and head_dim; the op uses
 * n_threads + 1 strides (one shared by all threads). */
size_t q_cpu_attention_stride(int32_t n_ctx, int32_t head_dim);

/* The attention op with the kernels of a given set (tests compare sets); flash_min is the
 * sequence length from which a ubatch of several tokens goes flash (the op uses
 * Q_ATT_FLASH_MIN; 0 = never). */
struct q_kv_cache;
void q_cpu_attention_isa(q_exec *ex, const q_attn_args *a, const q_ubatch *ub, const float *q, float *out,
                         q_cpu_isa isa, int32_t flash_min);

#endif
