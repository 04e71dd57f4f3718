/* cases_common.h - the end-to-end case runners the case test files share
 * (test_cases.c: the wave-1 cases in tests/fixtures/cases; test_ksamplers.c:
 * cases of the second set in tests/fixtures2/cases): a case's JSON read into
 * a request, run through the library (intermediates compared with diffusers'
 * golden) and through build/sdc (PNG compared with the golden PNG). */
#ifndef SDC_TESTS_CASES_COMMON_H
#define SDC_TESTS_CASES_COMMON_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "io/safetensors.h"
#include "sdc.h"

typedef struct {
    const char *name;
    double latents_tol, decoded_tol, image_tol;
    double unet_tol; /* teacher-forced UNet call */
} case_spec;

/* the request a case describes; strings point into the JSON */
typedef struct {
    cJSON *j;
    const char *model, *variant, *sched, *spacing;
    const char *prompts[8], *negs[8];
    int np, nn, steps, W, H, karras;
    float g, eta;
    uint64_t seed;
    char lora_paths[4][512]; /* "loras": fused in order, paths relative to the fixtures */
    const char *loras[4];
    float lora_scales[4];
    int nloras;
    int lora_modules[4];  /* checks.lora_modules_fused */
    char config_dir[512]; /* single-file cases: the folder that gives configs, tokenizers, scheduler */
    char dir[16];         /* the case's folder under tests/fixtures: "" or "../fixtures2/" */
} case_req;

/* Read tests/fixtures/cases/<name>.json, else tests/fixtures2/cases/<name>.json;
 * 0 when neither is there or its scheduler class is not in the registry. */
int load_case(const char *name, case_req *c);
/* A path relative to the case's folder (its models, goldens, LoRAs). */
const char *case_path(const case_req *c, const char *rel);
/* the load options a case asks for (its LoRAs fused in order) */
sdc_load_options case_load_options(const case_req *c);
/* the request a case describes */
sdc_request case_request(const case_req *c);
/* one dumped tensor against the golden: max abs diff (INFINITY if missing / mismatched) */
double cmp_tensor(const st_file *mine, const st_file *gold, const char *name);
/* PSNR of two RGB8 images in dB (INFINITY when equal) */
double psnr8(const uint8_t *a, const uint8_t *b, int64_t n);
/* The case through the library (device NULL: the CPU; "emulated": behind the
 * emulated device boundary), its dump compared with the golden; the dump is
 * left at tmp_path(cs->name). A test body (CHECK). */
void run_case_library_on(const case_spec *cs, const char *device);
/* The case through build/sdc (device NULL: the CPU, within 2/255 of the
 * golden PNG everywhere; "cuda": f16 on the GPU, PSNR >= 35 dB, skipped
 * without a GPU). A test body (CHECK). */
void run_case_cli_on(const case_spec *cs, const char *device);

#endif
