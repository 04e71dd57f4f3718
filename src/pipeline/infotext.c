/* infotext.c - A1111-compatible generation parameters text. */
#include "pipeline/infotext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* %g that always reads back as the same float */
static void fmt_num(char *b, size_t n, float v) { snprintf(b, n, "%.9g", (double)v); }

char *infotext_format(const infotext_fields *f) {
    char g[32], e[32];
    fmt_num(g, sizeof g, f->guidance);
    fmt_num(e, sizeof e, f->eta);
    size_t n = strlen(f->prompt) + (f->negative ? strlen(f->negative) : 0) + strlen(f->model) + 512;
    char *s = malloc(n);
    if (!s) return NULL;
    int o = snprintf(s, n, "%s\n", f->prompt);
    if (f->negative) o += snprintf(s + o, n - (size_t)o, "Negative prompt: %s\n", f->negative);
    o += snprintf(s + o, n - (size_t)o, "Steps: %d, Sampler: %s, ", f->steps, f->sampler);
    if (f->schedule) o += snprintf(s + o, n - (size_t)o, "Schedule type: %s, ", f->schedule);
    o += snprintf(s + o, n - (size_t)o, "CFG scale: %s, Seed: %llu, Size: %dx%d, Model: %s", g,
                  (unsigned long long)f->seed, f->width, f->height, f->model);
    if (f->denoising_strength > 0)
        o += snprintf(s + o, n - (size_t)o, ", Denoising strength: %.9g", f->denoising_strength);
    if (f->eta != 0.0f) o += snprintf(s + o, n - (size_t)o, ", Eta: %s", e);
    if (f->clip_skip > 1) o += snprintf(s + o, n - (size_t)o, ", Clip skip: %d", f->clip_skip);
    if (f->hires_upscaler) { /* A1111's order: upscale or resize, steps, upscaler */
        if (f->hires_scale > 0) o += snprintf(s + o, n - (size_t)o, ", Hires upscale: %.9g", f->hires_scale);
        else o += snprintf(s + o, n - (size_t)o, ", Hires resize: %dx%d", f->hires_width, f->hires_height);
        if (f->hires_steps > 0) o += snprintf(s + o, n - (size_t)o, ", Hires steps: %d", f->hires_steps);
        o += snprintf(s + o, n - (size_t)o, ", Hires upscaler: %s", f->hires_upscaler);
    }
    if (f->rng) o += snprintf(s + o, n - (size_t)o, ", RNG: %s", f->rng); /* A1111 writes it only when not GPU */
    if (f->pad_conds) o += snprintf(s + o, n - (size_t)o, ", Pad conds: True");
    /* A1111 always reads its syntax; sdc's plain (diffusers) reading is marked so a replay keeps it */
    if (f->plain_syntax) o += snprintf(s + o, n - (size_t)o, ", Prompt syntax: plain");
    /* A1111 adds it to extra_generation_params when sd_vae_decode_method is not "Full" */
    if (f->vae_decoder) o += snprintf(s + o, n - (size_t)o, ", VAE Decoder: %s", f->vae_decoder);
    snprintf(s + o, n - (size_t)o, ", Version: sdc");
    return s;
}
