/* main.c — the `quarrel` binary: dispatches argv[1] to a subcommand through a table.
 * Each subcommand lives in its own src/cli/cmd_NAME.c. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

typedef struct subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} subcommand;

static const subcommand subcommands[] = {
    { "info",       cmd_info,       "describe a GGUF file: metadata, tensors, tokenizer" },
    { "quantize",   cmd_quantize,   "convert an F32/F16/BF16 GGUF to a quantized type or mix" },
    { "tokenize",   cmd_tokenize,   "text to token ids with a model's tokenizer" },
    { "detokenize", cmd_detokenize, "token ids to text" },
    { "template",   cmd_template,   "render a chat template for a list of messages" },
    { "run",        cmd_run,        "generate text from a prompt" },
    { "chat",       cmd_chat,       "interactive multi-turn chat with the model's template" },
    { "logits",     cmd_logits,     "write a prompt's logits (f32 rows) for comparison" },
    { "perplexity", cmd_perplexity, "perplexity of a text file (llama.cpp's method)" },
    { "synth",      cmd_synth,      "write a random-weight model of a real model's shape" },
    { "serve",      cmd_serve,      "HTTP server: /api/generate, SSE, OpenAI-compatible /v1" },
    { "bench",      cmd_bench,      "prompt/generation speed and memory-bandwidth efficiency" },
    { "keys",       cmd_keys,       "create, list, revoke and rotate the server's API keys" },
};

void cli_errorf(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "quarrel %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void usage(FILE *out) {
    fprintf(out, "usage: quarrel <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        fprintf(out, "  %-11s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(out, "\n`quarrel <command> --help` for a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("quarrel %s\n", QUARREL_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++) {
        if (strcmp(argv[1], subcommands[i].name) != 0) continue;
        return subcommands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "quarrel: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
