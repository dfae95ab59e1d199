/* bench/simd_roof.c — the throughput roof of the AVX2 instructions the integer matmul
 * kernels are made of, on one core: vpmaddubsw, vpmaddwd, vfmadd, vpaddw alone and in
 * pairs, each as 8 independent chains so latency never limits. Two ops that share
 * execution pipes show a pair rate no higher than either alone; that sharing is the
 * prefill roof (docs/performance.md "Roofs"). Prints G instructions/s; divide by the clock
 * for per-cycle figures. Not a test; run it on a quiet machine (`-r` repeats, best kept).
 * Usage: bench_simd_roof [-r REPS] */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu/avx2_begin.h"

enum { N = 100000000 };   /* instructions per measurement */

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Keeps four values in registers across iterations without the compiler seeing their use
 * (only the chains an op runs on are pinned: 16 pinned values would spill). */
#define PIN4(a, b, c, d) __asm__ volatile("" : "+x"(a), "+x"(b), "+x"(c), "+x"(d))

typedef enum op { OP_MADDUBS, OP_MADD, OP_FMA, OP_ADD16, OP_COUNT } op;
static const char *const op_name[OP_COUNT] = { "maddubs", "madd", "fma", "add_epi16" };

/* One step of chain v under op k (integer ops on iv, float ops on fv). */
#define STEP(k, iv, fv, ib, fb)                                                  \
    do {                                                                         \
        if ((k) == OP_MADDUBS) iv = _mm256_maddubs_epi16(iv, ib);                \
        else if ((k) == OP_MADD) iv = _mm256_madd_epi16(iv, ib);                 \
        else if ((k) == OP_ADD16) iv = _mm256_add_epi16(iv, ib);                 \
        else fv = _mm256_fmadd_ps(fv, fb, fb);                                   \
    } while (0)

/* G instructions/s of chains 0..3 running op x and chains 4..7 op y (x == y: one op).
 * Inlined into one function per pair (RATE_FN) so every op is a constant. */
static inline __attribute__((always_inline)) double rate(op x, op y) {
    const __m256i ib = _mm256_set1_epi8(3);
    const __m256 fb = _mm256_set1_ps(1.0001f);
    __m256i i0 = ib, i1 = ib, i2 = ib, i3 = ib, i4 = ib, i5 = ib, i6 = ib, i7 = ib;
    __m256 f0 = fb, f1 = fb, f2 = fb, f3 = fb, f4 = fb, f5 = fb, f6 = fb, f7 = fb;
    const double t0 = now_s();
    for (long n = 0; n < N / 8; n++) {
        STEP(x, i0, f0, ib, fb);
        STEP(x, i1, f1, ib, fb);
        STEP(x, i2, f2, ib, fb);
        STEP(x, i3, f3, ib, fb);
        STEP(y, i4, f4, ib, fb);
        STEP(y, i5, f5, ib, fb);
        STEP(y, i6, f6, ib, fb);
        STEP(y, i7, f7, ib, fb);
        if (x == OP_FMA) PIN4(f0, f1, f2, f3);
        else PIN4(i0, i1, i2, i3);
        if (y == OP_FMA) PIN4(f4, f5, f6, f7);
        else PIN4(i4, i5, i6, i7);
    }
    const double dt = now_s() - t0;
    volatile int sink = _mm256_extract_epi32(_mm256_add_epi32(i0, i7), 0) + (int)f0[0] + (int)f7[0];
    (void)sink;
    return (double)N / dt / 1e9;
}

#define RATE_FN(x, y) static double rate_##x##_##y(void) { return rate(x, y); }
RATE_FN(OP_MADDUBS, OP_MADDUBS) RATE_FN(OP_MADDUBS, OP_MADD) RATE_FN(OP_MADDUBS, OP_FMA) RATE_FN(OP_MADDUBS, OP_ADD16)
RATE_FN(OP_MADD, OP_MADD) RATE_FN(OP_MADD, OP_FMA) RATE_FN(OP_MADD, OP_ADD16)
RATE_FN(OP_FMA, OP_FMA) RATE_FN(OP_FMA, OP_ADD16) RATE_FN(OP_ADD16, OP_ADD16)

static const struct { op x, y; double (*fn)(void); } pairs[] = {
    { OP_MADDUBS, OP_MADDUBS, rate_OP_MADDUBS_OP_MADDUBS }, { OP_MADDUBS, OP_MADD, rate_OP_MADDUBS_OP_MADD },
    { OP_MADDUBS, OP_FMA, rate_OP_MADDUBS_OP_FMA },         { OP_MADDUBS, OP_ADD16, rate_OP_MADDUBS_OP_ADD16 },
    { OP_MADD, OP_MADD, rate_OP_MADD_OP_MADD },             { OP_MADD, OP_FMA, rate_OP_MADD_OP_FMA },
    { OP_MADD, OP_ADD16, rate_OP_MADD_OP_ADD16 },           { OP_FMA, OP_FMA, rate_OP_FMA_OP_FMA },
    { OP_FMA, OP_ADD16, rate_OP_FMA_OP_ADD16 },             { OP_ADD16, OP_ADD16, rate_OP_ADD16_OP_ADD16 },
};

int main(int argc, char **argv) {
    int reps = 3;
    if (argc == 3 && !strcmp(argv[1], "-r")) reps = atoi(argv[2]);
    if (reps < 1) reps = 1;
    printf("%-22s %10s\n", "instructions", "G/s (best)");
    for (size_t k = 0; k < sizeof pairs / sizeof *pairs; k++) {
        double best = 0;
        for (int r = 0; r < reps; r++) {
            const double g = pairs[k].fn();
            best = g > best ? g : best;
        }
        char name[48];
        if (pairs[k].x == pairs[k].y) snprintf(name, sizeof name, "%s", op_name[pairs[k].x]);
        else snprintf(name, sizeof name, "%s + %s", op_name[pairs[k].x], op_name[pairs[k].y]);
        printf("%-22s %10.2f\n", name, best);
    }
    return 0;
}

#include "cpu/avx2_end.h"
