/* avx512_emu_tables.h — the AVX-512 set made of its emulated kernels (the SIMDe build,
 * names suffixed _emu, CMakeLists.txt's quarrel_avx512_emu), for tests that run whole
 * models through the set on a CPU without AVX-512: avx512_emu_install() hands both tables
 * to the library (q_cpu_emulate_avx512, q_repack_emulate_avx512). Header-only; the test
 * links quarrel_avx512_emu. The rows are the native set's (Q_AVX512_MATMUL_ROWS); the
 * repack entries keep the AVX2 set's layout and pack functions, as the native ones do. */
#ifndef QUARREL_TESTS_AVX512_EMU_TABLES_H
#define QUARREL_TESTS_AVX512_EMU_TABLES_H

#include <stdbool.h>

#include "cpu/backend.h"
#include "cpu/kern_avx2.h"
#include "cpu/kern_avx2_float.h"
#include "cpu/kern_avx512.h"
#include "cpu/repack.h"

static const q_matmul_traits avx512_emu_matmul[Q_TYPE_COUNT] = {
#define AVX512_EMU_ROW(t, vt, dot, gemm) [t] = { vt, dot, gemm##_emu },
    Q_AVX512_MATMUL_ROWS(AVX512_EMU_ROW)
#undef AVX512_EMU_ROW
};

static q_repack_traits avx512_emu_repack[Q_TYPE_COUNT];

/* Installs the emulated set when the CPU runs AVX2 but not AVX-512; false otherwise (the
 * native set, or none, stays). */
static inline bool avx512_emu_install(void) {
    if (!q_cpu_isa_supported(Q_CPU_ISA_AVX2) || q_cpu_isa_supported(Q_CPU_ISA_AVX512)) return false;
    const struct { q_type t; q_gemm_fn gemm; } x8[] = {
        { Q_TYPE_Q4_0, q_avx512_gemm_x8_q4_0_q8_0_emu }, { Q_TYPE_Q8_0, q_avx512_gemm_x8_q8_0_q8_0_emu } };
    for (size_t i = 0; i < sizeof x8 / sizeof x8[0]; i++) {
        avx512_emu_repack[x8[i].t] = *q_repack_traits_isa(x8[i].t, Q_CPU_ISA_AVX2);
        avx512_emu_repack[x8[i].t].gemm = x8[i].gemm;
    }
    q_cpu_emulate_avx512(avx512_emu_matmul);
    q_repack_emulate_avx512(avx512_emu_repack);
    return true;
}

#endif
