/* ops.h — the CPU backend's row and elementwise kernels, one table per kernel set
 * (scalar reference in cpu/ops.c, AVX2+FMA in cpu/ops_avx2.c), as the matmul table is.
 * The backend's ops (q_backend_cpu) call the row of q_cpu_isa_best(); tests compare the
 * rows of two sets directly (tests/test_ops.c).
 *
 * Every kernel of every set is bit-identical to the scalar one: elementwise ops are
 * single IEEE operations in a fixed order, and the reductions (RMSNorm's sum of squares,
 * softmax's sum) are spelled out in the same order in both. Kernels own no memory. */
#ifndef QUARREL_CPU_OPS_H
#define QUARREL_CPU_OPS_H

#include <stdint.h>

#include "cpu/backend.h"

typedef struct q_cpu_row_ops {
    /* y(t, :) = x(t, :) * (1 / sqrtf(mean(x(t,:)^2) + eps)) * w, n_tok rows of n. */
    void (*rmsnorm)(float *y, const float *x, const float *w, int32_t n_tok, int32_t n, float eps);
    /* Rotates one head v by the pairs' cos/sin cs[2i], cs[2i+1] (i < n_rot/2); mode NORM
     * pairs (2i, 2i+1), NEOX (i, i + n_rot/2). */
    void (*rope_head)(float *v, const float *cs, int32_t n_rot, q_rope_mode mode);
    void (*swiglu)(float *g, const float *u, int32_t n_rows, int32_t n_cols);
    void (*add_scaled)(float *x, const float *y, float s, int64_t n);
    void (*scale)(float *x, float s, int64_t n);
    void (*softmax)(float *x, int32_t n_rows, int32_t n_cols);
    /* dst[i] = q_cpu_expf(src[i]) (dst may equal src). */
    void (*expf)(float *dst, const float *src, int64_t n);
} q_cpu_row_ops;

/* The row kernels of a set (NULL if that set is not built here). */
const q_cpu_row_ops *q_cpu_row_ops_isa(q_cpu_isa isa);

#if defined(__x86_64__)
extern const q_cpu_row_ops q_cpu_row_ops_avx2;   /* cpu/ops_avx2.c */
#endif

#endif
