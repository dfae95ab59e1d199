/* detok.c — ids -> text: token pieces, whole-sequence detokenization (llama.cpp's
 * llama_detokenize, clean_spaces included) and a streaming detokenizer that only ever
 * emits valid UTF-8.
 *
 * Pieces (rendered once per vocab at load, special = true):
 *   control / user-defined / unknown tokens   their text as is
 *   SPM, WPM normal tokens   text with U+2581 -> ' '
 *   SPM byte tokens          the byte of "<0xXX>"
 *   BPE normal tokens        each codepoint mapped back through bytes_to_unicode (a
 *                            codepoint outside the map renders as "[UNK_BYTE_0x<hex>]"
 *                            like llama.cpp, which also puts the token text before the
 *                            ']' each time: we do that for the first one only, so a piece
 *                            is at most 16x its text, not quadratic)
 *   anything else            nothing
 * With special = false, control and unknown tokens render as nothing.
 *
 * Memory: q_detokenize returns a malloc'ed string; a stream owns its buffers and returns
 * views into them that stay valid until the next call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/internal.h"

void detok_render_piece(const q_vocab *v, q_token id, tok_buf *b) {
    const tok_entry *e = &v->toks[id];
    const char *t = vocab_text(v, id);
    if (e->attr & (Q_TOKEN_ATTR_UNKNOWN | Q_TOKEN_ATTR_CONTROL | Q_TOKEN_ATTR_USER_DEFINED)) {
        tok_buf_put(b, t, e->len);
        return;
    }
    if (v->type == Q_VOCAB_SPM || v->type == Q_VOCAB_WPM) {
        if (e->attr & Q_TOKEN_ATTR_NORMAL) {
            for (uint32_t i = 0; i < e->len; i++) {
                if (i + 2 < e->len && !memcmp(t + i, "\xE2\x96\x81", 3)) { tok_buf_putc(b, ' '); i += 2; }
                else tok_buf_putc(b, t[i]);
            }
        } else if ((e->attr & Q_TOKEN_ATTR_BYTE) && e->len >= 5) {
            char hex[3] = { t[3], t[4], 0 };
            tok_buf_putc(b, (char)strtol(hex, NULL, 16));
        }
        return;
    }
    if (!(e->attr & Q_TOKEN_ATTR_NORMAL)) return;
    bool text_done = false;  /* llama.cpp appends the whole text after every unmapped codepoint
                              * (quadratic); once per token keeps the piece linear in len */
    for (uint32_t i = 0; i < e->len;) {
        size_t adv;
        uint32_t cp = utf8_decode_lenient((const uint8_t *)t + i, e->len - i, &adv);
        int byte = bpe_cp_to_byte(cp);
        if (byte >= 0) {
            tok_buf_putc(b, (char)byte);
        } else {
            char u[4], hx[8];
            size_t ul = utf8_encode(cp, u);
            tok_buf_put(b, "[UNK_BYTE_0x", 12);
            for (size_t k = 0; k < ul; k++) {
                snprintf(hx, sizeof hx, "%02x", (uint8_t)u[k]);
                tok_buf_put(b, hx, 2);
            }
            if (!text_done) tok_buf_put(b, t, e->len);
            text_done = true;
            tok_buf_putc(b, ']');
        }
        i += adv;
    }
}

/* The cached piece of id with llama.cpp's special / lstrip rules; len 0 when hidden. */
static const char *piece_of(const q_vocab *v, q_token id, int lstrip, bool special, size_t *len) {
    *len = 0;
    if (id < 0 || id >= v->n_tokens) return "";
    const tok_entry *e = &v->toks[id];
    if (!special && (e->attr & (Q_TOKEN_ATTR_UNKNOWN | Q_TOKEN_ATTR_CONTROL))) return "";
    const char *p = v->arena + e->piece_off;
    size_t n = e->piece_len;
    for (int i = 0; i < lstrip && n && *p == ' '; i++) { p++; n--; }
    *len = n;
    return p;
}

size_t q_token_to_piece(const q_vocab *v, q_token id, char *buf, size_t cap, int lstrip, bool special) {
    size_t n;
    const char *p = piece_of(v, id, lstrip, special, &n);
    if (n <= cap && n) memcpy(buf, p, n);
    return n;
}

/* llama.cpp's clean_up_tokenization_spaces, in place; returns the new length. */
static size_t clean_spaces(char *t, size_t n) {
    /* " ?", " !", " .", " ," lose the space */
    size_t total = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = t[i];
        if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) total--;
        t[total++] = x;
    }
    /* " ' " becomes "'" */
    size_t n2 = total;
    total = n2 ? 1 : 0;
    for (size_t i = 1; i < n2; i++) {
        char x = t[i];
        if (x == '\'' && i + 1 < n2 && t[i - 1] == ' ' && t[i + 1] == ' ') {
            total--;
            t[++i] = '\0';
        }
        t[total++] = x;
    }
    /* " 's", " 'm", " 're", " 've" lose the space */
    size_t n3 = total;
    total = n3 ? 1 : 0;
    for (size_t i = 1; i < n3; i++) {
        char x = t[i];
        if (t[i - 1] == ' ' && x == '\'' && i + 1 < n3) {
            char x1 = t[i + 1];
            if (x1 == 's' || x1 == 'm') total--;
            else if (i + 2 < n3 && ((x1 == 'r' && t[i + 2] == 'e') || (x1 == 'v' && t[i + 2] == 'e'))) total--;
        }
        t[total++] = x;
    }
    return total;
}

q_status q_detokenize(const q_vocab *v, const q_token *ids, size_t n, bool remove_special, bool unparse_special,
                      char **out, size_t *len, q_error *err) {
    (void)err;
    bool remove_space = v->add_space_prefix;
    if (remove_special && v->add_bos && n > 0 && ids[0] == v->special[Q_SPECIAL_BOS]) {
        remove_space = false;
        ids++;
        n--;
    }
    if (remove_special && v->add_eos && n > 0 && ids[n - 1] == v->special[Q_SPECIAL_EOS]) n--;
    tok_buf b = { 0 };
    for (size_t i = 0; i < n; i++) {
        size_t pl;
        const char *p = piece_of(v, ids[i], remove_space ? 1 : 0, unparse_special, &pl);
        tok_buf_put(&b, p, pl);
        remove_space = false;
    }
    if (v->clean_spaces) b.n = clean_spaces(b.p, b.n);
    tok_buf_putc(&b, '\0');
    *out = b.p;
    *len = b.n - 1;
    return Q_OK;
}

/* ---- streaming ---- */

struct q_detok_stream {
    const q_vocab *v;
    bool           special;
    bool           first;    /* the next token is the first: SPM drops its leading space */
    tok_buf        pending;  /* bytes of an incomplete character */
    tok_buf        out;
};

q_detok_stream *q_detok_stream_new(const q_vocab *v, bool special) {
    q_detok_stream *s = q_xcalloc(1, sizeof *s);
    s->v = v;
    s->special = special;
    s->first = true;
    return s;
}

void q_detok_stream_free(q_detok_stream *s) {
    if (!s) return;
    tok_buf_free(&s->pending);
    tok_buf_free(&s->out);
    free(s);
}

/* Length of the valid UTF-8 character at p[0..n): > 0 complete; 0 a valid but
 * incomplete prefix (all of p); < 0 invalid, -k = the maximal invalid subpart to replace. */
static int utf8_scan(const uint8_t *p, size_t n) {
    uint8_t c = p[0];
    if (c < 0x80) return 1;
    int need;
    uint8_t lo = 0x80, hi = 0xBF;  /* range of the first continuation byte */
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) { need = 2; lo = 0xA0; }
    else if (c == 0xED) { need = 2; hi = 0x9F; }
    else if (c >= 0xE1 && c <= 0xEF) need = 2;
    else if (c == 0xF0) { need = 3; lo = 0x90; }
    else if (c == 0xF4) { need = 3; hi = 0x8F; }
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else return -1;
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n) return 0;
        uint8_t x = p[i];
        if (i == 1 ? (x < lo || x > hi) : (x < 0x80 || x > 0xBF)) return -i;
    }
    return need + 1;
}

/* Moves the complete (or provably invalid) prefix of pending to out. */
static void stream_drain(q_detok_stream *s, bool at_end) {
    static const char fffd[3] = { '\xEF', '\xBF', '\xBD' };
    const uint8_t *p = (const uint8_t *)s->pending.p;
    size_t n = s->pending.n, i = 0;
    while (i < n) {
        int k = utf8_scan(p + i, n - i);
        if (k > 0) { tok_buf_put(&s->out, p + i, (size_t)k); i += (size_t)k; continue; }
        if (k == 0 && !at_end) break;
        tok_buf_put(&s->out, fffd, 3);
        i += k < 0 ? (size_t)-k : n - i;
    }
    if (i && n > i) memmove(s->pending.p, s->pending.p + i, n - i);
    s->pending.n = n - i;
}

const char *q_detok_stream_push(q_detok_stream *s, q_token id, size_t *len) {
    size_t pl;
    const char *p = piece_of(s->v, id, s->first && s->v->add_space_prefix ? 1 : 0, s->special, &pl);
    s->first = false;
    s->out.n = 0;
    tok_buf_put(&s->pending, p, pl);
    stream_drain(s, false);
    *len = s->out.n;
    return s->out.n ? s->out.p : "";
}

const char *q_detok_stream_flush(q_detok_stream *s, size_t *len) {
    s->out.n = 0;
    stream_drain(s, true);
    s->first = true;
    *len = s->out.n;
    return s->out.n ? s->out.p : "";
}
