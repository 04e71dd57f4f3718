/* test_activation_memory.c - the model code keeps its activations in the
 * backend's memory: every buffer it takes from op_alloc goes back through
 * op_free (a free() instead would leave op_live_allocations raised, and on a
 * device backend would be a crash), on success and on an error path, for the
 * tiny UNet (SD and SDXL), VAE (decode, encode) and text encoder, with the
 * debug taps on. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "harness.h"
#include "nn/unet.h"
#include "nn/vae.h"
#include "text/clip_text_model.h"

static float *ramp(int64_t n, float scale) {
    float *p = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; p && i < n; i++) p[i] = scale * sinf(0.37f * (float)i);
    return p;
}

static void count_dump(void *ctx, const char *name, const float *d, int ndim, const int64_t *s) {
    (void)name, (void)d, (void)ndim, (void)s;
    ++*(int *)ctx;
}

static void count_vae_tap(void *ctx, const char *name, int b, const float *x, int C, int H, int W) {
    (void)name, (void)b, (void)x, (void)C, (void)H, (void)W;
    ++*(int *)ctx;
}

static void count_clip_tap(void *ctx, const char *name, const float *x, int B, int T, int D) {
    (void)name, (void)x, (void)B, (void)T, (void)D;
    ++*(int *)ctx;
}

TEST(activation_memory_counter_counts) {
    op_ctx *cx = test_cx();
    int64_t live = op_live_allocations(cx);
    float *p, *q;
    CHECK_OK(op_alloc(cx, &p, 16));
    CHECK_OK(op_alloc(cx, &q, 0));
    CHECK(op_live_allocations(cx) == live + 2, "two op_allocs counted as %lld", (long long)(op_live_allocations(cx) - live));
    op_free(cx, p);
    op_free(cx, q);
    op_free(cx, NULL);
    CHECK(op_live_allocations(cx) == live, "op_free left %lld live", (long long)(op_live_allocations(cx) - live));
}

static void run_unet(const char *dir, int sdxl) {
    op_ctx *cx = test_cx();
    sdc_unet *u;
    CHECK_OK(unet_load(&u, cx, fixture_path(dir), NULL));
    const unet_config *c = unet_get_config(u);
    int B = 2, H = 9, W = 7, M = 5; /* odd sizes: the up path resizes to the skips */
    int64_t nx = (int64_t)B * c->in_channels * H * W, no = (int64_t)B * c->out_channels * H * W;
    float t[2] = {999.0f, 1.0f}, time_ids[12] = {64, 64, 0, 0, 64, 64, 64, 64, 0, 0, 64, 64};
    int cd = 0;
    for (int i = 0; i < c->nblocks; i++) cd = c->cross_dim[i] > cd ? c->cross_dim[i] : cd;
    float *x = ramp(nx, 1.0f), *ctx = ramp((int64_t)B * M * cd, 0.5f), *out = malloc((size_t)no * 4);
    float *te = ramp((int64_t)B * c->add_in_dim, 0.5f);
    unet_extra ex = {.text_embeds = te, .time_ids = time_ids};
    int dumps = 0;
    int64_t live = op_live_allocations(cx);
    sdc_status st = unet_forward(u, x, B, H, W, t, ctx, M, sdxl ? &ex : NULL, out, count_dump, &dumps);
    int64_t after_ok = op_live_allocations(cx);
    /* an error after the time embedding has allocated: SDXL without its extras */
    sdc_status st_err = sdxl ? unet_forward(u, x, B, H, W, t, ctx, M, NULL, out, NULL, NULL) : SDC_ERR_ARG;
    int64_t after_err = op_live_allocations(cx);
    int finite = 1;
    for (int64_t i = 0; i < no; i++) finite &= isfinite(out[i]) != 0;
    free(x), free(ctx), free(out), free(te);
    unet_free(u);
    CHECK(st == SDC_OK, "%s: forward failed: %s", dir, sdc_last_error());
    CHECK(st_err == SDC_ERR_ARG, "%s: missing SDXL extras not reported", dir);
    CHECK(finite, "%s: non-finite output", dir);
    CHECK(dumps >= 10, "%s: only %d dumps", dir, dumps);
    CHECK(after_ok == live, "%s: forward left %lld activation buffers not op_free'd", dir, (long long)(after_ok - live));
    CHECK(after_err == live, "%s: failed forward left %lld activation buffers", dir, (long long)(after_err - live));
}

TEST(activation_memory_unet_sd_releases_all) { run_unet("models/tiny-sd/unet", 0); }
TEST(activation_memory_unet_sdxl_releases_all) { run_unet("models/tiny-sdxl/unet", 1); }

TEST(activation_memory_vae_releases_all) {
    op_ctx *cx = test_cx();
    sdc_vae *v;
    CHECK_OK(vae_load(&v, cx, fixture_path("models/tiny-sd/vae"), NULL));
    int L = vae_latent_channels(v), f = vae_downscale_factor(v), B = 2, h = 3, w = 5, H = h * f, W = w * f;
    float *z = ramp((int64_t)B * L * h * w, 1.0f), *img = malloc((size_t)B * 3 * H * W * 4);
    float *mean = malloc((size_t)B * L * h * w * 4), *std = malloc((size_t)B * L * h * w * 4);
    int taps = 0;
    int64_t live = op_live_allocations(cx);
    sdc_status sd = vae_decode_tap(v, z, B, h, w, img, count_vae_tap, &taps);
    int64_t after_dec = op_live_allocations(cx);
    sdc_status se = sd ? sd : vae_encode_tap(v, img, B, H, W, mean, NULL, std, count_vae_tap, &taps);
    int64_t after_enc = op_live_allocations(cx);
    free(z), free(img), free(mean), free(std);
    vae_free(v);
    CHECK(sd == SDC_OK && se == SDC_OK, "vae failed: %s", sdc_last_error());
    CHECK(taps >= 8, "only %d taps", taps);
    CHECK(after_dec == live, "decode left %lld activation buffers not op_free'd", (long long)(after_dec - live));
    CHECK(after_enc == live, "encode left %lld activation buffers not op_free'd", (long long)(after_enc - live));
}

TEST(activation_memory_text_encoder_releases_all) {
    op_ctx *cx = test_cx();
    clip_text_model *m;
    CHECK_OK(clip_text_load(&m, cx, fixture_path("models/tiny-sdxl/text_encoder_2"), NULL));
    int B = 2, T = 7, D = clip_text_hidden_size(m), L = clip_text_num_layers(m), P = clip_text_projection_dim(m);
    int64_t ids[14] = {49, 320, 1025, 1113, 0, 0, 0, 49, 1025, 320, 320, 1113, 0, 0}; /* vocab 1114 */
    int64_t ND = (int64_t)B * T * D;
    float *hs[65] = {0}, *last = malloc((size_t)ND * 4), *pooled = malloc((size_t)B * D * 4);
    float *emb = malloc((size_t)B * (P ? P : 1) * 4);
    CHECK(L < 64 && P > 0, "unexpected text encoder (%d layers, projection %d)", L, P);
    hs[0] = malloc((size_t)ND * 4);
    hs[L - 1] = malloc((size_t)ND * 4);
    int taps = 0;
    int64_t live = op_live_allocations(cx);
    sdc_status s1 = clip_text_forward_tap(m, ids, B, T, hs, last, pooled, emb, count_clip_tap, &taps);
    sdc_status s2 = s1 ? s1 : clip_text_forward(m, ids, B, T, hs, NULL, NULL, NULL); /* stops early */
    sdc_status s3 = s2 ? s2 : clip_text_final_norm(m, hs[L - 1], (int64_t)B * T);
    int64_t after = op_live_allocations(cx);
    free(hs[0]), free(hs[L - 1]), free(last), free(pooled), free(emb);
    clip_text_free(m);
    CHECK(s1 == SDC_OK && s2 == SDC_OK && s3 == SDC_OK, "text encoder failed: %s", sdc_last_error());
    CHECK(taps >= 4, "only %d taps", taps);
    CHECK(after == live, "text encoder left %lld activation buffers not op_free'd", (long long)(after - live));
}

/* The memory ops against plain loops on tiny tensors. */
TEST(activation_memory_ops_compute_what_they_say) {
    op_ctx *cx = test_cx();
    float *a, *b;
    CHECK_OK(op_alloc(cx, &a, 64));
    CHECK_OK(op_alloc(cx, &b, 64));
    float h[64], r[64];
    for (int i = 0; i < 64; i++) h[i] = 0.37f * (float)i - 3.0f;
    int ok = !op_upload(cx, a, h, 64) && !op_download(cx, r, a, 64) && !memcmp(r, h, sizeof h);
    /* affine: one rounding per operation, bitwise the reference's 2x - 1 */
    op_affine(cx, b, a, 2.0f, -1.0f, 64);
    ok = ok && !op_download(cx, r, b, 64);
    for (int i = 0; i < 64; i++) ok &= r[i] == 2.0f * h[i] - 1.0f;
    op_affine(cx, b, a, 0.1f, 0.3f, 64); /* where an FMA would round differently */
    ok = ok && !op_download(cx, r, b, 64);
    for (int i = 0; i < 64; i++) ok &= r[i] == 0.1f * h[i] + 0.3f;
    CHECK(ok, "upload/download/affine");
    /* copy_2d: 3 rows of 4 from a row stride of 5 into a row stride of 6 */
    op_copy(cx, b, a, 64);
    op_copy_2d(cx, b, 6, a + 1, 5, 3, 4);
    CHECK(!op_download(cx, r, b, 64), "download");
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 6; j++)
            CHECK(r[i * 6 + j] == (j < 4 ? h[1 + i * 5 + j] : h[i * 6 + j]), "copy_2d at %d,%d", i, j);
    /* pad_zero: two 2x3 planes into 3x5 */
    op_pad_zero(cx, a, b, 2, 2, 3, 3, 5);
    CHECK(!op_download(cx, r, b, 30), "download");
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 5; j++)
                CHECK(r[p * 15 + i * 5 + j] == (i < 2 && j < 3 ? h[p * 6 + i * 3 + j] : 0.0f), "pad at %d,%d,%d", p, i, j);
    /* gather_rows: float32 activations and 16-bit tables widened */
    int64_t rows[3] = {2, 0, 2};
    op_gather_rows(cx, b, a, OP_F32, 4, rows, 3);
    CHECK(!op_download(cx, r, b, 12), "download");
    for (int i = 0; i < 12; i++) CHECK(r[i] == h[rows[i / 4] * 4 + i % 4], "gather f32 at %d", i);
    const uint16_t f16[4] = {0x3C00, 0xC000, 0x0001, 0x7C00}, bf16[4] = {0x3F80, 0x4049, 0xBF00, 0x0000};
    const float f16v[2] = {0x1p-24f, INFINITY}, bf16v[2] = {1.0f, 3.140625f};
    int64_t one[1] = {1};
    op_gather_rows(cx, b, f16, OP_F16, 2, one, 1);
    op_gather_rows(cx, b + 2, bf16, OP_BF16, 2, rows + 1, 1); /* row 0 */
    CHECK(!op_download(cx, r, b, 4), "download");
    CHECK(r[0] == f16v[0] && r[1] == f16v[1] && r[2] == bf16v[0] && r[3] == bf16v[1], "gather 16-bit: %g %g %g %g",
          r[0], r[1], r[2], r[3]);
    op_free(cx, a);
    op_free(cx, b);
}
