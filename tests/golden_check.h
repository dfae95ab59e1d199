/* golden_check.h — the golden comparison shared by tests/test_golden.c (F32/F16/BF16
 * models) and tests/test_golden_quant.c (quantized models); split in two executables so
 * ctest runs them in parallel. Header-only, included once per test.
 *
 * For every model directory in ../shared/golden whose arch Quarrel runs (llama incl. its
 * MoE files, granite; other archs are skipped with a note) and every case JSON in it,
 * in BOTH modes (whole prompt in one batch; one token per decode):
 *   - per-position rel L2 against <case>.f32 within the README's table (F32 1e-3,
 *     F16 3e-3, BF16 1e-2, quantized 3e-2 everywhere and 1e-3 at a majority),
 *   - the greedy continuation equals the golden ids (up to the first step where either
 *     side's top-1/top-2 margin is below 0.05 / 0.3, only for cases whose
 *     top1_margin_min is below that), and each step's logits match <case>.greedy.f32.
 * Token ids come from the golden (the tokenizer is tested elsewhere). Prints the worst
 * rel error per model and mode, and how many positions are bit-identical.
 * No case is excepted from the majority rule (Q6_K/unicode once was: see docs/engine.md,
 * "RoPE rounding"). */
#ifndef QUARREL_TESTS_GOLDEN_CHECK_H
#define QUARREL_TESTS_GOLDEN_CHECK_H

#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "golden_util.h"
#include "quarrel/quarrel.h"
#include "cpu/backend.h"
#if defined(__x86_64__)
#include "avx512_emu_tables.h"
#endif

typedef struct tol {
    double bound;       /* every position */
    double majority;    /* bound at more than half of the prompt positions; 0 = none */
    float  margin;      /* greedy margin exception threshold */
} tol;

/* True for files whose weights are quantized (the README's tolerance classes). */
static bool golden_is_quantized(const char *model) {
    const char *dash = strrchr(model, '-');
    const char *q = dash ? dash + 1 : "F32";
    return strcmp(q, "F32") && strcmp(q, "F16") && strcmp(q, "BF16") && strcmp(q, "stories260K");
}

/* Tolerance class from the file name's quant suffix (the README's table). Files with no
 * suffix (stories260K) are F32. */
static tol tol_for(const char *model) {
    const char *dash = strrchr(model, '-');
    const char *q = dash ? dash + 1 : "F32";
    if (!strcmp(q, "F32") || !strcmp(q, "stories260K") || !dash) return (tol){ 1e-3, 0, 0.05f };
    if (!strcmp(q, "F16")) return (tol){ 3e-3, 0, 0.05f };
    if (!strcmp(q, "BF16")) return (tol){ 1e-2, 0, 0.05f };
    return (tol){ 3e-2, 1e-3, 0.3f };
}

typedef struct mode_stats {
    double worst;
    int    n_pos, n_tight, n_exact;
    int    greedy_checked, greedy_len;
} mode_stats;

static int n_failures;

static void failf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    n_failures++;
}

static void check_row(const char *what, int i, const float *ours, const float *gold, int32_t V,
                      tol t, mode_stats *st, bool prompt) {
    const double rel = golden_rel_l2(ours, gold, V);
    if (rel > st->worst) st->worst = rel;
    if (prompt) {
        st->n_pos++;
        st->n_exact += rel == 0.0;
        if (t.majority > 0 && rel <= t.majority) st->n_tight++;
    }
    if (!(rel <= t.bound)) failf("%s row %d: rel %.3g > %.3g", what, i, rel, t.bound);
}

/* Runs one case in one mode; fills st. */
static void run_case(q_model *m, const char *dir, const char *case_name, json_t *js, bool single,
                     tol t, mode_stats *st) {
    char what[512], path[1024];
    snprintf(what, sizeof what, "%s/%s [%s]", dir, case_name, single ? "single" : "batch");
    int32_t n_pos, n_greedy;
    int32_t *tokens = golden_int_array(json_object_get(js, "tokens"), &n_pos);
    int32_t *greedy = golden_int_array(json_object_get(js, "greedy"), &n_greedy);
    const int32_t V = (int32_t)json_integer_value(json_object_get(js, "n_vocab"));
    const double margin_min = json_number_value(json_object_get(js, "top1_margin_min"));
    const char *lf = json_string_value(json_object_get(js, "logits_file"));
    const char *gf = json_string_value(json_object_get(js, "greedy_logits_file"));
    float *gold = NULL, *gold_greedy = NULL;
    size_t sz = 0;
    if (lf) {
        snprintf(path, sizeof path, "%s/golden/%s/%s", golden_shared_dir(), dir, lf);
        gold = golden_read_file(path, &sz);
        assert_non_null(gold);
        assert_int_equal(sz, (size_t)n_pos * V * 4);
    }
    if (gf) {
        snprintf(path, sizeof path, "%s/golden/%s/%s", golden_shared_dir(), dir, gf);
        gold_greedy = golden_read_file(path, &sz);
        assert_non_null(gold_greedy);
        assert_int_equal(sz, (size_t)n_greedy * V * 4);
    }
    assert_int_equal(q_model_n_vocab(m), V);

    q_context_params cp = q_context_default_params();
    cp.n_ctx = 512;
    cp.n_threads = 2;
    q_context *c = NULL;
    q_error err;
    assert_int_equal(q_context_new(m, &cp, &c, &err), Q_OK);
    q_batch b = q_batch_init(512);

    /* prompt */
    float *last = malloc(sizeof(float) * (size_t)V);
    for (int32_t i0 = 0; i0 < n_pos;) {
        const int32_t n = single ? 1 : n_pos;
        q_batch_clear(&b);
        for (int32_t i = i0; i < i0 + n; i++) q_batch_add(&b, tokens[i], i, 0, true);
        if (q_decode(c, &b, &err) != Q_OK) fail_msg("%s: decode: %s", what, err.msg);
        for (int32_t i = i0; i < i0 + n; i++) {
            const float *lg = q_get_logits_ith(c, i - i0);
            assert_non_null(lg);
            if (gold) check_row(what, i, lg, gold + (size_t)i * V, V, t, st, true);
            if (i == n_pos - 1) memcpy(last, lg, sizeof(float) * (size_t)V);
        }
        i0 += n;
    }
    if (gold && t.majority > 0 && !(st->n_tight * 2 > st->n_pos))
        failf("%s: only %d of %d positions within %.0e", what, st->n_tight, st->n_pos, t.majority);

    /* greedy continuation */
    const bool margin_rule = margin_min < t.margin;
    st->greedy_len = n_greedy;
    const float *cur = last;
    for (int32_t s = 0; s < n_greedy; s++) {
        float our_margin, gold_margin = INFINITY;
        const int32_t tok = golden_argmax(cur, V, &our_margin);
        if (gold_greedy) golden_argmax(gold_greedy + (size_t)s * V, V, &gold_margin);
        if (margin_rule && (our_margin < t.margin || gold_margin < t.margin)) break;
        if (tok != greedy[s]) {
            failf("%s greedy step %d: token %d, golden %d (margin %.3g)", what, s, tok, greedy[s], our_margin);
            break;
        }
        if (gold_greedy) check_row(what, n_pos + s, cur, gold_greedy + (size_t)s * V, V, t, st, false);
        st->greedy_checked = s + 1;
        if (s + 1 == n_greedy) break;
        q_batch_clear(&b);
        q_batch_add(&b, tok, n_pos + s, 0, true);
        if (q_decode(c, &b, &err) != Q_OK) fail_msg("%s: decode: %s", what, err.msg);
        cur = q_get_logits_ith(c, 0);
    }
    free(last);
    q_batch_free(&b);
    q_context_free(c);
    free(gold);
    free(gold_greedy);
    free(tokens);
    free(greedy);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Runs every case of every golden model directory for which want(dir) holds; fails the
 * cmocka test on any violation and when fewer than min_models models ran. */
static void golden_run_all(bool (*want)(const char *dir), int min_models) {
    q_error cerr;
#if defined(__x86_64__)
    /* QUARREL_AVX512_EMULATE=1 (with QUARREL_CPU=avx512): the AVX-512 set's emulated
     * kernels on a CPU without AVX-512 (tests/avx512_emu_tables.h) */
    const char *emu = getenv("QUARREL_AVX512_EMULATE");
    if (emu && !strcmp(emu, "1") && avx512_emu_install()) printf("AVX-512 set: emulated kernels\n");
#endif
    if (q_cpu_check(&cerr) != Q_OK) {   /* a forced kernel set this machine lacks */
        printf("skip: %s\n", cerr.msg);
        skip();
    }
    printf("kernels: %s\n", q_cpu_isa_name(q_cpu_isa_best()));
    char path[2048];
    snprintf(path, sizeof path, "%s/golden", golden_shared_dir());
    DIR *d = opendir(path);
    if (!d) { printf("skip: no %s\n", path); skip(); }
    char *names[256];
    int n_names = 0;
    for (struct dirent *e; (e = readdir(d)) && n_names < 256;)
        if (e->d_name[0] != '.' && !strchr(e->d_name, '.')) names[n_names++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n_names, sizeof *names, cmp_str);
    int n_models = 0;
    printf("%-30s %-7s %10s %8s %9s %8s\n", "model/case", "mode", "worst rel", "bound", "bit-exact", "greedy");
    for (int k = 0; k < n_names; k++) {
        const char *dir = names[k];
        if (!want(dir)) { free(names[k]); continue; }
        char dpath[1024];
        snprintf(dpath, sizeof dpath, "%s/golden/%s", golden_shared_dir(), dir);
        DIR *cd = opendir(dpath);
        if (!cd) continue;
        char *cases[32];
        int n_cases = 0;
        for (struct dirent *e; (e = readdir(cd)) && n_cases < 32;) {
            size_t L = strlen(e->d_name);
            if (L > 5 && !strcmp(e->d_name + L - 5, ".json") && strcmp(e->d_name, "perplexity.json") &&
                strcmp(e->d_name, "embeddings.json"))
                cases[n_cases++] = strndup(e->d_name, L - 5);
        }
        closedir(cd);
        qsort(cases, (size_t)n_cases, sizeof *cases, cmp_str);
        q_model *m = NULL;
        for (int ci = 0; ci < n_cases; ci++) {
            snprintf(path, sizeof path, "%s/%s.json", dpath, cases[ci]);
            json_error_t je;
            json_t *js = json_load_file(path, JSON_ALLOW_NUL, &je);
            if (!js) fail_msg("%s: %s", path, je.text);
            const char *arch = json_string_value(json_object_get(js, "arch"));
            if (ci == 0) {
                if (strcmp(arch, "llama") && strcmp(arch, "granite")) {
                    printf("%-28s skip (arch %s)\n", dir, arch);
                    json_decref(js);
                    break;
                }
                snprintf(path, sizeof path, "%s/models/%s", golden_shared_dir(),
                         json_string_value(json_object_get(js, "model")));
                q_error err;
                q_status st = q_model_load(path, &m, &err);
                if (st == Q_ERR_UNSUPPORTED) {
                    printf("%-28s skip (%s)\n", dir, err.msg);
                    json_decref(js);
                    break;
                }
                if (st != Q_OK) fail_msg("%s: %s", path, err.msg);
                n_models++;
            }
            const tol t = tol_for(dir);
            for (int mode = 0; mode < 2; mode++) {
                mode_stats ms = { 0 };
                run_case(m, dir, cases[ci], js, mode == 1, t, &ms);
                char label[96];
                snprintf(label, sizeof label, "%s/%s", dir, cases[ci]);
                printf("%-30s %-7s %10.3g %8.0e %5d/%-3d %4d/%-3d\n", label, mode ? "single" : "batch",
                       ms.worst, t.bound, ms.n_exact, ms.n_pos, ms.greedy_checked, ms.greedy_len);
            }
            json_decref(js);
        }
        q_model_free(m);
        for (int ci = 0; ci < n_cases; ci++) free(cases[ci]);
        free(names[k]);
    }
    fflush(stdout);
    assert_true(n_models >= min_models);
    assert_int_equal(n_failures, 0);
}

#endif
