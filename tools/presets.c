/* presets.c - the fast-recipe presets (see presets.h). Settings follow the
 * model cards' diffusers code:
 *   stabilityai/sdxl-turbo: EulerAncestral (its scheduler file: trailing),
 *     num_inference_steps=1, guidance_scale=0.0, 512x512
 *   ByteDance/Hyper-SD, Hyper-SDXL-2steps-lora: DDIMScheduler.from_config(...,
 *     timestep_spacing="trailing"), num_inference_steps=2, guidance_scale=0
 *   ByteDance/Hyper-SD, Hyper-SDXL-1step-lora: TCDScheduler.from_config(...),
 *     num_inference_steps=1, guidance_scale=0, eta=1.0 (the TCD schedule's own
 *     first timestep, 999; timesteps=[800] is the card's recipe for the
 *     separate 1-step UNet, not for the LoRA) */
#include "presets.h"

#include <string.h>

static const sdc_preset k_presets[] = {
    {"sdxl-turbo", "euler_a", "trailing", 1, 0.0f, -1.0f, 512,
     "Euler a, trailing, 1 step, guidance 0, 512x512 (stabilityai/sdxl-turbo)"},
    {"hyper-sd-2step", "ddim", "trailing", 2, 0.0f, -1.0f, 0,
     "DDIM, trailing, 2 steps, guidance 0 (SDXL base + Hyper-SDXL-2steps-lora)"},
    {"hyper-sd-1step", "tcd", NULL, 1, 0.0f, 1.0f, 0,
     "TCD, 1 step, guidance 0, eta 1.0 (SDXL base + Hyper-SDXL-1step-lora)"},
};

const sdc_preset *preset_find(const char *name) {
    for (size_t i = 0; i < sizeof k_presets / sizeof k_presets[0]; i++)
        if (!strcmp(k_presets[i].name, name)) return &k_presets[i];
    return NULL;
}

const char *preset_names(void) { return "sdxl-turbo | hyper-sd-2step | hyper-sd-1step"; }

void preset_apply(const sdc_preset *p, const preset_given *g, sdc_request *r) {
    if (!g->scheduler) r->scheduler = p->scheduler;
    if (!g->timestep_spacing && p->timestep_spacing) r->timestep_spacing = p->timestep_spacing;
    if (!g->steps) r->steps = p->steps;
    if (!g->guidance) r->guidance = p->guidance;
    if (!g->eta && p->eta >= 0.0f) r->eta = p->eta;
    if (!g->width && p->size) r->width = p->size;
    if (!g->height && p->size) r->height = p->size;
}

void preset_note_given(preset_given *g, int opt) {
    switch (opt) {
    case PRESET_OPT_SCHED: g->scheduler = 1; break;
    case PRESET_OPT_SPACING: g->timestep_spacing = 1; break;
    case PRESET_OPT_STEPS: g->steps = 1; break;
    case PRESET_OPT_GUIDANCE: g->guidance = 1; break;
    case PRESET_OPT_ETA: g->eta = 1; break;
    case 'W': g->width = 1; break;
    case 'H': g->height = 1; break;
    default: break;
    }
}
