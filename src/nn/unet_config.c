/* unet_config.c - UNet2DConditionModel config.json -> unet_config, with
 * diffusers' defaults and its naming quirk (attention_head_dim is the head
 * count unless num_attention_heads is given). Unsupported variants are
 * refused by name rather than run wrongly. */
#include <stdio.h>
#include <string.h>

#include "io/json.h"
#include "nn/unet.h"

static sdc_status block_types(const cJSON *j, const char *key, const char *what, const char *plain,
                              const char *attn, int *out, int *n) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsArray(a)) return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' must be a list of block types", what, key);
    *n = cJSON_GetArraySize(a);
    if (*n < 1 || *n > UNET_MAX_BLOCKS) return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' has %d blocks", what, key, *n);
    for (int i = 0; i < *n; i++) {
        const cJSON *s = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsString(s)) return sdc_fail(SDC_ERR_FORMAT, "%s: '%s'[%d] must be a string", what, key, i);
        if (!strcmp(s->valuestring, plain)) out[i] = 0;
        else if (!strcmp(s->valuestring, attn)) out[i] = 1;
        else return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: block type '%s' is not supported (expected %s or %s)", what,
                             s->valuestring, plain, attn);
    }
    return SDC_OK;
}

/* An integer field that must lie in lo..hi: checked before it is narrowed to
 * int, so a value like 2^31-1 or 2^32+4 cannot wrap into something plausible
 * (sample_size * 8 overflowing into "size -8x-8"). */
static sdc_status int_in(const cJSON *j, const char *key, long long def, long long lo, long long hi, int *out,
                         const char *what) {
    long long v;
    SDC_TRY(json_get_int(j, key, def, &v, what));
    if (v < lo || v > hi) return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' is %lld, outside %lld..%lld", what, key, v, lo, hi);
    *out = (int)v;
    return SDC_OK;
}

sdc_status unet_config_from_json(const cJSON *j, const char *what, unet_config *c) {
    memset(c, 0, sizeof *c);
    double d;
    int b, n;
    const char *s;
    SDC_TRY(int_in(j, "in_channels", 4, 1, 64, &c->in_channels, what));
    SDC_TRY(int_in(j, "out_channels", 4, 1, 64, &c->out_channels, what));
    /* latent pixels; times the VAE's scale (at most 2^7) it stays far inside int */
    SDC_TRY(int_in(j, "sample_size", 64, 1, 65536, &c->sample_size, what));
    SDC_TRY(block_types(j, "down_block_types", what, "DownBlock2D", "CrossAttnDownBlock2D", c->down_attn, &c->nblocks));
    SDC_TRY(block_types(j, "up_block_types", what, "UpBlock2D", "CrossAttnUpBlock2D", c->up_attn, &n));
    if (n != c->nblocks)
        return sdc_fail(SDC_ERR_FORMAT, "%s: %d down blocks but %d up blocks", what, c->nblocks, n);
    SDC_TRY(json_get_int_list(j, "block_out_channels", UNET_MAX_BLOCKS, c->block_out, &n, what));
    if (n != c->nblocks)
        return sdc_fail(SDC_ERR_FORMAT, "%s: block_out_channels has %d entries for %d blocks", what, n, c->nblocks);
    b = c->nblocks;
    SDC_TRY(json_get_str(j, "mid_block_type", "UNetMidBlock2DCrossAttn", &s, what));
    if (!strcmp(s, "UNetMidBlock2DCrossAttn")) c->mid_attn = 1;
    else if (!strcmp(s, "UNetMidBlock2D")) c->mid_attn = 0;
    else return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: mid_block_type '%s' is not supported", what, s);
    if (json_has(j, "mid_block_type") == 0 && cJSON_GetObjectItemCaseSensitive(j, "mid_block_type")) c->mid_attn = -1;
    SDC_TRY(json_get_int_or_list(j, "layers_per_block", 2, b, c->layers_per_block, what));
    /* diffusers: num_attention_heads = num_attention_heads or attention_head_dim */
    if (json_has(j, "num_attention_heads")) SDC_TRY(json_get_int_or_list(j, "num_attention_heads", 8, b, c->heads, what));
    else SDC_TRY(json_get_int_or_list(j, "attention_head_dim", 8, b, c->heads, what));
    SDC_TRY(json_get_int_or_list(j, "transformer_layers_per_block", 1, b, c->tlayers, what));
    if (json_has(j, "reverse_transformer_layers_per_block")) {
        SDC_TRY(json_get_int_or_list(j, "reverse_transformer_layers_per_block", 1, b, c->rev_tlayers, what));
    } else {
        for (int i = 0; i < b; i++) c->rev_tlayers[i] = c->tlayers[b - 1 - i];
    }
    SDC_TRY(json_get_int_or_list(j, "cross_attention_dim", 1280, b, c->cross_dim, what));
    SDC_TRY(json_get_bool(j, "use_linear_projection", 0, &c->linear_proj, what));
    SDC_TRY(int_in(j, "norm_num_groups", 32, 1, 8192, &c->groups, what));
    SDC_TRY(json_get_num(j, "norm_eps", 1e-5, &d, what));
    c->eps = (float)d;
    SDC_TRY(json_get_bool(j, "flip_sin_to_cos", 1, &c->flip_sin_to_cos, what));
    SDC_TRY(json_get_num(j, "freq_shift", 0, &d, what));
    c->freq_shift = (float)d;
    SDC_TRY(int_in(j, "time_embedding_dim", (long long)c->block_out[0] * 4, 1, 1 << 16, &c->time_embed_dim, what));
    SDC_TRY(json_get_bool(j, "center_input_sample", 0, &c->center_input_sample, what));
    SDC_TRY(json_get_num(j, "mid_block_scale_factor", 1.0, &d, what));
    c->mid_scale = (float)d;
    SDC_TRY(int_in(j, "time_cond_proj_dim", 0, 0, 1 << 16, &c->time_cond_proj_dim, what));
    SDC_TRY(int_in(j, "conv_in_kernel", 3, 1, 15, &c->conv_in_kernel, what));
    SDC_TRY(int_in(j, "conv_out_kernel", 3, 1, 15, &c->conv_out_kernel, what));
    SDC_TRY(int_in(j, "downsample_padding", 1, 0, 16, &c->downsample_padding, what));
    SDC_TRY(json_get_str(j, "addition_embed_type", NULL, &s, what));
    if (s) {
        if (strcmp(s, "text_time"))
            return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: addition_embed_type '%s' is not supported", what, s);
        c->add_text_time = 1;
        SDC_TRY(int_in(j, "addition_time_embed_dim", 256, 1, 1 << 16, &c->add_time_dim, what));
        SDC_TRY(int_in(j, "projection_class_embeddings_input_dim", 0, 0, 1 << 20, &c->add_in_dim, what));
        if (c->add_in_dim <= 6 * c->add_time_dim)
            return sdc_fail(SDC_ERR_FORMAT, "%s: projection_class_embeddings_input_dim %d too small", what, c->add_in_dim);
    }
    /* features diffusers supports that this engine does not: refuse clearly */
    static const char *unsupported_set[] = {"class_embed_type", "encoder_hid_dim", "encoder_hid_dim_type",
                                            "num_class_embeds", "time_embedding_act_fn", "timestep_post_act"};
    for (size_t i = 0; i < sizeof unsupported_set / sizeof unsupported_set[0]; i++)
        if (json_has(j, unsupported_set[i]))
            return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: '%s' is set; this UNet variant is not supported", what,
                            unsupported_set[i]);
    int flag;
    SDC_TRY(json_get_bool(j, "dual_cross_attention", 0, &flag, what));
    if (flag) return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: dual_cross_attention is not supported", what);
    const cJSON *oca = cJSON_GetObjectItemCaseSensitive(j, "only_cross_attention");
    if (cJSON_IsTrue(oca) || cJSON_IsArray(oca)) {
        for (int i = 0; cJSON_IsArray(oca) && i < cJSON_GetArraySize(oca); i++)
            if (cJSON_IsTrue(cJSON_GetArrayItem(oca, i)))
                return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: only_cross_attention is not supported", what);
        if (cJSON_IsTrue(oca)) return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: only_cross_attention is not supported", what);
    }
    SDC_TRY(json_get_str(j, "resnet_time_scale_shift", "default", &s, what));
    if (strcmp(s, "default")) return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: resnet_time_scale_shift '%s'", what, s);
    SDC_TRY(json_get_str(j, "time_embedding_type", "positional", &s, what));
    if (strcmp(s, "positional")) return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: time_embedding_type '%s'", what, s);
    SDC_TRY(json_get_str(j, "act_fn", "silu", &s, what));
    if (strcmp(s, "silu")) return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: act_fn '%s'", what, s);
    /* sanity: sizes a real model could have */
    if (c->in_channels < 1 || c->in_channels > 64 || c->out_channels < 1 || c->out_channels > 64 || c->groups < 1)
        return sdc_fail(SDC_ERR_FORMAT, "%s: implausible channel counts", what);
    for (int i = 0; i < b; i++) {
        if (c->block_out[i] < 1 || c->block_out[i] > 8192 || c->block_out[i] % c->groups)
            return sdc_fail(SDC_ERR_FORMAT, "%s: block_out_channels[%d] = %d is not a positive multiple of %d groups",
                            what, i, c->block_out[i], c->groups);
        if (c->layers_per_block[i] < 1 || c->layers_per_block[i] > 16 || c->tlayers[i] < 1 || c->tlayers[i] > 64 ||
            c->rev_tlayers[i] < 1 || c->rev_tlayers[i] > 64 || c->cross_dim[i] < 1 || c->cross_dim[i] > 16384 ||
            c->heads[i] < 1 || c->block_out[i] % c->heads[i])
            return sdc_fail(SDC_ERR_FORMAT, "%s: block %d has implausible layer, head or dimension counts", what, i);
    }
    if (c->conv_in_kernel % 2 == 0 || c->conv_out_kernel % 2 == 0)
        return sdc_fail(SDC_ERR_FORMAT, "%s: conv kernels must be odd", what);
    return SDC_OK;
}
