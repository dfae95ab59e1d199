/* vec_dot.h — dot products, one per weight type, with ggml's vec_dot signature:
 * *s = x . y over n elements, x a weight row, y an activation row in the weight's
 * vec_dot_type. The portable reference (cpu/vec_dot_scalar.c, bodies in
 * cpu/vec_dot_impl.h) that every SIMD kernel (cpu/kern_avx2*.c) must equal bit for bit. */
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


#endif
