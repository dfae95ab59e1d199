/* bench/pool.c — per-call overhead of pool_run (src/core/pool.c).
 *
 * Measures the wall time of pool_run with trivial tasks (n_tasks = n_threads, each task
 * touching only its own cache line) for 1..N threads, in two regimes:
 *   hot   back-to-back calls: workers are still spinning (the per-matmul case);
 *   cold  calls 2 ms apart: workers have gone to sleep and need a futex wake.
 * Also shows a fresh-pthread-per-call baseline for comparison.
 * Medians, so that a busy machine's outliers do not dominate.
 * Usage: bench_pool [max_threads] [iterations]   Prints one line per case; not a test. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/pool.h"

typedef struct { _Alignas(64) volatile uint64_t v; } padded;
static padded slots[256];

static void tiny_task(void *ctx, int64_t i, int i_thread) {
    (void)ctx; (void)i_thread;
    slots[i & 255].v++;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *spawn_main(void *arg) { tiny_task(NULL, (int64_t)(intptr_t)arg, 0); return NULL; }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of n samples (sorts them). */
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

int main(int argc, char **argv) {
    int max_threads = argc > 1 ? atoi(argv[1]) : pool_default_threads();
    int iters = argc > 2 ? atoi(argv[2]) : 20000;
    if (max_threads < 1) max_threads = 1;
    if (iters < 100) iters = 100;
    enum { BATCHES = 25, COLD = 101, SPAWN = 101 };
    printf("pool_default_threads() = %d; medians (hot: of %d batches of %d calls; cold, spawn: of single calls)\n",
           pool_default_threads(), BATCHES, iters / BATCHES);
    for (int nt = 1; nt <= max_threads; nt++) {
        pool *p = pool_create(nt);
        for (int i = 0; i < 100; i++) pool_run(p, tiny_task, NULL, nt);   /* warm up */

        double hot[BATCHES];
        for (int b = 0; b < BATCHES; b++) {
            int n = iters / BATCHES;
            double t0 = now_s();
            for (int i = 0; i < n; i++) pool_run(p, tiny_task, NULL, nt);
            hot[b] = (now_s() - t0) / n;
        }

        double cold[COLD];
        for (int i = 0; i < COLD; i++) {
            struct timespec ts = { 0, 2 * 1000 * 1000 };   /* 2 ms: the workers are asleep */
            nanosleep(&ts, NULL);
            double t1 = now_s();
            pool_run(p, tiny_task, NULL, nt);
            cold[i] = now_s() - t1;
        }
        pool_free(p);

        /* Baseline: create and join nt-1 threads per call. */
        double spawn[SPAWN];
        pthread_t th[256];
        for (int i = 0; i < SPAWN; i++) {
            double t2 = now_s();
            for (int k = 1; k < nt && k < 256; k++) pthread_create(&th[k], NULL, spawn_main, (void *)(intptr_t)k);
            tiny_task(NULL, 0, 0);
            for (int k = 1; k < nt && k < 256; k++) pthread_join(th[k], NULL);
            spawn[i] = now_s() - t2;
        }

        printf("threads %2d  hot %8.2f us/call  cold %8.2f us/call  spawn-per-call %8.2f us/call\n", nt,
               median(hot, BATCHES) * 1e6, median(cold, COLD) * 1e6, median(spawn, SPAWN) * 1e6);
    }
    return 0;
}
