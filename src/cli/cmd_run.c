/* cmd_run.c — `quarrel run`: generate text from a prompt, streamed to stdout as it is
 * produced; load time and prompt / generation speeds go to stderr.
 *
 *   quarrel run -m MODEL -p PROMPT [-n N] [--temp T] [--top-k K] [--top-p P]
 *               [--min-p P] [--typical P] [--repeat-penalty R] [--repeat-last-n N]
 *               [--frequency-penalty F] [--presence-penalty F] [--seed S] [-t THREADS]
 *               [-c CTX] [-b BATCH] [--no-bos] [--chat] [--context-shift] [--stop S]...
 *               [--ignore-eos] [--kv-f32] [--echo]
 *
 * --temp 0 is greedy. Generation stops after N tokens, at an end-of-generation token
 * (unless --ignore-eos), or at a stop string (never printed). When the context fills,
 * --context-shift drops the older half of the tokens after the first (BOS) and shifts
 * the rest, as llama.cpp does; without it generation stops with a message. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/gen_common.h"
#include "runtime/stop.h"

#define CMD "run"
enum { MAX_STOPS = 16 };

typedef struct run_opts {
    const char *model, *prompt, *prompt_file;
    long n_predict, n_threads, n_ctx, n_batch;
    bool no_bos, chat, context_shift, ignore_eos, kv_f32, echo, seed_set;
    q_sampler_params sp;
    const char *stops[MAX_STOPS];
    int n_stops;
} run_opts;

static void run_usage(FILE *f) {
    fprintf(f,
            "usage: quarrel run -m MODEL -p PROMPT [options]\n"
            "  -m MODEL              GGUF model file\n"
            "  -p PROMPT             prompt text (or -f FILE)\n"
            "  -n N                  tokens to generate (default 128; -1 = until end or context)\n"
            "  --temp T              temperature (default 0.8; 0 = greedy)\n"
            "  --top-k K --top-p P --min-p P --typical P   sampler chain (40, 0.95, 0.05, 1.0)\n"
            "  --repeat-penalty R --repeat-last-n N --frequency-penalty F --presence-penalty F\n"
            "  --seed S              sampling seed (default: from the clock, printed)\n"
            "  -t THREADS            threads (default: physical cores)\n"
            "  -c CTX                context size (default: min(training context, 4096))\n"
            "  -b BATCH              prompt batch size (default 512)\n"
            "  --no-bos              do not add BOS/special tokens to the prompt\n"
            "  --chat                wrap the prompt in the model's chat template\n"
            "  --context-shift       drop old tokens when the context is full\n"
            "  --stop S              stop string (repeatable; never printed)\n"
            "  --ignore-eos          keep generating past end-of-generation tokens\n"
            "  --kv-f32              F32 KV cache (default F16)\n"
            "  --echo                print the prompt before the generated text\n");
}

/* Returns 0 to go on, else an exit status. */
static int run_parse(int argc, char **argv, run_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_predict = 128;
    o->n_threads = cli_default_threads();
    o->n_batch = 512;
    o->sp = q_sampler_default_params();
    o->sp.seed = (uint64_t)time(NULL);
    bool seed_set = false;
    for (int i = 1; i < argc;) {
        const char *a = argv[i++], *v = i < argc ? argv[i] : NULL;
        long l;
        bool ok = true, takes = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { run_usage(stdout); return -1; }
        else if (!strcmp(a, "-m")) o->model = v;
        else if (!strcmp(a, "-p")) o->prompt = v;
        else if (!strcmp(a, "-f")) o->prompt_file = v;
        else if (!strcmp(a, "-n")) ok = cli_int_arg(CMD, a, v, -1, 1L << 30, &o->n_predict);
        else if (!strcmp(a, "-t")) ok = cli_int_arg(CMD, a, v, 1, 1024, &o->n_threads);
        else if (!strcmp(a, "-c")) ok = cli_int_arg(CMD, a, v, 8, 1 << 24, &o->n_ctx);
        else if (!strcmp(a, "-b")) ok = cli_int_arg(CMD, a, v, 1, 1 << 16, &o->n_batch);
        else if (!strcmp(a, "--temp")) ok = cli_float_arg(CMD, a, v, &o->sp.temp);
        else if (!strcmp(a, "--top-k")) { ok = cli_int_arg(CMD, a, v, 0, 1 << 30, &l); o->sp.top_k = (int32_t)l; }
        else if (!strcmp(a, "--top-p")) ok = cli_float_arg(CMD, a, v, &o->sp.top_p);
        else if (!strcmp(a, "--min-p")) ok = cli_float_arg(CMD, a, v, &o->sp.min_p);
        else if (!strcmp(a, "--typical")) ok = cli_float_arg(CMD, a, v, &o->sp.typical_p);
        else if (!strcmp(a, "--repeat-penalty")) ok = cli_float_arg(CMD, a, v, &o->sp.penalty_repeat);
        else if (!strcmp(a, "--repeat-last-n")) {
            ok = cli_int_arg(CMD, a, v, -1, 1 << 20, &l);
            o->sp.penalty_last_n = (int32_t)l;
        }
        else if (!strcmp(a, "--frequency-penalty")) ok = cli_float_arg(CMD, a, v, &o->sp.penalty_freq);
        else if (!strcmp(a, "--presence-penalty")) ok = cli_float_arg(CMD, a, v, &o->sp.penalty_present);
        else if (!strcmp(a, "--seed")) {
            ok = cli_int_arg(CMD, a, v, 0, 0x7FFFFFFFFFFFFFFFL, &l);
            o->sp.seed = (uint64_t)l;
            seed_set = true;
        }
        else if (!strcmp(a, "--stop")) {
            if (o->n_stops == MAX_STOPS) { cli_errorf(CMD, "at most %d --stop strings", MAX_STOPS); return 2; }
            o->stops[o->n_stops++] = v;
        }
        else {
            takes = false;
            if (!strcmp(a, "--no-bos")) o->no_bos = true;
            else if (!strcmp(a, "--chat")) o->chat = true;
            else if (!strcmp(a, "--context-shift")) o->context_shift = true;
            else if (!strcmp(a, "--ignore-eos")) o->ignore_eos = true;
            else if (!strcmp(a, "--kv-f32")) o->kv_f32 = true;
            else if (!strcmp(a, "--echo")) o->echo = true;
            else { cli_errorf(CMD, "unknown option %s (see --help)", a); return 2; }
        }
        if (!ok) return 2;
        if (takes) {
            if (!v) { cli_errorf(CMD, "%s needs a value", a); return 2; }
            i++;   /* the value */
        }
    }
    if (!o->model || (!o->prompt && !o->prompt_file)) {
        cli_errorf(CMD, "-m MODEL and -p PROMPT (or -f FILE) are required");
        run_usage(stderr);
        return 2;
    }
    o->seed_set = seed_set;
    return 0;
}

/* The prompt as the model sees it: raw, or rendered with the chat template. */
static char *run_prompt_text(const run_opts *o, const q_model *m) {
    char *text = o->prompt_file ? cli_read_file(CMD, o->prompt_file, NULL) : strdup(o->prompt);
    if (!text || !o->chat) return text;
    json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", text);
    char *out = NULL;
    bool fallback;
    q_error err;
    q_status st = q_model_chat_apply(m, msgs, true, &out, &fallback, &err);
    json_decref(msgs);
    free(text);
    if (st != Q_OK) { cli_errorf(CMD, "%s", err.msg); return NULL; }
    if (fallback) fprintf(stderr, "quarrel run: no usable chat template; using ChatML\n");
    return out;
}

typedef struct gen_state {
    q_context *ctx;
    q_batch    batch;
    q_pos      n_past;
    int32_t    n_keep;   /* tokens never discarded by a context shift (BOS) */
} gen_state;

/* Decodes toks in n_batch chunks at n_past..; logits only for the last one. */
static bool gen_decode(gen_state *g, const q_token *toks, size_t n, long n_batch) {
    for (size_t i0 = 0; i0 < n; i0 += (size_t)n_batch) {
        const size_t k = n - i0 < (size_t)n_batch ? n - i0 : (size_t)n_batch;
        q_batch_clear(&g->batch);
        for (size_t i = 0; i < k; i++) q_batch_add(&g->batch, toks[i0 + i], g->n_past + (q_pos)i, 0, i0 + i == n - 1);
        q_error err;
        if (q_decode(g->ctx, &g->batch, &err) != Q_OK) {
            cli_errorf(CMD, "decode: %s", err.msg);
            return false;
        }
        g->n_past += (q_pos)k;
    }
    return true;
}

/* Makes room for one token: drops half of the tokens after n_keep and shifts the rest
 * down (llama.cpp's context shift). */
static void gen_shift(gen_state *g) {
    const q_pos n_discard = (g->n_past - g->n_keep) / 2;
    q_kv_seq_rm(g->ctx, 0, g->n_keep, g->n_keep + n_discard);
    q_kv_seq_add(g->ctx, 0, g->n_keep + n_discard, g->n_past, -n_discard);
    g->n_past -= n_discard;
}

static void emit(const char *s, size_t n) {
    fwrite(s, 1, n, stdout);
    fflush(stdout);
}

int cmd_run(int argc, char **argv) {
    run_opts o;
    int rc = run_parse(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;

    q_context_params cp = q_context_default_params();
    cp.n_ctx = (int32_t)o.n_ctx;
    cp.n_batch = (int32_t)o.n_batch;
    cp.n_threads = (int32_t)o.n_threads;
    cp.kv_type = o.kv_f32 ? Q_TYPE_F32 : Q_TYPE_F16;
    q_model *m = NULL;
    q_context *ctx = NULL;
    double load_ms = 0;
    if (!cli_open(CMD, o.model, &cp, &m, &ctx, &load_ms)) return 1;
    rc = 1;
    const q_vocab *v = cli_vocab(CMD, m);
    char *text = v ? run_prompt_text(&o, m) : NULL;
    q_tokens toks = { 0 };
    q_sampler *smp = NULL;
    q_detok_stream *ds = NULL;
    q_stopper stop;
    q_stopper_init(&stop, o.stops, o.n_stops);
    gen_state g = { .ctx = ctx, .batch = q_batch_init((int32_t)o.n_batch) };
    /* --chat text already carries the template's specials: parse them, add none */
    if (!text || !cli_tokenize(CMD, v, text, !o.no_bos && !o.chat, o.chat, &toks)) goto out;
    if (toks.n == 0) { cli_errorf(CMD, "the prompt is empty"); goto out; }
    const int32_t n_ctx = q_context_n_ctx(ctx);
    if ((int64_t)toks.n >= n_ctx) {
        cli_errorf(CMD, "the prompt has %zu tokens; the context holds %d (raise -c)", toks.n, n_ctx);
        goto out;
    }
    g.n_keep = toks.ids[0] == q_vocab_special(v, Q_SPECIAL_BOS) ? 1 : 0;

    if (!o.seed_set && o.sp.temp > 0) fprintf(stderr, "seed: %llu\n", (unsigned long long)o.sp.seed);
    smp = q_sampler_new(&o.sp, q_model_n_vocab(m));
    for (size_t i = 0; i < toks.n; i++) q_sampler_accept(smp, toks.ids[i]);
    ds = q_detok_stream_new(v, false);
    /* The prompt goes through the stream too, so the first generated piece keeps its
     * leading space (SPM drops it only at the start of a text). */
    for (size_t i = 0; i < toks.n; i++) {
        size_t len;
        const char *piece = q_detok_stream_push(ds, toks.ids[i], &len);
        if (o.echo) emit(piece, len);
    }
    const double t_prompt = cli_now_ms();
    if (!gen_decode(&g, toks.ids, toks.n, o.n_batch)) goto out;
    const double t_gen = cli_now_ms();
    long n_gen = 0;
    bool ok = true;
    while (o.n_predict < 0 || n_gen < o.n_predict) {
        const q_token tok = q_sampler_sample(smp, q_get_logits_ith(ctx, -1));
        q_sampler_accept(smp, tok);
        n_gen++;
        if (!o.ignore_eos && q_vocab_is_eog(v, tok)) break;
        size_t len;
        const char *piece = q_detok_stream_push(ds, tok, &len);
        size_t k = q_stopper_push(&stop, piece, len);
        emit(stop.held, k);
        q_stopper_consume(&stop, k);
        if (stop.hit) break;
        if (o.n_predict >= 0 && n_gen >= o.n_predict) break;
        if (g.n_past >= n_ctx) {
            if (!o.context_shift) {
                fprintf(stderr, "\nquarrel run: context full (%d tokens); use --context-shift or a larger -c\n", n_ctx);
                break;
            }
            gen_shift(&g);
        }
        if (!(ok = gen_decode(&g, &tok, 1, 1))) break;
    }
    if (!stop.hit) {
        size_t len;
        const char *rest = q_detok_stream_flush(ds, &len);
        size_t k = q_stopper_push(&stop, rest, len);
        if (!stop.hit) k = q_stopper_finish(&stop);   /* no more text: all held is final */
        emit(stop.held, k);
    }
    const double t_end = cli_now_ms();
    emit("\n", 1);
    fprintf(stderr, "load: %.1f ms | prompt: %zu tokens, %.1f tok/s | generation: %ld tokens, %.1f tok/s\n",
            load_ms, toks.n, toks.n / ((t_gen - t_prompt) / 1e3 + 1e-9), n_gen,
            n_gen / ((t_end - t_gen) / 1e3 + 1e-9));
    rc = ok ? 0 : 1;
out:
    q_detok_stream_free(ds);
    q_sampler_free(smp);
    q_stopper_free(&stop);
    q_batch_free(&g.batch);
    q_tokens_free(&toks);
    free(text);
    q_context_free(ctx);
    q_model_free(m);
    return rc;
}
