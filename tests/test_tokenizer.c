/* test_tokenizer.c — src/tokenizer/ against llama.cpp's own outputs:
 *   - every ../shared/vocab/ggml-vocab-*.gguf with .inp/.out test vectors (llama.cpp's
 *     test-tokenizer-0 data: no BOS/EOS, no special parsing), 100% must match;
 *   - the prompt tokens of every ../shared/golden/<model>/<case>.json and the sentence
 *     tokens of embeddings.json (add_special = true, parse_special = false);
 *   - round trips, the streaming detokenizer and invalid UTF-8 on every vocab, checked
 *     against the input text and an independent UTF-8 validator (utf8proc).
 * QUARREL_SHARED points at the shared data (default ../shared). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <utf8proc.h>

#include "quarrel/gguf.h"
#include "quarrel/tokenizer.h"
#include "tokenizer/internal.h"  /* to switch the fast paths off for their twin test */
#include "tokenizer/pretok.h"

/* ---- helpers ---- */

static const char *shared_dir(void) {
    const char *s = getenv("QUARREL_SHARED");
    return s && *s ? s : "../shared";
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    fclose(f);
    b[got] = 0;
    *len = got;
    return b;
}

static q_vocab *load_vocab(const char *path) {
    gguf_file *f = NULL;
    q_error err = { 0 };
    if (gguf_open(path, &f, &err) != Q_OK) fail_msg("gguf_open %s: %s", path, err.msg);
    q_vocab *v = NULL;
    if (q_vocab_load(f, &v, &err) != Q_OK) fail_msg("q_vocab_load %s: %s", path, err.msg);
    gguf_close(f);  /* the vocab must not need the file any more */
    return v;
}

static void print_ids(const char *label, const q_token *ids, size_t n) {
    fprintf(stderr, "  %s:", label);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
}

/* Strict UTF-8 check via utf8proc (rejects overlongs, surrogates, > U+10FFFF). */
static bool utf8_valid(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) return false;
        i += (size_t)k;
    }
    return true;
}

/* Concatenated pieces as llama.cpp's detokenize renders them, without clean_spaces. */
static char *join_pieces(const q_vocab *v, const q_token *ids, size_t n, size_t *len) {
    size_t cap = 64, used = 0;
    char *out = malloc(cap);
    for (size_t i = 0; i < n; i++) {
        int lstrip = (i == 0 && q_vocab_get_type(v) == Q_VOCAB_SPM) ? 1 : 0;
        size_t need = q_token_to_piece(v, ids[i], NULL, 0, lstrip, false);
        if (used + need + 1 > cap) { cap = (used + need + 1) * 2; out = realloc(out, cap); }
        assert_int_equal(q_token_to_piece(v, ids[i], out + used, cap - used, lstrip, false), need);
        used += need;
    }
    out[used] = 0;
    *len = used;
    return out;
}

/* ---- llama.cpp's vocab test vectors ---- */

static const char *const vocab_names[] = {
    "bert-bge", "deepseek-coder", "gpt-2", "llama-spm", "phi-3", "refact", "starcoder",
};

static void test_vocab_vectors(void **state) {
    (void)state;
    int total_fail = 0;
    for (size_t vi = 0; vi < sizeof vocab_names / sizeof *vocab_names; vi++) {
        char path[1024], pin[1100], pout[1100];
        snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", shared_dir(), vocab_names[vi]);
        snprintf(pin, sizeof pin, "%s.inp", path);
        snprintf(pout, sizeof pout, "%s.out", path);
        size_t nin = 0, nout = 0;
        char *inp = read_file(pin, &nin), *outp = read_file(pout, &nout);
        if (!inp || !outp) fail_msg("missing test vectors %s", pin);
        q_vocab *v = load_vocab(path);

        static const char sep[] = "\n__ggml_vocab_test__\n";
        char *p = inp, *line = outp;
        int pass = 0, count = 0, trips = 0;
        for (;;) {
            char *end = strstr(p, sep);
            size_t tlen = end ? (size_t)(end - p) : strlen(p);
            if (!end && tlen == 0) break;
            char *nl = strchr(line, '\n');
            if (!nl) fail_msg("%s: .out has fewer lines than .inp has tests", vocab_names[vi]);
            *nl = 0;
            q_token want[4096];
            size_t nw = 0;
            for (char *q = line; *q;) {
                char *e;
                long id = strtol(q, &e, 10);
                if (e == q) break;
                want[nw++] = (q_token)id;
                q = e;
            }
            q_tokens got = { 0 };
            q_error err = { 0 };
            assert_int_equal(q_tokenize(v, p, tlen, false, false, &got, &err), Q_OK);
            count++;
            /* round trip through the pieces: exact except for BERT, which normalises */
            if (q_vocab_get_type(v) != Q_VOCAB_WPM) {
                size_t jl;
                char *joined = join_pieces(v, got.ids, got.n, &jl);
                if (jl == tlen && !memcmp(joined, p, tlen)) trips++;
                else fprintf(stderr, "round trip %s: '%.*s' -> '%s'\n", vocab_names[vi], (int)tlen, p, joined);
                free(joined);
            }
            if (got.n == nw && (nw == 0 || !memcmp(got.ids, want, nw * sizeof *want))) {
                pass++;
            } else {
                fprintf(stderr, "MISMATCH %s test %d: '%.*s'\n", vocab_names[vi], count, (int)tlen, p);
                print_ids("want", want, nw);
                print_ids("got ", got.ids, got.n);
            }
            q_tokens_free(&got);
            line = nl + 1;
            if (!end) break;
            p = end + strlen(sep);
        }
        printf("vocab %-15s %3d/%3d test vectors match llama.cpp, %3d/%3d round trip\n", vocab_names[vi], pass, count,
               trips, count);
        total_fail += count - pass;
        if (q_vocab_get_type(v) != Q_VOCAB_WPM) assert_int_equal(trips, count);
        assert_true(count > 0);
        q_vocab_free(v);
        free(inp);
        free(outp);
    }
    assert_int_equal(total_fail, 0);
}

/* ---- golden prompts of the shared models ---- */

typedef struct cached_vocab {
    char     model[256];
    q_vocab *v;
} cached_vocab;

static q_vocab *vocab_for_model(cached_vocab *cache, size_t *n, const char *model) {
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(cache[i].model, model)) return cache[i].v;
    char path[1024];
    snprintf(path, sizeof path, "%s/models/%s", shared_dir(), model);
    snprintf(cache[*n].model, sizeof cache[*n].model, "%s", model);
    cache[*n].v = load_vocab(path);
    return cache[(*n)++].v;
}

static int check_tokens(q_vocab *v, const char *label, const char *text, json_t *tokens) {
    q_tokens got = { 0 };
    q_error err = { 0 };
    assert_int_equal(q_tokenize(v, text, strlen(text), true, false, &got, &err), Q_OK);
    size_t nw = json_array_size(tokens);
    bool ok = got.n == nw;
    for (size_t i = 0; ok && i < nw; i++) ok = got.ids[i] == (q_token)json_integer_value(json_array_get(tokens, i));
    if (!ok) {
        fprintf(stderr, "MISMATCH %s: '%s'\n  want:", label, text);
        for (size_t i = 0; i < nw; i++) fprintf(stderr, " %d", (int)json_integer_value(json_array_get(tokens, i)));
        fprintf(stderr, "\n");
        print_ids("got ", got.ids, got.n);
    }
    q_tokens_free(&got);
    return ok ? 0 : 1;
}

static void test_golden_prompts(void **state) {
    (void)state;
    char gdir[1024];
    snprintf(gdir, sizeof gdir, "%s/golden", shared_dir());
    DIR *d = opendir(gdir);
    assert_non_null(d);
    cached_vocab cache[64];
    size_t ncache = 0;
    int checked = 0, failed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char sub[1300];
        snprintf(sub, sizeof sub, "%s/%s", gdir, e->d_name);
        DIR *d2 = opendir(sub);
        if (!d2) continue;
        struct dirent *e2;
        while ((e2 = readdir(d2))) {
            size_t nl = strlen(e2->d_name);
            if (nl < 6 || strcmp(e2->d_name + nl - 5, ".json")) continue;
            char jp[1600];
            snprintf(jp, sizeof jp, "%s/%s", sub, e2->d_name);
            json_error_t je;
            json_t *j = json_load_file(jp, JSON_ALLOW_NUL, &je);
            if (!j) fail_msg("%s: %s", jp, je.text);
            const char *model = json_string_value(json_object_get(j, "model"));
            json_t *items = json_object_get(j, "items");
            if (model && json_object_get(j, "tokens") && json_object_get(j, "prompt")) {
                q_vocab *v = vocab_for_model(cache, &ncache, model);
                failed += check_tokens(v, jp, json_string_value(json_object_get(j, "prompt")), json_object_get(j, "tokens"));
                checked++;
            } else if (model && items) {
                q_vocab *v = vocab_for_model(cache, &ncache, model);
                for (size_t i = 0; i < json_array_size(items); i++) {
                    json_t *it = json_array_get(items, i);
                    failed += check_tokens(v, jp, json_string_value(json_object_get(it, "text")), json_object_get(it, "tokens"));
                    checked++;
                }
            }
            json_decref(j);
        }
        closedir(d2);
    }
    closedir(d);
    for (size_t i = 0; i < ncache; i++) q_vocab_free(cache[i].v);
    printf("golden prompts: %d/%d tokenizations match llama.cpp (%zu models)\n", checked - failed, checked, ncache);
    assert_true(checked >= 40);
    assert_int_equal(failed, 0);
}

/* ---- round trips, streaming, invalid input on every shared vocab ---- */

static const char *const all_vocabs[] = {
    "bert-bge", "deepseek-coder", "gpt-2", "gpt-neox", "llama-spm", "phi-3", "refact", "starcoder",
};

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* Random valid UTF-8 from a mixed alphabet (ASCII, Latin-1, Greek, CJK, emoji, spaces,
 * newlines, punctuation). No '<' so no special-token text can appear, no U+2581. */
static size_t random_text(char *buf, size_t cap) {
    static const char *const atoms[] = {
        "a", "b", "e", "z", "Q", " ", " ", "  ", "\n", "\t", "0", "7", "42", ".", ",", "?", "'", "'s", "(", "}",
        "é", "ß", "Ω", "ж", "東", "京", "한", "🚀", "🦙", "—", "…", "\u00a0", "ü", "ñ", "🙂", "ℝ", "﷽", "x̂",
    };
    size_t n = 0, k = 1 + rnd() % 40;
    for (size_t i = 0; i < k; i++) {
        const char *a = atoms[rnd() % (sizeof atoms / sizeof *atoms)];
        size_t l = strlen(a);
        if (n + l >= cap) break;
        memcpy(buf + n, a, l);
        n += l;
    }
    buf[n] = 0;
    return n;
}

/* Streams ids, checking every chunk is valid UTF-8; returns the concatenation. */
static char *stream_all(const q_vocab *v, const q_token *ids, size_t n, size_t *len) {
    q_detok_stream *s = q_detok_stream_new(v, false);
    size_t cap = 64, used = 0;
    char *out = malloc(cap);
    for (size_t i = 0; i <= n; i++) {
        size_t cl;
        const char *c = i < n ? q_detok_stream_push(s, ids[i], &cl) : q_detok_stream_flush(s, &cl);
        assert_true(utf8_valid(c, cl));
        if (used + cl + 1 > cap) { cap = (used + cl + 1) * 2; out = realloc(out, cap); }
        memcpy(out + used, c, cl);
        used += cl;
    }
    q_detok_stream_free(s);
    out[used] = 0;
    *len = used;
    return out;
}

static void test_round_trip_and_stream(void **state) {
    (void)state;
    for (size_t vi = 0; vi < sizeof all_vocabs / sizeof *all_vocabs; vi++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", shared_dir(), all_vocabs[vi]);
        q_vocab *v = load_vocab(path);
        /* BERT normalises (lowercase, accents, spacing): not invertible, skip its round trip. */
        bool lossless = q_vocab_get_type(v) != Q_VOCAB_WPM;
        int trips = 0;
        for (int t = 0; t < 200; t++) {
            char text[512];
            size_t n = random_text(text, sizeof text);
            q_tokens ids = { 0 };
            q_error err = { 0 };
            assert_int_equal(q_tokenize(v, text, n, false, false, &ids, &err), Q_OK);
            size_t jl, sl;
            char *joined = join_pieces(v, ids.ids, ids.n, &jl);
            char *streamed = stream_all(v, ids.ids, ids.n, &sl);
            /* the stream equals the pieces (all valid UTF-8 here) */
            assert_int_equal(sl, jl);
            assert_memory_equal(streamed, joined, jl);
            if (lossless) {
                if (jl != n || memcmp(joined, text, n)) {
                    fprintf(stderr, "round trip %s: '%s' -> '%s'\n", all_vocabs[vi], text, joined);
                    fail();
                }
                trips++;
            }
            free(joined);
            free(streamed);
            q_tokens_free(&ids);
        }
        printf("vocab %-15s round trip %3d/200, stream 200/200\n", all_vocabs[vi], trips);
        q_vocab_free(v);
    }
}

/* Byte-fallback ids that split characters, decoded one at a time. */
static void test_stream_split_bytes(void **state) {
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-llama-spm.gguf", shared_dir());
    q_vocab *v = load_vocab(path);
    /* "<0xF0><0x9F><0x9A><0x80>" is U+1F680; a, then an orphan continuation, an
     * F0 9F prefix broken by "b", and a dangling E6 at the end. */
    const char *texts[] = { "<0xF0>", "<0x9F>", "<0x9A>", "<0x80>", "▁a", "<0x80>", "<0xF0>", "<0x9F>", "b", "<0xE6>" };
    q_token ids[10];
    for (int i = 0; i < 10; i++) {
        ids[i] = q_vocab_find(v, texts[i], strlen(texts[i]));
        assert_int_not_equal(ids[i], Q_TOKEN_NULL);
    }
    size_t len;
    char *s = stream_all(v, ids, 10, &len);
    const char want[] = "\xF0\x9F\x9A\x80 a\xEF\xBF\xBD\xEF\xBF\xBD" "b\xEF\xBF\xBD";
    assert_int_equal(len, sizeof want - 1);
    assert_memory_equal(s, want, len);
    free(s);
    /* nothing may come out before the character is complete */
    q_detok_stream *st = q_detok_stream_new(v, false);
    size_t cl;
    q_detok_stream_push(st, ids[0], &cl); assert_int_equal(cl, 0);
    q_detok_stream_push(st, ids[1], &cl); assert_int_equal(cl, 0);
    q_detok_stream_push(st, ids[2], &cl); assert_int_equal(cl, 0);
    const char *c = q_detok_stream_push(st, ids[3], &cl);
    assert_int_equal(cl, 4);
    assert_memory_equal(c, "\xF0\x9F\x9A\x80", 4);
    q_detok_stream_free(st);
    /* whole-sequence detokenize keeps the raw bytes */
    char *raw;
    q_error err = { 0 };
    assert_int_equal(q_detokenize(v, ids, 4, false, false, &raw, &len, &err), Q_OK);
    assert_string_equal(raw, "\xF0\x9F\x9A\x80");
    free(raw);
    q_vocab_free(v);
}

static void test_invalid_utf8(void **state) {
    (void)state;
    for (size_t vi = 0; vi < sizeof all_vocabs / sizeof *all_vocabs; vi++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", shared_dir(), all_vocabs[vi]);
        q_vocab *v = load_vocab(path);
        for (int t = 0; t < 100; t++) {
            unsigned char buf[64];
            size_t n = rnd() % sizeof buf;
            for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)(t & 1 ? rnd() : 0x80 + rnd() % 0x80);
            for (int ps = 0; ps < 2; ps++) {
                q_tokens ids = { 0 };
                q_error err = { 0 };
                assert_int_equal(q_tokenize(v, (const char *)buf, n, true, ps, &ids, &err), Q_OK);
                for (size_t i = 0; i < ids.n; i++) assert_true(ids.ids[i] >= 0 && ids.ids[i] < q_vocab_n_tokens(v));
                size_t sl;
                free(stream_all(v, ids.ids, ids.n, &sl));
                char *d;
                assert_int_equal(q_detokenize(v, ids.ids, ids.n, ps, ps, &d, &sl, &err), Q_OK);
                free(d);
                q_tokens_free(&ids);
            }
        }
        q_vocab_free(v);
    }
}

/* ---- special tokens and vocab facts ---- */

static void test_special_tokens(void **state) {
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-llama-spm.gguf", shared_dir());
    q_vocab *v = load_vocab(path);
    assert_int_equal(q_vocab_get_type(v), Q_VOCAB_SPM);
    assert_int_equal(q_vocab_special(v, Q_SPECIAL_BOS), 1);
    assert_int_equal(q_vocab_special(v, Q_SPECIAL_EOS), 2);
    assert_int_equal(q_vocab_special(v, Q_SPECIAL_UNK), 0);
    assert_int_equal(q_vocab_special(v, Q_SPECIAL_NL), 13);  /* <0x0A> */
    assert_true(q_vocab_is_eog(v, 2));
    assert_false(q_vocab_is_eog(v, 1));
    q_tokens a = { 0 }, b = { 0 }, c = { 0 };
    q_error err = { 0 };
    /* parse_special: "<s>" is BOS and the text after it gets the space prefix again */
    assert_int_equal(q_tokenize(v, "<s>Hello", 8, false, true, &a, &err), Q_OK);
    assert_int_equal(q_tokenize(v, "Hello", 5, false, false, &b, &err), Q_OK);
    assert_int_equal(a.n, b.n + 1);
    assert_int_equal(a.ids[0], 1);
    assert_memory_equal(a.ids + 1, b.ids, b.n * sizeof *b.ids);
    /* without it "<s>" is text */
    assert_int_equal(q_tokenize(v, "<s>Hello", 8, false, false, &c, &err), Q_OK);
    for (size_t i = 0; i < c.n; i++) assert_int_not_equal(c.ids[i], 1);
    /* add_special adds BOS only (add_eos is false); detokenize drops the space prefix */
    q_tokens d = { 0 };
    assert_int_equal(q_tokenize(v, "Hello world", 11, true, false, &d, &err), Q_OK);
    assert_int_equal(d.ids[0], 1);
    char *s;
    size_t sl;
    assert_int_equal(q_detokenize(v, d.ids + 1, d.n - 1, false, false, &s, &sl, &err), Q_OK);
    assert_string_equal(s, "Hello world");
    free(s);
    /* BOS rendered only when asked */
    assert_int_equal(q_detokenize(v, d.ids, d.n, false, true, &s, &sl, &err), Q_OK);
    assert_string_equal(s, "<s> Hello world");
    free(s);
    q_tokens_free(&a); q_tokens_free(&b); q_tokens_free(&c); q_tokens_free(&d);
    q_vocab_free(v);

    /* phi-3: <|user|> is a control token with rstrip (llama.cpp's phi3 rule) */
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-phi-3.gguf", shared_dir());
    v = load_vocab(path);
    q_token user = q_vocab_find(v, "<|user|>", 8);
    assert_int_equal(user, 32010);
    assert_true(q_vocab_token_attr(v, user) & Q_TOKEN_ATTR_CONTROL);
    assert_true(q_vocab_token_attr(v, user) & Q_TOKEN_ATTR_RSTRIP);
    assert_true(q_vocab_is_eog(v, q_vocab_find(v, "<|end|>", 7)));
    q_tokens e = { 0 }, f = { 0 };
    assert_int_equal(q_tokenize(v, "<|user|>\n  Hi", 13, false, true, &e, &err), Q_OK);
    assert_int_equal(q_tokenize(v, "Hi", 2, false, false, &f, &err), Q_OK);
    assert_int_equal(e.ids[0], user);
    assert_int_equal(e.n, f.n + 1);
    assert_memory_equal(e.ids + 1, f.ids, f.n * sizeof *f.ids);
    q_tokens_free(&e); q_tokens_free(&f);
    q_vocab_free(v);

    /* BERT: [CLS] ... [SEP] */
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-bert-bge.gguf", shared_dir());
    v = load_vocab(path);
    q_tokens g = { 0 };
    assert_int_equal(q_tokenize(v, "Hello", 5, true, false, &g, &err), Q_OK);
    assert_int_equal(g.ids[0], 101);
    assert_int_equal(q_vocab_special(v, Q_SPECIAL_CLS), 101);
    assert_int_equal(q_vocab_special(v, Q_SPECIAL_SEP), 102);
    assert_int_equal(q_vocab_special(v, Q_SPECIAL_MASK), 103);
    assert_int_equal(q_vocab_special(v, Q_SPECIAL_UNK), 100);
    assert_int_equal(g.ids[g.n - 1], 102);
    q_tokens_free(&g);
    q_vocab_free(v);
}

/* llama.cpp's clean_up_tokenization_spaces: on for gpt-2, off for deepseek-coder. */
static void test_detokenize_clean_spaces(void **state) {
    (void)state;
    static const char text[] = "a , b . c ' d 's ok ?";
    static const struct { const char *vocab, *want; } cases[] = {
        { "gpt-2", "a, b. c'd's ok?" },
        { "deepseek-coder", "a , b . c ' d 's ok ?" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", shared_dir(), cases[i].vocab);
        q_vocab *v = load_vocab(path);
        q_tokens t = { 0 };
        q_error err = { 0 };
        assert_int_equal(q_tokenize(v, text, strlen(text), false, false, &t, &err), Q_OK);
        char *s;
        size_t sl;
        assert_int_equal(q_detokenize(v, t.ids, t.n, false, false, &s, &sl, &err), Q_OK);
        assert_string_equal(s, cases[i].want);
        free(s);
        q_tokens_free(&t);
        q_vocab_free(v);
    }
}

/* ---- load errors on hand-made GGUF files ---- */

typedef struct gbuf {
    unsigned char b[4096];
    size_t        n;
} gbuf;

static void gput(gbuf *g, const void *p, size_t n) { memcpy(g->b + g->n, p, n); g->n += n; }
static void gput_u32(gbuf *g, uint32_t x) { gput(g, &x, 4); }
static void gput_u64(gbuf *g, uint64_t x) { gput(g, &x, 8); }
static void gput_str(gbuf *g, const char *s) { gput_u64(g, strlen(s)); gput(g, s, strlen(s)); }

/* A GGUF v3 with tokenizer.ggml.model = model, optional pre, and 3 tokens. */
static void make_gguf(gbuf *g, const char *model, const char *pre) {
    g->n = 0;
    gput_u32(g, GGUF_MAGIC);
    gput_u32(g, 3);
    gput_u64(g, 0);
    gput_u64(g, pre ? 4 : 3);
    gput_str(g, "tokenizer.ggml.model"); gput_u32(g, GGUF_VT_STRING); gput_str(g, model);
    if (pre) { gput_str(g, "tokenizer.ggml.pre"); gput_u32(g, GGUF_VT_STRING); gput_str(g, pre); }
    gput_str(g, "tokenizer.ggml.tokens"); gput_u32(g, GGUF_VT_ARRAY); gput_u32(g, GGUF_VT_STRING); gput_u64(g, 3);
    gput_str(g, "a"); gput_str(g, "b"); gput_str(g, "ab");
    gput_str(g, "tokenizer.ggml.merges"); gput_u32(g, GGUF_VT_ARRAY); gput_u32(g, GGUF_VT_STRING); gput_u64(g, 1);
    gput_str(g, "a b");
}

/* A GGUF with only tokenizer.ggml.model = "llama" and one more array key. */
static void make_gguf_arr(gbuf *g, const char *key, gguf_vtype elem, uint64_t n, const void *data, size_t elem_size) {
    g->n = 0;
    gput_u32(g, GGUF_MAGIC);
    gput_u32(g, 3);
    gput_u64(g, 0);
    gput_u64(g, key ? 3 : 2);
    gput_str(g, "tokenizer.ggml.model"); gput_u32(g, GGUF_VT_STRING); gput_str(g, "llama");
    gput_str(g, "tokenizer.ggml.tokens"); gput_u32(g, GGUF_VT_ARRAY); gput_u32(g, GGUF_VT_STRING); gput_u64(g, 3);
    gput_str(g, "<unk>"); gput_str(g, "a"); gput_str(g, "");
    if (key) {
        gput_str(g, key); gput_u32(g, GGUF_VT_ARRAY); gput_u32(g, elem); gput_u64(g, n);
        gput(g, data, n * elem_size);
    }
}

static q_status load_buf(gbuf *g, q_error *err) {
    gguf_file *f = NULL;
    q_error e2 = { 0 };
    if (gguf_open_buffer(g->b, g->n, &f, &e2) != Q_OK) fail_msg("gguf_open_buffer: %s", e2.msg);
    q_vocab *v = NULL;
    q_status st = q_vocab_load(f, &v, err);
    if (st == Q_OK) {
        q_tokens t = { 0 };
        assert_int_equal(q_tokenize(v, "ab", 2, false, false, &t, err), Q_OK);
        assert_int_equal(t.n, 1);
        assert_int_equal(t.ids[0], 2);  /* merge "a b" applied */
        q_tokens_free(&t);
    }
    q_vocab_free(v);
    gguf_close(f);
    return st;
}

static void test_load_errors(void **state) {
    (void)state;
    gbuf g;
    q_error err = { 0 };
    make_gguf(&g, "t5", NULL);
    assert_int_equal(load_buf(&g, &err), Q_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "unsupported tokenizer model 't5'"));
    make_gguf(&g, "gpt2", "no-such-pre");
    assert_int_equal(load_buf(&g, &err), Q_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "unsupported pre-tokenizer 'no-such-pre'"));
    make_gguf(&g, "gpt2", NULL);  /* missing pre = default */
    assert_int_equal(load_buf(&g, &err), Q_OK);
    static const char *const pres[] = {
        "default", "gpt-2", "llama-bpe", "deepseek-llm", "deepseek-coder", "deepseek-v3", "falcon", "mpt",
        "starcoder", "refact", "command-r", "qwen2", "stablelm2", "olmo", "dbrx", "smaug-bpe", "poro-chat",
        "chatglm-bpe", "viking", "jais", "tekken", "smollm", "codeshell", "bloom", "gpt3-finnish", "exaone",
        "chameleon", "minerva-7b", "deepseek-r1-qwen", "gpt-4o",
    };
    for (size_t i = 0; i < sizeof pres / sizeof *pres; i++) {
        make_gguf(&g, "gpt2", pres[i]);
        if (load_buf(&g, &err) != Q_OK) fail_msg("pre %s: %s", pres[i], err.msg);
    }

    /* malformed tokenizer arrays are format errors, not crashes */
    gguf_file *f = NULL;
    q_vocab *v = NULL;
    float scores2[2] = { 0, 0 };
    int32_t types3[3] = { 2, 1, 1 };
    make_gguf_arr(&g, "tokenizer.ggml.scores", GGUF_VT_FLOAT32, 2, scores2, 4);
    assert_int_equal(gguf_open_buffer(g.b, g.n, &f, &err), Q_OK);
    assert_int_equal(q_vocab_load(f, &v, &err), Q_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "tokenizer.ggml.scores"));
    gguf_close(f);
    make_gguf_arr(&g, "tokenizer.ggml.token_type", GGUF_VT_FLOAT32, 3, types3, 4);
    assert_int_equal(gguf_open_buffer(g.b, g.n, &f, &err), Q_OK);
    assert_int_equal(q_vocab_load(f, &v, &err), Q_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "tokenizer.ggml.token_type"));
    gguf_close(f);
    /* a valid tiny SPM vocab: the empty token is renamed, unknown bytes become <unk> */
    make_gguf_arr(&g, "tokenizer.ggml.token_type", GGUF_VT_INT32, 3, types3, 4);
    assert_int_equal(gguf_open_buffer(g.b, g.n, &f, &err), Q_OK);
    assert_int_equal(q_vocab_load(f, &v, &err), Q_OK);
    gguf_close(f);
    size_t tl;
    const char *t2 = q_vocab_token_text(v, 2, &tl);
    assert_int_equal(tl, 9);
    assert_memory_equal(t2, "[EMPTY_2]", 9);
    /* BOS is the default id 1 ("a" here); "\u2581" and "b" have no byte tokens, so each of
     * their bytes becomes <unk> (llama.cpp would throw instead) */
    q_tokens t = { 0 };
    assert_int_equal(q_tokenize(v, "ab", 2, true, false, &t, &err), Q_OK);
    static const q_token want[] = { 1, 0, 0, 0, 1, 0 };
    assert_int_equal(t.n, 6);
    assert_memory_equal(t.ids, want, sizeof want);
    q_tokens_free(&t);
    q_vocab_free(v);
}

/* ---- fast paths against their slow twins ----
 * SPM cuts its input before runs of U+2581 (spm_split_safe), BPE looks merges up by
 * token-id pairs (pair_keys) and caches words (bpe_word_cache); all must give exactly
 * what the plain algorithms give. */
static void test_fast_paths_match_slow(void **state) {
    (void)state;
    char seed_path[1024];
    const char *src = getenv("QUARREL_SOURCE");
    snprintf(seed_path, sizeof seed_path, "%s/bench/tokenize_seed.txt", src && *src ? src : ".");
    size_t seed_len = 0;
    char *seed1 = read_file(seed_path, &seed_len);
    assert_non_null(seed1);
    /* three copies, so that the word cache serves repeats */
    char *seed = malloc(seed_len * 3 + 1);
    for (int k = 0; k < 3; k++) memcpy(seed + k * seed_len, seed1, seed_len);
    seed_len *= 3;
    seed[seed_len] = 0;
    free(seed1);
    static const char *const names[] = { "llama-spm", "phi-3", "gpt-2", "starcoder", "deepseek-coder", "gpt-neox" };
    for (size_t vi = 0; vi < sizeof names / sizeof *names; vi++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", shared_dir(), names[vi]);
        q_vocab *v = load_vocab(path);
        if (q_vocab_get_type(v) == Q_VOCAB_SPM) assert_true(v->spm_split_safe);
        else assert_true(v->pair_keys && v->bpe_word_cache);
        for (int t = 0; t < 60; t++) {
            char buf[512];
            const char *text = seed;
            size_t n = seed_len;
            if (t > 0) { n = random_text(buf, sizeof buf); text = buf; }
            q_tokens fast = { 0 }, slow = { 0 };
            q_error err = { 0 };
            assert_int_equal(q_tokenize(v, text, n, false, false, &fast, &err), Q_OK);
            bool split = v->spm_split_safe, cache = v->bpe_word_cache;
            uint64_t *keys = v->pair_keys;
            v->spm_split_safe = false;
            v->pair_keys = NULL;
            v->bpe_word_cache = false;
            assert_int_equal(q_tokenize(v, text, n, false, false, &slow, &err), Q_OK);
            v->spm_split_safe = split;
            v->pair_keys = keys;
            v->bpe_word_cache = cache;
            assert_int_equal(fast.n, slow.n);
            assert_memory_equal(fast.ids, slow.ids, fast.n * sizeof *fast.ids);
            q_tokens_free(&fast);
            q_tokens_free(&slow);
        }
        q_vocab_free(v);
    }
    free(seed);
}

/* ---- pre-tokenizer splits: what the models' regexes do (HF tokenizers semantics) ---- */

static void check_split(const char *pre, const char *text, const char *const *want) {
    pretok *p = NULL;
    q_error err = { 0 };
    assert_int_equal(pretok_new(pre, &p, &err), Q_OK);
    uint32_t cps[256];
    size_t n = 0, len = strlen(text);
    for (size_t off = 0; off < len;) {
        size_t adv;
        cps[n++] = utf8_decode_lenient((const uint8_t *)text + off, len - off, &adv);
        off += adv;
    }
    pretok_ctx *c = pretok_ctx_new();
    pretok_words w;
    pretok_split(p, c, cps, n, &w);
    size_t at = 0, k = 0;
    for (; k < w.n; k++) {
        char word[256];
        size_t wl = 0;
        for (size_t i = at; i < at + w.lens[k]; i++) wl += utf8_encode(cps[i], word + wl);
        word[wl] = 0;
        at += w.lens[k];
        if (!want[k] || strcmp(word, want[k])) fail_msg("%s on '%s': word %zu is '%s', want '%s'", pre, text, k, word, want[k] ? want[k] : "(end)");
    }
    if (want[k]) fail_msg("%s on '%s': %zu words, want more ('%s')", pre, text, k, want[k]);
    pretok_ctx_free(c);
    pretok_free(p);
}

static void test_pretok_splits(void **state) {
    (void)state;
    check_split("gpt-2", "Hello world's  test 123", (const char *[]){ "Hello", " world", "'s", " ", " test", " 123", NULL });
    check_split("llama-bpe", "Hello world's  test 12345\n\n x",
                (const char *[]){ "Hello", " world", "'s", " ", " test", " ", "123", "45", "\n\n", " x", NULL });
    check_split("llama-bpe", "I'M ok", (const char *[]){ "I", "'M", " ok", NULL });
    check_split("qwen2", "a 12345", (const char *[]){ "a", " ", "1", "2", "3", "4", "5", NULL });
    check_split("gpt-4o", "HelloWorld foo", (const char *[]){ "Hello", "World", " foo", NULL });
    check_split("starcoder", "x1 = 42", (const char *[]){ "x", "1", " =", " ", "4", "2", NULL });
    check_split("deepseek-coder", "x = 12;", (const char *[]){ "x", " = ", "1", "2", ";", NULL });
    check_split("gpt-2", "東京 🚀 naïve", (const char *[]){ "東京", " 🚀", " naïve", NULL });
    /* non-ASCII whitespace counts as \s (U+3000 here), but only ' ' is the optional
     * prefix of a word: the last U+3000 stays alone (an unmatched gap) */
    check_split("gpt-2", "a\u3000\u3000b", (const char *[]){ "a", "\u3000", "\u3000", "b", NULL });
    check_split("gpt-2", "a  b", (const char *[]){ "a", " ", " b", NULL });

    /* a 100000-letter word through gpt-4o's repeated groups outgrows the default JIT
     * stack: it must still come out as one word */
    pretok *p = NULL;
    q_error err = { 0 };
    assert_int_equal(pretok_new("gpt-4o", &p, &err), Q_OK);
    size_t n = 100000;
    uint32_t *cps = malloc(n * sizeof *cps);
    for (size_t i = 0; i < n; i++) cps[i] = i % 7 ? 'a' : 0xE9;  /* a...aé */
    pretok_ctx *c = pretok_ctx_new();
    pretok_words w;
    pretok_split(p, c, cps, n, &w);
    assert_int_equal(w.n, 1);
    assert_int_equal(w.lens[0], n);
    pretok_ctx_free(c);
    pretok_free(p);
    free(cps);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vocab_vectors),
        cmocka_unit_test(test_golden_prompts),
        cmocka_unit_test(test_round_trip_and_stream),
        cmocka_unit_test(test_stream_split_bytes),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_special_tokens),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_fast_paths_match_slow),
        cmocka_unit_test(test_pretok_splits),
        cmocka_unit_test(test_detokenize_clean_spaces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
