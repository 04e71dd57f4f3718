/* taesd.c - AutoencoderTiny: loading from a diffusers folder or a single
 * file (diffusers' or madebyollin's key layout) and the decode / encode
 * drivers (diffusers vae.py EncoderTiny / DecoderTiny, AutoencoderTinyBlock).
 * Parameter names are the nn.Sequential indices of EncoderTiny.layers /
 * DecoderTiny.layers; madebyollin's decoder Sequential starts with its Clamp
 * module, so its indices are one higher. */
#include "nn/taesd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"
#include "io/paths.h"
#include "nn/layers.h"
#include "nn/weights.h"

/* tanh(x / 3) * 3 at the decoder's input (DecoderTiny.forward's "Clamp") */
#define TAESD_CLAMP 3.0f

typedef struct {
    conv2d conv[3]; /* conv.0, conv.2, conv.4 (conv.1 and conv.3 are the ReLUs); skip is Identity */
} taesd_block;

/* one encoder or decoder: its parameters' file and names, its layers */
typedef struct {
    weights *w;
    char prefix[32]; /* "decoder.layers.", "encoder.layers.", "taesd_decoder.", "" */
    int offset;      /* added to diffusers' Sequential index (madebyollin's decoder: 1) */
    int present;
    conv2d *conv;    /* per stage: encoder: its entry conv; decoder: its exit conv; + conv_first */
    conv2d conv_first; /* decoder: the conv from the latents; encoder: the conv to the latents */
    taesd_block *blocks; /* every stage's blocks, in order */
} taesd_part;

struct sdc_taesd {
    op_ctx *cx;
    taesd_config cfg;
    weights w[2]; /* a folder or file; madebyollin's second file (the other part) */
    int nw;
    taesd_part dec, enc;
};

/* ---- loading ----------------------------------------------------------- */

static sdc_status load_block(taesd_part *p, taesd_block *b, int C, int idx) {
    char name[64];
    for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "%s%d.conv.%d", p->prefix, idx + p->offset, 2 * k);
        /* the prefix is part of the name, not the weights object's prefix: a
         * file may hold both parts under different ones */
        SDC_TRY(conv2d_load(p->w, &b->conv[k], C, C, 3, 1, 1, name));
    }
    return SDC_OK;
}

static sdc_status load_conv(taesd_part *p, conv2d *c, int cin, int cout, int stride, int bias, int idx) {
    char name[64];
    snprintf(name, sizeof name, "%s%d", p->prefix, idx + p->offset);
    return conv2d_load_bias(p->w, c, cin, cout, 3, stride, 1, bias, name);
}

static int total_blocks(const int *blocks, int n) {
    int t = 0;
    for (int i = 0; i < n; i++) t += blocks[i];
    return t;
}

static sdc_status alloc_part(taesd_part *p, int stages, int blocks) {
    p->conv = calloc((size_t)stages, sizeof *p->conv);
    p->blocks = calloc((size_t)(blocks ? blocks : 1), sizeof *p->blocks);
    if (!p->conv || !p->blocks) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    return SDC_OK;
}

/* DecoderTiny.layers: 0 conv, 1 ReLU, then per stage its blocks, an
 * Upsample (all but the last stage) and a conv (bias only in the last). */
static sdc_status load_decoder(taesd_part *p, const taesd_config *c) {
    SDC_TRY(alloc_part(p, c->n_dec, total_blocks(c->dec_blocks, c->n_dec)));
    int C = c->dec_out[0], idx = 0, nb = 0;
    SDC_TRY(load_conv(p, &p->conv_first, c->latent_channels, C, 1, 1, idx));
    idx += 2;
    for (int s = 0; s < c->n_dec; s++) {
        int last = s == c->n_dec - 1;
        for (int b = 0; b < c->dec_blocks[s]; b++) SDC_TRY(load_block(p, &p->blocks[nb++], C, idx++));
        if (!last) idx++; /* the Upsample */
        SDC_TRY(load_conv(p, &p->conv[s], C, last ? c->out_channels : C, 1, last, idx++));
    }
    return SDC_OK;
}

/* EncoderTiny.layers: per stage a conv (the first: bias, stride 1; the
 * others: no bias, stride 2) and its blocks; then the conv to the latents. */
static sdc_status load_encoder(taesd_part *p, const taesd_config *c) {
    SDC_TRY(alloc_part(p, c->n_enc, total_blocks(c->enc_blocks, c->n_enc)));
    int C = c->enc_out[0], idx = 0, nb = 0;
    for (int s = 0; s < c->n_enc; s++) {
        SDC_TRY(load_conv(p, &p->conv[s], s ? C : c->in_channels, C, s ? 2 : 1, s == 0, idx++));
        for (int b = 0; b < c->enc_blocks[s]; b++) SDC_TRY(load_block(p, &p->blocks[nb++], C, idx++));
    }
    return load_conv(p, &p->conv_first, C, c->latent_channels, 1, 1, idx);
}

static void set_names(taesd_part *p, weights *w, const char *prefix, int offset) {
    p->w = w;
    snprintf(p->prefix, sizeof p->prefix, "%s", prefix);
    p->offset = offset;
    p->present = 1;
}

/* madebyollin's files: given "<x>decoder<y>.safetensors" the encoder is
 * "<x>encoder<y>.safetensors" beside it, and the other way round (the last
 * occurrence in the file name). */
static int sibling_path(const char *path, const char *from, const char *to, char *out, size_t n) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *hit = NULL;
    for (const char *s = base; (s = strstr(s, from)); s++) hit = s;
    if (!hit) return 0;
    snprintf(out, n, "%.*s%s%s", (int)(hit - path), path, to, hit + strlen(from));
    return path_exists(out);
}

/* What a file that is not TAESD is, for the error message. */
static const char *what_else(const weights *w) {
    if (weights_has(w, "decoder.conv_in.weight") || weights_has(w, "first_stage_model.decoder.conv_in.weight"))
        return "it holds a full VAE (AutoencoderKL) or a checkpoint, not TAESD";
    if (weights_has(w, "model.diffusion_model.input_blocks.0.0.weight")) return "it is a Stable Diffusion checkpoint";
    return "no TAESD tensors (decoder.layers.0.weight, taesd_decoder.1.weight, or madebyollin's 1.weight)";
}

/* A single file: find its layout, and the latent channels its decoder's
 * first conv was made for. */
static sdc_status open_file(sdc_taesd *t, const char *path) {
    const char *one[1] = {path};
    SDC_TRY(weights_open(&t->w[0], one, 1));
    t->nw = 1;
    weights *w = &t->w[0];
    taesd_config_default(&t->cfg);
    if (weights_has(w, "decoder.layers.0.weight") || weights_has(w, "encoder.layers.0.weight")) {
        if (weights_has(w, "decoder.layers.0.weight")) set_names(&t->dec, w, "decoder.layers.", 0);
        if (weights_has(w, "encoder.layers.0.weight")) set_names(&t->enc, w, "encoder.layers.", 0);
    } else if (weights_has(w, "taesd_decoder.1.weight") || weights_has(w, "taesd_encoder.0.weight")) {
        if (weights_has(w, "taesd_decoder.1.weight")) set_names(&t->dec, w, "taesd_decoder.", 1);
        if (weights_has(w, "taesd_encoder.0.weight")) set_names(&t->enc, w, "taesd_encoder.", 0);
    } else if (weights_has(w, "0.weight") || weights_has(w, "1.weight")) {
        /* madebyollin: the encoder's Sequential starts with a conv (0.weight),
         * the decoder's with the parameterless Clamp (first conv 1.weight) */
        int is_enc = weights_has(w, "0.weight");
        char other[4096];
        set_names(is_enc ? &t->enc : &t->dec, w, "", is_enc ? 0 : 1);
        if (sibling_path(path, is_enc ? "encoder" : "decoder", is_enc ? "decoder" : "encoder", other, sizeof other)) {
            const char *two[1] = {other};
            SDC_TRY(weights_open(&t->w[1], two, 1));
            t->nw = 2;
            int other_is_enc = weights_has(&t->w[1], "0.weight");
            if (other_is_enc == is_enc || !weights_has(&t->w[1], other_is_enc ? "0.weight" : "1.weight"))
                return sdc_fail(SDC_ERR_FORMAT, "%s: not a TAESD %s file (found beside %s)", other,
                                is_enc ? "decoder" : "encoder", path);
            set_names(is_enc ? &t->dec : &t->enc, &t->w[1], "", is_enc ? 1 : 0);
        }
    } else {
        return sdc_fail(SDC_ERR_FORMAT, "%s: not a TAESD file: %s", path, what_else(w));
    }
    if (!t->dec.present)
        return sdc_fail(SDC_ERR_FORMAT, "%s: a TAESD encoder only; decoding needs the decoder (madebyollin's "
                                        "taesd_decoder.safetensors, or a diffusers AutoencoderTiny)",
                        path);
    char first[48];
    snprintf(first, sizeof first, "%s%d.weight", t->dec.prefix, t->dec.offset);
    const st_tensor *c0 = weights_find(t->dec.w, first);
    if (c0 && c0->ndim == 4) t->cfg.latent_channels = (int)c0->shape[1];
    return taesd_config_check(&t->cfg, path);
}

static sdc_status open_folder(sdc_taesd *t, const char *dir, const char *variant) {
    char p[4096];
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (!path_exists(p))
        return sdc_fail(SDC_ERR_FORMAT, "%s: not a diffusers AutoencoderTiny folder (no config.json); give a TAESD "
                                        "folder such as madebyollin/taesd, or its .safetensors file",
                        dir);
    cJSON *j;
    SDC_TRY(json_load(p, &j));
    sdc_status st = taesd_config_parse(j, &t->cfg, p);
    cJSON_Delete(j);
    SDC_TRY(st);
    SDC_TRY(weights_open_component(&t->w[0], dir, "diffusion_pytorch_model", variant));
    t->nw = 1;
    if (!weights_has(&t->w[0], "decoder.layers.0.weight"))
        return sdc_fail(SDC_ERR_FORMAT, "%s: not TAESD weights: %s", t->w[0].files[0].path, what_else(&t->w[0]));
    set_names(&t->dec, &t->w[0], "decoder.layers.", 0);
    if (weights_has(&t->w[0], "encoder.layers.0.weight")) set_names(&t->enc, &t->w[0], "encoder.layers.", 0);
    return SDC_OK;
}

sdc_status taesd_load(sdc_taesd **out, op_ctx *cx, const char *path, const char *variant) {
    *out = NULL;
    int dir = dir_exists(path);
    if (!dir && !path_exists(path)) return sdc_fail(SDC_ERR_IO, "%s: TAESD not found", path);
    sdc_taesd *t = calloc(1, sizeof *t);
    if (!t) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    t->cx = cx;
    sdc_status st = dir ? open_folder(t, path, variant && *variant ? variant : NULL) : open_file(t, path);
    if (!st) st = load_decoder(&t->dec, &t->cfg);
    if (!st && t->enc.present) st = load_encoder(&t->enc, &t->cfg);
    if (st) {
        taesd_free(t);
        return st;
    }
    *out = t;
    return SDC_OK;
}

void taesd_free(sdc_taesd *t) {
    if (!t) return;
    free(t->dec.conv), free(t->dec.blocks);
    free(t->enc.conv), free(t->enc.blocks);
    for (int i = 0; i < t->nw; i++) weights_close(&t->w[i]);
    free(t);
}

const taesd_config *taesd_get_config(const sdc_taesd *t) { return &t->cfg; }
int taesd_has_encoder(const sdc_taesd *t) { return t->enc.present; }

int taesd_upscale(const sdc_taesd *t) {
    int f = 1;
    for (int s = 1; s < t->cfg.n_dec; s++) f *= t->cfg.upsampling_scaling_factor;
    return f;
}

int64_t taesd_num_params(const sdc_taesd *t) {
    int64_t n = 0;
    for (int i = 0; i < t->nw; i++) n += t->w[i].nparams;
    return n;
}

sdc_status taesd_to_device(sdc_taesd *t, op_dtype dt) {
    if (op_ctx_device(t->cx) != OP_DEV_CUDA) return SDC_OK; /* the CPU and the emulated device read weights in place */
    for (int i = 0; i < t->nw; i++) SDC_TRY(weights_to_device(&t->w[i], t->cx, dt));
    return SDC_OK;
}

/* ---- forward ----------------------------------------------------------- */

/* AutoencoderTinyBlock: x = relu(conv4(relu(conv2(relu(conv0(x))))) + x).
 * x, a, b are [C, H, W] activation buffers; the result is left in *x and
 * the other two stay scratch. */
static sdc_status block_fwd(op_ctx *cx, const taesd_block *blk, float **x, float **a, float **b, int H, int W) {
    SDC_TRY(conv2d_fwd_fused(cx, &blk->conv[0], *x, 1, H, W, *a, NULL, 1));
    SDC_TRY(conv2d_fwd_fused(cx, &blk->conv[1], *a, 1, H, W, *b, NULL, 1));
    SDC_TRY(conv2d_fwd_fused(cx, &blk->conv[2], *b, 1, H, W, *a, *x, 1));
    float *t = *x;
    *x = *a;
    *a = t;
    return SDC_OK;
}

/* the three [C, H, W] buffers a stage's blocks run in */
typedef struct {
    float *x, *a, *b;
} stage_bufs;

static void bufs_free(op_ctx *cx, stage_bufs *s) {
    op_free(cx, s->x), op_free(cx, s->a), op_free(cx, s->b);
    *s = (stage_bufs){0};
}

static sdc_status run_blocks(op_ctx *cx, const taesd_block *blocks, int n, stage_bufs *s, int64_t size, int H, int W) {
    if (n && !s->a) SDC_TRY(op_alloc(cx, &s->a, size));
    if (n && !s->b) SDC_TRY(op_alloc(cx, &s->b, size));
    for (int i = 0; i < n; i++) SDC_TRY(block_fwd(cx, &blocks[i], &s->x, &s->a, &s->b, H, W));
    return SDC_OK;
}

/* One image: z[latent, h, w] -> out[out_channels, h*f, w*f], both host memory. */
static sdc_status decode_one(const sdc_taesd *t, const float *z, int h, int w, float *out) {
    op_ctx *cx = t->cx;
    const taesd_config *c = &t->cfg;
    const taesd_part *d = &t->dec;
    int H = h, W = w, C = c->dec_out[0], f = c->upsampling_scaling_factor, nb = 0;
    stage_bufs s = {0};
    float *in;
    SDC_TRY(act_from_host(cx, &in, z, (int64_t)c->latent_channels * H * W));
    op_tanh_clamp(cx, in, TAESD_CLAMP, (int64_t)c->latent_channels * H * W);
    sdc_status st = op_alloc(cx, &s.x, (int64_t)C * H * W);
    if (!st) st = conv2d_fwd_fused(cx, &d->conv_first, in, 1, H, W, s.x, NULL, 1);
    op_free(cx, in);
    for (int i = 0; i < c->n_dec && !st; i++) {
        int last = i == c->n_dec - 1;
        if ((st = run_blocks(cx, d->blocks + nb, c->dec_blocks[i], &s, (int64_t)C * H * W, H, W))) break;
        nb += c->dec_blocks[i];
        if (last) break;
        /* nn.Upsample(scale_factor=f) into a fresh buffer, then the stage's
         * conv into another; the old ones are freed (the next stage's are
         * f^2 times larger) */
        float *up = NULL, *y = NULL;
        int64_t big = (int64_t)C * H * f * W * f;
        if (!(st = op_alloc(cx, &up, big))) st = op_alloc(cx, &y, big);
        if (!st) op_upsample_nearest(cx, s.x, up, C, H, W, H * f, W * f);
        H *= f, W *= f;
        if (!st) st = conv2d_fwd_into(cx, &d->conv[i], up, 1, H, W, y);
        bufs_free(cx, &s);
        s.x = y, s.a = up;
        if (st) break;
    }
    float *img = NULL;
    int64_t on = (int64_t)c->out_channels * H * W;
    if (!st) st = op_alloc(cx, &img, on);
    if (!st) st = conv2d_fwd_into(cx, &d->conv[c->n_dec - 1], s.x, 1, H, W, img);
    if (!st) {
        op_affine(cx, img, img, 2.0f, -1.0f, on); /* DecoderTiny: x.mul(2).sub(1), two roundings */
        st = op_download(cx, out, img, on);
    }
    op_free(cx, img);
    bufs_free(cx, &s);
    return st;
}

sdc_status taesd_decode(const sdc_taesd *t, const float *z, int B, int h, int w, float *out) {
    const taesd_config *c = &t->cfg;
    int f = taesd_upscale(t);
    if (B < 1 || h < 1 || w < 1 || (int64_t)h * f > 65536 || (int64_t)w * f > 65536)
        return sdc_fail(SDC_ERR_ARG, "taesd decode: bad latent size %d x %d x %d", B, h, w);
    int64_t zn = (int64_t)c->latent_channels * h * w, on = (int64_t)c->out_channels * h * f * w * f;
    for (int b = 0; b < B; b++) SDC_TRY(decode_one(t, z + b * zn, h, w, out + b * on));
    return SDC_OK;
}

void taesd_encode_size(const sdc_taesd *t, int H, int W, int *h, int *w) {
    for (int i = 1; i < t->cfg.n_enc; i++) { /* 3x3, stride 2, pad 1: (n + 2 - 3) / 2 + 1 */
        H = (H + 1) / 2;
        W = (W + 1) / 2;
    }
    *h = H;
    *w = W;
}

/* One image: x[in, H, W] -> latents[latent, h, w], both host memory. */
static sdc_status encode_one(const sdc_taesd *t, const float *img, int H, int W, float *lat) {
    op_ctx *cx = t->cx;
    const taesd_config *c = &t->cfg;
    const taesd_part *e = &t->enc;
    int C = c->enc_out[0], nb = 0;
    stage_bufs s = {0};
    float *in;
    SDC_TRY(act_from_host(cx, &in, img, (int64_t)c->in_channels * H * W));
    /* EncoderTiny: x.add(1).div(2); halving is exact, so 0.5 x + 0.5 rounds once to the same value */
    op_affine(cx, in, in, 0.5f, 0.5f, (int64_t)c->in_channels * H * W);
    sdc_status st = SDC_OK;
    for (int i = 0; i < c->n_enc && !st; i++) {
        const conv2d *cv = &e->conv[i];
        int Ho = (H + 2 * cv->pad - cv->k) / cv->stride + 1, Wo = (W + 2 * cv->pad - cv->k) / cv->stride + 1;
        float *y;
        if ((st = op_alloc(cx, &y, (int64_t)C * Ho * Wo))) break;
        st = conv2d_fwd_into(cx, cv, i ? s.x : in, 1, H, W, y);
        bufs_free(cx, &s); /* the stage's resolution changed: fresh scratch */
        s.x = y;
        H = Ho, W = Wo;
        if (!st) st = run_blocks(cx, e->blocks + nb, c->enc_blocks[i], &s, (int64_t)C * H * W, H, W);
        nb += c->enc_blocks[i];
    }
    op_free(cx, in);
    float *y = NULL;
    int64_t ln = (int64_t)c->latent_channels * H * W;
    if (!st) st = op_alloc(cx, &y, ln);
    if (!st) st = conv2d_fwd_into(cx, &e->conv_first, s.x, 1, H, W, y);
    if (!st) st = op_download(cx, lat, y, ln);
    op_free(cx, y);
    bufs_free(cx, &s);
    return st;
}

sdc_status taesd_encode(const sdc_taesd *t, const float *x, int B, int H, int W, float *latents) {
    if (!t->enc.present)
        return sdc_fail(SDC_ERR_UNSUPPORTED, "taesd encode: this TAESD has no encoder (a decoder-only file was given)");
    const taesd_config *c = &t->cfg;
    int h, w;
    taesd_encode_size(t, H, W, &h, &w);
    if (B < 1 || H < 1 || W < 1 || H > 65536 || W > 65536)
        return sdc_fail(SDC_ERR_ARG, "taesd encode: bad image size %d x %d x %d", B, H, W);
    int64_t xn = (int64_t)c->in_channels * H * W, ln = (int64_t)c->latent_channels * h * w;
    for (int b = 0; b < B; b++) SDC_TRY(encode_one(t, x + b * xn, H, W, latents + b * ln));
    return SDC_OK;
}
