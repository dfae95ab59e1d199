/* bench/matmul.c — the CPU matmul op alone, per weight type, at decode (1 token) and
 * prefill (many tokens) shapes: time per call, weight GB/s (decode is bound by it) and
 * GOP/s (prefill is bound by it), next to the machine's read bandwidth. "cpu ms" is the
 * process CPU time of the fastest call (all threads, pool spinning included): on a
 * machine shared with other jobs, -t 1 with that column is the steadiest comparison.
 * Usage: bench_matmul [-t THREADS] [-n N_IN] [-m N_OUT] [-b TOKENS,..] [-r REPS] [-x] [TYPE ..]
 * -x: after each row-major line, the same call on the weights repacked to the kernel
 * set's x8 layout (cpu/repack.h; "TYPE/x8"), for types that have one: a back-to-back A/B.
 * The kernel set is the best one, or QUARREL_CPU's. Weights are random; speed does not
 * depend on their values. Not a test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/pool.h"
#include "cpu/backend.h"
#include "cpu/repack.h"
#include "runtime/membw.h"

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }

void q_cpu_matmul(q_exec *ex, const q_tensor *w, const float *x, int64_t ldx, float *y, int64_t ldy,
                  int32_t n_tok);

int main(int argc, char **argv) {
    int threads = 2, reps = 0, x8 = 0;
    int64_t n_in = 2048, n_out = 5632;
    int toks[8] = { 1, 64, 512 }, n_toks = 3;
    const char *types[32];
    int n_types = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) n_in = atoll(argv[++i]);
        else if (!strcmp(argv[i], "-m") && i + 1 < argc) n_out = atoll(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-x")) x8 = 1;
        else if (!strcmp(argv[i], "-b") && i + 1 < argc) {
            n_toks = 0;
            for (char *s = strtok(argv[++i], ","); s && n_toks < 8; s = strtok(NULL, ",")) toks[n_toks++] = atoi(s);
        } else if (n_types < 32) types[n_types++] = argv[i];
    }
    if (!n_types) {
        static const char *def[] = { "q4_0", "q8_0", "q4_K", "q5_K", "q6_K", "f16" };
        for (int i = 0; i < 6; i++) types[n_types++] = def[i];
    }
    int max_tok = 1;
    for (int i = 0; i < n_toks; i++) max_tok = toks[i] > max_tok ? toks[i] : max_tok;
    pool *p = pool_create(threads);
    float *x = malloc(sizeof(float) * (size_t)n_in * max_tok), *y = malloc(sizeof(float) * (size_t)n_out * max_tok);
    float *row = malloc(sizeof(float) * (size_t)n_in);
    srand(1);
    for (int64_t i = 0; i < n_in * max_tok; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    q_exec ex = { .be = &q_backend_cpu, .pool = p, .n_threads = threads };
    ex.wdata_size = (size_t)max_tok * n_in * sizeof(float) * 2;
    ex.wdata = malloc(ex.wdata_size);
    printf("kernels %s, %d thread%s, W %lld x %lld; read bandwidth %.2f GB/s\n", q_cpu_isa_name(q_cpu_isa_best()),
           threads, threads == 1 ? "" : "s", (long long)n_out, (long long)n_in,
           membw_read_gbps(threads, membw_default_bytes(), 3));
    printf("%-7s %6s %11s %9s %9s %9s\n", "type", "tokens", "ms/call", "W GB/s", "GOP/s", "cpu ms");
    for (int ti = 0; ti < n_types; ti++) {
        q_type t = Q_TYPE_COUNT;
        for (int k = 0; k < Q_TYPE_COUNT; k++)
            if (q_type_get((q_type)k) && !strcasecmp(q_type_name((q_type)k), types[ti])) t = (q_type)k;
        const q_type_traits *tt = t < Q_TYPE_COUNT ? q_type_get(t) : NULL;
        if (!tt || !tt->from_float || !q_matmul_traits_get(t) || n_in % tt->blck_size) {
            printf("%-7s (no kernel or bad row length)\n", types[ti]);
            continue;
        }
        const size_t rb = q_row_size(t, n_in);
        uint8_t *wd = malloc(rb * (size_t)n_out);
        for (int64_t r = 0; r < n_out; r++) {
            for (int64_t i = 0; i < n_in; i++) row[i] = (float)rand() / (float)RAND_MAX - 0.5f;
            tt->from_float(row, wd + r * rb, n_in);
        }
        const q_tensor w0 = { .type = t, .ne = { n_in, n_out, 1, 1 }, .row_bytes = rb, .data = wd };
        q_tensor wx = w0;
        uint8_t *wpk = NULL;
        const q_repack_traits *rt = x8 ? q_repack_traits_get(t) : NULL;
        if (rt && q_repack_eligible(&w0)) {
            wpk = malloc(rb * (size_t)n_out);
            rt->pack(n_in, n_out, wd, wpk);
            wx.layout = rt->layout;
            wx.data = wpk;
        }
        for (int run = 0; run < (wpk ? 2 * n_toks : n_toks); run++) {
            const int bi = wpk ? run / 2 : run;
            const q_tensor w = run % 2 && wpk ? wx : w0;
            char label[32];
            snprintf(label, sizeof label, "%s%s", q_type_name(t), w.layout != Q_LAYOUT_ROWS ? "/x8" : "");
            const int nt = toks[bi];
            const int r = reps > 0 ? reps : (nt == 1 ? 50 : nt <= 64 ? 6 : 2);
            q_cpu_matmul(&ex, &w, x, n_in, y, n_out, nt);   /* warm-up */
            double best = 1e30, best_cpu = 1e30;
            for (int k = 0; k < r; k++) {
                const double t0 = now_s(), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
                q_cpu_matmul(&ex, &w, x, n_in, y, n_out, nt);
                const double dt = now_s() - t0, dc = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
                best = dt < best ? dt : best;
                best_cpu = dc < best_cpu ? dc : best_cpu;
            }
            printf("%-7s %6d %11.3f %9.2f %9.1f %9.3f\n", label, nt, best * 1e3, (double)rb * n_out / best / 1e9,
                   2.0 * (double)n_in * n_out * nt / best / 1e9, best_cpu * 1e3);
        }
        free(wd);
        free(wpk);
    }
    pool_free(p);
    free(x); free(y); free(row); free(ex.wdata);
    return 0;
}
