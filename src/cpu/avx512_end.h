/* avx512_end.h — closes the region cpu/avx512_begin.h opened. No include guard. */
#if !defined(Q_AVX512_EMU)
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
#undef Q_AVX512_NAME
