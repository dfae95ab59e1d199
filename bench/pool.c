/* bench/pool.c — per-call overhead of pool_run (src/core/pool.c).
 *
 * Measures the wall time of pool_run with trivial tasks (n_tasks = n_threads, each task
 * touching only its own cache line) for 1..N threads, in two regimes:
 *   hot   back-to-back calls: workers are still spinning (the per-matmul case);
 *   cold  calls 2 ms apart: workers have gone to sleep and need a futex wake.
 * Also shows a fresh-pthread-per-call baseline for comparison.
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

int main(int argc, char **argv) {
    int max_threads = argc > 1 ? atoi(argv[1]) : pool_default_threads();
    int iters = argc > 2 ? atoi(argv[2]) : 20000;
    if (max_threads < 1) max_threads = 1;
    printf("pool_default_threads() = %d\n", pool_default_threads());
    for (int nt = 1; nt <= max_threads; nt++) {
        pool *p = pool_create(nt);
        for (int i = 0; i < 100; i++) pool_run(p, tiny_task, NULL, nt);   /* warm up */

        double t0 = now_s();
        for (int i = 0; i < iters; i++) pool_run(p, tiny_task, NULL, nt);
        double hot = (now_s() - t0) / iters;

        int cold_iters = 200;
        double cold_sum = 0;
        for (int i = 0; i < cold_iters; i++) {
            struct timespec ts = { 0, 2 * 1000 * 1000 };
            nanosleep(&ts, NULL);
            double t1 = now_s();
            pool_run(p, tiny_task, NULL, nt);
            cold_sum += now_s() - t1;
        }
        pool_free(p);

        /* Baseline: create and join nt-1 threads per call. */
        int spawn_iters = 2000;
        pthread_t th[256];
        double t2 = now_s();
        for (int i = 0; i < spawn_iters; i++) {
            for (int k = 1; k < nt && k < 256; k++) pthread_create(&th[k], NULL, spawn_main, (void *)(intptr_t)k);
            tiny_task(NULL, 0, 0);
            for (int k = 1; k < nt && k < 256; k++) pthread_join(th[k], NULL);
        }
        double spawn = (now_s() - t2) / spawn_iters;

        printf("threads %2d  hot %8.2f us/call  cold %8.2f us/call  spawn-per-call %8.2f us/call\n",
               nt, hot * 1e6, cold_sum / cold_iters * 1e6, spawn * 1e6);
    }
    return 0;
}
