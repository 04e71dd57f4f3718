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
#include "family/model.h"
#include "text/clip_text_runner.h"

/* on the caller's context */
static void replays_current_inputs(op_ctx *cx) {
    int64_t live = op_live_allocations(cx);
    float *x, *y, h[4] = {1, 2, 3, 4}, o[4];
    CHECK_OK(op_alloc(cx, &x, 4));
    CHECK_OK(op_alloc(cx, &y, 4));
    CHECK_OK(op_upload(cx, x, h, 4));
    CHECK_OK(op_graph_begin(cx));
    CHECK(op_graph_capturing(cx), "not capturing after op_graph_begin");
    float *t;
    CHECK_OK(op_alloc(cx, &t, 4)); /* a temporary inside the step, freed before the end */
    op_copy(cx, t, x, 4);
    op_scale(cx, t, 2.0f, 4);
    op_affine(cx, y, t, 1.0f, 0.5f, 4);
    op_free(cx, t);
    op_graph *g;
    CHECK_OK(op_graph_end(cx, &g));
    long n0 = op_graph_launches();
    CHECK_OK(op_graph_launch(g));
    CHECK_OK(op_download(cx, o, y, 4));
    CHECK(o[0] == 2.5f && o[3] == 8.5f, "first launch gave %g %g", o[0], o[3]);
    float h2[4] = {10, 20, 30, 40};
    CHECK_OK(op_upload(cx, x, h2, 4));
    CHECK_OK(op_graph_launch(g));
    CHECK_OK(op_download(cx, o, y, 4));
    CHECK(o[0] == 20.5f && o[3] == 80.5f, "second launch gave %g %g (the inputs at capture time?)", o[0], o[3]);
    CHECK(op_graph_launches() == n0 + 2, "launch counter");
    op_graph_free(g);
    op_free(cx, x);
    op_free(cx, y);
    CHECK(op_live_allocations(cx) == live, "%lld buffers left", (long long)(op_live_allocations(cx) - live));
}

static void refuses_host_round_trips(op_ctx *cx) {
    float *x, h[4] = {0};
    CHECK_OK(op_alloc(cx, &x, 4));
    op_graph *g = (op_graph *)&g;
    /* a download inside the capture: refused at once, and reported at the end */
    CHECK_OK(op_graph_begin(cx));
    CHECK(op_download(cx, h, x, 4) != SDC_OK, "op_download accepted while capturing");
    CHECK(op_graph_end(cx, &g) != SDC_OK && !g, "a capture with a download was accepted");
    CHECK(strstr(sdc_last_error(), "op_download"), "message: %s", sdc_last_error());
    /* a precision change (void op) is reported at the end too */
    CHECK_OK(op_graph_begin(cx));
    op_set_precision(cx, OP_F16);
    CHECK(op_graph_end(cx, &g) != SDC_OK, "a capture with op_set_precision was accepted");
    CHECK(strstr(sdc_last_error(), "op_set_precision"), "message: %s", sdc_last_error());
    /* a buffer allocated in the capture and still held at its end */
    CHECK_OK(op_graph_begin(cx));
    float *t;
    CHECK_OK(op_alloc(cx, &t, 4));
    CHECK(op_graph_end(cx, &g) != SDC_OK, "a capture keeping a buffer of its own was accepted");
    CHECK(strstr(sdc_last_error(), "still in use"), "message: %s", sdc_last_error());
    op_free(cx, t); /* still the caller's */
    /* no nesting, no end without a begin; another context runs its ops
     * meanwhile (a capture is its context's, not the process's) */
    CHECK_OK(op_graph_begin(cx));
    CHECK(op_graph_begin(cx) != SDC_OK, "nested capture accepted");
    op_ctx *other = test_cx();
    float *o, v[2] = {1, 2}, back[2];
    CHECK_OK(op_alloc(other, &o, 2));
    CHECK_OK(op_upload(other, o, v, 2));
    op_scale(other, o, 3.0f, 2);
    CHECK_OK(op_download(other, back, o, 2));
    op_free(other, o);
    CHECK(back[0] == 3.0f && back[1] == 6.0f, "a CPU context's ops were held up by another context's capture");
    CHECK(!op_graph_capturing(other), "the capture leaked into another context");
    op_copy(cx, x, x + 2, 2);
    CHECK_OK(op_graph_end(cx, &g));
    CHECK_OK(op_graph_launch(g));
    CHECK_OK(op_sync(cx));
    op_graph *none;
    CHECK(op_graph_end(cx, &none) != SDC_OK && !none, "op_graph_end without a capture accepted");
    op_graph_free(g);
    op_free(cx, x);
}

/* unet_runner with and without graphs: 4 steps of new latents and timesteps */
static void runner_matches_direct(const char *model, op_device dev) {
    sdc_load_options lo = {.device = dev == OP_DEV_CUDA ? "cuda" : "emulated"};
    sdc_model *m = NULL;
    CHECK_OK(sdc_model_load(&m, fixture_path(model), &lo));
    op_set_precision(m->cx, m->unet_dt);
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
    sdc_model_free(m);
    CHECK(st == SDC_OK, "%s: %s", model, sdc_last_error());
    CHECK(gsteps == 3 && dsteps == 0, "%s: %d steps from a graph (note: %s), %d without graphs", model, gsteps, note,
          dsteps);
    CHECK(same, "%s: graph replays differ from the direct steps", model);
}

TEST(step_graph_replays_current_inputs) {
    op_ctx *cx;
    CHECK_OK(op_ctx_create(&cx, OP_DEV_EMULATED, 0));
    replays_current_inputs(cx);
    op_ctx_free(cx);
}

TEST(step_graph_refuses_host_round_trips) {
    op_ctx *cx;
    CHECK_OK(op_ctx_create(&cx, OP_DEV_EMULATED, 0));
    refuses_host_round_trips(cx);
    op_ctx_free(cx);
    CHECK(op_graph_begin(test_cx()) == SDC_ERR_UNSUPPORTED, "the CPU backend claims step graphs");
    CHECK(!op_graph_capturing(test_cx()), "capturing after a refused begin");
}

TEST(step_graph_unet_runner_emulated) {
    runner_matches_direct("models/tiny-sd", OP_DEV_EMULATED);
    runner_matches_direct("models/tiny-sdxl", OP_DEV_EMULATED);
}

TEST(step_graph_cuda) {
    op_ctx *cx;
    if (op_ctx_create(&cx, OP_DEV_CUDA, 0)) SKIP("%s", sdc_last_error());
    replays_current_inputs(cx);
    refuses_host_round_trips(cx);
    op_ctx_free(cx);
    if (test_failed()) return;
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
    sdc_load_options lo = {.device = "emulated"};
    CHECK_OK(sdc_model_load(&m, fixture_path("models/tiny-sdxl"), &lo));
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
    CHECK(st == SDC_OK, "%s", sdc_last_error());
    CHECK(kept, "the UNet's and text encoders' runners were not kept after a request");
    /* the second request: 3 UNet steps and each encoder's layer stack (captured on its second call) */
    CHECK(launches == 5 && te_runs == 2, "the second request launched %ld graphs (%d for the text encoders), want 3 "
          "UNet steps + 2 encoders", launches, te_runs);
    CHECK(differ, "two prompts gave one image: the kept graph read the first request's context");
    CHECK(same, "the kept graph's image differs from the same request op by op");
}
