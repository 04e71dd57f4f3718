/* test_unet.c - one UNet call of the tiny SD and SDXL models against
 * diffusers, intermediate by intermediate. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "harness.h"
#include "nn/unet.h"

typedef struct {
    st_file *g;
    double worst;
    char worst_name[64];
    int compared;
    char missing[64];
} dump_check;

static void check_dump(void *ctx, const char *name, const float *data, int ndim, const int64_t *shape) {
    dump_check *dc = ctx;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    int64_t gn;
    float *g = golden_f32(dc->g, name, &gn);
    if (!g) return; /* not every intermediate has a golden */
    double d = gn == n ? max_abs_diff(data, g, n) : INFINITY;
    if (d > dc->worst) {
        dc->worst = d;
        snprintf(dc->worst_name, sizeof dc->worst_name, "%s", name);
    }
    dc->compared++;
    free(g);
}

static void run_unet_golden(const char *model, const char *golden, int sdxl) {
    op_ctx *cx = test_cx();
    sdc_unet *u;
    st_file g;
    CHECK_OK(unet_load(&u, cx, fixture_path(model), NULL));
    CHECK_OK(st_open(&g, fixture_path(golden)));
    const st_tensor *xs = st_find(&g, "in.sample");
    const st_tensor *cs = st_find(&g, "in.encoder_hidden_states");
    CHECK(xs && cs, "golden inputs missing");
    int B = (int)xs->shape[0], H = (int)xs->shape[2], W = (int)xs->shape[3], M = (int)cs->shape[1];
    float *x = golden_f32(&g, "in.sample", NULL), *ctx = golden_f32(&g, "in.encoder_hidden_states", NULL);
    float *t1 = golden_f32(&g, "in.timestep", NULL);
    float t[8];
    for (int i = 0; i < B; i++) t[i] = t1[0];
    unet_extra ex = {0};
    float *te = NULL, *ti = NULL;
    if (sdxl) {
        ex.text_embeds = te = golden_f32(&g, "in.text_embeds", NULL);
        ex.time_ids = ti = golden_f32(&g, "in.time_ids", NULL);
    }
    int64_t n;
    float *ref = golden_f32(&g, "out.sample", &n);
    float *out = malloc((size_t)n * sizeof(float));
    dump_check dc = {.g = &g};
    sdc_status st = unet_forward(u, x, B, H, W, t, ctx, M, &ex, out, check_dump, &dc);
    double d = st ? INFINITY : max_abs_diff(out, ref, n);
    free(x), free(ctx), free(t1), free(te), free(ti), free(ref), free(out);
    st_close(&g);
    unet_free(u);
    CHECK(st == SDC_OK, "forward failed: %s", sdc_last_error());
    if (getenv("SDC_TEST_VERBOSE"))
        printf("     %s: out.sample diff %.3g, worst of %d intermediates %.3g (%s)\n", golden, d, dc.compared, dc.worst,
               dc.worst_name);
    CHECK(dc.compared >= 10, "only %d intermediates compared", dc.compared);
    CHECK(dc.worst < 1e-4, "intermediate %s differs by %g", dc.worst_name, dc.worst);
    CHECK(d < 1e-4, "out.sample differs by %g", d);
}

TEST(unet_tiny_sd_matches_diffusers) { run_unet_golden("models/tiny-sd/unet", "units/unet_tiny_sd.safetensors", 0); }

TEST(unet_tiny_sdxl_matches_diffusers) {
    run_unet_golden("models/tiny-sdxl/unet", "units/unet_tiny_sdxl.safetensors", 1);
}

TEST(unet_fp16_variant_loads) {
    op_ctx *cx = test_cx();
    sdc_unet *u;
    CHECK_OK(unet_load(&u, cx, fixture_path("models/tiny-sd/unet"), "fp16"));
    CHECK(unet_num_params(u) > 1000000, "params %lld", (long long)unet_num_params(u));
    unet_free(u);
}
