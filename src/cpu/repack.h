/* repack.h — load-time weight repacking: the "x8" layout and its table per kernel set.
 *
 * A matrix whose rows are a multiple of 8 can be rewritten, once at model load, into a
 * layout where the 8 rows of a group sit together block by block, so that one 32-byte
 * load feeds the same 4 positions of 8 rows (one row per int32 lane) and a tile's
 * weights stream as one contiguous run. Sizes do not change: an x8 matrix takes exactly
 * ne[1] * row_bytes bytes, so expert slices and row offsets (r0 * row_bytes, r0 a
 * multiple of 8) address it as they address the row-major one.
 *
 * Layouts (g = row group r / 8, b = block index, nb = blocks per row):
 *   Q4_0 x8: group block (g * nb + b) at byte 144 * (g * nb + b):
 *            [0, 16)    the 8 rows' fp16 scales d, row 0 first
 *            [16, 144)  4 vectors of 32 bytes; vector j, dword r = bytes 4j..4j+3 of row
 *                       r's qs (low nibbles: elements 4j..4j+3, high: 16+4j..16+4j+3)
 *   Q8_0 x8: group block at byte 272 * (g * nb + b):
 *            [0, 16)    the 8 rows' fp16 scales
 *            [16, 272)  8 vectors of 32 bytes; vector q, dword r = quants 4q..4q+3 of row r
 *
 * Not here: the kernels over x8 weights (cpu/repack_avx2.c, cpu/repack_avx512.c), the row-major ones
 * (cpu/kern_avx2_*.c). The scalar kernel set has no repack entries: QUARREL_CPU=scalar
 * never repacks. Memory: q_cpu_repack_model maps one anonymous region per model and
 * stores it in q_model (repack_mem), which q_model_free unmaps; pack functions write
 * into caller memory. */
#ifndef QUARREL_CPU_REPACK_H
#define QUARREL_CPU_REPACK_H

#include <stddef.h>
#include <stdint.h>

#include "cpu/backend.h"

/* Rows per group of the x8 layout. */
#define Q_REPACK_ROWS 8

/* Rewrites nr rows (nr % 8 == 0) of n elements, row-major at src (stride q_row_size),
 * into the x8 layout at dst (the same byte count; src and dst must not overlap). */
typedef void (*q_repack_fn)(int64_t n, int64_t nr, const void *src, void *dst);

typedef struct q_repack_traits {
    q_layout    layout;   /* what pack produces */
    q_repack_fn pack;
    /* A tile over packed weights: as q_gemm_fn, with w the start of the tile's first
     * row group (a multiple of 8 rows from the matrix start), ws = row_bytes (group g of
     * the tile begins at w + 8 g ws) and nr % 8 == 0. Bit-identical to the type's scalar
     * vec_dot on the row-major rows. */
    q_gemm_fn   gemm;
} q_repack_traits;

/* The repack entry of type t in a kernel set, or NULL (none: the type stays row-major). */
const q_repack_traits *q_repack_traits_isa(q_type t, q_cpu_isa isa);
/* Tests only: the AVX-512 set repacks through table (tests/avx512_emu_tables.h: the
 * emulated tiles) instead of its own; with q_cpu_emulate_avx512, before any set is used. */
void q_repack_emulate_avx512(const q_repack_traits *table);
/* The entry in the kernel set every matmul uses (q_cpu_isa_best). */
const q_repack_traits *q_repack_traits_get(q_type t);

/* Whether tensor w (2-D, or 3-D experts) would be repacked by the best kernel set. */
bool q_repack_eligible(const q_tensor *w);

/* Repacks every eligible matmul weight of m (layer matrices and a separate output;
 * never token_embd, nor an output tied to it: get_rows reads those row by row) into
 * anonymous memory, and drops the file pages they came from. QUARREL_REPACK=0 turns it
 * off. Fails only when the memory cannot be mapped. */
q_status q_cpu_repack_model(q_model *m, q_error *err);

/* What q_cpu_repack_model would repack in file f, read from tensor names and shapes
 * alone (no load: for `quarrel info`): the layer matrices and output.weight of the
 * llama-family naming, in a file whose architecture the loader supports (else 0).
 * Returns the tensor count; *bytes their (64-byte aligned) bytes. */
int32_t q_repack_plan_file(const struct gguf_file *f, uint64_t *bytes);

#if defined(__x86_64__)
/* The AVX2 tiles over x8 weights (cpu/repack_avx2.c), q_repack_traits.gemm. */
void q_avx2_gemm_x8_q4_0_q8_0(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws,
                              const void *a, size_t as, float *y, int64_t ldy);
void q_avx2_gemm_x8_q8_0_q8_0(int64_t n, int32_t nr, int32_t nc, const void *w, size_t ws,
                              const void *a, size_t as, float *y, int64_t ldy);
#endif

#endif
