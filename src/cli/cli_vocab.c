/* cli_vocab.c — vocab loading, stdin reading and UTF-8 helpers for cmd_tokenize.c and
 * cmd_detokenize.c. Returned buffers are malloc'ed and owned by the caller. */
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "cli/cli.h"
#include "cli/cli_vocab.h"
#include "quarrel/gguf.h"

q_vocab *cli_load_vocab(const char *cmd, const char *path) {
    gguf_file *f = NULL;
    q_error err = { 0 };
    if (gguf_open(path, &f, &err) != Q_OK) {
        cli_errorf(cmd, "%s: %s", path, err.msg);
        return NULL;
    }
    q_vocab *v = NULL;
    q_status st = q_vocab_load(f, &v, &err);
    gguf_close(f);
    if (st != Q_OK) {
        cli_errorf(cmd, "%s: %s", path, err.msg);
        return NULL;
    }
    return v;
}

char *cli_read_all(FILE *in, size_t *len) {
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    if (!b) return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(b, cap * 2);
            if (!nb) { free(b); return NULL; }
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n - 1, in);
        n += got;
        if (got == 0) break;
    }
    if (ferror(in)) { free(b); return NULL; }
    b[n] = 0;
    *len = n;
    return b;
}

size_t cli_utf8_char_len(const char *p, size_t n) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)p, (utf8proc_ssize_t)n, &cp);
    return k > 0 ? (size_t)k : 0;
}

char *cli_utf8_sanitize(const char *p, size_t n, size_t *out_len) {
    char *o = malloc(n * 3 + 1);
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t c = cli_utf8_char_len(p + i, n - i);
        if (c) { memcpy(o + k, p + i, c); k += c; i += c; continue; }
        memcpy(o + k, "\xEF\xBF\xBD", 3);
        k += 3;
        i++;
    }
    o[k] = 0;
    *out_len = k;
    return o;
}
