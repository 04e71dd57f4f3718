/* clip_text_runner.c - the text encoder with resident buffers and its layer
 * stack through step_graph (clip_text_runner.h). */
#include "text/clip_text_runner.h"

#include <stdlib.h>

#include "backend/ops.h"
#include "nn/step_graph.h"

struct clip_runner {
    const clip_text_model *m;
    int B, T, layer, final_norm, project, n; /* n: layers that run */
    float *x, *ws, *out, *last, *pool, *te;  /* activation memory */
    step_graph sg;
};

void clip_runner_free(clip_runner *r) {
    if (!r) return;
    step_graph_free(&r->sg);
    op_ctx *cx = r->sg.cx;
    op_free(cx, r->x), op_free(cx, r->ws), op_free(cx, r->out), op_free(cx, r->last), op_free(cx, r->pool);
    op_free(cx, r->te);
    free(r);
}

sdc_status clip_runner_create(clip_runner **out, const clip_text_model *m, int B, int T, int layer, int final_norm,
                              int project, int graphs) {
    *out = NULL;
    int L = clip_text_num_layers(m), D = clip_text_hidden_size(m), P = clip_text_projection_dim(m);
    if (B < 1 || T < 1 || layer < 0 || layer > L)
        return sdc_fail(SDC_ERR_ARG, "clip text encoder: %d x %d tokens, hidden state %d of %d", B, T, layer, L);
    if (project && !P)
        return sdc_fail(SDC_ERR_ARG, "clip text encoder: text_embeds requested from a model without text_projection");
    clip_runner *r = calloc(1, sizeof *r);
    if (!r) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    r->m = m, r->B = B, r->T = T, r->layer = layer, r->final_norm = final_norm, r->project = project;
    r->n = project ? L : layer;
    r->sg.enabled = graphs;
    op_ctx *cx = r->sg.cx = clip_text_ctx(m);
    int64_t ND = (int64_t)B * T * D;
    sdc_status st;
    if ((st = op_alloc(cx, &r->x, ND)) || (st = op_alloc(cx, &r->ws, clip_text_workspace_floats(m, B, T))) ||
        (st = op_alloc(cx, &r->out, ND)) ||
        (project && ((st = op_alloc(cx, &r->last, ND)) || (st = op_alloc(cx, &r->pool, (int64_t)B * D)) ||
                     (st = op_alloc(cx, &r->te, (int64_t)B * P))))) {
        clip_runner_free(r);
        return st;
    }
    *out = r;
    return SDC_OK;
}

int clip_runner_fits(const clip_runner *r, const clip_text_model *m, int B, int T, int layer, int final_norm,
                     int project, int graphs) {
    return r && r->m == m && r->B == B && r->T == T && r->layer == layer && r->final_norm == final_norm &&
           r->project == project && r->sg.enabled == graphs;
}

static sdc_status layers(void *p) {
    clip_runner *r = p;
    return clip_text_layers(r->m, r->x, r->B, r->T, r->n, r->ws, r->layer, r->final_norm, r->out, r->last);
}

sdc_status clip_runner_run(clip_runner *r, const int64_t *ids, float *hidden, float *text_embeds) {
    SDC_TRY(clip_text_embed(r->m, ids, r->B, r->T, r->x));
    SDC_TRY(step_graph_run(&r->sg, layers, r));
    SDC_TRY(op_download(r->sg.cx, hidden, r->out, (int64_t)r->B * r->T * clip_text_hidden_size(r->m)));
    if (!r->project) return SDC_OK;
    SDC_TRY(clip_text_pool_project(r->m, ids, r->B, r->T, r->last, r->pool, r->te));
    return op_download(r->sg.cx, text_embeds, r->te, (int64_t)r->B * clip_text_projection_dim(r->m));
}

int clip_runner_graph_runs(const clip_runner *r) { return r->sg.launches; }
