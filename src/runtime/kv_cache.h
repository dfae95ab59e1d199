/* kv_cache.h — the key/value cache: per layer, n_ctx cells of K and V rows (F16 by
 * default as llama.cpp, or F32), plus per-cell metadata shared by all layers: the
 * cell's position and the set of sequences it belongs to (a bitmask, so several
 * sequences can share a prompt prefix and independent requests share one cache).
 *
 * K is stored after RoPE. A cell is free when its sequence set is empty. Positions can
 * be shifted (q_kv_seq_add); the K rows of shifted cells are re-roped by the pending
 * delta before the next forward pass (kv_cache_apply_shift), as llama.cpp does.
 *
 * Memory: kv_cache_init allocates one block for all layers; kv_cache_free releases it. */
#ifndef QUARREL_RUNTIME_KV_CACHE_H
#define QUARREL_RUNTIME_KV_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

#define Q_KV_MAX_SEQ 64

typedef struct q_kv_cell {
    q_pos    pos;     /* -1 when free */
    q_pos    delta;   /* pending K re-rope (sum of shifts since the last apply) */
    uint64_t seq;     /* bit s set = cell belongs to sequence s */
} q_kv_cell;

typedef struct q_kv_cache {
    int32_t    n_ctx;
    int32_t    n_layer;
    int32_t    n_seq_max;
    q_type     type;        /* Q_TYPE_F16 or Q_TYPE_F32 */
    q_kv_cell *cells;       /* [n_ctx] */
    int32_t    used;        /* cells with a nonempty sequence set */
    bool       has_shift;   /* some cell has delta != 0 */
    int32_t   *width;       /* [n_layer] floats per K (= V) row: n_head_kv * head_dim */
    size_t    *row_bytes;   /* [n_layer] bytes per row */
    uint8_t  **k;           /* [n_layer] (n_ctx, width) */
    uint8_t  **v;           /* [n_layer] (n_ctx, width) */
    uint8_t   *buf;         /* all K and V rows */
} q_kv_cache;

q_status kv_cache_init(q_kv_cache *kv, const q_model *m, int32_t n_ctx, int32_t n_seq_max,
                       q_type type, q_error *err);
void     kv_cache_free(q_kv_cache *kv);

/* Picks n free cells (lowest indexes first) into cells[]; false if fewer are free. */
bool     kv_cache_find_slots(const q_kv_cache *kv, int32_t n, int32_t *cells);
/* Claims cell for (pos, seq). */
void     kv_cache_claim(q_kv_cache *kv, int32_t cell, q_pos pos, q_seq_id seq);
/* One past the highest occupied cell: attention scans [0, n_scan). */
int32_t  kv_cache_n_scan(const q_kv_cache *kv);

/* Whether a token of seq at pos may attend to cell c (causal, same sequence, window). */
static inline bool kv_cache_visible(const q_kv_cache *kv, int32_t c, q_seq_id seq, q_pos pos,
                                    int32_t swa_window) {
    const q_kv_cell *cell = &kv->cells[c];
    if (!(cell->seq & (1ull << seq)) || cell->pos > pos) return false;
    return swa_window <= 0 || pos - cell->pos < swa_window;
}

void  kv_cache_clear(q_kv_cache *kv);
bool  kv_cache_seq_rm(q_kv_cache *kv, q_seq_id seq, q_pos p0, q_pos p1);
void  kv_cache_seq_cp(q_kv_cache *kv, q_seq_id src, q_seq_id dst, q_pos p0, q_pos p1);
void  kv_cache_seq_keep(q_kv_cache *kv, q_seq_id seq);
void  kv_cache_seq_add(q_kv_cache *kv, q_seq_id seq, q_pos p0, q_pos p1, q_pos delta);
q_pos kv_cache_seq_pos_max(const q_kv_cache *kv, q_seq_id seq);

/* Re-ropes K of every cell with a pending delta (every layer), then clears deltas. */
struct q_backend;
void  kv_cache_apply_shift(q_kv_cache *kv, const q_model *m, const struct q_backend *be);

#endif
