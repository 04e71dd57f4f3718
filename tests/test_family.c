/* test_family.c - the family seam: every row complete and found by what
 * identifies it, and each fixture model loaded by the family it belongs to,
 * with that family's defaults and latent format. */
#include <string.h>

#include "family/family.h"
#include "family/model.h"
#include "harness.h"

TEST(family_rows_complete_and_found) {
    int n = 0;
    for (int i = 0; model_families[i]; i++, n++) {
        const model_family *f = model_families[i];
        CHECK(f->name && f->title && f->pipeline_classes && f->pipeline_classes[0], "row %d: names", i);
        CHECK(f->owns_checkpoint && f->load_folder && f->load_file && f->encode && f->latents, "%s: functions",
              f->name);
        CHECK(f->ntext >= 1 && f->ntext <= MODEL_MAX_TEXT, "%s: %d text encoders", f->name, f->ntext);
        CHECK(f->default_steps >= 1 && f->default_guidance > 0, "%s: defaults", f->name);
        for (const char *const *c = f->pipeline_classes; *c; c++)
            CHECK(family_for_pipeline_class(*c) == f, "%s: class %s found elsewhere", f->name, *c);
        for (int j = 0; j < i; j++) CHECK(strcmp(model_families[j]->name, f->name), "two rows named %s", f->name);
    }
    CHECK(n >= 2, "%d families", n);
    CHECK(!family_for_pipeline_class("StableDiffusion3Pipeline"), "an unknown class found a family");
    /* every single-file layout belongs to exactly one family */
    ckpt_family layouts[] = {CKPT_SD1, CKPT_SD2, CKPT_SDXL};
    for (size_t k = 0; k < sizeof layouts / sizeof layouts[0]; k++) {
        int owners = 0;
        for (int i = 0; model_families[i]; i++) owners += model_families[i]->owns_checkpoint(layouts[k]) != 0;
        CHECK(owners == 1 && family_for_checkpoint(layouts[k]), "layout %d has %d families", (int)layouts[k], owners);
    }
    char text[256];
    family_pipeline_classes_text(text, sizeof text);
    CHECK(strstr(text, "StableDiffusionPipeline") && strstr(text, "StableDiffusionXLPipeline"), "classes: %s", text);
}

static void loads_as(const char *rel, const char *family, int ntext, float guidance) {
    sdc_model *m;
    CHECK_OK(sdc_model_load(&m, fixture_path(rel), NULL));
    latent_format lf;
    m->fam->latents(m, &lf);
    sdc_model_info info;
    sdc_model_get_info(m, &info);
    int ok = !strcmp(m->fam->name, family) && m->ntext == ntext && !strcmp(info.family, family) &&
             info.default_guidance == guidance && lf.channels == 4 && lf.scale > 0;
    for (int i = 0; i < m->ntext; i++) ok &= m->te[i] && m->tok[i];
    sdc_model_free(m);
    CHECK(ok, "%s: family %s, %d text encoders, guidance %g, %d latent channels", rel, info.family, ntext,
          (double)info.default_guidance, lf.channels);
}

TEST(family_of_each_fixture) {
    loads_as("models/tiny-sd", "sd", 1, 7.5f);
    loads_as("models/tiny-sdxl", "sdxl", 2, 5.0f);
}
