/* fuzz_tokenizer_files.c - a CLIP tokenizer folder from the input: four
 * files separated by lines of "=====" (vocab.json, merges.txt,
 * tokenizer_config.json, special_tokens_map.json; fewer parts leave the
 * optional files out), loaded and used on a fixed text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "text/clip_tokenizer.h"

static char g_dir[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    snprintf(g_dir, sizeof g_dir, "/tmp/sdc-fuzz-tok-XXXXXX");
    if (!mkdtemp(g_dir)) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    static const char *names[] = {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"};
    static const char sep[] = "\n=====\n";
    const uint8_t *p = data, *end = data + n;
    for (int k = 0; k < 4; k++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", g_dir, names[k]);
        unlink(path);
        if (!p) continue;
        const uint8_t *q = memmem(p, (size_t)(end - p), sep, sizeof sep - 1);
        size_t len = q ? (size_t)(q - p) : (size_t)(end - p);
        FILE *f = fopen(path, "wb");
        if (!f) abort();
        fwrite(p, 1, len, f);
        fclose(f);
        p = q ? q + sizeof sep - 1 : NULL;
    }
    clip_tokenizer *t;
    if (clip_tokenizer_load(&t, g_dir)) return 0;
    static const char text[] = "a photo of an <|endoftext|> astronaut riding a horse, caf\xc3\xa9 \xe4\xb8\xad 123";
    char **toks;
    int32_t *ids;
    int nt;
    if (!clip_tokenize(t, text, sizeof text - 1, &toks, &ids, &nt)) clip_tokens_free(toks, ids, nt);
    int64_t in[77];
    clip_encode(t, text, sizeof text - 1, 77, in, NULL, NULL);
    clip_tokenizer_free(t);
    return 0;
}
