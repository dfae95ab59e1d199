/* prefix_tree.h — a radix tree (compressed token trie) of cached token prefixes, shared by
 * every slot of a scheduler (SGLang's RadixAttention idea).
 *
 * Each node's edge holds a run of token ids and, for each token, the KV cell holding its
 * K/V. A token's position is its depth, so the cells along a path from the root are the
 * KV of that token sequence for ANY request that starts with it.
 *
 *   root ── [Once upon a time] ──┬── [, there was a girl]      (leaf)
 *                                └── [ in a land far away]     (leaf)
 *
 * Recency: every match or insert stamps the nodes on its path with the next tick. An
 * access that ends inside an edge splits it first, so all tokens of a node always share
 * one stamp (and the stamps of leaves are distinct: one operation touches one path).
 * Locks: a running request locks the node that ends its cached path; a lock counts on the
 * node and all its ancestors. Eviction takes tokens from the tails of unlocked leaves,
 * least recently used first, token by token (a leaf can be trimmed, not only dropped), and
 * hands each freed cell to a callback.
 *
 * Not here: the KV cache. The tree only records cell ids; the caller marks cells held
 * while the tree has them (scheduler.c: a sequence bit of the cache) and lets them go in
 * the eviction callback. Not thread-safe: one owner thread.
 *
 * Memory: the tree owns its nodes. A node pointer from match/insert stays valid while the
 * node is locked (a split keeps the original node as the LOWER half, so it still ends the
 * same path); an unlocked node may be trimmed, dropped or split at any later call. */
#ifndef QUARREL_SERVER_PREFIX_TREE_H
#define QUARREL_SERVER_PREFIX_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "quarrel/quarrel.h"

typedef struct prefix_tree prefix_tree;
typedef struct prefix_node prefix_node;
typedef void (*prefix_cell_fn)(void *arg, int32_t cell);

prefix_tree *prefix_tree_new(void);
/* Frees the tree; its cells are not reported (the caller owns what it marked). */
void   prefix_tree_free(prefix_tree *t);

/* The longest cached prefix of toks[0..n): returns its length L, writes its cells to
 * cells[0..L) and the node ending it to *end (the root when L = 0). Stamps the path. */
size_t prefix_tree_match(prefix_tree *t, const q_token *toks, size_t n, int32_t *cells, prefix_node **end);
/* Like match, but changes nothing (no stamps, no splits); cells may be NULL. */
size_t prefix_tree_peek(const prefix_tree *t, const q_token *toks, size_t n, int32_t *cells);
/* Caches toks[0..n) with cells[0..n). Tokens already cached keep the tree's cells: for them
 * cells[i] is overwritten with the tree's cell (the caller's own cell is then a duplicate
 * the tree did not take). Returns how many leading tokens were already cached; the tree
 * took cells[ret..n). *end: the node ending the path (stamped like match). */
size_t prefix_tree_insert(prefix_tree *t, const q_token *toks, int32_t *cells, size_t n, prefix_node **end);

/* Lock / unlock the path ending at node (the root: no-op). Locks nest. */
void   prefix_tree_lock(prefix_node *node);
void   prefix_tree_unlock(prefix_node *node);

/* Evicts up to n tokens from unlocked leaves, least recently used leaf first, deepest
 * token first; fn(arg, cell) for each. Returns the tokens evicted (< n only when nothing
 * evictable is left). */
size_t prefix_tree_evict(prefix_tree *t, size_t n, prefix_cell_fn fn, void *arg);
/* Drops every node (no lock may be held); fn(arg, cell) for each cell if fn is set. */
void   prefix_tree_clear(prefix_tree *t, prefix_cell_fn fn, void *arg);

size_t prefix_tree_tokens(const prefix_tree *t);     /* cached tokens */
size_t prefix_tree_evictable(const prefix_tree *t);  /* cached tokens of unlocked nodes */
size_t prefix_tree_nodes(const prefix_tree *t);      /* nodes, the root excluded */
/* Asserts the structure's invariants (Q_ASSERT): for tests. */
void   prefix_tree_check(const prefix_tree *t);

#endif
