/* fuzz_prompts.c - a prompts file (the first byte: 1 = JSONL by name, 0 =
 * by content), every line's fields range-checked. */
#include <stddef.h>
#include <stdint.h>
#include "dataset/prompts_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (n < 1) return 0;
    prompt_list l;
    if (!prompts_parse((const char *)data + 1, n - 1, "fuzz.txt", data[0] & 1, &l)) prompts_free(&l);
    return 0;
}
