/* golden_util.h — helpers shared by the tests that read ../shared/golden: locating the
 * shared directory, reading a case JSON's token arrays and raw f32 logits, and the
 * relative-L2 / argmax / margin measures the golden README defines. Header-only (each
 * test is one translation unit). Memory returned is malloc'ed and owned by the caller. */
#ifndef QUARREL_TESTS_GOLDEN_UTIL_H
#define QUARREL_TESTS_GOLDEN_UTIL_H

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static inline const char *golden_shared_dir(void) { return test_shared_dir(); }

/* Reads a whole file; NULL if missing. */
static inline void *golden_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); fclose(f); return NULL; }
    fclose(f);
    if (size) *size = (size_t)n;
    return buf;
}

/* JSON int array -> malloc'ed int32 array. */
static inline int32_t *golden_int_array(json_t *arr, int32_t *n) {
    *n = (int32_t)json_array_size(arr);
    int32_t *v = malloc(sizeof(int32_t) * (size_t)(*n > 0 ? *n : 1));
    for (int32_t i = 0; i < *n; i++) v[i] = (int32_t)json_integer_value(json_array_get(arr, (size_t)i));
    return v;
}

static inline double golden_rel_l2(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* argmax, ties to the lowest id; *margin = top1 - top2. */
static inline int32_t golden_argmax(const float *v, int32_t n, float *margin) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    float second = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        if (i != best && v[i] > second) second = v[i];
    if (margin) *margin = v[best] - second;
    return best;
}

#endif
