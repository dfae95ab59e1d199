/* sse.c — streamed replies as Server-Sent Events (text/event-stream, chunked): each
 * event is "data: <json>\n\n" carrying whatever text (and tokens) the job released since
 * the last event (always whole UTF-8 characters: the detokenizer stream holds partial ones),
 * then a closing event: the /api summary, or OpenAI's final chunk and "data: [DONE]".
 * While nothing comes for a while a comment line is sent, so a vanished client is
 * noticed (the write fails) even while its request waits in the queue.
 *
 * The reader runs on the connection's own thread and may block on the job. When the
 * response is freed before the job ended (the client went away), the job is cancelled
 * and the scheduler frees its slot within one decode step.
 * Memory: the stream owns one job reference, the request's model instance reference (MHD
 * may free the response after the request's end) and its pending bytes. */
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base.h"
#include "server/server.h"

static const double KEEPALIVE_S = 1.0;

typedef struct stream {
    srv_job        *job;
    srv_stream_kind kind;
    char            id[48];
    long            created;
    srv_inst       *inst;         /* the job's model instance (the request's reference) */
    srv_cursor      cur;          /* job output already sent */
    size_t          lp_end;       /* text end of the last token whose logprobs were sent */
    char           *pend;         /* formatted bytes not yet handed to MHD */
    size_t          pend_len, pend_off, pend_cap;
    bool            ended;        /* closing events are in pend */
} stream;

static void pend_add(stream *st, const char *s, size_t n) {
    if (st->pend_len + n > st->pend_cap) {
        st->pend_cap = (st->pend_len + n) * 2 + 256;
        st->pend = q_xrealloc(st->pend, st->pend_cap);
    }
    memcpy(st->pend + st->pend_len, s, n);
    st->pend_len += n;
}

static void pend_event(stream *st, json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    Q_ASSERT(s);
    pend_add(st, "data: ", 6);
    pend_add(st, s, strlen(s));
    pend_add(st, "\n\n", 2);
    free(s);
}

/* /api events: {"type":"token","text","token_ids"}; OpenAI: a chunk. NULL when there is
 * nothing to send (OpenAI chunks go out for text, or for tokens when logprobs were asked). */
static json_t *chunk_event(stream *st, const srv_chunk *c) {
    if (st->kind == SRV_STREAM_API) {
        json_t *ids = json_array();
        for (size_t i = 0; i < c->n_toks; i++) json_array_append_new(ids, json_integer(c->toks[i].id));
        return json_pack("{s:s, s:s%, s:o}", "type", "token", "text", c->text, c->len, "token_ids", ids);
    }
    if (!c->len && !(st->job->n_logprobs >= 0 && c->n_toks)) return NULL;
    return srv_openai_body(st->inst, st->id, st->created, st->job, st->kind, c, &st->lp_end, true, false);
}

static void end_events(stream *st, srv_finish f) {
    srv_job_account(st->job);
    if (st->kind == SRV_STREAM_API) {
        json_t *o = srv_api_summary(st->job, NULL, 0);
        json_object_set_new(o, "type", json_string("done"));
        pend_event(st, o);
        return;
    }
    if (f == SRV_FINISH_ERROR)
        pend_event(st, json_pack("{s:{s:s, s:s, s:i}}", "error", "message", st->job->err, "type", "server_error",
                                 "code", 500));
    else
        pend_event(st, srv_openai_body(st->inst, st->id, st->created, st->job, st->kind, NULL, &st->lp_end, true, true));
    pend_add(st, "data: [DONE]\n\n", 14);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream *st = cls;
    while (st->pend_off == st->pend_len) {
        st->pend_len = st->pend_off = 0;
        if (st->ended) return MHD_CONTENT_READER_END_OF_STREAM;
        srv_chunk c;
        const srv_finish f = srv_job_read(st->job, &st->cur, &c, srv_now() + KEEPALIVE_S);
        const bool any = c.len || c.n_toks;
        json_t *ev = any ? chunk_event(st, &c) : NULL;
        if (ev) pend_event(st, ev);
        srv_chunk_free(&c);
        if (f != SRV_FINISH_NONE) {
            end_events(st, f);
            st->ended = true;
        } else if (!any) {
            pend_add(st, ": keep-alive\n\n", 14);
        }
    }
    const size_t n = st->pend_len - st->pend_off < max ? st->pend_len - st->pend_off : max;
    memcpy(buf, st->pend + st->pend_off, n);
    st->pend_off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls) {
    stream *st = cls;
    if (!st->ended) {
        /* client gone: free the slot; the job ends unaccounted, so count the disconnect here */
        atomic_store(&st->job->cancel, true);
        srv_metrics_error(SRV_ERR_DISCONNECTED);
    }
    srv_job_release(st->job);
    srv_inst_release(st->inst);
    free(st->pend);
    free(st);
}

int srv_stream_reply(srv_req *r, srv_job *j, srv_stream_kind kind) {
    stream *st = q_xcalloc(1, sizeof *st);
    st->job = j;
    st->kind = kind;
    snprintf(st->id, sizeof st->id, "%s-%s", kind == SRV_STREAM_CHAT ? "chatcmpl" : "cmpl", r->rid);
    st->created = (long)time(NULL);
    st->inst = r->inst;   /* taken over: the response may outlive the request */
    r->inst = NULL;
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, st, stream_free);
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    if (kind == SRV_STREAM_CHAT) {
        /* OpenAI opens a chat stream with the assistant role */
        json_t *o = srv_openai_body(st->inst, st->id, st->created, j, kind, NULL, &st->lp_end, true, false);
        json_object_set_new(json_object_get(json_array_get(json_object_get(o, "choices"), 0), "delta"), "role",
                            json_string("assistant"));
        pend_event(st, o);
    }
    return srv_reply_response(r, 200, resp);
}
