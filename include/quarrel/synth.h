/* synth.h — random-weight models of real models' shapes, with a real tokenizer.
 *
 * q_synth_write writes a GGUF v3 file that llama.cpp's loader (and Quarrel's) accepts
 * as the named model: the arch's hyperparameter keys, the tensor names and ggml dims of
 * a converted checkpoint, the per-tensor types llama-quantize would choose for the
 * target (src/quant/mix.c), and every tokenizer.* key copied verbatim from a vocab GGUF.
 * Weights are random but valid: every block dequantizes to finite values of the scale of
 * real weights (matrices ~N(0, 0.02), norms ~1), so the model runs without NaNs and a
 * dense model's speed is that of the real one. Not here: meaningful outputs, MoE shapes.
 *
 * Cost: each (type, row length) pair quantizes a pool of SYNTH_POOL_ROWS random rows
 * once; each tensor's rows are then seeded picks from that pool, streamed through the
 * GGUF writer's fill callback, so a 7B file costs about its write time and memory stays
 * at a few MiB. The output is a function of (shape, target, vocab, seed) only: the same
 * bytes for any thread count. */
#ifndef QUARREL_SYNTH_H
#define QUARREL_SYNTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quarrel/quantize.h"
#include "quarrel/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct q_synth_shape {
    const char *name;            /* --shape name: "tinyllama-1.1b", "llama-7b", ... */
    const char *alias;           /* an older name also accepted, or NULL */
    const char *arch;            /* general.architecture: "llama" or "granite" */
    const char *model;           /* the checkpoint whose hyperparameters these are */
    const char *vocab;           /* default vocab GGUF, relative to the shared dir */
    uint32_t    n_ctx;           /* context_length */
    uint32_t    n_embd;          /* embedding_length */
    uint32_t    n_layer;         /* block_count */
    uint32_t    n_ff;            /* feed_forward_length */
    uint32_t    n_head;          /* attention.head_count */
    uint32_t    n_head_kv;       /* attention.head_count_kv */
    uint32_t    n_vocab_real;    /* the checkpoint's own vocab size (informational) */
    uint32_t    sliding_window;  /* attention.sliding_window; 0 = key absent */
    float       rms_eps;         /* attention.layer_norm_rms_epsilon */
    float       rope_base;       /* rope.freq_base */
    bool        tied;            /* no output.weight: the head reuses token_embd */
    /* granite only (written when arch is "granite") */
    float       embedding_scale;
    float       residual_scale;
    float       attention_scale;
    float       logit_scale;
} q_synth_shape;

/* Shape by --shape name (exact), or NULL. */
const q_synth_shape *q_synth_shape_find(const char *name);
/* The i-th shape of the table, NULL past the end (for listing). */
const q_synth_shape *q_synth_shape_at(size_t i);

typedef struct q_synth_params {
    const q_synth_shape *shape;
    q_quant_target       target;      /* as for llama-quantize: mix rules unless pure */
    const char          *vocab_path;  /* GGUF holding tokenizer.* keys (any GGUF) */
    uint64_t             seed;
    int                  n_threads;   /* <= 0: one per physical core */
} q_synth_params;

typedef struct q_synth_stats {
    uint64_t n_vocab;     /* tokens in the copied vocab = token_embd's ne1 */
    uint64_t n_params;    /* elements over all tensors */
    uint64_t n_tensors;
    uint64_t out_size;    /* bytes of the file written */
} q_synth_stats;

/* Writes the model to out_path (atomically: PATH.tmp then rename). Fails with a
 * message naming the path on an unreadable or tokenizer-less vocab (Q_ERR_IO /
 * Q_ERR_FORMAT), or a type Quarrel cannot quantize to (Q_ERR_UNSUPPORTED). stats may
 * be NULL. */
q_status q_synth_write(const char *out_path, const q_synth_params *p, q_synth_stats *stats, q_error *err);

#ifdef __cplusplus
}
#endif
#endif
