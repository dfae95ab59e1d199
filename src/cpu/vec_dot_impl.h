/* vec_dot_impl.h — the reference body of every CPU dot-product kernel, compiled by
 * vec_dot_scalar.c (QFMA is the C library's fused multiply-add). It spells out the
 * summation order that every hand-written SIMD kernel (cpu/kern_avx2*.c) reproduces bit
 * for bit: fused multiply-add is exactly rounded everywhere, and integer sums are exact.
 *
 * Before including: the system headers, cpu/f16.h, cpu/vec_dot.h and
 * tensor/quants/blocks.h, and QK(name) (the exported name of kernel `name`).
 *
 * Semantics are ggml's vec_dot: the activation row has already been converted to the
 * weight type's vec_dot_type (F16 for F16, BF16 for BF16, Q8_0 for the 32-blocks, Q8_1
 * for Q4_1/Q5_1, Q8_K for the k-quants), and quantized blocks are multiplied with
 * integer sums inside a block, scaled by the product of the two block scales. Block
 * layouts are documented in src/tensor/quants/. No memory is owned. */

#define QFMA(a, b, c) __builtin_fmaf((a), (b), (c))

/* half -> float: the including file may define QH2F (e.g. a hardware conversion);
 * every definition is exact, so all agree. bfloat16 -> float is a 16-bit shift. */
#ifndef QH2F
#define QH2F(h) q_cpu_h2f(h)
#endif

static inline float bf16_to_f32(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float h2f(q_half h) { return QH2F(h); }

/* ggml's x86 kernels (and llamafile's tinyBLAS) keep 8 float lanes: integer lane L of a
 * block sums the products of elements whose position within their 32-element group is
 * 4L..4L+3; each block adds d * lane with one fused multiply-add per lane; at the end
 * the lanes are reduced as ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)). Reproducing that
 * order (fmaf is exact fused arithmetic) keeps our sums bit-identical to the goldens'
 * wherever the inputs are, so Q8 rounding of the next activation flips far more rarely. */
static inline int x86_lane(int e) { return (e % 32) / 4; }

static inline float x86_hsum8(const float a[8]) {
    const float r0 = a[4] + a[0], r1 = a[5] + a[1], r2 = a[6] + a[2], r3 = a[7] + a[3];
    return (r0 + r2) + (r1 + r3);
}

/* F32 / F16 / BF16 rows whose length is a multiple of 16 take llamafile's tinyBLAS order
 * (what ggml's x86 build uses for them): 16 lanes, lane l accumulating elements
 * l, l+16, l+32, ... with fused multiply-adds, then reduced as q_lanes16_sum does.
 * Other lengths are summed in double, as ggml's scalar tail does. */
static inline float lanes16_sum(const float a[16]) {
    float t8[8], t4[4];
    for (int i = 0; i < 8; i++) t8[i] = a[8 + i] + a[i];
    for (int i = 0; i < 4; i++) t4[i] = t8[4 + i] + t8[i];
    return (t4[0] + t4[2]) + (t4[1] + t4[3]);
}

#define DOT_BODY(LOAD_X, LOAD_Y)                                              \
    if (n % 16 == 0) {                                                        \
        float acc[16] = { 0 };                                                \
        for (int64_t i0 = 0; i0 < n; i0 += 16)                                \
            for (int l = 0; l < 16; l++)                                      \
                acc[l] = QFMA(LOAD_X(i0 + l), LOAD_Y(i0 + l), acc[l]);        \
        *s = lanes16_sum(acc);                                              \
    } else {                                                                  \
        double sum = 0.0;                                                     \
        for (int64_t i = 0; i < n; i++) sum += (double)(LOAD_X(i) * LOAD_Y(i)); \
        *s = (float)sum;                                                      \
    }

/* F32 rows of other lengths take ggml's own AVX-512 loop: 4 x 16 lanes over steps of 64,
 * lanes folded 0+2, 1+3, 0+1, reduced in float, then the tail fused in one at a time. */
void QK(q_vec_dot_f32)(int64_t n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    if (n % 16 == 0) {
#define LX(i) x[i]
#define LY(i) y[i]
        DOT_BODY(LX, LY)
#undef LX
#undef LY
        return;
    }
    float acc[4][16] = { { 0 } };
    const int64_t np = n & ~(int64_t)63;
    for (int64_t i = 0; i < np; i += 64)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 16; l++) acc[j][l] = QFMA(x[i + 16 * j + l], y[i + 16 * j + l], acc[j][l]);
    for (int l = 0; l < 16; l++) {
        acc[0][l] += acc[2][l];
        acc[1][l] += acc[3][l];
    }
    for (int l = 0; l < 16; l++) acc[0][l] += acc[1][l];
    float sum = lanes16_sum(acc[0]);
    for (int64_t i = np; i < n; i++) sum = QFMA(x[i], y[i], sum);
    *s = sum;
}

void QK(q_vec_dot_f16)(int64_t n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
#define LX(i) QH2F(x[i])
#define LY(i) QH2F(y[i])
    DOT_BODY(LX, LY)
#undef LX
#undef LY
}

/* BF16 rows of a multiple of 32 follow tinyBLAS on AVX512-BF16 CPUs (the goldens'):
 * vdpbf16ps adds, per lane l of 16, the odd product then the even one of each pair
 * (2l, 2l+1), each addition rounded; bf16 x bf16 products are exact in float. */
void QK(q_vec_dot_bf16)(int64_t n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    if (n % 32 == 0) {
        float acc[16] = { 0 };
        for (int64_t i0 = 0; i0 < n; i0 += 32)
            for (int l = 0; l < 16; l++) {
                const float odd = bf16_to_f32(x[i0 + 2 * l + 1]) * bf16_to_f32(y[i0 + 2 * l + 1]);
                const float even = bf16_to_f32(x[i0 + 2 * l]) * bf16_to_f32(y[i0 + 2 * l]);
                acc[l] = (acc[l] + odd) + even;
            }
        *s = lanes16_sum(acc);
        return;
    }
#define LX(i) bf16_to_f32(x[i])
#define LY(i) bf16_to_f32(y[i])
    DOT_BODY(LX, LY)
#undef LX
#undef LY
}

/* ---- 32-element blocks x Q8_0 / Q8_1 ---- */

/* Q4_0: llama.cpp's x86 build repacks Q4_0 matrices (8 rows interleaved) and its
 * kernel adds each block's whole integer sum with one fused multiply-add, block after
 * block, with no lanes; this follows that order. */
void QK(q_vec_dot_q4_0_q8_0)(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_0 *x = vx;
    const block_q8_0 *y = vy;
    float acc = 0.0f;
    for (int64_t b = 0; b < n / QK4_0; b++) {
        int32_t sumi = 0;
        for (int j = 0; j < QK4_0 / 2; j++) {   /* low nibbles: 0..15, high: 16..31 */
            sumi += ((x[b].qs[j] & 0x0F) - 8) * y[b].qs[j];
            sumi += ((x[b].qs[j] >> 4) - 8) * y[b].qs[j + QK4_0 / 2];
        }
        acc = QFMA((float)sumi, h2f(y[b].d) * h2f(x[b].d), acc);
    }
    *s = acc;
}

/* Q8_1 carries s = d * sum(qs), so the weight offset m contributes m * s. */
void QK(q_vec_dot_q4_1_q8_1)(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_1 *x = vx;
    const block_q8_1 *y = vy;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK4_1; b++) {
        int32_t sumi = 0;
        for (int j = 0; j < QK4_1 / 2; j++) {
            sumi += (x[b].qs[j] & 0x0F) * y[b].qs[j];
            sumi += (x[b].qs[j] >> 4) * y[b].qs[j + QK4_1 / 2];
        }
        sum += (float)sumi * (h2f(x[b].d) * h2f(y[b].d)) + h2f(x[b].m) * h2f(y[b].s);
    }
    *s = sum;
}

/* Bit j of qh is the fifth bit of element j (0..31). */
void QK(q_vec_dot_q5_0_q8_0)(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_0 *x = vx;
    const block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK5_0; b++) {
        uint32_t qh;
        memcpy(&qh, x[b].qh, 4);
        int32_t sumi = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            int lo = (x[b].qs[j] & 0x0F) | (int)(((qh >> j) & 1u) << 4);
            int hi = (x[b].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
            sumi += (lo - 16) * y[b].qs[j] + (hi - 16) * y[b].qs[j + QK5_0 / 2];
        }
        sum += (float)sumi * (h2f(x[b].d) * h2f(y[b].d));
    }
    *s = sum;
}

void QK(q_vec_dot_q5_1_q8_1)(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_1 *x = vx;
    const block_q8_1 *y = vy;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK5_1; b++) {
        uint32_t qh;
        memcpy(&qh, x[b].qh, 4);
        int32_t sumi = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            int lo = (x[b].qs[j] & 0x0F) | (int)(((qh >> j) & 1u) << 4);
            int hi = (x[b].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
            sumi += lo * y[b].qs[j] + hi * y[b].qs[j + QK5_1 / 2];
        }
        sum += (float)sumi * (h2f(x[b].d) * h2f(y[b].d)) + h2f(x[b].m) * h2f(y[b].s);
    }
    *s = sum;
}

/* Q8_0: each block's whole integer sum, then sum += sumi * (dx * dy), rounded step by
 * step (as Q5_0 and IQ4_NL). Not llama.cpp's x86 order (8 float lanes with one fused
 * multiply-add each per block): that order costs a conversion and a multiply-add per 4
 * elements and output, which kept batched Q8_0 on the multiply ports; this one costs
 * them once per 32. The sums differ from the goldens' by float rounding only, well inside
 * their tolerance (golden/README.md). */
void QK(q_vec_dot_q8_0_q8_0)(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q8_0 *x = vx;
    const block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK8_0; b++) {
        int32_t sumi = 0;
        for (int j = 0; j < QK8_0; j++) sumi += x[b].qs[j] * y[b].qs[j];
        sum += (float)sumi * (h2f(x[b].d) * h2f(y[b].d));
    }
    *s = sum;
}

/* IQ4_NL: each nibble indexes a fixed non-uniform 16-entry grid. */
static const int8_t iq4nl_grid[16] = { -127, -104, -83, -65, -49, -35, -22, -10,
                                       1, 13, 25, 38, 53, 69, 89, 113 };

void QK(q_vec_dot_iq4_nl_q8_0)(int64_t n, float *s, const void *vx, const void *vy) {
    const block_iq4_nl *x = vx;
    const block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK4_NL; b++) {
        int32_t sumi = 0;
        for (int j = 0; j < QK4_NL / 2; j++) {
            sumi += iq4nl_grid[x[b].qs[j] & 0x0F] * y[b].qs[j];
            sumi += iq4nl_grid[x[b].qs[j] >> 4] * y[b].qs[j + QK4_NL / 2];
        }
        sum += (float)sumi * (h2f(x[b].d) * h2f(y[b].d));
    }
    *s = sum;
}

/* MXFP4: E2M1 codes doubled to integers; the E8M0 exponent e gives 2^(e-128) (half of
 * 2^(e-127)) to undo the doubling. */
static const int8_t mxfp4_grid[16] = { 0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12 };

void QK(q_vec_dot_mxfp4_q8_0)(int64_t n, float *s, const void *vx, const void *vy) {
    const block_mxfp4 *x = vx;
    const block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_MXFP4; b++) {
        int32_t sumi = 0;
        for (int j = 0; j < QK_MXFP4 / 2; j++) {
            sumi += mxfp4_grid[x[b].qs[j] & 0x0F] * y[b].qs[j];
            sumi += mxfp4_grid[x[b].qs[j] >> 4] * y[b].qs[j + QK_MXFP4 / 2];
        }
        sum += (float)sumi * (ldexpf(1.0f, (int)x[b].e - 128) * h2f(y[b].d));
    }
    *s = sum;
}

/* ---- k-quants x Q8_K (256-element super-blocks) ---- */

/* Q2_K: 16 groups of 16; scales[g] low nibble = scale, high nibble = min. Quants: byte
 * qs[32c + l] holds, at bit 2k, element 128c + 32k + l. */
void QK(q_vec_dot_q2_K_q8_K)(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q2_K *x = vx;
    const block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int32_t summs = 0;
        for (int g = 0; g < QK_K / 16; g++) summs += y[b].bsums[g] * (x[b].scales[g] >> 4);
        int32_t isum = 0;
        for (int g = 0; g < QK_K / 16; g++) {
            int c = g / 8, k = (g % 8) / 2, half = g % 2;   /* chunk of 128, shift, l half */
            int32_t part = 0;
            for (int l = 0; l < 16; l++) {
                int li = 16 * half + l;
                int q = (x[b].qs[32 * c + li] >> (2 * k)) & 3;
                part += q * y[b].qs[128 * c + 32 * k + li];
            }
            isum += (x[b].scales[g] & 0x0F) * part;
        }
        float dall = y[b].d * h2f(x[b].d), dmin = y[b].d * h2f(x[b].dmin);
        sum += dall * (float)isum - dmin * (float)summs;
    }
    *s = sum;
}

/* Q3_K: element e = 128c + 32k + l has low bits (qs[32c + l] >> 2k) & 3 and high bit
 * hmask[l] bit (4c + k); a clear high bit subtracts 4. 16 signed 6-bit scales (-32)
 * packed in 12 bytes: low 4 bits in bytes 0..7 (nibbles), high 2 bits in bytes 8..11. */
void QK(q_vec_dot_q3_K_q8_K)(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q3_K *x = vx;
    const block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int sc[16];
        for (int g = 0; g < 16; g++) {
            int lo = (g < 8) ? (x[b].scales[g] & 0x0F) : (x[b].scales[g - 8] >> 4);
            int hi = (x[b].scales[8 + g % 4] >> (2 * (g / 4))) & 3;
            sc[g] = (lo | (hi << 4)) - 32;
        }
        int32_t isum = 0;
        for (int g = 0; g < QK_K / 16; g++) {
            int32_t part = 0;
            for (int i = 0; i < 16; i++) {
                int e = 16 * g + i, c = e / 128, k = (e % 128) / 32, l = e % 32;
                int q = (x[b].qs[32 * c + l] >> (2 * k)) & 3;
                if (!(x[b].hmask[l] & (1u << (4 * c + k)))) q -= 4;
                part += q * y[b].qs[e];
            }
            isum += sc[g] * part;
        }
        sum += (h2f(x[b].d) * y[b].d) * (float)isum;
    }
    *s = sum;
}

/* Q4_K / Q5_K: 8 sub-blocks of 32 with 6-bit scale and min packed in 12 bytes. */
static inline void kq_scale_min(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m  = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
        *m  = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Q4_K: sub-block 2c takes the low nibbles of qs[32c..32c+31], 2c+1 the high ones.
 * ggml's x86 order on purpose, not Q5_K's single chain: with that order (measured in
 * session 6, docs/performance.md) the Q4_K_M goldens miss their 1e-3-at-most-positions
 * bound (this order is bit-exact with them) and decode lost ~18 %, for ~5 % on the gemm. */
void QK(q_vec_dot_q4_K_q8_K)(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_K *x = vx;
    const block_q8_K *y = vy;
    float acc[8] = { 0 }, acc_m[4] = { 0 };
    for (int64_t b = 0; b < n / QK_K; b++) {
        int sc[8], m[8];
        for (int j = 0; j < 8; j++) kq_scale_min(j, x[b].scales, &sc[j], &m[j]);
        int32_t lane[8] = { 0 };
        for (int j = 0; j < QK_K / 32; j++) {   /* sub-block j: 32 quants, one scale */
            const uint8_t *qs = x[b].qs + 32 * (j / 2);
            const int8_t *q8 = y[b].qs + 32 * j;
            const int shift = 4 * (j % 2);
            for (int l = 0; l < 8; l++) {
                int32_t sum = 0;
                for (int k = 0; k < 4; k++) sum += ((qs[4 * l + k] >> shift) & 0x0F) * q8[4 * l + k];
                lane[l] += sc[j] * sum;
            }
        }
        const float d = y[b].d * h2f(x[b].d), dmin = -y[b].d * h2f(x[b].dmin);
        for (int l = 0; l < 8; l++) acc[l] = QFMA(d, (float)lane[l], acc[l]);
        /* mins: 4 lanes, lane i covers sub-blocks 2i and 2i+1 */
        for (int i = 0; i < 4; i++) {
            const int32_t prod = m[2 * i] * (y[b].bsums[4 * i] + y[b].bsums[4 * i + 1]) +
                                 m[2 * i + 1] * (y[b].bsums[4 * i + 2] + y[b].bsums[4 * i + 3]);
            acc_m[i] = QFMA(dmin, (float)prod, acc_m[i]);
        }
    }
    *s = x86_hsum8(acc) + ((acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]));
}

/* Q5_K: as Q4_K plus a fifth bit: element 32j + l has bit j of qh[l]. */
void QK(q_vec_dot_q5_K_q8_K)(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_K *x = vx;
    const block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int32_t isum = 0, summs = 0;
        for (int j = 0; j < QK_K / 32; j++) {
            int sc, m;
            kq_scale_min(j, x[b].scales, &sc, &m);
            summs += m * (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
            const uint8_t *qs = x[b].qs + 32 * (j / 2);
            int shift = 4 * (j % 2);
            int32_t part = 0;
            for (int l = 0; l < 32; l++) {
                int q = ((qs[l] >> shift) & 0x0F) | (((x[b].qh[l] >> j) & 1) << 4);
                part += q * y[b].qs[32 * j + l];
            }
            isum += sc * part;
        }
        float d = h2f(x[b].d) * y[b].d, dmin = h2f(x[b].dmin) * y[b].d;
        sum += d * (float)isum - dmin * (float)summs;
    }
    *s = sum;
}

/* Q6_K: element 128c + 32k + l: low 4 bits from ql[64c + l + 32(k&1)] (low nibble for
 * k < 2, high for k >= 2), high 2 bits (qh[32c + l] >> 2k) & 3; value - 32; 16 int8
 * scales, one per 16 elements. */
void QK(q_vec_dot_q6_K_q8_K)(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q6_K *x = vx;
    const block_q8_K *y = vy;
    float acc[8] = { 0 };
    for (int64_t b = 0; b < n / QK_K; b++) {
        int32_t lane[8] = { 0 };
        for (int c = 0; c < 2; c++) {
            for (int k = 0; k < 4; k++) {   /* elements 128c + 32k + l, l < 32 */
                const uint8_t *ql = x[b].ql + 64 * c + 32 * (k & 1), *qh = x[b].qh + 32 * c;
                const int8_t *q8 = y[b].qs + 128 * c + 32 * k;
                const int lo_shift = k < 2 ? 0 : 4;
                for (int l = 0; l < 8; l++) {   /* lanes 0..3: first scale, 4..7: second */
                    int32_t sum = 0;
                    for (int i = 0; i < 4; i++) {
                        const int e = 4 * l + i;
                        const int q = (((ql[e] >> lo_shift) & 0x0F) | (((qh[e] >> (2 * k)) & 3) << 4)) - 32;
                        sum += q * q8[e];
                    }
                    lane[l] += x[b].scales[8 * c + 2 * k + l / 4] * sum;
                }
            }
        }
        const float d = y[b].d * h2f(x[b].d);
        for (int l = 0; l < 8; l++) acc[l] = QFMA(d, (float)lane[l], acc[l]);
    }
    *s = x86_hsum8(acc);
}
