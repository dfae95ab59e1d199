/* cmd_perplexity.c — `quarrel perplexity`: llama.cpp's perplexity measurement.
 *
 *   quarrel perplexity -m MODEL -f FILE [-c CTX] [-b BATCH] [-t THREADS]
 *
 * The text is tokenized once with the vocab's special tokens (BOS); it is cut into
 * floor(n_tokens / CTX) chunks of CTX tokens, each with its first token replaced by BOS
 * (when the vocab adds one), decoded from an empty cache at positions 0..CTX-1 in
 * batches of BATCH; the second half of each chunk is scored: for p in [CTX/2, CTX-2] the
 * negative log-likelihood of token p+1 under softmax(logits[p]) (in double). Prints the
 * running PPL after each chunk ("[1]3.4993,[2]...") and
 * "Final estimate: PPL = X +/- E", E = PPL * stddev(NLL) / sqrt(count - 1). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/gen_common.h"

#define CMD "perplexity"

static void ppl_usage(FILE *f) {
    fprintf(f, "usage: quarrel perplexity -m MODEL -f FILE [-c CTX (512)] [-b BATCH (CTX)] [-t THREADS]\n");
}

/* -log softmax(logits)[tok], in double. */
static double token_nll(const float *logits, int32_t V, q_token tok) {
    float max = logits[0];
    for (int32_t i = 1; i < V; i++) max = logits[i] > max ? logits[i] : max;
    double sum = 0;
    for (int32_t i = 0; i < V; i++) sum += exp((double)logits[i] - max);
    return -((double)logits[tok] - max) + log(sum);
}

int cmd_perplexity(int argc, char **argv) {
    const char *model = NULL, *file = NULL;
    long n_ctx = 512, n_batch = 0, n_threads = cli_default_threads();
    for (int i = 1; i < argc; i += 2) {   /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { ppl_usage(stdout); return 0; }
        if (!v) { cli_errorf(CMD, "%s: unknown option or missing value", a); return 2; }
        if (!strcmp(a, "-m")) model = v;
        else if (!strcmp(a, "-f")) file = v;
        else if (!strcmp(a, "-c")) { if (!cli_int_arg(CMD, a, v, 8, 1 << 20, &n_ctx)) return 2; }
        else if (!strcmp(a, "-b")) { if (!cli_int_arg(CMD, a, v, 1, 1 << 20, &n_batch)) return 2; }
        else if (!strcmp(a, "-t")) { if (!cli_int_arg(CMD, a, v, 1, 1024, &n_threads)) return 2; }
        else { cli_errorf(CMD, "unknown option %s", a); return 2; }
    }
    if (!model || !file) {
        cli_errorf(CMD, "-m MODEL and -f FILE are required");
        ppl_usage(stderr);
        return 2;
    }
    if (n_batch <= 0 || n_batch > n_ctx) n_batch = n_ctx;
    q_context_params cp = q_context_default_params();
    cp.n_ctx = (int32_t)n_ctx;
    cp.n_batch = (int32_t)n_batch;
    cp.n_threads = (int32_t)n_threads;
    q_model *m = NULL;
    q_context *c = NULL;
    double load_ms;
    if (!cli_open(CMD, model, &cp, &m, &c, &load_ms)) return 1;
    int rc = 1;
    q_tokens toks = { 0 };
    q_batch b = q_batch_init((int32_t)n_batch);
    float *logits = NULL;
    const q_vocab *v = cli_vocab(CMD, m);
    char *text = v ? cli_read_file(CMD, file, NULL) : NULL;
    if (!text || !cli_tokenize(CMD, v, text, true, false, &toks)) goto out;
    const size_t n_chunks = toks.n / (size_t)n_ctx;
    if (n_chunks == 0) {
        cli_errorf(CMD, "%s has %zu tokens; at least %ld (one -c chunk) are needed", file, toks.n, n_ctx);
        goto out;
    }
    fprintf(stderr, "perplexity: %zu tokens, %zu chunks of %ld, batch %ld\n", toks.n, n_chunks, n_ctx, n_batch);
    const int32_t V = q_model_n_vocab(m);
    const bool add_bos = q_vocab_add_bos(v);
    const q_token bos = q_vocab_special(v, Q_SPECIAL_BOS);
    logits = malloc(sizeof(float) * (size_t)V * (size_t)n_ctx);
    if (!logits) { cli_errorf(CMD, "out of memory for %ld x %d logits", n_ctx, V); goto out; }
    double nll = 0, nll2 = 0;
    long count = 0;
    const double t0 = cli_now_ms();
    for (size_t ch = 0; ch < n_chunks; ch++) {
        const q_token *chunk = toks.ids + ch * (size_t)n_ctx;
        q_kv_clear(c);
        for (long i0 = 0; i0 < n_ctx; i0 += n_batch) {
            q_batch_clear(&b);
            for (long i = i0; i < n_ctx && i < i0 + n_batch; i++)
                q_batch_add(&b, i == 0 && add_bos ? bos : chunk[i], (q_pos)i, 0, true);
            q_error err;
            if (q_decode(c, &b, &err) != Q_OK) { cli_errorf(CMD, "decode: %s", err.msg); goto out; }
            for (int32_t i = 0; i < b.n_tokens; i++)
                memcpy(logits + (size_t)(i0 + i) * V, q_get_logits_ith(c, i), sizeof(float) * (size_t)V);
        }
        for (long p = n_ctx / 2; p < n_ctx - 1; p++) {
            const double x = token_nll(logits + (size_t)p * V, V, chunk[p + 1]);
            nll += x;
            nll2 += x * x;
            count++;
        }
        printf("[%zu]%.4f,", ch + 1, exp(nll / count));
        fflush(stdout);
    }
    const double mean = nll / count, var = nll2 / count - mean * mean;
    const double ppl = exp(mean);
    const double se = var > 0 && count > 1 ? sqrt(var / (count - 1)) * ppl : 0;
    printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", ppl, se);
    fprintf(stderr, "perplexity: %ld tokens scored, %.1f ms per chunk\n", count, (cli_now_ms() - t0) / n_chunks);
    rc = 0;
out:
    free(logits);
    free(text);
    q_batch_free(&b);
    q_tokens_free(&toks);
    q_context_free(c);
    q_model_free(m);
    return rc;
}
