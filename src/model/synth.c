/* synth.c — random-weight GGUF models of real shapes (see include/quarrel/synth.h).
 *
 * Layout written (llama.cpp's converted dense llama/granite checkpoints; ggml dims,
 * ne0 = the row length = the matmul's input width):
 *
 *   token_embd.weight          [n_embd, n_vocab]
 *   output_norm.weight         [n_embd]                          F32
 *   output.weight              [n_embd, n_vocab]                 absent when tied
 *   blk.N.attn_norm.weight     [n_embd]                          F32
 *   blk.N.attn_q.weight        [n_embd, n_head    * head_dim]
 *   blk.N.attn_k.weight        [n_embd, n_head_kv * head_dim]
 *   blk.N.attn_v.weight        [n_embd, n_head_kv * head_dim]
 *   blk.N.attn_output.weight   [n_head * head_dim, n_embd]
 *   blk.N.ffn_norm.weight      [n_embd]                          F32
 *   blk.N.ffn_gate.weight      [n_embd, n_ff]
 *   blk.N.ffn_up.weight        [n_embd, n_ff]
 *   blk.N.ffn_down.weight      [n_ff, n_embd]
 *
 * Tensors go out in llama-quantize's processing order (layer, then name; non-block
 * tensors first), which is also the order mix_plan's layer counters need, so a synth
 * Q4_K_M file has the tensor types and order of llama-quantize's Q4_K_M of the same
 * shape. Memory: the plan, the copied key/values and one pool per (type, row length);
 * the tensor data is produced inside the writer's fill callback. */
#include "quarrel/synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/base.h"
#include "core/pool.h"
#include "quant/mix.h"
#include "quarrel/gguf.h"

enum {
    SYNTH_POOL_ROWS  = 64,   /* distinct rows per (type, row length); picks repeat them */
    SYNTH_MAX_POOLS  = 32,   /* (type, ne0) pairs of one model: a handful in practice */
};
#define SYNTH_WEIGHT_SIGMA 0.02f   /* std of real checkpoints' matrices (init std 0.02) */
#define SYNTH_NORM_NOISE   0.02f   /* norms are 1 +- this (uniform) */

/* ---- the shapes ----------------------------------------------------------------- */

static const q_synth_shape shapes[] = {
    { .name = "tiny", .arch = "llama", .model = "small llama for tests (stories260K vocab)",
      .vocab = "models/stories260K.gguf", .n_ctx = 2048, .n_embd = 256, .n_layer = 2, .n_ff = 512,
      .n_head = 4, .n_head_kv = 2, .n_vocab_real = 512, .rms_eps = 1e-5f, .rope_base = 10000.0f },
    { .name = "tinyllama-1.1b", .alias = "tinyllama", .arch = "llama", .model = "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
      .vocab = "vocab/ggml-vocab-llama-spm.gguf", .n_ctx = 2048, .n_embd = 2048, .n_layer = 22,
      .n_ff = 5632, .n_head = 32, .n_head_kv = 4, .n_vocab_real = 32000, .rms_eps = 1e-5f,
      .rope_base = 10000.0f },
    { .name = "llama-7b", .alias = "llama2-7b", .arch = "llama", .model = "meta-llama/Llama-2-7b-hf",
      .vocab = "vocab/ggml-vocab-llama-spm.gguf", .n_ctx = 4096, .n_embd = 4096, .n_layer = 32,
      .n_ff = 11008, .n_head = 32, .n_head_kv = 32, .n_vocab_real = 32000, .rms_eps = 1e-5f,
      .rope_base = 10000.0f },
    { .name = "mistral-7b", .arch = "llama", .model = "mistralai/Mistral-7B-v0.1",
      .vocab = "vocab/ggml-vocab-llama-spm.gguf", .n_ctx = 32768, .n_embd = 4096, .n_layer = 32,
      .n_ff = 14336, .n_head = 32, .n_head_kv = 8, .n_vocab_real = 32000, .sliding_window = 4096,
      .rms_eps = 1e-5f, .rope_base = 10000.0f },
    /* The real vocab is a 49152-token GPT-2-style BPE ("smollm" pre-tokenizer); the
     * starcoder vocab has the same size and kind. */
    { .name = "smollm2-360m", .arch = "llama", .model = "HuggingFaceTB/SmolLM2-360M",
      .vocab = "vocab/ggml-vocab-starcoder.gguf", .n_ctx = 8192, .n_embd = 960, .n_layer = 32,
      .n_ff = 2560, .n_head = 15, .n_head_kv = 5, .n_vocab_real = 49152, .rms_eps = 1e-5f,
      .rope_base = 100000.0f, .tied = true },
    /* Granite 3.0's dense small model (2.5B parameters; "3b" is its class). Its vocab is
     * 49155 tokens of the granite-code BPE, which llama.cpp pre-tokenizes as "refact";
     * the refact vocab (49216) is the closest shared one. */
    { .name = "granite-3b", .arch = "granite", .model = "ibm-granite/granite-3.0-2b-instruct",
      .vocab = "vocab/ggml-vocab-refact.gguf", .n_ctx = 4096, .n_embd = 2048, .n_layer = 40,
      .n_ff = 8192, .n_head = 32, .n_head_kv = 8, .n_vocab_real = 49155, .rms_eps = 1e-5f,
      .rope_base = 10000.0f, .tied = true, .embedding_scale = 12.0f, .residual_scale = 0.22f,
      .attention_scale = 0.015625f, .logit_scale = 8.0f },
};

const q_synth_shape *q_synth_shape_find(const char *name) {
    for (size_t i = 0; name && i < Q_ARRAY_LEN(shapes); i++)
        if (!strcmp(shapes[i].name, name) || (shapes[i].alias && !strcmp(shapes[i].alias, name)))
            return &shapes[i];
    return NULL;
}

const q_synth_shape *q_synth_shape_at(size_t i) {
    return i < Q_ARRAY_LEN(shapes) ? &shapes[i] : NULL;
}

/* ---- deterministic randomness ----------------------------------------------------- */

/* splitmix64: a full-period 64-bit generator whose output function is a good mixer. */
static uint64_t synth_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t synth_next(uint64_t *state) {
    *state += 0x9e3779b97f4a7c15ull;
    return synth_mix(*state);
}

/* Uniform in (0, 1): 53 random bits, never 0 (log() below). */
static double synth_uniform(uint64_t *state) {
    return ((double)(synth_next(state) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Seed of a stream named by (seed, a, b, c): independent streams per pool row / tensor. */
static uint64_t synth_stream(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
    return synth_mix(synth_mix(synth_mix(seed ^ 0x5eedull) ^ a) + b) ^ synth_mix(c + 0x632be59bd9b4e019ull);
}

/* n samples of N(0, sigma) (Box-Muller). */
static void synth_gauss(uint64_t *state, float *dst, int64_t n, float sigma) {
    for (int64_t i = 0; i < n; i += 2) {
        double r = sqrt(-2.0 * log(synth_uniform(state))), th = 6.283185307179586 * synth_uniform(state);
        dst[i] = (float)(r * cos(th)) * sigma;
        if (i + 1 < n) dst[i + 1] = (float)(r * sin(th)) * sigma;
    }
}

/* ---- the plan --------------------------------------------------------------------- */

typedef struct synth_tensor {
    char    name[64];
    int     layer;       /* N of blk.N, -1 for the others (sort key) */
    int64_t ne[4];
    q_type  type;        /* final type from the mix rules */
} synth_tensor;

static void synth_add(synth_tensor *t, size_t *n, int layer, const char *suffix, int64_t ne0, int64_t ne1) {
    synth_tensor *x = &t[(*n)++];
    memset(x, 0, sizeof *x);
    if (layer >= 0) snprintf(x->name, sizeof x->name, "blk.%d.%s", layer, suffix);
    else snprintf(x->name, sizeof x->name, "%s", suffix);
    x->layer = layer;
    x->ne[0] = ne0;
    x->ne[1] = ne1;
    x->ne[2] = x->ne[3] = 1;
    x->type = Q_TYPE_F32;   /* the "source" type the mix rules see; replaced by the plan */
}

static int synth_tensor_cmp(const void *a, const void *b) {
    const synth_tensor *x = a, *y = b;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Tensors of shape s in processing order, types planned for target tg. *out is
 * malloc'ed (caller frees). */
static q_status synth_plan(const q_synth_shape *s, uint64_t n_vocab, q_quant_target tg, synth_tensor **out,
                           size_t *n_out, q_error *err) {
    const int64_t E = s->n_embd, F = s->n_ff, V = (int64_t)n_vocab;
    const int64_t head_dim = s->n_embd / s->n_head, KV = (int64_t)s->n_head_kv * head_dim;
    size_t cap = 3 + 9 * (size_t)s->n_layer, n = 0;
    synth_tensor *t = q_xcalloc(cap, sizeof *t);
    synth_add(t, &n, -1, "token_embd.weight", E, V);
    synth_add(t, &n, -1, "output_norm.weight", E, 1);
    if (!s->tied) synth_add(t, &n, -1, "output.weight", E, V);
    for (int l = 0; l < (int)s->n_layer; l++) {
        synth_add(t, &n, l, "attn_norm.weight", E, 1);
        synth_add(t, &n, l, "attn_q.weight", E, (int64_t)s->n_head * head_dim);
        synth_add(t, &n, l, "attn_k.weight", E, KV);
        synth_add(t, &n, l, "attn_v.weight", E, KV);
        synth_add(t, &n, l, "attn_output.weight", (int64_t)s->n_head * head_dim, E);
        synth_add(t, &n, l, "ffn_norm.weight", E, 1);
        synth_add(t, &n, l, "ffn_gate.weight", E, F);
        synth_add(t, &n, l, "ffn_up.weight", E, F);
        synth_add(t, &n, l, "ffn_down.weight", F, E);
    }
    Q_ASSERT(n <= cap);
    qsort(t, n, sizeof *t, synth_tensor_cmp);

    mix_model m = { .n_layer = (int)s->n_layer, .n_gqa = (int)(s->n_head / s->n_head_kv),
                    .is_70b = !strcmp(s->arch, "llama") && s->n_layer == 80 && s->n_head != s->n_head_kv };
    mix_tensor *mt = q_xcalloc(n, sizeof *mt);
    q_type *types = q_xcalloc(n, sizeof *types);
    for (size_t i = 0; i < n; i++) {
        mt[i].name = t[i].name;
        memcpy(mt[i].ne, t[i].ne, sizeof mt[i].ne);
        mt[i].type = t[i].type;
    }
    q_status st = mix_plan(&m, tg, mt, n, types, NULL, err);
    for (size_t i = 0; st == Q_OK && i < n; i++) {
        const q_type_traits *tr = q_type_get(types[i]);
        Q_ASSERT(tr != NULL);
        if (!tr->from_float || !tr->to_float)
            st = q_fail(err, Q_ERR_UNSUPPORTED, "tensor %s: cannot write type %s", t[i].name, tr->name);
        t[i].type = types[i];
    }
    free(mt);
    free(types);
    if (st != Q_OK) {
        free(t);
        return st;
    }
    *out = t;
    *n_out = n;
    return Q_OK;
}

/* ---- data: row pools and the fill callback --------------------------------------- */

typedef struct synth_pool {
    q_type   type;
    int64_t  ne0;
    size_t   row_size;
    uint8_t *rows;        /* (SYNTH_POOL_ROWS, row_size) quantized random rows */
} synth_pool;

typedef struct synth_job {
    const synth_tensor *tensors;
    size_t              n_tensors;
    uint64_t            seed;
    pool               *threads;
    float              *scratch;     /* (n_threads, max_ne0) floats */
    int64_t             max_ne0;
    synth_pool          pools[SYNTH_MAX_POOLS];
    size_t              n_pools;
    synth_pool         *building;    /* the pool pool_run is filling */
} synth_job;

static void synth_pool_row_task(void *vjob, int64_t k, int i_thread) {
    synth_job *job = vjob;
    synth_pool *p = job->building;
    float *row = job->scratch + (size_t)i_thread * (size_t)job->max_ne0;
    uint64_t state = synth_stream(job->seed, (uint64_t)p->type, (uint64_t)p->ne0, (uint64_t)k);
    synth_gauss(&state, row, p->ne0, SYNTH_WEIGHT_SIGMA);
    q_type_get(p->type)->from_float(row, p->rows + (size_t)k * p->row_size, p->ne0);
}

static const synth_pool *synth_pool_get(synth_job *job, q_type type, int64_t ne0) {
    for (size_t i = 0; i < job->n_pools; i++)
        if (job->pools[i].type == type && job->pools[i].ne0 == ne0) return &job->pools[i];
    Q_ASSERT(job->n_pools < SYNTH_MAX_POOLS);
    synth_pool *p = &job->pools[job->n_pools++];
    p->type = type;
    p->ne0 = ne0;
    p->row_size = q_row_size(type, ne0);
    p->rows = q_xmalloc(SYNTH_POOL_ROWS * p->row_size);
    job->building = p;
    pool_run(job->threads, synth_pool_row_task, job, SYNTH_POOL_ROWS);
    return p;
}

static q_status synth_fill(void *user, uint64_t i, void *dst, size_t nbytes, q_error *err) {
    synth_job *job = user;
    Q_ASSERT(i < job->n_tensors);
    const synth_tensor *t = &job->tensors[i];
    const int64_t n_rows = t->ne[1] * t->ne[2] * t->ne[3];
    uint64_t state = synth_stream(job->seed, 0x7e5ull, i, 0);
    if (t->ne[1] == 1) {
        /* A norm: gains near 1 so activations keep their scale through the layers. */
        float *v = job->scratch;
        for (int64_t k = 0; k < t->ne[0]; k++)
            v[k] = 1.0f + SYNTH_NORM_NOISE * (float)(2.0 * synth_uniform(&state) - 1.0);
        Q_ASSERT(nbytes == q_row_size(t->type, t->ne[0]));
        q_type_get(t->type)->from_float(v, dst, t->ne[0]);
        return Q_OK;
    }
    const synth_pool *p = synth_pool_get(job, t->type, t->ne[0]);
    Q_ASSERT(nbytes == p->row_size * (size_t)n_rows);
    uint8_t *out = dst;
    for (int64_t r = 0; r < n_rows; r++)
        memcpy(out + (size_t)r * p->row_size, p->rows + (synth_next(&state) % SYNTH_POOL_ROWS) * p->row_size,
               p->row_size);
    (void)err;
    return Q_OK;
}

/* ---- key/values ------------------------------------------------------------------- */

static void synth_set_u32(gguf_writer *w, const char *arch, const char *suffix, uint32_t v) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    gguf_writer_set_u32(w, key, v);
}

static void synth_set_f32(gguf_writer *w, const char *arch, const char *suffix, float v) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    gguf_writer_set_f32(w, key, v);
}

/* Keys in the order llama.cpp's converter writes them: general, hyperparameters, file
 * type, tokenizer, quantization version. */
static q_status synth_set_kvs(gguf_writer *w, const q_synth_shape *s, q_quant_target tg, const gguf_file *vocab,
                              uint64_t n_vocab, q_error *err) {
    const char *a = s->arch;
    char name[128];
    snprintf(name, sizeof name, "synth %s %s", s->name, q_ftype_name(tg.ftype));
    gguf_writer_set_str(w, "general.architecture", a);
    gguf_writer_set_str(w, "general.name", name);
    synth_set_u32(w, a, "vocab_size", (uint32_t)n_vocab);
    synth_set_u32(w, a, "context_length", s->n_ctx);
    synth_set_u32(w, a, "embedding_length", s->n_embd);
    synth_set_u32(w, a, "block_count", s->n_layer);
    synth_set_u32(w, a, "feed_forward_length", s->n_ff);
    synth_set_u32(w, a, "rope.dimension_count", s->n_embd / s->n_head);
    synth_set_u32(w, a, "attention.head_count", s->n_head);
    synth_set_u32(w, a, "attention.head_count_kv", s->n_head_kv);
    synth_set_f32(w, a, "rope.freq_base", s->rope_base);
    synth_set_f32(w, a, "attention.layer_norm_rms_epsilon", s->rms_eps);
    if (s->sliding_window) synth_set_u32(w, a, "attention.sliding_window", s->sliding_window);
    if (!strcmp(a, "granite")) {
        synth_set_f32(w, a, "embedding_scale", s->embedding_scale);
        synth_set_f32(w, a, "residual_scale", s->residual_scale);
        synth_set_f32(w, a, "attention.scale", s->attention_scale);
        synth_set_f32(w, a, "logit_scale", s->logit_scale);
    }
    gguf_writer_set_u32(w, "general.file_type", (uint32_t)tg.ftype);
    for (uint64_t i = 0; i < vocab->n_kv; i++) {
        const gguf_kv *kv = &vocab->kv[i];
        if (kv->key.len > 10 && !memcmp(kv->key.ptr, "tokenizer.", 10)) {
            q_status st = gguf_writer_set_value(w, kv->key, &kv->val, err);
            if (st != Q_OK) return st;
        }
    }
    gguf_writer_set_u32(w, "general.quantization_version", 2);   /* GGML_QNT_VERSION */
    return Q_OK;
}

/* ---- entry point ------------------------------------------------------------------ */

q_status q_synth_write(const char *out_path, const q_synth_params *p, q_synth_stats *stats, q_error *err) {
    Q_ASSERT(out_path && p && p->shape && p->vocab_path);
    const q_synth_shape *s = p->shape;
    Q_ASSERT(s->n_head > 0 && s->n_head_kv > 0 && s->n_embd % s->n_head == 0 && s->n_head % s->n_head_kv == 0);
    if (!q_ftype_name(p->target.ftype))
        return q_fail(err, Q_ERR_INVALID_ARG, "unsupported file type %d", (int)p->target.ftype);

    gguf_file *vocab = NULL;
    q_error verr;
    q_status st = gguf_open(p->vocab_path, &vocab, &verr);
    if (st != Q_OK) return q_fail(err, st, "vocab %s: %s", p->vocab_path, verr.msg);
    const gguf_value *tokens = gguf_get_arr(vocab, "tokenizer.ggml.tokens");
    if (!tokens || tokens->arr.type != GGUF_VT_STRING || tokens->arr.n == 0 || tokens->arr.n > INT32_MAX) {
        gguf_close(vocab);
        return q_fail(err, Q_ERR_FORMAT, "%s: no tokenizer (tokenizer.ggml.tokens string array)", p->vocab_path);
    }
    const uint64_t n_vocab = tokens->arr.n;

    synth_tensor *tensors = NULL;
    size_t n = 0;
    st = synth_plan(s, n_vocab, p->target, &tensors, &n, err);
    if (st != Q_OK) {
        gguf_close(vocab);
        return st;
    }

    gguf_writer *w = gguf_writer_new();
    st = synth_set_kvs(w, s, p->target, vocab, n_vocab, err);
    gguf_close(vocab);
    /* Planned tensors are well-formed by construction; a refusal still surfaces as a status. */
    for (size_t i = 0; st == Q_OK && i < n; i++) {
        uint32_t n_dims = tensors[i].ne[1] > 1 ? 2 : 1;
        st = gguf_writer_add_tensor(w, gguf_str_of(tensors[i].name), tensors[i].type, n_dims, tensors[i].ne, NULL, err);
    }
    if (st != Q_OK) {
        gguf_writer_free(w);
        free(tensors);
        return st;
    }

    synth_job job = { .tensors = tensors, .n_tensors = n, .seed = p->seed };
    uint64_t n_params = 0;
    for (size_t i = 0; i < n; i++) {
        job.max_ne0 = Q_MAX(job.max_ne0, tensors[i].ne[0]);
        n_params += (uint64_t)(tensors[i].ne[0] * tensors[i].ne[1]);
    }
    job.threads = pool_create(p->n_threads);
    job.scratch = q_xmalloc((size_t)pool_n_threads(job.threads) * (size_t)job.max_ne0 * sizeof(float));

    st = gguf_writer_write(w, out_path, synth_fill, &job, err);

    for (size_t i = 0; i < job.n_pools; i++) free(job.pools[i].rows);
    free(job.scratch);
    pool_free(job.threads);
    gguf_writer_free(w);
    free(tensors);
    if (st != Q_OK) return st;

    if (stats) {
        struct stat sb;
        stats->n_vocab = n_vocab;
        stats->n_params = n_params;
        stats->n_tensors = n;
        stats->out_size = stat(out_path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    }
    return Q_OK;
}
