/* test_keys.c — the API key store (src/server/keys.c) and the rate limiter
 * (src/server/ratelimit.c): key shape, verification through create / rotate (within
 * and past the grace period) / revoke / expiry, the file (round trip, mode 0600, atomic
 * replace, refusal of loose permissions and bad syntax, no secret in it), and token
 * buckets on a clock the test controls. The expected values are the rules themselves
 * (a minute's allowance, refill rate), not outputs of the code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <sys/stat.h>

#include "server/keys.h"
#include "server/ratelimit.h"
#include "test_util.h"

static int setup(void **state) { (void)state; return test_tmpdir_setup("keys"); }
static int teardown(void **state) { (void)state; return test_tmpdir_teardown(); }

static void test_key_shape_and_verify(void **state) {
    (void)state;
    keys_store ks = { 0 };
    char s1[KEYS_SECRET_LEN], s2[KEYS_SECRET_LEN];
    q_error err;
    assert_int_equal(keys_create(&ks, "ci", 60, 0, true, 0, 1000, s1, &err), Q_OK);
    assert_int_equal(keys_create(&ks, "web", 0, 500, false, 0, 1000, s2, &err), Q_OK);
    assert_int_equal(strlen(s1), 3 + 8 + 1 + 43);
    assert_memory_equal(s1, "qk-", 3);
    assert_string_not_equal(s1, s2);
    assert_ptr_equal(keys_verify(&ks, s1, 1001), keys_find(&ks, "ci"));
    assert_ptr_equal(keys_verify(&ks, s2, 1001), keys_find(&ks, "web"));
    /* one changed secret character, a truncated key, junk, and the empty string */
    char bad[KEYS_SECRET_LEN];
    strcpy(bad, s1);
    bad[20] = bad[20] == 'A' ? 'B' : 'A';
    assert_null(keys_verify(&ks, bad, 1001));
    bad[strlen(bad) - 1] = 0;
    assert_null(keys_verify(&ks, bad, 1001));
    assert_null(keys_verify(&ks, "Bearer x", 1001));
    assert_null(keys_verify(&ks, "", 1001));
    /* the id of one key with the secret of another */
    strcpy(bad, s1);
    memcpy(bad + 3, s2 + 3, 8);
    assert_null(keys_verify(&ks, bad, 1001));
    /* bad names and duplicates */
    assert_int_equal(keys_create(&ks, "ci", 0, 0, false, 0, 1000, s1, &err), Q_ERR_INVALID_ARG);
    assert_int_equal(keys_create(&ks, "a b", 0, 0, false, 0, 1000, s1, &err), Q_ERR_INVALID_ARG);
    assert_int_equal(keys_create(&ks, "", 0, 0, false, 0, 1000, s1, &err), Q_ERR_INVALID_ARG);
    assert_int_equal(keys_count_live(&ks), 2);
    free(ks.e);
}

static void test_rotate_revoke_expire(void **state) {
    (void)state;
    keys_store ks = { 0 };
    char old[KEYS_SECRET_LEN], neu[KEYS_SECRET_LEN], exp[KEYS_SECRET_LEN];
    q_error err;
    assert_int_equal(keys_create(&ks, "app", 0, 0, false, 0, 1000, old, &err), Q_OK);
    assert_int_equal(keys_rotate(&ks, "app", 3600, 2000, neu, &err), Q_OK);
    assert_string_not_equal(old, neu);
    assert_non_null(keys_verify(&ks, neu, 2001));
    assert_non_null(keys_verify(&ks, old, 2001));          /* within the grace period */
    assert_non_null(keys_verify(&ks, old, 2000 + 3599));
    assert_null(keys_verify(&ks, old, 2000 + 3600));       /* past it */
    assert_non_null(keys_verify(&ks, neu, 2000 + 3600));
    /* expiry */
    assert_int_equal(keys_create(&ks, "tmp", 0, 0, false, 5000, 1000, exp, &err), Q_OK);
    assert_non_null(keys_verify(&ks, exp, 4999));
    assert_null(keys_verify(&ks, exp, 5000));
    assert_int_equal(keys_create(&ks, "late", 0, 0, false, 999, 1000, exp, &err), Q_ERR_INVALID_ARG);
    /* revoke: both secrets stop at once */
    assert_int_equal(keys_rotate(&ks, "app", 3600, 3000, old, &err), Q_OK);
    assert_int_equal(keys_revoke(&ks, "app", 3001, &err), Q_OK);
    assert_null(keys_verify(&ks, old, 3002));
    assert_int_equal(keys_revoke(&ks, "app", 3002, &err), Q_ERR_INVALID_ARG);
    assert_int_equal(keys_rotate(&ks, "app", 10, 3003, old, &err), Q_ERR_INVALID_ARG);
    assert_int_equal(keys_revoke(&ks, "nobody", 3003, &err), Q_ERR_INVALID_ARG);
    assert_int_equal(keys_count_live(&ks), 1);
    free(ks.e);
}

static void write_file(const char *path, const char *text, mode_t mode) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static void test_file_round_trip_and_rules(void **state) {
    (void)state;
    char path[400], buf[4096];
    snprintf(path, sizeof path, "%s/sub/keys.json", test_tmp_dir);
    q_error err;
    keys_store *ks = NULL;
    assert_int_equal(keys_load(path, false, &ks, &err), Q_ERR_IO);   /* missing, not ok */
    assert_int_equal(keys_load(path, true, &ks, &err), Q_OK);
    assert_int_equal(ks->n, 0);
    char s1[KEYS_SECRET_LEN], s2[KEYS_SECRET_LEN];
    assert_int_equal(keys_create(ks, "ci", 60, 9000, true, 1900000000, 1000, s1, &err), Q_OK);
    assert_int_equal(keys_rotate(ks, "ci", 86400, 1500, s2, &err), Q_OK);
    assert_int_equal(keys_save(ks, path, &err), Q_OK);   /* creates sub/ */
    keys_free(ks);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    FILE *f = fopen(path, "r");
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    assert_null(strstr(buf, s1 + 12));   /* no secret part in the file */
    assert_null(strstr(buf, s2 + 12));
    assert_non_null(strstr(buf, "\"quarrel-keys\""));

    assert_int_equal(keys_load(path, false, &ks, &err), Q_OK);
    assert_int_equal(ks->n, 1);
    keys_entry *e = keys_find(ks, "ci");
    assert_non_null(e);
    assert_int_equal(e->rpm, 60);
    assert_int_equal(e->tpm, 9000);
    assert_true(e->admin);
    assert_int_equal(e->created, 1000);
    assert_int_equal(e->expires, 1900000000);
    assert_int_equal(e->previous_until, 1500 + 86400);
    assert_ptr_equal(keys_verify(ks, s2, 2000), e);
    assert_ptr_equal(keys_verify(ks, s1, 2000), e);   /* rotation grace survives the file */
    assert_null(keys_verify(ks, s1, 1500 + 86400));
    keys_free(ks);

    /* loose permissions: refused, with the fix in the message */
    chmod(path, 0644);
    assert_int_equal(keys_load(path, false, &ks, &err), Q_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "chmod 600"));
    chmod(path, 0600);

    /* bad syntax and bad fields: refused, naming the file */
    static const char *bad[] = {
        "{",
        "[]",
        "{\"format\":\"quarrel-keys\",\"version\":2,\"keys\":[]}",
        "{\"format\":\"quarrel-keys\",\"version\":1,\"keys\":[{\"name\":\"x\"}]}",
        "{\"format\":\"quarrel-keys\",\"version\":1,\"keys\":[{\"name\":\"x\",\"id\":\"0123456z\",\"salt\":\"00\",\"hash\":\"00\"}]}",
        "{\"format\":\"quarrel-keys\",\"version\":1,\"keys\":[{\"name\":\"x\",\"id\":\"01234567\","
        "\"salt\":\"00000000000000000000000000000000\","
        "\"hash\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"rpm\":-1}]}",
        "{\"format\":\"quarrel-keys\",\"version\":1,\"keys\":[{\"name\":\"x\",\"id\":\"01234567\","
        "\"salt\":\"00000000000000000000000000000000\","
        "\"hash\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"created\":\"yesterday\"}]}",
    };
    char bpath[400];
    snprintf(bpath, sizeof bpath, "%s/bad.json", test_tmp_dir);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(bpath, bad[i], 0600);
        ks = NULL;
        assert_int_equal(keys_load(bpath, false, &ks, &err), Q_ERR_FORMAT);
        assert_null(ks);
        assert_non_null(strstr(err.msg, "bad.json"));
    }
    /* a well-formed empty file is fine */
    write_file(bpath, "{\"format\":\"quarrel-keys\",\"version\":1,\"keys\":[]}", 0600);
    assert_int_equal(keys_load(bpath, false, &ks, &err), Q_OK);
    assert_int_equal(keys_count_live(ks), 0);
    keys_free(ks);
}

static void test_time_format(void **state) {
    (void)state;
    char b[32];
    keys_time_format(0, b, sizeof b);
    assert_string_equal(b, "1970-01-01T00:00:00Z");
    keys_time_format(1798761600, b, sizeof b);   /* 2027-01-01, by the calendar */
    assert_string_equal(b, "2027-01-01T00:00:00Z");
    int64_t t;
    assert_true(keys_time_parse("2027-01-01", &t));
    assert_int_equal(t, 1798761600);
    assert_true(keys_time_parse("2027-01-01T00:00:30Z", &t));
    assert_int_equal(t, 1798761630);
    assert_false(keys_time_parse("2027-01-01 junk", &t));
    assert_false(keys_time_parse("tomorrow", &t));
}

#define SEC 1000000000LL

static void test_bucket(void **state) {
    (void)state;
    rl_bucket b;
    rl_bucket_init(&b, 60, 0);   /* 60 per minute: one per second, a minute's burst */
    for (int i = 0; i < 60; i++) assert_int_equal(rl_bucket_take(&b, 1, 0), 0);
    assert_int_equal(rl_bucket_take(&b, 1, 0), 1);          /* empty: one second to the next */
    assert_int_equal(rl_bucket_take(&b, 1, SEC / 2), 1);    /* half refilled: still waits */
    assert_int_equal(rl_bucket_take(&b, 1, SEC), 0);
    assert_int_equal(rl_bucket_take(&b, 3, 2 * SEC), 2);    /* 1 in the bucket, 2 more seconds */
    assert_int_equal(rl_bucket_take(&b, 1, 1000 * SEC), 0); /* refill caps at 60 */
    assert_int_equal(rl_bucket_take(&b, 59, 1000 * SEC), 0);
    assert_int_equal(rl_bucket_take(&b, 1, 1000 * SEC), 1);
    /* debits may overdraw: the wait is until positive again */
    rl_bucket_init(&b, 600, 0);   /* 10 per second */
    rl_bucket_debit(&b, 650, 0);
    assert_int_equal(rl_bucket_wait(&b, 0), 5);              /* -50 at 10/s */
    assert_int_equal(rl_bucket_wait(&b, 5 * SEC + 1), 0);
    /* unlimited */
    rl_bucket_init(&b, 0, 0);
    for (int i = 0; i < 1000; i++) assert_int_equal(rl_bucket_take(&b, 1, 0), 0);
}

static void test_table(void **state) {
    (void)state;
    rl_table *t = rl_table_new(4);
    for (int i = 0; i < 3; i++) assert_int_equal(rl_admit(t, "ci", 3, 0, 0), 0);
    assert_true(rl_admit(t, "ci", 3, 0, 0) >= 1);            /* a burst over rpm */
    assert_int_equal(rl_admit(t, "web", 3, 0, 0), 0);         /* keys are separate */
    assert_int_equal(rl_admit(t, "ci", 3, 0, 20 * SEC), 0);   /* 20 s refill one */
    /* tokens per minute: admission waits while the token bucket is overdrawn */
    assert_int_equal(rl_admit(t, "gen", 0, 120, 0), 0);
    rl_tokens(t, "gen", 120, 180, 0);                         /* 60 over */
    assert_int_equal(rl_admit(t, "gen", 0, 120, 0), 30);      /* 60 tokens at 2/s */
    assert_int_equal(rl_admit(t, "gen", 0, 120, 31 * SEC), 0);
    /* connections per IP */
    assert_true(rl_conn_acquire(t, "10.0.0.1", 2, 0));
    assert_true(rl_conn_acquire(t, "10.0.0.1", 2, 0));
    assert_false(rl_conn_acquire(t, "10.0.0.1", 2, 0));
    rl_conn_release(t, "10.0.0.1");
    assert_true(rl_conn_acquire(t, "10.0.0.1", 2, 0));
    /* bounded: the table holds 4 names; idle (refilled, no connection) ones are dropped */
    assert_true(rl_table_size(t) <= 4);
    for (int i = 0; i < 50; i++) {
        char ip[32];
        snprintf(ip, sizeof ip, "192.168.0.%d", i);
        if (rl_conn_acquire(t, ip, 8, 1000 * SEC)) rl_conn_release(t, ip);
    }
    assert_true(rl_table_size(t) <= 4);
    /* the busy IP survived the churn: its two connections still count */
    assert_false(rl_conn_acquire(t, "10.0.0.1", 2, 1000 * SEC));
    rl_table_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_shape_and_verify),
        cmocka_unit_test(test_rotate_revoke_expire),
        cmocka_unit_test(test_file_round_trip_and_rules),
        cmocka_unit_test(test_time_format),
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
