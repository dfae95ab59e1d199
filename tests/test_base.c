/* test_base.c — src/core/base.c: error reporting helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "core/base.h"

static void test_fail_fills_error(void **state) {
    (void)state;
    q_error e;
    q_error_clear(&e);
    assert_int_equal(e.status, Q_OK);
    assert_int_equal(q_fail(&e, Q_ERR_FORMAT, "bad %s at %d", "thing", 42), Q_ERR_FORMAT);
    assert_int_equal(e.status, Q_ERR_FORMAT);
    assert_string_equal(e.msg, "bad thing at 42");
    assert_int_equal(q_fail(NULL, Q_ERR_IO, "ignored"), Q_ERR_IO);
}

static void test_status_names(void **state) {
    (void)state;
    for (int s = 0; s < Q_STATUS_COUNT; s++) assert_non_null(q_status_name((q_status)s));
    assert_string_equal(q_status_name(Q_OK), "ok");
    assert_string_equal(q_status_name((q_status)999), "unknown");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_fills_error),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
