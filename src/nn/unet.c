/* unet.c - UNet2DConditionModel loading and forward pass.
 * Forward (diffusers UNet2DConditionModel.forward):
 *   emb = time_embedding(time_proj(t)) [+ add_embedding(cat(text_embeds, time_proj(time_ids)))]
 *   h = conv_in(x); skips = [h]
 *   down blocks: (resnet [+ transformer]) x layers, then downsample; every output is a skip
 *   mid block: resnet, transformer, resnet
 *   up blocks: (cat(h, skip.pop()) -> resnet [+ transformer]) x (layers+1), then upsample to
 *              the next skip's size (so odd latent sizes work)
 *   out = conv_out(silu(conv_norm_out(h))) */
#include "nn/unet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"
#include "nn/resnet.h"
#include "nn/transformer2d.h"

typedef struct {
    int nres, has_attn, out_ch;
    resnet_block *res;
    transformer2d *attn; /* nres entries when has_attn */
    int has_sample;      /* downsampler or upsampler */
    conv2d sample;
} unet_block;

struct sdc_unet {
    op_ctx *cx; /* the model's: every op of the forward runs in it */
    unet_config cfg;
    weights w;
    linear time_l1, time_l2, add_l1, add_l2, cond_proj;
    conv2d conv_in, conv_out;
    group_norm norm_out;
    unet_block down[UNET_MAX_BLOCKS], up[UNET_MAX_BLOCKS], mid;
    int has_mid;
};

static sdc_status block_alloc(unet_block *b, int nres, int attn) {
    b->nres = nres;
    b->has_attn = attn;
    b->res = calloc((size_t)nres, sizeof(resnet_block));
    b->attn = attn ? calloc((size_t)nres, sizeof(transformer2d)) : NULL;
    if (!b->res || (attn && !b->attn)) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    return SDC_OK;
}

static void block_free(unet_block *b) {
    if (b->attn)
        for (int i = 0; i < b->nres; i++) transformer2d_free(&b->attn[i]);
    free(b->res);
    free(b->attn);
}

static sdc_status load_all(sdc_unet *u) {
    const unet_config *c = &u->cfg;
    weights *w = &u->w;
    char n[256];
    int T = c->time_embed_dim, nb = c->nblocks;
    SDC_TRY(conv2d_load(w, &u->conv_in, c->in_channels, c->block_out[0], c->conv_in_kernel, 1,
                        (c->conv_in_kernel - 1) / 2, "conv_in"));
    SDC_TRY(linear_load(w, &u->time_l1, c->block_out[0], T, 1, "time_embedding.linear_1"));
    SDC_TRY(linear_load(w, &u->time_l2, T, T, 1, "time_embedding.linear_2"));
    if (c->time_cond_proj_dim)
        SDC_TRY(linear_load(w, &u->cond_proj, c->time_cond_proj_dim, c->block_out[0], 0, "time_embedding.cond_proj"));
    if (c->add_text_time) {
        SDC_TRY(linear_load(w, &u->add_l1, c->add_in_dim, T, 1, "add_embedding.linear_1"));
        SDC_TRY(linear_load(w, &u->add_l2, T, T, 1, "add_embedding.linear_2"));
    }
    int out_ch = c->block_out[0];
    for (int i = 0; i < nb; i++) {
        unet_block *b = &u->down[i];
        int in_ch = out_ch;
        out_ch = c->block_out[i];
        b->out_ch = out_ch;
        SDC_TRY(block_alloc(b, c->layers_per_block[i], c->down_attn[i]));
        for (int j = 0; j < b->nres; j++) {
            snprintf(n, sizeof n, "down_blocks.%d.resnets.%d", i, j);
            SDC_TRY(resnet_load(w, &b->res[j], j ? out_ch : in_ch, out_ch, T, c->groups, c->eps, 1.0f, n));
            if (b->has_attn) {
                snprintf(n, sizeof n, "down_blocks.%d.attentions.%d", i, j);
                SDC_TRY(transformer2d_load(w, &b->attn[j], out_ch, c->heads[i], c->tlayers[i], c->cross_dim[i],
                                           c->groups, c->linear_proj, n));
            }
        }
        b->has_sample = i < nb - 1;
        if (b->has_sample) {
            snprintf(n, sizeof n, "down_blocks.%d.downsamplers.0.conv", i);
            SDC_TRY(conv2d_load(w, &b->sample, out_ch, out_ch, 3, 2, c->downsample_padding, n));
        }
    }
    int top = c->block_out[nb - 1];
    u->has_mid = c->mid_attn >= 0;
    if (u->has_mid) {
        SDC_TRY(block_alloc(&u->mid, 2, c->mid_attn == 1)); /* one transformer, between the resnets */
        u->mid.out_ch = top;
        for (int j = 0; j < 2; j++) {
            snprintf(n, sizeof n, "mid_block.resnets.%d", j);
            SDC_TRY(resnet_load(w, &u->mid.res[j], top, top, T, c->groups, c->eps, c->mid_scale, n));
        }
        if (c->mid_attn)
            SDC_TRY(transformer2d_load(w, &u->mid.attn[0], top, c->heads[nb - 1], c->tlayers[nb - 1],
                                       c->cross_dim[nb - 1], c->groups, c->linear_proj, "mid_block.attentions.0"));
    }
    out_ch = top;
    for (int i = 0; i < nb; i++) {
        unet_block *b = &u->up[i];
        int r = nb - 1 - i; /* the down block this one mirrors */
        int prev = out_ch;
        out_ch = c->block_out[r];
        int in_ch = c->block_out[r > 0 ? r - 1 : 0];
        b->out_ch = out_ch;
        SDC_TRY(block_alloc(b, c->layers_per_block[r] + 1, c->up_attn[i]));
        for (int j = 0; j < b->nres; j++) {
            int skip = j == b->nres - 1 ? in_ch : out_ch;
            int rin = j == 0 ? prev : out_ch;
            snprintf(n, sizeof n, "up_blocks.%d.resnets.%d", i, j);
            SDC_TRY(resnet_load(w, &b->res[j], rin + skip, out_ch, T, c->groups, c->eps, 1.0f, n));
            if (b->has_attn) {
                snprintf(n, sizeof n, "up_blocks.%d.attentions.%d", i, j);
                SDC_TRY(transformer2d_load(w, &b->attn[j], out_ch, c->heads[r], c->rev_tlayers[i], c->cross_dim[r],
                                           c->groups, c->linear_proj, n));
            }
        }
        b->has_sample = i < nb - 1;
        if (b->has_sample) {
            snprintf(n, sizeof n, "up_blocks.%d.upsamplers.0.conv", i);
            SDC_TRY(conv2d_load(w, &b->sample, out_ch, out_ch, 3, 1, 1, n));
        }
    }
    SDC_TRY(group_norm_load(w, &u->norm_out, c->block_out[0], c->groups, c->eps, "conv_norm_out"));
    SDC_TRY(conv2d_load(w, &u->conv_out, c->block_out[0], c->out_channels, c->conv_out_kernel, 1,
                        (c->conv_out_kernel - 1) / 2, "conv_out"));
    return SDC_OK;
}

sdc_status unet_load_weights(sdc_unet **out, op_ctx *cx, const unet_config *cfg, weights *w) {
    *out = NULL;
    sdc_unet *u = calloc(1, sizeof *u);
    if (!u) {
        weights_close(w);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    u->cx = cx;
    u->cfg = *cfg;
    u->w = *w;
    memset(w, 0, sizeof *w);
    sdc_status st = load_all(u);
    if (st) {
        unet_free(u);
        return st;
    }
    *out = u;
    return SDC_OK;
}

void unet_free(sdc_unet *u) {
    if (!u) return;
    for (int i = 0; i < u->cfg.nblocks; i++) {
        block_free(&u->down[i]);
        block_free(&u->up[i]);
    }
    block_free(&u->mid);
    weights_close(&u->w);
    free(u);
}

const unet_config *unet_get_config(const sdc_unet *u) { return &u->cfg; }
int64_t unet_num_params(const sdc_unet *u) { return u->w.nparams; }
weights *unet_weights(sdc_unet *u) { return &u->w; }
op_ctx *unet_ctx(const sdc_unet *u) { return u->cx; }

/* ---- forward ---- */

typedef struct {
    float *data;
    int C, H, W;
} skip_t;

/* d is activation memory; the dump callback gets a host view of it */
static void dump_act(op_ctx *cx, sdc_dump_fn dump, void *ctx, const char *name, const float *d, int ndim,
                     const int64_t *s) {
    if (!dump) return;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= s[i];
    float *tmp;
    const float *hd = host_view(cx, d, n, &tmp);
    if (hd) dump(ctx, name, hd, ndim, s);
    free(tmp);
}

static void dump4(op_ctx *cx, sdc_dump_fn dump, void *ctx, const char *name, const float *d, int B, int C, int H,
                  int W) {
    int64_t s[4] = {B, C, H, W};
    dump_act(cx, dump, ctx, name, d, 4, s);
}


/* silu(time_embedding(t) [+ add_embedding(...)]) -> temb[B, T]; t and the
 * extra tensors in activation memory. */
static sdc_status time_embed(const sdc_unet *u, const float *t, int B, const unet_extra *ex, float *temb,
                             sdc_dump_fn dump, void *dctx) {
    op_ctx *cx = u->cx;
    const unet_config *c = &u->cfg;
    int T = c->time_embed_dim, C0 = c->block_out[0];
    float *tp = NULL, *h = NULL, *a = NULL, *ai = NULL, *cp = NULL, *ae = NULL;
    sdc_status st;
    if ((st = op_alloc(cx, &tp, (int64_t)B * C0)) || (st = op_alloc(cx, &h, (int64_t)B * T))) goto done;
    op_timestep_embedding(cx, t, B, C0, c->flip_sin_to_cos, c->freq_shift, tp);
    dump_act(cx, dump, dctx, "mid.time_proj", tp, 2, (int64_t[]){B, C0});
    if (c->time_cond_proj_dim) {
        if (!ex || !ex->timestep_cond) {
            st = sdc_fail(SDC_ERR_ARG, "this UNet needs a guidance embedding (time_cond_proj_dim)");
            goto done;
        }
        if ((st = op_alloc(cx, &cp, (int64_t)B * C0))) goto done;
        if ((st = linear_fwd(cx, &u->cond_proj, ex->timestep_cond, B, cp))) goto done;
        op_add(cx, tp, cp, (int64_t)B * C0);
    }
    if ((st = linear_fwd(cx, &u->time_l1, tp, B, h))) goto done;
    op_silu(cx, h, (int64_t)B * T);
    if ((st = linear_fwd(cx, &u->time_l2, h, B, temb))) goto done;
    dump_act(cx, dump, dctx, "mid.time_embedding", temb, 2, (int64_t[]){B, T});
    if (c->add_text_time) {
        if (!ex || !ex->text_embeds || !ex->time_ids) {
            st = sdc_fail(SDC_ERR_ARG, "this UNet (SDXL) needs pooled text embeddings and time ids");
            goto done;
        }
        int A = c->add_time_dim, P = c->add_in_dim - 6 * A;
        if ((st = op_alloc(cx, &ai, (int64_t)B * c->add_in_dim)) || (st = op_alloc(cx, &a, (int64_t)B * 6 * A))) goto done;
        op_timestep_embedding(cx, ex->time_ids, 6 * B, A, c->flip_sin_to_cos, c->freq_shift, a);
        dump_act(cx, dump, dctx, "mid.add_time_proj", a, 2, (int64_t[]){6 * B, A});
        /* ai[b] = cat(text_embeds[b], a[b]) */
        op_copy_2d(cx, ai, c->add_in_dim, ex->text_embeds, P, B, P);
        op_copy_2d(cx, ai + P, c->add_in_dim, a, 6 * A, B, 6 * A);
        if ((st = linear_fwd(cx, &u->add_l1, ai, B, h))) goto done;
        op_silu(cx, h, (int64_t)B * T);
        if ((st = op_alloc(cx, &ae, (int64_t)B * T))) goto done;
        if ((st = linear_fwd(cx, &u->add_l2, h, B, ae))) goto done;
        dump_act(cx, dump, dctx, "mid.add_embedding", ae, 2, (int64_t[]){B, T});
        op_add(cx, temb, ae, (int64_t)B * T);
    }
    op_silu(cx, temb, (int64_t)B * T);
done:
    op_free(cx, tp);
    op_free(cx, h);
    op_free(cx, a);
    op_free(cx, ai);
    op_free(cx, cp);
    op_free(cx, ae);
    return st;
}

/* resnet (+ transformer) on *h in place of the old buffer */
static sdc_status res_attn(op_ctx *cx, const unet_block *b, int j, float **h, int B, int H, int W, const float *temb,
                           const float *ctx, int M) {
    float *y;
    SDC_TRY(resnet_fwd(cx, &b->res[j], *h, B, H, W, temb, &y));
    op_free(cx, *h);
    *h = y;
    if (b->has_attn) SDC_TRY(transformer2d_fwd(cx, &b->attn[j], *h, B, H, W, ctx, M));
    return SDC_OK;
}

/* The width of encoder_hidden_states as the cross-attention blocks read it
 * (0 when no block attends to it). */
static int ctx_width(const unet_config *c) {
    int nb = c->nblocks, d = 0;
    for (int i = 0; i < nb; i++) {
        if (c->down_attn[i] && c->cross_dim[i] > d) d = c->cross_dim[i];
        if (c->up_attn[i] && c->cross_dim[nb - 1 - i] > d) d = c->cross_dim[nb - 1 - i];
    }
    if (c->mid_attn == 1 && c->cross_dim[nb - 1] > d) d = c->cross_dim[nb - 1];
    return d;
}

sdc_status unet_forward_act(const sdc_unet *u, const float *x, int B, int H, int W, const float *t, const float *ctx,
                            int M, const unet_extra *extra, float *out, sdc_dump_fn dump, void *dctx) {
    op_ctx *cx = u->cx;
    const unet_config *c = &u->cfg;
    int nb = c->nblocks, T = c->time_embed_dim;
    if (B < 1 || H < 1 || W < 1 || M < 1) return sdc_fail(SDC_ERR_ARG, "unet: empty input");
    skip_t skips[UNET_MAX_BLOCKS * 20];
    int nskip = 0;
    float *temb = NULL, *h = NULL, *xin = NULL, *cat = NULL;
    sdc_status st;
    char name[64];
    if ((st = op_alloc(cx, &temb, (int64_t)B * T))) return st;
    if ((st = time_embed(u, t, B, extra, temb, dump, dctx))) goto done;
    if (c->center_input_sample) { /* x is the caller's: scaled into a copy */
        int64_t n = (int64_t)B * c->in_channels * H * W;
        if ((st = op_alloc(cx, &xin, n))) goto done;
        op_affine(cx, xin, x, 2.0f, -1.0f, n);
        x = xin;
    }
    if ((st = conv2d_fwd(cx, &u->conv_in, x, B, H, W, &h, NULL, NULL))) goto done;
    op_free(cx, xin);
    xin = NULL;
    int C = c->block_out[0];
    dump4(cx, dump, dctx, "mid.conv_in", h, B, C, H, W);
#define PUSH_SKIP()                                                                      \
    do {                                                                                 \
        int64_t n_ = (int64_t)B * C * H * W;                                             \
        if ((st = op_alloc(cx, &skips[nskip].data, n_))) goto done;                          \
        op_copy(cx, skips[nskip].data, h, n_);                                               \
        skips[nskip].C = C; skips[nskip].H = H; skips[nskip].W = W;                      \
        nskip++;                                                                         \
    } while (0)
    PUSH_SKIP();
    for (int i = 0; i < nb; i++) {
        const unet_block *b = &u->down[i];
        for (int j = 0; j < b->nres; j++) {
            if ((st = res_attn(cx, b, j, &h, B, H, W, temb, ctx, M))) goto done;
            C = b->out_ch;
            PUSH_SKIP();
        }
        if (b->has_sample) {
            float *y;
            int Ho, Wo;
            if ((st = conv2d_fwd(cx, &b->sample, h, B, H, W, &y, &Ho, &Wo))) goto done;
            op_free(cx, h);
            h = y;
            H = Ho;
            W = Wo;
            PUSH_SKIP();
        }
        snprintf(name, sizeof name, "mid.down_blocks.%d", i);
        dump4(cx, dump, dctx, name, h, B, C, H, W);
    }
    if (u->has_mid) {
        if ((st = res_attn(cx, &u->mid, 0, &h, B, H, W, temb, ctx, M))) goto done;
        float *y;
        if ((st = resnet_fwd(cx, &u->mid.res[1], h, B, H, W, temb, &y))) goto done;
        op_free(cx, h);
        h = y;
        dump4(cx, dump, dctx, "mid.mid_block", h, B, C, H, W);
    }
    for (int i = 0; i < nb; i++) {
        const unet_block *b = &u->up[i];
        for (int j = 0; j < b->nres; j++) {
            skip_t *s = &skips[--nskip];
            int64_t HW = (int64_t)H * W;
            if ((st = op_alloc(cx, &cat, (int64_t)B * (C + s->C) * HW))) goto done;
            /* cat[n] = (h[n], skip[n]) along channels */
            op_copy_2d(cx, cat, (C + s->C) * HW, h, C * HW, B, C * HW);
            op_copy_2d(cx, cat + C * HW, (C + s->C) * HW, s->data, s->C * HW, B, s->C * HW);
            op_free(cx, s->data);
            s->data = NULL;
            op_free(cx, h);
            h = cat;
            cat = NULL;
            if ((st = res_attn(cx, b, j, &h, B, H, W, temb, ctx, M))) goto done;
            C = b->out_ch;
        }
        if (b->has_sample) {
            /* upsample to the size of the skip the next block consumes first */
            int Ho = skips[nskip - 1].H, Wo = skips[nskip - 1].W;
            float *up, *y;
            if ((st = op_alloc(cx, &up, (int64_t)B * C * Ho * Wo))) goto done;
            op_upsample_nearest(cx, h, up, (int64_t)B * C, H, W, Ho, Wo);
            op_free(cx, h);
            h = up;
            H = Ho;
            W = Wo;
            if ((st = conv2d_fwd(cx, &b->sample, h, B, H, W, &y, NULL, NULL))) goto done;
            op_free(cx, h);
            h = y;
        }
        snprintf(name, sizeof name, "mid.up_blocks.%d", i);
        dump4(cx, dump, dctx, name, h, B, C, H, W);
    }
    group_norm_fwd(cx, &u->norm_out, h, h, B, (int64_t)H * W, 0);
    dump4(cx, dump, dctx, "mid.conv_norm_out", h, B, C, H, W);
    op_silu(cx, h, (int64_t)B * C * H * W);
    if ((st = conv2d_fwd_into(cx, &u->conv_out, h, B, H, W, out))) goto done;
    dump4(cx, dump, dctx, "mid.conv_out", out, B, c->out_channels, H, W);
#undef PUSH_SKIP
done:
    for (int i = 0; i < nskip; i++) op_free(cx, skips[i].data);
    op_free(cx, temb);
    op_free(cx, h);
    op_free(cx, xin);
    op_free(cx, cat);
    return st;
}

void unet_inputs_free(unet_inputs *in) {
    op_ctx *cx = in->cx;
    if (!cx) return; /* never uploaded */
    op_free(cx, in->x);
    op_free(cx, in->t);
    op_free(cx, in->ctx);
    op_free(cx, in->text_embeds);
    op_free(cx, in->time_ids);
    op_free(cx, in->timestep_cond);
    memset(in, 0, sizeof *in);
}

/* floats of each per-request tensor that u reads and the caller gives */
static void context_sizes(const sdc_unet *u, unet_inputs *in, int M, const unet_extra *extra) {
    const unet_config *c = &u->cfg;
    int B = in->B;
    in->n_ctx = (int64_t)B * M * ctx_width(c);
    in->n_text = extra && extra->text_embeds && c->add_text_time ? (int64_t)B * (c->add_in_dim - 6 * c->add_time_dim) : 0;
    in->n_ids = extra && extra->time_ids && c->add_text_time ? 6 * (int64_t)B : 0;
    in->n_cond = extra && extra->timestep_cond && c->time_cond_proj_dim ? (int64_t)B * c->time_cond_proj_dim : 0;
}

int unet_inputs_same_extras(const unet_inputs *in, const sdc_unet *u, const unet_extra *extra) {
    unet_inputs k = {.B = in->B};
    context_sizes(u, &k, 1, extra);
    return !k.n_text == !in->n_text && !k.n_ids == !in->n_ids && !k.n_cond == !in->n_cond;
}

sdc_status unet_inputs_set_context(unet_inputs *in, const float *ctx, const unet_extra *extra) {
    op_ctx *cx = in->cx;
    if (in->n_ctx) SDC_TRY(op_upload(cx, in->ctx, ctx, in->n_ctx));
    if (in->n_text) SDC_TRY(op_upload(cx, in->text_embeds, extra->text_embeds, in->n_text));
    if (in->n_ids) SDC_TRY(op_upload(cx, in->time_ids, extra->time_ids, in->n_ids));
    if (in->n_cond) SDC_TRY(op_upload(cx, in->timestep_cond, extra->timestep_cond, in->n_cond));
    return SDC_OK;
}

sdc_status unet_inputs_upload(const sdc_unet *u, unet_inputs *in, int B, int H, int W, const float *ctx, int M,
                              const unet_extra *extra) {
    op_ctx *cx = u->cx;
    const unet_config *c = &u->cfg;
    memset(in, 0, sizeof *in);
    if (B < 1 || H < 1 || W < 1 || M < 1) return sdc_fail(SDC_ERR_ARG, "unet: empty input");
    in->cx = cx;
    in->B = B;
    in->nx = (int64_t)B * c->in_channels * H * W;
    context_sizes(u, in, M, extra);
    sdc_status st;
    if ((st = op_alloc(cx, &in->x, in->nx)) || (st = op_alloc(cx, &in->t, B))) goto fail;
    if (in->n_ctx && (st = op_alloc(cx, &in->ctx, in->n_ctx))) goto fail;
    if (in->n_text && (st = op_alloc(cx, &in->text_embeds, in->n_text))) goto fail;
    if (in->n_ids && (st = op_alloc(cx, &in->time_ids, in->n_ids))) goto fail;
    if (in->n_cond && (st = op_alloc(cx, &in->timestep_cond, in->n_cond))) goto fail;
    if ((st = unet_inputs_set_context(in, ctx, extra))) goto fail;
    in->extra = (unet_extra){in->text_embeds, in->time_ids, in->timestep_cond};
    return SDC_OK;
fail:
    unet_inputs_free(in);
    return st;
}

sdc_status unet_inputs_set_step(unet_inputs *in, const float *x, const float *t) {
    op_ctx *cx = in->cx;
    SDC_TRY(op_upload(cx, in->x, x, in->nx));
    return op_upload(cx, in->t, t, in->B);
}

/* The host boundary: x, t, ctx, extra and out in host memory, uploaded for
 * this one call (unet_runner keeps what repeats across steps uploaded). */
sdc_status unet_forward(const sdc_unet *u, const float *x, int B, int H, int W, const float *t, const float *ctx,
                        int M, const unet_extra *extra, float *out, sdc_dump_fn dump, void *dctx) {
    if (B < 1 || H < 1 || W < 1 || M < 1) return sdc_fail(SDC_ERR_ARG, "unet: empty input");
    op_ctx *cx = u->cx;
    unet_inputs in;
    SDC_TRY(unet_inputs_upload(u, &in, B, H, W, ctx, M, extra));
    float *y = NULL;
    sdc_status st = unet_inputs_set_step(&in, x, t);
    if (!st) st = op_alloc(cx, &y, (int64_t)B * u->cfg.out_channels * H * W);
    if (!st) st = unet_forward_act(u, in.x, B, H, W, in.t, in.ctx, M, &in.extra, y, dump, dctx);
    if (!st) st = op_download(cx, out, y, (int64_t)B * u->cfg.out_channels * H * W);
    op_free(cx, y);
    unet_inputs_free(&in);
    return st;
}

sdc_status unet_load(sdc_unet **out, op_ctx *cx, const char *dir, const char *variant) {
    char path[4096];
    cJSON *j;
    unet_config cfg;
    weights w;
    *out = NULL;
    snprintf(path, sizeof path, "%s/config.json", dir);
    SDC_TRY(json_load(path, &j));
    sdc_status st = unet_config_from_json(j, path, &cfg);
    cJSON_Delete(j);
    if (st) return st;
    SDC_TRY(weights_open_component(&w, dir, "diffusion_pytorch_model", variant));
    return unet_load_weights(out, cx, &cfg, &w);
}
