/* kv_interleave.c — multi-sequence decode speed: S sequences each get a prompt of
 * N_PROMPT tokens, then are decoded interleaved, one token per sequence per batch (as
 * the server's continuous batching does), for N_GEN steps. Prints generated tokens per
 * second (all sequences together) for each S in 1, 2, 4, 8 on one thread.
 *
 *   bench_kv_interleave MODEL [N_PROMPT] [N_GEN]
 *
 * Token ids are synthetic (i % n_vocab). Not a test: numbers depend on the machine. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "quarrel/quarrel.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_kv_interleave MODEL [N_PROMPT] [N_GEN]\n");
        return 2;
    }
    const int n_prompt = argc > 2 ? atoi(argv[2]) : 16, n_gen = argc > 3 ? atoi(argv[3]) : 256;
    q_model *m;
    q_error err;
    if (q_model_load(argv[1], &m, &err) != Q_OK) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    const int V = q_model_n_vocab(m);
    static const int seqs[] = { 1, 2, 4, 8 };
    for (size_t k = 0; k < sizeof seqs / sizeof seqs[0]; k++) {
        const int S = seqs[k];
        q_context_params p = q_context_default_params();
        p.n_ctx = S * (n_prompt + n_gen);
        p.n_seq_max = S;
        q_context *c;
        if (q_context_new(m, &p, &c, &err) != Q_OK) {
            fprintf(stderr, "error: %s\n", err.msg);
            return 1;
        }
        q_batch b = q_batch_init(S > n_prompt ? S : n_prompt);
        for (int s = 0; s < S; s++) {   /* prompts one sequence at a time */
            b.n_tokens = 0;
            for (int i = 0; i < n_prompt; i++) q_batch_add(&b, (s * 7 + i) % V, i, s, i == n_prompt - 1);
            if (q_decode(c, &b, &err) != Q_OK) { fprintf(stderr, "error: %s\n", err.msg); return 1; }
        }
        const double t0 = now_s();
        for (int g = 0; g < n_gen; g++) {
            b.n_tokens = 0;
            for (int s = 0; s < S; s++) q_batch_add(&b, (s + g) % V, n_prompt + g, s, true);
            if (q_decode(c, &b, &err) != Q_OK) { fprintf(stderr, "error: %s\n", err.msg); return 1; }
        }
        const double dt = now_s() - t0;
        printf("S=%d  n_prompt=%d n_gen=%d  %.0f tok/s\n", S, n_prompt, n_gen, S * n_gen / dt);
        q_batch_free(&b);
        q_context_free(c);
    }
    q_model_free(m);
    return 0;
}
