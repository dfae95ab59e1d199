/* test_stop.c — src/runtime/stop.c: stop strings split across pushes are never
 * emitted, text that stops matching is released, the earliest stop string wins. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "runtime/stop.h"

/* Feeds pieces; returns everything emitted, concatenated. */
static void run(const char *const *stops, int n_stops, const char *const *pieces, int n, char *out,
                bool *hit) {
    q_stopper s;
    q_stopper_init(&s, stops, n_stops);
    out[0] = '\0';
    for (int i = 0; i < n && !s.hit; i++) {
        size_t k = q_stopper_push(&s, pieces[i], strlen(pieces[i]));
        strncat(out, s.held, k);
        q_stopper_consume(&s, k);
    }
    size_t k = q_stopper_finish(&s);
    strncat(out, s.held, k);
    *hit = s.hit;
    q_stopper_free(&s);
}

static void test_stop_split_across_pieces(void **state) {
    (void)state;
    const char *stops[] = { "User:" };
    const char *pieces[] = { "Hello", " there.\nUs", "er", ": more" };
    char out[256];
    bool hit;
    run(stops, 1, pieces, 4, out, &hit);
    assert_true(hit);
    assert_string_equal(out, "Hello there.\n");
}

static void test_partial_prefix_released(void **state) {
    (void)state;
    const char *stops[] = { "User:" };
    const char *pieces[] = { "a Us", "age note" };
    char out[256];
    bool hit;
    run(stops, 1, pieces, 2, out, &hit);
    assert_false(hit);
    assert_string_equal(out, "a Usage note");
    /* a held prefix at the very end is released by finish */
    const char *p2[] = { "end U" };
    run(stops, 1, p2, 1, out, &hit);
    assert_false(hit);
    assert_string_equal(out, "end U");
}

static void test_holdback_is_minimal_and_earliest_wins(void **state) {
    (void)state;
    const char *stops[] = { "###", "\n\n" };
    q_stopper s;
    q_stopper_init(&s, stops, 2);
    assert_int_equal(q_stopper_push(&s, "ab#", 3), 2);   /* "#" held */
    q_stopper_consume(&s, 2);
    assert_int_equal(q_stopper_push(&s, "x\n", 2), 2);   /* "#x" released, "\n" held */
    q_stopper_consume(&s, 2);
    assert_int_equal(q_stopper_push(&s, "\n###", 4), 0); /* "\n\n" starts at 0 */
    assert_true(s.hit);
    assert_int_equal(q_stopper_push(&s, "zz", 2), 0);
    q_stopper_free(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_split_across_pieces),
        cmocka_unit_test(test_partial_prefix_released),
        cmocka_unit_test(test_holdback_is_minimal_and_earliest_wins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
