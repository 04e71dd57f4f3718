/* step_graph.c - direct, then captured, then replayed (step_graph.h). */
#include "nn/step_graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Record one call; on any refusal leave s->g NULL and say why in s->note. */
static void capture(step_graph *s, sdc_status (*body)(void *), void *ctx) {
    sdc_status st = op_graph_begin(s->cx);
    if (st) {
        snprintf(s->note, sizeof s->note, "%s", sdc_last_error());
        return;
    }
    st = body(ctx);
    char why[256];
    snprintf(why, sizeof why, "%s", st ? sdc_last_error() : "");
    sdc_status e = op_graph_end(s->cx, &s->g);
    if (e) snprintf(why, sizeof why, "%s", sdc_last_error()); /* the refusal the body stumbled on, if any */
    if (st || e) {
        op_graph_free(s->g);
        s->g = NULL;
        snprintf(s->note, sizeof s->note, "capture failed: %s", why);
    }
}

sdc_status step_graph_run(step_graph *s, sdc_status (*body)(void *), void *ctx) {
    if (s->enabled && !s->g && s->calls >= 1 && !s->note[0]) capture(s, body, ctx);
    s->calls++;
    if (!s->g) return body(ctx);
    SDC_TRY(op_graph_launch(s->g));
    s->launches++;
    return SDC_OK;
}

void step_graph_free(step_graph *s) {
    op_graph_free(s->g);
    s->g = NULL;
}

int64_t step_graph_bytes(const step_graph *s) { return s->g ? op_graph_bytes(s->g) : 0; }

int step_graph_env_enabled(void) {
    const char *e = getenv("SDC_STEP_GRAPHS");
    return !(e && !strcmp(e, "0"));
}
