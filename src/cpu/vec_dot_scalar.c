/* vec_dot_scalar.c — the portable variant of the CPU dot-product kernels (bodies in
 * vec_dot_impl.h): the reference every other variant is tested against. */
#include <math.h>
#include <string.h>

#include "cpu/f16.h"
#include "cpu/vec_dot.h"
#include "tensor/quants/blocks.h"

#define QK(name) name
#include "cpu/vec_dot_impl.h"

float q_lanes16_sum(const float a[16]) { return lanes16_sum(a); }
