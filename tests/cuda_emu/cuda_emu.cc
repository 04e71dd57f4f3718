/* cuda_emu.cc - the CUDA emulator's runtime: fibers for the threads of a
 * block, launch checks, device memory, streams, capture and graphs, error
 * state. What it models and why: cuda_emu.h. */
#include "cuda_emu.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <map>
#include <memory>

#include "cuda_emu_internal.h"

/* ---- 16-bit floats ---- */
namespace cu_emu {
uint16_t f32_to_f16(float f) {
    _Float16 h = (_Float16)f;
    uint16_t u;
    memcpy(&u, &h, 2);
    return u;
}
/* a table: without F16C the conversion is a libgcc call, and emulated
 * tensor-core tiles convert every operand */
static float f16_convert(uint16_t u) {
    _Float16 h;
    memcpy(&h, &u, 2);
    return (float)h;
}
static float *f16_table(void) {
    static float *t;
    if (!t) {
        float *n = (float *)malloc(65536 * sizeof(float));
        if (!n) return NULL;
        for (uint32_t u = 0; u < 65536; u++) n[u] = f16_convert((uint16_t)u);
        t = n;
    }
    return t;
}
float f16_to_f32(uint16_t u) {
    float *t = f16_table();
    return t ? t[u] : f16_convert(u);
}
uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN stays NaN */
    u += 0x7fffu + ((u >> 16) & 1);                                          /* to nearest, ties to even */
    return (uint16_t)(u >> 16);
}
float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
float elem_load(const void *p, elem_t t, size_t i) {
    if (t == ELEM_F32) return ((const float *)p)[i];
    uint16_t u = ((const uint16_t *)p)[i];
    return t == ELEM_F16 ? f16_to_f32(u) : bf16_to_f32(u);
}
void elem_store(void *p, elem_t t, size_t i, float v) {
    if (t == ELEM_F32) ((float *)p)[i] = v;
    else ((uint16_t *)p)[i] = t == ELEM_F16 ? f32_to_f16(v) : f32_to_bf16(v);
}
float tf32_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return f;
    u += 0xfffu + ((u >> 13) & 1);
    u &= 0xffffe000u;
    memcpy(&f, &u, 4);
    return f;
}
} // namespace cu_emu

/* ---- errors ---- */
static cudaError_t g_last = cudaSuccess;
static cudaError_t set_err(cudaError_t e) {
    if (e != cudaSuccess) g_last = e;
    return e;
}
cudaError_t cudaGetLastError(void) {
    cudaError_t e = g_last;
    g_last = cudaSuccess;
    return e;
}

static const struct {
    cudaError_t e;
    const char *name, *text;
} k_errors[] = {
    {cudaSuccess, "cudaSuccess", "no error"},
    {cudaErrorInvalidValue, "cudaErrorInvalidValue", "invalid argument"},
    {cudaErrorMemoryAllocation, "cudaErrorMemoryAllocation", "out of memory"},
    {cudaErrorInitializationError, "cudaErrorInitializationError", "initialization error"},
    {cudaErrorInvalidConfiguration, "cudaErrorInvalidConfiguration", "invalid configuration argument"},
    {cudaErrorNoDevice, "cudaErrorNoDevice", "no CUDA-capable device is detected"},
    {cudaErrorInvalidDevice, "cudaErrorInvalidDevice", "invalid device ordinal"},
    {cudaErrorInvalidResourceHandle, "cudaErrorInvalidResourceHandle", "invalid resource handle"},
    {cudaErrorMisalignedAddress, "cudaErrorMisalignedAddress", "misaligned address"},
    {cudaErrorLaunchFailure, "cudaErrorLaunchFailure", "unspecified launch failure"},
    {cudaErrorStreamCaptureUnsupported, "cudaErrorStreamCaptureUnsupported",
     "operation not permitted when stream is capturing"},
    {cudaErrorStreamCaptureInvalidated, "cudaErrorStreamCaptureInvalidated",
     "operation failed due to a previous error during capture"},
    {cudaErrorStreamCaptureWrongThread, "cudaErrorStreamCaptureWrongThread",
     "attempt to terminate a thread-local capture sequence from another thread"},
};
const char *cudaGetErrorString(cudaError_t e) {
    for (auto &k : k_errors)
        if (k.e == e) return k.text;
    return "unknown error";
}
const char *cudaGetErrorName(cudaError_t e) {
    for (auto &k : k_errors)
        if (k.e == e) return k.name;
    return "cudaErrorUnknown";
}

namespace cu_emu {
void warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cuda-emu: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}
} // namespace cu_emu

/* ---- the device ---- */
static int env_int(const char *name, int dflt) {
    const char *e = getenv(name);
    return e && *e ? atoi(e) : dflt;
}
/* SDC_CUDA_EMU_SMS: the multiprocessor count (small, so grid-stride loops
 * take more than one lap); SDC_CUDA_EMU_MEM_MB: the device memory size */
static int sm_count(void) { return env_int("SDC_CUDA_EMU_SMS", 2); }
static size_t mem_total(void) { return (size_t)env_int("SDC_CUDA_EMU_MEM_MB", 16384) << 20; }
#define SMEM_DEFAULT (48u << 10)
#define SMEM_OPTIN (227u << 10)

cudaError_t cudaGetDeviceCount(int *n) {
    *n = 1;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return set_err(d == 0 ? cudaSuccess : cudaErrorInvalidDevice); }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d) {
    if (d != 0) return set_err(cudaErrorInvalidDevice);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "CUDA emulator (CPU, sdc tests)");
    p->totalGlobalMem = mem_total();
    p->sharedMemPerBlock = SMEM_DEFAULT;
    p->sharedMemPerBlockOptin = SMEM_OPTIN;
    p->multiProcessorCount = sm_count();
    p->major = 9;
    p->minor = 0;
    p->maxThreadsPerBlock = 1024;
    return cudaSuccess;
}

/* ---- device memory: one heap block per allocation, poisoned ---- */
static std::map<uintptr_t, size_t> g_allocs;
static size_t g_used;

namespace cu_emu {
/* [p, p+n) inside one allocation? */
bool is_device(const void *p, size_t n) {
    uintptr_t a = (uintptr_t)p;
    auto it = g_allocs.upper_bound(a);
    if (it == g_allocs.begin()) return false;
    --it;
    return a >= it->first && a + n <= it->first + it->second;
}
} // namespace cu_emu

cudaError_t cudaMalloc(void **p, size_t bytes) {
    *p = NULL;
    cudaError_t e = cu_emu::capture_unsafe_call("cudaMalloc");
    if (e) return set_err(e);
    if (bytes == 0) return cudaSuccess;
    if (bytes > mem_total() - g_used) return set_err(cudaErrorMemoryAllocation);
    void *q = NULL;
    if (posix_memalign(&q, 256, bytes)) return set_err(cudaErrorMemoryAllocation);
    memset(q, 0xff, bytes); /* NaN in f32, f16 and bf16: a GPU's fresh memory is garbage */
    g_allocs[(uintptr_t)q] = bytes;
    g_used += bytes;
    *p = q;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    cudaError_t e = cu_emu::capture_unsafe_call("cudaFree");
    if (e) return set_err(e);
    auto it = g_allocs.find((uintptr_t)p);
    if (it == g_allocs.end()) {
        cu_emu::warn("cudaFree(%p): not an allocation's start", p);
        return set_err(cudaErrorInvalidValue);
    }
    g_used -= it->second;
    g_allocs.erase(it);
    free(p);
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *fr, size_t *tot) {
    *tot = mem_total();
    *fr = *tot - g_used;
    return cudaSuccess;
}

/* a copy's destination (dn bytes from dst) and source (sn from src) are where its kind says */
static bool copy_ok(void *dst, size_t dn, const void *src, size_t sn, cudaMemcpyKind k, const char *what) {
    bool dd = k == cudaMemcpyDeviceToDevice || k == cudaMemcpyHostToDevice;
    bool sd = k == cudaMemcpyDeviceToDevice || k == cudaMemcpyDeviceToHost;
    bool bad_dst = dd && !cu_emu::is_device(dst, dn);
    if (bad_dst || (sd && !cu_emu::is_device(src, sn))) {
        cu_emu::warn("%s: the %s range [%p, +%zu) is not inside one device allocation", what,
                     bad_dst ? "destination" : "source", bad_dst ? dst : (void *)src, bad_dst ? dn : sn);
        return false;
    }
    if ((!dd && cu_emu::is_device(dst, 1)) || (!sd && cu_emu::is_device(src, 1))) {
        cu_emu::warn("%s: a device pointer given as host memory", what);
        return false;
    }
    return true;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind k, cudaStream_t s) {
    if (!copy_ok(dst, n, src, n, k, "cudaMemcpyAsync")) return set_err(cudaErrorInvalidValue);
    if (k != cudaMemcpyDeviceToDevice && cu_emu::stream_capturing(s))
        return set_err(cu_emu::capture_refuse(s, "cudaMemcpyAsync to or from (pageable) host memory"));
    return set_err(cu_emu::enqueue(s, "cudaMemcpyAsync", [=] {
        if (n) memmove(dst, src, n);
        return cudaSuccess;
    }));
}

cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind k, cudaStream_t s) {
    if (width > dpitch || width > spitch) return set_err(cudaErrorInvalidValue);
    if (height == 0 || width == 0) return cudaSuccess;
    size_t dn = dpitch * (height - 1) + width, sn = spitch * (height - 1) + width;
    if (!copy_ok(dst, dn, src, sn, k, "cudaMemcpy2DAsync")) return set_err(cudaErrorInvalidValue);
    if (k != cudaMemcpyDeviceToDevice && cu_emu::stream_capturing(s))
        return set_err(cu_emu::capture_refuse(s, "cudaMemcpy2DAsync to or from (pageable) host memory"));
    return set_err(cu_emu::enqueue(s, "cudaMemcpy2DAsync", [=] {
        for (size_t r = 0; r < height; r++) memmove((char *)dst + r * dpitch, (const char *)src + r * spitch, width);
        return cudaSuccess;
    }));
}

cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s) {
    if (n && !cu_emu::is_device(p, n)) {
        cu_emu::warn("cudaMemsetAsync of %zu bytes at %p: not inside one device allocation", n, p);
        return set_err(cudaErrorInvalidValue);
    }
    return set_err(cu_emu::enqueue(s, "cudaMemsetAsync", [=] {
        memset(p, v, n);
        return cudaSuccess;
    }));
}

/* ---- kernels: launch checks, then the grid on fibers ---- */
static std::map<const void *, int> g_max_dyn_smem; /* cudaFuncAttributeMaxDynamicSharedMemorySize */

cudaError_t cu_emu::func_set_attribute(const void *fn, int attr, int value) {
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return set_err(cudaErrorInvalidValue);
    if (value < 0 || (unsigned)value > SMEM_OPTIN) {
        cu_emu::warn("cudaFuncSetAttribute: %d bytes of dynamic shared memory > the %u the device allows", value,
                     SMEM_OPTIN);
        return set_err(cudaErrorInvalidValue);
    }
    g_max_dyn_smem[fn] = value;
    return cudaSuccess;
}

void cu_emu::enqueue_kernel(const launch_cfg &c, const void *fn, void (*body)(void *), void *ctx, void (*drop)(void *)) {
    std::shared_ptr<void> holder(ctx, drop);
    uint64_t threads = (uint64_t)c.block.x * c.block.y * c.block.z;
    unsigned smax = SMEM_DEFAULT;
    auto it = g_max_dyn_smem.find(fn);
    if (it != g_max_dyn_smem.end()) smax = (unsigned)it->second;
    const char *why = NULL;
    char buf[256];
    if (threads == 0 || threads > 1024 || c.block.z > 64) why = "threads per block must be 1..1024 (z <= 64)";
    else if (c.grid.x == 0 || c.grid.y == 0 || c.grid.z == 0 || c.grid.x > 2147483647u || c.grid.y > 65535 ||
             c.grid.z > 65535)
        why = "grid dimensions out of range";
    else if (c.smem > smax) {
        snprintf(buf, sizeof buf, "%zu bytes of dynamic shared memory > %u (%s)", c.smem, smax,
                 it == g_max_dyn_smem.end() ? "over 48 KiB needs cudaFuncSetAttribute first" : "the attribute set");
        why = buf;
    }
    if (why) {
        cu_emu::warn("launch of %s <<<(%u,%u,%u), (%u,%u,%u), %zu>>>: %s", c.name, c.grid.x, c.grid.y, c.grid.z,
                     c.block.x, c.block.y, c.block.z, c.smem, why);
        set_err(cudaErrorInvalidConfiguration);
        return;
    }
    launch_cfg cc = c;
    set_err(cu_emu::enqueue(c.stream, c.name, [cc, body, holder] { return run_grid(cc, body, holder.get()); }));
}
