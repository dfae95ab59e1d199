/* pretok.h — BPE pre-tokenizer interface (src/tokenizer/pretok.c). Internal. */
#ifndef QUARREL_TOKENIZER_PRETOK_H
#define QUARREL_TOKENIZER_PRETOK_H

#include "tokenizer/internal.h"

#define PRETOK_MAX_REGEX 6

/* Vocab settings llama.cpp ties to a pre-tokenizer name. */
#define PRETOK_F_IGNORE_MERGES   (1u << 0)  /* a word that is a whole token skips merging */
#define PRETOK_F_ADD_BOS         (1u << 1)  /* add_bos defaults to true */
#define PRETOK_F_NO_CLEAN_SPACES (1u << 2)  /* detokenize keeps spaces before punctuation */
#define PRETOK_F_ADD_SEP         (1u << 3)
#define PRETOK_F_NO_BOS          (1u << 4)  /* the vocab has no BOS token */

/* Is `name` a known pre-tokenizer? Fills its PRETOK_F_* flags. */
bool pretok_lookup(const char *name, unsigned *flags);

/* Per-caller scratch for splitting (match data, JIT stack, subject and length buffers),
 * reused across calls so that a long text of many fragments allocates once. */
typedef struct pretok_ctx pretok_ctx;
pretok_ctx *pretok_ctx_new(void);
void        pretok_ctx_free(pretok_ctx *c);  /* NULL is fine */

/* Words of one split: lens[i] codepoints each, in order; lens points into the ctx and
 * stays valid until its next split. */
typedef struct pretok_words {
    const uint32_t *lens;
    size_t          n;
} pretok_words;

void pretok_split(const pretok *p, pretok_ctx *c, const uint32_t *cps, size_t n, pretok_words *w);

#endif
