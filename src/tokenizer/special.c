/* special.c — q_tokenize: splits special-token texts out of the input, then runs the
 * vocab's model tokenizer on each remaining text fragment (llama.cpp's
 * tokenizer_st_partition + llama_tokenize_impl).
 *
 * Partition: special tokens are tried longest text first; each one splits every text
 * fragment at all its (non-overlapping, leftmost-first) occurrences. With parse_special
 * = false only user-defined tokens are split out (control and unknown tokens stay text).
 * A token with the LSTRIP attribute eats the ASCII whitespace before it, RSTRIP the
 * whitespace after it.
 *
 * Model step: SPM prepends one space to a fragment that starts the text or follows a
 * special token (when add_space_prefix), then writes spaces as U+2581; BPE and WPM take
 * fragments as they are. add_special adds BOS/EOS as the vocab says (SPM, BPE) or
 * [CLS]/[SEP] (WPM).
 *
 * Memory: fragments and scratch are per call; ids are appended to the caller's q_tokens. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/internal.h"

typedef struct frag {
    q_token token;   /* Q_TOKEN_NULL: raw text [off, off+len) */
    size_t  off, len;
} frag;

typedef struct frag_vec {
    frag  *v;
    size_t n, cap;
} frag_vec;

static void frag_push(frag_vec *f, q_token token, size_t off, size_t len) {
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->v = q_xrealloc(f->v, f->cap * sizeof *f->v);
    }
    f->v[f->n++] = (frag){ token, off, len };
}

static bool is_c_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Splits every text fragment of *in at occurrences of special token id into *out. */
static void partition_one(const q_vocab *v, q_token id, const char *text, const frag_vec *in, frag_vec *out) {
    const char *tok = vocab_text(v, id);
    size_t tlen = v->toks[id].len;
    uint32_t attr = v->toks[id].attr;
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        frag f = in->v[i];
        if (f.token != Q_TOKEN_NULL || f.len < tlen) { frag_push(out, f.token, f.off, f.len); continue; }
        size_t base = f.off, blen = f.len;
        bool matched = false;
        for (;;) {
            const char *m = blen >= tlen ? memmem(text + base, blen, tok, tlen) : NULL;
            if (!m) break;
            matched = true;
            size_t at = (size_t)(m - text);
            if (at > base) {
                size_t llen = at - base;
                if (attr & Q_TOKEN_ATTR_LSTRIP)
                    while (llen > 0 && is_c_space(text[base + llen - 1])) llen--;
                if (llen > 0) frag_push(out, Q_TOKEN_NULL, base, llen);
            }
            frag_push(out, id, 0, 0);
            size_t rstart = at + tlen, rlen = base + blen - rstart;
            if (attr & Q_TOKEN_ATTR_RSTRIP)
                while (rlen > 0 && is_c_space(text[rstart])) { rstart++; rlen--; }
            base = rstart;
            blen = rlen;
            if (blen == 0) break;
        }
        if (!matched) frag_push(out, Q_TOKEN_NULL, f.off, f.len);
        else if (blen > 0) frag_push(out, Q_TOKEN_NULL, base, blen);
    }
}

static q_status tokenize_spm_fragment(const q_vocab *v, const char *text, size_t len, bool prefix_space,
                                      tok_buf *scratch, q_tokens *out, q_error *err) {
    static const char lower_one_eighth[3] = { '\xE2', '\x96', '\x81' };  /* U+2581, SentencePiece's space */
    /* spm.c keeps 32-bit offsets: the limit applies to the escaped text (a space becomes
     * 3 bytes), checked before it is built. */
    size_t escaped = len + (prefix_space ? 3 : 0);
    for (size_t i = 0; i < len; i++) escaped += text[i] == ' ' ? 2 : 0;
    if (escaped > (size_t)INT32_MAX)
        return q_fail(err, Q_ERR_LIMIT, "text of %zu bytes (%zu with spaces escaped) is too long to tokenize at once "
                      "(limit 2 GiB)", len, escaped);
    scratch->n = 0;
    if (prefix_space) tok_buf_put(scratch, lower_one_eighth, 3);
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') tok_buf_put(scratch, lower_one_eighth, 3);
        else tok_buf_putc(scratch, text[i]);
    }
    return spm_tokenize(v, scratch->p, scratch->n, out, err);
}

/* Marks in present[] (indexed like v->special_cache) the special tokens whose text occurs
 * somewhere in text. Fragments are substrings of the text, so a token that does not occur
 * cannot split anything and its pass can be skipped: one scan instead of one per token. */
static void special_present(const q_vocab *v, const char *text, size_t len, bool parse_special, uint8_t *present) {
    for (size_t p = 0; p < len; p++) {
        uint8_t c = (uint8_t)text[p];
        for (uint32_t k = v->special_byte_start[c]; k < v->special_byte_start[c + 1]; k++) {
            uint32_t i = v->special_by_byte[k];
            if (present[i]) continue;
            q_token id = v->special_cache[i];
            if (!parse_special && (v->toks[id].attr & (Q_TOKEN_ATTR_CONTROL | Q_TOKEN_ATTR_UNKNOWN))) continue;
            uint32_t tl = v->toks[id].len;
            if (tl <= len - p && !memcmp(text + p, vocab_text(v, id), tl)) present[i] = 1;
        }
    }
}

/* ---- model step, one function per vocab type (vocab_ops.tokenize) ---- */

static q_status frags_spm(const q_vocab *v, const char *text, const frag *f, size_t n, bool add_special,
                          q_tokens *out, q_error *err) {
    const q_token bos = v->special[Q_SPECIAL_BOS], eos = v->special[Q_SPECIAL_EOS];
    q_status st = Q_OK;
    tok_buf scratch = { 0 };
    bool prev_special = true;  /* the text start counts as "after a special token" */
    if (add_special && v->add_bos && bos != Q_TOKEN_NULL) tok_push(out, bos);
    for (size_t i = 0; i < n && st == Q_OK; i++) {
        if (f[i].token != Q_TOKEN_NULL) { tok_push(out, f[i].token); prev_special = true; continue; }
        st = tokenize_spm_fragment(v, text + f[i].off, f[i].len, v->add_space_prefix && prev_special, &scratch, out,
                                   err);
        prev_special = false;
    }
    if (st == Q_OK && add_special && v->add_eos && eos != Q_TOKEN_NULL) tok_push(out, eos);
    tok_buf_free(&scratch);
    return st;
}

static q_status frags_bpe(const q_vocab *v, const char *text, const frag *f, size_t n, bool add_special,
                          q_tokens *out, q_error *err) {
    const q_token bos = v->special[Q_SPECIAL_BOS], eos = v->special[Q_SPECIAL_EOS];
    q_status st = Q_OK;
    bpe_session *bs = bpe_session_new();
    if (add_special && v->add_bos && bos != Q_TOKEN_NULL) tok_push(out, bos);
    for (size_t i = 0; i < n && st == Q_OK; i++) {
        if (f[i].token != Q_TOKEN_NULL) { tok_push(out, f[i].token); continue; }
        st = bpe_tokenize(v, bs, text + f[i].off, f[i].len, out, err);
    }
    if (st == Q_OK && add_special && v->add_eos && eos != Q_TOKEN_NULL) tok_push(out, eos);
    bpe_session_free(bs);
    return st;
}

/* WPM: [CLS] ... [SEP] whenever add_special. */
static q_status frags_wpm(const q_vocab *v, const char *text, const frag *f, size_t n, bool add_special,
                          q_tokens *out, q_error *err) {
    const q_token bos = v->special[Q_SPECIAL_BOS], sep = v->special[Q_SPECIAL_SEP];
    q_status st = Q_OK;
    if (add_special && bos != Q_TOKEN_NULL) tok_push(out, bos);
    for (size_t i = 0; i < n && st == Q_OK; i++) {
        if (f[i].token != Q_TOKEN_NULL) { tok_push(out, f[i].token); continue; }
        st = wpm_tokenize(v, text + f[i].off, f[i].len, out, err);
    }
    if (st == Q_OK && add_special && sep != Q_TOKEN_NULL) tok_push(out, sep);
    return st;
}

typedef struct vocab_ops {
    /* Appends the ids of the partitioned text (special tokens as they are, text
     * fragments through the model), with BOS/EOS or [CLS]/[SEP] when add_special. */
    q_status (*tokenize)(const q_vocab *v, const char *text, const frag *f, size_t n, bool add_special,
                         q_tokens *out, q_error *err);
} vocab_ops;

static const vocab_ops vocab_ops_table[Q_VOCAB_TYPE_COUNT] = {
    [Q_VOCAB_SPM] = { .tokenize = frags_spm },
    [Q_VOCAB_BPE] = { .tokenize = frags_bpe },
    [Q_VOCAB_WPM] = { .tokenize = frags_wpm },
};

static const vocab_ops *vocab_ops_of(q_vocab_type t) {
    Q_ASSERT((unsigned)t < Q_VOCAB_TYPE_COUNT && vocab_ops_table[t].tokenize);
    return &vocab_ops_table[t];
}

q_status q_tokenize(const q_vocab *v, const char *text, size_t len, bool add_special, bool parse_special,
                    q_tokens *out, q_error *err) {
    /* Symbol offsets are 32-bit. */
    if (len > (size_t)INT32_MAX)
        return q_fail(err, Q_ERR_LIMIT, "text of %zu bytes is too long to tokenize at once (limit 2 GiB)", len);
    frag_vec a = { 0 }, b = { 0 };
    if (len > 0) frag_push(&a, Q_TOKEN_NULL, 0, len);
    uint8_t *present = NULL;
    if (len > 0 && v->n_special_cache > 0) {
        present = q_xcalloc(v->n_special_cache, 1);
        special_present(v, text, len, parse_special, present);
    }
    for (size_t s = 0; s < v->n_special_cache && a.n > 0; s++) {
        if (!present[s]) continue;
        partition_one(v, v->special_cache[s], text, &a, &b);
        frag_vec t = a; a = b; b = t;
    }
    free(present);
    free(b.v);

    q_status st = vocab_ops_of(v->type)->tokenize(v, text, a.v, a.n, add_special, out, err);
    free(a.v);
    return st;
}
