/* mix.h — per-tensor type choice of the quantization mixes (internal to src/quant).
 *
 * mix_plan is llama.cpp's llama_tensor_get_type restated as tables: given what the
 * rules need to know about the model (mix_model) and the tensors in llama.cpp's
 * processing order, it returns each tensor's target type. It knows nothing of files;
 * quantize.c reads the model keys and sorts the tensors. */
#ifndef QUARREL_QUANT_MIX_H
#define QUARREL_QUANT_MIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quarrel/quantize.h"
#include "quarrel/status.h"
#include "quarrel/types.h"

/* The model facts the rules depend on. */
typedef struct mix_model {
    bool is_falcon;   /* general.architecture == "falcon" */
    bool is_70b;      /* llama, 80 layers, GQA: llama.cpp's LLM_TYPE_70B */
    int  n_layer;     /* <arch>.block_count */
    int  n_expert;    /* <arch>.expert_count, 0 if absent */
    int  n_gqa;       /* n_head / n_head_kv of layer 0; 0 when n_head_kv is 0 */
} mix_model;

typedef struct mix_tensor {
    const char *name;    /* NUL-terminated */
    int64_t     ne[4];   /* ggml dims, 1 past n_dims */
    q_type      type;    /* type in the input file */
} mix_tensor;

/* types[i] for tensors[i]; tensors in processing order (the counters of the layer
 * rules advance in that order). n_fallback may be NULL. On failure err names the
 * tensor. */
q_status mix_plan(const mix_model *m, q_quant_target t, const mix_tensor *tensors, size_t n, q_type *types,
                  uint64_t *n_fallback, q_error *err);

/* Whether llama.cpp would quantize this tensor at all (2-D+ "*.weight" matrices, minus
 * norms, routers, conv kernels, position embeddings, ...). */
bool mix_tensor_quantizable(const mix_tensor *t);

#endif
