/* test_template.c — src/template/: the chat-template interpreter.
 *
 * 1. Conformance: every case file in $QUARREL_SHARED/chat-templates (real model
 *    templates with the bytes Python jinja2 produced under transformers' settings) is
 *    rendered and compared byte for byte; error cases must fail, and those raised by
 *    raise_exception() must carry the same message.
 * 2. Semantics: small templates whose expected output was produced by Python jinja2
 *    3.1 (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, transformers'
 *    tojson), covering whitespace control, loop variables, slices, Undefined, tojson,
 *    float repr, string escapes and scoping.
 * 3. Limits: hostile templates fail cleanly (no hang, no crash). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "quarrel/template.h"
#include "template_cases.h"

static const struct tm fixed_now = { .tm_year = 2026 - 1900, .tm_mon = 0, .tm_mday = 15, .tm_wday = 4, .tm_yday = 14 };

static const char *shared_dir(void) {
    const char *s = getenv("QUARREL_SHARED");
    return s ? s : "../shared";
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Renders one case file; returns 1 when it conforms, printing the difference if not. */
static int run_case(const char *path, const char *name) {
    json_error_t jerr;
    json_t *c = json_load_file(path, 0, &jerr);
    if (!c) { fprintf(stderr, "%s: bad JSON: %s\n", name, jerr.text); return 0; }
    json_t *vars = json_object();
    json_object_set(vars, "messages", json_object_get(c, "messages"));
    json_object_set(vars, "tools", json_object_get(c, "tools"));
    json_object_set_new(vars, "documents", json_null());
    json_object_set(vars, "add_generation_prompt", json_object_get(c, "add_generation_prompt"));
    json_object_set(vars, "bos_token", json_object_get(c, "bos_token"));
    json_object_set(vars, "eos_token", json_object_get(c, "eos_token"));
    json_t *extra = json_object_get(c, "extra_context");
    if (json_is_object(extra)) json_object_update(vars, extra);
    const char *src = json_string_value(json_object_get(c, "template"));
    bool want_error = json_is_true(json_object_get(c, "expected_error"));
    const char *expected = json_string_value(json_object_get(c, "expected"));
    const char *want_msg = json_string_value(json_object_get(c, "error"));

    q_error err = { 0 };
    q_template *t = NULL;
    char *out = NULL;
    size_t out_len = 0;
    q_template_opts opts = { .now = &fixed_now };
    q_status s = q_template_compile(src, strlen(src), &t, &err);
    if (s == Q_OK) s = q_template_render(t, vars, &opts, &out, &out_len, &err);
    int ok = 0;
    if (want_error) {
        ok = s != Q_OK;
        /* Only TemplateError messages come from the template itself. */
        if (ok && want_msg && !strncmp(want_msg, "TemplateError: ", 15)) ok = !strcmp(err.msg, want_msg);
        if (!ok) fprintf(stderr, "FAIL %s: expected error '%s', got %s '%s'\n", name, want_msg ? want_msg : "",
                         s == Q_OK ? "success" : "error", s == Q_OK ? "" : err.msg);
    } else if (s != Q_OK) {
        fprintf(stderr, "FAIL %s: %s\n", name, err.msg);
    } else if (!expected || out_len != strlen(expected) || memcmp(out, expected, out_len)) {
        size_t i = 0;
        while (expected && i < out_len && expected[i] && out[i] == expected[i]) i++;
        fprintf(stderr, "FAIL %s: output differs at byte %zu\n  got:      \"%.80s\"\n  expected: \"%.80s\"\n", name, i,
                out + i, expected ? expected + i : "");
    } else {
        ok = 1;
    }
    free(out);
    q_template_free(t);
    json_decref(vars);
    json_decref(c);
    return ok;
}

static void test_conformance_cases(void **state) {
    (void)state;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/chat-templates", shared_dir());
    DIR *d = opendir(dir);
    if (!d) { fprintf(stderr, "no case directory %s\n", dir); fail(); }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json") || !strstr(e->d_name, "--")) continue;
        if (n == cap) { cap = cap ? cap * 2 : 512; names = realloc(names, cap * sizeof *names); }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, name_cmp);
    int pass = 0;
    for (size_t i = 0; i < n; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        pass += run_case(path, names[i]);
        free(names[i]);
    }
    free(names);
    printf("chat-template cases: %d / %zu conform\n", pass, n);
    assert_true(n >= 300);
    assert_int_equal(pass, (int)n);
}

/* ---- semantics, expectations from Python jinja2 ------------------------------------ */
static char *render_str(const char *src, const char *vars_json, q_status *st, q_error *err) {
    json_t *vars = vars_json ? json_loads(vars_json, 0, NULL) : json_object();
    assert_non_null(vars);
    q_template *t = NULL;
    char *out = NULL;
    q_template_opts opts = { .now = &fixed_now };
    *st = q_template_compile(src, strlen(src), &t, err);
    if (*st == Q_OK) *st = q_template_render(t, vars, &opts, &out, NULL, err);
    q_template_free(t);
    json_decref(vars);
    return out;
}

static void test_semantics(void **state) {
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof template_semantic_cases / sizeof template_semantic_cases[0]; i++) {
        const template_case *c = &template_semantic_cases[i];
        q_error err = { 0 };
        q_status st;
        char *out = render_str(c->src, c->vars, &st, &err);
        if (c->expected_error) {
            if (st == Q_OK) { fprintf(stderr, "FAIL #%zu %s: expected an error, got \"%s\"\n", i, c->src, out); failures++; }
            else if (c->expected && !strstr(err.msg, c->expected)) {
                fprintf(stderr, "FAIL #%zu %s: error \"%s\", expected \"%s\"\n", i, c->src, err.msg, c->expected);
                failures++;
            }
        } else if (st != Q_OK) {
            fprintf(stderr, "FAIL #%zu %s: %s\n", i, c->src, err.msg);
            failures++;
        } else if (strcmp(out, c->expected)) {
            fprintf(stderr, "FAIL #%zu %s:\n  got      \"%s\"\n  expected \"%s\"\n", i, c->src, out, c->expected);
            failures++;
        }
        free(out);
    }
    assert_int_equal(failures, 0);
}

static void expect_failure(const char *src, q_status want) {
    q_error err = { 0 };
    q_status st;
    char *out = render_str(src, NULL, &st, &err);
    if (st != want) fprintf(stderr, "%s: status %d (%s), want %d\n", src, st, err.msg, want);
    assert_int_equal(st, want);
    assert_null(out);
    assert_true(err.msg[0] != 0);
}

static void test_limits(void **state) {
    (void)state;
    expect_failure("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", Q_ERR_LIMIT);
    expect_failure("{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(10) %}{% endfor %}{% endfor %}{% endfor %}", Q_ERR_LIMIT);
    expect_failure("{{ 'x' * 100000000000 }}", Q_ERR_LIMIT);
    expect_failure("{{ range(100000000000) }}", Q_ERR_LIMIT);
    expect_failure("{% set ns = namespace(x=[]) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}", Q_ERR_LIMIT);
    /* A 500-filter chain exceeds the evaluation depth: refused, not a stack overflow. */
    static char chain[8192];
    size_t cn = (size_t)snprintf(chain, sizeof chain, "{{ x");
    for (int i = 0; i < 500; i++) cn += (size_t)snprintf(chain + cn, sizeof chain - cn, "|trim");
    snprintf(chain + cn, sizeof chain - cn, " }}");
    expect_failure(chain, Q_ERR_LIMIT);
    expect_failure("{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", Q_ERR_LIMIT);
    /* Heavy work per step within every other limit still ends at the time budget. */
    {
        const char *slow = "{% set s = 'a' * 8000000 %}{% for i in range(1000000) %}{{ s.count('b') }}{% endfor %}";
        q_template *t = NULL;
        q_error e = { 0 };
        char *out = NULL;
        assert_int_equal(q_template_compile(slow, strlen(slow), &t, &e), Q_OK);
        q_template_opts o = { .max_seconds = 0.5 };
        assert_int_equal(q_template_render(t, NULL, &o, &out, NULL, &e), Q_ERR_LIMIT);
        assert_non_null(strstr(e.msg, "TimeoutError"));
        q_template_free(t);
    }
    /* Unsupported constructs name themselves and their place. */
    q_error err = { 0 };
    q_template *t = NULL;
    const char *src = "hello\n{% include 'x.j2' %}";
    assert_int_equal(q_template_compile(src, strlen(src), &t, &err), Q_ERR_UNSUPPORTED);
    assert_true(q_template_error_is_unsupported(&err));
    assert_non_null(strstr(err.msg, "include"));
    assert_non_null(strstr(err.msg, "line 2"));
    /* Deep nesting is refused, not a stack overflow. */
    char deep[4000];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof deep, "{{ ");
    for (int i = 0; i < 1000; i++) deep[n++] = '(';
    deep[n++] = '1';
    for (int i = 0; i < 1000; i++) deep[n++] = ')';
    n += (size_t)snprintf(deep + n, sizeof deep - n, " }}");
    assert_int_equal(q_template_compile(deep, n, &t, &err), Q_ERR_FORMAT);
}

static void test_chat_apply(void **state) {
    (void)state;
    json_t *msgs = json_loads("[{\"role\":\"user\",\"content\":\"Hi\"}]", 0, NULL);
    char *out = NULL;
    q_error err = { 0 };
    const char *tmpl = "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}"
                       "{% if add_generation_prompt %}[assistant]{% endif %}{{ tools is none }}{{ documents is none }}";
    assert_int_equal(q_chat_apply(tmpl, msgs, NULL, "<s>", "</s>", true, NULL, NULL, &out, NULL, &err), Q_OK);
    assert_string_equal(out, "<s>[user]Hi[assistant]TrueTrue");
    free(out);
    assert_int_equal(q_chat_apply_chatml(msgs, true, &out, NULL, &err), Q_OK);
    assert_string_equal(out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    free(out);
    assert_int_equal(q_chat_apply("{{ raise_exception('no ' ~ messages[0].role) }}", msgs, NULL, NULL, NULL, true, NULL,
                                  NULL, &out, NULL, &err), Q_ERR_FORMAT);
    assert_string_equal(err.msg, "TemplateError: no user");
    json_decref(msgs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_semantics),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_chat_apply),
        cmocka_unit_test(test_conformance_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
