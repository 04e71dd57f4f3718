/* vae.c - AutoencoderKL: config parsing, loading, and the decode / encode
 * drivers (diffusers autoencoder_kl.py + vae.py Decoder / Encoder):
 *   decode: post_quant_conv -> conv_in -> mid_block -> up_blocks
 *           -> conv_norm_out (GroupNorm eps 1e-6) -> SiLU -> conv_out
 *   encode: conv_in -> down_blocks -> mid_block -> conv_norm_out -> SiLU
 *           -> conv_out (2 * latent) -> quant_conv -> mean, logvar */
#include "nn/vae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"
#include "nn/vae_blocks.h"

typedef struct {
    conv2d conv_in;            /* (block_out[-1], latent, 3, 3) */
    vae_mid_block mid;         /* block_out[-1] */
    vae_updown_block *up;      /* nblocks, reversed channels */
    group_norm norm_out;       /* block_out[0] */
    conv2d conv_out;           /* (out_channels, block_out[0], 3, 3) */
} vae_decoder;

typedef struct {
    conv2d conv_in;            /* (block_out[0], in_channels, 3, 3) */
    vae_updown_block *down;    /* nblocks */
    vae_mid_block mid;         /* block_out[-1] */
    group_norm norm_out;       /* block_out[-1] */
    conv2d conv_out;           /* (2 * latent, block_out[-1], 3, 3) */
} vae_encoder;

struct sdc_vae {
    op_ctx *cx; /* the model's: every op of decode/encode runs in it */
    vae_config cfg;
    weights own;
    int owns_weights;
    weights *src; /* what load_params took the parameters from */
    weights *adopted; /* a borrowed object handed over with vae_own_weights */
    conv2d post_quant_conv; /* (latent, latent, 1, 1) when use_post_quant_conv */
    conv2d quant_conv;      /* (2 latent, 2 latent, 1, 1) when use_quant_conv (encoder only) */
    vae_decoder dec;
    vae_encoder enc;
    int has_encoder;
};

#define VAE_EPS 1e-6f

/* ---- config ------------------------------------------------------------ */

sdc_status vae_config_check(const vae_config *c, const char *what) {
#define RANGE(v, key, lo, hi)                                                                                  \
    if ((v) < (lo) || (v) > (hi))                                                                              \
        return sdc_fail(SDC_ERR_FORMAT, "%s: %s = %lld is out of range [%lld, %lld]", what, key, (long long)(v), \
                        (long long)(lo), (long long)(hi));
    RANGE(c->nblocks, "len(block_out_channels)", 1, VAE_MAX_BLOCKS);
    RANGE(c->in_channels, "in_channels", 1, 64);
    RANGE(c->out_channels, "out_channels", 1, 64);
    RANGE(c->latent_channels, "latent_channels", 1, 1024);
    RANGE(c->layers_per_block, "layers_per_block", 1, 64);
    RANGE(c->norm_num_groups, "norm_num_groups", 1, 1 << 16);
    for (int i = 0; i < c->nblocks; i++) {
        RANGE(c->block_out[i], "block_out_channels[i]", 1, 1 << 16);
        if (c->block_out[i] % c->norm_num_groups)
            return sdc_fail(SDC_ERR_FORMAT, "%s: block_out_channels[%d] = %d is not divisible by norm_num_groups %d",
                            what, i, c->block_out[i], c->norm_num_groups);
    }
#undef RANGE
    if (!isfinite(c->scaling_factor) || c->scaling_factor == 0.0f || !isfinite(c->shift_factor))
        return sdc_fail(SDC_ERR_FORMAT, "%s: scaling_factor %g / shift_factor %g must be finite (scaling nonzero)",
                        what, (double)c->scaling_factor, (double)c->shift_factor);
    return SDC_OK;
}

/* Every entry of the optional list `key` must be `want`, nblocks of them. */
static sdc_status check_block_types(const cJSON *o, const char *key, const char *want, int nblocks, const char *what) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!a || cJSON_IsNull(a)) return SDC_OK;
    if (!cJSON_IsArray(a)) return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' must be a list", what, key);
    if (cJSON_GetArraySize(a) != nblocks)
        return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' has %d entries but block_out_channels has %d", what, key,
                        cJSON_GetArraySize(a), nblocks);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        if (!cJSON_IsString(e) || strcmp(e->valuestring, want))
            return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: %s[%d] is %s%s%s; only %s is supported", what, key, i,
                            cJSON_IsString(e) ? "'" : "", cJSON_IsString(e) ? e->valuestring : "not a string",
                            cJSON_IsString(e) ? "'" : "", want);
        i++;
    }
    return SDC_OK;
}

static sdc_status get_int(const cJSON *o, const char *key, long long def, int *out, const char *what) {
    long long v;
    SDC_TRY(json_get_int(o, key, def, &v, what));
    if (v < -2147483647 || v > 2147483647) return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' = %lld is out of range", what, key, v);
    *out = (int)v;
    return SDC_OK;
}

static sdc_status parse_config(const cJSON *o, vae_config *c, const char *what) {
    if (!cJSON_IsObject(o)) return sdc_fail(SDC_ERR_FORMAT, "%s: not a JSON object", what);
    const char *cls;
    SDC_TRY(json_get_str(o, "_class_name", "AutoencoderKL", &cls, what));
    if (strcmp(cls, "AutoencoderKL"))
        return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: _class_name '%s' is not supported (AutoencoderKL)", what, cls);
    /* defaults: diffusers AutoencoderKL.__init__ */
    SDC_TRY(get_int(o, "in_channels", 3, &c->in_channels, what));
    SDC_TRY(get_int(o, "out_channels", 3, &c->out_channels, what));
    SDC_TRY(get_int(o, "latent_channels", 4, &c->latent_channels, what));
    SDC_TRY(get_int(o, "layers_per_block", 1, &c->layers_per_block, what));
    SDC_TRY(get_int(o, "norm_num_groups", 32, &c->norm_num_groups, what));
    if (json_has(o, "block_out_channels")) {
        SDC_TRY(json_get_int_list(o, "block_out_channels", VAE_MAX_BLOCKS, c->block_out, &c->nblocks, what));
    } else {
        c->nblocks = 1;
        c->block_out[0] = 64;
    }
    SDC_TRY(json_get_bool(o, "use_quant_conv", 1, &c->use_quant_conv, what));
    SDC_TRY(json_get_bool(o, "use_post_quant_conv", 1, &c->use_post_quant_conv, what));
    SDC_TRY(json_get_bool(o, "mid_block_add_attention", 1, &c->mid_attention, what));
    int upcast;
    SDC_TRY(json_get_bool(o, "force_upcast", 1, &upcast, what));
    c->fp16_safe = !upcast;
    double sf, sh;
    SDC_TRY(json_get_num(o, "scaling_factor", 0.18215, &sf, what));
    SDC_TRY(json_get_num(o, "shift_factor", 0.0, &sh, what));
    c->scaling_factor = (float)sf;
    c->shift_factor = (float)sh;
    const char *act;
    SDC_TRY(json_get_str(o, "act_fn", "silu", &act, what));
    if (strcmp(act, "silu"))
        return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: act_fn '%s' is not supported (silu)", what, act);
    SDC_TRY(check_block_types(o, "down_block_types", "DownEncoderBlock2D", c->nblocks, what));
    SDC_TRY(check_block_types(o, "up_block_types", "UpDecoderBlock2D", c->nblocks, what));
    c->load_encoder = 1;
    return SDC_OK;
}

sdc_status vae_config_load(vae_config *cfg, const char *config_path) {
    cJSON *j;
    memset(cfg, 0, sizeof *cfg);
    SDC_TRY(json_load(config_path, &j));
    sdc_status st = parse_config(j, cfg, config_path);
    cJSON_Delete(j);
    SDC_TRY(st);
    return vae_config_check(cfg, config_path);
}

/* ---- loading ----------------------------------------------------------- */

static sdc_status load_decoder(weights *w, const vae_config *c, vae_decoder *d) {
    int n = c->nblocks, top = c->block_out[n - 1], G = c->norm_num_groups;
    char name[64];
    SDC_TRY(conv2d_load(w, &d->conv_in, c->latent_channels, top, 3, 1, 1, "decoder.conv_in"));
    SDC_TRY(vae_mid_load(w, &d->mid, top, G, c->mid_attention, "decoder.mid_block"));
    d->up = calloc((size_t)n, sizeof *d->up);
    if (!d->up) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    int prev = top;
    for (int i = 0; i < n; i++) {
        int cout = c->block_out[n - 1 - i];
        snprintf(name, sizeof name, "decoder.up_blocks.%d", i);
        SDC_TRY(vae_updown_load(w, &d->up[i], 1, prev, cout, c->layers_per_block + 1, i < n - 1, G, name));
        prev = cout;
    }
    SDC_TRY(group_norm_load(w, &d->norm_out, c->block_out[0], G, VAE_EPS, "decoder.conv_norm_out"));
    SDC_TRY(conv2d_load(w, &d->conv_out, c->block_out[0], c->out_channels, 3, 1, 1, "decoder.conv_out"));
    return SDC_OK;
}

static sdc_status load_encoder(weights *w, const vae_config *c, vae_encoder *e) {
    int n = c->nblocks, top = c->block_out[n - 1], G = c->norm_num_groups;
    char name[64];
    SDC_TRY(conv2d_load(w, &e->conv_in, c->in_channels, c->block_out[0], 3, 1, 1, "encoder.conv_in"));
    e->down = calloc((size_t)n, sizeof *e->down);
    if (!e->down) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    int prev = c->block_out[0];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "encoder.down_blocks.%d", i);
        SDC_TRY(vae_updown_load(w, &e->down[i], 0, prev, c->block_out[i], c->layers_per_block, i < n - 1, G, name));
        prev = c->block_out[i];
    }
    SDC_TRY(vae_mid_load(w, &e->mid, top, G, c->mid_attention, "encoder.mid_block"));
    SDC_TRY(group_norm_load(w, &e->norm_out, top, G, VAE_EPS, "encoder.conv_norm_out"));
    SDC_TRY(conv2d_load(w, &e->conv_out, top, 2 * c->latent_channels, 3, 1, 1, "encoder.conv_out"));
    return SDC_OK;
}

static sdc_status load_params(sdc_vae *v, weights *w) {
    v->src = w;
    const vae_config *c = &v->cfg;
    int L = c->latent_channels;
    if (c->use_post_quant_conv) SDC_TRY(conv2d_load(w, &v->post_quant_conv, L, L, 1, 1, 0, "post_quant_conv"));
    SDC_TRY(load_decoder(w, c, &v->dec));
    if (c->load_encoder == 2 || (c->load_encoder && weights_has(w, "encoder.conv_in.weight"))) {
        if (c->use_quant_conv) SDC_TRY(conv2d_load(w, &v->quant_conv, 2 * L, 2 * L, 1, 1, 0, "quant_conv"));
        v->has_encoder = 1; /* before loading, so that vae_free releases a partial encoder */
        SDC_TRY(load_encoder(w, c, &v->enc));
    }
    return SDC_OK;
}

sdc_status vae_load_weights(sdc_vae **out, op_ctx *cx, const vae_config *cfg, weights *w) {
    *out = NULL;
    SDC_TRY(vae_config_check(cfg, w->nfiles ? w->files[0].path : "vae config"));
    sdc_vae *v = calloc(1, sizeof *v);
    if (!v) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    v->cx = cx;
    v->cfg = *cfg;
    sdc_status st = load_params(v, w);
    if (st) {
        vae_free(v);
        return st;
    }
    *out = v;
    return SDC_OK;
}

sdc_status vae_load(sdc_vae **out, op_ctx *cx, const char *dir, const char *variant) {
    char cfg_path[1024];
    vae_config cfg;
    *out = NULL;
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
    SDC_TRY(vae_config_load(&cfg, cfg_path));
    sdc_vae *v = calloc(1, sizeof *v);
    if (!v) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    sdc_status st = weights_open_component(&v->own, dir, "diffusion_pytorch_model", variant && *variant ? variant : NULL);
    if (st) {
        free(v);
        return st;
    }
    v->owns_weights = 1;
    v->cx = cx;
    v->cfg = cfg;
    if ((st = load_params(v, &v->own))) {
        vae_free(v);
        return st;
    }
    *out = v;
    return SDC_OK;
}

sdc_status vae_own_weights(sdc_vae *v, weights *w) {
    if (w != v->src) return sdc_fail(SDC_ERR_ARG, "vae_own_weights: not the VAE's weights");
    v->adopted = w;
    return SDC_OK;
}

void vae_free(sdc_vae *v) {
    if (!v) return;
    if (v->dec.up)
        for (int i = 0; i < v->cfg.nblocks; i++) vae_updown_free(&v->dec.up[i]);
    free(v->dec.up);
    if (v->enc.down)
        for (int i = 0; i < v->cfg.nblocks; i++) vae_updown_free(&v->enc.down[i]);
    free(v->enc.down);
    if (v->owns_weights) weights_close(&v->own);
    if (v->adopted) weights_close(v->adopted), free(v->adopted);
    free(v);
}

const vae_config *vae_get_config(const sdc_vae *v) { return &v->cfg; }
weights *vae_weights(sdc_vae *v) { return v->src; }
op_ctx *vae_ctx(const sdc_vae *v) { return v->cx; }

float vae_scaling_factor(const sdc_vae *v) { return v->cfg.scaling_factor; }
float vae_shift_factor(const sdc_vae *v) { return v->cfg.shift_factor; }
int vae_latent_channels(const sdc_vae *v) { return v->cfg.latent_channels; }
int vae_downscale_factor(const sdc_vae *v) { return 1 << (v->cfg.nblocks - 1); }
int vae_has_encoder(const sdc_vae *v) { return v->has_encoder; }

/* ---- decode ------------------------------------------------------------ */

/* x is activation memory; the tap gets a host view of it */
static void emit(op_ctx *cx, vae_tap_fn tap, void *ctx, const char *name, int b, const float *x, int C, int H,
                 int W) {
    if (!tap) return;
    float *tmp;
    const float *hx = host_view(cx, x, (int64_t)C * H * W, &tmp);
    if (hx) tap(ctx, name, b, hx, C, H, W);
    free(tmp);
}

static sdc_status conv_step(op_ctx *cx, const conv2d *c, float **x, int *H, int *W) {
    float *y;
    SDC_TRY(conv2d_fwd(cx, c, *x, 1, *H, *W, &y, H, W));
    op_free(cx, *x);
    *x = y;
    return SDC_OK;
}

/* GroupNorm (tapped before the SiLU, like the reference hook) then SiLU, in place */
static void norm_act(op_ctx *cx, const group_norm *n, float *x, int H, int W, vae_tap_fn tap, void *ctx,
                     const char *name, int b) {
    group_norm_fwd(cx, n, x, x, 1, (int64_t)H * W, 0);
    emit(cx, tap, ctx, name, b, x, n->C, H, W);
    op_silu(cx, x, (int64_t)n->C * H * W);
}

/* One image: z[latent, h, w] -> out[out_channels, h*up, w*up], both host memory. */
static sdc_status decode_one(const sdc_vae *v, const float *z, int h, int w, float *out, int b, vae_tap_fn tap,
                             void *ctx) {
    op_ctx *cx = v->cx;
    const vae_config *c = &v->cfg;
    const vae_decoder *d = &v->dec;
    int H = h, W = w, L = c->latent_channels;
    float *x, *y = NULL;
    SDC_TRY(act_from_host(cx, &x, z, (int64_t)L * H * W));
    sdc_status st = SDC_OK;
    if (c->use_post_quant_conv) {
        if ((st = conv_step(cx, &v->post_quant_conv, &x, &H, &W))) goto done;
        emit(cx, tap, ctx, "post_quant_conv", b, x, L, H, W);
    }
    if ((st = conv_step(cx, &d->conv_in, &x, &H, &W))) goto done;
    emit(cx, tap, ctx, "decoder.conv_in", b, x, d->conv_in.cout, H, W);
    if ((st = vae_mid_fwd(cx, &d->mid, &x, 1, H, W))) goto done;
    emit(cx, tap, ctx, "decoder.mid_block", b, x, d->mid.C, H, W);
    for (int i = 0; i < c->nblocks; i++) {
        char name[48];
        if ((st = vae_up_fwd(cx, &d->up[i], &x, 1, &H, &W))) goto done;
        snprintf(name, sizeof name, "decoder.up_blocks.%d", i);
        emit(cx, tap, ctx, name, b, x, d->up[i].cout, H, W);
    }
    norm_act(cx, &d->norm_out, x, H, W, tap, ctx, "decoder.conv_norm_out", b);
    if ((st = conv2d_fwd(cx, &d->conv_out, x, 1, H, W, &y, NULL, NULL))) goto done;
    emit(cx, tap, ctx, "decoder.conv_out", b, y, c->out_channels, H, W);
    st = op_download(cx, out, y, (int64_t)c->out_channels * H * W);
done:
    op_free(cx, x);
    op_free(cx, y);
    return st;
}

sdc_status vae_decode_tap(const sdc_vae *v, const float *z, int B, int h, int w, float *out, vae_tap_fn tap,
                          void *tap_ctx) {
    const vae_config *c = &v->cfg;
    int up = vae_downscale_factor(v);
    if (B < 1 || h < 1 || w < 1 || (int64_t)h * up > 65536 || (int64_t)w * up > 65536)
        return sdc_fail(SDC_ERR_ARG, "vae decode: bad latent size %d x %d x %d", B, h, w);
    int64_t zn = (int64_t)c->latent_channels * h * w, on = (int64_t)c->out_channels * h * up * w * up;
    for (int b = 0; b < B; b++) SDC_TRY(decode_one(v, z + b * zn, h, w, out + b * on, b, tap, tap_ctx));
    return SDC_OK;
}

sdc_status vae_decode(const sdc_vae *v, const float *z, int B, int h, int w, float *out) {
    return vae_decode_tap(v, z, B, h, w, out, NULL, NULL);
}

/* ---- encode ------------------------------------------------------------ */

void vae_encode_size(const sdc_vae *v, int H, int W, int *h, int *w) {
    for (int i = 0; i < v->cfg.nblocks - 1; i++) {
        H = H >= 2 ? H / 2 : 0;
        W = W >= 2 ? W / 2 : 0;
    }
    *h = H;
    *w = W;
}

/* One image: x[in, H, W] (host) -> moments[2 latent, h, w] (newly op_alloc'd in *mom). */
static sdc_status encode_one(const sdc_vae *v, const float *img, int H, int W, float **mom, int b, vae_tap_fn tap,
                             void *ctx) {
    op_ctx *cx = v->cx;
    const vae_config *c = &v->cfg;
    const vae_encoder *e = &v->enc;
    float *x;
    SDC_TRY(act_from_host(cx, &x, img, (int64_t)c->in_channels * H * W));
    sdc_status st;
    if ((st = conv_step(cx, &e->conv_in, &x, &H, &W))) goto fail;
    emit(cx, tap, ctx, "encoder.conv_in", b, x, c->block_out[0], H, W);
    for (int i = 0; i < c->nblocks; i++) {
        char name[48];
        if ((st = vae_down_fwd(cx, &e->down[i], &x, 1, &H, &W))) goto fail;
        snprintf(name, sizeof name, "encoder.down_blocks.%d", i);
        emit(cx, tap, ctx, name, b, x, e->down[i].cout, H, W);
    }
    if ((st = vae_mid_fwd(cx, &e->mid, &x, 1, H, W))) goto fail;
    emit(cx, tap, ctx, "encoder.mid_block", b, x, e->mid.C, H, W);
    norm_act(cx, &e->norm_out, x, H, W, tap, ctx, "encoder.conv_norm_out", b);
    if ((st = conv_step(cx, &e->conv_out, &x, &H, &W))) goto fail;
    emit(cx, tap, ctx, "encoder.conv_out", b, x, 2 * c->latent_channels, H, W);
    if (c->use_quant_conv) {
        if ((st = conv_step(cx, &v->quant_conv, &x, &H, &W))) goto fail;
        emit(cx, tap, ctx, "quant_conv", b, x, 2 * c->latent_channels, H, W);
    }
    *mom = x;
    return SDC_OK;
fail:
    op_free(cx, x);
    return st;
}

sdc_status vae_encode_tap(const sdc_vae *v, const float *x, int B, int H, int W, float *mean, float *logvar,
                          float *std, vae_tap_fn tap, void *tap_ctx) {
    op_ctx *cx = v->cx;
    const vae_config *c = &v->cfg;
    if (!v->has_encoder)
        return sdc_fail(SDC_ERR_UNSUPPORTED, "vae encode: this VAE was loaded without its encoder");
    int h, w;
    vae_encode_size(v, H, W, &h, &w);
    if (B < 1 || h < 1 || w < 1 || H > 65536 || W > 65536)
        return sdc_fail(SDC_ERR_ARG, "vae encode: bad image size %d x %d x %d", B, H, W);
    int L = c->latent_channels;
    int64_t xn = (int64_t)c->in_channels * H * W, ln = (int64_t)L * h * w;
    float *hm; /* the moments of one image, downloaded: the output side of the boundary */
    SDC_TRY(alloc_f32(&hm, 2 * ln));
    sdc_status st = SDC_OK;
    for (int b = 0; b < B && !st; b++) {
        float *mom;
        if ((st = encode_one(v, x + b * xn, H, W, &mom, b, tap, tap_ctx))) break;
        st = op_download(cx, hm, mom, 2 * ln);
        op_free(cx, mom);
        if (st) break;
        /* DiagonalGaussianDistribution: mean, logvar = chunk(2, dim=1) */
        const float *m = hm, *lv = hm + ln;
        for (int64_t i = 0; i < ln; i++) {
            float l = lv[i] < -30.0f ? -30.0f : lv[i] > 20.0f ? 20.0f : lv[i];
            if (mean) mean[b * ln + i] = m[i];
            if (logvar) logvar[b * ln + i] = l;
            if (std) std[b * ln + i] = expf(0.5f * l);
        }
    }
    free(hm);
    return st;
}

sdc_status vae_encode(const sdc_vae *v, const float *x, int B, int H, int W, float *mean, float *logvar, float *std) {
    return vae_encode_tap(v, x, B, H, W, mean, logvar, std, NULL, NULL);
}
