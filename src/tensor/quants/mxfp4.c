/* mxfp4.c — MXFP4 (OCP Microscaling FP4): 32 E2M1 values sharing one E8M0 exponent.
 * Reference (scalar) dequantizer and quantizer; caller owns all buffers.
 *
 * MXFP4 (17 bytes, 32 elements)                 x[j] = d * kvalues[q_j]
 *   off size field  meaning
 *   0   1    e      E8M0 exponent; ggml stores the doubled E2M1 values below, so the
 *                   scale is halved: d = 2^(e - 128) (e = 0, 1 give 2^-128, 2^-127)
 *   1   16   qs     byte j: low nibble = q of x[j], high nibble = q of x[j+16]
 *
 * kvalues (2 x E2M1: bit 3 sign, bits 0..2 magnitude index into {0,.5,1,1.5,2,3,4,6}):
 *   {0,1,2,3,4,6,8,12, 0,-1,-2,-3,-4,-6,-8,-12} */
#include <math.h>
#include <string.h>

#include "core/base.h"
#include "tensor/quants/quants.h"
#include "tensor/quants/qutil.h"

static const int8_t mxfp4_values[16] = { 0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12 };

/* 2^(e-128) as a float, exact: e = 0 and 1 are binary32 subnormals. */
static float mxfp4_scale(uint8_t e) {
    uint32_t bits = e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void quant_mxfp4_to_float(const void *src, float *dst, int64_t n) {
    Q_ASSERT(n % QK_MXFP4 == 0);
    const block_mxfp4 *b = src;
    for (int64_t i = 0; i < n / QK_MXFP4; i++, dst += QK_MXFP4) {
        const float d = mxfp4_scale(b[i].e);
        for (int j = 0; j < QK_MXFP4 / 2; j++) {
            dst[j]                = (float)mxfp4_values[b[i].qs[j] & 0x0f] * d;
            dst[j + QK_MXFP4 / 2] = (float)mxfp4_values[b[i].qs[j] >> 4] * d;
        }
    }
}

/* Nearest code by absolute error, first index on ties (so +0 over -0). */
static int mxfp4_nearest(float x, float d) {
    int best = 0;
    float best_err = fabsf((float)mxfp4_values[0] * d - x);
    for (int k = 1; k < 16; k++) {
        float err = fabsf((float)mxfp4_values[k] * d - x);
        if (err < best_err) { best = k; best_err = err; }
    }
    return best;
}

/* The exponent puts the block's max-abs A in [8d, 16d): e = floor(log2 A) - 2 + 127, so
 * values up to 12d are representable and A above 12d saturates (as ggml does). */
void quant_mxfp4_from_float(const float *src, void *dst, int64_t n) {
    Q_ASSERT(n % QK_MXFP4 == 0);
    block_mxfp4 *b = dst;
    for (int64_t i = 0; i < n / QK_MXFP4; i++, src += QK_MXFP4) {
        float amax = 0.0f;
        for (int j = 0; j < QK_MXFP4; j++)
            if (amax < fabsf(src[j])) amax = fabsf(src[j]);
        /* log2f as ggml computes it (its rounding just below powers of two included);
         * clamped before the int conversion so inf cannot overflow it */
        int e = 0;
        if (amax > 0.0f) e = quant_clampi((int)fminf(floorf(log2f(amax)), 200.0f) - 2 + 127, 0, 254);
        b[i].e = (uint8_t)e;
        const float d = mxfp4_scale(b[i].e);
        for (int j = 0; j < QK_MXFP4 / 2; j++) {
            int q0 = mxfp4_nearest(src[j], d);
            int q1 = mxfp4_nearest(src[j + QK_MXFP4 / 2], d);
            b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}
