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
