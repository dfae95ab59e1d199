/* types.h — tensor element types and their traits table.
 *
 * q_type values are the ggml type ids that GGUF stores in tensor infos, so a tensor's
 * type field casts straight to q_type. Every type ggml has ever written (that is still
 * assigned) has a row with its block size and bytes per block, so that any real GGUF
 * file validates and `quarrel info` can describe it; rows whose to_float is NULL are
 * types Quarrel can describe but not yet compute with.
 *
 * Conversions are reference (scalar) code: the SIMD kernels of src/cpu are tested
 * against them. Bit layouts are ggml's, documented in src/tensor/quants/<family>.c. */
#ifndef QUARREL_TYPES_H
#define QUARREL_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum q_type {
    Q_TYPE_F32     = 0,
    Q_TYPE_F16     = 1,
    Q_TYPE_Q4_0    = 2,
    Q_TYPE_Q4_1    = 3,
    /* 4, 5: removed Q4_2 / Q4_3 */
    Q_TYPE_Q5_0    = 6,
    Q_TYPE_Q5_1    = 7,
    Q_TYPE_Q8_0    = 8,
    Q_TYPE_Q8_1    = 9,
    Q_TYPE_Q2_K    = 10,
    Q_TYPE_Q3_K    = 11,
    Q_TYPE_Q4_K    = 12,
    Q_TYPE_Q5_K    = 13,
    Q_TYPE_Q6_K    = 14,
    Q_TYPE_Q8_K    = 15,
    Q_TYPE_IQ2_XXS = 16,
    Q_TYPE_IQ2_XS  = 17,
    Q_TYPE_IQ3_XXS = 18,
    Q_TYPE_IQ1_S   = 19,
    Q_TYPE_IQ4_NL  = 20,
    Q_TYPE_IQ3_S   = 21,
    Q_TYPE_IQ2_S   = 22,
    Q_TYPE_IQ4_XS  = 23,
    Q_TYPE_I8      = 24,
    Q_TYPE_I16     = 25,
    Q_TYPE_I32     = 26,
    Q_TYPE_I64     = 27,
    Q_TYPE_F64     = 28,
    Q_TYPE_IQ1_M   = 29,
    Q_TYPE_BF16    = 30,
    /* 31..33: removed Q4_0_4_4, Q4_0_4_8, Q4_0_8_8 */
    Q_TYPE_TQ1_0   = 34,
    Q_TYPE_TQ2_0   = 35,
    /* 36..38: removed IQ4_NL_4_4, IQ4_NL_4_8, IQ4_NL_8_8 */
    Q_TYPE_MXFP4   = 39,
    Q_TYPE_COUNT   = 40
} q_type;

/* Converts n values (n a multiple of the block size) between blocks and floats. */
typedef void (*q_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*q_from_float_fn)(const float *src, void *dst, int64_t n);

typedef struct q_type_traits {
    const char     *name;        /* ggml's name: "f32", "q4_K", ... ; NULL = unassigned id */
    int64_t         blck_size;   /* elements per block */
    size_t          type_size;   /* bytes per block */
    bool            is_quantized;
    q_to_float_fn   to_float;    /* reference dequantizer; NULL if not implemented */
    q_from_float_fn from_float;  /* reference quantizer;  NULL if not implemented */
} q_type_traits;

/* Traits of type id t, or NULL when t is not an assigned ggml type id. */
const q_type_traits *q_type_get(uint32_t t);

/* ggml name of t ("q4_K"), or "?" for an unassigned id. */
const char *q_type_name(q_type t);

/* Type with ggml name `name`, case-insensitive ("Q4_K", "q4_k", "bf16"); -1 if none. */
int q_type_from_name(const char *name);

/* Bytes of one row of ne0 elements; ne0 must be a multiple of the block size. */
size_t q_row_size(q_type t, int64_t ne0);

/* IEEE half and bfloat16 conversions (round-to-nearest-even, NaN preserved). */
float    q_fp16_to_fp32(uint16_t h);
uint16_t q_fp32_to_fp16(float f);
float    q_bf16_to_fp32(uint16_t h);
uint16_t q_fp32_to_bf16(float f);

#ifdef __cplusplus
}
#endif
#endif
