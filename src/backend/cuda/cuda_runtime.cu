/* cuda_runtime.cu - the backend's device, stream, cuBLAS handles, scratch,
 * activation arena and CUDA graphs; the dtype conversion and NaN/Inf count
 * kernels. Owns every piece of global state of the CUDA backend. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_common.cuh"

#define SCRATCH_SLOTS (4 + CU_SCRATCH_USER_SLOTS)

static struct {
    int ready, tried;
    sdc_status init_st;
    char init_msg[512];
    char name[256];
    int sm_count;
    cudaStream_t stream;
    cublasHandle_t blas;
    cublasLtHandle_t lt;
    void *blas_ws, *lt_ws;
    size_t lt_ws_bytes;
    /* scratch slots: 0-3 the ops' own (cuda_common.cuh), 4.. the backend's (cu_scratch) */
    void *scratch[SCRATCH_SLOTS];
    size_t scratch_bytes[SCRATCH_SLOTS];
    int scratch_pinned[SCRATCH_SLOTS]; /* handed out during a capture: a graph has its address */
    void **retired;                    /* grown-out pinned buffers, freed when no graph is left */
    int nretired, capretired;
    int graphs_alive;
} g;

#define WS_BYTES ((size_t)32 << 20)

sdc_status cu__fail_cuda(cudaError_t e, const char *op, const char *what) {
    /* a failed call also leaves its error as the thread's last error: cleared
     * here, or the next kernel launch check would report it again (sticky
     * errors stay in the context whatever is done) */
    cudaGetLastError();
    return sdc_fail(e == cudaErrorMemoryAllocation ? SDC_ERR_NOMEM : SDC_ERR_IO, "%s: %s (%s: %s)", op,
                    cudaGetErrorString(e), cudaGetErrorName(e), what);
}

sdc_status cu__fail_cublas(cublasStatus_t e, const char *op, const char *what) {
    return sdc_fail(e == CUBLAS_STATUS_ALLOC_FAILED ? SDC_ERR_NOMEM
                    : e == CUBLAS_STATUS_NOT_SUPPORTED || e == CUBLAS_STATUS_INVALID_VALUE ? SDC_ERR_UNSUPPORTED
                                                                                            : SDC_ERR_IO,
                    "%s: cuBLAS %s (%s)", op, cublasGetStatusString(e), what);
}

size_t cu_dtype_size(cu_dtype dt) { return dt == CU_F32 ? 4 : 2; }
const char *cu_dtype_name(cu_dtype dt) { return dt == CU_F32 ? "f32" : dt == CU_F16 ? "f16" : dt == CU_BF16 ? "bf16" : "?"; }

cudaStream_t cu__stream_get(void) { return g.stream; }
cublasHandle_t cu__cublas(void) { return g.blas; }
cublasLtHandle_t cu__lt(void) { return g.lt; }
void *cu__lt_workspace(size_t *bytes) {
    *bytes = g.lt_ws_bytes;
    return g.lt_ws;
}
int cu__sm_count(void) { return g.sm_count > 0 ? g.sm_count : 1; }
int cu_ready(void) { return g.ready; }
const char *cu_device_name(void) { return g.name; }
void *cu_stream(void) { return (void *)g.stream; }

/* Device memory in use as the driver reports it (context and other users of
 * the GPU included), sampled after every allocation: usage only grows at an
 * allocation, so the maximum of these samples is the peak. */
static size_t g_peak_used;
static void note_usage(void) {
    size_t fr = 0, tot = 0;
    if (cudaMemGetInfo(&fr, &tot) == cudaSuccess && tot - fr > g_peak_used) g_peak_used = tot - fr;
}

static sdc_status init_once(int device) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) return sdc_fail(SDC_ERR_UNSUPPORTED, "no CUDA device: %s", cudaGetErrorString(e));
    if (n <= 0) return sdc_fail(SDC_ERR_UNSUPPORTED, "no CUDA device: none found");
    if (device < 0 || device >= n)
        return sdc_fail(SDC_ERR_ARG, "cu_init: device %d out of range (%d device%s)", device, n, n == 1 ? "" : "s");
    CU_CK("cu_init", cudaSetDevice(device));
    cudaDeviceProp prop;
    CU_CK("cu_init", cudaGetDeviceProperties(&prop, device));
    if (prop.major < 8)
        return sdc_fail(SDC_ERR_UNSUPPORTED, "cu_init: %s is compute capability %d.%d; sdc needs 8.0 (Ampere) or newer",
                        prop.name, prop.major, prop.minor);
    snprintf(g.name, sizeof g.name, "%s", prop.name);
    g.sm_count = prop.multiProcessorCount;
    CU_CK("cu_init", cudaStreamCreateWithFlags(&g.stream, cudaStreamNonBlocking));
    CUBLAS_CK("cu_init", cublasCreate(&g.blas));
    CUBLAS_CK("cu_init", cublasSetStream(g.blas, g.stream));
    /* an explicit workspace keeps cuBLAS from allocating while a graph is captured */
    CU_CK("cu_init", cudaMalloc(&g.blas_ws, WS_BYTES));
    CUBLAS_CK("cu_init", cublasSetWorkspace(g.blas, g.blas_ws, WS_BYTES));
    CUBLAS_CK("cu_init", cublasLtCreate(&g.lt));
    CU_CK("cu_init", cudaMalloc(&g.lt_ws, WS_BYTES));
    note_usage();
    g.lt_ws_bytes = WS_BYTES;
    return SDC_OK;
}

sdc_status cu_init(int device) {
    if (g.tried) {
        if (g.init_st) return sdc_fail(g.init_st, "%s", g.init_msg);
        return SDC_OK;
    }
    g.tried = 1;
    g.init_st = init_once(device);
    if (g.init_st) {
        snprintf(g.init_msg, sizeof g.init_msg, "%s", sdc_last_error());
        cudaGetLastError(); /* clear the sticky-free error so later probes start clean */
        return g.init_st;
    }
    g.ready = 1;
    return SDC_OK;
}

/* ---- memory ---- */

size_t cu_mem_peak_used(void) {
    note_usage();
    return g_peak_used;
}

void cu_mem_peak_reset(void) {
    size_t fr = 0, tot = 0;
    g_peak_used = cudaMemGetInfo(&fr, &tot) == cudaSuccess ? tot - fr : 0;
}

static int capturing(void);

sdc_status cu_malloc(void **d_ptr, size_t bytes) {
    CU_READY("cu_malloc");
    *d_ptr = NULL;
    /* cudaMalloc is not recorded into a graph, but a thread-local capture
     * refuses it as potentially synchronising: allowed for this one call */
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    int cap = capturing();
    if (cap) cudaThreadExchangeStreamCaptureMode(&mode);
    cudaError_t e = cudaMalloc(d_ptr, bytes ? bytes : 1);
    if (e == cudaSuccess) note_usage();
    if (cap) cudaThreadExchangeStreamCaptureMode(&mode);
    if (e != cudaSuccess) {
        size_t fr = 0, tot = 0;
        cudaGetLastError();
        cudaMemGetInfo(&fr, &tot);
        return sdc_fail(SDC_ERR_NOMEM, "cu_malloc: %zu bytes: %s (%zu MiB free of %zu MiB)", bytes,
                        cudaGetErrorString(e), fr >> 20, tot >> 20);
    }
    return SDC_OK;
}

void cu_free(void *d_ptr) {
    if (d_ptr && g.ready) cudaFree(d_ptr);
}

sdc_status cu_upload(void *d_dst, const void *h_src, size_t bytes) {
    CU_READY("cu_upload");
    CU_CK("cu_upload", cudaMemcpyAsync(d_dst, h_src, bytes, cudaMemcpyHostToDevice, g.stream));
    CU_CK("cu_upload", cudaStreamSynchronize(g.stream));
    return SDC_OK;
}

sdc_status cu_download(void *h_dst, const void *d_src, size_t bytes) {
    CU_READY("cu_download");
    CU_CK("cu_download", cudaMemcpyAsync(h_dst, d_src, bytes, cudaMemcpyDeviceToHost, g.stream));
    CU_CK("cu_download", cudaStreamSynchronize(g.stream));
    return SDC_OK;
}

sdc_status cu_memset0(void *d_dst, size_t bytes) {
    CU_READY("cu_memset0");
    CU_CK("cu_memset0", cudaMemsetAsync(d_dst, 0, bytes, g.stream));
    return SDC_OK;
}

sdc_status cu_copy(void *d_dst, const void *d_src, size_t bytes) {
    CU_READY("cu_copy");
    CU_CK("cu_copy", cudaMemcpyAsync(d_dst, d_src, bytes, cudaMemcpyDeviceToDevice, g.stream));
    return SDC_OK;
}

sdc_status cu_sync(void) {
    CU_READY("cu_sync");
    CU_CK("cu_sync", cudaStreamSynchronize(g.stream));
    CU_CK("cu_sync", cudaGetLastError());
    return SDC_OK;
}

static int capturing(void) {
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (!g.ready || cudaStreamIsCapturing(g.stream, &cs) != cudaSuccess) return 0;
    return cs != cudaStreamCaptureStatusNone;
}
int cu_capturing(void) { return capturing(); }

/* A scratch buffer that a graph captured is baked into that graph: growing
 * the slot later (a larger shape run directly, the VAE after the UNet) must
 * not free it while a graph may still be launched. */
static sdc_status retire(void *p) {
    if (g.nretired == g.capretired) {
        int c = g.capretired ? 2 * g.capretired : 16;
        void **t = (void **)realloc(g.retired, (size_t)c * sizeof *t);
        if (!t) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
        g.retired = t;
        g.capretired = c;
    }
    g.retired[g.nretired++] = p;
    return SDC_OK;
}

sdc_status cu__scratch(int slot, size_t bytes, void **p, const char *op) {
    *p = NULL;
    if (slot < 0 || slot >= SCRATCH_SLOTS) return sdc_fail(SDC_ERR_ARG, "%s: scratch slot %d", op, slot);
    int cap = capturing();
    if (bytes <= g.scratch_bytes[slot]) {
        if (cap) g.scratch_pinned[slot] = 1;
        *p = g.scratch[slot];
        return SDC_OK;
    }
    if (cap)
        return sdc_fail(SDC_ERR_ARG, "%s: needs %zu bytes of scratch while a CUDA graph is captured; run the step once "
                                     "before capturing it", op, bytes);
    if (g.scratch[slot]) {
        if (g.scratch_pinned[slot] && g.graphs_alive > 0) {
            SDC_TRY(retire(g.scratch[slot]));
        } else {
            CU_CK(op, cudaStreamSynchronize(g.stream)); /* queued kernels may still read it */
            cudaFree(g.scratch[slot]);
        }
        g.scratch[slot] = NULL;
        g.scratch_bytes[slot] = 0;
        g.scratch_pinned[slot] = 0;
    }
    size_t want = bytes + bytes / 4; /* a little headroom against regrowing by a few bytes */
    cudaError_t e = cudaMalloc(&g.scratch[slot], want);
    if (e == cudaSuccess) note_usage();
    if (e != cudaSuccess) {
        cudaGetLastError();
        g.scratch[slot] = NULL;
        return sdc_fail(SDC_ERR_NOMEM, "%s: %zu bytes of scratch: %s", op, want, cudaGetErrorString(e));
    }
    g.scratch_bytes[slot] = want;
    *p = g.scratch[slot];
    return SDC_OK;
}

/* ---- activation arena ---- */

#define ARENA_BLOCKS 64
#define ARENA_ALIGN 256
static struct {
    char *base[ARENA_BLOCKS];
    size_t size[ARENA_BLOCKS];
    int nblocks, cur;     /* blocks held; the block allocations come from */
    size_t used;          /* bytes used in block cur */
    size_t in_use, high;  /* bytes in use over all blocks now; most of it this pass */
    size_t spill_high;    /* high-water mark of a pass that spilled past block 0 */
    int spilled;
    long mallocs;
    unsigned generation;
} A;

static size_t used_before(int block) {
    /* blocks before `block` are counted full: allocations never go back to them */
    size_t s = 0;
    for (int i = 0; i < block; i++) s += A.size[i];
    return s;
}

sdc_status cu_arena_alloc(void **d_ptr, size_t bytes) {
    CU_READY("cu_arena_alloc");
    size_t need = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (need == 0) need = ARENA_ALIGN;
    while (A.cur < A.nblocks && A.used + need > A.size[A.cur]) {
        if (A.cur + 1 >= A.nblocks) break;
        A.cur++;
        A.used = 0;
        A.spilled = 1;
    }
    if (A.cur >= A.nblocks || A.used + need > A.size[A.cur]) {
        if (A.nblocks == ARENA_BLOCKS) return sdc_fail(SDC_ERR_NOMEM, "cu_arena_alloc: more than %d blocks", ARENA_BLOCKS);
        if (capturing())
            return sdc_fail(SDC_ERR_ARG, "cu_arena_alloc: the arena must grow (%zu bytes) while a CUDA graph is captured; "
                                         "run the step once before capturing it", bytes);
        size_t sz = A.nblocks ? 2 * A.size[A.nblocks - 1] : ((size_t)64 << 20);
        if (sz < need) sz = need;
        void *p = NULL;
        cudaError_t e = cudaMalloc(&p, sz);
        if (e == cudaSuccess) note_usage();
        if (e != cudaSuccess) {
            cudaGetLastError();
            return sdc_fail(SDC_ERR_NOMEM, "cu_arena_alloc: %zu bytes: %s", sz, cudaGetErrorString(e));
        }
        A.mallocs++;
        A.base[A.nblocks] = (char *)p;
        A.size[A.nblocks] = sz;
        if (A.nblocks > 0) A.spilled = 1;
        A.cur = A.nblocks++;
        A.used = 0;
    }
    *d_ptr = A.base[A.cur] + A.used;
    A.used += need;
    A.in_use = used_before(A.cur) + A.used;
    if (A.in_use > A.high) A.high = A.in_use;
    if (A.spilled && A.in_use > A.spill_high) A.spill_high = A.in_use;
    return SDC_OK;
}

cu_arena_mark cu_arena_get_mark(void) {
    cu_arena_mark m = {A.cur, A.used};
    return m;
}

void cu_arena_release(cu_arena_mark m) {
    if (m.block > A.cur || (m.block == A.cur && m.used > A.used)) return; /* not a mark of this pass */
    A.cur = m.block;
    A.used = m.used;
    A.in_use = used_before(A.cur) + A.used;
}

sdc_status cu_arena_reset(void) {
    CU_READY("cu_arena_reset");
    if (A.spilled && A.nblocks > 1) {
        /* one block of the whole pass's size, so the next pass never spills */
        if (capturing()) return sdc_fail(SDC_ERR_ARG, "cu_arena_reset: called while a CUDA graph is captured");
        CU_CK("cu_arena_reset", cudaStreamSynchronize(g.stream));
        size_t total = used_before(A.nblocks);
        size_t want = A.spill_high > total ? A.spill_high : total;
        for (int i = 0; i < A.nblocks; i++) cudaFree(A.base[i]);
        A.nblocks = 0;
        void *p = NULL;
        cudaError_t e = cudaMalloc(&p, want);
        if (e == cudaSuccess) note_usage();
        if (e != cudaSuccess) {
            cudaGetLastError();
            return sdc_fail(SDC_ERR_NOMEM, "cu_arena_reset: %zu bytes: %s", want, cudaGetErrorString(e));
        }
        A.mallocs++;
        A.base[0] = (char *)p;
        A.size[0] = want;
        A.nblocks = 1;
        A.generation++;
    }
    A.cur = 0;
    A.used = 0;
    A.in_use = 0;
    A.spilled = 0;
    A.spill_high = 0;
    return SDC_OK;
}

size_t cu_arena_capacity(void) { return used_before(A.nblocks); }
size_t cu_arena_high_water(void) { return A.high; }
long cu_arena_mallocs(void) { return A.mallocs; }

/* ---- graphs ---- */

struct cu_graph {
    cudaGraphExec_t exec;
    unsigned generation;
};

sdc_status cu_graph_begin(void) {
    CU_READY("cu_graph_begin");
    CU_CK("cu_graph_begin", cudaStreamBeginCapture(g.stream, cudaStreamCaptureModeThreadLocal));
    return SDC_OK;
}

sdc_status cu_graph_end(cu_graph **out) {
    CU_READY("cu_graph_end");
    *out = NULL;
    cudaGraph_t graph = NULL;
    /* a call the capture refused invalidates it: the capture still ends here */
    cudaError_t ee = cudaStreamEndCapture(g.stream, &graph);
    if (ee != cudaSuccess || !graph) {
        if (graph) cudaGraphDestroy(graph);
        return cu__fail_cuda(ee != cudaSuccess ? ee : cudaErrorStreamCaptureInvalidated, "cu_graph_end",
                             "cudaStreamEndCapture");
    }
    cu_graph *cg = (cu_graph *)calloc(1, sizeof *cg);
    if (!cg) {
        cudaGraphDestroy(graph);
        return sdc_fail(SDC_ERR_NOMEM, "cu_graph_end: out of memory");
    }
    cudaError_t e = cudaGraphInstantiate(&cg->exec, graph, 0);
    cudaGraphDestroy(graph);
    if (e != cudaSuccess) {
        free(cg);
        return cu__fail_cuda(e, "cu_graph_end", "cudaGraphInstantiate");
    }
    cg->generation = A.generation;
    g.graphs_alive++;
    *out = cg;
    return SDC_OK;
}

sdc_status cu_graph_launch(const cu_graph *cg) {
    CU_READY("cu_graph_launch");
    if (!cg) return sdc_fail(SDC_ERR_ARG, "cu_graph_launch: no graph");
    if (cg->generation != A.generation)
        return sdc_fail(SDC_ERR_ARG, "cu_graph_launch: the arena was rebuilt after this graph was captured "
                                     "(its addresses are stale); capture it again");
    CU_CK("cu_graph_launch", cudaGraphLaunch(cg->exec, g.stream));
    return SDC_OK;
}

void cu_graph_free(cu_graph *cg) {
    if (!cg) return;
    if (g.ready) cudaGraphExecDestroy(cg->exec);
    free(cg);
    if (g.graphs_alive > 0 && --g.graphs_alive == 0) { /* no graph holds a scratch address any more */
        if (g.nretired && g.ready) cudaStreamSynchronize(g.stream);
        for (int i = 0; i < g.nretired; i++) cudaFree(g.retired[i]);
        g.nretired = 0;
        memset(g.scratch_pinned, 0, sizeof g.scratch_pinned);
    }
}

int cu_scratch_retired(void) { return g.nretired; }

sdc_status cu_scratch(int slot, size_t bytes, void **p) {
    if (slot < 0 || slot >= CU_SCRATCH_USER_SLOTS) return sdc_fail(SDC_ERR_ARG, "cu_scratch: slot %d", slot);
    return cu__scratch(4 + slot, bytes, p, "cu_scratch");
}

void cu_shutdown(void) {
    if (!g.ready) return;
    cudaStreamSynchronize(g.stream);
    for (int i = 0; i < A.nblocks; i++) cudaFree(A.base[i]);
    memset(&A, 0, sizeof A);
    for (int i = 0; i < SCRATCH_SLOTS; i++) cudaFree(g.scratch[i]);
    for (int i = 0; i < g.nretired; i++) cudaFree(g.retired[i]);
    free(g.retired);
    cublasLtDestroy(g.lt);
    cublasDestroy(g.blas);
    cudaFree(g.blas_ws);
    cudaFree(g.lt_ws);
    cudaStreamDestroy(g.stream);
    memset(&g, 0, sizeof g);
}

/* ---- conversion and the NaN/Inf count ---- */

template <typename D, typename S>
__global__ void convert_kernel(D *dst, const S *src, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        cu_st(dst + i, cu_ld(src + i));
}

sdc_status cu_convert(void *dst, cu_dtype dst_t, const void *src, cu_dtype src_t, int64_t n) {
    CU_READY("cu_convert");
    if (!cu__dtype_ok(dst_t) || !cu__dtype_ok(src_t) || n < 0 || (n && (!dst || !src)))
        return sdc_fail(SDC_ERR_ARG, "cu_convert: bad argument (n=%lld, dtypes %d -> %d)", (long long)n, src_t, dst_t);
    if (n == 0) return SDC_OK;
    if (dst_t == src_t) return cu_copy(dst, src, (size_t)n * cu_dtype_size(dst_t));
    CU_DISPATCH(dst_t, TD, CU_DISPATCH(src_t, TS, {
        convert_kernel<TD, TS><<<cu__blocks(n, 256), 256, 0, g.stream>>>((TD *)dst, (const TS *)src, n);
    }));
    CU_LAUNCH_CK("cu_convert");
    return SDC_OK;
}

template <typename T>
__global__ void nonfinite_kernel(const T *x, int64_t n, unsigned long long *count) {
    unsigned long long c = 0;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        c += !isfinite(cu_ld(x + i));
    for (int o = 16; o > 0; o >>= 1) c += __shfl_xor_sync(0xffffffffu, c, o);
    if ((threadIdx.x & 31) == 0 && c) atomicAdd(count, c);
}

sdc_status cu_count_nonfinite(const void *x, cu_dtype at, int64_t n, int64_t *count) {
    CU_READY("cu_count_nonfinite");
    *count = 0;
    if (!cu__dtype_ok(at) || n < 0 || (n && !x)) return sdc_fail(SDC_ERR_ARG, "cu_count_nonfinite: bad argument");
    if (n == 0) return SDC_OK;
    void *d = NULL;
    SDC_TRY(cu__scratch(2, sizeof(unsigned long long), &d, "cu_count_nonfinite"));
    CU_CK("cu_count_nonfinite", cudaMemsetAsync(d, 0, sizeof(unsigned long long), g.stream));
    CU_DISPATCH(at, T, { nonfinite_kernel<T><<<cu__blocks(n, 256), 256, 0, g.stream>>>((const T *)x, n, (unsigned long long *)d); });
    CU_LAUNCH_CK("cu_count_nonfinite");
    unsigned long long h = 0;
    SDC_TRY(cu_download(&h, d, sizeof h));
    *count = (int64_t)h;
    return SDC_OK;
}
