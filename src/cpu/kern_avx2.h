/* kern_avx2.h — hand-written AVX2+FMA+F16C matmul kernels (vec_dot and gemm tile), one
 * pair per weight type, with the signatures of q_vec_dot_fn and q_gemm_fn (cpu/backend.h).
 * Each is bit-identical to the scalar reference body in cpu/vec_dot_impl.h (same
 * summation order; tests/test_matmul.c checks). cpu/matmul.c puts them in its AVX2 table;
 * callers must check the CPU first (q_cpu_isa_supported). x86-64 only. No memory owned. */
#ifndef QUARREL_CPU_KERN_AVX2_H
#define QUARREL_CPU_KERN_AVX2_H

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)
/* k-quants (kern_avx2_kq.c) */
void q_avx2_vec_dot_q2_K_q8_K(int64_t n, float *s, const void *x, const void *y);
void q_avx2_vec_dot_q3_K_q8_K(int64_t n, float *s, const void *x, const void *y);
void q_avx2_vec_dot_q4_K_q8_K(int64_t n, float *s, const void *x, const void *y);
void q_avx2_vec_dot_q5_K_q8_K(int64_t n, float *s, const void *x, const void *y);
void q_avx2_vec_dot_q6_K_q8_K(int64_t n, float *s, const void *x, const void *y);
void q_avx2_gemm_q2_K_q8_K(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws,
                           const void *a, size_t as, float *y, int64_t ldy);
void q_avx2_gemm_q3_K_q8_K(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws,
                           const void *a, size_t as, float *y, int64_t ldy);
void q_avx2_gemm_q4_K_q8_K(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws,
                           const void *a, size_t as, float *y, int64_t ldy);
void q_avx2_gemm_q5_K_q8_K(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws,
                           const void *a, size_t as, float *y, int64_t ldy);
void q_avx2_gemm_q6_K_q8_K(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws,
                           const void *a, size_t as, float *y, int64_t ldy);
#endif

#endif
