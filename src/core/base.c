/* base.c — assert, error and allocation helpers declared in base.h. */
#include "core/base.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[Q_STATUS_COUNT] = {
    [Q_OK]              = "ok",
    [Q_ERR_IO]          = "io",
    [Q_ERR_FORMAT]      = "format",
    [Q_ERR_UNSUPPORTED] = "unsupported",
    [Q_ERR_INVALID_ARG] = "invalid-argument",
    [Q_ERR_NOMEM]       = "out-of-memory",
    [Q_ERR_LIMIT]       = "limit",
};

const char *q_status_name(q_status s) {
    return (unsigned)s < Q_STATUS_COUNT ? status_names[s] : "unknown";
}

void q_assert_fail(const char *file, int line, const char *expr) {
    fprintf(stderr, "quarrel: invariant broken at %s:%d: %s\n", file, line, expr);
    fflush(stderr);
    abort();
}

q_status q_fail(q_error *err, q_status s, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = s;
    }
    return s;
}

void q_error_clear(q_error *err) {
    if (err) { err->status = Q_OK; err->msg[0] = '\0'; }
}

void *q_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) q_assert_fail(__FILE__, __LINE__, "out of memory");
    return p;
}

void *q_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) q_assert_fail(__FILE__, __LINE__, "out of memory");
    return p;
}

void *q_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) q_assert_fail(__FILE__, __LINE__, "out of memory");
    return q;
}

char *q_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = q_xmalloc(n);
    memcpy(d, s, n);
    return d;
}
