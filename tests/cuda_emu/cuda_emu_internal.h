/* cuda_emu_internal.h - what the emulator's files share (cuda_emu.h is the
 * part the emulated sources see). */
#ifndef SDC_CUDA_EMU_INTERNAL_H
#define SDC_CUDA_EMU_INTERNAL_H

#include <functional>

#include "cuda_emu.h"

namespace cu_emu {
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* element i of an array of f32, f16 or bf16, in f32; stored with rounding to nearest */
enum elem_t { ELEM_F32, ELEM_F16, ELEM_BF16 };
float elem_load(const void *p, elem_t t, size_t i);
void elem_store(void *p, elem_t t, size_t i, float v);
/* an f32 operand as TF32 tensor cores take it: 10 mantissa bits, to nearest */
float tf32_round(float f);
/* [p, p+n) lies inside one device allocation */
bool is_device(const void *p, size_t n);
/* Work on stream s: run now (its error returned), or recorded into the
 * graph when s is being captured (cudaErrorStreamCaptureInvalidated once
 * the capture was broken). */
cudaError_t enqueue(cudaStream_t s, const char *what, std::function<cudaError_t()> fn);
bool stream_capturing(cudaStream_t s);
/* An operation a capture cannot hold: breaks the capture of s. */
cudaError_t capture_refuse(cudaStream_t s, const char *what);
/* A call that is "potentially unsafe" during a capture (allocation, free,
 * synchronisation): refused, and the capture broken, unless this thread's
 * capture mode is relaxed. */
cudaError_t capture_unsafe_call(const char *what);
/* Every block of the grid, one at a time, each thread a fiber running body(ctx). */
cudaError_t run_grid(const launch_cfg &c, void (*body)(void *), void *ctx);
} // namespace cu_emu

#endif
