/* f16.h — fast half -> float for the CPU kernels: a 64K-entry table filled once (at load,
 * from the reference q_fp16_to_fp32, so the values are identical). The table is
 * process-global, read-only after initialization. */
#ifndef QUARREL_CPU_F16_H
#define QUARREL_CPU_F16_H

#include <stdint.h>

extern float q_cpu_f16_table[1 << 16];

static inline float q_cpu_h2f(uint16_t h) { return q_cpu_f16_table[h]; }

#endif
