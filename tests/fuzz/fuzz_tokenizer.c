/* fuzz_tokenizer.c — libFuzzer target: arbitrary bytes through every shared vocab.
 *
 * The vocabs (../shared/vocab/ggml-vocab-*.gguf, or $QUARREL_SHARED/vocab) are loaded
 * once. Each input is tokenized with and without special-token parsing (add_special from
 * the first byte), the ids are detokenized whole and streamed one by one; every id must
 * be in range and every streamed chunk valid UTF-8. Any crash or sanitizer report is a
 * bug. Without the shared data the target aborts (a replay that tests nothing must fail). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quarrel/gguf.h"
#include "quarrel/tokenizer.h"

#define MAX_VOCABS 16

static q_vocab *g_vocabs[MAX_VOCABS];
static int      g_n_vocabs = -1;

static void load_all(void) {
    static const char *const names[] = {
        "bert-bge", "deepseek-coder", "gpt-2", "gpt-neox", "llama-spm", "phi-3", "refact", "starcoder",
    };
    const char *shared = getenv("QUARREL_SHARED");
    if (!shared || !*shared) shared = "../shared";
    g_n_vocabs = 0;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", shared, names[i]);
        gguf_file *f = NULL;
        q_error err = { 0 };
        if (gguf_open(path, &f, &err) != Q_OK) continue;
        if (q_vocab_load(f, &g_vocabs[g_n_vocabs], &err) == Q_OK) g_n_vocabs++;
        gguf_close(f);
    }
    if (g_n_vocabs == 0) {
        /* Without a vocab every input would pass untested: fail loudly instead. */
        fprintf(stderr, "fuzz_tokenizer: no vocab loaded from %s/vocab (set QUARREL_SHARED)\n", shared);
        abort();
    }
}

/* Strict UTF-8 validity (no overlongs, surrogates, or > U+10FFFF). */
static int utf8_ok(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], need, lo = 0x80, hi = 0xBF;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c == 0xE0) { need = 2; lo = 0xA0; }
        else if (c == 0xED) { need = 2; hi = 0x9F; }
        else if (c >= 0xE1 && c <= 0xEF) need = 2;
        else if (c == 0xF0) { need = 3; lo = 0x90; }
        else if (c == 0xF4) { need = 3; hi = 0x8F; }
        else if (c >= 0xF1 && c <= 0xF3) need = 3;
        else return 0;
        if (i + need >= n) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (unsigned k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
        i += need + 1;
    }
    return 1;
}

/* libFuzzer calls this once before the first input, so loading the vocabs (seconds under
 * instrumentation) does not count against the per-input timeout. The corpus replay
 * driver does not: the first input loads them there. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    if (g_n_vocabs < 0) load_all();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (g_n_vocabs < 0) load_all();
    int add_special = size > 0 && (data[0] & 1);
    for (int vi = 0; vi < g_n_vocabs; vi++) {
        const q_vocab *v = g_vocabs[vi];
        for (int ps = 0; ps < 2; ps++) {
            q_tokens ids = { 0 };
            q_error err = { 0 };
            if (q_tokenize(v, (const char *)data, size, add_special, ps, &ids, &err) != Q_OK) {
                q_tokens_free(&ids);
                continue;
            }
            for (size_t i = 0; i < ids.n; i++)
                if (ids.ids[i] < 0 || ids.ids[i] >= q_vocab_n_tokens(v)) abort();
            char *text;
            size_t len;
            if (q_detokenize(v, ids.ids, ids.n, ps, ps, &text, &len, &err) == Q_OK) free(text);
            q_detok_stream *s = q_detok_stream_new(v, ps);
            for (size_t i = 0; i <= ids.n; i++) {
                size_t cl;
                const char *c = i < ids.n ? q_detok_stream_push(s, ids.ids[i], &cl) : q_detok_stream_flush(s, &cl);
                if (!utf8_ok((const unsigned char *)c, cl)) abort();
            }
            q_detok_stream_free(s);
            q_tokens_free(&ids);
        }
    }
    return 0;
}
