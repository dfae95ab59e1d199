/* cmd_logits.c — `quarrel logits`: the logits of every prompt position, for comparing
 * against llama.cpp (the golden .f32 format).
 *
 *   quarrel logits -m MODEL -p PROMPT -o FILE [--no-bos] [--single] [-t THREADS] [-c CTX]
 *
 * FILE gets little-endian f32 [n_tokens][n_vocab], row i = the logits after token i;
 * the prompt's token ids go to stdout, space-separated on one line. Default: the whole
 * prompt in one decode call; --single: one token per call. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/gen_common.h"

#define CMD "logits"

static void logits_usage(FILE *f) {
    fprintf(f, "usage: quarrel logits -m MODEL -p PROMPT -o FILE [--no-bos] [--single] [-t THREADS] [-c CTX]\n");
}

int cmd_logits(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *outp = NULL;
    bool no_bos = false, single = false;
    long n_threads = cli_default_threads(), n_ctx = 0;
    for (int i = 1; i < argc;) {
        const char *a = argv[i++], *v = i < argc ? argv[i] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { logits_usage(stdout); return 0; }
        if (!strcmp(a, "--no-bos")) { no_bos = true; continue; }
        if (!strcmp(a, "--single")) { single = true; continue; }
        if (!v) { cli_errorf(CMD, "%s: unknown option or missing value", a); return 2; }
        if (!strcmp(a, "-m")) model = v;
        else if (!strcmp(a, "-p")) prompt = v;
        else if (!strcmp(a, "-o")) outp = v;
        else if (!strcmp(a, "-t")) { if (!cli_int_arg(CMD, a, v, 1, 1024, &n_threads)) return 2; }
        else if (!strcmp(a, "-c")) { if (!cli_int_arg(CMD, a, v, 8, 1 << 24, &n_ctx)) return 2; }
        else { cli_errorf(CMD, "unknown option %s", a); return 2; }
        i++;   /* the value */
    }
    if (!model || !prompt || !outp) {
        cli_errorf(CMD, "-m, -p and -o are required");
        logits_usage(stderr);
        return 2;
    }
    q_model *m = NULL;
    q_context *c = NULL;
    const q_vocab *v = NULL;
    q_tokens toks = { 0 };
    FILE *f = NULL;
    q_batch b = { 0 };
    int rc = 1;
    q_context_params cp = q_context_default_params();
    cp.n_ctx = (int32_t)n_ctx;
    cp.n_threads = (int32_t)n_threads;
    /* tokenize first so the context and batch can be sized to the prompt */
    q_error err;
    if (q_model_load(model, &m, &err) != Q_OK) {
        cli_errorf(CMD, "%s: %s", model, err.msg);
        return 1;
    }
    if (!(v = cli_vocab(CMD, m)) || !cli_tokenize(CMD, v, prompt, !no_bos, false, &toks)) goto out;
    if (toks.n == 0) { cli_errorf(CMD, "the prompt is empty"); goto out; }
    if (cp.n_ctx == 0) cp.n_ctx = (int32_t)(toks.n < 512 ? 512 : toks.n);
    cp.n_batch = single ? 1 : (int32_t)toks.n;
    if (q_context_new(m, &cp, &c, &err) != Q_OK) { cli_errorf(CMD, "%s", err.msg); goto out; }
    if (!(f = fopen(outp, "wb"))) { cli_errorf(CMD, "cannot write %s: %s", outp, strerror(errno)); goto out; }
    const int32_t V = q_model_n_vocab(m);
    b = q_batch_init(cp.n_batch);
    for (size_t i0 = 0; i0 < toks.n; i0 += (size_t)cp.n_batch) {
        q_batch_clear(&b);
        for (size_t i = i0; i < toks.n && i < i0 + (size_t)cp.n_batch; i++) q_batch_add(&b, toks.ids[i], (q_pos)i, 0, true);
        if (q_decode(c, &b, &err) != Q_OK) { cli_errorf(CMD, "decode: %s", err.msg); goto out; }
        for (int32_t i = 0; i < b.n_tokens; i++)
            if (fwrite(q_get_logits_ith(c, i), sizeof(float), (size_t)V, f) != (size_t)V) {
                cli_errorf(CMD, "write %s: %s", outp, strerror(errno));
                goto out;
            }
    }
    if (fclose(f) != 0) { f = NULL; cli_errorf(CMD, "write %s failed", outp); goto out; }
    f = NULL;
    for (size_t i = 0; i < toks.n; i++) printf("%s%d", i ? " " : "", toks.ids[i]);
    printf("\n");
    rc = 0;
out:
    if (f) fclose(f);
    q_batch_free(&b);
    q_tokens_free(&toks);
    q_context_free(c);
    q_model_free(m);
    return rc;
}
