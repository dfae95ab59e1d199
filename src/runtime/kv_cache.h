/* kv_cache.h — the key/value cache: per layer, n_ctx cells of K and V rows (F16 by
 * default as llama.cpp, or F32), plus per-cell metadata shared by all layers: the
 * cell's position and the set of sequences it belongs to (a bitmask, so several
 * sequences can share a prompt prefix and independent requests share one cache).
 *
 * K is stored after RoPE. A cell is free when its sequence set is empty. Positions can
 * be shifted (q_kv_seq_add); the K rows of shifted cells are re-roped by the pending
 * delta before the next forward pass (kv_cache_apply_shift), as llama.cpp does.
 *
 * Sequence index: attention must not pay for other sequences' cells, so before each
 * forward pass kv_cache_seq_index_build lists, for every sequence of the ubatch, the
 * cells it occupies in ascending position (the order attention sums in, see
 * cpu/attention.c), so where a sequence's cells sit never changes its results. The lists are valid until the next cell change (claim, seq_*,
 * clear), which invalidates them; attention asserts its sequence's list is current.
 *
 * Memory: kv_cache_init allocates one block for all layers and the index
 * (n_seq_max x n_ctx cell ids); kv_cache_free releases both. */
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
    int32_t   *seq_cells;   /* [n_seq_max][n_ctx]: row s lists seq s's cells, ascending */
    int32_t    seq_n[Q_KV_MAX_SEQ];   /* entries of each row */
    uint64_t   seq_indexed; /* bit s set = row s is current */
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

/* Rebuilds the cell lists of the sequences in mask (bit s = sequence s): one pass over
 * the occupied cells. Call after the ubatch's cells are claimed, before attention. */
void     kv_cache_seq_index_build(q_kv_cache *kv, uint64_t mask);

/* Whether a token of seq at pos may attend to cell c (causal, same sequence, window). */
static inline bool kv_cache_visible(const q_kv_cache *kv, int32_t c, q_seq_id seq, q_pos pos,
                                    int32_t swa_window) {
    const q_kv_cell *cell = &kv->cells[c];
    if (!(cell->seq & (1ull << seq)) || cell->pos > pos) return false;
    return swa_window <= 0 || pos - cell->pos < swa_window;
}

/* The context's cache (engine.c); for tests and benches that inspect or poison cells. */
struct q_context;
q_kv_cache *kv_cache_of_context(struct q_context *c);

void  kv_cache_clear(q_kv_cache *kv);
bool  kv_cache_seq_rm(q_kv_cache *kv, q_seq_id seq, q_pos p0, q_pos p1);
void  kv_cache_seq_cp(q_kv_cache *kv, q_seq_id src, q_seq_id dst, q_pos p0, q_pos p1);
void  kv_cache_seq_keep(q_kv_cache *kv, q_seq_id seq);
void  kv_cache_seq_add(q_kv_cache *kv, q_seq_id seq, q_pos p0, q_pos p1, q_pos delta);
q_pos kv_cache_seq_pos_max(const q_kv_cache *kv, q_seq_id seq);

/* Cell-level holds, for a cache of prefixes that keeps cells under a sequence id of its
 * own (server/scheduler.c): add seq to an occupied cell; drop seq from a cell (the cell is
 * freed when no sequence is left). */
void  kv_cache_cell_seq_add(q_kv_cache *kv, int32_t cell, q_seq_id seq);
void  kv_cache_cell_seq_rm(q_kv_cache *kv, int32_t cell, q_seq_id seq);
/* Writes the cell of each position p < n of seq to cells[p], for a sequence with exactly
 * one cell per position in [0, n) (asserted). */
void  kv_cache_seq_cells(const q_kv_cache *kv, q_seq_id seq, int32_t n, int32_t *cells);

/* Re-ropes K of every cell with a pending delta (every layer), then clears deltas. */
struct q_backend;
void  kv_cache_apply_shift(q_kv_cache *kv, const q_model *m, const struct q_backend *be);

#endif
