/* clip_text_runner.h - a text encoder called request after request with the
 * same shapes and outputs (the pipeline's prompt encoding): its buffers
 * stay in activation memory, and its layer stack - all but the token lookup
 * and the EOS pooling, which read host token ids - runs through step_graph:
 * on a backend with step graphs (CUDA, the emulated device) the second call
 * is captured and every later one is a single launch. */
#ifndef SDC_TEXT_CLIP_TEXT_RUNNER_H
#define SDC_TEXT_CLIP_TEXT_RUNNER_H

#include "text/clip_text_model.h"

typedef struct clip_runner clip_runner;

/* ids [B, T]; hidden state `layer` (0 = embeddings .. num_layers) as the
 * output, through the final norm when final_norm; project != 0 also gives
 * the pooled projection (projection models). graphs = 0: never captured. */
sdc_status clip_runner_create(clip_runner **out, const clip_text_model *m, int B, int T, int layer, int final_norm,
                              int project, int graphs);
int clip_runner_fits(const clip_runner *r, const clip_text_model *m, int B, int T, int layer, int final_norm,
                     int project, int graphs);
/* hidden[B, T, D] and, when the runner projects, text_embeds[B, projection_dim] (host memory) */
sdc_status clip_runner_run(clip_runner *r, const int64_t *ids, float *hidden, float *text_embeds);
void clip_runner_free(clip_runner *r);
int clip_runner_graph_runs(const clip_runner *r); /* calls served by a graph launch */

#endif
