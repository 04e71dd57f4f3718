/* lora.h - LoRA files fused into a loaded model's weights, one tensor at a
 * time, before the first denoising step:
 *     W' = fl32(W + scale * (alpha / rank) * (up @ down))
 * with the delta formed and added in float64 and rounded once per LoRA (the
 * reference's fuse). Several LoRAs apply one after another.
 *
 * Key families read (prefix + module + part):
 *   kohya / A1111   lora_unet_<module>            module path with '.' -> '_', either the
 *                                                 original LDM/SGM name (input_blocks_4_1_...)
 *                                                 or the diffusers one (down_blocks_1_...)
 *                   lora_te_ / lora_te1_ / lora_te2_<HF CLIP module, '_'-joined>
 *                   parts .lora_down.weight (r, in[, kh, kw]), .lora_up.weight (out, r[, 1, 1]),
 *                   .alpha (0-dim; absent: alpha = rank)
 *   PEFT/diffusers  unet. / text_encoder. / text_encoder_2.<dotted module>
 *                   parts .lora_A.weight / .lora_B.weight, .lora.down.weight / .lora.up.weight,
 *                   .lora_linear_layer.down/up.weight, optional .alpha;
 *                   a "base_model.model." infix (raw PEFT adapters) is skipped
 *   attn processors <attn>.processor.to_{q,k,v,out}_lora.down/up.weight (UNet: to_out -> to_out.0;
 *                   text encoders: to_q -> q_proj ... to_out -> out_proj); prefix-less
 *                   down_blocks./mid_block./up_blocks. keys are UNet keys
 * Anything else (LoHa, LoKr, DoRA, full-weight diffs, unknown prefixes) is an
 * error naming the key, as is a module the model lacks or a shape that
 * does not fit. Every module is checked before the first one is changed. */
#ifndef SDC_LORA_LORA_H
#define SDC_LORA_LORA_H

#include "nn/unet.h"
#include "nn/weights.h"

typedef enum { LORA_UNET, LORA_TE1, LORA_TE2, LORA_NCOMP } lora_comp;

/* The components a LoRA may change. */
typedef struct {
    weights *w[LORA_NCOMP];      /* NULL where the model has no such component */
    const unet_config *unet_cfg; /* for LDM/SGM module names; NULL: diffusers names only */
} lora_targets;

typedef struct {
    int total;
    int comp[LORA_NCOMP];
} lora_counts;

/* Fuse the LoRA file at path into t's weights with the given scale;
 * counts (may be NULL) receives the modules it changed. */
sdc_status lora_apply(const lora_targets *t, const char *path, float scale, lora_counts *counts);
/* The same with a scale per component (A1111's <lora:NAME:TE:UNET> tags
 * weigh the text encoders and the UNet apart). */
sdc_status lora_apply_scaled(const lora_targets *t, const char *path, const float scale[LORA_NCOMP],
                             lora_counts *counts);

#endif
