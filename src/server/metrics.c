/* metrics.c — the server's Prometheus metrics in the text exposition format (0.0.4):
 *   gauges: quarrel_requests_running / quarrel_requests_waiting / quarrel_kv_cache_usage_ratio
 *   prefix reuse: quarrel_prefix_cache_{queries,hits,tokens_reused,evicted_tokens}_total and the
 *     gauge quarrel_prefix_cache_tokens (cached tokens, summed over schedulers)
 *     (given by the caller at render time), quarrel_webui_connections_active (open HTTP
 *     connections, a WebSocket session counting as its upgraded connection);
 *   counters: quarrel_webui_requests_total{model,endpoint,status} (model: the registry name
 *     the request addressed, "" for requests naming none or an unknown one, so label sets
 *     stay bounded by the registry), quarrel_webui_tokens_total{kind},
 *     quarrel_webui_errors_total{type} (every type always present, from 0),
 *     quarrel_rate_limited_total{limit="rpm|tpm|ip"}, quarrel_auth_failures_total;
 *   the model registry: gauges quarrel_models_loaded (current instances),
 *     quarrel_model_versions_draining, quarrel_models_memory_bytes{state="current|draining"};
 *     counters
 *     quarrel_model_loads_total (swaps included), quarrel_model_unloads_total (unload or
 *     LRU eviction), quarrel_model_swaps_total, quarrel_model_load_failures_total;
 *   histograms (cumulative le buckets, +Inf, _sum, _count; seconds): time_to_first_token,
 *     e2e_request_latency, webui_inference_duration (slot admission to end), request_queue_time
 *     (submission to admission), inter_token_latency (one observation per sampled token after
 *     the first).
 * Not a client library: no registry, no label sets beyond these.
 * Process-wide state under one mutex (the connection gauge is an atomic). srv_metrics_render
 * returns malloc'ed text the caller frees. */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "server/server.h"

enum { N_BUCKETS = 12, MAX_REQ_ROWS = 4096 };
static const double buckets[N_BUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };

typedef struct hist {
    long   count[N_BUCKETS];   /* per bucket, not cumulative */
    long   n;
    double sum;
} hist;

/* One series of quarrel_webui_requests_total. */
typedef struct req_row {
    char         model[128];
    srv_endpoint ep;
    int          status;
    long         count;
} req_row;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    req_row *rows;   /* [n_rows], in order of first appearance */
    int      n_rows, cap_rows;
    long tok_prompt, tok_gen;
    long prefix_queries, prefix_hits, prefix_reused, prefix_cached, prefix_evicted;
    long errors[SRV_ERR_COUNT];
    long rate_limited[SRV_LIMIT_COUNT];
    long auth_failures;
    long model_events[SRV_MODEL_EV_COUNT];
    int  models_loaded;
    hist ttft, e2e, infer, queue, itl;
} g;
static atomic_long n_conns;

static const char *const err_names[SRV_ERR_COUNT] = {
    [SRV_ERR_BAD_REQUEST] = "bad_request", [SRV_ERR_QUEUE_FULL] = "queue_full", [SRV_ERR_TIMEOUT] = "timeout",
    [SRV_ERR_INTERNAL] = "internal",       [SRV_ERR_DISCONNECTED] = "disconnected",
};

static const char *const ep_names[SRV_EP_COUNT] = {
    [SRV_EP_GENERATE] = "/api/generate",         [SRV_EP_STREAM] = "/api/stream",
    [SRV_EP_CHAT] = "/v1/chat/completions",      [SRV_EP_COMPLETIONS] = "/v1/completions",
    [SRV_EP_OTHER] = "other",
};

const char *srv_endpoint_name(srv_endpoint ep) { return ep_names[ep]; }

void srv_metrics_request(const char *model, srv_endpoint ep, int status) {
    Q_ASSERT(ep >= 0 && ep < SRV_EP_COUNT);
    if (!model) model = "";
    pthread_mutex_lock(&mu);
    int i = 0;
    while (i < g.n_rows && !(g.rows[i].ep == ep && g.rows[i].status == status && !strcmp(g.rows[i].model, model))) i++;
    if (i == g.n_rows && i < MAX_REQ_ROWS) {   /* beyond that many series, new ones are not counted */
        if (g.n_rows == g.cap_rows) g.rows = q_xrealloc(g.rows, (size_t)(g.cap_rows = g.cap_rows * 2 + 16) * sizeof *g.rows);
        req_row *row = &g.rows[g.n_rows++];
        snprintf(row->model, sizeof row->model, "%s", model);
        row->ep = ep;
        row->status = status;
        row->count = 0;
    }
    if (i < g.n_rows) g.rows[i].count++;
    /* 499 is ours: the client left before a reply; 503 is a full queue or shutdown */
    if (status == 499) g.errors[SRV_ERR_DISCONNECTED]++;
    else if (status == 503) g.errors[SRV_ERR_QUEUE_FULL]++;
    else if (status == 504 || status == 408) g.errors[SRV_ERR_TIMEOUT]++;
    else if (status >= 500) g.errors[SRV_ERR_INTERNAL]++;
    else if (status >= 400) g.errors[SRV_ERR_BAD_REQUEST]++;
    pthread_mutex_unlock(&mu);
}

void srv_metrics_error(srv_error_type t) {
    Q_ASSERT(t >= 0 && t < SRV_ERR_COUNT);
    pthread_mutex_lock(&mu);
    g.errors[t]++;
    pthread_mutex_unlock(&mu);
}

static const char *const limit_names[SRV_LIMIT_COUNT] = {
    [SRV_LIMIT_RPM] = "rpm", [SRV_LIMIT_TPM] = "tpm", [SRV_LIMIT_IP] = "ip",
};

void srv_metrics_rate_limited(srv_limit l) {
    Q_ASSERT(l >= 0 && l < SRV_LIMIT_COUNT);
    pthread_mutex_lock(&mu);
    g.rate_limited[l]++;
    pthread_mutex_unlock(&mu);
}

void srv_metrics_auth_failure(void) {
    pthread_mutex_lock(&mu);
    g.auth_failures++;
    pthread_mutex_unlock(&mu);
}

void srv_metrics_model_event(srv_model_event ev) {
    Q_ASSERT(ev >= 0 && ev < SRV_MODEL_EV_COUNT);
    pthread_mutex_lock(&mu);
    g.model_events[ev]++;
    pthread_mutex_unlock(&mu);
}

void srv_metrics_models_loaded(int n) {
    pthread_mutex_lock(&mu);
    g.models_loaded = n;
    pthread_mutex_unlock(&mu);
}

/* Metric name and help of each model event counter. */
static const struct { const char *name, *help; } model_event_metrics[SRV_MODEL_EV_COUNT] = {
    [SRV_MODEL_EV_LOAD] = { "quarrel_model_loads_total", "Model versions loaded (lazy, preload, admin load or swap)." },
    [SRV_MODEL_EV_UNLOAD] = { "quarrel_model_unloads_total", "Models unloaded (admin unload or least-recently-used eviction)." },
    [SRV_MODEL_EV_SWAP] = { "quarrel_model_swaps_total", "Hot swaps: a new version became current while an old one existed." },
    [SRV_MODEL_EV_LOAD_FAILURE] = { "quarrel_model_load_failures_total", "Model loads that failed." },
    [SRV_MODEL_EV_RESCAN] = { "quarrel_model_dir_scans_total", "Listings of --models-dir (start, SIGHUP, unknown names while it changed)." },
};

void srv_metrics_connections(int delta) { atomic_fetch_add(&n_conns, delta); }

void srv_metrics_tokens(long prompt, long generated) {
    pthread_mutex_lock(&mu);
    g.tok_prompt += prompt;
    g.tok_gen += generated;
    pthread_mutex_unlock(&mu);
}

void srv_metrics_prefix(size_t reused) {
    pthread_mutex_lock(&mu);
    g.prefix_queries++;
    g.prefix_hits += reused > 0;
    g.prefix_reused += (long)reused;
    pthread_mutex_unlock(&mu);
}

void srv_metrics_prefix_cached(long delta) {
    pthread_mutex_lock(&mu);
    g.prefix_cached += delta;
    pthread_mutex_unlock(&mu);
}

void srv_metrics_prefix_evicted(long tokens) {
    pthread_mutex_lock(&mu);
    g.prefix_evicted += tokens;
    pthread_mutex_unlock(&mu);
}

static void hist_add(hist *h, double v) {
    int b = 0;
    while (b < N_BUCKETS && v > buckets[b]) b++;
    if (b < N_BUCKETS) h->count[b]++;
    h->n++;
    h->sum += v;
}

void srv_metrics_ttft(double s) { pthread_mutex_lock(&mu); hist_add(&g.ttft, s); pthread_mutex_unlock(&mu); }
void srv_metrics_e2e(double s) { pthread_mutex_lock(&mu); hist_add(&g.e2e, s); pthread_mutex_unlock(&mu); }
void srv_metrics_inference(double s) { pthread_mutex_lock(&mu); hist_add(&g.infer, s); pthread_mutex_unlock(&mu); }
void srv_metrics_queue_time(double s) { pthread_mutex_lock(&mu); hist_add(&g.queue, s); pthread_mutex_unlock(&mu); }
void srv_metrics_inter_token(double s) { pthread_mutex_lock(&mu); hist_add(&g.itl, s); pthread_mutex_unlock(&mu); }

typedef struct buf { char *p; size_t n, cap; } buf;

static void bprintf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(buf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        const int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (k >= 0 && (size_t)k < b->cap - b->n) { b->n += (size_t)k; return; }
        b->cap = b->cap * 2 + (size_t)k;
        b->p = realloc(b->p, b->cap);
    }
}

static void hist_render(buf *b, const char *name, const char *help, const hist *h) {
    bprintf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    long cum = 0;
    for (int i = 0; i < N_BUCKETS; i++) {
        cum += h->count[i];
        bprintf(b, "%s_bucket{le=\"%g\"} %ld\n", name, buckets[i], cum);
    }
    bprintf(b, "%s_bucket{le=\"+Inf\"} %ld\n%s_sum %.6f\n%s_count %ld\n", name, h->n, name, h->sum, name, h->n);
}

/* A label value with \\, " and newline escaped as the text format asks. */
static void label_value(buf *b, const char *v) {
    for (; *v; v++) {
        if (*v == '\\' || *v == '"') bprintf(b, "\\%c", *v);
        else if (*v == '\n') bprintf(b, "\\n");
        else bprintf(b, "%c", *v);
    }
}

char *srv_metrics_render(const srv_models_totals *tot) {
    const int running = tot->running, waiting = tot->waiting;
    const double kv_ratio = tot->kv_ratio;
    buf b = { malloc(4096), 0, 4096 };
    bprintf(&b, "# HELP quarrel_requests_running Requests being decoded.\n# TYPE quarrel_requests_running gauge\n"
                "quarrel_requests_running %d\n", running);
    bprintf(&b, "# HELP quarrel_requests_waiting Requests queued for a slot.\n# TYPE quarrel_requests_waiting gauge\n"
                "quarrel_requests_waiting %d\n", waiting);
    bprintf(&b, "# HELP quarrel_kv_cache_usage_ratio KV cells held by running requests over all cells (cells held only by the prefix cache are not counted: they are evicted on demand).\n"
                "# TYPE quarrel_kv_cache_usage_ratio gauge\nquarrel_kv_cache_usage_ratio %.6f\n", kv_ratio);
    bprintf(&b, "# HELP quarrel_webui_connections_active Open HTTP connections (WebSocket sessions included).\n"
                "# TYPE quarrel_webui_connections_active gauge\nquarrel_webui_connections_active %ld\n",
            atomic_load(&n_conns));
    pthread_mutex_lock(&mu);
    bprintf(&b, "# HELP quarrel_webui_requests_total HTTP requests by model, endpoint and status.\n"
                "# TYPE quarrel_webui_requests_total counter\n");
    for (int i = 0; i < g.n_rows; i++) {
        bprintf(&b, "quarrel_webui_requests_total{model=\"");
        label_value(&b, g.rows[i].model);
        bprintf(&b, "\",endpoint=\"%s\",status=\"%d\"} %ld\n", ep_names[g.rows[i].ep], g.rows[i].status, g.rows[i].count);
    }
    bprintf(&b, "# HELP quarrel_webui_errors_total Failed requests by kind of failure.\n"
                "# TYPE quarrel_webui_errors_total counter\n");
    for (int t = 0; t < SRV_ERR_COUNT; t++)
        bprintf(&b, "quarrel_webui_errors_total{type=\"%s\"} %ld\n", err_names[t], g.errors[t]);
    bprintf(&b, "# HELP quarrel_rate_limited_total Requests and connections refused by a limit (429 or RATE_LIMITED).\n"
                "# TYPE quarrel_rate_limited_total counter\n");
    for (int l = 0; l < SRV_LIMIT_COUNT; l++)
        bprintf(&b, "quarrel_rate_limited_total{limit=\"%s\"} %ld\n", limit_names[l], g.rate_limited[l]);
    bprintf(&b, "# HELP quarrel_auth_failures_total Requests and WebSocket sessions with a missing or bad API key.\n"
                "# TYPE quarrel_auth_failures_total counter\nquarrel_auth_failures_total %ld\n", g.auth_failures);
    bprintf(&b, "# HELP quarrel_webui_tokens_total Tokens processed.\n# TYPE quarrel_webui_tokens_total counter\n"
                "quarrel_webui_tokens_total{kind=\"prompt\"} %ld\nquarrel_webui_tokens_total{kind=\"generated\"} %ld\n",
            g.tok_prompt, g.tok_gen);
    bprintf(&b, "# HELP quarrel_prefix_cache_queries_total Requests that looked for a cached prompt prefix.\n"
                "# TYPE quarrel_prefix_cache_queries_total counter\nquarrel_prefix_cache_queries_total %ld\n"
                "# HELP quarrel_prefix_cache_hits_total Requests that reused a cached prompt prefix.\n"
                "# TYPE quarrel_prefix_cache_hits_total counter\nquarrel_prefix_cache_hits_total %ld\n"
                "# HELP quarrel_prefix_cache_tokens_reused_total Prompt tokens whose KV came from the cache.\n"
                "# TYPE quarrel_prefix_cache_tokens_reused_total counter\nquarrel_prefix_cache_tokens_reused_total %ld\n"
                "# HELP quarrel_prefix_cache_tokens Tokens whose KV the prefix cache holds.\n"
                "# TYPE quarrel_prefix_cache_tokens gauge\nquarrel_prefix_cache_tokens %ld\n"
                "# HELP quarrel_prefix_cache_evicted_tokens_total Cached tokens evicted (size limit, or cells for running requests).\n"
                "# TYPE quarrel_prefix_cache_evicted_tokens_total counter\nquarrel_prefix_cache_evicted_tokens_total %ld\n",
            g.prefix_queries, g.prefix_hits, g.prefix_reused, g.prefix_cached, g.prefix_evicted);
    bprintf(&b, "# HELP quarrel_models_loaded Models with a current loaded version.\n"
                "# TYPE quarrel_models_loaded gauge\nquarrel_models_loaded %d\n", g.models_loaded);
    bprintf(&b, "# HELP quarrel_model_versions_draining Retired model versions still finishing requests (outside --max-loaded).\n"
                "# TYPE quarrel_model_versions_draining gauge\nquarrel_model_versions_draining %d\n", tot->draining);
    bprintf(&b, "# HELP quarrel_models_memory_bytes Bytes of mapped model files, current and draining versions.\n"
                "# TYPE quarrel_models_memory_bytes gauge\nquarrel_models_memory_bytes{state=\"current\"} %llu\n"
                "quarrel_models_memory_bytes{state=\"draining\"} %llu\n",
            (unsigned long long)tot->mem_current, (unsigned long long)tot->mem_draining);
    for (int e = 0; e < SRV_MODEL_EV_COUNT; e++)
        bprintf(&b, "# HELP %s %s\n# TYPE %s counter\n%s %ld\n", model_event_metrics[e].name, model_event_metrics[e].help,
                model_event_metrics[e].name, model_event_metrics[e].name, g.model_events[e]);
    hist_render(&b, "quarrel_time_to_first_token_seconds", "Time from submission to the first text.", &g.ttft);
    hist_render(&b, "quarrel_e2e_request_latency_seconds", "Time from submission to the end of generation.", &g.e2e);
    hist_render(&b, "quarrel_webui_inference_duration_seconds", "Time from slot admission to the end of generation.",
                &g.infer);
    hist_render(&b, "quarrel_request_queue_time_seconds", "Time from submission to slot admission.", &g.queue);
    hist_render(&b, "quarrel_inter_token_latency_seconds", "Time between consecutive sampled tokens of a request.",
                &g.itl);
    pthread_mutex_unlock(&mu);
    return b.p;
}
