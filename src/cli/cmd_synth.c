/* cmd_synth.c — `quarrel synth --shape NAME --type TYPE -o FILE [--vocab V] [--seed S]
 * [--threads N]`: a random-weight model of a real model's shape (q_synth_write).
 *
 * The default vocab is the shape's, under the shared data dir: $QUARREL_SHARED if set,
 * else ../shared relative to the current directory. One summary line goes to stdout.
 * Errors: one line on stderr, exit 1; usage errors exit 2. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "quarrel/synth.h"

static void synth_usage(FILE *out) {
    fprintf(out,
            "usage: quarrel synth --shape NAME --type TYPE -o OUT.gguf [--vocab VOCAB.gguf] [--seed S]\n"
            "                     [--threads N]\n"
            "\n"
            "  --shape NAME   one of:\n");
    for (size_t i = 0; q_synth_shape_at(i); i++) {
        const q_synth_shape *s = q_synth_shape_at(i);
        fprintf(out, "                   %-15s %s (%s)\n", s->name, s->model, s->vocab);
    }
    fprintf(out,
            "  --type TYPE    F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 IQ4_NL, mixes with llama-quantize's\n"
            "                 per-tensor rules (Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M\n"
            "                 Q6_K), or plain Q3_K Q4_K Q5_K for every matrix\n"
            "  -o FILE        output path\n"
            "  --vocab FILE   GGUF whose tokenizer.* keys are copied (default: the shape's, under\n"
            "                 $QUARREL_SHARED or ../shared)\n"
            "  --seed S       random seed (default 1); same seed, same bytes\n"
            "  --threads N    threads for the row pools (default: one per physical core)\n");
}

static double synth_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* argv[i]'s value, or NULL after a usage message. */
static const char *synth_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        cli_errorf("synth", "%s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int cmd_synth(int argc, char **argv) {
    const char *shape_name = NULL, *type_name = NULL, *out = NULL, *vocab = NULL;
    unsigned long long seed = 1;
    int n_threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            synth_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--shape") || !strcmp(a, "--type") || !strcmp(a, "-o") || !strcmp(a, "--vocab") ||
            !strcmp(a, "--seed") || !strcmp(a, "--threads") || !strcmp(a, "-t")) {
            if (!(v = synth_value(argc, argv, &i))) return 2;
        } else {
            cli_errorf("synth", "unexpected argument '%s' (see quarrel synth --help)", a);
            return 2;
        }
        char *end;
        errno = 0;
        if (!strcmp(a, "--shape")) shape_name = v;
        else if (!strcmp(a, "--type")) type_name = v;
        else if (!strcmp(a, "-o")) out = v;
        else if (!strcmp(a, "--vocab")) vocab = v;
        else if (!strcmp(a, "--seed")) {
            seed = strtoull(v, &end, 0);
            if (errno || *end || !*v || v[0] == '-') {
                cli_errorf("synth", "--seed wants a non-negative integer, got '%s'", v);
                return 2;
            }
        } else {
            long t = strtol(v, &end, 10);
            if (errno || *end || t < 1 || t > 4096) {
                cli_errorf("synth", "--threads wants a number in 1..4096, got '%s'", v);
                return 2;
            }
            n_threads = (int)t;
        }
    }
    if (!shape_name || !type_name || !out) {
        cli_errorf("synth", "--shape, --type and -o are required (see quarrel synth --help)");
        return 2;
    }
    const q_synth_shape *shape = q_synth_shape_find(shape_name);
    if (!shape) {
        cli_errorf("synth", "unknown shape '%s' (see quarrel synth --help)", shape_name);
        return 2;
    }
    q_synth_params params = { .shape = shape, .seed = seed, .n_threads = n_threads };
    if (!q_quant_target_parse(type_name, &params.target)) {
        cli_errorf("synth", "unknown type '%s' (see quarrel synth --help)", type_name);
        return 2;
    }
    char vocab_buf[4096];
    if (!vocab) {
        const char *dir = getenv("QUARREL_SHARED");
        snprintf(vocab_buf, sizeof vocab_buf, "%s/%s", dir && *dir ? dir : "../shared", shape->vocab);
        vocab = vocab_buf;
    }
    params.vocab_path = vocab;

    double t0 = synth_now();
    q_synth_stats st;
    q_error err;
    if (q_synth_write(out, &params, &st, &err) != Q_OK) {
        cli_errorf("synth", "%s", err.msg);
        return 1;
    }
    printf("synth %s %s%s: %.3fB params, %llu tensors, %llu-token vocab from %s -> %s (%.2f MiB) in %.2f s\n",
           shape->name, q_ftype_name(params.target.ftype), params.target.pure ? " (pure)" : "",
           (double)st.n_params * 1e-9, (unsigned long long)st.n_tensors, (unsigned long long)st.n_vocab, vocab, out,
           (double)st.out_size / (1024.0 * 1024.0), synth_now() - t0);
    return 0;
}
