/* template.c — the public chat-template API (include/quarrel/template.h): compile
 * (lex + parse into the template's own arena), render (one arena per render, freed
 * at once), q_chat_apply (transformers' variables) and the ChatML fallback. */
#include "quarrel/template.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base.h"
#include "template/ast.h"
#include "template/eval.h"
#include "template/json.h"

#define TPL_COMPILE_MEM   (64u << 20)
#define TPL_DEFAULT_OUT   (16u << 20)
#define TPL_DEFAULT_MEM   (256u << 20)
#define TPL_DEFAULT_SECONDS 10.0

struct q_template {
    tpl_program prog;
};

q_status q_template_compile(const char *src, size_t len, q_template **out, q_error *err) {
    *out = NULL;
    if (!src && len) return q_fail(err, Q_ERR_INVALID_ARG, "template source is NULL");
    q_template *t = calloc(1, sizeof *t);
    if (!t) return q_fail(err, Q_ERR_NOMEM, "out of memory compiling the template");
    tpl_arena_init(&t->prog.arena, TPL_COMPILE_MEM);
    tpl_toks toks;
    q_status s = tpl_lex(&t->prog.arena, src ? src : "", len, &toks, err);
    if (s == Q_OK) {
        t->prog.src = toks.src;
        t->prog.len = toks.len;
        s = tpl_parse(&t->prog, &toks, err);
    }
    if (s != Q_OK) {
        q_template_free(t);
        return s;
    }
    *out = t;
    return Q_OK;
}

void q_template_free(q_template *t) {
    if (!t) return;
    tpl_arena_free(&t->prog.arena);
    free(t);
}

bool q_template_error_is_unsupported(const q_error *err) { return err && err->status == Q_ERR_UNSUPPORTED; }

q_status q_template_render(const q_template *t, const json_t *vars, const q_template_opts *opts,
                           char **out, size_t *out_len, q_error *err) {
    *out = NULL;
    if (out_len) *out_len = 0;
    if (vars && !json_is_object(vars)) return q_fail(err, Q_ERR_INVALID_ARG, "template variables must be a JSON object");
    size_t max_out = opts && opts->max_output ? opts->max_output : TPL_DEFAULT_OUT;
    size_t max_mem = opts && opts->max_memory ? opts->max_memory : TPL_DEFAULT_MEM;
    tpl_rt *rt = malloc(sizeof *rt);
    if (!rt) return q_fail(err, Q_ERR_NOMEM, "out of memory rendering the template");
    double max_s = opts && opts->max_seconds > 0 ? opts->max_seconds : TPL_DEFAULT_SECONDS;
    tpl_rt_init(rt, &t->prog, max_mem, max_out, max_s, err);
    if (opts && opts->now) {
        rt->now = *opts->now;
    } else {
        time_t now = time(NULL);
        localtime_r(&now, &rt->now);
    }
    q_status s = Q_OK;
    if (vars) {
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)vars, key, val) {
            tv v;
            size_t kn = strlen(key);
            char *name = tpl_arena_alloc(&rt->arena, kn + 1);
            if (!name || !tpl_json_to_value(&rt->arena, val, &v) || !tpl_rt_define(rt, name, v)) {
                s = q_fail(err, Q_ERR_LIMIT, "template variables exceed the memory limit (%zu bytes)", max_mem);
                break;
            }
            memcpy(name, key, kn);
        }
    }
    if (s == Q_OK) s = tpl_rt_exec(rt, out, out_len);
    tpl_rt_free(rt);
    free(rt);
    return s;
}

q_status q_chat_apply(const char *template_src, const json_t *messages, const json_t *tools,
                      const char *bos_token, const char *eos_token, bool add_generation_prompt,
                      const json_t *extra_vars, const q_template_opts *opts,
                      char **out, size_t *out_len, q_error *err) {
    *out = NULL;
    if (!template_src) return q_fail(err, Q_ERR_INVALID_ARG, "no chat template");
    if (extra_vars && !json_is_object(extra_vars)) return q_fail(err, Q_ERR_INVALID_ARG, "extra template variables must be a JSON object");
    q_template *t;
    q_status s = q_template_compile(template_src, strlen(template_src), &t, err);
    if (s != Q_OK) return s;
    json_t *vars = json_object();
    if (!vars) { q_template_free(t); return q_fail(err, Q_ERR_NOMEM, "out of memory"); }
    /* The order and set of variables transformers' apply_chat_template passes. */
    json_object_set(vars, "messages", messages ? (json_t *)messages : json_array());
    json_object_set_new(vars, "tools", tools ? json_incref((json_t *)tools) : json_null());
    json_object_set_new(vars, "documents", json_null());
    json_object_set_new(vars, "add_generation_prompt", json_boolean(add_generation_prompt));
    json_object_set_new(vars, "bos_token", json_string(bos_token ? bos_token : ""));
    json_object_set_new(vars, "eos_token", json_string(eos_token ? eos_token : ""));
    if (extra_vars) {
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)extra_vars, key, val) json_object_set(vars, key, val);
    }
    s = q_template_render(t, vars, opts, out, out_len, err);
    json_decref(vars);
    q_template_free(t);
    return s;
}

q_status q_chat_apply_chatml(const json_t *messages, bool add_generation_prompt,
                             char **out, size_t *out_len, q_error *err) {
    *out = NULL;
    if (!json_is_array(messages)) return q_fail(err, Q_ERR_INVALID_ARG, "messages must be a JSON array");
    size_t cap = 256, n = 0;
    char *buf = malloc(cap);
    if (!buf) return q_fail(err, Q_ERR_NOMEM, "out of memory");
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        char *dumped = NULL;
        const char *text = "";
        if (json_is_string(content)) text = json_string_value(content);
        else if (content && !json_is_null(content)) text = dumped = json_dumps(content, JSON_COMPACT | JSON_ENCODE_ANY);
        const char *parts[] = { "<|im_start|>", role ? role : "user", "\n", text ? text : "", "<|im_end|>\n" };
        for (size_t k = 0; k < Q_ARRAY_LEN(parts); k++) {
            size_t pl = strlen(parts[k]);
            while (n + pl + 32 > cap) cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); free(dumped); return q_fail(err, Q_ERR_NOMEM, "out of memory"); }
            buf = nb;
            memcpy(buf + n, parts[k], pl);
            n += pl;
        }
        free(dumped);
    }
    if (add_generation_prompt) {
        const char *g = "<|im_start|>assistant\n";
        size_t gl = strlen(g);
        if (n + gl + 1 > cap) {
            char *nb = realloc(buf, n + gl + 1);
            if (!nb) { free(buf); return q_fail(err, Q_ERR_NOMEM, "out of memory"); }
            buf = nb;
        }
        memcpy(buf + n, g, gl);
        n += gl;
    }
    buf[n] = 0;
    *out = buf;
    if (out_len) *out_len = n;
    return Q_OK;
}
