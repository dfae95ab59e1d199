/* kern_avx2_float.h — AVX2+FMA+F16C dot products (vec_dot) and tile products (gemm) for
 * F32, F16 and BF16 weights (cpu/kern_avx2_float.c), the AVX2 matmul table's rows for
 * those types. Signatures are q_vec_dot_fn / q_gemm_fn (cpu/backend.h); every result is
 * bit-identical to the scalar reference (cpu/vec_dot_impl.h). x86-64 only. */
#ifndef QUARREL_CPU_KERN_AVX2_FLOAT_H
#define QUARREL_CPU_KERN_AVX2_FLOAT_H

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)
void q_avx2_vec_dot_f32(int64_t n, float *s, const void *x, const void *y);
void q_avx2_vec_dot_f16(int64_t n, float *s, const void *x, const void *y);
void q_avx2_vec_dot_bf16(int64_t n, float *s, const void *x, const void *y);

void q_avx2_gemm_f32(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws, const void *a, size_t as,
                     float *y, int64_t ldy);
void q_avx2_gemm_f16(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws, const void *a, size_t as,
                     float *y, int64_t ldy);
void q_avx2_gemm_bf16(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws, const void *a, size_t as,
                      float *y, int64_t ldy);

#endif

#endif
