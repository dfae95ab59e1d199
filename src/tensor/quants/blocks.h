/* blocks.h — ggml's quantized block structs, byte for byte, shared by the reference
 * (de)quantizers here, the SIMD kernels (src/cpu) and the CUDA kernels.
 *
 * Every field is a byte array or a naturally aligned 16/32-bit scalar, so the structs
 * have no padding and their sizes equal ggml's bytes per block (asserted below). Halves
 * (q_half) are IEEE binary16 bit patterns, little-endian like every GGUF field.
 * Field meanings and bit layouts are documented at the top of each family's file:
 * legacy.c (Q4_0..Q8_1), kquants.c (Q2_K..Q8_K), iq4nl.c, mxfp4.c. Owns no memory. */
#ifndef QUARREL_TENSOR_QUANTS_BLOCKS_H
#define QUARREL_TENSOR_QUANTS_BLOCKS_H

#include <stdint.h>

typedef uint16_t q_half;  /* IEEE binary16 bits */

#define QK4_0   32
#define QK4_1   32
#define QK5_0   32
#define QK5_1   32
#define QK8_0   32
#define QK8_1   32
#define QK_K    256   /* super-block size of the k-quants and i-quants */
#define K_SCALE_SIZE 12
#define QK4_NL  32
#define QK_MXFP4 32

typedef struct block_q4_0 { q_half d; uint8_t qs[QK4_0 / 2]; } block_q4_0;
typedef struct block_q4_1 { q_half d; q_half m; uint8_t qs[QK4_1 / 2]; } block_q4_1;
typedef struct block_q5_0 { q_half d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } block_q5_0;
typedef struct block_q5_1 { q_half d; q_half m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } block_q5_1;
typedef struct block_q8_0 { q_half d; int8_t qs[QK8_0]; } block_q8_0;
typedef struct block_q8_1 { q_half d; q_half s; int8_t qs[QK8_1]; } block_q8_1;

typedef struct block_q2_K {
    uint8_t scales[QK_K / 16];  /* per 16: low nibble scale, high nibble min */
    uint8_t qs[QK_K / 4];       /* 2-bit quants */
    q_half  d;                  /* super-scale of the scales */
    q_half  dmin;               /* super-scale of the mins */
} block_q2_K;

typedef struct block_q3_K {
    uint8_t hmask[QK_K / 8];    /* high bit of each 3-bit quant */
    uint8_t qs[QK_K / 4];       /* low 2 bits */
    uint8_t scales[12];         /* 16 signed 6-bit scales, packed */
    q_half  d;
} block_q3_K;

typedef struct block_q4_K {
    q_half  d;
    q_half  dmin;
    uint8_t scales[K_SCALE_SIZE];  /* 8 scales + 8 mins, 6 bits each, packed */
    uint8_t qs[QK_K / 2];
} block_q4_K;

typedef struct block_q5_K {
    q_half  d;
    q_half  dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;

typedef struct block_q6_K {
    uint8_t ql[QK_K / 2];       /* low 4 bits */
    uint8_t qh[QK_K / 4];       /* high 2 bits */
    int8_t  scales[QK_K / 16];  /* 8-bit signed scales */
    q_half  d;
} block_q6_K;

typedef struct block_q8_K {
    float   d;                  /* binary32, not half */
    int8_t  qs[QK_K];
    int16_t bsums[QK_K / 16];   /* sums of each 16 quants */
} block_q8_K;

typedef struct block_iq4_nl { q_half d; uint8_t qs[QK4_NL / 2]; } block_iq4_nl;

typedef struct block_mxfp4 {
    uint8_t e;                  /* E8M0 shared exponent */
    uint8_t qs[QK_MXFP4 / 2];   /* E2M1 codes */
} block_mxfp4;

_Static_assert(sizeof(block_q4_0) == 18, "block_q4_0 size");
_Static_assert(sizeof(block_q4_1) == 20, "block_q4_1 size");
_Static_assert(sizeof(block_q5_0) == 22, "block_q5_0 size");
_Static_assert(sizeof(block_q5_1) == 24, "block_q5_1 size");
_Static_assert(sizeof(block_q8_0) == 34, "block_q8_0 size");
_Static_assert(sizeof(block_q8_1) == 36, "block_q8_1 size");
_Static_assert(sizeof(block_q2_K) == 84, "block_q2_K size");
_Static_assert(sizeof(block_q3_K) == 110, "block_q3_K size");
_Static_assert(sizeof(block_q4_K) == 144, "block_q4_K size");
_Static_assert(sizeof(block_q5_K) == 176, "block_q5_K size");
_Static_assert(sizeof(block_q6_K) == 210, "block_q6_K size");
_Static_assert(sizeof(block_q8_K) == 292, "block_q8_K size");
_Static_assert(sizeof(block_iq4_nl) == 18, "block_iq4_nl size");
_Static_assert(sizeof(block_mxfp4) == 17, "block_mxfp4 size");

#endif
