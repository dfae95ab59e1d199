/* scheduler.c — continuous batching for `quarrel serve`: ONE engine thread owns the
 * context and runs every active request (a "slot", sequence id = slot index) through the
 * same q_decode each step. A step holds one decode token per generating slot plus prompt
 * chunks of prefilling slots, up to the batch size. Jobs wait in a bounded queue with two
 * priority classes (interactive first, FIFO within a class) and join between steps; a
 * cancelled, timed-out or failed job leaves its slot and its KV cells are removed.
 *
 * Prefix cache: a radix tree of token prefixes (server/prefix_tree.h) shared by all
 * slots. The tree's cells carry a sequence id of their own (cache_seq = n_slots, so the
 * context has n_slots + 1 sequences), which keeps them alive after their request ends and
 * beyond the number of slots. A job's slot shares the cells of its prompt's longest
 * cached prefix (a cell carries a set of sequences: nothing is copied or recomputed) and
 * locks that path; only the rest of the prompt is decoded. Once its prompt is decoded
 * the job inserts it (so concurrent jobs with the same system prompt share it), and a job
 * that ends normally inserts everything it decoded (prompt + generated). Positions are
 * depths, so a cached path is valid for any sequence starting with its tokens. Where the
 * tree already holds some of those tokens (another job cached them meanwhile) the slot
 * takes the tree's cells and frees its own: every K/V row is computed the same way in any
 * batch and placement, so the two are bit-identical, and so are the logits and the text
 * at temperature 0 with and without the cache. Size: at most cache_max cached tokens,
 * least recently used unlocked leaves evicted first; before each step, if the batch
 * needs more cells than are free, unlocked leaves are evicted to make room (enough
 * always are: locked paths are cells of running sequences, which fit the cache by
 * construction), so caching never refuses or fails a request. The tree belongs to the
 * scheduler: a new model or instance means a new scheduler and an empty tree.
 *
 * Not here: HTTP, JSON. Memory: the scheduler holds one reference to each queued or
 * running job; the slot's sampler, detokenizer stream and stopper are its own. */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <time.h>

#include "core/base.h"
#include "runtime/kv_cache.h"
#include "runtime/stop.h"
#include "server/prefix_tree.h"
#include "server/server.h"

double srv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *const finish_names[SRV_FINISH_COUNT] = {
    [SRV_FINISH_NONE] = "none",           [SRV_FINISH_STOP] = "stop",
    [SRV_FINISH_LENGTH] = "length",       [SRV_FINISH_CANCELLED] = "cancelled",
    [SRV_FINISH_TIMEOUT] = "timeout",     [SRV_FINISH_ERROR] = "error",
};

const char *srv_finish_name(srv_finish f) { return finish_names[f]; }

/* ---- jobs ---- */

srv_job *srv_job_new(void) {
    srv_job *j = calloc(1, sizeof *j);
    Q_ASSERT(j);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    atomic_init(&j->cancel, false);
    j->refs = 1;
    j->notify_fd = -1;
    j->n_logprobs = -1;
    j->sp = q_sampler_default_params();
    return j;
}

void srv_job_retain(srv_job *j) {
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
}

void srv_job_release(srv_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    const int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0) return;
    q_tokens_free(&j->prompt);
    for (int i = 0; i < j->n_stops; i++) free(j->stops[i]);
    free(j->out);
    free(j->toks);
    free(j->top_ids);
    free(j->top_lps);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

srv_finish srv_job_read(srv_job *j, srv_cursor *cur, srv_chunk *c, double until) {
    memset(c, 0, sizeof *c);
    pthread_mutex_lock(&j->mu);
    j->text_waiters++;
    while (j->out_len == cur->text && j->n_toks == cur->toks && j->finish == SRV_FINISH_NONE) {
        const double now = srv_now();
        if (now >= until) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        const double d = until - now;
        ts.tv_sec += (time_t)d;
        ts.tv_nsec += (long)((d - (double)(time_t)d) * 1e9);
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
    }
    j->text_waiters--;
    c->text_off = cur->text;
    c->len = j->out_len - cur->text;
    c->text = q_xmalloc(c->len + 1);
    if (c->len) memcpy(c->text, j->out + cur->text, c->len);
    c->text[c->len] = 0;
    cur->text = j->out_len;
    c->n_top = j->n_logprobs > 0 ? j->n_logprobs : 0;
    c->n_toks = j->n_toks - cur->toks;
    if (c->n_toks) {
        c->toks = q_xmalloc(c->n_toks * sizeof *c->toks);
        memcpy(c->toks, j->toks + cur->toks, c->n_toks * sizeof *c->toks);
        if (c->n_top) {
            const size_t k = (size_t)c->n_top;
            c->top_ids = q_xmalloc(c->n_toks * k * sizeof *c->top_ids);
            c->top_lps = q_xmalloc(c->n_toks * k * sizeof *c->top_lps);
            memcpy(c->top_ids, j->top_ids + cur->toks * k, c->n_toks * k * sizeof *c->top_ids);
            memcpy(c->top_lps, j->top_lps + cur->toks * k, c->n_toks * k * sizeof *c->top_lps);
        }
    }
    cur->toks = j->n_toks;
    const srv_finish f = j->finish;
    pthread_mutex_unlock(&j->mu);
    return f;
}

void srv_chunk_free(srv_chunk *c) {
    free(c->text);
    free(c->toks);
    free(c->top_ids);
    free(c->top_lps);
    memset(c, 0, sizeof *c);
}

/* Wakes an event-loop reader (WebSocket); under j->mu. */
static void job_notify(srv_job *j) {
    if (j->notify_fd < 0) return;
    const uint64_t one = 1;
    ssize_t w = write(j->notify_fd, &one, sizeof one);
    (void)w;   /* a full eventfd counter already means "wake up" */
}

/* Under j->mu: appends text. */
static void job_text_add(srv_job *j, const char *s, size_t n) {
    if (j->out_len + n + 1 > j->out_cap) {
        j->out_cap = (j->out_len + n + 1) * 2;
        j->out = q_xrealloc(j->out, j->out_cap);
    }
    memcpy(j->out + j->out_len, s, n);
    j->out_len += n;
}

/* Engine side: records a sampled token (tok >= 0) with its logprobs (tops: the job's
 * n_logprobs alternatives) and/or appends released text, then wakes the readers. */
static void job_emit(srv_job *j, q_token tok, float lp, const q_token *top_ids, const float *top_lps,
                     const char *s, size_t n, double now) {
    if (n == 0 && tok < 0) return;
    pthread_mutex_lock(&j->mu);
    job_text_add(j, s, n);
    if (tok >= 0) {
        if (j->n_toks == j->toks_cap) {
            j->toks_cap = j->toks_cap ? j->toks_cap * 2 : 64;
            j->toks = q_xrealloc(j->toks, j->toks_cap * sizeof *j->toks);
            if (j->n_logprobs > 0) {
                const size_t k = (size_t)j->n_logprobs;
                j->top_ids = q_xrealloc(j->top_ids, j->toks_cap * k * sizeof *j->top_ids);
                j->top_lps = q_xrealloc(j->top_lps, j->toks_cap * k * sizeof *j->top_lps);
            }
        }
        j->toks[j->n_toks] = (srv_tok){ .id = tok, .logprob = lp, .text_end = j->out_len };
        if (j->n_logprobs > 0) {
            const size_t k = (size_t)j->n_logprobs;
            memcpy(j->top_ids + j->n_toks * k, top_ids, k * sizeof *top_ids);
            memcpy(j->top_lps + j->n_toks * k, top_lps, k * sizeof *top_lps);
        }
        j->n_toks++;
    }
    if (j->t_first == 0) j->t_first = now;
    job_notify(j);
    /* only streaming readers care about text; waking a whole-reply waiter per token would
     * cost a context switch per token on the engine's cores */
    if (j->text_waiters) pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* log-softmax of logits [n] at tok, and the k most probable ids with their logprobs
 * (most probable first, ties to the lower id). O(n * k), k <= SRV_MAX_TOP_LOGPROBS. */
static float logprobs_compute(const float *logits, int32_t n, q_token tok, int k, q_token *ids, float *lps) {
    float mx = logits[0];
    for (int32_t i = 1; i < n; i++) if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int32_t i = 0; i < n; i++) sum += exp((double)(logits[i] - mx));
    const float lse = mx + (float)log(sum);
    int have = 0;
    for (int32_t i = 0; i < n && k > 0; i++) {
        if (have == k && logits[i] <= logits[ids[k - 1]]) continue;
        int at = have < k ? have++ : k - 1;
        while (at > 0 && logits[ids[at - 1]] < logits[i]) { ids[at] = ids[at - 1]; at--; }
        ids[at] = i;
    }
    for (int i = 0; i < have; i++) lps[i] = logits[ids[i]] - lse;
    for (int i = have; i < k; i++) { ids[i] = -1; lps[i] = -INFINITY; }
    return logits[tok] - lse;
}

/* ---- scheduler ---- */

typedef enum slot_state { SLOT_FREE, SLOT_PREFILL, SLOT_GEN } slot_state;

typedef struct slot {
    slot_state      state;
    srv_job        *job;
    q_pos           n_past;       /* tokens in this sequence's cells */
    size_t          n_fed;        /* prompt tokens decoded so far */
    q_token         pending;      /* sampled, not yet decoded (SLOT_GEN) */
    int32_t         batch_idx;    /* index of this slot's logits row in the step, or -1 */
    q_sampler      *smp;
    q_detok_stream *ds;
    q_stopper       stop;
    q_token        *hist;         /* tokens whose K/V are in this sequence's cells, by position */
    size_t          n_hist, cap_hist;
    prefix_node    *node;         /* locked end of the slot's cached path (NULL: none) */
} slot;

struct srv_sched {
    const q_model *model;
    const q_vocab *vocab;
    q_context     *ctx;
    int            n_slots, slot_ctx, queue_size, n_batch;
    slot          *slots;
    /* prefix cache (engine thread only); tree is NULL when the cache is off */
    prefix_tree   *tree;
    q_kv_cache    *kv;            /* the context's cache, for cell-level holds */
    q_seq_id       cache_seq;     /* the sequence id the tree's cells carry */
    size_t         cache_max;     /* most cached tokens */
    int32_t       *cells, *own;   /* [slot_ctx] scratch: cells by position */
    long           cached_published;   /* tokens last added to the metrics gauge */
    q_batch        batch;

    pthread_mutex_t mu;           /* guards the queue, closing, n_waiting */
    pthread_cond_t  cv;
    srv_job        *head[SRV_PRIO_COUNT], *tail[SRV_PRIO_COUNT];
    int             n_waiting;
    bool            closing;
    double          drain_deadline;
    pthread_t       thread;
    bool            started;

    atomic_int      running;      /* published by the engine thread for metrics */
    atomic_int      waiting;
    atomic_int      kv_used;      /* cells held by running sequences */
    atomic_bool     alive;
};

/* ---- prefix cache (engine thread) ---- */

static q_seq_id slot_seq(const srv_sched *s, const slot *sl) { return (q_seq_id)(sl - s->slots); }

/* Eviction callback: the tree lets a cell go. An unlocked node's cells belong to no
 * running sequence, so this frees the cell. */
static void cache_cell_release(void *arg, int32_t cell) {
    srv_sched *s = arg;
    kv_cache_cell_seq_rm(s->kv, cell, s->cache_seq);
}

/* Moves the cached-tokens gauge to the tree's size. Called before a finishing job is
 * seen to end, so a client that reads /metrics after its reply sees its effect. The
 * gauge sums over schedulers: each adds its own change. */
static void cache_gauge(srv_sched *s) {
    const long cached = (long)prefix_tree_tokens(s->tree);
    if (cached != s->cached_published) srv_metrics_prefix_cached(cached - s->cached_published);
    s->cached_published = cached;
}

static void cache_evict(srv_sched *s, size_t n) {
    const size_t done = prefix_tree_evict(s->tree, n, cache_cell_release, s);
    if (done) srv_metrics_prefix_evicted((long)done);
    cache_gauge(s);
}

/* Shares the longest cached prefix of the prompt into the slot's (empty) sequence and
 * locks it; at most n - 1 tokens, since the last prompt token is decoded for its logits.
 * Returns the shared length. */
static size_t cache_attach(srv_sched *s, slot *sl, const q_tokens *p) {
    const size_t cap = p->n > 0 ? p->n - 1 : 0;
    const size_t n = prefix_tree_match(s->tree, p->ids, cap, s->cells, &sl->node);
    prefix_tree_lock(sl->node);
    for (size_t i = 0; i < n; i++) kv_cache_cell_seq_add(s->kv, s->cells[i], slot_seq(s, sl));
    return n;
}

/* Caches the slot's first n tokens (hist[0..n), decoded) and moves the slot's lock to
 * their path. Tokens the tree already had keep the tree's cells; the slot switches to
 * those (bit-identical K/V) and frees its duplicates. */
static void cache_insert(srv_sched *s, slot *sl, size_t n) {
    const q_seq_id seq = slot_seq(s, sl);
    Q_ASSERT(n <= (size_t)s->slot_ctx && n == sl->n_hist);
    kv_cache_seq_cells(s->kv, seq, (int32_t)n, s->own);
    memcpy(s->cells, s->own, n * sizeof *s->cells);
    prefix_node *end;
    const size_t have = prefix_tree_insert(s->tree, sl->hist, s->cells, n, &end);
    for (size_t i = 0; i < have; i++)
        if (s->cells[i] != s->own[i]) {
            kv_cache_cell_seq_add(s->kv, s->cells[i], seq);
            kv_cache_cell_seq_rm(s->kv, s->own[i], seq);
        }
    for (size_t i = have; i < n; i++) kv_cache_cell_seq_add(s->kv, s->own[i], s->cache_seq);
    prefix_tree_lock(end);
    prefix_tree_unlock(sl->node);
    sl->node = end;
}

/* Evicts down to cache_max cached tokens (locked paths excepted). */
static void cache_trim(srv_sched *s) {
    const size_t total = prefix_tree_tokens(s->tree);
    if (total > s->cache_max) cache_evict(s, total - s->cache_max);
    else cache_gauge(s);
}

static void slot_finish(srv_sched *s, slot *sl, srv_finish f, const char *err) {
    srv_job *j = sl->job;
    const double now = srv_now();
    if (f == SRV_FINISH_STOP || f == SRV_FINISH_LENGTH) {
        /* release whatever the detokenizer and stopper still hold */
        if (!sl->stop.hit) {
            size_t len;
            const char *rest = q_detok_stream_flush(sl->ds, &len);
            size_t k = q_stopper_push(&sl->stop, rest, len);
            if (!sl->stop.hit) k = q_stopper_finish(&sl->stop);
            job_emit(j, -1, 0, NULL, NULL, sl->stop.held, k, now);
        }
    }
    /* a normal end caches what it decoded; then the slot's own hold on every cell goes
     * (cells the tree holds stay), and the tree is trimmed to its limit */
    if (s->tree) {
        if (f == SRV_FINISH_STOP || f == SRV_FINISH_LENGTH) cache_insert(s, sl, sl->n_hist);
        prefix_tree_unlock(sl->node);
        sl->node = NULL;
    }
    q_kv_seq_rm(s->ctx, (q_seq_id)(sl - s->slots), -1, -1);
    if (s->tree) cache_trim(s);
    q_token *hist = sl->hist;
    const size_t cap_hist = sl->cap_hist;
    q_sampler_free(sl->smp);
    q_detok_stream_free(sl->ds);
    q_stopper_free(&sl->stop);
    /* the key pays for what was generated however the job ended, before anyone can see
     * the end (a client's next request then meets the debited bucket) */
    srv_guard_job_tokens(j);
    pthread_mutex_lock(&j->mu);
    j->finish = f;
    j->t_end = now;
    if (err) snprintf(j->err, sizeof j->err, "%.*s", (int)sizeof j->err - 1, err);
    job_notify(j);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    srv_job_release(j);
    memset(sl, 0, sizeof *sl);
    sl->state = SLOT_FREE;
    sl->hist = hist;
    sl->cap_hist = cap_hist;
}

/* Appends a token whose K/V this step writes at position n_hist. */
static void hist_push(slot *sl, q_token t) {
    if (sl->n_hist == sl->cap_hist) {
        sl->cap_hist = sl->cap_hist ? 2 * sl->cap_hist : 256;
        sl->hist = q_xrealloc(sl->hist, sl->cap_hist * sizeof *sl->hist);
    }
    sl->hist[sl->n_hist++] = t;
}

static void slot_start(srv_sched *s, slot *sl, srv_job *j) {
    q_token *hist = sl->hist;
    const size_t cap_hist = sl->cap_hist;
    memset(sl, 0, sizeof *sl);
    sl->hist = hist;
    sl->cap_hist = cap_hist;
    const size_t reused = s->tree ? cache_attach(s, sl, &j->prompt) : 0;
    if (s->tree) srv_metrics_prefix(reused);
    for (size_t i = 0; i < reused; i++) hist_push(sl, j->prompt.ids[i]);
    sl->n_past = (q_pos)reused;
    sl->n_fed = reused;
    sl->job = j;
    sl->state = SLOT_PREFILL;
    j->t_start = srv_now();   /* read by the HTTP side only after the job's end under j->mu */
    sl->smp = q_sampler_new(&j->sp, q_model_n_vocab(s->model));
    sl->ds = q_detok_stream_new(s->vocab, false);
    q_stopper_init(&sl->stop, (const char *const *)j->stops, j->n_stops);
    /* the prompt goes through the sampler history and the detokenizer stream (so the
     * first generated piece keeps its leading space, as `quarrel run` does) */
    for (size_t i = 0; i < j->prompt.n; i++) {
        q_sampler_accept(sl->smp, j->prompt.ids[i]);
        size_t len;
        (void)q_detok_stream_push(sl->ds, j->prompt.ids[i], &len);
    }
}

static srv_job *queue_pop(srv_sched *s) {
    for (int p = 0; p < SRV_PRIO_COUNT; p++) {
        srv_job *j = s->head[p];
        if (!j) continue;
        s->head[p] = j->next;
        if (!s->head[p]) s->tail[p] = NULL;
        j->next = NULL;
        s->n_waiting--;
        return j;
    }
    return NULL;
}

static void job_fail_unstarted(srv_job *j, srv_finish f, const char *err) {
    pthread_mutex_lock(&j->mu);
    j->finish = f;
    j->t_end = srv_now();
    snprintf(j->err, sizeof j->err, "%s", err);
    job_notify(j);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    srv_job_release(j);
}

static int active_count(const srv_sched *s) {
    int n = 0;
    for (int i = 0; i < s->n_slots; i++) n += s->slots[i].state != SLOT_FREE;
    return n;
}

/* Samples for a slot whose logits row is ready; finishes it or queues the token. */
static void slot_sample(srv_sched *s, slot *sl, double now) {
    srv_job *j = sl->job;
    if (j->max_tokens <= 0) { slot_finish(s, sl, SRV_FINISH_LENGTH, NULL); return; }   /* prompt only */
    const float *logits = q_get_logits_ith(s->ctx, sl->batch_idx);
    const q_token tok = q_sampler_sample(sl->smp, logits);
    q_sampler_accept(sl->smp, tok);
    pthread_mutex_lock(&j->mu);
    j->n_gen++;
    const long n_gen = j->n_gen;
    pthread_mutex_unlock(&j->mu);
    if (j->t_last_tok > 0) srv_metrics_inter_token(now - j->t_last_tok);
    j->t_last_tok = now;
    if (!j->ignore_eos && q_vocab_is_eog(s->vocab, tok)) { slot_finish(s, sl, SRV_FINISH_STOP, NULL); return; }
    float lp = 0;
    q_token top_ids[SRV_MAX_TOP_LOGPROBS];
    float top_lps[SRV_MAX_TOP_LOGPROBS];
    if (j->n_logprobs >= 0)
        lp = logprobs_compute(logits, q_model_n_vocab(s->model), tok, j->n_logprobs, top_ids, top_lps);
    size_t len;
    const char *piece = q_detok_stream_push(sl->ds, tok, &len);
    const size_t k = q_stopper_push(&sl->stop, piece, len);
    job_emit(j, tok, lp, top_ids, top_lps, sl->stop.held, k, now);
    q_stopper_consume(&sl->stop, k);
    if (sl->stop.hit) { slot_finish(s, sl, SRV_FINISH_STOP, NULL); return; }
    if (n_gen >= j->max_tokens || sl->n_past + 1 > s->slot_ctx) {
        slot_finish(s, sl, SRV_FINISH_LENGTH, NULL);
        return;
    }
    sl->pending = tok;
    sl->state = SLOT_GEN;
}

/* kv_used counts the cells of running sequences (a cell shared by two counts twice);
 * cells kept only for prefix reuse are free to take and are not counted. */
static void publish(srv_sched *s) {
    atomic_store(&s->running, active_count(s));
    long used = 0;
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i].state != SLOT_FREE) used += s->slots[i].n_past;
    atomic_store(&s->kv_used, (int)Q_MIN(used, (long)q_context_n_ctx(s->ctx)));
}

static void *engine_main(void *arg) {
    srv_sched *s = arg;
    for (;;) {
        /* admit: between steps, free slots take queued jobs */
        pthread_mutex_lock(&s->mu);
        for (;;) {
            for (int i = 0; i < s->n_slots && s->n_waiting > 0; i++)
                if (s->slots[i].state == SLOT_FREE) {
                    slot_start(s, &s->slots[i], queue_pop(s));
                }
            atomic_store(&s->waiting, s->n_waiting);
            /* a job counts as running from admission, before its first token is out */
            atomic_store(&s->running, active_count(s));
            if (active_count(s) > 0) break;
            if (s->closing) break;
            publish(s);
            pthread_cond_wait(&s->cv, &s->mu);
        }
        const bool closing = s->closing;
        const double drain_deadline = s->drain_deadline;
        pthread_mutex_unlock(&s->mu);
        if (closing && active_count(s) == 0) break;

        /* leave: cancelled, timed out, or past the shutdown grace */
        const double now = srv_now();
        for (int i = 0; i < s->n_slots; i++) {
            slot *sl = &s->slots[i];
            if (sl->state == SLOT_FREE) continue;
            if (atomic_load(&sl->job->cancel)) slot_finish(s, sl, SRV_FINISH_CANCELLED, "cancelled");
            else if (now >= sl->job->deadline) slot_finish(s, sl, SRV_FINISH_TIMEOUT, "request timed out");
            else if (closing && now >= drain_deadline) slot_finish(s, sl, SRV_FINISH_CANCELLED, "server shutting down");
        }

        /* build the step: decode tokens first (one each), then prompt chunks */
        q_batch_clear(&s->batch);
        for (int i = 0; i < s->n_slots; i++) {
            slot *sl = &s->slots[i];
            sl->batch_idx = -1;
            if (sl->state != SLOT_GEN) continue;
            sl->batch_idx = s->batch.n_tokens;
            hist_push(sl, sl->pending);
            q_batch_add(&s->batch, sl->pending, sl->n_past++, (q_seq_id)i, true);
        }
        for (int i = 0; i < s->n_slots; i++) {
            slot *sl = &s->slots[i];
            if (sl->state != SLOT_PREFILL) continue;
            const q_tokens *p = &sl->job->prompt;
            while (sl->n_fed < p->n && s->batch.n_tokens < s->batch.n_max) {
                const bool last = sl->n_fed + 1 == p->n;
                if (last) sl->batch_idx = s->batch.n_tokens;
                hist_push(sl, p->ids[sl->n_fed]);
                q_batch_add(&s->batch, p->ids[sl->n_fed++], sl->n_past++, (q_seq_id)i, last);
            }
        }
        if (s->batch.n_tokens == 0) { publish(s); continue; }
        /* running sequences come first: cached leaves make room for the step */
        if (s->tree && s->batch.n_tokens > s->kv->n_ctx - s->kv->used)
            cache_evict(s, (size_t)(s->batch.n_tokens - (s->kv->n_ctx - s->kv->used)));

        q_error err;
        if (q_decode(s->ctx, &s->batch, &err) != Q_OK) {
            srv_log(SRV_LOG_ERROR, "decode_failed", NULL, json_pack("{s:s}", "error", err.msg));
            for (int i = 0; i < s->n_slots; i++)
                if (s->slots[i].state != SLOT_FREE) slot_finish(s, &s->slots[i], SRV_FINISH_ERROR, err.msg);
            /* trust no cached prefix after a failed step */
            if (s->tree) {
                prefix_tree_clear(s->tree, NULL, NULL);
                cache_gauge(s);
            }
            q_kv_clear(s->ctx);
            publish(s);
            continue;
        }
        const double t = srv_now();
        for (int i = 0; i < s->n_slots; i++) {
            slot *sl = &s->slots[i];
            if (sl->state == SLOT_FREE || sl->batch_idx < 0) continue;
            /* a prompt just decoded in full is cached at once, for jobs that share it */
            if (s->tree && sl->state == SLOT_PREFILL) {
                cache_insert(s, sl, sl->n_hist);
                cache_trim(s);
            }
            slot_sample(s, sl, t);
        }
        publish(s);
    }
    publish(s);
    atomic_store(&s->alive, false);
    return NULL;
}

q_status srv_sched_new(const q_model *m, q_context *c, int n_slots, int slot_ctx, int queue_size,
                       bool prefix_cache, long prefix_cache_tokens, srv_sched **out, q_error *err) {
    *out = NULL;
    srv_sched *s = calloc(1, sizeof *s);
    if (!s) return q_fail(err, Q_ERR_NOMEM, "scheduler: out of memory");
    s->model = m;
    s->vocab = q_model_vocab(m);
    s->ctx = c;
    s->n_slots = n_slots;
    s->slot_ctx = slot_ctx;
    s->queue_size = queue_size;
    s->n_batch = 512;
    s->slots = calloc((size_t)n_slots, sizeof *s->slots);
    if (prefix_cache) {
        s->kv = kv_cache_of_context(c);
        s->cache_seq = (q_seq_id)n_slots;
        if (s->kv->n_seq_max <= n_slots) {
            const int have = s->kv->n_seq_max;
            free(s->slots);
            free(s);
            return q_fail(err, Q_ERR_INVALID_ARG, "scheduler: the prefix cache needs a context with %d sequences "
                          "(one per slot and its own), this one has %d", n_slots + 1, have);
        }
        /* default: half the KV cache, but at least one slot's context, so a long chat
         * history stays cached whole */
        const long n_ctx = q_context_n_ctx(c);
        s->cache_max = (size_t)(prefix_cache_tokens > 0 ? prefix_cache_tokens : Q_MIN(n_ctx, Q_MAX(n_ctx / 2, (long)slot_ctx)));
        s->tree = prefix_tree_new();
        s->cells = q_xmalloc((size_t)slot_ctx * sizeof *s->cells);
        s->own = q_xmalloc((size_t)slot_ctx * sizeof *s->own);
    }
    s->batch = q_batch_init(s->n_batch);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    atomic_init(&s->alive, true);
    if (!s->slots || pthread_create(&s->thread, NULL, engine_main, s) != 0) {
        srv_sched_free(s);
        return q_fail(err, Q_ERR_NOMEM, "scheduler: could not start the engine thread");
    }
    s->started = true;
    *out = s;
    return Q_OK;
}

srv_submit srv_sched_submit(srv_sched *s, srv_job *j) {
    pthread_mutex_lock(&s->mu);
    srv_submit r = SRV_SUBMIT_OK;
    if (s->closing) r = SRV_SUBMIT_CLOSED;
    /* free slots take jobs at the next step, so they count as room too */
    else if (s->n_waiting >= s->queue_size + s->n_slots - atomic_load(&s->running)) r = SRV_SUBMIT_FULL;
    else {
        srv_job_retain(j);
        j->t_submit = srv_now();
        j->next = NULL;
        const int p = j->prio;
        if (s->tail[p]) s->tail[p]->next = j;
        else s->head[p] = j;
        s->tail[p] = j;
        s->n_waiting++;
        atomic_store(&s->waiting, s->n_waiting);
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

void srv_sched_shutdown(srv_sched *s, double deadline) {
    if (!s || !s->started) return;
    pthread_mutex_lock(&s->mu);
    s->closing = true;
    s->drain_deadline = deadline;
    srv_job *j;
    while ((j = queue_pop(s))) job_fail_unstarted(j, SRV_FINISH_CANCELLED, "server shutting down");
    atomic_store(&s->waiting, 0);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->started = false;
}

void srv_sched_free(srv_sched *s) {
    if (!s) return;
    srv_sched_shutdown(s, srv_now());
    q_batch_free(&s->batch);
    for (int i = 0; s->slots && i < s->n_slots; i++) free(s->slots[i].hist);
    free(s->slots);
    if (s->tree) {   /* the cells go with the context; the gauge drops this tree's share */
        srv_metrics_prefix_cached(-s->cached_published);
        prefix_tree_free(s->tree);
    }
    free(s->cells);
    free(s->own);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int    srv_sched_running(const srv_sched *s) { return atomic_load(&((srv_sched *)s)->running); }
int    srv_sched_waiting(const srv_sched *s) { return atomic_load(&((srv_sched *)s)->waiting); }
bool   srv_sched_alive(const srv_sched *s) { return atomic_load(&((srv_sched *)s)->alive); }
int    srv_sched_slot_ctx(const srv_sched *s) { return s->slot_ctx; }
double srv_sched_kv_ratio(const srv_sched *s) {
    const int32_t n = q_context_n_ctx(s->ctx);
    return n > 0 ? (double)atomic_load(&((srv_sched *)s)->kv_used) / n : 0.0;
}
size_t srv_sched_cache_max(const srv_sched *s) { return s->tree ? s->cache_max : 0; }
