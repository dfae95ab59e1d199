/* heap.c — binary min-heap of fixed-size elements (see heap.h): sift up on push, sift
 * down on pop, moving a hole instead of swapping so each level costs one copy.
 * Memory: the element array grows by doubling (q_xrealloc: bounded by the caller's text,
 * one entry per candidate pair). */
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "tokenizer/heap.h"

#define AT(h, i) ((h)->v + (i) * (h)->size)

void tok_heap_push(tok_heap *h, const void *x) {
    Q_ASSERT(h->size > 0 && h->size <= TOK_HEAP_MAX_ELEM);
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->v = q_xrealloc(h->v, h->cap * h->size);
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!h->before(x, AT(h, p))) break;
        memcpy(AT(h, i), AT(h, p), h->size);
        i = p;
    }
    memcpy(AT(h, i), x, h->size);
}

void tok_heap_pop(tok_heap *h, void *top) {
    Q_ASSERT(h->n > 0);
    memcpy(top, AT(h, 0), h->size);
    size_t n = --h->n;
    if (!n) return;
    const unsigned char *x = AT(h, n);  /* the last element, re-placed from the root down */
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h->before(AT(h, c + 1), AT(h, c))) c++;
        if (!h->before(AT(h, c), x)) break;
        memcpy(AT(h, i), AT(h, c), h->size);
        i = c;
    }
    memcpy(AT(h, i), x, h->size);
}

void tok_heap_free(tok_heap *h) {
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}
