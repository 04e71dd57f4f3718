/* weights_save.c - a component's parameters written back to one
 * .safetensors file as the model holds them (nn/weights.h: weights_save):
 * int8 layer weights as NAME.q8 + NAME.q8_shape, every other parameter as
 * its file stores it. What `sdc convert --weights q8` writes and
 * weights_get_layer reads in place. */
#include <stdio.h>
#include <string.h>

#include "backend/q8.h"
#include "nn/weights.h"

sdc_status weights_save(const weights *w, const char *path) {
    st_writer *wr = st_writer_new();
    if (!wr) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    sdc_status st = SDC_OK;
    for (int i = 0; i < w->nslots && !st; i++) {
        const weights_slot *s = &w->slots[i];
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) seen = !strcmp(w->slots[j].name, s->name);
        if (seen) continue;
        char name[440];
        if (s->dtype && *s->dtype == OP_Q8) {
            const q8_matrix *m = *s->slot;
            int64_t shape[3] = {m->panels, m->nb, Q8_PBLOCK}, four = 4, meta[4] = {m->rows, m->cols, m->ch, m->kk};
            snprintf(name, sizeof name, "%s.q8", s->name);
            st = st_writer_add_borrowed(wr, name, ST_U8, 3, shape, m->data);
            snprintf(name, sizeof name, "%s.q8_shape", s->name);
            if (!st) st = st_writer_add(wr, name, ST_I64, 1, &four, meta);
            continue;
        }
        const st_tensor *t = weights_find(w, s->name);
        if (t && s->mutable_copy) /* changed in memory (a LoRA fused into a float weight): as the model reads it */
            st = st_writer_add_borrowed(wr, s->name, ST_F32, t->ndim, t->shape, s->mutable_copy);
        else if (!t || !t->data)
            st = sdc_fail(SDC_ERR_ARG,
                          "%s: parameter '%s' has no stored tensor (models with made-up weights cannot be "
                          "saved)",
                          path, s->name);
        else st = st_writer_add_borrowed(wr, s->name, t->dtype, t->ndim, t->shape, t->data);
    }
    if (!st) st = st_writer_save(wr, path);
    st_writer_free(wr);
    return st;
}
