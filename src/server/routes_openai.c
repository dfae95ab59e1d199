/* routes_openai.c — the OpenAI-compatible subset: POST /v1/chat/completions (messages
 * rendered with the model's tokenizer.chat_template, or ChatML when it has none),
 * POST /v1/completions, GET /v1/models (every registry model, loaded or not). Fields:
 * model (a registry name, loaded on demand; absent = the default model; unknown = 404),
 * temperature, top_p, top_k, max_tokens, stop (string or list), seed, n (1 only), stream,
 * logprobs (chat: bool + top_logprobs; completions: alternatives per token). Errors use OpenAI's
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

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one (strict: no
 * overlongs, surrogates or code points past U+10FFFF). */
static size_t utf8_valid_len(const unsigned char *s, size_t n) {
    const unsigned c = s[0];
    size_t k;
    unsigned cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { k = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { k = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { k = 4; cp = c & 0x07; }
    else return 0;
    if (n < k) return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((k == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return k;
}

/* A token's piece as OpenAI shows it: "token" (invalid UTF-8 bytes become U+FFFD, as a
 * byte-fallback token alone is not text) and "bytes" (the raw bytes). */
static void oai_token_piece(const q_vocab *v, q_token id, json_t **token, json_t **bytes) {
    char small[256], *buf = small;
    size_t n = q_token_to_piece(v, id, small, sizeof small, 0, true);
    if (n > sizeof small) {
        buf = q_xmalloc(n);
        n = q_token_to_piece(v, id, buf, n, 0, true);
    }
    char *txt = q_xmalloc(n * 3 + 1);
    size_t o = 0;
    *bytes = json_array();
    for (size_t i = 0; i < n;) {
        const size_t k = utf8_valid_len((const unsigned char *)buf + i, n - i);
        if (k) memcpy(txt + o, buf + i, k), o += k;
        else memcpy(txt + o, "\xEF\xBF\xBD", 3), o += 3;   /* U+FFFD */
        for (size_t b = 0; b < (k ? k : 1); b++) json_array_append_new(*bytes, json_integer((unsigned char)buf[i + b]));
        i += k ? k : 1;
    }
    *token = json_stringn(txt, o);
    free(txt);
    if (buf != small) free(buf);
}

/* OpenAI's logprobs object for the tokens of c. Chat: {"content": [{token, logprob,
 * bytes, top_logprobs: [{token, logprob, bytes}]}]}. Completions: {tokens,
 * token_logprobs, top_logprobs: [{token: logprob}], text_offset}. *prev_end is the text
 * end of the token before c's first one (0 at the start), advanced past c. */
static json_t *oai_logprobs(const q_vocab *v, srv_stream_kind kind, const srv_chunk *c, size_t *prev_end) {
    const int k = c->n_top;
    if (kind == SRV_STREAM_CHAT) {
        json_t *content = json_array();
        for (size_t i = 0; i < c->n_toks; i++) {
            json_t *tok, *bytes, *tops = json_array();
            for (int t = 0; t < k; t++) {
                const q_token id = c->top_ids[i * (size_t)k + (size_t)t];
                if (id < 0) break;
                json_t *tt, *tb;
                oai_token_piece(v, id, &tt, &tb);
                json_array_append_new(tops, json_pack("{s:o, s:f, s:o}", "token", tt, "logprob",
                                                      (double)c->top_lps[i * (size_t)k + (size_t)t], "bytes", tb));
            }
            oai_token_piece(v, c->toks[i].id, &tok, &bytes);
            json_array_append_new(content, json_pack("{s:o, s:f, s:o, s:o}", "token", tok, "logprob",
                                                     (double)c->toks[i].logprob, "bytes", bytes, "top_logprobs", tops));
        }
        *prev_end = c->n_toks ? c->toks[c->n_toks - 1].text_end : *prev_end;
        return json_pack("{s:o, s:n}", "content", content, "refusal");
    }
    json_t *tokens = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    for (size_t i = 0; i < c->n_toks; i++) {
        json_t *tok, *bytes;
        oai_token_piece(v, c->toks[i].id, &tok, &bytes);
        json_decref(bytes);
        json_array_append_new(tokens, tok);
        json_array_append_new(lps, json_real(c->toks[i].logprob));
        json_t *top = json_object();
        for (int t = 0; t < k; t++) {
            const q_token id = c->top_ids[i * (size_t)k + (size_t)t];
            if (id < 0) break;
            json_t *tt, *tb;
            oai_token_piece(v, id, &tt, &tb);
            json_decref(tb);
            json_object_set_new(top, json_string_value(tt), json_real(c->top_lps[i * (size_t)k + (size_t)t]));
            json_decref(tt);
        }
        json_array_append_new(tops, top);
        json_array_append_new(offs, json_integer((json_int_t)*prev_end));
        *prev_end = c->toks[i].text_end;
    }
    return json_pack("{s:o, s:o, s:o, s:o}", "tokens", tokens, "token_logprobs", lps, "top_logprobs", tops,
                     "text_offset", offs);
}

json_t *srv_openai_body(const srv_inst *inst, const char *id, long created, const srv_job *j, srv_stream_kind kind,
                        const srv_chunk *c, size_t *lp_prev_end, bool chunk, bool final) {
    const bool chat = kind == SRV_STREAM_CHAT;
    const char *text = c ? c->text : "";
    const size_t len = c ? c->len : 0;
    json_t *choice = json_pack("{s:i}", "index", 0);
    const char *fin = chunk && !final ? NULL : oai_finish(j->finish);
    json_object_set_new(choice, "finish_reason", fin ? json_string(fin) : json_null());
    if (chat && chunk)
        json_object_set_new(choice, "delta", final ? json_object() : json_pack("{s:s%}", "content", text, len));
    else if (chat)
        json_object_set_new(choice, "message", json_pack("{s:s, s:s%}", "role", "assistant", "content", text, len));
    else
        json_object_set_new(choice, "text", json_stringn(text, len));
    const bool lp = j->n_logprobs >= 0 && c && c->n_toks > 0;
    json_object_set_new(choice, "logprobs",
                        lp ? oai_logprobs(q_model_vocab(srv_inst_model(inst)), kind, c, lp_prev_end) : json_null());
    const char *object = chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", id, "object", object, "created", (json_int_t)created,
                          "model", srv_inst_name(inst), "choices", choice);
    if (!chunk || final) json_object_set_new(o, "usage", srv_usage_json(j));
    return o;
}

/* Chat: "logprobs": bool and "top_logprobs": 0..20 (only with logprobs). Completions:
 * "logprobs": 0..20 alternatives, or null. Sets j->n_logprobs. */
static bool oai_logprobs_params(srv_job *j, const json_t *req, bool chat, char *msg, size_t n) {
    const json_t *lp = json_object_get(req, "logprobs"), *top = json_object_get(req, "top_logprobs");
    const bool has_top = top && !json_is_null(top);
    if (has_top && (!json_is_integer(top) || json_integer_value(top) < 0 ||
                    json_integer_value(top) > SRV_MAX_TOP_LOGPROBS)) {
        snprintf(msg, n, "'top_logprobs' must be an integer in [0, %d]", SRV_MAX_TOP_LOGPROBS);
        return false;
    }
    if (!lp || json_is_null(lp) || json_is_false(lp)) {
        if (chat && has_top && json_integer_value(top) > 0) {
            snprintf(msg, n, "'top_logprobs' needs \"logprobs\": true");
            return false;
        }
        return true;
    }
    if (chat) {
        if (!json_is_boolean(lp)) { snprintf(msg, n, "'logprobs' must be a boolean"); return false; }
        j->n_logprobs = has_top ? (int)json_integer_value(top) : 0;
        return true;
    }
    if (!json_is_integer(lp) || json_integer_value(lp) < 0 || json_integer_value(lp) > SRV_MAX_TOP_LOGPROBS) {
        snprintf(msg, n, "'logprobs' must be an integer in [0, %d] (the alternatives per token) or null",
                 SRV_MAX_TOP_LOGPROBS);
        return false;
    }
    j->n_logprobs = (int)json_integer_value(lp);
    return true;
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
    if (q_model_chat_apply(srv_inst_model(r->inst), msgs, true, &out, &fallback, &err) != Q_OK) {
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
    } else if ((st = srv_req_model(r, req, msg, sizeof msg))) {
    } else if (!srv_job_params(j, req, OAI_DEFAULT_MAX_TOKENS, msg, sizeof msg) ||
               !oai_logprobs_params(j, req, chat, msg, sizeof msg)) {
        st = 400;
    } else if (chat) {
        size_t len = 0;
        char *text = chat_render(r, json_object_get(req, "messages"), &len, msg, sizeof msg);
        if (text) srv_log(SRV_LOG_INFO, "prompt", r->rid, json_pack("{s:O}", "messages", json_object_get(req, "messages")));
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
            if (!st) srv_log(SRV_LOG_INFO, "prompt", r->rid, json_pack("{s:O}", "prompt", p));
        }
    }
    const bool streaming = json_is_true(stream);
    json_decref(req);
    if (st) {
        srv_job_release(j);
        return srv_reply_error(r, st, st == 404 ? "not_found_error" : st >= 500 ? "server_error" : "invalid_request_error",
                               "%s", msg);
    }
    if (!srv_job_submit(r, j, &replied)) { srv_job_release(j); return replied; }
    const srv_stream_kind kind = chat ? SRV_STREAM_CHAT : SRV_STREAM_COMPLETION;
    if (streaming) return srv_stream_reply(r, j, kind);

    srv_chunk c;
    const srv_finish f = srv_job_collect(r, j, &c);
    srv_job_account(j);
    int ret;
    if (f == SRV_FINISH_ERROR) {
        ret = srv_reply_error(r, 500, "server_error", "generation failed: %s", j->err);
    } else {
        char id[48];
        snprintf(id, sizeof id, "%s-%s", chat ? "chatcmpl" : "cmpl", r->rid);
        size_t lp_end = 0;
        ret = srv_reply_json(r, 200, srv_openai_body(r->inst, id, (long)time(NULL), j, kind, &c, &lp_end, false, true));
    }
    srv_chunk_free(&c);
    srv_job_release(j);
    return ret;
}

int srv_route_chat(srv_req *r) { return oai_handle(r, true); }
int srv_route_completions(srv_req *r) { return oai_handle(r, false); }

int srv_route_models(srv_req *r) {
    json_t *names = srv_models_names(srv_models_of(r->srv)), *data = json_array(), *v;
    size_t i;
    json_array_foreach(names, i, v)
        json_array_append_new(data, json_pack("{s:O, s:s, s:I, s:s}", "id", v, "object", "model", "created",
                                              (json_int_t)0, "owned_by", "quarrel"));
    json_decref(names);
    return srv_reply_json(r, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}
