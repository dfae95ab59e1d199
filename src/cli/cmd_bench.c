/* cmd_bench.c — `quarrel bench -m MODEL [-p 512] [-n 128] [-b 512] [-t T] [-r 5] [-d 0]
 * [--probe-mib N] [--profile] [--json]`: prompt and generation speed of the engine, in the
 * spirit of llama.cpp's llama-bench, next to the machine's memory read bandwidth.
 *
 *   pp<P>: one P-token prompt of synthetic ids ((i*7919+13) % n_vocab; the arithmetic
 *          does not depend on them) decoded in batches of n_batch from an empty KV cache;
 *          the whole prompt is timed.
 *   tg<N>: one untimed 1-token warm start at position 0, then N single-token decodes
 *          (positions 1..N), all N timed. No prompt, as llama-bench's tg.
 *   -d D:  both tests run after D tokens of context (llama-bench's -d): the KV cache is
 *          filled with D prompt tokens once (untimed), and each run first drops what the
 *          previous one added (positions >= D), so pp and tg start at position D.
 * Each test runs once as warm-up, then REPS times with the KV cache cleared before each
 * run; tok/s is computed per run and reported as mean ± sample standard deviation.
 *
 * Bandwidth: bytes per generated token = the bytes of every weight tensor a decode step
 * reads: all tensors but token_embd, of which one row is read per token — unless the
 * model has no output.weight (tied embeddings), then token_embd is the output matrix
 * and is counted whole. effective GB/s = bytes_per_token * tg tok/s / 1e9, set against
 * membw_read_gbps over --probe-mib MiB (default: membw's own size; 0 skips the probe).
 *
 * --profile: the context runs the profiling backend (runtime/profile.h), which times every
 * op of the forward pass; over the timed windows of the REPS runs (warm-up and untimed
 * tokens excluded) each op's time is reported per token and as a share of the test's
 * time, grouped as matmul (by weight role), attention and the rest. "unaccounted" is the
 * test time no op covers (batch setup, KV slot search and index, the logits row copy).
 * The clock reads cost well under 0.1% of a token.
 *
 * Not here: perplexity, RSS.
 * Memory: the model, context, batch and JSON are owned here and freed before return. */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/gen_common.h"
#include "core/pool.h"
#include "cpu/backend.h"
#include "quarrel/gguf.h"
#include "quarrel/quarrel.h"
#include "runtime/membw.h"
#include "runtime/profile.h"

#define CMD "bench"

typedef struct bench_opts {
    const char *model;
    long n_prompt, n_gen, n_batch, n_threads, reps, probe_mib;   /* probe_mib < 0: default */
    long depth;                                                   /* context before each test */
    bool json, profile;
} bench_opts;

/* Op times over a test's timed windows (from the context's q_profile). */
typedef struct bench_prof {
    q_profile *p;                  /* attached to the context; NULL = not profiling */
    uint64_t   mark[Q_PROF_COUNT]; /* p->ns at the start of the current window */
    uint64_t   ns[Q_PROF_COUNT];   /* summed over windows */
    uint64_t   calls[Q_PROF_COUNT];
    uint64_t   mark_calls[Q_PROF_COUNT];
    uint64_t   mark_disp, disp;    /* thread-pool dispatches: at the window start, summed */
    double     secs;               /* the windows' wall time */
    long       tokens;             /* tokens timed */
} bench_prof;

typedef struct bench_stats {
    double mean, std;   /* tok/s over the reps; std is the sample (n-1) deviation */
    double *samples;    /* [reps] tok/s, owned by the caller */
} bench_stats;

typedef struct model_bytes {
    uint64_t total;       /* every tensor's bytes */
    uint64_t params;      /* every tensor's elements */
    uint64_t per_token;   /* bytes a single-token decode reads */
    bool     tied;        /* token_embd doubles as the output matrix */
} model_bytes;

static void bench_usage(FILE *out) {
    fprintf(out,
            "usage: quarrel bench -m MODEL [options]\n"
            "  -m PATH          GGUF model\n"
            "  -p N             prompt tokens for the pp test (default 512; 0 skips it)\n"
            "  -n N             generated tokens for the tg test (default 128; 0 skips it)\n"
            "  -b N             batch size for the prompt (default 512)\n"
            "  -t N             threads (default: physical cores)\n"
            "  -r N             repetitions after one warm-up run (default 5)\n"
            "  -d N             run pp and tg after N tokens of context (default 0)\n"
            "  --probe-mib N    memory bandwidth probe buffer in MiB (default: max(1 GiB, 8 x LLC);\n"
            "                   0 skips the probe)\n"
            "  --profile        per-op time breakdown (ms/token, %% of the test) of pp and tg\n"
            "  --json           one JSON object on stdout instead of the table\n");
}

/* Returns 0 to go on, else an exit status. */
static int bench_parse(int argc, char **argv, bench_opts *o) {
    *o = (bench_opts){ .n_prompt = 512, .n_gen = 128, .n_batch = 512, .n_threads = pool_default_threads(),
                       .reps = 5, .probe_mib = -1 };
    for (int i = 1; i < argc;) {
        const char *a = argv[i++], *v = i < argc ? argv[i] : NULL;
        bool ok = true, takes = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { bench_usage(stdout); return -1; }
        else if (!strcmp(a, "-m")) {
            if (!(o->model = v)) cli_errorf(CMD, "-m needs a value");
            ok = v != NULL;
        }
        else if (!strcmp(a, "-p")) ok = cli_int_arg(CMD, a, v, 0, 1 << 20, &o->n_prompt);
        else if (!strcmp(a, "-n")) ok = cli_int_arg(CMD, a, v, 0, 1 << 20, &o->n_gen);
        else if (!strcmp(a, "-b")) ok = cli_int_arg(CMD, a, v, 1, 1 << 16, &o->n_batch);
        else if (!strcmp(a, "-t")) ok = cli_int_arg(CMD, a, v, 1, 1024, &o->n_threads);
        else if (!strcmp(a, "-r")) ok = cli_int_arg(CMD, a, v, 1, 1000, &o->reps);
        else if (!strcmp(a, "-d")) ok = cli_int_arg(CMD, a, v, 0, 1 << 20, &o->depth);
        else if (!strcmp(a, "--probe-mib")) ok = cli_int_arg(CMD, a, v, 0, 1 << 20, &o->probe_mib);
        else if (!strcmp(a, "--json")) { o->json = true; takes = false; }
        else if (!strcmp(a, "--profile")) { o->profile = true; takes = false; }
        else {
            cli_errorf(CMD, "unknown option '%s' (see quarrel bench --help)", a);
            return 2;
        }
        if (!ok) return 2;   /* the option's parser printed why */
        if (takes) i++;
    }
    if (!o->model) {
        cli_errorf(CMD, "-m MODEL is required (see quarrel bench --help)");
        return 2;
    }
    return 0;
}

static model_bytes model_bytes_of(const gguf_file *f) {
    model_bytes mb = { 0 };
    mb.tied = gguf_find_tensor(f, "output.weight") == NULL;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor_info *t = &f->tensors[i];
        uint64_t n = 1;
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) n *= (uint64_t)t->ne[d];
        mb.params += n;
        mb.total += t->nbytes;
        if (gguf_str_eq(t->name, "token_embd.weight") && !mb.tied)
            mb.per_token += t->nbytes / (n / (uint64_t)t->ne[0]);   /* one row of ne[0] elements */
        else
            mb.per_token += t->nbytes;
    }
    return mb;
}

static void stats_finish(bench_stats *s, long reps) {
    double sum = 0, sq = 0;
    for (long i = 0; i < reps; i++) sum += s->samples[i];
    s->mean = sum / (double)reps;
    for (long i = 0; i < reps; i++) sq += (s->samples[i] - s->mean) * (s->samples[i] - s->mean);
    s->std = reps > 1 ? sqrt(sq / (double)(reps - 1)) : 0.0;
}

static void prof_begin(bench_prof *bp) {
    if (!bp) return;
    memcpy(bp->mark, bp->p->ns, sizeof bp->mark);
    memcpy(bp->mark_calls, bp->p->calls, sizeof bp->mark_calls);
    bp->mark_disp = bp->p->dispatches;
}

static void prof_end(bench_prof *bp, double secs, long tokens) {
    if (!bp) return;
    for (int i = 0; i < Q_PROF_COUNT; i++) {
        bp->ns[i] += bp->p->ns[i] - bp->mark[i];
        bp->calls[i] += bp->p->calls[i] - bp->mark_calls[i];
    }
    bp->disp += bp->p->dispatches - bp->mark_disp;
    bp->secs += secs;
    bp->tokens += tokens;
}

/* Decodes prompt tokens at positions [p0, p1) in n_batch pieces (logits for the last). */
static q_status decode_prompt(q_context *c, q_batch *b, const bench_opts *o, int32_t n_vocab, long p0, long p1,
                              q_error *err) {
    for (long i0 = p0; i0 < p1; i0 += o->n_batch) {
        q_batch_clear(b);
        for (long i = i0; i < p1 && i < i0 + o->n_batch; i++)
            q_batch_add(b, (q_token)((i * 7919 + 13) % n_vocab), (q_pos)i, 0, i == p1 - 1);
        q_status st = q_decode(c, b, err);
        if (st != Q_OK) return st;
    }
    return Q_OK;
}

/* Back to the -d context: drops every position >= depth (all of them at depth 0). */
static void reset_to_depth(q_context *c, const bench_opts *o) {
    if (o->depth == 0) q_kv_clear(c);
    else q_kv_seq_rm(c, 0, (q_pos)o->depth, -1);
}

/* One pp run: the whole prompt in n_batch pieces; seconds in *secs. */
static q_status run_pp(q_context *c, q_batch *b, const bench_opts *o, int32_t n_vocab, double *secs,
                       bench_prof *bp, q_error *err) {
    reset_to_depth(c, o);
    prof_begin(bp);
    const double t0 = cli_now_ms();
    q_status st = decode_prompt(c, b, o, n_vocab, o->depth, o->depth + o->n_prompt, err);
    if (st != Q_OK) return st;
    *secs = (cli_now_ms() - t0) / 1e3;
    prof_end(bp, *secs, o->n_prompt);
    return Q_OK;
}

/* One tg run: an untimed token at position depth, then n_gen timed single-token decodes. */
static q_status run_tg(q_context *c, q_batch *b, const bench_opts *o, int32_t n_vocab, double *secs,
                       bench_prof *bp, q_error *err) {
    reset_to_depth(c, o);
    q_batch_clear(b);
    q_batch_add(b, 13 % n_vocab, (q_pos)o->depth, 0, true);
    q_status st = q_decode(c, b, err);
    if (st != Q_OK) return st;
    prof_begin(bp);
    const double t0 = cli_now_ms();
    for (long i = 1; i <= o->n_gen; i++) {
        q_batch_clear(b);
        q_batch_add(b, (q_token)((i * 7919 + 13) % n_vocab), (q_pos)(o->depth + i), 0, true);
        if ((st = q_decode(c, b, err)) != Q_OK) return st;
    }
    *secs = (cli_now_ms() - t0) / 1e3;
    prof_end(bp, *secs, o->n_gen);
    return Q_OK;
}

typedef q_status (*bench_run_fn)(q_context *, q_batch *, const bench_opts *, int32_t, double *, bench_prof *,
                                 q_error *);

/* Warm-up, then reps timed runs of fn over n_tokens tokens each; with bp, the timed runs'
 * op times go to bp. */
static bool bench_test(q_context *c, q_batch *b, const bench_opts *o, bench_run_fn fn, long n_tokens,
                       bench_stats *s, bench_prof *bp) {
    const int32_t n_vocab = q_model_n_vocab(q_context_model(c));
    q_error err;
    double secs;
    for (long r = -1; r < o->reps; r++) {
        if (fn(c, b, o, n_vocab, &secs, r >= 0 ? bp : NULL, &err) != Q_OK) {
            cli_errorf(CMD, "decode failed: %s", err.msg);
            return false;
        }
        if (r >= 0) s->samples[r] = (double)n_tokens / (secs > 0 ? secs : 1e-9);
    }
    stats_finish(s, o->reps);
    return true;
}

static json_t *json_num_or_null(bool present, double v) { return present ? json_real(v) : json_null(); }

static json_t *json_samples(bool present, const bench_stats *s, long reps) {
    if (!present) return json_null();
    json_t *a = json_array();
    for (long i = 0; i < reps; i++) json_array_append_new(a, json_real(s->samples[i]));
    return a;
}

/* "tg128", or "tg128 @ d4096" after -d context (llama-bench's names). */
static void test_name(char *buf, size_t cap, const char *kind, long n, long depth) {
    if (depth > 0) snprintf(buf, cap, "%s%ld @ d%ld", kind, n, depth);
    else snprintf(buf, cap, "%s%ld", kind, n);
}

/* ---- profile report ---- */

/* Rows of a profile: every op, then "unaccounted", then the three groups and the total. */
enum { PROF_UNACC = Q_PROF_COUNT, PROF_MATMUL, PROF_ATTENTION, PROF_REST, PROF_TOTAL, PROF_ROWS };

typedef struct prof_row {
    const char *name;
    double ms_per_token, pct, calls_per_token;   /* calls: ops only, else -1 */
} prof_row;

static void prof_rows(const bench_prof *bp, prof_row rows[PROF_ROWS]) {
    const double tok = bp->tokens > 0 ? (double)bp->tokens : 1.0, total_ns = bp->secs * 1e9;
    double ops_ns = 0, mm_ns = 0;
    for (int i = 0; i < Q_PROF_COUNT; i++) {
        ops_ns += (double)bp->ns[i];
        if (i <= Q_PROF_MM_LAST) mm_ns += (double)bp->ns[i];
    }
    const double unacc = total_ns > ops_ns ? total_ns - ops_ns : 0.0;
    const double att = (double)bp->ns[Q_PROF_ATTENTION];
    const double ns[PROF_ROWS - Q_PROF_COUNT] = { unacc, mm_ns, att, total_ns - mm_ns - att, total_ns };
    static const char *const names[PROF_ROWS - Q_PROF_COUNT] = { "unaccounted", "matmul", "attention", "rest",
                                                                  "total" };
    for (int i = 0; i < PROF_ROWS; i++) {
        const bool op = i < Q_PROF_COUNT;
        const double v = op ? (double)bp->ns[i] : ns[i - Q_PROF_COUNT];
        rows[i] = (prof_row){ .name = op ? q_prof_op_name((q_prof_op)i) : names[i - Q_PROF_COUNT],
                              .ms_per_token = v / 1e6 / tok, .pct = total_ns > 0 ? 100.0 * v / total_ns : 0,
                              .calls_per_token = op ? (double)bp->calls[i] / tok : -1 };
    }
}

static json_t *prof_row_json(const prof_row *r) {
    json_t *o = json_object();
    json_object_set_new(o, "ms_per_token", json_real(r->ms_per_token));
    json_object_set_new(o, "pct", json_real(r->pct));
    if (r->calls_per_token >= 0) json_object_set_new(o, "calls_per_token", json_real(r->calls_per_token));
    return o;
}

/* {"tokens", "total_ms_per_token", "ops": {op: row, ..., "unaccounted"}, "groups":
 * {"matmul", "attention", "rest"}} */
static json_t *prof_json(const bench_prof *bp) {
    prof_row rows[PROF_ROWS];
    prof_rows(bp, rows);
    json_t *j = json_object(), *ops = json_object(), *groups = json_object();
    json_object_set_new(j, "tokens", json_integer(bp->tokens));
    json_object_set_new(j, "total_ms_per_token", json_real(rows[PROF_TOTAL].ms_per_token));
    json_object_set_new(j, "dispatches_per_token",
                        json_real(bp->tokens > 0 ? (double)bp->disp / (double)bp->tokens : 0.0));
    for (int i = 0; i <= PROF_UNACC; i++) json_object_set_new(ops, rows[i].name, prof_row_json(&rows[i]));
    for (int i = PROF_MATMUL; i <= PROF_REST; i++) json_object_set_new(groups, rows[i].name, prof_row_json(&rows[i]));
    json_object_set_new(j, "ops", ops);
    json_object_set_new(j, "groups", groups);
    return j;
}

/* A table with one "ms/token  %" column pair per test (pp, tg; a NULL one is skipped). */
static void prof_print(const bench_prof *pp, const char *pp_name, const bench_prof *tg, const char *tg_name) {
    prof_row rp[PROF_ROWS], rt[PROF_ROWS];
    if (pp) prof_rows(pp, rp);
    if (tg) prof_rows(tg, rt);
    printf("\nprofile (ms per token, %% of the test's time):\n");
    printf("| %-18s |", "op");
    if (pp) printf(" %18s |", pp_name);
    if (tg) printf(" %18s |", tg_name);
    printf("\n| ------------------ |");
    if (pp) printf(" ------------------ |");
    if (tg) printf(" ------------------ |");
    printf("\n");
    for (int i = 0; i < PROF_ROWS; i++) {
        if (i == PROF_MATMUL) {   /* a rule between the ops and the groups */
            printf("| %-18s |", "");
            if (pp) printf(" %18s |", "");
            if (tg) printf(" %18s |", "");
            printf("\n");
        }
        printf("| %-18s |", pp ? rp[i].name : rt[i].name);
        if (pp) printf(" %10.3f %6.1f%% |", rp[i].ms_per_token, rp[i].pct);
        if (tg) printf(" %10.3f %6.1f%% |", rt[i].ms_per_token, rt[i].pct);
        printf("\n");
    }
    printf("thread-pool dispatches per token:");
    if (pp) printf(" %s %.1f", pp_name, pp->tokens > 0 ? (double)pp->disp / (double)pp->tokens : 0.0);
    if (tg) printf(" %s %.1f", tg_name, tg->tokens > 0 ? (double)tg->disp / (double)tg->tokens : 0.0);
    printf("\n");
}

int cmd_bench(int argc, char **argv) {
    bench_opts o;
    int rc = bench_parse(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;

    q_context_params cp = q_context_default_params();
    const long n_need = o.depth + (o.n_prompt > o.n_gen + 1 ? o.n_prompt : o.n_gen + 1);
    if (n_need > (1 << 24)) {
        cli_errorf(CMD, "-d %ld with -p %ld / -n %ld needs %ld context cells (at most %d)", o.depth, o.n_prompt,
                   o.n_gen, n_need, 1 << 24);
        return 2;
    }
    cp.n_ctx = (int32_t)(n_need < 16 ? 16 : n_need);
    cp.n_batch = (int32_t)o.n_batch;
    cp.n_ubatch = (int32_t)o.n_batch;
    cp.n_threads = (int32_t)o.n_threads;
    q_model *m;
    q_context *c;
    double load_ms;
    if (!cli_open(CMD, o.model, &cp, &m, &c, &load_ms)) return 1;

    const model_bytes mb = model_bytes_of(q_model_gguf(m));
    char desc[256];
    q_model_desc(m, desc, sizeof desc);

    bench_stats pp = { .samples = calloc((size_t)o.reps, sizeof(double)) };
    bench_stats tg = { .samples = calloc((size_t)o.reps, sizeof(double)) };
    q_batch b = q_batch_init((int32_t)o.n_batch);
    bool ok = pp.samples && tg.samples && b.token;
    if (!ok) cli_errorf(CMD, "out of memory");
    const bool do_pp = o.n_prompt > 0, do_tg = o.n_gen > 0;
    q_profile prof;
    bench_prof pp_prof = { .p = &prof }, tg_prof = { .p = &prof };
    if (ok && o.depth > 0 && (do_pp || do_tg)) {   /* the -d context, once, untimed */
        q_error err;
        q_kv_clear(c);
        if (decode_prompt(c, &b, &o, q_model_n_vocab(m), 0, o.depth, &err) != Q_OK) {
            cli_errorf(CMD, "decode failed: %s", err.msg);
            ok = false;
        }
    }
    if (o.profile) q_context_profile_set(c, &prof);
    if (ok && do_pp) ok = bench_test(c, &b, &o, run_pp, o.n_prompt, &pp, o.profile ? &pp_prof : NULL);
    if (ok && do_tg) ok = bench_test(c, &b, &o, run_tg, o.n_gen, &tg, o.profile ? &tg_prof : NULL);
    q_context_profile_set(c, NULL);

    /* The probe after the decodes, so the model's pages were read with the caches cold
     * for it and the probe buffer never competes with the weights for memory. */
    double probe = 0;
    const bool do_probe = o.probe_mib != 0;
    const size_t probe_bytes = o.probe_mib < 0 ? membw_default_bytes() : (size_t)o.probe_mib << 20;
    const char *isa = membw_isa_name(membw_isa_best());
    if (ok && do_probe) {
        probe = membw_read_gbps((int)o.n_threads, probe_bytes, 0);
        if (!(probe > 0)) {
            cli_errorf(CMD, "bandwidth probe failed: cannot allocate %zu MiB (try a smaller --probe-mib)",
                       probe_bytes >> 20);
            ok = false;
        }
    }
    if (ok) {
        const double eff = do_tg ? (double)mb.per_token * tg.mean / 1e9 : 0;
        const bool have_eff = do_tg, have_ratio = do_tg && do_probe;
        if (o.json) {
            json_t *j = json_object();
            json_object_set_new(j, "model", json_string(o.model));
            json_object_set_new(j, "model_desc", json_string(desc));
            json_object_set_new(j, "model_bytes", json_integer((json_int_t)mb.total));
            json_object_set_new(j, "model_params", json_integer((json_int_t)mb.params));
            json_object_set_new(j, "tied_embeddings", json_boolean(mb.tied));
            json_object_set_new(j, "repacked_tensors", json_integer(q_model_n_repacked(m)));
            json_object_set_new(j, "repacked_bytes", json_integer((json_int_t)q_model_repacked_bytes(m)));
            json_object_set_new(j, "threads", json_integer(o.n_threads));
            json_object_set_new(j, "kernels", json_string(q_cpu_isa_name(q_cpu_isa_best())));
            json_object_set_new(j, "n_prompt", json_integer(o.n_prompt));
            json_object_set_new(j, "n_gen", json_integer(o.n_gen));
            json_object_set_new(j, "n_batch", json_integer(o.n_batch));
            json_object_set_new(j, "depth", json_integer(o.depth));
            json_object_set_new(j, "reps", json_integer(o.reps));
            json_object_set_new(j, "pp_tok_s", json_num_or_null(do_pp, pp.mean));
            json_object_set_new(j, "pp_tok_s_std", json_num_or_null(do_pp, pp.std));
            json_object_set_new(j, "pp_samples", json_samples(do_pp, &pp, o.reps));
            json_object_set_new(j, "tg_tok_s", json_num_or_null(do_tg, tg.mean));
            json_object_set_new(j, "tg_tok_s_std", json_num_or_null(do_tg, tg.std));
            json_object_set_new(j, "tg_samples", json_samples(do_tg, &tg, o.reps));
            json_object_set_new(j, "bytes_per_token", json_integer((json_int_t)mb.per_token));
            json_object_set_new(j, "effective_gbps", json_num_or_null(have_eff, eff));
            json_object_set_new(j, "probe_gbps", json_num_or_null(do_probe, probe));
            json_object_set_new(j, "probe_isa", do_probe ? json_string(isa) : json_null());
            json_object_set_new(j, "probe_bytes", json_integer(do_probe ? (json_int_t)(probe_bytes) : 0));
            json_object_set_new(j, "decode_efficiency", json_num_or_null(have_ratio, eff / probe));
            if (o.profile) {
                json_t *pj = json_object();
                json_object_set_new(pj, "pp", do_pp ? prof_json(&pp_prof) : json_null());
                json_object_set_new(pj, "tg", do_tg ? prof_json(&tg_prof) : json_null());
                json_object_set_new(j, "profile", pj);
            }
            char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            if (s) printf("%s\n", s);
            else { cli_errorf(CMD, "out of memory"); ok = false; }
            free(s);
            json_decref(j);
        } else {
            char size[32], params[32], bpt[32];
            cli_human_bytes(mb.total, size, sizeof size);
            cli_human_count(mb.params, " ", params, sizeof params);
            cli_human_bytes(mb.per_token, bpt, sizeof bpt);
            printf("| %-40s | %10s | %10s | %7s | %14s | %20s |\n", "model", "size", "params", "threads", "test", "t/s");
            printf("| %.40s | %.10s | %.10s | %.7s | %.14s | %.20s |\n", "----------------------------------------",
                   "----------", "----------", "-------", "--------------", "--------------------");
            char test[48];
            if (do_pp) {
                test_name(test, sizeof test, "pp", o.n_prompt, o.depth);
                printf("| %-40.40s | %10s | %10s | %7ld | %14s | %11.2f ± %6.2f |\n", desc, size, params, o.n_threads,
                       test, pp.mean, pp.std);
            }
            if (do_tg) {
                test_name(test, sizeof test, "tg", o.n_gen, o.depth);
                printf("| %-40.40s | %10s | %10s | %7ld | %14s | %11.2f ± %6.2f |\n", desc, size, params, o.n_threads,
                       test, tg.mean, tg.std);
            }
            printf("\nmodel: %s\n", desc);
            printf("kernels: %s (QUARREL_CPU=scalar|avx2|avx512 forces a set)\n", q_cpu_isa_name(q_cpu_isa_best()));
            char rpk[32];
            cli_human_bytes(q_model_repacked_bytes(m), rpk, sizeof rpk);
            printf("repacked weights: %d tensors, %s (x8 layout; QUARREL_REPACK=0 keeps the file's)\n",
                   (int)q_model_n_repacked(m), rpk);
            printf("bytes read per generated token: %" PRIu64 " (%s; %s)\n", mb.per_token, bpt,
                   mb.tied ? "tied embeddings: token_embd counted whole" : "one row of token_embd");
            if (have_eff) printf("effective bandwidth (tg): %.2f GB/s\n", eff);
            if (do_probe)
                printf("memory read bandwidth: %.2f GB/s (%s kernel, %d thread%s, %zu MiB buffer)\n", probe, isa,
                       (int)o.n_threads, o.n_threads == 1 ? "" : "s", probe_bytes >> 20);
            if (have_ratio) printf("decode efficiency: %.1f%% of measured read bandwidth\n", 100.0 * eff / probe);
            if (o.profile && (do_pp || do_tg)) {
                char pn[48], tn[48];
                test_name(pn, sizeof pn, "pp", o.n_prompt, o.depth);
                test_name(tn, sizeof tn, "tg", o.n_gen, o.depth);
                prof_print(do_pp ? &pp_prof : NULL, pn, do_tg ? &tg_prof : NULL, tn);
            }
        }
    }
    q_batch_free(&b);
    free(pp.samples);
    free(tg.samples);
    q_context_free(c);
    q_model_free(m);
    return ok ? 0 : 1;
}
