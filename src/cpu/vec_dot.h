/* vec_dot.h — dot products, one per weight type, with ggml's vec_dot signature:
 * *s = x . y over n elements, x a weight row, y an activation row in the weight's
 * vec_dot_type. Portable reference: cpu/vec_dot_scalar.c; AVX2+FMA twin:
 * cpu/vec_dot_avx2.c; both from the bodies in cpu/vec_dot_impl.h. */
#ifndef QUARREL_CPU_VEC_DOT_H
#define QUARREL_CPU_VEC_DOT_H

#include <stdint.h>

#include "quarrel/types.h"

/* Reduces 16 lanes in the order of GCC's _mm512_reduce_add_ps (tinyBLAS's hsum). */
float q_lanes16_sum(const float a[16]);

void q_vec_dot_f32(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_f16(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_bf16(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_q4_0_q8_0(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_q4_1_q8_1(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_q5_0_q8_0(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_q5_1_q8_1(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_q8_0_q8_0(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_iq4_nl_q8_0(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_mxfp4_q8_0(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_q2_K_q8_K(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_q3_K_q8_K(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_q4_K_q8_K(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_q5_K_q8_K(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_q6_K_q8_K(int64_t n, float *s, const void *x, const void *y);

#if defined(__x86_64__)
/* The same kernels compiled for AVX2+FMA (cpu/vec_dot_avx2.c); bit-identical results. */
void q_vec_dot_f32_avx2(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_f16_avx2(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_bf16_avx2(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_q4_0_q8_0_avx2(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_q4_1_q8_1_avx2(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_q5_0_q8_0_avx2(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_q5_1_q8_1_avx2(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_q8_0_q8_0_avx2(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_iq4_nl_q8_0_avx2(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_mxfp4_q8_0_avx2(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_q2_K_q8_K_avx2(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_q3_K_q8_K_avx2(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_q4_K_q8_K_avx2(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_q5_K_q8_K_avx2(int64_t n, float *s, const void *x, const void *y);
void q_vec_dot_q6_K_q8_K_avx2(int64_t n, float *s, const void *x, const void *y);
#endif

#endif
