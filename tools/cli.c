/* cli.c - argument parsing helpers shared by the subcommands. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_int(const char *flag, const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "sdc: %s expects an integer in %ld..%ld, got '%s'\n", flag, lo, hi, s);
        return 0;
    }
    *out = (int)v;
    return 1;
}

int cli_u64(const char *flag, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    if (*s == '-' || *s == '+') {
        fprintf(stderr, "sdc: %s expects a non-negative integer, got '%s'\n", flag, s);
        return 0;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end) {
        fprintf(stderr, "sdc: %s expects a non-negative integer below 2^64, got '%s'\n", flag, s);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_float(const char *flag, const char *s, double lo, double hi, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "sdc: %s expects a number in %g..%g, got '%s'\n", flag, lo, hi, s);
        return 0;
    }
    *out = (float)v;
    return 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "sdc: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(run 'sdc %s --help' for usage)\n", cmd);
    return EXIT_USAGE;
}

int cli_device(const char *cmd, const char *s, const char **out) {
    if (strcmp(s, "cpu") && strcmp(s, "cuda"))
        return !cli_usage_error(cmd, "--device must be cpu or cuda, got '%s'", s);
    *out = s;
    return 1;
}

int cli_dtype(const char *cmd, const char *s, const char **out) {
    if (strcmp(s, "f32") && strcmp(s, "f16") && strcmp(s, "bf16"))
        return !cli_usage_error(cmd, "--dtype must be f32, f16 or bf16, got '%s'", s);
    *out = s;
    return 1;
}

int cli_weights(const char *cmd, const char *s, const char **out) {
    if (strcmp(s, "q8")) return !cli_usage_error(cmd, "--weights must be q8, got '%s'", s);
    *out = s;
    return 1;
}

/* "PATH[:SCALE]" */
static int parse_lora(const char *arg, char *path, size_t n, float *scale) {
    const char *colon = strrchr(arg, ':');
    *scale = 1.0f;
    if (colon && colon[1]) {
        char *end;
        double v = strtod(colon + 1, &end);
        if (!*end) {
            if (!(v >= -100.0 && v <= 100.0)) return 0;
            *scale = (float)v;
            snprintf(path, n, "%.*s", (int)(colon - arg), arg);
            return *path != 0;
        }
    }
    snprintf(path, n, "%s", arg);
    return *path != 0;
}

int cli_lora(const char *cmd, const char *arg, cli_loras *l) {
    if (l->n == CLI_MAX_LORAS) return !cli_usage_error(cmd, "at most %d LoRAs", CLI_MAX_LORAS);
    if (!parse_lora(arg, l->buf[l->n], PATH_MAX, &l->scales[l->n]))
        return !cli_usage_error(cmd, "--lora expects PATH[:SCALE] with SCALE in [-100, 100], got '%s'", arg);
    l->paths[l->n] = l->buf[l->n];
    l->n++;
    return 1;
}
