/* step_graph.h - the capture policy that the runners of repeated work (the
 * UNet step, the text encoders' layer stack) share: the first call runs its
 * body directly (it sizes the allocator's cache and the backend's scratch,
 * which a capture must not grow), the second records it into a step graph
 * (ops.h) and launches it, every later call launches it. Where the backend
 * has no graphs or the capture is refused, the body runs directly every
 * time, with the same results, and note() says why. */
#ifndef SDC_NN_STEP_GRAPH_H
#define SDC_NN_STEP_GRAPH_H

#include "backend/ops.h"

typedef struct {
    op_ctx *cx;  /* where the body's ops run and the graph is recorded */
    int enabled; /* 0: always direct */
    int calls, launches;
    op_graph *g;
    char note[256];
} step_graph;

/* body(ctx) must keep to ops.h's capture rules when enabled */
sdc_status step_graph_run(step_graph *s, sdc_status (*body)(void *ctx), void *ctx);
void step_graph_free(step_graph *s); /* the graph; the struct may be reused */
int64_t step_graph_bytes(const step_graph *s);
/* 0 when SDC_STEP_GRAPHS=0 asks for every call to run op by op (to compare) */
int step_graph_env_enabled(void);

#endif
