/* quantize.h — converting an F32/F16/BF16 GGUF model to a quantized type or a
 * llama.cpp-style quantization mix.
 *
 * A target is a llama.cpp "file type" (ftype): a mix such as Q4_K_M, where most weight
 * matrices get the ftype's base type (Q4_K) and the rules of src/quant/mix.c bump some
 * of them (output -> Q6_K, some attn_v/ffn_down -> Q6_K, ...), exactly as llama.cpp's
 * llama-quantize chooses them; or a "pure" target where every quantizable tensor gets
 * the base type. Norms, biases, 1-D tensors, routers, conv kernels and the like are
 * never quantized. general.file_type is set to the ftype's llama.cpp number.
 *
 * Not here: importance matrices, requantizing already-quantized tensors, split files. */
#ifndef QUARREL_QUANTIZE_H
#define QUARREL_QUANTIZE_H

#include <stdbool.h>
#include <stdint.h>

#include "quarrel/gguf.h"
#include "quarrel/status.h"
#include "quarrel/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* llama.cpp's llama_ftype numbers (the value of general.file_type). Only the ones
 * Quarrel can produce are named. */
typedef enum q_ftype {
    Q_FTYPE_ALL_F32          = 0,
    Q_FTYPE_MOSTLY_F16       = 1,
    Q_FTYPE_MOSTLY_Q4_0      = 2,
    Q_FTYPE_MOSTLY_Q4_1      = 3,
    Q_FTYPE_MOSTLY_Q8_0      = 7,
    Q_FTYPE_MOSTLY_Q5_0      = 8,
    Q_FTYPE_MOSTLY_Q5_1      = 9,
    Q_FTYPE_MOSTLY_Q2_K      = 10,
    Q_FTYPE_MOSTLY_Q3_K_S    = 11,
    Q_FTYPE_MOSTLY_Q3_K_M    = 12,
    Q_FTYPE_MOSTLY_Q3_K_L    = 13,
    Q_FTYPE_MOSTLY_Q4_K_S    = 14,
    Q_FTYPE_MOSTLY_Q4_K_M    = 15,
    Q_FTYPE_MOSTLY_Q5_K_S    = 16,
    Q_FTYPE_MOSTLY_Q5_K_M    = 17,
    Q_FTYPE_MOSTLY_Q6_K      = 18,
    Q_FTYPE_MOSTLY_IQ4_NL    = 25,
    Q_FTYPE_MOSTLY_BF16      = 32,
    Q_FTYPE_MOSTLY_MXFP4_MOE = 38,
    Q_FTYPE_COUNT            = 39
} q_ftype;

typedef struct q_quant_target {
    q_ftype ftype;   /* written to general.file_type */
    bool    pure;    /* every quantizable tensor gets the base type (llama-quantize --pure) */
} q_quant_target;

/* Parses a target name, case-insensitive. A llama.cpp ftype name ("Q4_K_M", "q8_0",
 * "F16", "MXFP4_MOE") selects that mix. A plain type name that has no ftype of its own
 * ("Q3_K", "Q4_K", "Q5_K", "MXFP4") selects that type for every quantizable tensor
 * (pure; file type of the matching _M / _MOE mix). False if unknown. */
bool q_quant_target_parse(const char *name, q_quant_target *out);

/* Name of a supported ftype ("Q4_K_M"), or NULL. */
const char *q_ftype_name(q_ftype f);

/* The ftype's base tensor type (Q4_K for Q4_K_M, F16 for F16); Q_TYPE_COUNT if unsupported. */
q_type q_ftype_base_type(q_ftype f);

/* Target type of every tensor of f (types[i] for f->tensors[i]) for target t, as
 * llama-quantize would choose it (whether Quarrel can convert to it is checked by
 * q_quantize_file). Fails with Q_ERR_FORMAT when a tensor's layer cannot be read
 * from its name in a MoE model. n_fallback (may be NULL) counts tensors whose row
 * length forced a fallback type. */
q_status q_quantize_plan(const gguf_file *f, q_quant_target t, q_type *types, uint64_t *n_fallback,
                         q_error *err);

/* Progress: bytes of source tensor data done so far out of total, after each tensor. */
typedef void (*q_quantize_progress_fn)(void *user, uint64_t done, uint64_t total, const char *tensor_name);

typedef struct q_quantize_params {
    q_quant_target         target;
    int                    n_threads;       /* <= 0: one per physical core */
    q_quantize_progress_fn progress;        /* may be NULL */
    void                  *progress_user;
} q_quantize_params;

typedef struct q_quantize_stats {
    uint64_t in_size;      /* bytes of the input file */
    uint64_t out_size;     /* bytes of the output file */
    uint64_t n_tensors;
    uint64_t n_converted;  /* tensors whose type changed */
    uint64_t n_fallback;   /* tensors that got a fallback type for their row length */
} q_quantize_stats;

/* Reads in_path (F32/F16/BF16 weights; tensors already of their target type are copied
 * as they are), writes out_path: the input's key/values in order (minus split keys;
 * general.quantization_version = 2 and general.file_type appended last, as llama.cpp
 * does) and the tensors in llama.cpp's order (by layer, then name), each converted
 * row by row on a thread pool. Memory stays bounded by one tensor. The output is
 * byte-for-byte independent of n_threads. stats may be NULL. */
q_status q_quantize_file(const char *in_path, const char *out_path, const q_quantize_params *params,
                         q_quantize_stats *stats, q_error *err);

#ifdef __cplusplus
}
#endif
#endif
