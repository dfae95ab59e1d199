/* internal.h — what the tokenizer files (every file of src/tokenizer) share: the q_vocab layout,
 * the per-model entry points, the Unicode helpers and the pre-tokenizer interface.
 * Not part of the public API (include/quarrel/tokenizer.h). */
#ifndef QUARREL_TOKENIZER_INTERNAL_H
#define QUARREL_TOKENIZER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base.h"
#include "quarrel/tokenizer.h"

/* ---- byte buffer (scratch strings) ---- */
typedef struct tok_buf {
    char  *p;
    size_t n, cap;
} tok_buf;

void tok_buf_reserve(tok_buf *b, size_t extra);
void tok_buf_put(tok_buf *b, const void *s, size_t n);
static inline void tok_buf_putc(tok_buf *b, char c) { tok_buf_put(b, &c, 1); }
void tok_buf_free(tok_buf *b);

void tok_push(q_tokens *t, q_token id);

/* ---- Unicode (unicode.c) ----
 * Codepoint flags follow llama.cpp's tables (Python `regex` categories): one category
 * per codepoint plus a White_Space bit. Computed from utf8proc once per process. */
enum {
    UCAT_UNDEF = 0,
    UCAT_NUMBER,       /* \p{N} */
    UCAT_LETTER,       /* \p{L} */
    UCAT_SEPARATOR,    /* \p{Z} */
    UCAT_MARK,         /* \p{M} */
    UCAT_PUNCT,        /* \p{P} */
    UCAT_SYMBOL,       /* \p{S} */
    UCAT_CONTROL,      /* \p{C}, unassigned included */
};
#define UFLAG_CAT_MASK   0x07
#define UFLAG_WHITESPACE 0x08

uint8_t  ucp_flags(uint32_t cp);           /* 0 (undefined) above U+10FFFF */
static inline int  ucp_cat(uint32_t cp) { return ucp_flags(cp) & UFLAG_CAT_MASK; }
static inline bool ucp_is_space(uint32_t cp) { return (ucp_flags(cp) & UFLAG_WHITESPACE) != 0; }
uint32_t ucp_tolower(uint32_t cp);
uint32_t ucp_nfd_first(uint32_t cp);       /* first codepoint of cp's NFD decomposition */

/* llama.cpp's lenient UTF-8 decoder: overlong forms and surrogates decode, a bad byte
 * becomes U+FFFD and consumes one byte. *adv receives the bytes consumed. */
uint32_t utf8_decode_lenient(const uint8_t *s, size_t n, size_t *adv);
/* Encodes cp (any value <= 0x10FFFF, surrogates included) into out; returns bytes. */
size_t   utf8_encode(uint32_t cp, char out[4]);
/* Byte length a lead byte announces (1 for continuation/invalid bytes, as llama.cpp). */
static inline size_t utf8_len_lead(uint8_t c) {
    static const uint8_t lut[16] = { 1,1,1,1,1,1,1,1,1,1,1,1,2,2,3,4 };
    return lut[c >> 4];
}

/* GPT-2's bytes_to_unicode: byte b <-> codepoint (printable bytes map to themselves). */
uint32_t bpe_byte_to_cp(uint8_t b);
int      bpe_cp_to_byte(uint32_t cp);      /* -1 if cp is not in the map */

/* ---- pre-tokenizer (pretok.c; the rest of its interface is in pretok.h) ---- */
typedef struct pretok pretok;
/* Compiles the regex list registered for `name`; Q_ERR_UNSUPPORTED if unknown. */
q_status pretok_new(const char *name, pretok **out, q_error *err);
void     pretok_free(pretok *p);

/* ---- vocab ---- */
typedef struct tok_entry {
    uint32_t off;    /* text offset in v->arena */
    uint32_t len;    /* text bytes */
    uint32_t piece_off, piece_len;  /* decoded piece (special=true rendering) in v->arena */
    float    score;
    uint32_t attr;   /* q_token_attr bits */
} tok_entry;

typedef struct merge_entry {
    uint32_t off;        /* "first second" in v->arena */
    uint32_t len;
    uint32_t first_len;  /* bytes of `first` */
} merge_entry;

struct q_vocab {
    q_vocab_type type;
    char        *arena;      /* all texts and pieces */
    size_t       arena_len;

    tok_entry   *toks;       /* n_tokens */
    int32_t      n_tokens;
    uint32_t    *tok_slots;  /* open addressing: 0 = empty, else id+1 */
    uint32_t     tok_mask;
    int32_t      max_token_len;
    /* WordPiece matches only texts of at most WPM_MAX_MATCH bytes (a real one is far
     * shorter), and only lengths some token has: bit k of wpm_lens = a token of k bytes. */
#define WPM_MAX_MATCH 256
    uint64_t     wpm_lens[WPM_MAX_MATCH / 64 + 1];
    uint32_t     wpm_max_len;   /* longest such length */

    merge_entry *merges;     /* BPE: rank = index */
    uint32_t     n_merges;
    uint32_t    *merge_slots;  /* by text: "first second" -> rank + 1 */
    uint32_t     merge_mask;
    /* The same merges keyed by the token ids of both parts (when both are tokens), with
     * the id of the merged text: the fast path of BPE. */
    uint64_t    *pair_keys;    /* (left << 32 | right); UINT64_MAX = empty */
    int32_t     *pair_rank;
    q_token     *pair_result;  /* Q_TOKEN_NULL if "first"+"second" is not a token */
    uint32_t     pair_mask;

    q_token      special[Q_SPECIAL_COUNT];
    q_token     *eog;         /* sorted */
    size_t       n_eog;
    q_token     *special_cache;  /* control/user-defined/unknown ids, longest text first */
    size_t       n_special_cache;
    /* special_cache positions grouped by the first byte of their text: those of byte b
     * are special_by_byte[special_byte_start[b] .. special_byte_start[b + 1]). */
    uint32_t    *special_by_byte;
    uint32_t     special_byte_start[257];
    q_token      byte_tok[256];  /* SPM: <0xXX> (or the 1-byte text); Q_TOKEN_NULL if none */

    bool add_bos, add_eos, add_sep, add_space_prefix, remove_extra_ws;
    bool ignore_merges, clean_spaces;
    bool spm_split_safe;      /* no token has U+2581 right after another character */
    bool bpe_word_cache;      /* BPE remembers short words per call (tests switch it off) */

    char    pre_name[64];
    pretok *pre;              /* BPE only */
};

uint64_t tok_hash_bytes(const void *p, size_t n);
q_token  vocab_lookup(const q_vocab *v, const char *s, size_t n);
int32_t  vocab_merge_rank(const q_vocab *v, const char *a, size_t na, const char *b, size_t nb);
/* Rank of merging tokens l and r (-1: none) and the merged token in *result. */
int32_t  vocab_pair_rank(const q_vocab *v, q_token l, q_token r, q_token *result);
static inline const char *vocab_text(const q_vocab *v, q_token id) { return v->arena + v->toks[id].off; }

/* ---- per-model tokenizers: append ids of one raw-text fragment ---- */
q_status spm_tokenize(const q_vocab *v, const char *text, size_t len, q_tokens *out, q_error *err);
/* BPE scratch reused across the fragments of one q_tokenize call. */
typedef struct bpe_session bpe_session;
bpe_session *bpe_session_new(void);
void         bpe_session_free(bpe_session *s);  /* NULL is fine */
q_status bpe_tokenize(const q_vocab *v, bpe_session *s, const char *text, size_t len, q_tokens *out, q_error *err);
q_status wpm_tokenize(const q_vocab *v, const char *text, size_t len, q_tokens *out, q_error *err);

/* Renders token id's piece as llama.cpp's cache does (special = true), into b. */
void detok_render_piece(const q_vocab *v, q_token id, tok_buf *b);

#endif
