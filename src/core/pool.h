/* pool.h — a persistent thread pool for data-parallel loops (internal API).
 *
 * pool_create starts n_threads - 1 workers once; pool_run(pool, fn, ctx, n_tasks) then
 * calls fn(ctx, i_task, i_thread) exactly once for every i_task in [0, n_tasks), spread
 * over the workers AND the calling thread (i_thread 0 is always the caller), and returns
 * when all calls have returned. No thread is created per call: idle workers spin briefly
 * on an atomic generation word, then sleep on it (futex on Linux, a condvar elsewhere),
 * so back-to-back calls (one per matmul per token) cost a few microseconds.
 *
 * Each thread starts on its own contiguous, even share of the tasks (in index order, so a
 * thread streams through adjacent memory and threads finish together), and a thread
 * that runs out steals the rest of the others' shares one task at a time. So which
 * thread runs which task is not fixed: tasks must write disjoint outputs, and then the
 * result does not depend on the thread count or on scheduling. i_thread
 * (< pool_n_threads) is for per-thread scratch memory.
 *
 * Not reentrant: one pool_run at a time per pool, and fn must not call pool_run on the
 * same pool. The pool owns its threads; pool_free joins them. */
#ifndef QUARREL_CORE_POOL_H
#define QUARREL_CORE_POOL_H

#include <stdint.h>

typedef struct pool pool;

/* fn(ctx, i_task, i_thread): one unit of work. */
typedef void (*pool_task_fn)(void *ctx, int64_t i_task, int i_thread);

/* A pool of up to n_threads threads in all (the caller counts as one); n_threads <= 0
 * means pool_default_threads(). When a thread cannot be created (a process or pids
 * limit), the pool keeps the ones it started: pool_n_threads says how many it got.
 * NULL when out of memory; every function here accepts a NULL pool (one thread). */
pool *pool_create(int n_threads);
void  pool_free(pool *p);                    /* NULL is fine */
int   pool_n_threads(const pool *p);

/* Runs fn for every task in [0, n_tasks) and returns when all are done. n_tasks <= 0
 * returns at once. p may be NULL: then everything runs on the caller. */
void pool_run(pool *p, pool_task_fn fn, void *ctx, int64_t n_tasks);

/* One dispatch of two dependent loops: every first(ctx, i, thr), i < n_first, returns
 * before any fn(ctx, i, thr), i < n_tasks, starts (e.g. convert a matmul's input, then
 * multiply). Costs one hand-off instead of two. */
void pool_run_then(pool *p, pool_task_fn first, int64_t n_first, pool_task_fn fn, int64_t n_tasks, void *ctx);

/* Physical cores available to this process: distinct (package, core) pairs among the
 * CPUs of the affinity mask, from /sys/devices/system/cpu/cpuN/topology; falls back to
 * sysconf(_SC_NPROCESSORS_ONLN). At least 1. */
int pool_default_threads(void);

/* Distinct (physical_package_id, core_id) pairs among cpus[0..n_cpus) under cpu_root
 * (normally /sys/devices/system/cpu); -1 if a topology file is missing or unreadable.
 * The testable part of pool_default_threads. */
int pool_count_cores(const char *cpu_root, const int *cpus, int n_cpus);

#endif
