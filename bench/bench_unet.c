/* bench_unet.c - seconds per UNet call and achieved GFLOP/s against this
 * machine's measured SGEMM peak, for a real model folder (-m) or for a
 * full-size architecture with random weights (--config UNET_DIR: only
 * config.json is read, so ../shared/configs/sd15/unet works). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "bench_common.h"
#include "io/json.h"
#include "nn/unet.h"

static void usage(void) {
    fprintf(stderr, "usage: bench_unet (-m MODEL_DIR | --config UNET_DIR) [-W 512] [-H 512] [--batch 2] "
                    "[--calls 3] [--threads N] [--profile 1]\n");
}

int main(int argc, char **argv) {
    const char *model = NULL, *config = NULL;
    int W = 0, H = 0, B = 2, calls = 3, threads = 0, profile = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) { usage(); return 2; }
        if (!strcmp(a, "-m")) model = v;
        else if (!strcmp(a, "--config")) config = v;
        else if (!strcmp(a, "-W")) W = atoi(v);
        else if (!strcmp(a, "-H")) H = atoi(v);
        else if (!strcmp(a, "--batch")) B = atoi(v);
        else if (!strcmp(a, "--calls")) calls = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--profile")) profile = atoi(v);
        else { usage(); return 2; }
        i++;
    }
    if (!model == !config || B < 1 || calls < 1) { usage(); return 2; }
    op_ctx *cx;
    if (op_ctx_create(&cx, OP_DEV_CPU, threads)) {
        fprintf(stderr, "bench_unet: %s\n", sdc_last_error());
        return 1;
    }
    printf("threads: %d\n", op_ctx_threads(cx));
    double peak = bench_gemm_peak(2048, 3);
    printf("SGEMM peak (OpenBLAS, 2048^3): %.1f GFLOP/s\n", peak);

    sdc_unet *u;
    sdc_status st;
    char dir[4096];
    double t0 = bench_now();
    if (model) {
        snprintf(dir, sizeof dir, "%s/unet", model);
        st = unet_load(&u, cx, dir, NULL);
    } else {
        char p[4096];
        cJSON *j;
        unet_config cfg;
        weights w;
        snprintf(p, sizeof p, "%s/config.json", config);
        st = json_load(p, &j);
        if (!st) {
            st = unet_config_from_json(j, p, &cfg);
            cJSON_Delete(j);
        }
        if (!st) st = weights_open(&w, NULL, 0);
        if (!st) {
            w.synthesize = 1;
            st = unet_load_weights(&u, cx, &cfg, &w);
        }
    }
    if (st) {
        fprintf(stderr, "bench_unet: %s\n", sdc_last_error());
        return 1;
    }
    const unet_config *c = unet_get_config(u);
    if (!W) W = c->sample_size * 8;
    if (!H) H = c->sample_size * 8;
    int h = H / 8, w = W / 8, M = 77, D = c->cross_dim[0];
    printf("unet: %.1f M parameters, loaded in %.2f s; image %dx%d (latent %dx%d), UNet batch %d\n",
           (double)unet_num_params(u) / 1e6, bench_now() - t0, W, H, w, h, B);
    size_t nx = (size_t)B * c->in_channels * h * w;
    float *x = malloc(nx * sizeof(float)), *out = malloc((size_t)B * c->out_channels * h * w * sizeof(float));
    float *ctx = calloc((size_t)B * M * D, sizeof(float)), t[64];
    float *te = calloc((size_t)B * 4096, sizeof(float)), *ti = calloc((size_t)B * 6, sizeof(float));
    float *tc = calloc((size_t)B * 1024, sizeof(float));
    for (size_t i = 0; i < nx; i++) x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    for (int i = 0; i < B && i < 64; i++) t[i] = 500.0f;
    for (int i = 0; i < B; i++) ti[6 * i] = ti[6 * i + 4] = (float)H, ti[6 * i + 1] = ti[6 * i + 5] = (float)W;
    unet_extra ex = {.text_embeds = te, .time_ids = ti, .timestep_cond = tc};
    double best = 1e30, total = 0, flops = 0;
    op_profile_enable(profile);
    for (int k = 0; k < calls; k++) {
        op_flops_reset();
        op_profile_reset();
        double s0 = bench_now(), c0 = bench_cpu_seconds();
        st = unet_forward(u, x, B, h, w, t, ctx, M, &ex, out, NULL, NULL);
        double s = bench_now() - s0, cpu = bench_cpu_seconds() - c0;
        if (st) {
            fprintf(stderr, "bench_unet: %s\n", sdc_last_error());
            return 1;
        }
        flops = op_flops();
        total += s;
        if (s < best) best = s;
        printf("call %d: %.3f s (%.3f CPU s)\n", k + 1, s, cpu);
        if (profile) bench_print_profile(s, cpu);
    }
    printf("UNet call: best %.3f s, mean %.3f s, %.1f GFLOP per call, %.1f GFLOP/s (%.0f%% of SGEMM peak)\n", best,
           total / calls, flops / 1e9, flops / best / 1e9, 100.0 * flops / best / 1e9 / peak);
    printf("peak RSS: %.0f MiB\n", bench_peak_rss_mib());
    free(x), free(out), free(ctx), free(te), free(ti), free(tc);
    unet_free(u);
    return 0;
}
