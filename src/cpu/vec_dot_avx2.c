/* vec_dot_avx2.c — the x86 AVX2+FMA variant of the CPU dot-product kernels: the same
 * bodies as the scalar reference (vec_dot_impl.h) compiled for AVX2, FMA and F16C, so the
 * fused multiply-adds and half conversions are single instructions and the lane loops vectorize. Results are
 * bit-identical to the scalar variant (tests/test_matmul.c checks). cpu/matmul.c picks
 * these rows only when the CPU reports AVX2 and FMA. Empty on other architectures. */
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cpu/f16.h"
#include "cpu/vec_dot.h"
#include "tensor/quants/blocks.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

#define QK(name) name##_avx2
#define QH2F(h) _cvtsh_ss(h)   /* F16C: exact, as the table */
#include "cpu/vec_dot_impl.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
