/* base.h — internal foundations shared by every module: invariant asserts, error
 * reporting, small helpers. Not part of the public API.
 *
 * Two tiers of errors:
 *   Q_ASSERT(cond)  a broken invariant (a bug in Quarrel): prints file:line and aborts,
 *                   in every build type.
 *   q_fail(err,..)  bad input: fills a q_error and returns its status for the caller to
 *                   propagate. `err` may be NULL. */
#ifndef QUARREL_CORE_BASE_H
#define QUARREL_CORE_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "quarrel/status.h"

#define Q_ASSERT(cond) \
    do { if (!(cond)) q_assert_fail(__FILE__, __LINE__, #cond); } while (0)
#define Q_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define Q_MIN(a, b) ((a) < (b) ? (a) : (b))
#define Q_MAX(a, b) ((a) > (b) ? (a) : (b))

_Noreturn void q_assert_fail(const char *file, int line, const char *expr);

/* Sets err (if non-NULL) to status s with a printf-style message; returns s. */
q_status q_fail(q_error *err, q_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears err to Q_OK. */
void q_error_clear(q_error *err);

/* Allocation that aborts on failure: for small internal structures whose failure
 * is not recoverable anyway. Large or input-sized buffers use malloc and q_fail. */
void *q_xmalloc(size_t n);
void *q_xcalloc(size_t n, size_t size);
void *q_xrealloc(void *p, size_t n);
char *q_xstrdup(const char *s);

#endif
