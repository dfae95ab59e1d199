/* tokenize.c — tokenizer throughput: MB/s of q_tokenize (and of q_detokenize on its
 * output) for each shared vocab over one text file. Not a test; see bench/tokenize.sh.
 *
 *   bench_tokenize TEXT_FILE [VOCAB.gguf ...]
 *
 * Without vocab arguments it runs every $QUARREL_SHARED/vocab/ggml-vocab-*.gguf
 * (QUARREL_SHARED defaults to ../shared). Each measurement is the best of at least 3
 * runs and at least 1 s of thread CPU time; add_special = false, parse_special = false (user-defined tokens
 * are still split out, as in llama.cpp). Prints a Markdown table. The text repeats its
 * seed lines, which flatters BPE's per-call word cache, so BPE is also timed without it
 * ("no cache": every word merged from scratch, the bound for text with no repeats). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quarrel/gguf.h"
#include "quarrel/tokenizer.h"
#include "tokenizer/internal.h"  /* to also time BPE without its word cache */

/* Thread CPU time: the benchmark is single-threaded, and on a shared machine CPU time is
 * far steadier than wall time (which also counts waiting for a core). */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void bench_one(const char *path, const char *text, size_t len) {
    gguf_file *f = NULL;
    q_error err = { 0 };
    double t0 = now_s();
    if (gguf_open(path, &f, &err) != Q_OK) { fprintf(stderr, "%s: %s\n", path, err.msg); return; }
    q_vocab *v = NULL;
    q_status st = q_vocab_load(f, &v, &err);
    gguf_close(f);
    if (st != Q_OK) { fprintf(stderr, "%s: %s\n", path, err.msg); return; }
    double load_ms = (now_s() - t0) * 1e3;

    q_tokens ids = { 0 };
    double best_tok = 1e30, best_nocache = 1e30, best_detok = 1e30, start = now_s();
    size_t out_len = 0;
    for (int rep = 0; rep < 3 || now_s() - start < 1.0; rep++) {
        ids.n = 0;
        double a = now_s();
        if (q_tokenize(v, text, len, false, false, &ids, &err) != Q_OK) { fprintf(stderr, "%s: %s\n", path, err.msg); break; }
        double b = now_s();
        char *out;
        q_detokenize(v, ids.ids, ids.n, false, false, &out, &out_len, &err);
        double c = now_s();
        free(out);
        if (b - a < best_tok) best_tok = b - a;
        if (c - b < best_detok) best_detok = c - b;
    }
    if (v->bpe_word_cache) {
        v->bpe_word_cache = false;
        start = now_s();
        for (int rep = 0; rep < 3 || now_s() - start < 1.0; rep++) {
            ids.n = 0;
            double a = now_s();
            q_tokenize(v, text, len, false, false, &ids, &err);
            if (now_s() - a < best_nocache) best_nocache = now_s() - a;
        }
    } else {
        best_nocache = best_tok;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    printf("| %-32s | %-3s | %-14s | %8zu | %5.2f | %8.2f | %8.2f | %8.1f | %6.0f |\n", base,
           q_vocab_type_name(q_vocab_get_type(v)), q_vocab_pre_name(v), ids.n, (double)len / (double)ids.n,
           len / best_tok / 1e6, len / best_nocache / 1e6, out_len / best_detok / 1e6, load_ms);
    q_tokens_free(&ids);
    q_vocab_free(v);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s TEXT_FILE [VOCAB.gguf ...]\n", argv[0]); return 2; }
    FILE *tf = fopen(argv[1], "rb");
    if (!tf) { fprintf(stderr, "cannot open %s\n", argv[1]); return 1; }
    fseek(tf, 0, SEEK_END);
    size_t len = (size_t)ftell(tf);
    fseek(tf, 0, SEEK_SET);
    char *text = malloc(len + 1);
    if (fread(text, 1, len, tf) != len) { fprintf(stderr, "short read\n"); return 1; }
    fclose(tf);

    char *paths[64];
    int n = 0;
    for (int i = 2; i < argc && n < 64; i++) paths[n++] = strdup(argv[i]);
    if (n == 0) {
        const char *shared = getenv("QUARREL_SHARED");
        if (!shared || !*shared) shared = "../shared";
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/vocab", shared);
        DIR *d = opendir(dir);
        if (!d) { fprintf(stderr, "no vocab directory %s\n", dir); return 1; }
        struct dirent *e;
        while ((e = readdir(d)) && n < 64) {
            size_t l = strlen(e->d_name);
            if (strncmp(e->d_name, "ggml-vocab-", 11) || l < 5 || strcmp(e->d_name + l - 5, ".gguf")) continue;
            char p[1400];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            paths[n++] = strdup(p);
        }
        closedir(d);
        qsort(paths, (size_t)n, sizeof *paths, cmp_str);
    }
    printf("text: %s, %zu bytes\n\n", argv[1], len);
    printf("| %-32s | %-3s | %-14s | %8s | %5s | %8s | %8s | %8s | %6s |\n", "vocab", "kind", "pre", "tokens", "B/tok",
           "tok MB/s", "no cache", "detok MB/s", "load ms");
    printf("|%s|-----|----------------|----------|-------|----------|----------|----------|--------|\n",
           "----------------------------------");
    for (int i = 0; i < n; i++) {
        bench_one(paths[i], text, len);
        free(paths[i]);
    }
    free(text);
    return 0;
}
