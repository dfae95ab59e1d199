/* quants.h — the reference (scalar) row converters of every quant family, wired into
 * the traits table in src/tensor/types.c. Internal to libquarrel.
 *
 * Each pair has the q_to_float_fn / q_from_float_fn shape: n values, n a multiple of
 * the type's block size (asserted); src and dst are caller-owned and must not overlap.
 * The quantizers are ggml's reference algorithms without an importance matrix, so a
 * tensor quantized here matches llama-quantize's quality. */
#ifndef QUARREL_TENSOR_QUANTS_QUANTS_H
#define QUARREL_TENSOR_QUANTS_QUANTS_H

#include <stdint.h>

#define QUANT_DECLARE(t)                                               \
    void quant_##t##_to_float(const void *src, float *dst, int64_t n); \
    void quant_##t##_from_float(const float *src, void *dst, int64_t n);

QUANT_DECLARE(f32)
QUANT_DECLARE(f16)
QUANT_DECLARE(bf16)
QUANT_DECLARE(q4_0)
QUANT_DECLARE(q4_1)
QUANT_DECLARE(q5_0)
QUANT_DECLARE(q5_1)
QUANT_DECLARE(q8_0)
QUANT_DECLARE(q8_1)
QUANT_DECLARE(q2_K)
QUANT_DECLARE(q3_K)
QUANT_DECLARE(q4_K)
QUANT_DECLARE(q5_K)
QUANT_DECLARE(q6_K)
QUANT_DECLARE(q8_K)
QUANT_DECLARE(iq4_nl)
QUANT_DECLARE(mxfp4)

#undef QUANT_DECLARE

#endif
