/* engine.c — decode speed and memory of the engine on one model: prompt (one batch)
 * and generation (one token per decode) tokens per second for 1..N threads, and the
 * process RSS after decoding against the budget "file + KV cache + 64 MiB" (weights are
 * mapped, not copied, so only the pages touched count).
 *
 *   bench_engine MODEL [N_THREADS_MAX] [N_PROMPT] [N_GEN]
 *
 * Token ids are synthetic (i % n_vocab); the arithmetic does not depend on them. Not a
 * test: numbers depend on the machine and its load. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quarrel/quarrel.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kib = atol(line + 6);
    if (f) fclose(f);
    return kib;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_engine MODEL [N_THREADS_MAX] [N_PROMPT] [N_GEN]\n");
        return 2;
    }
    const int t_max = argc > 2 ? atoi(argv[2]) : 2;
    const int n_prompt = argc > 3 ? atoi(argv[3]) : 128, n_gen = argc > 4 ? atoi(argv[4]) : 64;
    q_model *m;
    q_error err;
    if (q_model_load(argv[1], &m, &err) != Q_OK) {
        fprintf(stderr, "bench_engine: %s\n", err.msg);
        return 1;
    }
    char desc[256];
    q_model_desc(m, desc, sizeof desc);
    printf("%s\n", desc);
    const int32_t V = q_model_n_vocab(m);
    for (int t = 1; t <= t_max; t++) {
        q_context_params cp = q_context_default_params();
        cp.n_ctx = n_prompt + n_gen + 8;
        cp.n_threads = t;
        q_context *c;
        if (q_context_new(m, &cp, &c, &err) != Q_OK) {
            fprintf(stderr, "bench_engine: %s\n", err.msg);
            return 1;
        }
        q_batch b = q_batch_init(n_prompt);
        for (int i = 0; i < n_prompt; i++) q_batch_add(&b, (q_token)(i % V), i, 0, i == n_prompt - 1);
        double t0 = now_s();
        if (q_decode(c, &b, &err) != Q_OK) { fprintf(stderr, "%s\n", err.msg); return 1; }
        const double t_pp = now_s() - t0;
        t0 = now_s();
        for (int i = 0; i < n_gen; i++) {
            q_batch_clear(&b);
            q_batch_add(&b, (q_token)((7 * i) % V), n_prompt + i, 0, true);
            if (q_decode(c, &b, &err) != Q_OK) { fprintf(stderr, "%s\n", err.msg); return 1; }
        }
        const double t_tg = now_s() - t0;
        /* F16 K and V per layer, at most n_embd wide (GQA caches are narrower): an upper bound */
        const double kv_mib = 2.0 * 2 * q_model_n_layer(m) * (double)cp.n_ctx * q_model_n_embd(m) / (1 << 20);
        const double budget = (double)q_model_size(m) / (1 << 20) + kv_mib + 64;
        printf("threads %d: prompt %d tok %.1f tok/s | gen %d tok %.1f tok/s | RSS %.1f MiB (budget file+KV+64 = %.1f MiB)\n",
               t, n_prompt, n_prompt / t_pp, n_gen, n_gen / t_tg, rss_kib() / 1024.0, budget);
        q_batch_free(&b);
        q_context_free(c);
    }
    q_model_free(m);
    return 0;
}
