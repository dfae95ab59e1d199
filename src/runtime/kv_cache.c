/* kv_cache.c — cell bookkeeping and sequence operations of the KV cache (layout and
 * contract in kv_cache.h). */
#include "runtime/kv_cache.h"

#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "cpu/backend.h"

q_status kv_cache_init(q_kv_cache *kv, const q_model *m, int32_t n_ctx, int32_t n_seq_max,
                       q_type type, q_error *err) {
    memset(kv, 0, sizeof *kv);
    if (type != Q_TYPE_F16 && type != Q_TYPE_F32)
        return q_fail(err, Q_ERR_UNSUPPORTED, "KV cache type %s: only f16 and f32 are supported",
                      q_type_name(type));
    if (n_seq_max < 1 || n_seq_max > Q_KV_MAX_SEQ)
        return q_fail(err, Q_ERR_INVALID_ARG, "n_seq_max %d out of range 1..%d", n_seq_max, Q_KV_MAX_SEQ);
    const int32_t L = m->hp.n_layer;
    kv->n_ctx = n_ctx;
    kv->n_layer = L;
    kv->n_seq_max = n_seq_max;
    kv->type = type;
    const size_t esz = type == Q_TYPE_F16 ? 2 : 4;
    kv->width = q_xcalloc((size_t)L, sizeof *kv->width);
    kv->row_bytes = q_xcalloc((size_t)L, sizeof *kv->row_bytes);
    kv->k = q_xcalloc((size_t)L, sizeof *kv->k);
    kv->v = q_xcalloc((size_t)L, sizeof *kv->v);
    size_t total = 0;
    for (int32_t l = 0; l < L; l++) {
        kv->width[l] = m->layers[l].n_head_kv * m->hp.head_dim;
        kv->row_bytes[l] = (size_t)kv->width[l] * esz;
        total += 2 * kv->row_bytes[l] * (size_t)n_ctx;
    }
    kv->buf = calloc(total ? total : 1, 1);
    kv->cells = calloc((size_t)n_ctx, sizeof *kv->cells);
    kv->seq_cells = malloc((size_t)n_seq_max * (size_t)(n_ctx > 0 ? n_ctx : 1) * sizeof *kv->seq_cells);
    if (!kv->buf || !kv->cells || !kv->seq_cells) {
        kv_cache_free(kv);
        return q_fail(err, Q_ERR_NOMEM, "cannot allocate a KV cache of %zu bytes (n_ctx %d)", total, n_ctx);
    }
    size_t off = 0;
    for (int32_t l = 0; l < L; l++) {
        kv->k[l] = kv->buf + off;
        off += kv->row_bytes[l] * (size_t)n_ctx;
        kv->v[l] = kv->buf + off;
        off += kv->row_bytes[l] * (size_t)n_ctx;
    }
    kv_cache_clear(kv);
    return Q_OK;
}

void kv_cache_free(q_kv_cache *kv) {
    free(kv->width);
    free(kv->row_bytes);
    free(kv->k);
    free(kv->v);
    free(kv->buf);
    free(kv->cells);
    free(kv->seq_cells);
    memset(kv, 0, sizeof *kv);
}

bool kv_cache_find_slots(const q_kv_cache *kv, int32_t n, int32_t *cells) {
    if (n > kv->n_ctx - kv->used) return false;
    int32_t k = 0;
    for (int32_t c = 0; c < kv->n_ctx && k < n; c++)
        if (kv->cells[c].seq == 0) cells[k++] = c;
    return k == n;
}

void kv_cache_claim(q_kv_cache *kv, int32_t cell, q_pos pos, q_seq_id seq) {
    q_kv_cell *c = &kv->cells[cell];
    Q_ASSERT(c->seq == 0);
    c->pos = pos;
    c->delta = 0;
    c->seq = 1ull << seq;
    kv->used++;
    kv->seq_indexed = 0;
}

/* Orders one sequence's cells by position (then cell index). Attention sums in list
 * order, so a sequence whose cells are scattered (reused holes, a prefix shared from
 * another sequence) sums exactly as if it had been decoded alone into fresh cells. */
static int cmp_cell_pos(const void *a, const void *b, void *arg) {
    const q_kv_cell *cells = arg;
    const int32_t ca = *(const int32_t *)a, cb = *(const int32_t *)b;
    if (cells[ca].pos != cells[cb].pos) return cells[ca].pos < cells[cb].pos ? -1 : 1;
    return ca < cb ? -1 : ca > cb;
}

static void sort_by_pos(const q_kv_cache *kv, int32_t *list, int32_t n) {
    for (int32_t i = 1; i < n; i++)
        if (kv->cells[list[i]].pos < kv->cells[list[i - 1]].pos) {   /* the common case is sorted */
            qsort_r(list, (size_t)n, sizeof *list, cmp_cell_pos, kv->cells);
            return;
        }
}

void kv_cache_seq_index_build(q_kv_cache *kv, uint64_t mask) {
    mask &= kv->n_seq_max >= 64 ? ~0ull : (1ull << kv->n_seq_max) - 1;
    for (int32_t s = 0; s < kv->n_seq_max; s++)
        if (mask & (1ull << s)) kv->seq_n[s] = 0;
    const int32_t n_scan = kv_cache_n_scan(kv);
    for (int32_t c = 0; c < n_scan; c++) {
        uint64_t m = kv->cells[c].seq & mask;
        while (m) {   /* each sequence of the cell, lowest bit first */
            const int32_t s = __builtin_ctzll(m);
            kv->seq_cells[(size_t)s * (size_t)kv->n_ctx + (size_t)kv->seq_n[s]++] = c;
            m &= m - 1;
        }
    }
    for (int32_t s = 0; s < kv->n_seq_max; s++)
        if (mask & (1ull << s)) sort_by_pos(kv, kv->seq_cells + (size_t)s * (size_t)kv->n_ctx, kv->seq_n[s]);
    kv->seq_indexed = mask;
}

int32_t kv_cache_n_scan(const q_kv_cache *kv) {
    for (int32_t c = kv->n_ctx - 1; c >= 0; c--)
        if (kv->cells[c].seq) return c + 1;
    return 0;
}

static void cell_free(q_kv_cache *kv, q_kv_cell *c) {
    if (c->seq) kv->used--;
    c->seq = 0;
    c->pos = -1;
    c->delta = 0;
}

void kv_cache_clear(q_kv_cache *kv) {
    for (int32_t c = 0; c < kv->n_ctx; c++) {
        kv->cells[c].pos = -1;
        kv->cells[c].delta = 0;
        kv->cells[c].seq = 0;
    }
    kv->used = 0;
    kv->has_shift = false;
    kv->seq_indexed = 0;
}

static bool in_range(q_pos p, q_pos p0, q_pos p1) {
    return p >= (p0 < 0 ? 0 : p0) && (p1 < 0 || p < p1);
}

bool kv_cache_seq_rm(q_kv_cache *kv, q_seq_id seq, q_pos p0, q_pos p1) {
    kv->seq_indexed = 0;
    if (seq >= kv->n_seq_max) return false;
    for (int32_t i = 0; i < kv->n_ctx; i++) {
        q_kv_cell *c = &kv->cells[i];
        if (!c->seq || !in_range(c->pos, p0, p1)) continue;
        if (seq < 0 || c->seq == (1ull << seq)) cell_free(kv, c);   /* last owner leaves */
        else c->seq &= ~(1ull << seq);
    }
    return true;
}

void kv_cache_seq_cp(q_kv_cache *kv, q_seq_id src, q_seq_id dst, q_pos p0, q_pos p1) {
    kv->seq_indexed = 0;
    if (src == dst || src < 0 || dst < 0 || src >= kv->n_seq_max || dst >= kv->n_seq_max) return;
    for (int32_t i = 0; i < kv->n_ctx; i++) {
        q_kv_cell *c = &kv->cells[i];
        if ((c->seq & (1ull << src)) && in_range(c->pos, p0, p1)) c->seq |= 1ull << dst;
    }
}

void kv_cache_seq_keep(q_kv_cache *kv, q_seq_id seq) {
    kv->seq_indexed = 0;
    for (int32_t i = 0; i < kv->n_ctx; i++) {
        q_kv_cell *c = &kv->cells[i];
        if (!c->seq) continue;
        if (seq >= 0 && seq < 64 && (c->seq & (1ull << seq))) c->seq = 1ull << seq;
        else cell_free(kv, c);
    }
}

void kv_cache_seq_add(q_kv_cache *kv, q_seq_id seq, q_pos p0, q_pos p1, q_pos delta) {
    kv->seq_indexed = 0;
    if (delta == 0 || seq < 0 || seq >= kv->n_seq_max) return;
    for (int32_t i = 0; i < kv->n_ctx; i++) {
        q_kv_cell *c = &kv->cells[i];
        if (!(c->seq & (1ull << seq)) || !in_range(c->pos, p0, p1)) continue;
        c->pos += delta;
        c->delta += delta;
        kv->has_shift = true;
        if (c->pos < 0) cell_free(kv, c);
    }
}

q_pos kv_cache_seq_pos_max(const q_kv_cache *kv, q_seq_id seq) {
    q_pos mx = -1;
    if (seq < 0 || seq >= kv->n_seq_max) return mx;
    for (int32_t i = 0; i < kv->n_ctx; i++)
        if ((kv->cells[i].seq & (1ull << seq)) && kv->cells[i].pos > mx) mx = kv->cells[i].pos;
    return mx;
}

void kv_cache_cell_seq_add(q_kv_cache *kv, int32_t cell, q_seq_id seq) {
    Q_ASSERT(cell >= 0 && cell < kv->n_ctx && seq >= 0 && seq < kv->n_seq_max);
    q_kv_cell *c = &kv->cells[cell];
    Q_ASSERT(c->seq != 0);   /* only an occupied cell can be shared */
    c->seq |= 1ull << seq;
    kv->seq_indexed = 0;
}

void kv_cache_cell_seq_rm(q_kv_cache *kv, int32_t cell, q_seq_id seq) {
    Q_ASSERT(cell >= 0 && cell < kv->n_ctx && seq >= 0 && seq < kv->n_seq_max);
    q_kv_cell *c = &kv->cells[cell];
    Q_ASSERT(c->seq & (1ull << seq));
    if (c->seq == (1ull << seq)) cell_free(kv, c);
    else c->seq &= ~(1ull << seq);
    kv->seq_indexed = 0;
}

void kv_cache_seq_cells(const q_kv_cache *kv, q_seq_id seq, int32_t n, int32_t *cells) {
    Q_ASSERT(seq >= 0 && seq < kv->n_seq_max);
    for (int32_t p = 0; p < n; p++) cells[p] = -1;
    const uint64_t bit = 1ull << seq;
    int32_t found = 0;
    for (int32_t c = 0; c < kv->n_ctx; c++) {
        const q_kv_cell *cell = &kv->cells[c];
        if (!(cell->seq & bit) || cell->pos >= n) continue;
        Q_ASSERT(cell->pos >= 0 && cells[cell->pos] < 0);   /* one cell per position */
        cells[cell->pos] = c;
        found++;
    }
    Q_ASSERT(found == n);
}

/* Rotating an already-roped K by delta composes into the rotation for pos + delta. The
 * F16 row is widened to F32, rotated and rounded back, as llama.cpp's K-shift does. */
void kv_cache_apply_shift(q_kv_cache *kv, const q_model *m, const q_backend *be) {
    if (!kv->has_shift) return;
    int32_t wmax = 0;
    for (int32_t l = 0; l < kv->n_layer; l++) wmax = Q_MAX(wmax, kv->width[l]);
    float *row = q_xmalloc((size_t)wmax * sizeof(float));
    for (int32_t i = 0; i < kv->n_ctx; i++) {
        q_kv_cell *c = &kv->cells[i];
        if (c->delta == 0) continue;
        if (c->seq) {
            for (int32_t l = 0; l < kv->n_layer; l++) {
                const int32_t w = kv->width[l];
                uint8_t *kr = kv->k[l] + (size_t)i * kv->row_bytes[l];
                if (kv->type == Q_TYPE_F16)
                    for (int32_t d = 0; d < w; d++) row[d] = q_fp16_to_fp32(((uint16_t *)kr)[d]);
                else
                    memcpy(row, kr, (size_t)w * sizeof(float));
                be->rope(row, 1, w, m->layers[l].n_head_kv, m->hp.head_dim, &c->delta, &m->hp.rope);
                if (kv->type == Q_TYPE_F16)
                    for (int32_t d = 0; d < w; d++) ((uint16_t *)kr)[d] = q_fp32_to_fp16(row[d]);
                else
                    memcpy(kr, row, (size_t)w * sizeof(float));
            }
        }
        c->delta = 0;
    }
    free(row);
    kv->has_shift = false;
}
