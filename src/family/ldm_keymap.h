/* ldm_keymap.h - names of UNet, VAE and OpenCLIP parameters in the original LDM/SGM layout
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
#include "nn/vae.h"

/* Called once per module prefix pair; a diffusers name that starts with
 * `diffusers` followed by "." or the end maps to `ldm` + the same rest. */
typedef void (*keymap_fn)(void *ctx, const char *diffusers, const char *ldm);
void ldm_unet_prefixes(const unet_config *c, keymap_fn fn, void *ctx);

/* A name lookup over prefix pairs: pass keymap_match as the keymap_fn with a
 * keymap_query as ctx; afterwards `found` says whether `out` holds the name
 * translated by the longest matching prefix (reverse: name is an LDM name). */
typedef struct {
    const char *name;
    int reverse;
    size_t best;
    char *out;
    size_t n;
    int found;
} keymap_query;
void keymap_match(void *ctx, const char *diffusers, const char *ldm);

/* Translate a diffusers UNet parameter or module name (e.g.
 * "down_blocks.1.attentions.0.proj_in.weight") to its LDM name; 0 when the
 * name is outside every mapped module. */
int ldm_unet_name(const unet_config *c, const char *diffusers, char *out, size_t n);
/* The other direction: an LDM UNet name (e.g. "input_blocks.1.1.proj_in.weight")
 * to its diffusers name; 0 when the name is outside every mapped module. */
int ldm_unet_to_diffusers(const unet_config *c, const char *ldm, char *out, size_t n);

/* ---- AutoencoderKL (first_stage_model.*, prefix not included) ----
 *   encoder.down.i.block.j            <-> encoder.down_blocks.i.resnets.j
 *   encoder.down.i.downsample.conv    <-> encoder.down_blocks.i.downsamplers.0.conv
 *   decoder.up.k.block.j              <-> decoder.up_blocks.(n-1-k).resnets.j   (LDM counts
 *   decoder.up.k.upsample.conv        <-> decoder.up_blocks.(n-1-k).upsamplers.0.conv  from the top)
 *   *.mid.block_1/2 <-> *.mid_block.resnets.0/1;  nin_shortcut <-> conv_shortcut
 *   *.mid.attn_1.norm/q/k/v/proj_out <-> *.mid_block.attentions.0.group_norm/to_q/to_k/to_v/to_out.0
 *                                       (stored as 1x1 convs (C, C, 1, 1); the VAE takes either shape)
 *   *.norm_out <-> *.conv_norm_out; conv_in, conv_out, quant_conv, post_quant_conv keep their names */
void ldm_vae_prefixes(const vae_config *c, keymap_fn fn, void *ctx);
int ldm_vae_name(const vae_config *c, const char *diffusers, char *out, size_t n);
int ldm_vae_to_diffusers(const vae_config *c, const char *ldm, char *out, size_t n);

/* ---- OpenCLIP text transformer (cond_stage_model.model.*, conditioner.embedders.1.model.*) ----
 *   token_embedding.weight            -> text_model.embeddings.token_embedding.weight
 *   positional_embedding              -> text_model.embeddings.position_embedding.weight
 *   transformer.resblocks.i.ln_1/ln_2 -> text_model.encoder.layers.i.layer_norm1/layer_norm2
 *   ...attn.in_proj_weight/bias (3D rows: q, k, v) -> self_attn.{q,k,v}_proj.weight/bias
 *   ...attn.out_proj                  -> self_attn.out_proj
 *   ...mlp.c_fc / mlp.c_proj          -> mlp.fc1 / mlp.fc2
 *   ln_final                          -> text_model.final_layer_norm
 *   text_projection (D, P), used as x @ P -> text_projection.weight (P, D): transposed */
typedef enum {
    OPENCLIP_UNMAPPED, /* not a parameter of the HF model (logit_scale, attn_mask ...) */
    OPENCLIP_RENAME,   /* same tensor under another name */
    OPENCLIP_QKV,      /* in_proj_weight/bias: rows [0,D) q, [D,2D) k, [2D,3D) v; out gets the q name,
                        * the k and v names replace "q_proj" with "k_proj" / "v_proj" */
    OPENCLIP_TRANSPOSE /* text_projection */
} openclip_kind;
/* *layer: the resblock index (-1 outside the resblocks). */
openclip_kind openclip_to_hf(const char *oc, char *out, size_t n, int *layer);
/* HF name -> OpenCLIP name (q/k/v_proj all map to in_proj_*); 0 if unknown. */
int openclip_name(const char *hf, char *out, size_t n);

#endif
