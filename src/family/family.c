/* family.c - the families sdc runs (one row each) and their lookups. */
#include "family/family.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const model_family family_sd, family_sdxl;

const model_family *const model_families[] = {&family_sd, &family_sdxl, NULL};

const model_family *family_for_pipeline_class(const char *cls) {
    for (int i = 0; model_families[i]; i++)
        for (const char *const *c = model_families[i]->pipeline_classes; *c; c++)
            if (!strcmp(*c, cls)) return model_families[i];
    return NULL;
}

const model_family *family_for_checkpoint(ckpt_family f) {
    for (int i = 0; model_families[i]; i++)
        if (model_families[i]->owns_checkpoint(f)) return model_families[i];
    return NULL;
}

void family_pipeline_classes_text(char *out, size_t n) {
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; model_families[i]; i++)
        for (const char *const *c = model_families[i]->pipeline_classes; *c && o < n; c++)
            o += (size_t)snprintf(out + o, n - o, "%s%s", o ? ", " : "", *c);
}

void text_cond_free(text_cond *c) {
    free(c->embeds);
    free(c->pooled);
    for (int i = 0; i < 2; i++) free(c->ids[i]);
    free(c->multipliers);
    memset(c, 0, sizeof *c);
}

void unet_extra_bufs_free(unet_extra_bufs *e) {
    free(e->text_embeds);
    free(e->time_ids);
    e->text_embeds = e->time_ids = NULL;
}
