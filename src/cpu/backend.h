/* backend.h — the op table a forward pass calls, and the CPU execution context.
 *
 * Models never call kernels directly: they call through a q_backend (a vtable of ops
 * with one signature per op), so a SIMD or GPU backend is one more table. The CPU
 * backend's ops reproduce ggml's CPU rounding steps (see cpu/matmul.c, cpu/attention.c)
 * because the goldens are llama.cpp's outputs.
 *
 * q_exec owns the thread pool and the scratch memory (quantized activations, attention
 * rows), sized once at context creation; ops never allocate. */
#ifndef QUARREL_CPU_BACKEND_H
#define QUARREL_CPU_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

struct pool;
struct q_kv_cache;

typedef struct q_exec {
    const struct q_backend *be;
    struct pool *pool;        /* NULL = run on the caller only */
    int32_t      n_threads;
    void        *wdata;       /* activations converted to a vec_dot_type: (n_ubatch, max_in) */
    size_t       wdata_size;
    float       *att;         /* attention scratch: n_threads + 1 slots of att_stride floats
                               * (cpu/attention.h: q_cpu_attention_stride) */
    size_t       att_stride;  /* floats per slot */
    uint64_t     n_dispatch;  /* q_exec_parallel calls so far (bench --profile counts them) */
} q_exec;

/* Attention of one layer for a ubatch whose K/V are already in the cache. */
typedef struct q_attn_args {
    const struct q_kv_cache *kv;
    int32_t   layer;
    int32_t   n_head;
    int32_t   n_head_kv;
    int32_t   head_dim;
    float     scale;          /* applied to q.k before the mask and softmax */
    int32_t   swa_window;     /* 0 = off; else key p0 visible from p1 iff p1 - p0 < window */
} q_attn_args;

typedef struct q_backend {
    const char *name;
    /* y(t, r) = W(r, :) . x(t, :) for t < n_tok and r < W.ne[1]; x rows have stride ldx
     * floats and W.ne[0] elements; y rows stride ldy. Activations are first converted to
     * W's vec_dot_type, exactly as ggml does. */
    void (*matmul)(q_exec *ex, const q_tensor *w, const float *x, int64_t ldx,
                   float *y, int64_t ldy, int32_t n_tok);
    /* matmul of one input by n_w weights (same ne[0]): y[i](t, r) = W[i](r, :) . x(t, :),
     * y[i] rows stride ldy[i]. Results equal n_w matmul calls; the CPU backend converts
     * x once and runs every weight's tiles in one pool dispatch. NULL = call matmul n_w
     * times (q_backend_matmul_multi does the fallback). */
    void (*matmul_multi)(q_exec *ex, int32_t n_w, const q_tensor *const *w, const float *x, int64_t ldx,
                         float *const *y, const int64_t *ldy, int32_t n_tok);
    /* out(i, :) = dequantized row ids[i] of W (ne[0] floats each). */
    void (*get_rows)(const q_tensor *w, const q_token *ids, int32_t n, float *out);
    /* y(t, :) = x(t, :) / sqrt(mean(x(t,:)^2) + eps) * w; y may equal x. */
    void (*rmsnorm)(float *y, const float *x, const float *w, int32_t n_tok, int32_t n, float eps);
    /* Rotates each head of x (n_tok rows of stride ld, n_head heads of head_dim) by pos. */
    void (*rope)(float *x, int32_t n_tok, int64_t ld, int32_t n_head, int32_t head_dim,
                 const q_pos *pos, const q_rope *r);
    /* g = silu(g) * u, elementwise over n_rows rows of n_cols. */
    void (*swiglu)(float *g, const float *u, int32_t n_rows, int32_t n_cols);
    /* x += s * y (s == 1: plain add), elementwise over n. */
    void (*add_scaled)(float *x, const float *y, float s, int64_t n);
    /* x *= s. */
    void (*scale)(float *x, float s, int64_t n);
    /* Each of n_rows rows of n_cols becomes softmax(row). */
    void (*softmax)(float *x, int32_t n_rows, int32_t n_cols);
    /* Writes K and V rows (n_tok, n_head_kv*head_dim) of layer il into cells. */
    void (*kv_store)(struct q_kv_cache *kv, int32_t il, const float *k, const float *v,
                     const int32_t *cells, int32_t n_tok);
    /* out(t, h*hd..) = softmax(scale * q_h . K + mask) V over the cache, per token. */
    void (*attention)(q_exec *ex, const q_attn_args *a, const q_ubatch *ub,
                      const float *q, float *out);
} q_backend;

extern const q_backend q_backend_cpu;

/* be->matmul_multi, or n_w be->matmul calls where the backend has none. */
static inline void q_backend_matmul_multi(const q_backend *be, q_exec *ex, int32_t n_w, const q_tensor *const *w,
                                          const float *x, int64_t ldx, float *const *y, const int64_t *ldy,
                                          int32_t n_tok) {
    if (be->matmul_multi) {
        be->matmul_multi(ex, n_w, w, x, ldx, y, ldy, n_tok);
        return;
    }
    for (int32_t i = 0; i < n_w; i++) be->matmul(ex, w[i], x, ldx, y[i], ldy[i], n_tok);
}

/* Runs fn(ctx, task, thread) for task in [0, n) on the exec's threads. */
typedef void (*q_task_fn)(void *ctx, int64_t i_task, int i_thread);
void q_exec_parallel(q_exec *ex, q_task_fn fn, void *ctx, int64_t n);

/* ---- matmul type table (cpu/matmul.c) ---- */

/* s = x . y over n elements; x is a weight row of type W, y an activation row already
 * converted to W's vec_dot_type. Integer block dot products as ggml's vec_dot. */
typedef void (*q_vec_dot_fn)(int64_t n, float *s, const void *x, const void *y);

/* Tile product: y[c * ldy + r] = W(r, :) . a(c, :) for r < nr, c < nc, over n elements.
 * W rows start at w with stride ws bytes; activation rows (already in vec_dot_type) at a
 * with stride as bytes. Each output must be bit-identical to vec_dot on the same rows:
 * a tile kernel only changes which loads are shared (a weight block decoded once for
 * several activations, several rows' accumulators in one register), never the order
 * in which one output is summed. */
typedef void (*q_gemm_fn)(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws,
                          const void *a, size_t as, float *y, int64_t ldy);

typedef struct q_matmul_traits {
    q_type       vec_dot_type;   /* what activations are converted to */
    q_vec_dot_fn vec_dot;        /* one output */
    q_gemm_fn    gemm;           /* a tile of outputs; NULL = vec_dot per output */
} q_matmul_traits;

/* Kernel sets: the portable reference and, on x86, AVX2+FMA+F16C and AVX-512 (F/BW/VL).
 * Every set gives bit-identical results (tests/test_matmul.c). */
typedef enum q_cpu_isa {
    Q_CPU_ISA_SCALAR = 0,
    Q_CPU_ISA_AVX2,
    Q_CPU_ISA_AVX512,
    Q_CPU_ISA_COUNT
} q_cpu_isa;

/* "scalar", "avx2", "avx512". */
const char *q_cpu_isa_name(q_cpu_isa isa);
/* Whether this build has the set and this CPU runs it. */
bool q_cpu_isa_supported(q_cpu_isa isa);
/* The set every kernel uses, chosen once: the one named by QUARREL_CPU=scalar|avx2|avx512,
 * else the best supported one. */
q_cpu_isa q_cpu_isa_best(void);
/* Fails when QUARREL_CPU names an unknown set or one this machine cannot run (model load
 * calls it: a benchmark that silently ran another set would lie). */
q_status q_cpu_check(q_error *err);

/* Tests only: on a CPU that runs AVX2 but not AVX-512, the AVX-512 set becomes available
 * and runs table (tests/avx512_emu_tables.h: its kernels' emulated build) instead of its
 * own; call before any kernel set is asked for. */
void q_cpu_emulate_avx512(const q_matmul_traits *table);
/* Row of weight type t for the best ISA, or NULL when the CPU cannot multiply by t. */
const q_matmul_traits *q_matmul_traits_get(q_type t);
/* Row of weight type t in a given ISA's table, or the nearest set's below when the ISA
 * lists no kernel of its own for t (NULL if that ISA is not built here). */
const q_matmul_traits *q_matmul_traits_isa(q_type t, q_cpu_isa isa);

/* Converts an activation row to vec_dot_type vt as ggml's x86 CPU build does (cpu/act_quant.c),
 * with the best kernel set's converter (every set's output is bit-identical). */
q_from_float_fn q_cpu_act_quantizer(q_type vt);
/* The converter of a given kernel set (sets without their own get the scalar one). */
q_from_float_fn q_cpu_act_quantizer_isa(q_type vt, q_cpu_isa isa);
/* exp bit-identical to ggml's AVX-512 softmax / SiLU exp (cpu/act_quant.c). */
float q_cpu_expf(float x);

/* Bytes of activation scratch a matmul of row length n_in over n_tok rows needs. */
size_t q_matmul_wsize(q_type wtype, int64_t n_in, int32_t n_tok);

#endif
