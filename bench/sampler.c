/* bench/sampler.c — time per sampled token of the default sampler chain (temperature 0.8,
 * top-k 40, top-p 0.95, min-p 0.05) over a vocabulary of random logits: the per-token
 * cost the server pays once per sequence and step, on the engine thread. Not a test.
 * Usage: bench_sampler [-n VOCAB (32000)] [-r REPS (200)] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quarrel/quarrel.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    int n = 32000, reps = 200;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-n")) n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-r")) reps = atoi(argv[i + 1]);
    }
    if (n < 2 || reps < 1) {
        fprintf(stderr, "usage: bench_sampler [-n VOCAB] [-r REPS]\n");
        return 2;
    }
    float *logits = malloc(sizeof(float) * (size_t)n);
    const q_sampler_params p = q_sampler_default_params();
    q_sampler *s = q_sampler_new(&p, n);
    srand(1);
    double total = 0;
    long sum = 0;   /* the sampled ids, printed so runs can be compared */
    for (int r = 0; r < reps; r++) {
        for (int i = 0; i < n; i++) logits[i] = 10.0f * (float)rand() / (float)RAND_MAX;
        const double t0 = now_s();
        sum += q_sampler_sample(s, logits);
        total += now_s() - t0;
    }
    printf("vocab %d: %.3f ms per sampled token (default chain; id sum %ld)\n", n, total / reps * 1e3, sum);
    q_sampler_free(s);
    free(logits);
    return 0;
}
