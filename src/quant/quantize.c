/* quantize.c — the quantization driver: GGUF in, GGUF out (quantize.h).
 *
 * Flow: open the input (mapped, zero copy); read the model facts the mix rules need;
 * order the tensors as llama.cpp does (non-block tensors first, then by block number,
 * then by name: the layer counters of the rules advance in this order, and the output
 * file lists its tensors in it); plan every tensor's type (mix.c); copy the key/values;
 * stream the tensors through gguf_writer_write, whose fill callback converts one tensor
 * at a time: rows are split into tasks on the thread pool, each row goes source ->
 * f32 (to_float, or as is for F32) -> target (from_float). Rows are independent, so
 * the bytes do not depend on the thread count.
 *
 * Memory: one tensor's output buffer (the writer's), one f32 scratch row per thread,
 * and the input mapping, whose pages are dropped tensor by tensor. Everything allocated here is freed before returning. */
#include "quarrel/quantize.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base.h"
#include "core/pool.h"
#include "quant/mix.h"

/* ---- model facts ------------------------------------------------------------------ */

/* Value of key "<arch>.<suffix>" as an integer; scalar or first element of an array. */
static bool quant_arch_u64(const gguf_file *f, const char *arch, const char *suffix, uint64_t *out) {
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (gguf_get_u64(f, key, out)) return true;
    const gguf_value *arr = gguf_get_arr(f, key);
    if (arr && arr->arr.n > 0 && arr->arr.type != GGUF_VT_STRING && arr->arr.type != GGUF_VT_ARRAY) {
        int64_t v = gguf_arr_i64(arr, 0);
        *out = v < 0 ? 0 : (uint64_t)v;
        return true;
    }
    return false;
}

static void quant_model_facts(const gguf_file *f, mix_model *m) {
    memset(m, 0, sizeof *m);
    gguf_str s;
    char arch[128] = "";
    if (gguf_get_str(f, "general.architecture", &s) && s.len < sizeof arch) {
        memcpy(arch, s.ptr, s.len);
        arch[s.len] = '\0';
    }
    uint64_t n_layer = 0, n_expert = 0, n_head = 0, n_head_kv = 0;
    quant_arch_u64(f, arch, "block_count", &n_layer);
    quant_arch_u64(f, arch, "expert_count", &n_expert);
    quant_arch_u64(f, arch, "attention.head_count", &n_head);
    if (!quant_arch_u64(f, arch, "attention.head_count_kv", &n_head_kv)) n_head_kv = n_head;
    m->n_layer = n_layer > 1u << 20 ? 1 << 20 : (int)n_layer;
    m->n_expert = n_expert > 1u << 20 ? 1 << 20 : (int)n_expert;
    m->n_gqa = n_head_kv > 0 ? (int)(n_head / n_head_kv) : 0;
    m->is_falcon = strcmp(arch, "falcon") == 0;
    m->is_70b = strcmp(arch, "llama") == 0 && n_layer == 80 && n_head != n_head_kv;
}

/* ---- llama.cpp's tensor order ----------------------------------------------------- */

typedef struct quant_entry {
    char    *name;    /* NUL-terminated copy */
    int      layer;   /* N of "blk.N.", -1 otherwise */
    uint64_t index;   /* index in the input file */
} quant_entry;

static int quant_entry_cmp(const void *a, const void *b) {
    const quant_entry *x = a, *y = b;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* entries[k] = the k-th tensor in processing order. Caller frees with quant_entries_free. */
static quant_entry *quant_entries_sorted(const gguf_file *f) {
    quant_entry *e = q_xcalloc(f->n_tensors ? f->n_tensors : 1, sizeof *e);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        e[i].name = gguf_str_dup(f->tensors[i].name);
        e[i].index = i;
        e[i].layer = -1;
        int layer;
        if (sscanf(e[i].name, "blk.%d.", &layer) == 1) e[i].layer = layer;
    }
    qsort(e, f->n_tensors, sizeof *e, quant_entry_cmp);
    return e;
}

static void quant_entries_free(quant_entry *e, uint64_t n) {
    if (!e) return;
    for (uint64_t i = 0; i < n; i++) free(e[i].name);
    free(e);
}

/* Plans in processing order; types[k] is for entries[k]. */
static q_status quant_plan_sorted(const gguf_file *f, const quant_entry *e, q_quant_target t, q_type *types,
                                  uint64_t *n_fallback, q_error *err) {
    mix_model m;
    quant_model_facts(f, &m);
    mix_tensor *mt = q_xcalloc(f->n_tensors ? f->n_tensors : 1, sizeof *mt);
    for (uint64_t k = 0; k < f->n_tensors; k++) {
        const gguf_tensor_info *ti = &f->tensors[e[k].index];
        mt[k].name = e[k].name;
        for (int d = 0; d < 4; d++) mt[k].ne[d] = ti->ne[d];
        mt[k].type = ti->type;
    }
    q_status s = mix_plan(&m, t, mt, f->n_tensors, types, n_fallback, err);
    free(mt);
    return s;
}

q_status q_quantize_plan(const gguf_file *f, q_quant_target t, q_type *types, uint64_t *n_fallback,
                         q_error *err) {
    quant_entry *e = quant_entries_sorted(f);
    q_type *sorted = q_xcalloc(f->n_tensors ? f->n_tensors : 1, sizeof *sorted);
    q_status s = quant_plan_sorted(f, e, t, sorted, n_fallback, err);
    if (s == Q_OK)
        for (uint64_t k = 0; k < f->n_tensors; k++) types[e[k].index] = sorted[k];
    free(sorted);
    quant_entries_free(e, f->n_tensors);
    return s;
}

/* ---- conversion ------------------------------------------------------------------- */

typedef struct quant_job {
    const gguf_file   *f;
    const quant_entry *entries;
    const q_type      *types;        /* per entry */
    pool              *pool;
    float             *scratch;      /* (n_threads, max_ne0) f32 rows */
    int64_t            max_ne0;
    const q_quantize_params *params;
    uint64_t           bytes_done, bytes_total;

    /* the tensor being converted */
    const uint8_t *src;
    uint8_t       *dst;
    q_type         src_type, dst_type;
    int64_t        ne0, n_rows, rows_per_task;
    size_t         src_row, dst_row;  /* bytes per row */
    _Atomic int64_t bad_row;          /* a row with a non-finite value, or -1 */
} quant_job;

/* Rows [task * rows_per_task, ...) of the current tensor. */
static void quant_rows_task(void *vjob, int64_t task, int i_thread) {
    quant_job *j = vjob;
    const q_type_traits *st = q_type_get(j->src_type);
    const q_type_traits *dt = q_type_get(j->dst_type);
    float *row = j->scratch + (size_t)i_thread * (size_t)j->max_ne0;
    int64_t r0 = task * j->rows_per_task;
    int64_t r1 = Q_MIN(r0 + j->rows_per_task, j->n_rows);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *src = j->src + (size_t)r * j->src_row;
        uint8_t *dst = j->dst + (size_t)r * j->dst_row;
        const float *x;
        if (j->src_type == Q_TYPE_F32 && ((uintptr_t)src % sizeof(float)) == 0) {
            x = (const float *)(const void *)src;
        } else if (j->src_type == Q_TYPE_F32) {
            memcpy(row, src, j->src_row);
            x = row;
        } else {
            st->to_float(src, row, j->ne0);
            x = row;
        }
        /* A NaN or infinity would poison a whole block's scale: refuse, as llama.cpp's
         * row validation does. */
        bool finite = true;
        for (int64_t k = 0; k < j->ne0; k++) finite &= isfinite(x[k]) != 0;
        if (!finite) {
            int64_t none = -1;
            atomic_compare_exchange_strong(&j->bad_row, &none, r);
            continue;
        }
        if (j->dst_type == Q_TYPE_F32) memcpy(dst, x, j->dst_row);
        else dt->from_float(x, dst, j->ne0);
    }
}

/* Drops the source tensor's pages from our resident set once it is converted, so that
 * memory stays bounded by one tensor rather than growing with the mapped model. Safe on
 * gguf_open's read-only private file mapping: a later read just faults the page in
 * again. Pages shared with the neighbours are kept. */
static void quant_release_source(const gguf_tensor_info *ti) {
#ifdef __linux__
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)ti->data + page - 1) / page * page;
    uintptr_t hi = ((uintptr_t)ti->data + ti->nbytes) / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
#else
    (void)ti;
#endif
}

static q_status quant_fill(void *user, uint64_t i, void *dst, size_t nbytes, q_error *err) {
    quant_job *j = user;
    const quant_entry *e = &j->entries[i];
    const gguf_tensor_info *ti = &j->f->tensors[e->index];
    const q_type to = j->types[i];
    if (to == ti->type) {
        Q_ASSERT(nbytes == ti->nbytes);
        memcpy(dst, ti->data, nbytes);
    } else {
        j->src = ti->data;
        j->dst = dst;
        j->src_type = ti->type;
        j->dst_type = to;
        j->ne0 = ti->ne[0];
        j->n_rows = ti->ne[1] * ti->ne[2] * ti->ne[3];
        j->src_row = q_row_size(ti->type, ti->ne[0]);
        j->dst_row = q_row_size(to, ti->ne[0]);
        Q_ASSERT(j->dst_row * (size_t)j->n_rows == nbytes);
        /* ~32K elements per task: big enough to amortize the hand-off, small enough
         * to balance the threads. */
        j->rows_per_task = Q_MAX((int64_t)1, (int64_t)32768 / Q_MAX(j->ne0, (int64_t)1));
        int64_t n_tasks = (j->n_rows + j->rows_per_task - 1) / j->rows_per_task;
        atomic_store(&j->bad_row, -1);
        pool_run(j->pool, quant_rows_task, j, n_tasks);
        int64_t bad = atomic_load(&j->bad_row);
        if (bad >= 0)
            return q_fail(err, Q_ERR_FORMAT, "tensor %s: row %lld holds a NaN or infinity; cannot convert it to %s",
                          e->name, (long long)bad, q_type_name(to));
    }
    quant_release_source(ti);
    j->bytes_done += ti->nbytes;
    if (j->params->progress) j->params->progress(j->params->progress_user, j->bytes_done, j->bytes_total, e->name);
    return Q_OK;
}

/* Every change of type must be one we can compute. */
static q_status quant_check_conversions(const gguf_file *f, const quant_entry *e, const q_type *types, q_error *err) {
    for (uint64_t k = 0; k < f->n_tensors; k++) {
        const gguf_tensor_info *ti = &f->tensors[e[k].index];
        q_type to = types[k];
        if (to == ti->type) continue;
        const q_type_traits *st = q_type_get(ti->type);
        const q_type_traits *dt = q_type_get(to);
        bool float_src = ti->type == Q_TYPE_F32 || ti->type == Q_TYPE_F16 || ti->type == Q_TYPE_BF16;
        if (!float_src)
            return q_fail(err, Q_ERR_UNSUPPORTED,
                          "tensor %s is %s: only F32/F16/BF16 tensors can be converted (target %s; requantizing is not supported)",
                          e[k].name, q_type_name(ti->type), q_type_name(to));
        if (!st || (ti->type != Q_TYPE_F32 && !st->to_float))
            return q_fail(err, Q_ERR_UNSUPPORTED, "tensor %s: no conversion from %s", e[k].name, q_type_name(ti->type));
        if (!dt || (to != Q_TYPE_F32 && !dt->from_float))
            return q_fail(err, Q_ERR_UNSUPPORTED, "tensor %s: no quantizer for type %s", e[k].name, q_type_name(to));
        if (ti->ne[0] % dt->blck_size != 0)   /* mix.c guarantees it; cheap to keep honest */
            return q_fail(err, Q_ERR_UNSUPPORTED, "tensor %s: row length %lld is not a multiple of %s's block %lld",
                          e[k].name, (long long)ti->ne[0], q_type_name(to), (long long)dt->blck_size);
    }
    return Q_OK;
}

/* Key/values in input order, minus the ones llama.cpp drops or re-sets; then the two
 * it appends (gguf's set removes the old key and appends the new one). */
static void quant_copy_kvs(const gguf_file *f, gguf_writer *w, q_ftype ftype) {
    static const char *const skip[] = {
        "general.quantization_version", "general.file_type", "split.no", "split.count", "split.tensors.count",
    };
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        bool drop = false;
        for (size_t k = 0; k < Q_ARRAY_LEN(skip) && !drop; k++) drop = gguf_str_eq(kv->key, skip[k]);
        if (!drop) gguf_writer_set_value(w, kv->key, &kv->val);
    }
    gguf_writer_set_u32(w, "general.quantization_version", 2);   /* GGML_QNT_VERSION */
    gguf_writer_set_u32(w, "general.file_type", (uint32_t)ftype);
}

q_status q_quantize_file(const char *in_path, const char *out_path, const q_quantize_params *params,
                         q_quantize_stats *stats, q_error *err) {
    if (!in_path || !out_path || !params)
        return q_fail(err, Q_ERR_INVALID_ARG, "q_quantize_file: NULL argument");
    if (!q_ftype_name(params->target.ftype))
        return q_fail(err, Q_ERR_INVALID_ARG, "unsupported file type %d", (int)params->target.ftype);
    if (stats) memset(stats, 0, sizeof *stats);

    gguf_file *f = NULL;
    q_status s = gguf_open(in_path, &f, err);
    if (s != Q_OK) return s;

    const uint64_t n = f->n_tensors;
    quant_entry *e = quant_entries_sorted(f);
    q_type *types = q_xcalloc(n ? n : 1, sizeof *types);
    uint64_t n_fallback = 0;
    gguf_writer *w = NULL;
    pool *pl = NULL;
    float *scratch = NULL;

    s = quant_plan_sorted(f, e, params->target, types, &n_fallback, err);
    if (s == Q_OK) s = quant_check_conversions(f, e, types, err);
    if (s != Q_OK) goto done;

    w = gguf_writer_new();
    quant_copy_kvs(f, w, params->target.ftype);
    int64_t max_ne0 = 1;
    uint64_t n_converted = 0, bytes_total = 0;
    for (uint64_t k = 0; k < n; k++) {
        const gguf_tensor_info *ti = &f->tensors[e[k].index];
        gguf_writer_add_tensor(w, e[k].name, types[k], ti->n_dims, ti->ne, NULL);
        max_ne0 = Q_MAX(max_ne0, ti->ne[0]);
        n_converted += types[k] != ti->type;
        bytes_total += ti->nbytes;
    }

    pl = pool_create(params->n_threads);
    const int n_threads = pool_n_threads(pl);
    scratch = malloc((size_t)n_threads * (size_t)max_ne0 * sizeof *scratch);
    if (!scratch) {
        s = q_fail(err, Q_ERR_NOMEM, "cannot allocate %d scratch rows of %lld floats", n_threads, (long long)max_ne0);
        goto done;
    }
    quant_job job = {
        .f = f, .entries = e, .types = types, .pool = pl, .scratch = scratch, .max_ne0 = max_ne0,
        .params = params, .bytes_total = bytes_total,
    };
    s = gguf_writer_write(w, out_path, quant_fill, &job, err);
    if (s == Q_OK && stats) {
        struct stat st;
        stats->in_size = f->size;
        stats->out_size = stat(out_path, &st) == 0 ? (uint64_t)st.st_size : 0;
        stats->n_tensors = n;
        stats->n_converted = n_converted;
        stats->n_fallback = n_fallback;
    }

done:
    free(scratch);
    pool_free(pl);
    gguf_writer_free(w);
    free(types);
    quant_entries_free(e, n);
    gguf_close(f);
    return s;
}
