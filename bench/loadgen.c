/* loadgen.c — load generator for `quarrel serve` (not a test): N concurrent clients send
 * R requests in all, each with the same fixed prompt and a fixed output length
 * (max_tokens with ignore_eos), over one of three transports, and it reports what each
 * client saw:
 *
 *   bench_loadgen --port P [--host 127.0.0.1] [--mode api|chat|ws] [-c CLIENTS]
 *                 [-n REQUESTS] [--prompt-words W] [--max-tokens T] [--timeout S]
 *                 [--md] [--md-header]
 *
 *   api   POST /api/stream (SSE; each token event carries its token_ids)
 *   chat  POST /v1/chat/completions with "stream": true (SSE chunks, then data: [DONE])
 *   ws    GET /ws, one WebSocket per client, one inference message per request
 *         (the seed's protocol: one message per token, then complete: true)
 *
 * Per request: TTFT (request sent -> first token), inter-token latency (gap between token
 * arrivals; an event carrying k tokens counts k gaps of gap/k) and end to end (sent ->
 * final event). Busy answers (HTTP 503, WebSocket QUEUE_FULL) are counted and the request
 * is sent again after Retry-After (1 s), so no request is lost; TTFT and e2e then include
 * the wait. Anything else (connection failure, another status, a stream without its final
 * event, a finish other than "length") is an error. Output: p50/p95/p99 of each latency,
 * output tok/s and req/s over the wall time, prompt tokens as the server counted them.
 * --md prints one markdown table row (--md-header the header) for bench/serve_sweep.sh.
 *
 * Plain blocking sockets, one thread per client; a tiny HTTP/1.1 client (Content-Length,
 * chunked or close-delimited bodies), SSE and RFC 6455 framing (masked client frames).
 * Memory: each client owns its buffers; samples are merged under one mutex at the end. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef enum lg_mode { LG_API, LG_CHAT, LG_WS, LG_MODE_COUNT } lg_mode;
static const char *const mode_names[LG_MODE_COUNT] = { [LG_API] = "api", [LG_CHAT] = "chat", [LG_WS] = "ws" };

typedef struct lg_opts {
    const char *host;
    int         port, clients, requests, prompt_words, max_tokens, timeout_s;
    lg_mode     mode;
    bool        md, md_header;
    char       *prompt;       /* built from prompt_words */
} lg_opts;

/* A growable array of samples (seconds). */
typedef struct samples {
    double *v;
    size_t  n, cap;
} samples;

static void samples_add(samples *s, double x) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v) abort();
    }
    s->v[s->n++] = x;
}

static void samples_merge(samples *dst, const samples *src) {
    for (size_t i = 0; i < src->n; i++) samples_add(dst, src->v[i]);
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted samples; NAN when empty. */
static double pct(const samples *s, double p) {
    if (!s->n) return NAN;
    size_t k = (size_t)ceil(p / 100.0 * (double)s->n);
    if (k < 1) k = 1;
    return s->v[k - 1];
}

/* What one client saw. */
typedef struct lg_stats {
    samples ttft, itl, e2e;
    long    ok, busy, errors, out_tokens, prompt_tokens;
    char    first_error[200];
} lg_stats;

static void stats_error(lg_stats *st, const char *msg) {
    if (!st->errors++) snprintf(st->first_error, sizeof st->first_error, "%s", msg);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- sockets ---- */

typedef struct conn {
    int    fd;
    char   buf[65536];
    size_t off, len;       /* unread bytes are buf[off, len) */
} conn;

static bool conn_open(conn *c, const lg_opts *o) {
    c->off = c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return false;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)o->port) };
    if (inet_pton(AF_INET, o->host, &sa.sin_addr) != 1) { close(c->fd); return false; }
    const int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = { .tv_sec = o->timeout_s };
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) { close(c->fd); c->fd = -1; return false; }
    return true;
}

static void conn_close(conn *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

static bool send_all(conn *c, const void *p, size_t n) {
    const char *s = p;
    while (n) {
        const ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        s += w;
        n -= (size_t)w;
    }
    return true;
}

/* Refills the buffer; false on EOF, error or timeout. */
static bool conn_fill(conn *c) {
    if (c->off == c->len) c->off = c->len = 0;
    if (c->len == sizeof c->buf) {
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    for (;;) {
        const ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        c->len += (size_t)r;
        return true;
    }
}

/* One line without its CRLF into out (cap bytes, truncated); false at EOF. */
static bool conn_line(conn *c, char *out, size_t cap) {
    size_t n = 0;
    for (;;) {
        while (c->off < c->len) {
            const char ch = c->buf[c->off++];
            if (ch == '\n') {
                if (n && out[n - 1] == '\r') n--;
                out[n] = 0;
                return true;
            }
            if (n + 1 < cap) out[n++] = ch;
        }
        if (!conn_fill(c)) return false;
    }
}

static bool conn_read(conn *c, uint8_t *out, size_t n) {
    while (n) {
        if (c->off == c->len && !conn_fill(c)) return false;
        size_t k = c->len - c->off < n ? c->len - c->off : n;
        memcpy(out, c->buf + c->off, k);
        c->off += k;
        out += k;
        n -= k;
    }
    return true;
}

/* ---- one request's bookkeeping ---- */

typedef struct lg_req {
    double t_send, t_first, t_last;
    long   n_tokens;         /* counted from events */
    long   usage_out, usage_prompt;
    bool   done, busy;
    char   finish[32];
    char   err[160];
} lg_req;

/* k tokens arrived at t (the first event's extra tokens have no gap to measure). */
static void req_tokens(lg_req *r, lg_stats *st, long k, double t) {
    if (k <= 0) return;
    r->n_tokens += k;
    if (r->t_first == 0) {
        r->t_first = t;
    } else {
        const double gap = (t - r->t_last) / (double)k;
        for (long i = 0; i < k; i++) samples_add(&st->itl, gap);
    }
    r->t_last = t;
}

static void req_usage(lg_req *r, const json_t *o) {
    const json_t *u = json_object_get(o, "usage");
    if (!u) return;
    r->usage_out = (long)json_integer_value(json_object_get(u, "completion_tokens"));
    r->usage_prompt = (long)json_integer_value(json_object_get(u, "prompt_tokens"));
}

/* ---- SSE (api, chat) ---- */

/* One SSE data payload. */
static void sse_data(lg_req *r, lg_stats *st, lg_mode mode, const char *data, size_t n, double t) {
    if (mode == LG_CHAT && n == 6 && !memcmp(data, "[DONE]", 6)) {
        if (!r->finish[0]) snprintf(r->err, sizeof r->err, "[DONE] without a final chunk");
        r->done = true;
        return;
    }
    json_t *o = json_loadb(data, n, JSON_ALLOW_NUL, NULL);   /* "\u0000" is valid JSON: a byte token 0x00 */
    if (!o) {   /* quote the event, so a server's malformed one can be told apart */
        snprintf(r->err, sizeof r->err, "bad event JSON: %.*s", (int)(n < 120 ? n : 120), data);
        return;
    }
    if (json_is_object(json_object_get(o, "error"))) {   /* OpenAI's error shape mid-stream */
        const char *m = json_string_value(json_object_get(json_object_get(o, "error"), "message"));
        snprintf(r->err, sizeof r->err, "stream error: %.120s", m ? m : "?");
    } else if (mode == LG_API) {
        const char *type = json_string_value(json_object_get(o, "type"));
        if (type && !strcmp(type, "token")) {
            const json_t *ids = json_object_get(o, "token_ids");
            req_tokens(r, st, ids ? (long)json_array_size(ids) : 1, t);
        } else if (type && !strcmp(type, "done")) {
            snprintf(r->finish, sizeof r->finish, "%s", json_string_value(json_object_get(o, "finish_reason")));
            req_usage(r, o);
            r->done = true;
        }
    } else {
        const json_t *ch = json_array_get(json_object_get(o, "choices"), 0);
        const char *content = json_string_value(json_object_get(json_object_get(ch, "delta"), "content"));
        if (content && *content) req_tokens(r, st, 1, t);   /* a chat chunk is one text release */
        const char *fin = json_string_value(json_object_get(ch, "finish_reason"));
        if (fin) snprintf(r->finish, sizeof r->finish, "%s", fin);
        req_usage(r, o);
    }
    json_decref(o);
}

/* Feeds body bytes to the SSE parser (events end with a blank line). */
typedef struct sse_parser {
    char  *line;
    size_t n, cap;
} sse_parser;

static void sse_feed(sse_parser *p, lg_req *r, lg_stats *st, lg_mode mode, const char *s, size_t n, double t) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\n') {
            if (p->n + 1 >= p->cap) {
                p->cap = p->cap ? p->cap * 2 : 4096;
                p->line = realloc(p->line, p->cap);
                if (!p->line) abort();
            }
            p->line[p->n++] = s[i];
            continue;
        }
        if (p->n >= 6 && !memcmp(p->line, "data: ", 6)) sse_data(r, st, mode, p->line + 6, p->n - 6, t);
        p->n = 0;
    }
}

/* Sends one streamed HTTP request and reads its reply. */
static void http_request(const lg_opts *o, lg_req *r, lg_stats *st, const char *path, const char *body) {
    conn c;
    if (!conn_open(&c, o)) { snprintf(r->err, sizeof r->err, "connect: %s", strerror(errno)); return; }
    char head[512];
    const int hn = snprintf(head, sizeof head,
                            "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                            path, o->host, o->port, strlen(body));
    if (!send_all(&c, head, (size_t)hn) || !send_all(&c, body, strlen(body))) {
        snprintf(r->err, sizeof r->err, "send: %s", strerror(errno));
        conn_close(&c);
        return;
    }
    char line[8192];
    int status = 0;
    long clen = -1;
    bool chunked = false;
    if (!conn_line(&c, line, sizeof line) || sscanf(line, "HTTP/1.%*d %d", &status) != 1) {
        snprintf(r->err, sizeof r->err, "no HTTP status line");
        conn_close(&c);
        return;
    }
    while (conn_line(&c, line, sizeof line) && line[0]) {
        if (!strncasecmp(line, "Content-Length:", 15)) clen = atol(line + 15);
        if (!strncasecmp(line, "Transfer-Encoding:", 18) && strcasestr(line + 18, "chunked")) chunked = true;
    }
    if (status == 503) { r->busy = true; conn_close(&c); return; }
    if (status != 200) {
        snprintf(r->err, sizeof r->err, "HTTP %d", status);
        conn_close(&c);
        return;
    }
    sse_parser p = { 0 };
    for (;;) {
        size_t want;
        if (chunked) {
            if (!conn_line(&c, line, sizeof line)) break;
            want = strtoul(line, NULL, 16);
            if (want == 0) break;
        } else {
            want = clen >= 0 ? (size_t)clen : SIZE_MAX;
        }
        while (want) {
            if (c.off == c.len && !conn_fill(&c)) { want = 0; chunked = false; clen = 0; break; }
            const size_t k = c.len - c.off < want ? c.len - c.off : want;
            sse_feed(&p, r, st, o->mode, c.buf + c.off, k, now_s());
            c.off += k;
            if (want != SIZE_MAX) want -= k;
        }
        if (!chunked) break;
        if (!conn_line(&c, line, sizeof line)) break;   /* the CRLF after the chunk */
    }
    free(p.line);
    conn_close(&c);
    if (o->mode == LG_API && !r->done && !r->err[0]) snprintf(r->err, sizeof r->err, "stream ended without done");
    if (o->mode == LG_CHAT && !r->done && !r->err[0]) snprintf(r->err, sizeof r->err, "stream ended without [DONE]");
}

/* ---- WebSocket ---- */

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static bool ws_send_frame(conn *c, int opcode, const char *p, size_t n, uint64_t *rng) {
    uint8_t h[14];
    size_t hn = 0;
    h[hn++] = (uint8_t)(0x80 | opcode);
    if (n < 126) h[hn++] = (uint8_t)(0x80 | n);
    else if (n < 65536) { h[hn++] = 0x80 | 126; h[hn++] = (uint8_t)(n >> 8); h[hn++] = (uint8_t)n; }
    else {
        h[hn++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) h[hn++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    const uint32_t key = (uint32_t)rng_next(rng);
    uint8_t mask[4] = { (uint8_t)key, (uint8_t)(key >> 8), (uint8_t)(key >> 16), (uint8_t)(key >> 24) };
    memcpy(h + hn, mask, 4);
    hn += 4;
    uint8_t *m = malloc(n ? n : 1);
    if (!m) abort();
    for (size_t i = 0; i < n; i++) m[i] = (uint8_t)p[i] ^ mask[i & 3];
    const bool ok = send_all(c, h, hn) && send_all(c, m, n);
    free(m);
    return ok;
}

/* Reads one whole message (text; pings are answered). Returns its opcode (1 text, 8
 * close) with the payload in *out (malloc'ed), or -1 on a broken connection. */
static int ws_recv_msg(conn *c, char **out, size_t *len, uint64_t *rng) {
    char *msg = NULL;
    size_t n = 0;
    int op = -1;
    for (;;) {
        uint8_t h[2];
        if (!conn_read(c, h, 2)) break;
        uint64_t plen = h[1] & 0x7F;
        if (plen == 126) {
            uint8_t e[2];
            if (!conn_read(c, e, 2)) break;
            plen = (uint64_t)e[0] << 8 | e[1];
        } else if (plen == 127) {
            uint8_t e[8];
            if (!conn_read(c, e, 8)) break;
            plen = 0;
            for (int i = 0; i < 8; i++) plen = plen << 8 | e[i];
        }
        if (plen > (64u << 20)) break;
        char *p = malloc(plen + 1);
        if (!p) abort();
        if (!conn_read(c, (uint8_t *)p, plen)) { free(p); break; }
        const int fop = h[0] & 0x0F;
        if (fop == 9) { ws_send_frame(c, 10, p, plen, rng); free(p); continue; }   /* ping -> pong */
        if (fop == 10) { free(p); continue; }
        if (fop == 8) { free(msg); *out = p; *len = plen; return 8; }
        if (fop != 0) op = fop;
        msg = realloc(msg, n + plen + 1);
        if (!msg) abort();
        memcpy(msg + n, p, plen);
        n += plen;
        msg[n] = 0;
        free(p);
        if (h[0] & 0x80) { *out = msg; *len = n; return op; }
    }
    free(msg);
    return -1;
}

static bool ws_open(conn *c, const lg_opts *o, uint64_t *rng) {
    if (!conn_open(c, o)) return false;
    /* 16 random bytes, base64: the key's exact value does not matter to the server */
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char key[25];
    for (int i = 0; i < 21; i++) key[i] = b64[rng_next(rng) & 63];
    key[21] = 'A';
    key[22] = key[23] = '=';
    key[24] = 0;
    char head[512];
    const int hn = snprintf(head, sizeof head,
                            "GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                            o->host, o->port, key);
    char line[1024];
    int status = 0;
    if (!send_all(c, head, (size_t)hn) || !conn_line(c, line, sizeof line) ||
        sscanf(line, "HTTP/1.1 %d", &status) != 1 || status != 101) {
        conn_close(c);
        return false;
    }
    while (conn_line(c, line, sizeof line) && line[0]) {}
    return true;
}

/* One generation over the client's WebSocket (opened on demand, kept across requests). */
static void ws_request(const lg_opts *o, conn *c, lg_req *r, lg_stats *st, const char *body, uint64_t *rng) {
    if (c->fd < 0 && !ws_open(c, o, rng)) { snprintf(r->err, sizeof r->err, "WebSocket handshake failed"); return; }
    if (!ws_send_frame(c, 1, body, strlen(body), rng)) {
        snprintf(r->err, sizeof r->err, "ws send failed");
        conn_close(c);
        return;
    }
    for (;;) {
        char *m;
        size_t n;
        const int op = ws_recv_msg(c, &m, &n, rng);
        const double t = now_s();
        if (op != 1) {
            if (op == 8) free(m);
            snprintf(r->err, sizeof r->err, op == 8 ? "server closed the WebSocket" : "WebSocket broken");
            conn_close(c);
            return;
        }
        json_t *j = json_loadb(m, n, JSON_ALLOW_NUL, NULL);
        free(m);
        const char *type = json_string_value(json_object_get(j, "type"));
        const json_t *p = json_object_get(j, "payload");
        if (type && !strcmp(type, "inference")) {
            if (json_is_true(json_object_get(p, "complete"))) {
                const char *fin = json_string_value(json_object_get(p, "finish_reason"));
                snprintf(r->finish, sizeof r->finish, "%s", fin ? fin : "?");
                req_usage(r, p);
                r->done = true;
            } else {
                req_tokens(r, st, 1, t);
            }
        } else if (type && !strcmp(type, "error")) {
            const char *code = json_string_value(json_object_get(p, "code"));
            if (code && !strcmp(code, "QUEUE_FULL")) r->busy = true;
            else snprintf(r->err, sizeof r->err, "ws error %s", code ? code : "?");
        }
        json_decref(j);
        if (r->done || r->busy || r->err[0]) return;
    }
}

/* ---- clients ---- */

typedef struct lg_shared {
    const lg_opts *o;
    atomic_int     next;     /* requests handed out */
    pthread_mutex_t mu;
    lg_stats       total;
    double         t_end;    /* last request's end */
} lg_shared;

static char *request_body(const lg_opts *o, int idx) {
    json_t *b = json_pack("{s:i, s:b, s:i}", "max_tokens", o->max_tokens, "ignore_eos", 1, "seed", idx);
    if (o->mode == LG_CHAT) {
        json_object_set_new(b, "messages", json_pack("[{s:s, s:s}]", "role", "user", "content", o->prompt));
        json_object_set_new(b, "stream", json_true());
    } else {
        json_object_set_new(b, "prompt", json_string(o->prompt));
    }
    if (o->mode == LG_WS) b = json_pack("{s:s, s:o}", "type", "inference", "payload", b);
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return s;
}

static void *client_main(void *arg) {
    lg_shared *sh = arg;
    const lg_opts *o = sh->o;
    lg_stats st = { 0 };
    conn ws = { .fd = -1 };
    uint64_t rng = (uint64_t)(uintptr_t)&st ^ (uint64_t)(now_s() * 1e9);
    double t_end = 0;
    for (;;) {
        const int idx = atomic_fetch_add(&sh->next, 1);
        if (idx >= o->requests) break;
        char *body = request_body(o, idx);
        const double t_send = now_s();
        lg_req r;
        for (;;) {
            memset(&r, 0, sizeof r);
            r.t_send = t_send;
            if (o->mode == LG_WS) ws_request(o, &ws, &r, &st, body, &rng);
            else http_request(o, &r, &st, o->mode == LG_API ? "/api/stream" : "/v1/chat/completions", body);
            if (!r.busy || now_s() - t_send > o->timeout_s) break;
            st.busy++;
            sleep(1);   /* Retry-After: 1 */
        }
        free(body);
        const double t = now_s();
        t_end = t;
        if (r.busy) { stats_error(&st, "still busy after --timeout seconds"); continue; }
        if (r.err[0]) { stats_error(&st, r.err); continue; }
        if (strcmp(r.finish, "length")) {   /* "timeout" when the server's --timeout passed */
            snprintf(r.err, sizeof r.err, "finish_reason %s (want length)", r.finish);
            stats_error(&st, r.err);
            continue;
        }
        st.ok++;
        st.out_tokens += r.usage_out ? r.usage_out : r.n_tokens;
        st.prompt_tokens += r.usage_prompt;
        if (r.t_first > 0) samples_add(&st.ttft, r.t_first - t_send);
        samples_add(&st.e2e, t - t_send);
    }
    conn_close(&ws);
    pthread_mutex_lock(&sh->mu);
    samples_merge(&sh->total.ttft, &st.ttft);
    samples_merge(&sh->total.itl, &st.itl);
    samples_merge(&sh->total.e2e, &st.e2e);
    sh->total.ok += st.ok;
    sh->total.busy += st.busy;
    sh->total.errors += st.errors;
    sh->total.out_tokens += st.out_tokens;
    sh->total.prompt_tokens += st.prompt_tokens;
    if (st.errors && !sh->total.first_error[0]) memcpy(sh->total.first_error, st.first_error, sizeof st.first_error);
    if (t_end > sh->t_end) sh->t_end = t_end;
    pthread_mutex_unlock(&sh->mu);
    free(st.ttft.v);
    free(st.itl.v);
    free(st.e2e.v);
    return NULL;
}

/* ---- options ---- */

static void usage(FILE *f) {
    fprintf(f, "usage: bench_loadgen --port P [--host 127.0.0.1] [--mode api|chat|ws] [-c CLIENTS (8)]\n"
               "                     [-n REQUESTS (2 x clients, at least 8)] [--prompt-words W (16)]\n"
               "                     [--max-tokens T (32)] [--timeout S (600)] [--md] [--md-header]\n");
}

static bool parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    const long v = strtol(s, &end, 10);
    if (*s == 0 || *end || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

static int parse(int argc, char **argv, lg_opts *o) {
    *o = (lg_opts){ .host = "127.0.0.1", .clients = 8, .prompt_words = 16, .max_tokens = 32, .timeout_s = 600,
                    .mode = LG_API };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); exit(0); }
        else if (!strcmp(a, "--md")) { o->md = true; continue; }
        else if (!strcmp(a, "--md-header")) { o->md_header = true; continue; }
        else if (!v) ok = false;
        else if (!strcmp(a, "--host")) o->host = v;
        else if (!strcmp(a, "--port")) ok = parse_int(v, 1, 65535, &o->port);
        else if (!strcmp(a, "-c") || !strcmp(a, "--clients")) ok = parse_int(v, 1, 4096, &o->clients);
        else if (!strcmp(a, "-n") || !strcmp(a, "--requests")) ok = parse_int(v, 1, 1 << 24, &o->requests);
        else if (!strcmp(a, "--prompt-words")) ok = parse_int(v, 1, 100000, &o->prompt_words);
        else if (!strcmp(a, "--max-tokens")) ok = parse_int(v, 1, 1 << 20, &o->max_tokens);
        else if (!strcmp(a, "--timeout")) ok = parse_int(v, 1, 1 << 20, &o->timeout_s);
        else if (!strcmp(a, "--mode")) {
            ok = false;
            for (int m = 0; m < LG_MODE_COUNT; m++)
                if (!strcmp(v, mode_names[m])) { o->mode = (lg_mode)m; ok = true; }
        } else ok = false;
        if (!ok) {
            fprintf(stderr, "bench_loadgen: bad option %s %s\n", a, v ? v : "");
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (o->md_header) return 0;
    if (!o->port) { fprintf(stderr, "bench_loadgen: --port is required\n"); usage(stderr); return 2; }
    if (!o->requests) o->requests = o->clients * 2 > 8 ? o->clients * 2 : 8;
    /* a fixed prompt of plain words (the server counts its tokens; reported below) */
    static const char *const words[] = { "the", "little", "cat", "saw", "a", "big", "red", "ball", "in", "park" };
    o->prompt = malloc((size_t)o->prompt_words * 8 + 1);
    if (!o->prompt) abort();
    size_t n = 0;
    for (int i = 0; i < o->prompt_words; i++)
        n += (size_t)sprintf(o->prompt + n, "%s%s", i ? " " : "", words[i % 10]);
    return 0;
}

static const char MD_HEADER[] =
    "| clients | requests | ok | 503 (retried) | errors | out tok/s | req/s | TTFT p50 / p95 / p99 (ms) "
    "| ITL p50 / p95 / p99 (ms) | e2e p50 / p95 / p99 (s) |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---|---|---|\n";

int main(int argc, char **argv) {
    lg_opts o;
    const int rc = parse(argc, argv, &o);
    if (rc) return rc;
    if (o.md_header) { fputs(MD_HEADER, stdout); return 0; }
    lg_shared sh = { .o = &o };
    atomic_init(&sh.next, 0);
    pthread_mutex_init(&sh.mu, NULL);
    pthread_t *th = calloc((size_t)o.clients, sizeof *th);
    if (!th) abort();
    const double t0 = now_s();
    int started = 0;
    for (int i = 0; i < o.clients; i++) {
        if (pthread_create(&th[i], NULL, client_main, &sh) != 0) {
            fprintf(stderr, "bench_loadgen: could not start client %d\n", i);
            break;
        }
        started++;
    }
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    free(th);
    lg_stats *t = &sh.total;
    const double wall = (sh.t_end > t0 ? sh.t_end : now_s()) - t0;
    qsort(t->ttft.v, t->ttft.n, sizeof(double), cmp_double);
    qsort(t->itl.v, t->itl.n, sizeof(double), cmp_double);
    qsort(t->e2e.v, t->e2e.n, sizeof(double), cmp_double);
    const double tok_s = (double)t->out_tokens / wall, req_s = (double)t->ok / wall;
    const long lost = o.requests - t->ok - t->errors;
    if (o.md) {
        printf("| %d | %d | %ld | %ld | %ld | %.1f | %.2f | %.0f / %.0f / %.0f | %.0f / %.0f / %.0f | %.2f / %.2f / %.2f |\n",
               o.clients, o.requests, t->ok, t->busy, t->errors + lost, tok_s, req_s, pct(&t->ttft, 50) * 1e3,
               pct(&t->ttft, 95) * 1e3, pct(&t->ttft, 99) * 1e3, pct(&t->itl, 50) * 1e3, pct(&t->itl, 95) * 1e3,
               pct(&t->itl, 99) * 1e3, pct(&t->e2e, 50), pct(&t->e2e, 95), pct(&t->e2e, 99));
    } else {
        printf("mode %s, %d clients, %d requests (prompt: %d words = %.1f tokens, output %d tokens, ignore_eos)\n",
               mode_names[o.mode], o.clients, o.requests, o.prompt_words,
               t->ok ? (double)t->prompt_tokens / (double)t->ok : 0.0, o.max_tokens);
        printf("  ok %ld, 503/QUEUE_FULL answers %ld (retried), errors %ld, lost %ld, wall %.2f s\n", t->ok, t->busy,
               t->errors, lost, wall);
        printf("  output %.1f tok/s, %.2f req/s\n", tok_s, req_s);
        printf("  TTFT  p50 %8.1f  p95 %8.1f  p99 %8.1f ms\n", pct(&t->ttft, 50) * 1e3, pct(&t->ttft, 95) * 1e3,
               pct(&t->ttft, 99) * 1e3);
        printf("  ITL   p50 %8.1f  p95 %8.1f  p99 %8.1f ms\n", pct(&t->itl, 50) * 1e3, pct(&t->itl, 95) * 1e3,
               pct(&t->itl, 99) * 1e3);
        printf("  e2e   p50 %8.3f  p95 %8.3f  p99 %8.3f s\n", pct(&t->e2e, 50), pct(&t->e2e, 95), pct(&t->e2e, 99));
    }
    if (t->errors) fprintf(stderr, "bench_loadgen: %ld errors; first: %s\n", t->errors, t->first_error);
    free(t->ttft.v);
    free(t->itl.v);
    free(t->e2e.v);
    free(o.prompt);
    pthread_mutex_destroy(&sh.mu);
    return t->errors || lost ? 1 : 0;
}
