/* test_kv_cache.c — the cell-level holds of src/runtime/kv_cache.c that the server's
 * prefix cache uses (kv_cache_cell_seq_add / _rm, kv_cache_seq_cells), on
 * llama-gqa-spm512-F32: a prefix held only by a "cache" sequence outlives the sequence that
 * decoded it, and a new sequence given those cells one by one continues with logits
 * bit-identical to the original run's (attention sums by position, not by cell). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "golden_util.h"
#include "quarrel/quarrel.h"
#include "runtime/kv_cache.h"

static const q_token A[12] = { 1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315 };
enum { CACHE = 2 };   /* the cache's own sequence id */

static void decode(q_context *c, const q_token *toks, int n, q_pos p0, q_seq_id seq, float *out, int32_t V) {
    q_batch b = q_batch_init(n);
    for (int i = 0; i < n; i++) q_batch_add(&b, toks[i], p0 + i, seq, true);
    q_error err;
    if (q_decode(c, &b, &err) != Q_OK) fail_msg("decode: %s", err.msg);
    for (int i = 0; i < n; i++) memcpy(out + (size_t)i * V, q_get_logits_ith(c, i), sizeof(float) * (size_t)V);
    q_batch_free(&b);
}

static void test_cache_holds_and_shares_cells(void **state) {
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/models/llama-gqa-spm512-F32.gguf", golden_shared_dir());
    q_model *m = NULL;
    q_error err;
    assert_int_equal(q_model_load(path, &m, &err), Q_OK);
    const int32_t V = q_model_n_vocab(m);
    q_context_params p = q_context_default_params();
    p.n_ctx = 64;
    p.n_seq_max = 3;
    q_context *c = NULL;
    assert_int_equal(q_context_new(m, &p, &c, &err), Q_OK);
    q_kv_cache *kv = kv_cache_of_context(c);
    float *la = malloc(sizeof(float) * (size_t)V * 12), *lx = malloc(sizeof(float) * (size_t)V * 4);

    /* a cell in the way first, so seq 0's cells do not start at cell 0 */
    decode(c, A, 1, 0, 1, lx, V);
    decode(c, A, 12, 0, 0, la, V);
    int32_t cells[12];
    kv_cache_seq_cells(kv, 0, 12, cells);
    for (int i = 0; i < 12; i++) {
        assert_int_equal(kv->cells[cells[i]].pos, i);
        for (int j = 0; j < i; j++) assert_int_not_equal(cells[i], cells[j]);
    }

    /* the cache takes positions 0..7; seq 0 and the bystander go: 8 cells stay */
    for (int i = 0; i < 8; i++) kv_cache_cell_seq_add(kv, cells[i], CACHE);
    q_kv_seq_rm(c, 0, -1, -1);
    q_kv_seq_rm(c, 1, -1, -1);
    assert_int_equal(q_kv_n_used(c), 8);

    /* a new sequence given those cells continues bit for bit as seq 0 did */
    for (int i = 0; i < 8; i++) kv_cache_cell_seq_add(kv, cells[i], 1);
    decode(c, A + 8, 4, 8, 1, lx, V);
    assert_memory_equal(lx, la + (size_t)8 * V, sizeof(float) * (size_t)V * 4);

    /* the cache lets go: its cells stay while seq 1 holds them, then all are free */
    for (int i = 0; i < 8; i++) kv_cache_cell_seq_rm(kv, cells[i], CACHE);
    assert_int_equal(q_kv_n_used(c), 12);
    int32_t cells1[12];
    kv_cache_seq_cells(kv, 1, 12, cells1);
    assert_memory_equal(cells1, cells, 8 * sizeof *cells);
    for (int i = 0; i < 12; i++) kv_cache_cell_seq_rm(kv, cells1[i], 1);
    assert_int_equal(q_kv_n_used(c), 0);

    free(la);
    free(lx);
    q_context_free(c);
    q_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_holds_and_shares_cells),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
