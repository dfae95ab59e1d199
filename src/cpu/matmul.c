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
 * Work split: the output is cut into tiles (rows x tokens) run on the pool; a tile runs
 * the type's gemm kernel, or its vec_dot per element. Every output element is one whole
 * dot product in a fixed order, so the result depends neither on the thread count nor on
 * the tiling. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "core/base.h"
#include "core/pool.h"
#include "cpu/backend.h"
#include "cpu/kern_avx2.h"
#include "cpu/kern_avx2_float.h"
#include "cpu/vec_dot.h"

static const q_matmul_traits matmul_table[Q_TYPE_COUNT] = {
    [Q_TYPE_F32]    = { Q_TYPE_F32,  q_vec_dot_f32, NULL },
    [Q_TYPE_F16]    = { Q_TYPE_F16,  q_vec_dot_f16, NULL },
    [Q_TYPE_BF16]   = { Q_TYPE_BF16, q_vec_dot_bf16, NULL },
    [Q_TYPE_Q4_0]   = { Q_TYPE_Q8_0, q_vec_dot_q4_0_q8_0, NULL },
    [Q_TYPE_Q4_1]   = { Q_TYPE_Q8_1, q_vec_dot_q4_1_q8_1, NULL },
    [Q_TYPE_Q5_0]   = { Q_TYPE_Q8_0, q_vec_dot_q5_0_q8_0, NULL },
    [Q_TYPE_Q5_1]   = { Q_TYPE_Q8_1, q_vec_dot_q5_1_q8_1, NULL },
    [Q_TYPE_Q8_0]   = { Q_TYPE_Q8_0, q_vec_dot_q8_0_q8_0, NULL },
    [Q_TYPE_IQ4_NL] = { Q_TYPE_Q8_0, q_vec_dot_iq4_nl_q8_0, NULL },
    [Q_TYPE_MXFP4]  = { Q_TYPE_Q8_0, q_vec_dot_mxfp4_q8_0, NULL },
    [Q_TYPE_Q2_K]   = { Q_TYPE_Q8_K, q_vec_dot_q2_K_q8_K, NULL },
    [Q_TYPE_Q3_K]   = { Q_TYPE_Q8_K, q_vec_dot_q3_K_q8_K, NULL },
    [Q_TYPE_Q4_K]   = { Q_TYPE_Q8_K, q_vec_dot_q4_K_q8_K, NULL },
    [Q_TYPE_Q5_K]   = { Q_TYPE_Q8_K, q_vec_dot_q5_K_q8_K, NULL },
    [Q_TYPE_Q6_K]   = { Q_TYPE_Q8_K, q_vec_dot_q6_K_q8_K, NULL },
};

#if defined(__x86_64__)
static const q_matmul_traits matmul_table_avx2[Q_TYPE_COUNT] = {
    [Q_TYPE_F32]    = { Q_TYPE_F32,  q_avx2_vec_dot_f32,  q_avx2_gemm_f32 },
    [Q_TYPE_F16]    = { Q_TYPE_F16,  q_avx2_vec_dot_f16,  q_avx2_gemm_f16 },
    [Q_TYPE_BF16]   = { Q_TYPE_BF16, q_avx2_vec_dot_bf16, q_avx2_gemm_bf16 },
    [Q_TYPE_Q4_0]   = { Q_TYPE_Q8_0, q_avx2_vec_dot_q4_0_q8_0, q_avx2_gemm_q4_0_q8_0 },
    [Q_TYPE_Q4_1]   = { Q_TYPE_Q8_1, q_avx2_vec_dot_q4_1_q8_1, q_avx2_gemm_q4_1_q8_1 },
    [Q_TYPE_Q5_0]   = { Q_TYPE_Q8_0, q_avx2_vec_dot_q5_0_q8_0, q_avx2_gemm_q5_0_q8_0 },
    [Q_TYPE_Q5_1]   = { Q_TYPE_Q8_1, q_avx2_vec_dot_q5_1_q8_1, q_avx2_gemm_q5_1_q8_1 },
    [Q_TYPE_Q8_0]   = { Q_TYPE_Q8_0, q_avx2_vec_dot_q8_0_q8_0, q_avx2_gemm_q8_0_q8_0 },
    [Q_TYPE_IQ4_NL] = { Q_TYPE_Q8_0, q_avx2_vec_dot_iq4_nl_q8_0, q_avx2_gemm_iq4_nl_q8_0 },
    [Q_TYPE_MXFP4]  = { Q_TYPE_Q8_0, q_avx2_vec_dot_mxfp4_q8_0, q_avx2_gemm_mxfp4_q8_0 },
    [Q_TYPE_Q2_K]   = { Q_TYPE_Q8_K, q_avx2_vec_dot_q2_K_q8_K, q_avx2_gemm_q2_K_q8_K },
    [Q_TYPE_Q3_K]   = { Q_TYPE_Q8_K, q_avx2_vec_dot_q3_K_q8_K, q_avx2_gemm_q3_K_q8_K },
    [Q_TYPE_Q4_K]   = { Q_TYPE_Q8_K, q_avx2_vec_dot_q4_K_q8_K, q_avx2_gemm_q4_K_q8_K },
    [Q_TYPE_Q5_K]   = { Q_TYPE_Q8_K, q_avx2_vec_dot_q5_K_q8_K, q_avx2_gemm_q5_K_q8_K },
    [Q_TYPE_Q6_K]   = { Q_TYPE_Q8_K, q_avx2_vec_dot_q6_K_q8_K, q_avx2_gemm_q6_K_q8_K },
};
#endif

static const q_matmul_traits *const isa_tables[Q_CPU_ISA_COUNT] = {
    [Q_CPU_ISA_SCALAR] = matmul_table,
#if defined(__x86_64__)
    [Q_CPU_ISA_AVX2]   = matmul_table_avx2,
#endif
};

static const char *const isa_names[Q_CPU_ISA_COUNT] = {
    [Q_CPU_ISA_SCALAR] = "scalar", [Q_CPU_ISA_AVX2] = "avx2", [Q_CPU_ISA_AVX512] = "avx512",
};

const char *q_cpu_isa_name(q_cpu_isa isa) {
    Q_ASSERT((unsigned)isa < Q_CPU_ISA_COUNT);
    return isa_names[isa];
}

static bool cpu_runs(q_cpu_isa isa) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    unsigned a, b, c, d;   /* F16C via CPUID: clang 14 lacks the builtin's "f16c" name */
    const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
    if (isa == Q_CPU_ISA_AVX2) return avx2;
    if (isa == Q_CPU_ISA_AVX512)
        return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl");
#endif
    return isa == Q_CPU_ISA_SCALAR;
}

bool q_cpu_isa_supported(q_cpu_isa isa) {
    return (unsigned)isa < Q_CPU_ISA_COUNT && isa_tables[isa] && cpu_runs(isa);
}

/* The forced set, if QUARREL_CPU names one this machine runs; -1 = none asked for; -2 =
 * a bad value (q_cpu_check reports it, so a model load fails instead of silently
 * benchmarking another set). */
static int isa_forced(void) {
    const char *want = getenv("QUARREL_CPU");
    if (!want || !*want) return -1;
    for (int i = 0; i < Q_CPU_ISA_COUNT; i++)
        if (!strcmp(want, isa_names[i])) return q_cpu_isa_supported((q_cpu_isa)i) ? i : -2;
    return -2;
}

q_status q_cpu_check(q_error *err) {
    if (isa_forced() != -2) return Q_OK;
    const char *want = getenv("QUARREL_CPU");
    for (int i = 0; i < Q_CPU_ISA_COUNT; i++)
        if (!strcmp(want, isa_names[i]))
            return q_fail(err, Q_ERR_UNSUPPORTED, "QUARREL_CPU=%s: %s", want,
                          isa_tables[i] ? "this CPU lacks that instruction set" : "this build has no such kernels");
    return q_fail(err, Q_ERR_INVALID_ARG, "QUARREL_CPU=%s: expected scalar, avx2 or avx512", want);
}

q_cpu_isa q_cpu_isa_best(void) {
    static atomic_int best = -1;   /* every thread computes the same value */
    int b = atomic_load_explicit(&best, memory_order_relaxed);
    if (b < 0) {
        b = isa_forced();
        for (int i = Q_CPU_ISA_COUNT - 1; b < 0 && i >= 0; i--)
            if (q_cpu_isa_supported((q_cpu_isa)i)) b = i;
        atomic_store_explicit(&best, b, memory_order_relaxed);
    }
    return (q_cpu_isa)b;
}

static const q_matmul_traits *isa_table(q_cpu_isa isa) {
    return (unsigned)isa < Q_CPU_ISA_COUNT ? isa_tables[isa] : NULL;
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
    const q_matmul_traits *mt;
    const float    *x;         /* input rows (stride ldx floats), for the conversion tasks */
    int64_t         ldx;
    const uint8_t  *act;       /* converted activations, n_tok rows of act_row bytes */
    size_t          act_row;
    float          *y;
    int64_t         ldy;
    int32_t         n_tok;
    int64_t         n_row_tasks;
} matmul_job;

/* A task is a tile of ROWS output rows by TOKS tokens. TOKS keeps a tile's activations
 * (64 Q8_0 rows of 2048 inputs = 136 KiB) in L2 while its weight rows stream past;
 * decode (one token) gets one tile column and threads split the rows. */
enum { MATMUL_ROWS_PER_TASK = 16, MATMUL_TOKS_PER_TASK = 64 };

static void matmul_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const matmul_job *j = ctx;
    const int64_t n_in = j->w->ne[0], n_out = j->w->ne[1];
    const int64_t rt = task % j->n_row_tasks, ct = task / j->n_row_tasks;
    const int64_t r0 = rt * MATMUL_ROWS_PER_TASK, r1 = Q_MIN(n_out, r0 + MATMUL_ROWS_PER_TASK);
    const int64_t c0 = ct * MATMUL_TOKS_PER_TASK, c1 = Q_MIN(j->n_tok, c0 + MATMUL_TOKS_PER_TASK);
    const uint8_t *wd = (const uint8_t *)j->w->data + (size_t)r0 * j->w->row_bytes;
    const uint8_t *act = j->act + (size_t)c0 * j->act_row;
    float *y = j->y + c0 * j->ldy + r0;
    if (j->mt->gemm) {
        j->mt->gemm(n_in, (int32_t)(r1 - r0), (int32_t)(c1 - c0), wd, j->w->row_bytes, act, j->act_row, y, j->ldy);
        return;
    }
    for (int64_t r = 0; r < r1 - r0; r++)
        for (int64_t c = 0; c < c1 - c0; c++)
            j->mt->vec_dot(n_in, &y[c * j->ldy + r], wd + (size_t)r * j->w->row_bytes, act + (size_t)c * j->act_row);
}

/* One activation row converted to vec_dot_type (or packed, for F32 with a stride). */
static void convert_task(void *ctx, int64_t t, int thread) {
    (void)thread;
    const matmul_job *j = ctx;
    uint8_t *dst = (uint8_t *)j->act + (size_t)t * j->act_row;
    if (j->mt->vec_dot_type == Q_TYPE_F32)
        memcpy(dst, j->x + t * j->ldx, j->act_row);
    else
        q_cpu_act_quantizer(j->mt->vec_dot_type)(j->x + t * j->ldx, dst, j->w->ne[0]);
}

void q_cpu_matmul(q_exec *ex, const q_tensor *w, const float *x, int64_t ldx,
                  float *y, int64_t ldy, int32_t n_tok) {
    const q_matmul_traits *mt = q_matmul_traits_get(w->type);
    Q_ASSERT(mt);   /* checked at model load */
    const int64_t n_in = w->ne[0];
    matmul_job j = { .w = w, .mt = mt, .x = x, .ldx = ldx, .y = y, .ldy = ldy, .n_tok = n_tok,
                     .n_row_tasks = (w->ne[1] + MATMUL_ROWS_PER_TASK - 1) / MATMUL_ROWS_PER_TASK };
    if (mt->vec_dot_type == Q_TYPE_F32 && ldx == n_in) {
        j.act = (const uint8_t *)x;
        j.act_row = (size_t)n_in * sizeof(float);
    } else {
        j.act_row = mt->vec_dot_type == Q_TYPE_F32 ? (size_t)n_in * sizeof(float)
                                                    : q_row_size(mt->vec_dot_type, n_in);
        Q_ASSERT(j.act_row * (size_t)n_tok <= ex->wdata_size);
        j.act = ex->wdata;
        if (n_tok == 1) convert_task(&j, 0, 0);   /* decode: not worth waking the pool */
        else q_exec_parallel(ex, convert_task, &j, n_tok);
    }
    const int64_t n_col_tasks = (n_tok + MATMUL_TOKS_PER_TASK - 1) / MATMUL_TOKS_PER_TASK;
    q_exec_parallel(ex, matmul_task, &j, j.n_row_tasks * n_col_tasks);
}

void q_exec_parallel(q_exec *ex, q_task_fn fn, void *ctx, int64_t n) {
    pool_run(ex->pool, fn, ctx, n);
}
