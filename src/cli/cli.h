/* cli.h — what every subcommand file (src/cli/cmd_*.c) shares.
 *
 * A subcommand is `int cmd_NAME(int argc, char **argv)` with argv[0] = "NAME"; it
 * returns the process exit status: 0 success, 1 bad input or failure (one readable
 * line on stderr), 2 usage error. Subcommands are listed in main.c's table. */
#ifndef QUARREL_CLI_H
#define QUARREL_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

int cmd_info(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_template(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_keys(int argc, char **argv);

/* "1.10 B" / "1.10B" style counts (sep between number and unit) and "606.53 MiB" sizes,
 * into buf (cli_format.c). */
void cli_human_count(uint64_t n, const char *sep, char *buf, size_t cap);
void cli_human_bytes(uint64_t n, char *buf, size_t cap);

/* Prints "quarrel NAME: <msg>\n" to stderr. */
void cli_errorf(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
