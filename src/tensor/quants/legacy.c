/* legacy.c — ggml's original 32-element block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
 * Q8_1. Reference (scalar) dequantizers and quantizers; caller owns all buffers.
 * Not here: dot products and SIMD (src/cpu).
 *
 * Every block covers 32 consecutive elements x[0..31]. Halves are IEEE binary16 (LE).
 *
 * Q4_0 (18 bytes)                               x = d * (q - 8)
 *   off size field  meaning
 *   0   2    d      scale (half)
 *   2   16   qs     byte j: low nibble = q of x[j], high nibble = q of x[j+16]
 *
 * Q4_1 (20 bytes)                               x = d * q + m
 *   0   2    d      scale (half)
 *   2   2    m      min (half)
 *   4   16   qs     as Q4_0, q in 0..15 unsigned
 *
 * Q5_0 (22 bytes)                               x = d * (q - 16), q 5 bits
 *   0   2    d      scale (half)
 *   2   4    qh     uint32 LE: bit j = bit 4 of x[j]'s q (j = 0..31)
 *   6   16   qs     low 4 bits, nibbles as Q4_0
 *
 * Q5_1 (24 bytes)                               x = d * q + m, q 5 bits unsigned
 *   0   2    d      scale (half)
 *   2   2    m      min (half)
 *   4   4    qh     as Q5_0
 *   8   16   qs     as Q5_0
 *
 * Q8_0 (34 bytes)                               x = d * q
 *   0   2    d      scale (half)
 *   2   32   qs     int8 q of x[j]
 *
 * Q8_1 (36 bytes; an activation type)           x = d * q
 *   0   2    d      scale (half)
 *   2   2    s      d * sum(q) (half), for the Q4_1/Q5_1 dot products
 *   4   32   qs     int8 q of x[j]
 */
#include <math.h>
#include <string.h>

#include "core/base.h"
#include "tensor/quants/quants.h"
#include "tensor/quants/qutil.h"

/* Max-abs of a group and the signed value that has it (first one on ties). */
static float group_absmax(const float *x, int n, float *signed_max) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
    }
    *signed_max = max;
    return amax;
}

static void group_minmax(const float *x, int n, float *min, float *max) {
    float lo = INFINITY, hi = -INFINITY;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *min = lo;
    *max = hi;
}

/* ---- Q4_0 ------------------------------------------------------------------------- */

void quant_q4_0_to_float(const void *src, float *dst, int64_t n) {
    Q_ASSERT(n % QK4_0 == 0);
    const block_q4_0 *b = src;
    for (int64_t i = 0; i < n / QK4_0; i++, dst += QK4_0) {
        const float d = quant_h2f(b[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            dst[j]             = (float)((b[i].qs[j] & 0x0f) - 8) * d;
            dst[j + QK4_0 / 2] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

/* The value of largest magnitude maps to q = 0 (i.e. -8 * d), so the sign of d follows
 * it and the full 16 levels are used on the side that needs them. */
void quant_q4_0_from_float(const float *src, void *dst, int64_t n) {
    Q_ASSERT(n % QK4_0 == 0);
    block_q4_0 *b = dst;
    for (int64_t i = 0; i < n / QK4_0; i++, src += QK4_0) {
        float max;
        group_absmax(src, QK4_0, &max);
        const float d  = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = quant_f2h(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            int q0 = quant_trunc_clamp(src[j] * id + 8.5f, 0, 15);
            int q1 = quant_trunc_clamp(src[j + QK4_0 / 2] * id + 8.5f, 0, 15);
            b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* ---- Q4_1 ------------------------------------------------------------------------- */

void quant_q4_1_to_float(const void *src, float *dst, int64_t n) {
    Q_ASSERT(n % QK4_1 == 0);
    const block_q4_1 *b = src;
    for (int64_t i = 0; i < n / QK4_1; i++, dst += QK4_1) {
        const float d = quant_h2f(b[i].d);
        const float m = quant_h2f(b[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            dst[j]             = (float)(b[i].qs[j] & 0x0f) * d + m;
            dst[j + QK4_1 / 2] = (float)(b[i].qs[j] >> 4) * d + m;
        }
    }
}

void quant_q4_1_from_float(const float *src, void *dst, int64_t n) {
    Q_ASSERT(n % QK4_1 == 0);
    block_q4_1 *b = dst;
    for (int64_t i = 0; i < n / QK4_1; i++, src += QK4_1) {
        float min, max;
        group_minmax(src, QK4_1, &min, &max);
        const float d  = (max - min) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = quant_f2h(d);
        b[i].m = quant_f2h(min);
        for (int j = 0; j < QK4_1 / 2; j++) {
            int q0 = quant_trunc_clamp((src[j] - min) * id + 0.5f, 0, 15);
            int q1 = quant_trunc_clamp((src[j + QK4_1 / 2] - min) * id + 0.5f, 0, 15);
            b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* ---- Q5_0 ------------------------------------------------------------------------- */

static uint32_t load_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store_u32le(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

void quant_q5_0_to_float(const void *src, float *dst, int64_t n) {
    Q_ASSERT(n % QK5_0 == 0);
    const block_q5_0 *b = src;
    for (int64_t i = 0; i < n / QK5_0; i++, dst += QK5_0) {
        const float    d  = quant_h2f(b[i].d);
        const uint32_t qh = load_u32le(b[i].qh);
        for (int j = 0; j < QK5_0 / 2; j++) {
            int h0 = (int)((qh >> j) & 1u) << 4;
            int h1 = (int)((qh >> (j + QK5_0 / 2)) & 1u) << 4;
            dst[j]             = (float)(((b[i].qs[j] & 0x0f) | h0) - 16) * d;
            dst[j + QK5_0 / 2] = (float)(((b[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

void quant_q5_0_from_float(const float *src, void *dst, int64_t n) {
    Q_ASSERT(n % QK5_0 == 0);
    block_q5_0 *b = dst;
    for (int64_t i = 0; i < n / QK5_0; i++, src += QK5_0) {
        float max;
        group_absmax(src, QK5_0, &max);
        const float d  = max / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = quant_f2h(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            int q0 = quant_trunc_clamp(src[j] * id + 16.5f, 0, 31);
            int q1 = quant_trunc_clamp(src[j + QK5_0 / 2] * id + 16.5f, 0, 31);
            b[i].qs[j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + QK5_0 / 2);
        }
        store_u32le(b[i].qh, qh);
    }
}

/* ---- Q5_1 ------------------------------------------------------------------------- */

void quant_q5_1_to_float(const void *src, float *dst, int64_t n) {
    Q_ASSERT(n % QK5_1 == 0);
    const block_q5_1 *b = src;
    for (int64_t i = 0; i < n / QK5_1; i++, dst += QK5_1) {
        const float    d  = quant_h2f(b[i].d);
        const float    m  = quant_h2f(b[i].m);
        const uint32_t qh = load_u32le(b[i].qh);
        for (int j = 0; j < QK5_1 / 2; j++) {
            int h0 = (int)((qh >> j) & 1u) << 4;
            int h1 = (int)((qh >> (j + QK5_1 / 2)) & 1u) << 4;
            dst[j]             = (float)((b[i].qs[j] & 0x0f) | h0) * d + m;
            dst[j + QK5_1 / 2] = (float)((b[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

void quant_q5_1_from_float(const float *src, void *dst, int64_t n) {
    Q_ASSERT(n % QK5_1 == 0);
    block_q5_1 *b = dst;
    for (int64_t i = 0; i < n / QK5_1; i++, src += QK5_1) {
        float min, max;
        group_minmax(src, QK5_1, &min, &max);
        const float d  = (max - min) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = quant_f2h(d);
        b[i].m = quant_f2h(min);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            int q0 = quant_trunc_clamp((src[j] - min) * id + 0.5f, 0, 31);
            int q1 = quant_trunc_clamp((src[j + QK5_1 / 2] - min) * id + 0.5f, 0, 31);
            b[i].qs[j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + QK5_1 / 2);
        }
        store_u32le(b[i].qh, qh);
    }
}

/* ---- Q8_0 / Q8_1 ------------------------------------------------------------------ */

/* roundf (half away from zero) of v in [-127, 127]; NaN -> 0. */
static int8_t round_q8(float v) {
    if (!(v == v)) return 0;
    return (int8_t)quant_clampi((int)roundf(fmaxf(fminf(v, 127.0f), -127.0f)), -127, 127);
}

void quant_q8_0_to_float(const void *src, float *dst, int64_t n) {
    Q_ASSERT(n % QK8_0 == 0);
    const block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK8_0; i++, dst += QK8_0) {
        const float d = quant_h2f(b[i].d);
        for (int j = 0; j < QK8_0; j++) dst[j] = (float)b[i].qs[j] * d;
    }
}

void quant_q8_0_from_float(const float *src, void *dst, int64_t n) {
    Q_ASSERT(n % QK8_0 == 0);
    block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / QK8_0; i++, src += QK8_0) {
        float max;
        const float amax = group_absmax(src, QK8_0, &max);
        const float d    = amax / 127.0f;
        const float id   = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = quant_f2h(d);
        for (int j = 0; j < QK8_0; j++) b[i].qs[j] = round_q8(src[j] * id);
    }
}

void quant_q8_1_to_float(const void *src, float *dst, int64_t n) {
    Q_ASSERT(n % QK8_1 == 0);
    const block_q8_1 *b = src;
    for (int64_t i = 0; i < n / QK8_1; i++, dst += QK8_1) {
        const float d = quant_h2f(b[i].d);
        for (int j = 0; j < QK8_1; j++) dst[j] = (float)b[i].qs[j] * d;
    }
}

void quant_q8_1_from_float(const float *src, void *dst, int64_t n) {
    Q_ASSERT(n % QK8_1 == 0);
    block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / QK8_1; i++, src += QK8_1) {
        float max;
        const float amax = group_absmax(src, QK8_1, &max);
        const float d    = amax / 127.0f;
        const float id   = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        b[i].d = quant_f2h(d);
        for (int j = 0; j < QK8_1; j++) {
            b[i].qs[j] = round_q8(src[j] * id);
            sum += b[i].qs[j];
        }
        b[i].s = quant_f2h((float)sum * d);
    }
}
