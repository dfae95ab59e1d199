/* avx512_check.h — one case of the tests/test_avx512_*.c checks: a tile of the emulated
 * AVX-512 set (SIMDe build, names suffixed _emu) against the scalar reference vec_dot,
 * bit for bit, on nr rows x nc tokens. Header-only; needs cmocka included first. */
#ifndef QUARREL_TESTS_AVX512_CHECK_H
#define QUARREL_TESTS_AVX512_CHECK_H

#include <stdint.h>
#include <string.h>

#include "cpu/backend.h"

/* The case's operands: the tile reads its weights at w_tile (its layout), the reference
 * row r at w_ref + r * ws (row-major); activation row c at a + c * as; outputs y[c * ldy +
 * r] with ldy > nr, so the check also sees a write outside the tile (cap floats of y and
 * want are compared, both prefilled with a sentinel). */
typedef struct avx512_case {
    const char   *what;   /* the type, for the message */
    q_gemm_fn     tile;
    q_vec_dot_fn  ref;
    const uint8_t *w_tile, *w_ref, *a;
    size_t        ws, as;
    int64_t       n, ldy, cap;
    int32_t       nr, nc;
    int           pattern;
} avx512_case;

static inline void avx512_check(const avx512_case *k, float *y, float *want) {
    for (int64_t i = 0; i < k->cap; i++) y[i] = want[i] = -7.0f;
    for (int32_t c = 0; c < k->nc; c++)
        for (int32_t r = 0; r < k->nr; r++) k->ref(k->n, &want[c * k->ldy + r], k->w_ref + (size_t)r * k->ws, k->a + (size_t)c * k->as);
    k->tile(k->n, k->nr, k->nc, k->w_tile, k->ws, k->a, k->as, y, k->ldy);
    for (int64_t i = 0; i < k->cap; i++)
        if (memcmp(&y[i], &want[i], sizeof(float)))
            fail_msg("emulated avx512 %s gemm n=%lld %dx%d pattern %d: y[%lld] = %.9g, vec_dot %.9g", k->what,
                     (long long)k->n, k->nr, k->nc, k->pattern, (long long)i, y[i], want[i]);
}

#endif
