/* infotext.h - the A1111 "parameters" text stored in every PNG:
 *   <prompt>\nNegative prompt: <neg>\nSteps: 20, Sampler: Euler a, ... */
#ifndef SDC_PIPELINE_INFOTEXT_H
#define SDC_PIPELINE_INFOTEXT_H

#include <stdint.h>

typedef struct {
    const char *prompt, *negative; /* negative NULL: line omitted */
    int steps, width, height, clip_skip;
    const char *sampler;           /* A1111 spelling (sdc_sampler_info.a1111_name) */
    const char *schedule;          /* A1111's "Schedule type" label ("Karras", "Exponential" ...) or NULL */
    float guidance, eta;
    uint64_t seed;
    const char *model;
    const char *rng;               /* A1111's "RNG" (randn source): "CPU", or NULL for its default GPU noise */
    int plain_syntax;              /* prompts read as plain text (not A1111's syntax): "Prompt syntax: plain" */
    int pad_conds;                 /* A1111's pad_cond_uncond padded a half: "Pad conds: True" */
    const char *vae_decoder;       /* A1111's "VAE Decoder" (sd_vae_decode_method): "TAESD", or NULL for Full */
    double denoising_strength;     /* > 0: img2img's strength, or the hires fix's */
    double hires_scale;            /* > 0: "Hires upscale" */
    int hires_width, hires_height; /* without a scale: "Hires resize: WxH" (when either is set) */
    int hires_steps;               /* > 0: "Hires steps" */
    const char *hires_upscaler;    /* non-NULL: the hires fix ran ("Hires upscaler") */
} infotext_fields;

/* malloc'd string, NULL on allocation failure */
char *infotext_format(const infotext_fields *f);

#endif
