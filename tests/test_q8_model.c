/* test_q8_model.c - --weights q8 on whole models: the trained demo model's
 * cases stay within a PSNR bound of diffusers' float32 images, every UNet
 * and text encoder layer runs int8 (the VAE and embeddings do not), the float
 * pages of the files leave memory, LoRAs are fused before quantising, and
 * the devices without int8 kernels refuse it with a message. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/q8.h"
#include "family/model.h"
#include "harness.h"
#include "io/json.h"
#include "io/png_io.h"
#include "nn/weights.h"
#include "sdc.h"
#include "text/clip_text_model.h"

/* Measured on the four demo cases, q8 against diffusers' float32 PNGs (which
 * sdc's float32 images equal, but for one level in one pixel): 35.4-46.2 dB,
 * max difference 12-89 levels with the AVX512-VNNI kernels (SDC_GEMM_ISA=
 * generic, whose float kernels also sum in another order: 36.9-44.7 dB). The
 * bound leaves 4.4 dB. */
#define DEMO_Q8_MIN_PSNR 31.0

static double psnr(const uint8_t *a, const uint8_t *b, int64_t n, int *maxdiff) {
    double se = 0;
    *maxdiff = 0;
    for (int64_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        se += (double)d * d;
        if (d > *maxdiff) *maxdiff = d;
    }
    return se ? 10.0 * log10(255.0 * 255.0 / (se / (double)n)) : INFINITY;
}

static const char *demo_sched(const char *cls) {
    return !strcmp(cls, "PNDMScheduler")                     ? "pndm"
           : !strcmp(cls, "DDIMScheduler")                   ? "ddim"
           : !strcmp(cls, "EulerAncestralDiscreteScheduler") ? "euler_a"
                                                             : NULL;
}

/* Generate a demo case with m; PSNR against its golden PNG (-1 on a setup error, after CHECK-style failure) */
static double demo_case_psnr(sdc_model *m, const char *name, int *maxdiff) {
    char p[600];
    snprintf(p, sizeof p, "demo-model/cases/%s.json", name);
    const char *jp = shared_path(p);
    cJSON *j;
    if (!jp || json_load(jp, &j)) return -1;
    sdc_request r;
    sdc_request_init(&r);
    const char *prompt = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "prompt"), 0)->valuestring;
    r.prompts = &prompt;
    r.nprompts = 1;
    r.seed = (uint64_t)cJSON_GetArrayItem(cJSON_GetObjectItem(j, "seeds"), 0)->valuedouble;
    r.steps = cJSON_GetObjectItem(j, "num_inference_steps")->valueint;
    r.guidance = (float)cJSON_GetObjectItem(j, "guidance_scale")->valuedouble;
    r.width = cJSON_GetObjectItem(j, "width")->valueint;
    r.height = cJSON_GetObjectItem(j, "height")->valueint;
    r.scheduler = demo_sched(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "scheduler"), "class")->valuestring);
    sdc_image *img = NULL;
    int n = 0;
    double v = -1;
    snprintf(p, sizeof p, "demo-model/cases/%s",
             cJSON_GetArrayItem(cJSON_GetObjectItem(j, "images_png"), 0)->valuestring);
    uint8_t *gold = NULL;
    int w, h;
    if (r.scheduler && !sdc_generate(m, &r, &img, &n) && n == 1 && !png_read_rgb(shared_path(p), &gold, &w, &h, NULL) &&
        w == img->width && h == img->height)
        v = psnr(img->rgb, gold, (int64_t)w * h * 3, maxdiff);
    free(gold);
    sdc_images_free(img, n);
    cJSON_Delete(j);
    return v;
}

TEST(q8_demo_model_psnr) {
    const char *dir = shared_path("demo-model/sdc-shapes-64");
    FILE *f = dir ? fopen(shared_path("demo-model/sdc-shapes-64/model_index.json"), "r") : NULL;
    if (!f) SKIP("../shared/demo-model not present");
    fclose(f);
    static const char *cases[] = {"demo-red-circle", "demo-star-ddim", "demo-above-euler-a", "demo-two-shapes"};
    sdc_load_options lo = {.threads = 1, .weights = "q8"};
    sdc_model *m;
    CHECK_OK(sdc_model_load(&m, dir, &lo));
    for (int c = 0; c < 4; c++) {
        int maxdiff = 0;
        double v = demo_case_psnr(m, cases[c], &maxdiff);
        if (getenv("SDC_TEST_VERBOSE")) fprintf(stderr, "  %s: q8 PSNR %.2f dB, max diff %d\n", cases[c], v, maxdiff);
        if (v < DEMO_Q8_MIN_PSNR) sdc_model_free(m);
        CHECK(v >= DEMO_Q8_MIN_PSNR,
              "%s: q8 image PSNR %.2f dB against the float32 golden (bound %.1f; -1: setup failed: %s)", cases[c], v,
              DEMO_Q8_MIN_PSNR, sdc_last_error());
    }
    sdc_model_free(m);
}

/* the parameter slots of a component, by dtype */
static void count_slots(const weights *w, int *layers, int *q8, int *q8_not_layer) {
    *layers = *q8 = *q8_not_layer = 0;
    for (int i = 0; i < w->nslots; i++) {
        int is_q8 = w->slots[i].dtype && *w->slots[i].dtype == OP_Q8;
        *layers += w->slots[i].rows > 0;
        *q8 += is_q8;
        *q8_not_layer += is_q8 && !w->slots[i].rows;
    }
}

/* kB of the process's resident set inside [p, p + n) (one mapping), from /proc/self/smaps */
static long mapping_rss_kb(const void *p) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    int in = 0;
    long kb = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            continue;
        }
        if (in && sscanf(line, "Rss: %ld kB", &kb) == 1) break;
    }
    fclose(f);
    return kb;
}

/* after the first denoising step (the UNet's pages are handed back only
 * before the last image is decoded): the RSS of the UNet file's mapping */
typedef struct {
    const void *map;
    long kb;
} rss_probe;
static int probe_rss(void *ctx, int step, int total) {
    rss_probe *p = ctx;
    if (step == 1) p->kb = mapping_rss_kb(p->map);
    return 0;
}

static sdc_status two_steps(sdc_model *m, rss_probe *probe) {
    const char *prompt = "a photo of a cat";
    sdc_request r;
    sdc_request_init(&r);
    r.prompts = &prompt;
    r.nprompts = 1;
    r.steps = 2;
    r.seed = 1;
    r.progress = probe_rss;
    r.progress_ctx = probe;
    sdc_image *img = NULL;
    int n = 0;
    sdc_status st = sdc_generate(m, &r, &img, &n);
    sdc_images_free(img, n);
    return st;
}

TEST(q8_model_layers_int8_and_memory) {
    sdc_model *m, *f;
    sdc_load_options q = {.threads = 1, .weights = "q8"}, p = {.threads = 1};
    CHECK_OK(sdc_model_load(&m, fixture_path("models/tiny-sd"), &q));
    CHECK_OK(sdc_model_load(&f, fixture_path("models/tiny-sd"), &p));
    int layers, n8, bad;
    weights *wu = unet_weights(m->unet), *wt = clip_text_weights(m->te[0]), *wv = vae_weights(m->vae);
    count_slots(wu, &layers, &n8, &bad);
    CHECK(layers > 50 && n8 == layers && !bad, "UNet: %d layer weights, %d int8, %d int8 others", layers, n8, bad);
    count_slots(wt, &layers, &n8, &bad);
    CHECK(layers > 10 && n8 == layers && !bad, "text encoder: %d layer weights, %d int8, %d others", layers, n8, bad);
    count_slots(wv, &layers, &n8, &bad);
    CHECK(!n8, "the VAE has %d int8 weights", n8);
    const q8_matrix *cin = NULL;
    for (int i = 0; i < wu->nslots; i++)
        if (!strcmp(wu->slots[i].name, "conv_in.weight")) cin = *wu->slots[i].slot;
    CHECK(cin && cin->rows == 32 && cin->cols == 4 * 9, "conv_in as a [32][36] int8 matrix");
    /* quantising read every layer weight of the file and handed its pages
     * back: what is resident after the load is the int8 copy. (Running, the
     * biases and norms come back with the kernel's fault-around, 64 KiB per
     * fault: much of a tiny file, a few tens of MB of a real one.) The float
     * model, running, has its UNet file resident: the measure works. */
    long kq = mapping_rss_kb(unet_weights(m->unet)->files[0].map);
    rss_probe pf = {unet_weights(f->unet)->files[0].map, -1};
    CHECK_OK(two_steps(f, &pf));
    long kf = pf.kb, file_kb = (long)(unet_weights(m->unet)->files[0].map_size >> 10);
    sdc_model_free(m);
    sdc_model_free(f);
    CHECK(kf > file_kb / 2, "float32 model: %ld kB of its %ld kB UNet file resident (the measure is broken?)", kf,
          file_kb);
    CHECK(kq >= 0 && kq < file_kb / 8, "q8 model: %ld kB of its %ld kB UNet file still resident", kq, file_kb);
}

/* A LoRA's delta is fused in float and quantised with the weight: the int8
 * copy equals quantising the float32 model's fused tensor. */
TEST(q8_lora_fused_before_quantising) {
    const char *lora = fixture_path("models/loras/tiny-sdxl-lora-kohya.safetensors");
    sdc_load_options q = {.threads = 1, .weights = "q8", .loras = &lora, .nloras = 1};
    sdc_load_options p = {.threads = 1, .loras = &lora, .nloras = 1};
    sdc_model *m, *f;
    CHECK_OK(sdc_model_load(&m, fixture_path("models/tiny-sdxl"), &q));
    CHECK_OK(sdc_model_load(&f, fixture_path("models/tiny-sdxl"), &p));
    weights *wq = unet_weights(m->unet), *wf = unet_weights(f->unet);
    int fused = 0, checked = 0, ok = 1;
    for (int i = 0; i < wf->nslots && ok; i++) {
        if (!wf->slots[i].rows) continue;
        int j = 0;
        while (j < wq->nslots && strcmp(wq->slots[j].name, wf->slots[i].name)) j++;
        if (j == wq->nslots || *wq->slots[j].dtype != OP_Q8) {
            ok = 0;
            break;
        }
        fused += wf->slots[i].mutable_copy != NULL;
        q8_matrix *want;
        const weights_slot *sl = &wf->slots[i];
        if (sl->conv_k ? q8_quantize_conv(*sl->slot, *sl->dtype, sl->rows, sl->conv_c, sl->conv_k, 1, &want)
                       : q8_quantize(*sl->slot, *sl->dtype, sl->rows, sl->cols, 1, &want)) {
            ok = 0;
            break;
        }
        const q8_matrix *got = *wq->slots[j].slot;
        ok = got->rows == want->rows && got->cols == want->cols &&
             !memcmp(got->data, want->data, (size_t)(want->panels * want->nb * Q8_PBLOCK));
        free(want);
        checked++;
    }
    sdc_model_free(m);
    sdc_model_free(f);
    CHECK(ok, "an int8 UNet weight differs from quantising the float32 model's (fused) tensor (%d checked)", checked);
    CHECK(fused > 5 && checked > fused, "%d fused of %d layer weights checked", fused, checked);
}

TEST(q8_refused_where_unsupported) {
    sdc_model *m = NULL;
    sdc_load_options lo = {.threads = 1, .weights = "q8", .device = "cuda"};
    sdc_status st = sdc_model_load(&m, fixture_path("models/tiny-sd"), &lo);
    CHECK(st == SDC_ERR_UNSUPPORTED && !m && strstr(sdc_last_error(), "--weights q8 runs on the CPU"), "cuda: %d %s",
          st, sdc_last_error());
    lo = (sdc_load_options){.threads = 1, .weights = "q8", .device = "emulated", .dtype = "bf16"};
    st = sdc_model_load(&m, fixture_path("models/tiny-sd"), &lo);
    CHECK(st == SDC_ERR_UNSUPPORTED && !m && strstr(sdc_last_error(), "f32 only"), "emulated bf16: %s",
          sdc_last_error());
    lo = (sdc_load_options){.threads = 1, .weights = "q4"};
    st = sdc_model_load(&m, fixture_path("models/tiny-sd"), &lo);
    CHECK(st == SDC_ERR_ARG && !m && strstr(sdc_last_error(), "'q4'"), "q4: %s", sdc_last_error());
}

/* the emulated device (every activation behind a device boundary, step
 * graphs recorded and replayed) runs the CPU's int8 ops: the same image */
TEST(q8_emulated_device_same_image) {
    const char *prompt = "a photo of a cat";
    sdc_image *a = NULL, *b = NULL;
    int na = 0, nb = 0;
    for (int dev = 0; dev < 2; dev++) {
        sdc_load_options lo = {.threads = 1, .weights = "q8", .device = dev ? "emulated" : "cpu"};
        sdc_model *m;
        CHECK_OK(sdc_model_load(&m, fixture_path("models/tiny-sdxl"), &lo));
        sdc_request r;
        sdc_request_init(&r);
        r.prompts = &prompt;
        r.nprompts = 1;
        r.steps = 2;
        r.seed = 3;
        sdc_status st = sdc_generate(m, &r, dev ? &b : &a, dev ? &nb : &na);
        sdc_model_free(m);
        CHECK_OK(st);
    }
    int same = na == 1 && nb == 1 && !memcmp(a->rgb, b->rgb, (size_t)a->width * a->height * 3);
    sdc_images_free(a, na);
    sdc_images_free(b, nb);
    CHECK(same, "the emulated device's q8 image differs from the CPU's");
}

TEST(q8_cli_flag) {
    char out[2048], cmd[1024];
    snprintf(cmd, sizeof cmd, "%s generate -m %s -p x --weights q4 -o %s", sdc_binary(), fixture_path("models/tiny-sd"),
             tmp_path("q4.png"));
    int rc = run_cmd(cmd, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "--weights must be q8"), "--weights q4: exit %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s generate -m %s -p x --weights q8 --steps 1 --seed 1 --threads 1 --quiet -o %s",
             sdc_binary(), fixture_path("models/tiny-sd"), tmp_path("q8.png"));
    rc = run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0, "--weights q8: exit %d: %s", rc, out);
}
