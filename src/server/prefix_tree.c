/* prefix_tree.c — the radix tree of cached token prefixes (contract in prefix_tree.h).
 *
 * Nodes sit in one doubly linked list besides the tree, so eviction can scan them for the
 * least recently used unlocked leaf without a stack. Children are a small array searched by
 * first token (a node rarely has more than a handful). Each node owns its token and cell
 * arrays; splitting copies the upper part out and slides the lower part down in place. */
#include "server/prefix_tree.h"

#include <stdlib.h>
#include <string.h>

#include "core/base.h"

struct prefix_node {
    prefix_node  *parent;           /* NULL for the root */
    prefix_node **kids;             /* [n_kids], distinct first tokens */
    int32_t       n_kids, cap_kids;
    q_token      *toks;             /* [len] the edge's tokens */
    int32_t      *cells;            /* [len] the KV cell of each token */
    size_t        len, cap;
    int32_t       lock;             /* running requests whose path passes through here */
    uint64_t      stamp;            /* tick of the last match/insert through here */
    prefix_node  *prev, *next;      /* all nodes but the root */
};

struct prefix_tree {
    prefix_node  root;
    prefix_node *all;               /* list head */
    uint64_t     tick;
    size_t       n_tokens, n_nodes;
};

prefix_tree *prefix_tree_new(void) {
    return q_xcalloc(1, sizeof(prefix_tree));
}

static void node_free(prefix_node *n) {
    free(n->kids);
    free(n->toks);
    free(n->cells);
    free(n);
}

static void list_unlink(prefix_tree *t, prefix_node *n) {
    if (n->prev) n->prev->next = n->next;
    else t->all = n->next;
    if (n->next) n->next->prev = n->prev;
}

static void kid_add(prefix_node *p, prefix_node *k) {
    if (p->n_kids == p->cap_kids) {
        p->cap_kids = p->cap_kids ? 2 * p->cap_kids : 2;
        p->kids = q_xrealloc(p->kids, (size_t)p->cap_kids * sizeof *p->kids);
    }
    p->kids[p->n_kids++] = k;
    k->parent = p;
}

static void kid_remove(prefix_node *p, prefix_node *k) {
    for (int32_t i = 0; i < p->n_kids; i++)
        if (p->kids[i] == k) { p->kids[i] = p->kids[--p->n_kids]; return; }
    Q_ASSERT(!"child not found");
}

static prefix_node *kid_find(const prefix_node *p, q_token tok) {
    for (int32_t i = 0; i < p->n_kids; i++)
        if (p->kids[i]->toks[0] == tok) return p->kids[i];
    return NULL;
}

static prefix_node *node_new(prefix_tree *t, const q_token *toks, const int32_t *cells, size_t len) {
    prefix_node *n = q_xcalloc(1, sizeof *n);
    n->toks = q_xmalloc(len * sizeof *n->toks);
    n->cells = q_xmalloc(len * sizeof *n->cells);
    memcpy(n->toks, toks, len * sizeof *toks);
    memcpy(n->cells, cells, len * sizeof *cells);
    n->len = n->cap = len;
    n->next = t->all;
    if (t->all) t->all->prev = n;
    t->all = n;
    t->n_nodes++;
    return n;
}

/* Splits n after its first k tokens (0 < k < len): a new node takes tokens [0, k) and
 * n's place under its parent; n keeps [k, len) under it (so a held pointer to n still ends
 * the same path). The halves share n's lock and stamp. Returns the upper half. */
static prefix_node *node_split(prefix_tree *t, prefix_node *n, size_t k) {
    Q_ASSERT(k > 0 && k < n->len);
    prefix_node *up = node_new(t, n->toks, n->cells, k);
    up->lock = n->lock;
    up->stamp = n->stamp;
    prefix_node *p = n->parent;
    for (int32_t i = 0; i < p->n_kids; i++)
        if (p->kids[i] == n) p->kids[i] = up;
    up->parent = p;
    kid_add(up, n);
    n->len -= k;
    memmove(n->toks, n->toks + k, n->len * sizeof *n->toks);
    memmove(n->cells, n->cells + k, n->len * sizeof *n->cells);
    return up;
}

static size_t edge_common(const prefix_node *n, const q_token *toks, size_t n_toks) {
    size_t k = 0;
    while (k < n->len && k < n_toks && n->toks[k] == toks[k]) k++;
    return k;
}

/* Walks toks from the root, stamping and splitting so the walk ends on a node boundary;
 * copies the path's cells. Returns the matched length, *end the last node. */
static size_t walk(prefix_tree *t, const q_token *toks, size_t n, int32_t *cells, prefix_node **end) {
    const uint64_t tick = ++t->tick;
    prefix_node *node = &t->root;
    node->stamp = tick;
    size_t i = 0;
    while (i < n) {
        prefix_node *kid = kid_find(node, toks[i]);
        if (!kid) break;
        const size_t k = edge_common(kid, toks + i, n - i);
        if (k < kid->len) kid = node_split(t, kid, k);
        kid->stamp = tick;
        if (cells) memcpy(cells + i, kid->cells, k * sizeof *cells);
        node = kid;
        i += k;
    }
    *end = node;
    return i;
}

size_t prefix_tree_match(prefix_tree *t, const q_token *toks, size_t n, int32_t *cells, prefix_node **end) {
    return walk(t, toks, n, cells, end);
}

size_t prefix_tree_peek(const prefix_tree *t, const q_token *toks, size_t n, int32_t *cells) {
    const prefix_node *node = &t->root;
    size_t i = 0;
    while (i < n) {
        const prefix_node *kid = kid_find(node, toks[i]);
        if (!kid) break;
        const size_t k = edge_common(kid, toks + i, n - i);
        if (cells) memcpy(cells + i, kid->cells, k * sizeof *cells);
        i += k;
        if (k < kid->len) break;
        node = kid;
    }
    return i;
}

size_t prefix_tree_insert(prefix_tree *t, const q_token *toks, int32_t *cells, size_t n, prefix_node **end) {
    prefix_node *node;
    const size_t have = walk(t, toks, n, cells, &node);
    if (have < n) {   /* the rest hangs off the walk's end as a new leaf */
        prefix_node *leaf = node_new(t, toks + have, cells + have, n - have);
        leaf->stamp = t->tick;
        kid_add(node, leaf);
        t->n_tokens += n - have;
        node = leaf;
    }
    *end = node;
    return have;
}

void prefix_tree_lock(prefix_node *node) {
    for (; node && node->parent; node = node->parent) node->lock++;
}

void prefix_tree_unlock(prefix_node *node) {
    for (; node && node->parent; node = node->parent) {
        Q_ASSERT(node->lock > 0);
        node->lock--;
    }
}

/* The unlocked leaf with the oldest stamp, or NULL. */
static prefix_node *lru_leaf(const prefix_tree *t) {
    prefix_node *best = NULL;
    for (prefix_node *n = t->all; n; n = n->next)
        if (n->n_kids == 0 && n->lock == 0 && (!best || n->stamp < best->stamp)) best = n;
    return best;
}

size_t prefix_tree_evict(prefix_tree *t, size_t n, prefix_cell_fn fn, void *arg) {
    size_t done = 0;
    while (done < n) {
        prefix_node *leaf = lru_leaf(t);
        if (!leaf) break;
        const size_t k = Q_MIN(leaf->len, n - done);
        for (size_t i = 0; i < k; i++) fn(arg, leaf->cells[leaf->len - 1 - i]);   /* deepest first */
        leaf->len -= k;
        done += k;
        t->n_tokens -= k;
        if (leaf->len == 0) {
            kid_remove(leaf->parent, leaf);
            list_unlink(t, leaf);
            node_free(leaf);
            t->n_nodes--;
        }
    }
    return done;
}

void prefix_tree_clear(prefix_tree *t, prefix_cell_fn fn, void *arg) {
    prefix_node *n = t->all;
    while (n) {
        prefix_node *next = n->next;
        Q_ASSERT(n->lock == 0);
        if (fn)
            for (size_t i = 0; i < n->len; i++) fn(arg, n->cells[i]);
        node_free(n);
        n = next;
    }
    free(t->root.kids);
    const uint64_t tick = t->tick;
    memset(t, 0, sizeof *t);
    t->tick = tick;
}

void prefix_tree_free(prefix_tree *t) {
    if (!t) return;
    for (prefix_node *n = t->all, *next; n; n = next) {
        next = n->next;
        node_free(n);
    }
    free(t->root.kids);
    free(t);
}

size_t prefix_tree_tokens(const prefix_tree *t) { return t->n_tokens; }
size_t prefix_tree_nodes(const prefix_tree *t) { return t->n_nodes; }

size_t prefix_tree_evictable(const prefix_tree *t) {
    size_t n = 0;
    for (const prefix_node *p = t->all; p; p = p->next)
        if (p->lock == 0) n += p->len;
    return n;
}

void prefix_tree_check(const prefix_tree *t) {
    size_t tokens = 0, nodes = 0;
    for (const prefix_node *n = t->all; n; n = n->next) {
        nodes++;
        tokens += n->len;
        Q_ASSERT(n->len > 0 && n->parent);
        Q_ASSERT(n->lock >= 0);
        int32_t kid_locks = 0;
        for (int32_t i = 0; i < n->n_kids; i++) {
            const prefix_node *k = n->kids[i];
            Q_ASSERT(k->parent == n);
            Q_ASSERT(k->stamp <= n->stamp);   /* an access stamps the whole path */
            kid_locks += k->lock;
            for (int32_t j = 0; j < i; j++) Q_ASSERT(n->kids[j]->toks[0] != k->toks[0]);
        }
        Q_ASSERT(n->lock >= kid_locks);
        bool listed = false;   /* reachable from its parent */
        for (int32_t i = 0; i < n->parent->n_kids; i++) listed |= n->parent->kids[i] == n;
        Q_ASSERT(listed);
    }
    Q_ASSERT(tokens == t->n_tokens && nodes == t->n_nodes);
}
