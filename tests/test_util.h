/* test_util.h — fixtures shared by the cmocka tests: where ../shared is, and a scratch
 * directory per test group (created in setup, removed with its contents in teardown).
 * Header-only: each test is one translation unit. */
#ifndef QUARREL_TESTS_TEST_UTIL_H
#define QUARREL_TESTS_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>

/* $QUARREL_SHARED (set by ctest), else ../shared relative to the working directory. */
static inline const char *test_shared_dir(void) {
    const char *s = getenv("QUARREL_SHARED");
    return s && *s ? s : "../shared";
}

/* The group's scratch directory, valid between test_tmpdir_setup and _teardown. */
static char test_tmp_dir[256];

/* Creates /tmp/quarrel-test-NAME-XXXXXX; 0 on success (cmocka group setup contract). */
static inline int test_tmpdir_setup(const char *name) {
    snprintf(test_tmp_dir, sizeof test_tmp_dir, "/tmp/quarrel-test-%s-XXXXXX", name);
    return mkdtemp(test_tmp_dir) ? 0 : -1;
}

static inline int test_tmpdir_teardown(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", test_tmp_dir);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
