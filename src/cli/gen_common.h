/* gen_common.h — what the model-running subcommands (run, chat, logits, perplexity)
 * share: option value parsing, loading a model + context with errors printed the CLI
 * way, tokenizing, timing. Not a public API. */
#ifndef QUARREL_CLI_GEN_COMMON_H
#define QUARREL_CLI_GEN_COMMON_H

#include <stdbool.h>

#include "quarrel/quarrel.h"
#include "quarrel/tokenizer.h"

/* Parse an option's value; on a bad value print a usage error and return false. */
bool cli_int_arg(const char *cmd, const char *opt, const char *val, long lo, long hi, long *out);
bool cli_float_arg(const char *cmd, const char *opt, const char *val, float *out);

/* Loads the model and creates a context; on failure prints one line and returns false
 * (nothing to free). *load_ms gets the wall time of both. */
bool cli_open(const char *cmd, const char *path, const q_context_params *cp, q_model **m,
              q_context **c, double *load_ms);

/* The model's vocab, or NULL after printing why it has none. */
const q_vocab *cli_vocab(const char *cmd, const q_model *m);

/* Tokenizes text (parse_special false, as llama.cpp's tools do for user text). */
bool cli_tokenize(const char *cmd, const q_vocab *v, const char *text, bool add_special,
                  bool parse_special, q_tokens *out);

/* Reads a whole file into a NUL-terminated malloc'ed buffer, or NULL after printing. */
char *cli_read_file(const char *cmd, const char *path, size_t *len);

double cli_now_ms(void);
int    cli_default_threads(void);

#endif
