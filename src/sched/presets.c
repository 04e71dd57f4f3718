/* presets.c - the fast-recipe presets (sdc.h: sdc_preset). Settings follow
 * the model cards' diffusers code:
 *   stabilityai/sdxl-turbo: EulerAncestral (its scheduler file: trailing),
 *     num_inference_steps=1, guidance_scale=0.0, 512x512
 *   ByteDance/Hyper-SD, Hyper-SDXL-2steps-lora: DDIMScheduler.from_config(...,
 *     timestep_spacing="trailing"), num_inference_steps=2, guidance_scale=0
 *   ByteDance/Hyper-SD, Hyper-SDXL-1step-lora: TCDScheduler.from_config(...),
 *     num_inference_steps=1, guidance_scale=0, eta=1.0 (the TCD schedule's own
 *     first timestep, 999; timesteps=[800] is the card's recipe for the
 *     separate 1-step UNet, not for the LoRA)
 * Samplers are their registry rows, so a preset repeats no sampler name. */
#include <string.h>

#include "sched/sched_internal.h"

extern const sched_def sched_euler_a, sched_ddim, sched_tcd;

static const sdc_preset k_presets[] = {
    {"sdxl-turbo", &sched_euler_a.info, "trailing", 1, 0.0f, -1.0f, 512, NULL, "stabilityai/sdxl-turbo"},
    {"hyper-sd-2step", &sched_ddim.info, "trailing", 2, 0.0f, -1.0f, 0, "Hyper-SDXL-2steps-lora.safetensors",
     "ByteDance/Hyper-SD: SDXL base + Hyper-SDXL-2steps-lora"},
    {"hyper-sd-1step", &sched_tcd.info, NULL, 1, 0.0f, 1.0f, 0, "Hyper-SDXL-1step-lora.safetensors",
     "ByteDance/Hyper-SD: SDXL base + Hyper-SDXL-1step-lora"},
};
#define N_PRESETS ((int)(sizeof k_presets / sizeof k_presets[0]))

int sdc_preset_count(void) { return N_PRESETS; }

const sdc_preset *sdc_preset_at(int i) { return i >= 0 && i < N_PRESETS ? &k_presets[i] : NULL; }

const sdc_preset *sdc_preset_find(const char *name) {
    for (int i = 0; name && i < N_PRESETS; i++)
        if (!strcmp(k_presets[i].name, name)) return &k_presets[i];
    return NULL;
}
