/* ldm_keymap.h - names of UNet parameters in the original LDM/SGM layout
 * (A1111/ComfyUI single files, kohya LoRAs) against diffusers' names, derived
 * from the UNet's config the way diffusers' conversion scripts do:
 *   conv_in                       <-> input_blocks.0.0
 *   down_blocks.i.resnets.j       <-> input_blocks.n.0    (n counts from 1)
 *   down_blocks.i.attentions.j    <-> input_blocks.n.1
 *   down_blocks.i.downsamplers.0  <-> input_blocks.n.0.op (its own n)
 *   mid_block.resnets.0/1, .attentions.0 <-> middle_block.0/2, .1
 *   up_blocks.i.resnets.j / attentions.j <-> output_blocks.n.0 / .1
 *   up_blocks.i.upsamplers.0      <-> output_blocks.n.1 or .2 (after the attention)
 *   resnet norm1/conv1/time_emb_proj/norm2/conv2/conv_shortcut <->
 *          in_layers.0/in_layers.2/emb_layers.1/out_layers.0/out_layers.3/skip_connection
 *   time_embedding.linear_1/2 <-> time_embed.0/2, add_embedding.linear_1/2 <-> label_emb.0.0/0.2
 *   conv_norm_out/conv_out <-> out.0/out.2
 * Names are given without the "model.diffusion_model." prefix. */
#ifndef SDC_CONVERT_LDM_KEYMAP_H
#define SDC_CONVERT_LDM_KEYMAP_H

#include <stddef.h>

#include "nn/unet.h"

/* Called once per module prefix pair; a diffusers name that starts with
 * `diffusers` followed by "." or the end maps to `ldm` + the same rest. */
typedef void (*keymap_fn)(void *ctx, const char *diffusers, const char *ldm);
void ldm_unet_prefixes(const unet_config *c, keymap_fn fn, void *ctx);

/* Translate a diffusers UNet parameter or module name (e.g.
 * "down_blocks.1.attentions.0.proj_in.weight") to its LDM name; 0 when the
 * name is outside every mapped module. */
int ldm_unet_name(const unet_config *c, const char *diffusers, char *out, size_t n);

#endif
