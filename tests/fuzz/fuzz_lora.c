/* fuzz_lora.c - LoRA files against a loaded model (tiny-sdxl: a UNet and two
 * text encoders, LDM and diffusers module names): the input is the LoRA's
 * safetensors header over 64 MiB of zero data, so the fixtures' LoRA
 * headers (the seeds) load; key families, prefixes, parts, module lookup,
 * shapes and the fuse all run. Zero tensors fuse to no change, so the model
 * stays the same from one input to the next. */
#include <stdlib.h>
#include <unistd.h>

#include "family/model.h"
#include "fuzz_util.h"
#include "lora/lora.h"

static sdc_model *g_model;
static lora_targets g_t;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    sdc_load_options lo = {.threads = 1};
    if (sdc_model_load(&g_model, fuzz_root_path("tests/fixtures/models/tiny-sdxl"), &lo)) abort();
    g_t = (lora_targets){.w = {unet_weights(g_model->unet), g_model->te[0] ? clip_text_weights(g_model->te[0]) : NULL,
                               g_model->te[1] ? clip_text_weights(g_model->te[1]) : NULL},
                         .unet_cfg = unet_get_config(g_model->unet)};
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char path[64];
    int fd = fuzz_safetensors_from_header(data, n, path, sizeof path);
    if (fd < 0) return 0;
    lora_counts c;
    lora_apply(&g_t, path, 1.0f, &c);
    close(fd);
    return 0;
}
