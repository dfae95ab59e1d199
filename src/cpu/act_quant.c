/* act_quant.c — conversion of activation rows to a weight's vec_dot_type, with the
 * semantics of ggml's x86 CPU build (what produced the goldens), and the exp used by
 * SiLU and softmax.
 *
 * Q8_0 / Q8_1: ggml-cpu's x86 row quantizer differs from the reference quantizer of
 * src/tensor in two ways: the inverse scale is 127/amax (not 1/(amax/127)) and values
 * round half to even (not half away from zero). Both can flip a quant by one step, so
 * the matmul uses this variant; other types use the reference from_float.
 *
 * AVX2 twins of the Q8_0, Q8_1 and Q8_K quantizers (the matmul's activation conversion,
 * 7-8% of prefill when scalar): bit-identical to the scalar ones for every input
 * without NaN (tests/test_act_quant.c). Why they can be: the block maximum of |x| is
 * exact in any order; the scale, its inverse and the half conversions stay the same
 * scalar expressions; x * id is one IEEE multiply either way; _mm256_cvtps_epi32 rounds
 * half to even under the default MXCSR exactly like lrintf. The one difference is an
 * out-of-range conversion (inf or NaN products, from a denormal or infinite block
 * maximum): lrintf returns LONG_MIN, which the scalar casts turn into 0, while the
 * vector conversion returns INT_MIN; the twins map INT_MIN to 0 before packing (no
 * in-range product can be INT_MIN: |x * id| <= 127.00002).
 *
 * q_cpu_expf: the exp of ggml's AVX-512 softmax and SiLU (a range reduction
 * x = n ln2 + b with a two-part ln2, then a degree-5 polynomial in b evaluated with fused
 * multiply-adds, scaled by 2^n), written here as scalar code with fmaf so that every
 * result is bit-identical to that kernel. Owns no memory. */
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

#if defined(__x86_64__)
#include "cpu/avx2_begin.h"

/* max |x[i]| over 32 * n4 floats (n4 groups of 32), exact in any order. NaN lanes are
 * skipped (maxps returns its second operand when either is NaN). */
static inline float avx2_absmax(const float *x, int n32) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < n32; i++)
        for (int k = 0; k < 4; k++)
            m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 32 * i + 8 * k)), m);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* lrint of x * id for 8 floats, with the scalar path's 0 where lrintf is out of range. */
static inline __m256i avx2_round8(const float *x, __m256 id) {
    const __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), id));
    return _mm256_andnot_si256(_mm256_cmpeq_epi32(v, _mm256_set1_epi32(INT32_MIN)), v);
}

/* 32 int32 in [-128, 127] (four vectors of 8 consecutive values) -> 32 int8 in order. */
static inline __m256i avx2_pack32(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);   /* lanes interleaved by 128 bits */
    const __m256i q = _mm256_packs_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(q, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* Quantizes one 32-element block with inverse scale id into qs; returns the int8 sum. */
static inline int avx2_q8_block(const float *x, float id, int8_t *qs) {
    const __m256 vid = _mm256_set1_ps(id);
    const __m256i q = avx2_pack32(avx2_round8(x, vid), avx2_round8(x + 8, vid), avx2_round8(x + 16, vid),
                                  avx2_round8(x + 24, vid));
    _mm256_storeu_si256((__m256i *)(void *)qs, q);
    const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi32(t, _mm_unpackhi_epi64(t, t));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 1));
    return _mm_cvtsi128_si32(t);
}

static void act_q8_0_avx2(const float *x, void *dst, int64_t n) {
    block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        const float amax = avx2_absmax(x, 1);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        b[i].d = q_fp32_to_fp16(d);
        (void)avx2_q8_block(x, id, b[i].qs);
    }
}

static void act_q8_1_avx2(const float *x, void *dst, int64_t n) {
    block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        const float amax = avx2_absmax(x, 1);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        b[i].d = q_fp32_to_fp16(d);
        const int sum = avx2_q8_block(x, id, b[i].qs);
        b[i].s = q_fp32_to_fp16((float)sum * d);
    }
}

/* Q8_K as src/tensor's quant_q8_K_from_float: the scale comes from the FIRST element of
 * largest magnitude, sign included (iscale = -127 / max), quants are
 * clamp(lrint(iscale * x), -127, 127), bsums the sums of each 16. */
static void act_q8_K_avx2(const float *x, void *dst, int64_t n) {
    Q_ASSERT(n % QK_K == 0);
    block_q8_K *b = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        const float amax = avx2_absmax(x, QK_K / 32);
        if (amax == 0.0f) {   /* zeros (or only NaN): the scalar path leaves an all-zero block */
            memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        int first = -1;
        const __m256 vm = _mm256_set1_ps(amax);
        for (int k = 0; k < QK_K && first < 0; k += 8) {
            const int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + k)), vm, _CMP_EQ_OQ));
            if (mask) first = k + __builtin_ctz((unsigned)mask);
        }
        Q_ASSERT(first >= 0);
        const float iscale = -127.0f / x[first];
        const __m256 vis = _mm256_set1_ps(iscale);
        const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
        for (int k = 0; k < QK_K; k += 32) {
            __m256i v[4];
            for (int j = 0; j < 4; j++)
                v[j] = _mm256_max_epi32(lo, _mm256_min_epi32(hi, avx2_round8(x + k + 8 * j, vis)));
            const __m256i q = avx2_pack32(v[0], v[1], v[2], v[3]);
            _mm256_storeu_si256((__m256i *)(void *)(b[i].qs + k), q);
            /* sums of each 16 quants: widen to int16, pairwise-add down to 2 per 16 */
            const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);   /* 16 pair sums */
            const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));    /* 8 quad sums */
            const __m256i s64 = _mm256_hadd_epi32(s32, s32);                     /* [a0+a1, a2+a3, ..] per half */
            const __m256i s128 = _mm256_hadd_epi32(s64, s64);                    /* lane 0 of each half: 16-sum */
            b[i].bsums[k / 16] = (int16_t)_mm256_extract_epi32(s128, 0);
            b[i].bsums[k / 16 + 1] = (int16_t)_mm256_extract_epi32(s128, 4);
        }
        b[i].d = 1.0f / iscale;
    }
}

#include "cpu/avx2_end.h"
#endif

q_from_float_fn q_cpu_act_quantizer_isa(q_type vt, q_cpu_isa isa) {
#if defined(__x86_64__)
    if (isa != Q_CPU_ISA_SCALAR && q_cpu_isa_supported(Q_CPU_ISA_AVX2)) {
        if (vt == Q_TYPE_Q8_0) return act_q8_0_avx2;
        if (vt == Q_TYPE_Q8_1) return act_q8_1_avx2;
        if (vt == Q_TYPE_Q8_K) return act_q8_K_avx2;
    }
#else
    (void)isa;
#endif
    if (vt == Q_TYPE_Q8_0) return act_q8_0;
    if (vt == Q_TYPE_Q8_1) return act_q8_1;
    const q_type_traits *tt = q_type_get(vt);
    return tt ? tt->from_float : NULL;
}

q_from_float_fn q_cpu_act_quantizer(q_type vt) { return q_cpu_act_quantizer_isa(vt, q_cpu_isa_best()); }

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
