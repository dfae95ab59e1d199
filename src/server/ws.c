/* ws.c — WebSocket endpoint /ws (RFC 6455 via libmicrohttpd's upgrade and wslay's event
 * API). After the handshake (Sec-WebSocket-Accept = base64(SHA-1(key + RFC GUID))) the
 * connection's own thread runs an epoll loop over the socket and an eventfd the
 * scheduler writes when the connection's job has new text or ends.
 *
 * Messages are JSON envelopes {"type": ..., "payload": ...}:
 *   client -> server: inference {prompt, temperature?, topk?, topp?, max_tokens?, stream?,
 *                     ...the /api fields}; stop (cancels the running inference); status
 *   server -> client: token {text} (stream), done {summary; text unless streamed},
 *                     status {running, waiting, busy}, error {message}
 * One inference at a time per connection (a second one while busy is an error message).
 * Not here: other subprotocols, compression. Memory: the loop owns its wslay context,
 * eventfd and its job reference; everything is released before the handler returns. */
#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "core/base.h"
#include "server/server.h"

enum { WS_MAX_MSG = 1 << 20 };

/* ---- SHA-1 (FIPS 180-4), only for the handshake ---- */

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const uint8_t *p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
        else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
        else { f = b ^ c ^ d; k = 0xCA62C1D6; }
        const uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d; d = c; c = rol(b, 30); b = a; a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

static void sha1(const uint8_t *msg, size_t n, uint8_t out[20]) {
    uint32_t h[5] = { 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0 };
    size_t i = 0;
    for (; i + 64 <= n; i += 64) sha1_block(h, msg + i);
    uint8_t tail[128] = { 0 };
    const size_t r = n - i;
    memcpy(tail, msg + i, r);
    tail[r] = 0x80;
    const size_t tn = r + 9 <= 64 ? 64 : 128;
    const uint64_t bits = (uint64_t)n * 8;
    for (int k = 0; k < 8; k++) tail[tn - 1 - k] = (uint8_t)(bits >> (8 * k));
    for (size_t k = 0; k < tn; k += 64) sha1_block(h, tail + k);
    for (int k = 0; k < 5; k++)
        for (int b = 0; b < 4; b++) out[4 * k + b] = (uint8_t)(h[k] >> (24 - 8 * b));
}

static void base64(const uint8_t *in, size_t n, char *out) {
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        const uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = tbl[v >> 18 & 63];
        out[o++] = tbl[v >> 12 & 63];
        out[o++] = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = 0;
}

/* ---- the connection loop ---- */

typedef struct ws_conn {
    srv_server *srv;
    int         fd, efd;
    const char *extra;        /* bytes MHD read past the handshake */
    size_t      extra_len;
    srv_job    *job;          /* the running inference, or NULL */
    bool        job_stream;
    size_t      job_off;
    char       *job_text;     /* accumulated text for non-streamed inferences */
    size_t      job_text_len;
    unsigned    n_jobs;
    char        rid[24];
    bool        sock_failed;  /* the socket hit EOF or an error: the peer is gone */
} ws_conn;

static void ws_send(wslay_event_context_ptr ctx, const char *type, json_t *payload) {
    json_t *o = json_pack("{s:s, s:o}", "type", type, "payload", payload ? payload : json_object());
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    struct wslay_event_msg m = { WSLAY_TEXT_FRAME, (const uint8_t *)s, strlen(s) };
    wslay_event_queue_msg(ctx, &m);   /* copies the message */
    free(s);
}

static void ws_error(wslay_event_context_ptr ctx, const char *msg) {
    ws_send(ctx, "error", json_pack("{s:s}", "message", msg));
}

static void ws_job_end(ws_conn *c) {
    if (c->job) {
        /* the scheduler may still hold the job; it must not touch our eventfd after this */
        pthread_mutex_lock(&c->job->mu);
        c->job->notify_fd = -1;
        pthread_mutex_unlock(&c->job->mu);
    }
    srv_job_release(c->job);
    c->job = NULL;
    free(c->job_text);
    c->job_text = NULL;
    c->job_text_len = 0;
}

static void ws_inference(ws_conn *c, wslay_event_context_ptr ctx, const json_t *p) {
    if (c->job) { ws_error(ctx, "an inference is already running on this connection; send stop first"); return; }
    char msg[512];
    const json_t *prompt = json_object_get(p, "prompt");
    if (!json_is_string(prompt)) { ws_error(ctx, "'payload.prompt' must be a string"); return; }
    const json_t *stream = json_object_get(p, "stream");
    if (stream && !json_is_null(stream) && !json_is_boolean(stream)) { ws_error(ctx, "'payload.stream' must be a boolean"); return; }
    srv_job *j = srv_job_new();
    srv_req r = { .srv = c->srv };
    if (!srv_job_params(j, p, 128, msg, sizeof msg) ||
        srv_job_prompt(&r, j, json_string_value(prompt), json_string_length(prompt), true, false, msg, sizeof msg)) {
        srv_job_release(j);
        ws_error(ctx, msg);
        return;
    }
    const double max = (double)srv_cfg(c->srv)->timeout_s;
    j->deadline = srv_now() + (j->deadline > 0 && j->deadline < max ? j->deadline : max);
    snprintf(j->rid, sizeof j->rid, "%.12s.%u", c->rid, ++c->n_jobs);
    j->notify_fd = c->efd;
    const srv_submit s = srv_sched_submit(srv_scheduler(c->srv), j);
    if (s != SRV_SUBMIT_OK) {
        srv_job_release(j);
        ws_error(ctx, s == SRV_SUBMIT_FULL ? "the server is busy (request queue full); retry shortly"
                                          : "the server is shutting down");
        return;
    }
    c->job = j;
    c->job_stream = !stream || json_is_true(stream);
    c->job_off = 0;
}

/* New text or the end of the running job. */
static void ws_job_progress(ws_conn *c, wslay_event_context_ptr ctx) {
    if (!c->job) return;
    char *text;
    size_t len;
    const srv_finish f = srv_job_wait(c->job, &c->job_off, &text, &len, 0);
    if (len && c->job_stream) ws_send(ctx, "token", json_pack("{s:s%}", "text", text, len));
    else if (len) {
        c->job_text = q_xrealloc(c->job_text, c->job_text_len + len);
        memcpy(c->job_text + c->job_text_len, text, len);
        c->job_text_len += len;
    }
    free(text);
    if (f == SRV_FINISH_NONE) return;
    srv_job_account(c->job);
    ws_send(ctx, "done", srv_api_summary(c->job, c->job_stream ? NULL : (c->job_text ? c->job_text : ""),
                                         c->job_text_len));
    ws_job_end(c);
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user) {
    ws_conn *c = user;
    if (arg->opcode != WSLAY_TEXT_FRAME) {
        if (arg->opcode == WSLAY_BINARY_FRAME) ws_error(ctx, "binary messages are not supported; send JSON text");
        return;   /* ping/pong/close are answered by wslay */
    }
    json_error_t je;
    json_t *o = json_loadb((const char *)arg->msg, arg->msg_length, 0, &je);
    const char *type = o ? json_string_value(json_object_get(o, "type")) : NULL;
    if (!o || !json_is_object(o) || !type) {
        ws_error(ctx, "expected a JSON object {\"type\": ..., \"payload\": ...}");
    } else if (!strcmp(type, "inference")) {
        const json_t *p = json_object_get(o, "payload");
        if (!json_is_object(p)) ws_error(ctx, "'payload' must be an object");
        else ws_inference(c, ctx, p);
    } else if (!strcmp(type, "stop")) {
        if (c->job) atomic_store(&c->job->cancel, true);   /* the done message follows */
    } else if (!strcmp(type, "status")) {
        const srv_sched *s = srv_scheduler(c->srv);
        ws_send(ctx, "status", json_pack("{s:i, s:i, s:b}", "running", srv_sched_running(s), "waiting",
                                         srv_sched_waiting(s), "busy", c->job != NULL));
    } else {
        ws_error(ctx, "unknown message type; use inference, stop or status");
    }
    json_decref(o);
}

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user) {
    (void)flags;
    ws_conn *c = user;
    if (c->extra_len) {
        const size_t n = len < c->extra_len ? len : c->extra_len;
        memcpy(buf, c->extra, n);
        c->extra += n;
        c->extra_len -= n;
        return (ssize_t)n;
    }
    const ssize_t n = recv(c->fd, buf, len, 0);
    if (n > 0) return n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    else {
        c->sock_failed = true;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    }
    return -1;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user) {
    (void)flags;
    ws_conn *c = user;
    const ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    if (n >= 0) return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK) wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    else {
        c->sock_failed = true;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    }
    return -1;
}

/* wslay answers most protocol errors itself (unmasked frame 1002, message over the limit 1009,
 * bad UTF-8 in text 1007) by queueing a close with that code. A frame the frame layer rejects
 * (a fragmented control frame) instead makes wslay_event_recv fail with CALLBACK_FAILURE after
 * queueing a close without a status. If the socket is fine, the peer is owed 1002: when none
 * of our output was mid-frame before the read (out_idle), the 4-byte close frame goes out
 * directly; otherwise wslay's queue is flushed as is. A failed socket owes nothing. */
static void ws_recv_failed(ws_conn *c, wslay_event_context_ptr ctx, int rc, bool out_idle) {
    if (c->sock_failed || wslay_event_get_close_sent(ctx)) return;
    if (rc == WSLAY_ERR_CALLBACK_FAILURE && out_idle) {
        static const uint8_t close_1002[4] = { 0x88, 0x02, 0x03, 0xea };   /* FIN|close, len 2, 1002 */
        ssize_t w = send(c->fd, close_1002, sizeof close_1002, MSG_NOSIGNAL);
        (void)w;   /* best effort: the session ends either way */
        return;
    }
    (void)wslay_event_send(ctx);
}

static void ws_loop(ws_conn *c) {
    const struct wslay_event_callbacks cbs = { .recv_callback = ws_recv, .send_callback = ws_send_cb,
                                               .on_msg_recv_callback = on_msg };
    wslay_event_context_ptr ctx;
    if (wslay_event_context_server_init(&ctx, &cbs, c) != 0) return;
    wslay_event_config_set_max_recv_msg_length(ctx, WS_MAX_MSG);
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = c->fd };
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    struct epoll_event eev = { .events = EPOLLIN, .data.fd = c->efd };
    epoll_ctl(ep, EPOLL_CTL_ADD, c->efd, &eev);
    bool closing = false;
    double close_at = 0;
    int rc;
    if (c->extra_len && (rc = wslay_event_recv(ctx)) != 0) {
        ws_recv_failed(c, ctx, rc, true);
        goto done;
    }
    while (wslay_event_want_read(ctx) || wslay_event_want_write(ctx)) {
        ev.events = (wslay_event_want_read(ctx) ? EPOLLIN : 0) | (wslay_event_want_write(ctx) ? EPOLLOUT : 0);
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        struct epoll_event got[2];
        const int n = epoll_wait(ep, got, 2, 100);
        for (int i = 0; i < n; i++) {
            if (got[i].data.fd == c->efd) {
                uint64_t v;
                ssize_t r = read(c->efd, &v, sizeof v);
                (void)r;
                ws_job_progress(c, ctx);
            } else {
                const bool out_idle = !wslay_event_want_write(ctx);
                if ((got[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && (rc = wslay_event_recv(ctx)) != 0) {
                    ws_recv_failed(c, ctx, rc, out_idle);
                    goto done;
                }
            }
        }
        if (srv_stopping(c->srv) && !closing && !c->job) {
            wslay_event_queue_close(ctx, WSLAY_CODE_GOING_AWAY, NULL, 0);
            closing = true;
            close_at = srv_now();
        }
        if (closing && srv_now() > close_at + 2) break;   /* peer ignores our close */
        if (wslay_event_want_write(ctx) && wslay_event_send(ctx) != 0) goto done;
    }
done:
    if (c->job) {
        /* peer gone: free the slot. The job ends after we let go of it, so it is not in the
         * latency histograms; it counts as a disconnect here. */
        atomic_store(&c->job->cancel, true);
        srv_metrics_error(SRV_ERR_DISCONNECTED);
    }
    ws_job_end(c);
    close(ep);
    wslay_event_context_free(ctx);
}

static void ws_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra, size_t extra_len,
                        MHD_socket sock, struct MHD_UpgradeResponseHandle *urh) {
    (void)conn;
    const srv_req *r = con_cls;
    ws_conn c = { .srv = cls, .fd = sock, .extra = extra, .extra_len = extra_len };
    snprintf(c.rid, sizeof c.rid, "%s", r ? r->rid : "ws");
    c.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c.efd >= 0) {
        srv_log(SRV_LOG_INFO, "ws_open", c.rid, NULL);
        ws_loop(&c);
        close(c.efd);
        srv_log(SRV_LOG_INFO, "ws_close", c.rid, NULL);
    }
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

static bool header_has(struct MHD_Connection *conn, const char *name, const char *token) {
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
    if (!v) return false;
    const size_t n = strlen(token);
    for (const char *p = v; *p; p++)
        if (!strncasecmp(p, token, n)) return true;
    return false;
}

int srv_route_ws(srv_req *r) {
    const char *key = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Sec-WebSocket-Key");
    const char *ver = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Sec-WebSocket-Version");
    if (!header_has(r->conn, "Upgrade", "websocket") || !header_has(r->conn, "Connection", "upgrade") || !key ||
        strlen(key) > 64)
        return srv_reply_error(r, 400, "invalid_request_error", "/ws needs a WebSocket upgrade request");
    if (!ver || strcmp(ver, "13"))
        return srv_reply_error(r, 426, "invalid_request_error", "only WebSocket version 13 is supported");
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char cat[128];
    const int n = snprintf(cat, sizeof cat, "%s%s", key, guid);
    uint8_t dig[20];
    sha1((const uint8_t *)cat, (size_t)n, dig);
    char accept[32];
    base64(dig, sizeof dig, accept);
    struct MHD_Response *resp = MHD_create_response_for_upgrade(ws_upgraded, r->srv);
    MHD_add_response_header(resp, "Upgrade", "websocket");
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
    return srv_reply_response(r, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
}
