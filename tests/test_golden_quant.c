/* test_golden_quant.c — the llama / granite forward pass against llama.cpp's logits, for
 * the models with quantized weights (Q4_0, Q8_0, Q6_K, Q4_K_M mixes, incl. MoE and
 * granite). What is checked, and the tolerances: tests/golden_check.h. */
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "golden_check.h"

static bool want_quantized(const char *dir) { return golden_is_quantized(dir); }

static void test_golden_quantized_models(void **state) {
    (void)state;
    golden_run_all(want_quantized, 5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_quantized_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
