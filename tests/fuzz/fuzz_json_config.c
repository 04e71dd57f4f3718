/* fuzz_json_config.c - the JSON configs of a diffusers folder: the first byte
 * picks the reader (UNet config, VAE config, text encoder config, scheduler
 * config then a scheduler made from it and stepped), the rest is the file
 * (read through json_load, Python's Infinity/NaN literals included). */
#include <stdlib.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "io/json.h"
#include "nn/unet.h"
#include "nn/vae.h"
#include "rng/torch_rng.h"
#include "sched/scheduler.h"
#include "text/clip_text_model.h"

static void scheduler(const cJSON *j, uint8_t sel) {
    static const char *names[] = {NULL, "ddim", "pndm", "euler", "euler_a", "dpmpp_2m", "lcm", "tcd"};
    sched_config c;
    if (sched_config_from_json(j, names[sel % 8], &c)) return;
    sdc_scheduler *s;
    int steps = 1 + (sel >> 3) % 8;
    if (sched_create(&s, &c, steps)) return;
    float out[8], x[8], x0[8];
    for (int k = 0; k < 8; k++) out[k] = 0.25f * (float)(k - 4), x[k] = 1.0f - 0.1f * (float)k;
    torch_gen g;
    torch_gen_seed(&g, 1);
    for (int i = 0; i < sched_num_calls(s); i++) {
        sched_scale_model_input(s, i, x, 8);
        if (sched_step(s, i, out, x, 1, 8, &g, 0.5f, x0, NULL)) break;
    }
    sched_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (n < 1) return 0;
    char path[64];
    int fd = fuzz_file(data + 1, n - 1, 0, path, sizeof path);
    if (fd < 0) return 0;
    uint8_t sel = data[0];
    switch (sel % 4) {
    case 0: {
        cJSON *j;
        if (!json_load(path, &j)) {
            unet_config c;
            unet_config_from_json(j, "fuzz", &c);
            cJSON_Delete(j);
        }
        break;
    }
    case 1: {
        vae_config c;
        vae_config_load(&c, path);
        break;
    }
    case 2: {
        clip_text_config c;
        clip_text_config_load(&c, path);
        break;
    }
    default: {
        cJSON *j;
        if (!json_load(path, &j)) {
            scheduler(j, (uint8_t)(sel >> 2));
            cJSON_Delete(j);
        }
    }
    }
    close(fd);
    return 0;
}
