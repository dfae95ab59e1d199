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
 * subnormal results, overflow) and special values (±0, ±inf, NaN). */
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

#include "cpu/backend.h"
#include "cpu/ops.h"

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expf),      cmocka_unit_test(test_rmsnorm), cmocka_unit_test(test_rope_head),
        cmocka_unit_test(test_swiglu),    cmocka_unit_test(test_softmax), cmocka_unit_test(test_add_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
