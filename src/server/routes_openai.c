/* routes_openai.c — the OpenAI-compatible subset: POST /v1/chat/completions (messages
 * rendered with the model's tokenizer.chat_template, or ChatML when it has none),
 * POST /v1/completions, GET /v1/models. Fields: temperature, top_p, top_k, max_tokens,
 * stop (string or list), seed, n (1 only), stream. Errors use OpenAI's
 * {"error":{"message","type","code"}} shape.
 * Memory: as routes_api.c. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base.h"
#include "server/server.h"

enum { OAI_DEFAULT_MAX_TOKENS = 256 };

static const char *oai_finish(srv_finish f) {
    return f == SRV_FINISH_NONE ? NULL : srv_finish_name(f);
}

json_t *srv_openai_body(const char *id, long created, const char *model, const srv_job *j, srv_stream_kind kind,
                        const char *text, size_t len, bool chunk, bool final) {
    const bool chat = kind == SRV_STREAM_CHAT;
    json_t *choice = json_pack("{s:i}", "index", 0);
    const char *fin = chunk && !final ? NULL : oai_finish(j->finish);
    json_object_set_new(choice, "finish_reason", fin ? json_string(fin) : json_null());
    if (chat && chunk)
        json_object_set_new(choice, "delta", final ? json_object() : json_pack("{s:s%}", "content", text, len));
    else if (chat)
        json_object_set_new(choice, "message", json_pack("{s:s, s:s%}", "role", "assistant", "content", text, len));
    else {
        json_object_set_new(choice, "text", json_stringn(text, len));
        json_object_set_new(choice, "logprobs", json_null());
    }
    const char *object = chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", id, "object", object, "created", (json_int_t)created,
                          "model", model, "choices", choice);
    if (!chunk || final) json_object_set_new(o, "usage", srv_usage_json(j));
    return o;
}

/* Renders the messages into a prompt; NULL (msg set) on bad messages. */
static char *chat_render(srv_req *r, const json_t *msgs, size_t *len, char *msg, size_t n) {
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        snprintf(msg, n, "'messages' must be a non-empty list of {role, content} objects");
        return NULL;
    }
    size_t i;
    const json_t *m;
    json_array_foreach(msgs, i, m) {
        if (!json_is_object(m) || !json_is_string(json_object_get(m, "role")) ||
            !json_is_string(json_object_get(m, "content"))) {
            snprintf(msg, n, "messages[%zu] must be an object with string 'role' and 'content'", i);
            return NULL;
        }
    }
    char *out = NULL;
    bool fallback = false;
    q_error err;
    if (q_model_chat_apply(srv_model(r->srv), msgs, true, &out, &fallback, &err) != Q_OK) {
        snprintf(msg, n, "could not render the messages: %.400s", err.msg);
        return NULL;
    }
    if (fallback) srv_log(SRV_LOG_DEBUG, "chat_template_fallback", r->rid, json_pack("{s:s}", "template", "chatml"));
    *len = strlen(out);
    return out;
}

static int oai_handle(srv_req *r, bool chat) {
    int replied = 0;
    json_t *req = srv_req_json(r, &replied);
    if (!req) return replied;
    char msg[512];
    int st = 0;
    srv_job *j = srv_job_new();
    const json_t *nv = json_object_get(req, "n");
    const json_t *stream = json_object_get(req, "stream");
    if (nv && !json_is_null(nv) && (!json_is_integer(nv) || json_integer_value(nv) != 1)) {
        snprintf(msg, sizeof msg, "only n = 1 is supported");
        st = 400;
    } else if (stream && !json_is_null(stream) && !json_is_boolean(stream)) {
        snprintf(msg, sizeof msg, "'stream' must be a boolean");
        st = 400;
    } else if (!srv_job_params(j, req, OAI_DEFAULT_MAX_TOKENS, msg, sizeof msg)) {
        st = 400;
    } else if (chat) {
        size_t len = 0;
        char *text = chat_render(r, json_object_get(req, "messages"), &len, msg, sizeof msg);
        /* the rendered text carries the template's specials: parse them, add none */
        st = text ? srv_job_prompt(r, j, text, len, false, true, msg, sizeof msg) : 400;
        free(text);
    } else {
        const json_t *p = json_object_get(req, "prompt");
        if (!json_is_string(p)) {
            snprintf(msg, sizeof msg, "'prompt' must be a string");
            st = 400;
        } else {
            st = srv_job_prompt(r, j, json_string_value(p), json_string_length(p), true, false, msg, sizeof msg);
        }
    }
    const bool streaming = json_is_true(stream);
    json_decref(req);
    if (st) {
        srv_job_release(j);
        return srv_reply_error(r, st, "invalid_request_error", "%s", msg);
    }
    if (!srv_job_submit(r, j, &replied)) { srv_job_release(j); return replied; }
    const srv_stream_kind kind = chat ? SRV_STREAM_CHAT : SRV_STREAM_COMPLETION;
    if (streaming) return srv_stream_reply(r, j, kind);

    char *text;
    size_t len;
    const srv_finish f = srv_job_collect(r, j, &text, &len);
    srv_job_account(j);
    int ret;
    if (f == SRV_FINISH_ERROR) {
        ret = srv_reply_error(r, 500, "server_error", "generation failed: %s", j->err);
    } else {
        char id[48];
        snprintf(id, sizeof id, "%s-%s", chat ? "chatcmpl" : "cmpl", r->rid);
        ret = srv_reply_json(r, 200, srv_openai_body(id, (long)time(NULL), srv_model_name(r->srv), j, kind, text, len,
                                                     false, true));
    }
    free(text);
    srv_job_release(j);
    return ret;
}

int srv_route_chat(srv_req *r) { return oai_handle(r, true); }
int srv_route_completions(srv_req *r) { return oai_handle(r, false); }

int srv_route_models(srv_req *r) {
    return srv_reply_json(r, 200, json_pack("{s:s, s:[{s:s, s:s, s:I, s:s}]}", "object", "list", "data", "id",
                                            srv_model_name(r->srv), "object", "model", "created", (json_int_t)0,
                                            "owned_by", "quarrel"));
}
