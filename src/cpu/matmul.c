/* matmul.c — the weight-type table of the CPU matmul and the matmul op itself.
 *
 * Each weight type maps to the type its activations are converted to before the dot
 * product (ggml's vec_dot_type) and a vec_dot. F32 multiplies F32; F16 and BF16 weights
 * round the activations to F16 / BF16; the 32-element quants quantize activation rows to
 * Q8_0 (Q4_1 and Q5_1 to Q8_1, which also stores d*sum); k-quants quantize to Q8_K.
 * Adding a weight type or a SIMD kernel is one row here: each ISA has its own table
 * (the scalar reference, and on x86 the AVX2+FMA twin compiled from the same bodies),
 * picked once from what the CPU reports.
 *
 * Work split: output rows are divided into chunks run on the pool; every output element
 * is one whole dot product, so the result does not depend on the thread count. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "core/base.h"
#include "core/pool.h"
#include "cpu/backend.h"
#include "cpu/vec_dot.h"

static const q_matmul_traits matmul_table[Q_TYPE_COUNT] = {
    [Q_TYPE_F32]    = { Q_TYPE_F32,  q_vec_dot_f32 },
    [Q_TYPE_F16]    = { Q_TYPE_F16,  q_vec_dot_f16 },
    [Q_TYPE_BF16]   = { Q_TYPE_BF16, q_vec_dot_bf16 },
    [Q_TYPE_Q4_0]   = { Q_TYPE_Q8_0, q_vec_dot_q4_0_q8_0 },
    [Q_TYPE_Q4_1]   = { Q_TYPE_Q8_1, q_vec_dot_q4_1_q8_1 },
    [Q_TYPE_Q5_0]   = { Q_TYPE_Q8_0, q_vec_dot_q5_0_q8_0 },
    [Q_TYPE_Q5_1]   = { Q_TYPE_Q8_1, q_vec_dot_q5_1_q8_1 },
    [Q_TYPE_Q8_0]   = { Q_TYPE_Q8_0, q_vec_dot_q8_0_q8_0 },
    [Q_TYPE_IQ4_NL] = { Q_TYPE_Q8_0, q_vec_dot_iq4_nl_q8_0 },
    [Q_TYPE_MXFP4]  = { Q_TYPE_Q8_0, q_vec_dot_mxfp4_q8_0 },
    [Q_TYPE_Q2_K]   = { Q_TYPE_Q8_K, q_vec_dot_q2_K_q8_K },
    [Q_TYPE_Q3_K]   = { Q_TYPE_Q8_K, q_vec_dot_q3_K_q8_K },
    [Q_TYPE_Q4_K]   = { Q_TYPE_Q8_K, q_vec_dot_q4_K_q8_K },
    [Q_TYPE_Q5_K]   = { Q_TYPE_Q8_K, q_vec_dot_q5_K_q8_K },
    [Q_TYPE_Q6_K]   = { Q_TYPE_Q8_K, q_vec_dot_q6_K_q8_K },
};

#if defined(__x86_64__)
static const q_matmul_traits matmul_table_avx2[Q_TYPE_COUNT] = {
    [Q_TYPE_F32]    = { Q_TYPE_F32,  q_vec_dot_f32_avx2 },
    [Q_TYPE_F16]    = { Q_TYPE_F16,  q_vec_dot_f16_avx2 },
    [Q_TYPE_BF16]   = { Q_TYPE_BF16, q_vec_dot_bf16_avx2 },
    [Q_TYPE_Q4_0]   = { Q_TYPE_Q8_0, q_vec_dot_q4_0_q8_0_avx2 },
    [Q_TYPE_Q4_1]   = { Q_TYPE_Q8_1, q_vec_dot_q4_1_q8_1_avx2 },
    [Q_TYPE_Q5_0]   = { Q_TYPE_Q8_0, q_vec_dot_q5_0_q8_0_avx2 },
    [Q_TYPE_Q5_1]   = { Q_TYPE_Q8_1, q_vec_dot_q5_1_q8_1_avx2 },
    [Q_TYPE_Q8_0]   = { Q_TYPE_Q8_0, q_vec_dot_q8_0_q8_0_avx2 },
    [Q_TYPE_IQ4_NL] = { Q_TYPE_Q8_0, q_vec_dot_iq4_nl_q8_0_avx2 },
    [Q_TYPE_MXFP4]  = { Q_TYPE_Q8_0, q_vec_dot_mxfp4_q8_0_avx2 },
    [Q_TYPE_Q2_K]   = { Q_TYPE_Q8_K, q_vec_dot_q2_K_q8_K_avx2 },
    [Q_TYPE_Q3_K]   = { Q_TYPE_Q8_K, q_vec_dot_q3_K_q8_K_avx2 },
    [Q_TYPE_Q4_K]   = { Q_TYPE_Q8_K, q_vec_dot_q4_K_q8_K_avx2 },
    [Q_TYPE_Q5_K]   = { Q_TYPE_Q8_K, q_vec_dot_q5_K_q8_K_avx2 },
    [Q_TYPE_Q6_K]   = { Q_TYPE_Q8_K, q_vec_dot_q6_K_q8_K_avx2 },
};
#endif

static const q_matmul_traits *isa_table(q_cpu_isa isa) {
#if defined(__x86_64__)
    if (isa == Q_CPU_ISA_AVX2) return matmul_table_avx2;
#endif
    return isa == Q_CPU_ISA_SCALAR ? matmul_table : NULL;
}

q_cpu_isa q_cpu_isa_best(void) {
#if defined(__x86_64__)
    static int best = -1;   /* benign race: every thread computes the same value */
    if (best < 0) {
        __builtin_cpu_init();
        unsigned a, b, c, d;   /* F16C via CPUID: clang 14 lacks the builtin's "f16c" name */
        const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
        best = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c && !getenv("QUARREL_SCALAR")
                   ? Q_CPU_ISA_AVX2 : Q_CPU_ISA_SCALAR;
    }
    return (q_cpu_isa)best;
#else
    return Q_CPU_ISA_SCALAR;
#endif
}

const q_matmul_traits *q_matmul_traits_isa(q_type t, q_cpu_isa isa) {
    const q_matmul_traits *tab = isa_table(isa);
    if (!tab || (unsigned)t >= Q_TYPE_COUNT || !tab[t].vec_dot) return NULL;
    /* The activation conversion must exist too (F32 needs none). */
    if (tab[t].vec_dot_type != Q_TYPE_F32 && !q_cpu_act_quantizer(tab[t].vec_dot_type)) return NULL;
    return &tab[t];
}

const q_matmul_traits *q_matmul_traits_get(q_type t) {
    return q_matmul_traits_isa(t, q_cpu_isa_best());
}

size_t q_matmul_wsize(q_type wtype, int64_t n_in, int32_t n_tok) {
    const q_matmul_traits *mt = q_matmul_traits_get(wtype);
    if (!mt || mt->vec_dot_type == Q_TYPE_F32) return 0;
    return q_row_size(mt->vec_dot_type, n_in) * (size_t)n_tok;
}

typedef struct matmul_job {
    const q_tensor *w;
    q_vec_dot_fn    dot;
    const uint8_t  *act;       /* converted activations, n_tok rows of act_row bytes */
    size_t          act_row;
    float          *y;
    int64_t         ldy;
    int32_t         n_tok;
    int64_t         rows_per_task;
} matmul_job;

enum { MATMUL_ROWS_PER_TASK = 16 };

static void matmul_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const matmul_job *j = ctx;
    const int64_t n_in = j->w->ne[0], n_out = j->w->ne[1];
    const int64_t r0 = task * j->rows_per_task, r1 = Q_MIN(n_out, r0 + j->rows_per_task);
    const uint8_t *wd = j->w->data;
    for (int64_t r = r0; r < r1; r++) {
        const void *wrow = wd + (size_t)r * j->w->row_bytes;
        for (int32_t t = 0; t < j->n_tok; t++)
            j->dot(n_in, &j->y[t * j->ldy + r], wrow, j->act + (size_t)t * j->act_row);
    }
}

void q_cpu_matmul(q_exec *ex, const q_tensor *w, const float *x, int64_t ldx,
                  float *y, int64_t ldy, int32_t n_tok) {
    const q_matmul_traits *mt = q_matmul_traits_get(w->type);
    Q_ASSERT(mt);   /* checked at model load */
    const int64_t n_in = w->ne[0];
    matmul_job j = { .w = w, .dot = mt->vec_dot, .y = y, .ldy = ldy, .n_tok = n_tok,
                     .rows_per_task = MATMUL_ROWS_PER_TASK };
    if (mt->vec_dot_type == Q_TYPE_F32) {
        if (ldx == n_in) {
            j.act = (const uint8_t *)x;
            j.act_row = (size_t)n_in * sizeof(float);
        } else {   /* strided input: pack rows so the dot sees contiguous rows */
            Q_ASSERT((size_t)n_tok * n_in * sizeof(float) <= ex->wdata_size);
            float *packed = ex->wdata;
            for (int32_t t = 0; t < n_tok; t++) memcpy(packed + t * n_in, x + t * ldx, n_in * sizeof(float));
            j.act = ex->wdata;
            j.act_row = (size_t)n_in * sizeof(float);
        }
    } else {
        const q_from_float_fn conv = q_cpu_act_quantizer(mt->vec_dot_type);
        j.act_row = q_row_size(mt->vec_dot_type, n_in);
        Q_ASSERT(j.act_row * (size_t)n_tok <= ex->wdata_size);
        for (int32_t t = 0; t < n_tok; t++)
            conv(x + t * ldx, (uint8_t *)ex->wdata + (size_t)t * j.act_row, n_in);
        j.act = ex->wdata;
    }
    q_exec_parallel(ex, matmul_task, &j, (w->ne[1] + j.rows_per_task - 1) / j.rows_per_task);
}

void q_exec_parallel(q_exec *ex, q_task_fn fn, void *ctx, int64_t n) {
    pool_run(ex->pool, fn, ctx, n);
}
