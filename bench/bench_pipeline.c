/* bench_pipeline.c - the stages of text-to-image on a model folder (a real
 * one, or a full-size random one from make_random_model): text encoders
 * (one prompt), one UNet forward without CFG (batch 1) and with CFG (batch
 * 2), VAE decode, TAESD decode (--taesd DIR: the image stage then decodes
 * with it too, as sdc generate --taesd does), a whole image through
 * sdc_generate, and with --batch N a
 * UNet step of N images and N whole images (throughput, images/s). Per
 * stage: best wall seconds of --reps, GFLOP (GEMM-backed ops as counted by
 * op_flops, the same on every device), GFLOP/s, share of the GEMM ceiling
 * measured in the same run, and the peak RSS so far against the size of the
 * weight files. The ceiling: on the CPU this machine's single-precision GEMM
 * peak (OpenBLAS and sdc's own GEMM, 2048^3, the better of the two); with
 * --device cuda a cuBLAS f16 GEMM 8192^3 (f32 accumulation) on the card.
 * Device work is asynchronous: every clock stops after op_sync(g_cx).
 * --profile 1 on the CPU profiles the repetitions themselves; on a device it
 * adds one repetition in which every op is waited for (ops.c), so that each
 * kind's device time can be measured, and prints it beside the
 * unsynchronised time, with the share spent outside GEMMs and attention. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/ops.h"
#include "bench_common.h"
#ifdef SDC_HAVE_CUDA
#include "backend/cuda/cuda_ops.h"
#endif
#include "family/model.h"
#include "nn/unet_runner.h"
#include "family/family.h"

static void usage(void) {
    fprintf(stderr, "usage: bench_pipeline -m MODEL_DIR [-W W] [-H H] [--reps 2] [--threads N] [--profile 1]\n"
                    "         [--stages text,unet,cfg,vae,taesd,image,batch,images] [--steps N] [--guidance G]\n"
                    "         [--taesd DIR] [--random-weights 1]\n"
                    "         [--scheduler NAME] [--timestep-spacing S] [--prompt TEXT] [--device cpu|cuda]\n"
                    "         [--dtype f32|bf16|f16] [--weights q8] [--batch N] [--malloc tuned|default] [--graphs 1|0]\n"
                    "  --weights q8 loads the UNet's and text encoders' weights as int8 (sdc_load_options.weights)\n"
                    "    and also generates the image with float32 weights and prints their difference\n"
                    "  --device cuda runs on the first NVIDIA GPU (UNet and text encoders in --dtype, default f16)\n"
                    "  --dtype bf16 on the CPU also generates the image in both precisions and prints their difference\n"
                    "  --batch N adds the stages batch (one UNet step of N images, with CFG 2N rows when the\n"
                    "    guidance is > 1) and images (N images through sdc_generate), reported in images/s\n"
                    "  --malloc tuned (the default) calls op_tune_allocator() first\n"
                    "  --graphs 0 runs UNet steps op by op; 1 (the default) replays a step graph where the device\n"
                    "    has them (cuda), as sdc generate does (SDC_STEP_GRAPHS=0 turns them off there)\n"
                    "  --taesd DIR loads a TAESD (folder or .safetensors) and adds the stage taesd (its decode of\n"
                    "    one image); the image stages then decode with it\n"
                    "  --random-weights 1: MODEL_DIR is a diffusers folder of configs (e.g. ../shared/configs/sd15)\n"
                    "    and the weights are made up (sdc_load_options.random_weights)\n");
}

static double g_peak;      /* GFLOP/s of the ceiling */
static double g_last_best; /* best seconds of the last stage run */
static int g_profile, g_device;
static int g_graphs = 1;   /* --graphs: UNet steps through step graphs where the device has them */
static int g_in_profile;   /* the profiled device run is in progress */
static op_ctx *g_cx;       /* the model's backend context */

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

/* peak device memory since the last device_peak_reset, MiB (0 on the CPU) */
static double device_peak_mib(void) {
#ifdef SDC_HAVE_CUDA
    if (g_device == OP_DEV_CUDA) return (double)cu_mem_peak_used() / 1048576.0;
#endif
    return 0;
}
static void device_peak_reset(void) {
#ifdef SDC_HAVE_CUDA
    if (g_device == OP_DEV_CUDA) cu_mem_peak_reset();
#endif
}

static void report(const char *stage, double best, double flops, double cpu) {
    if (g_device == OP_DEV_CPU)
        printf("%-26s %8.3f s %9.1f GFLOP %8.1f GFLOP/s %5.1f%% of peak  (%.2f CPU s)  peak RSS %6.0f MiB\n", stage,
               best, flops / 1e9, flops / best / 1e9, 100.0 * flops / best / 1e9 / g_peak, cpu, bench_peak_rss_mib());
    else /* same columns in device units; "of ceiling" = of the f16 GEMM measured above; "dev": the
          * stage's peak device memory (weights, context and workspaces included) */
        printf("%-26s %9.2f ms %9.1f GFLOP %7.1f TFLOP/s %5.1f%% of ceiling  (%.2f CPU s)  peak RSS %6.0f MiB  "
               "dev %6.0f MiB\n",
               stage, best * 1e3, flops / 1e9, flops / best / 1e12, 100.0 * flops / best / 1e9 / g_peak, cpu,
               bench_peak_rss_mib(), device_peak_mib());
    fflush(stdout);
}

typedef sdc_status (*stage_fn)(void *ctx);

/* One repetition, timed to the end of the device work it queued. */
static sdc_status timed(stage_fn f, void *ctx, double *t, double *c) {
    double t0 = bench_now(), c0 = bench_cpu_seconds();
    sdc_status st = f(ctx);
    if (!st) st = op_sync(g_cx);
    *t = bench_now() - t0, *c = bench_cpu_seconds() - c0;
    return st;
}

/* A device run with every op waited for (op_profile_enable: see ops.c):
 * per-kind device seconds, and the share of the step outside the GEMM-backed
 * ops and attention, against the synchronised total and against the
 * unsynchronised best time (the real step time). */
static int device_profile(const char *name, stage_fn f, void *ctx, double unsynced) {
    double t, c;
    op_flops_reset();
    op_profile_reset();
    op_profile_enable(1);
    g_in_profile = 1;
    sdc_status st = timed(f, ctx, &t, &c);
    g_in_profile = 0;
    op_profile_enable(0);
    if (st) {
        fprintf(stderr, "bench_pipeline: %s (profiled run): %s\n", name, sdc_last_error());
        return 0;
    }
    printf("  %s, one extra run with a device sync after every op (small ops and launches look\n"
           "  slower than in the unsynchronised run; '(other)' = host work, uploads, downloads):\n", name);
    bench_print_profile(t, c);
    const char *kind;
    double s, fl, gemm = 0;
    long calls, ncalls = 0;
    for (int i = 0; op_profile_get(i, &kind, &s, &fl, &calls); i++) {
        ncalls += calls;
        if (!strcmp(kind, "linear") || !strncmp(kind, "conv", 4) || !strcmp(kind, "attention")) gemm += s;
    }
    printf("  %s: synchronised %.2f ms (%ld ops), unsynchronised %.2f ms; GEMM/conv/attention %.2f ms\n", name,
           t * 1e3, ncalls, unsynced * 1e3, gemm * 1e3);
    printf("  outside GEMMs/attention (norms, activations, adds, copies, launches, host): %.1f%% of the synchronised "
           "run, %.1f%% of the unsynchronised time\n",
           100.0 * (t - gemm) / t, unsynced > gemm ? 100.0 * (unsynced - gemm) / unsynced : 0.0);
    return 1;
}

static int run_stage(const char *name, stage_fn f, void *ctx, int reps) {
    double best = 1e30, flops = 0, bcpu = 0;
    device_peak_reset();
    int prof_reps = g_profile && g_device == OP_DEV_CPU;
    for (int r = 0; r < reps; r++) {
        op_flops_reset();
        op_profile_reset();
        double t, c;
        sdc_status st = timed(f, ctx, &t, &c);
        if (st) {
            fprintf(stderr, "bench_pipeline: %s: %s\n", name, sdc_last_error());
            return 0;
        }
        if (t < best) best = t, flops = op_flops(), bcpu = c;
        if (prof_reps && r == reps - 1) {
            printf("  %s, last repetition:\n", name);
            bench_print_profile(t, c);
        }
    }
    if (g_profile && g_device != OP_DEV_CPU && !device_profile(name, f, ctx, best)) return 0;
    report(name, best, flops, bcpu);
    g_last_best = best;
    return 1;
}

/* "a,b,c" contains the stage name s as a whole item */
static int has_stage(const char *list, const char *s) {
    size_t n = strlen(s);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, s, n)) return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

typedef struct {
    sdc_model *m;
    const char *prompt;
    text_cond tc;
    int h, w, W, H;
    int nbatch, cfg; /* --batch N, and whether its UNet step runs 2N rows (CFG) */
    /* host buffers for up to max(2, 2N) latents / contexts / pooled / time ids */
    float *x, *out, *ctx2, *pooled2, *time_ids;
    sdc_request req, breq; /* breq: the same with N images per prompt */
#define MAX_RUNNERS 6
    unet_runner *run[MAX_RUNNERS]; /* per UNet batch size, with and without graphs */
    int run_rows[MAX_RUNNERS], run_graphs[MAX_RUNNERS], nrun;
} bench_ctx;

static sdc_status st_text(void *p) {
    bench_ctx *b = p;
    text_cond tc;
    sdc_status st = b->m->fam->encode(b->m, &b->prompt, 1, 0, &tc);
    if (!st) text_cond_free(&tc);
    return st;
}

#define MAX_ROWS 128 /* UNet batch rows: 2 x --batch at most */

/* The UNet step as sdc_generate runs it (unet_runner: inputs resident, a
 * step graph where the device has them, unless --graphs 0); the profiled
 * device run goes op by op (a graph launch cannot be timed per op). One
 * runner per batch size and mode, made and warmed (a direct step, then the
 * capture) by prepare_unet before the stage's clock runs. */
static sdc_status runner_for(bench_ctx *b, int B, int graphs, unet_runner **out) {
    for (int i = 0; i < b->nrun; i++)
        if (b->run_rows[i] == B && b->run_graphs[i] == graphs) {
            *out = b->run[i];
            return SDC_OK;
        }
    if (b->nrun == MAX_RUNNERS) return sdc_fail(SDC_ERR_ARG, "too many UNet batch shapes");
    unet_extra ex = {.text_embeds = b->pooled2, .time_ids = b->time_ids};
    SDC_TRY(unet_runner_create(out, b->m->unet, B, b->h, b->w, b->ctx2, b->tc.T, &ex, graphs));
    b->run[b->nrun] = *out, b->run_rows[b->nrun] = B, b->run_graphs[b->nrun] = graphs;
    b->nrun++;
    return SDC_OK;
}

static sdc_status unet_call(bench_ctx *b, int B) {
    float t[MAX_ROWS];
    for (int i = 0; i < B; i++) t[i] = 999.0f;
    unet_runner *r;
    op_set_precision(b->m->cx, b->m->unet_dt); /* as generate.c does before the UNet (matters on a device) */
    SDC_TRY(runner_for(b, B, g_graphs && !g_in_profile, &r));
    return unet_runner_step(r, b->x, t, b->out);
}

static int prepare_unet(bench_ctx *b, int B) {
    unet_runner *r;
    sdc_status st = runner_for(b, B, g_graphs, &r);
    for (int k = 0; !st && k < 2; k++) st = unet_call(b, B);
    if (!st) st = op_sync(g_cx);
    if (st) {
        fprintf(stderr, "bench_pipeline: UNet with %d rows: %s\n", B, sdc_last_error());
        return 0;
    }
    const char *note = unet_runner_graph_note(r);
    printf("UNet steps of %d row%s: %s%s\n", B, B == 1 ? "" : "s",
           unet_runner_graph_steps(r) ? "replayed from a step graph (captured after one direct step)"
                                      : "run op by op",
           !g_graphs ? " (--graphs 0)" : *note && g_device != OP_DEV_CPU ? " - " : "");
    if (g_graphs && *note && g_device != OP_DEV_CPU) printf("  %s\n", note);
    return 1;
}
static sdc_status st_unet(void *p) { return unet_call(p, 1); }
static sdc_status st_cfg(void *p) { return unet_call(p, 2); }
static sdc_status st_batch(void *p) {
    bench_ctx *b = p;
    return unet_call(b, b->cfg ? 2 * b->nbatch : b->nbatch);
}

static sdc_status st_vae(void *p) {
    bench_ctx *b = p;
    float *img = malloc((size_t)3 * b->W * b->H * sizeof(float));
    if (!img) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    op_set_precision(b->m->cx, b->m->vae_dt);
    sdc_status st = vae_decode(b->m->vae, b->x, 1, b->h, b->w, img);
    free(img);
    return st;
}

static sdc_status st_taesd(void *p) {
    bench_ctx *b = p;
    float *img = malloc((size_t)3 * b->W * b->H * sizeof(float));
    if (!img) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    op_set_precision(b->m->cx, b->m->taesd_dt);
    sdc_status st = taesd_decode(b->m->taesd, b->x, 1, b->h, b->w, img);
    free(img);
    return st;
}

static sdc_status generate(sdc_model *m, const sdc_request *r) {
    sdc_image *imgs;
    int n;
    sdc_status st = sdc_generate(m, r, &imgs, &n);
    if (!st) sdc_images_free(imgs, n);
    return st;
}
static sdc_status st_image(void *p) { return generate(((bench_ctx *)p)->m, &((bench_ctx *)p)->req); }
static sdc_status st_images(void *p) { return generate(((bench_ctx *)p)->m, &((bench_ctx *)p)->breq); }

/* The practical ceiling on a CUDA device: a large cuBLAS GEMM in the
 * activation precision (f16, or bf16 with --dtype bf16; f32 runs are still
 * compared with the f16 ceiling), GFLOP/s; 0 when it cannot be measured. */
static double device_ceiling(op_dtype dt) {
#ifdef SDC_HAVE_CUDA
    const int n = 8192;
    const int64_t chunk = 1 << 22;
    cu_dtype ct = dt == OP_BF16 ? CU_BF16 : CU_F16;
    void *a = NULL, *bm = NULL, *c = NULL, *stg = NULL;
    float *h = malloc((size_t)chunk * sizeof(float));
    double best = 0;
    size_t bytes = (size_t)n * n * cu_dtype_size(ct);
    if (h && !cu_malloc(&a, bytes) && !cu_malloc(&bm, bytes) && !cu_malloc(&c, bytes) &&
        !cu_malloc(&stg, (size_t)chunk * sizeof(float))) {
        for (int64_t i = 0; i < chunk; i++) h[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
        sdc_status st = cu_upload(stg, h, (size_t)chunk * sizeof(float));
        for (int64_t o = 0; !st && o < (int64_t)n * n; o += chunk) {
            st = cu_convert((char *)a + o * cu_dtype_size(ct), ct, stg, CU_F32, chunk);
            if (!st) st = cu_convert((char *)bm + o * cu_dtype_size(ct), ct, stg, CU_F32, chunk);
        }
        for (int w = 0; !st && w < 2; w++) st = cu_gemm_reference(a, bm, c, ct, n, n, n); /* warm-up */
        if (!st) st = cu_sync();
        for (int r = 0; !st && r < 3; r++) { /* best of 3 runs of 5 back-to-back GEMMs */
            double t0 = bench_now();
            for (int i = 0; !st && i < 5; i++) st = cu_gemm_reference(a, bm, c, ct, n, n, n);
            if (!st) st = cu_sync();
            double g = 5 * 2.0 * n * (double)n * n / (bench_now() - t0) / 1e9;
            if (!st && g > best) best = g;
        }
        if (st) fprintf(stderr, "bench_pipeline: GEMM ceiling: %s\n", sdc_last_error()), best = 0;
    }
    free(h);
    cu_free(a), cu_free(bm), cu_free(c), cu_free(stg);
    return best;
#else
    (void)dt;
    return 0;
#endif
}

int main(int argc, char **argv) {
    const char *model = NULL, *stages = NULL, *taesd = NULL;
    int random_weights = 0;
    bench_ctx b = {.prompt = "a cinematic shot of a kitten wearing an intricate italian knight's armor"};
    int reps = 2, threads = 0, bf16 = 0, tune_malloc = 1;
    const char *device = "cpu", *dtype = NULL, *wformat = NULL;
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
        else if (!strcmp(a, "--taesd")) taesd = v;
        else if (!strcmp(a, "--random-weights")) random_weights = atoi(v);
        else if (!strcmp(a, "--steps")) b.req.steps = atoi(v);
        else if (!strcmp(a, "--guidance")) b.req.guidance = (float)atof(v);
        else if (!strcmp(a, "--scheduler")) b.req.scheduler = v;
        else if (!strcmp(a, "--timestep-spacing")) b.req.timestep_spacing = v;
        else if (!strcmp(a, "--prompt")) b.prompt = v;
        else if (!strcmp(a, "--dtype") && (!strcmp(v, "bf16") || !strcmp(v, "f32") || !strcmp(v, "f16"))) dtype = v;
        else if (!strcmp(a, "--device") && (!strcmp(v, "cpu") || !strcmp(v, "cuda"))) device = v;
        else if (!strcmp(a, "--weights") && !strcmp(v, "q8")) wformat = v;
        else if (!strcmp(a, "--batch")) b.nbatch = atoi(v);
        else if (!strcmp(a, "--graphs") && (!strcmp(v, "0") || !strcmp(v, "1"))) g_graphs = atoi(v);
        else if (!strcmp(a, "--malloc") && (!strcmp(v, "tuned") || !strcmp(v, "default"))) tune_malloc = !strcmp(v, "tuned");
        else return usage(), 2;
        i++;
    }
    if (!model || reps < 1 || b.nbatch < 0 || 2 * b.nbatch > MAX_ROWS) return usage(), 2;
    if (!stages) stages = taesd ? "text,unet,cfg,vae,taesd,image" : "text,unet,cfg,vae,image";
    g_device = !strcmp(device, "cuda") ? OP_DEV_CUDA : OP_DEV_CPU;
    if (g_device == OP_DEV_CPU && dtype && !strcmp(dtype, "f16")) {
        fprintf(stderr, "bench_pipeline: --dtype f16 needs --device cuda; the CPU computes in f32 or bf16\n");
        return 2;
    }
    bf16 = g_device == OP_DEV_CPU && dtype && !strcmp(dtype, "bf16");
    if (tune_malloc) op_tune_allocator();
    /* the CPU's bf16 is switched on below as before (a warning, not a failed load, without AVX512_BF16) */
    sdc_load_options lo = {.threads = threads, .device = device,
                           .dtype = g_device == OP_DEV_CPU ? NULL : dtype ? dtype : "f16", .taesd = taesd,
                           .random_weights = random_weights, .weights = wformat};
    double t0 = bench_now();
    if (sdc_model_load(&b.m, model, &lo)) {
        fprintf(stderr, "bench_pipeline: %s\n", sdc_last_error());
        return 1;
    }
    g_cx = b.m->cx;
    double load_s = bench_now() - t0, wbytes = weight_file_bytes(model);
    op_profile_enable(g_profile && g_device == OP_DEV_CPU); /* a device profiles one extra run per stage */
    sdc_model_info info;
    sdc_model_get_info(b.m, &info);
    if (!b.W) b.W = info.default_width;
    if (!b.H) b.H = info.default_height;
    printf("model %s (%s): weight files %.2f GB, loaded in %.1f s, RSS after load %.0f MiB\n", model, info.family,
           wbytes / 1e9, load_s, bench_peak_rss_mib());
    if (bf16) {
        op_set_compute(b.m->cx, OP_BF16);
        if (op_compute(b.m->cx) != OP_BF16) fprintf(stderr, "bench_pipeline: no AVX512_BF16 on this CPU: running float32\n");
    }
#ifdef SDC_HAVE_CUDA
    const char *gpu = g_device == OP_DEV_CUDA ? cu_device_name() : "";
#else
    const char *gpu = "";
#endif
    printf("device: %s%s%s%s\n", op_ctx_device_name(b.m->cx), *gpu ? " (" : "", gpu, *gpu ? ")" : "");
    if (g_device == OP_DEV_CPU) {
        printf("threads: %d, image %dx%d, compute %s, allocator %s\n", op_ctx_threads(b.m->cx), b.W, b.H,
               op_compute(b.m->cx) == OP_BF16 ? "bf16" : "f32", tune_malloc ? "tuned (op_tune_allocator)" : "default");
        double blas = bench_gemm_peak(2048, 3), own = bench_own_gemm_peak(b.m->cx, 2048, 3);
        g_peak = blas > own ? blas : own;
        printf("SGEMM 2048^3: OpenBLAS %.1f GFLOP/s, sdc %.1f GFLOP/s (peak used for shares: %.1f)\n", blas, own,
               g_peak);
        double pk[BENCH_NPEAKS];
        bench_arith_peaks(op_ctx_threads(b.m->cx), pk);
        printf("arithmetic peaks (registers only):");
        for (int k = 0; k < BENCH_NPEAKS; k++)
            if (pk[k] > 0) printf("%s %s %.1f G%s/s", k ? "," : "", bench_peak_name(k), pk[k], k >= 2 ? "OP" : "FLOP");
        printf("\n");
        if (wformat) printf("weights: %s (UNet and text encoders int8; shares are of the fp32 SGEMM peak)\n", wformat);
    } else {
        printf("image %dx%d, UNet/text encoders in %s, VAE in %s, host threads %d\n", b.W, b.H, lo.dtype,
               b.m->vae_dt == OP_F32 ? "f32" : lo.dtype, op_ctx_threads(b.m->cx));
#ifdef SDC_HAVE_CUDA
        printf("convolutions: %s\n", cu_cudnn_status());
#endif
        g_peak = device_ceiling(b.m->unet_dt);
        printf("ceiling: cuBLAS %s GEMM 8192^3 (f32 accumulate) %.1f TFLOP/s\n", b.m->unet_dt == OP_BF16 ? "bf16" : "f16",
               g_peak / 1e3);
        if (g_peak <= 0) g_peak = 1e30; /* shares print as 0 rather than dividing by 0 */
    }

    b.h = b.H / b.m->vae_scale;
    b.w = b.W / b.m->vae_scale;
    if (b.m->fam->encode(b.m, &b.prompt, 1, 0, &b.tc)) {
        fprintf(stderr, "bench_pipeline: %s\n", sdc_last_error());
        return 1;
    }
    int C = unet_get_config(b.m->unet)->in_channels;
    float guidance = b.req.guidance < 0 ? info.default_guidance : b.req.guidance;
    b.cfg = guidance > 1.0f;
    int rows = 2 * b.nbatch > 2 ? 2 * b.nbatch : 2; /* batch rows the host buffers hold */
    int64_t nx = (int64_t)rows * C * b.h * b.w, nctx = (int64_t)b.tc.T * b.tc.D;
    b.x = malloc((size_t)nx * sizeof(float));
    b.out = malloc((size_t)nx * sizeof(float));
    b.ctx2 = malloc((size_t)rows * nctx * sizeof(float));
    b.pooled2 = calloc((size_t)rows * (b.tc.P ? b.tc.P : 1), sizeof(float));
    b.time_ids = malloc((size_t)rows * 6 * sizeof(float));
    if (!b.x || !b.out || !b.ctx2 || !b.pooled2 || !b.time_ids) return fprintf(stderr, "out of memory\n"), 1;
    for (int64_t i = 0; i < nx; i++) b.x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    for (int i = 0; i < rows; i++) {
        memcpy(b.ctx2 + i * nctx, b.tc.embeds, (size_t)nctx * sizeof(float));
        if (b.tc.P) memcpy(b.pooled2 + i * b.tc.P, b.tc.pooled, (size_t)b.tc.P * sizeof(float));
    }
    for (int i = 0; i < rows; i++) {
        float *ti = b.time_ids + 6 * i;
        ti[0] = ti[4] = (float)b.H, ti[1] = ti[5] = (float)b.W, ti[2] = ti[3] = 0.0f;
    }
    b.req.prompts = &b.prompt;
    b.req.nprompts = 1;
    b.req.width = b.W;
    b.req.height = b.H;
    b.req.seed = 1;
    b.breq = b.req;
    b.breq.batch = b.nbatch;

    int ok = 1;
    char what[128];
    if (ok && has_stage(stages, "text"))
        ok = run_stage(b.m->ntext > 1 ? "text encoders (2)" : "text encoder", st_text, &b, reps);
    if (ok && has_stage(stages, "unet") && (ok = prepare_unet(&b, 1)))
        ok = run_stage("UNet forward, batch 1", st_unet, &b, reps);
    if (ok && has_stage(stages, "cfg") && (ok = prepare_unet(&b, 2)))
        ok = run_stage("UNet step with CFG (B=2)", st_cfg, &b, reps);
    if (ok && has_stage(stages, "vae")) ok = run_stage("VAE decode", st_vae, &b, reps);
    if (ok && has_stage(stages, "taesd") && !b.m->taesd) fprintf(stderr, "bench_pipeline: stage taesd needs --taesd DIR; skipped\n");
    else if (ok && has_stage(stages, "taesd")) ok = run_stage("TAESD decode", st_taesd, &b, reps);
    snprintf(what, sizeof what, "image, %d step%s", b.req.steps, b.req.steps == 1 ? "" : "s");
    if (ok && has_stage(stages, "image")) ok = run_stage(what, st_image, &b, reps);
    int batch_stages = b.nbatch > 0 && (has_stage(stages, "batch") || has_stage(stages, "images"));
    if (!b.nbatch && (has_stage(stages, "batch") || has_stage(stages, "images")))
        fprintf(stderr, "bench_pipeline: stages batch/images need --batch N; skipped\n");
    /* throughput: the best time of N images -> images/s */
    if (ok && batch_stages && has_stage(stages, "batch")) {
        snprintf(what, sizeof what, "UNet step, %d img%s", b.nbatch, b.cfg ? " +CFG" : "");
        ok = prepare_unet(&b, b.cfg ? 2 * b.nbatch : b.nbatch);
        if (ok) ok = run_stage(what, st_batch, &b, reps);
        if (ok)
            printf("throughput: %.2f images/s per UNet step (batch %d%s, %dx%d)\n", b.nbatch / g_last_best, b.nbatch,
                   b.cfg ? ", CFG: 2 rows each" : "", b.W, b.H);
    }
    if (ok && batch_stages && has_stage(stages, "images")) {
        snprintf(what, sizeof what, "%d images, %d step%s", b.nbatch, b.req.steps, b.req.steps == 1 ? "" : "s");
        ok = run_stage(what, st_images, &b, reps);
        if (ok)
            printf("throughput: %.2f images/s end to end (batch %d, %d step%s, guidance %g, %dx%d)\n",
                   b.nbatch / g_last_best, b.nbatch, b.req.steps, b.req.steps == 1 ? "" : "s", guidance, b.W, b.H);
    }
    if (ok && op_compute(b.m->cx) == OP_BF16) { /* the same image in float32 and bf16 */
        sdc_image *i32 = NULL, *i16 = NULL;
        int n32 = 0, n16 = 0;
        op_set_compute(b.m->cx, OP_F32);
        sdc_status s1 = sdc_generate(b.m, &b.req, &i32, &n32);
        op_set_compute(b.m->cx, OP_BF16);
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
    if (ok && wformat) { /* the same image with the weights as stored (after the RSS above: a second model) */
        sdc_load_options lf = lo;
        lf.weights = NULL;
        sdc_model *mf = NULL;
        sdc_image *iq = NULL, *i32 = NULL;
        int nq = 0, n32 = 0;
        if (!sdc_generate(b.m, &b.req, &iq, &nq) && !sdc_model_load(&mf, model, &lf)) {
            if (op_compute(b.m->cx) == OP_BF16) op_set_compute(mf->cx, OP_BF16);
            if (!sdc_generate(mf, &b.req, &i32, &n32) && nq == 1 && n32 == 1) {
                int64_t n = (int64_t)iq->width * iq->height * 3;
                double sum = 0, sq = 0;
                int mx = 0;
                for (int64_t i = 0; i < n; i++) {
                    int d = abs((int)i32->rgb[i] - (int)iq->rgb[i]);
                    sum += d, sq += (double)d * d, mx = d > mx ? d : mx;
                }
                double mse = sq / (double)n;
                printf("q8 vs float weights image (%s, compute %s): mean |diff| %.2f levels, max %d, PSNR %.1f dB\n",
                       what, op_compute(b.m->cx) == OP_BF16 ? "bf16" : "f32", sum / (double)n, mx,
                       mse > 0 ? 10.0 * log10(255.0 * 255.0 / mse) : 99.0);
            }
        }
        sdc_images_free(iq, nq);
        sdc_images_free(i32, n32);
        sdc_model_free(mf);
    }
#ifdef SDC_HAVE_CUDA
    if (g_device == OP_DEV_CUDA)
        printf("peak device memory in use %.0f MiB (driver's count: CUDA context and cuBLAS workspaces included)\n",
               (double)cu_mem_peak_used() / 1048576.0);
#endif
    text_cond_free(&b.tc);
    for (int i = 0; i < b.nrun; i++) unet_runner_free(b.run[i]);
    free(b.x), free(b.out), free(b.ctx2), free(b.pooled2), free(b.time_ids);
    sdc_model_free(b.m);
    return ok ? 0 : 1;
}
