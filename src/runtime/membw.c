/* membw.c — memory read-bandwidth probe (see membw.h).
 *
 * Kernels are chosen through a table indexed by membw_isa; the SIMD ones are compiled
 * with per-function target attributes and picked at run time with
 * __builtin_cpu_supports, so the library itself needs no -mavx2. The buffer is owned
 * here: allocated, touched, read and freed within one membw_read_gbps call. */
#include "runtime/membw.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "core/base.h"
#include "core/pool.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MEMBW_X86 1
#include <immintrin.h>
#endif

/* ---- kernels ---------------------------------------------------------------------- */

static uint64_t membw_sum_scalar(const void *buf, size_t bytes) {
    const uint64_t *p = buf;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i < bytes / 8; i += 4) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
    }
    return s0 + s1 + s2 + s3;
}

#ifdef MEMBW_X86
__attribute__((target("avx2"))) static uint64_t membw_sum_avx2(const void *buf, size_t bytes) {
    const __m256i *p = buf;
    /* Four accumulators: independent adds so loads, not the add chain, set the pace. */
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < bytes / 32; i += 8) {
        a0 = _mm256_add_epi64(a0, _mm256_add_epi64(_mm256_load_si256(p + i), _mm256_load_si256(p + i + 4)));
        a1 = _mm256_add_epi64(a1, _mm256_add_epi64(_mm256_load_si256(p + i + 1), _mm256_load_si256(p + i + 5)));
        a2 = _mm256_add_epi64(a2, _mm256_add_epi64(_mm256_load_si256(p + i + 2), _mm256_load_si256(p + i + 6)));
        a3 = _mm256_add_epi64(a3, _mm256_add_epi64(_mm256_load_si256(p + i + 3), _mm256_load_si256(p + i + 7)));
    }
    __m256i a = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, a);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

__attribute__((target("avx512f"))) static uint64_t membw_sum_avx512(const void *buf, size_t bytes) {
    const __m512i *p = buf;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < bytes / 64; i += 4) {
        a0 = _mm512_add_epi64(a0, _mm512_load_si512(p + i));
        a1 = _mm512_add_epi64(a1, _mm512_load_si512(p + i + 1));
        a2 = _mm512_add_epi64(a2, _mm512_load_si512(p + i + 2));
        a3 = _mm512_add_epi64(a3, _mm512_load_si512(p + i + 3));
    }
    return (uint64_t)_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
}

static bool membw_has_avx2(void)   { return __builtin_cpu_supports("avx2"); }
static bool membw_has_avx512(void) { return __builtin_cpu_supports("avx512f"); }
#endif

static bool membw_has_always(void) { return true; }

typedef struct membw_kernel {
    const char *name;
    uint64_t (*sum)(const void *buf, size_t bytes);   /* NULL: not compiled for this target */
    bool (*supported)(void);
} membw_kernel;

static const membw_kernel kernels[MEMBW_ISA_COUNT] = {
    [MEMBW_ISA_SCALAR] = { "scalar", membw_sum_scalar, membw_has_always },
#ifdef MEMBW_X86
    [MEMBW_ISA_AVX2]   = { "avx2",   membw_sum_avx2,   membw_has_avx2 },
    [MEMBW_ISA_AVX512] = { "avx512", membw_sum_avx512, membw_has_avx512 },
#else
    [MEMBW_ISA_AVX2]   = { "avx2",   NULL, NULL },
    [MEMBW_ISA_AVX512] = { "avx512", NULL, NULL },
#endif
};

const char *membw_isa_name(membw_isa isa) {
    return (unsigned)isa < MEMBW_ISA_COUNT ? kernels[isa].name : "?";
}

bool membw_isa_supported(membw_isa isa) {
    return (unsigned)isa < MEMBW_ISA_COUNT && kernels[isa].sum && kernels[isa].supported();
}

membw_isa membw_isa_best(void) {
    for (int i = MEMBW_ISA_COUNT - 1; i > 0; i--)
        if (membw_isa_supported((membw_isa)i)) return (membw_isa)i;
    return MEMBW_ISA_SCALAR;
}

uint64_t membw_sum(membw_isa isa, const void *buf, size_t bytes) {
    Q_ASSERT(membw_isa_supported(isa));
    Q_ASSERT(((uintptr_t)buf & 63) == 0 && bytes % MEMBW_CHUNK_ALIGN == 0);
    return kernels[isa].sum(buf, bytes);
}

/* ---- cache size ------------------------------------------------------------------- */

/* Reads the first line of root/rel into buf; false if unreadable. */
static bool membw_read_line(const char *root, const char *rel, char *buf, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    bool ok = fgets(buf, (int)n, f) != NULL;
    fclose(f);
    return ok;
}

size_t membw_llc_bytes_at(const char *cpu_root) {
    int best_level = 0;
    size_t best = 0;
    for (int i = 0; i < 16; i++) {
        char rel[64], line[64], type[64] = "";
        snprintf(rel, sizeof rel, "cpu0/cache/index%d/level", i);
        if (!membw_read_line(cpu_root, rel, line, sizeof line)) continue;
        int level = atoi(line);
        snprintf(rel, sizeof rel, "cpu0/cache/index%d/type", i);
        if (membw_read_line(cpu_root, rel, type, sizeof type) && !strncmp(type, "Instruction", 11)) continue;
        snprintf(rel, sizeof rel, "cpu0/cache/index%d/size", i);
        if (!membw_read_line(cpu_root, rel, line, sizeof line)) continue;
        char *end;
        unsigned long long v = strtoull(line, &end, 10);
        if (end == line) continue;
        size_t mult = *end == 'K' ? 1024 : *end == 'M' ? 1024 * 1024 : *end == 'G' ? (size_t)1 << 30 : 1;
        if (level > best_level || (level == best_level && v * mult > best)) {
            best_level = level;
            best = (size_t)v * mult;
        }
    }
    return best;
}

size_t membw_llc_bytes(void) {
    return membw_llc_bytes_at("/sys/devices/system/cpu");
}

size_t membw_default_bytes(void) {
    return Q_MAX((size_t)1 << 30, 8 * membw_llc_bytes());
}

/* ---- the probe -------------------------------------------------------------------- */

enum { MEMBW_CHUNK = 1 << 20 };   /* 1 MiB per task: small enough to balance, big enough to stream */

typedef struct membw_job {
    uint8_t          *buf;
    size_t            n_chunks;
    membw_isa         isa;
    volatile uint64_t sink[64];   /* per-thread results (kept so the reads stay) */
} membw_job;

static void membw_touch_task(void *vjob, int64_t i, int i_thread) {
    membw_job *job = vjob;
    (void)i_thread;
    /* Non-zero, varied content: a zero page could be a shared zero-page mapping. */
    uint64_t *w = (uint64_t *)(job->buf + (size_t)i * MEMBW_CHUNK);
    for (size_t k = 0; k < MEMBW_CHUNK / 8; k++) w[k] = (uint64_t)i * 0x9e3779b97f4a7c15ull + k;
}

static void membw_read_task(void *vjob, int64_t i, int i_thread) {
    membw_job *job = vjob;
    uint64_t s = kernels[job->isa].sum(job->buf + (size_t)i * MEMBW_CHUNK, MEMBW_CHUNK);
    job->sink[i_thread & 63] += s;
}

static double membw_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double membw_read_gbps_isa(membw_isa isa, int n_threads, size_t bytes, int reps) {
    Q_ASSERT(membw_isa_supported(isa));
    if (bytes == 0) bytes = membw_default_bytes();
    if (reps <= 0) reps = 5;
    membw_job job = { .isa = isa, .n_chunks = bytes / MEMBW_CHUNK };
    if (job.n_chunks == 0) job.n_chunks = 1;
    size_t size = job.n_chunks * MEMBW_CHUNK;
    void *mem = NULL;
    if (posix_memalign(&mem, (size_t)2 << 20, size) != 0) return 0.0;
    job.buf = mem;
#ifdef MADV_HUGEPAGE
    madvise(mem, size, MADV_HUGEPAGE);   /* fewer TLB misses, as a mmapped model may get */
#endif
    pool *p = pool_create(n_threads);
    pool_run(p, membw_touch_task, &job, (int64_t)job.n_chunks);
    double best = 0.0;
    for (int r = 0; r < reps; r++) {
        double t0 = membw_now();
        pool_run(p, membw_read_task, &job, (int64_t)job.n_chunks);
        double dt = membw_now() - t0;
        if (dt > 0 && (best == 0.0 || dt < best)) best = dt;
    }
    pool_free(p);
    free(mem);
    return best > 0 ? (double)size / best * 1e-9 : 0.0;
}

double membw_read_gbps(int n_threads, size_t bytes, int reps) {
    return membw_read_gbps_isa(membw_isa_best(), n_threads, bytes, reps);
}
