/* vocab.c — loads a tokenizer from GGUF metadata into a q_vocab, with llama.cpp's
 * defaults and special-token rules; text->id and merge->rank hash maps; accessors.
 *
 * GGUF keys read (all under tokenizer.ggml.):
 *   model (string, required)      llama | gpt2 | bert; anything else is unsupported
 *   pre (string)                  BPE pre-tokenizer name, "default" when absent
 *   tokens (string[n], required)  token texts; an empty one becomes "[EMPTY_i]"
 *   scores (f32[n])               SPM merge scores (0 when absent)
 *   token_type (i32[n])           1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
 *   merges (string[], BPE, required)  "left right", rank = index; the first duplicate wins
 *   bos/eos/eot/eom/unknown/seperator/padding/mask/cls/fim_*_token_id (u32)  override defaults;
 *                                 an id >= n is ignored (llama.cpp warns and keeps the default)
 *   add_bos_token, add_eos_token, add_sep_token, add_space_prefix, remove_extra_whitespaces (bool)
 * plus general.name / general.architecture for llama.cpp's per-model token attributes.
 *
 * Defaults (llama.cpp): SPM bos 1, eos 2, unk 0, add_bos, add_space_prefix; BPE bos = eos
 * = 11, add_bos only for some pre-tokenizers, clean_spaces unless the pre says otherwise;
 * WPM [CLS] 101 as BOS, [UNK] 100, [SEP] 102, [PAD] 0, [MASK] 103.
 *
 * Memory: every text (tokens, merges, rendered pieces) is copied into one arena owned by
 * the vocab (offsets, not pointers, so it can grow while loading); the gguf_file is not
 * referenced after q_vocab_load returns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/internal.h"
#include "tokenizer/pretok.h"

#define KEY(k) "tokenizer.ggml." k

/* Input-derived sizes are bounded before anything is allocated for them: real vocabs
 * have < 1M tokens of < 1 KiB each and a few MiB of text. */
#define VOCAB_MAX_COUNT     (1u << 28)          /* tokens, merges */
#define VOCAB_MAX_TOKEN_LEN (64u << 10)         /* bytes of one token text */
#define VOCAB_MAX_ARENA     ((size_t)1 << 30)   /* bytes of all texts and pieces (< 4 GiB offsets) */

/* ---- small buffers ---- */

void tok_buf_reserve(tok_buf *b, size_t extra) {
    if (b->n + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra) cap *= 2;
    b->p = q_xrealloc(b->p, cap);
    b->cap = cap;
}

void tok_buf_put(tok_buf *b, const void *s, size_t n) {
    tok_buf_reserve(b, n);
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
}

void tok_buf_free(tok_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

void tok_push(q_tokens *t, q_token id) {
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->ids = q_xrealloc(t->ids, t->cap * sizeof *t->ids);
    }
    t->ids[t->n++] = id;
}

void q_tokens_free(q_tokens *t) {
    if (!t) return;
    free(t->ids);
    memset(t, 0, sizeof *t);
}

/* ---- hashing ---- */

uint64_t tok_hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 32;
    return h;
}

/* n <= 2 * VOCAB_MAX_COUNT (checked at load), so the result fits a uint32_t mask. */
static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

q_token vocab_lookup(const q_vocab *v, const char *s, size_t n) {
    uint32_t i = (uint32_t)tok_hash_bytes(s, n) & v->tok_mask;
    for (;; i = (i + 1) & v->tok_mask) {
        uint32_t slot = v->tok_slots[i];
        if (!slot) return Q_TOKEN_NULL;
        const tok_entry *e = &v->toks[slot - 1];
        if (e->len == n && !memcmp(v->arena + e->off, s, n)) return (q_token)(slot - 1);
    }
}

/* Inserts id under its text; a later id with the same text replaces the earlier one
 * (llama.cpp's token_to_id[word] = i). */
static void tok_insert(q_vocab *v, q_token id) {
    const tok_entry *e = &v->toks[id];
    uint32_t i = (uint32_t)tok_hash_bytes(v->arena + e->off, e->len) & v->tok_mask;
    for (;; i = (i + 1) & v->tok_mask) {
        uint32_t slot = v->tok_slots[i];
        if (!slot) { v->tok_slots[i] = (uint32_t)id + 1; return; }
        const tok_entry *o = &v->toks[slot - 1];
        if (o->len == e->len && !memcmp(v->arena + o->off, v->arena + e->off, e->len)) {
            v->tok_slots[i] = (uint32_t)id + 1;
            return;
        }
    }
}

int32_t vocab_merge_rank(const q_vocab *v, const char *a, size_t na, const char *b, size_t nb) {
    if (!v->n_merges) return -1;
    char stackbuf[256];
    size_t n = na + 1 + nb;
    char *key = n <= sizeof stackbuf ? stackbuf : q_xmalloc(n);
    memcpy(key, a, na);
    key[na] = ' ';
    memcpy(key + na + 1, b, nb);
    int32_t rank = -1;
    uint32_t i = (uint32_t)tok_hash_bytes(key, n) & v->merge_mask;
    for (;; i = (i + 1) & v->merge_mask) {
        uint32_t slot = v->merge_slots[i];
        if (!slot) break;
        const merge_entry *m = &v->merges[slot - 1];
        if (m->len == n && m->first_len == na && !memcmp(v->arena + m->off, key, n)) {
            rank = (int32_t)(slot - 1);
            break;
        }
    }
    if (key != stackbuf) free(key);
    return rank;
}

/* Inserts merge `rank` unless an equal pair is already there (the first one wins). */
static void merge_insert(q_vocab *v, uint32_t rank) {
    const merge_entry *m = &v->merges[rank];
    uint32_t i = (uint32_t)tok_hash_bytes(v->arena + m->off, m->len) & v->merge_mask;
    for (;; i = (i + 1) & v->merge_mask) {
        uint32_t slot = v->merge_slots[i];
        if (!slot) { v->merge_slots[i] = rank + 1; return; }
        const merge_entry *o = &v->merges[slot - 1];
        if (o->len == m->len && o->first_len == m->first_len && !memcmp(v->arena + o->off, v->arena + m->off, m->len))
            return;
    }
}

static uint32_t pair_hash(uint64_t key, uint32_t mask) {
    key *= 0x9E3779B97F4A7C15ull;
    return (uint32_t)(key >> 32) & mask;
}

int32_t vocab_pair_rank(const q_vocab *v, q_token l, q_token r, q_token *result) {
    if (!v->pair_keys) return -1;
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    for (uint32_t i = pair_hash(key, v->pair_mask);; i = (i + 1) & v->pair_mask) {
        if (v->pair_keys[i] == key) { *result = v->pair_result[i]; return v->pair_rank[i]; }
        if (v->pair_keys[i] == UINT64_MAX) return -1;
    }
}

/* Builds the id-pair map from the merges whose both parts are tokens (first rank wins). */
static q_status pairs_build(q_vocab *v, q_error *err) {
    v->pair_mask = (uint32_t)(pow2_at_least((size_t)v->n_merges * 2) - 1);
    size_t cap = (size_t)v->pair_mask + 1;
    v->pair_keys = malloc(cap * sizeof *v->pair_keys);
    v->pair_rank = malloc(cap * sizeof *v->pair_rank);
    v->pair_result = malloc(cap * sizeof *v->pair_result);
    if (!v->pair_keys || !v->pair_rank || !v->pair_result)
        return q_fail(err, Q_ERR_NOMEM, "out of memory for the merge table of %u merges", v->n_merges);
    memset(v->pair_keys, 0xFF, cap * sizeof *v->pair_keys);
    for (uint32_t rank = 0; rank < v->n_merges; rank++) {
        const merge_entry *m = &v->merges[rank];
        const char *t = v->arena + m->off;
        if (m->first_len == 0 || m->first_len + 1 >= m->len) continue;
        q_token l = vocab_lookup(v, t, m->first_len);
        q_token r = vocab_lookup(v, t + m->first_len + 1, m->len - m->first_len - 1);
        if (l == Q_TOKEN_NULL || r == Q_TOKEN_NULL) continue;
        uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
        uint32_t i = pair_hash(key, v->pair_mask);
        while (v->pair_keys[i] != UINT64_MAX && v->pair_keys[i] != key) i = (i + 1) & v->pair_mask;
        if (v->pair_keys[i] == key) continue;
        /* the merged text, as a token */
        char stackbuf[256];
        size_t n = m->len - 1;
        char *cat = n <= sizeof stackbuf ? stackbuf : q_xmalloc(n);
        memcpy(cat, t, m->first_len);
        memcpy(cat + m->first_len, t + m->first_len + 1, n - m->first_len);
        v->pair_keys[i] = key;
        v->pair_rank[i] = (int32_t)rank;
        v->pair_result[i] = vocab_lookup(v, cat, n);
        if (cat != stackbuf) free(cat);
    }
    return Q_OK;
}

/* ---- arena ---- */

/* Appends s[0..n) and stores its offset in *off. Every n is bounded by the caller (a
 * token <= VOCAB_MAX_TOKEN_LEN, its piece <= 16x that), the sum by VOCAB_MAX_ARENA. */
static q_status arena_put(q_vocab *v, size_t *cap, const void *s, size_t n, uint32_t *off, q_error *err) {
    if (n > VOCAB_MAX_ARENA - v->arena_len)
        return q_fail(err, Q_ERR_LIMIT, "the vocab's texts exceed %u MiB", (unsigned)(VOCAB_MAX_ARENA >> 20));
    if (v->arena_len + n > *cap) {
        size_t c = *cap ? *cap : 1 << 16;
        while (c < v->arena_len + n) c *= 2;
        char *a = realloc(v->arena, c);
        if (!a) return q_fail(err, Q_ERR_NOMEM, "out of memory for %zu bytes of vocab texts", c);
        v->arena = a;
        *cap = c;
    }
    *off = (uint32_t)v->arena_len;
    if (n) memcpy(v->arena + *off, s, n);
    v->arena_len += n;
    return Q_OK;
}

/* ---- model table ---- */

typedef struct model_def {
    const char  *name;
    q_vocab_type type;
    q_token      bos, eos, unk, sep, pad, mask;
    bool         add_bos, add_sep, add_space_prefix, clean_spaces;
} model_def;

static const model_def model_defs[Q_VOCAB_TYPE_COUNT] = {
    [Q_VOCAB_SPM] = { "llama", Q_VOCAB_SPM, 1, 2, 0, Q_TOKEN_NULL, Q_TOKEN_NULL, Q_TOKEN_NULL,
                      true, false, true, false },
    [Q_VOCAB_BPE] = { "gpt2", Q_VOCAB_BPE, 11, 11, Q_TOKEN_NULL, Q_TOKEN_NULL, Q_TOKEN_NULL, Q_TOKEN_NULL,
                      false, false, false, true },
    [Q_VOCAB_WPM] = { "bert", Q_VOCAB_WPM, 101, Q_TOKEN_NULL, 100, 102, 0, 103,
                      true, true, false, true },
};

const char *q_vocab_type_name(q_vocab_type t) {
    static const char *const names[Q_VOCAB_TYPE_COUNT] = {
        [Q_VOCAB_SPM] = "spm", [Q_VOCAB_BPE] = "bpe", [Q_VOCAB_WPM] = "wpm",
    };
    return (unsigned)t < Q_VOCAB_TYPE_COUNT ? names[t] : "?";
}

/* GGUF token_type -> attribute. */
static uint32_t attr_of_type(int64_t t) {
    static const uint32_t attrs[] = {
        [0] = Q_TOKEN_ATTR_UNDEFINED, [1] = Q_TOKEN_ATTR_NORMAL,       [2] = Q_TOKEN_ATTR_UNKNOWN,
        [3] = Q_TOKEN_ATTR_CONTROL,   [4] = Q_TOKEN_ATTR_USER_DEFINED, [5] = Q_TOKEN_ATTR_UNUSED,
        [6] = Q_TOKEN_ATTR_BYTE,
    };
    return (t >= 0 && t < (int64_t)Q_ARRAY_LEN(attrs)) ? attrs[t] : Q_TOKEN_ATTR_UNDEFINED;
}

/* Named ids that llama.cpp also finds by text when no key gives them. */
enum { AUTO_EOT, AUTO_EOM, AUTO_FIM_PRE, AUTO_FIM_SUF, AUTO_FIM_MID, AUTO_FIM_PAD, AUTO_FIM_REP,
       AUTO_FIM_SEP, AUTO_COUNT };

static const char *const auto_keys[AUTO_COUNT][2] = {
    [AUTO_EOT]     = { KEY("eot_token_id"), NULL },
    [AUTO_EOM]     = { KEY("eom_token_id"), NULL },
    [AUTO_FIM_PRE] = { KEY("fim_pre_token_id"), KEY("prefix_token_id") },
    [AUTO_FIM_SUF] = { KEY("fim_suf_token_id"), KEY("suffix_token_id") },
    [AUTO_FIM_MID] = { KEY("fim_mid_token_id"), KEY("middle_token_id") },
    [AUTO_FIM_PAD] = { KEY("fim_pad_token_id"), NULL },
    [AUTO_FIM_REP] = { KEY("fim_rep_token_id"), NULL },
    [AUTO_FIM_SEP] = { KEY("fim_sep_token_id"), NULL },
};

static const char *const auto_texts[AUTO_COUNT][12] = {
    [AUTO_EOT]     = { "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                       "<|end_of_text|>", "<EOT>", "_<EOT>", "<｜end▁of▁sentence｜>", "<end_of_utterance>" },
    [AUTO_EOM]     = { "<|eom_id|>" },
    [AUTO_FIM_PRE] = { "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
                       "<|code_prefix|>" },
    [AUTO_FIM_SUF] = { "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>",
                       "<|code_suffix|>" },
    [AUTO_FIM_MID] = { "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>",
                       "<|code_middle|>" },
    [AUTO_FIM_PAD] = { "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>" },
    [AUTO_FIM_REP] = { "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>" },
    [AUTO_FIM_SEP] = { "<|file_sep|>" },
};

/* Texts of end-of-generation tokens. */
static const char *const eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>",
    "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
};

static const char *const special_keys[Q_SPECIAL_COUNT] = {
    [Q_SPECIAL_BOS] = KEY("bos_token_id"),     [Q_SPECIAL_EOS] = KEY("eos_token_id"),
    [Q_SPECIAL_EOT] = NULL, /* read with the auto-detected ids */
    [Q_SPECIAL_EOM] = NULL,
    [Q_SPECIAL_UNK] = KEY("unknown_token_id"), [Q_SPECIAL_SEP] = KEY("seperator_token_id"),
    [Q_SPECIAL_PAD] = KEY("padding_token_id"), [Q_SPECIAL_MASK] = KEY("mask_token_id"),
    [Q_SPECIAL_CLS] = KEY("cls_token_id"),     [Q_SPECIAL_NL] = NULL,
};

static q_token find_z(const q_vocab *v, const char *z) { return vocab_lookup(v, z, strlen(z)); }

static void make_control(q_vocab *v, q_token id) {
    if (!(v->toks[id].attr & Q_TOKEN_ATTR_CONTROL)) v->toks[id].attr = Q_TOKEN_ATTR_CONTROL;
}

static void eog_add(q_vocab *v, q_token id) {
    if (id == Q_TOKEN_NULL) return;
    for (size_t i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) return;
    v->eog = q_xrealloc(v->eog, (v->n_eog + 1) * sizeof *v->eog);
    v->eog[v->n_eog++] = id;
}

static void eog_remove(q_vocab *v, q_token id) {
    for (size_t i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) { v->eog[i] = v->eog[--v->n_eog]; return; }
}

static int cmp_token(const void *a, const void *b) {
    q_token x = *(const q_token *)a, y = *(const q_token *)b;
    return (x > y) - (x < y);
}

/* Longest text first; equal lengths by id for a deterministic order. */
static int cmp_special(const void *a, const void *b, void *ctx) {
    const q_vocab *v = ctx;
    q_token x = *(const q_token *)a, y = *(const q_token *)b;
    uint32_t lx = v->toks[x].len, ly = v->toks[y].len;
    if (lx != ly) return lx > ly ? -1 : 1;
    return (x > y) - (x < y);
}

static bool str_contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

static q_status load_tokens(q_vocab *v, const gguf_file *f, size_t *arena_cap, q_error *err) {
    const gguf_value *toks = gguf_get_arr(f, KEY("tokens"));
    if (!toks || toks->arr.type != GGUF_VT_STRING)
        return q_fail(err, Q_ERR_FORMAT, "cannot find tokenizer vocab (tokenizer.ggml.tokens, a string array)");
    if (toks->arr.n == 0)
        return q_fail(err, Q_ERR_FORMAT, "tokenizer.ggml.tokens is empty");
    if (toks->arr.n > VOCAB_MAX_COUNT)
        return q_fail(err, Q_ERR_LIMIT, "tokenizer.ggml.tokens has %llu entries (limit %u)",
                      (unsigned long long)toks->arr.n, VOCAB_MAX_COUNT);
    uint64_t n = toks->arr.n;

    const gguf_value *scores = gguf_get_arr(f, KEY("scores"));
    if (scores && (scores->arr.type != GGUF_VT_FLOAT32 || scores->arr.n != n))
        return q_fail(err, Q_ERR_FORMAT, "tokenizer.ggml.scores must be %llu f32 values", (unsigned long long)n);
    const gguf_value *types = gguf_get_arr(f, KEY("token_type"));
    if (types && (types->arr.type != GGUF_VT_INT32 || types->arr.n != n))
        return q_fail(err, Q_ERR_FORMAT, "tokenizer.ggml.token_type must be %llu i32 values", (unsigned long long)n);

    v->n_tokens = (int32_t)n;
    v->toks = calloc(n, sizeof *v->toks);
    if (!v->toks) return q_fail(err, Q_ERR_NOMEM, "out of memory for %llu tokens", (unsigned long long)n);
    q_status st;
    for (uint64_t i = 0; i < n; i++) {
        gguf_str s = toks->arr.strs[i];
        tok_entry *e = &v->toks[i];
        if (s.len == 0) {
            char tmp[32];
            int k = snprintf(tmp, sizeof tmp, "[EMPTY_%llu]", (unsigned long long)i);
            if ((st = arena_put(v, arena_cap, tmp, (size_t)k, &e->off, err)) != Q_OK) return st;
            e->len = (uint32_t)k;
        } else {
            if (s.len > VOCAB_MAX_TOKEN_LEN)
                return q_fail(err, Q_ERR_LIMIT, "token %llu is %llu bytes long (limit %u)", (unsigned long long)i,
                              (unsigned long long)s.len, VOCAB_MAX_TOKEN_LEN);
            if ((st = arena_put(v, arena_cap, s.ptr, s.len, &e->off, err)) != Q_OK) return st;
            e->len = (uint32_t)s.len;
        }
        e->score = scores ? (float)gguf_arr_f64(scores, i) : 0.0f;
        e->attr = types ? attr_of_type(gguf_arr_i64(types, i)) : Q_TOKEN_ATTR_NORMAL;
        if ((int32_t)e->len > v->max_token_len) v->max_token_len = (int32_t)e->len;
        if (e->len <= WPM_MAX_MATCH) {
            v->wpm_lens[e->len / 64] |= (uint64_t)1 << (e->len % 64);
            if (e->len > v->wpm_max_len) v->wpm_max_len = e->len;
        }
    }
    v->tok_mask = (uint32_t)(pow2_at_least(n * 2) - 1);
    v->tok_slots = calloc((size_t)v->tok_mask + 1, sizeof *v->tok_slots);
    if (!v->tok_slots) return q_fail(err, Q_ERR_NOMEM, "out of memory for the index of %llu tokens", (unsigned long long)n);
    for (q_token id = 0; id < v->n_tokens; id++) tok_insert(v, id);
    return Q_OK;
}

static q_status load_merges(q_vocab *v, const gguf_file *f, size_t *arena_cap, q_error *err) {
    const gguf_value *m = gguf_get_arr(f, KEY("merges"));
    if (!m || m->arr.type != GGUF_VT_STRING)
        return q_fail(err, Q_ERR_FORMAT, "cannot find tokenizer merges (tokenizer.ggml.merges, a string array)");
    if (m->arr.n > VOCAB_MAX_COUNT)
        return q_fail(err, Q_ERR_LIMIT, "tokenizer.ggml.merges has %llu entries (limit %u)", (unsigned long long)m->arr.n,
                      VOCAB_MAX_COUNT);
    v->n_merges = (uint32_t)m->arr.n;
    v->merges = calloc(v->n_merges ? v->n_merges : 1, sizeof *v->merges);
    if (!v->merges) return q_fail(err, Q_ERR_NOMEM, "out of memory for %u merges", v->n_merges);
    q_status st;
    for (uint32_t i = 0; i < v->n_merges; i++) {
        gguf_str s = m->arr.strs[i];
        /* Split at the first space after the first byte (a merge of " " itself stays
         * possible); no space means an empty pair, as in llama.cpp. */
        const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
        merge_entry *e = &v->merges[i];
        if (sp) {
            if (s.len > 2 * VOCAB_MAX_TOKEN_LEN + 1)
                return q_fail(err, Q_ERR_LIMIT, "merge %u is %llu bytes long (limit %u)", i, (unsigned long long)s.len,
                              2 * VOCAB_MAX_TOKEN_LEN + 1);
            if ((st = arena_put(v, arena_cap, s.ptr, s.len, &e->off, err)) != Q_OK) return st;
            e->len = (uint32_t)s.len;
            e->first_len = (uint32_t)(sp - s.ptr);
        } else {
            if ((st = arena_put(v, arena_cap, " ", 1, &e->off, err)) != Q_OK) return st;
            e->len = 1;
            e->first_len = 0;
        }
    }
    v->merge_mask = (uint32_t)(pow2_at_least((size_t)v->n_merges * 2) - 1);
    v->merge_slots = calloc((size_t)v->merge_mask + 1, sizeof *v->merge_slots);
    if (!v->merge_slots) return q_fail(err, Q_ERR_NOMEM, "out of memory for the index of %u merges", v->n_merges);
    for (uint32_t i = 0; i < v->n_merges; i++) merge_insert(v, i);
    return Q_OK;
}

static q_token read_id(const gguf_file *f, const char *key, q_token dflt, int32_t n_tokens) {
    uint64_t id;
    if (!key || !gguf_get_u64(f, key, &id)) return dflt;
    return id < (uint64_t)n_tokens ? (q_token)id : dflt;
}

static void read_bool(const gguf_file *f, const char *key, bool *b) {
    bool t;
    if (gguf_get_bool(f, key, &t)) *b = t;
}

/* llama.cpp's per-model token attributes (missing from GGUF). */
static void apply_model_attrs(q_vocab *v, const gguf_file *f) {
    char name[128] = "", arch[64] = "";
    gguf_str s;
    if (gguf_get_str(f, "general.name", &s)) {
        size_t n = Q_MIN(s.len, sizeof name - 1);
        for (size_t i = 0; i < n; i++) {
            char c = s.ptr[i];
            name[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
        name[n] = 0;
    }
    if (gguf_get_str(f, "general.architecture", &s)) {
        size_t n = Q_MIN(s.len, sizeof arch - 1);
        memcpy(arch, s.ptr, n);
        arch[n] = 0;
    }
    if (str_contains(v->pre_name, "jina-v2-de") || str_contains(v->pre_name, "jina-v2-es") ||
        str_contains(v->pre_name, "jina-v2-code") || str_contains(arch, "nomic-bert-moe") ||
        str_contains(arch, "jina-bert-v3")) {
        q_token m = find_z(v, "<mask>");
        if (m != Q_TOKEN_NULL) v->toks[m].attr |= Q_TOKEN_ATTR_LSTRIP;
    } else if (str_contains(name, "phi-3") || str_contains(name, "phi3")) {
        for (size_t i = 0; i < v->n_special_cache; i++) v->toks[v->special_cache[i]].attr |= Q_TOKEN_ATTR_RSTRIP;
        q_token t = find_z(v, "</s>");
        if (t != Q_TOKEN_NULL) v->toks[t].attr |= Q_TOKEN_ATTR_RSTRIP;
        static const char *const keep[] = { "<unk>", "<s>", "<|endoftext|>" };
        for (size_t i = 0; i < Q_ARRAY_LEN(keep); i++) {
            t = find_z(v, keep[i]);
            if (t != Q_TOKEN_NULL) v->toks[t].attr &= ~(uint32_t)Q_TOKEN_ATTR_RSTRIP;
        }
    }
}

q_status q_vocab_load(const gguf_file *f, q_vocab **out, q_error *err) {
    *out = NULL;
    gguf_str model;
    if (!gguf_get_str(f, KEY("model"), &model))
        return q_fail(err, Q_ERR_FORMAT, "missing tokenizer.ggml.model (the file has no tokenizer)");
    const model_def *md = NULL;
    for (int t = 0; t < Q_VOCAB_TYPE_COUNT; t++)
        if (gguf_str_eq(model, model_defs[t].name)) md = &model_defs[t];
    if (!md) {
        char *m = gguf_str_dup(model);
        q_status st = q_fail(err, Q_ERR_UNSUPPORTED, "unsupported tokenizer model '%s' (supported: llama, gpt2, bert)", m);
        free(m);
        return st;
    }

    q_vocab *v = q_xcalloc(1, sizeof *v);
    size_t arena_cap = 0;
    q_status st = Q_OK;
    v->type = md->type;

    gguf_str pre;
    if (gguf_get_str(f, KEY("pre"), &pre)) {
        if (pre.len >= sizeof v->pre_name) {
            st = q_fail(err, Q_ERR_UNSUPPORTED, "unsupported pre-tokenizer (tokenizer.ggml.pre is %llu bytes)",
                        (unsigned long long)pre.len);
            goto fail;
        }
        memcpy(v->pre_name, pre.ptr, pre.len);
        v->pre_name[pre.len] = 0;
    } else {
        strcpy(v->pre_name, "default");
    }

    for (int s = 0; s < Q_SPECIAL_COUNT; s++) v->special[s] = Q_TOKEN_NULL;
    v->special[Q_SPECIAL_BOS] = md->bos;
    v->special[Q_SPECIAL_EOS] = md->eos;
    v->special[Q_SPECIAL_UNK] = md->unk;
    v->special[Q_SPECIAL_SEP] = md->sep;
    v->special[Q_SPECIAL_PAD] = md->pad;
    v->special[Q_SPECIAL_MASK] = md->mask;
    v->add_bos = md->add_bos;
    v->add_sep = md->add_sep;
    v->add_space_prefix = md->add_space_prefix;
    v->clean_spaces = md->clean_spaces;

    if (v->type == Q_VOCAB_BPE) {
        unsigned pf;
        if (!pretok_lookup(v->pre_name, &pf)) {
            st = q_fail(err, Q_ERR_UNSUPPORTED, "unsupported pre-tokenizer '%s' (tokenizer.ggml.pre)", v->pre_name);
            goto fail;
        }
        if (pf & PRETOK_F_IGNORE_MERGES) v->ignore_merges = true;
        if (pf & PRETOK_F_ADD_BOS) v->add_bos = true;
        if (pf & PRETOK_F_NO_CLEAN_SPACES) v->clean_spaces = false;
        if (pf & PRETOK_F_ADD_SEP) v->add_sep = true;
        if (pf & PRETOK_F_NO_BOS) v->special[Q_SPECIAL_BOS] = Q_TOKEN_NULL;
        if ((st = pretok_new(v->pre_name, &v->pre, err)) != Q_OK) goto fail;
    }
    read_bool(f, KEY("add_space_prefix"), &v->add_space_prefix);
    read_bool(f, KEY("remove_extra_whitespaces"), &v->remove_extra_ws);

    if ((st = load_tokens(v, f, &arena_cap, err)) != Q_OK) goto fail;
    if (v->type == Q_VOCAB_BPE) {
        if ((st = load_merges(v, f, &arena_cap, err)) != Q_OK) goto fail;
        if ((st = pairs_build(v, err)) != Q_OK) goto fail;
        v->bpe_word_cache = true;
    }

    for (int s = 0; s < Q_SPECIAL_COUNT; s++)
        v->special[s] = read_id(f, special_keys[s], v->special[s], v->n_tokens);
    /* Defaults can point past a small vocab (BPE's 11, BERT's 101...): drop those. */
    for (int s = 0; s < Q_SPECIAL_COUNT; s++)
        if (v->special[s] >= v->n_tokens) v->special[s] = Q_TOKEN_NULL;
    if (v->type == Q_VOCAB_WPM && v->special[Q_SPECIAL_CLS] == Q_TOKEN_NULL)
        v->special[Q_SPECIAL_CLS] = v->special[Q_SPECIAL_BOS];
    read_bool(f, KEY("add_bos_token"), &v->add_bos);
    read_bool(f, KEY("add_eos_token"), &v->add_eos);
    read_bool(f, KEY("add_sep_token"), &v->add_sep);

    /* EOT/EOM/FIM ids: from keys, else by text (lowest id first); such tokens become
     * control tokens. */
    q_token autos[AUTO_COUNT];
    for (int a = 0; a < AUTO_COUNT; a++) {
        autos[a] = read_id(f, auto_keys[a][0], Q_TOKEN_NULL, v->n_tokens);
        if (autos[a] == Q_TOKEN_NULL) autos[a] = read_id(f, auto_keys[a][1], Q_TOKEN_NULL, v->n_tokens);
    }
    for (q_token id = 0; id < v->n_tokens; id++) {
        const tok_entry *e = &v->toks[id];
        for (int a = 0; a < AUTO_COUNT; a++) {
            if (autos[a] != Q_TOKEN_NULL) continue;
            for (int k = 0; auto_texts[a][k]; k++)
                if (strlen(auto_texts[a][k]) == e->len && !memcmp(auto_texts[a][k], vocab_text(v, id), e->len)) {
                    autos[a] = id;
                    make_control(v, id);
                    break;
                }
        }
    }
    v->special[Q_SPECIAL_EOT] = autos[AUTO_EOT];
    v->special[Q_SPECIAL_EOM] = autos[AUTO_EOM];

    /* End-of-generation set. */
    eog_add(v, autos[AUTO_FIM_PAD]);
    eog_add(v, autos[AUTO_FIM_REP]);
    eog_add(v, autos[AUTO_FIM_SEP]);
    for (size_t k = 0; k < Q_ARRAY_LEN(eog_texts); k++) {
        q_token id = find_z(v, eog_texts[k]);
        if (id != Q_TOKEN_NULL) { eog_add(v, id); make_control(v, id); }
    }
    static const char *const always_rendered[] = { "<|channel|>", "<|message|>", "<|start|>", "<|constrain|>" };
    for (size_t k = 0; k < Q_ARRAY_LEN(always_rendered); k++) {
        q_token id = find_z(v, always_rendered[k]);
        if (id != Q_TOKEN_NULL) v->toks[id].attr = Q_TOKEN_ATTR_USER_DEFINED;
    }
    eog_add(v, v->special[Q_SPECIAL_EOS]);
    eog_add(v, v->special[Q_SPECIAL_EOT]);
    eog_add(v, v->special[Q_SPECIAL_EOM]);
    {   /* o200k_harmony: with <|return|> and <|call|>, <|end|> is not end-of-generation. */
        q_token ret = find_z(v, "<|return|>"), call = find_z(v, "<|call|>"), end = find_z(v, "<|end|>");
        if (ret != Q_TOKEN_NULL && call != Q_TOKEN_NULL && end != Q_TOKEN_NULL) {
            eog_remove(v, end);
            v->toks[end].attr = Q_TOKEN_ATTR_USER_DEFINED;
        }
    }
    if (v->n_eog) qsort(v->eog, v->n_eog, sizeof *v->eog, cmp_token);

    /* Special tokens, longest first, for splitting them out of the text. */
    v->special_cache = malloc((size_t)v->n_tokens * sizeof *v->special_cache);
    if (!v->special_cache) {
        st = q_fail(err, Q_ERR_NOMEM, "out of memory for the special tokens of %d tokens", v->n_tokens);
        goto fail;
    }
    for (q_token id = 0; id < v->n_tokens; id++)
        if (v->toks[id].attr & (Q_TOKEN_ATTR_CONTROL | Q_TOKEN_ATTR_USER_DEFINED | Q_TOKEN_ATTR_UNKNOWN))
            v->special_cache[v->n_special_cache++] = id;
    qsort_r(v->special_cache, v->n_special_cache, sizeof *v->special_cache, cmp_special, v);
    v->special_by_byte = malloc((v->n_special_cache ? v->n_special_cache : 1) * sizeof *v->special_by_byte);
    if (!v->special_by_byte) {
        st = q_fail(err, Q_ERR_NOMEM, "out of memory for %zu special tokens", v->n_special_cache);
        goto fail;
    }
    {
        uint32_t count[256] = { 0 };
        for (size_t i = 0; i < v->n_special_cache; i++) count[(uint8_t)vocab_text(v, v->special_cache[i])[0]]++;
        v->special_byte_start[0] = 0;
        for (int b = 0; b < 256; b++) v->special_byte_start[b + 1] = v->special_byte_start[b] + count[b];
        uint32_t fill[256];
        memcpy(fill, v->special_byte_start, sizeof fill);
        for (size_t i = 0; i < v->n_special_cache; i++)
            v->special_by_byte[fill[(uint8_t)vocab_text(v, v->special_cache[i])[0]]++] = (uint32_t)i;
    }

    /* Pieces (as rendered with special = true), before the strip attributes change. */
    {
        tok_buf b = { 0 };
        for (q_token id = 0; id < v->n_tokens && st == Q_OK; id++) {
            b.n = 0;
            detok_render_piece(v, id, &b);
            st = arena_put(v, &arena_cap, b.p, b.n, &v->toks[id].piece_off, err);
            v->toks[id].piece_len = (uint32_t)b.n;
        }
        tok_buf_free(&b);
        if (st != Q_OK) goto fail;
    }
    apply_model_attrs(v, f);

    /* Can SPM cut its input in front of each run of U+2581? Only if no token contains a
     * U+2581 that follows some other byte. */
    v->spm_split_safe = v->type == Q_VOCAB_SPM;
    for (q_token id = 0; id < v->n_tokens && v->spm_split_safe; id++) {
        const char *t = vocab_text(v, id);
        uint32_t n = v->toks[id].len;
        for (uint32_t i = 1; i + 3 <= n; i++)
            if (!memcmp(t + i, "\xE2\x96\x81", 3) && (i < 3 || memcmp(t + i - 3, "\xE2\x96\x81", 3))) {
                v->spm_split_safe = false;
                break;
            }
    }

    /* Byte fallback tokens (SPM): "<0xXX>", else the single byte as text. */
    for (int b = 0; b < 256; b++) {
        char hex[8];
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        q_token id = find_z(v, hex);
        if (id == Q_TOKEN_NULL) { char c = (char)b; id = vocab_lookup(v, &c, 1); }
        v->byte_tok[b] = id;
    }

    /* Newline token. */
    if (v->type == Q_VOCAB_SPM) {
        v->special[Q_SPECIAL_NL] = v->byte_tok['\n'] != Q_TOKEN_NULL ? v->byte_tok['\n'] : v->special[Q_SPECIAL_PAD];
    } else if (v->type == Q_VOCAB_WPM) {
        v->special[Q_SPECIAL_NL] = v->special[Q_SPECIAL_PAD];
    } else {
        q_tokens t = { 0 };
        if (q_tokenize(v, "\n", 1, false, false, &t, NULL) == Q_OK && t.n > 0) v->special[Q_SPECIAL_NL] = t.ids[0];
        else v->special[Q_SPECIAL_NL] = v->special[Q_SPECIAL_PAD];
        q_tokens_free(&t);
    }

    *out = v;
    return Q_OK;
fail:
    q_vocab_free(v);
    return st;
}

void q_vocab_free(q_vocab *v) {
    if (!v) return;
    pretok_free(v->pre);
    free(v->arena);
    free(v->toks);
    free(v->tok_slots);
    free(v->merges);
    free(v->merge_slots);
    free(v->pair_keys);
    free(v->pair_rank);
    free(v->pair_result);
    free(v->eog);
    free(v->special_cache);
    free(v->special_by_byte);
    free(v);
}

/* ---- accessors ---- */

q_vocab_type q_vocab_get_type(const q_vocab *v) { return v->type; }
const char  *q_vocab_pre_name(const q_vocab *v) { return v->pre_name; }
int32_t      q_vocab_n_tokens(const q_vocab *v) { return v->n_tokens; }
bool         q_vocab_add_bos(const q_vocab *v) { return v->add_bos; }
bool         q_vocab_add_eos(const q_vocab *v) { return v->add_eos; }

q_token q_vocab_special(const q_vocab *v, q_special which) {
    return (unsigned)which < Q_SPECIAL_COUNT ? v->special[which] : Q_TOKEN_NULL;
}

bool q_vocab_is_eog(const q_vocab *v, q_token id) {
    if (id == Q_TOKEN_NULL) return false;
    return v->n_eog && bsearch(&id, v->eog, v->n_eog, sizeof *v->eog, cmp_token) != NULL;
}

uint32_t q_vocab_token_attr(const q_vocab *v, q_token id) {
    return (id >= 0 && id < v->n_tokens) ? v->toks[id].attr : 0;
}

float q_vocab_token_score(const q_vocab *v, q_token id) {
    return (id >= 0 && id < v->n_tokens) ? v->toks[id].score : 0.0f;
}

const char *q_vocab_token_text(const q_vocab *v, q_token id, size_t *len) {
    if (id < 0 || id >= v->n_tokens) { if (len) *len = 0; return NULL; }
    if (len) *len = v->toks[id].len;
    return vocab_text(v, id);
}

q_token q_vocab_find(const q_vocab *v, const char *text, size_t len) { return vocab_lookup(v, text, len); }
