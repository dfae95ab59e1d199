/* gen_common.c — shared helpers of the model-running subcommands (gen_common.h). */
#include "cli/gen_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/pool.h"

bool cli_int_arg(const char *cmd, const char *opt, const char *val, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = val ? strtol(val, &end, 10) : 0;
    if (!val || errno || *end || end == val || v < lo || v > hi) {
        cli_errorf(cmd, "%s needs an integer in [%ld, %ld]", opt, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

bool cli_float_arg(const char *cmd, const char *opt, const char *val, float *out) {
    char *end;
    errno = 0;
    double v = val ? strtod(val, &end) : 0;
    if (!val || errno || *end || end == val) {
        cli_errorf(cmd, "%s needs a number", opt);
        return false;
    }
    *out = (float)v;
    return true;
}

double cli_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int cli_default_threads(void) { return pool_default_threads(); }

bool cli_open(const char *cmd, const char *path, const q_context_params *cp, q_model **m,
              q_context **c, double *load_ms) {
    const double t0 = cli_now_ms();
    q_error err;
    if (q_model_load(path, m, &err) != Q_OK) {
        cli_errorf(cmd, "%s: %s", path, err.msg);
        return false;
    }
    if (q_context_new(*m, cp, c, &err) != Q_OK) {
        cli_errorf(cmd, "%s", err.msg);
        q_model_free(*m);
        *m = NULL;
        return false;
    }
    if (load_ms) *load_ms = cli_now_ms() - t0;
    return true;
}

const q_vocab *cli_vocab(const char *cmd, const q_model *m) {
    const q_vocab *v = q_model_vocab(m);
    if (!v) cli_errorf(cmd, "no tokenizer: %s", q_model_vocab_error(m));
    return v;
}

bool cli_tokenize(const char *cmd, const q_vocab *v, const char *text, bool add_special,
                  bool parse_special, q_tokens *out) {
    q_error err;
    if (q_tokenize(v, text, strlen(text), add_special, parse_special, out, &err) != Q_OK) {
        cli_errorf(cmd, "tokenize: %s", err.msg);
        return false;
    }
    return true;
}

char *cli_read_file(const char *cmd, const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_errorf(cmd, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += r;
        if (cap - n - 1 == 0) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); buf = NULL; }
            else buf = nb;
        }
    }
    const bool bad = ferror(f) || !buf;
    fclose(f);
    if (bad) {
        free(buf);
        cli_errorf(cmd, "cannot read %s", path);
        return NULL;
    }
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}
