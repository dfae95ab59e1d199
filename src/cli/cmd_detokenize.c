/* cmd_detokenize.c — `quarrel detokenize`: token ids to text.
 *
 *   quarrel detokenize -m MODEL [--special] [-n] IDS...
 *
 * IDS are decimal ids, as separate arguments or separated by spaces/commas inside one.
 * Prints llama.cpp's detokenization (first-token space prefix removed for SPM, the
 * vocab's clean-up of spaces) followed by a newline unless -n. --special renders control
 * tokens (e.g. <s>) as their text. The bytes are written as they are, even when the ids
 * split a UTF-8 character. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_vocab.h"
#include "quarrel/tokenizer.h"

static const char *const CMD = "detokenize";

static void usage(FILE *out) {
    fprintf(out,
            "usage: quarrel detokenize -m MODEL [--special] [-n] IDS...\n"
            "  -m, --model FILE   GGUF file with tokenizer metadata\n"
            "      --special      render control tokens (<s>, <|endoftext|>, ...) as text\n"
            "  -n                 no trailing newline\n"
            "  IDS                token ids, separate or as one space/comma-separated argument\n");
}

int cmd_detokenize(int argc, char **argv) {
    const char *model = NULL;
    bool special = false, newline = true;
    q_tokens ids = { 0 };
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); q_tokens_free(&ids); return 0; }
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) { model = argv[++i]; continue; }
        if (!strcmp(a, "--special")) { special = true; continue; }
        if (!strcmp(a, "-n")) { newline = false; continue; }
        if (a[0] == '-' && !(a[1] >= '0' && a[1] <= '9')) {
            cli_errorf(CMD, "unknown or incomplete option '%s' (see --help)", a);
            goto out;
        }
        for (const char *p = a; *p;) {
            if (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') { p++; continue; }
            char *end;
            errno = 0;
            long id = strtol(p, &end, 10);
            if (end == p || errno || id < INT32_MIN || id > INT32_MAX) {
                cli_errorf(CMD, "'%s' is not a token id", a);
                goto out;
            }
            if (ids.n == ids.cap) {
                size_t cap = ids.cap ? ids.cap * 2 : 64;
                q_token *grown = realloc(ids.ids, cap * sizeof *ids.ids);
                if (!grown) {
                    cli_errorf(CMD, "out of memory for %zu token ids", cap);
                    rc = 1;
                    goto out;
                }
                ids.ids = grown;
                ids.cap = cap;
            }
            ids.ids[ids.n++] = (q_token)id;
            p = end;
        }
    }
    if (!model) { cli_errorf(CMD, "missing -m MODEL (see --help)"); goto out; }

    rc = 1;
    q_vocab *v = cli_load_vocab(CMD, model);
    if (!v) goto out;
    for (size_t i = 0; i < ids.n; i++)
        if (ids.ids[i] < 0 || ids.ids[i] >= q_vocab_n_tokens(v)) {
            cli_errorf(CMD, "token id %d is out of range (the vocab has %d tokens)", ids.ids[i], q_vocab_n_tokens(v));
            q_vocab_free(v);
            goto out;
        }
    char *text;
    size_t len;
    q_error err = { 0 };
    if (q_detokenize(v, ids.ids, ids.n, false, special, &text, &len, &err) != Q_OK) {
        cli_errorf(CMD, "%s", err.msg);
    } else {
        fwrite(text, 1, len, stdout);
        if (newline) putchar('\n');
        free(text);
        rc = fflush(stdout) == 0 ? 0 : 1;
    }
    q_vocab_free(v);
out:
    q_tokens_free(&ids);
    return rc;
}
