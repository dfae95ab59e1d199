/* test_pool.c — src/core/pool.c: every task runs exactly once, on a valid thread index,
 * for many (threads, tasks) combinations, across repeated runs of one persistent pool,
 * including runs separated by pauses long enough for the workers to fall asleep; a
 * two-phase run (pool_run_then) finishes every first-phase task before any second-phase
 * task starts; and a pool whose threads cannot all be created (a process limit) runs
 * with those it got. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
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

/* In a child that drops to an unprivileged user with RLIMIT_NPROC = 2 (the limit counts
 * every thread of that user), pthread_create fails after at most one worker: pool_create
 * must return a working pool of fewer threads, not abort. Exit codes: 0 ok, 77 skip. */
static int pool_limited_child(void) {
    if (setgid(65534) != 0 || setuid(65534) != 0) return 77;   /* not root: cannot test */
    struct rlimit rl = { 2, 2 };
    if (setrlimit(RLIMIT_NPROC, &rl) != 0) return 77;
    pool *p = pool_create(64);
    if (!p) return 1;
    int n = pool_n_threads(p);
    if (n < 1 || n >= 64) return 2;
    count_ctx c = { .n_threads = n, .n_tasks = 1000 };
    _Atomic int hits[1000];
    uint64_t out[1000];
    for (int i = 0; i < 1000; i++) atomic_init(&hits[i], 0);
    c.hits = hits;
    c.out = out;
    atomic_init(&c.bad_thread, 0);
    pool_run(p, count_task, &c, 1000);
    if (atomic_load(&c.bad_thread)) return 3;
    for (int i = 0; i < 1000; i++)
        if (atomic_load(&hits[i]) != 1 || out[i] != (uint64_t)i * 2654435761u + 7) return 4;
    pool_free(p);
    return 0;
}

static void test_thread_limit(void **state) {
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(pool_limited_child());
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) == 77) skip();
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* Phase 1 task i: out[i] = 3 i + 1, then a slow tail so that phase-2 tasks on other
 * threads would see an unfinished slot if the pool did not wait. Phase 2 task j: reads
 * every phase-1 output (all must be final) and records a checksum. */
typedef struct phase_ctx {
    int64_t       n1, n2;
    _Atomic int64_t done1;       /* phase-1 tasks finished */
    _Atomic int     early;       /* a phase-2 task started before phase 1 was done */
    _Atomic int    *hits1, *hits2;
    int64_t        *out1;
    int64_t        *sum2;
} phase_ctx;

static void phase1_task(void *vctx, int64_t i, int thr) {
    (void)thr;
    phase_ctx *c = vctx;
    atomic_fetch_add(&c->hits1[i], 1);
    volatile uint64_t spin = 0;
    for (int k = 0; k < 2000 * (int)(i % 4); k++) spin += (uint64_t)k;
    (void)spin;
    c->out1[i] = 3 * i + 1;
    atomic_fetch_add(&c->done1, 1);
}

static void phase2_task(void *vctx, int64_t j, int thr) {
    (void)thr;
    phase_ctx *c = vctx;
    if (atomic_load(&c->done1) != c->n1) atomic_store(&c->early, 1);
    atomic_fetch_add(&c->hits2[j], 1);
    int64_t s = 0;
    for (int64_t i = 0; i < c->n1; i++) s += c->out1[i];
    c->sum2[j] = s + j;
}

static void test_run_then(void **state) {
    (void)state;
    static const int threads[] = { 1, 2, 3, 4 };
    static const int64_t n1s[] = { 0, 1, 2, 5, 33 }, n2s[] = { 0, 1, 3, 64, 129 };
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        pool *p = pool_create(threads[t]);
        for (int rep = 0; rep < 3; rep++)
            for (size_t a = 0; a < sizeof n1s / sizeof n1s[0]; a++)
                for (size_t b = 0; b < sizeof n2s / sizeof n2s[0]; b++) {
                    phase_ctx c = { .n1 = n1s[a], .n2 = n2s[b] };
                    atomic_init(&c.done1, 0);
                    atomic_init(&c.early, 0);
                    c.hits1 = calloc((size_t)c.n1 + 1, sizeof *c.hits1);
                    c.hits2 = calloc((size_t)c.n2 + 1, sizeof *c.hits2);
                    c.out1 = calloc((size_t)c.n1 + 1, sizeof *c.out1);
                    c.sum2 = calloc((size_t)c.n2 + 1, sizeof *c.sum2);
                    pool_run_then(rep == 2 ? NULL : p, phase1_task, c.n1, phase2_task, c.n2, &c);
                    const int64_t want = 3 * c.n1 * (c.n1 - 1) / 2 + c.n1;   /* sum of 3 i + 1 */
                    assert_int_equal(atomic_load(&c.early), 0);
                    for (int64_t i = 0; i < c.n1; i++) assert_int_equal(atomic_load(&c.hits1[i]), 1);
                    for (int64_t j = 0; j < c.n2; j++) {
                        assert_int_equal(atomic_load(&c.hits2[j]), 1);
                        assert_int_equal(c.sum2[j], want + j);
                    }
                    free(c.hits1);
                    free(c.hits2);
                    free(c.out1);
                    free(c.sum2);
                }
        pool_free(p);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_combinations),
        cmocka_unit_test(test_repeated_runs),
        cmocka_unit_test(test_runs_after_sleep),
        cmocka_unit_test(test_null_pool_runs_inline),
        cmocka_unit_test(test_result_independent_of_threads),
        cmocka_unit_test(test_run_then),
        cmocka_unit_test(test_default_threads),
        cmocka_unit_test(test_count_cores_from_topology),
        cmocka_unit_test(test_thread_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
