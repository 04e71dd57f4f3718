/* taesd_config.c - AutoencoderTiny's config: diffusers' __init__ defaults
 * (the real TAESD), config.json parsing and the checks that keep a config
 * to what EncoderTiny / DecoderTiny can build. */
#include <math.h>
#include <string.h>

#include "io/json.h"
#include "nn/taesd.h"

void taesd_config_default(taesd_config *c) {
    memset(c, 0, sizeof *c);
    c->in_channels = c->out_channels = 3;
    c->latent_channels = 4;
    c->n_enc = c->n_dec = 4;
    for (int i = 0; i < 4; i++) {
        c->enc_out[i] = c->dec_out[i] = 64;
        c->enc_blocks[i] = i == 0 ? 1 : 3;
        c->dec_blocks[i] = i == 3 ? 1 : 3;
    }
    c->upsampling_scaling_factor = 2;
    c->latent_magnitude = 3.0f;
    c->latent_shift = 0.5f;
    c->scaling_factor = 1.0f;
    c->fp16_safe = 1;
}

sdc_status taesd_config_check(const taesd_config *c, const char *what) {
#define RANGE(v, key, lo, hi)                                                                                    \
    if ((v) < (lo) || (v) > (hi))                                                                                \
        return sdc_fail(SDC_ERR_FORMAT, "%s: %s = %lld is out of range [%lld, %lld]", what, key, (long long)(v), \
                        (long long)(lo), (long long)(hi));
    RANGE(c->in_channels, "in_channels", 1, 64);
    RANGE(c->out_channels, "out_channels", 1, 64);
    RANGE(c->latent_channels, "latent_channels", 1, 1024);
    RANGE(c->n_enc, "len(encoder_block_out_channels)", 1, TAESD_MAX_STAGES);
    RANGE(c->n_dec, "len(decoder_block_out_channels)", 1, TAESD_MAX_STAGES);
    RANGE(c->upsampling_scaling_factor, "upsampling_scaling_factor", 1, 8);
    for (int i = 0; i < c->n_enc; i++) {
        RANGE(c->enc_out[i], "encoder_block_out_channels[i]", 1, 4096);
        RANGE(c->enc_blocks[i], "num_encoder_blocks[i]", 0, 64);
    }
    for (int i = 0; i < c->n_dec; i++) {
        RANGE(c->dec_out[i], "decoder_block_out_channels[i]", 1, 4096);
        RANGE(c->dec_blocks[i], "num_decoder_blocks[i]", 0, 64);
    }
#undef RANGE
    /* EncoderTiny's stride-2 conv of stage i and DecoderTiny's conv after
     * stage i keep the width of stage i, so the next stage's blocks only fit
     * (in diffusers too) when every stage has the same width */
    for (int i = 1; i < c->n_enc; i++)
        if (c->enc_out[i] != c->enc_out[0])
            return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: encoder_block_out_channels must all be equal (EncoderTiny "
                                                 "keeps the width between stages); got %d and %d",
                            what, c->enc_out[0], c->enc_out[i]);
    for (int i = 1; i < c->n_dec; i++)
        if (c->dec_out[i] != c->dec_out[0])
            return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: decoder_block_out_channels must all be equal (DecoderTiny "
                                                 "keeps the width between stages); got %d and %d",
                            what, c->dec_out[0], c->dec_out[i]);
    if (!isfinite(c->scaling_factor) || c->scaling_factor == 0.0f || !isfinite(c->shift_factor))
        return sdc_fail(SDC_ERR_FORMAT, "%s: scaling_factor %g / shift_factor %g must be finite (scaling nonzero)",
                        what, (double)c->scaling_factor, (double)c->shift_factor);
    return SDC_OK;
}

static sdc_status get_int(const cJSON *o, const char *key, int def, int *out, const char *what) {
    long long v;
    SDC_TRY(json_get_int(o, key, def, &v, what));
    if (v < -2147483647 || v > 2147483647) return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' = %lld is out of range", what, key, v);
    *out = (int)v;
    return SDC_OK;
}

/* An optional list of ints; absent keeps the default already in out[] / *n. */
static sdc_status get_list(const cJSON *o, const char *key, int *out, int *n, const char *what) {
    if (!json_has(o, key)) return SDC_OK;
    SDC_TRY(json_get_int_list(o, key, TAESD_MAX_STAGES, out, n, what));
    if (*n < 1) return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' is empty", what, key);
    return SDC_OK;
}

static sdc_status get_float(const cJSON *o, const char *key, float def, float *out, const char *what) {
    double v;
    SDC_TRY(json_get_num(o, key, def, &v, what));
    *out = (float)v;
    return SDC_OK;
}

sdc_status taesd_config_parse(const cJSON *o, taesd_config *c, const char *what) {
    taesd_config_default(c);
    if (!cJSON_IsObject(o)) return sdc_fail(SDC_ERR_FORMAT, "%s: not a JSON object", what);
    const char *cls, *act, *up;
    SDC_TRY(json_get_str(o, "_class_name", "AutoencoderTiny", &cls, what));
    if (!strcmp(cls, "AutoencoderKL"))
        return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: this is a full VAE (AutoencoderKL), not TAESD (AutoencoderTiny); "
                                             "give it as the model's vae/, or give a TAESD such as madebyollin/taesd",
                        what);
    if (strcmp(cls, "AutoencoderTiny"))
        return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: _class_name '%s' is not TAESD (AutoencoderTiny)", what, cls);
    SDC_TRY(get_int(o, "in_channels", 3, &c->in_channels, what));
    SDC_TRY(get_int(o, "out_channels", 3, &c->out_channels, what));
    SDC_TRY(get_int(o, "latent_channels", 4, &c->latent_channels, what));
    SDC_TRY(get_int(o, "upsampling_scaling_factor", 2, &c->upsampling_scaling_factor, what));
    int ne = c->n_enc, nb = c->n_enc, nd = c->n_dec, ndb = c->n_dec;
    SDC_TRY(get_list(o, "encoder_block_out_channels", c->enc_out, &ne, what));
    SDC_TRY(get_list(o, "num_encoder_blocks", c->enc_blocks, &nb, what));
    SDC_TRY(get_list(o, "decoder_block_out_channels", c->dec_out, &nd, what));
    SDC_TRY(get_list(o, "num_decoder_blocks", c->dec_blocks, &ndb, what));
    if (ne != nb) /* AutoencoderTiny.__init__ raises the same */
        return sdc_fail(SDC_ERR_FORMAT, "%s: encoder_block_out_channels has %d entries but num_encoder_blocks %d", what,
                        ne, nb);
    if (nd != ndb)
        return sdc_fail(SDC_ERR_FORMAT, "%s: decoder_block_out_channels has %d entries but num_decoder_blocks %d", what,
                        nd, ndb);
    c->n_enc = ne;
    c->n_dec = nd;
    SDC_TRY(json_get_str(o, "act_fn", "relu", &act, what));
    if (strcmp(act, "relu"))
        return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: act_fn '%s' is not supported (relu, TAESD's)", what, act);
    SDC_TRY(json_get_str(o, "upsample_fn", "nearest", &up, what));
    if (strcmp(up, "nearest"))
        return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: upsample_fn '%s' is not supported (nearest, TAESD's)", what, up);
    SDC_TRY(get_float(o, "latent_magnitude", 3.0f, &c->latent_magnitude, what));
    SDC_TRY(get_float(o, "latent_shift", 0.5f, &c->latent_shift, what));
    SDC_TRY(get_float(o, "scaling_factor", 1.0f, &c->scaling_factor, what));
    SDC_TRY(get_float(o, "shift_factor", 0.0f, &c->shift_factor, what));
    int upcast;
    SDC_TRY(json_get_bool(o, "force_upcast", 0, &upcast, what));
    c->fp16_safe = 1; /* AutoencoderTiny registers force_upcast=False whatever the file says */
    return taesd_config_check(c, what);
}
