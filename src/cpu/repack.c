/* repack.c — the repack table per kernel set, the row-major -> x8 pack functions (the
 * layouts are specified in cpu/repack.h) and the load-time pass over a model.
 *
 * The pack functions are portable byte shuffles (they run once per weight at load). The
 * load pass maps one anonymous region for all repacked tensors (64-byte aligned slices,
 * transparent huge pages requested), repoints each tensor at its slice with layout x8,
 * and drops the file pages it read (MADV_DONTNEED on the whole pages inside the
 * tensor): the mapping is private and read-only, so those pages are simply re-read
 * from the file if anything ever touches them, and the resident set does not hold the
 * weights twice. The packing runs on a short-lived thread pool (repack_unit_task).
 * Owns: the region, through q_model (freed by q_model_free). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/base.h"
#include "core/pool.h"
#include "cpu/kern_avx512.h"
#include "cpu/repack.h"
#include "tensor/quants/blocks.h"

/* ---- pack functions ---- */

/* The dword transpose both layouts share: for each 8-row group and block, the 8 rows'
 * scales, then n_dw vectors whose dword r is dword j of row r's quants. */
static void repack_x8_dwords(int64_t n, int64_t nr, const void *src, void *dst, size_t bsize, int n_dw) {
    Q_ASSERT(nr % Q_REPACK_ROWS == 0);
    const int64_t nb = n / 32;
    const size_t rb = (size_t)nb * bsize;
    const uint8_t *s = src;
    uint8_t *d = dst;
    for (int64_t g = 0; g < nr / Q_REPACK_ROWS; g++) {
        const uint8_t *rows = s + (size_t)g * Q_REPACK_ROWS * rb;
        for (int64_t b = 0; b < nb; b++, d += Q_REPACK_ROWS * bsize) {
            for (int r = 0; r < Q_REPACK_ROWS; r++) {
                const uint8_t *blk = rows + (size_t)r * rb + (size_t)b * bsize;
                memcpy(d + 2 * r, blk, 2);   /* d: the block's first field */
                for (int j = 0; j < n_dw; j++) memcpy(d + 16 + 32 * j + 4 * r, blk + 2 + 4 * j, 4);
            }
        }
    }
}

static void repack_q4_0_x8(int64_t n, int64_t nr, const void *src, void *dst) {
    _Static_assert(sizeof(block_q4_0) * 8 == 16 + 4 * 32, "q4_0 x8 group block is 144 bytes");
    repack_x8_dwords(n, nr, src, dst, sizeof(block_q4_0), 4);
}

static void repack_q8_0_x8(int64_t n, int64_t nr, const void *src, void *dst) {
    _Static_assert(sizeof(block_q8_0) * 8 == 16 + 8 * 32, "q8_0 x8 group block is 272 bytes");
    repack_x8_dwords(n, nr, src, dst, sizeof(block_q8_0), 8);
}

/* ---- tables ---- */

#if defined(__x86_64__)
static const q_repack_traits repack_table_avx2[Q_TYPE_COUNT] = {
    [Q_TYPE_Q4_0] = { Q_LAYOUT_X8, repack_q4_0_x8, q_avx2_gemm_x8_q4_0_q8_0 },
    [Q_TYPE_Q8_0] = { Q_LAYOUT_X8, repack_q8_0_x8, q_avx2_gemm_x8_q8_0_q8_0 },
};
/* The same layouts: only the batched tiles differ (VNNI). */
static const q_repack_traits repack_table_avx512[Q_TYPE_COUNT] = {
    [Q_TYPE_Q4_0] = { Q_LAYOUT_X8, repack_q4_0_x8, q_avx512_gemm_x8_q4_0_q8_0 },
    [Q_TYPE_Q8_0] = { Q_LAYOUT_X8, repack_q8_0_x8, q_avx512_gemm_x8_q8_0_q8_0 },
};
#endif

/* NULL = the set repacks nothing (the scalar reference reads the file's layout). */
static const q_repack_traits *const repack_tables[Q_CPU_ISA_COUNT] = {
#if defined(__x86_64__)
    [Q_CPU_ISA_AVX2]   = repack_table_avx2,
    [Q_CPU_ISA_AVX512] = repack_table_avx512,
#endif
};

/* Tests only (q_repack_emulate_avx512): the AVX-512 set's table when it is emulated. */
static const q_repack_traits *avx512_emulated;

void q_repack_emulate_avx512(const q_repack_traits *table) {
    Q_ASSERT(table != NULL);
    avx512_emulated = table;
}

const q_repack_traits *q_repack_traits_isa(q_type t, q_cpu_isa isa) {
    if ((unsigned)isa >= Q_CPU_ISA_COUNT || (unsigned)t >= Q_TYPE_COUNT) return NULL;
    const q_repack_traits *tab = isa == Q_CPU_ISA_AVX512 && avx512_emulated ? avx512_emulated : repack_tables[isa];
    if (!tab || !q_cpu_isa_supported(isa)) return NULL;
    const q_repack_traits *rt = &tab[t];
    return rt->pack ? rt : NULL;
}

const q_repack_traits *q_repack_traits_get(q_type t) {
    return q_repack_traits_isa(t, q_cpu_isa_best());
}

bool q_repack_eligible(const q_tensor *w) {
    return w->data && w->layout == Q_LAYOUT_ROWS && w->ne[1] > 1 && w->ne[1] % Q_REPACK_ROWS == 0 &&
           w->ne[3] == 1 && w->ne[0] % 32 == 0 && q_repack_traits_get(w->type) != NULL;
}

/* ---- the load-time pass ---- */

enum { REPACK_ALIGN = 64 };

/* Calls fn(ctx, t) for every matmul weight of m that may be repacked: the layer
 * matrices and the output matrix unless it is (tied to) token_embd. The router
 * (ffn_gate_inp, F32) has no entry in any table. */
static void repack_each(q_model *m, void (*fn)(void *ctx, q_tensor *t), void *ctx) {
    for (int32_t l = 0; l < m->hp.n_layer; l++) {
        q_layer *L = &m->layers[l];
        q_tensor *const ws[] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->ffn_gate, &L->ffn_up, &L->ffn_down,
                                 &L->ffn_gate_exps, &L->ffn_up_exps, &L->ffn_down_exps };
        for (size_t i = 0; i < Q_ARRAY_LEN(ws); i++) fn(ctx, ws[i]);
    }
    if (m->output.data != m->tok_embd.data) fn(ctx, &m->output);
}

typedef struct repack_pass {
    size_t  size;   /* bytes planned so far */
    int32_t n;
} repack_pass;

static size_t tensor_bytes(const q_tensor *t) {
    return (size_t)t->ne[1] * t->row_bytes * (size_t)t->ne[2];
}

static void repack_plan(void *ctx, q_tensor *t) {
    repack_pass *p = ctx;
    if (!q_repack_eligible(t)) return;
    p->size += (tensor_bytes(t) + REPACK_ALIGN - 1) / REPACK_ALIGN * REPACK_ALIGN;
    p->n++;
}

/* The pass that places the tensors: each eligible one gets the next aligned slice. */
typedef struct repack_job {
    q_tensor *t;
    size_t    off;   /* into the region */
} repack_job;

typedef struct repack_place {
    repack_job *jobs;
    int32_t     n;
    size_t      size;
} repack_place;

static void repack_collect(void *ctx, q_tensor *t) {
    repack_place *p = ctx;
    if (!q_repack_eligible(t)) return;
    p->jobs[p->n++] = (repack_job){ t, p->size };
    p->size += (tensor_bytes(t) + REPACK_ALIGN - 1) / REPACK_ALIGN * REPACK_ALIGN;
}

/* Packing runs on a pool over units of up to REPACK_UNIT_ROWS rows of one expert slice:
 * the first touch of fresh anonymous memory is most of the cost (on a VM the host backs
 * each page on its first write: ~2.5 s per GiB on one thread here, ~0.4 s on two), and
 * the faults of two threads overlap. A unit's rows are whole 8-row groups, and a group
 * packs to the same bytes at the same offset, so units are independent. */
enum { REPACK_UNIT_ROWS = 512 };

typedef struct repack_unit {
    int32_t job;
    int32_t expert;
    int64_t row0, nrows;
} repack_unit;

typedef struct repack_run {
    const repack_job  *jobs;
    const repack_unit *units;
    atomic_int        *left;   /* [job] units not packed yet */
    uint8_t           *mem;
    size_t             page;
} repack_run;

/* Drops the file pages of t's source: the whole pages inside it (its first and last may
 * hold a neighbour too). Done as soon as a tensor is packed, so the resident set never
 * holds more than the tensors in flight twice. */
static void repack_drop_source(const q_tensor *t, size_t page) {
    const uintptr_t lo = ((uintptr_t)t->data + page - 1) / page * page;
    const uintptr_t hi = ((uintptr_t)t->data + tensor_bytes(t)) / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

static void repack_unit_task(void *ctx, int64_t i, int thread) {
    (void)thread;
    const repack_run *r = ctx;
    const repack_unit *u = &r->units[i];
    const q_tensor *t = r->jobs[u->job].t;
    const q_repack_traits *rt = q_repack_traits_get(t->type);
    const size_t at = (size_t)u->expert * (size_t)t->ne[1] * t->row_bytes + (size_t)u->row0 * t->row_bytes;
    rt->pack(t->ne[0], u->nrows, (const uint8_t *)t->data + at, r->mem + r->jobs[u->job].off + at);
    if (atomic_fetch_sub(&r->left[u->job], 1) == 1) repack_drop_source(t, r->page);
}

static bool repack_disabled(void) {
    const char *env = getenv("QUARREL_REPACK");
    return env && !strcmp(env, "0");
}

/* The layer matrices q_layer holds under their GGUF names (model/llama.c's spec). */
static const char *const repack_names[] = { "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up",
                                            "ffn_down", "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps" };

int32_t q_repack_plan_file(const struct gguf_file *f, uint64_t *bytes) {
    *bytes = 0;
    gguf_str arch;
    char archz[64];
    if (repack_disabled() || !gguf_get_str(f, "general.architecture", &arch)) return 0;
    snprintf(archz, sizeof archz, "%.*s", (int)Q_MIN(arch.len, sizeof archz - 1), arch.ptr);
    if (!q_arch_find(archz)) return 0;   /* q_model_load would refuse the file */
    repack_pass plan = { 0 };
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor_info *ti = &f->tensors[i];
        char name[128], kind[32], tail[16];
        snprintf(name, sizeof name, "%.*s", (int)Q_MIN(ti->name.len, sizeof name - 1), ti->name.ptr);
        bool match = !strcmp(name, "output.weight");
        int layer;
        if (!match && sscanf(name, "blk.%d.%31[a-z_].%15s", &layer, kind, tail) == 3 && !strcmp(tail, "weight"))
            for (size_t k = 0; k < Q_ARRAY_LEN(repack_names); k++) match |= !strcmp(kind, repack_names[k]);
        if (!match || ti->n_dims < 2 || ti->n_dims > 3) continue;
        q_tensor t = { .type = ti->type, .ne = { ti->ne[0], ti->ne[1], ti->ne[2], ti->ne[3] },
                       .row_bytes = q_row_size(ti->type, ti->ne[0]), .data = ti->data };
        repack_plan(&plan, &t);
    }
    *bytes = plan.size;
    return plan.n;
}

q_status q_cpu_repack_model(q_model *m, q_error *err) {
    if (repack_disabled()) return Q_OK;
    repack_pass plan = { 0 };
    repack_each(m, repack_plan, &plan);
    if (plan.n == 0) return Q_OK;
    void *mem = mmap(NULL, plan.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return q_fail(err, Q_ERR_NOMEM, "cannot map %zu bytes for repacked weights (QUARREL_REPACK=0 skips them)",
                      plan.size);
#ifdef MADV_HUGEPAGE
    madvise(mem, plan.size, MADV_HUGEPAGE);   /* fewer TLB misses over the streamed weights */
#endif
    repack_place place = { .jobs = q_xmalloc(sizeof(repack_job) * (size_t)plan.n) };
    repack_each(m, repack_collect, &place);
    Q_ASSERT(place.n == plan.n && place.size == plan.size);
    int64_t n_units = 0;
    for (int32_t k = 0; k < place.n; k++) {
        const q_tensor *t = place.jobs[k].t;
        n_units += t->ne[2] * ((t->ne[1] + REPACK_UNIT_ROWS - 1) / REPACK_UNIT_ROWS);
    }
    repack_unit *units = q_xmalloc(sizeof(repack_unit) * (size_t)n_units);
    atomic_int *left = q_xmalloc(sizeof(atomic_int) * (size_t)place.n);
    int64_t u = 0;
    for (int32_t k = 0; k < place.n; k++) {
        const q_tensor *t = place.jobs[k].t;
        const int64_t u0 = u;
        for (int32_t e = 0; e < (int32_t)t->ne[2]; e++)
            for (int64_t r0 = 0; r0 < t->ne[1]; r0 += REPACK_UNIT_ROWS)
                units[u++] = (repack_unit){ k, e, r0, Q_MIN(REPACK_UNIT_ROWS, t->ne[1] - r0) };
        atomic_init(&left[k], (int)(u - u0));
    }
    pool *workers = pool_create(0);   /* NULL (out of memory) runs it all on this thread */
    repack_run run = { place.jobs, units, left, mem, (size_t)sysconf(_SC_PAGESIZE) };
    pool_run(workers, repack_unit_task, &run, n_units);
    pool_free(workers);
    for (int32_t k = 0; k < place.n; k++) {
        Q_ASSERT(atomic_load(&left[k]) == 0);
        q_tensor *t = place.jobs[k].t;
        t->data = (uint8_t *)mem + place.jobs[k].off;
        t->layout = q_repack_traits_get(t->type)->layout;
    }
    free(left);
    free(units);
    free(place.jobs);
    /* Only matmul reads these now: no writes after this point. */
    mprotect(mem, plan.size, PROT_READ);
    m->repack_mem = mem;
    m->repack_size = plan.size;
    m->n_repacked = plan.n;
    return Q_OK;
}
