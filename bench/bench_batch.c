/* bench_batch.c - images/s of whole text-to-image requests (text encoder,
 * denoising loop, VAE decode) for several UNet batch sizes: N images per
 * request, at most B through one UNet call (sdc_request.batch_size). For a
 * real model folder (-m) or a full-size architecture with random weights
 * (--config DIR: a diffusers folder of configs and tokenizers, e.g.
 * ../shared/configs/sd15; no weight files are read). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "sdc.h"

static void usage(void) {
    fprintf(stderr, "usage: bench_batch (-m MODEL_DIR | --config DIR) [--sizes 1,2,4,8] [--images 8] [--steps 20]\n"
                    "                   [-W W] [-H H] [--scheduler NAME] [--threads N]\n");
}

/* ---- the measurement ---- */

static int run(sdc_model *m, const sdc_request *base, int images, int bs, double *seconds) {
    static const char *prompt[1] = {"a photograph of an astronaut riding a horse"};
    sdc_request r = *base;
    r.prompts = prompt;
    r.nprompts = 1;
    r.batch = images;
    r.batch_size = bs;
    sdc_image *imgs;
    int n;
    double t0 = bench_now();
    if (sdc_generate(m, &r, &imgs, &n)) {
        fprintf(stderr, "bench_batch: %s\n", sdc_last_error());
        return 0;
    }
    *seconds = bench_now() - t0;
    sdc_images_free(imgs, n);
    return 1;
}

int main(int argc, char **argv) {
    const char *model = NULL, *config = NULL, *sizes = "1,2,4,8";
    int images = 8, threads = 0;
    sdc_request base;
    sdc_request_init(&base);
    base.steps = 20;
    base.seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) { usage(); return 2; }
        if (!strcmp(a, "-m")) model = v;
        else if (!strcmp(a, "--config")) config = v;
        else if (!strcmp(a, "--sizes")) sizes = v;
        else if (!strcmp(a, "--images")) images = atoi(v);
        else if (!strcmp(a, "--steps")) base.steps = atoi(v);
        else if (!strcmp(a, "-W")) base.width = atoi(v);
        else if (!strcmp(a, "-H")) base.height = atoi(v);
        else if (!strcmp(a, "--scheduler")) base.scheduler = v;
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else { usage(); return 2; }
        i++;
    }
    if (!model == !config || images < 1 || images > 64 || base.steps < 1) { usage(); return 2; }
    sdc_model *m;
    sdc_load_options lo = {.threads = threads, .random_weights = !model}; /* --config: made-up weights */
    double t0 = bench_now();
    sdc_status st = sdc_model_load(&m, model ? model : config, &lo);
    if (st) {
        fprintf(stderr, "bench_batch: %s\n", sdc_last_error());
        return 1;
    }
    sdc_model_info info;
    sdc_model_get_info(m, &info);
    int W = base.width ? base.width : info.default_width, H = base.height ? base.height : info.default_height;
    printf("model: %s (%s, UNet %.1f M parameters%s), loaded in %.2f s; threads %d\n", model ? model : config,
           info.family, (double)info.params_unet / 1e6, model ? "" : ", random weights", bench_now() - t0,
           info.threads);
    printf("request: %d images of %dx%d, %d steps, scheduler %s, guidance %.1f (CFG doubles each UNet batch)\n",
           images, W, H, base.steps, base.scheduler ? base.scheduler : info.scheduler, (double)info.default_guidance);
    double warm;
    if (!run(m, &base, 1, 1, &warm)) return 1; /* first touches of weights and buffers */
    printf("%-10s %10s %10s %12s\n", "batch", "seconds", "images/s", "s/image");
    for (const char *s = sizes; *s;) {
        int bs = atoi(s);
        if (bs < 1 || bs > 64) { usage(); return 2; }
        double sec;
        if (!run(m, &base, images, bs, &sec)) return 1;
        printf("%-10d %10.2f %10.3f %12.3f\n", bs, sec, images / sec, sec / images);
        fflush(stdout);
        s = strchr(s, ',');
        if (!s) break;
        s++;
    }
    printf("peak RSS: %.0f MiB\n", bench_peak_rss_mib());
    if (model) sdc_model_free(m);
    else sdc_model_free(m);
    return 0;
}
