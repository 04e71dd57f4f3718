/* ldm_keymap_vae.c - the AutoencoderKL module correspondence between
 * diffusers and the original LDM first_stage_model (see ldm_keymap.h).
 * Module prefixes are listed once; names translate by their longest
 * matching prefix in either direction. */
#include <stdio.h>
#include <string.h>

#include "family/ldm_keymap.h"

static void resnet(const char *d, const char *l, keymap_fn fn, void *ctx) {
    static const char *pairs[][2] = {{"norm1", "norm1"}, {"conv1", "conv1"}, {"norm2", "norm2"},
                                     {"conv2", "conv2"}, {"conv_shortcut", "nin_shortcut"}};
    char a[160], b[160];
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        snprintf(a, sizeof a, "%s.%s", d, pairs[i][0]);
        snprintf(b, sizeof b, "%s.%s", l, pairs[i][1]);
        fn(ctx, a, b);
    }
}

/* mid block of "encoder" or "decoder" */
static void mid(const char *part, keymap_fn fn, void *ctx) {
    static const char *attn[][2] = {{"group_norm", "norm"}, {"to_q", "q"}, {"to_k", "k"}, {"to_v", "v"},
                                    {"to_out.0", "proj_out"}};
    char a[160], b[160];
    for (int i = 0; i < 2; i++) {
        snprintf(a, sizeof a, "%s.mid_block.resnets.%d", part, i);
        snprintf(b, sizeof b, "%s.mid.block_%d", part, i + 1);
        resnet(a, b, fn, ctx);
    }
    for (size_t i = 0; i < sizeof attn / sizeof attn[0]; i++) {
        snprintf(a, sizeof a, "%s.mid_block.attentions.0.%s", part, attn[i][0]);
        snprintf(b, sizeof b, "%s.mid.attn_1.%s", part, attn[i][1]);
        fn(ctx, a, b);
    }
    snprintf(a, sizeof a, "%s.conv_in", part);
    fn(ctx, a, a);
    snprintf(a, sizeof a, "%s.conv_out", part);
    fn(ctx, a, a);
    snprintf(a, sizeof a, "%s.conv_norm_out", part);
    snprintf(b, sizeof b, "%s.norm_out", part);
    fn(ctx, a, b);
}

void ldm_vae_prefixes(const vae_config *c, keymap_fn fn, void *ctx) {
    char d[160], l[160];
    int n = c->nblocks;
    fn(ctx, "quant_conv", "quant_conv");
    fn(ctx, "post_quant_conv", "post_quant_conv");
    mid("encoder", fn, ctx);
    mid("decoder", fn, ctx);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < c->layers_per_block; j++) {
            snprintf(d, sizeof d, "encoder.down_blocks.%d.resnets.%d", i, j);
            snprintf(l, sizeof l, "encoder.down.%d.block.%d", i, j);
            resnet(d, l, fn, ctx);
        }
        if (i < n - 1) {
            snprintf(d, sizeof d, "encoder.down_blocks.%d.downsamplers.0.conv", i);
            snprintf(l, sizeof l, "encoder.down.%d.downsample.conv", i);
            fn(ctx, d, l);
        }
    }
    for (int i = 0; i < n; i++) {
        int k = n - 1 - i; /* LDM numbers the decoder levels from the full-resolution end */
        for (int j = 0; j < c->layers_per_block + 1; j++) {
            snprintf(d, sizeof d, "decoder.up_blocks.%d.resnets.%d", i, j);
            snprintf(l, sizeof l, "decoder.up.%d.block.%d", k, j);
            resnet(d, l, fn, ctx);
        }
        if (i < n - 1) {
            snprintf(d, sizeof d, "decoder.up_blocks.%d.upsamplers.0.conv", i);
            snprintf(l, sizeof l, "decoder.up.%d.upsample.conv", k);
            fn(ctx, d, l);
        }
    }
}

int ldm_vae_name(const vae_config *c, const char *diffusers, char *out, size_t n) {
    keymap_query q = {.name = diffusers, .out = out, .n = n};
    ldm_vae_prefixes(c, keymap_match, &q);
    return q.found;
}

int ldm_vae_to_diffusers(const vae_config *c, const char *ldm, char *out, size_t n) {
    keymap_query q = {.name = ldm, .reverse = 1, .out = out, .n = n};
    ldm_vae_prefixes(c, keymap_match, &q);
    return q.found;
}
