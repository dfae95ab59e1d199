/* heap.c — the cold half of the shared tokenizer heap (heap.h): growth and release.
 * Memory: the element array doubles (q_xrealloc: its size is bounded by the caller's
 * text, one entry per candidate pair). */
#include <stdlib.h>

#include "core/base.h"
#include "tokenizer/heap.h"

void tok_heap_grow(tok_heap *h, size_t size) {
    h->cap = h->cap ? h->cap * 2 : 64;
    h->v = q_xrealloc(h->v, h->cap * size);
}

void tok_heap_free(tok_heap *h) {
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}
