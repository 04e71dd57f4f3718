/* emu_stream.cc - streams, stream capture and graphs of the CUDA emulator.
 * Work runs at once in stream order (one stream is all the backend uses);
 * while a stream is captured it is recorded instead, with its arguments as
 * they were at capture time, and cudaGraphLaunch replays the record. The
 * capture rules are CUDA's: synchronising a capturing stream, a copy to or
 * from host memory, or a "potentially unsafe" call (cudaMalloc, cudaFree)
 * outside relaxed mode break the capture, and cudaStreamEndCapture then
 * fails with cudaErrorStreamCaptureInvalidated. */
#include <memory>
#include <string>
#include <vector>

#include "cuda_emu_internal.h"

struct emu_node {
    std::string what;
    std::function<cudaError_t()> fn;
};
typedef std::vector<std::shared_ptr<emu_node>> node_list;

struct cu_emu_graph {
    node_list nodes;
};
struct cu_emu_graph_exec {
    node_list nodes;
};
struct cu_emu_stream {
    bool capturing, invalid;
    cudaStreamCaptureMode mode;
    cu_emu_graph *graph;
    std::string why; /* what broke the capture */
};

static cu_emu_stream g_legacy; /* stream 0 */
static std::vector<cu_emu_stream *> g_streams;
static thread_local cudaStreamCaptureMode t_mode = cudaStreamCaptureModeGlobal;

static cu_emu_stream *stream_of(cudaStream_t s) { return s ? (cu_emu_stream *)s : &g_legacy; }

static void invalidate(cu_emu_stream *st, const char *what) {
    if (!st->invalid) st->why = what;
    st->invalid = true;
}

bool cu_emu::stream_capturing(cudaStream_t s) { return stream_of(s)->capturing; }

cudaError_t cu_emu::capture_refuse(cudaStream_t s, const char *what) {
    invalidate(stream_of(s), what);
    return cudaErrorStreamCaptureUnsupported;
}

cudaError_t cu_emu::capture_unsafe_call(const char *what) {
    if (t_mode == cudaStreamCaptureModeRelaxed) return cudaSuccess;
    cudaError_t e = cudaSuccess;
    for (cu_emu_stream *st : g_streams)
        if (st->capturing && st->mode != cudaStreamCaptureModeRelaxed) {
            invalidate(st, what);
            e = cudaErrorStreamCaptureUnsupported;
        }
    return e;
}

cudaError_t cu_emu::enqueue(cudaStream_t s, const char *what, std::function<cudaError_t()> fn) {
    cu_emu_stream *st = stream_of(s);
    if (!st->capturing) return fn();
    if (st->invalid) return cudaErrorStreamCaptureInvalidated;
    st->graph->nodes.push_back(std::make_shared<emu_node>(emu_node{what, std::move(fn)}));
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    cu_emu_stream *st = new cu_emu_stream();
    g_streams.push_back(st);
    *s = (cudaStream_t)st;
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t s) {
    if (!s) return cudaSuccess;
    for (size_t i = 0; i < g_streams.size(); i++)
        if (g_streams[i] == (cu_emu_stream *)s) {
            g_streams.erase(g_streams.begin() + (long)i);
            cu_emu_stream *st = (cu_emu_stream *)s;
            delete st->graph;
            delete st;
            return cudaSuccess;
        }
    cudaGetLastError();
    return cudaErrorInvalidResourceHandle;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    cu_emu_stream *st = stream_of(s);
    if (st->capturing) {
        invalidate(st, "cudaStreamSynchronize");
        return cudaErrorStreamCaptureUnsupported;
    }
    return cu_emu::capture_unsafe_call("cudaStreamSynchronize");
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
    if (!s) return cudaErrorStreamCaptureUnsupported; /* the legacy stream cannot be captured */
    cu_emu_stream *st = stream_of(s);
    if (st->capturing) return cudaErrorInvalidValue;
    st->capturing = true;
    st->invalid = false;
    st->why.clear();
    st->mode = mode;
    st->graph = new cu_emu_graph();
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g) {
    cu_emu_stream *st = stream_of(s);
    *g = NULL;
    if (!st->capturing) return cudaErrorInvalidValue;
    st->capturing = false;
    if (st->invalid) {
        delete st->graph;
        st->graph = NULL;
        return cudaErrorStreamCaptureInvalidated;
    }
    *g = st->graph;
    st->graph = NULL;
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status) {
    cu_emu_stream *st = stream_of(s);
    *status = !st->capturing ? cudaStreamCaptureStatusNone
              : st->invalid  ? cudaStreamCaptureStatusInvalidated
                             : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

cudaError_t cudaThreadExchangeStreamCaptureMode(cudaStreamCaptureMode *mode) {
    cudaStreamCaptureMode old = t_mode;
    t_mode = *mode;
    *mode = old;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long flags) {
    if (!g) return cudaErrorInvalidValue;
    cu_emu_graph_exec *x = new cu_emu_graph_exec();
    x->nodes = g->nodes;
    *e = x;
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s) {
    if (!e) return cudaErrorInvalidValue;
    node_list nodes = e->nodes;
    return cu_emu::enqueue(s, "cudaGraphLaunch", [nodes] {
        for (auto &n : nodes) {
            cudaError_t r = n->fn();
            if (r != cudaSuccess) {
                cu_emu::warn("graph replay: %s failed (%s)", n->what.c_str(), cudaGetErrorName(r));
                return r;
            }
        }
        return cudaSuccess;
    });
}

cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    delete g;
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) {
    delete e;
    return cudaSuccess;
}
