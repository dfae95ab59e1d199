/* chat.c — renders a conversation with the model's chat template: the thin engine
 * wrapper over include/quarrel/template.h. The template is the GGUF's
 * tokenizer.chat_template, with the vocab's BOS/EOS texts; a model without a template,
 * or one using a construct the interpreter lacks, falls back to ChatML (reported through
 * *used_fallback so the caller can warn). The rendered string is malloc'ed for the
 * caller. */
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "quarrel/gguf.h"
#include "quarrel/quarrel.h"
#include "quarrel/template.h"
#include "quarrel/tokenizer.h"

static char *token_text(const q_vocab *v, q_special which) {
    const q_token id = v ? q_vocab_special(v, which) : Q_TOKEN_NULL;
    size_t len = 0;
    const char *t = id != Q_TOKEN_NULL ? q_vocab_token_text(v, id, &len) : NULL;
    char *s = q_xmalloc(len + 1);
    if (t) memcpy(s, t, len);
    s[len] = '\0';
    return s;
}

q_status q_model_chat_apply(const q_model *m, const struct json_t *messages, bool add_generation_prompt,
                            char **out, bool *used_fallback, q_error *err) {
    *out = NULL;
    if (used_fallback) *used_fallback = false;
    gguf_str src;
    if (gguf_get_str(q_model_gguf(m), "tokenizer.chat_template", &src)) {
        char *bos = token_text(q_model_vocab(m), Q_SPECIAL_BOS);
        char *eos = token_text(q_model_vocab(m), Q_SPECIAL_EOS);
        char *tsrc = gguf_str_dup(src);
        q_error terr;
        q_status st = q_chat_apply(tsrc, messages, NULL, bos, eos, add_generation_prompt, NULL, NULL, out,
                                   NULL, &terr);
        free(tsrc);
        free(bos);
        free(eos);
        if (st == Q_OK) return Q_OK;
        if (!q_template_error_is_unsupported(&terr)) return q_fail(err, st, "chat template: %s", terr.msg);
    }
    if (used_fallback) *used_fallback = true;
    return q_chat_apply_chatml(messages, add_generation_prompt, out, NULL, err);
}
