/* unet_runner.c - repeated UNet steps: inputs kept in activation memory,
 * the step run through step_graph (direct, captured, replayed). */
#include "nn/unet_runner.h"

#include <stdlib.h>

#include "backend/ops.h"
#include "nn/step_graph.h"

struct unet_runner {
    const sdc_unet *u;
    int B, H, W, M;
    unet_inputs in;
    float *y; /* the step's output, in activation memory (a graph writes it) */
    int64_t ny;
    step_graph sg;
};

sdc_status unet_runner_create(unet_runner **out, const sdc_unet *u, int B, int H, int W, const float *ctx, int M,
                              const unet_extra *extra, int graphs) {
    *out = NULL;
    unet_runner *r = calloc(1, sizeof *r);
    if (!r) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    r->u = u, r->B = B, r->H = H, r->W = W, r->M = M, r->sg.enabled = graphs, r->sg.cx = unet_ctx(u);
    r->ny = (int64_t)B * unet_get_config(u)->out_channels * H * W;
    sdc_status st = unet_inputs_upload(u, &r->in, B, H, W, ctx, M, extra);
    if (!st) st = op_alloc(r->sg.cx, &r->y, r->ny);
    if (st) {
        unet_runner_free(r);
        return st;
    }
    *out = r;
    return SDC_OK;
}

static sdc_status forward(void *p) {
    unet_runner *r = p;
    return unet_forward_act(r->u, r->in.x, r->B, r->H, r->W, r->in.t, r->in.ctx, r->M, &r->in.extra, r->y, NULL,
                            NULL);
}

sdc_status unet_runner_step(unet_runner *r, const float *x, const float *t, float *out) {
    SDC_TRY(unet_inputs_set_step(&r->in, x, t));
    SDC_TRY(step_graph_run(&r->sg, forward, r));
    return op_download(r->sg.cx, out, r->y, r->ny);
}

void unet_runner_free(unet_runner *r) {
    if (!r) return;
    step_graph_free(&r->sg);
    op_free(r->sg.cx, r->y);
    unet_inputs_free(&r->in);
    free(r);
}

int unet_runner_graph_steps(const unet_runner *r) { return r->sg.launches; }

int unet_runner_fits(const unet_runner *r, const sdc_unet *u, int B, int H, int W, int M, const unet_extra *extra,
                     int graphs) {
    return r && r->u == u && r->B == B && r->H == H && r->W == W && r->M == M && r->sg.enabled == graphs &&
           unet_inputs_same_extras(&r->in, u, extra);
}

sdc_status unet_runner_set_context(unet_runner *r, const float *ctx, const unet_extra *extra) {
    return unet_inputs_set_context(&r->in, ctx, extra);
}

int64_t unet_runner_graph_bytes(const unet_runner *r) { return step_graph_bytes(&r->sg); }
const char *unet_runner_graph_note(const unet_runner *r) { return r->sg.note; }
