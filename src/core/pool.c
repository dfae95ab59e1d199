/* pool.c — the persistent thread pool of pool.h.
 *
 * One run, as the caller sees it:
 *   1. store the phases and ctx, give every thread its contiguous share of each phase's
 *      tasks (an even split), set n_busy = number of workers;
 *   2. bump `generation` (the publication point: workers acquire it);
 *   3. if any worker is asleep on `generation`, wake them (one futex syscall);
 *   4. take tasks like any worker: its own share first, from a cursor on its own cache
 *      line (no contention), then steal what is left of the others' shares one task at a
 *      time (a descheduled or slower thread's work moves to the one that finished);
 *   5. wait for n_busy == 0: spin, then sleep on n_busy.
 * A two-phase run (pool_run_then) separates its phases by counting the first phase's
 * finished tasks: a thread that has no first-phase task left to take (its own or stolen)
 * spins until that count is complete, then starts on the second phase. Every unfinished
 * task is then held by a running thread, so the wait ends without any sleeping or late
 * thread having to arrive.
 * A worker spins on `generation` for POOL_SPIN_NS after each run, so a run that
 * follows shortly (the next matmul) finds it awake and costs no syscall; only then does
 * it sleep. The sleep/wake handshakes are Dekker-style: each side does a seq_cst
 * read-modify-write of its own word and then reads the other side's word, so either the
 * sleeper sees the new value or the waker sees the sleeper; the futex compare closes
 * the remaining window.
 *
 * Memory: the pool owns its worker threads and their argument array; nothing is
 * allocated per run. */
#include "core/pool.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/base.h"

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

/* How long a waiting thread spins before it goes to sleep: long enough to bridge the
 * gap between two matmuls of one token (tens of microseconds), short enough not to burn
 * a shared core for long. Timed, not counted: one pause instruction costs from ~3 ns
 * to ~40 ns depending on the CPU. */
#define POOL_SPIN_NS 100000
#define POOL_SPIN_YIELD_NS 10000   /* pure spinning first, then spinning with yields */
#define POOL_SPIN_CHECK 64   /* pause iterations between clock reads */

#define POOL_CACHE_LINE 64

struct pool {
    int        n_threads;         /* workers + the caller */
    pthread_t *threads;           /* (n_threads - 1) workers */
    struct pool_worker *workers;  /* (n_threads - 1) thread arguments */

    /* The current run: written by the caller before the generation bump. */
    pool_task_fn fn[2];           /* phase 0, then phase 1 (NULL: a one-phase run) */
    int64_t      n_tasks[2];
    void        *ctx;
    struct pool_slot *slots;      /* n_threads task shares */

    /* Each hot word on its own cache line: the caller polls `n_busy`, sleepers poll
     * `generation`, threads finishing phase 0 add to `done0`. */
    _Alignas(POOL_CACHE_LINE) _Atomic int64_t done0;         /* phase-0 tasks finished */
    _Alignas(POOL_CACHE_LINE) _Atomic uint32_t generation;   /* bumped once per run */
    _Atomic uint32_t n_sleepers;                             /* workers asleep on generation */
    _Atomic bool     stop;                                   /* set by pool_free */
    _Alignas(POOL_CACHE_LINE) _Atomic uint32_t n_busy;       /* workers not done with the run */
    _Atomic uint32_t caller_sleeping;                        /* caller asleep on n_busy */

#ifndef __linux__
    pthread_mutex_t mu;   /* fallback sleep: one mutex + condvar for every word */
    pthread_cond_t  cv;
#endif
};

typedef struct pool_worker {
    pool *p;
    int   i_thread;   /* 1 .. n_threads-1 */
} pool_worker;

/* One thread's share of a phase: tasks [cur, end), cur advanced by whoever takes one
 * (by the owner, or by a thread that has finished its own share). */
typedef struct pool_slot {
    _Alignas(POOL_CACHE_LINE) _Atomic int64_t cur[2];
    int64_t end[2];
} pool_slot;

/* ---- waiting primitives ------------------------------------------------------------ */

static inline void pool_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Sleeps while *word == expected (may return spuriously: callers re-check). */
static void pool_sleep(pool *p, _Atomic uint32_t *word, uint32_t expected) {
#ifdef __linux__
    (void)p;
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
#else
    pthread_mutex_lock(&p->mu);
    while (atomic_load(word) == expected) pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
#endif
}

/* Wakes every thread sleeping on word (the caller changed it first). */
static void pool_wake(pool *p, _Atomic uint32_t *word) {
#ifdef __linux__
    (void)p;
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)word;
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
#endif
}

static uint64_t pool_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One step of a spin-wait started at t0: a pause; every POOL_SPIN_CHECK steps a clock
 * read, and past POOL_SPIN_YIELD_NS a sched_yield, because on an oversubscribed machine
 * the thread we wait for may need this very core. False once POOL_SPIN_NS have passed. */
static bool pool_spin_step(uint32_t i, uint64_t t0) {
    pool_cpu_relax();
    if (i % POOL_SPIN_CHECK != 0) return true;
    uint64_t dt = pool_now_ns() - t0;
    if (dt > POOL_SPIN_NS) return false;
    if (dt > POOL_SPIN_YIELD_NS) sched_yield();
    return true;
}

/* ---- the run loop ----------------------------------------------------------------- */

/* Runs the tasks of phase ph that this thread can take: its own share, then the rest of
 * every other share. Returns how many it ran. */
static int64_t pool_take_phase(pool *p, int ph, int i_thread) {
    const pool_task_fn fn = p->fn[ph];
    void *ctx = p->ctx;
    const int n = p->n_threads;
    int64_t ran = 0;
    for (int k = 0; k < n; k++) {
        pool_slot *s = &p->slots[(i_thread + k) % n];
        const int64_t end = s->end[ph];
        if (atomic_load_explicit(&s->cur[ph], memory_order_relaxed) >= end) continue;
        for (int64_t i; (i = atomic_fetch_add_explicit(&s->cur[ph], 1, memory_order_relaxed)) < end; ran++)
            fn(ctx, i, i_thread);
    }
    return ran;
}

static void pool_take_tasks(pool *p, int i_thread) {
    if (p->fn[1]) {
        const int64_t ran = pool_take_phase(p, 0, i_thread);
        /* release: this thread's phase-0 outputs before the count; acquire: the others' */
        atomic_fetch_add_explicit(&p->done0, ran, memory_order_acq_rel);
        uint64_t t0 = 0;
        for (uint32_t i = 1; atomic_load_explicit(&p->done0, memory_order_acquire) < p->n_tasks[0]; i++) {
            if (i == 1) t0 = pool_now_ns();
            pool_cpu_relax();
            /* every unfinished task is running on some thread: only yield, never sleep */
            if (i % POOL_SPIN_CHECK == 0 && pool_now_ns() - t0 > POOL_SPIN_YIELD_NS) sched_yield();
        }
        pool_take_phase(p, 1, i_thread);
        return;
    }
    pool_take_phase(p, 0, i_thread);
}

/* Returns the first generation != seen: spins, then sleeps. */
static uint32_t pool_await_generation(pool *p, uint32_t seen) {
    uint64_t t0 = pool_now_ns();
    for (uint32_t i = 1;; i++) {
        uint32_t g = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (g != seen) return g;
        if (!pool_spin_step(i, t0)) break;
    }
    atomic_fetch_add(&p->n_sleepers, 1);
    uint32_t g;
    while ((g = atomic_load(&p->generation)) == seen) pool_sleep(p, &p->generation, seen);
    atomic_fetch_sub(&p->n_sleepers, 1);
    return g;
}

static void *pool_worker_main(void *arg) {
    pool_worker *w = arg;
    pool *p = w->p;
    uint32_t seen = 0;
    for (;;) {
        seen = pool_await_generation(p, seen);
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        pool_take_tasks(p, w->i_thread);
        /* The last worker out wakes the caller if it went to sleep. */
        if (atomic_fetch_sub(&p->n_busy, 1) == 1 && atomic_load(&p->caller_sleeping))
            pool_wake(p, &p->n_busy);
    }
    return NULL;
}

static void pool_await_idle(pool *p) {
    if (atomic_load_explicit(&p->n_busy, memory_order_acquire) == 0) return;
    uint64_t t0 = pool_now_ns();
    for (uint32_t i = 1; atomic_load_explicit(&p->n_busy, memory_order_acquire) != 0; i++)
        if (!pool_spin_step(i, t0)) break;
    atomic_store(&p->caller_sleeping, 1);
    uint32_t v;
    while ((v = atomic_load(&p->n_busy)) != 0) pool_sleep(p, &p->n_busy, v);
    atomic_store(&p->caller_sleeping, 0);
}

/* Publishes a run of fn0's n0 tasks, then fn1's n1 (fn1 NULL: one phase), and takes part. */
static void pool_dispatch(pool *p, pool_task_fn fn0, int64_t n0, pool_task_fn fn1, int64_t n1, void *ctx) {
    const int n = p->n_threads;
    p->fn[0] = fn0;
    p->fn[1] = fn1;
    p->n_tasks[0] = n0;
    p->n_tasks[1] = n1;
    p->ctx = ctx;
    for (int ph = 0; ph < 2; ph++)
        for (int t = 0; t < n; t++) {   /* even split: thread t gets [N t / n, N (t+1) / n) */
            atomic_store_explicit(&p->slots[t].cur[ph], p->n_tasks[ph] * t / n, memory_order_relaxed);
            p->slots[t].end[ph] = p->n_tasks[ph] * (t + 1) / n;
        }
    atomic_store_explicit(&p->done0, 0, memory_order_relaxed);
    atomic_store_explicit(&p->n_busy, (uint32_t)(n - 1), memory_order_relaxed);
    atomic_fetch_add(&p->generation, 1);   /* seq_cst: publishes the run */
    if (atomic_load(&p->n_sleepers) > 0) pool_wake(p, &p->generation);
    pool_take_tasks(p, 0);
    pool_await_idle(p);
}

void pool_run(pool *p, pool_task_fn fn, void *ctx, int64_t n_tasks) {
    Q_ASSERT(fn != NULL);
    if (n_tasks <= 0) return;
    /* One task or one thread: no hand-off is worth its cost. */
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        for (int64_t i = 0; i < n_tasks; i++) fn(ctx, i, 0);
        return;
    }
    pool_dispatch(p, fn, n_tasks, NULL, 0, ctx);
}

void pool_run_then(pool *p, pool_task_fn first, int64_t n_first, pool_task_fn fn, int64_t n_tasks, void *ctx) {
    Q_ASSERT(first != NULL && fn != NULL);
    if (n_first <= 0) {
        pool_run(p, fn, ctx, n_tasks);
        return;
    }
    if (n_tasks <= 0) {
        pool_run(p, first, ctx, n_first);
        return;
    }
    if (!p || p->n_threads == 1) {
        for (int64_t i = 0; i < n_first; i++) first(ctx, i, 0);
        for (int64_t i = 0; i < n_tasks; i++) fn(ctx, i, 0);
        return;
    }
    pool_dispatch(p, first, n_first, fn, n_tasks, ctx);
}

/* ---- lifetime --------------------------------------------------------------------- */

pool *pool_create(int n_threads) {
    if (n_threads <= 0) n_threads = pool_default_threads();
    pool *p = aligned_alloc(POOL_CACHE_LINE, (sizeof(pool) + POOL_CACHE_LINE - 1) / POOL_CACHE_LINE * POOL_CACHE_LINE);
    if (!p) return NULL;
    memset(p, 0, sizeof *p);
    p->n_threads = n_threads;
    atomic_init(&p->done0, 0);
    atomic_init(&p->generation, 0);
    atomic_init(&p->n_sleepers, 0);
    atomic_init(&p->stop, false);
    atomic_init(&p->n_busy, 0);
    atomic_init(&p->caller_sleeping, 0);
#ifndef __linux__
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
#endif
    int n_workers = n_threads - 1;
    p->threads = calloc((size_t)(n_workers > 0 ? n_workers : 1), sizeof *p->threads);
    p->workers = calloc((size_t)(n_workers > 0 ? n_workers : 1), sizeof *p->workers);
    p->slots = aligned_alloc(POOL_CACHE_LINE, sizeof(pool_slot) * (size_t)n_threads);
    if (!p->threads || !p->workers || !p->slots) n_workers = 0;
    else memset(p->slots, 0, sizeof(pool_slot) * (size_t)n_threads);
    for (int i = 0; i < n_workers; i++) {
        p->workers[i] = (pool_worker){ .p = p, .i_thread = i + 1 };
        /* A process or pids limit (containers) makes this fail: keep the workers we have.
         * Nothing has run yet, so shrinking n_threads here is safe. */
        if (pthread_create(&p->threads[i], NULL, pool_worker_main, &p->workers[i]) != 0) {
            n_workers = i;
            break;
        }
    }
    p->n_threads = n_workers + 1;
    if (!p->threads || !p->workers || !p->slots) {
        pool_free(p);
        return NULL;
    }
    return p;
}

void pool_free(pool *p) {
    if (!p) return;
    atomic_store(&p->stop, true);
    atomic_fetch_add(&p->generation, 1);
    pool_wake(p, &p->generation);
    for (int i = 0; i < p->n_threads - 1; i++) pthread_join(p->threads[i], NULL);
#ifndef __linux__
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
#endif
    free(p->threads);
    free(p->workers);
    free(p->slots);
    free(p);
}

int pool_n_threads(const pool *p) { return p ? p->n_threads : 1; }

/* ---- default thread count --------------------------------------------------------- */

static bool pool_read_int(const char *path, long *out) {
    FILE *f = fopen(path, "r");
    if (!f) return false;
    bool ok = fscanf(f, "%ld", out) == 1;
    fclose(f);
    return ok;
}

int pool_count_cores(const char *cpu_root, const int *cpus, int n_cpus) {
    long (*seen)[2] = q_xcalloc((size_t)(n_cpus > 0 ? n_cpus : 1), sizeof *seen);   /* (package, core) */
    int n_seen = 0;
    for (int k = 0; k < n_cpus; k++) {
        char path[512];
        long core, pkg;
        snprintf(path, sizeof path, "%s/cpu%d/topology/core_id", cpu_root, cpus[k]);
        bool ok = pool_read_int(path, &core);
        snprintf(path, sizeof path, "%s/cpu%d/topology/physical_package_id", cpu_root, cpus[k]);
        if (!ok || !pool_read_int(path, &pkg)) { n_seen = -1; break; }
        bool dup = false;
        for (int j = 0; j < n_seen && !dup; j++) dup = seen[j][0] == pkg && seen[j][1] == core;
        if (!dup) { seen[n_seen][0] = pkg; seen[n_seen][1] = core; n_seen++; }
    }
    free(seen);
    return n_seen;
}

int pool_default_threads(void) {
    long n_online = sysconf(_SC_NPROCESSORS_ONLN);
    if (n_online < 1) n_online = 1;
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int cpus[CPU_SETSIZE], n_cpus = 0;
        for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
            if (CPU_ISSET(cpu, &set)) cpus[n_cpus++] = cpu;
        int n = pool_count_cores("/sys/devices/system/cpu", cpus, n_cpus);
        if (n > 0) return n;
        if (n_cpus > 0) return n_cpus;
    }
#endif
    return (int)n_online;
}
