/* iq4nl.c — IQ4_NL: 4-bit indices into a fixed non-linear table of 16 levels, one half
 * scale per 32 elements. Reference (scalar) dequantizer and the quantizer llama-quantize
 * uses without an importance matrix; caller owns all buffers.
 *
 * IQ4_NL (18 bytes, 32 elements)                x[j] = d * kvalues[q_j]
 *   off size field  meaning
 *   0   2    d      scale (half)
 *   2   16   qs     byte j: low nibble = q of x[j], high nibble = q of x[j+16]
 *
 * kvalues = {-127,-104,-83,-65,-49,-35,-22,-10, 1,13,25,38,53,69,89,113}: denser near
 * zero, where most weights are. */
#include <math.h>
#include <string.h>

#include "core/base.h"
#include "tensor/quants/quants.h"
#include "tensor/quants/qutil.h"

static const int8_t iq4nl_values[16] = {
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
};

/* Index of the table value nearest to v; a tie between two neighbours goes to the upper
 * one. The table is sorted: binary search. */
static int iq4nl_nearest(float v) {
    if (v <= iq4nl_values[0]) return 0;
    if (v >= iq4nl_values[15]) return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (v < iq4nl_values[mid]) hi = mid;
        else lo = mid;
    }
    return v - iq4nl_values[hi - 1] < iq4nl_values[hi] - v ? hi - 1 : hi;
}

void quant_iq4_nl_to_float(const void *src, float *dst, int64_t n) {
    Q_ASSERT(n % QK4_NL == 0);
    const block_iq4_nl *b = src;
    for (int64_t i = 0; i < n / QK4_NL; i++, dst += QK4_NL) {
        const float d = quant_h2f(b[i].d);
        for (int j = 0; j < QK4_NL / 2; j++) {
            dst[j]              = d * (float)iq4nl_values[b[i].qs[j] & 0x0f];
            dst[j + QK4_NL / 2] = d * (float)iq4nl_values[b[i].qs[j] >> 4];
        }
    }
}

/* Weighted least-squares fit of the scale for the grid id: returns sum w*q*x and sets
 * *sumq2 = sum w*q^2 (the best scale for that assignment is their ratio). */
static float iq4nl_fit(const float *x, const float *w, float id, float *sumq2) {
    float sqx = 0.0f, sq2 = 0.0f;
    for (int j = 0; j < QK4_NL; j++) {
        float q = iq4nl_values[iq4nl_nearest(id * x[j])];
        sqx += w[j] * q * x[j];
        sq2 += w[j] * q * q;
    }
    *sumq2 = sq2;
    return sqx;
}

/* Per block: weights x^2; start from d = max/127, then try the 15 grids that put the
 * extreme value at table entries -127 + t (t = -7..7), keeping the least-squares scale
 * that explains the most weighted energy; finally re-pick every index against it. */
void quant_iq4_nl_from_float(const float *src, void *dst, int64_t n) {
    Q_ASSERT(n % QK4_NL == 0);
    block_iq4_nl *b = dst;
    const int ntry = 7;
    float w[QK4_NL];
    for (int64_t i = 0; i < n / QK4_NL; i++, src += QK4_NL) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK4_NL; j++) {
            w[j] = src[j] * src[j];
            if (fabsf(src[j]) > amax) { amax = fabsf(src[j]); max = src[j]; }
        }
        float d = 0.0f;
        if (amax >= QUANT_GROUP_MAX_EPS) {
            float sumq2;
            /* starting scale d = max/127 (same sign as the extreme) */
            const float d0 = -max / (float)iq4nl_values[0];
            float sumqx = iq4nl_fit(src, w, 1.0f / d0, &sumq2);
            d = sumq2 > 0.0f ? sumqx / sumq2 : 0.0f;
            float best = d * sumqx;
            for (int t = -ntry; t <= ntry; t++) {
                const float id = ((float)t + (float)iq4nl_values[0]) / max;
                sumqx = iq4nl_fit(src, w, id, &sumq2);
                if (sumq2 > 0.0f && sumqx * sumqx > best * sumq2) {
                    d = sumqx / sumq2;
                    best = d * sumqx;
                }
            }
        }
        b[i].d = quant_f2h(d);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int j = 0; j < QK4_NL / 2; j++) {
            int q0 = iq4nl_nearest(id * src[j]);
            int q1 = iq4nl_nearest(id * src[j + QK4_NL / 2]);
            b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}
