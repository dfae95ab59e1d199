/* mix.c — which type each tensor gets under a quantization mix (llama.cpp ftype).
 *
 * The facts are llama.cpp's (src/llama-quant.cpp, llama_tensor_get_type, as of the
 * b9553 reference that made the goldens); the form is ours: tables, read top to bottom.
 *
 *  1. Quantizable at all? Only tensors with >= 2 dims (trailing 1s not counted) whose
 *     name ends in "weight" and matches no row of never_quantized[] (norms, MoE
 *     routers, conv kernels, position/token-type embeddings, ...). Others keep their type.
 *  2. Base type: the ftype's (Q4_K for Q4_K_M). F32/F16/BF16 targets stop here.
 *  3. Category from the name (cat_patterns[]): output, token_embd, attn_v (with attn_qkv
 *     and attn_kv_b), attn_k, attn_q, attn_output, ffn_up, ffn_gate, ffn_down, other.
 *     Without an output.weight tensor the embeddings are tied and token_embd counts as
 *     output.
 *  4. Unless pure, the first matching row of one rule table decides:
 *       output_rules[]  for output (and tied token_embd),
 *       moe_rules[]     for every other tensor of MXFP4_MOE,
 *       main_rules[]    otherwise (a row = category, ftype, up to two conditions),
 *     then post_rules[] adjust attn_v (70B and 8-expert bumps). The layer conditions
 *     read (i, n): for attn_v the running count of attn_v-like tensors seen so far and
 *     their total; for ffn_* the layer parsed from "blk.N." in MoE models (n_expert > 1)
 *     or else a running count per category, against n_layer. The counters advance only
 *     for tensors that reach the main rules, as in llama.cpp.
 *  5. Row length: if ne0 is not a multiple of the chosen type's block, fallback[] gives
 *     a 32-block type (Q4_K -> Q5_0, Q6_K -> Q8_0, ...), and F16 if that does not
 *     divide either. Where llama.cpp has no fallback (the 32-block types themselves,
 *     e.g. Q8_0 on a 172-wide row) it refuses the model; we write F16 instead.
 *
 * Differences from the older b4748 reference (no golden exercises them): b4748 fell
 * back from Q2_K/Q3_K to IQ4_NL (now Q4_0) and gave attn_qkv its own rules (Q4_K_M ->
 * Q5_K, Q5_K_M -> Q6_K, Q3_K_M/L -> Q4_K) instead of attn_v's. */
#include "quant/mix.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/base.h"

/* ---- ftypes ----------------------------------------------------------------------- */

typedef struct mix_ftype_info {
    const char *name;   /* llama-quantize's name; NULL = not supported */
    q_type      base;   /* type of the ordinary weight matrices */
} mix_ftype_info;

static const mix_ftype_info ftype_info[Q_FTYPE_COUNT] = {
    [Q_FTYPE_ALL_F32]          = { "F32",       Q_TYPE_F32    },
    [Q_FTYPE_MOSTLY_F16]       = { "F16",       Q_TYPE_F16    },
    [Q_FTYPE_MOSTLY_BF16]      = { "BF16",      Q_TYPE_BF16   },
    [Q_FTYPE_MOSTLY_Q4_0]      = { "Q4_0",      Q_TYPE_Q4_0   },
    [Q_FTYPE_MOSTLY_Q4_1]      = { "Q4_1",      Q_TYPE_Q4_1   },
    [Q_FTYPE_MOSTLY_Q5_0]      = { "Q5_0",      Q_TYPE_Q5_0   },
    [Q_FTYPE_MOSTLY_Q5_1]      = { "Q5_1",      Q_TYPE_Q5_1   },
    [Q_FTYPE_MOSTLY_Q8_0]      = { "Q8_0",      Q_TYPE_Q8_0   },
    [Q_FTYPE_MOSTLY_Q2_K]      = { "Q2_K",      Q_TYPE_Q2_K   },
    [Q_FTYPE_MOSTLY_Q3_K_S]    = { "Q3_K_S",    Q_TYPE_Q3_K   },
    [Q_FTYPE_MOSTLY_Q3_K_M]    = { "Q3_K_M",    Q_TYPE_Q3_K   },
    [Q_FTYPE_MOSTLY_Q3_K_L]    = { "Q3_K_L",    Q_TYPE_Q3_K   },
    [Q_FTYPE_MOSTLY_Q4_K_S]    = { "Q4_K_S",    Q_TYPE_Q4_K   },
    [Q_FTYPE_MOSTLY_Q4_K_M]    = { "Q4_K_M",    Q_TYPE_Q4_K   },
    [Q_FTYPE_MOSTLY_Q5_K_S]    = { "Q5_K_S",    Q_TYPE_Q5_K   },
    [Q_FTYPE_MOSTLY_Q5_K_M]    = { "Q5_K_M",    Q_TYPE_Q5_K   },
    [Q_FTYPE_MOSTLY_Q6_K]      = { "Q6_K",      Q_TYPE_Q6_K   },
    [Q_FTYPE_MOSTLY_IQ4_NL]    = { "IQ4_NL",    Q_TYPE_IQ4_NL },
    [Q_FTYPE_MOSTLY_MXFP4_MOE] = { "MXFP4_MOE", Q_TYPE_MXFP4  },
};

/* Plain type names without an ftype of their own: pure targets. The ftype is what
 * llama-quantize --pure writes for the same tensors. */
static const struct { const char *name; q_ftype ftype; } pure_names[] = {
    { "Q3_K",  Q_FTYPE_MOSTLY_Q3_K_M    },
    { "Q4_K",  Q_FTYPE_MOSTLY_Q4_K_M    },
    { "Q5_K",  Q_FTYPE_MOSTLY_Q5_K_M    },
    { "MXFP4", Q_FTYPE_MOSTLY_MXFP4_MOE },
};

const char *q_ftype_name(q_ftype f) {
    return (unsigned)f < Q_FTYPE_COUNT ? ftype_info[f].name : NULL;
}

q_type q_ftype_base_type(q_ftype f) {
    return q_ftype_name(f) ? ftype_info[f].base : Q_TYPE_COUNT;
}

bool q_quant_target_parse(const char *name, q_quant_target *out) {
    if (!name) return false;
    for (int f = 0; f < Q_FTYPE_COUNT; f++) {
        if (ftype_info[f].name && !strcasecmp(name, ftype_info[f].name)) {
            *out = (q_quant_target){ .ftype = (q_ftype)f, .pure = false };
            return true;
        }
    }
    for (size_t i = 0; i < Q_ARRAY_LEN(pure_names); i++) {
        if (!strcasecmp(name, pure_names[i].name)) {
            *out = (q_quant_target){ .ftype = pure_names[i].ftype, .pure = true };
            return true;
        }
    }
    return false;
}

/* ---- step 1: quantizable at all ------------------------------------------------- */

typedef enum mix_match { MIX_MATCH_EXACT, MIX_MATCH_SUBSTR } mix_match;

typedef struct mix_pattern {
    mix_match   how;
    const char *pat;
} mix_pattern;

static const mix_pattern never_quantized[] = {
    { MIX_MATCH_SUBSTR, "_norm.weight" },            /* all norms */
    { MIX_MATCH_SUBSTR, "ffn_gate_inp.weight" },     /* MoE routers */
    { MIX_MATCH_SUBSTR, "ffn_gate_tid2eid.weight" }, /* token -> expert table (i32) */
    { MIX_MATCH_SUBSTR, "altup" },                   /* tiny gemma3n matrices */
    { MIX_MATCH_SUBSTR, "laurel" },
    { MIX_MATCH_SUBSTR, "per_layer_model_proj" },
    { MIX_MATCH_EXACT,  "position_embd.weight" },    /* learned positions (bert) */
    { MIX_MATCH_EXACT,  "token_types.weight" },      /* token-type embeddings (bert) */
    { MIX_MATCH_SUBSTR, "ssm_conv1d" },              /* mamba conv kernels */
    { MIX_MATCH_SUBSTR, "shortconv.conv.weight" },
    { MIX_MATCH_SUBSTR, "indexer.k_proj.weight" },
    { MIX_MATCH_SUBSTR, "indexer.q_proj.weight" },
    { MIX_MATCH_SUBSTR, "time_mix_first.weight" },   /* rwkv's small 2-D weights */
    { MIX_MATCH_SUBSTR, "time_mix_w0.weight" },
    { MIX_MATCH_SUBSTR, "time_mix_w1.weight" },
    { MIX_MATCH_SUBSTR, "time_mix_w2.weight" },
    { MIX_MATCH_SUBSTR, "time_mix_v0.weight" },
    { MIX_MATCH_SUBSTR, "time_mix_v1.weight" },
    { MIX_MATCH_SUBSTR, "time_mix_v2.weight" },
    { MIX_MATCH_SUBSTR, "time_mix_a0.weight" },
    { MIX_MATCH_SUBSTR, "time_mix_a1.weight" },
    { MIX_MATCH_SUBSTR, "time_mix_a2.weight" },
    { MIX_MATCH_SUBSTR, "time_mix_g1.weight" },
    { MIX_MATCH_SUBSTR, "time_mix_g2.weight" },
    { MIX_MATCH_SUBSTR, "time_mix_decay_w1.weight" },
    { MIX_MATCH_SUBSTR, "time_mix_decay_w2.weight" },
    { MIX_MATCH_SUBSTR, "time_mix_lerp_fused.weight" },
    { MIX_MATCH_SUBSTR, "attn_rel_b.weight" },       /* T5 relative position bias */
    { MIX_MATCH_SUBSTR, ".position_embd" },          /* multimodal towers */
    { MIX_MATCH_SUBSTR, "sam.pos_embd" },
    { MIX_MATCH_SUBSTR, "sam.neck." },
    { MIX_MATCH_SUBSTR, "sam.net_" },
    { MIX_MATCH_SUBSTR, ".rel_pos" },
    { MIX_MATCH_SUBSTR, ".patch_embd" },
    { MIX_MATCH_SUBSTR, ".patch_merger" },
    { MIX_MATCH_SUBSTR, "a.rvq.codebook" },
    { MIX_MATCH_SUBSTR, "mm.a.code_embd" },
};

static bool mix_pattern_match(const mix_pattern *p, const char *name) {
    return p->how == MIX_MATCH_EXACT ? strcmp(name, p->pat) == 0 : strstr(name, p->pat) != NULL;
}

/* ggml_n_dims: trailing dimensions of size 1 do not count. */
static int mix_n_dims(const int64_t ne[4]) {
    for (int d = 3; d >= 1; d--)
        if (ne[d] > 1) return d + 1;
    return 1;
}

bool mix_tensor_quantizable(const mix_tensor *t) {
    if (mix_n_dims(t->ne) < 2) return false;
    size_t len = strlen(t->name);
    if (len < 6 || strcmp(t->name + len - 6, "weight") != 0) return false;
    for (size_t i = 0; i < Q_ARRAY_LEN(never_quantized); i++)
        if (mix_pattern_match(&never_quantized[i], t->name)) return false;
    return true;
}

/* ---- step 3: categories --------------------------------------------------------- */

typedef enum mix_cat {
    MIX_CAT_OTHER,
    MIX_CAT_OUTPUT,
    MIX_CAT_TOKEN_EMBD,
    MIX_CAT_ATTN_V,       /* attn_v, attn_qkv, attn_kv_b: the quantization-sensitive V paths */
    MIX_CAT_ATTN_K,
    MIX_CAT_ATTN_Q,
    MIX_CAT_ATTN_OUTPUT,
    MIX_CAT_FFN_UP,
    MIX_CAT_FFN_GATE,
    MIX_CAT_FFN_DOWN,
    MIX_CAT_ANY,          /* rule wildcard, never a tensor's category */
} mix_cat;

/* First match wins. */
static const struct { mix_pattern p; mix_cat cat; } cat_patterns[] = {
    { { MIX_MATCH_EXACT,  "output.weight" },               MIX_CAT_OUTPUT },
    { { MIX_MATCH_EXACT,  "token_embd.weight" },           MIX_CAT_TOKEN_EMBD },
    { { MIX_MATCH_EXACT,  "per_layer_token_embd.weight" }, MIX_CAT_TOKEN_EMBD },
    { { MIX_MATCH_SUBSTR, "attn_qkv.weight" },             MIX_CAT_ATTN_V },
    { { MIX_MATCH_SUBSTR, "attn_kv_b.weight" },            MIX_CAT_ATTN_V },
    { { MIX_MATCH_SUBSTR, "attn_v.weight" },               MIX_CAT_ATTN_V },
    { { MIX_MATCH_SUBSTR, "attn_k.weight" },               MIX_CAT_ATTN_K },
    { { MIX_MATCH_SUBSTR, "attn_q.weight" },               MIX_CAT_ATTN_Q },
    { { MIX_MATCH_SUBSTR, "attn_output.weight" },          MIX_CAT_ATTN_OUTPUT },
    { { MIX_MATCH_SUBSTR, "ffn_up" },                      MIX_CAT_FFN_UP },
    { { MIX_MATCH_SUBSTR, "ffn_gate" },                    MIX_CAT_FFN_GATE },
    { { MIX_MATCH_SUBSTR, "ffn_down" },                    MIX_CAT_FFN_DOWN },
};

static mix_cat mix_category(const char *name) {
    for (size_t i = 0; i < Q_ARRAY_LEN(cat_patterns); i++)
        if (mix_pattern_match(&cat_patterns[i].p, name)) return cat_patterns[i].cat;
    return MIX_CAT_OTHER;
}

/* ---- step 4: rules -------------------------------------------------------------- */

typedef enum mix_cond {
    MIX_IF_ALWAYS = 0,
    MIX_IF_GQA_GE4,        /* n_head / n_head_kv >= 4 */
    MIX_IF_MORE_BITS,      /* use_more_bits(i, n): first/last eighth and every third layer between */
    MIX_IF_I_LT_2,
    MIX_IF_I_LT_4,
    MIX_IF_I_LT_N8,        /* i < n/8 */
    MIX_IF_I_LT_N16,       /* i < n/16 */
    MIX_IF_FALCON,
    MIX_IF_NOT_FALCON,
    MIX_IF_EXPERT8,        /* exactly 8 experts (Mixtral) */
    MIX_IF_NOT_EXPERT8,
    MIX_IF_70B,
    MIX_IF_ROW_NOT_BASE,   /* ne0 not a multiple of the base type's block */
    MIX_IF_EXPERTS_3D,     /* ne2 > 1: a stack of expert matrices */
} mix_cond;

#define MIX_ANY_FTYPE (-1)

typedef struct mix_rule {
    mix_cat  cat;
    int      ftype;        /* q_ftype, or MIX_ANY_FTYPE */
    mix_cond c1, c2;       /* both must hold */
    q_type   from;         /* post rules only: current type must be this (Q_TYPE_COUNT = any) */
    q_type   to;
} mix_rule;

/* Output matrix (and token_embd when tied to it). */
static const mix_rule output_rules[] = {
    { MIX_CAT_ANY, Q_FTYPE_MOSTLY_MXFP4_MOE, MIX_IF_ALWAYS,       MIX_IF_ALWAYS, Q_TYPE_COUNT, Q_TYPE_Q8_0 },
    { MIX_CAT_ANY, MIX_ANY_FTYPE,            MIX_IF_FALCON,       MIX_IF_ALWAYS, Q_TYPE_COUNT, Q_TYPE_Q8_0 },
    { MIX_CAT_ANY, MIX_ANY_FTYPE,            MIX_IF_ROW_NOT_BASE, MIX_IF_ALWAYS, Q_TYPE_COUNT, Q_TYPE_Q8_0 },
    { MIX_CAT_ANY, Q_FTYPE_MOSTLY_Q8_0,      MIX_IF_ALWAYS,       MIX_IF_ALWAYS, Q_TYPE_COUNT, Q_TYPE_Q8_0 },
    { MIX_CAT_ANY, MIX_ANY_FTYPE,            MIX_IF_ALWAYS,       MIX_IF_ALWAYS, Q_TYPE_COUNT, Q_TYPE_Q6_K },
};

/* MXFP4_MOE, every other tensor: expert stacks MXFP4, the rest Q8_0. */
static const mix_rule moe_rules[] = {
    { MIX_CAT_ANY, Q_FTYPE_MOSTLY_MXFP4_MOE, MIX_IF_EXPERTS_3D, MIX_IF_ALWAYS, Q_TYPE_COUNT, Q_TYPE_MXFP4 },
    { MIX_CAT_ANY, Q_FTYPE_MOSTLY_MXFP4_MOE, MIX_IF_ALWAYS,     MIX_IF_ALWAYS, Q_TYPE_COUNT, Q_TYPE_Q8_0  },
};

#define R(cat, ft, c1, c2, to) { MIX_CAT_##cat, ft, MIX_IF_##c1, MIX_IF_##c2, Q_TYPE_COUNT, Q_TYPE_##to }
#define F(x) Q_FTYPE_MOSTLY_##x

/* First row matching (category, ftype, c1 && c2) sets the type; no row: base type. */
static const mix_rule main_rules[] = {
    /* attn_v & co. */
    R(ATTN_V,      F(Q2_K),   GQA_GE4,    ALWAYS,     Q4_K),
    R(ATTN_V,      F(Q2_K),   ALWAYS,     ALWAYS,     Q3_K),
    R(ATTN_V,      F(Q3_K_M), I_LT_2,     ALWAYS,     Q5_K),
    R(ATTN_V,      F(Q3_K_M), ALWAYS,     ALWAYS,     Q4_K),
    R(ATTN_V,      F(Q3_K_L), ALWAYS,     ALWAYS,     Q5_K),
    R(ATTN_V,      F(IQ4_NL), GQA_GE4,    ALWAYS,     Q5_K),
    R(ATTN_V,      F(Q4_K_M), MORE_BITS,  ALWAYS,     Q6_K),
    R(ATTN_V,      F(Q5_K_M), MORE_BITS,  ALWAYS,     Q6_K),
    R(ATTN_V,      F(Q4_K_S), I_LT_4,     ALWAYS,     Q5_K),
    /* attn_k */
    R(ATTN_K,      MIX_ANY_FTYPE, EXPERT8, ALWAYS,    Q8_0),
    /* ffn_down */
    R(FFN_DOWN,    F(Q2_K),   ALWAYS,     ALWAYS,     Q3_K),
    R(FFN_DOWN,    F(Q3_K_M), I_LT_N16,   ALWAYS,     Q5_K),
    R(FFN_DOWN,    F(Q3_K_M), NOT_FALCON, ALWAYS,     Q4_K),
    R(FFN_DOWN,    F(Q3_K_M), MORE_BITS,  ALWAYS,     Q4_K),
    R(FFN_DOWN,    F(Q3_K_M), ALWAYS,     ALWAYS,     Q3_K),
    R(FFN_DOWN,    F(Q3_K_L), FALCON,     ALWAYS,     Q4_K),
    R(FFN_DOWN,    F(Q3_K_L), ALWAYS,     ALWAYS,     Q5_K),
    R(FFN_DOWN,    F(Q4_K_M), FALCON,     I_LT_N16,   Q6_K),
    R(FFN_DOWN,    F(Q4_K_M), FALCON,     MORE_BITS,  Q5_K),
    R(FFN_DOWN,    F(Q4_K_M), FALCON,     ALWAYS,     Q4_K),
    R(FFN_DOWN,    F(Q4_K_M), MORE_BITS,  ALWAYS,     Q6_K),
    R(FFN_DOWN,    F(IQ4_NL), I_LT_N8,    ALWAYS,     Q5_K),
    R(FFN_DOWN,    F(Q5_K_M), MORE_BITS,  ALWAYS,     Q6_K),
    R(FFN_DOWN,    F(Q4_K_S), NOT_FALCON, I_LT_N8,    Q5_K),
    /* attn_output */
    R(ATTN_OUTPUT, F(Q2_K),   NOT_FALCON, EXPERT8,    Q5_K),
    R(ATTN_OUTPUT, F(Q3_K_S), NOT_FALCON, EXPERT8,    Q5_K),
    R(ATTN_OUTPUT, F(Q3_K_M), NOT_FALCON, EXPERT8,    Q5_K),
    R(ATTN_OUTPUT, F(IQ4_NL), NOT_FALCON, EXPERT8,    Q5_K),
    R(ATTN_OUTPUT, F(Q4_K_S), NOT_FALCON, EXPERT8,    Q5_K),
    R(ATTN_OUTPUT, F(Q4_K_M), NOT_FALCON, EXPERT8,    Q5_K),
    R(ATTN_OUTPUT, F(Q2_K),   NOT_FALCON, ALWAYS,     Q3_K),
    R(ATTN_OUTPUT, F(Q3_K_M), NOT_FALCON, ALWAYS,     Q4_K),
    R(ATTN_OUTPUT, F(Q3_K_L), NOT_FALCON, NOT_EXPERT8, Q5_K),
    R(ATTN_OUTPUT, F(Q3_K_L), FALCON,     ALWAYS,     Q4_K),
};
#undef R
#undef F

/* Applied in order after the main rules, each on the type chosen so far. */
static const mix_rule post_rules[] = {
    /* 70B: 8 query heads share each V head, so V is 8x smaller than Q: more bits are cheap. */
    { MIX_CAT_ATTN_V, MIX_ANY_FTYPE, MIX_IF_70B,     MIX_IF_ALWAYS, Q_TYPE_Q3_K,  Q_TYPE_Q5_K },
    { MIX_CAT_ATTN_V, MIX_ANY_FTYPE, MIX_IF_70B,     MIX_IF_ALWAYS, Q_TYPE_Q4_K,  Q_TYPE_Q5_K },
    { MIX_CAT_ATTN_V, MIX_ANY_FTYPE, MIX_IF_EXPERT8, MIX_IF_ALWAYS, Q_TYPE_COUNT, Q_TYPE_Q8_0 },
};

/* ---- step 5: row-length fallback ------------------------------------------------ */

typedef struct mix_fallback { bool has; q_type to; } mix_fallback;

static const mix_fallback fallback[Q_TYPE_COUNT] = {
    [Q_TYPE_IQ1_S]   = { true, Q_TYPE_IQ4_NL },
    [Q_TYPE_IQ1_M]   = { true, Q_TYPE_IQ4_NL },
    [Q_TYPE_IQ2_XXS] = { true, Q_TYPE_IQ4_NL },
    [Q_TYPE_IQ2_XS]  = { true, Q_TYPE_IQ4_NL },
    [Q_TYPE_IQ2_S]   = { true, Q_TYPE_IQ4_NL },
    [Q_TYPE_IQ3_XXS] = { true, Q_TYPE_IQ4_NL },
    [Q_TYPE_IQ3_S]   = { true, Q_TYPE_IQ4_NL },
    [Q_TYPE_IQ4_XS]  = { true, Q_TYPE_IQ4_NL },
    [Q_TYPE_Q2_K]    = { true, Q_TYPE_Q4_0 },
    [Q_TYPE_Q3_K]    = { true, Q_TYPE_Q4_0 },
    [Q_TYPE_TQ1_0]   = { true, Q_TYPE_Q4_0 },
    [Q_TYPE_TQ2_0]   = { true, Q_TYPE_Q4_0 },
    [Q_TYPE_Q4_K]    = { true, Q_TYPE_Q5_0 },
    [Q_TYPE_Q5_K]    = { true, Q_TYPE_Q5_1 },
    [Q_TYPE_Q6_K]    = { true, Q_TYPE_Q8_0 },
};

/* ---- evaluation ----------------------------------------------------------------- */

typedef struct mix_ctx {
    const mix_model  *m;
    const mix_tensor *t;
    q_type            base;
    int               i, n;   /* layer position for the layer conditions */
} mix_ctx;

static int64_t mix_blck(q_type t) {
    const q_type_traits *tr = q_type_get(t);
    Q_ASSERT(tr != NULL);
    return tr->blck_size;
}

static bool mix_use_more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

typedef bool (*mix_cond_fn)(const mix_ctx *x);

static bool mix_if_always(const mix_ctx *x)       { (void)x; return true; }
static bool mix_if_gqa_ge4(const mix_ctx *x)      { return x->m->n_gqa >= 4; }
static bool mix_if_more_bits(const mix_ctx *x)    { return mix_use_more_bits(x->i, x->n); }
static bool mix_if_i_lt_2(const mix_ctx *x)       { return x->i < 2; }
static bool mix_if_i_lt_4(const mix_ctx *x)       { return x->i < 4; }
static bool mix_if_i_lt_n8(const mix_ctx *x)      { return x->i < x->n / 8; }
static bool mix_if_i_lt_n16(const mix_ctx *x)     { return x->i < x->n / 16; }
static bool mix_if_falcon(const mix_ctx *x)       { return x->m->is_falcon; }
static bool mix_if_not_falcon(const mix_ctx *x)   { return !x->m->is_falcon; }
static bool mix_if_expert8(const mix_ctx *x)      { return x->m->n_expert == 8; }
static bool mix_if_not_expert8(const mix_ctx *x)  { return x->m->n_expert != 8; }
static bool mix_if_70b(const mix_ctx *x)          { return x->m->is_70b; }
static bool mix_if_row_not_base(const mix_ctx *x) { return x->t->ne[0] % mix_blck(x->base) != 0; }
static bool mix_if_experts_3d(const mix_ctx *x)   { return x->t->ne[2] > 1; }

static const mix_cond_fn mix_conds[] = {
    [MIX_IF_ALWAYS]       = mix_if_always,
    [MIX_IF_GQA_GE4]      = mix_if_gqa_ge4,
    [MIX_IF_MORE_BITS]    = mix_if_more_bits,
    [MIX_IF_I_LT_2]       = mix_if_i_lt_2,
    [MIX_IF_I_LT_4]       = mix_if_i_lt_4,
    [MIX_IF_I_LT_N8]      = mix_if_i_lt_n8,
    [MIX_IF_I_LT_N16]     = mix_if_i_lt_n16,
    [MIX_IF_FALCON]       = mix_if_falcon,
    [MIX_IF_NOT_FALCON]   = mix_if_not_falcon,
    [MIX_IF_EXPERT8]      = mix_if_expert8,
    [MIX_IF_NOT_EXPERT8]  = mix_if_not_expert8,
    [MIX_IF_70B]          = mix_if_70b,
    [MIX_IF_ROW_NOT_BASE] = mix_if_row_not_base,
    [MIX_IF_EXPERTS_3D]   = mix_if_experts_3d,
};

static bool mix_cond_holds(mix_cond c, const mix_ctx *x) {
    Q_ASSERT((size_t)c < Q_ARRAY_LEN(mix_conds) && mix_conds[c] != NULL);
    return mix_conds[c](x);
}

static bool mix_rule_matches(const mix_rule *r, mix_cat cat, q_ftype ftype, q_type cur, const mix_ctx *x) {
    return (r->cat == MIX_CAT_ANY || r->cat == cat) && (r->ftype == MIX_ANY_FTYPE || r->ftype == (int)ftype) &&
           (r->from == Q_TYPE_COUNT || r->from == cur) && mix_cond_holds(r->c1, x) && mix_cond_holds(r->c2, x);
}

/* First matching row's type, or cur. */
static q_type mix_first(const mix_rule *rules, size_t n, mix_cat cat, q_ftype ftype, q_type cur,
                        const mix_ctx *x) {
    for (size_t i = 0; i < n; i++)
        if (mix_rule_matches(&rules[i], cat, ftype, cur, x)) return rules[i].to;
    return cur;
}

typedef struct mix_counters {
    int n_attn_v, i_attn_v;
    int i_ffn_down, i_ffn_gate, i_ffn_up;
} mix_counters;

/* (i, n) of a ffn tensor: its block number in MoE models (expert tensors need not be
 * consecutive), else the running count of its kind. */
static q_status mix_layer_of(const mix_model *m, const char *name, int counter, int *i, q_error *err) {
    *i = counter;
    if (m->n_expert > 1) {
        int layer;
        if (sscanf(name, "blk.%d.", &layer) != 1)
            return q_fail(err, Q_ERR_FORMAT, "cannot determine the layer of tensor %s", name);
        if (layer < 0 || layer >= m->n_layer)
            return q_fail(err, Q_ERR_FORMAT, "tensor %s: layer %d outside [0, %d)", name, layer, m->n_layer);
        *i = layer;
    }
    return Q_OK;
}

static q_status mix_choose(const mix_model *m, q_quant_target tg, const mix_tensor *t, bool tied,
                           mix_counters *cnt, q_type *out, bool *fell_back, q_error *err) {
    *fell_back = false;
    if (!mix_tensor_quantizable(t)) { *out = t->type; return Q_OK; }
    const q_type base = ftype_info[tg.ftype].base;
    const q_type_traits *bt = q_type_get(base);
    Q_ASSERT(bt != NULL);
    if (!bt->is_quantized) { *out = base; return Q_OK; }

    q_type ty = base;
    if (!tg.pure) {
        mix_cat cat = mix_category(t->name);
        mix_ctx x = { .m = m, .t = t, .base = base };
        if (cat == MIX_CAT_OUTPUT || (tied && cat == MIX_CAT_TOKEN_EMBD)) {
            ty = mix_first(output_rules, Q_ARRAY_LEN(output_rules), MIX_CAT_OUTPUT, tg.ftype, ty, &x);
        } else if (tg.ftype == Q_FTYPE_MOSTLY_MXFP4_MOE) {
            ty = mix_first(moe_rules, Q_ARRAY_LEN(moe_rules), cat, tg.ftype, ty, &x);
        } else {
            int *counter = cat == MIX_CAT_ATTN_V   ? &cnt->i_attn_v
                         : cat == MIX_CAT_FFN_DOWN ? &cnt->i_ffn_down
                         : cat == MIX_CAT_FFN_GATE ? &cnt->i_ffn_gate
                         : cat == MIX_CAT_FFN_UP   ? &cnt->i_ffn_up : NULL;
            if (cat == MIX_CAT_ATTN_V) {
                x.i = cnt->i_attn_v;
                x.n = cnt->n_attn_v;
            } else if (counter) {
                q_status s = mix_layer_of(m, t->name, *counter, &x.i, err);
                if (s != Q_OK) return s;
                x.n = m->n_layer;
            }
            ty = mix_first(main_rules, Q_ARRAY_LEN(main_rules), cat, tg.ftype, ty, &x);
            for (size_t i = 0; i < Q_ARRAY_LEN(post_rules); i++)
                if (mix_rule_matches(&post_rules[i], cat, tg.ftype, ty, &x)) ty = post_rules[i].to;
            if (counter) ++*counter;
        }
    }

    if (t->ne[0] % mix_blck(ty) != 0) {
        *fell_back = true;
        q_type fb = (unsigned)ty < Q_TYPE_COUNT && fallback[ty].has ? fallback[ty].to : Q_TYPE_F16;
        ty = t->ne[0] % mix_blck(fb) == 0 ? fb : Q_TYPE_F16;
    }
    *out = ty;
    return Q_OK;
}

q_status mix_plan(const mix_model *m, q_quant_target tg, const mix_tensor *tensors, size_t n, q_type *types,
                  uint64_t *n_fallback, q_error *err) {
    if (!q_ftype_name(tg.ftype))
        return q_fail(err, Q_ERR_INVALID_ARG, "unsupported file type %d", (int)tg.ftype);
    mix_counters cnt = { 0 };
    bool tied = true;   /* until an output.weight shows up */
    for (size_t i = 0; i < n; i++) {
        mix_cat cat = mix_category(tensors[i].name);
        if (cat == MIX_CAT_ATTN_V) cnt.n_attn_v++;
        if (cat == MIX_CAT_OUTPUT) tied = false;
    }
    uint64_t n_fb = 0;
    for (size_t i = 0; i < n; i++) {
        bool fb;
        q_status s = mix_choose(m, tg, &tensors[i], tied, &cnt, &types[i], &fb, err);
        if (s != Q_OK) return s;
        n_fb += fb;
    }
    if (n_fallback) *n_fallback = n_fb;
    return Q_OK;
}
