/* routes_api.c — Quarrel's own endpoints: /api/generate (one JSON reply), /api/stream
 * (SSE), the model registry's /api/models (GET; POST .../load|unload|swap for admins),
 * health and readiness probes, /version and /metrics; plus the request parsing the
 * OpenAI routes share (model resolution, sampling fields, prompt checks, submission, usage).
 *
 * Request fields (all optional but the prompt): model (a registry name), temperature, top_k|topk, top_p|topp,
 * max_tokens (>= 0), seed (>= 0), stop (string or list of strings), priority
 * ("interactive" | "batch"), timeout (seconds, capped by --timeout), ignore_eos (bool).
 * Memory: handlers own the jobs they create until they hand them to a reply. */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base.h"
#include "server/server.h"

#ifndef QUARREL_VERSION
#define QUARREL_VERSION "0"
#endif

enum { DEFAULT_MAX_TOKENS = 128 };

static atomic_ulong seed_counter;

/* A number field: absent leaves *out; present and not a number is an error. */
static bool field_num(const json_t *req, const char *a, const char *b, double *out, char *msg, size_t n) {
    const char *names[2] = { a, b };
    for (int i = 0; i < 2; i++) {
        if (!names[i]) continue;
        const json_t *v = json_object_get(req, names[i]);
        if (!v || json_is_null(v)) continue;
        if (!json_is_number(v)) { snprintf(msg, n, "'%s' must be a number", names[i]); return false; }
        *out = json_number_value(v);
    }
    return true;
}

static bool field_int(const json_t *req, const char *a, const char *b, long lo, long hi, long *out, char *msg,
                      size_t n) {
    const char *names[2] = { a, b };
    for (int i = 0; i < 2; i++) {
        if (!names[i]) continue;
        const json_t *v = json_object_get(req, names[i]);
        if (!v || json_is_null(v)) continue;
        if (!json_is_integer(v)) { snprintf(msg, n, "'%s' must be an integer", names[i]); return false; }
        const json_int_t x = json_integer_value(v);
        if (x < lo || x > hi) { snprintf(msg, n, "'%s' must be in [%ld, %ld]", names[i], lo, hi); return false; }
        *out = (long)x;
    }
    return true;
}

bool srv_job_params(srv_job *j, const json_t *req, long default_max, char *msg, size_t n) {
    q_sampler_params *sp = &j->sp;
    double temp = sp->temp, top_p = sp->top_p, min_p = sp->min_p;
    long top_k = sp->top_k, max_tokens = default_max, seed = -1, timeout = 0;
    if (!field_num(req, "temperature", NULL, &temp, msg, n) || !field_num(req, "top_p", "topp", &top_p, msg, n) ||
        !field_num(req, "min_p", NULL, &min_p, msg, n) ||
        !field_int(req, "top_k", "topk", 0, 1L << 30, &top_k, msg, n) ||
        !field_int(req, "seed", NULL, 0, 0x7FFFFFFFFFFFFFFFL, &seed, msg, n) ||
        !field_int(req, "timeout", NULL, 1, 1L << 30, &timeout, msg, n))
        return false;
    const json_t *mt = json_object_get(req, "max_tokens");
    if (mt && !json_is_null(mt)) {
        if (!json_is_integer(mt)) { snprintf(msg, n, "'max_tokens' must be an integer"); return false; }
        if (json_integer_value(mt) < 0) { snprintf(msg, n, "'max_tokens' must be >= 0 (got %lld)", (long long)json_integer_value(mt)); return false; }
        max_tokens = (long)(json_integer_value(mt) > (1 << 30) ? 1 << 30 : json_integer_value(mt));
    }
    if (temp < 0 || temp > 100) { snprintf(msg, n, "'temperature' must be in [0, 100]"); return false; }
    if (top_p < 0 || top_p > 1) { snprintf(msg, n, "'top_p' must be in [0, 1]"); return false; }
    sp->temp = (float)temp;
    sp->top_p = (float)top_p;
    sp->min_p = (float)min_p;
    sp->top_k = (int32_t)top_k;
    sp->seed = seed >= 0 ? (uint64_t)seed : (uint64_t)time(NULL) * 1000003u + atomic_fetch_add(&seed_counter, 1);
    j->max_tokens = max_tokens;

    const json_t *stop = json_object_get(req, "stop");
    if (stop && !json_is_null(stop)) {
        if (json_is_string(stop)) {
            if (json_string_length(stop) > 0) j->stops[j->n_stops++] = q_xstrdup(json_string_value(stop));
        } else if (json_is_array(stop)) {
            if (json_array_size(stop) > SRV_MAX_STOPS) { snprintf(msg, n, "at most %d stop strings", SRV_MAX_STOPS); return false; }
            size_t i;
            const json_t *v;
            json_array_foreach(stop, i, v) {
                if (!json_is_string(v)) { snprintf(msg, n, "'stop' must be a string or a list of strings"); return false; }
                if (json_string_length(v) > 0) j->stops[j->n_stops++] = q_xstrdup(json_string_value(v));
            }
        } else {
            snprintf(msg, n, "'stop' must be a string or a list of strings");
            return false;
        }
    }
    const json_t *ie = json_object_get(req, "ignore_eos");
    if (ie && !json_is_null(ie)) {
        if (!json_is_boolean(ie)) { snprintf(msg, n, "'ignore_eos' must be a boolean"); return false; }
        j->ignore_eos = json_is_true(ie);
    }
    const json_t *pr = json_object_get(req, "priority");
    if (pr && !json_is_null(pr)) {
        const char *p = json_is_string(pr) ? json_string_value(pr) : "";
        if (!strcmp(p, "interactive")) j->prio = SRV_PRIO_INTERACTIVE;
        else if (!strcmp(p, "batch")) j->prio = SRV_PRIO_BATCH;
        else { snprintf(msg, n, "'priority' must be \"interactive\" or \"batch\""); return false; }
    }
    j->deadline = (double)timeout;   /* seconds for now; srv_job_submit makes it absolute */
    return true;
}

int srv_job_prompt(srv_req *r, srv_job *j, const char *text, size_t len, bool add_special, bool parse_special,
                   char *msg, size_t n) {
    if (len == 0) { snprintf(msg, n, "the prompt is empty"); return 400; }
    q_error err;
    Q_ASSERT(r->inst);
    if (q_model_tokenize(srv_inst_model(r->inst), text, len, add_special, parse_special, &j->prompt, &err) != Q_OK) {
        snprintf(msg, n, "could not tokenize the prompt: %.400s", err.msg);
        return 400;
    }
    if (j->prompt.n == 0) { snprintf(msg, n, "the prompt is empty"); return 400; }
    const int slot_ctx = srv_inst_slot_ctx(r->inst);
    if ((long)j->prompt.n >= slot_ctx) {
        snprintf(msg, n, "the prompt has %zu tokens; a request's context holds %d (shorten it, or restart with a larger -c)",
                 j->prompt.n, slot_ctx);
        return 400;
    }
    return 0;
}

bool srv_job_submit(srv_req *r, srv_job *j, int *replied) {
    const double max = (double)srv_cfg(r->srv)->timeout_s;
    const double t = j->deadline > 0 && j->deadline < max ? j->deadline : max;
    j->deadline = srv_now() + t;
    snprintf(j->rid, sizeof j->rid, "%s", r->rid);
    srv_guard_job(srv_guard_of(r->srv), &r->who, j);
    const srv_submit s = srv_sched_submit(srv_inst_sched(r->inst), j);
    if (s == SRV_SUBMIT_OK) return true;
    if (s == SRV_SUBMIT_FULL) {
        json_t *e = json_pack("{s:{s:s, s:s, s:i}}", "error", "message",
                              "the server is busy (request queue full); retry shortly", "type", "server_error",
                              "code", 503);
        char *body = json_dumps(e, JSON_COMPACT);
        json_decref(e);
        *replied = srv_reply_busy(r, body);
    } else {
        *replied = srv_reply_error(r, 503, "server_error", "the server is shutting down");
    }
    return false;
}

srv_finish srv_job_collect(srv_req *r, srv_job *j, srv_chunk *out) {
    /* wait in short slices; between them, a client that hung up cancels the job (the
     * scheduler frees its slot within a step) */
    const int fd = srv_req_fd(r);
    for (;;) {
        pthread_mutex_lock(&j->mu);
        const bool done = j->finish != SRV_FINISH_NONE;
        if (!done) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
            pthread_cond_timedwait(&j->cv, &j->mu, &ts);
        }
        pthread_mutex_unlock(&j->mu);
        if (done) break;
        if (fd >= 0 && !atomic_load(&j->cancel)) {
            struct pollfd pfd = { .fd = fd, .events = POLLRDHUP };
            if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR))) atomic_store(&j->cancel, true);
        }
    }
    srv_cursor cur = { 0 };
    return srv_job_read(j, &cur, out, 0);
}

/* HTTP statuses of srv_models_acquire's outcomes. */
static const int acquire_status[SRV_ACQUIRE_COUNT] = {
    [SRV_ACQUIRE_OK] = 0, [SRV_ACQUIRE_NOT_FOUND] = 404, [SRV_ACQUIRE_LOAD_FAILED] = 500, [SRV_ACQUIRE_CLOSED] = 503,
    [SRV_ACQUIRE_PENDING] = 500,   /* (srv_models_acquire waits instead) */
};

int srv_req_model(srv_req *r, const json_t *req, char *msg, size_t n) {
    const json_t *m = json_object_get(req, "model");
    if (m && !json_is_null(m) && !json_is_string(m)) { snprintf(msg, n, "'model' must be a string"); return 400; }
    Q_ASSERT(!r->inst);
    return acquire_status[srv_models_acquire(srv_models_of(r->srv), json_string_value(m), &r->inst, &r->model, msg, n)];
}

/* The OpenAI error type of a failed request's status. */
static const char *error_type(int status) {
    return status == 404 ? "not_found_error" : status >= 500 ? "server_error" : "invalid_request_error";
}

json_t *srv_usage_json(const srv_job *j) {
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)j->prompt.n, "completion_tokens",
                     (json_int_t)j->n_gen, "total_tokens", (json_int_t)(j->prompt.n + (size_t)j->n_gen));
}

json_t *srv_api_summary(const srv_job *j, const char *text, size_t len) {
    const double t0 = j->t_first > 0 ? j->t_first : j->t_end;
    const double gen_s = j->t_end - t0;
    json_t *o = json_pack("{s:I, s:f, s:s, s:o}", "tokens_generated", (json_int_t)j->n_gen, "tokens_per_sec",
                          gen_s > 0 && j->n_gen > 1 ? (double)(j->n_gen - 1) / gen_s : 0.0, "finish_reason",
                          srv_finish_name(j->finish), "usage", srv_usage_json(j));
    if (text) json_object_set_new(o, "text", json_stringn(text, len));
    if (j->finish == SRV_FINISH_ERROR || j->finish == SRV_FINISH_TIMEOUT) json_object_set_new(o, "error", json_string(j->err));
    return o;
}

/* Records metrics for a finished job. */
void srv_job_account(const srv_job *j) {
    /* the job has ended: the engine no longer writes its output */
    srv_log(SRV_LOG_INFO, "generation", j->rid,
            json_pack("{s:s, s:I, s:I, s:f, s:f, s:s%}", "finish_reason", srv_finish_name(j->finish), "prompt_tokens",
                      (json_int_t)j->prompt.n, "completion_tokens", (json_int_t)j->n_gen, "ttft_ms",
                      j->t_first > 0 ? (j->t_first - j->t_submit) * 1e3 : 0.0, "e2e_ms", (j->t_end - j->t_submit) * 1e3,
                      "text", j->out ? j->out : "", j->out_len));
    srv_metrics_tokens((long)j->prompt.n, j->n_gen);   /* (the key's tpm bucket was debited by the scheduler) */
    if (j->t_first > 0) srv_metrics_ttft(j->t_first - j->t_submit);
    srv_metrics_e2e(j->t_end - j->t_submit);
    if (j->t_start > 0) {
        srv_metrics_queue_time(j->t_start - j->t_submit);
        srv_metrics_inference(j->t_end - j->t_start);
    }
    /* jobs end with a 200 (the text so far) when they time out or their client leaves */
    if (j->finish == SRV_FINISH_TIMEOUT) srv_metrics_error(SRV_ERR_TIMEOUT);
    else if (j->finish == SRV_FINISH_ERROR) srv_metrics_error(SRV_ERR_INTERNAL);
    else if (j->finish == SRV_FINISH_CANCELLED) srv_metrics_error(SRV_ERR_DISCONNECTED);
}

/* ---- /api/generate and /api/stream ---- */

static srv_job *api_job(srv_req *r, int *replied) {
    json_t *req = srv_req_json(r, replied);
    if (!req) return NULL;
    char msg[512];
    srv_job *j = srv_job_new();
    const json_t *p = json_object_get(req, "prompt");
    int st = 0;
    if (!p) { snprintf(msg, sizeof msg, "'prompt' is required"); st = 400; }
    else if (!json_is_string(p)) { snprintf(msg, sizeof msg, "'prompt' must be a string"); st = 400; }
    else if ((st = srv_req_model(r, req, msg, sizeof msg))) {}
    else if (!srv_job_params(j, req, DEFAULT_MAX_TOKENS, msg, sizeof msg)) st = 400;
    else st = srv_job_prompt(r, j, json_string_value(p), json_string_length(p), true, false, msg, sizeof msg);
    if (!st) srv_log(SRV_LOG_INFO, "prompt", r->rid, json_pack("{s:O}", "prompt", p));
    json_decref(req);
    if (st) {
        *replied = srv_reply_error(r, st, error_type(st), "%s", msg);
        srv_job_release(j);
        return NULL;
    }
    if (!srv_job_submit(r, j, replied)) { srv_job_release(j); return NULL; }
    return j;
}

int srv_route_generate(srv_req *r) {
    int replied = 0;
    srv_job *j = api_job(r, &replied);
    if (!j) return replied;
    srv_chunk c;
    const srv_finish f = srv_job_collect(r, j, &c);
    srv_job_account(j);
    json_t *o = srv_api_summary(j, c.text, c.len);
    srv_chunk_free(&c);
    srv_job_release(j);
    return srv_reply_json(r, f == SRV_FINISH_ERROR ? 500 : 200, o);
}

int srv_route_stream(srv_req *r) {
    int replied = 0;
    srv_job *j = api_job(r, &replied);
    if (!j) return replied;
    return srv_stream_reply(r, j, SRV_STREAM_API);
}

/* ---- /api/models ---- */

int srv_route_models_api(srv_req *r) {
    return srv_reply_json(r, 200, json_pack("{s:o}", "models", srv_models_json(srv_models_of(r->srv), NULL)));
}

/* The {name} segment of /api/models/{name}[/...], copied into buf. */
static const char *model_name_of(const srv_req *r, char *buf, size_t cap) {
    const char *name = r->path + strlen("/api/models/");
    const size_t n = strcspn(name, "/");
    snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), name);
    return buf;
}

int srv_route_model_api(srv_req *r) {
    char name[256];
    json_t *o = srv_models_json(srv_models_of(r->srv), model_name_of(r, name, sizeof name));
    if (!o) return srv_reply_error(r, 404, "not_found_error", "no model '%.200s' here (see GET /api/models)", name);
    return srv_reply_json(r, 200, o);
}

/* POST /api/models/{name}/{load,unload,swap}: replies with the model's object. */
static int model_admin(srv_req *r, srv_model_op op) {
    char name[256], msg[512];
    model_name_of(r, name, sizeof name);
    const char *path = NULL;
    json_t *req = NULL;
    if (op == SRV_MODEL_SWAP && r->body_len) {   /* optional {"path": "..."} */
        int replied = 0;
        if (!(req = srv_req_json(r, &replied))) return replied;
        const json_t *p = json_object_get(req, "path");
        if (p && !json_is_null(p) && (!json_is_string(p) || !json_string_length(p))) {
            json_decref(req);
            return srv_reply_error(r, 400, "invalid_request_error", "'path' must be a non-empty string");
        }
        path = json_string_value(p);
    }
    srv_log(SRV_LOG_INFO, "model_admin", r->rid,
            json_pack("{s:s, s:s, s:s?, s:s}", "model", name, "op",
                      op == SRV_MODEL_LOAD ? "load" : op == SRV_MODEL_UNLOAD ? "unload" : "swap", "path", path, "key",
                      r->who.ok ? r->who.name : "(loopback)"));
    json_t *o = NULL;
    const int st = srv_models_admin(srv_models_of(r->srv), op, name, path, &o, &r->model, msg, sizeof msg);
    json_decref(req);
    if (st != 200)
        return srv_reply_error(r, st, st == 403 ? "permission_error" : error_type(st), "%s", msg);
    Q_ASSERT(o);
    return srv_reply_json(r, 200, o);
}

int srv_route_model_load(srv_req *r) { return model_admin(r, SRV_MODEL_LOAD); }
int srv_route_model_unload(srv_req *r) { return model_admin(r, SRV_MODEL_UNLOAD); }
int srv_route_model_swap(srv_req *r) { return model_admin(r, SRV_MODEL_SWAP); }

/* ---- probes ---- */

int srv_route_healthz(srv_req *r) { return srv_reply_json(r, 200, json_pack("{s:s}", "status", "ok")); }

int srv_route_readyz(srv_req *r) {
    const bool ready = srv_models_sum(srv_models_of(r->srv)).alive && !srv_stopping(r->srv);
    return srv_reply_json(r, ready ? 200 : 503, json_pack("{s:s}", "status", ready ? "ready" : "not ready"));
}

int srv_route_health(srv_req *r) {
    const srv_models_totals t = srv_models_sum(srv_models_of(r->srv));
    return srv_reply_json(r, 200, json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i}", "status", "ok", "model",
                                            srv_model_name(r->srv), "slots", (int)srv_cfg(r->srv)->parallel,
                                            "running", t.running, "waiting", t.waiting, "slot_context", t.slot_ctx,
                                            "models_loaded", t.loaded));
}

int srv_route_version(srv_req *r) {
    return srv_reply_json(r, 200, json_pack("{s:s, s:s, s:s}", "name", "quarrel", "version", QUARREL_VERSION, "model",
                                            srv_model_name(r->srv)));
}

int srv_route_metrics(srv_req *r) {
    const srv_models_totals t = srv_models_sum(srv_models_of(r->srv));
    char *text = srv_metrics_render(&t);
    return srv_reply_text(r, 200, "text/plain; version=0.0.4", text);
}
