/* builtin_configs.c - the real families' configs (see builtin_configs.h).
 * The JSON strings are the repositories' files as diffusers 0.30.3 saves
 * them (SD 1.5, SDXL) or as published (SD 2.x), including which keys are
 * absent: a scheduler swapped in with --scheduler takes absent keys from
 * its own defaults, exactly as with the folder. */
#include "family/builtin_configs.h"

#include <stddef.h>

/* ---- UNets ---- */

#define UNET_COMMON                                                                                             \
    "\"_class_name\":\"UNet2DConditionModel\",\"act_fn\":\"silu\",\"center_input_sample\":false,"               \
    "\"conv_in_kernel\":3,\"conv_out_kernel\":3,\"downsample_padding\":1,\"dual_cross_attention\":false,"      \
    "\"flip_sin_to_cos\":true,\"freq_shift\":0,\"in_channels\":4,\"layers_per_block\":2,"                      \
    "\"mid_block_scale_factor\":1,\"mid_block_type\":\"UNetMidBlock2DCrossAttn\",\"norm_eps\":1e-05,"          \
    "\"norm_num_groups\":32,\"num_class_embeds\":null,\"only_cross_attention\":false,\"out_channels\":4,"      \
    "\"resnet_time_scale_shift\":\"default\",\"time_embedding_type\":\"positional\""

static const char k_unet_sd15[] =
    "{" UNET_COMMON ",\"_diffusers_version\":\"0.30.3\",\"addition_embed_type\":null,\"attention_head_dim\":8,"
    "\"block_out_channels\":[320,640,1280,1280],\"class_embed_type\":null,\"cross_attention_dim\":768,"
    "\"down_block_types\":[\"CrossAttnDownBlock2D\",\"CrossAttnDownBlock2D\",\"CrossAttnDownBlock2D\",\"DownBlock2D\"],"
    "\"num_attention_heads\":null,\"sample_size\":64,\"transformer_layers_per_block\":1,"
    "\"up_block_types\":[\"UpBlock2D\",\"CrossAttnUpBlock2D\",\"CrossAttnUpBlock2D\",\"CrossAttnUpBlock2D\"],"
    "\"upcast_attention\":false,\"use_linear_projection\":false}";

/* SD 2.x: heads per block (diffusers' attention_head_dim naming), linear
 * transformer projections, 1024-wide OpenCLIP context */
#define UNET_SD2(sample, upcast)                                                                                 \
    "{" UNET_COMMON ",\"attention_head_dim\":[5,10,20,20],\"block_out_channels\":[320,640,1280,1280],"            \
    "\"cross_attention_dim\":1024,"                                                                              \
    "\"down_block_types\":[\"CrossAttnDownBlock2D\",\"CrossAttnDownBlock2D\",\"CrossAttnDownBlock2D\",\"DownBlock2D\"]," \
    "\"sample_size\":" sample ","                                                                                \
    "\"up_block_types\":[\"UpBlock2D\",\"CrossAttnUpBlock2D\",\"CrossAttnUpBlock2D\",\"CrossAttnUpBlock2D\"],"    \
    "\"upcast_attention\":" upcast ",\"use_linear_projection\":true}"

static const char k_unet_sd21_v[] = UNET_SD2("96", "true");
static const char k_unet_sd2_base[] = UNET_SD2("64", "false");

static const char k_unet_sdxl[] =
    "{" UNET_COMMON ",\"_diffusers_version\":\"0.30.3\",\"addition_embed_type\":\"text_time\","
    "\"addition_embed_type_num_heads\":64,\"addition_time_embed_dim\":256,\"attention_head_dim\":[5,10,20],"
    "\"block_out_channels\":[320,640,1280],\"class_embed_type\":null,\"cross_attention_dim\":2048,"
    "\"down_block_types\":[\"DownBlock2D\",\"CrossAttnDownBlock2D\",\"CrossAttnDownBlock2D\"],"
    "\"num_attention_heads\":null,\"projection_class_embeddings_input_dim\":2816,\"sample_size\":128,"
    "\"transformer_layers_per_block\":[1,2,10],"
    "\"up_block_types\":[\"CrossAttnUpBlock2D\",\"CrossAttnUpBlock2D\",\"UpBlock2D\"],"
    "\"upcast_attention\":null,\"use_linear_projection\":true}";

/* ---- schedulers ---- */

#define SCHED_COMMON                                                                                     \
    "\"beta_end\":0.012,\"beta_schedule\":\"scaled_linear\",\"beta_start\":0.00085,\"clip_sample\":false," \
    "\"num_train_timesteps\":1000,\"set_alpha_to_one\":false,\"skip_prk_steps\":true,\"steps_offset\":1,"  \
    "\"trained_betas\":null"

static const char k_sched_sd15[] = "{\"_class_name\":\"PNDMScheduler\",\"_diffusers_version\":\"0.30.3\"," SCHED_COMMON
                                   ",\"prediction_type\":\"epsilon\",\"timestep_spacing\":\"leading\"}";
static const char k_sched_sd21_v[] = "{\"_class_name\":\"DDIMScheduler\",\"_diffusers_version\":\"0.8.0\"," SCHED_COMMON
                                     ",\"prediction_type\":\"v_prediction\"}";
static const char k_sched_sd2_base[] = "{\"_class_name\":\"PNDMScheduler\",\"_diffusers_version\":\"0.10.0.dev0\","
                                       SCHED_COMMON ",\"prediction_type\":\"epsilon\"}";
static const char k_sched_sdxl[] =
    "{\"_class_name\":\"EulerDiscreteScheduler\",\"_diffusers_version\":\"0.30.3\"," SCHED_COMMON
    ",\"prediction_type\":\"epsilon\",\"timestep_spacing\":\"leading\",\"interpolation_type\":\"linear\","
    "\"sample_max_value\":1.0,\"use_karras_sigmas\":false}";

/* ---- VAE and text encoders ---- */

#define VAE(scale)                                                                                           \
    {.in_channels = 3, .out_channels = 3, .latent_channels = 4, .nblocks = 4, .block_out = {128, 256, 512, 512}, \
     .layers_per_block = 2, .norm_num_groups = 32, .use_quant_conv = 1, .use_post_quant_conv = 1,              \
     .mid_attention = 1, .scaling_factor = scale, .shift_factor = 0.0f, .load_encoder = 1}

/* eos_token_id 2: the legacy value every one of these configs carries (argmax pooling) */
#define CLIP(D, I, L, H, ACT, proj, pdim)                                                                       \
    {.hidden_size = D, .intermediate_size = I, .num_layers = L, .num_heads = H, .max_positions = 77,            \
     .vocab_size = 49408, .act = ACT, .layer_norm_eps = 1e-5f, .eos_token_id = 2, .with_projection = proj,      \
     .projection_dim = pdim}

/* openai/clip-vit-large-patch14 */
#define CLIP_L CLIP(768, 3072, 12, 12, CLIP_ACT_QUICK_GELU, 0, 768)
/* OpenCLIP ViT-H/14 as diffusers converts it: 23 of its 24 layers (SD 2.x
 * conditions on the penultimate layer + final norm) */
#define OPENCLIP_H CLIP(1024, 4096, 23, 16, CLIP_ACT_GELU, 0, 512)
/* OpenCLIP ViT-bigG/14, all 32 layers, with the 1280 -> 1280 projection */
#define OPENCLIP_BIGG CLIP(1280, 5120, 32, 20, CLIP_ACT_GELU, 1, 1280)

static const builtin_pipeline k_pipelines[] = {
    {"sd15", "SD 1.5", "StableDiffusionPipeline", k_unet_sd15, k_sched_sd15, VAE(0.18215f), CLIP_L, {0}, 0, 0},
    {"sd21-768-v", "SD 2.1 (768-v)", "StableDiffusionPipeline", k_unet_sd21_v, k_sched_sd21_v, VAE(0.18215f),
     OPENCLIP_H, {0}, 0, 0},
    {"sd2-base-512", "SD 2.x base (512)", "StableDiffusionPipeline", k_unet_sd2_base, k_sched_sd2_base,
     VAE(0.18215f), OPENCLIP_H, {0}, 0, 0},
    {"sdxl-base", "SDXL base 1.0", "StableDiffusionXLPipeline", k_unet_sdxl, k_sched_sdxl, VAE(0.13025f), CLIP_L,
     OPENCLIP_BIGG, 1, 1},
};

const builtin_pipeline *builtin_pipeline_for(ckpt_family f, int v_prediction) {
    switch (f) {
    case CKPT_SD1: return &k_pipelines[0];
    case CKPT_SD2: return &k_pipelines[v_prediction ? 1 : 2];
    case CKPT_SDXL: return &k_pipelines[3];
    }
    return NULL;
}

const char *ckpt_family_name(ckpt_family f) {
    switch (f) {
    case CKPT_SD1: return "SD 1.x";
    case CKPT_SD2: return "SD 2.x";
    case CKPT_SDXL: return "SDXL";
    }
    return "?";
}
