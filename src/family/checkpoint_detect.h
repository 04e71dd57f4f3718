/* checkpoint_detect.h - what a single .safetensors file is, from its key
 * names and a few shapes (nothing is read but the header and, for SD 2.x,
 * one small tensor): an SD 1.x / SD 2.x / SDXL checkpoint in the original
 * LDM/SGM layout, or something else (a LoRA, a VAE or UNet on its own, an
 * unrelated file), which is refused with a message that says what was found
 * and what was expected. Also the prediction type when the file tells it. */
#ifndef SDC_CONVERT_CHECKPOINT_DETECT_H
#define SDC_CONVERT_CHECKPOINT_DETECT_H

#include <stdint.h>

#include "family/builtin_configs.h"
#include "io/safetensors.h"

/* component prefixes of the original layout */
#define LDM_UNET_PREFIX "model.diffusion_model."
#define LDM_VAE_PREFIX "first_stage_model."
#define LDM_CLIP_PREFIX "cond_stage_model.transformer."   /* SD 1.x: Hugging Face CLIP names */
#define LDM_OPENCLIP_PREFIX "cond_stage_model.model."     /* SD 2.x: OpenCLIP ViT-H names */
#define SGM_CLIP_PREFIX "conditioner.embedders.0.transformer." /* SDXL: CLIP ViT-L, HF names */
#define SGM_OPENCLIP_PREFIX "conditioner.embedders.1.model."   /* SDXL: OpenCLIP ViT-bigG names */

typedef struct {
    ckpt_family family;
    const char *te_prefix, *te2_prefix; /* te2_prefix NULL unless SDXL */
    int te_openclip;                    /* the first text encoder uses OpenCLIP names (SD 2.x) */
    int unet_in_channels;               /* conv_in input channels */
    int context_dim;                    /* cross-attention key width in the UNet (0: none found) */
    int te_layers, te2_layers;          /* transformer layers stored in the file */
    int64_t n_unet, n_vae, n_te, n_te2; /* tensors per component */
    int64_t n_ema, n_other;             /* model_ema.* copies; anything else (ignored) */
    /* what the file says about its prediction type: "epsilon", "v_prediction" or "" */
    char prediction[16];
    char prediction_source[96];
} ckpt_info;

sdc_status ckpt_detect(const st_file *f, ckpt_info *out);

/* SD 2.x 768-v vs 512-base cannot be told from key names; the checkpoint's
 * UNet weights can (ComfyUI's rule, see checkpoint_detect.c). */
int ckpt_sd2_looks_v(const st_file *f, int *known);

#endif
