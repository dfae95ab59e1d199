/* kern_avx512.h — the AVX-512 set's row-major kernels, one section per source file;
 * cpu/matmul.c's AVX-512 table points at them (the rows it leaves empty are AVX2's).
 * Signatures are q_gemm_fn (cpu/backend.h); each is bit-identical to the scalar reference
 * body in cpu/vec_dot_impl.h. Every name also exists with the suffix _emu: the same source
 * compiled over SIMDe's emulation (cpu/avx512_begin.h), linked only into the
 * tests/test_avx512*.c tests, which check it on CPUs without AVX-512. x86-64 only;
 * callers check the CPU first. */
#ifndef QUARREL_CPU_KERN_AVX512_H
#define QUARREL_CPU_KERN_AVX512_H

#include <stddef.h>
#include <stdint.h>

#define Q_AVX512_GEMM_DECL(name)                                                                       \
    void name(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws, const void *a, size_t as,  \
              float *y, int64_t ldy);                                                                  \
    void name##_emu(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws, const void *a,       \
                    size_t as, float *y, int64_t ldy)

/* Batches over x8-repacked weights (repack_avx512.c; layouts in cpu/repack.h) */
Q_AVX512_GEMM_DECL(q_avx512_gemm_x8_q4_0_q8_0);
Q_AVX512_GEMM_DECL(q_avx512_gemm_x8_q8_0_q8_0);

/* F32, F16, BF16 (kern_avx512_float.c) */
Q_AVX512_GEMM_DECL(q_avx512_gemm_f32);
Q_AVX512_GEMM_DECL(q_avx512_gemm_f16);
Q_AVX512_GEMM_DECL(q_avx512_gemm_bf16);

/* 32-element blocks, one float accumulator per output (kern_avx512_q32.c) */
Q_AVX512_GEMM_DECL(q_avx512_gemm_q4_0_q8_0);
Q_AVX512_GEMM_DECL(q_avx512_gemm_q4_1_q8_1);
Q_AVX512_GEMM_DECL(q_avx512_gemm_q5_0_q8_0);
Q_AVX512_GEMM_DECL(q_avx512_gemm_q5_1_q8_1);
Q_AVX512_GEMM_DECL(q_avx512_gemm_iq4_nl_q8_0);
Q_AVX512_GEMM_DECL(q_avx512_gemm_mxfp4_q8_0);
Q_AVX512_GEMM_DECL(q_avx512_gemm_q8_0_q8_0);   /* 8 lanes per output, rows not repacked */

/* k-quants (kern_avx512_kq.c) */
Q_AVX512_GEMM_DECL(q_avx512_gemm_q4_K_q8_K);
Q_AVX512_GEMM_DECL(q_avx512_gemm_q5_K_q8_K);
Q_AVX512_GEMM_DECL(q_avx512_gemm_q2_K_q8_K);
Q_AVX512_GEMM_DECL(q_avx512_gemm_q3_K_q8_K);

/* Q6_K (kern_avx512_q6k.c) */
Q_AVX512_GEMM_DECL(q_avx512_gemm_q6_K_q8_K);

/* Every row of the AVX-512 matmul table, X(type, vec_dot_type, vec_dot, gemm): the
 * set's one-output kernel is AVX2's (decode is bound by memory), the gemm its own.
 * cpu/matmul.c builds the set's table from it, tests/avx512_emu_tables.h the emulated
 * twin's (gemm##_emu). */
#define Q_AVX512_MATMUL_ROWS(X)                                                        \
    X(Q_TYPE_F32, Q_TYPE_F32, q_avx2_vec_dot_f32, q_avx512_gemm_f32)                   \
    X(Q_TYPE_F16, Q_TYPE_F16, q_avx2_vec_dot_f16, q_avx512_gemm_f16)                   \
    X(Q_TYPE_BF16, Q_TYPE_BF16, q_avx2_vec_dot_bf16, q_avx512_gemm_bf16)               \
    X(Q_TYPE_Q4_0, Q_TYPE_Q8_0, q_avx2_vec_dot_q4_0_q8_0, q_avx512_gemm_q4_0_q8_0)     \
    X(Q_TYPE_Q4_1, Q_TYPE_Q8_1, q_avx2_vec_dot_q4_1_q8_1, q_avx512_gemm_q4_1_q8_1)     \
    X(Q_TYPE_Q5_0, Q_TYPE_Q8_0, q_avx2_vec_dot_q5_0_q8_0, q_avx512_gemm_q5_0_q8_0)     \
    X(Q_TYPE_Q5_1, Q_TYPE_Q8_1, q_avx2_vec_dot_q5_1_q8_1, q_avx512_gemm_q5_1_q8_1)     \
    X(Q_TYPE_Q8_0, Q_TYPE_Q8_0, q_avx2_vec_dot_q8_0_q8_0, q_avx512_gemm_q8_0_q8_0)     \
    X(Q_TYPE_IQ4_NL, Q_TYPE_Q8_0, q_avx2_vec_dot_iq4_nl_q8_0, q_avx512_gemm_iq4_nl_q8_0) \
    X(Q_TYPE_MXFP4, Q_TYPE_Q8_0, q_avx2_vec_dot_mxfp4_q8_0, q_avx512_gemm_mxfp4_q8_0)  \
    X(Q_TYPE_Q2_K, Q_TYPE_Q8_K, q_avx2_vec_dot_q2_K_q8_K, q_avx512_gemm_q2_K_q8_K)     \
    X(Q_TYPE_Q3_K, Q_TYPE_Q8_K, q_avx2_vec_dot_q3_K_q8_K, q_avx512_gemm_q3_K_q8_K)     \
    X(Q_TYPE_Q4_K, Q_TYPE_Q8_K, q_avx2_vec_dot_q4_K_q8_K, q_avx512_gemm_q4_K_q8_K)     \
    X(Q_TYPE_Q5_K, Q_TYPE_Q8_K, q_avx2_vec_dot_q5_K_q8_K, q_avx512_gemm_q5_K_q8_K)     \
    X(Q_TYPE_Q6_K, Q_TYPE_Q8_K, q_avx2_vec_dot_q6_K_q8_K, q_avx512_gemm_q6_K_q8_K)

#endif
