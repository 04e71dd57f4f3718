/* unet.h - diffusers UNet2DConditionModel, built entirely from its
 * config.json: down/mid/up block types, channels, layers per block, heads
 * (attention_head_dim / num_attention_heads as int or per-block list),
 * transformer layers per block, cross-attention dims, conv or linear
 * projections, SDXL's text_time additional embedding, LCM's
 * time_cond_proj_dim. Parameters keep their diffusers names. */
#ifndef SDC_NN_UNET_H
#define SDC_NN_UNET_H

#include <cjson/cJSON.h>

#include "nn/weights.h"

#define UNET_MAX_BLOCKS 8

typedef struct {
    int in_channels, out_channels, sample_size;
    int nblocks;
    int block_out[UNET_MAX_BLOCKS];
    int down_attn[UNET_MAX_BLOCKS]; /* CrossAttnDownBlock2D (1) or DownBlock2D (0) */
    int up_attn[UNET_MAX_BLOCKS];   /* CrossAttnUpBlock2D (1) or UpBlock2D (0) */
    int mid_attn;                   /* UNetMidBlock2DCrossAttn (1), UNetMidBlock2D (0), none (-1) */
    int layers_per_block[UNET_MAX_BLOCKS];
    int heads[UNET_MAX_BLOCKS];         /* per down block */
    int tlayers[UNET_MAX_BLOCKS];       /* transformer layers per down block */
    int rev_tlayers[UNET_MAX_BLOCKS];   /* per up block */
    int cross_dim[UNET_MAX_BLOCKS];     /* per down block */
    int linear_proj, groups;
    float eps;
    int flip_sin_to_cos;
    float freq_shift;
    int time_embed_dim, center_input_sample;
    float mid_scale;
    int add_text_time, add_time_dim, add_in_dim; /* SDXL */
    int time_cond_proj_dim;                       /* LCM distilled UNets, 0 = none */
    int conv_in_kernel, conv_out_kernel, downsample_padding;
} unet_config;

sdc_status unet_config_from_json(const cJSON *j, const char *what, unet_config *c);

typedef struct sdc_unet sdc_unet;

/* dir: diffusers unet folder; variant "fp16" or NULL. The forward runs its
 * ops in cx (the model's context, which must outlive the UNet). */
sdc_status unet_load(sdc_unet **out, op_ctx *cx, const char *dir, const char *variant);
/* Build from an open weights object (ownership moves to the UNet, even on failure). */
sdc_status unet_load_weights(sdc_unet **out, op_ctx *cx, const unet_config *cfg, weights *w);
void unet_free(sdc_unet *u);
const unet_config *unet_get_config(const sdc_unet *u);
int64_t unet_num_params(const sdc_unet *u);
/* The UNet's parameters (for fusing LoRAs into them: weights_mutable). */
weights *unet_weights(sdc_unet *u);
op_ctx *unet_ctx(const sdc_unet *u);

typedef struct {
    const float *text_embeds;   /* [B, add_in_dim - 6*add_time_dim] (SDXL pooled) */
    const float *time_ids;      /* [B, 6] */
    const float *timestep_cond; /* [B, time_cond_proj_dim] */
} unet_extra;

/* Called with intermediate tensors under the golden names (mid.conv_in ...). */
typedef void (*sdc_dump_fn)(void *ctx, const char *name, const float *data, int ndim, const int64_t *shape);

/* x[B, in_channels, H, W], t[B], ctx[B, M, cross_dim] -> out[B, out_channels, H, W]; all in host memory. */
sdc_status unet_forward(const sdc_unet *u, const float *x, int B, int H, int W, const float *t, const float *ctx,
                        int M, const unet_extra *extra, float *out, sdc_dump_fn dump, void *dump_ctx);

/* The same with every tensor (x, t, ctx, extra's, out) in activation memory
 * (op_alloc) and out not aliasing x. It makes no host round trip, so a step
 * graph can capture it (ops.h; dump must then be NULL). */
sdc_status unet_forward_act(const sdc_unet *u, const float *x, int B, int H, int W, const float *t, const float *ctx,
                            int M, const unet_extra *extra, float *out, sdc_dump_fn dump, void *dump_ctx);

/* The inputs of unet_forward_act in activation memory: what a denoising loop
 * uploads once (text context, SDXL's pooled embeds and time ids, the
 * guidance embedding) and what it uploads every step (latents x, timesteps
 * t). extra holds the activation-memory views for unet_forward_act. */
typedef struct {
    op_ctx *cx; /* the UNet's */
    int B;
    int64_t nx; /* floats of x */
    float *x, *t, *ctx, *text_embeds, *time_ids, *timestep_cond;
    int64_t n_ctx, n_text, n_ids, n_cond; /* floats of each (0: not used or not given) */
    unet_extra extra;
} unet_inputs;
/* ctx[B, M, cross_dim] and the extra tensors the config uses (host memory;
 * missing ones are reported by the forward). Frees what it made on failure. */
sdc_status unet_inputs_upload(const sdc_unet *u, unet_inputs *in, int B, int H, int W, const float *ctx, int M,
                              const unet_extra *extra);
/* A new request's ctx and extra tensors into the same buffers (so a step
 * graph recorded on them reads the new ones); the tensors given must be the
 * ones given to unet_inputs_upload (unet_inputs_same_extras). */
sdc_status unet_inputs_set_context(unet_inputs *in, const float *ctx, const unet_extra *extra);
int unet_inputs_same_extras(const unet_inputs *in, const sdc_unet *u, const unet_extra *extra);
/* x[B, in_channels, H, W] and t[B], host memory */
sdc_status unet_inputs_set_step(unet_inputs *in, const float *x, const float *t);
void unet_inputs_free(unet_inputs *in);

#endif
