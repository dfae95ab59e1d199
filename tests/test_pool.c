/* test_pool.c — src/core/pool.c: every task runs exactly once, on a valid thread index,
 * for many (threads, tasks) combinations, across repeated runs of one persistent pool,
 * including runs separated by pauses long enough for the workers to fall asleep. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <cmocka.h>

#include "core/pool.h"

typedef struct count_ctx {
    _Atomic int *hits;        /* (n_tasks) times each task ran */
    _Atomic int  bad_thread;  /* set if a thread index was out of range */
    int          n_threads;
    int64_t      n_tasks;
    uint64_t    *out;         /* (n_tasks) disjoint outputs */
} count_ctx;

static void count_task(void *vctx, int64_t i, int i_thread) {
    count_ctx *c = vctx;
    if (i < 0 || i >= c->n_tasks || i_thread < 0 || i_thread >= c->n_threads) {
        atomic_store(&c->bad_thread, 1);
        return;
    }
    atomic_fetch_add(&c->hits[i], 1);
    c->out[i] = (uint64_t)i * 2654435761u + 7;
}

static void run_and_check(pool *p, int n_threads, int64_t n_tasks) {
    count_ctx c = { .n_threads = n_threads, .n_tasks = n_tasks };
    size_t n = (size_t)(n_tasks > 0 ? n_tasks : 1);
    c.hits = calloc(n, sizeof *c.hits);
    c.out = calloc(n, sizeof *c.out);
    atomic_init(&c.bad_thread, 0);
    pool_run(p, count_task, &c, n_tasks);
    assert_int_equal(atomic_load(&c.bad_thread), 0);
    for (int64_t i = 0; i < n_tasks; i++) {
        assert_int_equal(atomic_load(&c.hits[i]), 1);
        assert_true(c.out[i] == (uint64_t)i * 2654435761u + 7);
    }
    free(c.hits);
    free(c.out);
}

static void test_combinations(void **state) {
    (void)state;
    static const int threads[] = { 1, 2, 3, 4, 7, 8 };
    static const int64_t tasks[] = { 0, 1, 2, 3, 5, 7, 8, 9, 16, 63, 64, 65, 1000, 4097 };
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        pool *p = pool_create(threads[t]);
        assert_int_equal(pool_n_threads(p), threads[t]);
        for (size_t k = 0; k < sizeof tasks / sizeof tasks[0]; k++)
            run_and_check(p, threads[t], tasks[k]);
        pool_free(p);
    }
}

static void test_repeated_runs(void **state) {
    (void)state;
    /* Many back-to-back runs: the spinning hand-off path. */
    pool *p = pool_create(4);
    for (int r = 0; r < 2000; r++) run_and_check(p, 4, 1 + r % 37);
    pool_free(p);
}

static void test_runs_after_sleep(void **state) {
    (void)state;
    /* Pauses of 20 ms let every worker give up spinning and sleep: the wake path. */
    pool *p = pool_create(3);
    for (int r = 0; r < 8; r++) {
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        run_and_check(p, 3, 50 + r);
    }
    pool_free(p);
}

static void test_null_pool_runs_inline(void **state) {
    (void)state;
    assert_int_equal(pool_n_threads(NULL), 1);
    run_and_check(NULL, 1, 10);
}

/* A sum whose partial results land in per-task slots: independent of the thread count. */
typedef struct sum_ctx { const double *x; int64_t n, chunk; double *partial; } sum_ctx;
static void sum_task(void *vctx, int64_t i, int i_thread) {
    (void)i_thread;
    sum_ctx *c = vctx;
    double s = 0;
    for (int64_t j = i * c->chunk; j < (i + 1) * c->chunk && j < c->n; j++) s += c->x[j];
    c->partial[i] = s;
}

static void test_result_independent_of_threads(void **state) {
    (void)state;
    enum { N = 100003, CHUNK = 1000 };
    double *x = malloc(N * sizeof *x);
    for (int i = 0; i < N; i++) x[i] = (double)((i * 7919) % 1009) / 1009.0 - 0.5;
    double ref = 0;
    for (int i = 0; i < N; i++) ref += x[i];
    const int64_t n_chunks = (N + CHUNK - 1) / CHUNK;
    double first = 0;
    for (int nt = 1; nt <= 5; nt++) {
        pool *p = pool_create(nt);
        double partial[(N + CHUNK - 1) / CHUNK];
        sum_ctx c = { x, N, CHUNK, partial };
        pool_run(p, sum_task, &c, n_chunks);
        double s = 0;
        for (int64_t i = 0; i < n_chunks; i++) s += partial[i];
        if (nt == 1) first = s;
        assert_true(s == first);                 /* bitwise the same for every thread count */
        assert_true(s - ref < 1e-9 && ref - s < 1e-9);
        pool_free(p);
    }
    free(x);
}

static void test_default_threads(void **state) {
    (void)state;
    int n = pool_default_threads();
    assert_true(n >= 1);
    assert_true(n <= 4096);
    pool *p = pool_create(0);   /* 0 = default */
    assert_int_equal(pool_n_threads(p), n);
    run_and_check(p, n, 33);
    pool_free(p);
    pool_free(NULL);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A fake sysfs: 2 packages x 2 cores x 2 hyperthreads = 8 CPUs, 4 physical cores. */
static void test_count_cores_from_topology(void **state) {
    (void)state;
    char root[] = "/tmp/quarrel-test-pool-XXXXXX";
    assert_non_null(mkdtemp(root));
    for (int cpu = 0; cpu < 8; cpu++) {
        char path[256], val[16];
        snprintf(path, sizeof path, "%s/cpu%d", root, cpu);
        assert_int_equal(mkdir(path, 0700), 0);
        snprintf(path, sizeof path, "%s/cpu%d/topology", root, cpu);
        assert_int_equal(mkdir(path, 0700), 0);
        snprintf(path, sizeof path, "%s/cpu%d/topology/physical_package_id", root, cpu);
        snprintf(val, sizeof val, "%d\n", cpu / 4);
        write_file(path, val);
        snprintf(path, sizeof path, "%s/cpu%d/topology/core_id", root, cpu);
        snprintf(val, sizeof val, "%d\n", cpu % 2);   /* siblings: cpu0/cpu2, cpu1/cpu3, ... */
        write_file(path, val);
    }
    static const int all[] = { 0, 1, 2, 3, 4, 5, 6, 7 };
    assert_int_equal(pool_count_cores(root, all, 8), 4);
    static const int siblings[] = { 0, 2 };          /* one core, two hyperthreads */
    assert_int_equal(pool_count_cores(root, siblings, 2), 1);
    static const int two_pkgs[] = { 0, 4 };          /* same core_id, different packages */
    assert_int_equal(pool_count_cores(root, two_pkgs, 2), 2);
    static const int missing[] = { 0, 9 };
    assert_int_equal(pool_count_cores(root, missing, 2), -1);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_combinations),
        cmocka_unit_test(test_repeated_runs),
        cmocka_unit_test(test_runs_after_sleep),
        cmocka_unit_test(test_null_pool_runs_inline),
        cmocka_unit_test(test_result_independent_of_threads),
        cmocka_unit_test(test_default_threads),
        cmocka_unit_test(test_count_cores_from_topology),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
