/* quarrel.h — the engine API: load a model, create a context (KV cache + activation
 * buffers), decode batches of tokens, read logits, edit sequences in the KV cache, and
 * sample. This is what the CLI and the server use; nothing here prints or exits.
 *
 * Ownership: q_model_load returns a model that owns its file mapping (weights are never
 * copied); a q_context borrows its model (free the context first). Logits returned by
 * q_get_logits_ith belong to the context and stay valid until the next q_decode.
 * q_batch and q_sampler are owned by the caller (q_batch_free / q_sampler_free).
 *
 * Decoding semantics follow llama.cpp's llama_decode: each token of a batch carries its
 * position, its sequence id and whether its logits are wanted; tokens of a sequence
 * attend to the cells of that sequence whose position is <= their own (causal), within
 * the sliding window where the architecture has one. Unlike llama_batch, a token carries
 * exactly one sequence id (use q_kv_seq_cp to share a prefix between sequences). */
#ifndef QUARREL_H
#define QUARREL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quarrel/status.h"
#include "quarrel/tokenizer.h"
#include "quarrel/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t q_token;
typedef int32_t q_pos;
typedef int32_t q_seq_id;

typedef struct q_model   q_model;
typedef struct q_context q_context;

/* ---- model ---- */

/* Maps the GGUF at path, checks its architecture, hyperparameters and every tensor's
 * presence and shape. On failure *out is NULL and err names the problem. */
q_status q_model_load(const char *path, q_model **out, q_error *err);
void     q_model_free(q_model *m);                /* NULL is fine */

const char *q_model_arch(const q_model *m);       /* "llama", "granite", ... */
int32_t     q_model_n_vocab(const q_model *m);
int32_t     q_model_n_embd(const q_model *m);
int32_t     q_model_n_layer(const q_model *m);
int32_t     q_model_n_ctx_train(const q_model *m);
uint64_t    q_model_size(const q_model *m);       /* bytes of the mapped file */
/* Weights rewritten at load into a kernel-friendly layout (QUARREL_REPACK=0: none):
 * how many tensors and their bytes (held in memory instead of the file's pages). */
int32_t     q_model_n_repacked(const q_model *m);
uint64_t    q_model_repacked_bytes(const q_model *m);
/* Describes the model in one line ("llama, 3 layers, 256 embd, ..."), into buf. */
void        q_model_desc(const q_model *m, char *buf, size_t size);
/* The GGUF the model was loaded from (borrowed; for tokenizer and template setup). */
const struct gguf_file *q_model_gguf(const q_model *m);
/* The model's tokenizer (include/quarrel/tokenizer.h), owned by the model; NULL when the
 * file has none or it could not be loaded, and then q_model_vocab_error says why. */
const struct q_vocab *q_model_vocab(const q_model *m);
const char           *q_model_vocab_error(const q_model *m);
/* Thin wrappers over tokenizer.h with the model's vocab; Q_ERR_UNSUPPORTED (and the
 * reason) when the model has none. Ownership as q_tokenize / q_detokenize. */
q_status q_model_tokenize(const q_model *m, const char *text, size_t len, bool add_special,
                          bool parse_special, q_tokens *out, q_error *err);
q_status q_model_detokenize(const q_model *m, const q_token *ids, size_t n, char **out, size_t *len,
                            q_error *err);
/* Renders messages (a JSON array of {"role", "content"}) with the model's chat template
 * (tokenizer.chat_template, BOS/EOS texts from the vocab), ending with the assistant
 * prompt when add_generation_prompt. Without a usable template it renders ChatML and
 * sets *used_fallback (may be NULL). *out is malloc'ed, owned by the caller. */
struct json_t;
q_status q_model_chat_apply(const q_model *m, const struct json_t *messages, bool add_generation_prompt,
                            char **out, bool *used_fallback, q_error *err);

/* ---- context ---- */

typedef struct q_context_params {
    int32_t n_ctx;       /* KV cells; 0 = the model's training context, capped at 4096 */
    int32_t n_batch;     /* most tokens per q_decode call; 0 = 512 */
    int32_t n_ubatch;    /* most tokens per forward pass (activation buffers); 0 = n_batch */
    int32_t n_seq_max;   /* distinct sequence ids, 1..64; 0 = 1 */
    q_type  kv_type;     /* Q_TYPE_F16 (default, as llama.cpp) or Q_TYPE_F32 */
    int32_t n_threads;   /* 0 = 1 */
} q_context_params;

q_context_params q_context_default_params(void);

q_status q_context_new(const q_model *m, const q_context_params *p, q_context **out, q_error *err);
void     q_context_free(q_context *c);            /* NULL is fine */
int32_t  q_context_n_ctx(const q_context *c);
const q_model *q_context_model(const q_context *c);

/* ---- batch ---- */

typedef struct q_batch {
    int32_t   n_tokens;
    int32_t   n_max;
    q_token  *token;    /* [n_max] */
    q_pos    *pos;      /* [n_max] */
    q_seq_id *seq_id;   /* [n_max] */
    int8_t   *logits;   /* [n_max] nonzero = output logits for this token */
} q_batch;

q_batch q_batch_init(int32_t n_max);
void    q_batch_free(q_batch *b);
void    q_batch_clear(q_batch *b);
/* Appends one token; returns false when the batch is full. */
bool    q_batch_add(q_batch *b, q_token tok, q_pos pos, q_seq_id seq, bool logits);

/* Runs the model over the batch, storing K/V in the cache and the logits of flagged
 * tokens. Q_ERR_LIMIT when the cache has no free cells (nothing is changed then),
 * Q_ERR_INVALID_ARG for a bad token id, sequence id or batch size. */
q_status q_decode(q_context *c, const q_batch *b, q_error *err);

/* Logits [n_vocab] of batch token i of the last q_decode (i = -1: the last token with
 * logits); NULL when that token's logits were not requested. */
const float *q_get_logits_ith(q_context *c, int32_t i);

/* ---- KV cache sequences (positions are [p0, p1); p0 < 0 = 0, p1 < 0 = infinity) ---- */

void  q_kv_clear(q_context *c);
bool  q_kv_seq_rm(q_context *c, q_seq_id seq, q_pos p0, q_pos p1);   /* seq < 0: all seqs */
void  q_kv_seq_cp(q_context *c, q_seq_id src, q_seq_id dst, q_pos p0, q_pos p1);
void  q_kv_seq_keep(q_context *c, q_seq_id seq);
/* Adds delta to the positions of seq's cells in [p0, p1); K is re-roped by delta before
 * the next decode (context shift). Cells whose position would fall below 0 are removed. */
void  q_kv_seq_add(q_context *c, q_seq_id seq, q_pos p0, q_pos p1, q_pos delta);
q_pos q_kv_seq_pos_max(const q_context *c, q_seq_id seq);   /* -1 if empty */
int32_t q_kv_n_used(const q_context *c);

/* ---- sampling ---- */

typedef struct q_logit_bias {
    q_token token;
    float   bias;
} q_logit_bias;

/* The chain, in llama.cpp's default order: logit bias, penalties, top-k, typical-p,
 * top-p, min-p, temperature, then a draw. temp <= 0 makes the chain greedy (argmax,
 * ties to the lowest id, after bias and penalties). A stage with its neutral value
 * (top_k <= 0, top_p >= 1, min_p <= 0, typical_p >= 1, penalties 1/0/0) is skipped. */
typedef struct q_sampler_params {
    float    temp;             /* 0.8 */
    int32_t  top_k;            /* 40 */
    float    top_p;            /* 0.95 */
    float    min_p;            /* 0.05 */
    float    typical_p;        /* 1.0 */
    int32_t  penalty_last_n;   /* 64 tokens of history; 0 = off, -1 = whole history */
    float    penalty_repeat;   /* 1.0 */
    float    penalty_freq;     /* 0.0 */
    float    penalty_present;  /* 0.0 */
    uint64_t seed;             /* same seed, same logits -> same tokens */
    const q_logit_bias *logit_bias;   /* copied at q_sampler_new */
    int32_t  n_logit_bias;
} q_sampler_params;

typedef struct q_sampler q_sampler;

q_sampler_params q_sampler_default_params(void);
q_sampler *q_sampler_new(const q_sampler_params *p, int32_t n_vocab);
void       q_sampler_free(q_sampler *s);
/* Picks a token from logits [n_vocab] (not modified). */
q_token    q_sampler_sample(q_sampler *s, const float *logits);
/* Runs the chain up to (not including) the draw: writes the surviving candidates, most
 * probable first, and their probabilities (softmax after temperature, summing to 1) into
 * ids/probs (cap entries); returns how many survive (may exceed cap). Greedy chains
 * (temp <= 0) return the single argmax with probability 1. */
int32_t    q_sampler_candidates(q_sampler *s, const float *logits, q_token *ids, float *probs,
                                int32_t cap);
/* Records a token in the penalty history (sampled or prompt tokens). */
void       q_sampler_accept(q_sampler *s, q_token tok);
void       q_sampler_reset(q_sampler *s);   /* clears history, reseeds */

#ifdef __cplusplus
}
#endif
#endif
