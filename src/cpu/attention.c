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
 * GQA: query head h reads KV head h / (n_head / n_head_kv). A task is one token and a
 * group of up to Q_ATT_S_MAX query heads of one KV head, so each K and V row is read
 * once for the whole group (from memory once per token, then from L1); the three passes
 * (scores, softmax, mix) run on the task's thread slice of q_exec's att scratch. The
 * inner kernels come from the kernel set's table (scalar here, AVX2 in
 * attention_avx2.c, bit-identical; see attention.h).
 *
 * Decode (one token) lists its visible cells once, on the caller, in the shared scratch
 * slot; a ubatch of several tokens lists them per task.
 *
 * Flash (attention.h): a token at position Q_ATT_FLASH_MIN or later takes the flash path
 * instead (consecutive such tokens of one sequence share blocks); tasks are (block of
 * Q_ATT_FLASH_ROWS query rows of one KV head's heads, KV head). The choice depends only on
 * the token's position, so a sequence computes the same alone or next to others, in one
 * chunk or many. The list is cut into chunks of Q_ATT_FLASH_CHUNK positions (chunk =
 * pos / CHUNK, so the cut never depends on threads or cell placement); each chunk runs
 * the pass below from an empty state, and the chunks' states are folded in position order
 * (flash_fold). A ubatch task folds its chunks itself; a decode token (one query row per
 * head, only n_head_kv tasks otherwise: 4 for 2 threads on TinyLlama) runs one task per
 * (chunk, KV head, subgroup) and the caller folds: the same bits. Flash order, per
 * query row r and block of cells (blocks start at the chunk's first cell):
 *   s_j   = (fma chain over d of K_j[d] q[d], from 0) * scale, -inf if not visible
 *   m'    = max(m, max_j s_j);  a = exp(m - m') (0 while m = -inf)
 *   l     = l * a, then l += p_j in cell order, p_j = exp(s_j - m') (0 for -inf)
 *   O[d]  = O[d] * a, then O[d] = fma(p_j, V_j[d], O[d]) in cell order
 *   out   = O / l (0 when l = 0). */
#include <math.h>
#include <string.h>

#include "core/base.h"
#include "cpu/attention.h"
#include "cpu/backend.h"
#include "cpu/f16.h"
#include "cpu/vec_dot.h"
#include "runtime/kv_cache.h"

/* ---- scalar kernels (the reference) ---- */

static void scalar_store_f16(uint16_t *dst, const float *src, int32_t n) {
    for (int32_t i = 0; i < n; i++) dst[i] = q_fp32_to_fp16(src[i]);
}

void q_attn_scores_scalar(const q_attn_work *w, float *max) {
    const q_vec_dot_fn dot = q_matmul_traits_isa(w->f16 ? Q_TYPE_F16 : Q_TYPE_F32, Q_CPU_ISA_SCALAR)->vec_dot;
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
}

/* exp in chunks of 16 cells (by position, see attention.h), each chunk summed in float by a pairwise
 * tree (ggml's AVX-512 softmax), chunk sums accumulated in double. Cells that are not
 * visible are exact zeros in their lanes, and chunks with none visible add 0.0, so the
 * sums keep each visited cell at the slot its position gives it (chunk p/16, lane
 * p%16): skipping masked cells leaves every rounding as the dense scan over all cells
 * had it, bit for bit. Then p = e / sum, rounded to F16 for an F16 cache (the matmul's
 * vec_dot_type). */
void q_attn_softmax_scalar(const q_attn_work *w, const float *max) {
    for (int32_t s = 0; s < w->n_head; s++) {
        float *p = w->p + (size_t)s * w->ps;
        double sum = 0.0;
        for (int32_t k = 0; k < w->nv;) {
            const int32_t c0 = w->vpos[k] & ~15;
            float e[16] = { 0 };
            for (; k < w->nv && w->vpos[k] < c0 + 16; k++) {
                const float ex = p[k] != -INFINITY ? q_cpu_expf(p[k] - max[s]) : 0.0f;
                e[w->vpos[k] - c0] = ex;
                p[k] = ex;
            }
            sum += (double)q_lanes16_sum(e);
        }
        const float inv = sum > 0.0 ? (float)(1.0 / sum) : 0.0f;
        for (int32_t k = 0; k < w->nv; k++) {
            const float pk = p[k] * inv;
            p[k] = w->f16 ? q_cpu_h2f(q_fp32_to_fp16(pk)) : pk;
        }
    }
}

/* out_d = sum_c p_c V_c,d in tinyBLAS's order: 16 lanes by position (llama.cpp
 * attends over cell blocks padded to 32, and a sequence's cells are its positions),
 * fused multiply-adds in cell order, then the lane tree. Every visible cell is added,
 * as ggml's product adds p = 0 cells. */
void q_attn_mix_scalar(const q_attn_work *w) {
    const int32_t hd = w->hd;
    float *acc = w->acc;   /* [16][hd] */
    for (int32_t s = 0; s < w->n_head; s++) {
        const float *p = w->p + (size_t)s * w->ps;
        memset(acc, 0, sizeof(float) * 16 * (size_t)hd);
        for (int32_t k = 0; k < w->nv; k++) {
            const int32_t c = w->vis[k];
            float *a = acc + (size_t)(w->vpos[k] & 15) * (size_t)hd;
            const uint8_t *vrow = w->v + (size_t)c * w->rb;
            for (int32_t d = 0; d < hd; d++) {
                const float vv = w->f16 ? q_cpu_h2f(((const uint16_t *)vrow)[d]) : ((const float *)vrow)[d];
                a[d] = fmaf(p[k], vv, a[d]);
            }
        }
        float *o = w->out + (size_t)s * w->os;
        for (int32_t d = 0; d < hd; d++) {
            float lanes[16];
            for (int l = 0; l < 16; l++) lanes[l] = acc[(size_t)l * (size_t)hd + (size_t)d];
            o[d] = q_lanes16_sum(lanes);
        }
    }
}

/* ---- flash (order in the file comment) ---- */

/* scores [BLOCK][ROWS] | O [ROWS][hd] (the AVX2 set keeps it as [hd][ROWS]) | q^T
 * [hd][ROWS] | K and V blocks [BLOCK][hd] | m, l, a [ROWS] */
size_t q_attn_flash_scratch(int32_t hd) {
    return (size_t)Q_ATT_FLASH_BLOCK * Q_ATT_FLASH_ROWS + 2 * (size_t)hd * Q_ATT_FLASH_ROWS +
           2 * (size_t)Q_ATT_FLASH_BLOCK * (size_t)hd + 3 * Q_ATT_FLASH_ROWS + 16;
}

static bool flash_visible(const q_attn_flash *f, q_pos pc, int32_t r) {
    return pc <= f->pos[r] && (f->swa <= 0 || f->pos[r] - pc < f->swa);
}

static float flash_val(const q_attn_flash *f, const uint8_t *base, int32_t c, int32_t d) {
    const uint8_t *row = base + (size_t)c * f->rb;
    return f->f16 ? q_cpu_h2f(((const uint16_t *)row)[d]) : ((const float *)row)[d];
}

void q_attn_flash_scalar(const q_attn_flash *f) {
    enum { B = Q_ATT_FLASH_BLOCK, R = Q_ATT_FLASH_ROWS };
    const int32_t hd = f->hd, nr = f->n_rows;
    float *sc = f->scratch, *o = sc + B * R;   /* sc[jj * R + r], o[r * hd + d] */
    float m[R], l[R];
    for (int32_t r = 0; r < nr; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    memset(o, 0, sizeof(float) * (size_t)nr * (size_t)hd);
    for (int32_t j0 = 0; j0 < f->n; j0 += B) {
        const int32_t nb = Q_MIN(B, f->n - j0);
        for (int32_t jj = 0; jj < nb; jj++) {
            const int32_t c = f->cells_list[j0 + jj];
            for (int32_t r = 0; r < nr; r++) {
                float acc = 0.0f;
                if (flash_visible(f, f->cells[c].pos, r)) {
                    for (int32_t d = 0; d < hd; d++) acc = fmaf(flash_val(f, f->k, c, d), f->q[(size_t)r * hd + d], acc);
                    sc[jj * R + r] = acc * f->scale;
                } else {
                    sc[jj * R + r] = -INFINITY;
                }
            }
        }
        for (int32_t r = 0; r < nr; r++) {
            float mb = -INFINITY;
            for (int32_t jj = 0; jj < nb; jj++)
                if (sc[jj * R + r] > mb) mb = sc[jj * R + r];
            const float mn = m[r] > mb ? m[r] : mb;
            const float a = m[r] == -INFINITY ? 0.0f : q_cpu_expf(m[r] - mn);
            float *orow = o + (size_t)r * hd;
            l[r] *= a;
            for (int32_t d = 0; d < hd; d++) orow[d] *= a;
            for (int32_t jj = 0; jj < nb; jj++) {
                const float sj = sc[jj * R + r];
                const float pj = sj == -INFINITY ? 0.0f : q_cpu_expf(sj - mn);
                l[r] += pj;
                const int32_t c = f->cells_list[j0 + jj];
                for (int32_t d = 0; d < hd; d++) orow[d] = fmaf(pj, flash_val(f, f->v, c, d), orow[d]);
            }
            m[r] = mn;
        }
    }
    for (int32_t r = 0; r < nr; r++) {
        f->m_out[r] = m[r];
        f->l_out[r] = l[r];
        memcpy(f->out[r], o + (size_t)r * hd, sizeof(float) * (size_t)hd);
    }
}

static const q_attn_kernels attn_kernels_scalar = {
    .scores    = q_attn_scores_scalar,
    .softmax   = q_attn_softmax_scalar,
    .mix       = q_attn_mix_scalar,
    .store_f16 = scalar_store_f16,
    .flash     = q_attn_flash_scalar,
};

static const q_attn_kernels *const attn_tables[Q_CPU_ISA_COUNT] = {
    [Q_CPU_ISA_SCALAR] = &attn_kernels_scalar,
#if defined(__x86_64__)
    [Q_CPU_ISA_AVX2]   = &q_attn_kernels_avx2,
#endif
};

const q_attn_kernels *q_attn_kernels_isa(q_cpu_isa isa) {
    return (unsigned)isa < Q_CPU_ISA_COUNT ? attn_tables[isa] : NULL;
}

/* The set's kernels, or the next set down that has them. */
static const q_attn_kernels *attn_kernels_for(q_cpu_isa isa) {
    for (int i = (int)isa; i > 0; i--)
        if (attn_tables[i]) return attn_tables[i];
    return &attn_kernels_scalar;
}

/* ---- K/V store ---- */

void q_cpu_kv_store(q_kv_cache *kv, int32_t il, const float *k, const float *v,
                    const int32_t *cells, int32_t n_tok) {
    const int32_t w = kv->width[il];
    const size_t rb = kv->row_bytes[il];
    const q_attn_kernels *K = attn_kernels_for(q_cpu_isa_best());
    for (int32_t t = 0; t < n_tok; t++) {
        uint8_t *kd = kv->k[il] + (size_t)cells[t] * rb, *vd = kv->v[il] + (size_t)cells[t] * rb;
        const float *ks = k + (int64_t)t * w, *vs = v + (int64_t)t * w;
        if (kv->type == Q_TYPE_F16) {
            K->store_f16((uint16_t *)kd, ks, w);
            K->store_f16((uint16_t *)vd, vs, w);
        } else {
            memcpy(kd, ks, (size_t)w * sizeof(float));
            memcpy(vd, vs, (size_t)w * sizeof(float));
        }
    }
}

/* ---- the op ---- */

/* Thread scratch, in floats: vis (n_ctx ids) | vpos (n_ctx positions) | p (S_MAX x n_ctx) | qf (S_MAX x hd) |
 * q16 (S_MAX x hd halves) | acc (S_MAX x 16 x hd) | vtmp (VBLOCK x (hd + 8)); each part
 * rounded up to 16 floats (64 bytes). */
static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

typedef struct att_layout {
    size_t vis, vpos, p, ps, qf, q16, acc, vtmp, stride;
} att_layout;

static att_layout att_layout_of(int32_t n_ctx, int32_t hd) {
    att_layout L;
    L.ps = round16((size_t)n_ctx);
    L.vis = 0;
    L.vpos = L.vis + round16((size_t)n_ctx);
    L.p = L.vpos + round16((size_t)n_ctx);
    L.qf = L.p + Q_ATT_S_MAX * L.ps;
    L.q16 = L.qf + round16((size_t)Q_ATT_S_MAX * (size_t)hd);
    L.acc = L.q16 + round16(((size_t)Q_ATT_S_MAX * (size_t)hd + 1) / 2);
    L.vtmp = L.acc + round16((size_t)Q_ATT_S_MAX * 16 * (size_t)hd);
    L.stride = L.vtmp + round16((size_t)Q_ATT_VBLOCK * ((size_t)hd + 8));
    /* a flash task uses the slot from p on for its scratch, q rows and two row states */
    const size_t flash = L.p + round16(q_attn_flash_scratch(hd)) + 3 * (size_t)Q_ATT_FLASH_ROWS * (size_t)hd;
    if (flash > L.stride) L.stride = round16(flash);
    return L;
}

size_t q_cpu_attention_stride(int32_t n_ctx, int32_t head_dim) { return att_layout_of(n_ctx, head_dim).stride; }

_Static_assert(sizeof(int32_t) == sizeof(float), "cell ids fit float slots");

typedef struct attn_job {
    q_exec               *ex;
    const q_attn_args    *a;
    const q_ubatch       *ub;
    const float          *q;
    float                *out;
    const q_attn_kernels *K;
    att_layout            L;
    int32_t               n_rep;      /* query heads per KV head */
    int32_t               n_sub;      /* tasks per (token, KV head) */
    int32_t               s_per;      /* query heads per task (the last may have fewer) */
    const int32_t        *vis_shared; /* decode: the token's visible cells, or NULL */
    const int32_t        *vpos_shared;/* decode: their positions */
    int32_t               nv_shared;
    const int32_t        *tasks;      /* exact: token of each task group (n_tok_exact) */
    const int32_t        *flash_t0;   /* flash: first token of each row block */
    const int32_t        *flash_nt;   /* flash: tokens in it */
    int32_t               flash_tok;  /* flash: tokens per row block (ROWS / s_per) */
    const int32_t        *bounds;     /* decode split: chunk k is list[bounds[k]..bounds[k+1]) */
    float                *part;       /* decode split: [chunk][n_head] states of hd + 2 (O, m, l) */
} attn_job;

/* The visible cells of token t into vis and their positions into vpos, in position order
 * (the list's); returns their count. */
static int32_t attn_visible(const q_attn_args *a, const q_ubatch *ub, int32_t t, int32_t *vis, int32_t *vpos) {
    const q_kv_cache *kv = a->kv;
    const q_seq_id seq = ub->seq[t];
    const q_pos pos = ub->pos[t];
    Q_ASSERT(kv->seq_indexed & (1ull << seq));   /* kv_cache_seq_index_build ran */
    const int32_t *list = kv->seq_cells + (size_t)seq * (size_t)kv->n_ctx;
    const int32_t n_list = kv->seq_n[seq];
    int32_t nv = 0;
    for (int32_t i = 0; i < n_list; i++)
        if (kv_cache_visible(kv, list[i], seq, pos, a->swa_window)) {
            vis[nv] = list[i];
            vpos[nv++] = kv->cells[list[i]].pos;
        }
    return nv;
}

static void attn_task(void *ctx, int64_t task, int thread) {
    const attn_job *j = ctx;
    const q_attn_args *a = j->a;
    const q_kv_cache *kv = a->kv;
    const int32_t hd = a->head_dim, n_kv = a->n_head_kv;
    const int32_t sub = (int32_t)(task % j->n_sub);
    const int32_t g = (int32_t)(task / j->n_sub % n_kv), t = j->tasks[task / j->n_sub / n_kv];
    const int32_t h0 = g * j->n_rep + sub * j->s_per;
    const int32_t S = Q_MIN(j->s_per, (g + 1) * j->n_rep - h0);
    if (S <= 0) return;
    const bool f16 = kv->type == Q_TYPE_F16;
    float *scr = j->ex->att + (size_t)(thread + 1) * j->L.stride;   /* slot 0 is shared */

    const int32_t *vis = j->vis_shared, *vpos = j->vpos_shared;
    int32_t nv = j->nv_shared;
    if (!vis) {
        nv = attn_visible(a, j->ub, t, (int32_t *)(scr + j->L.vis), (int32_t *)(scr + j->L.vpos));
        vis = (const int32_t *)(scr + j->L.vis);
        vpos = (const int32_t *)(scr + j->L.vpos);
    }

    /* the group's query heads, as F16 (the K row's vec_dot_type) and as their float values */
    float *qf = scr + j->L.qf;
    uint16_t *q16 = (uint16_t *)(scr + j->L.q16);
    const float *qsrc = j->q + ((int64_t)t * a->n_head + h0) * hd;
    if (f16) {
        j->K->store_f16(q16, qsrc, S * hd);
        for (int32_t i = 0; i < S * hd; i++) qf[i] = q_cpu_h2f(q16[i]);
    } else {
        memcpy(qf, qsrc, sizeof(float) * (size_t)(S * hd));
    }
    memset(qf + (size_t)S * hd, 0, sizeof(float) * (size_t)(Q_ATT_S_MAX - S) * (size_t)hd);
    const size_t off = (size_t)g * (size_t)hd * (f16 ? sizeof(uint16_t) : sizeof(float));
    const q_attn_work w = {
        .n_head = S, .hd = hd, .nv = nv, .f16 = f16, .vis = vis, .vpos = vpos,
        .k = kv->k[a->layer] + off, .v = kv->v[a->layer] + off, .rb = kv->row_bytes[a->layer],
        .scale = a->scale, .qf = qf, .q16 = q16, .p = scr + j->L.p, .ps = j->L.ps,
        .acc = scr + j->L.acc, .vtmp = scr + j->L.vtmp,
        .out = j->out + ((int64_t)t * a->n_head + h0) * hd, .os = (size_t)hd,
    };
    float max[Q_ATT_S_MAX];
    j->K->scores(&w, max);
    j->K->softmax(&w, max);
    j->K->mix(&w);
}

/* Folds a chunk's state (m, l, o) of one row into the running one (M, L, O), chunks in
 * position order: Mn = max(M, m), L = L e^(M - Mn) + l e^(m - Mn), O[d] likewise (products
 * rounded, then the sum); the first chunk the row sees is taken as is, and a chunk it sees
 * nothing of (m = -inf) leaves the state untouched. Shared by every set. */
static void flash_fold(float *M, float *L, float *O, float m, float l, const float *o, int32_t hd) {
    if (m == -INFINITY) return;
    if (*M == -INFINITY) {
        *M = m;
        *L = l;
        memcpy(O, o, sizeof(float) * (size_t)hd);
        return;
    }
    const float mn = *M > m ? *M : m, a = q_cpu_expf(*M - mn), b = q_cpu_expf(m - mn);
    const float la = *L * a, lb = l * b;
    *L = la + lb;
    for (int32_t d = 0; d < hd; d++) {
        const float oa = O[d] * a, ob = o[d] * b;
        O[d] = oa + ob;
    }
    *M = mn;
}

/* out = O / L, 0 where the row saw nothing */
static void flash_finish(float *out, float L, const float *O, int32_t hd) {
    for (int32_t d = 0; d < hd; d++) out[d] = L > 0.0f ? O[d] / L : 0.0f;
}

/* Chunk of a position: floor division, positions are >= 0 */
static int32_t flash_chunk_of(q_pos p) { return (int32_t)(p / Q_ATT_FLASH_CHUNK); }

/* A flash task: row block b (flash_t0[b], flash_nt[b] tokens of one sequence), KV head g,
 * head subgroup sub; rows are (token, head) pairs, token-major. With j->part (a decode
 * token split by chunk), the task is chunk k of the row block 0 and leaves its state in
 * j->part for the caller to fold; else it runs every chunk up to its rows' last position
 * and folds them itself. */
static void attn_flash_task(void *ctx, int64_t task, int thread) {
    const attn_job *j = ctx;
    const q_attn_args *a = j->a;
    const q_kv_cache *kv = a->kv;
    const int32_t hd = a->head_dim, n_kv = a->n_head_kv;
    const int32_t sub = (int32_t)(task % j->n_sub), g = (int32_t)(task / j->n_sub % n_kv);
    const int32_t b = j->part ? 0 : (int32_t)(task / j->n_sub / n_kv);
    const int32_t k = j->part ? (int32_t)(task / j->n_sub / n_kv) : -1;
    const int32_t h0 = g * j->n_rep + sub * j->s_per;
    const int32_t S = Q_MIN(j->s_per, (g + 1) * j->n_rep - h0);
    if (S <= 0) return;
    const int32_t t0 = j->flash_t0[b], nt = j->flash_nt[b];
    const q_seq_id seq = j->ub->seq[t0];
    const bool f16 = kv->type == Q_TYPE_F16;
    float *scr = j->ex->att + (size_t)(thread + 1) * j->L.stride + j->L.p;
    float *qr = scr + round16(q_attn_flash_scratch(hd));   /* [rows][hd] */
    float *O = qr + (size_t)Q_ATT_FLASH_ROWS * (size_t)hd;   /* [rows][hd] running state */
    float *po = O + (size_t)Q_ATT_FLASH_ROWS * (size_t)hd;   /* [rows][hd] a chunk's */
    q_pos pos[Q_ATT_FLASH_ROWS], pos_hi = 0;
    float *outp[Q_ATT_FLASH_ROWS], *pop[Q_ATT_FLASH_ROWS];
    float M[Q_ATT_FLASH_ROWS], Ls[Q_ATT_FLASH_ROWS], pm[Q_ATT_FLASH_ROWS], pl[Q_ATT_FLASH_ROWS];
    int32_t nr = 0;
    for (int32_t t = t0; t < t0 + nt; t++)
        for (int32_t s = 0; s < S; s++, nr++) {
            const float *src = j->q + ((int64_t)t * a->n_head + h0 + s) * hd;
            float *dst = qr + (size_t)nr * hd;
            if (f16) {   /* F16-rounded by the set's store (one vcvtps2ph per 8 in AVX2) */
                uint16_t h[64];
                for (int32_t d0 = 0; d0 < hd; d0 += 64) {
                    const int32_t nd = Q_MIN(64, hd - d0);
                    j->K->store_f16(h, src + d0, nd);
                    for (int32_t d = 0; d < nd; d++) dst[d0 + d] = q_cpu_h2f(h[d]);
                }
            } else {
                memcpy(dst, src, sizeof(float) * (size_t)hd);
            }
            pos[nr] = j->ub->pos[t];
            if (pos[nr] > pos_hi) pos_hi = pos[nr];
            outp[nr] = j->out + ((int64_t)t * a->n_head + h0 + s) * hd;
            pop[nr] = j->part ? j->part + ((size_t)k * (size_t)a->n_head + (size_t)(h0 + s)) * ((size_t)hd + 2)
                              : po + (size_t)nr * hd;
            M[nr] = -INFINITY;
            Ls[nr] = 0.0f;
        }
    Q_ASSERT(kv->seq_indexed & (1ull << seq));
    const size_t off = (size_t)g * (size_t)hd * (f16 ? sizeof(uint16_t) : sizeof(float));
    const int32_t *list = kv->seq_cells + (size_t)seq * (size_t)kv->n_ctx;
    q_attn_flash f = {
        .n_rows = nr, .hd = hd, .f16 = f16, .cells = kv->cells, .swa = a->swa_window,
        .k = kv->k[a->layer] + off, .v = kv->v[a->layer] + off, .rb = kv->row_bytes[a->layer], .scale = a->scale,
        .q = qr, .pos = pos, .out = pop, .m_out = pm, .l_out = pl, .scratch = scr,
    };
    if (j->part) {   /* one chunk: its state next to its O row */
        f.cells_list = list + j->bounds[k];
        f.n = j->bounds[k + 1] - j->bounds[k];
        f.n_list = kv->seq_n[seq] - j->bounds[k];
        j->K->flash(&f);
        for (int32_t r = 0; r < nr; r++) {
            pop[r][hd] = pm[r];
            pop[r][hd + 1] = pl[r];
        }
        return;
    }
    const int32_t n = kv->seq_n[seq];
    for (int32_t i = 0; i < n;) {   /* chunks in position order; past pos_hi nobody sees a cell */
        const int32_t cid = flash_chunk_of(kv->cells[list[i]].pos);
        if ((q_pos)cid * Q_ATT_FLASH_CHUNK > pos_hi) break;
        int32_t i1 = i + 1;
        while (i1 < n && flash_chunk_of(kv->cells[list[i1]].pos) == cid) i1++;
        f.cells_list = list + i;
        f.n = i1 - i;
        f.n_list = n - i;
        j->K->flash(&f);
        for (int32_t r = 0; r < nr; r++) flash_fold(&M[r], &Ls[r], O + (size_t)r * hd, pm[r], pl[r], pop[r], hd);
        i = i1;
    }
    for (int32_t r = 0; r < nr; r++) flash_finish(outp[r], Ls[r], O + (size_t)r * hd, hd);
}

/* A decode token on the flash path with its chunks split across tasks (when the shared
 * slot holds their states): chunk bounds into the shared slot's vis part, states after
 * them; tasks (chunk, KV head, subgroup); then the caller folds each head's chunks in
 * order. Returns false (nothing done) when the states do not fit. */
static bool attn_flash_decode_split(attn_job *j) {
    const q_attn_args *a = j->a;
    const q_kv_cache *kv = a->kv;
    const q_seq_id seq = j->ub->seq[0];
    const q_pos pos = j->ub->pos[0];
    const int32_t hd = a->head_dim;
    Q_ASSERT(kv->seq_indexed & (1ull << seq));
    const int32_t *list = kv->seq_cells + (size_t)seq * (size_t)kv->n_ctx;
    const int32_t n = kv->seq_n[seq];
    /* chunk bounds after the token lists (3 ints for one token), in the vis and vpos parts */
    int32_t *bounds = (int32_t *)j->ex->att + 4;
    if (4 + (size_t)n + 1 > j->L.p) return false;
    int32_t nck = 0;
    for (int32_t i = 0; i < n;) {
        const int32_t cid = flash_chunk_of(kv->cells[list[i]].pos);
        if ((q_pos)cid * Q_ATT_FLASH_CHUNK > pos) break;
        bounds[nck++] = i;
        while (i < n && flash_chunk_of(kv->cells[list[i]].pos) == cid) i++;
        bounds[nck] = i;
    }
    const size_t need = (size_t)nck * (size_t)a->n_head * ((size_t)hd + 2);
    if (nck == 0 || j->L.p + need + (size_t)hd > j->L.stride) return false;
    j->bounds = bounds;
    j->part = j->ex->att + j->L.p;
    q_exec_parallel(j->ex, attn_flash_task, j, (int64_t)nck * a->n_head_kv * j->n_sub);
    float *O = j->part + need;   /* hd floats: the running state (room: see att_layout_of) */
    for (int32_t h = 0; h < a->n_head; h++) {
        float M = -INFINITY, Ls = 0.0f;
        for (int32_t k = 0; k < nck; k++) {
            const float *rec = j->part + ((size_t)k * (size_t)a->n_head + (size_t)h) * ((size_t)hd + 2);
            flash_fold(&M, &Ls, O, rec[hd], rec[hd + 1], rec, hd);
        }
        flash_finish(j->out + (size_t)h * hd, Ls, O, hd);
    }
    return true;
}

void q_cpu_attention_isa(q_exec *ex, const q_attn_args *a, const q_ubatch *ub, const float *q, float *out,
                         q_cpu_isa isa, int32_t flash_min) {
    Q_ASSERT(a->n_head % a->n_head_kv == 0);
    attn_job j = { .ex = ex, .a = a, .ub = ub, .q = q, .out = out, .K = attn_kernels_for(isa),
                   .L = att_layout_of(a->kv->n_ctx, a->head_dim), .n_rep = a->n_head / a->n_head_kv };
    Q_ASSERT(j.L.stride <= ex->att_stride);
    /* heads per task: the whole group up to S_MAX, split further while there are fewer
     * tasks than threads */
    j.n_sub = (j.n_rep + Q_ATT_S_MAX - 1) / Q_ATT_S_MAX;
    while ((int64_t)ub->n * a->n_head_kv * j.n_sub < ex->n_threads && j.n_sub < j.n_rep) j.n_sub++;
    j.s_per = (j.n_rep + j.n_sub - 1) / j.n_sub;
    /* a token takes the flash path iff its position is >= flash_min: the choice depends on
     * the token alone, never on what else is in the ubatch, so a sequence computes the same
     * whether its prompt came in one chunk or many, alone or batched with others */
    if (ub->n == 1 && !(flash_min > 0 && ub->pos[0] >= flash_min)) {
        static const int32_t tok0 = 0;
        int32_t *vis = (int32_t *)ex->att, *vpos = (int32_t *)(ex->att + j.L.vpos);
        j.nv_shared = attn_visible(a, ub, 0, vis, vpos);
        j.vis_shared = vis;
        j.vpos_shared = vpos;
        j.tasks = &tok0;
        q_exec_parallel(ex, attn_task, &j, (int64_t)a->n_head_kv * j.n_sub);
        return;
    }
    /* runs of consecutive tokens of one sequence: those deep enough go flash in blocks, the
     * others exact per token; the shared slot holds the token lists (n <= n_ctx) */
    Q_ASSERT(j.L.stride >= 3 * (size_t)ub->n);   /* ub->n <= n_ctx cells */
    int32_t *exact = (int32_t *)ex->att, *ft0 = exact + ub->n, *fnt = ft0 + ub->n;
    int32_t n_exact = 0, n_fb = 0;
    j.flash_tok = Q_MAX(1, Q_ATT_FLASH_ROWS / j.s_per);
    for (int32_t t0 = 0; t0 < ub->n;) {
        int32_t t1 = t0 + 1;
        while (t1 < ub->n && ub->seq[t1] == ub->seq[t0]) t1++;
        for (int32_t t = t0; t < t1;) {
            if (!(flash_min > 0 && ub->pos[t] >= flash_min)) { exact[n_exact++] = t++; continue; }
            int32_t n = 1;
            while (n < j.flash_tok && t + n < t1 && ub->pos[t + n] >= flash_min) n++;
            ft0[n_fb] = t;
            fnt[n_fb++] = n;
            t += n;
        }
        t0 = t1;
    }
    j.tasks = exact;
    j.flash_t0 = ft0;
    j.flash_nt = fnt;
    if (ub->n == 1 && n_fb == 1 && attn_flash_decode_split(&j)) return;
    if (n_exact) q_exec_parallel(ex, attn_task, &j, (int64_t)n_exact * a->n_head_kv * j.n_sub);
    if (n_fb) q_exec_parallel(ex, attn_flash_task, &j, (int64_t)n_fb * a->n_head_kv * j.n_sub);
}

void q_cpu_attention(q_exec *ex, const q_attn_args *a, const q_ubatch *ub, const float *q, float *out) {
    q_cpu_attention_isa(ex, a, ub, q, out, q_cpu_isa_best(), Q_ATT_FLASH_MIN);
}
