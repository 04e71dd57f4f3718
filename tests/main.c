/* main.c - test runner: runs every registered test (or those whose name
 * contains argv[1]), each in the same process, and prints the summary. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend/ops.h"
#include "harness.h"
#include "sdc.h"

typedef struct { const char *name, *file; test_fn fn; } test_entry;
static test_entry g_tests[512];
static int g_ntests;
static int g_failed, g_skipped;
static char g_msg[2048];

void test_register(const char *name, const char *file, test_fn fn) {
    if (g_ntests < (int)(sizeof g_tests / sizeof g_tests[0])) g_tests[g_ntests++] = (test_entry){name, file, fn};
}

void test_fail_at(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    int o = snprintf(g_msg, sizeof g_msg, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vsnprintf(g_msg + o, sizeof g_msg - (size_t)o, fmt, ap);
    va_end(ap);
    g_failed = 1;
}

void test_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    g_skipped = 1;
}

int test_failed(void) { return g_failed; }

static char g_root[1024] = ".";

const char *fixture_path(const char *rel) {
    static char ring[8][1024];
    static int k;
    char *b = ring[k++ & 7];
    snprintf(b, 1024, "%s/tests/fixtures/%s", g_root, rel);
    return b;
}

const char *shared_path(const char *rel) {
    static char ring[8][1024];
    static int k;
    char *b = ring[k++ & 7];
    const char *base = getenv("SDC_SHARED");
    snprintf(b, 1024, "%s/%s", base ? base : "../shared", rel);
    struct stat sb;
    return stat(b, &sb) == 0 ? b : NULL;
}

static char g_bin[1024] = "build/sdc";

/* the sdc program built beside this test binary (SDC_BIN overrides) */
const char *sdc_binary(void) {
    const char *e = getenv("SDC_BIN");
    return e ? e : g_bin;
}

op_ctx *test_cx(void) {
    static op_ctx *cx;
    if (!cx && op_ctx_create(&cx, OP_DEV_CPU, 0)) {
        fprintf(stderr, "cannot make a CPU context: %s\n", sdc_last_error());
        exit(1);
    }
    return cx;
}

const char *tmp_path(const char *name) {
    static char dir[256];
    static char ring[8][1024];
    static int k;
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/sdc-test-XXXXXX");
        if (!mkdtemp(dir)) snprintf(dir, sizeof dir, "/tmp");
    }
    char *b = ring[k++ & 7];
    snprintf(b, 1024, "%s/%s", dir, name);
    return b;
}

int run_cmd(const char *cmd, char *out, size_t n) {
    size_t len = strlen(cmd) + 8;
    char *full = malloc(len);
    if (!full) return -1;
    snprintf(full, len, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    free(full);
    if (!p) return -1;
    size_t k = 0;
    int c;
    while ((c = fgetc(p)) != EOF)
        if (out && k + 1 < n) out[k++] = (char)c;
    if (out && n) out[k] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

static int cmp_test(const void *a, const void *b) {
    const test_entry *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    return c ? c : strcmp(x->name, y->name);
}

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : NULL;
    const char *slash = strrchr(argv[0], '/');
    if (slash) snprintf(g_bin, sizeof g_bin, "%.*s/sdc", (int)(slash - argv[0]), argv[0]);
    int passed = 0, failed = 0, skipped = 0;
    qsort(g_tests, (size_t)g_ntests, sizeof g_tests[0], cmp_test);
    for (int i = 0; i < g_ntests; i++) {
        if (filter && !strstr(g_tests[i].name, filter)) continue;
        g_failed = g_skipped = 0;
        g_msg[0] = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        g_tests[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        if (g_failed) {
            failed++;
            printf("FAIL %s (%.2fs)\n     %s\n", g_tests[i].name, s, g_msg);
        } else if (g_skipped) {
            skipped++;
            printf("skip %s: %s\n", g_tests[i].name, g_msg);
        } else {
            passed++;
            printf("ok   %s (%.2fs)\n", g_tests[i].name, s);
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
