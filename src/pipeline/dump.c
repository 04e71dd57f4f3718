/* dump.c - sdc_dump: the intermediates of a request (sdc_request.dump)
 * collected into one .safetensors file under the fixture names. */
#include <stdio.h>
#include <stdlib.h>

#include "io/safetensors.h"
#include "sdc.h"

struct sdc_dump {
    st_writer *w;
    sdc_status st; /* the first failure to add a tensor, reported by sdc_dump_save */
    char msg[512];
};

sdc_dump *sdc_dump_new(void) {
    sdc_dump *d = calloc(1, sizeof *d);
    if (d && !(d->w = st_writer_new())) {
        free(d);
        d = NULL;
    }
    return d;
}

void sdc_dump_tensor(void *ctx, const char *name, int is_int, int ndim, const int64_t *shape, const void *data) {
    sdc_dump *d = ctx;
    if (!data || d->st) return;
    if ((d->st = st_writer_add(d->w, name, is_int ? ST_I64 : ST_F32, ndim, shape, data)))
        snprintf(d->msg, sizeof d->msg, "%s", sdc_last_error());
}

sdc_status sdc_dump_save(sdc_dump *d, const char *path) {
    if (d->st) return sdc_fail(d->st, "%s", d->msg);
    return st_writer_save(d->w, path);
}

void sdc_dump_free(sdc_dump *d) {
    if (!d) return;
    st_writer_free(d->w);
    free(d);
}
