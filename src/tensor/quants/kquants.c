/* kquants.c — ggml's k-quants: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (weights) and Q8_K (the
 * activation type their dot products use). Reference (scalar) dequantizers and the
 * reference quantizers llama-quantize uses without an importance matrix; caller owns
 * all buffers. Not here: dot products and SIMD (src/cpu).
 *
 * Every block is a 256-element super-block split into sub-blocks of 16 or 32 that
 * carry small integer scales (and mins), themselves scaled by half-precision d / dmin.
 * "Element e" below is x[e] of the super-block, e = 0..255.
 *
 * Q2_K (84 bytes)          x = d*sc*q - dmin*m, q 2 bits, 16 sub-blocks of 16
 *   off size field   meaning
 *   0   16   scales  byte s: low nibble = sc, high nibble = m of sub-block s (elems 16s..)
 *   16  64   qs      for half h (elements 128h..128h+127): byte 32h+l holds, at bits
 *                    2k..2k+1, the q of element 128h + 32k + l   (k = 0..3, l = 0..31)
 *   80  2    d       half
 *   82  2    dmin    half
 *
 * Q3_K (110 bytes)         x = d*(sc-32)*(q-4), q 3 bits, 16 sub-blocks of 16
 *   0   32   hmask   bit k of byte l = bit 2 of the q of element 32k + l
 *   32  64   qs      low 2 bits of q, packed as Q2_K's qs
 *   96  12   scales  16 6-bit sc: low 4 bits of sc s are the low nibble of byte s (s<8)
 *                    or the high nibble of byte s-8 (s>=8); its top 2 bits are at bits
 *                    2*(s/4).. of byte 8 + s%4
 *   108 2    d       half
 *
 * Q4_K (144 bytes)         x = d*sc*q - dmin*m, q 4 bits, 8 sub-blocks of 32
 *   0   2    d       half
 *   2   2    dmin    half
 *   4   12   scales  8 6-bit sc and m ("k4" packing): for s<4, sc = byte s & 63 and
 *                    m = byte s+4 & 63; for s>=4, sc = (byte s+4 & 15) | (byte s-4 >> 6) << 4
 *                    and m = (byte s+4 >> 4) | (byte s >> 6) << 4
 *   16  128  qs      for pair p (elements 64p..64p+63): byte 32p+l low nibble = q of
 *                    element 64p+l, high nibble = q of element 64p+32+l
 *
 * Q5_K (176 bytes)         x = d*sc*q - dmin*m, q 5 bits
 *   0   2    d, 2 2 dmin, 4 12 scales: as Q4_K
 *   16  32   qh      bit 2p of byte l = bit 4 of element 64p+l's q, bit 2p+1 = bit 4 of
 *                    element 64p+32+l's q
 *   48  128  qs      low 4 bits, as Q4_K
 *
 * Q6_K (210 bytes)         x = d*sc*(q-32), q 6 bits, 16 sub-blocks of 16, sc int8
 *   0   128  ql      for half h: byte 64h+l low nibble = element 128h+l, high nibble =
 *                    element 128h+64+l; byte 64h+32+l: elements 128h+32+l, 128h+96+l
 *   128 64   qh      byte 32h+l bits 2k..2k+1 = top 2 bits of element 128h+32k+l
 *   192 16   scales  int8 sc of sub-block s
 *   208 2    d       half
 *
 * Q8_K (292 bytes)         x = d*q
 *   0   4    d       binary32
 *   4   256  qs      int8
 *   260 32   bsums   int16 sum of qs[16s..16s+15], s = 0..15
 *
 * Dequantizers evaluate in float in ggml's order ((d*sc)*q - dmin*m), so results are bit
 * for bit those of ggml and of the shared goldens. */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "core/base.h"
#include "tensor/quants/quants.h"
#include "tensor/quants/qutil.h"

/* ---- shared scale searches ------------------------------------------------------- */

/* Signed value of largest magnitude in x[0..n) (first one on ties); 0 if all zero. */
static float signed_absmax(const float *x, int n, float *amax_out) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    *amax_out = amax;
    return max;
}

/* Weight of x under rmse_type: 1 = x^2, 2 = 1, 3 = |x|, else sqrt|x|. */
static float qx_weight(float x, int rmse_type) {
    switch (rmse_type) {
    case 1:  return x * x;
    case 2:  return 1.0f;
    case 3:  return fabsf(x);
    default: return sqrtf(fabsf(x));
    }
}

/* Symmetric quantization of x[0..n) to L[i] = q + nmax, q in [-nmax, nmax-1], choosing
 * the scale that minimises sum w*(x - scale*q)^2 over 19 candidate grids around
 * nmax/max (ggml's make_qx_quants). rmse_type 0 takes the plain grid. Returns scale. */
static float qx_quants_make(int n, int nmax, const float *x, int8_t *L, int rmse_type) {
    float amax;
    const float max = signed_absmax(x, n, &amax);
    if (amax < QUANT_GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = -(float)nmax / max;
    if (rmse_type == 0) {
        for (int i = 0; i < n; i++)
            L[i] = (int8_t)(nmax + quant_clampi(quant_nearest_int(iscale * x[i]), -nmax, nmax - 1));
        return 1.0f / iscale;
    }
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        int l = quant_clampi(quant_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        float w = qx_weight(x[i], rmse_type);
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    /* the least-squares scale of grid q explains scale*sumlx of the energy: maximise it */
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0.0f;
        for (int i = 0; i < n; i++) {
            int l = quant_clampi(quant_nearest_int(iscale * x[i]), -nmax, nmax - 1);
            float w = qx_weight(x[i], rmse_type);
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + quant_clampi(quant_nearest_int(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Symmetric 3-bit-style quantization with x^2 weights and up to 5 rounds of coordinate
 * descent on each q (ggml's make_q3_quants with do_rmse). L[i] = q + nmax. */
static float q3_quants_make(int n, int nmax, const float *x, int8_t *L) {
    float amax;
    const float max = signed_absmax(x, n, &amax);
    if (amax < QUANT_GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    const float iscale = -(float)nmax / max;
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        int l = quant_clampi(quant_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            /* best q for x[i] given the least-squares scale of all the others */
            float w   = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (slx <= 0.0f) continue;
            float sl2 = suml2 - w * (float)L[i] * (float)L[i];
            int new_l = quant_clampi(quant_nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (new_l == L[i]) continue;
            slx += w * x[i] * (float)new_l;
            sl2 += w * (float)new_l * (float)new_l;
            /* accept if slx^2/sl2 (explained energy) grows */
            if (sl2 > 0.0f && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)new_l;
                sumlx = slx;
                suml2 = sl2;
                n_changed++;
            }
        }
        if (n_changed == 0) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Asymmetric quantization x ~ scale*L - min, L in [0, nmax], min >= 0 (ggml's
 * make_qkx2_quants): start from the min/max grid, then try nstep+1 grids with
 * (nmax + rmin + rdelta*is) levels over [min, max], fit scale and min to each by
 * weighted least squares, and keep the one with the smallest weighted error (absolute
 * when use_mad, else squared). Returns scale; *the_min gets -min (>= 0). */
static float qkx2_quants_make(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                              bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if (min > 0.0f) min = 0.0f;  /* the offset only ever shifts down */
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.0f;
    }
    float iscale = (float)nmax / (max - min);
    float scale  = 1.0f / iscale;
    float best_error = 0.0f;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)quant_clampi(quant_nearest_int(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * (float)L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int i = 0; i < n; i++) {
            int l = quant_clampi(quant_nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l  += w * (float)l;
            sum_l2 += w * (float)l * (float)l;
            sum_xl += w * (float)l * x[i];
        }
        /* 2x2 normal equations for (scale, min) */
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (!(D > 0.0f)) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
        float this_min   = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0.0f) {
            this_min = 0.0f;
            this_scale = sum_xl / sum_l2;
        }
        float cur_error = 0.0f;
        for (int i = 0; i < n; i++) {
            float diff = this_scale * (float)Laux[i] + this_min - x[i];
            diff = use_mad ? fabsf(diff) : diff * diff;
            cur_error += weights[i] * diff;
        }
        if (cur_error < best_error) {
            memcpy(L, Laux, (size_t)n);
            best_error = cur_error;
            scale = this_scale;
            min = this_min;
        }
    }
    *the_min = -min;
    return scale;
}

/* 6-bit scale sc and min m of sub-block j from Q4_K/Q5_K's 12-byte packing. */
static void k4_scale_min_get(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m  = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
        *m  = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void k4_scale_min_set(int j, uint8_t *q, int sc, int m) {
    if (j < 4) {
        q[j]     = (uint8_t)sc;  /* bits 6..7 filled later by sub-blocks 4..7 */
        q[j + 4] = (uint8_t)m;
    } else {
        q[j + 4] = (uint8_t)((sc & 0x0f) | ((m & 0x0f) << 4));
        q[j - 4] |= (uint8_t)((sc >> 4) << 6);
        q[j]     |= (uint8_t)((m >> 4) << 6);
    }
}

/* Quantizes the 8 (scale, min) pairs of a Q4_K/Q5_K block to 6 bits against their
 * maxima, filling d, dmin and scales. */
static void k4_scales_quantize(const float *scales, const float *mins, uint8_t *packed, q_half *d,
                               q_half *dmin) {
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < QK_K / 32; j++) {
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
    const float inv_min   = max_min > 0.0f ? 63.0f / max_min : 0.0f;
    memset(packed, 0, K_SCALE_SIZE);
    for (int j = 0; j < QK_K / 32; j++) {
        int ls = quant_clampi(quant_nearest_int(inv_scale * scales[j]), 0, 63);
        int lm = quant_clampi(quant_nearest_int(inv_min * mins[j]), 0, 63);
        k4_scale_min_set(j, packed, ls, lm);
    }
    *d    = quant_f2h(max_scale / 63.0f);
    *dmin = quant_f2h(max_min / 63.0f);
}

/* Final q of each element of 32-sub-blocks against the stored (rounded) scales, so that
 * quantization error is measured against what the dequantizer will compute. */
static void k4_levels_requantize(const float *x, const uint8_t *packed, q_half d, q_half dmin,
                                 int nmax, uint8_t *L) {
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        k4_scale_min_get(j, packed, &sc, &m);
        const float dj = quant_h2f(d) * (float)sc;
        if (dj == 0.0f) continue;  /* keep the search's levels; they dequantize to -dm */
        const float dm = quant_h2f(dmin) * (float)m;
        for (int ii = 0; ii < 32; ii++)
            L[32 * j + ii] = (uint8_t)quant_clampi(quant_nearest_int((x[32 * j + ii] + dm) / dj), 0, nmax);
    }
}

/* Weights for the 32-element searches of Q4_K/Q5_K: RMS of the sub-block plus |x|, so
 * large values weigh more without zeros being ignored. */
static void k4_weights(const float *x, float *w) {
    float sum_x2 = 0.0f;
    for (int l = 0; l < 32; l++) sum_x2 += x[l] * x[l];
    const float av_x = sqrtf(sum_x2 / 32.0f);
    for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(x[l]);
}

/* ---- Q2_K --------------------------------------------------------------------------- */

void quant_q2_K_to_float(const void *src, float *dst, int64_t n) {
    Q_ASSERT(n % QK_K == 0);
    const block_q2_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = quant_h2f(b[i].d), dmin = quant_h2f(b[i].dmin);
        const uint8_t *q = b[i].qs;
        int s = 0;
        for (int h = 0; h < 2; h++, q += 32) {
            for (int k = 0; k < 4; k++) {
                const int shift = 2 * k;
                for (int half = 0; half < 2; half++, s++) {
                    const float dl = d * (float)(b[i].scales[s] & 0x0f);
                    const float ml = dmin * (float)(b[i].scales[s] >> 4);
                    for (int l = 0; l < 16; l++)
                        *dst++ = dl * (float)((q[16 * half + l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

void quant_q2_K_from_float(const float *src, void *dst, int64_t n) {
    Q_ASSERT(n % QK_K == 0);
    block_q2_K *b = dst;
    uint8_t L[QK_K], Laux[16];
    float weights[16], mins[QK_K / 16], scales[QK_K / 16];
    const float q4scale = 15.0f;  /* scales and mins are 4-bit */
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        float max_scale = 0.0f, max_min = 0.0f;
        for (int j = 0; j < QK_K / 16; j++) {
            for (int l = 0; l < 16; l++) weights[l] = fabsf(src[16 * j + l]);
            scales[j] = qkx2_quants_make(16, 3, src + 16 * j, weights, L + 16 * j, &mins[j], Laux,
                                         -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        memset(b[i].scales, 0, sizeof b[i].scales);
        b[i].d = b[i].dmin = quant_f2h(0.0f);
        if (max_scale > 0.0f) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < QK_K / 16; j++)
                b[i].scales[j] = (uint8_t)quant_clampi(quant_nearest_int(iscale * scales[j]), 0, 15);
            b[i].d = quant_f2h(max_scale / q4scale);
        }
        if (max_min > 0.0f) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < QK_K / 16; j++)
                b[i].scales[j] |= (uint8_t)(quant_clampi(quant_nearest_int(iscale * mins[j]), 0, 15) << 4);
            b[i].dmin = quant_f2h(max_min / q4scale);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = quant_h2f(b[i].d) * (float)(b[i].scales[j] & 0x0f);
            if (d == 0.0f) continue;
            const float dm = quant_h2f(b[i].dmin) * (float)(b[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ii++)
                L[16 * j + ii] = (uint8_t)quant_clampi(quant_nearest_int((src[16 * j + ii] + dm) / d), 0, 3);
        }
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const uint8_t *Lh = L + 128 * h;
                b[i].qs[32 * h + l] = (uint8_t)(Lh[l] | (Lh[l + 32] << 2) | (Lh[l + 64] << 4) | (Lh[l + 96] << 6));
            }
    }
}

/* ---- Q3_K --------------------------------------------------------------------------- */

/* Signed scale (sc - 32) of sub-block s from the 12-byte packing. */
static int q3_scale_get(const uint8_t *p, int s) {
    int lo = s < 8 ? (p[s] & 0x0f) : (p[s - 8] >> 4);
    int hi = (p[8 + s % 4] >> (2 * (s / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

void quant_q3_K_to_float(const void *src, float *dst, int64_t n) {
    Q_ASSERT(n % QK_K == 0);
    const block_q3_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d_all = quant_h2f(b[i].d);
        const uint8_t *q = b[i].qs;
        int s = 0;
        uint8_t m = 1;  /* hmask bit of the current 32-element group */
        for (int h = 0; h < 2; h++, q += 32) {
            for (int k = 0; k < 4; k++, m = (uint8_t)(m << 1)) {
                const int shift = 2 * k;
                for (int half = 0; half < 2; half++, s++) {
                    const float dl = d_all * (float)q3_scale_get(b[i].scales, s);
                    for (int l = 16 * half; l < 16 * half + 16; l++) {
                        int v = ((q[l] >> shift) & 3) - ((b[i].hmask[l] & m) ? 0 : 4);
                        *dst++ = dl * (float)v;
                    }
                }
            }
        }
    }
}

void quant_q3_K_from_float(const float *src, void *dst, int64_t n) {
    Q_ASSERT(n % QK_K == 0);
    block_q3_K *b = dst;
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        float max_scale = 0.0f, amax = 0.0f;
        for (int j = 0; j < QK_K / 16; j++) {
            scales[j] = q3_quants_make(16, 4, src + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > amax) { amax = fabsf(scales[j]); max_scale = scales[j]; }
        }
        memset(b[i].scales, 0, sizeof b[i].scales);
        if (max_scale != 0.0f) {
            /* 6-bit signed scales; the largest maps to -32 so the sign of d follows it */
            const float iscale = -32.0f / max_scale;
            for (int j = 0; j < QK_K / 16; j++) {
                int l = quant_clampi(quant_nearest_int(iscale * scales[j]), -32, 31) + 32;
                if (j < 8) b[i].scales[j] = (uint8_t)(l & 0x0f);
                else       b[i].scales[j - 8] |= (uint8_t)((l & 0x0f) << 4);
                b[i].scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            b[i].d = quant_f2h(1.0f / iscale);
        } else {
            b[i].d = quant_f2h(0.0f);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = quant_h2f(b[i].d) * (float)q3_scale_get(b[i].scales, j);
            if (d == 0.0f) continue;
            for (int ii = 0; ii < 16; ii++)
                L[16 * j + ii] = (int8_t)(quant_clampi(quant_nearest_int(src[16 * j + ii] / d), -4, 3) + 4);
        }
        /* bit 2 of q goes to hmask: element e at byte e % 32, bit e / 32 */
        memset(b[i].hmask, 0, sizeof b[i].hmask);
        for (int e = 0; e < QK_K; e++) {
            if (L[e] > 3) {
                b[i].hmask[e % 32] |= (uint8_t)(1u << (e / 32));
                L[e] = (int8_t)(L[e] - 4);
            }
        }
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const int8_t *Lh = L + 128 * h;
                b[i].qs[32 * h + l] = (uint8_t)(Lh[l] | (Lh[l + 32] << 2) | (Lh[l + 64] << 4) | (Lh[l + 96] << 6));
            }
    }
}

/* ---- Q4_K --------------------------------------------------------------------------- */

void quant_q4_K_to_float(const void *src, float *dst, int64_t n) {
    Q_ASSERT(n % QK_K == 0);
    const block_q4_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = quant_h2f(b[i].d), dmin = quant_h2f(b[i].dmin);
        const uint8_t *q = b[i].qs;
        for (int p = 0; p < 4; p++, q += 32) {
            uint8_t sc, m;
            k4_scale_min_get(2 * p, b[i].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            k4_scale_min_get(2 * p + 1, b[i].scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) *dst++ = d1 * (float)(q[l] & 0x0f) - m1;
            for (int l = 0; l < 32; l++) *dst++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

void quant_q4_K_from_float(const float *src, void *dst, int64_t n) {
    Q_ASSERT(n % QK_K == 0);
    block_q4_K *b = dst;
    uint8_t L[QK_K], Laux[32];
    float weights[32], mins[QK_K / 32], scales[QK_K / 32];
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        for (int j = 0; j < QK_K / 32; j++) {
            k4_weights(src + 32 * j, weights);
            scales[j] = qkx2_quants_make(32, 15, src + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                         -1.0f, 0.1f, 20, false);
        }
        k4_scales_quantize(scales, mins, b[i].scales, &b[i].d, &b[i].dmin);
        k4_levels_requantize(src, b[i].scales, b[i].d, b[i].dmin, 15, L);
        for (int p = 0; p < 4; p++)
            for (int l = 0; l < 32; l++)
                b[i].qs[32 * p + l] = (uint8_t)(L[64 * p + l] | (L[64 * p + 32 + l] << 4));
    }
}

/* ---- Q5_K --------------------------------------------------------------------------- */

void quant_q5_K_to_float(const void *src, float *dst, int64_t n) {
    Q_ASSERT(n % QK_K == 0);
    const block_q5_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = quant_h2f(b[i].d), dmin = quant_h2f(b[i].dmin);
        const uint8_t *ql = b[i].qs, *qh = b[i].qh;
        for (int p = 0; p < 4; p++, ql += 32) {
            const uint8_t u1 = (uint8_t)(1u << (2 * p)), u2 = (uint8_t)(2u << (2 * p));
            uint8_t sc, m;
            k4_scale_min_get(2 * p, b[i].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            k4_scale_min_get(2 * p + 1, b[i].scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) *dst++ = d1 * (float)((ql[l] & 0x0f) + ((qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *dst++ = d2 * (float)((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
        }
    }
}

void quant_q5_K_from_float(const float *src, void *dst, int64_t n) {
    Q_ASSERT(n % QK_K == 0);
    block_q5_K *b = dst;
    uint8_t L[QK_K], Laux[32];
    float weights[32], mins[QK_K / 32], scales[QK_K / 32];
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        for (int j = 0; j < QK_K / 32; j++) {
            k4_weights(src + 32 * j, weights);
            scales[j] = qkx2_quants_make(32, 31, src + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                         -0.5f, 0.1f, 15, false);
        }
        k4_scales_quantize(scales, mins, b[i].scales, &b[i].d, &b[i].dmin);
        k4_levels_requantize(src, b[i].scales, b[i].d, b[i].dmin, 31, L);
        memset(b[i].qh, 0, sizeof b[i].qh);
        for (int p = 0; p < 4; p++)
            for (int l = 0; l < 32; l++) {
                int l1 = L[64 * p + l], l2 = L[64 * p + 32 + l];
                if (l1 > 15) { l1 -= 16; b[i].qh[l] |= (uint8_t)(1u << (2 * p)); }
                if (l2 > 15) { l2 -= 16; b[i].qh[l] |= (uint8_t)(2u << (2 * p)); }
                b[i].qs[32 * p + l] = (uint8_t)(l1 | (l2 << 4));
            }
    }
}

/* ---- Q6_K --------------------------------------------------------------------------- */

void quant_q6_K_to_float(const void *src, float *dst, int64_t n) {
    Q_ASSERT(n % QK_K == 0);
    const block_q6_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = quant_h2f(b[i].d);
        for (int h = 0; h < 2; h++, dst += 128) {
            const uint8_t *ql = b[i].ql + 64 * h, *qh = b[i].qh + 32 * h;
            const int8_t *sc = b[i].scales + 8 * h;
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                dst[l]      = d * (float)sc[is + 0] * (float)q1;
                dst[l + 32] = d * (float)sc[is + 2] * (float)q2;
                dst[l + 64] = d * (float)sc[is + 4] * (float)q3;
                dst[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

void quant_q6_K_from_float(const float *src, void *dst, int64_t n) {
    Q_ASSERT(n % QK_K == 0);
    block_q6_K *b = dst;
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        float max_scale = 0.0f, max_abs_scale = 0.0f;
        for (int j = 0; j < QK_K / 16; j++) {
            scales[j] = qx_quants_make(16, 32, src + 16 * j, L + 16 * j, 1);
            if (fabsf(scales[j]) > max_abs_scale) { max_abs_scale = fabsf(scales[j]); max_scale = scales[j]; }
        }
        if (max_abs_scale < QUANT_GROUP_MAX_EPS) {
            memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        /* int8 scales; the largest maps to -128 so the sign of d follows it */
        const float iscale = -128.0f / max_scale;
        b[i].d = quant_f2h(1.0f / iscale);
        for (int j = 0; j < QK_K / 16; j++)
            b[i].scales[j] = (int8_t)quant_clampi(quant_nearest_int(iscale * scales[j]), -128, 127);
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = quant_h2f(b[i].d) * (float)b[i].scales[j];
            if (d == 0.0f) continue;
            for (int ii = 0; ii < 16; ii++)
                L[16 * j + ii] = (int8_t)(quant_clampi(quant_nearest_int(src[16 * j + ii] / d), -32, 31) + 32);
        }
        for (int h = 0; h < 2; h++) {
            const int8_t *Lh = L + 128 * h;
            uint8_t *ql = b[i].ql + 64 * h, *qh = b[i].qh + 32 * h;
            for (int l = 0; l < 32; l++) {
                ql[l]      = (uint8_t)((Lh[l] & 0x0f) | ((Lh[l + 64] & 0x0f) << 4));
                ql[l + 32] = (uint8_t)((Lh[l + 32] & 0x0f) | ((Lh[l + 96] & 0x0f) << 4));
                qh[l] = (uint8_t)((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
                                  ((Lh[l + 96] >> 4) << 6));
            }
        }
    }
}

/* ---- Q8_K --------------------------------------------------------------------------- */

void quant_q8_K_to_float(const void *src, float *dst, int64_t n) {
    Q_ASSERT(n % QK_K == 0);
    const block_q8_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++)
        for (int j = 0; j < QK_K; j++) *dst++ = b[i].d * (float)b[i].qs[j];
}

void quant_q8_K_from_float(const float *src, void *dst, int64_t n) {
    Q_ASSERT(n % QK_K == 0);
    block_q8_K *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        float amax;
        const float max = signed_absmax(src, QK_K, &amax);
        if (amax == 0.0f) {
            memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < QK_K; j++)
            b[i].qs[j] = (int8_t)quant_clampi(quant_nearest_int(iscale * src[j]), -127, 127);
        for (int s = 0; s < QK_K / 16; s++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += b[i].qs[16 * s + l];
            b[i].bsums[s] = (int16_t)sum;
        }
        b[i].d = 1.0f / iscale;
    }
}
