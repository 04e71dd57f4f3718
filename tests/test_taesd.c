/* test_taesd.c - TAESD (AutoencoderTiny): the decoder and encoder against
 * diffusers' goldens (fixtures2/units/taesd.safetensors) on the CPU and
 * behind the emulated device boundary, the key layouts a single file may
 * have (diffusers, madebyollin's two files, prefixed), and the loader's
 * errors for what is not TAESD. SDC_TEST_VERBOSE=1 prints every max diff. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "golden.h"
#include "harness.h"
#include "io/safetensors.h"
#include "nn/taesd.h"

#define ATOL 1e-4
#define TAESD_DIR "../fixtures2/models/taesd-random"
#define GOLDEN "../fixtures2/units/taesd.safetensors"

static void report(const char *name, double d) {
    if (getenv("SDC_TEST_VERBOSE")) printf("     %s max|diff| = %.3g\n", name, d);
}

/* decode golden latents_<tag> -> decoded_<tag> (batch as stored) */
static double decode_diff(sdc_taesd *t, const st_file *g, const char *tag) {
    char zn[64], on[64];
    snprintf(zn, sizeof zn, "latents_%s", tag);
    snprintf(on, sizeof on, "decoded_%s", tag);
    const st_tensor *tz = st_find(g, zn), *to = st_find(g, on);
    if (!tz || !to || tz->ndim != 4 || to->ndim != 4) return INFINITY;
    int B = (int)tz->shape[0], h = (int)tz->shape[2], w = (int)tz->shape[3], f = taesd_upscale(t);
    if (to->shape[0] != B || to->shape[2] != h * f || to->shape[3] != w * f) return INFINITY;
    float *z = golden_f32(g, zn, NULL), *ref = golden_f32(g, on, NULL);
    float *out = malloc((size_t)to->numel * sizeof(float));
    double d = z && ref && out && !taesd_decode(t, z, B, h, w, out) ? max_abs_diff(out, ref, to->numel) : INFINITY;
    free(z), free(ref), free(out);
    return d;
}

static double encode_diff(sdc_taesd *t, const st_file *g) {
    const st_tensor *ti = st_find(g, "image_64x96"), *te = st_find(g, "encoded_64x96");
    if (!ti || !te || ti->ndim != 4 || te->ndim != 4) return INFINITY;
    int B = (int)ti->shape[0], H = (int)ti->shape[2], W = (int)ti->shape[3], h, w;
    taesd_encode_size(t, H, W, &h, &w);
    if (te->shape[2] != h || te->shape[3] != w) return INFINITY;
    float *x = golden_f32(g, "image_64x96", NULL), *ref = golden_f32(g, "encoded_64x96", NULL);
    float *out = malloc((size_t)te->numel * sizeof(float));
    double d = x && ref && out && !taesd_encode(t, x, B, H, W, out) ? max_abs_diff(out, ref, te->numel) : INFINITY;
    free(x), free(ref), free(out);
    return d;
}

/* every golden of the unit file through one loaded TAESD */
static void check_goldens(op_ctx *cx, const char *path, int want_encoder, const char *what) {
    sdc_taesd *t;
    st_file g;
    CHECK_OK(taesd_load(&t, cx, path, NULL));
    sdc_status st = st_open(&g, fixture_path(GOLDEN));
    if (st) taesd_free(t);
    CHECK(st == SDC_OK, "golden: %s", sdc_last_error());
    taesd_config c = *taesd_get_config(t);
    int cfg_ok = c.latent_channels == 4 && c.scaling_factor == 1.0f && c.shift_factor == 0.0f && taesd_upscale(t) == 8;
    double d8 = decode_diff(t, &g, "8x8"), d16 = decode_diff(t, &g, "16x12");
    double de = want_encoder ? encode_diff(t, &g) : 0;
    int has_enc = taesd_has_encoder(t);
    int64_t left = op_live_allocations(cx);
    st_close(&g);
    taesd_free(t);
    char name[128];
    snprintf(name, sizeof name, "%s decoded_8x8", what), report(name, d8);
    snprintf(name, sizeof name, "%s decoded_16x12 (batch 2)", what), report(name, d16);
    if (want_encoder) snprintf(name, sizeof name, "%s encoded_64x96", what), report(name, de);
    CHECK(cfg_ok, "%s: config not the real TAESD's (latent %d, scaling %g)", what, c.latent_channels,
          (double)c.scaling_factor);
    CHECK(has_enc == want_encoder, "%s: encoder %s", what, has_enc ? "loaded" : "missing");
    CHECK(d8 <= ATOL, "%s: decoded_8x8 max|diff| %g", what, d8);
    CHECK(d16 <= ATOL, "%s: decoded_16x12 max|diff| %g", what, d16);
    CHECK(de <= ATOL, "%s: encoded_64x96 max|diff| %g", what, de);
    CHECK(left == 0, "%s: %lld activation buffers left", what, (long long)left);
}

TEST(taesd_goldens_folder) { check_goldens(test_cx(), fixture_path(TAESD_DIR), 1, "folder"); }

/* the same through the emulated device (activations behind a boundary) */
TEST(taesd_goldens_emulated_device) {
    op_ctx *cx;
    CHECK_OK(op_ctx_create(&cx, OP_DEV_EMULATED, 0));
    check_goldens(cx, fixture_path(TAESD_DIR), 1, "emulated");
    op_ctx_free(cx);
}
