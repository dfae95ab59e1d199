/* test_util.h — fixtures shared by the cmocka tests: where ../shared is, and a scratch
 * directory per test group (created in setup, removed with its contents in teardown).
 * Header-only: each test is one translation unit. */
#ifndef QUARREL_TESTS_TEST_UTIL_H
#define QUARREL_TESTS_TEST_UTIL_H

#include <stdint.h>
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

/* Test data: xorshift64, reproducible; a file seeds it once (test_rng_seed) or keeps the
 * default. */
static uint64_t test_rng_state = 0x9E3779B97F4A7C15ull;

static inline void test_rng_seed(uint64_t seed) { test_rng_state = seed ? seed : 0x9E3779B97F4A7C15ull; }

static inline uint64_t test_rng_next(void) {
    test_rng_state ^= test_rng_state << 13;
    test_rng_state ^= test_rng_state >> 7;
    test_rng_state ^= test_rng_state << 17;
    return test_rng_state;
}

/* Uniform in [-1, 1). */
static inline float test_frand(void) {
    return (float)((test_rng_next() >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

#endif
