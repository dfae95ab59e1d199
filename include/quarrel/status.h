/* status.h — the bad-input tier of Quarrel's two error tiers.
 *
 * Every library function that can fail on input (a file, a request, a frame) returns a
 * q_status and, when given a q_error, fills it with one line a person can act on.
 * Broken invariants are the other tier: they abort through Q_ASSERT (src/core/base.h).
 * The library never calls exit(). */
#ifndef QUARREL_STATUS_H
#define QUARREL_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum q_status {
    Q_OK = 0,
    Q_ERR_IO,           /* open/read/write/mmap failed */
    Q_ERR_FORMAT,       /* malformed input: a bad GGUF, bad JSON, bad template */
    Q_ERR_UNSUPPORTED,  /* well-formed but not handled: unknown type, arch, pre-tokenizer */
    Q_ERR_INVALID_ARG,  /* a caller passed something out of contract */
    Q_ERR_NOMEM,        /* allocation failed */
    Q_ERR_LIMIT,        /* a size, depth or count limit was hit */
    Q_STATUS_COUNT
} q_status;

typedef struct q_error {
    q_status status;
    char     msg[512];  /* NUL-terminated; empty when status == Q_OK */
} q_error;

/* Short stable name of a status ("ok", "io", "format", ...). Never NULL. */
const char *q_status_name(q_status s);

#ifdef __cplusplus
}
#endif
#endif
