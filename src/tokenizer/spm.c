/* spm.c — SentencePiece-BPE tokenization as llama.cpp's llm_tokenizer_spm does it, for
 * one text fragment whose spaces are already U+2581.
 *
 * Algorithm: split the text into UTF-8 characters by lead byte (not validated: a lead
 * byte takes as many following bytes as it announces, clipped to the end); put every
 * adjacent pair whose concatenation is a vocab token into a max-heap keyed by that
 * token's score (ties: leftmost pair first); repeatedly pop, skip pairs whose symbols
 * changed since they were queued, merge, and queue the new neighbour pairs. Finally each
 * symbol is its token, or, if the symbol is not in the vocab, one byte token per byte
 * (<0xXX>, else the byte as text, else [UNK]; none of these: Q_ERR_UNSUPPORTED).
 *
 * Memory: symbols and heap are per call. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/heap.h"
#include "tokenizer/internal.h"

typedef struct spm_sym {
    int32_t  prev, next;  /* -1 = none */
    uint32_t off, n;      /* bytes of the text; n = 0 once merged away */
} spm_sym;

typedef struct spm_bigram {
    float    score;
    int32_t  left, right;
    uint32_t size;        /* bytes of the pair when queued */
} spm_bigram;

/* a pops before b: higher score, then smaller left index */
static bool spm_before(const void *pa, const void *pb) {
    const spm_bigram *a = pa, *b = pb;
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void spm_try_pair(const q_vocab *v, const char *text, const spm_sym *syms, int32_t l, int32_t r, tok_heap *h) {
    if (l < 0 || r < 0) return;
    uint32_t size = syms[l].n + syms[r].n;
    q_token id = vocab_lookup(v, text + syms[l].off, size);
    if (id == Q_TOKEN_NULL) return;
    spm_bigram b = { v->toks[id].score, l, r, size };
    tok_heap_push(h, &b, sizeof b, spm_before);
}

/* Merges and emits one chunk (starting at a character boundary). */
static q_status spm_chunk(const q_vocab *v, const char *text, size_t len, spm_sym **syms_buf, size_t *syms_cap,
                          tok_heap *h, q_tokens *out, q_error *err) {
    if (*syms_cap < len) {
        *syms_cap = len;
        *syms_buf = q_xrealloc(*syms_buf, len * sizeof **syms_buf);
    }
    spm_sym *syms = *syms_buf;
    int32_t n = 0;
    for (size_t off = 0; off < len;) {
        size_t cl = Q_MIN(utf8_len_lead((uint8_t)text[off]), len - off);
        syms[n] = (spm_sym){ n - 1, off + cl == len ? -1 : n + 1, (uint32_t)off, (uint32_t)cl };
        n++;
        off += cl;
    }

    h->n = 0;
    for (int32_t i = 1; i < n; i++) spm_try_pair(v, text, syms, i - 1, i, h);
    while (h->n) {
        spm_bigram b;
        tok_heap_pop(h, &b, sizeof b, spm_before);
        spm_sym *l = &syms[b.left], *r = &syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue;  /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) syms[r->next].prev = b.left;
        spm_try_pair(v, text, syms, l->prev, b.left, h);
        spm_try_pair(v, text, syms, b.left, l->next, h);
    }

    for (int32_t i = 0; i != -1; i = syms[i].next) {
        const char *s = text + syms[i].off;
        q_token id = vocab_lookup(v, s, syms[i].n);
        if (id != Q_TOKEN_NULL) { tok_push(out, id); continue; }
        for (uint32_t j = 0; j < syms[i].n; j++) {
            q_token bt = v->byte_tok[(uint8_t)s[j]];
            if (bt == Q_TOKEN_NULL) bt = v->special[Q_SPECIAL_UNK];
            if (bt == Q_TOKEN_NULL)
                return q_fail(err, Q_ERR_UNSUPPORTED, "the vocab has no byte token for byte 0x%02X and no unknown token",
                              (uint8_t)s[j]);
            tok_push(out, bt);
        }
    }
    return Q_OK;
}

static bool is_space_mark(const char *p, size_t n) { return n == 3 && !memcmp(p, "\xE2\x96\x81", 3); }

/* When no token has a U+2581 right after something else (v->spm_split_safe, checked at
 * load), no merge can cross the boundary in front of a run of U+2581: the text is cut
 * there and the chunks are merged one by one, which gives the same result as merging the
 * whole text (merges on one side never change the candidates or their order on the
 * other) with a small heap instead of one as large as the text. */
q_status spm_tokenize(const q_vocab *v, const char *text, size_t len, q_tokens *out, q_error *err) {
    if (len == 0) return Q_OK;
    spm_sym *syms = NULL;
    size_t cap = 0;
    tok_heap h = { 0 };
    q_status st = Q_OK;
    if (!v->spm_split_safe) {
        st = spm_chunk(v, text, len, &syms, &cap, &h, out, err);
    } else {
        size_t start = 0;
        bool prev_mark = false;
        for (size_t off = 0; off < len && st == Q_OK;) {
            size_t cl = Q_MIN(utf8_len_lead((uint8_t)text[off]), len - off);
            bool mark = is_space_mark(text + off, cl);
            if (mark && !prev_mark && off > start) {
                st = spm_chunk(v, text + start, off - start, &syms, &cap, &h, out, err);
                start = off;
            }
            prev_mark = mark;
            off += cl;
        }
        if (st == Q_OK) st = spm_chunk(v, text + start, len - start, &syms, &cap, &h, out, err);
    }
    free(syms);
    tok_heap_free(&h);
    return st;
}
