/* test_prefix_tree.c — src/server/prefix_tree.c: hand-made cases for match, insert, split,
 * locks, LRU eviction and clear, then long random runs checked step by step against a
 * brute-force model of the same operations: an uncompressed set of cached prefixes, one
 * entry per (token path, cell, last-use tick, lock count), searched linearly. The model
 * knows nothing of nodes, splits or edges, so it checks the tree's compression too. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "server/prefix_tree.h"

/* ---- hand-made cases ---- */

typedef struct cell_log { int32_t cells[4096]; int n; } cell_log;
static void log_cell(void *arg, int32_t cell) {
    cell_log *l = arg;
    assert_true(l->n < 4096);
    l->cells[l->n++] = cell;
}

static void test_match_insert_split(void **state) {
    (void)state;
    prefix_tree *t = prefix_tree_new();
    prefix_node *end, *end2;
    int32_t cells[8];
    const q_token a[] = { 1, 2, 3, 4, 5 };
    assert_int_equal(prefix_tree_match(t, a, 5, cells, &end), 0);

    int32_t ca[] = { 10, 11, 12, 13, 14 };
    assert_int_equal(prefix_tree_insert(t, a, ca, 5, &end), 0);
    assert_int_equal(prefix_tree_tokens(t), 5);
    assert_int_equal(prefix_tree_nodes(t), 1);

    /* a diverging insert splits the edge after the common part */
    const q_token b[] = { 1, 2, 9, 9 };
    int32_t cb[] = { 20, 21, 22, 23 };
    assert_int_equal(prefix_tree_insert(t, b, cb, 4, &end2), 2);
    assert_int_equal(cb[0], 10);   /* the tree's cells replace the caller's duplicates */
    assert_int_equal(cb[1], 11);
    assert_int_equal(cb[2], 22);
    assert_int_equal(prefix_tree_tokens(t), 7);
    assert_int_equal(prefix_tree_nodes(t), 3);
    prefix_tree_check(t);

    /* a match ending inside an edge splits it too */
    const q_token c[] = { 1, 2, 3, 7 };
    assert_int_equal(prefix_tree_match(t, c, 4, cells, &end), 3);
    assert_int_equal(cells[0], 10);
    assert_int_equal(cells[2], 12);
    assert_int_equal(prefix_tree_nodes(t), 4);
    assert_int_equal(prefix_tree_peek(t, a, 5, cells), 5);
    assert_int_equal(cells[4], 14);
    assert_int_equal(prefix_tree_peek(t, a, 3, NULL), 3);
    prefix_tree_check(t);

    /* inserting a cached sequence again takes nothing */
    int32_t ca2[] = { 30, 31, 32, 33, 34 };
    assert_int_equal(prefix_tree_insert(t, a, ca2, 5, &end), 5);
    assert_memory_equal(ca2, ca, sizeof ca);
    assert_int_equal(prefix_tree_tokens(t), 7);
    prefix_tree_free(t);
}

static void test_lock_and_lru(void **state) {
    (void)state;
    prefix_tree *t = prefix_tree_new();
    prefix_node *ea, *eb;
    const q_token a[] = { 1, 2, 3 }, b[] = { 1, 5, 6 };
    int32_t ca[] = { 0, 1, 2 }, cb[] = { 9, 3, 4 };
    prefix_tree_insert(t, a, ca, 3, &ea);   /* older */
    prefix_tree_insert(t, b, cb, 3, &eb);   /* newer; shares token 1 (cell 0) */
    assert_int_equal(prefix_tree_evictable(t), 5);

    /* the least recently used leaf goes first, deepest token first, one token at a time */
    cell_log l = { .n = 0 };
    assert_int_equal(prefix_tree_evict(t, 1, log_cell, &l), 1);
    assert_int_equal(l.cells[0], 2);
    /* using a refreshes it: b is now the oldest */
    int32_t cells[3];
    prefix_node *end;
    assert_int_equal(prefix_tree_match(t, a, 3, cells, &end), 2);
    l.n = 0;
    assert_int_equal(prefix_tree_evict(t, 2, log_cell, &l), 2);
    assert_int_equal(l.cells[0], 4);
    assert_int_equal(l.cells[1], 3);

    /* a locked path is never evicted; its shared ancestor neither */
    prefix_tree_lock(end);
    assert_int_equal(prefix_tree_evictable(t), 0);
    l.n = 0;
    assert_int_equal(prefix_tree_evict(t, 10, log_cell, &l), 0);
    assert_int_equal(prefix_tree_tokens(t), 2);
    prefix_tree_check(t);
    prefix_tree_unlock(end);
    assert_int_equal(prefix_tree_evict(t, 10, log_cell, &l), 2);
    assert_int_equal(l.cells[0], 1);
    assert_int_equal(l.cells[1], 0);
    assert_int_equal(prefix_tree_tokens(t), 0);
    assert_int_equal(prefix_tree_nodes(t), 0);

    /* a lock survives a split: the held node keeps ending the same path */
    const q_token c[] = { 7, 8, 9, 10 };
    int32_t cc[] = { 40, 41, 42, 43 };
    prefix_tree_insert(t, c, cc, 4, &end);
    prefix_tree_lock(end);
    const q_token d[] = { 7, 8, 1 };
    int32_t cd[] = { 50, 51, 52 };
    prefix_tree_insert(t, d, cd, 3, &eb);
    assert_int_equal(prefix_tree_evictable(t), 1);   /* only d's own token */
    prefix_tree_unlock(end);
    assert_int_equal(prefix_tree_evictable(t), 5);
    l.n = 0;
    prefix_tree_clear(t, log_cell, &l);
    assert_int_equal(l.n, 5);
    assert_int_equal(prefix_tree_tokens(t), 0);
    prefix_tree_check(t);
    prefix_tree_free(t);
}

/* ---- the brute-force model ---- */

enum { MAXLEN = 12, MAXENT = 4096, ALPHA = 3, MAXHELD = 64 };

typedef struct entry {
    q_token  path[MAXLEN];   /* the cached prefix path[0..len) */
    int      len;
    int32_t  cell;           /* the cell of its last token */
    uint64_t stamp;
    int      lock;
} entry;

typedef struct model {
    entry    e[MAXENT];
    int      n;
    uint64_t tick;
} model;

static int model_find(const model *m, const q_token *p, int len) {
    for (int i = 0; i < m->n; i++)
        if (m->e[i].len == len && !memcmp(m->e[i].path, p, (size_t)len * sizeof *p)) return i;
    return -1;
}

/* longest cached prefix of p[0..n): stamps it, writes its cells */
static int model_match(model *m, const q_token *p, int n, int32_t *cells) {
    m->tick++;
    int L = 0;
    while (L < n) {
        const int i = model_find(m, p, L + 1);
        if (i < 0) break;
        m->e[i].stamp = m->tick;
        cells[L++] = m->e[i].cell;
    }
    return L;
}

static int model_insert(model *m, const q_token *p, int32_t *cells, int n) {
    m->tick++;
    int have = -1;
    for (int L = 1; L <= n; L++) {
        int i = model_find(m, p, L);
        if (i < 0) {
            if (have < 0) have = L - 1;
            assert_true(m->n < MAXENT);
            i = m->n++;
            memcpy(m->e[i].path, p, (size_t)L * sizeof *p);
            m->e[i].len = L;
            m->e[i].cell = cells[L - 1];
            m->e[i].lock = 0;
        } else {
            cells[L - 1] = m->e[i].cell;
        }
        m->e[i].stamp = m->tick;
    }
    return have < 0 ? n : have;
}

static void model_lock(model *m, const q_token *p, int len, int d) {
    for (int L = 1; L <= len; L++) {
        const int i = model_find(m, p, L);
        assert_true(i >= 0);
        m->e[i].lock += d;
    }
}

static bool model_is_leaf(const model *m, int i) {
    for (int j = 0; j < m->n; j++)
        if (m->e[j].len == m->e[i].len + 1 && !memcmp(m->e[j].path, m->e[i].path, (size_t)m->e[i].len * sizeof(q_token)))
            return false;
    return true;
}

/* evicts one token at a time: the unlocked leaf with the oldest stamp (leaf stamps are
 * distinct, which the model asserts) */
static int model_evict(model *m, int n, int32_t *out) {
    int done = 0;
    while (done < n) {
        int best = -1;
        for (int i = 0; i < m->n; i++) {
            if (m->e[i].lock || !model_is_leaf(m, i)) continue;
            if (best >= 0) assert_true(m->e[i].stamp != m->e[best].stamp);
            if (best < 0 || m->e[i].stamp < m->e[best].stamp) best = i;
        }
        if (best < 0) break;
        out[done++] = m->e[best].cell;
        m->e[best] = m->e[--m->n];
    }
    return done;
}

static int model_evictable(const model *m) {
    int n = 0;
    for (int i = 0; i < m->n; i++) n += m->e[i].lock == 0;
    return n;
}

typedef struct held {
    prefix_node *node;
    q_token      path[MAXLEN];
    int          len;
} held;

static uint64_t rng_state;
static uint32_t rnd(uint32_t n) {   /* xorshift64*, enough for test sequences */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ull) >> 33) % n;
}

/* the tree holds exactly the model's entries, with the same cells */
static void compare_content(const prefix_tree *t, const model *m) {
    prefix_tree_check(t);
    assert_int_equal(prefix_tree_tokens(t), m->n);
    assert_int_equal(prefix_tree_evictable(t), model_evictable(m));
    int32_t cells[MAXLEN];
    for (int i = 0; i < m->n; i++) {
        const entry *e = &m->e[i];
        assert_int_equal(prefix_tree_peek(t, e->path, (size_t)e->len, cells), e->len);
        assert_int_equal(cells[e->len - 1], e->cell);
    }
}

static void run_random(uint64_t seed, int n_ops) {
    rng_state = seed;
    prefix_tree *t = prefix_tree_new();
    static model m;
    memset(&m, 0, sizeof m);
    held h[MAXHELD];
    int n_held = 0;
    int32_t next_cell = 0;
    for (int op = 0; op < n_ops; op++) {
        q_token seq[MAXLEN];
        const int len = (int)rnd(MAXLEN + 1);
        for (int i = 0; i < len; i++) seq[i] = (q_token)rnd(ALPHA);
        const uint32_t what = rnd(100);
        prefix_node *end = NULL;
        int L = -1;
        if (what < 35) {   /* match */
            int32_t got[MAXLEN], want[MAXLEN];
            L = model_match(&m, seq, len, want);
            assert_int_equal(prefix_tree_match(t, seq, (size_t)len, got, &end), L);
            assert_memory_equal(got, want, (size_t)L * sizeof *got);
        } else if (what < 70) {   /* insert with fresh cells */
            int32_t got[MAXLEN], want[MAXLEN];
            for (int i = 0; i < len; i++) got[i] = want[i] = next_cell++;
            const int have = model_insert(&m, seq, want, len);
            assert_int_equal(prefix_tree_insert(t, seq, got, (size_t)len, &end), have);
            assert_memory_equal(got, want, (size_t)len * sizeof *got);
            L = len;
        } else if (what < 85) {   /* release a lock */
            if (n_held) {
                const int k = (int)rnd((uint32_t)n_held);
                prefix_tree_unlock(h[k].node);
                model_lock(&m, h[k].path, h[k].len, -1);
                h[k] = h[--n_held];
            }
        } else if (what < 99) {   /* evict */
            const int n = (int)rnd(10);
            static cell_log l;
            l.n = 0;
            int32_t want[MAXENT];
            const int want_n = model_evict(&m, n, want);
            assert_int_equal(prefix_tree_evict(t, (size_t)n, log_cell, &l), want_n);
            assert_int_equal(l.n, want_n);
            assert_memory_equal(l.cells, want, (size_t)want_n * sizeof *want);
        } else {   /* clear: every lock released first */
            for (int k = 0; k < n_held; k++) prefix_tree_unlock(h[k].node);
            n_held = 0;
            static cell_log l;
            l.n = 0;
            const int before = m.n;
            prefix_tree_clear(t, log_cell, &l);
            assert_int_equal(l.n, before);
            m.n = 0;
        }
        /* lock about half of the paths a match or insert returned */
        if (L > 0 && n_held < MAXHELD && rnd(2)) {
            prefix_tree_lock(end);
            model_lock(&m, seq, L, +1);
            h[n_held].node = end;
            memcpy(h[n_held].path, seq, (size_t)L * sizeof *seq);
            h[n_held++].len = L;
        }
        compare_content(t, &m);
    }
    for (int k = 0; k < n_held; k++) prefix_tree_unlock(h[k].node);
    prefix_tree_free(t);
}

static void test_random_against_model(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= 8; seed++) run_random(seed * 0x9E3779B97F4A7C15ull, 3000);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_insert_split),
        cmocka_unit_test(test_lock_and_lru),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
