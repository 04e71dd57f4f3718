/* bench_batch.c - images/s of whole text-to-image requests (text encoder,
 * denoising loop, VAE decode) for several UNet batch sizes: N images per
 * request, at most B through one UNet call (sdc_request.batch_size). For a
 * real model folder (-m) or a full-size architecture with random weights
 * (--config DIR: a diffusers folder of configs and tokenizers, e.g.
 * ../shared/configs/sd15; no weight files are read). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "bench_common.h"
#include "io/json.h"
#include "pipeline/model.h"

static void usage(void) {
    fprintf(stderr, "usage: bench_batch (-m MODEL_DIR | --config DIR) [--sizes 1,2,4,8] [--images 8] [--steps 20]\n"
                    "                   [-W W] [-H H] [--scheduler NAME] [--threads N]\n");
}

/* ---- a pipeline with random weights (benchmarks only: the images are noise) ---- */

static weights *synth_weights(void) {
    weights *w = calloc(1, sizeof *w);
    if (w && !weights_open(w, NULL, 0)) {
        w->synthesize = 1;
        return w;
    }
    free(w);
    return NULL;
}

static weights *g_te_w[2], *g_vae_w; /* borrowed by the text encoders and the VAE */

static sdc_status synth_text(op_ctx *cx, const char *dir, const char *sub, int projection, clip_text_model **out, weights **w) {
    char p[4096];
    clip_text_config cfg;
    snprintf(p, sizeof p, "%s/%s/config.json", dir, sub);
    SDC_TRY(clip_text_config_load(&cfg, p));
    cfg.with_projection = projection;
    if (!(*w = synth_weights())) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    return clip_text_load_weights(out, cx, &cfg, *w);
}

static sdc_status synth_model(const char *dir, int threads, sdc_model **out) {
    char p[4096];
    cJSON *j;
    sdc_model *m = calloc(1, sizeof *m);
    if (!m) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    *out = m;
    m->path = strdup(dir);
    m->name = strdup("random-weights");
    SDC_TRY(op_ctx_create(&m->cx, OP_DEV_CPU, threads));
    snprintf(p, sizeof p, "%s/model_index.json", dir);
    SDC_TRY(json_load(p, &j));
    const char *cls = "";
    json_get_str(j, "_class_name", "", &cls, p);
    m->family = strstr(cls, "XL") ? FAMILY_SDXL : FAMILY_SD;
    json_get_bool(j, "force_zeros_for_empty_prompt", 1, &m->force_zeros_for_empty_prompt, p);
    cJSON_Delete(j);
    snprintf(p, sizeof p, "%s/tokenizer", dir);
    SDC_TRY(clip_tokenizer_load(&m->tok, p));
    SDC_TRY(synth_text(m->cx, dir, "text_encoder", 0, &m->te, &g_te_w[0]));
    if (m->family == FAMILY_SDXL) {
        snprintf(p, sizeof p, "%s/tokenizer_2", dir);
        SDC_TRY(clip_tokenizer_load(&m->tok2, p));
        SDC_TRY(synth_text(m->cx, dir, "text_encoder_2", 1, &m->te2, &g_te_w[1]));
    }
    unet_config uc;
    snprintf(p, sizeof p, "%s/unet/config.json", dir);
    SDC_TRY(json_load(p, &j));
    sdc_status st = unet_config_from_json(j, p, &uc);
    cJSON_Delete(j);
    SDC_TRY(st);
    weights *uw = synth_weights();
    if (!uw) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    st = unet_load_weights(&m->unet, m->cx, &uc, uw); /* the UNet owns uw's contents now */
    free(uw);
    SDC_TRY(st);
    vae_config vc;
    snprintf(p, sizeof p, "%s/vae/config.json", dir);
    SDC_TRY(vae_config_load(&vc, p));
    if (!(g_vae_w = synth_weights())) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    SDC_TRY(vae_load_weights(&m->vae, m->cx, &vc, g_vae_w));
    snprintf(p, sizeof p, "%s/scheduler/scheduler_config.json", dir);
    SDC_TRY(json_load(p, &m->sched_json));
    m->vae_scale = vae_downscale_factor(m->vae);
    return SDC_OK;
}

static void synth_free(sdc_model *m) {
    sdc_model_free(m);
    for (int i = 0; i < 2; i++)
        if (g_te_w[i]) weights_close(g_te_w[i]), free(g_te_w[i]);
    if (g_vae_w) weights_close(g_vae_w), free(g_vae_w);
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
    sdc_load_options lo = {.threads = threads};
    double t0 = bench_now();
    sdc_status st;
    if (model) {
        st = sdc_model_load(&m, model, &lo);
    } else {
        st = synth_model(config, threads, &m);
    }
    if (st) {
        fprintf(stderr, "bench_batch: %s\n", sdc_last_error());
        return 1;
    }
    sdc_model_info info;
    sdc_model_get_info(m, &info);
    int W = base.width ? base.width : info.default_width, H = base.height ? base.height : info.default_height;
    printf("model: %s (%s, UNet %.1f M parameters%s), loaded in %.2f s; threads %d\n", model ? model : config,
           info.family, (double)info.params_unet / 1e6, model ? "" : ", random weights", bench_now() - t0,
           op_ctx_threads(m->cx));
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
    else synth_free(m);
    return 0;
}
