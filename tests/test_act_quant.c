/* test_act_quant.c — the matmul's activation quantizers (cpu/act_quant.c): every kernel
 * set's Q8_0 / Q8_1 / Q8_K converter against the scalar one, byte for byte, on random
 * rows and on edge blocks (zeros, huge values, infinities, denormals, exact ties, the
 * largest magnitude appearing with both signs); and the scalar one against values
 * worked out by hand (a block whose maximum is 127 has scale 1, so the quants are the
 * inputs rounded half to even). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cpu/backend.h"
#include "tensor/quants/blocks.h"

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint64_t rng_next(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static float frand(void) {   /* uniform in [-1, 1) */
    return (float)((rng_next() >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

enum { N = 1024 };   /* 32 Q8_0 blocks, 4 Q8_K blocks */

static const q_type vtypes[] = { Q_TYPE_Q8_0, Q_TYPE_Q8_1, Q_TYPE_Q8_K };

/* Every supported set's converter equals the scalar one on x[0..N). */
static void check_sets_equal(const float *x, const char *what) {
    for (size_t t = 0; t < sizeof vtypes / sizeof vtypes[0]; t++) {
        const size_t rb = q_row_size(vtypes[t], N);
        uint8_t *ref = malloc(rb), *got = malloc(rb);
        q_cpu_act_quantizer_isa(vtypes[t], Q_CPU_ISA_SCALAR)(x, ref, N);
        for (int isa = 1; isa < Q_CPU_ISA_COUNT; isa++) {
            if (!q_cpu_isa_supported((q_cpu_isa)isa)) continue;
            memset(got, 0xA5, rb);
            q_cpu_act_quantizer_isa(vtypes[t], (q_cpu_isa)isa)(x, got, N);
            if (memcmp(ref, got, rb) != 0) {
                size_t k = 0;
                while (ref[k] == got[k]) k++;
                fail_msg("%s: %s %s differs from scalar at byte %zu (%d vs %d)", what, q_type_name(vtypes[t]),
                         q_cpu_isa_name((q_cpu_isa)isa), k, ref[k], got[k]);
            }
        }
        free(ref);
        free(got);
    }
}

static void test_random_rows(void **state) {
    (void)state;
    float *x = malloc(sizeof(float) * N);
    for (int rep = 0; rep < 200; rep++) {
        const float scale = ldexpf(1.0f, (int)(rng_next() % 60) - 30);
        for (int i = 0; i < N; i++) x[i] = frand() * scale;
        check_sets_equal(x, "random");
    }
    free(x);
}

static void test_edge_blocks(void **state) {
    (void)state;
    float *x = malloc(sizeof(float) * N);
    for (int kind = 0; kind < 9; kind++) {
        for (int i = 0; i < N; i++) x[i] = frand();
        for (int blk = 0; blk < N / 256; blk++) {   /* each Q8_K block (8 Q8_0 blocks) one case */
            float *b = x + 256 * blk;
            switch (kind) {
            case 0: memset(b, 0, sizeof(float) * 256); break;                      /* all zeros */
            case 1: for (int i = 0; i < 256; i++) b[i] = (i % 3 ? 0.0f : -0.0f); break;
            case 2: for (int i = 0; i < 256; i++) b[i] *= 3.0e38f; break;            /* huge, finite */
            case 3: b[17] = INFINITY; b[200] = -INFINITY; break;
            case 4: for (int i = 0; i < 256; i++) b[i] *= 1e-39f; break;             /* all denormal */
            case 5: for (int i = 0; i < 256; i++) b[i] *= 1e-37f; break;             /* 127 / max overflows */
            case 6: for (int i = 0; i < 256; i += 2) b[i] *= 1e-40f; break;          /* denormals among normals */
            case 7:   /* exact ties: max 127, halves in between */
                for (int i = 0; i < 256; i++) b[i] = (float)((int)(rng_next() % 254) - 127) + 0.5f;
                b[blk * 7] = 127.0f;
                break;
            case 8:   /* the largest magnitude with both signs: the first one sets Q8_K's sign */
                b[40] = -2.0f;
                b[41] = 2.0f;
                b[100] = 2.0f;
                b[3] = blk % 2 ? 2.0f : -2.0f;
                break;
            }
        }
        char what[32];
        snprintf(what, sizeof what, "edge kind %d", kind);
        check_sets_equal(x, what);
    }
    free(x);
}

/* Hand-worked values: max |x| = 127 gives Q8_0 scale 1 (id = 127 / 127) and Q8_K
 * iscale = -1, so the quants are the inputs rounded half to even (negated for Q8_K). */
static void test_scalar_by_hand(void **state) {
    (void)state;
    static const float in[8] = { 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 126.5f, 127.0f };
    static const int8_t want[8] = { 0, 2, 2, 0, -2, -2, 126, 127 };
    float x[256] = { 0 };
    for (int i = 0; i < 256; i++) x[i] = in[i % 8];
    for (int isa = 0; isa < Q_CPU_ISA_COUNT; isa++) {
        if (!q_cpu_isa_supported((q_cpu_isa)isa)) continue;
        block_q8_0 b0[8];
        q_cpu_act_quantizer_isa(Q_TYPE_Q8_0, (q_cpu_isa)isa)(x, b0, 256);
        block_q8_1 b1[8];
        q_cpu_act_quantizer_isa(Q_TYPE_Q8_1, (q_cpu_isa)isa)(x, b1, 256);
        block_q8_K bk;
        q_cpu_act_quantizer_isa(Q_TYPE_Q8_K, (q_cpu_isa)isa)(x, &bk, 256);
        assert_int_equal(b0[0].d, q_fp32_to_fp16(1.0f));
        assert_true(bk.d == -1.0f);
        int sum = 0;
        for (int i = 0; i < 32; i++) {
            assert_int_equal(b0[0].qs[i], want[i % 8]);
            assert_int_equal(b1[0].qs[i], want[i % 8]);
            sum += want[i % 8];
        }
        for (int i = 0; i < 256; i++) assert_int_equal(bk.qs[i], -want[i % 8]);
        for (int s = 0; s < 16; s++) assert_int_equal(bk.bsums[s], -2 * (0 + 2 + 2 + 0 - 2 - 2 + 126 + 127));
        assert_int_equal(b1[0].s, q_fp32_to_fp16((float)sum));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_rows),
        cmocka_unit_test(test_edge_blocks),
        cmocka_unit_test(test_scalar_by_hand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
