/* fuzz_template.c — libFuzzer target: arbitrary bytes as a chat template, compiled and
 * rendered against a fixed small conversation (with a tool call and a tool). Must never
 * crash, leak or hang: every loop, recursion and allocation of a render is bounded.
 * Seed corpus: tests/fuzz/corpus/fuzz_template/ (real model templates). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <jansson.h>

#include "quarrel/template.h"

static const char *const vars_json =
    "{\"messages\": ["
    "{\"role\": \"system\", \"content\": \"Be brief.\"},"
    "{\"role\": \"user\", \"content\": \"Weather in Paris? \\u00e9\\u6771\"},"
    "{\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"id\": \"c1\", \"type\": \"function\","
    " \"function\": {\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}}}]},"
    "{\"role\": \"tool\", \"tool_call_id\": \"c1\", \"name\": \"get_weather\", \"content\": \"{\\\"t\\\": 18}\"},"
    "{\"role\": \"assistant\", \"content\": \"  It is 18C.  \"}],"
    "\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"d\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {\"location\": {\"type\": \"string\"}},"
    " \"required\": [\"location\"]}}}],"
    "\"documents\": null, \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static json_t *vars;
    if (!vars) vars = json_loads(vars_json, 0, NULL);
    if (!vars) abort();
    q_error err;
    q_template *t = NULL;
    if (q_template_compile((const char *)data, size, &t, &err) != Q_OK) return 0;
    static const struct tm now = { .tm_year = 126, .tm_mday = 15, .tm_wday = 4, .tm_yday = 14 };
    q_template_opts opts = { .now = &now, .max_output = 1u << 20, .max_memory = 64u << 20, .max_seconds = 2.0 };
    char *out = NULL;
    size_t len = 0;
    if (q_template_render(t, vars, &opts, &out, &len, &err) == Q_OK) free(out);
    q_template_free(t);
    return 0;
}
