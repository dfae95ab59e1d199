/* template.h — chat templates: a Jinja2 interpreter that renders a model's
 * `tokenizer.chat_template` byte for byte as Hugging Face transformers does
 * (jinja2 ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols,
 * tojson = json.dumps with ensure_ascii=False, raise_exception, strftime_now).
 *
 * Ownership: a q_template owns its compiled form (and a copy of the source); render
 * results are malloc'ed and owned by the caller (free()). Variables are read, never
 * kept. Every render is bounded (memory, output, loop iterations, recursion): a
 * hostile template fails with Q_ERR_LIMIT instead of hanging or crashing.
 *
 * Errors: err->msg is Python-style, "<Kind>: <message>", so it compares with what
 * jinja2 raises: raise_exception("x") gives exactly "TemplateError: x" (status
 * Q_ERR_FORMAT); other failures append " (line L, column C)". A template using a
 * construct this interpreter does not implement fails to compile with status
 * Q_ERR_UNSUPPORTED and "TemplateSyntaxError: unsupported feature: <what> (line L,
 * column C)" (see q_template_error_is_unsupported). */
#ifndef QUARREL_TEMPLATE_H
#define QUARREL_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <jansson.h>

#include "quarrel/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct q_template q_template;

/* Render options; NULL means all defaults. */
typedef struct q_template_opts {
    const struct tm *now;     /* clock for strftime_now(); NULL = current local time */
    size_t max_output;        /* bytes; 0 = 16 MiB */
    size_t max_memory;        /* bytes of interpreter memory per render; 0 = 256 MiB */
    double max_seconds;       /* wall-clock budget per render; 0 = 10 s */
} q_template_opts;

/* Compiles src[0..len) (UTF-8). On failure *out is NULL and err says why and where. */
q_status q_template_compile(const char *src, size_t len, q_template **out, q_error *err);
void     q_template_free(q_template *t);   /* NULL is fine */

/* Renders with `vars`, a JSON object whose members become the template's top-level
 * variables (key order is kept: it matters to tojson and items()). JSON null is
 * Python None (so `x is defined` holds). *out is NUL-terminated; *out_len (may be NULL)
 * excludes the NUL. A template may be rendered many times, from several threads. */
q_status q_template_render(const q_template *t, const json_t *vars, const q_template_opts *opts,
                           char **out, size_t *out_len, q_error *err);

/* True when err came from a template that uses a construct not implemented here
 * (the caller may fall back to q_chat_apply_chatml with a warning). */
bool q_template_error_is_unsupported(const q_error *err);

/* Compile + render in one call, with the variables transformers passes:
 * messages (a JSON array), tools (NULL = None), documents = None,
 * add_generation_prompt, bos_token, eos_token (NULL = ""), then every member of
 * extra_vars (a JSON object or NULL) at top level. */
q_status q_chat_apply(const char *template_src, const json_t *messages, const json_t *tools,
                      const char *bos_token, const char *eos_token, bool add_generation_prompt,
                      const json_t *extra_vars, const q_template_opts *opts,
                      char **out, size_t *out_len, q_error *err);

/* The generic ChatML rendering, for models without a usable template:
 *   "<|im_start|>" role "\n" content "<|im_end|>\n" per message, then
 *   "<|im_start|>assistant\n" when add_generation_prompt.
 * Non-string content is written as compact JSON. */
q_status q_chat_apply_chatml(const json_t *messages, bool add_generation_prompt,
                             char **out, size_t *out_len, q_error *err);

#ifdef __cplusplus
}
#endif
#endif
