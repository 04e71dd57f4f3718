/* ldm_keymap_unet.c - the UNet module correspondence between diffusers and
 * the original LDM/SGM checkpoints (see ldm_keymap.h for the layout). */
#include <stdio.h>
#include <string.h>

#include "family/ldm_keymap.h"

static void resnet(const char *d, const char *l, keymap_fn fn, void *ctx) {
    static const char *pairs[][2] = {{"norm1", "in_layers.0"},   {"conv1", "in_layers.2"},
                                     {"time_emb_proj", "emb_layers.1"}, {"norm2", "out_layers.0"},
                                     {"conv2", "out_layers.3"},  {"conv_shortcut", "skip_connection"}};
    char a[256], b[256];
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        snprintf(a, sizeof a, "%s.%s", d, pairs[i][0]);
        snprintf(b, sizeof b, "%s.%s", l, pairs[i][1]);
        fn(ctx, a, b);
    }
}

void ldm_unet_prefixes(const unet_config *c, keymap_fn fn, void *ctx) {
    char d[256], l[256];
    fn(ctx, "conv_in", "input_blocks.0.0");
    fn(ctx, "time_embedding.linear_1", "time_embed.0");
    fn(ctx, "time_embedding.linear_2", "time_embed.2");
    fn(ctx, "time_embedding.cond_proj", "time_embed.cond_proj");
    fn(ctx, "add_embedding.linear_1", "label_emb.0.0");
    fn(ctx, "add_embedding.linear_2", "label_emb.0.2");
    fn(ctx, "conv_norm_out", "out.0");
    fn(ctx, "conv_out", "out.2");
    int n = 1;
    for (int i = 0; i < c->nblocks; i++) {
        for (int j = 0; j < c->layers_per_block[i]; j++, n++) {
            snprintf(d, sizeof d, "down_blocks.%d.resnets.%d", i, j);
            snprintf(l, sizeof l, "input_blocks.%d.0", n);
            resnet(d, l, fn, ctx);
            if (c->down_attn[i]) {
                snprintf(d, sizeof d, "down_blocks.%d.attentions.%d", i, j);
                snprintf(l, sizeof l, "input_blocks.%d.1", n);
                fn(ctx, d, l);
            }
        }
        if (i < c->nblocks - 1) {
            snprintf(d, sizeof d, "down_blocks.%d.downsamplers.0.conv", i);
            snprintf(l, sizeof l, "input_blocks.%d.0.op", n++);
            fn(ctx, d, l);
        }
    }
    resnet("mid_block.resnets.0", "middle_block.0", fn, ctx);
    fn(ctx, "mid_block.attentions.0", "middle_block.1");
    resnet("mid_block.resnets.1", "middle_block.2", fn, ctx);
    n = 0;
    for (int i = 0; i < c->nblocks; i++) {
        int r = c->nblocks - 1 - i, layers = c->layers_per_block[r] + 1;
        for (int j = 0; j < layers; j++, n++) {
            snprintf(d, sizeof d, "up_blocks.%d.resnets.%d", i, j);
            snprintf(l, sizeof l, "output_blocks.%d.0", n);
            resnet(d, l, fn, ctx);
            if (c->up_attn[i]) {
                snprintf(d, sizeof d, "up_blocks.%d.attentions.%d", i, j);
                snprintf(l, sizeof l, "output_blocks.%d.1", n);
                fn(ctx, d, l);
            }
            if (j == layers - 1 && i < c->nblocks - 1) {
                snprintf(d, sizeof d, "up_blocks.%d.upsamplers.0.conv", i);
                snprintf(l, sizeof l, "output_blocks.%d.%d.conv", n, c->up_attn[i] ? 2 : 1);
                fn(ctx, d, l);
            }
        }
    }
}

int ldm_unet_name(const unet_config *c, const char *diffusers, char *out, size_t n) {
    keymap_query q = {.name = diffusers, .out = out, .n = n};
    ldm_unet_prefixes(c, keymap_match, &q);
    return q.found;
}

int ldm_unet_to_diffusers(const unet_config *c, const char *ldm, char *out, size_t n) {
    keymap_query q = {.name = ldm, .reverse = 1, .out = out, .n = n};
    ldm_unet_prefixes(c, keymap_match, &q);
    return q.found;
}
