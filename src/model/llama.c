/* llama.c — the Llama-family decoder (arch "llama": Llama 2/3, Mistral, TinyLlama,
 * SmolLM2) and IBM Granite (arch "granite": the same graph with four scalars), as one
 * parameterized forward pass. Not here: loading and shape checks (registry.c), kernels
 * (cpu/), the KV cache bookkeeping (runtime/kv_cache.c).
 *
 * Per layer, pre-norm:
 *   x += rs * Wo . attention(rope(Wq . rmsnorm(x)), rope(Wk . rmsnorm(x)), Wv . rmsnorm(x))
 *   x += rs * Wdown . (silu(Wgate . rmsnorm(x)) * (Wup . rmsnorm(x)))
 * then logits = (Woutput . rmsnorm(x)) / logit_scale. Granite sets rs (residual_scale),
 * scales the input embeddings (embedding_scale), replaces the 1/sqrt(head_dim) attention
 * scale (attention.scale) and divides the logits (logit_scale); llama uses 1 for all.
 * RoPE is NORM mode (adjacent pairs); Llama 3 frequency factors come from rope_freqs.
 * Layers with llama.expert_count > 0 replace the FFN by a Mixtral-style mixture of
 * experts (moe_ffn). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/base.h"
#include "cpu/backend.h"
#include "model/model.h"

#define LAYER(f) offsetof(q_layer, f)
#define MODEL(f) offsetof(q_model, f)

#define N Q_DIM_NONE
static const q_tensor_spec llama_tensors[] = {
    { "token_embd.weight",          false, MODEL(tok_embd),      { Q_DIM_EMBD, Q_DIM_VOCAB, N },  false, Q_WHEN_ALWAYS },
    { "output_norm.weight",         false, MODEL(output_norm),   { Q_DIM_EMBD, N, N },            false, Q_WHEN_ALWAYS },
    { "output.weight",              false, MODEL(output),        { Q_DIM_EMBD, Q_DIM_VOCAB, N },  true,  Q_WHEN_ALWAYS },
    { "rope_freqs.weight",          false, MODEL(rope_freqs),    { Q_DIM_ROT_HALF, N, N },        true,  Q_WHEN_ALWAYS },
    { "blk.%d.attn_norm.weight",    true,  LAYER(attn_norm),     { Q_DIM_EMBD, N, N },            false, Q_WHEN_ALWAYS },
    { "blk.%d.attn_q.weight",       true,  LAYER(wq),            { Q_DIM_EMBD, Q_DIM_Q, N },      false, Q_WHEN_ALWAYS },
    { "blk.%d.attn_k.weight",       true,  LAYER(wk),            { Q_DIM_EMBD, Q_DIM_KV, N },     false, Q_WHEN_ALWAYS },
    { "blk.%d.attn_v.weight",       true,  LAYER(wv),            { Q_DIM_EMBD, Q_DIM_KV, N },     false, Q_WHEN_ALWAYS },
    { "blk.%d.attn_output.weight",  true,  LAYER(wo),            { Q_DIM_Q, Q_DIM_EMBD, N },      false, Q_WHEN_ALWAYS },
    { "blk.%d.ffn_norm.weight",     true,  LAYER(ffn_norm),      { Q_DIM_EMBD, N, N },            false, Q_WHEN_ALWAYS },
    { "blk.%d.ffn_gate.weight",     true,  LAYER(ffn_gate),      { Q_DIM_EMBD, Q_DIM_FF, N },     false, Q_WHEN_DENSE },
    { "blk.%d.ffn_up.weight",       true,  LAYER(ffn_up),        { Q_DIM_EMBD, Q_DIM_FF, N },     false, Q_WHEN_DENSE },
    { "blk.%d.ffn_down.weight",     true,  LAYER(ffn_down),      { Q_DIM_FF, Q_DIM_EMBD, N },     false, Q_WHEN_DENSE },
    { "blk.%d.ffn_gate_inp.weight", true,  LAYER(ffn_gate_inp),  { Q_DIM_EMBD, Q_DIM_EXPERT, N }, false, Q_WHEN_MOE },
    { "blk.%d.ffn_gate_exps.weight",true,  LAYER(ffn_gate_exps), { Q_DIM_EMBD, Q_DIM_FF, Q_DIM_EXPERT }, false, Q_WHEN_MOE },
    { "blk.%d.ffn_up_exps.weight",  true,  LAYER(ffn_up_exps),   { Q_DIM_EMBD, Q_DIM_FF, Q_DIM_EXPERT }, false, Q_WHEN_MOE },
    { "blk.%d.ffn_down_exps.weight",true,  LAYER(ffn_down_exps), { Q_DIM_FF, Q_DIM_EMBD, Q_DIM_EXPERT }, false, Q_WHEN_MOE },
};
#undef N

static q_status need_u32(const q_model *m, const char *key, uint32_t *out, q_error *err) {
    if (!q_hp_u32(m, key, out))
        return q_fail(err, Q_ERR_FORMAT, "%s.%s: required key missing or not an integer", m->arch->name, key);
    return Q_OK;
}

static q_status need_f32(const q_model *m, const char *key, float *out, q_error *err) {
    if (!q_hp_f32(m, key, out))
        return q_fail(err, Q_ERR_FORMAT, "%s.%s: required key missing or not a number", m->arch->name, key);
    return Q_OK;
}

/* YaRN correction dim: the pair index whose wavelength spans n_rot_turns turns over
 * the original context. */
static float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_turns, float base) {
    return (float)n_dims * logf((float)n_ctx_orig / (n_turns * 2.0f * (float)M_PI)) / (2.0f * logf(base));
}

static q_status llama_load_hparams(q_model *m, q_error *err) {
    q_hparams *hp = &m->hp;
    q_status st;
    uint32_t u;
    if ((st = need_u32(m, "embedding_length", &u, err)) != Q_OK) return st;
    hp->n_embd = (int32_t)u;
    hp->n_ctx_train = q_hp_u32(m, "context_length", &u) ? (int32_t)u : 2048;
    if ((st = q_hp_layer_u32(m, "attention.head_count", LAYER(n_head), true, 0, err)) != Q_OK) return st;
    const int32_t n_head0 = m->layers[0].n_head;
    if ((st = q_hp_layer_u32(m, "attention.head_count_kv", LAYER(n_head_kv), false, (uint32_t)n_head0, err)) != Q_OK)
        return st;
    if ((st = q_hp_layer_u32(m, "feed_forward_length", LAYER(n_ff), true, 0, err)) != Q_OK) return st;
    if ((st = q_hp_layer_u32(m, "attention.sliding_window", LAYER(swa_window), false, 0, err)) != Q_OK) return st;
    if ((st = q_hp_layer_u32(m, "expert_count", LAYER(n_expert), false, 0, err)) != Q_OK) return st;
    if ((st = q_hp_layer_u32(m, "expert_used_count", LAYER(n_expert_used), false, 0, err)) != Q_OK) return st;
    for (int32_t l = 0; l < hp->n_layer; l++) {
        const q_layer *L = &m->layers[l];
        if (L->n_expert < 0 || L->n_expert > 256 ||
            (L->n_expert > 0 && (L->n_expert_used <= 0 || L->n_expert_used > L->n_expert)))
            return q_fail(err, Q_ERR_FORMAT, "layer %d: expert_count %d with expert_used_count %d", l,
                          L->n_expert, L->n_expert_used);
        if (L->n_head <= 0 || L->n_head_kv <= 0 || L->n_head % L->n_head_kv || L->n_ff <= 0)
            return q_fail(err, Q_ERR_FORMAT, "layer %d: bad head counts %d/%d or ffn %d", l, L->n_head,
                          L->n_head_kv, L->n_ff);
    }
    if (n_head0 <= 0 || hp->n_embd % n_head0)
        return q_fail(err, Q_ERR_FORMAT, "n_embd %d is not a multiple of head_count %d", hp->n_embd, n_head0);
    hp->head_dim = q_hp_u32(m, "attention.key_length", &u) ? (int32_t)u : hp->n_embd / n_head0;
    uint32_t vlen;
    if (q_hp_u32(m, "attention.value_length", &vlen) && (int32_t)vlen != hp->head_dim)
        return q_fail(err, Q_ERR_UNSUPPORTED, "key_length %d != value_length %u", hp->head_dim, vlen);
    if ((st = need_f32(m, "attention.layer_norm_rms_epsilon", &hp->norm_eps, err)) != Q_OK) return st;

    /* vocabulary size: the tokenizer's list is authoritative, else the embedding rows */
    const gguf_value *toks = gguf_get_arr(m->gguf, "tokenizer.ggml.tokens");
    if (toks) hp->n_vocab = (int32_t)toks->arr.n;
    else if (q_hp_u32(m, "vocab_size", &u)) hp->n_vocab = (int32_t)u;
    else {
        const gguf_tensor_info *te = gguf_find_tensor(m->gguf, "token_embd.weight");
        hp->n_vocab = te ? (int32_t)te->ne[1] : 0;
    }

    /* RoPE */
    q_rope *r = &hp->rope;
    r->mode = Q_ROPE_NORM;
    r->n_rot = q_hp_u32(m, "rope.dimension_count", &u) ? (int32_t)u : hp->head_dim;
    if (r->n_rot > hp->head_dim || r->n_rot % 2)
        return q_fail(err, Q_ERR_FORMAT, "rope.dimension_count %d invalid for head_dim %d", r->n_rot, hp->head_dim);
    if (!q_hp_f32(m, "rope.freq_base", &r->freq_base)) r->freq_base = 10000.0f;
    r->freq_scale = 1.0f;
    r->attn_factor = 1.0f;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", m->arch->name);
    gguf_str stype = { 0 };
    bool has_type = gguf_get_str(m->gguf, key, &stype);
    float factor = 0.0f;
    if (!q_hp_f32(m, "rope.scaling.factor", &factor)) q_hp_f32(m, "rope.scale_linear", &factor);
    const bool yarn = has_type && gguf_str_eq(stype, "yarn");
    if (has_type && !gguf_str_eq(stype, "none") && !gguf_str_eq(stype, "linear") && !yarn)
        return q_fail(err, Q_ERR_UNSUPPORTED, "%s '%.*s' is not supported", key, (int)stype.len, stype.ptr);
    /* llama.cpp reads a factor of 0 as "not set"; a negative or non-finite one, or 0 with
     * an explicit linear/yarn type, would silently mean no scaling: refuse it. */
    const bool scaled_type = has_type && !gguf_str_eq(stype, "none");
    if (!isfinite(factor) || factor < 0.0f || (factor == 0.0f && scaled_type))
        return q_fail(err, Q_ERR_FORMAT, "%s.rope.scaling.factor %g invalid: must be > 0 for scaling type '%.*s'",
                      m->arch->name, (double)factor, has_type ? (int)stype.len : 6, has_type ? stype.ptr : "linear");
    if (factor > 0.0f && !(has_type && gguf_str_eq(stype, "none"))) r->freq_scale = 1.0f / factor;
    /* rope.scaling.attn_factor multiplies the cos/sin magnitude (llama.cpp: yarn_attn_factor
     * *= rope_attn_factor), with or without YaRN. */
    if (q_hp_f32(m, "rope.scaling.attn_factor", &r->attn_factor) &&
        (!isfinite(r->attn_factor) || r->attn_factor <= 0.0f))
        return q_fail(err, Q_ERR_FORMAT, "%s.rope.scaling.attn_factor %g invalid: must be > 0", m->arch->name,
                      (double)r->attn_factor);
    if (yarn) {
        uint32_t n_orig = (uint32_t)hp->n_ctx_train;
        q_hp_u32(m, "rope.scaling.original_context_length", &n_orig);
        if (n_orig == 0)
            return q_fail(err, Q_ERR_FORMAT, "%s.rope.scaling.original_context_length is 0 (YaRN needs it > 0)",
                          m->arch->name);
        float beta_fast = 32.0f, beta_slow = 1.0f;
        q_hp_f32(m, "rope.scaling.yarn_beta_fast", &beta_fast);
        q_hp_f32(m, "rope.scaling.yarn_beta_slow", &beta_slow);
        r->ext_factor = 1.0f;
        const float lo = floorf(yarn_corr_dim(r->n_rot, (int)n_orig, beta_fast, r->freq_base));
        const float hi = ceilf(yarn_corr_dim(r->n_rot, (int)n_orig, beta_slow, r->freq_base));
        r->corr_dims[0] = Q_MAX(0.0f, lo);
        r->corr_dims[1] = Q_MIN((float)(r->n_rot - 1), hi);
    }

    hp->embedding_scale = 1.0f;
    hp->attention_scale = 1.0f / sqrtf((float)hp->head_dim);
    hp->residual_scale = 1.0f;
    hp->logit_scale = 1.0f;
    return Q_OK;
}

static q_status granite_load_hparams(q_model *m, q_error *err) {
    q_status st = llama_load_hparams(m, err);
    if (st != Q_OK) return st;
    q_hparams *hp = &m->hp;
    if ((st = need_f32(m, "embedding_scale", &hp->embedding_scale, err)) != Q_OK) return st;
    if ((st = need_f32(m, "attention.scale", &hp->attention_scale, err)) != Q_OK) return st;
    if ((st = need_f32(m, "residual_scale", &hp->residual_scale, err)) != Q_OK) return st;
    if ((st = need_f32(m, "logit_scale", &hp->logit_scale, err)) != Q_OK) return st;
    if (hp->logit_scale == 0.0f) return q_fail(err, Q_ERR_FORMAT, "granite.logit_scale is 0");
    return Q_OK;
}

static q_status llama_finish(q_model *m, q_error *err) {
    if (!m->output.data) m->output = m->tok_embd;   /* tied embeddings */
    const q_type_traits *tt = q_type_get(m->tok_embd.type);
    if (!tt || !tt->to_float)
        return q_fail(err, Q_ERR_UNSUPPORTED, "token_embd.weight type %s cannot be dequantized",
                      q_type_name(m->tok_embd.type));
    if (m->rope_freqs.data) m->hp.rope.freq_factors = m->rope_freqs.data;
    return Q_OK;
}

/* Mixtral-style MoE FFN on xb (n, D) into out (n, D): router probabilities
 * p = softmax(Wgate_inp . x) over the experts, the top n_expert_used experts (ties to the
 * lower index) weighted by p renormalized to sum 1, each expert a SwiGLU FFN:
 *   out = sum_k w_k * down_k(silu(gate_k x) * up_k x)   (k in top-k order) */
static void moe_ffn(const q_forward_ctx *f, const q_layer *L, int32_t n, const float *xb, float *out) {
    const q_backend *be = f->ex->be;
    const int32_t D = f->model->hp.n_embd, E = L->n_expert, K = L->n_expert_used, ff = L->n_ff;
    float *probs = f->a->router;   /* (n, E) */
    float *g = f->a->hb, *u = f->a->hb2, *ey = f->a->ey;
    be->matmul(f->ex, &L->ffn_gate_inp, xb, D, probs, E, n);
    be->softmax(probs, n, E);
    for (int32_t t = 0; t < n; t++) {
        const float *pt = probs + (int64_t)t * E;
        int32_t sel[256];
        for (int32_t e = 0; e < E; e++) sel[e] = e;
        for (int32_t k = 0; k < K; k++)   /* partial selection sort: top K, stable */
            for (int32_t j = k + 1; j < E; j++)
                if (pt[sel[j]] > pt[sel[k]]) { const int32_t s = sel[k]; sel[k] = sel[j]; sel[j] = s; }
        double wsum = 0.0;
        for (int32_t k = 0; k < K; k++) wsum += pt[sel[k]];
        float *ot = out + (int64_t)t * D;
        for (int32_t k = 0; k < K; k++) {
            const float w = pt[sel[k]] / (float)wsum;
            const q_tensor gate = q_tensor_expert(&L->ffn_gate_exps, sel[k]);
            const q_tensor up = q_tensor_expert(&L->ffn_up_exps, sel[k]);
            const q_tensor down = q_tensor_expert(&L->ffn_down_exps, sel[k]);
            const float *xt = xb + (int64_t)t * D;
            be->matmul(f->ex, &gate, xt, D, g, ff, 1);
            be->matmul(f->ex, &up, xt, D, u, ff, 1);
            be->swiglu(g, u, 1, ff);
            be->matmul(f->ex, &down, g, ff, ey, D, 1);
            be->scale(ey, w, D);
            if (k == 0) memcpy(ot, ey, sizeof(float) * (size_t)D);
            else be->add_scaled(ot, ey, 1.0f, D);
        }
    }
}

static void llama_forward(const q_forward_ctx *f, const q_ubatch *ub) {
    const q_model *m = f->model;
    const q_hparams *hp = &m->hp;
    const q_backend *be = f->ex->be;
    q_exec *ex = f->ex;
    const int32_t n = ub->n, D = hp->n_embd, hd = hp->head_dim;
    float *x = f->a->x;      /* (n, D) residual stream */
    float *xb = f->a->xb;    /* (n, D) normed input; (n, n_q) attention output */
    float *q = f->a->q;      /* (n, n_q) */
    float *k = f->a->k;      /* (n, n_kv) */
    float *v = f->a->v;      /* (n, n_kv) */
    float *tmp = f->a->tmp;  /* (n, D) branch output */
    float *hb = f->a->hb;    /* (n, n_ff) gate, then silu(gate) * up */
    float *hb2 = f->a->hb2;  /* (n, n_ff) up */

    /* x = embedding rows, times granite's embedding scale */
    be->get_rows(&m->tok_embd, ub->token, n, x);
    if (hp->embedding_scale != 1.0f) be->scale(x, hp->embedding_scale, (int64_t)n * D);

    for (int32_t l = 0; l < hp->n_layer; l++) {
        const q_layer *L = &m->layers[l];
        const int32_t nq = L->n_head * hd, nkv = L->n_head_kv * hd, ff = L->n_ff;

        /* attention: q, k, v projections of the normed stream */
        be->rmsnorm(xb, x, L->attn_norm.data, n, D, hp->norm_eps);
        {   /* one input: one conversion, one dispatch */
            const q_tensor *const w[3] = { &L->wq, &L->wk, &L->wv };
            float *const y[3] = { q, k, v };
            const int64_t ld[3] = { nq, nkv, nkv };
            q_backend_matmul_multi(be, ex, 3, w, xb, D, y, ld, n);
        }
        /* rotate q and k by position; K/V go into this ubatch's cells */
        be->rope(q, n, nq, L->n_head, hd, ub->pos, &hp->rope);
        be->rope(k, n, nkv, L->n_head_kv, hd, ub->pos, &hp->rope);
        be->kv_store(f->kv, l, k, v, ub->cell, n);
        /* softmax(q K^T * scale + mask) V over the cache, per head */
        const q_attn_args aa = { .kv = f->kv, .layer = l, .n_head = L->n_head, .n_head_kv = L->n_head_kv,
                                 .head_dim = hd, .scale = hp->attention_scale, .swa_window = L->swa_window };
        be->attention(ex, &aa, ub, q, xb);
        /* output projection, residual */
        be->matmul(ex, &L->wo, xb, nq, tmp, D, n);
        be->add_scaled(x, tmp, hp->residual_scale, (int64_t)n * D);

        /* SwiGLU feed-forward (dense, or a mixture of experts), residual */
        be->rmsnorm(xb, x, L->ffn_norm.data, n, D, hp->norm_eps);
        if (L->n_expert > 0) {
            moe_ffn(f, L, n, xb, tmp);
        } else {
            const q_tensor *const w[2] = { &L->ffn_gate, &L->ffn_up };
            float *const y[2] = { hb, hb2 };
            const int64_t ld[2] = { ff, ff };
            q_backend_matmul_multi(be, ex, 2, w, xb, D, y, ld, n);
            be->swiglu(hb, hb2, n, ff);
            be->matmul(ex, &L->ffn_down, hb, ff, tmp, D, n);
        }
        be->add_scaled(x, tmp, hp->residual_scale, (int64_t)n * D);
    }

    /* logits of the wanted rows: final norm, output projection, granite's 1/logit_scale */
    for (int32_t i = 0; i < ub->n_out; i++)
        memcpy(tmp + (int64_t)i * D, x + (int64_t)ub->out_idx[i] * D, (size_t)D * sizeof(float));
    be->rmsnorm(xb, tmp, m->output_norm.data, ub->n_out, D, hp->norm_eps);
    be->matmul(ex, &m->output, xb, D, ub->logits, hp->n_vocab, ub->n_out);
    if (hp->logit_scale != 1.0f) be->scale(ub->logits, 1.0f / hp->logit_scale, (int64_t)ub->n_out * hp->n_vocab);
}

const q_arch_def q_arch_llama = {
    .name = "llama",
    .load_hparams = llama_load_hparams,
    .tensors = llama_tensors,
    .n_tensors = Q_ARRAY_LEN(llama_tensors),
    .finish = llama_finish,
    .forward = llama_forward,
};

const q_arch_def q_arch_granite = {
    .name = "granite",
    .load_hparams = granite_load_hparams,
    .tensors = llama_tensors,
    .n_tensors = Q_ARRAY_LEN(llama_tensors),
    .finish = llama_finish,
    .forward = llama_forward,
};
