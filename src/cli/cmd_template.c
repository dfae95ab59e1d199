/* cmd_template.c — `quarrel template`: render a chat template for a list of messages.
 *
 *   quarrel template (-m MODEL | --template-file FILE) --messages FILE.json
 *                    [--tools FILE.json] [--bos TEXT] [--eos TEXT]
 *                    [--no-generation-prompt] [--var NAME=JSON ...] [--date YYYY-MM-DD]
 *
 * Prints the rendered prompt to stdout byte for byte and nothing else. The variables
 * are those transformers' apply_chat_template passes: messages, tools (None unless
 * --tools), documents = None, add_generation_prompt, bos_token, eos_token, then each
 * --var at top level. With -m the template is the GGUF's tokenizer.chat_template and
 * bos/eos default to the texts of tokenizer.ggml.bos/eos_token_id. --date fixes the
 * clock strftime_now() reads (default: now, local time).
 * Exit: 0 rendered; 1 bad input or a template error (one line on stderr); 2 usage.
 * A template that uses an unsupported construct falls back to generic ChatML, with a
 * warning on stderr. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "cli/cli.h"
#include "quarrel/gguf.h"
#include "quarrel/template.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: quarrel template (-m MODEL | --template-file FILE) --messages FILE.json\n"
            "                        [--tools FILE.json] [--bos TEXT] [--eos TEXT]\n"
            "                        [--no-generation-prompt] [--var NAME=JSON ...] [--date YYYY-MM-DD]\n"
            "Renders the chat template for the messages (a JSON array) and prints the prompt.\n");
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) { fclose(f); return NULL; }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (n < cap - 1) break;
        cap *= 2;
        char *nb = realloc(buf, cap);
        if (!nb) free(buf);
        buf = nb;
    }
    bool err = ferror(f);
    fclose(f);
    if (err) { free(buf); return NULL; }
    buf[n] = 0;
    *len = n;
    return buf;
}

static json_t *load_json(const char *path, const char *what) {
    json_error_t e;
    json_t *j = json_load_file(path, JSON_DECODE_ANY, &e);
    if (!j) cli_errorf("template", "%s %s: %s (line %d)", what, path, e.text, e.line);
    return j;
}

/* Token text by id from tokenizer.ggml.tokens; NULL when absent. */
static char *token_text(const gguf_file *g, const char *id_key) {
    uint64_t id;
    if (!gguf_get_u64(g, id_key, &id)) return NULL;
    const gguf_value *toks = gguf_get_arr(g, "tokenizer.ggml.tokens");
    if (!toks || toks->arr.type != GGUF_VT_STRING || id >= toks->arr.n) return NULL;
    return gguf_str_dup(toks->arr.strs[id]);
}

int cmd_template(int argc, char **argv) {
    const char *model = NULL, *tmpl_file = NULL, *msgs_file = NULL, *tools_file = NULL, *date = NULL;
    const char *bos = NULL, *eos = NULL;
    bool gen = true;
    int rc = 1;
    json_t *extra = json_object();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); json_decref(extra); return 0; }
        else if (!strcmp(a, "--no-generation-prompt")) gen = false;
        else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_val) model = argv[++i];
        else if (!strcmp(a, "--template-file") && has_val) tmpl_file = argv[++i];
        else if (!strcmp(a, "--messages") && has_val) msgs_file = argv[++i];
        else if (!strcmp(a, "--tools") && has_val) tools_file = argv[++i];
        else if (!strcmp(a, "--bos") && has_val) bos = argv[++i];
        else if (!strcmp(a, "--eos") && has_val) eos = argv[++i];
        else if (!strcmp(a, "--date") && has_val) date = argv[++i];
        else if (!strcmp(a, "--var") && has_val) {
            const char *kv = argv[++i], *eq = strchr(kv, '=');
            if (!eq || eq == kv) { cli_errorf("template", "--var wants NAME=JSON, got '%s'", kv); usage(stderr); json_decref(extra); return 2; }
            json_error_t e;
            json_t *v = json_loads(eq + 1, JSON_DECODE_ANY, &e);
            if (!v) { cli_errorf("template", "--var %.*s: bad JSON: %s", (int)(eq - kv), kv, e.text); json_decref(extra); return 1; }
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(eq - kv), kv);
            json_object_set_new(extra, name, v);
        } else {
            cli_errorf("template", "unknown or incomplete option '%s'", a);
            usage(stderr);
            json_decref(extra);
            return 2;
        }
    }
    if ((!model == !tmpl_file) || !msgs_file) {
        cli_errorf("template", "need exactly one of -m / --template-file, and --messages");
        usage(stderr);
        json_decref(extra);
        return 2;
    }
    struct tm fixed, *now = NULL;
    if (date) {
        memset(&fixed, 0, sizeof fixed);
        if (sscanf(date, "%d-%d-%d", &fixed.tm_year, &fixed.tm_mon, &fixed.tm_mday) != 3) {
            cli_errorf("template", "--date wants YYYY-MM-DD, got '%s'", date);
            json_decref(extra);
            return 2;
        }
        fixed.tm_year -= 1900;
        fixed.tm_mon -= 1;
        fixed.tm_isdst = -1;
        time_t t = timegm(&fixed);
        gmtime_r(&t, &fixed);  /* fills weekday and day of year */
        now = &fixed;
    }

    char *src = NULL, *model_bos = NULL, *model_eos = NULL, *out = NULL;
    size_t len = 0, out_len = 0;
    json_t *msgs = NULL, *tools = NULL;
    if (tmpl_file) {
        src = read_file(tmpl_file, &len);
        if (!src) { cli_errorf("template", "cannot read %s", tmpl_file); goto done; }
    } else {
        gguf_file *g = NULL;
        q_error gerr = { 0 };
        if (gguf_open(model, &g, &gerr) != Q_OK) { cli_errorf("template", "%s: %s", model, gerr.msg); goto done; }
        gguf_str s;
        if (gguf_get_str(g, "tokenizer.chat_template", &s)) src = gguf_str_dup(s);
        model_bos = token_text(g, "tokenizer.ggml.bos_token_id");
        model_eos = token_text(g, "tokenizer.ggml.eos_token_id");
        gguf_close(g);
        if (!src) { cli_errorf("template", "%s has no tokenizer.chat_template", model); goto done; }
        len = strlen(src);
    }
    msgs = load_json(msgs_file, "messages");
    if (!msgs) goto done;
    if (json_is_object(msgs) && json_is_array(json_object_get(msgs, "messages"))) {
        json_t *inner = json_incref(json_object_get(msgs, "messages"));
        json_decref(msgs);
        msgs = inner;
    }
    if (!json_is_array(msgs)) { cli_errorf("template", "%s: messages must be a JSON array", msgs_file); goto done; }
    if (tools_file && !(tools = load_json(tools_file, "tools"))) goto done;

    q_error err = { 0 };
    q_template_opts opts = { .now = now };
    q_template *t = NULL;
    q_status s = q_template_compile(src, len, &t, &err);
    if (s == Q_OK) {
        json_t *vars = json_object();
        json_object_set(vars, "messages", msgs);
        json_object_set_new(vars, "tools", tools ? json_incref(tools) : json_null());
        json_object_set_new(vars, "documents", json_null());
        json_object_set_new(vars, "add_generation_prompt", json_boolean(gen));
        json_object_set_new(vars, "bos_token", json_string(bos ? bos : model_bos ? model_bos : ""));
        json_object_set_new(vars, "eos_token", json_string(eos ? eos : model_eos ? model_eos : ""));
        json_object_update(vars, extra);
        s = q_template_render(t, vars, &opts, &out, &out_len, &err);
        json_decref(vars);
        q_template_free(t);
    } else if (q_template_error_is_unsupported(&err)) {
        fprintf(stderr, "quarrel template: warning: %s; using generic ChatML\n", err.msg);
        s = q_chat_apply_chatml(msgs, gen, &out, &out_len, &err);
    }
    if (s != Q_OK) { cli_errorf("template", "%s", err.msg); goto done; }
    if (fwrite(out, 1, out_len, stdout) != out_len || fflush(stdout) != 0) {
        cli_errorf("template", "cannot write the output");
        goto done;
    }
    rc = 0;
done:
    free(src);
    free(model_bos);
    free(model_eos);
    free(out);
    json_decref(msgs);
    json_decref(tools);
    json_decref(extra);
    return rc;
}
