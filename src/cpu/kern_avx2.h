/* kern_avx2.h — hand-written AVX2+FMA+F16C kernels (vec_dot and gemm tile) per weight
 * type, one section per source file that defines them; cpu/matmul.c points the rows of
 * its AVX2 table at them. Signatures are q_vec_dot_fn / q_gemm_fn (cpu/backend.h); each
 * kernel is bit-identical to the scalar reference body in cpu/vec_dot_impl.h
 * (tests/test_matmul.c checks). x86-64 only; callers check the CPU first. */
#ifndef QUARREL_CPU_KERN_AVX2_H
#define QUARREL_CPU_KERN_AVX2_H

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)

/* 32-element blocks (kern_avx2_q32.c) */
void q_avx2_vec_dot_q4_0_q8_0(int64_t n, float *s, const void *x, const void *y);
void q_avx2_gemm_q4_0_q8_0(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws,
                           const void *a, size_t as, float *y, int64_t ldy);
void q_avx2_vec_dot_q8_0_q8_0(int64_t n, float *s, const void *x, const void *y);
void q_avx2_gemm_q8_0_q8_0(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws,
                           const void *a, size_t as, float *y, int64_t ldy);
void q_avx2_vec_dot_q4_1_q8_1(int64_t n, float *s, const void *x, const void *y);
void q_avx2_gemm_q4_1_q8_1(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws,
                           const void *a, size_t as, float *y, int64_t ldy);
void q_avx2_vec_dot_q5_0_q8_0(int64_t n, float *s, const void *x, const void *y);
void q_avx2_gemm_q5_0_q8_0(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws,
                           const void *a, size_t as, float *y, int64_t ldy);
void q_avx2_vec_dot_q5_1_q8_1(int64_t n, float *s, const void *x, const void *y);
void q_avx2_gemm_q5_1_q8_1(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws,
                           const void *a, size_t as, float *y, int64_t ldy);
void q_avx2_vec_dot_iq4_nl_q8_0(int64_t n, float *s, const void *x, const void *y);
void q_avx2_gemm_iq4_nl_q8_0(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws,
                             const void *a, size_t as, float *y, int64_t ldy);
void q_avx2_vec_dot_mxfp4_q8_0(int64_t n, float *s, const void *x, const void *y);
void q_avx2_gemm_mxfp4_q8_0(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws,
                            const void *a, size_t as, float *y, int64_t ldy);

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
