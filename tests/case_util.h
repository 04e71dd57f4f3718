/* case_util.h - the goldens' case files as requests: a case
 * (tests/fixtures/cases/NAME.json, or tests/fixtures2/cases/NAME.json for
 * the second wave) read into the sdc_request and load options it describes,
 * and comparisons of what sdc made with the case's tensors and PNGs.
 * Shared by test_cases.c (wave 1), test_sampler_cases.c and test_ksamplers.c
 * (the second set's sampler cases). */
#ifndef SDC_TESTS_CASE_UTIL_H
#define SDC_TESTS_CASE_UTIL_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "io/safetensors.h"
#include "sdc.h"

/* the request a case describes; strings point into the JSON */
typedef struct {
    cJSON *j;
    char dir[32];            /* the case's folder relative to tests/fixtures: "" or "../fixtures2/" */
    char model[512];         /* the model (or single file) relative to tests/fixtures */
    const char *variant, *sched, *spacing;
    const char *prompts[8], *negs[8];
    int np, nn, steps, W, H, karras;
    float g, eta;
    uint64_t seed;
    char lora_paths[4][512]; /* "loras": fused in order, paths relative to the fixtures */
    const char *loras[4];
    float lora_scales[4];
    int nloras;
    int lora_modules[4];     /* checks.lora_modules_fused */
    char config_dir[512];    /* single-file cases: the folder that gives configs, tokenizers, scheduler */
} case_req;

/* Case NAME of dir ("" = tests/fixtures, "../fixtures2/" = tests/fixtures2).
 * 0 when it cannot be read or asks for something the runner does not know
 * (a scheduler class or override it cannot say on the command line); then
 * c->j is freed. The caller frees c->j (cJSON_Delete). */
int case_load(const char *dir, const char *name, case_req *c);
/* Case NAME of tests/fixtures/cases, else of tests/fixtures2/cases (as case_load). */
int case_find(const char *name, case_req *c);
/* its PNG / safetensors: "<dir>cases/<name>_<i>.png" relative to tests/fixtures */
const char *case_file(const case_req *c, const char *name, const char *suffix);
/* the load options a case asks for (its LoRAs fused in order) */
sdc_load_options case_load_options(const case_req *c);
sdc_request case_request(const case_req *c);

/* an sdc_tensor_fn that collects intermediates into a safetensors writer */
typedef struct {
    st_writer *w;
} case_dump;
void case_collect(void *ctx, const char *name, int is_int, int ndim, const int64_t *shape, const void *data);
/* max abs difference of one tensor of mine and the golden's (INFINITY when missing or mismatched; int64
 * tensors: 0 when equal) */
double case_cmp_tensor(const st_file *mine, const st_file *gold, const char *name);
/* the largest |value| of a golden tensor (its scale) */
double case_tensor_scale(const st_file *gold, const char *name);
/* Teacher forcing: every UNet call of case c (its golden name) fed the
 * golden's model_input_K, embeddings and timestep; *worst = the largest
 * difference of its output from unet_out_K, at call *worst_k. */
sdc_status case_unet_calls(const case_req *c, const char *name, double *worst, int *worst_k);
/* PSNR of two RGB8 images in dB (INFINITY when equal) */
double psnr8(const uint8_t *a, const uint8_t *b, int64_t n);
/* largest per-channel difference of two RGB8 images */
int max_pixel_diff(const uint8_t *a, const uint8_t *b, int64_t n);

/* ---- end-to-end runners: test bodies (CHECK), the case found by case_find ---- */

typedef struct {
    const char *name;
    double latents_tol, decoded_tol, image_tol;
    double unet_tol; /* teacher-forced UNet call */
} case_spec;

/* The case through the library (device NULL: the CPU; "emulated": behind the
 * emulated device boundary): embeddings, noise, the first noise_pred, the last
 * latents, decoded and image against the golden; the dump of every
 * intermediate is left at tmp_path(cs->name). */
void run_case_library_on(const case_spec *cs, const char *device);
/* The case through build/sdc (device NULL: the CPU, within 2/255 of the
 * golden PNG everywhere; "cuda": f16 on the GPU, PSNR >= 35 dB, skipped
 * without a GPU). */
void run_case_cli_on(const case_spec *cs, const char *device);

#endif
