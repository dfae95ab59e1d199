/* test_vocab_limits.c — regression tests for hostile tokenizer vocabs: each one is a small
 * GGUF written at test time with the GGUF writer (include/quarrel/gguf.h) to a temp file,
 * loaded with q_vocab_load, and checked against facts stated here (llama.cpp's piece
 * format, the documented limits), not against earlier outputs.
 *   - long BPE tokens of codepoints outside bytes_to_unicode: pieces stay linear;
 *   - a token over 64 KiB: Q_ERR_LIMIT, not an assert or a blowup;
 *   - WordPiece with a 60000-byte token: the match loop stays fast, and tokens longer
 *     than WPM_MAX_MATCH never match while shorter ones do. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "quarrel/gguf.h"
#include "quarrel/tokenizer.h"
#include "tokenizer/internal.h"  /* WPM_MAX_MATCH */

#define K(k) "tokenizer.ggml." k

/* Writes w to a temp file, loads the vocab from it (*st gets the status). */
static q_vocab *load_written(gguf_writer *w, q_status *st, q_error *err) {
    char path[] = "/tmp/quarrel_vocab_limits_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    q_error e2 = { 0 };
    if (gguf_writer_write(w, path, NULL, NULL, &e2) != Q_OK) fail_msg("gguf_writer_write: %s", e2.msg);
    gguf_writer_free(w);
    gguf_file *f = NULL;
    if (gguf_open(path, &f, &e2) != Q_OK) fail_msg("gguf_open: %s", e2.msg);
    q_vocab *v = NULL;
    *st = q_vocab_load(f, &v, err);
    gguf_close(f);
    unlink(path);
    return v;
}

/* gpt2 vocab: the 256 single bytes (as their own codepoint where printable ASCII, else
 * an arbitrary unique text: they only fill ids) plus extra tokens. */
static gguf_writer *bpe_writer(const char *const *extra, size_t n_extra) {
    size_t n = 256 + n_extra;
    char **toks = malloc(n * sizeof *toks);
    for (size_t i = 0; i < 256; i++) {
        toks[i] = malloc(16);
        if (i > 0x20 && i < 0x7F) snprintf(toks[i], 16, "%c", (int)i);
        else snprintf(toks[i], 16, "<b%zu>", i);
    }
    for (size_t i = 0; i < n_extra; i++) toks[256 + i] = (char *)extra[i];
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, K("model"), "gpt2");
    gguf_writer_set_str(w, K("pre"), "gpt-2");
    gguf_writer_set_arr_str(w, K("tokens"), (const char *const *)toks, n);
    static const char *const merges[] = { "a b" };
    gguf_writer_set_arr_str(w, K("merges"), merges, 1);
    for (size_t i = 0; i < 256; i++) free(toks[i]);
    free(toks);
    return w;
}

static char *repeat(const char *unit, size_t times, const char *suffix) {
    size_t ul = strlen(unit), sl = strlen(suffix);
    char *s = malloc(ul * times + sl + 1);
    for (size_t i = 0; i < times; i++) memcpy(s + i * ul, unit, ul);
    memcpy(s + ul * times, suffix, sl + 1);
    return s;
}

/* The review's reproducer: 40 tokens of 20 KB of CJK took 4.2 GB, then aborted. Each
 * U+4E00 (bytes E4 B8 80) is outside GPT-2's byte map, so its piece is llama.cpp's
 * "[UNK_BYTE_0xe4b880<token text>]" for the first one and, with the text once per
 * token, "[UNK_BYTE_0xe4b880]" after that. */
static void test_bpe_long_unmapped_tokens(void **state) {
    (void)state;
    enum { N_TOK = 40, N_CP = 6800 };  /* 20400 bytes each */
    char *extra[N_TOK];
    for (int i = 0; i < N_TOK; i++) {
        char suffix[3] = { (char)('a' + i / 26), (char)('a' + i % 26), 0 };  /* distinct texts */
        extra[i] = repeat("\xE4\xB8\x80", N_CP, suffix);
    }
    q_error err = { 0 };
    q_status st;
    q_vocab *v = load_written(bpe_writer((const char *const *)extra, N_TOK), &st, &err);
    if (st != Q_OK) fail_msg("load: %s", err.msg);
    assert_int_equal(q_vocab_n_tokens(v), 256 + N_TOK);

    /* expected piece of token 256 (text = N_CP x U+4E00 + "aa"; 'a' maps to itself) */
    const char *text = extra[0];
    size_t tl = strlen(text);
    char *want = malloc(N_CP * 20 + tl + 8);
    size_t wn = 0;
    for (int i = 0; i < N_CP; i++) {
        wn += (size_t)sprintf(want + wn, "[UNK_BYTE_0xe4b880");
        if (i == 0) { memcpy(want + wn, text, tl); wn += tl; }
        want[wn++] = ']';
    }
    want[wn++] = 'a';
    want[wn++] = 'a';
    size_t pl = q_token_to_piece(v, 256, NULL, 0, 0, true);
    assert_int_equal(pl, wn);
    char *got = malloc(pl);
    assert_int_equal(q_token_to_piece(v, 256, got, pl, 0, true), pl);
    assert_memory_equal(got, want, wn);
    free(got);
    free(want);
    q_vocab_free(v);
    for (int i = 0; i < N_TOK; i++) free(extra[i]);
}

static void test_token_length_limit(void **state) {
    (void)state;
    for (int over = 0; over < 2; over++) {
        char *big = repeat("x", (64u << 10) + (unsigned)over, "");
        const char *extra[] = { big };
        q_error err = { 0 };
        q_status st;
        q_vocab *v = load_written(bpe_writer(extra, 1), &st, &err);
        if (over) {
            assert_int_equal(st, Q_ERR_LIMIT);
            assert_null(v);
            assert_non_null(strstr(err.msg, "limit"));
        } else {
            if (st != Q_OK) fail_msg("load of a 64 KiB token: %s", err.msg);
            q_vocab_free(v);
        }
        free(big);
    }
}

static q_vocab *wpm_vocab(const char *const *extra, size_t n_extra) {
    const char *base[] = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "\xE2\x96\x81", "a", "c" };
    size_t nb = sizeof base / sizeof *base, n = nb + n_extra;
    const char **toks = malloc(n * sizeof *toks);
    memcpy(toks, base, sizeof base);
    memcpy(toks + nb, extra, n_extra * sizeof *extra);
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, K("model"), "bert");
    gguf_writer_set_arr_str(w, K("tokens"), toks, n);
    gguf_writer_set_u32(w, K("unknown_token_id"), 1);
    free(toks);
    q_error err = { 0 };
    q_status st;
    q_vocab *v = load_written(w, &st, &err);
    if (st != Q_OK) fail_msg("load: %s", err.msg);
    return v;
}

/* WordPiece used to try every length up to the longest token at each position: with a
 * 60000-byte token, 30000 "a"s cost ~10^13 byte hashes. Ids 5 = "▁", 6 = "a", 7 = "c",
 * 8 = "b"*200, 9 = "c"*(WPM_MAX_MATCH+1), 10 = "a"*60000. */
static void test_wpm_long_tokens(void **state) {
    (void)state;
    char *b200 = repeat("b", 200, ""), *c_over = repeat("c", WPM_MAX_MATCH + 1, ""), *a60k = repeat("a", 60000, "");
    const char *extra[] = { b200, c_over, a60k };
    q_vocab *v = wpm_vocab(extra, 3);
    q_error err = { 0 };

    char *text = repeat("a", 30000, "");
    q_tokens t = { 0 };
    assert_int_equal(q_tokenize(v, text, strlen(text), false, false, &t, &err), Q_OK);
    assert_int_equal(t.n, 1 + 30000);  /* "▁" then one "a" each: no token is longer and fits */
    assert_int_equal(t.ids[0], 5);
    for (size_t i = 1; i < t.n; i++) assert_int_equal(t.ids[i], 6);
    q_tokens_free(&t);
    free(text);

    /* a 200-byte token matches whole */
    assert_int_equal(q_tokenize(v, b200, 200, false, false, &t, &err), Q_OK);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.ids[0], 5);
    assert_int_equal(t.ids[1], 8);
    q_tokens_free(&t);

    /* one longer than WPM_MAX_MATCH never matches: single "c"s instead */
    assert_int_equal(q_tokenize(v, c_over, strlen(c_over), false, false, &t, &err), Q_OK);
    assert_int_equal(t.n, 1 + WPM_MAX_MATCH + 1);
    for (size_t i = 1; i < t.n; i++) assert_int_equal(t.ids[i], 7);
    q_tokens_free(&t);

    q_vocab_free(v);
    free(b200);
    free(c_over);
    free(a60k);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bpe_long_unmapped_tokens),
        cmocka_unit_test(test_token_length_limit),
        cmocka_unit_test(test_wpm_long_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
