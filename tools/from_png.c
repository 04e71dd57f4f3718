/* from_png.c - `sdc generate --from-png FILE`: the PNG's "parameters"
 * infotext (sdc's or A1111's) read by the library (sdc_infotext_*) into the
 * request the command's flags then override. What the infotext holds that
 * sdc cannot replay is printed, as is a model other than the one it names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_PNG_BYTES ((long)256 << 20)

static sdc_status read_file(const char *path, void **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return sdc_fail(SDC_ERR_IO, "%s: cannot open", path);
    long n = fseek(f, 0, SEEK_END) ? -1 : ftell(f);
    sdc_status st = SDC_OK;
    if (n < 0 || n > MAX_PNG_BYTES) st = sdc_fail(SDC_ERR_IO, "%s: cannot read (or larger than 256 MiB)", path);
    else if (fseek(f, 0, SEEK_SET) || !(*buf = malloc((size_t)n + 1))) st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
    else if (fread(*buf, 1, (size_t)n, f) != (size_t)n) st = sdc_fail(SDC_ERR_IO, "%s: cannot read", path), free(*buf);
    fclose(f);
    *len = (size_t)n;
    return st;
}

int from_png_load(const char *path, sdc_infotext *it, sdc_request *r) {
    void *png = NULL;
    size_t n = 0;
    char *params = NULL;
    int w, h;
    sdc_status st = read_file(path, &png, &n);
    if (!st) st = sdc_png_decode(png, n, NULL, &w, &h, &params);
    free(png);
    if (!st && !params) st = sdc_fail(SDC_ERR_FORMAT, "%s has no \"parameters\" text to take the settings from", path);
    if (!st) st = sdc_infotext_parse(params, it);
    free(params);
    if (st) {
        fprintf(stderr, "sdc: --from-png: %s\n", sdc_last_error());
        return 0;
    }
    char notes[2048];
    sdc_infotext_apply(it, r, notes, sizeof notes);
    for (char *l = notes, *e; *l; l = e + 1) {
        if (!(e = strchr(l, '\n'))) break;
        fprintf(stderr, "sdc: %s: %.*s\n", path, (int)(e - l), l);
    }
    return 1;
}

void from_png_check_model(const sdc_infotext *it, const sdc_model *m) {
    const char *want = sdc_infotext_get(it, "Model");
    sdc_model_info info;
    sdc_model_get_info(m, &info);
    if (want && strcmp(want, info.name))
        fprintf(stderr, "sdc: the PNG was made with model '%s'; this run uses '%s' (give -m for the other)\n", want,
                info.name);
}
