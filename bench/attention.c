/* bench/attention.c — the CPU attention op alone over a KV cache of DEPTH cells of one
 * sequence (one layer, TinyLlama's shape by default: 32 query heads, 4 KV heads, head dim
 * 64, F16 cache): time per call for one decode token at the end of the context and for a
 * ubatch of tokens, and ns per (cell x query head). Not a test.
 * Usage: bench_attention [-t THREADS] [-d DEPTH,..] [-b UBATCH] [-H N_HEAD] [-K N_HEAD_KV]
 *                        [-D HEAD_DIM] [-r REPS] [--f32] [--no-flash]
 * --no-flash keeps ubatches on the exact path at every depth. -L LAYERS gives the cache that
 * many layers and cycles through them (each call the next layer), so with enough layers
 * every call reads its K/V from memory, as a real decode does (default 1: from cache).
 * The kernel set is the best one, or QUARREL_CPU's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/pool.h"
#include "cpu/attention.h"
#include "cpu/backend.h"
#include "runtime/kv_cache.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    int threads = 2, n_head = 32, n_head_kv = 4, hd = 64, ub_n = 64, reps = 0, n_layer = 1;
    int depths[8] = { 512, 4096 }, n_depths = 2;
    q_type type = Q_TYPE_F16;
    int32_t flash_min = Q_ATT_FLASH_MIN;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-H") && i + 1 < argc) n_head = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-K") && i + 1 < argc) n_head_kv = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-D") && i + 1 < argc) hd = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-b") && i + 1 < argc) ub_n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-L") && i + 1 < argc) n_layer = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
        else if (!strcmp(argv[i], "--f32")) type = Q_TYPE_F32;
        else if (!strcmp(argv[i], "--no-flash")) flash_min = 0;
        else if (!strcmp(argv[i], "-d") && i + 1 < argc) {
            n_depths = 0;
            for (char *s = strtok(argv[++i], ","); s && n_depths < 8; s = strtok(NULL, ",")) depths[n_depths++] = atoi(s);
        } else {
            fprintf(stderr, "usage: bench_attention [-t T] [-d D,..] [-b UBATCH] [-H H] [-K HKV] [-D HD] [-r R] [-L LAYERS] [--f32] [--no-flash]\n");
            return 2;
        }
    }
    if (ub_n > 4096) ub_n = 4096;
    pool *p = pool_create(threads);
    srand(1);
    printf("kernels %s, %d thread%s, %d/%d heads of %d, %s cache\n", q_cpu_isa_name(q_cpu_isa_best()), threads,
           threads == 1 ? "" : "s", n_head, n_head_kv, hd, q_type_name(type));
    printf("%7s %6s %12s %14s\n", "depth", "tokens", "us/call", "ns/(cell*head)");
    for (int di = 0; di < n_depths; di++) {
        const int n_ctx = depths[di];
        /* one layer, one sequence in cells 0..n_ctx-1 at positions 0..n_ctx-1 */
        q_kv_cache kv = { .n_ctx = n_ctx, .n_layer = n_layer, .n_seq_max = 1, .type = type };
        int32_t *width = malloc(sizeof(int32_t) * (size_t)n_layer);
        size_t *rb = malloc(sizeof(size_t) * (size_t)n_layer);
        uint8_t **kd = malloc(sizeof(uint8_t *) * (size_t)n_layer), **vd = malloc(sizeof(uint8_t *) * (size_t)n_layer);
        for (int l = 0; l < n_layer; l++) {
            width[l] = n_head_kv * hd;
            rb[l] = (size_t)width[l] * (type == Q_TYPE_F16 ? 2 : 4);
            kd[l] = malloc(rb[l] * (size_t)n_ctx);
            vd[l] = malloc(rb[l] * (size_t)n_ctx);
            for (size_t i = 0; i < rb[l] * (size_t)n_ctx / 2; i++) {   /* small random halves / floats */
                ((uint16_t *)kd[l])[i] = (uint16_t)(0x3000 + rand() % 0x800) | (uint16_t)(rand() & 1) << 15;
                ((uint16_t *)vd[l])[i] = (uint16_t)(0x3000 + rand() % 0x800) | (uint16_t)(rand() & 1) << 15;
            }
        }
        kv.width = width;
        kv.row_bytes = rb;
        kv.k = kd;
        kv.v = vd;
        kv.cells = calloc((size_t)n_ctx, sizeof *kv.cells);
        kv.seq_cells = malloc(sizeof(int32_t) * (size_t)n_ctx);
        for (int c = 0; c < n_ctx; c++) {
            kv.cells[c].pos = c;
            kv.cells[c].seq = 1;
        }
        kv.used = n_ctx;
        kv_cache_seq_index_build(&kv, 1);
        q_exec ex = { .be = &q_backend_cpu, .pool = p, .n_threads = pool_n_threads(p),
                      .att_stride = q_cpu_attention_stride(n_ctx, hd) };
        ex.att = malloc(ex.att_stride * (size_t)(ex.n_threads + 1) * sizeof(float));
        const int max_tok = ub_n > 1 ? ub_n : 1;
        float *q = malloc(sizeof(float) * (size_t)max_tok * n_head * hd), *out = malloc(sizeof(float) * (size_t)max_tok * n_head * hd);
        for (int i = 0; i < max_tok * n_head * hd; i++) q[i] = (float)((double)rand() / RAND_MAX) - 0.5f;
        q_pos pos[4096];
        q_seq_id seq[4096] = { 0 };
        q_attn_args a = { .kv = &kv, .layer = 0, .n_head = n_head, .n_head_kv = n_head_kv, .head_dim = hd,
                                .scale = 1.0f / sqrtf((float)hd) };
        for (int pass = 0; pass < 2; pass++) {
            const int nt = pass == 0 ? 1 : (ub_n < n_ctx ? ub_n : n_ctx);
            if (pass == 1 && ub_n <= 1) break;
            for (int t = 0; t < nt; t++) pos[t] = n_ctx - nt + t;   /* the last nt positions */
            const q_ubatch ub = { .n = nt, .pos = pos, .seq = seq };
            const int r = reps > 0 ? reps : (nt == 1 ? 200 : 5);
            q_cpu_attention_isa(&ex, &a, &ub, q, out, q_cpu_isa_best(), flash_min);
            double best = 1e30;
            for (int k = 0; k < r; k++) {
                a.layer = (a.layer + 1) % n_layer;
                const double t0 = now_s();
                q_cpu_attention_isa(&ex, &a, &ub, q, out, q_cpu_isa_best(), flash_min);
                const double dt = now_s() - t0;
                best = dt < best ? dt : best;
            }
            double cells = 0;   /* visible cells summed over the tokens */
            for (int t = 0; t < nt; t++) cells += pos[t] + 1;
            printf("%7d %6d %12.1f %14.3f\n", n_ctx, nt, best * 1e6, best * 1e9 / (cells * n_head));
        }
        free(ex.att); free(q); free(out); free(kv.cells); free(kv.seq_cells);
        for (int l = 0; l < n_layer; l++) { free(kd[l]); free(vd[l]); }
        free(kd); free(vd); free(width); free(rb);
    }
    pool_free(p);
    return 0;
}
