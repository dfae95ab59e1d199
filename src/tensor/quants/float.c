/* float.c — the non-quantized float rows of the traits table: F32 (copy), F16 and BF16
 * (element-wise through src/tensor/fp16.c). Block size 1; no layout beyond IEEE
 * binary16 / bfloat16 little-endian. Caller owns both buffers. */
#include <string.h>

#include "tensor/quants/quants.h"
#include "tensor/quants/qutil.h"

void quant_f32_to_float(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void quant_f32_from_float(const float *src, void *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void quant_f16_to_float(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++) dst[i] = q_fp16_to_fp32(h[i]);
}

void quant_f16_from_float(const float *src, void *dst, int64_t n) {
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = q_fp32_to_fp16(src[i]);
}

void quant_bf16_to_float(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++) dst[i] = q_bf16_to_fp32(h[i]);
}

void quant_bf16_from_float(const float *src, void *dst, int64_t n) {
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = q_fp32_to_bf16(src[i]);
}
