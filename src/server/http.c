/* http.c — the HTTP front of `quarrel serve` on libmicrohttpd: the daemon (one thread
 * per connection, so a handler or stream reader may block on its job; the connection
 * limit bounds the threads; /ws upgrades hand the socket to ws.c's reactor thread and
 * their connection thread ends), keep-alive, request
 * body limits (413), the route table,
 * reply helpers with X-Request-Id and request metrics, and server start/stop.
 * Access control happens here, before a handler runs, in this order: the connection limit
 * (--max-conns: 503 + Retry-After, then close), the per-client-IP connection limit (429,
 * both counted per TCP connection, WebSocket sessions included), CORS
 * preflights (OPTIONS -> 204), the API key of /api/..., /v1/..., /ws (and /metrics with
 * --metrics-auth 1) when the key store has live keys (401 + WWW-Authenticate: Bearer; a
 * key comes from `Authorization: Bearer KEY` or `X-API-Key: KEY`, for /ws also from a
 * "quarrel.key.KEY" subprotocol or the session's first message; never from the query
 * string), the admin rule of model administration routes (with keys: an admin key, else
 * 403; without keys: loopback clients only, else 403), then the key's request/token budget
 * on generation endpoints (429 + Retry-After).
 * Every response gets X-Content-Type-Options and Referrer-Policy (unless the handler set
 * them) and, for an allowed Origin, the CORS headers. TLS (--tls-cert/--tls-key) is MHD's
 * GnuTLS support.
 *
 * Not here: the endpoints' logic (routes_*.c), token scheduling (scheduler.c), the key
 * store, buckets and origin list (guard.c).
 * Memory: srv_server owns the model registry (models.c) and the daemon; a srv_req lives
 * from the first to the completed callback of its request, and holds its model instance
 * (r->inst) until then. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "server/openapi.h"
#include "server/server.h"
#include "server/static.h"

enum { JSON_MAX_DEPTH = 32 };

struct srv_server {
    srv_config          cfg;
    srv_models         *models;
    srv_ws_hub         *ws;
    struct MHD_Daemon  *daemon;
    srv_guard          *guard;
    char               *tls_cert, *tls_key;   /* PEM text, NUL-terminated, or NULL */
    int                 port;
    atomic_bool         stopping;
    atomic_ulong        next_rid;
    atomic_int          n_conns;      /* open connections within --max-conns */
};

/* MHD accepts up to --max-conns + CONN_HEADROOM connections; those past --max-conns are
 * told 503 with Retry-After on their first request and closed (MHD itself would only
 * refuse to accept, silently). Past the headroom MHD still refuses. */
enum { CONN_HEADROOM = 64 };

srv_models       *srv_models_of(const srv_server *s) { return s->models; }
const char       *srv_model_name(const srv_server *s) { return srv_models_default_name(s->models); }
srv_ws_hub       *srv_ws_hub_of(const srv_server *s) { return s->ws; }
srv_guard        *srv_guard_of(const srv_server *s) { return s->guard; }
const srv_config *srv_cfg(const srv_server *s) { return &s->cfg; }
bool              srv_stopping(const srv_server *s) { return atomic_load(&((srv_server *)s)->stopping); }
int               srv_server_port(const srv_server *s) { return s->port; }

/* ---- routes ---- */

typedef struct route {
    const char  *method, *path;
    srv_handler  fn;
    srv_endpoint ep;
    bool         admin;   /* model administration: an admin key, or loopback without keys */
} route;

/* A route path may hold {param} segments (as docs/openapi.json writes them): each matches
 * one non-empty URL segment, which the handler reads. */
static bool route_match(const char *path, const char *url) {
    while (*path) {
        if (*path == '{') {
            const char *close = strchr(path, '}');
            Q_ASSERT(close);
            const size_t n = strcspn(url, "/");
            if (n == 0) return false;
            path = close + 1;
            url += n;
            continue;
        }
        if (*path++ != *url++) return false;
    }
    return !*url;
}

static const route routes[] = {
    { "GET",  "/api/health",          srv_route_health,      SRV_EP_OTHER, false },
    { "GET",  "/healthz",             srv_route_healthz,     SRV_EP_OTHER, false },
    { "GET",  "/readyz",              srv_route_readyz,      SRV_EP_OTHER, false },
    { "GET",  "/version",             srv_route_version,     SRV_EP_OTHER, false },
    { "GET",  "/metrics",             srv_route_metrics,     SRV_EP_OTHER, false },
    { "GET",  "/api/metrics",         srv_route_metrics,     SRV_EP_OTHER, false },
    { "GET",  "/openapi.json",        srv_route_apidocs,     SRV_EP_OTHER, false },
    { "GET",  "/docs",                srv_route_apidocs,     SRV_EP_OTHER, false },
    { "GET",  "/docs/apidocs.js",     srv_route_apidocs,     SRV_EP_OTHER, false },
    { "GET",  "/docs/apidocs.css",    srv_route_apidocs,     SRV_EP_OTHER, false },
    { "POST", "/api/generate",        srv_route_generate,    SRV_EP_GENERATE, false },
    { "POST", "/api/stream",          srv_route_stream,      SRV_EP_STREAM, false },
    { "POST", "/v1/chat/completions", srv_route_chat,        SRV_EP_CHAT, false },
    { "POST", "/v1/completions",      srv_route_completions, SRV_EP_COMPLETIONS, false },
    { "GET",  "/v1/models",           srv_route_models,      SRV_EP_OTHER, false },
    { "GET",  "/ws",                  srv_route_ws,          SRV_EP_OTHER, false },
    { "GET",  "/api/models",          srv_route_models_api,  SRV_EP_OTHER, false },
    { "GET",  "/api/models/{name}",   srv_route_model_api,   SRV_EP_OTHER, false },
    { "POST", "/api/models/{name}/load",   srv_route_model_load,   SRV_EP_OTHER, true },
    { "POST", "/api/models/{name}/unload", srv_route_model_unload, SRV_EP_OTHER, true },
    { "POST", "/api/models/{name}/swap",   srv_route_model_swap,   SRV_EP_OTHER, true },
};

/* ---- replies ---- */

/* Security headers for every response (static.c sets its own for the UI) and the CORS
 * headers for an allowed Origin. */
static void common_headers(srv_req *r, struct MHD_Response *resp) {
    if (!MHD_get_response_header(resp, "X-Content-Type-Options"))
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (!MHD_get_response_header(resp, "Referrer-Policy")) MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
    const srv_cors c = srv_guard_cors(r->srv->guard, origin);
    if (c == SRV_CORS_NONE) return;
    /* an explicit origin is echoed (it is on the list) and may send credentials; "*" never */
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", c == SRV_CORS_EXPLICIT ? origin : "*");
    if (c == SRV_CORS_EXPLICIT) {
        MHD_add_response_header(resp, "Access-Control-Allow-Credentials", "true");
        MHD_add_response_header(resp, "Vary", "Origin");
    }
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", "Retry-After, X-Request-Id");
}

int srv_reply_response(srv_req *r, int status, struct MHD_Response *resp) {
    MHD_add_response_header(resp, "X-Request-Id", r->rid);
    if (r->close_conn) MHD_add_response_header(resp, "Connection", "close");
    common_headers(r, resp);
    const enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    r->status = status;
    return ret;
}

int srv_reply_text(srv_req *r, int status, const char *ctype, char *text) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", ctype);
    return srv_reply_response(r, status, resp);
}

int srv_reply_busy(srv_req *r, char *body) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Retry-After", "1");
    return srv_reply_response(r, 503, resp);
}

int srv_reply_json(srv_req *r, int status, json_t *body) {
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    Q_ASSERT(s);
    return srv_reply_text(r, status, "application/json", s);
}

static int reply_error_v(srv_req *r, int status, const char *type, const char *hname, const char *hval,
                         const char *fmt, va_list ap) {
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    json_t *e = json_pack("{s:{s:s, s:s, s:i}}", "error", "message", msg, "type", type, "code", status);
    char *text = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    Q_ASSERT(text);
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (hname) MHD_add_response_header(resp, hname, hval);
    return srv_reply_response(r, status, resp);
}

int srv_reply_error(srv_req *r, int status, const char *type, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const int ret = reply_error_v(r, status, type, NULL, NULL, fmt, ap);
    va_end(ap);
    return ret;
}

int srv_reply_error_h(srv_req *r, int status, const char *type, const char *hname, const char *hval, const char *fmt,
                      ...) {
    va_list ap;
    va_start(ap, fmt);
    const int ret = reply_error_v(r, status, type, hname, hval, fmt, ap);
    va_end(ap);
    return ret;
}

/* Nesting depth of a JSON text (brackets outside strings), to refuse deep documents
 * before the parser recurses over them. */
static int json_depth(const char *s, size_t n) {
    int d = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        const char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = false;
        } else if (c == '"') in_str = true;
        else if (c == '{' || c == '[') { if (++d > max) max = d; }
        else if (c == '}' || c == ']') d--;
    }
    return max;
}

json_t *srv_req_json(srv_req *r, int *replied) {
    if (r->body_len == 0) {
        *replied = srv_reply_error(r, 400, "invalid_request_error", "the request body is empty; send a JSON object");
        return NULL;
    }
    if (json_depth(r->body, r->body_len) > JSON_MAX_DEPTH) {
        *replied = srv_reply_error(r, 400, "invalid_request_error", "the JSON body nests deeper than %d levels",
                                   JSON_MAX_DEPTH);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(r->body, r->body_len, 0, &je);
    if (!j && json_error_code(&je) == json_error_null_character) {
        /* valid JSON, but templates, stop strings and names are C strings here, where a NUL
         * would silently cut the text: refuse it in words a person can act on */
        *replied = srv_reply_error(r, 400, "invalid_request_error",
                                   "strings may not contain NUL characters (\\u0000): line %d column %d", je.line,
                                   je.column);
        return NULL;
    }
    if (!j) {
        *replied = srv_reply_error(r, 400, "invalid_request_error", "malformed JSON at line %d column %d: %s",
                                   je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *replied = srv_reply_error(r, 400, "invalid_request_error", "the request body must be a JSON object");
        return NULL;
    }
    return j;
}

int srv_req_fd(const srv_req *r) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

/* ---- access control ---- */

typedef enum srv_access { ACCESS_OPEN, ACCESS_KEYED, ACCESS_METRICS, ACCESS_COUNT } srv_access;

/* Paths that need a key when keys exist; everything else (probes, /version, the OpenAPI
 * document and /docs, the web UI) is open. */
static const struct { const char *path; bool prefix; srv_access access; } access_rules[] = {
    { "/api/", true, ACCESS_KEYED },
    { "/v1/", true, ACCESS_KEYED },
    { "/ws", false, ACCESS_KEYED },
    { "/metrics", false, ACCESS_METRICS },
};

static srv_access access_of(const char *url) {
    for (size_t i = 0; i < sizeof access_rules / sizeof *access_rules; i++)
        if (access_rules[i].prefix ? !strncmp(url, access_rules[i].path, strlen(access_rules[i].path))
                                   : !strcmp(url, access_rules[i].path))
            return access_rules[i].access;
    return ACCESS_OPEN;
}

static const char WS_KEY_PROTOCOL[] = "quarrel.key.";

/* The "quarrel.key.KEY" entry of a Sec-WebSocket-Protocol list: a malloc'ed copy of the
 * whole token (to echo), or NULL. */
static char *ws_key_protocol(const char *list) {
    for (const char *p = list; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        size_t n = strcspn(p, ", \t");
        if (n > strlen(WS_KEY_PROTOCOL) && !strncmp(p, WS_KEY_PROTOCOL, strlen(WS_KEY_PROTOCOL))) {
            char *out = q_xmalloc(n + 1);
            memcpy(out, p, n);
            out[n] = 0;
            return out;
        }
        p += n;
    }
    return NULL;
}

/* The key a request presents in its headers, or NULL (points into MHD's headers). The
 * query string is never consulted. */
static const char *header_key(struct MHD_Connection *conn, char *buf, size_t cap) {
    const char *a = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (a) {
        while (*a == ' ') a++;
        if (!strncasecmp(a, "Bearer ", 7)) {
            a += 7;
            while (*a == ' ') a++;
            snprintf(buf, cap, "%s", a);
            for (char *e = buf + strlen(buf); e > buf && e[-1] == ' ';) *--e = 0;
            return buf;
        }
    }
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-API-Key");
}

/* Authenticates a keyed request; returns 0 to go on, else the MHD result of the 401. */
static int check_key(srv_req *r, bool is_ws) {
    char buf[256];
    const char *key = header_key(r->conn, buf, sizeof buf);
    if (is_ws) {
        r->ws_protocol = ws_key_protocol(MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Sec-WebSocket-Protocol"));
        if (!key && r->ws_protocol) key = r->ws_protocol + strlen(WS_KEY_PROTOCOL);
    }
    if (!srv_guard_keys_required(r->srv->guard)) return 0;
    if (!key && is_ws) {   /* browsers cannot set headers: the first message must carry it */
        r->ws_auth_late = true;
        return 0;
    }
    if (!key) {
        srv_metrics_auth_failure();
        return srv_reply_error_h(r, 401, "authentication_error", "WWW-Authenticate", "Bearer",
                                 "an API key is required: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'");
    }
    if (!srv_guard_verify(r->srv->guard, key, &r->who))
        return srv_reply_error_h(r, 401, "authentication_error", "WWW-Authenticate", "Bearer error=\"invalid_token\"",
                                 "the API key is not valid (unknown, revoked, expired, or replaced and past its grace period)");
    return 0;
}

/* CORS preflight: 204 with what may be sent; the origin headers only for an allowed one. */
static int reply_preflight(srv_req *r) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, "Allow", "GET, POST, OPTIONS");
    const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
    if (srv_guard_cors(r->srv->guard, origin) != SRV_CORS_NONE) {
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Authorization, Content-Type, X-API-Key");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    }
    return srv_reply_response(r, 204, resp);
}

/* Per-connection state of the connection limits (MHD's socket context). */
typedef struct conn_slot {
    char ip[48];
    bool held;    /* a slot of ip is held (released at close) */
    bool over;    /* past --max-conns: answered 503 (not counted in n_conns) */
} conn_slot;

static void client_ip(struct MHD_Connection *conn, char *buf, size_t cap) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(buf, cap, "?");
    if (!ci || !ci->client_addr) return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf, (socklen_t)cap);
    else if (sa->sa_family == AF_INET6) inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf, (socklen_t)cap);
}

static bool is_loopback(const char *ip) {
    return !strncmp(ip, "127.", 4) || !strcmp(ip, "::1") || !strncmp(ip, "::ffff:127.", 11);
}

/* The admin rule; returns 0 to go on, else the MHD result of the 403. */
static int check_admin(srv_req *r) {
    if (srv_guard_keys_required(r->srv->guard)) {
        if (r->who.ok && r->who.admin) return 0;
        return srv_reply_error(r, 403, "permission_error",
                               "key '%s' is not an admin key; model administration needs one (quarrel keys create --admin)",
                               r->who.name);
    }
    char ip[48];
    client_ip(r->conn, ip, sizeof ip);
    if (is_loopback(ip)) return 0;
    return srv_reply_error(r, 403, "permission_error",
                           "model administration without API keys is allowed from loopback only (client %s); "
                           "create an admin key (quarrel keys create --admin) to administer remotely", ip);
}

static bool is_generation(srv_endpoint ep) {
    return ep == SRV_EP_GENERATE || ep == SRV_EP_STREAM || ep == SRV_EP_CHAT || ep == SRV_EP_COMPLETIONS;
}

/* Everything between the body and the handler: returns 0 to go on, else an MHD result. */
static int access_check(srv_req *r, const char *method, const char *url, const route *rt) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    const conn_slot *slot = ci ? ci->socket_context : NULL;
    if (slot && slot->over) {
        r->close_conn = true;
        return srv_reply_error_h(r, 503, "server_error", "Retry-After", "1",
                                 "the server has too many open connections (at most %ld); retry shortly",
                                 r->srv->cfg.max_conns);
    }
    if (slot && r->srv->cfg.max_conns_per_ip > 0 && !slot->held) {
        char after[16];
        snprintf(after, sizeof after, "%d", 1);
        r->close_conn = true;
        return srv_reply_error_h(r, 429, "rate_limit_error", "Retry-After", after,
                                 "too many connections from %s (at most %ld at once)", slot->ip,
                                 r->srv->cfg.max_conns_per_ip);
    }
    if (!strcmp(method, "OPTIONS")) return reply_preflight(r);
    const srv_access acc = access_of(url);
    if (acc == ACCESS_KEYED || (acc == ACCESS_METRICS && r->srv->cfg.metrics_auth)) {
        const int ret = check_key(r, !strcmp(url, "/ws"));
        if (r->status) return ret;
    }
    if (rt && rt->admin) {
        const int ret = check_admin(r);
        if (r->status) return ret;
    }
    srv_limit which = SRV_LIMIT_RPM;
    const int64_t wait = rt && is_generation(rt->ep) ? srv_guard_admit(r->srv->guard, &r->who, &which) : 0;
    if (wait) {
        char after[24];
        snprintf(after, sizeof after, "%lld", (long long)wait);
        return srv_reply_error_h(r, 429, "rate_limit_error", "Retry-After", after,
                                 "key '%s' is over its %s limit (%lld per minute); retry in %lld s", r->who.name,
                                 which == SRV_LIMIT_TPM ? "generated tokens" : "requests",
                                 (long long)(which == SRV_LIMIT_TPM ? r->who.tpm : r->who.rpm), (long long)wait);
    }
    return 0;
}

/* ---- MHD callbacks ---- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    srv_server *s = cls;
    srv_req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->srv = s;
        r->conn = conn;
        r->method = method;
        r->path = url;
        r->t0 = srv_now();
        r->ep = SRV_EP_OTHER;
        snprintf(r->rid, sizeof r->rid, "%08lx", (unsigned long)atomic_fetch_add(&s->next_rid, 1) + 1);
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        /* over the limit: keep reading (and dropping) so the 413 can be sent cleanly */
        if (!r->body_too_big && r->body_len + *upload_size > (size_t)s->cfg.max_body) {
            r->body_too_big = true;
            free(r->body);
            r->body = NULL;
            r->body_len = r->body_cap = 0;
        }
        if (!r->body_too_big) {
            if (r->body_len + *upload_size + 1 > r->body_cap) {
                r->body_cap = (r->body_len + *upload_size + 1) * 2;
                r->body = realloc(r->body, r->body_cap);
                if (!r->body) return MHD_NO;
            }
            memcpy(r->body + r->body_len, upload, *upload_size);
            r->body_len += *upload_size;
            r->body[r->body_len] = 0;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    r->conn = conn;
    const route *rt = NULL;
    bool path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!route_match(routes[i].path, url)) continue;
        path_known = true;
        if (!strcmp(routes[i].method, method)) { rt = &routes[i]; break; }
    }
    if (rt) r->ep = rt->ep;
    if (r->body_too_big)
        return srv_reply_error(r, 413, "invalid_request_error", "the request body is larger than %ld bytes",
                               s->cfg.max_body);
    const int denied = access_check(r, method, url, rt);
    if (r->status) return denied;
    if (!rt && srv_static_owns(method, url)) return srv_route_static(r);   /* the web UI */
    if (!rt && path_known)
        return srv_reply_error(r, 405, "invalid_request_error", "%s is not allowed on %s", method, url);
    if (!rt) return srv_reply_error(r, 404, "not_found_error", "no route %s %s", method, url);
    if (atomic_load(&s->stopping))
        return srv_reply_error(r, 503, "server_error", "the server is shutting down");
    return rt->fn(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls;
    srv_req *r = *con_cls;
    if (!r) return;
    const int status = r->status ? r->status : 499;   /* 499: client went away before a reply */
    srv_metrics_request(r->model, r->ep, status);
    json_t *f = json_pack("{s:s, s:s, s:i, s:f, s:b}", "method", r->method, "path", r->path, "status", status, "ms",
                          (srv_now() - r->t0) * 1e3, "complete", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    /* credentials are named in the line (srv_log always redacts their values) so a
     * reader can see a request carried one */
    static const char *const cred_headers[] = { "Authorization", "X-Api-Key" };
    for (size_t i = 0; i < sizeof cred_headers / sizeof *cred_headers; i++) {
        const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, cred_headers[i]);
        if (v) json_object_set_new(f, cred_headers[i], json_string(v));
    }
    srv_log(SRV_LOG_INFO, "request", r->rid, f);
    srv_inst_release(r->inst);
    free(r->ws_protocol);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

/* Keeps quarrel_webui_connections_active; an upgraded (WebSocket) connection stays open
 * until ws.c hands it back. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code) {
    srv_server *s = cls;
    srv_metrics_connections(code == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        /* over a limit the connection still opens, to be told 503 (all) or 429 (per IP)
         * on its first request */
        conn_slot *slot = q_xcalloc(1, sizeof *slot);
        slot->over = atomic_fetch_add(&s->n_conns, 1) >= s->cfg.max_conns;
        if (slot->over) atomic_fetch_sub(&s->n_conns, 1);
        if (!slot->over && s->cfg.max_conns_per_ip > 0) {
            client_ip(conn, slot->ip, sizeof slot->ip);
            slot->held = srv_guard_conn_acquire(s->guard, slot->ip);
        }
        *socket_ctx = slot;
    } else if (*socket_ctx) {
        conn_slot *slot = *socket_ctx;
        if (slot->held) srv_guard_conn_release(s->guard, slot->ip);
        if (!slot->over) atomic_fetch_sub(&s->n_conns, 1);
        free(slot);
        *socket_ctx = NULL;
    }
}

void srv_server_reload(srv_server *s) {
    srv_guard_reload(s->guard, "SIGHUP");
    srv_models_rescan(s->models, "SIGHUP");
}

/* A PEM file's text, NUL-terminated (malloc'ed), or NULL with err set. */
static char *read_pem(const char *path, const char *flag, q_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) { q_fail(err, Q_ERR_IO, "%s %s: cannot open", flag, path); return NULL; }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) buf = q_xrealloc(buf, cap = (n + 4096 + 1) * 2);
        const size_t k = fread(buf + n, 1, 4096, f);
        n += k;
        if (k < 4096) break;
        if (n > (1u << 20)) break;   /* no PEM is this large */
    }
    fclose(f);
    buf[n] = 0;
    if (!strstr(buf, "-----BEGIN ")) {
        free(buf);
        q_fail(err, Q_ERR_FORMAT, "%s %s: not a PEM file", flag, path);
        return NULL;
    }
    return buf;
}

/* ---- start / stop ---- */

q_status srv_server_start(const srv_config *cfg, srv_server **out, q_error *err) {
    *out = NULL;
    srv_server *s = calloc(1, sizeof *s);
    if (!s) return q_fail(err, Q_ERR_NOMEM, "server: out of memory");
    s->cfg = *cfg;
    atomic_init(&s->stopping, false);
    atomic_init(&s->next_rid, 0);
    /* the key store first: a bad one is reported before any model loads */
    q_status st = srv_guard_new(cfg, &s->guard, err);
    if (st != Q_OK) goto fail;
    if ((st = srv_models_new(&s->cfg, &s->models, err)) != Q_OK) goto fail;
    atomic_init(&s->n_conns, 0);

    if ((st = srv_ws_hub_start(s, &s->ws, err)) != Q_OK) goto fail;

    const bool tls = cfg->tls_cert || cfg->tls_key;
    struct MHD_OptionItem tls_opts[3] = { { MHD_OPTION_END, 0, NULL }, { MHD_OPTION_END, 0, NULL }, { MHD_OPTION_END, 0, NULL } };
    if (tls) {
        if (!cfg->tls_cert || !cfg->tls_key) {
            st = q_fail(err, Q_ERR_INVALID_ARG, "TLS needs both --tls-cert and --tls-key");
            goto fail;
        }
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            st = q_fail(err, Q_ERR_UNSUPPORTED, "this libmicrohttpd was built without TLS support");
            goto fail;
        }
        if (!(s->tls_cert = read_pem(cfg->tls_cert, "--tls-cert", err)) ||
            !(s->tls_key = read_pem(cfg->tls_key, "--tls-key", err))) {
            st = err->status;
            goto fail;
        }
        tls_opts[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert };
        tls_opts[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key };
    }

    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port) };
    if (inet_pton(AF_INET, cfg->host, &sa.sin_addr) != 1) {
        st = q_fail(err, Q_ERR_INVALID_ARG, "--host %s is not an IPv4 address", cfg->host);
        goto fail;
    }
    s->daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG |
            (tls ? MHD_USE_TLS : 0), 0, NULL,
        NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)(cfg->max_conns + CONN_HEADROOM), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)30, MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    if (!s->daemon) {
        st = q_fail(err, Q_ERR_IO, "could not listen on %s:%ld (in use, not allowed%s)", cfg->host, cfg->port,
                    tls ? ", or the TLS certificate and key do not load or do not match" : "");
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : (int)cfg->port;
    *out = s;
    return Q_OK;
fail:
    srv_server_stop(s);
    return st;
}

void srv_server_stop(srv_server *s) {
    if (!s) return;
    atomic_store(&s->stopping, true);
    /* stop accepting first, then drain the engine (streams see their jobs end), then close
     * the WebSocket sessions (1001), then wait for the connection threads */
    if (s->daemon) MHD_quiesce_daemon(s->daemon);
    srv_models_shutdown(s->models, srv_now() + (double)s->cfg.shutdown_s);
    srv_ws_hub_stop(s->ws);
    s->ws = NULL;
    if (s->daemon) MHD_stop_daemon(s->daemon);
    srv_models_free(s->models);
    srv_guard_free(s->guard);
    free(s->tls_cert);
    free(s->tls_key);
    free(s);
}
