/* ws.c — WebSocket endpoint /ws (RFC 6455 via libmicrohttpd's upgrade and wslay's event
 * API). After the handshake (Sec-WebSocket-Accept = base64(SHA-1(key + RFC GUID))) MHD's
 * connection thread hands the socket to the reactor and ends: ONE reactor thread runs one
 * epoll over every upgraded socket (non-blocking) and each connection's eventfd, which the
 * scheduler writes when one of that connection's jobs has new tokens or ends. Nothing in
 * the reactor blocks; a lingering close is a state, not a wait. An inference for a model
 * that is not loaded waits as a *pending* generation while the registry's loader thread
 * loads it (srv_models_try_acquire); the registry writes the hub's wake fd when a load
 * ends, and the reactor then starts it (or reports the failure). Other sessions stream on.
 *
 * Messages are JSON envelopes {"type": ..., "payload": ...} (the seed's protocol):
 *   client -> server:
 *     inference {prompt, id?, model?, temperature?, topk?|top_k?, topp?|top_p?, max_tokens?,
 *                stream? (true), ...the /api fields}; several may run at once (at most
 *                WS_MAX_GENS), each named by its id (string or integer; the server numbers
 *                those without one: "1", "2", ...)
 *     stop {id?}   cancels that generation, or every one of the connection without an id
 *     status       (and metrics, an extension)
 *     auth {api_key} the session's API key when the server has keys and the upgrade carried
 *                none (browsers cannot set headers): it must be the first message, within
 *                WS_AUTH_S seconds; anything else (or a bad key) gets UNAUTHORIZED and a
 *                close (1008). Answered {"type":"auth","payload":{"ok":true}}; on a server
 *                without keys it is accepted and ignored. The upgrade may instead carry the
 *                key as `Authorization`/`X-API-Key` or as the subprotocol "quarrel.key.KEY"
 *                (echoed in Sec-WebSocket-Protocol, as RFC 6455 asks). A session whose
 *                key stops working (revoked or expired, seen by a reload; a rotated-out
 *                secret past its grace) gets UNAUTHORIZED and a close (1008) within about
 *                a second; its running generations are cancelled.
 *   server -> client:
 *     inference {id, token, token_id, stream, complete: false, tokens_per_sec}: one per
 *                generated token while streaming (token: the text that token released,
 *                whole UTF-8 characters only, possibly "");
 *                then {id, token (the rest of the text), token_id: null, stream,
 *                complete: true, finish_reason, tokens_generated, tokens_per_sec, usage,
 *                text (stream false only)}
 *     status {connected, models, state ("idle" | "generating"), active [ids], running, waiting, busy}
 *     metrics {running, waiting, kv_cache_usage_ratio}
 *     error {code, message, request_id (the generation's id or null)} with code one of
 *           INVALID_REQUEST, MODEL_NOT_FOUND, INFERENCE_ERROR, CONNECTION_LOST, QUEUE_FULL,
 *           RATE_LIMITED, UNAUTHORIZED, TIMEOUT
 * Heartbeat: a ping after WS_PING_S seconds without input; a peer silent for 3 such
 * periods is closed with 1001. A close we send (ours, or wslay's answer to a protocol error
 * such as 1009 for a message over WS_MAX_MSG) is followed by a lingering close: our side
 * is shut for writing and the peer's remaining input is read and dropped (bounded), so the
 * peer's kernel never sees a reset that would discard the close frame before it is read.
 * Not here: other subprotocols, compression. Memory: the reactor owns each ws_conn (its
 * wslay context, eventfd, copied handshake leftovers and its jobs' references) from
 * adoption to ws_conn_free, which hands the socket back to MHD to close. */
#include <errno.h>
#include <fcntl.h>
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

enum {
    WS_MAX_MSG  = 1 << 20,   /* bytes of one message, all fragments together */
    WS_MAX_GENS = 16,        /* concurrent generations per connection */
    WS_PING_S   = 20,        /* seconds without input before a ping */
    WS_AUTH_S   = 10,        /* seconds a session has to send its auth message */
};
static const double WS_KEY_CHECK_S = 1.0;           /* seconds between re-checks of a session's key */
static const double WS_LINGER_S = 2.0;              /* lingering close: most seconds draining */
static const size_t WS_LINGER_BYTES = 64u << 20;    /* ...and most bytes */

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

typedef struct ws_gen {
    srv_job   *job;         /* NULL while pending: its model is loading */
    json_t    *payload;     /* pending: the inference payload (owned) */
    unsigned   ticket;      /* pending: the load it waits for (srv_models_try_acquire) */
    srv_inst  *inst;        /* the model instance it runs on (a reference) */
    json_t    *id;          /* echoed in every message of this generation */
    bool       stream;
    srv_cursor cur;
    char      *text;        /* accumulated text when not streaming */
    size_t     text_len;
    long       n_sent;      /* token messages sent */
    double     t_first;     /* when the first token arrived here (srv_now) */
} ws_gen;

/* One epoll registration: the connection's socket or its eventfd. */
typedef struct ws_watch {
    struct ws_conn *c;
    bool            is_efd;
} ws_watch;

typedef struct ws_conn {
    srv_server *srv;
    int         fd, efd;
    struct MHD_UpgradeResponseHandle *urh;
    wslay_event_context_ptr ctx;
    ws_watch    w_sock, w_efd;
    char       *extra;        /* bytes MHD read past the handshake (a copy) */
    const char *extra_at;
    size_t      extra_len;
    ws_gen      gens[WS_MAX_GENS];
    int         n_gens;
    unsigned    n_jobs;
    char        rid[24];
    bool        sock_failed;  /* the socket hit EOF or an error: the peer is gone */
    bool        raw_close;    /* a close frame went out past wslay (ws_recv_failed) */
    bool        closing;      /* we queued a close (shutdown, heartbeat) */
    bool        authed;       /* may send requests (keys off, or a key was accepted) */
    bool        unauth_close; /* refused: close with 1008 once the error is out */
    srv_principal who;        /* the key the session authenticated with */
    double      t_open;
    double      last_key_check;   /* when who was last re-checked against the key store */
    bool        lingering;    /* the session is over; draining the peer's input */
    bool        dead;         /* to be freed at the end of this reactor turn */
    uint32_t    ev_mask;      /* epoll events registered for fd */
    double      last_rx, last_ping, close_at, linger_until;
    size_t      lingered;     /* bytes dropped while lingering */
    struct ws_conn *next;
} ws_conn;

typedef enum ws_err {
    WS_ERR_INVALID_REQUEST, WS_ERR_MODEL_NOT_FOUND, WS_ERR_INFERENCE_ERROR, WS_ERR_CONNECTION_LOST,
    WS_ERR_QUEUE_FULL, WS_ERR_RATE_LIMITED, WS_ERR_UNAUTHORIZED, WS_ERR_TIMEOUT, WS_ERR_COUNT
} ws_err;

static const char *const ws_err_names[WS_ERR_COUNT] = {
    [WS_ERR_INVALID_REQUEST] = "INVALID_REQUEST", [WS_ERR_MODEL_NOT_FOUND] = "MODEL_NOT_FOUND",
    [WS_ERR_INFERENCE_ERROR] = "INFERENCE_ERROR", [WS_ERR_CONNECTION_LOST] = "CONNECTION_LOST",
    [WS_ERR_QUEUE_FULL] = "QUEUE_FULL",           [WS_ERR_RATE_LIMITED] = "RATE_LIMITED",
    [WS_ERR_UNAUTHORIZED] = "UNAUTHORIZED",       [WS_ERR_TIMEOUT] = "TIMEOUT",
};

static void ws_send(wslay_event_context_ptr ctx, const char *type, json_t *payload) {
    json_t *o = json_pack("{s:s, s:o}", "type", type, "payload", payload ? payload : json_object());
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    Q_ASSERT(s);
    struct wslay_event_msg m = { WSLAY_TEXT_FRAME, (const uint8_t *)s, strlen(s) };
    wslay_event_queue_msg(ctx, &m);   /* copies the message */
    free(s);
}

/* id: the generation's id (borrowed) or NULL. */
static void ws_error(wslay_event_context_ptr ctx, ws_err code, const json_t *id, const char *msg) {
    ws_send(ctx, "error", json_pack("{s:s, s:s, s:O}", "code", ws_err_names[code], "message", msg, "request_id",
                                    id ? (json_t *)id : json_null()));
}

static void ws_gen_end(ws_conn *c, int i) {
    ws_gen *g = &c->gens[i];
    if (g->job) {   /* the scheduler may still hold the job; it must not touch our eventfd after this */
        pthread_mutex_lock(&g->job->mu);
        g->job->notify_fd = -1;
        pthread_mutex_unlock(&g->job->mu);
        srv_job_release(g->job);
    }
    json_decref(g->payload);
    srv_inst_release(g->inst);   /* may free a swapped-out version (joins its idle engine) */
    json_decref(g->id);
    free(g->text);
    c->gens[i] = c->gens[--c->n_gens];
    memset(&c->gens[c->n_gens], 0, sizeof c->gens[c->n_gens]);
}

static int ws_gen_find(const ws_conn *c, const json_t *id) {
    for (int i = 0; i < c->n_gens; i++)
        if (json_equal(c->gens[i].id, (json_t *)id)) return i;
    return -1;
}

static void ws_inference_run(ws_conn *c, wslay_event_context_ptr ctx, const json_t *p, json_t *id, srv_inst *inst);

static void ws_acquire_error(wslay_event_context_ptr ctx, srv_acquire acq, const json_t *id, const char *msg) {
    ws_error(ctx, acq == SRV_ACQUIRE_NOT_FOUND ? WS_ERR_MODEL_NOT_FOUND
                  : acq == SRV_ACQUIRE_CLOSED ? WS_ERR_CONNECTION_LOST : WS_ERR_INFERENCE_ERROR, id, msg);
}

static void ws_inference(ws_conn *c, wslay_event_context_ptr ctx, const json_t *p) {
    char msg[512];
    const json_t *given = json_object_get(p, "id");
    json_t *id;
    if (given && !json_is_null(given)) {
        if (!(json_is_string(given) && json_string_length(given) <= 128) && !json_is_integer(given)) {
            ws_error(ctx, WS_ERR_INVALID_REQUEST, NULL, "'payload.id' must be a string (at most 128 bytes) or an integer");
            return;
        }
        if (ws_gen_find(c, given) >= 0) {
            ws_error(ctx, WS_ERR_INVALID_REQUEST, given, "a generation with this id is already running on this connection");
            return;
        }
        id = json_deep_copy(given);
    } else {   /* the next number, past the pending generations (they become jobs) */
        unsigned k = c->n_jobs + 1;
        for (int i = 0; i < c->n_gens; i++) k += !c->gens[i].job;
        for (;;) {
            snprintf(msg, sizeof msg, "%u", k++);
            id = json_string(msg);
            if (ws_gen_find(c, id) < 0) break;
            json_decref(id);
        }
    }
    const json_t *prompt = json_object_get(p, "prompt"), *stream = json_object_get(p, "stream"),
                 *model = json_object_get(p, "model");
    srv_inst *inst = NULL;
    if (c->n_gens == WS_MAX_GENS) {
        snprintf(msg, sizeof msg, "at most %d generations may run at once on one connection", WS_MAX_GENS);
        ws_error(ctx, WS_ERR_RATE_LIMITED, id, msg);
        goto fail;
    }
    if (!json_is_string(prompt)) { ws_error(ctx, WS_ERR_INVALID_REQUEST, id, "'payload.prompt' must be a string"); goto fail; }
    if (stream && !json_is_null(stream) && !json_is_boolean(stream)) {
        ws_error(ctx, WS_ERR_INVALID_REQUEST, id, "'payload.stream' must be a boolean");
        goto fail;
    }
    if (model && !json_is_null(model) && !json_is_string(model)) {
        ws_error(ctx, WS_ERR_INVALID_REQUEST, id, "'payload.model' must be a string");
        goto fail;
    }
    /* an unloaded model loads on the registry's loader thread: the generation waits as a
     * pending one (ws_pending_retry) and the reactor goes on */
    unsigned ticket = 0;
    const srv_acquire acq = srv_models_try_acquire(srv_models_of(c->srv), json_string_value(model), &ticket, &inst, NULL,
                                                   msg, sizeof msg);
    if (acq == SRV_ACQUIRE_PENDING) {
        c->gens[c->n_gens++] = (ws_gen){ .id = id, .payload = json_deep_copy(p), .ticket = ticket };
        return;
    }
    if (acq != SRV_ACQUIRE_OK) {
        ws_acquire_error(ctx, acq, id, msg);
        goto fail;
    }
    ws_inference_run(c, ctx, p, id, inst);
    return;
fail:
    json_decref(id);
}

/* Starts an admitted generation on inst (both references are taken over). */
static void ws_inference_run(ws_conn *c, wslay_event_context_ptr ctx, const json_t *p, json_t *id, srv_inst *inst) {
    char msg[512];
    const json_t *prompt = json_object_get(p, "prompt"), *stream = json_object_get(p, "stream");
    srv_job *j = NULL;
    srv_limit which = SRV_LIMIT_RPM;
    const int64_t wait = srv_guard_admit(srv_guard_of(c->srv), &c->who, &which);
    if (wait) {
        snprintf(msg, sizeof msg, "key '%s' is over its %s limit; retry in %lld s", c->who.name,
                 which == SRV_LIMIT_TPM ? "generated tokens per minute" : "requests per minute", (long long)wait);
        ws_error(ctx, WS_ERR_RATE_LIMITED, id, msg);
        goto fail;
    }
    j = srv_job_new();
    srv_req r = { .srv = c->srv, .inst = inst };
    if (!srv_job_params(j, p, 128, msg, sizeof msg) ||
        srv_job_prompt(&r, j, json_string_value(prompt), json_string_length(prompt), true, false, msg, sizeof msg)) {
        ws_error(ctx, WS_ERR_INVALID_REQUEST, id, msg);
        goto fail;
    }
    const double max = (double)srv_cfg(c->srv)->timeout_s;
    j->deadline = srv_now() + (j->deadline > 0 && j->deadline < max ? j->deadline : max);
    snprintf(j->rid, sizeof j->rid, "%.12s.%u", c->rid, ++c->n_jobs);
    j->notify_fd = c->efd;
    srv_guard_job(srv_guard_of(c->srv), &c->who, j);
    srv_log(SRV_LOG_INFO, "prompt", j->rid, json_pack("{s:O, s:O}", "prompt", prompt, "ws_id", id));
    const srv_submit s = srv_sched_submit(srv_inst_sched(inst), j);
    if (s != SRV_SUBMIT_OK) {
        if (s == SRV_SUBMIT_FULL) ws_error(ctx, WS_ERR_QUEUE_FULL, id, "the server is busy (request queue full); retry shortly");
        else ws_error(ctx, WS_ERR_CONNECTION_LOST, id, "the server is shutting down");
        srv_metrics_error(SRV_ERR_QUEUE_FULL);
        goto fail;
    }
    c->gens[c->n_gens++] = (ws_gen){ .job = j, .inst = inst, .id = id, .stream = !stream || !json_is_false(stream) };
    return;
fail:
    srv_job_release(j);
    srv_inst_release(inst);
    json_decref(id);
}

/* Sends what generation i has produced; at its end, the final message (and an error
 * for a timeout or a failure), then forgets it. */
static void ws_gen_progress(ws_conn *c, wslay_event_context_ptr ctx, int i) {
    ws_gen *g = &c->gens[i];
    srv_chunk ch;
    const srv_finish f = srv_job_read(g->job, &g->cur, &ch, 0);
    const double now = srv_now();
    size_t off = 0;   /* into ch.text */
    if (ch.n_toks && g->t_first == 0) g->t_first = now;
    for (size_t t = 0; t < ch.n_toks && g->stream; t++) {
        const size_t end = ch.toks[t].text_end - ch.text_off;
        g->n_sent++;
        const double rate = g->n_sent > 1 && now > g->t_first ? (double)(g->n_sent - 1) / (now - g->t_first) : 0.0;
        ws_send(ctx, "inference", json_pack("{s:O, s:s%, s:i, s:b, s:b, s:f}", "id", g->id, "token", ch.text + off,
                                            end - off, "token_id", (int)ch.toks[t].id, "stream", true, "complete",
                                            false, "tokens_per_sec", rate));
        off = end;
    }
    if (!g->stream && ch.len) {
        g->text = q_xrealloc(g->text, g->text_len + ch.len + 1);
        memcpy(g->text + g->text_len, ch.text, ch.len);
        g->text_len += ch.len;
        g->text[g->text_len] = 0;
    }
    if (f != SRV_FINISH_NONE) {
        srv_job_account(g->job);
        if (f == SRV_FINISH_TIMEOUT) ws_error(ctx, WS_ERR_TIMEOUT, g->id, g->job->err);
        else if (f == SRV_FINISH_ERROR) ws_error(ctx, WS_ERR_INFERENCE_ERROR, g->id, g->job->err);
        json_t *o = srv_api_summary(g->job, g->stream ? NULL : (g->text ? g->text : ""), g->text_len);
        json_object_set(o, "id", g->id);
        json_object_set_new(o, "token", g->stream ? json_stringn(ch.text + off, ch.len - off) : json_string(""));
        json_object_set_new(o, "token_id", json_null());
        json_object_set_new(o, "stream", json_boolean(g->stream));
        json_object_set_new(o, "complete", json_true());
        ws_send(ctx, "inference", o);
        ws_gen_end(c, i);
    }
    srv_chunk_free(&ch);
}

static void ws_progress_all(ws_conn *c, wslay_event_context_ptr ctx) {
    for (int i = c->n_gens - 1; i >= 0; i--)   /* ends swap from the back */
        if (c->gens[i].job) ws_gen_progress(c, ctx, i);
}

/* Pending generations whose model load ended: start them, or report why not. */
static void ws_pending_retry(ws_conn *c, wslay_event_context_ptr ctx) {
    for (int i = c->n_gens - 1; i >= 0; i--) {
        ws_gen *g = &c->gens[i];
        if (g->job) continue;
        char msg[512];
        srv_inst *inst = NULL;
        const srv_acquire acq = srv_models_try_acquire(srv_models_of(c->srv), json_string_value(json_object_get(g->payload, "model")),
                                                       &g->ticket, &inst, NULL, msg, sizeof msg);
        if (acq == SRV_ACQUIRE_PENDING) continue;
        json_t *id = json_incref(g->id), *p = json_incref(g->payload);
        ws_gen_end(c, i);   /* frees the slot ws_inference_run fills */
        if (acq == SRV_ACQUIRE_OK) ws_inference_run(c, ctx, p, id, inst);
        else {
            ws_acquire_error(ctx, acq, id, msg);
            json_decref(id);
        }
        json_decref(p);
    }
}

/* A stop for a pending generation: it ends before it started (finish_reason "cancelled"). */
static void ws_pending_cancel(ws_conn *c, wslay_event_context_ptr ctx, int i) {
    ws_gen *g = &c->gens[i];
    srv_job *j = srv_job_new();
    j->finish = SRV_FINISH_CANCELLED;
    json_t *o = srv_api_summary(j, NULL, 0);
    srv_job_release(j);
    const json_t *stream = json_object_get(g->payload, "stream");
    const bool streamed = !stream || !json_is_false(stream);
    json_object_set(o, "id", g->id);
    json_object_set_new(o, "token", json_string(""));
    json_object_set_new(o, "token_id", json_null());
    json_object_set_new(o, "stream", json_boolean(streamed));
    json_object_set_new(o, "complete", json_true());
    if (!streamed) json_object_set_new(o, "text", json_string(""));
    ws_send(ctx, "inference", o);
    ws_gen_end(c, i);
}

static void ws_status(ws_conn *c, wslay_event_context_ptr ctx) {
    const srv_models_totals t = srv_models_sum(srv_models_of(c->srv));
    json_t *active = json_array();
    for (int i = 0; i < c->n_gens; i++) json_array_append(active, c->gens[i].id);
    ws_send(ctx, "status", json_pack("{s:b, s:o, s:s, s:o, s:i, s:i, s:b}", "connected", true, "models",
                                     srv_models_names(srv_models_of(c->srv)), "state", c->n_gens ? "generating" : "idle",
                                     "active", active, "running", t.running, "waiting", t.waiting, "busy", c->n_gens > 0));
}

static void ws_stop(ws_conn *c, wslay_event_context_ptr ctx, const json_t *p) {
    const json_t *id = json_is_object(p) ? json_object_get(p, "id") : NULL;
    if (!id || json_is_null(id)) {
        for (int i = c->n_gens - 1; i >= 0; i--) {   /* final messages follow */
            if (c->gens[i].job) atomic_store(&c->gens[i].job->cancel, true);
            else ws_pending_cancel(c, ctx, i);
        }
        return;
    }
    const int i = ws_gen_find(c, id);
    if (i < 0) ws_error(ctx, WS_ERR_INVALID_REQUEST, id, "no generation with this id is running on this connection");
    else if (!c->gens[i].job) ws_pending_cancel(c, ctx, i);
    else atomic_store(&c->gens[i].job->cancel, true);
}

static void ws_unauthorized(ws_conn *c, wslay_event_context_ptr ctx, const char *msg) {
    ws_error(ctx, WS_ERR_UNAUTHORIZED, NULL, msg);
    c->unauth_close = true;
    srv_log(SRV_LOG_INFO, "ws_unauthorized", c->rid, NULL);
}

/* The auth message: checks the key when the server has keys (the session then runs as
 * that key), acknowledges it otherwise. */
static void ws_auth(ws_conn *c, wslay_event_context_ptr ctx, const json_t *p) {
    srv_guard *g = srv_guard_of(c->srv);
    if (!srv_guard_keys_required(g)) {
        c->authed = true;
        ws_send(ctx, "auth", json_pack("{s:b}", "ok", true));
        return;
    }
    const char *key = json_string_value(json_object_get(p, "api_key"));
    srv_principal who;
    if (!key || !srv_guard_verify(g, key, &who)) {
        if (!key) srv_metrics_auth_failure();
        ws_unauthorized(c, ctx, key ? "the API key is not valid (unknown, revoked, expired, or past its rotation grace)"
                                    : "'payload.api_key' must be a string");
        return;
    }
    c->who = who;
    c->authed = true;
    ws_send(ctx, "auth", json_pack("{s:b}", "ok", true));
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user) {
    ws_conn *c = user;
    if (arg->opcode != WSLAY_TEXT_FRAME) {
        if (arg->opcode == WSLAY_BINARY_FRAME)
            ws_error(ctx, WS_ERR_INVALID_REQUEST, NULL, "binary messages are not supported; send JSON text");
        return;   /* ping/pong/close are answered by wslay */
    }
    json_error_t je;
    json_t *o = json_loadb((const char *)arg->msg, arg->msg_length, 0, &je);
    const char *type = o ? json_string_value(json_object_get(o, "type")) : NULL;
    const json_t *p = o ? json_object_get(o, "payload") : NULL;
    if (c->unauth_close) {
        /* refused: nothing more is read */
    } else if (o && type && !strcmp(type, "auth")) {
        ws_auth(c, ctx, p);
    } else if (!c->authed) {
        srv_metrics_auth_failure();
        ws_unauthorized(c, ctx, "this server needs an API key: send {\"type\":\"auth\",\"payload\":{\"api_key\":KEY}} first");
    } else if (!o && json_error_code(&je) == json_error_null_character) {
        ws_error(ctx, WS_ERR_INVALID_REQUEST, NULL, "strings may not contain NUL characters (\\u0000)");
    } else if (!o || !json_is_object(o) || !type) {
        ws_error(ctx, WS_ERR_INVALID_REQUEST, NULL, "expected a JSON object {\"type\": ..., \"payload\": ...}");
    } else if (!strcmp(type, "inference")) {
        if (!json_is_object(p)) ws_error(ctx, WS_ERR_INVALID_REQUEST, NULL, "'payload' must be an object");
        else ws_inference(c, ctx, p);
    } else if (!strcmp(type, "stop")) {
        ws_stop(c, ctx, p);
    } else if (!strcmp(type, "status")) {
        ws_status(c, ctx);
    } else if (!strcmp(type, "metrics")) {
        const srv_models_totals t = srv_models_sum(srv_models_of(c->srv));
        ws_send(ctx, "metrics", json_pack("{s:i, s:i, s:f}", "running", t.running, "waiting", t.waiting,
                                          "kv_cache_usage_ratio", t.kv_ratio));
    } else {
        ws_error(ctx, WS_ERR_INVALID_REQUEST, NULL, "unknown message type; use inference, stop, status or metrics");
    }
    json_decref(o);
}

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user) {
    (void)flags;
    ws_conn *c = user;
    if (c->extra_len) {
        const size_t n = len < c->extra_len ? len : c->extra_len;
        memcpy(buf, c->extra_at, n);
        c->extra_at += n;
        c->extra_len -= n;
        return (ssize_t)n;
    }
    const ssize_t n = recv(c->fd, buf, len, 0);
    if (n > 0) { c->last_rx = srv_now(); return n; }
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
        c->raw_close = w == (ssize_t)sizeof close_1002;   /* best effort: the session ends either way */
        return;
    }
    (void)wslay_event_send(ctx);
}

/* ---- the reactor: one thread, one epoll, every upgraded connection ---- */

struct srv_ws_hub {
    srv_server     *srv;
    int             ep, wake;       /* epoll; eventfd announcing new connections and stop */
    pthread_t       thread;
    bool            started;
    pthread_mutex_t mu;             /* guards pending and stop */
    ws_conn        *pending;        /* handed over by MHD's connection threads */
    bool            stop;
    ws_conn        *conns;          /* reactor thread only */
    double          stop_since;     /* reactor thread: when it first saw stop; 0 before */
};

static void ws_watch_mask(srv_ws_hub *h, ws_conn *c, uint32_t mask) {
    if (mask == c->ev_mask) return;
    struct epoll_event ev = { .events = mask, .data.ptr = &c->w_sock };
    epoll_ctl(h->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->ev_mask = mask;
}

/* The session is over: free the slots now; after a close frame of ours, linger (shut our
 * side for writing, drop the peer's input until it closes, WS_LINGER_S passes or
 * WS_LINGER_BYTES were read). Closing with unread input would make the kernel send a reset,
 * and the peer's kernel may then drop our close frame before the peer reads it (a 1009
 * would arrive as an abnormal closure). */
static void ws_conn_end(srv_ws_hub *h, ws_conn *c, bool stopping) {
    while (c->n_gens) {
        /* the jobs end after we let go of them, so they are not in the latency histograms;
         * each counts as a disconnect here */
        if (c->gens[0].job) atomic_store(&c->gens[0].job->cancel, true);
        srv_metrics_error(SRV_ERR_DISCONNECTED);
        ws_gen_end(c, 0);
    }
    if (c->sock_failed || !(wslay_event_get_close_sent(c->ctx) || c->raw_close)) {
        c->dead = true;
        return;
    }
    shutdown(c->fd, SHUT_WR);
    c->lingering = true;
    c->linger_until = srv_now() + (stopping ? WS_LINGER_S / 2 : WS_LINGER_S);
    ws_watch_mask(h, c, EPOLLIN);
}

static void ws_linger_read(ws_conn *c) {
    char buf[16384];
    for (;;) {
        const ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n > 0) {
            c->lingered += (size_t)n;
            if (c->lingered < WS_LINGER_BYTES) continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            return;
        }
        c->dead = true;   /* EOF, error or enough */
        return;
    }
}

/* Socket or eventfd ready. */
static void ws_on_event(srv_ws_hub *h, const ws_watch *w, uint32_t events) {
    ws_conn *c = w->c;
    if (c->dead) return;
    if (w->is_efd) {
        uint64_t v;
        ssize_t r = read(c->efd, &v, sizeof v);
        (void)r;
        if (!c->lingering) ws_progress_all(c, c->ctx);
        return;
    }
    if (c->lingering) { ws_linger_read(c); return; }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
    const bool out_idle = !wslay_event_want_write(c->ctx);
    const int rc = wslay_event_recv(c->ctx);
    if (rc != 0) {
        ws_recv_failed(c, c->ctx, rc, out_idle);
        ws_conn_end(h, c, false);
    }
}

/* Timers and output of a live connection, once per reactor turn. */
static void ws_tick(srv_ws_hub *h, ws_conn *c, double now, bool hub_stop) {
    if (c->dead) return;
    if (c->lingering) {
        if (now >= c->linger_until) c->dead = true;
        return;
    }
    wslay_event_context_ptr ctx = c->ctx;
    if (c->n_gens && !c->closing && !c->unauth_close) ws_pending_retry(c, ctx);
    if (wslay_event_want_write(ctx) && wslay_event_send(ctx) != 0) {
        c->sock_failed = true;
        ws_conn_end(h, c, hub_stop);
        return;
    }
    /* a close is queued only once everything before it is out: wslay sends control frames
     * ahead of queued messages, and nothing after a close */
    const bool flushed = !wslay_event_want_write(ctx);
    if (!c->authed && !c->unauth_close && now - c->t_open > WS_AUTH_S) {
        srv_metrics_auth_failure();
        ws_unauthorized(c, ctx, "no auth message came in time");
        return;   /* sent on the next turn, then closed */
    }
    /* a key revoked (or expired, or rotated out past its grace) ends its sessions too:
     * re-checked once a second, so a reload takes effect within about a second */
    if (c->authed && c->who.ok && !c->unauth_close && now - c->last_key_check >= WS_KEY_CHECK_S) {
        c->last_key_check = now;
        if (!srv_guard_still_valid(srv_guard_of(c->srv), &c->who)) {
            ws_unauthorized(c, ctx, "the session's API key is no longer valid (revoked, expired, or past its rotation grace)");
            return;   /* sent on the next turn, then closed; its generations are cancelled */
        }
    }
    if (!c->closing && flushed && c->unauth_close) {
        wslay_event_queue_close(ctx, WSLAY_CODE_POLICY_VIOLATION, (const uint8_t *)"unauthorized", 12);
        c->closing = true;
        c->close_at = now;
    } else if (!c->closing && flushed && now - c->last_rx > 3 * WS_PING_S) {
        wslay_event_queue_close(ctx, WSLAY_CODE_GOING_AWAY, (const uint8_t *)"heartbeat timeout", 17);
        c->closing = true;
        c->close_at = now;
    } else if (!c->closing && now - c->last_rx > WS_PING_S && now - c->last_ping > WS_PING_S) {
        struct wslay_event_msg m = { WSLAY_PING, (const uint8_t *)"hb", 2 };
        wslay_event_queue_msg(ctx, &m);
        c->last_ping = now;
    }
    /* shutting down: close once nothing runs (the scheduler ends every job before hub_stop) */
    if (hub_stop && !flushed && now > h->stop_since + 2) {   /* a peer that does not read */
        ws_conn_end(h, c, true);
        return;
    }
    if (!c->closing && flushed && (hub_stop || (srv_stopping(c->srv) && !c->n_gens))) {
        wslay_event_queue_close(ctx, WSLAY_CODE_GOING_AWAY, NULL, 0);
        c->closing = true;
        c->close_at = now;
    }
    if (wslay_event_want_write(ctx) && wslay_event_send(ctx) != 0) {
        c->sock_failed = true;
        ws_conn_end(h, c, hub_stop);
        return;
    }
    const bool rd = wslay_event_want_read(ctx), wr = wslay_event_want_write(ctx);
    if ((!rd && !wr) || (c->closing && now > c->close_at + 2)) {   /* done, or the peer ignores our close */
        ws_conn_end(h, c, hub_stop);
        return;
    }
    ws_watch_mask(h, c, (rd ? EPOLLIN : 0) | (wr ? EPOLLOUT : 0));
}

static void ws_conn_free(srv_ws_hub *h, ws_conn *c) {
    epoll_ctl(h->ep, EPOLL_CTL_DEL, c->fd, NULL);
    epoll_ctl(h->ep, EPOLL_CTL_DEL, c->efd, NULL);
    while (c->n_gens) ws_gen_end(c, 0);   /* (ws_conn_end cancelled them) */
    wslay_event_context_free(c->ctx);
    close(c->efd);
    srv_log(SRV_LOG_INFO, "ws_close", c->rid, NULL);
    MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);   /* MHD closes the socket */
    free(c->extra);
    free(c);
}

/* Takes over a connection handed in by ws_upgraded. */
static void ws_conn_adopt(srv_ws_hub *h, ws_conn *c) {
    c->next = h->conns;
    h->conns = c;
    c->w_sock = (ws_watch){ .c = c, .is_efd = false };
    c->w_efd = (ws_watch){ .c = c, .is_efd = true };
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &c->w_sock };
    struct epoll_event eev = { .events = EPOLLIN, .data.ptr = &c->w_efd };
    c->ev_mask = EPOLLIN;
    c->last_rx = srv_now();
    if (epoll_ctl(h->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0 || epoll_ctl(h->ep, EPOLL_CTL_ADD, c->efd, &eev) != 0) {
        c->dead = true;
        return;
    }
    srv_log(SRV_LOG_INFO, "ws_open", c->rid, NULL);
    int rc;
    if (c->extra_len && (rc = wslay_event_recv(c->ctx)) != 0) {
        ws_recv_failed(c, c->ctx, rc, true);
        ws_conn_end(h, c, false);
    }
}

static void *ws_hub_main(void *arg) {
    srv_ws_hub *h = arg;
    for (;;) {
        struct epoll_event got[64];
        const int n = epoll_wait(h->ep, got, 64, 100);
        for (int i = 0; i < n; i++) {
            if (!got[i].data.ptr) {
                uint64_t v;
                ssize_t r = read(h->wake, &v, sizeof v);
                (void)r;
                continue;
            }
            ws_on_event(h, got[i].data.ptr, got[i].events);
        }
        pthread_mutex_lock(&h->mu);
        ws_conn *in = h->pending;
        h->pending = NULL;
        const bool stop = h->stop;
        pthread_mutex_unlock(&h->mu);
        while (in) {
            ws_conn *next = in->next;
            ws_conn_adopt(h, in);
            in = next;
        }
        const double now = srv_now();
        if (stop && h->stop_since == 0) h->stop_since = now;
        for (ws_conn *c = h->conns; c; c = c->next) ws_tick(h, c, now, stop);
        /* free the finished ones; none of their watches is in use after this turn */
        for (ws_conn **pc = &h->conns; *pc;) {
            ws_conn *c = *pc;
            if (c->dead) { *pc = c->next; ws_conn_free(h, c); }
            else pc = &c->next;
        }
        if (stop && !h->conns) break;
    }
    return NULL;
}

q_status srv_ws_hub_start(srv_server *srv, srv_ws_hub **out, q_error *err) {
    srv_ws_hub *h = q_xcalloc(1, sizeof *h);
    h->srv = srv;
    h->ep = epoll_create1(EPOLL_CLOEXEC);
    h->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&h->mu, NULL);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    if (h->ep < 0 || h->wake < 0 || epoll_ctl(h->ep, EPOLL_CTL_ADD, h->wake, &ev) != 0 ||
        pthread_create(&h->thread, NULL, ws_hub_main, h) != 0) {
        srv_ws_hub_stop(h);
        *out = NULL;
        return q_fail(err, Q_ERR_IO, "WebSocket reactor: could not start (%s)", strerror(errno));
    }
    h->started = true;
    srv_models_set_notify(srv_models_of(srv), h->wake);   /* a load ended: retry pending generations */
    *out = h;
    return Q_OK;
}

void srv_ws_hub_stop(srv_ws_hub *h) {
    if (!h) return;
    if (h->started) {
        srv_models_set_notify(srv_models_of(h->srv), -1);   /* before wake closes */
        pthread_mutex_lock(&h->mu);
        h->stop = true;
        pthread_mutex_unlock(&h->mu);
        const uint64_t one = 1;
        ssize_t w = write(h->wake, &one, sizeof one);
        (void)w;
        pthread_join(h->thread, NULL);
    }
    if (h->wake >= 0) close(h->wake);
    if (h->ep >= 0) close(h->ep);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* MHD's connection thread: set the socket up and hand it to the reactor; the thread then
 * ends (MHD keeps the connection until MHD_UPGRADE_ACTION_CLOSE). */
static void ws_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra, size_t extra_len,
                        MHD_socket sock, struct MHD_UpgradeResponseHandle *urh) {
    (void)conn;
    srv_server *srv = cls;
    const srv_req *r = con_cls;
    srv_ws_hub *h = srv_ws_hub_of(srv);
    ws_conn *c = q_xcalloc(1, sizeof *c);
    c->srv = srv;
    c->fd = sock;
    c->urh = urh;
    snprintf(c->rid, sizeof c->rid, "%s", r ? r->rid : "ws");
    c->authed = !(r && r->ws_auth_late);
    if (r) c->who = r->who;
    c->t_open = srv_now();
    if (extra_len) {
        c->extra = q_xmalloc(extra_len);
        memcpy(c->extra, extra, extra_len);
        c->extra_at = c->extra;
        c->extra_len = extra_len;
    }
    const int fl = fcntl(sock, F_GETFL);
    const struct wslay_event_callbacks cbs = { .recv_callback = ws_recv, .send_callback = ws_send_cb,
                                               .on_msg_recv_callback = on_msg };
    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!h || c->efd < 0 || fl < 0 || fcntl(sock, F_SETFL, fl | O_NONBLOCK) != 0 ||
        wslay_event_context_server_init(&c->ctx, &cbs, c) != 0) {
        if (c->efd >= 0) close(c->efd);
        free(c->extra);
        free(c);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        return;
    }
    wslay_event_config_set_max_recv_msg_length(c->ctx, WS_MAX_MSG);
    pthread_mutex_lock(&h->mu);
    c->next = h->pending;
    h->pending = c;
    pthread_mutex_unlock(&h->mu);
    const uint64_t one = 1;
    ssize_t w = write(h->wake, &one, sizeof one);
    (void)w;
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
    if (r->ws_protocol) MHD_add_response_header(resp, "Sec-WebSocket-Protocol", r->ws_protocol);
    return srv_reply_response(r, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
}
