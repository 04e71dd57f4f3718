/* test_step_graph.c - the step-graph rules of ops.h, on the emulated device
 * and (with a GPU) on CUDA: a launch runs the recorded ops on the inputs'
 * contents at launch time, host round trips and buffers left in use fail the
 * capture with a message, memory comes back, the CPU backend says it has no
 * graphs; and a tiny UNet stepped through unet_runner gives bitwise the
 * same outputs with graphs as without. The golden cases run every denoising
 * loop through graphs on the emulated device (case_*_emulated_device) and on
 * CUDA (case_*_cuda_png). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "harness.h"
#include "nn/unet_runner.h"
#include "pipeline/model.h"
#include "text/clip_text_runner.h"

/* on the device selected by the caller */
static void replays_current_inputs(void) {
    int64_t live = op_live_allocations();
    float *x, *y, h[4] = {1, 2, 3, 4}, o[4];
    CHECK_OK(op_alloc(&x, 4));
    CHECK_OK(op_alloc(&y, 4));
    CHECK_OK(op_upload(x, h, 4));
    CHECK_OK(op_graph_begin());
    CHECK(op_graph_capturing(), "not capturing after op_graph_begin");
    float *t;
    CHECK_OK(op_alloc(&t, 4)); /* a temporary inside the step, freed before the end */
    op_copy(t, x, 4);
    op_scale(t, 2.0f, 4);
    op_affine(y, t, 1.0f, 0.5f, 4);
    op_free(t);
    op_graph *g;
    CHECK_OK(op_graph_end(&g));
    long n0 = op_graph_launches();
    CHECK_OK(op_graph_launch(g));
    CHECK_OK(op_download(o, y, 4));
    CHECK(o[0] == 2.5f && o[3] == 8.5f, "first launch gave %g %g", o[0], o[3]);
    float h2[4] = {10, 20, 30, 40};
    CHECK_OK(op_upload(x, h2, 4));
    CHECK_OK(op_graph_launch(g));
    CHECK_OK(op_download(o, y, 4));
    CHECK(o[0] == 20.5f && o[3] == 80.5f, "second launch gave %g %g (the inputs at capture time?)", o[0], o[3]);
    CHECK(op_graph_launches() == n0 + 2, "launch counter");
    op_graph_free(g);
    op_free(x);
    op_free(y);
    CHECK(op_live_allocations() == live, "%lld buffers left", (long long)(op_live_allocations() - live));
}

static void refuses_host_round_trips(op_device dev) {
    float *x, h[4] = {0};
    CHECK_OK(op_alloc(&x, 4));
    op_graph *g = (op_graph *)&g;
    /* a download inside the capture: refused at once, and reported at the end */
    CHECK_OK(op_graph_begin());
    CHECK(op_download(h, x, 4) != SDC_OK, "op_download accepted while capturing");
    CHECK(op_graph_end(&g) != SDC_OK && !g, "a capture with a download was accepted");
    CHECK(strstr(sdc_last_error(), "op_download"), "message: %s", sdc_last_error());
    /* a precision change (void op) is reported at the end too */
    CHECK_OK(op_graph_begin());
    op_set_precision(OP_F16);
    CHECK(op_graph_end(&g) != SDC_OK, "a capture with op_set_precision was accepted");
    CHECK(strstr(sdc_last_error(), "op_set_precision"), "message: %s", sdc_last_error());
    /* a buffer allocated in the capture and still held at its end */
    CHECK_OK(op_graph_begin());
    float *t;
    CHECK_OK(op_alloc(&t, 4));
    CHECK(op_graph_end(&g) != SDC_OK, "a capture keeping a buffer of its own was accepted");
    CHECK(strstr(sdc_last_error(), "still in use"), "message: %s", sdc_last_error());
    op_free(t); /* still the caller's */
    /* no nesting, no end without a begin, no device switch inside */
    CHECK_OK(op_graph_begin());
    CHECK(op_graph_begin() != SDC_OK, "nested capture accepted");
    CHECK(op_set_device(OP_DEV_CPU) != SDC_OK, "device switched while capturing");
    op_copy(x, x + 2, 2);
    CHECK_OK(op_graph_end(&g));
    CHECK_OK(op_graph_launch(g));
    CHECK_OK(op_sync());
    op_graph *none;
    CHECK(op_graph_end(&none) != SDC_OK && !none, "op_graph_end without a capture accepted");
    /* a graph belongs to the backend that recorded it */
    op_set_device(OP_DEV_CPU);
    CHECK(op_graph_launch(g) != SDC_OK, "a %s graph launched on the CPU", dev == OP_DEV_CUDA ? "cuda" : "emulated");
    CHECK_OK(op_set_device(dev));
    op_graph_free(g);
    op_free(x);
}

/* unet_runner with and without graphs: 4 steps of new latents and timesteps */
static void runner_matches_direct(const char *model, op_device dev) {
    sdc_load_options lo = {.device = dev == OP_DEV_CUDA ? "cuda" : NULL};
    sdc_model *m = NULL;
    CHECK_OK(sdc_model_load(&m, fixture_path(model), &lo));
    if (dev == OP_DEV_EMULATED) CHECK_OK(op_set_device(dev));
    op_set_precision(m->unet_dt);
    const unet_config *c = unet_get_config(m->unet);
    int B = 2, H = 8, W = 8, M = 77, cd = 0;
    for (int i = 0; i < c->nblocks; i++) cd = c->cross_dim[i] > cd ? c->cross_dim[i] : cd;
    int64_t nx = (int64_t)B * c->in_channels * H * W, no = (int64_t)B * c->out_channels * H * W;
    float *ctx = malloc((size_t)B * M * cd * 4), *x = malloc((size_t)nx * 4), *te = malloc((size_t)B * 1280 * 4);
    float *o1 = malloc((size_t)no * 4), *o2 = malloc((size_t)no * 4);
    float tids[12] = {64, 64, 0, 0, 64, 64, 64, 64, 0, 0, 64, 64};
    for (int64_t i = 0; i < (int64_t)B * M * cd; i++) ctx[i] = 0.5f * sinf(0.11f * (float)i);
    for (int i = 0; i < B * 1280; i++) te[i] = 0.3f * cosf(0.07f * (float)i);
    unet_extra ex = {.text_embeds = te, .time_ids = tids};
    unet_runner *rg = NULL, *rd = NULL;
    sdc_status st = unet_runner_create(&rg, m->unet, B, H, W, ctx, M, &ex, 1);
    if (!st) st = unet_runner_create(&rd, m->unet, B, H, W, ctx, M, &ex, 0);
    int same = 1;
    for (int k = 0; k < 4 && !st; k++) {
        float t[2] = {999.0f - 250.0f * k, 500.0f - 100.0f * k};
        for (int64_t i = 0; i < nx; i++) x[i] = sinf(0.3f * (float)i + (float)k);
        st = unet_runner_step(rg, x, t, o1);
        if (!st) st = unet_runner_step(rd, x, t, o2);
        if (!st) same &= !memcmp(o1, o2, (size_t)no * 4);
    }
    int gsteps = rg ? unet_runner_graph_steps(rg) : 0, dsteps = rd ? unet_runner_graph_steps(rd) : 0;
    char note[256];
    snprintf(note, sizeof note, "%s", rg ? unet_runner_graph_note(rg) : "");
    unet_runner_free(rg);
    unet_runner_free(rd);
    free(ctx), free(x), free(te), free(o1), free(o2);
    op_set_precision(OP_F32);
    sdc_model_free(m);
    op_set_device(OP_DEV_CPU);
    CHECK(st == SDC_OK, "%s: %s", model, sdc_last_error());
    CHECK(gsteps == 3 && dsteps == 0, "%s: %d steps from a graph (note: %s), %d without graphs", model, gsteps, note,
          dsteps);
    CHECK(same, "%s: graph replays differ from the direct steps", model);
}

TEST(step_graph_replays_current_inputs) {
    CHECK_OK(op_set_device(OP_DEV_EMULATED));
    replays_current_inputs();
    op_set_device(OP_DEV_CPU);
}

TEST(step_graph_refuses_host_round_trips) {
    CHECK_OK(op_set_device(OP_DEV_EMULATED));
    refuses_host_round_trips(OP_DEV_EMULATED);
    op_set_device(OP_DEV_CPU);
    CHECK(op_graph_begin() == SDC_ERR_UNSUPPORTED, "the CPU backend claims step graphs");
    CHECK(!op_graph_capturing(), "capturing after a refused begin");
}

TEST(step_graph_unet_runner_emulated) {
    runner_matches_direct("models/tiny-sd", OP_DEV_EMULATED);
    runner_matches_direct("models/tiny-sdxl", OP_DEV_EMULATED);
}

TEST(step_graph_cuda) {
    if (op_set_device(OP_DEV_CUDA)) SKIP("%s", sdc_last_error());
    replays_current_inputs();
    refuses_host_round_trips(OP_DEV_CUDA);
    op_set_device(OP_DEV_CPU);
    runner_matches_direct("models/tiny-sd", OP_DEV_CUDA);
    runner_matches_direct("models/tiny-sdxl", OP_DEV_CUDA);
}

/* Across requests: the second request of the same shapes starts on the UNet
 * graph kept from the first (every step a launch) and captures the text
 * encoders' layer stacks on their second call, with its own prompt; the same
 * request with graphs off gives the same pixels. */
static sdc_status gen_one(sdc_model *m, const char *prompt, int steps, sdc_image **img) {
    sdc_request r;
    sdc_request_init(&r);
    r.prompts = &prompt, r.nprompts = 1, r.seed = 7, r.steps = steps, r.width = 64, r.height = 64;
    int n = 0;
    return sdc_generate(m, &r, img, &n);
}

TEST(step_graph_kept_across_requests_emulated) {
    sdc_model *m = NULL;
    CHECK_OK(sdc_model_load(&m, fixture_path("models/tiny-sdxl"), NULL));
    CHECK_OK(op_set_device(OP_DEV_EMULATED));
    sdc_image *a = NULL, *b = NULL, *c = NULL;
    sdc_status st = gen_one(m, "a red circle", 3, &a);
    long l0 = op_graph_launches();
    if (!st) st = gen_one(m, "a blue square", 3, &b);
    long launches = op_graph_launches() - l0;
    int kept = m->unet_run != NULL && m->te_run[0] && m->te_run[1];
    int te_runs = kept ? clip_runner_graph_runs(m->te_run[0]) + clip_runner_graph_runs(m->te_run[1]) : 0;
    setenv("SDC_STEP_GRAPHS", "0", 1);
    if (!st) st = gen_one(m, "a blue square", 3, &c);
    unsetenv("SDC_STEP_GRAPHS");
    int same = !st && !memcmp(b->rgb, c->rgb, (size_t)64 * 64 * 3);
    int differ = !st && memcmp(a->rgb, b->rgb, (size_t)64 * 64 * 3);
    sdc_images_free(a, 1), sdc_images_free(b, 1), sdc_images_free(c, 1);
    sdc_model_free(m);
    op_set_device(OP_DEV_CPU);
    CHECK(st == SDC_OK, "%s", sdc_last_error());
    CHECK(kept, "the UNet's and text encoders' runners were not kept after a request");
    /* the second request: 3 UNet steps and each encoder's layer stack (captured on its second call) */
    CHECK(launches == 5 && te_runs == 2, "the second request launched %ld graphs (%d for the text encoders), want 3 "
          "UNet steps + 2 encoders", launches, te_runs);
    CHECK(differ, "two prompts gave one image: the kept graph read the first request's context");
    CHECK(same, "the kept graph's image differs from the same request op by op");
}
