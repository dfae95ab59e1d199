/* types.c — the type-traits table: one row per assigned ggml type id, with ggml's name,
 * block size, bytes per block, and the reference converters where Quarrel has them.
 *
 * Rows are designated initializers indexed by q_type, so adding a type is adding a row.
 * Block sizes and bytes per block are ggml's (ggml-common.h): they must match for real
 * GGUF files to validate. A NULL to_float means "described, not computable yet".
 * Not here: the converters themselves (src/tensor/quants/, src/tensor/fp16.c).
 * Everything is static; nothing allocates. */
#include <strings.h>

#include "core/base.h"
#include "quarrel/types.h"
#include "tensor/quants/quants.h"

#define ROW(n, bs, ts, q, fn) { .name = (n), .blck_size = (bs), .type_size = (ts), \
    .is_quantized = (q), .to_float = quant_##fn##_to_float, .from_float = quant_##fn##_from_float }
#define ROW_DESCRIBED(n, bs, ts, q) { .name = (n), .blck_size = (bs), .type_size = (ts), \
    .is_quantized = (q), .to_float = NULL, .from_float = NULL }

static const q_type_traits q_type_traits_table[Q_TYPE_COUNT] = {
    [Q_TYPE_F32]     = ROW("f32",            1,   4, false, f32),
    [Q_TYPE_F16]     = ROW("f16",            1,   2, false, f16),
    [Q_TYPE_Q4_0]    = ROW("q4_0",          32,  18, true,  q4_0),
    [Q_TYPE_Q4_1]    = ROW("q4_1",          32,  20, true,  q4_1),
    [Q_TYPE_Q5_0]    = ROW("q5_0",          32,  22, true,  q5_0),
    [Q_TYPE_Q5_1]    = ROW("q5_1",          32,  24, true,  q5_1),
    [Q_TYPE_Q8_0]    = ROW("q8_0",          32,  34, true,  q8_0),
    [Q_TYPE_Q8_1]    = ROW("q8_1",          32,  36, true,  q8_1),
    [Q_TYPE_Q2_K]    = ROW_DESCRIBED("q2_K",    256,  84, true),
    [Q_TYPE_Q3_K]    = ROW_DESCRIBED("q3_K",    256, 110, true),
    [Q_TYPE_Q4_K]    = ROW_DESCRIBED("q4_K",    256, 144, true),
    [Q_TYPE_Q5_K]    = ROW_DESCRIBED("q5_K",    256, 176, true),
    [Q_TYPE_Q6_K]    = ROW_DESCRIBED("q6_K",    256, 210, true),
    [Q_TYPE_Q8_K]    = ROW_DESCRIBED("q8_K",    256, 292, true),
    [Q_TYPE_IQ2_XXS] = ROW_DESCRIBED("iq2_xxs", 256,  66, true),
    [Q_TYPE_IQ2_XS]  = ROW_DESCRIBED("iq2_xs",  256,  74, true),
    [Q_TYPE_IQ3_XXS] = ROW_DESCRIBED("iq3_xxs", 256,  98, true),
    [Q_TYPE_IQ1_S]   = ROW_DESCRIBED("iq1_s",   256,  50, true),
    [Q_TYPE_IQ4_NL]  = ROW_DESCRIBED("iq4_nl",   32,  18, true),
    [Q_TYPE_IQ3_S]   = ROW_DESCRIBED("iq3_s",   256, 110, true),
    [Q_TYPE_IQ2_S]   = ROW_DESCRIBED("iq2_s",   256,  82, true),
    [Q_TYPE_IQ4_XS]  = ROW_DESCRIBED("iq4_xs",  256, 136, true),
    [Q_TYPE_I8]      = ROW_DESCRIBED("i8",        1,   1, false),
    [Q_TYPE_I16]     = ROW_DESCRIBED("i16",       1,   2, false),
    [Q_TYPE_I32]     = ROW_DESCRIBED("i32",       1,   4, false),
    [Q_TYPE_I64]     = ROW_DESCRIBED("i64",       1,   8, false),
    [Q_TYPE_F64]     = ROW_DESCRIBED("f64",       1,   8, false),
    [Q_TYPE_IQ1_M]   = ROW_DESCRIBED("iq1_m",   256,  56, true),
    [Q_TYPE_BF16]    = ROW("bf16",           1,   2, false, bf16),
    [Q_TYPE_TQ1_0]   = ROW_DESCRIBED("tq1_0",   256,  54, true),
    [Q_TYPE_TQ2_0]   = ROW_DESCRIBED("tq2_0",   256,  66, true),
    [Q_TYPE_MXFP4]   = ROW_DESCRIBED("mxfp4",    32,  17, true),
};

const q_type_traits *q_type_get(uint32_t t) {
    if (t >= Q_TYPE_COUNT || q_type_traits_table[t].name == NULL) return NULL;
    return &q_type_traits_table[t];
}

const char *q_type_name(q_type t) {
    const q_type_traits *tr = q_type_get((uint32_t)t);
    return tr ? tr->name : "?";
}

int q_type_from_name(const char *name) {
    if (name == NULL) return -1;
    for (int t = 0; t < Q_TYPE_COUNT; t++) {
        const char *n = q_type_traits_table[t].name;
        if (n != NULL && strcasecmp(n, name) == 0) return t;
    }
    return -1;
}

size_t q_row_size(q_type t, int64_t ne0) {
    const q_type_traits *tr = q_type_get((uint32_t)t);
    Q_ASSERT(tr != NULL);
    Q_ASSERT(ne0 >= 0 && ne0 % tr->blck_size == 0);
    return tr->type_size * (size_t)(ne0 / tr->blck_size);
}
