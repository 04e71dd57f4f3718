/* test_vae_tiling.c - tiled VAE decoding (src/nn/vae_tiling.c): diffusers'
 * tile geometry; an exact match with a literal transcription of diffusers'
 * tiled_decode (every tile kept, blended in place, cropped, concatenated);
 * closeness to the untiled decode and no step at the tile borders on the
 * tiny SD and SDXL VAEs; the untiled path when the latent fits one tile; and
 * `sdc generate --vae-tiling`. SDC_TEST_VERBOSE=1 prints the measurements. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/png_io.h"
#include "nn/vae_tiling.h"

static int verbose(void) { return getenv("SDC_TEST_VERBOSE") != NULL; }

/* A latent like a real one: smooth structure (a few low-frequency waves per
 * channel) plus some noise, deterministic. z[L, h, w]. */
static float *make_latent(int L, int h, int w, uint32_t seed) {
    float *z = malloc((size_t)L * h * w * sizeof(float));
    uint32_t s = seed * 2654435761u + 1;
    for (int l = 0; l < L; l++) {
        double fy = 0.15 + 0.07 * l, fx = 0.11 + 0.05 * l, ph = 0.9 * l;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                s = s * 1664525u + 1013904223u;
                double noise = ((s >> 8) / 16777216.0 - 0.5) * 0.8;
                z[((size_t)l * h + y) * w + x] =
                    (float)(1.5 * sin(fy * y + ph) + 1.2 * cos(fx * x - ph) + 0.8 * sin(0.07 * (x + y)) + noise);
            }
    }
    return z;
}

static double max_abs(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
    }
    return m;
}

/* PSNR over the reference's value range */
static double psnr(const float *x, const float *ref, size_t n) {
    double lo = INFINITY, hi = -INFINITY, se = 0;
    for (size_t i = 0; i < n; i++) {
        lo = fmin(lo, ref[i]);
        hi = fmax(hi, ref[i]);
        se += ((double)x[i] - ref[i]) * ((double)x[i] - ref[i]);
    }
    double rmse = sqrt(se / (double)n);
    return rmse > 0 ? 20.0 * log10((hi - lo) / rmse) : INFINITY;
}

/* Mean |step| between neighbouring pixels across the tile borders (every
 * `period` pixels, both axes) over the mean |step| everywhere else: about 1
 * for a seamless image. img[C, H, W]. */
static double border_step_ratio(const float *img, int C, int H, int W, int period) {
    double sb = 0, se = 0;
    long nb = 0, ne = 0;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const float *p = img + ((size_t)c * H + y) * W + x;
                if (x > 0) {
                    double d = fabs((double)p[0] - p[-1]);
                    if (x % period == 0) sb += d, nb++;
                    else se += d, ne++;
                }
                if (y > 0) {
                    double d = fabs((double)p[0] - p[-W]);
                    if (y % period == 0) sb += d, nb++;
                    else se += d, ne++;
                }
            }
    return (sb / (double)nb) / (se / (double)ne);
}

/* ---- diffusers' tiled_decode, transcribed literally (independent of the streaming code) ---- */

typedef struct {
    float *px;
    int H, W; /* [C, H, W] */
} tile;

static void ref_blend_v(const tile *a, tile *b, int C, int extent) {
    int e = extent;
    if (a->H < e) e = a->H;
    if (b->H < e) e = b->H;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < e; y++)
            for (int x = 0; x < b->W; x++) {
                float wa = (float)(1.0 - (double)y / e), wb = (float)((double)y / e);
                float pa = a->px[((size_t)c * a->H + a->H - e + y) * a->W + x] * wa;
                float pb = b->px[((size_t)c * b->H + y) * b->W + x] * wb;
                b->px[((size_t)c * b->H + y) * b->W + x] = pa + pb;
            }
}

static void ref_blend_h(const tile *a, tile *b, int C, int extent) {
    int e = extent;
    if (a->W < e) e = a->W;
    if (b->W < e) e = b->W;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < b->H; y++)
            for (int x = 0; x < e; x++) {
                float wa = (float)(1.0 - (double)x / e), wb = (float)((double)x / e);
                float pa = a->px[((size_t)c * a->H + y) * a->W + a->W - e + x] * wa;
                float pb = b->px[((size_t)c * b->H + y) * b->W + x] * wb;
                b->px[((size_t)c * b->H + y) * b->W + x] = pa + pb;
            }
}

/* out[C, h*f, w*f]; `blend` scales the blend extent (1: diffusers; 0: hard cuts) */
static int ref_tiled_decode(const sdc_vae *v, const float *z, int h, int w, int tile_sample, double blend, float *out) {
    const vae_config *cfg = vae_get_config(v);
    int f = vae_downscale_factor(v), L = cfg->latent_channels, C = cfg->out_channels;
    int tl = (int)((double)tile_sample / f), overlap = (int)(tl * (1 - 0.25));
    int extent = (int)(tile_sample * 0.25), row_limit = tile_sample - extent;
    int nr = (h + overlap - 1) / overlap, nc = (w + overlap - 1) / overlap, ok = 1;
    tile *t = calloc((size_t)nr * nc, sizeof *t);
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < nc; c++) {
            int i = r * overlap, j = c * overlap, th = h - i < tl ? h - i : tl, tw = w - j < tl ? w - j : tl;
            float *zt = malloc((size_t)L * th * tw * sizeof(float));
            for (int l = 0; l < L; l++)
                for (int y = 0; y < th; y++)
                    for (int x = 0; x < tw; x++) zt[((size_t)l * th + y) * tw + x] = z[((size_t)l * h + i + y) * w + j + x];
            tile *T = &t[r * nc + c];
            T->H = th * f, T->W = tw * f;
            T->px = malloc((size_t)C * T->H * T->W * sizeof(float));
            if (vae_decode(v, zt, 1, th, tw, T->px)) ok = 0;
            free(zt);
        }
    int oy = 0, Wtot = w * f;
    for (int r = 0; r < nr; r++) {
        int ox = 0, rowh = 0;
        for (int c = 0; c < nc; c++) {
            tile *T = &t[r * nc + c];
            if (r > 0) ref_blend_v(&t[(r - 1) * nc + c], T, C, (int)(extent * blend));
            if (c > 0) ref_blend_h(&t[r * nc + c - 1], T, C, (int)(extent * blend));
            int kh = T->H < row_limit ? T->H : row_limit, kw = T->W < row_limit ? T->W : row_limit;
            for (int ch = 0; ch < C; ch++)
                for (int y = 0; y < kh; y++)
                    memcpy(out + ((size_t)ch * h * f + oy + y) * Wtot + ox, T->px + ((size_t)ch * T->H + y) * T->W,
                           (size_t)kw * sizeof(float));
            ox += kw;
            rowh = kh;
        }
        if (ox != Wtot) ok = 0;
        oy += rowh;
    }
    if (oy != h * f) ok = 0;
    for (int k = 0; k < nr * nc; k++) free(t[k].px);
    free(t);
    return ok;
}

/* ---- tests ---- */

TEST(vae_tiling_geometry_as_diffusers) {
    /* (sample_size -> tile_latent_min_size, overlap_size, blend_extent, row_limit) for f = 8 */
    static const int cases[][5] = {
        {512, 64, 48, 128, 384}, {768, 96, 72, 192, 576}, {1024, 128, 96, 256, 768}, {32, 4, 3, 8, 24}, {64, 8, 6, 16, 48},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        vae_tile_geometry g;
        CHECK_OK(vae_tile_geometry_make(cases[k][0], 8, &g));
        CHECK(g.tile_sample == cases[k][0] && g.tile_latent == cases[k][1] && g.stride == cases[k][2] &&
                  g.blend == cases[k][3] && g.row_limit == cases[k][4],
              "sample %d: got %d %d %d %d", cases[k][0], g.tile_latent, g.stride, g.blend, g.row_limit);
        CHECK(g.stride * 8 == g.row_limit, "sample %d: stride and crop disagree", cases[k][0]);
    }
    vae_tile_geometry g;
    int bad[] = {0, 16, 40, 100, 520, -32};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        CHECK(vae_tile_geometry_make(bad[k], 8, &g) == SDC_ERR_ARG, "tile size %d accepted", bad[k]);
        CHECK(strstr(sdc_last_error(), "multiple of 32"), "message: %s", sdc_last_error());
    }
    CHECK_OK(vae_tile_geometry_make(512, 8, &g));
    CHECK(!vae_tiling_applies(&g, 64, 64) && vae_tiling_applies(&g, 65, 64) && vae_tiling_applies(&g, 8, 65),
          "tiling applies only past one tile on an axis");
    CHECK(vae_tiling_default_size(512, 8) == 512 && vae_tiling_default_size(64, 8) == 64 &&
              vae_tiling_default_size(100, 8) == 96 && vae_tiling_default_size(8, 8) == 32 &&
              vae_tiling_default_size(0, 8) == 32,
          "default size clamping");

    int s = 0;
    CHECK_OK(vae_tiling_config_sample_size(fixture_path("models/tiny-sd/vae/config.json"), &s));
    CHECK(s == 64, "tiny-sd sample_size %d", s);
    const char *texts[] = {"{\"sample_size\": [256, 256]}", "{}", "{\"sample_size\": null}", "{\"sample_size\": \"x\"}",
                           "{\"sample_size\": 0}"};
    const int want[] = {256, 32, 32, -1, -1};
    for (int k = 0; k < 5; k++) {
        const char *p = tmp_path("vae_cfg.json");
        FILE *fp = fopen(p, "w");
        CHECK(fp, "cannot write %s", p);
        fputs(texts[k], fp);
        fclose(fp);
        s = 0;
        sdc_status st = vae_tiling_config_sample_size(p, &s);
        if (want[k] < 0) CHECK(st == SDC_ERR_FORMAT && strstr(sdc_last_error(), "sample_size"), "%s accepted", texts[k]);
        else CHECK(!st && s == want[k], "%s -> %d", texts[k], s);
    }
}

/* Streaming two rows of tiles gives exactly what keeping every tile gives,
 * including short edge tiles (13 x 17 latents, 4-latent tiles, stride 3). */
TEST(vae_tiling_matches_diffusers_transcription) {
    op_ctx *cx = test_cx();
    sdc_vae *v;
    CHECK_OK(vae_load(&v, cx, fixture_path("models/tiny-sd/vae"), NULL));
    const int sizes[][3] = {{13, 17, 32}, {20, 9, 64}, {9, 8, 64}};
    for (int k = 0; k < 3; k++) {
        int h = sizes[k][0], w = sizes[k][1], ts = sizes[k][2];
        size_t n = (size_t)3 * h * 8 * w * 8;
        float *z = make_latent(4, h, w, 7 + k), *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
        vae_tiling opt = {.tile_sample_size = ts};
        CHECK_OK(vae_decode_tiled(v, z, 1, h, w, a, &opt));
        CHECK(ref_tiled_decode(v, z, h, w, ts, 1.0, b), "reference tiling failed");
        double d = max_abs(a, b, n);
        if (verbose()) printf("     %dx%d latents, tile %d: max|tiled - transcription| = %g\n", h, w, ts, d);
        CHECK(d == 0.0, "%dx%d tile %d: max|diff| %g against the transcription of diffusers", h, w, ts, d);
        free(z), free(a), free(b);
    }
    vae_free(v);
}

/* Tiled vs untiled on a latent several tiles large: close, finite, and no
 * step at the borders, where a mosaic of hard cuts (no blending) has one. */
static void close_and_seamless(const char *vae_dir, int h, int w, int ts) {
    op_ctx *cx = test_cx();
    sdc_vae *v;
    CHECK_OK(vae_load(&v, cx, fixture_path(vae_dir), NULL));
    int H = h * 8, W = w * 8, period = ts - ts / 4; /* tile borders: every row_limit pixels */
    size_t n = (size_t)3 * H * W;
    float *z = make_latent(4, h, w, 3), *full = malloc(n * sizeof(float)), *tiled = malloc(n * sizeof(float)),
          *cut = malloc(n * sizeof(float));
    vae_tiling opt = {.tile_sample_size = ts};
    CHECK_OK(vae_decode(v, z, 1, h, w, full));
    CHECK_OK(vae_decode_tiled(v, z, 1, h, w, tiled, &opt));
    CHECK(ref_tiled_decode(v, z, h, w, ts, 0.0, cut), "hard-cut mosaic failed");
    int finite = 1;
    for (size_t i = 0; i < n; i++) finite &= isfinite(tiled[i]) != 0;
    CHECK(finite, "%s: tiled decode is not finite", vae_dir);
    double d = max_abs(tiled, full, n), p = psnr(tiled, full, n), dc = max_abs(cut, full, n), pc = psnr(cut, full, n);
    double rt = border_step_ratio(tiled, 3, H, W, period), rf = border_step_ratio(full, 3, H, W, period),
           rc = border_step_ratio(cut, 3, H, W, period);
    if (verbose())
        printf("     %s, %dx%d latents, tile %d: max|tiled - untiled| %.3g, PSNR %.2f dB, border step ratio %.3f "
               "(untiled %.3f); hard cuts: max|diff| %.3g, PSNR %.2f dB, ratio %.3f\n",
               vae_dir, h, w, ts, d, p, rt, rf, dc, pc, rc);
    /* GroupNorm statistics and the mid-block attention see one tile, not the
     * image, so tiling is not exact: this random tiny VAE measures 21.6 dB
     * (max|diff| 3.44) with 8-latent tiles and 19.9 dB (2.62) with 4-latent
     * ones, on an output range of about -2.5..4 */
    CHECK(p >= 17.0 && d <= 6.0, "%s: tiled vs untiled PSNR %.2f dB, max|diff| %.3g", vae_dir, p, d);
    /* measured: tiled 0.97-1.02, untiled 0.92-1.03, hard cuts 1.35-1.48 */
    double limit = 1.1 * (rf > 1.0 ? rf : 1.0);
    CHECK(rt <= limit, "%s: a step at the tile borders: ratio %.3f > %.3f (untiled %.3f)", vae_dir, rt, limit, rf);
    CHECK(rc > limit, "%s: the hard-cut mosaic passes the seam check (ratio %.3f): the check is blind", vae_dir, rc);
    free(z), free(full), free(tiled), free(cut);
    vae_free(v);
}

TEST(vae_tiling_close_and_seamless_sd) { close_and_seamless("models/tiny-sd/vae", 20, 14, 64); }
TEST(vae_tiling_close_and_seamless_sdxl) { close_and_seamless("models/tiny-sdxl/vae", 14, 18, 32); }

/* A latent no larger than one tile on either axis decodes untiled, bit for bit. */
TEST(vae_tiling_one_tile_is_untiled) {
    op_ctx *cx = test_cx();
    sdc_vae *v;
    CHECK_OK(vae_load(&v, cx, fixture_path("models/tiny-sd/vae"), NULL));
    const int sizes[][2] = {{8, 8}, {8, 5}, {3, 8}};
    for (int k = 0; k < 3; k++) {
        int h = sizes[k][0], w = sizes[k][1];
        size_t n = (size_t)2 * 3 * h * 8 * w * 8;
        float *z = make_latent(4, h, 2 * w, 11 + k); /* two images' worth */
        float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
        vae_tiling opt = {.tile_sample_size = 64};
        CHECK_OK(vae_decode(v, z, 2, h, w, a));
        CHECK_OK(vae_decode_tiled(v, z, 2, h, w, b, &opt));
        CHECK(memcmp(a, b, n * sizeof(float)) == 0, "%dx%d: differs from vae_decode", h, w);
        free(z), free(a), free(b);
    }
    /* a batch is tiled image by image */
    int h = 10, w = 12;
    size_t per = (size_t)3 * h * 8 * w * 8;
    float *z = make_latent(4, 2 * h, w, 5), *a = malloc(2 * per * sizeof(float)), *b = malloc(per * sizeof(float));
    vae_tiling opt = {.tile_sample_size = 32};
    CHECK_OK(vae_decode_tiled(v, z, 2, h, w, a, &opt));
    CHECK_OK(vae_decode_tiled(v, z + 4 * h * w, 1, h, w, b, &opt));
    CHECK(memcmp(a + per, b, per * sizeof(float)) == 0, "image 1 of a batch differs from decoding it alone");
    opt.tile_sample_size = 48;
    CHECK(vae_decode_tiled(v, z, 1, h, w, a, &opt) == SDC_ERR_ARG, "tile size 48 accepted");
    free(z), free(a), free(b);
    vae_free(v);
}

/* `sdc generate` on tiny-sd with `extra` flags, writing png; the exit code */
static int generate(const char *extra, const char *png, char *out, size_t n) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s generate --quiet -m %s --steps 2 --seed 5 -p cat %s -o %s", sdc_binary(),
             fixture_path("models/tiny-sd"), extra, png);
    return run_cmd(cmd, out, n);
}

static int same_file(const char *a, const char *b) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", a, b);
    return run_cmd(cmd, NULL, 0) == 0;
}

TEST(vae_tiling_cli) {
    char out[16384];
    /* 128 x 96: 16 x 12 latents, tiles of 8 (the VAE's sample_size 64) */
    const char *pa = tmp_path("untiled.png"), *pb = tmp_path("tiled.png");
    CHECK(generate("-W 128 -H 96", pa, out, sizeof out) == 0, "untiled run: %s", out);
    CHECK(generate("-W 128 -H 96 --vae-tiling", pb, out, sizeof out) == 0, "--vae-tiling run: %s", out);
    uint8_t *a = NULL, *b = NULL;
    int wa, ha, wb, hb;
    CHECK(!png_read_rgb(pa, &a, &wa, &ha, NULL) && !png_read_rgb(pb, &b, &wb, &hb, NULL), "cannot read the PNGs");
    CHECK(wa == 128 && ha == 96 && wb == 128 && hb == 96, "sizes %dx%d, %dx%d", wa, ha, wb, hb);
    int maxd = 0;
    long differ = 0, sum = 0;
    for (int i = 0; i < 128 * 96 * 3; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d > maxd) maxd = d;
        differ += d != 0;
        sum += d;
    }
    free(a), free(b);
    double mean = (double)sum / (128 * 96 * 3);
    if (verbose())
        printf("     CLI 128x96: %ld of %d values differ, mean %.2f, max %d / 255\n", differ, 128 * 96 * 3, mean, maxd);
    /* the tiny model's 8-latent tiles: measured mean 9.9 / 255 */
    CHECK(differ > 0 && mean < 20, "--vae-tiling at 128x96: mean |diff| %.2f / 255", mean);

    /* 64 x 64 fits one tile: the same file as without tiling; forced 32-pixel tiles do tile it */
    const char *pc = tmp_path("small.png"), *pd = tmp_path("small-tiled.png");
    CHECK(generate("-W 64 -H 64", pc, out, sizeof out) == 0, "untiled run: %s", out);
    CHECK(generate("-W 64 -H 64 --vae-tiling", pd, out, sizeof out) == 0, "--vae-tiling run: %s", out);
    CHECK(same_file(pc, pd), "64x64 with --vae-tiling differs from without");
    CHECK(generate("-W 64 -H 64 --vae-tiling --vae-tile-size 32", pd, out, sizeof out) == 0, "tile 32: %s", out);
    CHECK(!same_file(pc, pd), "--vae-tile-size 32 did not tile a 64x64 image");

    const char *bad[][2] = {{"--vae-tile-size 32", "needs --vae-tiling"},
                            {"--vae-tiling --vae-tile-size 40", "multiple of 32"},
                            {"--vae-tiling --vae-tile-size x", "--vae-tile-size"}};
    for (int k = 0; k < 3; k++) {
        int rc = generate(bad[k][0], tmp_path("bad.png"), out, sizeof out);
        CHECK(rc == 2 && strstr(out, "sdc: ") && strstr(out, bad[k][1]), "'%s' exited %d: %s", bad[k][0], rc, out);
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s generate --help", sdc_binary());
    CHECK(run_cmd(cmd, out, sizeof out) == 0 && strstr(out, "--vae-tiling"), "--help lacks --vae-tiling");
}
