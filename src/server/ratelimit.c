/* ratelimit.c — token buckets and the bounded, locked name table of ratelimit.h.
 * The table is a flat array searched linearly: it holds active API keys and client IPs
 * (hundreds, not millions) and every lookup is a few string compares next to an HTTP
 * request; the bound keeps a flood of distinct IPs from growing it. */
#include "server/ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"

enum { RL_NAME_MAX = 80 };

void rl_bucket_init(rl_bucket *b, double per_min, int64_t now_ns) {
    b->per_min = per_min;
    b->tokens = per_min;
    b->t_ns = now_ns;
}

static void refill(rl_bucket *b, int64_t now_ns) {
    if (now_ns > b->t_ns) {
        b->tokens = fmin(b->per_min, b->tokens + b->per_min * (double)(now_ns - b->t_ns) / 60e9);
        b->t_ns = now_ns;
    }
}

/* Whole seconds (>= 1) until the bucket holds `need`. */
static int64_t wait_for(const rl_bucket *b, double need) {
    const double s = (need - b->tokens) * 60.0 / b->per_min;
    return Q_MAX((int64_t)1, (int64_t)ceil(s));
}

int64_t rl_bucket_take(rl_bucket *b, double cost, int64_t now_ns) {
    if (b->per_min <= 0) return 0;
    refill(b, now_ns);
    if (b->tokens >= cost) {
        b->tokens -= cost;
        return 0;
    }
    return wait_for(b, Q_MIN(cost, b->per_min));   /* a cost above capacity waits for a full bucket */
}

int64_t rl_bucket_wait(rl_bucket *b, int64_t now_ns) {
    if (b->per_min <= 0) return 0;
    refill(b, now_ns);
    return b->tokens > 0 ? 0 : wait_for(b, nextafter(0.0, 1.0));
}

void rl_bucket_debit(rl_bucket *b, double cost, int64_t now_ns) {
    if (b->per_min <= 0) return;
    refill(b, now_ns);
    b->tokens -= cost;
}

typedef struct rl_entry {
    char      name[RL_NAME_MAX];
    rl_bucket req, tok;
    int32_t   conns;
    int64_t   touched;   /* a counter, for least-recently-touched eviction */
} rl_entry;

struct rl_table {
    pthread_mutex_t mu;
    rl_entry       *e;
    int32_t         n, cap;
    int64_t         clock;
};

rl_table *rl_table_new(int32_t max_entries) {
    Q_ASSERT(max_entries > 0);
    rl_table *t = q_xcalloc(1, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    t->cap = max_entries;
    t->e = q_xcalloc((size_t)max_entries, sizeof *t->e);
    return t;
}

void rl_table_free(rl_table *t) {
    if (!t) return;
    pthread_mutex_destroy(&t->mu);
    free(t->e);
    free(t);
}

static bool idle(rl_entry *e, int64_t now_ns) {
    if (e->conns) return false;
    refill(&e->req, now_ns);
    refill(&e->tok, now_ns);
    return e->req.tokens >= e->req.per_min && e->tok.tokens >= e->tok.per_min;
}

/* The entry for name, created (with full buckets) if absent; NULL when the table is
 * full of entries that carry state. Called with the lock held. */
static rl_entry *lookup(rl_table *t, const char *name, int64_t now_ns) {
    for (int32_t i = 0; i < t->n; i++)
        if (!strcmp(t->e[i].name, name)) {
            t->e[i].touched = ++t->clock;
            return &t->e[i];
        }
    if (t->n == t->cap) {
        int32_t victim = -1;
        for (int32_t i = 0; i < t->n; i++)
            if (idle(&t->e[i], now_ns) && (victim < 0 || t->e[i].touched < t->e[victim].touched)) victim = i;
        if (victim < 0) return NULL;
        t->e[victim] = t->e[--t->n];
    }
    rl_entry *e = &t->e[t->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->req.t_ns = e->tok.t_ns = now_ns;
    e->touched = ++t->clock;
    return e;
}

/* Applies a (possibly changed) limit: a new bucket starts full, a changed rate keeps
 * what is left, capped at the new capacity. */
static void set_limit(rl_bucket *b, int64_t per_min, int64_t now_ns) {
    if (b->per_min == (double)per_min) return;
    const bool fresh = b->per_min <= 0;
    b->per_min = (double)per_min;
    b->tokens = fresh ? b->per_min : Q_MIN(b->tokens, b->per_min);
    b->t_ns = now_ns;
}

int64_t rl_admit(rl_table *t, const char *name, int64_t rpm, int64_t tpm, int64_t now_ns) {
    if (rpm <= 0 && tpm <= 0) return 0;
    pthread_mutex_lock(&t->mu);
    int64_t wait = 1;
    rl_entry *e = lookup(t, name, now_ns);
    if (e) {
        set_limit(&e->req, rpm, now_ns);
        set_limit(&e->tok, tpm, now_ns);
        wait = rl_bucket_wait(&e->tok, now_ns);
        if (!wait) wait = rl_bucket_take(&e->req, 1.0, now_ns);
    }
    pthread_mutex_unlock(&t->mu);
    return wait;
}

void rl_tokens(rl_table *t, const char *name, int64_t tpm, int64_t n, int64_t now_ns) {
    if (tpm <= 0 || n <= 0) return;
    pthread_mutex_lock(&t->mu);
    rl_entry *e = lookup(t, name, now_ns);
    if (e) {
        set_limit(&e->tok, tpm, now_ns);
        rl_bucket_debit(&e->tok, (double)n, now_ns);
    }
    pthread_mutex_unlock(&t->mu);
}

bool rl_conn_acquire(rl_table *t, const char *name, int32_t max, int64_t now_ns) {
    pthread_mutex_lock(&t->mu);
    rl_entry *e = lookup(t, name, now_ns);
    const bool ok = e && (max <= 0 || e->conns < max);
    if (ok) e->conns++;
    pthread_mutex_unlock(&t->mu);
    return ok;
}

void rl_conn_release(rl_table *t, const char *name) {
    pthread_mutex_lock(&t->mu);
    for (int32_t i = 0; i < t->n; i++)
        if (!strcmp(t->e[i].name, name)) {
            Q_ASSERT(t->e[i].conns > 0);   /* a release without its acquire */
            t->e[i].conns--;
            break;
        }
    pthread_mutex_unlock(&t->mu);
}

int32_t rl_table_size(rl_table *t) {
    pthread_mutex_lock(&t->mu);
    const int32_t n = t->n;
    pthread_mutex_unlock(&t->mu);
    return n;
}
