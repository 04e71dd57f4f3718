/* test_q8_convert.c - sdc convert --weights q8: the saved folder loads its
 * int8 weights as stored (every UNet and text encoder layer int8, nothing
 * quantised again) and gives the same image, bit for bit, as quantising the
 * original model at load; LoRAs and devices that need float weights refuse
 * it with a message; the CLI converts and generates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/q8.h"
#include "family/model.h"
#include "harness.h"
#include "nn/weights.h"
#include "sdc.h"
#include "text/clip_text_model.h"

static sdc_status two_steps(sdc_model *m, sdc_image **img, int *n) {
    const char *prompt = "a photo of a cat";
    sdc_request r;
    sdc_request_init(&r);
    r.prompts = &prompt;
    r.nprompts = 1;
    r.steps = 2;
    r.seed = 5;
    return sdc_generate(m, &r, img, n);
}

/* int8 layer slots of w, and how many of them read the files in place */
static void count_q8(const weights *w, int *layers, int *q8, int *mapped) {
    *layers = *q8 = *mapped = 0;
    for (int i = 0; i < w->nslots; i++) {
        if (!w->slots[i].rows) continue;
        (*layers)++;
        if (!w->slots[i].dtype || *w->slots[i].dtype != OP_Q8) continue;
        (*q8)++;
        const uint8_t *d = ((const q8_matrix *)*w->slots[i].slot)->data;
        for (int f = 0; f < w->nfiles; f++)
            *mapped +=
                d >= (const uint8_t *)w->files[f].map && d < (const uint8_t *)w->files[f].map + w->files[f].map_size;
    }
}

static long file_size(const char *p) {
    struct stat s;
    return stat(p, &s) ? -1 : (long)s.st_size;
}

static void convert_round_trip(const char *model, const char *out) {
    sdc_load_options q = {.threads = 1, .weights = "q8"};
    const char *dst = tmp_path(out);
    CHECK_OK(sdc_model_convert(fixture_path(model), dst, &q));
    sdc_image *a = NULL, *b = NULL, *c = NULL;
    int na = 0, nb = 0, nc = 0;
    sdc_model *m;
    CHECK_OK(sdc_model_load(&m, fixture_path(model), &q));
    sdc_status st = two_steps(m, &a, &na);
    sdc_model_free(m);
    CHECK_OK(st);
    /* without --weights q8: the int8 tensors are what the file holds */
    sdc_load_options plain = {.threads = 1};
    CHECK_OK(sdc_model_load(&m, dst, &plain));
    int layers, n8, mapped;
    for (int i = 0; i <= m->ntext; i++) {
        weights *w = i < m->ntext ? clip_text_weights(m->te[i]) : unet_weights(m->unet);
        count_q8(w, &layers, &n8, &mapped);
        if (!(layers > 10 && n8 == layers && mapped == layers)) sdc_model_free(m);
        CHECK(layers > 10 && n8 == layers && mapped == layers,
              "%s component %d: %d layer weights, %d int8, %d read from the file in place", out, i, layers, n8, mapped);
    }
    st = two_steps(m, &b, &nb);
    sdc_model_free(m);
    CHECK_OK(st);
    CHECK_OK(sdc_model_load(&m, dst, &q)); /* with it: nothing to quantise, the same */
    st = two_steps(m, &c, &nc);
    sdc_model_free(m);
    CHECK_OK(st);
    size_t n = (size_t)a->width * a->height * 3;
    int same = na == 1 && nb == 1 && nc == 1 && !memcmp(a->rgb, b->rgb, n) && !memcmp(a->rgb, c->rgb, n);
    sdc_images_free(a, na);
    sdc_images_free(b, nb);
    sdc_images_free(c, nc);
    CHECK(same, "%s: the converted model's image differs from quantising at load", out);
    /* the UNet file holds int8: a little over a quarter of float32 */
    char p[600], o[600];
    snprintf(p, sizeof p, "%s/unet/diffusion_pytorch_model.safetensors", dst);
    snprintf(o, sizeof o, "%s/unet/diffusion_pytorch_model.safetensors", fixture_path(model));
    long sq = file_size(p), sf = file_size(o);
    CHECK(sq > 0 && sf > 0 && sq < sf / 2, "UNet file %ld bytes converted, %ld float", sq, sf);
}

TEST(q8_convert_tiny_sd_same_image) { convert_round_trip("models/tiny-sd", "conv-sd"); }
TEST(q8_convert_tiny_sdxl_same_image) { convert_round_trip("models/tiny-sdxl", "conv-sdxl"); }

TEST(q8_convert_refusals) {
    sdc_load_options q = {.threads = 1, .weights = "q8"}, plain = {.threads = 1};
    const char *dst = tmp_path("conv-refusals");
    sdc_status st = sdc_model_convert(fixture_path("models/tiny-sdxl"), dst, &plain);
    CHECK(st == SDC_ERR_ARG && strstr(sdc_last_error(), "--weights q8"), "no target: %d %s", st, sdc_last_error());
    CHECK_OK(sdc_model_convert(fixture_path("models/tiny-sdxl"), dst, &q));
    st = sdc_model_convert(fixture_path("models/tiny-sdxl"), dst, &q);
    CHECK(st == SDC_ERR_ARG && strstr(sdc_last_error(), "already holds a model"), "into a model: %d %s", st,
          sdc_last_error());
    /* a LoRA needs the float weights the converted model no longer has */
    const char *lora = fixture_path("models/loras/tiny-sdxl-lora-kohya.safetensors");
    sdc_model *m = NULL;
    sdc_load_options l = {.threads = 1, .loras = &lora, .nloras = 1};
    st = sdc_model_load(&m, dst, &l);
    CHECK(st && !m && strstr(sdc_last_error(), "stored int8"), "LoRA on a converted model: %d %s", st,
          sdc_last_error());
    /* the emulated device has no reduced-precision model of int8 layers: its first one refuses */
    sdc_load_options e = {.threads = 1, .device = "emulated", .dtype = "bf16"};
    CHECK_OK(sdc_model_load(&m, dst, &e));
    sdc_image *img = NULL;
    int n = 0;
    st = two_steps(m, &img, &n);
    sdc_images_free(img, n);
    sdc_model_free(m);
    CHECK(st == SDC_ERR_UNSUPPORTED && strstr(sdc_last_error(), "f32 only"), "emulated bf16 device: %d %s", st,
          sdc_last_error());
}

TEST(q8_convert_cli) {
    char out[4096], cmd[3072];
    const char *dst = tmp_path("conv-cli");
    snprintf(cmd, sizeof cmd, "%s convert -m %s -o %s", sdc_binary(), fixture_path("models/tiny-sd"), dst);
    int rc = run_cmd(cmd, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "--weights q8"), "convert without --weights: exit %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s convert -m %s --weights q8 --threads 1 -o %s", sdc_binary(),
             fixture_path("models/tiny-sd"), dst);
    rc = run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0, "convert: exit %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s generate -m %s -p x --steps 1 --seed 1 --threads 1 --quiet -o %s", sdc_binary(), dst,
             tmp_path("conv-cli.png"));
    rc = run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0, "generate with the converted model: exit %d: %s", rc, out);
}
