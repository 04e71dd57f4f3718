/* fuzz_tokenizer_text.c - any bytes as a prompt through the CLIP tokenizer
 * (the real vocabulary from ../shared/clip-vocab when present, else the tiny
 * fixture one), and the heap BPE merge checked against the reference loop
 * on the same bytes (a difference aborts). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_util.h"
#include "text/clip_tokenizer.h"
#include "text/tokenizer_bpe.h"

static clip_tokenizer *g_tok;
static tok_bpe g_bpe;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    struct stat sb;
    const char *dir = stat(fuzz_root_path("../shared/clip-vocab/merges.txt"), &sb) == 0
                          ? fuzz_root_path("../shared/clip-vocab")
                          : fuzz_root_path("tests/fixtures/vocab-tiny");
    char merges[4200];
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    if (clip_tokenizer_load(&g_tok, dir) || tok_bpe_load(&g_bpe, merges, 49152 - 256 - 2 + 1)) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char **toks;
    int32_t *ids;
    int nt;
    if (!clip_tokenize(g_tok, (const char *)data, n, &toks, &ids, &nt)) {
        for (int i = 0; i < nt; i++) fuzz_require_utf8(toks[i], strlen(toks[i]), "a token");
        clip_tokens_free(toks, ids, nt);
    }
    int64_t in[77];
    clip_encode(g_tok, (const char *)data, n, 77, in, NULL, NULL);
    if (n >= 1 && n <= 4096) { /* the two merge loops agree on the raw bytes as one word */
        int32_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
        size_t ka = tok_bpe_word_simple(&g_bpe, data, n, a), kb = 0;
        if (tok_bpe_word(&g_bpe, data, n, b, &kb) || ka != kb || memcmp(a, b, ka * sizeof *a)) abort();
        free(a), free(b);
    }
    return 0;
}
