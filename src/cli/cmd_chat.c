/* cmd_chat.c — `quarrel chat`: interactive multi-turn chat in the terminal.
 *
 *   quarrel chat -m MODEL [-s SYSTEM] [-n MAX_REPLY] [-c CTX] [-t THREADS]
 *                [--temp T] [--top-k K] [--top-p P] [--min-p P] [--seed S]
 *
 * Reads one user message per line from stdin (EOF or "/exit" ends), renders the whole
 * conversation with the model's chat template (ChatML when it has none) and decodes only
 * the text after what the KV cache already holds: the cache is kept between turns.
 * Replies stream to stdout; per-turn token counts and speed go to stderr. If the new
 * rendering does not start with the text already decoded (a template that rewrites
 * history), the cache is cleared and the conversation decoded again. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/gen_common.h"

#define CMD "chat"

static void chat_usage(FILE *f) {
    fprintf(f, "usage: quarrel chat -m MODEL [-s SYSTEM] [-n MAX_REPLY (512)] [-c CTX] [-t THREADS]\n"
               "                    [--temp T] [--top-k K] [--top-p P] [--min-p P] [--seed S]\n");
}

typedef struct chat {
    q_model        *m;
    q_context      *c;
    const q_vocab  *v;
    q_sampler      *smp;
    q_batch         b;
    q_pos           n_past;
    char           *decoded;      /* conversation text whose tokens are in the cache */
    size_t          decoded_len;
    long            n_reply_max;
} chat;

static bool chat_decode(chat *ch, const q_token *t, size_t n) {
    const int32_t nb = ch->b.n_max;
    for (size_t i0 = 0; i0 < n; i0 += (size_t)nb) {
        q_batch_clear(&ch->b);
        for (size_t i = i0; i < n && i < i0 + (size_t)nb; i++) q_batch_add(&ch->b, t[i], ch->n_past++, 0, i == n - 1);
        q_error err;
        if (q_decode(ch->c, &ch->b, &err) != Q_OK) {
            cli_errorf(CMD, "%s", err.msg);
            return false;
        }
    }
    return true;
}

static void append_decoded(chat *ch, const char *s, size_t n) {
    ch->decoded = realloc(ch->decoded, ch->decoded_len + n + 1);
    memcpy(ch->decoded + ch->decoded_len, s, n);
    ch->decoded_len += n;
    ch->decoded[ch->decoded_len] = '\0';
}

/* One turn: decode the new part of the rendering, generate and stream the reply. */
static bool chat_turn(chat *ch, json_t *msgs, json_t *reply_out) {
    char *full = NULL;
    bool fallback;
    q_error err;
    if (q_model_chat_apply(ch->m, msgs, true, &full, &fallback, &err) != Q_OK) {
        cli_errorf(CMD, "%s", err.msg);
        return false;
    }
    const size_t full_len = strlen(full);
    if (ch->decoded_len > full_len || memcmp(full, ch->decoded ? ch->decoded : "", ch->decoded_len)) {
        q_kv_clear(ch->c);   /* history was re-rendered differently: start over */
        ch->n_past = 0;
        ch->decoded_len = 0;
    }
    q_tokens toks = { 0 };
    const bool first = ch->decoded_len == 0;
    bool ok = cli_tokenize(CMD, ch->v, full + ch->decoded_len, first, true, &toks);
    const size_t cached = (size_t)ch->n_past;
    const double t0 = cli_now_ms();
    ok = ok && chat_decode(ch, toks.ids, toks.n);
    if (ok) append_decoded(ch, full + ch->decoded_len, full_len - ch->decoded_len);
    const double t1 = cli_now_ms();
    q_detok_stream *ds = q_detok_stream_new(ch->v, false);
    size_t reply_len = 0, reply_cap = 256;
    char *reply = malloc(reply_cap);
    long n_gen = 0;
    while (ok && n_gen < ch->n_reply_max) {
        const q_token tok = q_sampler_sample(ch->smp, q_get_logits_ith(ch->c, -1));
        q_sampler_accept(ch->smp, tok);
        n_gen++;
        if (q_vocab_is_eog(ch->v, tok)) break;
        size_t len;
        const char *piece = q_detok_stream_push(ds, tok, &len);
        fwrite(piece, 1, len, stdout);
        fflush(stdout);
        if (reply_len + len + 1 > reply_cap) reply = realloc(reply, reply_cap = 2 * (reply_len + len + 1));
        memcpy(reply + reply_len, piece, len);
        reply_len += len;
        if (ch->n_past >= q_context_n_ctx(ch->c)) {
            fprintf(stderr, "\nquarrel chat: context full; raise -c\n");
            ok = false;
            break;
        }
        ok = chat_decode(ch, &tok, 1);
        if (ok) {   /* the cache now holds this token's text too */
            char buf[256];
            size_t pl = q_token_to_piece(ch->v, tok, buf, sizeof buf, 0, false);
            if (pl <= sizeof buf) append_decoded(ch, buf, pl);
        }
    }
    size_t len;
    const char *rest = q_detok_stream_flush(ds, &len);
    fwrite(rest, 1, len, stdout);
    if (reply_len + len + 1 > reply_cap) reply = realloc(reply, reply_cap = reply_len + len + 1);
    memcpy(reply + reply_len, rest, len);
    reply_len += len;
    reply[reply_len] = '\0';
    printf("\n");
    fflush(stdout);
    fprintf(stderr, "[turn: %zu new prompt tokens (%zu cached), %.1f ms; %ld reply tokens, %.1f tok/s]\n",
            toks.n, cached, t1 - t0, n_gen, n_gen / ((cli_now_ms() - t1) / 1e3 + 1e-9));
    json_object_set_new(reply_out, "content", json_string(reply));
    q_detok_stream_free(ds);
    free(reply);
    q_tokens_free(&toks);
    free(full);
    return ok;
}

int cmd_chat(int argc, char **argv) {
    const char *model = NULL, *system = NULL;
    long n_ctx = 0, n_threads = cli_default_threads(), n_reply = 512;
    q_sampler_params sp = q_sampler_default_params();
    sp.seed = (uint64_t)time(NULL);
    for (int i = 1; i < argc; i += 2) {   /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long l;
        bool ok = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { chat_usage(stdout); return 0; }
        if (!v) { cli_errorf(CMD, "%s: unknown option or missing value", a); return 2; }
        if (!strcmp(a, "-m")) model = v;
        else if (!strcmp(a, "-s")) system = v;
        else if (!strcmp(a, "-n")) ok = cli_int_arg(CMD, a, v, 1, 1 << 20, &n_reply);
        else if (!strcmp(a, "-c")) ok = cli_int_arg(CMD, a, v, 8, 1 << 24, &n_ctx);
        else if (!strcmp(a, "-t")) ok = cli_int_arg(CMD, a, v, 1, 1024, &n_threads);
        else if (!strcmp(a, "--temp")) ok = cli_float_arg(CMD, a, v, &sp.temp);
        else if (!strcmp(a, "--top-k")) { ok = cli_int_arg(CMD, a, v, 0, 1 << 30, &l); sp.top_k = (int32_t)l; }
        else if (!strcmp(a, "--top-p")) ok = cli_float_arg(CMD, a, v, &sp.top_p);
        else if (!strcmp(a, "--min-p")) ok = cli_float_arg(CMD, a, v, &sp.min_p);
        else if (!strcmp(a, "--seed")) { ok = cli_int_arg(CMD, a, v, 0, 0x7FFFFFFFFFFFFFFFL, &l); sp.seed = (uint64_t)l; }
        else { cli_errorf(CMD, "unknown option %s", a); return 2; }
        if (!ok) return 2;
    }
    if (!model) {
        cli_errorf(CMD, "-m MODEL is required");
        chat_usage(stderr);
        return 2;
    }
    q_context_params cp = q_context_default_params();
    cp.n_ctx = (int32_t)n_ctx;
    cp.n_threads = (int32_t)n_threads;
    chat ch = { .n_reply_max = n_reply };
    if (!cli_open(CMD, model, &cp, &ch.m, &ch.c, NULL)) return 1;
    int rc = 1;
    json_t *msgs = json_array();
    if (!(ch.v = cli_vocab(CMD, ch.m))) goto out;
    ch.smp = q_sampler_new(&sp, q_model_n_vocab(ch.m));
    ch.b = q_batch_init(512);
    if (system) json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content", system));
    char *line = NULL;
    size_t cap = 0;
    for (;;) {
        fprintf(stderr, "> ");
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) break;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        if (!strcmp(line, "/exit")) break;
        if (n == 0) continue;
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", line));
        json_t *reply = json_pack("{s:s}", "role", "assistant");
        const bool ok = chat_turn(&ch, msgs, reply);
        json_array_append_new(msgs, reply);
        if (!ok) { free(line); goto out; }
    }
    free(line);
    rc = 0;
out:
    json_decref(msgs);
    free(ch.decoded);
    q_sampler_free(ch.smp);
    q_batch_free(&ch.b);
    q_context_free(ch.c);
    q_model_free(ch.m);
    return rc;
}
