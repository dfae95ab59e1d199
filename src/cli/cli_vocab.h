/* cli_vocab.h — helpers shared by the tokenize/detokenize subcommands (cli_vocab.c). */
#ifndef QUARREL_CLI_VOCAB_H
#define QUARREL_CLI_VOCAB_H

#include <stdio.h>

#include "quarrel/tokenizer.h"

/* Opens GGUF `path`, loads its tokenizer and closes the file; NULL after printing one
 * error line for `cmd`. */
q_vocab *cli_load_vocab(const char *cmd, const char *path);
/* Reads a whole stream byte for byte; malloc'ed (NUL-terminated), NULL on error. */
char    *cli_read_all(FILE *in, size_t *len);
/* Byte length of the valid UTF-8 character at p[0..n), 0 if invalid or incomplete. */
size_t   cli_utf8_char_len(const char *p, size_t n);
/* Copy of p[0..n) with invalid UTF-8 bytes replaced by U+FFFD; malloc'ed. */
char    *cli_utf8_sanitize(const char *p, size_t n, size_t *out_len);

#endif
