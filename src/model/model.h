/* model.h — the in-memory model: hyperparameters, weight views into the GGUF mapping,
 * and the architecture registry that fills them. Internal (not the public API).
 *
 * A q_tensor is a view: its data points into the mapped file and is never freed. The
 * q_model owns the gguf_file (the mapping), the per-layer array and the anonymous
 * memory of weights repacked at load (repack_mem, unmapped by q_model_free).
 *
 * Hyperparameters that can differ per layer (head counts, FFN width, sliding window)
 * live in q_layer so that hybrid and MoE architectures fit the same structures. */
#ifndef QUARREL_MODEL_MODEL_H
#define QUARREL_MODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quarrel/gguf.h"
#include "quarrel/quarrel.h"

#define Q_MAX_LAYERS 512

/* How a matrix's rows are laid out in memory. Every layout takes ne[1] * row_bytes
 * bytes per 2-D slice, so expert views (q_tensor_expert) are the same arithmetic. */
typedef enum q_layout {
    Q_LAYOUT_ROWS = 0,   /* ggml's: row after row of blocks (as in the file) */
    Q_LAYOUT_X8,         /* rows in groups of 8, each block's 8 rows stored together
                          * (cpu/repack.h); only matmul reads it */
} q_layout;

typedef struct q_tensor {
    q_type      type;
    q_layout    layout;     /* Q_LAYOUT_ROWS unless repacked at load (cpu/repack.c) */
    int64_t     ne[4];      /* ne[0] = row length (input features), ne[1] = rows */
    size_t      row_bytes;  /* bytes of one ne[0] row */
    const void *data;       /* into the mapping, or into repack memory when layout != ROWS;
                             * NULL = tensor absent (optional ones) */
} q_tensor;

typedef enum q_rope_mode {
    Q_ROPE_NONE = 0,
    Q_ROPE_NORM,    /* adjacent pairs (2i, 2i+1) rotated: llama */
    Q_ROPE_NEOX,    /* pairs (i, i + n_rot/2): gpt-neox, qwen */
} q_rope_mode;

/* RoPE as ggml computes it (ggml_rope_ext): theta_i = pos * base^(-2i/n_rot) / ff_i,
 * with linear scaling (freq_scale) and YaRN ramp (ext_factor, corr_dims) on top. */
typedef struct q_rope {
    q_rope_mode  mode;
    int32_t      n_rot;         /* rotated dims per head (<= head_dim) */
    float        freq_base;
    float        freq_scale;    /* 1 / linear scaling factor */
    float        ext_factor;    /* YaRN: 0 = off, 1 = on */
    float        attn_factor;   /* YaRN magnitude multiplier */
    float        corr_dims[2];  /* YaRN ramp [low, high] in pair-dimension units */
    const float *freq_factors;  /* [n_rot/2] Llama-3 rope_freqs, or NULL */
} q_rope;

typedef struct q_layer {
    /* hyperparameters of this layer */
    int32_t n_head;
    int32_t n_head_kv;
    int32_t n_ff;             /* FFN width; per expert in a MoE layer */
    int32_t swa_window;       /* 0 = full causal attention */
    int32_t n_expert;         /* 0 = dense FFN */
    int32_t n_expert_used;

    /* weights; shapes ggml-style (in -> out) */
    q_tensor attn_norm;       /* (n_embd) */
    q_tensor wq;              /* (n_embd -> n_head*head_dim) */
    q_tensor wk;              /* (n_embd -> n_head_kv*head_dim) */
    q_tensor wv;              /* (n_embd -> n_head_kv*head_dim) */
    q_tensor wo;              /* (n_head*head_dim -> n_embd) */
    q_tensor ffn_norm;        /* (n_embd) */
    q_tensor ffn_gate;        /* (n_embd -> n_ff) */
    q_tensor ffn_up;          /* (n_embd -> n_ff) */
    q_tensor ffn_down;        /* (n_ff -> n_embd) */
    /* MoE layers instead of ffn_gate/up/down (Mixtral style) */
    q_tensor ffn_gate_inp;    /* (n_embd -> n_expert) router, F32 */
    q_tensor ffn_gate_exps;   /* (n_embd -> n_ff) x n_expert */
    q_tensor ffn_up_exps;     /* (n_embd -> n_ff) x n_expert */
    q_tensor ffn_down_exps;   /* (n_ff -> n_embd) x n_expert */
} q_layer;

typedef struct q_hparams {
    int32_t n_vocab;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_ctx_train;
    int32_t head_dim;          /* key_length = value_length */
    float   norm_eps;          /* RMSNorm epsilon */
    q_rope  rope;
    /* granite's four scalars; 1 (and 1/sqrt(head_dim)) elsewhere */
    float   embedding_scale;
    float   attention_scale;
    float   residual_scale;
    float   logit_scale;       /* logits are multiplied by 1/logit_scale */
} q_hparams;

typedef struct q_arch_def q_arch_def;

struct q_model {
    gguf_file        *gguf;
    const q_arch_def *arch;
    q_hparams         hp;
    q_layer          *layers;       /* [n_layer] */
    q_tensor          tok_embd;     /* (n_embd, n_vocab) */
    q_tensor          output_norm;  /* (n_embd) */
    q_tensor          output;       /* (n_embd -> n_vocab); = tok_embd when tied */
    q_tensor          rope_freqs;   /* (n_rot/2), optional */
    struct q_vocab   *vocab;        /* tokenizer, or NULL (vocab_err says why) */
    char              vocab_err[512];
    void             *repack_mem;   /* anonymous mapping of the repacked weights, or NULL */
    size_t            repack_size;  /* its bytes */
    int32_t           n_repacked;   /* tensors repacked (3-D expert tensors count once) */
};

/* ---- what a forward pass sees ---- */

struct q_kv_cache;
struct q_exec;

/* One forward pass worth of tokens, already placed in KV cells. */
typedef struct q_ubatch {
    int32_t         n;          /* tokens */
    const q_token  *token;      /* [n] */
    const q_pos    *pos;        /* [n] */
    const q_seq_id *seq;        /* [n] */
    const int32_t  *cell;       /* [n] KV cell each token's K/V goes to */
    int32_t         n_out;      /* tokens whose logits are wanted */
    const int32_t  *out_idx;    /* [n_out] their indexes in 0..n-1, ascending */
    float          *logits;     /* [n_out][n_vocab] destination */
} q_ubatch;

/* Activation buffers, allocated once per context for n_ubatch tokens (the token loop
 * never allocates). Row widths are the maxima over layers. */
typedef struct q_acts {
    int32_t n_ubatch;
    float *x;     /* (n_ubatch, n_embd) residual stream */
    float *xb;    /* (n_ubatch, max(n_embd, n_q)) normed input / attention output */
    float *q;     /* (n_ubatch, n_q) */
    float *k;     /* (n_ubatch, n_kv) */
    float *v;     /* (n_ubatch, n_kv) */
    float *tmp;   /* (n_ubatch, n_embd) branch output */
    float *hb;    /* (n_ubatch, n_ff_max) */
    float *hb2;   /* (n_ubatch, n_ff_max) */
    float *router;/* (n_ubatch, n_expert_max) router logits, then probabilities */
    float *ey;    /* (n_embd) one expert's output */
} q_acts;

typedef struct q_forward_ctx {
    const q_model     *model;
    struct q_kv_cache *kv;
    struct q_exec     *ex;      /* backend ops + threads + scratch */
    q_acts            *a;
} q_forward_ctx;

typedef void (*q_forward_fn)(const q_forward_ctx *f, const q_ubatch *ub);

/* ---- registry ---- */

/* Where a tensor's view goes and what shape it must have. Shapes are symbolic dims
 * resolved against the hyperparameters (and the layer, for per-layer tensors). */
typedef enum q_dim {
    Q_DIM_NONE = 0,     /* unused trailing dim (must be 1) */
    Q_DIM_EMBD,
    Q_DIM_VOCAB,
    Q_DIM_Q,            /* n_head * head_dim */
    Q_DIM_KV,           /* n_head_kv * head_dim */
    Q_DIM_FF,
    Q_DIM_ROT_HALF,     /* n_rot / 2 */
    Q_DIM_EXPERT,       /* n_expert of the layer */
    Q_DIM_COUNT
} q_dim;

/* Which layers a per-layer tensor belongs to. */
typedef enum q_when {
    Q_WHEN_ALWAYS = 0,
    Q_WHEN_DENSE,       /* layers with n_expert == 0 */
    Q_WHEN_MOE,         /* layers with n_expert > 0 */
} q_when;

typedef struct q_tensor_spec {
    const char *name;       /* "blk.%d.attn_q.weight" for per-layer tensors */
    bool        per_layer;
    size_t      offset;     /* offsetof(q_layer, f) or offsetof(q_model, f) */
    q_dim       shape[3];   /* ne[0], ne[1], ne[2] (NONE = 1) */
    bool        optional;
    q_when      when;
} q_tensor_spec;

/* The view of expert e of a 3-D expert tensor, as a 2-D matrix. */
static inline q_tensor q_tensor_expert(const q_tensor *t, int32_t e) {
    q_tensor v = *t;
    v.ne[2] = 1;
    v.data = (const uint8_t *)t->data + (size_t)e * (size_t)t->ne[1] * t->row_bytes;
    return v;
}

struct q_arch_def {
    const char          *name;       /* general.architecture */
    /* Reads hyperparameters (keys are "<name>.<key>") into m->hp and m->layers[]. */
    q_status           (*load_hparams)(q_model *m, q_error *err);
    const q_tensor_spec *tensors;
    size_t               n_tensors;
    /* Fixes up after tensors are bound (tied output, rope freq factors). */
    q_status           (*finish)(q_model *m, q_error *err);
    q_forward_fn         forward;
};

/* The architecture named `name`, or NULL. */
const q_arch_def *q_arch_find(const char *name);

/* Helpers for arch files: keys are prefixed with the arch name. */
bool q_hp_u32(const q_model *m, const char *key, uint32_t *out);
bool q_hp_f32(const q_model *m, const char *key, float *out);
/* A per-layer u32: a scalar applies to all layers; an array must have n_layer items. */
q_status q_hp_layer_u32(q_model *m, const char *key, size_t field_offset, bool required,
                        uint32_t dflt, q_error *err);

/* Bound by the arch files (llama.c). */
extern const q_arch_def q_arch_llama;
extern const q_arch_def q_arch_granite;

#endif
