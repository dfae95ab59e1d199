/* heap.h — the binary min-heap that BPE (bigrams by rank) and SPM (bigrams by score)
 * share: fixed-size elements ordered by a caller's "pops first" function.
 * Push and pop are static inline and take the element size and the compare function as
 * arguments: each caller wraps them with constants (sizeof its element, its function), so
 * the compiler specialises them and the shared heap costs nothing over a hand-written one.
 * Not a priority queue with decrease-key (callers skip stale entries instead).
 * Memory: the heap owns its element array (grown in heap.c); tok_heap_free releases it. */
#ifndef QUARREL_TOKENIZER_HEAP_H
#define QUARREL_TOKENIZER_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* true when a must pop before b (a strict order; the caller breaks ties) */
typedef bool (*tok_heap_before_fn)(const void *a, const void *b);

typedef struct tok_heap {
    unsigned char *v;   /* n elements of the caller's size */
    size_t         n, cap;
} tok_heap;

/* Makes room for one more element of `size` bytes (cold path, heap.c). */
void tok_heap_grow(tok_heap *h, size_t size);
void tok_heap_free(tok_heap *h);

/* Sift up / down moving a hole, one copy per level. */
static inline void tok_heap_push(tok_heap *h, const void *x, size_t size, tok_heap_before_fn before) {
    if (h->n == h->cap) tok_heap_grow(h, size);
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(x, h->v + p * size)) break;
        memcpy(h->v + i * size, h->v + p * size, size);
        i = p;
    }
    memcpy(h->v + i * size, x, size);
}

/* h->n > 0: copies the first element to *top and removes it. */
static inline void tok_heap_pop(tok_heap *h, void *top, size_t size, tok_heap_before_fn before) {
    memcpy(top, h->v, size);
    size_t n = --h->n;
    if (!n) return;
    const unsigned char *x = h->v + n * size;  /* the last element, re-placed from the root */
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(h->v + (c + 1) * size, h->v + c * size)) c++;
        if (!before(h->v + c * size, x)) break;
        memcpy(h->v + i * size, h->v + c * size, size);
        i = c;
    }
    memcpy(h->v + i * size, x, size);
}

#endif
