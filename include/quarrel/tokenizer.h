/* tokenizer.h — text <-> token ids, exactly as llama.cpp tokenizes.
 *
 * A q_vocab is loaded from a GGUF file's tokenizer.ggml.* metadata and supports the
 * three tokenizer models Quarrel handles:
 *   "llama" -> Q_VOCAB_SPM  SentencePiece BPE (score-driven merges, <0xXX> byte fallback)
 *   "gpt2"  -> Q_VOCAB_BPE  byte-level BPE (merge ranks) behind a pre-tokenizer chosen by
 *                           tokenizer.ggml.pre (see src/tokenizer/pretok.c for the table)
 *   "bert"  -> Q_VOCAB_WPM  WordPiece (greedy longest match, [CLS] ... [SEP])
 * Any other model, or a pre-tokenizer name missing from the table, is a load error
 * (Q_ERR_UNSUPPORTED) rather than a silent fallback.
 *
 * Ownership: q_vocab_load COPIES everything it needs (token texts, scores, merges) into
 * memory owned by the vocab, so the gguf_file may be closed right after loading. A
 * q_vocab is immutable after loading and may be shared by threads; every tokenize /
 * detokenize call allocates its own scratch. Results are returned in caller-owned
 * buffers (q_tokens, malloc'ed strings) documented per function.
 *
 * Special tokens: token types from GGUF map to attributes (control, user-defined, byte,
 * unknown, unused, normal) the way llama.cpp does. With parse_special, control and
 * user-defined token texts found in the input become those tokens; without it, only
 * user-defined tokens are split out (llama.cpp's and HF tokenizers' behaviour).
 *
 * Invalid UTF-8 input never crashes: SPM falls back to byte tokens, BPE (like llama.cpp)
 * reads each invalid byte as U+FFFD, WPM drops it; a vocab without the needed byte token
 * returns Q_ERR_UNSUPPORTED. */
#ifndef QUARREL_TOKENIZER_H
#define QUARREL_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quarrel/gguf.h"
#include "quarrel/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t q_token;
#define Q_TOKEN_NULL ((q_token)-1)

typedef enum q_vocab_type {
    Q_VOCAB_SPM = 0,
    Q_VOCAB_BPE,
    Q_VOCAB_WPM,
    Q_VOCAB_TYPE_COUNT
} q_vocab_type;

/* Token attributes: llama.cpp's llama_token_attr bit values. */
typedef enum q_token_attr {
    Q_TOKEN_ATTR_UNDEFINED    = 0,
    Q_TOKEN_ATTR_UNKNOWN      = 1 << 0,
    Q_TOKEN_ATTR_UNUSED       = 1 << 1,
    Q_TOKEN_ATTR_NORMAL       = 1 << 2,
    Q_TOKEN_ATTR_CONTROL      = 1 << 3,
    Q_TOKEN_ATTR_USER_DEFINED = 1 << 4,
    Q_TOKEN_ATTR_BYTE         = 1 << 5,
    Q_TOKEN_ATTR_NORMALIZED   = 1 << 6,
    Q_TOKEN_ATTR_LSTRIP       = 1 << 7,  /* eat whitespace before it when split out */
    Q_TOKEN_ATTR_RSTRIP       = 1 << 8,  /* eat whitespace after it when split out */
    Q_TOKEN_ATTR_SINGLE_WORD  = 1 << 9,
} q_token_attr;

/* Named special tokens; Q_TOKEN_NULL when the vocab has none. */
typedef enum q_special {
    Q_SPECIAL_BOS = 0,  /* WPM: [CLS] */
    Q_SPECIAL_EOS,
    Q_SPECIAL_EOT,
    Q_SPECIAL_EOM,
    Q_SPECIAL_UNK,
    Q_SPECIAL_SEP,
    Q_SPECIAL_PAD,
    Q_SPECIAL_MASK,
    Q_SPECIAL_CLS,      /* tokenizer.ggml.cls_token_id; WPM: = BOS when absent */
    Q_SPECIAL_NL,       /* the newline token */
    Q_SPECIAL_COUNT
} q_special;

typedef struct q_vocab q_vocab;

/* A growable id list. Zero-initialise, pass to q_tokenize (which appends), free with
 * q_tokens_free. */
typedef struct q_tokens {
    q_token *ids;
    size_t   n;
    size_t   cap;
} q_tokens;

void q_tokens_free(q_tokens *t);

/* ---- vocab ---- */

/* Loads the tokenizer of GGUF file f. On success *out owns copies of everything (f may be
 * closed). Errors: Q_ERR_FORMAT (missing/mistyped keys, bad ids), Q_ERR_UNSUPPORTED
 * (tokenizer model or pre-tokenizer not handled). */
q_status q_vocab_load(const gguf_file *f, q_vocab **out, q_error *err);
void     q_vocab_free(q_vocab *v);  /* NULL is fine */

q_vocab_type q_vocab_get_type(const q_vocab *v);
const char  *q_vocab_type_name(q_vocab_type t);   /* "spm", "bpe", "wpm" */
const char  *q_vocab_pre_name(const q_vocab *v);  /* tokenizer.ggml.pre, "default" if absent */
int32_t      q_vocab_n_tokens(const q_vocab *v);
q_token      q_vocab_special(const q_vocab *v, q_special which);
bool         q_vocab_add_bos(const q_vocab *v);   /* add_special inserts BOS / CLS */
bool         q_vocab_add_eos(const q_vocab *v);
bool         q_vocab_is_eog(const q_vocab *v, q_token id);  /* end-of-generation set */
uint32_t     q_vocab_token_attr(const q_vocab *v, q_token id);  /* q_token_attr bits; 0 if out of range */
float        q_vocab_token_score(const q_vocab *v, q_token id);
/* The token's stored text (e.g. "▁the", "Ġthe", "<0x0A>"), NOT NUL-terminated, owned by
 * the vocab; NULL if id is out of range. */
const char  *q_vocab_token_text(const q_vocab *v, q_token id, size_t *len);
/* The id whose stored text is exactly text[0..len), or Q_TOKEN_NULL. */
q_token      q_vocab_find(const q_vocab *v, const char *text, size_t len);

/* ---- tokenize ---- */

/* Appends the ids of text[0..len) to out. add_special: BOS/EOS (SPM, BPE as the vocab
 * says) or [CLS]..[SEP] (WPM). parse_special: control/user-defined token texts in the
 * input become those tokens. Errors: Q_ERR_UNSUPPORTED when the input needs a byte or unk
 * token the vocab lacks, Q_ERR_LIMIT for texts over 2 GiB; out is left with what was
 * appended before the error. */
q_status q_tokenize(const q_vocab *v, const char *text, size_t len, bool add_special,
                    bool parse_special, q_tokens *out, q_error *err);

/* ---- detokenize ---- */

/* Writes the piece of token id (its bytes as decoded text) into buf (cap bytes, no NUL)
 * and returns the piece length; if that exceeds cap nothing is written: call again with a
 * larger buf. lstrip: drop up to that many leading spaces. special=false renders control
 * and unknown tokens as nothing. Out-of-range ids render as nothing. */
size_t q_token_to_piece(const q_vocab *v, q_token id, char *buf, size_t cap, int lstrip, bool special);

/* llama.cpp's llama_detokenize: concatenated pieces; the first token loses one leading
 * space when the vocab adds a space prefix (SPM); remove_special drops a leading BOS /
 * trailing EOS the vocab would add; unparse_special renders control tokens' text;
 * the vocab's clean_spaces rule (BPE, WPM) removes spaces before punctuation/contractions.
 * *out is malloc'ed, NUL-terminated, owned by the caller; *len excludes the NUL. The
 * bytes may be invalid UTF-8 when the ids split a character. */
q_status q_detokenize(const q_vocab *v, const q_token *ids, size_t n, bool remove_special,
                      bool unparse_special, char **out, size_t *len, q_error *err);

/* ---- streaming detokenizer ----
 * Feeds ids one at a time and yields text that is always valid UTF-8: bytes of a
 * character split across tokens are held until the character completes; a sequence that
 * can no longer become valid is emitted as U+FFFD (one per maximal invalid subpart, as
 * WHATWG/Unicode recommend). The concatenated output of every push plus the final flush
 * equals q_detokenize(ids, remove_special=false, unparse_special=special) with invalid
 * sequences replaced by U+FFFD, except that the stream never applies the clean_spaces
 * rule (it cannot see the future; llama.cpp's streaming generation does not apply it
 * either). */
typedef struct q_detok_stream q_detok_stream;

q_detok_stream *q_detok_stream_new(const q_vocab *v, bool special);
void            q_detok_stream_free(q_detok_stream *s);  /* NULL is fine */
/* Returns the text that became complete with this id (NOT NUL-terminated, *len bytes),
 * valid until the next call on s. */
const char     *q_detok_stream_push(q_detok_stream *s, q_token id, size_t *len);
/* End of stream: returns any held bytes, as U+FFFD where incomplete. Resets s. */
const char     *q_detok_stream_flush(q_detok_stream *s, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
