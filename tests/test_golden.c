/* test_golden.c — the llama / granite forward pass against llama.cpp's logits, for the
 * models with float weights (F32, F16, BF16, stories260K); the quantized ones are in
 * test_golden_quant.c. What is checked, and the tolerances: tests/golden_check.h. */
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "golden_check.h"

static bool want_float(const char *dir) { return !golden_is_quantized(dir); }

static void test_golden_float_models(void **state) {
    (void)state;
    golden_run_all(want_float, 8);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_float_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
