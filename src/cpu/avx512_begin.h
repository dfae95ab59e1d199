/* avx512_begin.h — opens the AVX-512 kernel set's compilation region: the functions that
 * follow are compiled for AVX-512 F/BW/VL + VNNI with AVX2/FMA/F16C, whatever the build's
 * -march; cpu/avx512_end.h closes it. x86-64 only: the including file guards both with
 * __x86_64__ and checks the CPU first (q_cpu_isa_supported). Deliberately no include guard.
 *
 * Q_AVX512_EMU (tests only): the same source over SIMDe's portable emulation of every
 * intrinsic (Debian's libsimde-dev), so the kernels are checked bit for bit on CPUs
 * without AVX-512: no target region, and Q_AVX512_NAME suffixes the exported names with
 * _emu so both builds link into one test. */
#if defined(Q_AVX512_EMU)
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/f16c.h>
#define Q_AVX512_NAME(name) name##_emu
/* SIMDe 0.7.4 lacks vcvtdq2ps, vcvtph2ps and vpmovzxwd on zmm: their two 256-bit halves
 * (each conversion exact). */
#ifndef Q_AVX512_EMU_SHIMS
#define Q_AVX512_EMU_SHIMS
static inline simde__m512 q_emu_join_ps(simde__m256 lo, simde__m256 hi) {
    return simde_mm512_castpd_ps(simde_mm512_insertf64x4(simde_mm512_castps_pd(simde_mm512_castps256_ps512(lo)),
                                                         simde_mm256_castps_pd(hi), 1));
}
static inline simde__m512 q_emu_mm512_cvtepi32_ps(simde__m512i a) {
    return q_emu_join_ps(simde_mm256_cvtepi32_ps(simde_mm512_castsi512_si256(a)),
                         simde_mm256_cvtepi32_ps(simde_mm512_extracti64x4_epi64(a, 1)));
}
static inline simde__m512 q_emu_mm512_cvtph_ps(simde__m256i h) {   /* exact */
    return q_emu_join_ps(simde_mm256_cvtph_ps(simde_mm256_castsi256_si128(h)),
                         simde_mm256_cvtph_ps(simde_mm256_extracti128_si256(h, 1)));
}
static inline simde__m512i q_emu_mm512_cvtepu16_epi32(simde__m256i a) {
    return simde_mm512_inserti64x4(simde_mm512_castsi256_si512(simde_mm256_cvtepu16_epi32(simde_mm256_castsi256_si128(a))),
                                   simde_mm256_cvtepu16_epi32(simde_mm256_extracti128_si256(a, 1)), 1);
}
#endif
#undef _mm512_cvtepi32_ps
#define _mm512_cvtepi32_ps(a) q_emu_mm512_cvtepi32_ps(a)
#undef _mm512_cvtph_ps
#define _mm512_cvtph_ps(a) q_emu_mm512_cvtph_ps(a)
#undef _mm512_cvtepu16_epi32
#define _mm512_cvtepu16_epi32(a) q_emu_mm512_cvtepu16_epi32(a)
#else
#include <immintrin.h>
#define Q_AVX512_NAME(name) name
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")
#endif
#endif
