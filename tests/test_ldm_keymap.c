/* test_ldm_keymap.c - the UNet name map against the original-layout single
 * files in the fixtures: every parameter the engine's UNet takes must exist
 * under its mapped name with the same values. */
#include <stdlib.h>
#include <string.h>

#include "family/ldm_keymap.h"
#include "harness.h"
#include "io/json.h"
#include "io/paths.h"
#include "nn/unet.h"

static void check_single_file(const char *folder, const char *single) {
    char p[512];
    cJSON *j;
    unet_config cfg;
    snprintf(p, sizeof p, "%s/unet/config.json", fixture_path(folder));
    CHECK_OK(json_load(p, &j));
    sdc_status st = unet_config_from_json(j, p, &cfg);
    cJSON_Delete(j);
    CHECK_OK(st);
    snprintf(p, sizeof p, "%s/unet", fixture_path(folder));
    weights w;
    CHECK_OK(weights_open_component(&w, p, "diffusion_pytorch_model", NULL));
    st_file sf;
    CHECK_OK(st_open(&sf, fixture_path(single)));
    int checked = 0;
    for (int i = 0; i < w.files[0].n; i++) {
        const st_tensor *t = &w.files[0].tensors[i];
        char ldm[400], full[450];
        if (!ldm_unet_name(&cfg, t->name, ldm, sizeof ldm)) {
            st_close(&sf), weights_close(&w);
            CHECK(0, "%s: no LDM name for %s", folder, t->name);
        }
        snprintf(full, sizeof full, "model.diffusion_model.%s", ldm);
        const st_tensor *u = st_find(&sf, full);
        int same = u && u->nbytes == t->nbytes && !memcmp(u->data, t->data, t->nbytes);
        if (!same) {
            st_close(&sf), weights_close(&w);
            CHECK(0, "%s: %s -> %s %s", folder, t->name, full, u ? "differs" : "missing");
        }
        checked++;
    }
    st_close(&sf);
    weights_close(&w);
    CHECK(checked > 100, "only %d tensors", checked);
}

TEST(ldm_keymap_unet_sd_single_file) { check_single_file("models/tiny-sd", "models/tiny-sd.safetensors"); }
TEST(ldm_keymap_unet_sdxl_single_file) { check_single_file("models/tiny-sdxl", "models/tiny-sdxl.safetensors"); }
