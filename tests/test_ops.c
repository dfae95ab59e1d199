/* test_ops.c — the CPU row kernels (cpu/ops.h) of every kernel set this machine runs
 * against the scalar reference, bit for bit, on random inputs of odd sizes (tails of
 * every length, rows that are not multiples of 8 or 16), and the scalar reference
 * itself against the formulas in double (an independent check, with error bounds):
 *   exp         relative error <= 2^-22 over the fast range; special values as expf
 *   rmsnorm     y = x / sqrt(mean(x^2) + eps) * w
 *   rope        each pair rotated by (cos, sin)
 *   swiglu      g / (1 + e^-g) * u
 *   softmax     e^(x - max) / sum
 *   add, scale  exact float arithmetic (checked elementwise)
 * The exp is also swept over a dense range including the slow-path borders (|n| = 126,
 * subnormal results, overflow) and special values (±0, ±inf, NaN).
 *
 * Attention (cpu/attention.h): the op with each set's kernels against the scalar set, bit
 * for bit, on a hand-built KV cache (F16 and F32; head dims that take every kernel path:
 * multiples of 16, of 8 only, neither; GQA groups of 1, 2, 8 and 12 heads; two sequences
 * interleaved with freed cells between them, so cell lists have gaps and partial
 * 16-chunks; sliding windows; one token and a ubatch of several; 1 and 2 threads), and
 * the scalar set against softmax(q K^T scale) V computed in double from the cache's own
 * rounded values (bound: the F16 rounding of p, 2^-11 relative). The flash path (runs of
 * tokens of one sequence, here forced at any depth) likewise: every set against the
 * scalar one bit for bit, and against the double reference (float rounding only: p is
 * not rounded there); sequences long enough for several chunks, and a decode token alone
 * (chunks split across tasks) bit-identical to the same token inside the ubatch. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/pool.h"
#include "cpu/attention.h"
#include "cpu/backend.h"
#include "cpu/ops.h"
#include "runtime/kv_cache.h"

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static float frand(void) {   /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* The sets to compare with the scalar one. */
static int other_sets(const q_cpu_row_ops *sets[Q_CPU_ISA_COUNT], q_cpu_isa isas[Q_CPU_ISA_COUNT]) {
    int n = 0;
    for (int i = 1; i < Q_CPU_ISA_COUNT; i++)
        if (q_cpu_isa_supported((q_cpu_isa)i) && q_cpu_row_ops_isa((q_cpu_isa)i)) {
            sets[n] = q_cpu_row_ops_isa((q_cpu_isa)i);
            isas[n++] = (q_cpu_isa)i;
        }
    if (!n) printf("only the scalar row kernels run here\n");
    return n;
}

static void expect_same(const char *what, q_cpu_isa isa, int size, const float *want, const float *got, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&want[i], &got[i], sizeof(float)) && !(isnan(want[i]) && isnan(got[i])))
            fail_msg("%s %s n=%d [%lld]: scalar %.9g (%a), %s %.9g (%a)", what, q_cpu_isa_name(isa), size,
                     (long long)i, want[i], want[i], q_cpu_isa_name(isa), got[i], got[i]);
}

static const int sizes[] = { 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 255, 257, 2048, 2051 };
enum { MAXN = 2051 * 3 };

static void fill(float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = frand() * scale * (i % 11 == 3 ? 20.0f : 1.0f);
}

/* ---- exp ---- */

static void test_expf(void **state) {
    (void)state;
    const q_cpu_row_ops *ref = q_cpu_row_ops_isa(Q_CPU_ISA_SCALAR), *sets[Q_CPU_ISA_COUNT];
    q_cpu_isa isas[Q_CPU_ISA_COUNT];
    const int n_sets = other_sets(sets, isas);
    enum { N = 40000 };
    float *x = malloc(N * sizeof(float)), *want = malloc(N * sizeof(float)), *got = malloc(N * sizeof(float));
    int n = 0;
    /* a dense sweep over [-104, 90] (subnormal results, the |n| = 126 borders, overflow) */
    for (int i = 0; i < 30000; i++) x[n++] = -104.0f + 194.0f * (float)i / 30000.0f;
    for (int i = 0; i < 4000; i++) x[n++] = frand() * 2.0f;   /* where softmax lives */
    const float border[] = { -87.33655f, -87.33654f, -87.5f, -88.0f, -87.0f, 87.0f, 87.5f, 88.0f, 88.72283f,
                             88.7229f, 89.0f, -103.0f, -126.0f * 0.6931472f, 126.0f * 0.6931472f };
    for (size_t i = 0; i < sizeof border / sizeof border[0]; i++) {
        x[n++] = border[i];
        x[n++] = nextafterf(border[i], INFINITY);
        x[n++] = nextafterf(border[i], -INFINITY);
    }
    const float special[] = { 0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 1e-30f, -1e-30f, 1e-45f, FLT_MAX, -FLT_MAX };
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) x[n++] = special[i];
    while (n % 8 != 3) x[n++] = frand();   /* a ragged tail */

    ref->expf(want, x, n);
    for (int i = 0; i < n; i++) {   /* the scalar reference against exp in double */
        const double e = exp((double)x[i]);
        if (isnan(x[i])) {
            if (!isnan(want[i])) fail_msg("exp(NaN) = %g", want[i]);
        } else if (e > FLT_MAX) {
            if (want[i] != INFINITY) fail_msg("exp(%a) = %a, want inf", x[i], want[i]);
        } else if (e >= 0x1p-126) {
            if (fabs(want[i] - e) > 0x1p-22 * e) fail_msg("exp(%a) = %.9g, want %.9g", x[i], want[i], e);
        } else if (fabs(want[i] - e) > 0x1p-148) {   /* subnormal: within an ulp of 2^-149 */
            fail_msg("exp(%a) = %a, want %a", x[i], want[i], e);
        }
    }
    for (int s = 0; s < n_sets; s++) {
        sets[s]->expf(got, x, n);
        expect_same("expf", isas[s], n, want, got, n);
        memcpy(got, x, (size_t)n * sizeof(float));   /* in place */
        sets[s]->expf(got, got, n);
        expect_same("expf in place", isas[s], n, want, got, n);
    }
    free(x); free(want); free(got);
}

/* ---- rmsnorm ---- */

static void test_rmsnorm(void **state) {
    (void)state;
    const q_cpu_row_ops *ref = q_cpu_row_ops_isa(Q_CPU_ISA_SCALAR), *sets[Q_CPU_ISA_COUNT];
    q_cpu_isa isas[Q_CPU_ISA_COUNT];
    const int n_sets = other_sets(sets, isas);
    float *x = malloc(MAXN * sizeof(float)), *w = malloc(MAXN * sizeof(float));
    float *want = malloc(MAXN * sizeof(float)), *got = malloc(MAXN * sizeof(float));
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        const int n = sizes[si], n_tok = 3;
        fill(x, (int64_t)n * n_tok, 2.0f);
        fill(w, n, 1.0f);
        ref->rmsnorm(want, x, w, n_tok, n, 1e-5f);
        for (int t = 0; t < n_tok; t++) {
            double ss = 0;
            for (int i = 0; i < n; i++) ss += (double)x[t * n + i] * x[t * n + i];
            const double sc = 1.0 / sqrt(ss / n + 1e-5);
            for (int i = 0; i < n; i++) {
                const double e = x[t * n + i] * sc * w[i];
                if (fabs(want[t * n + i] - e) > 1e-6 * (fabs(e) + 1e-3))
                    fail_msg("rmsnorm n=%d [%d]: %.9g, want %.9g", n, i, want[t * n + i], e);
            }
        }
        for (int s = 0; s < n_sets; s++) {
            sets[s]->rmsnorm(got, x, w, n_tok, n, 1e-5f);
            expect_same("rmsnorm", isas[s], n, want, got, (int64_t)n * n_tok);
            memcpy(got, x, sizeof(float) * (size_t)n * n_tok);   /* y == x */
            sets[s]->rmsnorm(got, got, w, n_tok, n, 1e-5f);
            expect_same("rmsnorm in place", isas[s], n, want, got, (int64_t)n * n_tok);
        }
    }
    free(x); free(w); free(want); free(got);
}

/* ---- rope ---- */

static void test_rope_head(void **state) {
    (void)state;
    const q_cpu_row_ops *ref = q_cpu_row_ops_isa(Q_CPU_ISA_SCALAR), *sets[Q_CPU_ISA_COUNT];
    q_cpu_isa isas[Q_CPU_ISA_COUNT];
    const int n_sets = other_sets(sets, isas);
    static const int rots[] = { 2, 4, 6, 8, 10, 16, 18, 22, 32, 34, 64, 80, 128 };
    float v[160], cs[160], want[160], got[160];
    for (int mode = Q_ROPE_NORM; mode <= Q_ROPE_NEOX; mode++)
        for (size_t ri = 0; ri < sizeof rots / sizeof rots[0]; ri++)
            for (int trial = 0; trial < 20; trial++) {
                const int n_rot = rots[ri], hd = n_rot + 6;   /* dims past n_rot stay */
                fill(v, hd, 3.0f);
                for (int i = 0; i < n_rot / 2; i++) {
                    const float a = frand() * 3.2f, m = trial % 3 ? 1.0f : 1.2f;
                    cs[2 * i] = cosf(a) * m;
                    cs[2 * i + 1] = sinf(a) * m;
                }
                memcpy(want, v, sizeof v);
                ref->rope_head(want, cs, n_rot, (q_rope_mode)mode);
                for (int i = 0; i < n_rot / 2; i++) {
                    const int a = mode == Q_ROPE_NORM ? 2 * i : i, b = mode == Q_ROPE_NORM ? 2 * i + 1 : i + n_rot / 2;
                    const double c = cs[2 * i], s = cs[2 * i + 1];
                    const double ea = v[a] * c - v[b] * s, eb = v[a] * s + v[b] * c;
                    if (fabs(want[a] - ea) > 1e-5 || fabs(want[b] - eb) > 1e-5)
                        fail_msg("rope mode %d n_rot %d pair %d: (%g, %g) want (%g, %g)", mode, n_rot, i, want[a],
                                 want[b], ea, eb);
                }
                for (int i = n_rot; i < hd; i++) assert_true(want[i] == v[i]);
                for (int s = 0; s < n_sets; s++) {
                    memcpy(got, v, sizeof v);
                    sets[s]->rope_head(got, cs, n_rot, (q_rope_mode)mode);
                    expect_same(mode == Q_ROPE_NORM ? "rope norm" : "rope neox", isas[s], n_rot, want, got, hd);
                }
            }
}

/* ---- swiglu ---- */

static void test_swiglu(void **state) {
    (void)state;
    const q_cpu_row_ops *ref = q_cpu_row_ops_isa(Q_CPU_ISA_SCALAR), *sets[Q_CPU_ISA_COUNT];
    q_cpu_isa isas[Q_CPU_ISA_COUNT];
    const int n_sets = other_sets(sets, isas);
    float *g = malloc(MAXN * sizeof(float)), *u = malloc(MAXN * sizeof(float));
    float *want = malloc(MAXN * sizeof(float)), *got = malloc(MAXN * sizeof(float));
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        const int n = sizes[si], rows = 3;
        fill(g, (int64_t)n * rows, 12.0f);   /* wide: exp(-g) from tiny to huge */
        fill(u, (int64_t)n * rows, 1.0f);
        if (n > 5) { g[1] = 100.0f; g[2] = -100.0f; g[4] = -89.0f; g[5] = 0.0f; }
        memcpy(want, g, sizeof(float) * (size_t)n * rows);
        ref->swiglu(want, u, rows, n);
        for (int i = 0; i < n * rows; i++) {
            const double e = (double)g[i] / (1.0 + exp(-(double)g[i])) * u[i];
            if (fabs(want[i] - e) > 1e-5 * (fabs(e) + 1e-3))
                fail_msg("swiglu n=%d [%d]: g %g u %g: %.9g, want %.9g", n, i, g[i], u[i], want[i], e);
        }
        for (int s = 0; s < n_sets; s++) {
            memcpy(got, g, sizeof(float) * (size_t)n * rows);
            sets[s]->swiglu(got, u, rows, n);
            expect_same("swiglu", isas[s], n, want, got, (int64_t)n * rows);
        }
    }
    free(g); free(u); free(want); free(got);
}

/* ---- softmax, add, scale ---- */

static void test_softmax(void **state) {
    (void)state;
    const q_cpu_row_ops *ref = q_cpu_row_ops_isa(Q_CPU_ISA_SCALAR), *sets[Q_CPU_ISA_COUNT];
    q_cpu_isa isas[Q_CPU_ISA_COUNT];
    const int n_sets = other_sets(sets, isas);
    float *x = malloc(MAXN * sizeof(float)), *want = malloc(MAXN * sizeof(float)), *got = malloc(MAXN * sizeof(float));
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        const int n = sizes[si], rows = 3;
        fill(x, (int64_t)n * rows, 8.0f);
        memcpy(want, x, sizeof(float) * (size_t)n * rows);
        ref->softmax(want, rows, n);
        for (int r = 0; r < rows; r++) {
            double mx = -INFINITY, sum = 0;
            for (int i = 0; i < n; i++) mx = fmax(mx, x[r * n + i]);
            for (int i = 0; i < n; i++) sum += exp(x[r * n + i] - mx);
            for (int i = 0; i < n; i++) {
                const double e = exp(x[r * n + i] - mx) / sum;
                /* x - max rounds in float: an error of |x - max| 2^-24 in the exponent */
                const double tol = (4e-7 + 1.2e-7 * fabs(x[r * n + i] - mx)) * e + 1e-37;
                if (fabs(want[r * n + i] - e) > tol)
                    fail_msg("softmax n=%d [%d]: %.9g, want %.9g", n, i, want[r * n + i], e);
            }
        }
        for (int s = 0; s < n_sets; s++) {
            memcpy(got, x, sizeof(float) * (size_t)n * rows);
            sets[s]->softmax(got, rows, n);
            expect_same("softmax", isas[s], n, want, got, (int64_t)n * rows);
        }
    }
    free(x); free(want); free(got);
}

static void test_add_scale(void **state) {
    (void)state;
    const q_cpu_row_ops *ref = q_cpu_row_ops_isa(Q_CPU_ISA_SCALAR), *sets[Q_CPU_ISA_COUNT];
    q_cpu_isa isas[Q_CPU_ISA_COUNT];
    const int n_sets = other_sets(sets, isas);
    float *x = malloc(MAXN * sizeof(float)), *y = malloc(MAXN * sizeof(float));
    float *want = malloc(MAXN * sizeof(float)), *got = malloc(MAXN * sizeof(float));
    static const float scales[] = { 1.0f, 0.22f, -3.0f };
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
        for (size_t k = 0; k < sizeof scales / sizeof scales[0]; k++) {
            const int n = sizes[si];
            const float sc = scales[k];
            fill(x, n, 5.0f);
            fill(y, n, 5.0f);
            memcpy(want, x, sizeof(float) * (size_t)n);
            ref->add_scaled(want, y, sc, n);
            for (int i = 0; i < n; i++) {   /* the product rounds, then the sum */
                volatile float p = y[i] * sc;
                assert_true(want[i] == x[i] + p);
            }
            for (int s = 0; s < n_sets; s++) {
                memcpy(got, x, sizeof(float) * (size_t)n);
                sets[s]->add_scaled(got, y, sc, n);
                expect_same("add_scaled", isas[s], n, want, got, n);
            }
            memcpy(want, x, sizeof(float) * (size_t)n);
            ref->scale(want, sc, n);
            for (int i = 0; i < n; i++) assert_true(want[i] == x[i] * sc);
            for (int s = 0; s < n_sets; s++) {
                memcpy(got, x, sizeof(float) * (size_t)n);
                sets[s]->scale(got, sc, n);
                expect_same("scale", isas[s], n, want, got, n);
            }
        }
    free(x); free(y); free(want); free(got);
}

/* ---- attention ---- */

typedef struct att_case {
    q_type  type;
    int32_t hd, n_head, n_head_kv, n_ctx, n_tok, swa;
} att_case;

/* A one-layer cache: cells 0..n_ctx-1 alternate between sequences 0 and 1 in runs, with
 * every 7th cell free; positions count up within each sequence. K/V random. */
static void att_cache(q_kv_cache *kv, const att_case *c, q_pos *pos_max) {
    memset(kv, 0, sizeof *kv);
    kv->n_ctx = c->n_ctx;
    kv->n_layer = 1;
    kv->n_seq_max = 2;
    kv->type = c->type;
    kv->cells = calloc((size_t)c->n_ctx, sizeof *kv->cells);
    kv->width = malloc(sizeof(int32_t));
    kv->row_bytes = malloc(sizeof(size_t));
    kv->k = malloc(sizeof(uint8_t *));
    kv->v = malloc(sizeof(uint8_t *));
    kv->width[0] = c->n_head_kv * c->hd;
    kv->row_bytes[0] = (size_t)kv->width[0] * (c->type == Q_TYPE_F16 ? 2 : 4);
    kv->k[0] = malloc(kv->row_bytes[0] * (size_t)c->n_ctx);
    kv->v[0] = malloc(kv->row_bytes[0] * (size_t)c->n_ctx);
    kv->seq_cells = malloc(sizeof(int32_t) * 2 * (size_t)c->n_ctx);
    q_pos next[2] = { 0, 0 };
    for (int32_t i = 0; i < c->n_ctx; i++) {
        kv->cells[i].pos = -1;
        for (int32_t d = 0; d < kv->width[0]; d++) {
            const float kx = frand() * 2.0f, vx = frand() * 3.0f;
            if (c->type == Q_TYPE_F16) {
                ((uint16_t *)(kv->k[0] + i * kv->row_bytes[0]))[d] = q_fp32_to_fp16(kx);
                ((uint16_t *)(kv->v[0] + i * kv->row_bytes[0]))[d] = q_fp32_to_fp16(vx);
            } else {
                ((float *)(kv->k[0] + i * kv->row_bytes[0]))[d] = kx;
                ((float *)(kv->v[0] + i * kv->row_bytes[0]))[d] = vx;
            }
        }
        if (i % 7 == 5) continue;   /* free */
        const int s = (i / 37) % 3 == 2;   /* runs of 37 cells: seq 0, 0, 1, ... */
        kv->cells[i].seq = 1ull << s;
        kv->cells[i].pos = next[s]++;
        kv->used++;
    }
    pos_max[0] = next[0] - 1;
    pos_max[1] = next[1] - 1;
    kv_cache_seq_index_build(kv, 3);
}

static void att_cache_free(q_kv_cache *kv) {
    free(kv->cells); free(kv->width); free(kv->row_bytes); free(kv->k[0]); free(kv->v[0]);
    free(kv->k); free(kv->v); free(kv->seq_cells);
}

static float att_val(const q_kv_cache *kv, const uint8_t *base, int32_t cell, int32_t i) {
    const uint8_t *row = base + (size_t)cell * kv->row_bytes[0];
    return kv->type == Q_TYPE_F16 ? q_fp16_to_fp32(((const uint16_t *)row)[i]) : ((const float *)row)[i];
}

/* softmax(q K^T scale) V in double over the visible cells, q rounded as the cache type */
static void att_reference(const q_kv_cache *kv, const att_case *c, const q_ubatch *ub, const float *q, double *out,
                          double *mag) {
    const int32_t n_rep = c->n_head / c->n_head_kv;
    double *sc = malloc(sizeof(double) * (size_t)c->n_ctx);
    for (int32_t t = 0; t < ub->n; t++)
        for (int32_t h = 0; h < c->n_head; h++) {
            const int32_t g = h / n_rep;
            double mx = -INFINITY, sum = 0;
            for (int32_t cell = 0; cell < c->n_ctx; cell++) {
                sc[cell] = -INFINITY;
                if (!kv_cache_visible(kv, cell, ub->seq[t], ub->pos[t], c->swa)) continue;
                double d = 0;
                for (int32_t i = 0; i < c->hd; i++) {
                    float qi = q[((size_t)t * c->n_head + h) * c->hd + i];
                    if (c->type == Q_TYPE_F16) qi = q_fp16_to_fp32(q_fp32_to_fp16(qi));
                    d += (double)qi * att_val(kv, kv->k[0], cell, g * c->hd + i);
                }
                sc[cell] = d / sqrt((double)c->hd);
                mx = fmax(mx, sc[cell]);
            }
            for (int32_t cell = 0; cell < c->n_ctx; cell++)
                if (sc[cell] != -INFINITY) sum += exp(sc[cell] - mx);
            for (int32_t i = 0; i < c->hd; i++) {
                double o = 0, m = 0;
                for (int32_t cell = 0; cell < c->n_ctx; cell++)
                    if (sc[cell] != -INFINITY) {
                        const double pv = exp(sc[cell] - mx) / sum * att_val(kv, kv->v[0], cell, g * c->hd + i);
                        o += pv;
                        m += fabs(pv);
                    }
                out[((size_t)t * c->n_head + h) * c->hd + i] = o;
                mag[((size_t)t * c->n_head + h) * c->hd + i] = m;
            }
        }
    free(sc);
}

static void test_attention(void **state) {
    (void)state;
    static const att_case cases[] = {
        { Q_TYPE_F16, 64, 32, 4, 300, 1, 0 },  { Q_TYPE_F16, 64, 32, 4, 300, 3, 0 },
        { Q_TYPE_F16, 64, 8, 4, 200, 2, 40 },  { Q_TYPE_F16, 80, 12, 1, 150, 1, 0 },
        { Q_TYPE_F16, 48, 6, 3, 170, 2, 0 },   { Q_TYPE_F16, 40, 4, 2, 90, 2, 0 },
        { Q_TYPE_F16, 36, 3, 1, 60, 1, 0 },    { Q_TYPE_F32, 64, 16, 2, 260, 2, 0 },
        { Q_TYPE_F32, 40, 4, 4, 80, 1, 17 },   { Q_TYPE_F32, 36, 2, 1, 50, 3, 0 },
    };
    pool *pl = pool_create(2);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const att_case *c = &cases[ci];
        q_kv_cache kv;
        q_pos pos_max[2];
        att_cache(&kv, c, pos_max);
        /* the ubatch: tokens of both sequences at their last positions (and below) */
        q_pos pos[4];
        q_seq_id seq[4];
        for (int32_t t = 0; t < c->n_tok; t++) {
            seq[t] = t % 2;
            pos[t] = pos_max[t % 2] - t / 2;
        }
        const q_ubatch ub = { .n = c->n_tok, .pos = pos, .seq = seq };
        const size_t nq = (size_t)c->n_tok * c->n_head * c->hd;
        float *q = malloc(nq * sizeof(float)), *want = malloc(nq * sizeof(float)), *got = malloc(nq * sizeof(float));
        double *ref = malloc(nq * sizeof(double)), *mag = malloc(nq * sizeof(double));
        for (size_t i = 0; i < nq; i++) q[i] = frand() * 2.5f;
        const q_attn_args a = { .kv = &kv, .layer = 0, .n_head = c->n_head, .n_head_kv = c->n_head_kv,
                                .head_dim = c->hd, .scale = 1.0f / sqrtf((float)c->hd), .swa_window = c->swa };
        q_exec ex = { .n_threads = 1, .att_stride = q_cpu_attention_stride(c->n_ctx, c->hd) };
        ex.att = malloc(ex.att_stride * 3 * sizeof(float));
        q_cpu_attention_isa(&ex, &a, &ub, q, want, Q_CPU_ISA_SCALAR, 0);
        att_reference(&kv, c, &ub, q, ref, mag);
        /* each p rounds to F16 (2^-11 relative) for an F16 cache; float sums otherwise */
        const double rel = c->type == Q_TYPE_F16 ? 0x1p-10 : 1e-5;
        for (size_t i = 0; i < nq; i++)
            if (fabs(want[i] - ref[i]) > rel * mag[i] + 1e-6)
                fail_msg("attention case %zu [%zu]: scalar %.7g, reference %.7g", ci, i, want[i], ref[i]);
        for (int isa = 1; isa < Q_CPU_ISA_COUNT; isa++) {
            if (!q_cpu_isa_supported((q_cpu_isa)isa) || !q_attn_kernels_isa((q_cpu_isa)isa)) continue;
            for (int threads = 1; threads <= 2; threads++) {
                ex.pool = threads == 2 ? pl : NULL;
                ex.n_threads = threads == 2 ? pool_n_threads(pl) : 1;
                memset(got, 0xff, nq * sizeof(float));
                q_cpu_attention_isa(&ex, &a, &ub, q, got, (q_cpu_isa)isa, 0);
                for (size_t i = 0; i < nq; i++)
                    if (memcmp(&want[i], &got[i], sizeof(float)))
                        fail_msg("attention case %zu (%s hd %d, %d/%d heads, %d tokens) %s %d threads [%zu]: scalar %.9g, got %.9g",
                                 ci, q_type_name(c->type), c->hd, c->n_head, c->n_head_kv, c->n_tok,
                                 q_cpu_isa_name((q_cpu_isa)isa), threads, i, want[i], got[i]);
            }
        }
        free(ex.att); free(q); free(want); free(got); free(ref); free(mag);
        att_cache_free(&kv);
    }
    pool_free(pl);
}

/* Flash: ubatches of runs of consecutive tokens of one sequence (the prefill shape). */
static void test_attention_flash(void **state) {
    (void)state;
    static const att_case cases[] = {
        { Q_TYPE_F16, 64, 32, 4, 400, 9, 0 },  { Q_TYPE_F16, 64, 8, 4, 300, 7, 50 }, { Q_TYPE_F16, 80, 12, 1, 200, 5, 0 },
        { Q_TYPE_F16, 48, 6, 3, 170, 11, 0 },  { Q_TYPE_F16, 36, 3, 1, 90, 4, 0 },   { Q_TYPE_F32, 64, 16, 2, 260, 6, 0 },
        { Q_TYPE_F32, 40, 4, 4, 120, 10, 23 },
        /* sequences of ~560 positions: three chunks of Q_ATT_FLASH_CHUNK, a window that hides the first */
        { Q_TYPE_F16, 64, 8, 2, 1300, 6, 0 },  { Q_TYPE_F32, 48, 6, 3, 1300, 4, 300 },
    };
    pool *pl = pool_create(2);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const att_case *c = &cases[ci];
        q_kv_cache kv;
        q_pos pos_max[2];
        att_cache(&kv, c, pos_max);
        /* two runs: the last n0 positions of sequence 0, then the last n1 of sequence 1 */
        q_pos pos[16];
        q_seq_id seq[16];
        const int32_t n0 = (c->n_tok + 1) / 2, n1 = c->n_tok - n0;
        for (int32_t t = 0; t < n0; t++) { seq[t] = 0; pos[t] = pos_max[0] - (n0 - 1 - t); }
        for (int32_t t = 0; t < n1; t++) { seq[n0 + t] = 1; pos[n0 + t] = pos_max[1] - (n1 - 1 - t); }
        const q_ubatch ub = { .n = c->n_tok, .pos = pos, .seq = seq };
        const size_t nq = (size_t)c->n_tok * c->n_head * c->hd;
        float *q = malloc(nq * sizeof(float)), *want = malloc(nq * sizeof(float)), *got = malloc(nq * sizeof(float));
        double *ref = malloc(nq * sizeof(double)), *mag = malloc(nq * sizeof(double));
        for (size_t i = 0; i < nq; i++) q[i] = frand() * 2.5f;
        const q_attn_args a = { .kv = &kv, .layer = 0, .n_head = c->n_head, .n_head_kv = c->n_head_kv,
                                .head_dim = c->hd, .scale = 1.0f / sqrtf((float)c->hd), .swa_window = c->swa };
        q_exec ex = { .n_threads = 1, .att_stride = q_cpu_attention_stride(c->n_ctx, c->hd) };
        ex.att = malloc(ex.att_stride * 3 * sizeof(float));
        q_cpu_attention_isa(&ex, &a, &ub, q, want, Q_CPU_ISA_SCALAR, 1);
        att_reference(&kv, c, &ub, q, ref, mag);
        for (size_t i = 0; i < nq; i++)
            if (fabs(want[i] - ref[i]) > 2e-5 * mag[i] + 1e-6)
                fail_msg("flash case %zu [%zu]: scalar %.7g, reference %.7g", ci, i, want[i], ref[i]);
        for (int isa = 1; isa < Q_CPU_ISA_COUNT; isa++) {
            if (!q_cpu_isa_supported((q_cpu_isa)isa) || !q_attn_kernels_isa((q_cpu_isa)isa)) continue;
            for (int threads = 1; threads <= 2; threads++) {
                ex.pool = threads == 2 ? pl : NULL;
                ex.n_threads = threads == 2 ? pool_n_threads(pl) : 1;
                memset(got, 0xff, nq * sizeof(float));
                q_cpu_attention_isa(&ex, &a, &ub, q, got, (q_cpu_isa)isa, 1);
                for (size_t i = 0; i < nq; i++)
                    if (memcmp(&want[i], &got[i], sizeof(float)))
                        fail_msg("flash case %zu (%s hd %d, %d/%d heads, %d tokens) %s %d threads [%zu]: scalar %.9g, got %.9g",
                                 ci, q_type_name(c->type), c->hd, c->n_head, c->n_head_kv, c->n_tok,
                                 q_cpu_isa_name((q_cpu_isa)isa), threads, i, want[i], got[i]);
            }
        }
        /* each sequence's last token decoded alone (its chunks split across tasks, folded by
         * the caller) gives the bits it had in the ubatch (one task folding them all) */
        const size_t row = (size_t)c->n_head * c->hd;
        for (int32_t which = 0; which < 2; which++) {
            const int32_t t = which ? c->n_tok - 1 : n0 - 1;
            const q_ubatch one = { .n = 1, .pos = &pos[t], .seq = &seq[t] };
            for (int isa = 0; isa < Q_CPU_ISA_COUNT; isa++) {
                if (!q_cpu_isa_supported((q_cpu_isa)isa) || !q_attn_kernels_isa((q_cpu_isa)isa)) continue;
                for (int threads = 1; threads <= 2; threads++) {
                    ex.pool = threads == 2 ? pl : NULL;
                    ex.n_threads = threads == 2 ? pool_n_threads(pl) : 1;
                    memset(got, 0xff, row * sizeof(float));
                    q_cpu_attention_isa(&ex, &a, &one, q + (size_t)t * row, got, (q_cpu_isa)isa, 1);
                    for (size_t i = 0; i < row; i++)
                        if (memcmp(&want[(size_t)t * row + i], &got[i], sizeof(float)))
                            fail_msg("flash case %zu decode of token %d, %s %d threads [%zu]: ubatch %.9g, alone %.9g", ci,
                                     t, q_cpu_isa_name((q_cpu_isa)isa), threads, i, want[(size_t)t * row + i], got[i]);
                }
            }
        }
        ex.pool = NULL;
        ex.n_threads = 1;
        memset(got, 0xff, nq * sizeof(float));   /* below the threshold: the exact path */
        q_cpu_attention_isa(&ex, &a, &ub, q, got, Q_CPU_ISA_SCALAR, c->n_ctx + 1);
        const double rel = c->type == Q_TYPE_F16 ? 0x1p-10 : 2e-5;
        for (size_t i = 0; i < nq; i++)
            if (fabs(got[i] - ref[i]) > rel * mag[i] + 1e-6)
                fail_msg("flash case %zu exact path [%zu]: %.7g, reference %.7g", ci, i, got[i], ref[i]);
        free(ex.att); free(q); free(want); free(got); free(ref); free(mag);
        att_cache_free(&kv);
    }
    pool_free(pl);
}

/* kv_store's F16 conversion of every set: round to nearest even, as q_fp32_to_fp16. */
static void test_store_f16(void **state) {
    (void)state;
    enum { N = 4099 };
    float *x = malloc(N * sizeof(float));
    uint16_t want[N], got[N];
    for (int i = 0; i < N; i++) {
        const float m = i % 5 == 0 ? 1e-6f : i % 5 == 1 ? 7e4f : 8.0f;   /* subnormal and overflow halves too */
        x[i] = frand() * m;
    }
    x[0] = INFINITY; x[1] = -0.0f; x[2] = 65519.0f; x[3] = 65520.0f; x[4] = 0x1p-25f; x[5] = 0x1.0002p-25f;
    for (int i = 0; i < N; i++) want[i] = q_fp32_to_fp16(x[i]);
    for (int isa = 0; isa < Q_CPU_ISA_COUNT; isa++) {
        if (!q_cpu_isa_supported((q_cpu_isa)isa) || !q_attn_kernels_isa((q_cpu_isa)isa)) continue;
        memset(got, 0, sizeof got);
        q_attn_kernels_isa((q_cpu_isa)isa)->store_f16(got, x, N);
        for (int i = 0; i < N; i++)
            if (got[i] != want[i]) fail_msg("store_f16 %s [%d] %a: %04x, want %04x", q_cpu_isa_name((q_cpu_isa)isa), i, x[i], got[i], want[i]);
    }
    free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expf),      cmocka_unit_test(test_rmsnorm), cmocka_unit_test(test_rope_head),
        cmocka_unit_test(test_swiglu),    cmocka_unit_test(test_softmax), cmocka_unit_test(test_add_scale),
        cmocka_unit_test(test_attention), cmocka_unit_test(test_attention_flash), cmocka_unit_test(test_store_f16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
