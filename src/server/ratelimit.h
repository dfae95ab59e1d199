/* ratelimit.h — token buckets for `quarrel serve`: requests and generated tokens per
 * minute per API key, and concurrent connections per client IP.
 *
 * A bucket holds up to one minute's allowance and refills continuously; a request
 * takes one token from its key's request bucket, and generated tokens are debited from
 * the token bucket after they exist (it may go negative: the next request then waits
 * until it is positive again). A refusal says how many seconds until a retry can
 * succeed (the Retry-After header).
 *
 * rl_table maps a name (key name, IP) to its buckets and connection count; it is
 * thread-safe (one mutex: every operation is a few arithmetic steps) and bounded:
 * when full, it drops the least recently touched entry whose buckets are full and which
 * holds no connection (such an entry is the same as no entry). Times are CLOCK_MONOTONIC
 * nanoseconds passed in by the caller, so tests control the clock. */
#ifndef QUARREL_SERVER_RATELIMIT_H
#define QUARREL_SERVER_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct rl_bucket {
    double  tokens;    /* available now (may be negative after a debit) */
    double  per_min;   /* refill rate and capacity; 0 = unlimited */
    int64_t t_ns;      /* time of the last update */
} rl_bucket;

void rl_bucket_init(rl_bucket *b, double per_min, int64_t now_ns);
/* Takes cost if the bucket holds it: returns 0; else the whole seconds (>= 1) until it will. */
int64_t rl_bucket_take(rl_bucket *b, double cost, int64_t now_ns);
/* Seconds until the bucket is positive (0 = now). */
int64_t rl_bucket_wait(rl_bucket *b, int64_t now_ns);
/* Removes cost unconditionally. */
void rl_bucket_debit(rl_bucket *b, double cost, int64_t now_ns);

typedef struct rl_table rl_table;

rl_table *rl_table_new(int32_t max_entries);
void      rl_table_free(rl_table *t);

/* Admits one request of `name` with limits rpm / tpm (0 = unlimited): returns 0 and
 * takes a request token, or the seconds to wait (nothing taken). A limit that changed
 * (keys file reloaded) applies from now on. */
int64_t rl_admit(rl_table *t, const char *name, int64_t rpm, int64_t tpm, int64_t now_ns);
/* Debits n generated tokens from name's token bucket. */
void rl_tokens(rl_table *t, const char *name, int64_t tpm, int64_t n, int64_t now_ns);

/* Connection slots per name (client IP): true and one more held if fewer than max
 * (0 = unlimited) are held; false also when the table is full of busy names (a flood of
 * distinct clients is refused rather than tracked without bound). Every true is paired
 * with one rl_conn_release. */
bool rl_conn_acquire(rl_table *t, const char *name, int32_t max, int64_t now_ns);
void rl_conn_release(rl_table *t, const char *name);

/* Entries currently tracked (for /metrics and tests). */
int32_t rl_table_size(rl_table *t);

#endif
