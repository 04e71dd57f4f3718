/* bench_vae_tiling.c - seconds and peak RSS of one VAE decode, untiled or
 * tiled (--vae-tiling), for a VAE folder (config.json + weights, e.g. a
 * full-size random-weight one from make_random_model). Run one mode per
 * process: peak RSS is the process's high-water mark. --out FILE keeps the
 * image (raw float32 [3, H, W]); --ref FILE compares with such a file
 * (max|diff|, PSNR over the reference's range). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "bench_common.h"
#include "nn/vae_tiling.h"

static void usage(void) {
    fprintf(stderr, "usage: bench_vae_tiling --vae VAE_DIR [-W 1024] [-H 1024] [--tiling 0|1] [--tile-size PX] "
                    "[--threads N] [--out FILE] [--ref FILE]\n");
}

int main(int argc, char **argv) {
    const char *dir = NULL, *out_path = NULL, *ref_path = NULL;
    int W = 1024, H = 1024, tiling = 0, tile = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) { usage(); return 2; }
        if (!strcmp(a, "--vae")) dir = v;
        else if (!strcmp(a, "-W")) W = atoi(v);
        else if (!strcmp(a, "-H")) H = atoi(v);
        else if (!strcmp(a, "--tiling")) tiling = atoi(v);
        else if (!strcmp(a, "--tile-size")) tile = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--out")) out_path = v;
        else if (!strcmp(a, "--ref")) ref_path = v;
        else { usage(); return 2; }
        i++;
    }
    if (!dir || W < 8 || H < 8) { usage(); return 2; }
    op_ctx *cx;
    sdc_vae *v;
    if (op_ctx_create(&cx, OP_DEV_CPU, threads) || vae_load(&v, cx, dir, NULL)) {
        fprintf(stderr, "bench_vae_tiling: %s\n", sdc_last_error());
        return 1;
    }
    int f = vae_downscale_factor(v), L = vae_latent_channels(v), h = H / f, w = W / f;
    if (!tile) {
        char p[4096];
        int sample = 0;
        snprintf(p, sizeof p, "%s/config.json", dir);
        if (vae_tiling_config_sample_size(p, &sample)) {
            fprintf(stderr, "bench_vae_tiling: %s\n", sdc_last_error());
            return 1;
        }
        tile = vae_tiling_default_size(sample, f);
    }
    /* a smooth latent of a real one's spread (latents / scaling_factor: std ~5) */
    size_t zn = (size_t)L * h * w, on = (size_t)3 * h * f * w * f;
    float *z = malloc(zn * sizeof(float)), *out = malloc(on * sizeof(float));
    if (!z || !out) return 1;
    for (int l = 0; l < L; l++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                z[((size_t)l * h + y) * w + x] = (float)(5.0 * sin(0.09 * y + l) * cos(0.07 * x - l));
    printf("threads: %d\nimage %dx%d (latent %dx%d), %s", op_ctx_threads(cx), w * f, h * f, w, h,
           tiling ? "tiled" : "untiled");
    if (tiling) printf(", tile %d px", tile);
    printf("\npeak RSS after load: %.0f MiB\n", bench_peak_rss_mib());
    vae_tiling opt = {.tile_sample_size = tile};
    double t0 = bench_now();
    sdc_status st = tiling ? vae_decode_tiled(v, z, 1, h, w, out, &opt) : vae_decode(v, z, 1, h, w, out);
    double t = bench_now() - t0;
    if (st) {
        fprintf(stderr, "bench_vae_tiling: %s\n", sdc_last_error());
        return 1;
    }
    double sum = 0;
    for (size_t i = 0; i < on; i++) sum += out[i];
    printf("decode: %.2f s\npeak RSS: %.0f MiB\nmean output: %.6f\n", t, bench_peak_rss_mib(), sum / (double)on);
    FILE *fp;
    if (out_path && (!(fp = fopen(out_path, "wb")) || fwrite(out, sizeof(float), on, fp) != on || fclose(fp))) {
        fprintf(stderr, "bench_vae_tiling: cannot write %s\n", out_path);
        return 1;
    }
    if (ref_path) {
        float *ref = malloc(on * sizeof(float));
        if (!ref || !(fp = fopen(ref_path, "rb")) || fread(ref, sizeof(float), on, fp) != on) {
            fprintf(stderr, "bench_vae_tiling: cannot read %s (%zu floats)\n", ref_path, on);
            return 1;
        }
        fclose(fp);
        double md = 0, se = 0, lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < on; i++) {
            double d = fabs((double)out[i] - ref[i]);
            md = d > md ? d : md;
            se += d * d;
            lo = fmin(lo, ref[i]);
            hi = fmax(hi, ref[i]);
        }
        printf("vs %s: max|diff| %.4g, PSNR %.2f dB (range %.3g..%.3g)\n", ref_path, md,
               20.0 * log10((hi - lo) / sqrt(se / (double)on)), lo, hi);
        free(ref);
    }
    free(z);
    free(out);
    vae_free(v);
    return 0;
}
