/* family.h - the seam between the denoising pipeline and the model families
 * it runs. A family is one table: how its models are recognised (diffusers
 * pipeline classes, single-file checkpoint layouts), how they load, how
 * prompts become the denoiser's conditioning, which extra inputs its UNet
 * takes, its latent format and its defaults. src/pipeline (the loop, CFG,
 * the scheduler, the VAE decode) never asks which family it runs.
 *
 * Adding a family: one family_<name>.c with its table (and whatever
 * components it needs), plus its row in family.c's list. */
#ifndef SDC_FAMILY_FAMILY_H
#define SDC_FAMILY_FAMILY_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "family/checkpoint_detect.h"
#include "sdc.h"

struct a1111_opts; /* family/a1111_cond.h */

/* Tokens per prompt of the CLIP text encoders. */
#define FAMILY_TOKENS 77

/* A batch of prompts as the denoiser reads them. */
typedef struct {
    int B, T, D, P;     /* prompts, tokens, context width, pooled width (0: none) */
    float *embeds;      /* [B, T, D] */
    float *pooled;      /* [B, P] or NULL */
    int nids;           /* tokenizers that ran (one per text encoder) */
    int64_t *ids[2];    /* [B, T] token ids of each (dumped as input_ids, input_ids_2) */
    float *multipliers; /* [B, T] A1111 prompts: each token's emphasis weight (dumped as multipliers); else NULL */
} text_cond;

void text_cond_free(text_cond *c);

/* The latent space the denoiser works in: image = vae.decode(latents /
 * scale + shift), as diffusers' pipelines compute it. */
typedef struct {
    int channels;
    float scale, shift;
} latent_format;

/* The extra per-row inputs of a UNet (unet_extra's host tensors), owned. */
typedef struct {
    float *text_embeds; /* [rows, P] */
    float *time_ids;    /* [rows, 6] */
} unet_extra_bufs;

void unet_extra_bufs_free(unet_extra_bufs *e);

typedef struct model_family {
    const char *name;  /* "sd", "sdxl": sdc_model_info.family */
    const char *title; /* "SD 1.x/2.x", "SDXL": messages */
    /* detection: the diffusers pipeline classes of its folders (NULL-ended),
     * and the single-file layouts (checkpoint_detect.h) it loads */
    const char *const *pipeline_classes;
    int (*owns_checkpoint)(ckpt_family f);
    int ntext; /* text encoders (tokenizer/ + text_encoder/, then _2 ...) */
    /* load the components of a diffusers folder / a single file into m
     * (m->cx made, m->path, m->fam and m->ntext set); on failure
     * sdc_model_free cleans up */
    sdc_status (*load_folder)(sdc_model *m, const char *dir, const sdc_load_options *opt);
    sdc_status (*load_file)(sdc_model *m, const char *path, const sdc_load_options *opt);
    /* prompts[B] -> conditioning; clip_skip as sdc_request's (0/1: none) */
    sdc_status (*encode)(sdc_model *m, const char *const *prompts, int B, int clip_skip, text_cond *out);
    /* the same in AUTOMATIC1111's prompt syntax (family/a1111_cond.h): T is
     * 77 x the most chunks any of the prompts has */
    sdc_status (*encode_a1111)(sdc_model *m, const char *const *prompts, int B, const struct a1111_opts *o,
                               text_cond *out);
    /* whether "no negative prompt" means zero conditioning when the model
     * says force_zeros_for_empty_prompt (diffusers' SDXL) */
    int zero_negative;
    /* the UNet's extra inputs for rows = n * B rows (negative rows first
     * when CFG: conds[0] negative, conds[n-1] positive), at an image size;
     * NULL: the UNet takes none */
    sdc_status (*unet_extras)(const sdc_model *m, const text_cond *const *conds, int n, int width, int height,
                              unet_extra_bufs *out);
    void (*latents)(const sdc_model *m, latent_format *out);
    /* defaults of a request (the pipelines' __call__ defaults); the size is
     * the UNet's sample_size in pixels, the scheduler the model's own */
    int default_steps;
    float default_guidance;
    double default_strength; /* img2img without a mask */
} model_family;

/* Every family sdc runs, NULL-ended. */
extern const model_family *const model_families[];

const model_family *family_for_pipeline_class(const char *cls);
const model_family *family_for_checkpoint(ckpt_family f);
/* "StableDiffusionPipeline, StableDiffusionXLPipeline" (messages) */
void family_pipeline_classes_text(char *out, size_t n);

#endif
