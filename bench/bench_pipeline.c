/* bench_pipeline.c - the stages of text-to-image on a model folder (a real
 * one, or a full-size random one from make_random_model): text encoders
 * (one prompt), one UNet forward without CFG (batch 1) and with CFG (batch
 * 2), VAE decode, and a whole image through sdc_generate. Per stage: best
 * wall seconds of --reps, GFLOP (GEMM-backed ops as counted by op_flops),
 * GFLOP/s, share of this machine's single-precision GEMM peak measured in
 * the same run (OpenBLAS and sdc's own GEMM, 2048^3, the better of the two),
 * and the peak RSS so far against the size of the weight files. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/ops.h"
#include "bench_common.h"
#include "pipeline/model.h"
#include "pipeline/text_conditioning.h"

static void usage(void) {
    fprintf(stderr, "usage: bench_pipeline -m MODEL_DIR [-W W] [-H H] [--reps 2] [--threads N] [--profile 1]\n"
                    "         [--stages text,unet,cfg,vae,image] [--steps N] [--guidance G] [--scheduler NAME]\n"
                    "         [--timestep-spacing S] [--prompt TEXT] [--dtype f32|bf16]\n"
                    "         [--malloc tuned|default]\n"
                    "  --dtype bf16 also generates the image in both precisions and prints their difference\n"
                    "  --malloc tuned (the default) calls op_tune_allocator() first\n");
}

static double g_peak;
static int g_profile;

/* bytes of the .safetensors files in the components sdc loads */
static double weight_file_bytes(const char *model) {
    static const char *const comps[] = {"text_encoder", "text_encoder_2", "unet", "vae"};
    double total = 0;
    for (int i = 0; i < 4; i++) {
        char d[4096];
        snprintf(d, sizeof d, "%s/%s", model, comps[i]);
        DIR *dir = opendir(d);
        struct dirent *e;
        while (dir && (e = readdir(dir))) {
            const char *x = strstr(e->d_name, ".safetensors");
            if (!x || x[12]) continue;
            char p[4400];
            struct stat st;
            snprintf(p, sizeof p, "%s/%s", d, e->d_name);
            if (!stat(p, &st)) total += (double)st.st_size;
        }
        if (dir) closedir(dir);
    }
    return total;
}

static void report(const char *stage, double best, double flops, double cpu) {
    printf("%-26s %8.3f s %9.1f GFLOP %8.1f GFLOP/s %5.1f%% of peak  (%.2f CPU s)  peak RSS %6.0f MiB\n", stage, best,
           flops / 1e9, flops / best / 1e9, 100.0 * flops / best / 1e9 / g_peak, cpu, bench_peak_rss_mib());
    fflush(stdout);
}

typedef sdc_status (*stage_fn)(void *ctx);

static int run_stage(const char *name, stage_fn f, void *ctx, int reps) {
    double best = 1e30, flops = 0, bcpu = 0;
    for (int r = 0; r < reps; r++) {
        op_flops_reset();
        op_profile_reset();
        double t0 = bench_now(), c0 = bench_cpu_seconds();
        sdc_status st = f(ctx);
        double t = bench_now() - t0, c = bench_cpu_seconds() - c0;
        if (st) {
            fprintf(stderr, "bench_pipeline: %s: %s\n", name, sdc_last_error());
            return 0;
        }
        if (t < best) best = t, flops = op_flops(), bcpu = c;
        if (g_profile && r == reps - 1) {
            printf("  %s, last repetition:\n", name);
            bench_print_profile(t, c);
        }
    }
    report(name, best, flops, bcpu);
    return 1;
}

typedef struct {
    sdc_model *m;
    const char *prompt;
    text_cond tc;
    int h, w, W, H;
    float *x, *out, *ctx2, *pooled2, *time_ids;
    sdc_request req;
} bench_ctx;

static sdc_status st_text(void *p) {
    bench_ctx *b = p;
    text_cond tc;
    sdc_status st = text_cond_encode(b->m, &b->prompt, 1, 0, &tc);
    if (!st) text_cond_free(&tc);
    return st;
}

static sdc_status unet_call(bench_ctx *b, int B) {
    float t[2] = {999.0f, 999.0f};
    unet_extra ex = {.text_embeds = b->pooled2, .time_ids = b->time_ids};
    return unet_forward(b->m->unet, b->x, B, b->h, b->w, t, b->ctx2, b->tc.T, &ex, b->out, NULL, NULL);
}
static sdc_status st_unet(void *p) { return unet_call(p, 1); }
static sdc_status st_cfg(void *p) { return unet_call(p, 2); }

static sdc_status st_vae(void *p) {
    bench_ctx *b = p;
    float *img = malloc((size_t)3 * b->W * b->H * sizeof(float));
    if (!img) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    sdc_status st = vae_decode(b->m->vae, b->x, 1, b->h, b->w, img);
    free(img);
    return st;
}

static sdc_status st_image(void *p) {
    bench_ctx *b = p;
    sdc_image *imgs;
    int n;
    sdc_status st = sdc_generate(b->m, &b->req, &imgs, &n);
    if (!st) sdc_images_free(imgs, n);
    return st;
}

int main(int argc, char **argv) {
    const char *model = NULL, *stages = "text,unet,cfg,vae,image";
    bench_ctx b = {.prompt = "a cinematic shot of a kitten wearing an intricate italian knight's armor"};
    int reps = 2, threads = 0, bf16 = 0, tune_malloc = 1;
    sdc_request_init(&b.req);
    b.req.steps = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return usage(), 2;
        if (!strcmp(a, "-m")) model = v;
        else if (!strcmp(a, "-W")) b.W = atoi(v);
        else if (!strcmp(a, "-H")) b.H = atoi(v);
        else if (!strcmp(a, "--reps")) reps = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--profile")) g_profile = atoi(v);
        else if (!strcmp(a, "--stages")) stages = v;
        else if (!strcmp(a, "--steps")) b.req.steps = atoi(v);
        else if (!strcmp(a, "--guidance")) b.req.guidance = (float)atof(v);
        else if (!strcmp(a, "--scheduler")) b.req.scheduler = v;
        else if (!strcmp(a, "--timestep-spacing")) b.req.timestep_spacing = v;
        else if (!strcmp(a, "--prompt")) b.prompt = v;
        else if (!strcmp(a, "--dtype") && (!strcmp(v, "bf16") || !strcmp(v, "f32"))) bf16 = !strcmp(v, "bf16");
        else if (!strcmp(a, "--malloc") && (!strcmp(v, "tuned") || !strcmp(v, "default"))) tune_malloc = !strcmp(v, "tuned");
        else return usage(), 2;
        i++;
    }
    if (!model || reps < 1) return usage(), 2;
    if (tune_malloc) op_tune_allocator();
    sdc_load_options lo = {.threads = threads};
    double t0 = bench_now();
    if (sdc_model_load(&b.m, model, &lo)) {
        fprintf(stderr, "bench_pipeline: %s\n", sdc_last_error());
        return 1;
    }
    double load_s = bench_now() - t0, wbytes = weight_file_bytes(model);
    op_profile_enable(g_profile);
    sdc_model_info info;
    sdc_model_get_info(b.m, &info);
    if (!b.W) b.W = info.default_width;
    if (!b.H) b.H = info.default_height;
    printf("model %s (%s): weight files %.2f GB, loaded in %.1f s, RSS after load %.0f MiB\n", model, info.family,
           wbytes / 1e9, load_s, bench_peak_rss_mib());
    if (bf16) {
        op_set_compute(OP_BF16);
        if (op_compute() != OP_BF16) fprintf(stderr, "bench_pipeline: no AVX512_BF16 on this CPU: running float32\n");
    }
    printf("threads: %d, image %dx%d, compute %s, allocator %s\n", op_threads(), b.W, b.H,
           op_compute() == OP_BF16 ? "bf16" : "f32", tune_malloc ? "tuned (op_tune_allocator)" : "default");
    double blas = bench_gemm_peak(2048, 3), own = bench_own_gemm_peak(2048, 3);
    g_peak = blas > own ? blas : own;
    printf("SGEMM 2048^3: OpenBLAS %.1f GFLOP/s, sdc %.1f GFLOP/s (peak used for shares: %.1f)\n", blas, own, g_peak);

    b.h = b.H / b.m->vae_scale;
    b.w = b.W / b.m->vae_scale;
    if (text_cond_encode(b.m, &b.prompt, 1, 0, &b.tc)) {
        fprintf(stderr, "bench_pipeline: %s\n", sdc_last_error());
        return 1;
    }
    int C = unet_get_config(b.m->unet)->in_channels;
    int64_t nx = (int64_t)2 * C * b.h * b.w, nctx = (int64_t)b.tc.T * b.tc.D;
    b.x = malloc((size_t)nx * sizeof(float));
    b.out = malloc((size_t)nx * sizeof(float));
    b.ctx2 = malloc((size_t)2 * nctx * sizeof(float));
    b.pooled2 = calloc((size_t)2 * (b.tc.P ? b.tc.P : 1), sizeof(float));
    b.time_ids = malloc(12 * sizeof(float));
    if (!b.x || !b.out || !b.ctx2 || !b.pooled2 || !b.time_ids) return fprintf(stderr, "out of memory\n"), 1;
    for (int64_t i = 0; i < nx; i++) b.x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    memcpy(b.ctx2, b.tc.embeds, (size_t)nctx * sizeof(float));
    memcpy(b.ctx2 + nctx, b.tc.embeds, (size_t)nctx * sizeof(float));
    if (b.tc.P) {
        memcpy(b.pooled2, b.tc.pooled, (size_t)b.tc.P * sizeof(float));
        memcpy(b.pooled2 + b.tc.P, b.tc.pooled, (size_t)b.tc.P * sizeof(float));
    }
    for (int i = 0; i < 2; i++) {
        float *ti = b.time_ids + 6 * i;
        ti[0] = ti[4] = (float)b.H, ti[1] = ti[5] = (float)b.W, ti[2] = ti[3] = 0.0f;
    }
    b.req.prompts = &b.prompt;
    b.req.nprompts = 1;
    b.req.width = b.W;
    b.req.height = b.H;
    b.req.seed = 1;

    int ok = 1;
    char what[128];
    if (ok && strstr(stages, "text")) ok = run_stage(b.m->te2 ? "text encoders (2)" : "text encoder", st_text, &b, reps);
    if (ok && strstr(stages, "unet")) ok = run_stage("UNet forward, batch 1", st_unet, &b, reps);
    if (ok && strstr(stages, "cfg")) ok = run_stage("UNet step with CFG (B=2)", st_cfg, &b, reps);
    if (ok && strstr(stages, "vae")) ok = run_stage("VAE decode", st_vae, &b, reps);
    snprintf(what, sizeof what, "image, %d step%s", b.req.steps, b.req.steps == 1 ? "" : "s");
    if (ok && strstr(stages, "image")) ok = run_stage(what, st_image, &b, reps);
    if (ok && op_compute() == OP_BF16) { /* the same image in float32 and bf16 */
        sdc_image *i32 = NULL, *i16 = NULL;
        int n32 = 0, n16 = 0;
        op_set_compute(OP_F32);
        sdc_status s1 = sdc_generate(b.m, &b.req, &i32, &n32);
        op_set_compute(OP_BF16);
        sdc_status s2 = s1 ? s1 : sdc_generate(b.m, &b.req, &i16, &n16);
        if (!s1 && !s2 && n32 == 1 && n16 == 1) {
            int64_t n = (int64_t)i32->width * i32->height * 3;
            double sum = 0, sq = 0;
            int mx = 0;
            for (int64_t i = 0; i < n; i++) {
                int d = abs((int)i32->rgb[i] - (int)i16->rgb[i]);
                sum += d, sq += (double)d * d, mx = d > mx ? d : mx;
            }
            double mse = sq / (double)n;
            printf("bf16 vs float32 image (%s): mean |diff| %.2f levels, max %d, PSNR %.1f dB\n", what, sum / (double)n,
                   mx, mse > 0 ? 10.0 * log10(255.0 * 255.0 / mse) : 99.0);
        }
        if (i32) sdc_images_free(i32, n32);
        if (i16) sdc_images_free(i16, n16);
    }
    double rss = bench_peak_rss_mib();
    printf("peak RSS %.0f MiB = %.2f x the weight files\n", rss, rss * 1048576.0 / wbytes);
    text_cond_free(&b.tc);
    free(b.x), free(b.out), free(b.ctx2), free(b.pooled2), free(b.time_ids);
    sdc_model_free(b.m);
    return ok ? 0 : 1;
}
