/* ops.c — the CPU backend's op table and its elementwise / row ops: get_rows, RMSNorm,
 * RoPE, SwiGLU, scaled add, softmax. The scalar kernels here are the reference of the
 * row-kernel table (cpu/ops.h); each op runs the row of the best kernel set (AVX2 in
 * cpu/ops_avx2.c, bit-identical). They follow ggml's CPU arithmetic where it matters for
 * matching llama.cpp (RMSNorm sums in double, RoPE angles advanced by repeated
 * multiplication in float, the rotation fused the way ggml's compiler fuses it). Owns no
 * memory. */
#include <math.h>
#include <string.h>

#include "core/base.h"
#include "cpu/backend.h"
#include "cpu/ops.h"
#include "runtime/kv_cache.h"

void q_cpu_matmul(q_exec *ex, const q_tensor *w, const float *x, int64_t ldx,
                  float *y, int64_t ldy, int32_t n_tok);
void q_cpu_matmul_multi(q_exec *ex, int32_t n_w, const q_tensor *const *w, const float *x, int64_t ldx,
                        float *const *y, const int64_t *ldy, int32_t n_tok);
void q_cpu_attention(q_exec *ex, const q_attn_args *a, const q_ubatch *ub,
                     const float *q, float *out);
void q_cpu_kv_store(q_kv_cache *kv, int32_t il, const float *k, const float *v,
                    const int32_t *cells, int32_t n_tok);

static void cpu_get_rows(const q_tensor *w, const q_token *ids, int32_t n, float *out) {
    const q_type_traits *tt = q_type_get(w->type);
    Q_ASSERT(tt && tt->to_float);
    for (int32_t i = 0; i < n; i++) {
        Q_ASSERT(ids[i] >= 0 && ids[i] < w->ne[1]);
        tt->to_float((const uint8_t *)w->data + (size_t)ids[i] * w->row_bytes,
                     out + (int64_t)i * w->ne[0], w->ne[0]);
    }
}

/* ggml_rms_norm then a multiply by the weight: the mean of squares is summed in double
 * and the reciprocal taken in float. */
static void scalar_rmsnorm(float *y, const float *x, const float *w, int32_t n_tok, int32_t n,
                           float eps) {
    for (int32_t t = 0; t < n_tok; t++) {
        const float *xr = x + (int64_t)t * n;
        float *yr = y + (int64_t)t * n;
        double ss = 0.0;
        for (int32_t i = 0; i < n; i++) ss += (double)(xr[i] * xr[i]);
        const float mean = (float)(ss / n);
        const float scale = 1.0f / sqrtf(mean + eps);
        for (int32_t i = 0; i < n; i++) yr[i] = (xr[i] * scale) * w[i];
    }
}

/* YaRN ramp: 1 below the low correction dim, 0 above the high one, linear between. */
static float rope_yarn_ramp(float low, float high, int i0) {
    const float y = ((float)(i0 / 2) - low) / Q_MAX(0.001f, high - low);
    return 1.0f - Q_MIN(1.0f, Q_MAX(0.0f, y));
}

/* cos/sin of pair i0's angle for one position, with linear and YaRN scaling. The YaRN
 * mix is one FMA (theta_interp * (1 - mix) fused, theta_extrap * mix rounded), as GCC
 * contracts ggml's expression; checked bit-identical against the reference build. */
static void rope_angle(const q_rope *r, float theta_extrap, int i0, float *c, float *s) {
    const float theta_interp = r->freq_scale * theta_extrap;
    float theta = theta_interp, mscale = r->attn_factor;
    if (r->ext_factor != 0.0f) {
        const float mix = rope_yarn_ramp(r->corr_dims[0], r->corr_dims[1], i0) * r->ext_factor;
        theta = fmaf(theta_interp, 1.0f - mix, theta_extrap * mix);
        mscale *= 1.0f + 0.1f * logf(1.0f / r->freq_scale);
    }
    *c = cosf(theta) * mscale;
    *s = sinf(theta) * mscale;
}

/* NORM rotates adjacent pairs; NEOX pairs i with i + n_rot/2. ggml's build (gnu11,
 * -march=native) contracts each line's first product and the add/sub into one FMA;
 * rounding x0 * c separately moves outputs by an ulp, and an ulp in K can flip its F16
 * rounding in the cache. */
static void scalar_rope_head(float *v, const float *cs, int32_t n_rot, q_rope_mode mode) {
    for (int32_t i0 = 0; i0 < n_rot; i0 += 2) {
        const int32_t a = mode == Q_ROPE_NORM ? i0 : i0 / 2;
        const int32_t b = mode == Q_ROPE_NORM ? i0 + 1 : i0 / 2 + n_rot / 2;
        const float x0 = v[a], x1 = v[b], c = cs[i0], s = cs[i0 + 1];
        v[a] = fmaf(x0, c, -(x1 * s));
        v[b] = fmaf(x0, s, x1 * c);
    }
}

enum { ROPE_MAX_ROT = 1024 };

static const q_cpu_row_ops *row_ops(void);

static void cpu_rope(float *x, int32_t n_tok, int64_t ld, int32_t n_head, int32_t head_dim,
                     const q_pos *pos, const q_rope *r) {
    if (r->mode == Q_ROPE_NONE) return;
    const int32_t n_rot = r->n_rot;
    Q_ASSERT(n_rot <= head_dim && n_rot % 2 == 0 && n_rot <= ROPE_MAX_ROT);
    const float theta_scale = powf(r->freq_base, -2.0f / (float)n_rot);
    float cs[ROPE_MAX_ROT];   /* (n_rot/2) x {cos, sin} */
    for (int32_t t = 0; t < n_tok; t++) {
        float theta = (float)pos[t];
        for (int32_t i0 = 0; i0 < n_rot; i0 += 2) {
            const float ff = r->freq_factors ? r->freq_factors[i0 / 2] : 1.0f;
            rope_angle(r, theta / ff, i0, &cs[i0], &cs[i0 + 1]);
            theta *= theta_scale;
        }
        const q_cpu_row_ops *ro = row_ops();
        for (int32_t h = 0; h < n_head; h++) ro->rope_head(x + (int64_t)t * ld + (int64_t)h * head_dim, cs, n_rot, r->mode);
    }
}

/* ggml's AVX-512 SiLU runs its vector exp over whole groups of 16 in a row and the C
 * library's expf over the rest of the row. */
static void scalar_swiglu(float *g, const float *u, int32_t n_rows, int32_t n_cols) {
    const int32_t n_vec = n_cols & ~15;
    for (int32_t r = 0; r < n_rows; r++) {
        float *gr = g + (int64_t)r * n_cols;
        const float *ur = u + (int64_t)r * n_cols;
        for (int32_t i = 0; i < n_cols; i++) {
            const float e = i < n_vec ? q_cpu_expf(-gr[i]) : expf(-gr[i]);
            gr[i] = (gr[i] / (1.0f + e)) * ur[i];
        }
    }
}

static void scalar_add_scaled(float *x, const float *y, float s, int64_t n) {
    if (s == 1.0f) {
        for (int64_t i = 0; i < n; i++) x[i] += y[i];
    } else {
        for (int64_t i = 0; i < n; i++) {
            const float ys = y[i] * s;   /* ggml_scale, then ggml_add */
            x[i] += ys;
        }
    }
}

static void scalar_scale(float *x, float s, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] *= s;
}

/* ggml_soft_max: max, exp (the AVX-512 exp over whole groups of 16, the C library's over
 * the rest), the sum in double, then a multiply by the float reciprocal. */
static void scalar_softmax(float *x, int32_t n_rows, int32_t n_cols) {
    const int32_t n_vec = n_cols & ~15;
    for (int32_t r = 0; r < n_rows; r++) {
        float *v = x + (int64_t)r * n_cols, max = -INFINITY;
        for (int32_t i = 0; i < n_cols; i++) max = Q_MAX(max, v[i]);
        double sum = 0.0;
        for (int32_t i = 0; i < n_cols; i++) {
            v[i] = i < n_vec ? q_cpu_expf(v[i] - max) : expf(v[i] - max);
            sum += (double)v[i];
        }
        const float inv = (float)(1.0 / sum);
        for (int32_t i = 0; i < n_cols; i++) v[i] *= inv;
    }
}

static void scalar_expf(float *dst, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = q_cpu_expf(src[i]);
}

static const q_cpu_row_ops row_ops_scalar = {
    .rmsnorm    = scalar_rmsnorm,
    .rope_head  = scalar_rope_head,
    .swiglu     = scalar_swiglu,
    .add_scaled = scalar_add_scaled,
    .scale      = scalar_scale,
    .softmax    = scalar_softmax,
    .expf       = scalar_expf,
};

static const q_cpu_row_ops *const row_ops_tables[Q_CPU_ISA_COUNT] = {
    [Q_CPU_ISA_SCALAR] = &row_ops_scalar,
#if defined(__x86_64__)
    [Q_CPU_ISA_AVX2]   = &q_cpu_row_ops_avx2,
#endif
};

const q_cpu_row_ops *q_cpu_row_ops_isa(q_cpu_isa isa) {
    return (unsigned)isa < Q_CPU_ISA_COUNT ? row_ops_tables[isa] : NULL;
}

/* The best set's row, or the next set down that has one (a set may have SIMD matmuls
 * before it has SIMD row ops). */
static const q_cpu_row_ops *row_ops(void) {
    for (int isa = (int)q_cpu_isa_best(); isa > 0; isa--)
        if (row_ops_tables[isa]) return row_ops_tables[isa];
    return &row_ops_scalar;
}

static void cpu_rmsnorm(float *y, const float *x, const float *w, int32_t n_tok, int32_t n, float eps) {
    row_ops()->rmsnorm(y, x, w, n_tok, n, eps);
}
static void cpu_swiglu(float *g, const float *u, int32_t n_rows, int32_t n_cols) {
    row_ops()->swiglu(g, u, n_rows, n_cols);
}
static void cpu_add_scaled(float *x, const float *y, float s, int64_t n) { row_ops()->add_scaled(x, y, s, n); }
static void cpu_scale(float *x, float s, int64_t n) { row_ops()->scale(x, s, n); }
static void cpu_softmax(float *x, int32_t n_rows, int32_t n_cols) { row_ops()->softmax(x, n_rows, n_cols); }

const q_backend q_backend_cpu = {
    .name       = "cpu-scalar",
    .matmul     = q_cpu_matmul,
    .matmul_multi = q_cpu_matmul_multi,
    .get_rows   = cpu_get_rows,
    .rmsnorm    = cpu_rmsnorm,
    .rope       = cpu_rope,
    .swiglu     = cpu_swiglu,
    .add_scaled = cpu_add_scaled,
    .scale      = cpu_scale,
    .softmax    = cpu_softmax,
    .kv_store   = q_cpu_kv_store,
    .attention  = q_cpu_attention,
};
