/* act_quant.c — conversion of activation rows to a weight's vec_dot_type, with the
 * semantics of ggml's x86 CPU build (what produced the goldens), and the exp used by
 * SiLU and softmax.
 *
 * Q8_0 / Q8_1: ggml-cpu's x86 row quantizer differs from the reference quantizer of
 * src/tensor in two ways: the inverse scale is 127/amax (not 1/(amax/127)) and values
 * round half to even (not half away from zero). Both can flip a quant by one step, so
 * the matmul uses this variant; other types use the reference from_float.
 *
 * q_cpu_expf: the exp of ggml's AVX-512 softmax and SiLU (a range reduction
 * x = n ln2 + b with a two-part ln2, then a degree-5 polynomial in b evaluated with fused
 * multiply-adds, scaled by 2^n), written here as scalar code with fmaf so that every
 * result is bit-identical to that kernel. Owns no memory. */
#include <math.h>
#include <string.h>

#include "core/base.h"
#include "cpu/backend.h"
#include "cpu/f16.h"
#include "tensor/quants/blocks.h"

float q_cpu_f16_table[1 << 16];

/* Runs before main (GCC/clang constructor), so kernels never see an empty table. */
__attribute__((constructor)) static void f16_table_init(void) {
    for (uint32_t h = 0; h < (1u << 16); h++) q_cpu_f16_table[h] = q_fp16_to_fp32((uint16_t)h);
}

static float block_absmax(const float *x, int n) {
    float m = 0.0f;
    for (int i = 0; i < n; i++) m = Q_MAX(m, fabsf(x[i]));
    return m;
}

static void act_q8_0(const float *x, void *dst, int64_t n) {
    block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        const float amax = block_absmax(x, QK8_0);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        b[i].d = q_fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; j++) b[i].qs[j] = (int8_t)lrintf(x[j] * id);
    }
}

static void act_q8_1(const float *x, void *dst, int64_t n) {
    block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        const float amax = block_absmax(x, QK8_1);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int sum = 0;
        b[i].d = q_fp32_to_fp16(d);
        for (int j = 0; j < QK8_1; j++) {
            b[i].qs[j] = (int8_t)lrintf(x[j] * id);
            sum += b[i].qs[j];
        }
        b[i].s = q_fp32_to_fp16((float)sum * d);
    }
}

q_from_float_fn q_cpu_act_quantizer(q_type vt) {
    if (vt == Q_TYPE_Q8_0) return act_q8_0;
    if (vt == Q_TYPE_Q8_1) return act_q8_1;
    const q_type_traits *tt = q_type_get(vt);
    return tt ? tt->from_float : NULL;
}

float q_cpu_expf(float x) {
    if (x == -INFINITY) return 0.0f;
    if (isnan(x)) return x;
    const float shift = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, shift);   /* x / ln2, rounded to an integer */
    const float n = z - shift;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    if (fabsf(n) > 126.0f) return expf(x);   /* over/underflow range: the kernel's slow path */
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                         u, fmaf(0x1.ffffecp-1f, b, 1.0f));
    return ldexpf(j, (int)n);
}
