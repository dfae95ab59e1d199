/* avx2_begin.h — compiles the functions that follow for AVX2+FMA+F16C (the x86 kernel
 * set), whatever the build's -march; include cpu/avx2_end.h after them. x86-64 only: the
 * including file guards both with __x86_64__. Callers check the CPU first
 * (q_cpu_isa_supported). Deliberately no include guard: it opens a region. */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif
