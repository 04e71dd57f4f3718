/* harness.h - the suite's tiny test framework.
 * TEST(name) { ... } registers a test (gcc constructor); CHECK(cond, fmt...)
 * records a failure and returns from the test; SKIP(fmt...) marks it skipped.
 * The runner (tests/main.c) prints one line per test and the closing
 * "N passed, N failed, N skipped" line. */
#ifndef SDC_TESTS_HARNESS_H
#define SDC_TESTS_HARNESS_H

#include <stddef.h>
#include <stdio.h>

typedef void (*test_fn)(void);
void test_register(const char *name, const char *file, test_fn fn);
void test_fail_at(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int test_failed(void);

/* Paths: fixtures in the tree, ../shared beside the repo, the built CLI. */
const char *fixture_path(const char *rel); /* tests/fixtures/<rel>; static buffer ring */
const char *shared_path(const char *rel);  /* ../shared/<rel> or NULL when absent */
const char *sdc_binary(void);              /* build/sdc (env SDC_BIN overrides) */
/* A CPU backend context (all cores) for tests that run ops or components
 * without a model; made on first use, shared by those tests. */
typedef struct op_ctx op_ctx;
op_ctx *test_cx(void);
const char *tmp_path(const char *name);    /* a fresh per-run temp dir + name */
/* sh -c cmd with stdout+stderr captured into out[n] (out may be NULL);
 * returns the exit code, 128 + signal when killed, -1 when it cannot run. */
int run_cmd(const char *cmd, char *out, size_t n);

#define TEST(name)                                                                  \
    static void test_##name(void);                                                  \
    __attribute__((constructor)) static void test_reg_##name(void) {                \
        test_register(#name, __FILE__, test_##name);                                \
    }                                                                               \
    static void test_##name(void)

#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (!(cond)) {                                     \
            test_fail_at(__FILE__, __LINE__, __VA_ARGS__); \
            return;                                        \
        }                                                  \
    } while (0)

/* Check a sdc_status call; the failure message carries sdc_last_error(). */
#define CHECK_OK(expr)                                                                          \
    do {                                                                                        \
        sdc_status check_st_ = (expr);                                                          \
        if (check_st_) {                                                                        \
            test_fail_at(__FILE__, __LINE__, "%s failed: %s", #expr, sdc_last_error());         \
            return;                                                                             \
        }                                                                                       \
    } while (0)

#define SKIP(...)              \
    do {                       \
        test_skip(__VA_ARGS__); \
        return;                \
    } while (0)

#endif
