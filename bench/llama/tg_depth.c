/* bench/llama/tg_depth.c — llama.cpp's decode speed after DEPTH tokens of context, with
 * the protocol of `quarrel bench -d` (llama-bench at c392e50 has no -d): the context is
 * filled once with DEPTH prompt tokens (ids (i*7919+13) % n_vocab, batches of 512), then
 * per run the positions >= DEPTH are dropped, one untimed token decodes at DEPTH and N
 * single-token decodes at DEPTH+1.. are timed. One warm-up run, then REPS runs.
 * Not part of the build (it links llama.cpp); build it against a llama.cpp build tree:
 *   LL=/work/refs/llama.cpp
 *   gcc -O2 -o /tmp/tg_depth bench/llama/tg_depth.c -I$LL/include -I$LL/ggml/include \
 *       -L$LL/build/bin -lllama -lggml -lggml-base -Wl,-rpath,$LL/build/bin
 * Usage: tg_depth MODEL DEPTH N REPS [FLASH_ATTN 0|1] (2 threads) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "llama.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void put(struct llama_batch *b, llama_token tok, llama_pos pos, bool logits) {
    const int k = b->n_tokens++;
    b->token[k] = tok;
    b->pos[k] = pos;
    b->n_seq_id[k] = 1;
    b->seq_id[k][0] = 0;
    b->logits[k] = logits;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: tg_depth MODEL DEPTH N REPS [FLASH_ATTN]\n");
        return 2;
    }
    const int depth = atoi(argv[2]), n = atoi(argv[3]), reps = atoi(argv[4]), fa = argc > 5 ? atoi(argv[5]) : 0;
    llama_backend_init();
    struct llama_model *m = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!m) return 1;
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(depth + n + 16);
    cp.n_batch = cp.n_ubatch = 512;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.flash_attn = fa != 0;
    struct llama_context *c = llama_init_from_model(m, cp);
    const int nv = llama_vocab_n_tokens(llama_model_get_vocab(m));
    struct llama_batch b = llama_batch_init(512, 0, 1);
    for (int i0 = 0; i0 < depth; i0 += 512) {
        b.n_tokens = 0;
        for (int i = i0; i < depth && i < i0 + 512; i++) put(&b, (i * 7919 + 13) % nv, i, i == depth - 1);
        if (llama_decode(c, b)) return 1;
    }
    for (int r = -1; r < reps; r++) {
        llama_kv_cache_seq_rm(c, 0, depth, -1);
        b.n_tokens = 0;
        put(&b, 13 % nv, depth, true);
        if (llama_decode(c, b)) return 1;
        const double t0 = now_s();
        for (int i = 1; i <= n; i++) {
            b.n_tokens = 0;
            put(&b, (i * 7919 + 13) % nv, depth + i, true);
            if (llama_decode(c, b)) return 1;
        }
        if (r >= 0) printf("llama.cpp tg%d @ d%d (flash_attn %d): %.2f t/s\n", n, depth, fa, n / (now_s() - t0));
    }
    llama_batch_free(b);
    llama_free(c);
    llama_model_free(m);
    return 0;
}
