/* bench_hostile_input.c - time of the text parsers on 1 MB of hostile
 * input, each against a budget it prints beside the time (never an
 * assertion): the CLIP tokenizer on 1 MB prompts of several shapes (one run
 * of letters is one BPE word: quadratic before the heap merge), and the
 * infotext parser (src/pipeline) on 1 MB texts (one run of letters: quadratic
 * before the key-run skip). A quadratic parser takes minutes here.
 *
 *   build/bench_hostile_input [--tokenizer DIR] [--mb N]
 * (default DIR: ../shared/clip-vocab when present, else the tiny fixture vocab) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pipeline/infotext_parse.h"
#include "bench_common.h"
#include "text/clip_tokenizer.h"

#define BUDGET_S 2.0 /* per MB, on a 2-core machine; a quadratic parser takes minutes */

typedef void (*fill_fn)(char *s, size_t n);

static unsigned rnd(void) {
    static unsigned x = 12345;
    x = x * 1103515245u + 12345u;
    return x >> 8;
}
static void fill_letters(char *s, size_t n) {
    for (size_t i = 0; i < n; i++) s[i] = (char)('a' + rnd() % 26);
}
static void fill_same(char *s, size_t n) { memset(s, 'a', n); }
static void fill_words(char *s, size_t n) {
    for (size_t i = 0; i < n; i++) s[i] = rnd() % 6 ? (char)('a' + rnd() % 26) : ' ';
}
static void fill_cjk(char *s, size_t n) { /* U+4E00.. as 3-byte UTF-8 */
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned c = 0x4E00 + rnd() % 0x5000;
        s[i] = (char)(0xE0 | c >> 12), s[i + 1] = (char)(0x80 | (c >> 6 & 63)), s[i + 2] = (char)(0x80 | (c & 63));
    }
    memset(s + i, ' ', n - i);
}
static void fill_marks(char *s, size_t n) { /* 'a' then combining marks of alternating classes (NFC reorders) */
    size_t i = 0;
    s[i++] = 'a';
    for (; i + 2 <= n; i += 2) {
        unsigned c = (i / 2) % 2 ? 0x0301 : 0x0316; /* class 230, class 220 */
        s[i] = (char)(0xC0 | c >> 6), s[i + 1] = (char)(0x80 | (c & 63));
    }
    memset(s + i, ' ', n - i);
}
static void fill_keys(char *s, size_t n) { /* "Steps: 20, " pairs with long keys, quotes and backslashes */
    for (size_t i = 0; i < n; i++) {
        unsigned r = rnd() % 40;
        s[i] = r < 30 ? (char)('a' + r % 26) : r < 33 ? ':' : r < 35 ? ',' : r < 37 ? '"' : r < 38 ? '\\' : ' ';
    }
}

static int dir_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int main(int argc, char **argv) {
    const char *dir = dir_exists("../shared/clip-vocab") ? "../shared/clip-vocab" : "tests/fixtures/vocab-tiny";
    int mb = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--mb") && i + 1 < argc) mb = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_hostile_input [--tokenizer DIR] [--mb N]\n");
            return 2;
        }
    }
    if (mb < 1) mb = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    clip_tokenizer *t;
    if (clip_tokenizer_load(&t, dir)) {
        fprintf(stderr, "bench_hostile_input: %s\n", sdc_last_error());
        return 1;
    }
    size_t n = (size_t)mb << 20;
    char *s = malloc(n + 1);
    int64_t ids[77];
    struct {
        const char *name;
        fill_fn fill;
    } shapes[] = {{"random letters (one word)", fill_letters},
                  {"one letter repeated", fill_same},
                  {"words", fill_words},
                  {"CJK", fill_cjk},
                  {"combining marks", fill_marks},
                  {"keys, quotes, backslashes", fill_keys}};
    double budget = BUDGET_S * mb;
    printf("tokenizer %s, %d MB inputs, budget %.1f s each\n", dir, mb, budget);
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        shapes[k].fill(s, n);
        s[n] = 0;
        double t0 = bench_now();
        sdc_status st = clip_encode(t, s, n, 77, ids, NULL, NULL);
        double dt = bench_now() - t0;
        printf("  clip_encode     %-28s %7.3f s  %s%s\n", shapes[k].name, dt, st ? "error: " : "",
               st             ? sdc_last_error()
               : dt <= budget ? "within budget"
                              : "OVER BUDGET");
        t0 = bench_now();
        cJSON *j = infotext_parse(s);
        dt = bench_now() - t0;
        printf("  infotext_parse  %-28s %7.3f s  %s\n", shapes[k].name, dt,
               !j             ? "out of memory"
               : dt <= budget ? "within budget"
                              : "OVER BUDGET");
        cJSON_Delete(j);
    }
    printf("peak RSS %.0f MiB\n", bench_peak_rss_mib());
    free(s);
    clip_tokenizer_free(t);
    return 0;
}
