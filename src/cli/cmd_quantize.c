/* cmd_quantize.c — `quarrel quantize IN OUT TYPE [--threads N] [--pure]`.
 *
 * Converts an F32/F16/BF16 GGUF to a llama.cpp quantization mix (Q4_K_M, Q8_0, ...) or
 * a plain type, through q_quantize_file. A progress bar goes to stderr only when stderr
 * is a terminal; one summary line goes to stdout at the end. Errors: one line on
 * stderr, exit 1; usage errors exit 2. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "quarrel/quantize.h"

static void quantize_usage(FILE *out) {
    fprintf(out,
            "usage: quarrel quantize IN.gguf OUT.gguf TYPE [--threads N] [--pure]\n"
            "\n"
            "TYPE (case-insensitive):\n"
            "  mixes (llama.cpp rules): Q4_K_M Q4_K_S Q5_K_M Q5_K_S Q3_K_S Q3_K_M Q3_K_L Q2_K Q6_K\n"
            "                           Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 IQ4_NL MXFP4_MOE F16 BF16 F32\n"
            "  plain types (every quantizable tensor): Q3_K Q4_K Q5_K MXFP4\n"
            "  --pure      use TYPE's base type for every quantizable tensor (no mix rules)\n"
            "  --threads N worker threads (default: one per physical core)\n");
}

typedef struct quantize_progress {
    double t0;
    int    last_pct;
} quantize_progress;

static double quantize_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void quantize_on_progress(void *user, uint64_t done, uint64_t total, const char *name) {
    quantize_progress *p = user;
    int pct = total ? (int)(done * 100 / total) : 100;
    if (pct == p->last_pct && done != total) return;
    p->last_pct = pct;
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    int fill = pct * WIDTH / 100;
    for (int i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    fprintf(stderr, "\r[%s] %3d%% %-40.40s", bar, pct, name);
    if (done == total) fputc('\n', stderr);
    fflush(stderr);
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[3];
    int n_pos = 0, n_threads = 0;
    bool pure = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            quantize_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--threads") || !strcmp(argv[i], "-t")) {
            if (i + 1 >= argc) { cli_errorf("quantize", "%s needs a value", argv[i]); return 2; }
            char *end;
            errno = 0;
            long v = strtol(argv[++i], &end, 10);
            if (errno || *end || v < 1 || v > 4096) {
                cli_errorf("quantize", "--threads wants a number in 1..4096, got '%s'", argv[i]);
                return 2;
            }
            n_threads = (int)v;
        } else if (!strcmp(argv[i], "--pure")) {
            pure = true;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            cli_errorf("quantize", "unknown option '%s'", argv[i]);
            return 2;
        } else if (n_pos < 3) {
            pos[n_pos++] = argv[i];
        } else {
            cli_errorf("quantize", "unexpected argument '%s'", argv[i]);
            return 2;
        }
    }
    if (n_pos != 3) {
        quantize_usage(stderr);
        return 2;
    }
    q_quant_target target;
    if (!q_quant_target_parse(pos[2], &target)) {
        cli_errorf("quantize", "unknown type '%s' (see quarrel quantize --help)", pos[2]);
        return 2;
    }
    target.pure = target.pure || pure;

    quantize_progress prog = { .t0 = quantize_now(), .last_pct = -1 };
    q_quantize_params params = {
        .target = target,
        .n_threads = n_threads,
        .progress = isatty(STDERR_FILENO) ? quantize_on_progress : NULL,
        .progress_user = &prog,
    };
    q_quantize_stats st;
    q_error err;
    if (q_quantize_file(pos[0], pos[1], &params, &st, &err) != Q_OK) {
        cli_errorf("quantize", "%s", err.msg);
        return 1;
    }
    double dt = quantize_now() - prog.t0;
    printf("quantized %s (%.2f MiB) -> %s (%.2f MiB, %s%s): %llu of %llu tensors converted",
           pos[0], (double)st.in_size / (1024.0 * 1024.0), pos[1], (double)st.out_size / (1024.0 * 1024.0),
           q_ftype_name(target.ftype), target.pure ? ", pure" : "", (unsigned long long)st.n_converted,
           (unsigned long long)st.n_tensors);
    if (st.n_fallback) printf(" (%llu to a fallback type for their row length)", (unsigned long long)st.n_fallback);
    printf(" in %.2f s\n", dt);
    return 0;
}
