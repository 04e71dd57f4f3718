/* test_request.c - sdc_request_check, the one place requests are checked:
 * every field without a model, then what the model decides, and that
 * sdc_generate refuses exactly what the check refuses. */
#include <string.h>

#include "harness.h"
#include "sdc.h"

typedef struct {
    const char *what;
    void (*set)(sdc_request *r);
    const char *msg; /* substring of the error */
} bad_case;

static const char *one_prompt[1] = {"a cat"};
static const char *two_negs[2] = {"x", "y"};

static void no_prompt(sdc_request *r) { r->nprompts = 0; }
static void null_prompt(sdc_request *r) {
    static const char *p[1] = {NULL};
    r->prompts = p;
}
static void big_batch(sdc_request *r) { r->batch = SDC_MAX_BATCH + 1; }
static void big_chunked(sdc_request *r) { r->batch = SDC_MAX_IMAGES + 1, r->batch_size = 4; }
static void bad_batch_size(sdc_request *r) { r->batch_size = SDC_MAX_BATCH + 1; }
static void neg_count(sdc_request *r) { r->negative_prompts = two_negs, r->nnegative = 2; }
static void odd_width(sdc_request *r) { r->width = 100; }
static void huge_height(sdc_request *r) { r->height = SDC_MAX_SIDE + 8; }
static void many_steps(sdc_request *r) { r->steps = SDC_MAX_STEPS + 1; }
static void big_guidance(sdc_request *r) { r->guidance = 101; }
static void bad_eta(sdc_request *r) { r->eta = 1.5f; }
static void bad_clip_skip(sdc_request *r) { r->clip_skip = SDC_MAX_CLIP_SKIP + 1; }
static void bad_spacing(sdc_request *r) { r->timestep_spacing = "sideways"; }
static void bad_rng(sdc_request *r) { r->rng = "quantum"; }
static void bad_sampler(sdc_request *r) { r->scheduler = "no_such_sampler"; }
static void tile_without_tiling(sdc_request *r) { r->vae_tile_size = 64; }
static void chunked_dump(sdc_request *r);

static void dump_fn(void *ctx, const char *name, int is_int, int ndim, const int64_t *shape, const void *data) {}
static void chunked_dump(sdc_request *r) { r->batch = 4, r->batch_size = 2, r->dump = dump_fn; }

static const bad_case k_bad[] = {
    {"no prompt", no_prompt, "no prompt"},
    {"a NULL prompt", null_prompt, "prompt 0 is missing"},
    {"too many images in one batch", big_batch, "out of range"},
    {"too many images in chunks", big_chunked, "out of range"},
    {"batch size", bad_batch_size, "batch size"},
    {"negative prompts count", neg_count, "negative prompts for"},
    {"width not a multiple of 8", odd_width, "width 100"},
    {"height too large", huge_height, "height"},
    {"steps", many_steps, "steps"},
    {"guidance", big_guidance, "guidance"},
    {"eta", bad_eta, "eta"},
    {"clip skip", bad_clip_skip, "clip skip"},
    {"timestep spacing", bad_spacing, "timestep spacing"},
    {"rng", bad_rng, "rng"},
    {"sampler name", bad_sampler, "no_such_sampler"},
    {"tile size without tiling", tile_without_tiling, "tiling"},
    {"dump with chunks", chunked_dump, "dumping"},
};

static sdc_request base(void) {
    sdc_request r;
    sdc_request_init(&r);
    r.prompts = one_prompt, r.nprompts = 1, r.steps = 2, r.width = 64, r.height = 64;
    return r;
}

TEST(request_check_without_a_model) {
    sdc_request r = base();
    CHECK_OK(sdc_request_check(NULL, &r));
    for (size_t i = 0; i < sizeof k_bad / sizeof k_bad[0]; i++) {
        r = base();
        k_bad[i].set(&r);
        sdc_status st = sdc_request_check(NULL, &r);
        CHECK(st == SDC_ERR_ARG && strstr(sdc_last_error(), k_bad[i].msg), "%s: status %d, '%s'", k_bad[i].what,
              (int)st, sdc_last_error());
    }
}

/* with a model: its defaults are checked like values, its scheduler config
 * makes the scheduler, and sdc_generate refuses what the check refuses */
TEST(request_check_with_a_model) {
    sdc_model *m;
    CHECK_OK(sdc_model_load(&m, fixture_path("models/tiny-sd"), NULL));
    sdc_request r = base();
    sdc_status st = sdc_request_check(m, &r);
    const char *why = NULL;
    char msg[512] = "";
    if (st) why = "a good request refused";
    /* LCM takes at most original_inference_steps (50) steps: only a scheduler knows */
    r.scheduler = "lcm", r.steps = 60;
    if (!why && (st = sdc_request_check(NULL, &r)) != SDC_OK) why = "the model-free check knew the scheduler's limit";
    if (!why && sdc_request_check(m, &r) != SDC_ERR_ARG) why = "lcm with 60 steps accepted";
    if (!why) snprintf(msg, sizeof msg, "%s", sdc_last_error());
    sdc_image *imgs = NULL;
    int n = 0;
    if (!why && sdc_generate(m, &r, &imgs, &n) != SDC_ERR_ARG) why = "sdc_generate ran what the check refused";
    if (!why && strcmp(msg, sdc_last_error())) why = "sdc_generate refused it with another message";
    r = base();
    r.scheduler = "ddim", r.karras = 1; /* DDIM takes no Karras sigmas */
    if (!why && sdc_request_check(m, &r) != SDC_ERR_ARG) why = "ddim with karras accepted";
    sdc_images_free(imgs, n);
    sdc_model_free(m);
    CHECK(!why, "%s (%s)", why, sdc_last_error());
    CHECK(strstr(msg, "original_inference_steps"), "message: %s", msg);
}
