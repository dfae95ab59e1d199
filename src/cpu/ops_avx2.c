/* ops_avx2.c — the AVX2+FMA row kernels (cpu/ops.h): RMSNorm, RoPE rotation, SwiGLU,
 * scaled add, scale, softmax and exp, each bit-identical to its scalar twin in cpu/ops.c
 * (tests/test_ops.c): the same IEEE operations per element, fused exactly where the
 * scalar code fuses, and the reductions in the scalar order. Owns no memory. Empty on
 * other architectures. */
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/base.h"
#include "cpu/ops.h"

#if defined(__x86_64__)
#include "cpu/avx2_begin.h"

#include "cpu/simd_avx2.h"

/* The sum of squares stays a sequential double sum (ggml's order; a double add chain,
 * about 1 ns per element); the scaling is vectorized. */
static void avx2_rmsnorm(float *y, const float *x, const float *w, int32_t n_tok, int32_t n, float eps) {
    for (int32_t t = 0; t < n_tok; t++) {
        const float *xr = x + (int64_t)t * n;
        float *yr = y + (int64_t)t * n;
        double ss = 0.0;
        for (int32_t i = 0; i < n; i++) ss += (double)(xr[i] * xr[i]);
        const float mean = (float)(ss / n);
        const float scale = 1.0f / sqrtf(mean + eps);
        const __m256 vs = _mm256_set1_ps(scale);
        int32_t i = 0;
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(yr + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + i), vs), _mm256_loadu_ps(w + i)));
        for (; i < n; i++) yr[i] = (xr[i] * scale) * w[i];
    }
}

/* NORM, 4 pairs per register: with x0 = v[2i], x1 = v[2i+1], c, s = cs[2i], cs[2i+1]:
 *   v[2i]   = fma(x0, c, -(x1 * s))      v[2i+1] = fma(x0, s, x1 * c)
 * i.e. fma([x0 x0], [c s], [-(x1 s), x1 c]): the fused operands are the even lane
 * duplicated and cs as stored; the rounded product is the odd lane duplicated times cs
 * with each pair swapped, negated in the even lanes. */
static void avx2_rope_head(float *v, const float *cs, int32_t n_rot, q_rope_mode mode) {
    int32_t i0 = 0;
    if (mode == Q_ROPE_NORM) {
        const __m256 neg_even = _mm256_castsi256_ps(_mm256_setr_epi32((int)0x80000000u, 0, (int)0x80000000u, 0,
                                                                      (int)0x80000000u, 0, (int)0x80000000u, 0));
        for (; i0 + 8 <= n_rot; i0 += 8) {
            const __m256 x = _mm256_loadu_ps(v + i0), c = _mm256_loadu_ps(cs + i0);
            const __m256 p = _mm256_xor_ps(_mm256_mul_ps(_mm256_movehdup_ps(x), _mm256_permute_ps(c, 0xB1)), neg_even);
            _mm256_storeu_ps(v + i0, _mm256_fmadd_ps(_mm256_moveldup_ps(x), c, p));
        }
        for (; i0 < n_rot; i0 += 2) {
            const float x0 = v[i0], x1 = v[i0 + 1], c = cs[i0], s = cs[i0 + 1];
            v[i0] = __builtin_fmaf(x0, c, -(x1 * s));
            v[i0 + 1] = __builtin_fmaf(x0, s, x1 * c);
        }
        return;
    }
    /* NEOX: pairs (i, i + n_rot/2), 8 pairs per register; cs de-interleaved into c and s */
    const int32_t half = n_rot / 2;
    int32_t i = 0;
    for (; i + 8 <= half; i += 8) {
        const __m256 lo = _mm256_loadu_ps(cs + 2 * i), hi = _mm256_loadu_ps(cs + 2 * i + 8);
        const __m256 c = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)), 0xD8));
        const __m256 s = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xDD)), 0xD8));
        const __m256 x0 = _mm256_loadu_ps(v + i), x1 = _mm256_loadu_ps(v + i + half);
        _mm256_storeu_ps(v + i, _mm256_fmsub_ps(x0, c, _mm256_mul_ps(x1, s)));
        _mm256_storeu_ps(v + i + half, _mm256_fmadd_ps(x0, s, _mm256_mul_ps(x1, c)));
    }
    for (; i < half; i++) {
        const float x0 = v[i], x1 = v[i + half], c = cs[2 * i], s = cs[2 * i + 1];
        v[i] = __builtin_fmaf(x0, c, -(x1 * s));
        v[i + half] = __builtin_fmaf(x0, s, x1 * c);
    }
}

/* silu(g) * u = (g / (1 + exp(-g))) * u; q_cpu_expf over whole groups of 16, expf after. */
static void avx2_swiglu(float *g, const float *u, int32_t n_rows, int32_t n_cols) {
    const int32_t n_vec = n_cols & ~15;
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    for (int32_t r = 0; r < n_rows; r++) {
        float *gr = g + (int64_t)r * n_cols;
        const float *ur = u + (int64_t)r * n_cols;
        for (int32_t i = 0; i < n_vec; i += 8) {
            const __m256 x = _mm256_loadu_ps(gr + i);
            const __m256 e = qs_expf8(_mm256_xor_ps(x, sign));
            _mm256_storeu_ps(gr + i, _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(one, e)), _mm256_loadu_ps(ur + i)));
        }
        for (int32_t i = n_vec; i < n_cols; i++) gr[i] = (gr[i] / (1.0f + expf(-gr[i]))) * ur[i];
    }
}

static void avx2_add_scaled(float *x, const float *y, float s, int64_t n) {
    int64_t i = 0;
    if (s == 1.0f) {
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
        for (; i < n; i++) x[i] += y[i];
        return;
    }
    const __m256 vs = _mm256_set1_ps(s);
    for (; i + 8 <= n; i += 8)   /* ggml_scale, then ggml_add: the product rounds first */
        _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_mul_ps(_mm256_loadu_ps(y + i), vs)));
    for (; i < n; i++) {
        const float ys = y[i] * s;
        x[i] += ys;
    }
}

static void avx2_scale(float *x, float s, int64_t n) {
    const __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
    for (; i < n; i++) x[i] *= s;
}

/* max (order-free), exp (q_cpu_expf over whole groups of 16, expf after), the sum in
 * double in element order (the scalar order), then the multiply by the float reciprocal. */
static void avx2_softmax(float *x, int32_t n_rows, int32_t n_cols) {
    const int32_t n_vec = n_cols & ~15;
    for (int32_t r = 0; r < n_rows; r++) {
        float *v = x + (int64_t)r * n_cols, max = -INFINITY;
        for (int32_t i = 0; i < n_cols; i++) max = Q_MAX(max, v[i]);
        const __m256 vmax = _mm256_set1_ps(max);
        for (int32_t i = 0; i < n_vec; i += 8) _mm256_storeu_ps(v + i, qs_expf8(_mm256_sub_ps(_mm256_loadu_ps(v + i), vmax)));
        for (int32_t i = n_vec; i < n_cols; i++) v[i] = expf(v[i] - max);
        double sum = 0.0;
        for (int32_t i = 0; i < n_cols; i++) sum += (double)v[i];
        const float inv = (float)(1.0 / sum);
        const __m256 vi = _mm256_set1_ps(inv);
        int32_t i = 0;
        for (; i + 8 <= n_cols; i += 8) _mm256_storeu_ps(v + i, _mm256_mul_ps(_mm256_loadu_ps(v + i), vi));
        for (; i < n_cols; i++) v[i] *= inv;
    }
}

static void avx2_expf(float *dst, const float *src, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, qs_expf8(_mm256_loadu_ps(src + i)));
    for (; i < n; i++) dst[i] = q_cpu_expf(src[i]);
}

const q_cpu_row_ops q_cpu_row_ops_avx2 = {
    .rmsnorm    = avx2_rmsnorm,
    .rope_head  = avx2_rope_head,
    .swiglu     = avx2_swiglu,
    .add_scaled = avx2_add_scaled,
    .scale      = avx2_scale,
    .softmax    = avx2_softmax,
    .expf       = avx2_expf,
};

#include "cpu/avx2_end.h"
#endif
