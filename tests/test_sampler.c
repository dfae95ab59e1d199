/* test_sampler.c — src/runtime/sampler.c against facts computed by hand on small
 * distributions: which candidates each stage keeps, the renormalized probabilities, the
 * penalty formula, greedy ties, seed determinism, and draw frequencies. */
#include <math.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "quarrel/quarrel.h"

/* p = [0.5, 0.3, 0.15, 0.05] as logits (log p). */
static const float P4[4] = { 0.5f, 0.3f, 0.15f, 0.05f };
static float L4[4];

static q_sampler_params neutral(void) {
    q_sampler_params p = q_sampler_default_params();
    p.temp = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.typical_p = 1.0f;
    p.penalty_repeat = 1.0f;
    return p;
}

static int setup(void **state) {
    (void)state;
    for (int i = 0; i < 4; i++) L4[i] = logf(P4[i]);
    return 0;
}

/* Surviving ids (in the sampler's order) must equal want[0..n). */
static void expect_set(q_sampler_params p, const float *logits, int nv, const q_token *want, int n) {
    q_sampler *s = q_sampler_new(&p, nv);
    q_token ids[16];
    float probs[16];
    const int32_t got = q_sampler_candidates(s, logits, ids, probs, 16);
    assert_int_equal(got, n);
    for (int i = 0; i < n; i++) assert_int_equal(ids[i], want[i]);
    q_sampler_free(s);
}

static void test_neutral_keeps_all(void **state) {
    (void)state;
    const q_token all[4] = { 0, 1, 2, 3 };
    expect_set(neutral(), L4, 4, all, 4);
    q_sampler_params p = neutral();
    q_sampler *s = q_sampler_new(&p, 4);
    float probs[4];
    q_sampler_candidates(s, L4, NULL, probs, 4);
    for (int i = 0; i < 4; i++) assert_float_equal(probs[i], P4[i], 1e-6);
    q_sampler_free(s);
}

static void test_top_k(void **state) {
    (void)state;
    q_sampler_params p = neutral();
    p.top_k = 1;
    for (uint64_t seed = 0; seed < 20; seed++) {   /* top-k 1 is argmax whatever the draw */
        p.seed = seed;
        q_sampler *s = q_sampler_new(&p, 4);
        assert_int_equal(q_sampler_sample(s, L4), 0);
        q_sampler_free(s);
    }
    p.top_k = 3;
    const q_token want[3] = { 0, 1, 2 };
    expect_set(p, L4, 4, want, 3);
}

/* Reference order for the large-vocabulary check: logit descending, ties by id. */
typedef struct ref_cand {
    float   logit;
    q_token id;
} ref_cand;
static int ref_cmp(const void *a, const void *b) {
    const ref_cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Top-k over a realistic vocabulary (32000) keeps exactly the k first ids of a full sort,
 * in order, with many tied logits (values on a coarse grid), for k from 1 past the
 * vocabulary: the partial selection must not change which tokens survive or their order. */
static void test_top_k_large_vocab(void **state) {
    (void)state;
    enum { NV = 32000 };
    static float logits[NV];
    static ref_cand ref[NV];
    static q_token ids[NV];
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < NV; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        logits[i] = (float)(int)(x % 4001) * 0.005f - 10.0f;   /* ~8 ids share each value */
        ref[i] = (ref_cand){ logits[i], i };
    }
    qsort(ref, NV, sizeof *ref, ref_cmp);
    const int32_t ks[] = { 1, 2, 40, 100, NV / 4 - 1, NV / 4, NV - 1, NV, NV + 5 };
    for (size_t t = 0; t < sizeof ks / sizeof *ks; t++) {
        q_sampler_params p = neutral();
        p.top_k = ks[t];
        q_sampler *s = q_sampler_new(&p, NV);
        const int32_t got = q_sampler_candidates(s, logits, ids, NULL, NV);
        assert_int_equal(got, ks[t] < NV ? ks[t] : NV);
        for (int32_t i = 0; i < got; i++) assert_int_equal(ids[i], ref[i].id);
        q_sampler_free(s);
    }
}

static void test_top_p(void **state) {
    (void)state;
    q_sampler_params p = neutral();
    p.top_p = 0.75f;   /* 0.5 < 0.75 <= 0.5 + 0.3 */
    const q_token two[2] = { 0, 1 };
    expect_set(p, L4, 4, two, 2);
    q_sampler *s = q_sampler_new(&p, 4);
    float probs[2];
    q_sampler_candidates(s, L4, NULL, probs, 2);
    assert_float_equal(probs[0], 0.5 / 0.8, 1e-6);   /* renormalized over the kept set */
    assert_float_equal(probs[1], 0.3 / 0.8, 1e-6);
    q_sampler_free(s);
    p.top_p = 0.9f;    /* 0.8 < 0.9 <= 0.95 */
    const q_token three[3] = { 0, 1, 2 };
    expect_set(p, L4, 4, three, 3);
}

static void test_min_p(void **state) {
    (void)state;
    q_sampler_params p = neutral();
    p.min_p = 0.2f;    /* keep p >= 0.1 */
    const q_token three[3] = { 0, 1, 2 };
    expect_set(p, L4, 4, three, 3);
    p.min_p = 0.5f;    /* keep p >= 0.25 */
    const q_token two[2] = { 0, 1 };
    expect_set(p, L4, 4, two, 2);
}

/* H = 1.1422 nats; |-ln p - H| = 0.449, 0.062, 0.755, 1.853 -> rank 1, 0, 2, 3. */
static void test_typical_p(void **state) {
    (void)state;
    q_sampler_params p = neutral();
    p.typical_p = 0.5f;   /* 0.3 (id 1) + 0.5 (id 0) reaches 0.5 */
    q_sampler *s = q_sampler_new(&p, 4);
    q_token ids[4];
    assert_int_equal(q_sampler_candidates(s, L4, ids, NULL, 4), 2);
    assert_true((ids[0] == 0 && ids[1] == 1) || (ids[0] == 1 && ids[1] == 0));
    q_sampler_free(s);
    p.typical_p = 0.2f;
    const q_token one[1] = { 1 };
    expect_set(p, L4, 4, one, 1);
}

static void test_greedy_ties_and_bias(void **state) {
    (void)state;
    q_sampler_params p = neutral();
    p.temp = 0.0f;
    const float tie[4] = { 1.0f, 3.0f, 3.0f, 2.0f };
    q_sampler *s = q_sampler_new(&p, 4);
    assert_int_equal(q_sampler_sample(s, tie), 1);   /* lowest id among equal maxima */
    q_sampler_free(s);
    const q_logit_bias b = { 3, 10.0f };
    p.logit_bias = &b;
    p.n_logit_bias = 1;
    s = q_sampler_new(&p, 4);
    assert_int_equal(q_sampler_sample(s, tie), 3);
    q_sampler_free(s);
}

/* repeat 2, freq 0.5, presence 0.25 over history [0, 1, 0]:
 *   id 0 (count 2):  2 / 2 - (2 * 0.5 + 0.25) = -0.25
 *   id 1 (count 1): -2 * 2 - (1 * 0.5 + 0.25) = -4.75
 *   ids 2, 3 unchanged: 1, 0.5 */
static void test_penalties(void **state) {
    (void)state;
    const float lg[4] = { 2.0f, -2.0f, 1.0f, 0.5f };
    const float want[4] = { -0.25f, -4.75f, 1.0f, 0.5f };
    q_sampler_params p = neutral();
    p.penalty_last_n = 8;
    p.penalty_repeat = 2.0f;
    p.penalty_freq = 0.5f;
    p.penalty_present = 0.25f;
    q_sampler *s = q_sampler_new(&p, 4);
    q_sampler_accept(s, 0);
    q_sampler_accept(s, 1);
    q_sampler_accept(s, 0);
    q_token ids[4];
    float probs[4];
    assert_int_equal(q_sampler_candidates(s, lg, ids, probs, 4), 4);
    double z = 0;
    for (int i = 0; i < 4; i++) z += exp(want[i]);
    for (int i = 0; i < 4; i++) assert_float_equal(probs[i], exp(want[ids[i]]) / z, 1e-6);
    assert_int_equal(ids[0], 2);
    q_sampler_free(s);

    /* window of 2: after [0, 1, 2] only 1 and 2 are penalized */
    p.penalty_last_n = 2;
    p.penalty_freq = p.penalty_present = 0.0f;
    p.temp = 0.0f;
    s = q_sampler_new(&p, 4);
    q_sampler_accept(s, 0);
    q_sampler_accept(s, 1);
    q_sampler_accept(s, 2);
    const float lg2[4] = { 1.0f, 1.9f, 1.95f, 0.0f };   /* 1.9 / 2 and 1.95 / 2 fall below 1.0 */
    assert_int_equal(q_sampler_sample(s, lg2), 0);
    q_sampler_free(s);
}

static void test_seed_determinism_and_frequencies(void **state) {
    (void)state;
    q_sampler_params p = neutral();
    p.seed = 1234;
    q_sampler *a = q_sampler_new(&p, 4), *b = q_sampler_new(&p, 4);
    int counts[4] = { 0 };
    q_token first[64];
    enum { N = 20000 };
    for (int i = 0; i < N; i++) {
        const q_token ta = q_sampler_sample(a, L4), tb = q_sampler_sample(b, L4);
        assert_int_equal(ta, tb);
        if (i < 64) first[i] = ta;
        counts[ta]++;
    }
    for (int i = 0; i < 4; i++) assert_true(fabs(counts[i] / (double)N - P4[i]) < 0.015);
    q_sampler_reset(a);   /* reseeds: the same sequence again */
    for (int i = 0; i < 64; i++) assert_int_equal(q_sampler_sample(a, L4), first[i]);
    q_sampler_free(a);
    q_sampler_free(b);
    p.seed = 99;
    q_sampler *c = q_sampler_new(&p, 4);
    int same = 0;
    for (int i = 0; i < 64; i++) same += q_sampler_sample(c, L4) == first[i];
    assert_true(same < 64);
    q_sampler_free(c);
}

static void test_temperature(void **state) {
    (void)state;
    q_sampler_params p = neutral();
    p.temp = 0.5f;   /* p_i proportional to P4_i^2 */
    q_sampler *s = q_sampler_new(&p, 4);
    float probs[4];
    q_sampler_candidates(s, L4, NULL, probs, 4);
    double z = 0;
    for (int i = 0; i < 4; i++) z += P4[i] * P4[i];
    for (int i = 0; i < 4; i++) assert_float_equal(probs[i], P4[i] * P4[i] / z, 1e-6);
    q_sampler_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_neutral_keeps_all),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_k_large_vocab),
        cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_typical_p),
        cmocka_unit_test(test_greedy_ties_and_bias),
        cmocka_unit_test(test_penalties),
        cmocka_unit_test(test_seed_determinism_and_frequencies),
        cmocka_unit_test(test_temperature),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
