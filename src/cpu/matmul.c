/* matmul.c — the weight-type table of the CPU matmul and the matmul op itself.
 *
 * Each weight type maps to the type its activations are converted to before the dot
 * product (ggml's vec_dot_type) and a vec_dot. F32 multiplies F32; F16 and BF16 weights
 * round the activations to F16 / BF16; the 32-element quants quantize activation rows to
 * Q8_0 (Q4_1 and Q5_1 to Q8_1, which also stores d*sum); k-quants quantize to Q8_K.
 * Adding a weight type or a SIMD kernel is one row here: each ISA has its own table
 * (the scalar reference, and on x86 the AVX2+FMA twin compiled from the same bodies;
 * the AVX-512 set shares AVX2's rows and adds its own repacked tiles), picked once from
 * what the CPU reports.
 *
 * Work split: the output is cut into tiles (rows x tokens) run on the pool; a tile runs
 * the type's gemm kernel, or its vec_dot per element. Every output element is one whole
 * dot product in a fixed order, so the result depends neither on the thread count nor on
 * the tiling. Weights that share an input (q/k/v, gate/up: q_cpu_matmul_multi) share
 * one activation conversion and one pool dispatch. */
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
#include "cpu/kern_avx512.h"
#include "cpu/repack.h"
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

/* AVX-512 F/BW/VL + VNNI: only the rows that differ from AVX2's (every such CPU runs
 * AVX2; an empty row would be read from the set below, see matmul_row). Its
 * gemm tiles are for batches (decode runs AVX2's inside them), and its vec_dots AVX2's;
 * its tiles over repacked Q4_0 / Q8_0 weights are in cpu/repack.c's table. */
static const q_matmul_traits matmul_table_avx512[Q_TYPE_COUNT] = {
#define MATMUL_AVX512_ROW(t, vt, dot, gemm) [t] = { vt, dot, gemm },
    Q_AVX512_MATMUL_ROWS(MATMUL_AVX512_ROW)
#undef MATMUL_AVX512_ROW
};
#endif

static const q_matmul_traits *const isa_tables[Q_CPU_ISA_COUNT] = {
    [Q_CPU_ISA_SCALAR] = matmul_table,
#if defined(__x86_64__)
    [Q_CPU_ISA_AVX2]   = matmul_table_avx2,
    [Q_CPU_ISA_AVX512] = matmul_table_avx512,
#endif
};

static const char *const isa_names[Q_CPU_ISA_COUNT] = {
    [Q_CPU_ISA_SCALAR] = "scalar", [Q_CPU_ISA_AVX2] = "avx2", [Q_CPU_ISA_AVX512] = "avx512",
};

const char *q_cpu_isa_name(q_cpu_isa isa) {
    Q_ASSERT((unsigned)isa < Q_CPU_ISA_COUNT);
    return isa_names[isa];
}

/* Tests only (q_cpu_emulate_avx512): the table the AVX-512 set runs instead of its own on a
 * CPU without AVX-512. Written once before any kernel set is asked for. */
static const q_matmul_traits *avx512_emulated;

void q_cpu_emulate_avx512(const q_matmul_traits *table) {
    Q_ASSERT(table != NULL);
    avx512_emulated = table;
}

static bool cpu_probe(q_cpu_isa isa) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    unsigned a, b, c, d;   /* F16C via CPUID: clang 14 lacks the builtin's "f16c" name */
    const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
    if (isa == Q_CPU_ISA_AVX2) return avx2;
    /* The builtin also checks that the OS saves the ZMM state; VNNI by CPUID (leaf 7,
     * ECX bit 11): clang 14's builtin lacks the name. Skylake-SP (no VNNI) stays on AVX2. */
    if (isa == Q_CPU_ISA_AVX512)
        return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (c & (1u << 11));
#endif
    return isa == Q_CPU_ISA_SCALAR;
}

/* cpu_probe, once per set: CPUID is serializing and, in a VM, traps to the hypervisor
 * (microseconds), and the matmul path asks per call (q_matmul_traits_get, the activation
 * converter). Every thread computes the same answer, so a race only repeats the probe. */
static bool cpu_runs(q_cpu_isa isa) {
    if (isa == Q_CPU_ISA_AVX512 && avx512_emulated) return cpu_runs(Q_CPU_ISA_AVX2);   /* emulated over AVX2 */
    static atomic_int known[Q_CPU_ISA_COUNT];   /* 0 = not probed, 1 = no, 2 = yes */
    int k = atomic_load_explicit(&known[isa], memory_order_relaxed);
    if (k == 0) {
        k = cpu_probe(isa) ? 2 : 1;
        atomic_store_explicit(&known[isa], k, memory_order_relaxed);
    }
    return k == 2;
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
    if (isa == Q_CPU_ISA_AVX512 && avx512_emulated) return avx512_emulated;
    return (unsigned)isa < Q_CPU_ISA_COUNT ? isa_tables[isa] : NULL;
}

/* Type t's row in set isa: its own, or the nearest set below that has one (a set lists
 * only the kernels it adds). NULL when no set has the type. */
static const q_matmul_traits *matmul_row(q_type t, q_cpu_isa isa) {
    for (int i = (int)isa; i >= 0; i--) {
        const q_matmul_traits *tab = isa_table((q_cpu_isa)i);
        if (tab && tab[t].vec_dot) return &tab[t];
    }
    return NULL;
}

const q_matmul_traits *q_matmul_traits_isa(q_type t, q_cpu_isa isa) {
    if (!isa_table(isa) || (unsigned)t >= Q_TYPE_COUNT) return NULL;
    const q_matmul_traits *row = matmul_row(t, isa);
    /* The activation conversion must exist too (F32 needs none). */
    if (!row || (row->vec_dot_type != Q_TYPE_F32 && !q_cpu_act_quantizer(row->vec_dot_type))) return NULL;
    return row;
}

const q_matmul_traits *q_matmul_traits_get(q_type t) {
    return q_matmul_traits_isa(t, q_cpu_isa_best());
}

size_t q_matmul_wsize(q_type wtype, int64_t n_in, int32_t n_tok) {
    const q_matmul_traits *mt = q_matmul_traits_get(wtype);
    if (!mt || mt->vec_dot_type == Q_TYPE_F32) return 0;
    return q_row_size(mt->vec_dot_type, n_in) * (size_t)n_tok;
}

/* One pool dispatch runs a whole matmul group (the weights that share an input: q/k/v,
 * gate/up), with the activation conversion folded in as a first phase
 * (pool_run_then): conversion tasks of MATMUL_CONV_ROWS activation rows each, then the
 * output tiles, token tile major, then weight, then row tile. Decode (one token)
 * converts its one row on the caller before the dispatch (n_conv = 0). */
enum { MATMUL_MAX_W = 4, MATMUL_CONV_ROWS = 8 };

typedef struct matmul_job {
    const q_matmul_traits *mt[MATMUL_MAX_W];
    q_gemm_fn       xgemm[MATMUL_MAX_W];   /* the x8 tile of a repacked weight, else NULL */
    const q_tensor *w[MATMUL_MAX_W];
    float          *y[MATMUL_MAX_W];
    int64_t         ldy[MATMUL_MAX_W];
    int64_t         first[MATMUL_MAX_W + 1];   /* row-tile index where weight i starts; [n_w] = row tiles in all */
    int32_t         n_w;
    int32_t         rows;      /* output rows per tile task */
    q_type          vt;        /* the group's vec_dot_type */
    q_from_float_fn quant;     /* its converter (NULL for F32) */
    int64_t         n_in;
    const float    *x;         /* input rows (stride ldx floats), for the conversion tasks */
    int64_t         ldx;
    const uint8_t  *act;       /* converted activations, n_tok rows of act_row bytes */
    size_t          act_row;
    int32_t         n_tok;
    int64_t         n_conv;    /* conversion tasks, the dispatch's first phase */
} matmul_job;

/* A tile task is ROWS output rows by TOKS tokens. TOKS keeps a tile's activations
 * (64 Q8_0 rows of 2048 inputs = 136 KiB) in L2 while its weight rows stream past.
 * Prefill tiles are 32 rows (the gemm kernels share one activation prep over 32 rows:
 * ~9% faster than two 16-row tiles). Decode (one token) gets one tile column and
 * threads split the rows in tiles of MATMUL_ROWS_DECODE: small enough that the two
 * threads of a 256-row K/V projection still get 8 tiles each, and that the last tile
 * handed out is short (the threads finish within one tile of each other). Both row
 * counts are multiples of 8, so a tile of a repacked (x8) weight is whole row groups. */
enum { MATMUL_ROWS_PER_TASK = 32, MATMUL_ROWS_DECODE = 16, MATMUL_TOKS_PER_TASK = 64 };
_Static_assert(MATMUL_ROWS_PER_TASK % Q_REPACK_ROWS == 0 && MATMUL_ROWS_DECODE % Q_REPACK_ROWS == 0,
               "row tiles must be whole x8 row groups");

static void matmul_convert_rows(const matmul_job *j, int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
        uint8_t *dst = (uint8_t *)j->act + (size_t)t * j->act_row;
        if (j->vt == Q_TYPE_F32) memcpy(dst, j->x + t * j->ldx, j->act_row);
        else j->quant(j->x + t * j->ldx, dst, j->n_in);
    }
}

static void matmul_convert_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const matmul_job *j = ctx;
    const int64_t t0 = task * MATMUL_CONV_ROWS;
    matmul_convert_rows(j, t0, Q_MIN(j->n_tok, t0 + MATMUL_CONV_ROWS));
}

static void matmul_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const matmul_job *j = ctx;
    const int64_t n_rt = j->first[j->n_w];
    const int64_t ct = task / n_rt;
    int64_t rt = task % n_rt;
    int32_t wi = 0;
    while (rt >= j->first[wi + 1]) wi++;
    rt -= j->first[wi];
    const q_tensor *w = j->w[wi];
    const int64_t n_out = w->ne[1];
    const int64_t r0 = rt * j->rows, r1 = Q_MIN(n_out, r0 + j->rows);
    const int64_t c0 = ct * MATMUL_TOKS_PER_TASK, c1 = Q_MIN(j->n_tok, c0 + MATMUL_TOKS_PER_TASK);
    const uint8_t *wd = (const uint8_t *)w->data + (size_t)r0 * w->row_bytes;
    const uint8_t *act = j->act + (size_t)c0 * j->act_row;
    const int64_t ldy = j->ldy[wi];
    float *y = j->y[wi] + c0 * ldy + r0;
    const q_matmul_traits *mt = j->mt[wi];
    if (j->xgemm[wi]) {   /* x8: row r0 starts group r0 / 8 at the same byte offset */
        j->xgemm[wi](j->n_in, (int32_t)(r1 - r0), (int32_t)(c1 - c0), wd, w->row_bytes, act, j->act_row, y, ldy);
        return;
    }
    if (mt->gemm) {
        mt->gemm(j->n_in, (int32_t)(r1 - r0), (int32_t)(c1 - c0), wd, w->row_bytes, act, j->act_row, y, ldy);
        return;
    }
    for (int64_t r = 0; r < r1 - r0; r++)
        for (int64_t c = 0; c < c1 - c0; c++)
            mt->vec_dot(j->n_in, &y[c * ldy + r], wd + (size_t)r * w->row_bytes, act + (size_t)c * j->act_row);
}

/* Runs the group w[0..n_w) (all with vec_dot_type vt and row length n_in) as one dispatch. */
static void matmul_group(q_exec *ex, int32_t n_w, const q_tensor *const *w, const q_matmul_traits *const *mt,
                         const float *x, int64_t ldx, float *const *y, const int64_t *ldy, int32_t n_tok) {
    Q_ASSERT(n_w >= 1 && n_w <= MATMUL_MAX_W);
    const int64_t n_in = w[0]->ne[0];
    matmul_job j = { .n_w = n_w, .vt = mt[0]->vec_dot_type, .n_in = n_in, .x = x, .ldx = ldx, .n_tok = n_tok,
                     .rows = n_tok == 1 ? MATMUL_ROWS_DECODE : MATMUL_ROWS_PER_TASK };
    if (j.vt != Q_TYPE_F32) j.quant = q_cpu_act_quantizer(j.vt);
    for (int32_t i = 0; i < n_w; i++) {
        j.w[i] = w[i];
        j.mt[i] = mt[i];
        if (w[i]->layout != Q_LAYOUT_ROWS) {
            const q_repack_traits *rt = q_repack_traits_get(w[i]->type);
            Q_ASSERT(rt && rt->layout == w[i]->layout);   /* repacked by this kernel set at load */
            j.xgemm[i] = rt->gemm;
        }
        j.y[i] = y[i];
        j.ldy[i] = ldy[i];
        j.first[i + 1] = j.first[i] + (w[i]->ne[1] + j.rows - 1) / j.rows;
    }
    if (j.vt == Q_TYPE_F32 && ldx == n_in) {
        j.act = (const uint8_t *)x;
        j.act_row = (size_t)n_in * sizeof(float);
    } else {
        j.act_row = j.vt == Q_TYPE_F32 ? (size_t)n_in * sizeof(float) : q_row_size(j.vt, n_in);
        Q_ASSERT(j.act_row * (size_t)n_tok <= ex->wdata_size);
        j.act = ex->wdata;
        if (n_tok == 1) matmul_convert_rows(&j, 0, 1);   /* decode: one row, on the caller */
        else j.n_conv = (n_tok + MATMUL_CONV_ROWS - 1) / MATMUL_CONV_ROWS;
    }
    const int64_t n_col_tasks = (n_tok + MATMUL_TOKS_PER_TASK - 1) / MATMUL_TOKS_PER_TASK;
    ex->n_dispatch++;
    pool_run_then(ex->pool, matmul_convert_task, j.n_conv, matmul_task, j.first[n_w] * n_col_tasks, &j);
}

void q_cpu_matmul(q_exec *ex, const q_tensor *w, const float *x, int64_t ldx,
                  float *y, int64_t ldy, int32_t n_tok) {
    const q_matmul_traits *mt = q_matmul_traits_get(w->type);
    Q_ASSERT(mt);   /* checked at model load */
    matmul_group(ex, 1, &w, &mt, x, ldx, &y, &ldy, n_tok);
}

void q_cpu_matmul_multi(q_exec *ex, int32_t n_w, const q_tensor *const *w, const float *x, int64_t ldx,
                        float *const *y, const int64_t *ldy, int32_t n_tok) {
    /* Consecutive weights with the same activation type and row length share a conversion
     * and a dispatch (a mixed group, e.g. F16 beside Q4_K, splits where the type changes). */
    for (int32_t i0 = 0; i0 < n_w;) {
        const q_matmul_traits *mt[MATMUL_MAX_W];
        mt[0] = q_matmul_traits_get(w[i0]->type);
        Q_ASSERT(mt[0]);
        int32_t k = 1;
        while (k < MATMUL_MAX_W && i0 + k < n_w && w[i0 + k]->ne[0] == w[i0]->ne[0]) {
            mt[k] = q_matmul_traits_get(w[i0 + k]->type);
            Q_ASSERT(mt[k]);
            if (mt[k]->vec_dot_type != mt[0]->vec_dot_type) break;
            k++;
        }
        matmul_group(ex, k, w + i0, mt, x, ldx, y + i0, ldy + i0, n_tok);
        i0 += k;
    }
}

void q_exec_parallel(q_exec *ex, q_task_fn fn, void *ctx, int64_t n) {
    ex->n_dispatch++;
    pool_run(ex->pool, fn, ctx, n);
}
