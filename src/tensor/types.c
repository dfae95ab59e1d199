/* types.c — the type-traits table: one row per assigned ggml type id, with ggml's name,
 * block size, bytes per block, and the reference converters where Quarrel has them.
 *
 * Rows are designated initializers indexed by q_type, so adding a type is adding a row.
 * Block sizes and bytes per block are ggml's (ggml-common.h): they must match for real
 * GGUF files to validate. CONV rows have converters, DESC rows are described only (NULL to_float and
 * from_float). A NULL to_float means "described, not computable yet".
 * Not here: the converters themselves (src/tensor/quants/, src/tensor/fp16.c).
 * Everything is static; nothing allocates. */
#include <strings.h>

#include "core/base.h"
#include "quarrel/types.h"
#include "tensor/quants/quants.h"

#define CONV(n, bs, ts, q, fn) { .name = (n), .blck_size = (bs), .type_size = (ts), \
    .is_quantized = (q), .to_float = quant_##fn##_to_float, .from_float = quant_##fn##_from_float }
#define DESC(n, bs, ts, q) { .name = (n), .blck_size = (bs), .type_size = (ts), \
    .is_quantized = (q), .to_float = NULL, .from_float = NULL }

static const q_type_traits q_type_traits_table[Q_TYPE_COUNT] = {
    [Q_TYPE_F32]     = CONV("f32",       1,   4, false, f32),
    [Q_TYPE_F16]     = CONV("f16",       1,   2, false, f16),
    [Q_TYPE_Q4_0]    = CONV("q4_0",     32,  18, true,  q4_0),
    [Q_TYPE_Q4_1]    = CONV("q4_1",     32,  20, true,  q4_1),
    [Q_TYPE_Q5_0]    = CONV("q5_0",     32,  22, true,  q5_0),
    [Q_TYPE_Q5_1]    = CONV("q5_1",     32,  24, true,  q5_1),
    [Q_TYPE_Q8_0]    = CONV("q8_0",     32,  34, true,  q8_0),
    [Q_TYPE_Q8_1]    = CONV("q8_1",     32,  36, true,  q8_1),
    [Q_TYPE_Q2_K]    = CONV("q2_K",    256,  84, true,  q2_K),
    [Q_TYPE_Q3_K]    = CONV("q3_K",    256, 110, true,  q3_K),
    [Q_TYPE_Q4_K]    = CONV("q4_K",    256, 144, true,  q4_K),
    [Q_TYPE_Q5_K]    = CONV("q5_K",    256, 176, true,  q5_K),
    [Q_TYPE_Q6_K]    = CONV("q6_K",    256, 210, true,  q6_K),
    [Q_TYPE_Q8_K]    = CONV("q8_K",    256, 292, true,  q8_K),
    [Q_TYPE_IQ2_XXS] = DESC("iq2_xxs", 256,  66, true),
    [Q_TYPE_IQ2_XS]  = DESC("iq2_xs",  256,  74, true),
    [Q_TYPE_IQ3_XXS] = DESC("iq3_xxs", 256,  98, true),
    [Q_TYPE_IQ1_S]   = DESC("iq1_s",   256,  50, true),
    [Q_TYPE_IQ4_NL]  = CONV("iq4_nl",   32,  18, true,  iq4_nl),
    [Q_TYPE_IQ3_S]   = DESC("iq3_s",   256, 110, true),
    [Q_TYPE_IQ2_S]   = DESC("iq2_s",   256,  82, true),
    [Q_TYPE_IQ4_XS]  = DESC("iq4_xs",  256, 136, true),
    [Q_TYPE_I8]      = DESC("i8",        1,   1, false),
    [Q_TYPE_I16]     = DESC("i16",       1,   2, false),
    [Q_TYPE_I32]     = DESC("i32",       1,   4, false),
    [Q_TYPE_I64]     = DESC("i64",       1,   8, false),
    [Q_TYPE_F64]     = DESC("f64",       1,   8, false),
    [Q_TYPE_IQ1_M]   = DESC("iq1_m",   256,  56, true),
    [Q_TYPE_BF16]    = CONV("bf16",      1,   2, false, bf16),
    [Q_TYPE_TQ1_0]   = DESC("tq1_0",   256,  54, true),
    [Q_TYPE_TQ2_0]   = DESC("tq2_0",   256,  66, true),
    [Q_TYPE_MXFP4]   = CONV("mxfp4",    32,  17, true,  mxfp4),
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
