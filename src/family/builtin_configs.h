/* builtin_configs.h - the architectures of the real Stable Diffusion
 * families, for single-file checkpoints that carry no configs: the UNet and
 * scheduler configs as the JSON text of the diffusers repositories
 * (parsed by the same code as a folder's files), the VAE and text-encoder
 * hyperparameters as structs. Values are those of
 *   SD 1.x    stable-diffusion-v1-5/stable-diffusion-v1-5
 *   SD 2.x    stabilityai/stable-diffusion-2-1 (768-v, v_prediction) and
 *             stabilityai/stable-diffusion-2-base (512, epsilon)
 *   SDXL      stabilityai/stable-diffusion-xl-base-1.0
 * diffusers' from_single_file takes the same repositories' configs. */
#ifndef SDC_CONVERT_BUILTIN_CONFIGS_H
#define SDC_CONVERT_BUILTIN_CONFIGS_H

#include "nn/vae.h"
#include "text/clip_text_model.h"

typedef enum { CKPT_SD1, CKPT_SD2, CKPT_SDXL } ckpt_family;

typedef struct {
    const char *id;        /* "sd15", "sd21-768-v", "sd2-base-512", "sdxl-base" */
    const char *title;     /* "SD 1.5", ... for messages and `sdc info` */
    const char *pipeline;  /* diffusers pipeline class */
    const char *unet_json; /* unet/config.json */
    const char *scheduler_json; /* scheduler/scheduler_config.json */
    vae_config vae;
    clip_text_config te, te2; /* te2: SDXL only */
    int has_te2;
    int force_zeros_for_empty_prompt;
} builtin_pipeline;

/* The built-in pipeline of a family; for SD 2.x v_prediction picks 768-v,
 * otherwise 512-base (the other families ignore it). */
const builtin_pipeline *builtin_pipeline_for(ckpt_family f, int v_prediction);
const char *ckpt_family_name(ckpt_family f); /* "SD 1.x", "SD 2.x", "SDXL" */

#endif
