/* test_cases.c - end-to-end: every tiny-model case in tests/fixtures/cases
 * run through the library (intermediates compared with diffusers' golden)
 * and through build/sdc (PNG compared with the golden PNG). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "case_util.h"
#include "golden.h"
#include "harness.h"
#include "io/json.h"
#include "backend/ops.h"
#include "io/png_io.h"
#include "family/model.h"
#include "sdc.h"

/* README tolerances. sd-pndm-cfg is ill-conditioned (1x1 lowest level: GroupNorms over
 * 2 values amplify rounding ~60x in call 3), so its UNet-call bound is looser too. */
static const case_spec k_cases[] = {
    {"sd-pndm-cfg", 2e-2, 2e-3, 1e-3, 1e-3},     {"sd-ddim-trailing", 5e-4, 1e-4, 1e-4, 1e-4},
    {"sd-euler-a-batch", 5e-4, 1e-4, 1e-4, 1e-4}, {"sd-dpmpp2m-karras", 5e-4, 1e-4, 1e-4, 1e-4},
    {"sd-fp16-variant", 5e-4, 1e-4, 1e-4, 1e-4},  {"sd-lcm4", 5e-4, 1e-4, 1e-4, 1e-4},
    {"sdxl-turbo-euler-a", 5e-4, 1e-4, 1e-4, 1e-4}, {"sdxl-euler-cfg", 5e-4, 1e-4, 1e-4, 1e-4},
    {"sdxl-tcd4-eta03", 5e-4, 1e-4, 1e-4, 1e-4},
    {"sdxl-lora-kohya-ddim2", 5e-4, 1e-4, 1e-4, 1e-4}, {"sdxl-lora-peft-tcd1", 5e-4, 1e-4, 1e-4, 1e-4},
    {"sd-singlefile", 5e-4, 1e-4, 1e-4, 1e-4},    {"sdxl-singlefile", 5e-4, 1e-4, 1e-4, 1e-4},
};

static int verbose(void) { return getenv("SDC_TEST_VERBOSE") != NULL; }

/* a wave-1 case (tests/fixtures/cases) */
static int load_case(const char *name, case_req *c) { return case_load("", name, c); }

static void run_case_cli(const case_spec *cs) { run_case_cli_on(cs, NULL); }
static void run_case_library(const case_spec *cs) { run_case_library_on(cs, NULL); }

/* The library run again behind the emulated device boundary (CPU ops, but
 * host code may not touch activations): same goldens, same tolerances. */
static void run_case_emulated(const case_spec *cs) {
    case_req c;
    CHECK(load_case(cs->name, &c), "cannot read case %s", cs->name);
    int steps = c.steps;
    cJSON_Delete(c.j);
    long launches = op_graph_launches();
    run_case_library_on(cs, "emulated");
    if (test_failed()) return;
    /* from the second UNet call on, each step is a replay of the recorded
     * graph: the goldens matching means the replays read each step's inputs */
    long replays = op_graph_launches() - launches;
    if (verbose()) printf("     %s: %ld UNet steps replayed from a step graph\n", cs->name, replays);
    CHECK(steps < 2 || replays >= steps - 1, "%s: %d steps but %ld graph launches", cs->name, steps, replays);
}

/* The --device cuda numerics predicted on the CPU: the emulated device with
 * the CUDA backend's roundings (GEMM, convolution and attention operands in
 * f16, 3x3 convolution and attention results too; linear and 1x1 results and
 * everything else float32; VAE as the model's config says, its float32
 * convolutions with TF32 operands).
 * The same bound as case_*_cuda_png: PSNR >= 35 dB against the golden PNG. */
static void run_case_emulated_f16(const case_spec *cs) {
    case_req c;
    CHECK(load_case(cs->name, &c), "cannot read case %s", cs->name);
    sdc_model *m = NULL;
    sdc_load_options lo = case_load_options(&c);
    lo.device = "emulated";
    lo.dtype = "f16"; /* the UNet and text encoders; the VAE as its config says (force_upcast) */
    sdc_status st = sdc_model_load(&m, fixture_path(c.model), &lo);
    sdc_image *imgs = NULL;
    int n = 0;
    if (!st) {
        sdc_request r = case_request(&c);
        op_emulate_conv_tf32(m->cx, 1); /* an f32 VAE's convolutions on TF32 tensor cores */
        st = sdc_generate(m, &r, &imgs, &n);
    }
    sdc_model_free(m);
    cJSON_Delete(c.j);
    CHECK(st == SDC_OK, "%s: %s", cs->name, sdc_last_error());
    double worst = INFINITY;
    for (int i = 0; i < n; i++) {
        char gold[256];
        snprintf(gold, sizeof gold, "cases/%s_%d.png", cs->name, i);
        uint8_t *b;
        int bw, bh;
        if (png_read_rgb(fixture_path(gold), &b, &bw, &bh, NULL)) {
            sdc_images_free(imgs, n);
            CHECK(0, "cannot read %s", gold);
        }
        double p = bw == imgs[i].width && bh == imgs[i].height ? psnr8(imgs[i].rgb, b, (int64_t)bw * bh * 3) : 0;
        free(b);
        if (p < worst) worst = p;
    }
    sdc_images_free(imgs, n);
    if (verbose()) printf("     %s, f16 GEMM operands (emulated): worst PSNR %.1f dB\n", cs->name, worst);
    CHECK(worst >= 35.0, "%s: f16-emulated image PSNR %.1f dB < 35", cs->name, worst);
}

/* Teacher forcing: every UNet call fed the golden's own model_input_K,
 * embeddings and timestep must give its unet_out_K (README: atol 1e-4). */
static void run_case_unet_calls(const case_spec *cs) {
    case_req c;
    CHECK(load_case(cs->name, &c), "cannot read case %s", cs->name);
    double worst;
    int worst_k;
    sdc_status st = case_unet_calls(&c, cs->name, &worst, &worst_k);
    cJSON_Delete(c.j);
    CHECK(st == SDC_OK, "%s: %s", cs->name, sdc_last_error());
    if (verbose()) printf("     %s: worst teacher-forced unet_out_%d diff %.3g\n", cs->name, worst_k, worst);
    CHECK(worst <= cs->unet_tol, "%s: unet_out_%d differs by %g", cs->name, worst_k, worst);
}

#define CASE_TESTS(id, idx)                                              \
    TEST(case_##id##_library) { run_case_library(&k_cases[idx]); }       \
    TEST(case_##id##_unet_calls) { run_case_unet_calls(&k_cases[idx]); } \
    TEST(case_##id##_cli_png) { run_case_cli(&k_cases[idx]); }           \
    TEST(case_##id##_emulated_device) { run_case_emulated(&k_cases[idx]); } \
    TEST(case_##id##_emulated_f16) { run_case_emulated_f16(&k_cases[idx]); } \
    TEST(case_##id##_cuda_png) { run_case_cli_on(&k_cases[idx], "cuda"); }

CASE_TESTS(sd_pndm_cfg, 0)
CASE_TESTS(sd_ddim_trailing, 1)
CASE_TESTS(sd_euler_a_batch, 2)
CASE_TESTS(sd_dpmpp2m_karras, 3)
CASE_TESTS(sd_fp16_variant, 4)
CASE_TESTS(sd_lcm4, 5)
CASE_TESTS(sdxl_turbo_euler_a, 6)
CASE_TESTS(sdxl_euler_cfg, 7)
CASE_TESTS(sdxl_tcd4_eta03, 8)
CASE_TESTS(sdxl_lora_kohya_ddim2, 9)
CASE_TESTS(sdxl_lora_peft_tcd1, 10)
CASE_TESTS(sd_singlefile, 11)
CASE_TESTS(sdxl_singlefile, 12)

/* ---- two models in one process ----
 * Each model owns its backend context (device, threads, precision, live
 * buffers, captures): a CPU model and a device model loaded side by side
 * generate their golden images in turn, twice, each unaffected by the
 * other. On "emulated" both are float32 CPU arithmetic, so both must match
 * their goldens to 2/255; on "cuda" (a GPU, or the CUDA emulator of `make
 * test-cuda-emu`) the device image is held to the --device cuda bound. */
static int golden_compare(const char *name, const sdc_image *imgs, int n, int *worst, double *psnr) {
    *worst = 0;
    *psnr = INFINITY;
    for (int i = 0; i < n; i++) {
        char gold[256];
        snprintf(gold, sizeof gold, "cases/%s_%d.png", name, i);
        uint8_t *b;
        int bw, bh;
        if (png_read_rgb(fixture_path(gold), &b, &bw, &bh, NULL)) return 0;
        int ok = bw == imgs[i].width && bh == imgs[i].height;
        for (int64_t k = 0; ok && k < (int64_t)bw * bh * 3; k++) {
            int d = abs((int)imgs[i].rgb[k] - (int)b[k]);
            if (d > *worst) *worst = d;
        }
        double p = ok ? psnr8(imgs[i].rgb, b, (int64_t)bw * bh * 3) : 0;
        if (p < *psnr) *psnr = p;
        free(b);
        if (!ok) return 0;
    }
    return 1;
}

typedef struct {
    case_req c;
    sdc_model *m;
} loaded_case;

static sdc_status load_side(loaded_case *lc, const char *name, const char *device, int threads) {
    if (!load_case(name, &lc->c)) return sdc_fail(SDC_ERR_IO, "cannot read case %s", name);
    sdc_load_options lo = case_load_options(&lc->c);
    lo.device = device;
    lo.threads = threads;
    return sdc_model_load(&lc->m, fixture_path(lc->c.model), &lo);
}

static void models_side_by_side(const char *device) {
    loaded_case cpu = {0}, dev = {0};
    sdc_status st = load_side(&cpu, "sd-ddim-trailing", NULL, 1);
    sdc_status sd = st ? st : load_side(&dev, "sdxl-euler-cfg", device, 2);
    char why[512];
    snprintf(why, sizeof why, "%s", sdc_last_error());
    int skip = !st && sd && !strcmp(device, "cuda"); /* no GPU, or a build without CUDA */
    int threads_ok = !st && !sd && op_ctx_threads(cpu.m->cx) == 1 && op_ctx_threads(dev.m->cx) == 2 &&
                     op_ctx_device(cpu.m->cx) == OP_DEV_CPU && op_ctx_device(dev.m->cx) != OP_DEV_CPU;
    int worst[2] = {0, 0};
    double psnr[2] = {INFINITY, INFINITY};
    for (int round = 0; round < 2 && !st && !sd; round++) {
        loaded_case *order[2] = {&cpu, &dev};
        for (int k = 0; k < 2 && !st; k++) {
            sdc_request r = case_request(&order[k]->c);
            sdc_image *imgs = NULL;
            int n = 0, w;
            double p;
            st = sdc_generate(order[k]->m, &r, &imgs, &n);
            if (!st && !golden_compare(k ? "sdxl-euler-cfg" : "sd-ddim-trailing", imgs, n, &w, &p))
                st = sdc_fail(SDC_ERR_IO, "cannot compare with the golden images");
            if (!st) {
                worst[k] = w > worst[k] ? w : worst[k];
                psnr[k] = p < psnr[k] ? p : psnr[k];
            }
            sdc_images_free(imgs, n);
        }
    }
    if (!st && sd) snprintf(why, sizeof why, "%s", sdc_last_error());
    sdc_model_free(cpu.m), sdc_model_free(dev.m);
    cJSON_Delete(cpu.c.j), cJSON_Delete(dev.c.j);
    if (skip) SKIP("%s", why);
    CHECK(!st && !sd, "%s", st ? sdc_last_error() : why);
    CHECK(threads_ok, "the contexts' threads/devices are not the ones each model was loaded with");
    if (verbose()) printf("     cpu model: max diff %d/255; %s model: max diff %d/255, PSNR %.1f dB\n", worst[0], device,
                          worst[1], psnr[1]);
    CHECK(worst[0] <= 2, "the CPU model's image moved by %d/255 beside a %s model", worst[0], device);
    if (!strcmp(device, "cuda"))
        CHECK(psnr[1] >= 35.0, "the cuda model's image: PSNR %.1f dB < 35", psnr[1]);
    else
        CHECK(worst[1] <= 2, "the %s model's image moved by %d/255 beside a CPU model", device, worst[1]);
}

TEST(models_side_by_side_cpu_and_emulated) { models_side_by_side("emulated"); }
TEST(models_side_by_side_cpu_and_cuda) { models_side_by_side("cuda"); }
