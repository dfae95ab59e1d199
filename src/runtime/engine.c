/* engine.c — contexts, batches and q_decode (API in include/quarrel/quarrel.h).
 *
 * A context owns the KV cache, the activation buffers (sized for n_ubatch tokens at
 * creation, so decoding never allocates per token), the backend scratch, the thread pool
 * and the logits of the last decode. q_decode splits a batch into ubatches, places each
 * ubatch's tokens in free KV cells, and runs the arch's forward pass over it. */
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "core/pool.h"
#include "cpu/attention.h"
#include "cpu/backend.h"
#include "model/model.h"
#include "runtime/kv_cache.h"
#include "runtime/profile.h"

struct q_context {
    const q_model   *model;
    q_context_params p;
    q_kv_cache       kv;
    q_exec           ex;
    q_acts           acts;
    struct pool     *pool;
    int32_t         *cells;       /* [n_ubatch] */
    int32_t         *out_idx;     /* [n_ubatch] */
    float           *logits;      /* (n_outputs, n_vocab) of the last decode */
    int32_t          logits_cap;  /* rows allocated */
    int32_t         *logits_row;  /* [n_batch] batch index -> logits row, or -1 */
    int32_t          n_last;      /* tokens in the last decoded batch */
    q_profile       *prof;        /* attached per-op profile (borrowed), or NULL */
};

q_context_params q_context_default_params(void) {
    return (q_context_params){ .n_ctx = 0, .n_batch = 512, .n_ubatch = 0, .n_seq_max = 1,
                               .kv_type = Q_TYPE_F16, .n_threads = 1 };
}

static void context_free_buffers(q_context *c) {
    free(c->acts.x);
    free(c->acts.xb);
    free(c->acts.q);
    free(c->acts.k);
    free(c->acts.v);
    free(c->acts.tmp);
    free(c->acts.hb);
    free(c->acts.hb2);
    free(c->acts.router);
    free(c->acts.ey);
    free(c->ex.wdata);
    free(c->ex.att);
    free(c->cells);
    free(c->out_idx);
    free(c->logits);
    free(c->logits_row);
}

q_status q_context_new(const q_model *m, const q_context_params *pin, q_context **out, q_error *err) {
    *out = NULL;
    q_context_params p = pin ? *pin : q_context_default_params();
    if (p.n_ctx <= 0) p.n_ctx = Q_MIN(m->hp.n_ctx_train > 0 ? m->hp.n_ctx_train : 4096, 4096);
    if (p.n_batch <= 0) p.n_batch = 512;
    if (p.n_ubatch <= 0 || p.n_ubatch > p.n_batch) p.n_ubatch = p.n_batch;
    if (p.n_seq_max <= 0) p.n_seq_max = 1;
    if (p.n_threads <= 0) p.n_threads = 1;
    if (p.n_ctx > (1 << 24)) return q_fail(err, Q_ERR_LIMIT, "n_ctx %d is too large", p.n_ctx);

    q_context *c = q_xcalloc(1, sizeof *c);
    c->model = m;
    c->p = p;
    q_status st = kv_cache_init(&c->kv, m, p.n_ctx, p.n_seq_max, p.kv_type, err);
    if (st != Q_OK) { free(c); return st; }

    const q_hparams *hp = &m->hp;
    int64_t nq = 0, nkv = 0, nff = 0, nexp = 1;
    for (int32_t l = 0; l < hp->n_layer; l++) {
        nq = Q_MAX(nq, (int64_t)m->layers[l].n_head * hp->head_dim);
        nkv = Q_MAX(nkv, (int64_t)m->layers[l].n_head_kv * hp->head_dim);
        nff = Q_MAX(nff, (int64_t)m->layers[l].n_ff);
        nexp = Q_MAX(nexp, (int64_t)m->layers[l].n_expert);
    }
    const size_t U = (size_t)p.n_ubatch, D = (size_t)hp->n_embd;
    const size_t max_in = (size_t)Q_MAX(Q_MAX((int64_t)D, nq), nff);
    c->acts.n_ubatch = p.n_ubatch;
    c->acts.x = calloc(U * D, sizeof(float));
    c->acts.xb = calloc(U * Q_MAX(D, (size_t)nq), sizeof(float));
    c->acts.q = calloc(U * (size_t)nq, sizeof(float));
    c->acts.k = calloc(U * (size_t)nkv, sizeof(float));
    c->acts.v = calloc(U * (size_t)nkv, sizeof(float));
    c->acts.tmp = calloc(U * D, sizeof(float));
    c->acts.hb = calloc(U * (size_t)nff, sizeof(float));
    c->acts.hb2 = calloc(U * (size_t)nff, sizeof(float));
    c->acts.router = calloc(U * (size_t)nexp, sizeof(float));
    c->acts.ey = calloc(D, sizeof(float));
    /* every vec_dot_type takes at most 4 bytes per element (Q8_K: 292/256) */
    c->ex.wdata_size = U * max_in * sizeof(float);
    c->ex.wdata = malloc(c->ex.wdata_size);
    c->pool = p.n_threads > 1 ? pool_create(p.n_threads) : NULL;
    c->ex.pool = c->pool;
    c->ex.n_threads = c->pool ? pool_n_threads(c->pool) : 1;
    c->ex.be = &q_backend_cpu;
    c->ex.att_stride = q_cpu_attention_stride(p.n_ctx, hp->head_dim);
    c->ex.att = malloc(c->ex.att_stride * (size_t)(c->ex.n_threads + 1) * sizeof(float));
    c->cells = malloc(U * sizeof(int32_t));
    c->out_idx = malloc(U * sizeof(int32_t));
    c->logits_row = malloc((size_t)p.n_batch * sizeof(int32_t));
    if (!c->acts.x || !c->acts.xb || !c->acts.q || !c->acts.k || !c->acts.v || !c->acts.tmp ||
        !c->acts.hb || !c->acts.hb2 || !c->acts.router || !c->acts.ey || !c->ex.wdata || !c->ex.att || !c->cells || !c->out_idx ||
        !c->logits_row) {
        q_context_free(c);
        return q_fail(err, Q_ERR_NOMEM, "cannot allocate activation buffers for n_ubatch %d", p.n_ubatch);
    }
    *out = c;
    return Q_OK;
}

void q_context_free(q_context *c) {
    if (!c) return;
    pool_free(c->pool);
    kv_cache_free(&c->kv);
    context_free_buffers(c);
    free(c);
}

int32_t q_context_n_ctx(const q_context *c) { return c->p.n_ctx; }
const q_model *q_context_model(const q_context *c) { return c->model; }

/* ---- batch ---- */

q_batch q_batch_init(int32_t n_max) {
    q_batch b = { .n_tokens = 0, .n_max = n_max };
    b.token = q_xcalloc((size_t)n_max, sizeof *b.token);
    b.pos = q_xcalloc((size_t)n_max, sizeof *b.pos);
    b.seq_id = q_xcalloc((size_t)n_max, sizeof *b.seq_id);
    b.logits = q_xcalloc((size_t)n_max, sizeof *b.logits);
    return b;
}

void q_batch_free(q_batch *b) {
    free(b->token);
    free(b->pos);
    free(b->seq_id);
    free(b->logits);
    memset(b, 0, sizeof *b);
}

void q_batch_clear(q_batch *b) { b->n_tokens = 0; }

bool q_batch_add(q_batch *b, q_token tok, q_pos pos, q_seq_id seq, bool logits) {
    if (b->n_tokens >= b->n_max) return false;
    const int32_t i = b->n_tokens++;
    b->token[i] = tok;
    b->pos[i] = pos;
    b->seq_id[i] = seq;
    b->logits[i] = logits ? 1 : 0;
    return true;
}

/* ---- decode ---- */

q_status q_decode(q_context *c, const q_batch *b, q_error *err) {
    const q_model *m = c->model;
    const int32_t n = b->n_tokens, V = m->hp.n_vocab;
    if (n <= 0) return q_fail(err, Q_ERR_INVALID_ARG, "empty batch");
    if (n > c->p.n_batch)
        return q_fail(err, Q_ERR_INVALID_ARG, "batch of %d tokens exceeds n_batch %d", n, c->p.n_batch);
    int32_t n_out = 0;
    for (int32_t i = 0; i < n; i++) {
        if (b->token[i] < 0 || b->token[i] >= V)
            return q_fail(err, Q_ERR_INVALID_ARG, "token id %d at batch index %d is outside the vocabulary (%d)",
                          b->token[i], i, V);
        if (b->seq_id[i] < 0 || b->seq_id[i] >= c->p.n_seq_max)
            return q_fail(err, Q_ERR_INVALID_ARG, "sequence id %d at batch index %d: n_seq_max is %d",
                          b->seq_id[i], i, c->p.n_seq_max);
        if (b->pos[i] < 0) return q_fail(err, Q_ERR_INVALID_ARG, "negative position at batch index %d", i);
        n_out += b->logits[i] != 0;
    }
    if (n > c->kv.n_ctx - c->kv.used)
        return q_fail(err, Q_ERR_LIMIT, "context is full: %d tokens need cells, %d of %d are free "
                      "(raise -c / n_ctx, or shift the context)", n, c->kv.n_ctx - c->kv.used, c->kv.n_ctx);
    if (n_out > c->logits_cap) {
        float *nl = realloc(c->logits, (size_t)n_out * (size_t)V * sizeof(float));
        if (!nl) return q_fail(err, Q_ERR_NOMEM, "cannot allocate logits for %d outputs", n_out);
        c->logits = nl;
        c->logits_cap = n_out;
    }

    /* a profiled context's ops (the shift's re-rope too) add to its profile */
    q_profile *const prof_prev = q_profile_current();
    if (c->prof) q_profile_set_current(c->prof);
    kv_cache_apply_shift(&c->kv, m, c->ex.be);
    const q_forward_ctx f = { .model = m, .kv = &c->kv, .ex = &c->ex, .a = &c->acts };
    int32_t out_row = 0;
    for (int32_t i0 = 0; i0 < n; i0 += c->p.n_ubatch) {
        const int32_t nu = Q_MIN(c->p.n_ubatch, n - i0);
        bool ok = kv_cache_find_slots(&c->kv, nu, c->cells);
        Q_ASSERT(ok);   /* free cells were counted above */
        int32_t nu_out = 0;
        uint64_t seqs = 0;   /* sequences of this ubatch */
        for (int32_t t = 0; t < nu; t++) {
            kv_cache_claim(&c->kv, c->cells[t], b->pos[i0 + t], b->seq_id[i0 + t]);
            seqs |= 1ull << b->seq_id[i0 + t];
            c->logits_row[i0 + t] = b->logits[i0 + t] ? out_row + nu_out : -1;
            if (b->logits[i0 + t]) c->out_idx[nu_out++] = t;
        }
        /* once per ubatch, so attention visits only its own sequence's cells */
        kv_cache_seq_index_build(&c->kv, seqs);
        const q_ubatch ub = { .n = nu, .token = b->token + i0, .pos = b->pos + i0, .seq = b->seq_id + i0,
                              .cell = c->cells, .n_out = nu_out, .out_idx = c->out_idx,
                              .logits = c->logits + (size_t)out_row * V };
        m->arch->forward(&f, &ub);
        out_row += nu_out;
    }
    if (c->prof) q_profile_set_current(prof_prev);
    c->n_last = n;
    return Q_OK;
}

const float *q_get_logits_ith(q_context *c, int32_t i) {
    if (i < 0) {
        for (int32_t j = c->n_last - 1; j >= 0; j--)
            if (c->logits_row[j] >= 0) return c->logits + (size_t)c->logits_row[j] * c->model->hp.n_vocab;
        return NULL;
    }
    if (i >= c->n_last || c->logits_row[i] < 0) return NULL;
    return c->logits + (size_t)c->logits_row[i] * c->model->hp.n_vocab;
}

void q_context_profile_set(q_context *c, q_profile *p) {
    c->prof = p;
    c->ex.be = &q_backend_cpu;
    if (!p) return;
    *p = (q_profile){ .model = c->model, .inner = c->ex.be };
    c->ex.be = &q_backend_profiled;
}

/* ---- KV wrappers ---- */

void q_kv_clear(q_context *c) { kv_cache_clear(&c->kv); }
bool q_kv_seq_rm(q_context *c, q_seq_id seq, q_pos p0, q_pos p1) { return kv_cache_seq_rm(&c->kv, seq, p0, p1); }
void q_kv_seq_cp(q_context *c, q_seq_id src, q_seq_id dst, q_pos p0, q_pos p1) {
    kv_cache_seq_cp(&c->kv, src, dst, p0, p1);
}
void q_kv_seq_keep(q_context *c, q_seq_id seq) { kv_cache_seq_keep(&c->kv, seq); }
void q_kv_seq_add(q_context *c, q_seq_id seq, q_pos p0, q_pos p1, q_pos delta) {
    kv_cache_seq_add(&c->kv, seq, p0, p1, delta);
}
q_pos q_kv_seq_pos_max(const q_context *c, q_seq_id seq) { return kv_cache_seq_pos_max(&c->kv, seq); }
int32_t q_kv_n_used(const q_context *c) { return c->kv.used; }
q_kv_cache *kv_cache_of_context(q_context *c) { return &c->kv; }
