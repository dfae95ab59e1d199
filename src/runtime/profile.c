/* profile.c — the profiling backend (see profile.h): each op times a call to the real
 * backend's op and adds it to the calling thread's current q_profile. Owns no memory. */
#include <stddef.h>
#include <time.h>

#include "core/base.h"
#include "cpu/backend.h"
#include "runtime/profile.h"

static const char *const prof_names[Q_PROF_COUNT] = {
    [Q_PROF_MM_ATTN_QKV] = "matmul.attn_qkv",
    [Q_PROF_MM_ATTN_OUT] = "matmul.attn_out",
    [Q_PROF_MM_FFN]      = "matmul.ffn",
    [Q_PROF_MM_OUTPUT]   = "matmul.output",
    [Q_PROF_MM_OTHER]    = "matmul.other",
    [Q_PROF_ATTENTION]   = "attention",
    [Q_PROF_RMSNORM]     = "rmsnorm",
    [Q_PROF_ROPE]        = "rope",
    [Q_PROF_SWIGLU]      = "swiglu",
    [Q_PROF_ADD]         = "add",
    [Q_PROF_SCALE]       = "scale",
    [Q_PROF_SOFTMAX]     = "softmax",
    [Q_PROF_GET_ROWS]    = "get_rows",
    [Q_PROF_KV_STORE]    = "kv_store",
};

const char *q_prof_op_name(q_prof_op op) {
    Q_ASSERT((unsigned)op < Q_PROF_COUNT);
    return prof_names[op];
}

/* Per thread: a forward pass runs its ops on one thread, and two contexts decoding on
 * two threads keep their own profiles. */
static _Thread_local q_profile *prof_current;

void q_profile_set_current(q_profile *p) { prof_current = p; }
q_profile *q_profile_current(void) { return prof_current; }

uint64_t q_profile_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static q_profile *prof_get(void) {
    q_profile *p = prof_current;
    Q_ASSERT(p && p->inner);   /* a profiled context always sets it around its ops */
    return p;
}

static void prof_add(q_profile *p, q_prof_op op, uint64_t t0) {
    p->ns[op] += q_profile_now_ns() - t0;
    p->calls[op]++;
}

/* Role of a layer weight, by the q_layer field it is. */
static const struct { size_t off; q_prof_op op; } layer_roles[] = {
    { offsetof(q_layer, wq), Q_PROF_MM_ATTN_QKV },        { offsetof(q_layer, wk), Q_PROF_MM_ATTN_QKV },
    { offsetof(q_layer, wv), Q_PROF_MM_ATTN_QKV },        { offsetof(q_layer, wo), Q_PROF_MM_ATTN_OUT },
    { offsetof(q_layer, ffn_gate), Q_PROF_MM_FFN },       { offsetof(q_layer, ffn_up), Q_PROF_MM_FFN },
    { offsetof(q_layer, ffn_down), Q_PROF_MM_FFN },       { offsetof(q_layer, ffn_gate_inp), Q_PROF_MM_FFN },
};

static bool in_tensor(const q_tensor *t, const void *data) {
    const uint8_t *b = t->data, *d = data;
    const size_t n = (size_t)t->ne[1] * (size_t)(t->ne[2] > 0 ? t->ne[2] : 1) * t->row_bytes;
    return b && d >= b && d < b + n;
}

/* The role of weight w: by address when it is one of the model's q_tensors, else (an
 * expert's view, a copy made on the stack) by whose data it points into. */
static q_prof_op matmul_role(const q_model *m, const q_tensor *w) {
    if (!m) return Q_PROF_MM_OTHER;
    if (w == &m->output) return Q_PROF_MM_OUTPUT;
    const uint8_t *lo = (const uint8_t *)m->layers, *hi = lo + (size_t)m->hp.n_layer * sizeof(q_layer);
    const uint8_t *pw = (const uint8_t *)w;
    if (pw >= lo && pw < hi) {
        const size_t off = (size_t)(pw - lo) % sizeof(q_layer);
        for (size_t i = 0; i < Q_ARRAY_LEN(layer_roles); i++)
            if (layer_roles[i].off == off) return layer_roles[i].op;
        return Q_PROF_MM_OTHER;
    }
    if (in_tensor(&m->output, w->data)) return Q_PROF_MM_OUTPUT;
    for (int32_t l = 0; l < m->hp.n_layer; l++) {
        const q_layer *L = &m->layers[l];
        if (in_tensor(&L->ffn_gate_exps, w->data) || in_tensor(&L->ffn_up_exps, w->data) ||
            in_tensor(&L->ffn_down_exps, w->data))
            return Q_PROF_MM_FFN;
    }
    return Q_PROF_MM_OTHER;
}

static void prof_matmul(q_exec *ex, const q_tensor *w, const float *x, int64_t ldx, float *y, int64_t ldy,
                        int32_t n_tok) {
    q_profile *p = prof_get();
    const uint64_t t0 = q_profile_now_ns();
    const uint64_t d0 = ex->n_dispatch;
    p->inner->matmul(ex, w, x, ldx, y, ldy, n_tok);
    prof_add(p, matmul_role(p->model, w), t0);
    p->dispatches += ex->n_dispatch - d0;
}

/* A fused group counts once, under its first weight's role (q/k/v: attn_qkv; gate/up: ffn). */
static void prof_matmul_multi(q_exec *ex, int32_t n_w, const q_tensor *const *w, const float *x, int64_t ldx,
                              float *const *y, const int64_t *ldy, int32_t n_tok) {
    q_profile *p = prof_get();
    const uint64_t t0 = q_profile_now_ns();
    const uint64_t d0 = ex->n_dispatch;
    q_backend_matmul_multi(p->inner, ex, n_w, w, x, ldx, y, ldy, n_tok);
    prof_add(p, matmul_role(p->model, w[0]), t0);
    p->dispatches += ex->n_dispatch - d0;
}

static void prof_get_rows(const q_tensor *w, const q_token *ids, int32_t n, float *out) {
    q_profile *p = prof_get();
    const uint64_t t0 = q_profile_now_ns();
    p->inner->get_rows(w, ids, n, out);
    prof_add(p, Q_PROF_GET_ROWS, t0);
}

static void prof_rmsnorm(float *y, const float *x, const float *w, int32_t n_tok, int32_t n, float eps) {
    q_profile *p = prof_get();
    const uint64_t t0 = q_profile_now_ns();
    p->inner->rmsnorm(y, x, w, n_tok, n, eps);
    prof_add(p, Q_PROF_RMSNORM, t0);
}

static void prof_rope(float *x, int32_t n_tok, int64_t ld, int32_t n_head, int32_t head_dim, const q_pos *pos,
                      const q_rope *r) {
    q_profile *p = prof_get();
    const uint64_t t0 = q_profile_now_ns();
    p->inner->rope(x, n_tok, ld, n_head, head_dim, pos, r);
    prof_add(p, Q_PROF_ROPE, t0);
}

static void prof_swiglu(float *g, const float *u, int32_t n_rows, int32_t n_cols) {
    q_profile *p = prof_get();
    const uint64_t t0 = q_profile_now_ns();
    p->inner->swiglu(g, u, n_rows, n_cols);
    prof_add(p, Q_PROF_SWIGLU, t0);
}

static void prof_add_scaled(float *x, const float *y, float s, int64_t n) {
    q_profile *p = prof_get();
    const uint64_t t0 = q_profile_now_ns();
    p->inner->add_scaled(x, y, s, n);
    prof_add(p, Q_PROF_ADD, t0);
}

static void prof_scale(float *x, float s, int64_t n) {
    q_profile *p = prof_get();
    const uint64_t t0 = q_profile_now_ns();
    p->inner->scale(x, s, n);
    prof_add(p, Q_PROF_SCALE, t0);
}

static void prof_softmax(float *x, int32_t n_rows, int32_t n_cols) {
    q_profile *p = prof_get();
    const uint64_t t0 = q_profile_now_ns();
    p->inner->softmax(x, n_rows, n_cols);
    prof_add(p, Q_PROF_SOFTMAX, t0);
}

static void prof_kv_store(struct q_kv_cache *kv, int32_t il, const float *k, const float *v, const int32_t *cells,
                          int32_t n_tok) {
    q_profile *p = prof_get();
    const uint64_t t0 = q_profile_now_ns();
    p->inner->kv_store(kv, il, k, v, cells, n_tok);
    prof_add(p, Q_PROF_KV_STORE, t0);
}

static void prof_attention(q_exec *ex, const q_attn_args *a, const q_ubatch *ub, const float *q, float *out) {
    q_profile *p = prof_get();
    const uint64_t t0 = q_profile_now_ns();
    const uint64_t d0 = ex->n_dispatch;
    p->inner->attention(ex, a, ub, q, out);
    prof_add(p, Q_PROF_ATTENTION, t0);
    p->dispatches += ex->n_dispatch - d0;
}

const q_backend q_backend_profiled = {
    .name       = "profiled",
    .matmul     = prof_matmul,
    .matmul_multi = prof_matmul_multi,
    .get_rows   = prof_get_rows,
    .rmsnorm    = prof_rmsnorm,
    .rope       = prof_rope,
    .swiglu     = prof_swiglu,
    .add_scaled = prof_add_scaled,
    .scale      = prof_scale,
    .softmax    = prof_softmax,
    .kv_store   = prof_kv_store,
    .attention  = prof_attention,
};
