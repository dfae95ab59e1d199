/* bpe.c — byte-level BPE as llama.cpp's llm_tokenizer_bpe does it, for one text fragment.
 *
 * Steps: decode the fragment leniently into codepoints (a bad byte -> U+FFFD); split into
 * words with the vocab's pre-tokenizer (pretok.c); write each word's UTF-8 bytes through
 * GPT-2's bytes_to_unicode map; if the vocab ignores merges and the whole word is a
 * token, emit it; otherwise start from one symbol per (mapped) character, queue every
 * adjacent pair that has a merge rank in a min-heap (ties: leftmost), pop, skip pairs
 * whose symbols changed since queued, merge, queue the new neighbour pairs. Each final
 * symbol is its token; a symbol that is not a token falls back to its single bytes that
 * are tokens, and drops the rest (llama.cpp does the same).
 *
 * Memory: all scratch is per call. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/heap.h"
#include "tokenizer/internal.h"
#include "tokenizer/pretok.h"

typedef struct bpe_sym {
    int32_t  prev, next;
    uint32_t off, n;      /* bytes of the encoded word; n = 0 once merged away */
    q_token  id;          /* the token whose text this is, Q_TOKEN_NULL if none */
} bpe_sym;

typedef struct bpe_bigram {
    int32_t  rank;
    int32_t  left, right;
    uint32_t nl, nr;      /* symbol sizes when queued */
    q_token  result;      /* merged token, Q_TOKEN_NULL if unknown */
} bpe_bigram;

/* heap order: lower rank first, then the leftmost pair */
static bool bpe_before(const void *pa, const void *pb) {
    const bpe_bigram *a = pa, *b = pb;
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

typedef struct bpe_scratch {
    bpe_sym *syms;
    size_t   cap;
    tok_heap heap;       /* of bpe_bigram */
} bpe_scratch;

/* Ranks are looked up by token ids when both symbols are tokens (every merge between
 * two tokens is in the id map), else by text; both give the first rank of that pair. */
static void bpe_try_pair(const q_vocab *v, const char *w, const bpe_sym *s, int32_t l, int32_t r, tok_heap *h) {
    if (l < 0 || r < 0) return;
    q_token result = Q_TOKEN_NULL;
    int32_t rank;
    if (v->pair_keys && s[l].id != Q_TOKEN_NULL && s[r].id != Q_TOKEN_NULL) {
        rank = vocab_pair_rank(v, s[l].id, s[r].id, &result);
    } else {
        rank = vocab_merge_rank(v, w + s[l].off, s[l].n, w + s[r].off, s[r].n);
        if (rank >= 0) result = vocab_lookup(v, w + s[l].off, s[l].n + s[r].n);
    }
    if (rank < 0) return;
    bpe_bigram b = { rank, l, r, s[l].n, s[r].n, result };
    tok_heap_push(h, &b, sizeof b, bpe_before);
}

/* Merges one encoded word w[0..n) and appends its tokens. */
static void bpe_word(const q_vocab *v, const char *w, size_t n, bpe_scratch *sc, q_tokens *out) {
    if (v->ignore_merges) {
        q_token id = vocab_lookup(v, w, n);
        if (id != Q_TOKEN_NULL) { tok_push(out, id); return; }
    }
    if (sc->cap < n) {
        sc->cap = n;
        sc->syms = q_xrealloc(sc->syms, n * sizeof *sc->syms);
    }
    bpe_sym *s = sc->syms;
    int32_t ns = 0;
    for (size_t off = 0; off < n;) {
        size_t cl = Q_MIN(utf8_len_lead((uint8_t)w[off]), n - off);
        s[ns] = (bpe_sym){ ns - 1, off + cl == n ? -1 : ns + 1, (uint32_t)off, (uint32_t)cl,
                           vocab_lookup(v, w + off, cl) };
        ns++;
        off += cl;
    }
    tok_heap *h = &sc->heap;
    h->n = 0;
    for (int32_t i = 1; i < ns; i++) bpe_try_pair(v, w, s, i - 1, i, h);
    while (h->n) {
        bpe_bigram b;
        tok_heap_pop(h, &b, sizeof b, bpe_before);
        bpe_sym *l = &s[b.left], *r = &s[b.right];
        if (l->n != b.nl || r->n != b.nr || l->n == 0 || r->n == 0) continue;  /* stale */
        l->n += r->n;
        l->id = b.result;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = b.left;
        bpe_try_pair(v, w, s, l->prev, b.left, h);
        bpe_try_pair(v, w, s, b.left, l->next, h);
    }
    for (int32_t i = 0; i != -1; i = s[i].next) {
        if (s[i].n == 0) continue;
        q_token id = s[i].id;
        if (id != Q_TOKEN_NULL) { tok_push(out, id); continue; }
        for (uint32_t j = 0; j < s[i].n; j++) {
            q_token bt = vocab_lookup(v, w + s[i].off + j, 1);
            if (bt != Q_TOKEN_NULL) tok_push(out, bt);
        }
    }
}

/* Words repeat a lot in real text and a word's tokens depend on nothing but its bytes,
 * so each session remembers the tokens of short words it has merged. The table starts
 * small (short prompts stay cheap) and doubles up to WORD_CACHE_MAX_SLOTS. */
#define WORD_CACHE_MIN_SLOTS 256u
#define WORD_CACHE_MAX_SLOTS (1u << 15)
#define WORD_CACHE_MAX_LEN   48     /* bytes of an encoded word worth caching */

typedef struct word_slot {
    uint64_t hash;      /* 0 = empty */
    uint32_t key_off;   /* word bytes in keys */
    uint32_t key_len;
    uint32_t ids_off;   /* tokens in ids */
    uint32_t n_ids;
} word_slot;

typedef struct word_cache {
    word_slot *slots;   /* cap slots, allocated on first use */
    uint32_t   cap, used;
    tok_buf    keys;
    q_tokens   ids;
} word_cache;

struct bpe_session {
    pretok_ctx *pc;
    uint32_t   *cps;     /* decoded fragment */
    size_t      cps_cap;
    tok_buf     word;    /* one byte-encoded word */
    bpe_scratch sc;
    word_cache  cache;
};

/* Appends the cached tokens of w and returns true, or returns false. */
static bool word_cache_get(const word_cache *c, const char *w, size_t n, uint64_t h, q_tokens *out) {
    if (!c->slots) return false;
    for (uint32_t i = (uint32_t)h & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
        const word_slot *sl = &c->slots[i];
        if (!sl->hash) return false;
        if (sl->hash == h && sl->key_len == n && !memcmp(c->keys.p + sl->key_off, w, n)) {
            for (uint32_t k = 0; k < sl->n_ids; k++) tok_push(out, c->ids.ids[sl->ids_off + k]);
            return true;
        }
    }
}

static void word_cache_place(word_slot *slots, uint32_t cap, const word_slot *x) {
    uint32_t i = (uint32_t)x->hash & (cap - 1);
    while (slots[i].hash) i = (i + 1) & (cap - 1);
    slots[i] = *x;
}

static void word_cache_put(word_cache *c, const char *w, size_t n, uint64_t h, const q_token *ids, size_t n_ids) {
    if (c->used >= c->cap / 2) {
        if (c->cap >= WORD_CACHE_MAX_SLOTS) return;  /* full: stop remembering */
        uint32_t cap = c->cap ? c->cap * 2 : WORD_CACHE_MIN_SLOTS;
        word_slot *slots = q_xcalloc(cap, sizeof *slots);
        for (uint32_t i = 0; i < c->cap; i++)
            if (c->slots[i].hash) word_cache_place(slots, cap, &c->slots[i]);
        free(c->slots);
        c->slots = slots;
        c->cap = cap;
    }
    word_slot x = { h, (uint32_t)c->keys.n, (uint32_t)n, (uint32_t)c->ids.n, (uint32_t)n_ids };
    word_cache_place(c->slots, c->cap, &x);
    tok_buf_put(&c->keys, w, n);
    for (size_t k = 0; k < n_ids; k++) tok_push(&c->ids, ids[k]);
    c->used++;
}

bpe_session *bpe_session_new(void) {
    bpe_session *s = q_xcalloc(1, sizeof *s);
    s->pc = pretok_ctx_new();
    return s;
}

void bpe_session_free(bpe_session *s) {
    if (!s) return;
    pretok_ctx_free(s->pc);
    free(s->cps);
    tok_buf_free(&s->word);
    free(s->sc.syms);
    tok_heap_free(&s->sc.heap);
    free(s->cache.slots);
    tok_buf_free(&s->cache.keys);
    q_tokens_free(&s->cache.ids);
    free(s);
}

q_status bpe_tokenize(const q_vocab *v, bpe_session *s, const char *text, size_t len, q_tokens *out, q_error *err) {
    (void)err;
    if (len == 0) return Q_OK;
    if (s->cps_cap < len) {
        s->cps_cap = len;
        s->cps = q_xrealloc(s->cps, len * sizeof *s->cps);
    }
    uint32_t *cps = s->cps;
    size_t n = 0;
    for (size_t off = 0; off < len;) {
        size_t adv;
        cps[n++] = utf8_decode_lenient((const uint8_t *)text + off, len - off, &adv);
        off += adv;
    }
    pretok_words words;
    pretok_split(v->pre, s->pc, cps, n, &words);

    tok_buf *w = &s->word;
    size_t at = 0;
    for (size_t k = 0; k < words.n; k++) {
        w->n = 0;
        for (size_t i = at; i < at + words.lens[k]; i++) {
            char u[4];
            size_t ul = utf8_encode(cps[i], u);
            for (size_t j = 0; j < ul; j++) {
                char e[4];
                size_t el = utf8_encode(bpe_byte_to_cp((uint8_t)u[j]), e);
                tok_buf_put(w, e, el);
            }
        }
        at += words.lens[k];
        if (w->n > WORD_CACHE_MAX_LEN || !v->bpe_word_cache) {
            bpe_word(v, w->p, w->n, &s->sc, out);
            continue;
        }
        uint64_t h = tok_hash_bytes(w->p, w->n) | 1;  /* never 0, the empty mark */
        if (word_cache_get(&s->cache, w->p, w->n, h, out)) continue;
        size_t before = out->n;
        bpe_word(v, w->p, w->n, &s->sc, out);
        /* out->ids is still NULL when no word so far gave a token: no pointer arithmetic on it */
        const size_t n_new = out->n - before;
        word_cache_put(&s->cache, w->p, w->n, h, n_new ? out->ids + before : NULL, n_new);
    }
    return Q_OK;
}
