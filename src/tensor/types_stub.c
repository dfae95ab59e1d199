/* types_stub.c — TEMPORARY stand-in for src/tensor/types.c (quants branch) so the GGUF
 * module can validate block sizes before that branch lands. Block sizes and bytes per
 * block are ggml's; no conversions (to_float/from_float NULL). Delete on merging main. */
#include <strings.h>
#include <string.h>

#include "core/base.h"
#include "quarrel/types.h"

#define ROW(id, nm, blck, bytes, q) [id] = { .name = nm, .blck_size = blck, .type_size = bytes, .is_quantized = q }

static const q_type_traits stub_traits[Q_TYPE_COUNT] = {
    ROW(Q_TYPE_F32, "f32", 1, 4, false),         ROW(Q_TYPE_F16, "f16", 1, 2, false),
    ROW(Q_TYPE_Q4_0, "q4_0", 32, 18, true),       ROW(Q_TYPE_Q4_1, "q4_1", 32, 20, true),
    ROW(Q_TYPE_Q5_0, "q5_0", 32, 22, true),       ROW(Q_TYPE_Q5_1, "q5_1", 32, 24, true),
    ROW(Q_TYPE_Q8_0, "q8_0", 32, 34, true),       ROW(Q_TYPE_Q8_1, "q8_1", 32, 36, true),
    ROW(Q_TYPE_Q2_K, "q2_K", 256, 84, true),      ROW(Q_TYPE_Q3_K, "q3_K", 256, 110, true),
    ROW(Q_TYPE_Q4_K, "q4_K", 256, 144, true),     ROW(Q_TYPE_Q5_K, "q5_K", 256, 176, true),
    ROW(Q_TYPE_Q6_K, "q6_K", 256, 210, true),     ROW(Q_TYPE_Q8_K, "q8_K", 256, 292, true),
    ROW(Q_TYPE_IQ2_XXS, "iq2_xxs", 256, 66, true), ROW(Q_TYPE_IQ2_XS, "iq2_xs", 256, 74, true),
    ROW(Q_TYPE_IQ3_XXS, "iq3_xxs", 256, 98, true), ROW(Q_TYPE_IQ1_S, "iq1_s", 256, 50, true),
    ROW(Q_TYPE_IQ4_NL, "iq4_nl", 32, 18, true),   ROW(Q_TYPE_IQ3_S, "iq3_s", 256, 110, true),
    ROW(Q_TYPE_IQ2_S, "iq2_s", 256, 82, true),    ROW(Q_TYPE_IQ4_XS, "iq4_xs", 256, 136, true),
    ROW(Q_TYPE_I8, "i8", 1, 1, false),            ROW(Q_TYPE_I16, "i16", 1, 2, false),
    ROW(Q_TYPE_I32, "i32", 1, 4, false),          ROW(Q_TYPE_I64, "i64", 1, 8, false),
    ROW(Q_TYPE_F64, "f64", 1, 8, false),          ROW(Q_TYPE_IQ1_M, "iq1_m", 256, 56, true),
    ROW(Q_TYPE_BF16, "bf16", 1, 2, false),        ROW(Q_TYPE_TQ1_0, "tq1_0", 256, 54, true),
    ROW(Q_TYPE_TQ2_0, "tq2_0", 256, 66, true),    ROW(Q_TYPE_MXFP4, "mxfp4", 32, 17, true),
};

const q_type_traits *q_type_get(uint32_t t) {
    return t < Q_TYPE_COUNT && stub_traits[t].name ? &stub_traits[t] : NULL;
}

const char *q_type_name(q_type t) {
    const q_type_traits *tr = q_type_get((uint32_t)t);
    return tr ? tr->name : "?";
}

int q_type_from_name(const char *name) {
    for (int t = 0; t < Q_TYPE_COUNT; t++)
        if (stub_traits[t].name && !strcasecmp(stub_traits[t].name, name)) return t;
    return -1;
}

size_t q_row_size(q_type t, int64_t ne0) {
    const q_type_traits *tr = q_type_get((uint32_t)t);
    Q_ASSERT(tr && ne0 % tr->blck_size == 0);
    return (size_t)(ne0 / tr->blck_size) * tr->type_size;
}
