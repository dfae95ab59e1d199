/* fuzz_vocab.c — libFuzzer target: arbitrary bytes as a GGUF vocab file.
 *
 * Each input is parsed with gguf_open_buffer and loaded with q_vocab_load; a vocab that
 * loads must tokenize a short fixed text (with and without special-token parsing, with
 * add_special), give ids in range, and detokenize them. A load error is fine (hostile
 * files must fail cleanly); a crash, sanitizer report, abort or hang is a bug.
 * Seeds: tests/fuzz/corpus/fuzz_vocab/, written by tests/fuzz/make_vocab_seeds.py, plus
 * rv_*.gguf, small hostile files from a review (kept as they were found). */
#include <stdint.h>
#include <stdlib.h>

#include "quarrel/gguf.h"
#include "quarrel/tokenizer.h"

static const char k_text[] = "Hello world! <s>Ab  12,3 caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xE2\x96\x81x\n\t<|endoftext|>";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file *f = NULL;
    q_error err = { 0 };
    if (gguf_open_buffer(data, size, &f, &err) != Q_OK) return 0;
    q_vocab *v = NULL;
    if (q_vocab_load(f, &v, &err) == Q_OK) {
        for (int ps = 0; ps < 2; ps++) {
            q_tokens ids = { 0 };
            if (q_tokenize(v, k_text, sizeof k_text - 1, true, ps, &ids, &err) == Q_OK) {
                for (size_t i = 0; i < ids.n; i++)
                    if (ids.ids[i] < 0 || ids.ids[i] >= q_vocab_n_tokens(v)) abort();
                char *text;
                size_t len;
                if (q_detokenize(v, ids.ids, ids.n, ps, ps, &text, &len, &err) == Q_OK) free(text);
            }
            q_tokens_free(&ids);
        }
        q_vocab_free(v);
    }
    gguf_close(f);
    return 0;
}
