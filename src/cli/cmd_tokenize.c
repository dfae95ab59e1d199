/* cmd_tokenize.c — `quarrel tokenize`: text to token ids with a model's tokenizer.
 *
 *   quarrel tokenize -m MODEL [-p TEXT | -f FILE] [--no-bos] [--special] [--ids | --json | --pieces]
 *
 * Text comes from -p, else -f FILE, else stdin; files and stdin are taken byte for byte
 * (a trailing newline is part of the text). Works on any GGUF with tokenizer metadata,
 * vocab-only files included. Output (stdout):
 *   default   one line per token: id, a tab, the piece in single quotes (escaped)
 *   --ids     the ids on one line, space-separated, nothing else
 *   --json    a JSON array of {"id": N, "piece": "..."} (invalid UTF-8 in a piece -> U+FFFD)
 *   --pieces  one escaped piece per line
 * --no-bos: add no BOS/EOS ([CLS]/[SEP]); --special: parse special-token texts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/cli_vocab.h"
#include "quarrel/tokenizer.h"

static const char *const CMD = "tokenize";

static void usage(FILE *out) {
    fprintf(out,
            "usage: quarrel tokenize -m MODEL [-p TEXT | -f FILE] [--no-bos] [--special] [--ids | --json | --pieces]\n"
            "  -m, --model FILE   GGUF file with tokenizer metadata (vocab-only files work)\n"
            "  -p, --prompt TEXT  text to tokenize (default: read stdin byte for byte)\n"
            "  -f, --file FILE    read the text from FILE byte for byte\n"
            "      --no-bos       do not add BOS/EOS ([CLS]/[SEP] for BERT)\n"
            "      --special      turn special-token texts (e.g. <s>) into their tokens\n"
            "      --ids          print only the ids, space-separated, on one line\n"
            "      --json         print a JSON array of {\"id\", \"piece\"}\n"
            "      --pieces       print one piece per line\n");
}

typedef enum out_mode { OUT_TABLE, OUT_IDS, OUT_JSON, OUT_PIECES } out_mode;

/* Prints a piece escaped for a terminal: \n \t \r \\ \' and \xHH for other controls and
 * bytes that are not valid UTF-8. */
static void print_escaped(FILE *out, const char *p, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)p[i];
        size_t k = cli_utf8_char_len(p + i, n - i);
        if (c >= 0x80 && k > 0) { fwrite(p + i, 1, k, out); i += k; continue; }
        switch (c) {
        case '\n': fputs("\\n", out); break;
        case '\t': fputs("\\t", out); break;
        case '\r': fputs("\\r", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\'': fputs("\\'", out); break;
        default:
            if (c < 0x20 || c >= 0x7F) fprintf(out, "\\x%02X", c);
            else fputc(c, out);
        }
        i++;
    }
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *file = NULL;
    bool add_special = true, parse_special = false;
    out_mode mode = OUT_TABLE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_val) model = argv[++i];
        else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && has_val) prompt = argv[++i];
        else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && has_val) file = argv[++i];
        else if (!strcmp(a, "--no-bos")) add_special = false;
        else if (!strcmp(a, "--special")) parse_special = true;
        else if (!strcmp(a, "--ids")) mode = OUT_IDS;
        else if (!strcmp(a, "--json")) mode = OUT_JSON;
        else if (!strcmp(a, "--pieces")) mode = OUT_PIECES;
        else {
            cli_errorf(CMD, "unknown or incomplete option '%s' (see --help)", a);
            return 2;
        }
    }
    if (!model) { cli_errorf(CMD, "missing -m MODEL (see --help)"); return 2; }
    if (prompt && file) { cli_errorf(CMD, "give either -p or -f, not both"); return 2; }

    char *text = NULL;
    size_t len = 0;
    if (prompt) {
        len = strlen(prompt);
        text = malloc(len + 1);
        memcpy(text, prompt, len + 1);
    } else {
        FILE *in = file ? fopen(file, "rb") : stdin;
        if (!in) { cli_errorf(CMD, "cannot open %s", file); return 1; }
        text = cli_read_all(in, &len);
        if (file) fclose(in);
        if (!text) { cli_errorf(CMD, "cannot read %s", file ? file : "stdin"); return 1; }
    }

    q_vocab *v = cli_load_vocab(CMD, model);
    if (!v) { free(text); return 1; }
    q_tokens ids = { 0 };
    q_error err = { 0 };
    if (q_tokenize(v, text, len, add_special, parse_special, &ids, &err) != Q_OK) {
        cli_errorf(CMD, "%s", err.msg);
        q_vocab_free(v);
        free(text);
        return 1;
    }

    char *piece = NULL;
    size_t cap = 0;
    json_t *arr = mode == OUT_JSON ? json_array() : NULL;
    for (size_t i = 0; i < ids.n; i++) {
        if (mode == OUT_IDS) { printf(i ? " %d" : "%d", ids.ids[i]); continue; }
        size_t n = q_token_to_piece(v, ids.ids[i], piece, cap, 0, true);
        if (n > cap) {
            cap = n * 2;
            piece = realloc(piece, cap);
            n = q_token_to_piece(v, ids.ids[i], piece, cap, 0, true);
        }
        if (mode == OUT_JSON) {
            size_t sl;
            char *s = cli_utf8_sanitize(piece, n, &sl);
            json_t *o = json_object();
            json_object_set_new(o, "id", json_integer(ids.ids[i]));
            json_object_set_new(o, "piece", json_stringn(s, sl));
            json_array_append_new(arr, o);
            free(s);
        } else {
            if (mode == OUT_TABLE) printf("%d\t'", ids.ids[i]);
            print_escaped(stdout, piece, n);
            fputs(mode == OUT_TABLE ? "'\n" : "\n", stdout);
        }
    }
    if (mode == OUT_IDS) putchar('\n');
    if (mode == OUT_JSON) {
        json_dumpf(arr, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(arr);
    }
    free(piece);
    q_tokens_free(&ids);
    q_vocab_free(v);
    free(text);
    return fflush(stdout) == 0 ? 0 : 1;
}
