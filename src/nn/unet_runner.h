/* unet_runner.h - the UNet called once per denoising step with the same
 * shapes: the text context and the other per-request inputs are uploaded
 * once, each step uploads only its latents and timesteps, and on a backend
 * with step graphs (ops.h: CUDA, the emulated device) the second step is
 * captured and every later one is a single graph launch. The first step
 * runs directly: it sizes the allocator's cache and the backend's scratch,
 * which a capture must not grow. Where capture is unavailable or fails the
 * steps run directly, with the same results. */
#ifndef SDC_NN_UNET_RUNNER_H
#define SDC_NN_UNET_RUNNER_H

#include "nn/unet.h"

typedef struct unet_runner unet_runner;

/* B rows of H x W latents; ctx[B, M, cross_dim] and extra in host memory
 * (copied). graphs = 0 never captures (benchmarks compare both). */
sdc_status unet_runner_create(unet_runner **out, const sdc_unet *u, int B, int H, int W, const float *ctx, int M,
                              const unet_extra *extra, int graphs);
/* out[B, out_channels, H, W] for x[B, in_channels, H, W] at timesteps t[B]
 * (host memory). */
sdc_status unet_runner_step(unet_runner *r, const float *x, const float *t, float *out);
void unet_runner_free(unet_runner *r);

/* Steps served by a graph launch so far; and why no graph is used ("" while
 * none was refused: not tried yet, or in use). */
int unet_runner_graph_steps(const unet_runner *r);
const char *unet_runner_graph_note(const unet_runner *r);

/* Across requests: a runner (and its graph) serves a later request of the
 * same UNet, shapes, conditioning tensors and graph setting; the request's
 * context goes into the same buffers. unet_runner_graph_bytes is the device
 * memory its graph keeps (0 without one): what keeping it costs. */
int unet_runner_fits(const unet_runner *r, const sdc_unet *u, int B, int H, int W, int M, const unet_extra *extra,
                     int graphs);
sdc_status unet_runner_set_context(unet_runner *r, const float *ctx, const unet_extra *extra);
int64_t unet_runner_graph_bytes(const unet_runner *r);

#endif
