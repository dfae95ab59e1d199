/* qutil.h — small helpers shared by the reference quantizers: rounding, clamping and
 * half conversions. Internal; header-only (static inline). */
#ifndef QUARREL_TENSOR_QUANTS_QUTIL_H
#define QUARREL_TENSOR_QUANTS_QUTIL_H

#include <math.h>
#include <stdint.h>

#include "quarrel/types.h"
#include "tensor/quants/blocks.h"

/* Groups whose max-abs is below this are treated as all-zero (ggml's threshold). */
#define QUANT_GROUP_MAX_EPS 1e-15f

/* Round to nearest, ties to even (the default FP environment), like ggml's nearest_int.
 * lrintf is a library call, so a NaN gives an unspecified value, never UB. */
static inline int quant_nearest_int(float v) { return (int)lrintf(v); }

static inline int quant_clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* (int)v for v in [lo, hi]; saturates outside and maps NaN to lo. Stands in for C casts
 * of floats that could be out of range (UB) on non-finite input. */
static inline int quant_trunc_clamp(float v, int lo, int hi) {
    if (!(v > (float)lo)) return lo;
    if (v >= (float)hi) return hi;
    return (int)v;
}

static inline float quant_h2f(q_half h) { return q_fp16_to_fp32(h); }
static inline q_half quant_f2h(float f) { return q_fp32_to_fp16(f); }

#endif
