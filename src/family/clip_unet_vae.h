/* clip_unet_vae.h - what the SD 1.x/2.x and SDXL families share: CLIP text
 * encoders (one or two) with their tokenizers, a UNet2DConditionModel and an
 * AutoencoderKL, in a diffusers folder's tokenizer[_2]/, text_encoder[_2]/,
 * unet/, vae/, scheduler/ layout. The family tables (family_sd.c,
 * family_sdxl.c) are made of these pieces and their own differences. */
#ifndef SDC_FAMILY_CLIP_UNET_VAE_H
#define SDC_FAMILY_CLIP_UNET_VAE_H

#include "family/model.h"

/* A diffusers folder with m->ntext text encoders (the family's ntext):
 * model_index.json's force_zeros_for_empty_prompt, every component, the
 * scheduler config; then cuv_check. */
sdc_status cuv_load_folder(sdc_model *m, const char *dir, const sdc_load_options *opt);
/* Do the pieces fit: the UNet's cross-attention width is the text
 * encoders' hidden widths side by side; an SDXL-style UNet's
 * projection_class_embeddings_input_dim is 6 time ids x addition_time_embed_dim
 * + the last encoder's projection. Sets m->vae_scale. */
sdc_status cuv_check(sdc_model *m, const char *what);

/* Conditioning from the CLIP encoders: out gets B x 77 token ids of each
 * tokenizer and an embeds buffer of width D (the encoders' widths summed) and,
 * with P > 0, a pooled buffer; the caller fills them with cuv_hidden. */
sdc_status cuv_cond_begin(sdc_model *m, const char *const *prompts, int B, int P, text_cond *out);
/* Hidden state `layer` (0 = embeddings .. L) of encoder `which` for out's ids
 * into out->embeds at column offset col, through the final LayerNorm when
 * final_norm; with pooled, out->pooled gets the pooled projection. The
 * encoder runs through its runner, kept in the model on a device backend so
 * that the next request replays its graph. */
sdc_status cuv_hidden(sdc_model *m, int which, int layer, int final_norm, int col, int pooled, text_cond *out);

/* latents = vae.encode(x) * scaling_factor (shift: the VAE config's shift_factor) */
void cuv_latents(const sdc_model *m, latent_format *out);

#endif
