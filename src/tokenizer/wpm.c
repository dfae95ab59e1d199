/* wpm.c — BERT WordPiece as llama.cpp's llm_tokenizer_wpm does it, for one fragment.
 *
 * Normalisation, per codepoint (lenient decoding, bad bytes -> U+FFFD): replace it by the
 * first codepoint of its NFD decomposition (this also strips accents), then
 *   whitespace          ends the current word;
 *   NUL, U+FFFD, \p{C}  dropped;
 *   punctuation, ASCII symbols, CJK ideographs  a word of their own;
 *   anything else       appended, lowercased, to the current word.
 * Each word is matched greedily, longest byte substring first, against the vocab with a
 * leading U+2581 (GGUF BERT vocabs store word starts as "▁word" and continuations
 * without "##"); if some position has no match the whole word becomes [UNK]. Tokens
 * longer than WPM_MAX_MATCH bytes never match (bounds the work on a hostile vocab).
 *
 * Memory: scratch per call. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/internal.h"

static bool is_cjk(uint32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
           (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) ||
           (cp >= 0x2B920 && cp <= 0x2CEAF) ||  /* 0x2B920, not 0x2B820: as in HF's Rust code */
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/* Greedy longest-match of one word (w = "▁" + word). */
static q_status wpm_word(const q_vocab *v, const char *w, size_t n, q_tokens *out, q_error *err) {
    size_t start = out->n;
    for (size_t i = 0; i < n; i++) {
        bool match = false;
        /* llama.cpp tries every length up to max_token_len + 1, hashing that many bytes
         * each time (O(n * L^2) on a vocab with one huge token); lengths no token has
         * cannot match, so skipping them gives the same result. */
        size_t jmax = Q_MIN(n, i + (size_t)v->wpm_max_len);
        for (size_t j = jmax; j > i; j--) {
            if (!(v->wpm_lens[(j - i) / 64] >> ((j - i) % 64) & 1)) continue;
            q_token id = vocab_lookup(v, w + i, j - i);
            if (id != Q_TOKEN_NULL) {
                tok_push(out, id);
                match = true;
                i = j - 1;
                break;
            }
        }
        if (!match) { out->n = start; break; }
    }
    if (out->n == start) {
        q_token unk = v->special[Q_SPECIAL_UNK];
        if (unk == Q_TOKEN_NULL) return q_fail(err, Q_ERR_UNSUPPORTED, "a word has no WordPiece match and the vocab has no [UNK]");
        tok_push(out, unk);
    }
    return Q_OK;
}

q_status wpm_tokenize(const q_vocab *v, const char *text, size_t len, q_tokens *out, q_error *err) {
    static const char lower_one_eighth[3] = { '\xE2', '\x96', '\x81' };
    tok_buf w = { 0 };
    q_status st = Q_OK;
    tok_buf_put(&w, lower_one_eighth, 3);
#define WORD_END()                                                       \
    do {                                                                 \
        if (w.n > 3 && st == Q_OK) st = wpm_word(v, w.p, w.n, out, err); \
        w.n = 3;                                                         \
    } while (0)
    for (size_t off = 0; off < len && st == Q_OK;) {
        size_t adv;
        uint32_t cp = ucp_nfd_first(utf8_decode_lenient((const uint8_t *)text + off, len - off, &adv));
        off += adv;
        uint8_t f = ucp_flags(cp);
        int cat = f & UFLAG_CAT_MASK;
        if (f & UFLAG_WHITESPACE) { WORD_END(); continue; }
        if (cp == 0 || cp == 0xFFFD || cat == UCAT_CONTROL) continue;
        char u[4];
        size_t ul = utf8_encode(ucp_tolower(cp), u);
        if (cat == UCAT_PUNCT || (cp < 0x7F && cat == UCAT_SYMBOL) || is_cjk(cp)) {
            WORD_END();
            tok_buf_put(&w, u, ul);
            WORD_END();
        } else {
            tok_buf_put(&w, u, ul);
        }
    }
    WORD_END();
#undef WORD_END
    tok_buf_free(&w);
    return st;
}
