/* server.h — the pieces of `quarrel serve` (internal, not a public API): the scheduler
 * that runs every active request through one engine thread, the per-request job that
 * carries tokens from that thread to the HTTP side, metrics, logging, the HTTP front and
 * the WebSocket endpoint (ws.c).
 *
 * Ownership: a srv_job is reference counted (srv_job_release); the HTTP side creates it
 * with one reference, the scheduler takes another while it queues or runs it. Models,
 * contexts and schedulers belong to instances of the model registry (models.c), which
 * requests hold by reference; the registry belongs to the srv_server. */
#ifndef QUARREL_SERVER_H
#define QUARREL_SERVER_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "quarrel/quarrel.h"
#include "quarrel/status.h"
#include "server/keys.h"

enum { SRV_MAX_STOPS = 16, SRV_MAX_TOP_LOGPROBS = 20 };

/* ---- configuration ---- */

typedef enum srv_log_format { SRV_LOG_TEXT, SRV_LOG_JSON, SRV_LOG_FORMAT_COUNT } srv_log_format;
typedef enum srv_log_level { SRV_LOG_DEBUG, SRV_LOG_INFO, SRV_LOG_WARN, SRV_LOG_ERROR, SRV_LOG_LEVEL_COUNT } srv_log_level;

typedef struct srv_config {
    const char *model_path;    /* -m: one model, loaded at start; NULL with models_dir */
    const char *models_dir;    /* every *.gguf in it, by name; NULL = none */
    bool        preload;       /* load models_dir's models at start (within max_loaded) */
    long        max_loaded;    /* most models loaded at once (LRU unload); 0 = no limit */
    const char *host;          /* IPv4 dotted quad */
    long        port;          /* 0 = any free port (the actual one is logged) */
    long        parallel;      /* sequences decoded together (slots) */
    long        n_ctx;         /* KV cells per slot; 0 = min(training context, 4096) */
    long        n_threads;
    long        queue_size;    /* waiting requests before 503 */
    long        timeout_s;     /* most seconds a request may take (default 300) */
    long        max_body;      /* bytes; larger bodies get 413 */
    long        max_conns;     /* concurrent connections (one thread each) */
    long        shutdown_s;    /* grace for in-flight work on SIGTERM */
    long        prefix_cache;  /* 1: reuse the KV of shared prompt prefixes (scheduler.c) */
    long        prefix_cache_tokens;  /* most cached prefix tokens; 0 = half the KV cache, >= CTX */
    bool        log_prompts;   /* log prompts, messages and generated text (credentials never) */
    const char *keys_file;     /* API key store; NULL = none (an open server) */
    bool        keys_explicit; /* keys_file was given: it must load (else a missing one = no keys) */
    long        metrics_auth;  /* 1: /metrics needs a key too (when keys exist) */
    long        max_conns_per_ip; /* concurrent connections per client IP; 0 = unlimited */
    const char *cors_origins;  /* comma list of origins or "*"; NULL = same-origin only */
    const char *tls_cert, *tls_key;  /* PEM files; both set = HTTPS/WSS */
    long        test_load_delay_ms; /* tests only: sleep this long in every model load (env
                                     * QUARREL_TEST_LOAD_DELAY_MS), so a load can be watched */
} srv_config;

/* ---- logging (log.c): one line per event on stderr ----
 * Redaction happens here, for every line: a field named like a credential (authorization,
 * api_key, x-api-key, password, secret, cookie) is always written as "[redacted]"; a field
 * holding user text (prompt, messages, text, content) is written as "[redacted N bytes]"
 * unless srv_log_setup was told log_prompts. */

void srv_log_setup(srv_log_format f, srv_log_level min, bool log_prompts);
bool srv_log_format_parse(const char *s, srv_log_format *out);
bool srv_log_level_parse(const char *s, srv_log_level *out);
/* fields (stolen, may be NULL) are added to the line; rid may be NULL. */
void srv_log(srv_log_level lvl, const char *event, const char *rid, json_t *fields);

/* ---- metrics (metrics.c): Prometheus text exposition ---- */

typedef enum srv_endpoint {
    SRV_EP_GENERATE, SRV_EP_STREAM, SRV_EP_CHAT, SRV_EP_COMPLETIONS, SRV_EP_OTHER, SRV_EP_COUNT
} srv_endpoint;

/* Kinds of failure for quarrel_webui_errors_total{type}. */
typedef enum srv_error_type {
    SRV_ERR_BAD_REQUEST,   /* 4xx other than 499 */
    SRV_ERR_QUEUE_FULL,    /* 503: queue full or shutting down */
    SRV_ERR_TIMEOUT,       /* a job that ran past its deadline */
    SRV_ERR_INTERNAL,      /* 5xx other than 503; a job that ended in error */
    SRV_ERR_DISCONNECTED,  /* the client left: 499, or a job cancelled by its client */
    SRV_ERR_COUNT
} srv_error_type;

/* Counts a finished HTTP request; statuses >= 400 also count an error of their kind.
 * model: the registry name the request addressed ("" or NULL: none, or an unknown one). */
void srv_metrics_request(const char *model, srv_endpoint ep, int status);
void srv_metrics_error(srv_error_type t);
void srv_metrics_connections(int delta);   /* +1 opened, -1 closed */
/* Limits for quarrel_rate_limited_total{limit}. */
typedef enum srv_limit { SRV_LIMIT_RPM, SRV_LIMIT_TPM, SRV_LIMIT_IP, SRV_LIMIT_COUNT } srv_limit;
void srv_metrics_rate_limited(srv_limit l);
void srv_metrics_auth_failure(void);       /* a missing or bad API key */
void srv_metrics_inference(double seconds);
/* One admitted request's prefix lookup: reused tokens (0 = a miss). */
void srv_metrics_prefix(size_t reused);
/* quarrel_prefix_cache_tokens: each scheduler adds the change of its cached tokens. */
void srv_metrics_prefix_cached(long delta);
void srv_metrics_prefix_evicted(long tokens);
void srv_metrics_queue_time(double seconds);
void srv_metrics_inter_token(double seconds);
void srv_metrics_tokens(long prompt, long generated);
void srv_metrics_ttft(double seconds);
void srv_metrics_e2e(double seconds);
/* The model registry's events for quarrel_model_{loads,unloads,swaps,load_failures}_total. */
typedef enum srv_model_event {
    SRV_MODEL_EV_LOAD, SRV_MODEL_EV_UNLOAD, SRV_MODEL_EV_SWAP, SRV_MODEL_EV_LOAD_FAILURE, SRV_MODEL_EV_RESCAN, SRV_MODEL_EV_COUNT
} srv_model_event;
void srv_metrics_model_event(srv_model_event ev);
void srv_metrics_models_loaded(int n);     /* quarrel_models_loaded */
/* Renders every metric; the registry's gauges come from the caller. Returns malloc'ed text. */
struct srv_models_totals;
char *srv_metrics_render(const struct srv_models_totals *t);
const char *srv_endpoint_name(srv_endpoint ep);

/* ---- jobs ---- */

typedef enum srv_prio { SRV_PRIO_INTERACTIVE, SRV_PRIO_BATCH, SRV_PRIO_COUNT } srv_prio;

typedef enum srv_finish {
    SRV_FINISH_NONE,       /* still running */
    SRV_FINISH_STOP,       /* end-of-generation token or stop string */
    SRV_FINISH_LENGTH,     /* max_tokens or the slot's context */
    SRV_FINISH_CANCELLED,  /* client went away or server shut down */
    SRV_FINISH_TIMEOUT,
    SRV_FINISH_ERROR,
    SRV_FINISH_COUNT
} srv_finish;

const char *srv_finish_name(srv_finish f);

/* One generated token (end-of-generation tokens that end a job are not recorded). */
typedef struct srv_tok {
    q_token id;
    float   logprob;    /* log-softmax of the raw logits at this step; 0 unless logprobs were asked */
    size_t  text_end;   /* the job's out_len once this token's text was released */
} srv_tok;

typedef struct srv_job {
    /* input: set before srv_sched_submit, read-only afterwards */
    q_tokens         prompt;
    q_sampler_params sp;
    long             max_tokens;
    bool             ignore_eos;  /* keep going past end-of-generation tokens */
    char            *stops[SRV_MAX_STOPS];
    int              n_stops;
    srv_prio         prio;
    double           deadline;    /* srv_now() seconds */
    int              n_logprobs;  /* -1: no logprobs; else the chosen token's logprob plus this
                                   * many top alternatives (0..SRV_MAX_TOP_LOGPROBS) per token */
    char             rid[24];

    atomic_bool      cancel;      /* set by the HTTP side; honoured within one decode step */

    /* output, under mu; cv is signalled on new text and at the end */
    pthread_mutex_t  mu;
    pthread_cond_t   cv;
    char            *out;         /* generated text [out_len]; readers keep their own offset */
    size_t           out_len, out_cap;
    srv_tok         *toks;        /* [n_toks] generated tokens, in order */
    size_t           n_toks, toks_cap;
    q_token         *top_ids;     /* [n_toks * n_logprobs] alternatives, most probable first */
    float           *top_lps;     /* [n_toks * n_logprobs] their logprobs */
    srv_finish       finish;
    char             err[256];
    long             n_gen;
    double           t_submit, t_first, t_end;
    double           t_start;     /* slot admission (engine thread); 0 = never admitted */
    double           t_last_tok;  /* engine thread only: when the last token was sampled */
    int              refs;
    int              text_waiters; /* readers blocked for output (not just the end) */
    int              notify_fd;   /* eventfd written on new text and at the end; -1 = none */
    struct rl_table *rl;          /* the key's token bucket table (guard.c), or NULL */
    char             key_name[KEYS_NAME_MAX + 4];   /* its bucket name */
    int64_t          tpm;         /* its tokens-per-minute limit */

    struct srv_job  *next;        /* queue link, owned by the scheduler */
} srv_job;

srv_job *srv_job_new(void);
void     srv_job_retain(srv_job *j);
void     srv_job_release(srv_job *j);
/* A reader's position in a job's output. */
typedef struct srv_cursor {
    size_t text;   /* bytes of out already read */
    size_t toks;   /* token records already read */
} srv_cursor;

/* What one srv_job_read returns: copies, owned by the caller (srv_chunk_free). */
typedef struct srv_chunk {
    char    *text;      /* [len] + NUL */
    size_t   len;
    size_t   text_off;  /* offset of text in the job's output */
    srv_tok *toks;      /* [n_toks] or NULL */
    size_t   n_toks;
    q_token *top_ids;   /* [n_toks * n_top] or NULL */
    float   *top_lps;
    int      n_top;     /* the job's n_logprobs, at least 0 */
} srv_chunk;

/* Waits until the job has text or tokens beyond *cur or has finished, at most until
 * `until` (srv_now seconds; 0 = do not wait). Copies what is new into *c and advances *cur.
 * Returns the job's finish state at the time of the copy (everything before the end has
 * been copied when it is not SRV_FINISH_NONE). */
srv_finish srv_job_read(srv_job *j, srv_cursor *cur, srv_chunk *c, double until);
void       srv_chunk_free(srv_chunk *c);

double srv_now(void);   /* monotonic seconds */

/* ---- scheduler (scheduler.c) ---- */

typedef struct srv_sched srv_sched;

typedef enum srv_submit { SRV_SUBMIT_OK, SRV_SUBMIT_FULL, SRV_SUBMIT_CLOSED } srv_submit;

/* prefix_cache needs a context with n_slots + 1 sequences (the cache holds its cells under
 * the last one); prefix_cache_tokens caps the cached tokens (0: half the context's cells,
 * at least slot_ctx). */
q_status   srv_sched_new(const q_model *m, q_context *c, int n_slots, int slot_ctx, int queue_size, bool prefix_cache,
                         long prefix_cache_tokens, srv_sched **out, q_error *err);
srv_submit srv_sched_submit(srv_sched *s, srv_job *j);
/* Stops taking jobs, fails the queued ones, lets running ones finish until `deadline`
 * (srv_now seconds) and cancels the rest; joins the engine thread. */
void       srv_sched_shutdown(srv_sched *s, double deadline);
void       srv_sched_free(srv_sched *s);
int        srv_sched_running(const srv_sched *s);
int        srv_sched_waiting(const srv_sched *s);
double     srv_sched_kv_ratio(const srv_sched *s);
bool       srv_sched_alive(const srv_sched *s);
int        srv_sched_slot_ctx(const srv_sched *s);
size_t     srv_sched_cache_max(const srv_sched *s);   /* 0: no prefix cache */

/* ---- the model registry (models.c): names, instances, hot-swap ---- */

typedef struct srv_models srv_models;
typedef struct srv_inst   srv_inst;   /* one loaded version: model + context + scheduler */

/* Registers -m and every *.gguf of --models-dir; loads -m (failure = error) and, with
 * --preload, the directory's models. cfg must outlive the registry. */
q_status srv_models_new(const srv_config *cfg, srv_models **out, q_error *err);
/* Drains every instance's scheduler until deadline (srv_now seconds); acquires then fail. */
void     srv_models_shutdown(srv_models *reg, double deadline);
void     srv_models_free(srv_models *reg);   /* after every request ended; NULL is fine */

typedef enum srv_acquire {
    SRV_ACQUIRE_OK, SRV_ACQUIRE_NOT_FOUND, SRV_ACQUIRE_LOAD_FAILED, SRV_ACQUIRE_CLOSED,
    SRV_ACQUIRE_PENDING,   /* srv_models_try_acquire: a load is under way; ask again when notified */
    SRV_ACQUIRE_COUNT
} srv_acquire;
/* A reference to the current instance of name (NULL = the default model), loading it
 * first on this thread if it is not loaded (a name not listed rescans --models-dir once).
 * *canon (may be NULL) gets the registry's name of the model when it exists (valid for
 * the registry's life). On failure msg says why. */
srv_acquire srv_models_acquire(srv_models *reg, const char *name, srv_inst **out, const char **canon, char *msg,
                               size_t n);
/* The same without blocking: when the model is not loaded, the registry's loader thread
 * loads it and SRV_ACQUIRE_PENDING comes back; call again (with the same *ticket, 0 at
 * first) after the notify fd fired. The ticket tells the load waited for: once it ended
 * in failure, SRV_ACQUIRE_LOAD_FAILED. */
srv_acquire srv_models_try_acquire(srv_models *reg, const char *name, unsigned *ticket, srv_inst **out,
                                   const char **canon, char *msg, size_t n);
/* An eventfd the registry writes (1) whenever a load ends; -1 = none. */
void        srv_models_set_notify(srv_models *reg, int fd);
/* Rescans --models-dir (SIGHUP): new files are served, removed ones are dropped once
 * nothing of them is loaded. why is logged. */
void        srv_models_rescan(srv_models *reg, const char *why);
void        srv_inst_release(srv_inst *i);   /* frees a retired instance at its last reference; NULL is fine */
const q_model *srv_inst_model(const srv_inst *i);
srv_sched     *srv_inst_sched(const srv_inst *i);
const char    *srv_inst_name(const srv_inst *i);
int            srv_inst_slot_ctx(const srv_inst *i);

typedef enum srv_model_op { SRV_MODEL_LOAD, SRV_MODEL_UNLOAD, SRV_MODEL_SWAP, SRV_MODEL_OP_COUNT } srv_model_op;
/* Load (if unloaded), unload (running requests finish on it), or swap (load path, or the
 * current path again, as the new current version). path (swap only, may be NULL) must lie
 * in --models-dir or the -m file's directory. Returns the HTTP status, msg set unless 200;
 * on 200 *desc is the model's /api/models object after the operation (caller owns).
 * *label is the listed name the request addressed (registry-owned, valid until
 * srv_models_free: the request metrics' model label), left alone for an unknown name. */
int         srv_models_admin(srv_models *reg, srv_model_op op, const char *name, const char *path, json_t **desc,
                             const char **label, char *msg, size_t n);
/* GET /api/models: one entry's object (NULL: unknown), or (name NULL) the array of all. */
json_t     *srv_models_json(srv_models *reg, const char *name);
json_t     *srv_models_names(srv_models *reg);     /* [name, ...] in registry order */
const char *srv_models_default_name(srv_models *reg);   /* "" when none is left */

typedef struct srv_models_totals {
    int    running, waiting, loaded;
    int    draining;               /* retired versions still running requests */
    uint64_t mem_current, mem_draining;   /* bytes of mapped model files, by kind of version */
    double kv_ratio;   /* over every live instance's cells */
    bool   alive;      /* every current instance's engine thread runs */
    int    slot_ctx;   /* the default model's, or -c when it is not loaded */
} srv_models_totals;
srv_models_totals srv_models_sum(srv_models *reg);

/* ---- access control (guard.c): API keys, per-key and per-IP limits, CORS ---- */

typedef struct srv_guard srv_guard;

/* Who a request authenticated as (a copy: the store may be swapped meanwhile). */
typedef struct srv_principal {
    bool    ok;                    /* false: no key (an open server) */
    char    name[KEYS_NAME_MAX];
    int64_t rpm, tpm;              /* 0 = unlimited */
    bool    admin;
    char    key_id[KEYS_ID_LEN + 1];  /* public id of the secret it presented (current or rotated-out) */
} srv_principal;

typedef enum srv_cors { SRV_CORS_NONE, SRV_CORS_ANY, SRV_CORS_EXPLICIT } srv_cors;

q_status srv_guard_new(const srv_config *cfg, srv_guard **out, q_error *err);
void     srv_guard_free(srv_guard *g);   /* NULL is fine */
/* Reloads the key file now (SIGHUP); a failure keeps the old keys and is logged. */
void     srv_guard_reload(srv_guard *g, const char *why);
/* Whether live keys exist (reloading the file first if it changed). */
bool     srv_guard_keys_required(srv_guard *g);
/* Checks a presented key (constant-time); counts a failure in the metrics. */
bool     srv_guard_verify(srv_guard *g, const char *key, srv_principal *out);
/* Whether the secret p authenticated with still works (not revoked or expired, a rotated-out
 * secret within its grace), after reloading the file if it changed. A principal without a
 * key (an open server) always does. For sessions that outlive one request (/ws). */
bool     srv_guard_still_valid(srv_guard *g, const srv_principal *p);
/* Admits one generation request of p: 0, or the seconds to wait (*which says the limit). */
int64_t  srv_guard_admit(srv_guard *g, const srv_principal *p, srv_limit *which);
/* Ties j to p's token bucket; srv_guard_job_tokens debits its generated tokens: the
 * scheduler calls it when the job ends, however it ends (cancelled and abandoned jobs too). */
void     srv_guard_job(srv_guard *g, const srv_principal *p, srv_job *j);
void     srv_guard_job_tokens(const srv_job *j);
/* Per client IP connection slots (--max-conns-per-ip); false = over the limit. */
bool     srv_guard_conn_acquire(srv_guard *g, const char *ip);
void     srv_guard_conn_release(srv_guard *g, const char *ip);
/* How a request's Origin stands against --cors-origins. */
srv_cors srv_guard_cors(const srv_guard *g, const char *origin);

/* ---- the server (http.c) ---- */

typedef struct srv_server srv_server;

q_status srv_server_start(const srv_config *cfg, srv_server **out, q_error *err);
int      srv_server_port(const srv_server *s);
/* SIGHUP: reload the API key file and rescan --models-dir. */
void     srv_server_reload(srv_server *s);
/* Stops accepting, drains work (cfg->shutdown_s), stops the daemon, frees everything. */
void     srv_server_stop(srv_server *s);

/* ---- what route handlers share (http.c) ---- */

struct MHD_Connection;
struct MHD_Response;

typedef struct srv_req {
    srv_server            *srv;
    struct MHD_Connection *conn;
    const char            *method, *path;
    char                  *body;
    size_t                 body_len, body_cap;
    bool                   body_too_big;
    char                   rid[24];
    double                 t0;
    int                    status;
    srv_endpoint           ep;
    srv_principal          who;          /* the key it authenticated with, if any */
    bool                   ws_auth_late; /* /ws without a key while keys are required: the
                                          * session must authenticate by its first message */
    char                  *ws_protocol;  /* the Sec-WebSocket-Protocol chosen (owned), or NULL */
    srv_inst              *inst;         /* the model instance it uses (a reference), or NULL */
    const char            *model;        /* the registry name it addressed (metrics), or NULL */
    bool                   close_conn;   /* the reply closes the connection */
} srv_req;

typedef int (*srv_handler)(srv_req *r);   /* returns an MHD_Result */

/* Responses; all add X-Request-Id and count the request. */
int  srv_reply_json(srv_req *r, int status, json_t *body);     /* body stolen */
/* OpenAI's error shape {"error":{"message","type","code"}}. */
int  srv_reply_error(srv_req *r, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same with one extra header (hname NULL: none): WWW-Authenticate, Retry-After. */
int  srv_reply_error_h(srv_req *r, int status, const char *type, const char *hname, const char *hval,
                       const char *fmt, ...) __attribute__((format(printf, 6, 7)));
int  srv_reply_text(srv_req *r, int status, const char *ctype, char *text);  /* text stolen */
int  srv_reply_response(srv_req *r, int status, struct MHD_Response *resp);  /* resp destroyed */
/* 503 with Retry-After: 1 and the given JSON body (stolen). */
int  srv_reply_busy(srv_req *r, char *body);

/* Parses the body as a JSON object (depth-limited); on failure replies 400 and returns NULL
 * with *replied set to the MHD result. */
json_t *srv_req_json(srv_req *r, int *replied);
/* The connection's socket, or -1. */
int     srv_req_fd(const srv_req *r);

srv_models    *srv_models_of(const srv_server *s);
const char    *srv_model_name(const srv_server *s);   /* the default model's name */
srv_guard     *srv_guard_of(const srv_server *s);
const srv_config *srv_cfg(const srv_server *s);
bool           srv_stopping(const srv_server *s);

/* ---- request parsing shared by the API families (routes_api.c) ---- */

/* Fills j's sampler, max_tokens, stops, seed and priority from the request object
 * (accepting both topk/top_k and topp/top_p). On a bad field returns false with msg set. */
bool srv_job_params(srv_job *j, const json_t *req, long default_max, char *msg, size_t msg_size);
/* Tokenizes the prompt with r->inst's model into j->prompt and checks it fits the slot. parse_special for
 * chat-rendered text. On failure returns the HTTP status (400) with msg set, else 0. */
int  srv_job_prompt(srv_req *r, srv_job *j, const char *text, size_t len, bool add_special,
                    bool parse_special, char *msg, size_t msg_size);
/* Submits j to r->inst's scheduler; on failure replies (503 + Retry-After) and returns false with *replied set. */
bool srv_job_submit(srv_req *r, srv_job *j, int *replied);
/* Blocks until j has finished (cancelling it if r's client hangs up); returns its finish
 * state and its whole output in *out (srv_chunk_free). */
srv_finish srv_job_collect(srv_req *r, srv_job *j, srv_chunk *out);
/* Resolves the request's optional "model" (a registry name, with or without .gguf;
 * absent = the default model) to a reference in r->inst, loading the model if needed.
 * Returns 0, or the HTTP status with msg set: 400 (not a string), 404 (unknown), 500 (the
 * load failed), 503 (shutting down). */
int  srv_req_model(srv_req *r, const json_t *req, char *msg, size_t n);
json_t *srv_usage_json(const srv_job *j);
/* Records a finished job's tokens and latencies in the metrics, and logs its end (the
 * generated text is redacted unless --log-prompts). */
void srv_job_account(const srv_job *j);

/* ---- streaming (sse.c) ---- */

typedef enum srv_stream_kind { SRV_STREAM_API, SRV_STREAM_CHAT, SRV_STREAM_COMPLETION, SRV_STREAM_KIND_COUNT } srv_stream_kind;

/* Replies 200 text/event-stream, sending j's text as it is produced in kind's event
 * shape, then the closing event(s). Takes over the caller's reference to j and r->inst. */
int srv_stream_reply(srv_req *r, srv_job *j, srv_stream_kind kind);

/* Route handlers. */
int srv_route_health(srv_req *r);
int srv_route_healthz(srv_req *r);
int srv_route_readyz(srv_req *r);
int srv_route_version(srv_req *r);
int srv_route_metrics(srv_req *r);
int srv_route_generate(srv_req *r);
int srv_route_stream(srv_req *r);
int srv_route_chat(srv_req *r);
int srv_route_completions(srv_req *r);
int srv_route_models(srv_req *r);
int srv_route_models_api(srv_req *r);  /* GET /api/models */
int srv_route_model_api(srv_req *r);   /* GET /api/models/{name} */
int srv_route_model_load(srv_req *r);  /* POST /api/models/{name}/load (admin) */
int srv_route_model_unload(srv_req *r);
int srv_route_model_swap(srv_req *r);
int srv_route_ws(srv_req *r);          /* ws.c */

/* The WebSocket reactor (ws.c): one thread and one epoll for every upgraded connection.
 * Started with the server; stopping it closes every session (1001) and joins the thread. */
typedef struct srv_ws_hub srv_ws_hub;
q_status    srv_ws_hub_start(srv_server *srv, srv_ws_hub **out, q_error *err);
void        srv_ws_hub_stop(srv_ws_hub *h);   /* NULL is fine */
srv_ws_hub *srv_ws_hub_of(const srv_server *s);

/* Builds the summary object the /api endpoints return (text may be NULL in streams). */
json_t *srv_api_summary(const srv_job *j, const char *text, size_t len);
/* OpenAI response (chunk = false) or stream chunk bodies for the output in c (NULL: none);
 * final chunks carry finish_reason and usage; id/created as OpenAI's fields. With logprobs
 * asked, the tokens of c come as OpenAI's logprobs object; *lp_prev_end carries the text
 * end of the last token given so far (0 at the start). */
json_t *srv_openai_body(const srv_inst *inst, const char *id, long created, const srv_job *j, srv_stream_kind kind,
                        const srv_chunk *c, size_t *lp_prev_end, bool chunk, bool final);

#endif
