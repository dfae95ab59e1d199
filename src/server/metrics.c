/* metrics.c — the server's Prometheus metrics in the text exposition format (0.0.4):
 *   quarrel_requests_running / quarrel_requests_waiting / quarrel_kv_cache_usage_ratio (gauges,
 *   given by the caller at render time), quarrel_webui_requests_total{endpoint,status},
 *   quarrel_webui_tokens_total{kind}, and the histograms quarrel_time_to_first_token_seconds
 *   and quarrel_e2e_request_latency_seconds (cumulative le buckets, _sum, _count).
 * Process-wide state under one mutex. srv_metrics_render returns malloc'ed text. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

enum { N_BUCKETS = 12, N_STATUS = 16 };
static const double buckets[N_BUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };

typedef struct hist {
    long   count[N_BUCKETS];   /* per bucket, not cumulative */
    long   n;
    double sum;
} hist;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int  status[SRV_EP_COUNT][N_STATUS];   /* distinct statuses seen per endpoint */
    long count[SRV_EP_COUNT][N_STATUS];
    int  n_status[SRV_EP_COUNT];
    long tok_prompt, tok_gen;
    hist ttft, e2e;
} g;

static const char *const ep_names[SRV_EP_COUNT] = {
    [SRV_EP_GENERATE] = "/api/generate",         [SRV_EP_STREAM] = "/api/stream",
    [SRV_EP_CHAT] = "/v1/chat/completions",      [SRV_EP_COMPLETIONS] = "/v1/completions",
    [SRV_EP_OTHER] = "other",
};

const char *srv_endpoint_name(srv_endpoint ep) { return ep_names[ep]; }

void srv_metrics_request(srv_endpoint ep, int status) {
    pthread_mutex_lock(&mu);
    int i = 0;
    while (i < g.n_status[ep] && g.status[ep][i] != status) i++;
    if (i == g.n_status[ep] && i < N_STATUS) g.status[ep][g.n_status[ep]++] = status;
    if (i < N_STATUS) g.count[ep][i]++;
    pthread_mutex_unlock(&mu);
}

void srv_metrics_tokens(long prompt, long generated) {
    pthread_mutex_lock(&mu);
    g.tok_prompt += prompt;
    g.tok_gen += generated;
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

char *srv_metrics_render(int running, int waiting, double kv_ratio) {
    buf b = { malloc(4096), 0, 4096 };
    bprintf(&b, "# HELP quarrel_requests_running Requests being decoded.\n# TYPE quarrel_requests_running gauge\n"
                "quarrel_requests_running %d\n", running);
    bprintf(&b, "# HELP quarrel_requests_waiting Requests queued for a slot.\n# TYPE quarrel_requests_waiting gauge\n"
                "quarrel_requests_waiting %d\n", waiting);
    bprintf(&b, "# HELP quarrel_kv_cache_usage_ratio Used KV cells over all cells.\n"
                "# TYPE quarrel_kv_cache_usage_ratio gauge\nquarrel_kv_cache_usage_ratio %.6f\n", kv_ratio);
    pthread_mutex_lock(&mu);
    bprintf(&b, "# HELP quarrel_webui_requests_total HTTP requests by endpoint and status.\n"
                "# TYPE quarrel_webui_requests_total counter\n");
    for (int e = 0; e < SRV_EP_COUNT; e++)
        for (int i = 0; i < g.n_status[e]; i++)
            bprintf(&b, "quarrel_webui_requests_total{endpoint=\"%s\",status=\"%d\"} %ld\n", ep_names[e],
                    g.status[e][i], g.count[e][i]);
    bprintf(&b, "# HELP quarrel_webui_tokens_total Tokens processed.\n# TYPE quarrel_webui_tokens_total counter\n"
                "quarrel_webui_tokens_total{kind=\"prompt\"} %ld\nquarrel_webui_tokens_total{kind=\"generated\"} %ld\n",
            g.tok_prompt, g.tok_gen);
    hist_render(&b, "quarrel_time_to_first_token_seconds", "Time from submission to the first text.", &g.ttft);
    hist_render(&b, "quarrel_e2e_request_latency_seconds", "Time from submission to the end of generation.", &g.e2e);
    pthread_mutex_unlock(&mu);
    return b.p;
}
