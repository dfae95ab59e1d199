/* registry.c — the architecture table and the model loader built on it.
 *
 * q_model_load maps the GGUF (zero copy), finds general.architecture in the table, lets
 * the arch read its hyperparameters, then binds every tensor the arch's spec lists:
 * presence (unless optional), type (1-D tensors F32; matrices a type the CPU matmul
 * supports) and shape (symbolic dims resolved per layer) are checked here, and an error
 * names the tensor. Not here: the math (one file per arch, e.g. llama.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/base.h"
#include "cpu/backend.h"
#include "cpu/repack.h"
#include "model/model.h"
#include "quarrel/tokenizer.h"

static const q_arch_def *const arch_table[] = {
    &q_arch_llama,
    &q_arch_granite,
};

const q_arch_def *q_arch_find(const char *name) {
    for (size_t i = 0; i < Q_ARRAY_LEN(arch_table); i++)
        if (!strcmp(arch_table[i]->name, name)) return arch_table[i];
    return NULL;
}

static void arch_key(const q_model *m, const char *key, char *buf, size_t size) {
    snprintf(buf, size, "%s.%s", m->arch->name, key);
}

bool q_hp_u32(const q_model *m, const char *key, uint32_t *out) {
    char k[256];
    uint64_t v;
    arch_key(m, key, k, sizeof k);
    if (!gguf_get_u64(m->gguf, k, &v) || v > UINT32_MAX) return false;
    *out = (uint32_t)v;
    return true;
}

bool q_hp_f32(const q_model *m, const char *key, float *out) {
    char k[256];
    double v;
    arch_key(m, key, k, sizeof k);
    if (!gguf_get_f64(m->gguf, k, &v)) return false;
    *out = (float)v;
    return true;
}

q_status q_hp_layer_u32(q_model *m, const char *key, size_t field_offset, bool required,
                        uint32_t dflt, q_error *err) {
    char k[256];
    arch_key(m, key, k, sizeof k);
    const int32_t L = m->hp.n_layer;
    const gguf_value *arr = gguf_get_arr(m->gguf, k);
    uint64_t v = dflt;
    if (arr) {
        if (arr->arr.n != (uint64_t)L || arr->arr.type == GGUF_VT_STRING || arr->arr.type == GGUF_VT_ARRAY)
            return q_fail(err, Q_ERR_FORMAT, "%s: expected %d per-layer integers", k, L);
    } else if (!gguf_get_u64(m->gguf, k, &v)) {
        if (required || gguf_find(m->gguf, k))
            return q_fail(err, Q_ERR_FORMAT, "%s: %s", k, gguf_find(m->gguf, k) ? "not an unsigned integer" : "required key missing");
    }
    for (int32_t l = 0; l < L; l++) {
        uint64_t lv = arr ? (uint64_t)gguf_arr_i64(arr, (uint64_t)l) : v;
        if (lv > INT32_MAX) return q_fail(err, Q_ERR_FORMAT, "%s: value out of range", k);
        *(int32_t *)((char *)&m->layers[l] + field_offset) = (int32_t)lv;
    }
    return Q_OK;
}

/* Resolves a symbolic dim for layer l (l < 0 for model-level tensors). */
static int64_t dim_value(const q_model *m, q_dim d, int32_t l) {
    const q_layer *L = l >= 0 ? &m->layers[l] : NULL;
    switch (d) {
    case Q_DIM_NONE:     return 1;
    case Q_DIM_EMBD:     return m->hp.n_embd;
    case Q_DIM_VOCAB:    return m->hp.n_vocab;
    case Q_DIM_Q:        return L ? (int64_t)L->n_head * m->hp.head_dim : -1;
    case Q_DIM_KV:       return L ? (int64_t)L->n_head_kv * m->hp.head_dim : -1;
    case Q_DIM_FF:       return L ? L->n_ff : -1;
    case Q_DIM_ROT_HALF: return m->hp.rope.n_rot / 2;
    case Q_DIM_EXPERT:   return L ? L->n_expert : -1;
    case Q_DIM_COUNT:    break;
    }
    Q_ASSERT(!"bad q_dim");
    return -1;
}

static q_status bind_tensor(q_model *m, const q_tensor_spec *sp, int32_t l, q_tensor *dst,
                            q_error *err) {
    char name[160];
    if (sp->per_layer) snprintf(name, sizeof name, sp->name, l);
    else snprintf(name, sizeof name, "%s", sp->name);
    memset(dst, 0, sizeof *dst);
    const gguf_tensor_info *ti = gguf_find_tensor(m->gguf, name);
    if (!ti) {
        if (sp->optional) return Q_OK;
        return q_fail(err, Q_ERR_FORMAT, "tensor %s is missing (required by arch %s)", name, m->arch->name);
    }
    const int64_t e0 = dim_value(m, sp->shape[0], l), e1 = dim_value(m, sp->shape[1], l);
    const int64_t e2 = dim_value(m, sp->shape[2], l);
    if (ti->ne[0] != e0 || ti->ne[1] != e1 || ti->ne[2] != e2 || ti->ne[3] != 1) {
        if (e2 == 1)
            return q_fail(err, Q_ERR_FORMAT,
                          "tensor %s has shape [%lld, %lld, %lld, %lld]; expected [%lld, %lld]", name,
                          (long long)ti->ne[0], (long long)ti->ne[1], (long long)ti->ne[2],
                          (long long)ti->ne[3], (long long)e0, (long long)e1);
        return q_fail(err, Q_ERR_FORMAT,
                      "tensor %s has shape [%lld, %lld, %lld, %lld]; expected [%lld, %lld, %lld]", name,
                      (long long)ti->ne[0], (long long)ti->ne[1], (long long)ti->ne[2],
                      (long long)ti->ne[3], (long long)e0, (long long)e1, (long long)e2);
    }
    if (sp->shape[1] == Q_DIM_NONE) {
        if (ti->type != Q_TYPE_F32)
            return q_fail(err, Q_ERR_UNSUPPORTED, "tensor %s is %s; vectors must be f32", name,
                          q_type_name(ti->type));
    } else if (!q_matmul_traits_get(ti->type)) {
        return q_fail(err, Q_ERR_UNSUPPORTED, "tensor %s has type %s, which the CPU cannot multiply by",
                      name, q_type_name(ti->type));
    }
    dst->type = ti->type;
    for (int i = 0; i < 4; i++) dst->ne[i] = ti->ne[i];
    dst->row_bytes = q_row_size(ti->type, ti->ne[0]);
    dst->data = ti->data;
    return Q_OK;
}

q_status q_model_load(const char *path, q_model **out, q_error *err) {
    *out = NULL;
    q_status st = q_cpu_check(err);
    if (st != Q_OK) return st;
    q_model *m = q_xcalloc(1, sizeof *m);
    st = gguf_open(path, &m->gguf, err);
    if (st != Q_OK) { free(m); return st; }

    gguf_str arch;
    if (!gguf_get_str(m->gguf, "general.architecture", &arch)) {
        st = q_fail(err, Q_ERR_FORMAT, "%s: general.architecture is missing", path);
        goto fail;
    }
    char archz[64];
    snprintf(archz, sizeof archz, "%.*s", (int)Q_MIN(arch.len, 63), arch.ptr);
    m->arch = q_arch_find(archz);
    if (!m->arch) {
        st = q_fail(err, Q_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported", path, archz);
        goto fail;
    }
    uint32_t n_layer;
    if (!q_hp_u32(m, "block_count", &n_layer) || n_layer == 0 || n_layer > Q_MAX_LAYERS) {
        st = q_fail(err, Q_ERR_FORMAT, "%s: %s.block_count missing or out of range", path, archz);
        goto fail;
    }
    m->hp.n_layer = (int32_t)n_layer;
    m->layers = q_xcalloc(n_layer, sizeof *m->layers);
    if ((st = m->arch->load_hparams(m, err)) != Q_OK) goto fail;

    for (size_t i = 0; i < m->arch->n_tensors; i++) {
        const q_tensor_spec *sp = &m->arch->tensors[i];
        if (sp->per_layer) {
            for (int32_t l = 0; l < m->hp.n_layer; l++) {
                const bool moe = m->layers[l].n_expert > 0;
                if ((sp->when == Q_WHEN_DENSE && moe) || (sp->when == Q_WHEN_MOE && !moe)) continue;
                if ((st = bind_tensor(m, sp, l, (q_tensor *)((char *)&m->layers[l] + sp->offset), err)) != Q_OK)
                    goto fail;
            }
        } else if ((st = bind_tensor(m, sp, -1, (q_tensor *)((char *)m + sp->offset), err)) != Q_OK) {
            goto fail;
        }
    }
    if (m->arch->finish && (st = m->arch->finish(m, err)) != Q_OK) goto fail;
    /* After finish: a tied output must already alias token_embd to be left row-major. */
    if ((st = q_cpu_repack_model(m, err)) != Q_OK) goto fail;
    /* The tokenizer is optional for the engine (decoding takes ids): a vocab that fails
     * to load leaves vocab NULL and the reason for the CLI to report. */
    if (gguf_find(m->gguf, "tokenizer.ggml.model")) {
        q_error verr;
        if (q_vocab_load(m->gguf, &m->vocab, &verr) != Q_OK) {
            m->vocab = NULL;
            memcpy(m->vocab_err, verr.msg, sizeof m->vocab_err);
        }
    } else {
        snprintf(m->vocab_err, sizeof m->vocab_err, "the model file has no tokenizer");
    }
    *out = m;
    return Q_OK;
fail:
    q_model_free(m);
    return st;
}

void q_model_free(q_model *m) {
    if (!m) return;
    q_vocab_free(m->vocab);
    gguf_close(m->gguf);
    if (m->repack_mem) munmap(m->repack_mem, m->repack_size);
    free(m->layers);
    free(m);
}

const char *q_model_arch(const q_model *m) { return m->arch->name; }
int32_t q_model_n_vocab(const q_model *m) { return m->hp.n_vocab; }
int32_t q_model_n_embd(const q_model *m) { return m->hp.n_embd; }
int32_t q_model_n_layer(const q_model *m) { return m->hp.n_layer; }
int32_t q_model_n_ctx_train(const q_model *m) { return m->hp.n_ctx_train; }
uint64_t q_model_size(const q_model *m) { return m->gguf->size; }
int32_t q_model_n_repacked(const q_model *m) { return m->n_repacked; }
uint64_t q_model_repacked_bytes(const q_model *m) { return m->repack_size; }
const struct gguf_file *q_model_gguf(const q_model *m) { return m->gguf; }
const struct q_vocab *q_model_vocab(const q_model *m) { return m->vocab; }
const char *q_model_vocab_error(const q_model *m) { return m->vocab ? "" : m->vocab_err; }

q_status q_model_tokenize(const q_model *m, const char *text, size_t len, bool add_special,
                          bool parse_special, q_tokens *out, q_error *err) {
    if (!m->vocab) return q_fail(err, Q_ERR_UNSUPPORTED, "no tokenizer: %s", m->vocab_err);
    return q_tokenize(m->vocab, text, len, add_special, parse_special, out, err);
}

q_status q_model_detokenize(const q_model *m, const q_token *ids, size_t n, char **out, size_t *len,
                            q_error *err) {
    *out = NULL;
    if (!m->vocab) return q_fail(err, Q_ERR_UNSUPPORTED, "no tokenizer: %s", m->vocab_err);
    return q_detokenize(m->vocab, ids, n, false, false, out, len, err);
}

void q_model_desc(const q_model *m, char *buf, size_t size) {
    const q_layer *L0 = &m->layers[0];
    snprintf(buf, size, "%s, %d layers, %d embd, %d/%d heads of %d, ffn %d, vocab %d, %.1f MiB",
             m->arch->name, m->hp.n_layer, m->hp.n_embd, L0->n_head, L0->n_head_kv, m->hp.head_dim,
             L0->n_ff, m->hp.n_vocab, (double)m->gguf->size / (1024.0 * 1024.0));
}
