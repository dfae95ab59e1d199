/* heap.h — the binary min-heap that BPE (bigrams by rank) and SPM (bigrams by score) share:
 * fixed-size elements ordered by a caller's "pops first" function.
 * Not a priority queue with decrease-key (callers skip stale entries instead).
 * Memory: the heap owns its element array; tok_heap_free releases it. */
#ifndef QUARREL_TOKENIZER_HEAP_H
#define QUARREL_TOKENIZER_HEAP_H

#include <stdbool.h>
#include <stddef.h>

/* true when a must pop before b (a strict order; ties must be broken by the caller) */
typedef bool (*tok_heap_before_fn)(const void *a, const void *b);

typedef struct tok_heap {
    unsigned char     *v;     /* n elements of size bytes */
    size_t             n, cap, size;
    tok_heap_before_fn before;
} tok_heap;

#define TOK_HEAP_MAX_ELEM 64  /* bytes of one element (a stack temporary in pop) */

static inline tok_heap tok_heap_make(size_t size, tok_heap_before_fn before) {
    return (tok_heap){ NULL, 0, 0, size, before };
}
void tok_heap_push(tok_heap *h, const void *x);
void tok_heap_pop(tok_heap *h, void *top);    /* h->n > 0; copies the first element to top */
void tok_heap_free(tok_heap *h);

#endif
