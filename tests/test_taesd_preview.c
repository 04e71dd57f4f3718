/* test_taesd_preview.c - live previews (sdc_request.preview) and the choice
 * of decoder (sdc_request.vae_decode) on tiny-sd with the random TAESD:
 * which steps get a preview, that a preview is TAESD's decode of the step's
 * x0 estimate (checked against x0 recomputed from the dumped UNet input and
 * output), that previews leave the image alone, and what happens without a
 * TAESD. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "family/model.h"
#include "harness.h"
#include "pipeline/pixels.h"
#include "pipeline/preview.h"
#include "sched/scheduler.h"
#include "sdc.h"

#define MODEL "models/tiny-sd"
#define TAESD "../fixtures2/models/taesd-random"
#define MAXP 16

typedef struct {
    int n, steps[MAXP], totals[MAXP], images[MAXP], w, h;
    uint8_t *rgb[MAXP]; /* the first image of each call */
} previews;

static void on_preview(void *ctx, int step, int total, const sdc_image *imgs, int n) {
    previews *p = ctx;
    if (p->n == MAXP) return;
    p->steps[p->n] = step, p->totals[p->n] = total, p->images[p->n] = n;
    p->w = imgs[0].width, p->h = imgs[0].height;
    size_t len = (size_t)imgs[0].width * imgs[0].height * 3;
    if ((p->rgb[p->n] = malloc(len))) memcpy(p->rgb[p->n], imgs[0].rgb, len);
    p->n++;
}

static void previews_free(previews *p) {
    for (int i = 0; i < p->n; i++) free(p->rgb[i]);
}

/* model_input_K and noise_pred_K of the dump, K = 1..MAXP */
typedef struct {
    float *in[MAXP + 1], *out[MAXP + 1];
} unet_io;

static void on_dump(void *ctx, const char *name, int is_int, int ndim, const int64_t *shape, const void *data) {
    unet_io *u = ctx;
    int k;
    float **slot = sscanf(name, "model_input_%d", &k) == 1 ? u->in : sscanf(name, "noise_pred_%d", &k) == 1 ? u->out : NULL;
    if (!slot || is_int || !data || k < 1 || k > MAXP) return;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    if ((slot[k] = malloc((size_t)n * sizeof(float)))) memcpy(slot[k], data, (size_t)n * sizeof(float));
}

static sdc_model *load(int with_taesd) {
    sdc_load_options lo = {.taesd = with_taesd ? fixture_path(TAESD) : NULL};
    sdc_model *m = NULL;
    if (sdc_model_load(&m, fixture_path(MODEL), &lo)) return NULL;
    return m;
}

static sdc_request request(const char *const *prompt, int steps, const char *sched) {
    sdc_request r;
    sdc_request_init(&r);
    r.prompts = prompt, r.nprompts = 1, r.seed = 71, r.steps = steps, r.guidance = 7.5f;
    r.width = r.height = 64, r.scheduler = sched;
    return r;
}

/* DDIM, a preview after steps 1..3 of 4: each is TAESD(x0) with x0 =
 * (x_t - sqrt(1 - a_t) eps) / sqrt(a_t) from the step's dumped input and
 * guided output, within a level; the image equals a run without previews. */
TEST(taesd_preview_is_the_steps_x0_decoded) {
    sdc_model *m = load(1);
    CHECK(m, "load: %s", sdc_last_error());
    const char *prompt[1] = {"a lighthouse, taesd preview"};
    sdc_request r = request(prompt, 4, "ddim");
    previews p = {0};
    unet_io io = {{0}, {0}};
    r.preview = on_preview, r.preview_ctx = &p, r.preview_every = 1;
    r.dump = on_dump, r.dump_ctx = &io;
    sdc_image *a = NULL, *b = NULL;
    int na = 0, nb = 0;
    sdc_status st = sdc_generate(m, &r, &a, &na);
    sdc_request plain = request(prompt, 4, "ddim");
    if (!st) st = sdc_generate(m, &plain, &b, &nb);
    int same = !st && na == 1 && nb == 1 && !memcmp(a[0].rgb, b[0].rgb, (size_t)64 * 64 * 3) &&
               !strcmp(a[0].infotext, b[0].infotext);
    sdc_images_free(a, na), sdc_images_free(b, nb);
    /* x0 of each previewed step, decoded as the pipeline decodes */
    sched_config sc;
    sdc_scheduler *s = NULL;
    int worst = 0, checked = 0;
    if (!st) st = sched_config_from_json(m->sched_json, "ddim", &sc);
    if (!st) st = sched_create(&s, &sc, 4);
    for (int i = 0; i < p.n && !st; i++) {
        int k = p.steps[i];
        int na_;
        const float *ac = sched_alphas_cumprod(s, &na_);
        double at = ac[(int)sched_timestep(s, k - 1)];
        float sa = (float)sqrt(at), sb = (float)sqrt(1 - at), x0[4 * 8 * 8], z[4 * 8 * 8], dec[3 * 64 * 64];
        uint8_t rgb[64 * 64 * 3];
        if (!io.in[k] || !io.out[k]) break;
        for (int j = 0; j < 4 * 8 * 8; j++) x0[j] = (io.in[k][j] - sb * io.out[k][j]) / sa;
        if ((st = pixels_decode(m, 1, x0, 8, 8, 0, z, dec))) break;
        pixels_to_rgb(dec, 64 * 64, rgb, NULL);
        for (int j = 0; j < 64 * 64 * 3; j++) {
            int d = abs((int)rgb[j] - (int)p.rgb[i][j]);
            if (d > worst) worst = d;
        }
        checked++;
    }
    sched_free(s);
    for (int k = 0; k <= MAXP; k++) free(io.in[k]), free(io.out[k]);
    sdc_model_free(m);
    previews q = p;
    previews_free(&p);
    CHECK(st == SDC_OK, "%s", sdc_last_error());
    CHECK(q.n == 3 && q.steps[0] == 1 && q.steps[1] == 2 && q.steps[2] == 3 && q.totals[0] == 4 && q.images[0] == 1,
          "previews: %d calls, steps %d %d %d of %d (expected 1 2 3 of 4)", q.n, q.steps[0], q.steps[1], q.steps[2],
          q.totals[0]);
    CHECK(q.w == 64 && q.h == 64, "preview size %dx%d", q.w, q.h);
    CHECK(checked == 3, "compared %d previews", checked);
    if (getenv("SDC_TEST_VERBOSE")) printf("     previews vs TAESD(x0 from the dump): max difference %d/255\n", worst);
    CHECK(worst <= 1, "a preview differs from TAESD(x0) by %d/255", worst);
    CHECK(same, "previews changed the image or its infotext");
}

/* PNDM (the model's own scheduler) has no pred_original_sample: previews
 * come from the UNet's input and output. Two prompts in chunks of one:
 * steps count over the whole request, every second step of each chunk. */
TEST(taesd_preview_pndm_chunks) {
    sdc_model *m = load(1);
    CHECK(m, "load: %s", sdc_last_error());
    const char *prompts[2] = {"a lighthouse", "a red barn"};
    sdc_request r = request(prompts, 5, NULL);
    r.nprompts = 2, r.batch_size = 1;
    previews p = {0};
    r.preview = on_preview, r.preview_ctx = &p, r.preview_every = 2;
    sdc_image *imgs = NULL;
    int n = 0;
    sdc_status st = sdc_generate(m, &r, &imgs, &n);
    sdc_images_free(imgs, n);
    sdc_model_free(m);
    int total = p.n ? p.totals[0] : 0, calls = total / 2, ok = p.n > 0, spread = 0;
    for (int i = 0; ok && i < p.n; i++) {
        int chunk = i / ((calls - 1) / 2), local = p.steps[i] - chunk * calls;
        ok = p.totals[i] == total && p.images[i] == 1 && local % 2 == 0 && local > 0 && local < calls;
    }
    for (int j = 1; p.n && j < 64 * 64 * 3; j++) spread |= p.rgb[0][j] != p.rgb[0][0];
    previews q = p;
    previews_free(&p);
    CHECK(st == SDC_OK, "%s", sdc_last_error());
    CHECK(ok && q.n == 2 * ((calls - 1) / 2), "%d previews over %d steps (2 chunks): steps %d %d ...", q.n, total,
          q.steps[0], q.steps[1]);
    CHECK(spread, "the PNDM preview is a flat image");
}

/* Without a TAESD no preview is drawn and the KL VAE decodes; asking for
 * TAESD decoding is an error. With one, vae_decode "full" gives the KL
 * VAE's image byte for byte (and an infotext without VAE Decoder). */
TEST(taesd_vae_decode_choice) {
    sdc_model *plain = load(0), *with = load(1);
    if (!plain || !with) sdc_model_free(plain), sdc_model_free(with);
    CHECK(plain && with, "load: %s", sdc_last_error());
    const char *prompt[1] = {"a lighthouse"};
    sdc_request r = request(prompt, 3, "ddim");
    previews p = {0};
    r.preview = on_preview, r.preview_ctx = &p, r.preview_every = 1;
    sdc_image *a = NULL, *b = NULL, *c = NULL;
    int na = 0, nb = 0, nc = 0;
    sdc_status st = sdc_generate(plain, &r, &a, &na);
    r.vae_decode = "taesd";
    sdc_status st_taesd = sdc_generate(plain, &r, &c, &nc);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", sdc_last_error());
    r.vae_decode = "full";
    if (!st) st = sdc_generate(with, &r, &b, &nb);
    r.vae_decode = "fast";
    sdc_status st_bad = sdc_generate(with, &r, &c, &nc);
    int same = !st && na == 1 && nb == 1 && !memcmp(a[0].rgb, b[0].rgb, (size_t)64 * 64 * 3) &&
               !strcmp(a[0].infotext, b[0].infotext) && !strstr(b[0].infotext, "VAE Decoder");
    int previewed = p.n;
    previews_free(&p);
    sdc_images_free(a, na), sdc_images_free(b, nb);
    sdc_model_free(plain), sdc_model_free(with);
    CHECK(st == SDC_OK, "%s", sdc_last_error());
    CHECK(st_taesd == SDC_ERR_ARG && strstr(msg, "without a TAESD"), "taesd decode without TAESD: %s", msg);
    CHECK(st_bad == SDC_ERR_ARG, "vae_decode \"fast\" accepted");
    CHECK(same, "vae_decode full with a TAESD loaded is not the KL VAE's image");
    /* 3 DDIM steps: previews after steps 1 and 2 of the run with TAESD, none without */
    CHECK(previewed == 2, "%d previews (expected 2, from the model with TAESD only)", previewed);
}

/* The x0 the previews fall back on (schedulers without pred_original_sample)
 * is DDIM's own pred_original_sample, for epsilon and v prediction. */
TEST(taesd_preview_x0_formula_is_ddims) {
    enum { N = 4 * 8 * 8 };
    static const char *const types[2] = {"epsilon", "v_prediction"};
    for (int t = 0; t < 2; t++) {
        sched_config sc;
        sched_config_defaults(sched_find("ddim", NULL), &sc);
        snprintf(sc.prediction_type, sizeof sc.prediction_type, "%s", types[t]);
        snprintf(sc.beta_schedule, sizeof sc.beta_schedule, "scaled_linear");
        sc.beta_start = 0.00085, sc.beta_end = 0.012, sc.clip_sample = 0; /* SD's, not DDIM's class defaults */
        sdc_scheduler *s;
        CHECK_OK(sched_create(&s, &sc, 10));
        float x[N], out[N], sample[N], pred[N] = {0}, zeros[N] = {0}, mine[N];
        uint64_t r = 12345;
        for (int i = 0; i < N; i++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            x[i] = (float)((double)(r >> 40) / (1 << 24)) * 4 - 2;
            out[i] = (float)((double)((r >> 16) & 0xffffff) / (1 << 24)) * 2 - 1;
        }
        double worst = 0;
        sdc_status st = SDC_OK;
        for (int k = 0; k < 10 && !st; k += 3) { /* the noisiest step, middle ones, near the end */
            memcpy(sample, x, sizeof x);
            if ((st = sched_step(s, k, out, sample, 1, N, NULL, 0.0f, pred, NULL))) break;
            preview_x0(s, k, zeros, x, out, N, mine);
            for (int i = 0; i < N; i++) worst = fmax(worst, fabs((double)mine[i] - pred[i]) / fmax(1, fabs(pred[i])));
        }
        sched_free(s);
        CHECK(st == SDC_OK, "%s", sdc_last_error());
        if (getenv("SDC_TEST_VERBOSE")) printf("     %s: x0 vs DDIM's pred_original_sample: %.3g\n", types[t], worst);
        CHECK(worst < 1e-5, "%s: x0 differs from DDIM's pred_original_sample by %g", types[t], worst);
    }
}
