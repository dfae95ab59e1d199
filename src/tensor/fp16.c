/* fp16.c — IEEE 754 binary16 ("half") and bfloat16 conversions to and from binary32.
 *
 * Pure bit manipulation, no tables and no FPU mode dependence, so results are the same
 * on every host and are the reference the SIMD converters are tested against.
 * fp32 -> half/bf16 rounds to nearest, ties to even; NaN stays NaN (quieted, sign and
 * top payload bits kept); overflow goes to infinity; half subnormals are exact.
 * Not here: vectorised row converters (src/cpu). Nothing allocates. */
#include <string.h>

#include "quarrel/types.h"

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* Half layout: sign(1) exponent(5, bias 15) mantissa(10). */
float q_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp  = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f)  /* inf / NaN: widen the payload */
        return f32_from_bits(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24, exact in binary32 */
        float v = (float)mant * 0x1p-24f;
        return f32_from_bits(sign | f32_bits(v));
    }
    /* rebias the exponent: 127 - 15 = 112 */
    return f32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
}

/* Shifts m right by s (1 <= s <= 31), rounding to nearest, ties to even. */
static inline uint32_t shift_rne(uint32_t m, unsigned s) {
    uint32_t q    = m >> s;
    uint32_t rem  = m & ((1u << s) - 1u);
    uint32_t half = 1u << (s - 1);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return q;
}

uint16_t q_fp32_to_fp16(float f) {
    uint32_t x    = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    x &= 0x7fffffffu;
    if (x > 0x7f800000u)  /* NaN: keep the top 10 payload bits, force quiet */
        return (uint16_t)(sign | 0x7e00u | ((x >> 13) & 0x3ffu));
    if (x >= 0x477ff000u) /* >= 65520 = halfway between 65504 and 2^16: rounds to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (x >= 0x38800000u) /* >= 2^-14: normal half; a mantissa carry bumps the exponent */
        return (uint16_t)(sign | shift_rne(x - 0x38000000u, 13));
    if (x <= 0x33000000u) /* <= 2^-25 (half the smallest subnormal): ties to even -> 0 */
        return sign;
    /* subnormal half: value = m * 2^(e-150), unit 2^-24, so shift by 126 - e */
    uint32_t e = x >> 23;
    uint32_t m = (x & 0x7fffffu) | 0x800000u;
    return (uint16_t)(sign | shift_rne(m, 126u - e));
}

/* bfloat16 is the top half of a binary32. */
float q_bf16_to_fp32(uint16_t h) {
    return f32_from_bits((uint32_t)h << 16);
}

uint16_t q_fp32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)  /* NaN: truncate, set the quiet bit */
        return (uint16_t)((u >> 16) | 0x40u);
    /* add just under half an ulp, plus one when the kept lsb is odd: RNE */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
