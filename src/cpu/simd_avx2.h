/* simd_avx2.h — AVX2+FMA vector helpers shared by the AVX2 op and attention kernels
 * (cpu/ops_avx2.c, cpu/attention_avx2.c). Static inline; include it inside a region
 * compiled for avx2,fma,f16c (the including file's target pragma), after <immintrin.h>.
 * Every helper is bit-identical to the scalar code it names. */
#ifndef QUARREL_CPU_SIMD_AVX2_H
#define QUARREL_CPU_SIMD_AVX2_H

#include <math.h>

#include "cpu/backend.h"

#define QS_INLINE static inline __attribute__((always_inline))

/* q_lanes16_sum of lanes lo (0..7) and hi (8..15): t8 = hi + lo, t4 = t8[4..7] + t8[0..3],
 * then (t4[0] + t4[2]) + (t4[1] + t4[3]). */
QS_INLINE float qs_hsum16(__m256 lo, __m256 hi) {
    const __m256 t8 = _mm256_add_ps(hi, lo);
    const __m128 t4 = _mm_add_ps(_mm256_extractf128_ps(t8, 1), _mm256_castps256_ps128(t8));
    const __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
    return _mm_cvtss_f32(_mm_add_ss(t2, _mm_movehdup_ps(t2)));
}

/* q_cpu_expf on 8 lanes, bit for bit: the same range reduction and polynomial, 2^n
 * built from its exponent bits (j * 2^n rounds once, as ldexpf does). Lanes outside the
 * fast range (|n| > 126: huge, tiny, -inf) or NaN go through q_cpu_expf itself. */
QS_INLINE __m256 qs_expf8(__m256 x) {
    const __m256 shift = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), shift);
    const __m256 n = _mm256_sub_ps(z, shift);
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                      _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 p5 = _mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f));
    const __m256 p3 = _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f));
    const __m256 p1 = _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b, _mm256_set1_ps(1.0f));
    const __m256 j = _mm256_fmadd_ps(_mm256_fmadd_ps(p5, u, p3), u, p1);
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 r = _mm256_mul_ps(j, _mm256_castsi256_ps(e));
    const __m256 an = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
    const __m256 slow = _mm256_or_ps(_mm256_cmp_ps(an, _mm256_set1_ps(126.0f), _CMP_GT_OQ),
                                     _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    if (__builtin_expect(!_mm256_testz_ps(slow, slow), 0)) {
        float xs[8], rs[8];
        _mm256_storeu_ps(xs, x);
        _mm256_storeu_ps(rs, r);
        const int m = _mm256_movemask_ps(slow);
        for (int i = 0; i < 8; i++)
            if (m >> i & 1) rs[i] = q_cpu_expf(xs[i]);
        r = _mm256_loadu_ps(rs);
    }
    return r;
}

#endif
