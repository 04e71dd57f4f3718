/* bench_cuda.c - the CUDA backend's ops at SD 1.5 / SDXL shapes (512x512 and
 * 1024x1024, batch 2 as with CFG), each beside the practical ceiling measured
 * in the same run: a large cuBLAS f16 (and bf16) GEMM. Prints one table row
 * per op: time, TFLOP/s for GEMM-like ops (share of the ceiling) or GB/s
 * moved for memory-bound ones. Usage: bench_cuda [quick]. Built without CUDA
 * it says so and exits 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef SDC_HAVE_CUDA
int main(void) {
    printf("bench_cuda: built without CUDA (nvcc not found at build time, or CUDA=0)\n");
    return 0;
}
#else

#include "backend/cuda/cuda_ops.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int g_quick;
static double g_ceiling; /* f16 GEMM TFLOP/s */

/* A device buffer of n elements in dt, filled with uniform values in
 * [-a, a] (uploaded in f32 chunks, converted on the device). */
static void *dev_random(int64_t n, cu_dtype dt, float a, unsigned seed) {
    void *d = NULL;
    if (cu_malloc(&d, (size_t)n * cu_dtype_size(dt))) return NULL;
    const int64_t chunk = 1 << 22;
    float *h = malloc((size_t)chunk * 4);
    void *st = NULL;
    if (!h || cu_malloc(&st, (size_t)chunk * 4)) {
        free(h);
        cu_free(d);
        return NULL;
    }
    uint64_t s = seed * 2654435761u + 3;
    for (int64_t i = 0; i < chunk; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        h[i] = a * (float)((double)(s >> 40) / (double)(1ull << 23) - 1.0);
    }
    for (int64_t o = 0; o < n; o += chunk) {
        int64_t m = n - o < chunk ? n - o : chunk;
        if (cu_upload(st, h, (size_t)m * 4) || cu_convert((char *)d + o * cu_dtype_size(dt), dt, st, CU_F32, m)) break;
    }
    cu_sync();
    free(h);
    cu_free(st);
    return d;
}

typedef sdc_status (*op_fn)(void *ctx);

/* mean seconds per call: a warm-up, one timed call to size the run, then
 * enough back-to-back calls (one sync at the end) for about min_s */
static double time_op(op_fn f, void *ctx, int *failed) {
    *failed = 1;
    if (f(ctx) || cu_sync()) return 0;
    double t0 = now();
    if (f(ctx) || cu_sync()) return 0;
    double t1 = now() - t0, min_s = g_quick ? 0.02 : 0.1;
    int n = t1 > 0 ? (int)(min_s / t1) : 200;
    if (n < 3) n = 3;
    if (n > 200) n = 200;
    t0 = now();
    for (int i = 0; i < n; i++)
        if (f(ctx)) return 0;
    if (cu_sync()) return 0;
    *failed = 0;
    return (now() - t0) / n;
}

static void row(const char *name, const char *shape, cu_dtype dt, double s, double flops, double bytes, int failed) {
    if (failed) {
        printf("%-22s %-34s %-4s  FAILED: %s\n", name, shape, cu_dtype_name(dt), sdc_last_error());
        return;
    }
    printf("%-22s %-34s %-4s %9.3f ms", name, shape, cu_dtype_name(dt), s * 1e3);
    if (flops > 0) printf(" %8.1f TFLOP/s (%3.0f%% of ceiling)", flops / s * 1e-12, 100.0 * flops / s * 1e-12 / g_ceiling);
    if (bytes > 0) printf(" %8.1f GB/s", bytes / s * 1e-9);
    printf("\n");
    fflush(stdout);
}

/* ---- op contexts ---- */

typedef struct { void *a, *b, *c; cu_dtype dt; int M, N, K; } gemm_ctx;
static sdc_status run_gemm(void *p) {
    gemm_ctx *c = p;
    return cu_gemm_reference(c->a, c->b, c->c, c->dt, c->M, c->N, c->K);
}
static sdc_status run_linear(void *p) {
    gemm_ctx *c = p;
    return cu_linear(c->a, c->dt, c->M, c->K, c->b, c->c, c->dt, c->N, (char *)c->c + (size_t)c->N * 4);
}

static void bench_gemm(const char *name, int M, int N, int K, cu_dtype dt, int as_linear, double *tflops) {
    gemm_ctx c = {dev_random((int64_t)M * K, dt, 1, 1), dev_random((int64_t)N * K, dt, 1, 2), NULL, dt, M, N, K};
    /* linear: c holds the bias [N] (padded to 4 bytes a value) and then y */
    cu_malloc(&c.c, (size_t)N * 4 + (size_t)M * N * cu_dtype_size(dt));
    char shape[64];
    snprintf(shape, sizeof shape, "M=%d N=%d K=%d", M, N, K);
    int failed = !c.a || !c.b || !c.c;
    double s = failed ? 0 : time_op(as_linear ? run_linear : run_gemm, &c, &failed);
    double fl = 2.0 * M * N * K;
    if (tflops) *tflops = failed ? 0 : fl / s * 1e-12;
    if (tflops && !g_ceiling) g_ceiling = *tflops > 0 ? *tflops : 1;
    row(name, shape, dt, s, fl, 0, failed);
    cu_free(c.a), cu_free(c.b), cu_free(c.c);
}

typedef struct { void *x, *w, *b, *y; cu_dtype dt; int B, C, H, W, O, k, s, p; } conv_ctx;
static sdc_status run_conv(void *p) {
    conv_ctx *c = p;
    return cu_conv2d(c->x, c->dt, c->B, c->C, c->H, c->W, c->w, c->b, c->dt, c->O, c->k, c->s, c->p, c->y);
}

static void bench_conv(const char *name, int B, int C, int H, int W, int O, int k, int s, cu_dtype dt) {
    int p = k / 2, Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1;
    conv_ctx c = {dev_random((int64_t)B * C * H * W, dt, 1, 3), dev_random((int64_t)O * C * k * k, dt, 0.05f, 4),
                  dev_random(O, dt, 1, 5), NULL, dt, B, C, H, W, O, k, s, p};
    cu_malloc(&c.y, (size_t)B * O * Ho * Wo * cu_dtype_size(dt));
    char shape[64];
    snprintf(shape, sizeof shape, "B=%d C=%d %dx%d O=%d k=%d s=%d", B, C, H, W, O, k, s);
    int failed = !c.x || !c.w || !c.b || !c.y;
    double t = failed ? 0 : time_op(run_conv, &c, &failed);
    row(name, shape, dt, t, 2.0 * B * O * Ho * Wo * (double)C * k * k, 0, failed);
    cu_free(c.x), cu_free(c.w), cu_free(c.b), cu_free(c.y);
}

typedef struct { void *q, *kv, *o; cu_dtype dt; int B, Nq, Nk, H, dh, causal; } att_ctx;
static sdc_status run_att(void *p) {
    att_ctx *c = p;
    int64_t D = (int64_t)c->H * c->dh;
    size_t es = cu_dtype_size(c->dt);
    return cu_attention(c->q, D, c->kv, (char *)c->kv + D * es, 2 * D, c->dt, c->B, c->Nq, c->Nk, c->H, c->dh,
                        0.125f, c->causal, c->o);
}

static void bench_att(const char *name, int B, int Nq, int Nk, int H, int dh, int causal, cu_dtype dt) {
    int64_t D = (int64_t)H * dh;
    att_ctx c = {dev_random(B * Nq * D, dt, 1, 6), dev_random(B * Nk * 2 * D, dt, 1, 7), NULL, dt, B, Nq, Nk, H, dh, causal};
    cu_malloc(&c.o, (size_t)B * Nq * D * cu_dtype_size(dt));
    char shape[64];
    snprintf(shape, sizeof shape, "B=%d Nq=%d Nk=%d h=%d dh=%d%s", B, Nq, Nk, H, dh, causal ? " causal" : "");
    int failed = !c.q || !c.kv || !c.o;
    double t = failed ? 0 : time_op(run_att, &c, &failed);
    row(name, shape, dt, t, 4.0 * B * H * (double)Nq * Nk * dh * (causal ? 0.5 : 1.0), 0, failed);
    cu_free(c.q), cu_free(c.kv), cu_free(c.o);
}

/* memory-bound ops: one context, a kind tag */
typedef struct { void *x, *y, *g, *b; cu_dtype dt; int kind; int B, C, G; int64_t HW; } mem_ctx;
enum { M_GN, M_GN_SILU, M_LN, M_GEGLU, M_ADD, M_SILU, M_UP, M_NHWC };
static sdc_status run_mem(void *p) {
    mem_ctx *c = p;
    switch (c->kind) {
    case M_GN: return cu_group_norm(c->x, c->y, c->dt, c->B, c->C, c->HW, c->G, 1e-5f, c->g, c->b, c->dt, 0);
    case M_GN_SILU: return cu_group_norm(c->x, c->y, c->dt, c->B, c->C, c->HW, c->G, 1e-5f, c->g, c->b, c->dt, 1);
    case M_LN: return cu_layer_norm(c->x, c->y, c->dt, c->HW, c->C, 1e-5f, c->g, c->b, c->dt);
    case M_GEGLU: return cu_geglu(c->x, c->y, c->dt, c->HW, c->C);
    case M_ADD: return cu_add(c->y, c->x, c->dt, (int64_t)c->B * c->C * c->HW);
    case M_SILU: return cu_silu(c->y, c->dt, (int64_t)c->B * c->C * c->HW);
    case M_UP: return cu_upsample_nearest(c->x, c->y, c->dt, (int64_t)c->B * c->C, c->G, c->G, 2 * c->G, 2 * c->G);
    default: return cu_nchw_to_nhwc(c->x, c->y, c->dt, c->B, c->C, c->HW);
    }
}

static void bench_mem(const char *name, int kind, int B, int C, int64_t HW, int G, cu_dtype dt) {
    /* elements read + written */
    int64_t n = (int64_t)B * C * HW, nin = n, nout = n;
    if (kind == M_GEGLU) nin = 2 * n; /* rows = HW, D = C, B = 1 */
    if (kind == M_UP) nin = (int64_t)B * C * G * G, nout = 4 * nin;
    if (kind == M_ADD) nin = 2 * n;
    int64_t reads = kind == M_GN || kind == M_GN_SILU ? 2 * n : kind == M_LN ? 3 * n : nin;
    mem_ctx c = {dev_random(nin, dt, 2, 8), NULL, dev_random(C, dt, 1, 9), dev_random(C, dt, 1, 10), dt, kind, B, C, G, HW};
    c.y = dev_random(nout, dt, 1, 11);
    char shape[64];
    if (kind == M_LN || kind == M_GEGLU) snprintf(shape, sizeof shape, "rows=%lld D=%d", (long long)HW, C);
    else if (kind == M_UP) snprintf(shape, sizeof shape, "BC=%d %dx%d -> 2x", B * C, G, G);
    else snprintf(shape, sizeof shape, "B=%d C=%d HW=%lld%s", B, C, (long long)HW, kind <= M_GN_SILU ? " G=32" : "");
    int failed = !c.x || !c.y || !c.g || !c.b;
    double t = failed ? 0 : time_op(run_mem, &c, &failed);
    row(name, shape, dt, t, 0, (double)(reads + nout) * cu_dtype_size(dt), failed);
    cu_free(c.x), cu_free(c.y), cu_free(c.g), cu_free(c.b);
}

int main(int argc, char **argv) {
    g_quick = argc > 1 && !strcmp(argv[1], "quick");
    if (cu_init(0)) {
        printf("bench_cuda: %s\n", sdc_last_error());
        return 0; /* no device is not a benchmark failure */
    }
    printf("bench_cuda on %s\n\n", cu_device_name());
    const cu_dtype H = CU_F16;
    double t16 = 0, tbf = 0;
    printf("-- practical ceiling (cuBLAS GEMM, f32 accumulate) --\n");
    bench_gemm("gemm ceiling", 8192, 8192, 8192, CU_F16, 0, &t16);
    g_ceiling = t16 > 0 ? t16 : 1;
    bench_gemm("gemm ceiling", 8192, 8192, 8192, CU_BF16, 0, &tbf);
    printf("ceiling: f16 %.1f TFLOP/s, bf16 %.1f TFLOP/s (percentages below are of f16)\n\n", t16, tbf);

    printf("-- linear (cuBLASLt, bias in the epilogue) --\n");
    bench_gemm("sd15 attn proj 64x64", 2 * 4096, 320, 320, H, 1, NULL);
    bench_gemm("sd15 geglu proj 64x64", 2 * 4096, 2560, 320, H, 1, NULL);
    bench_gemm("sd15 ff out 64x64", 2 * 4096, 320, 1280, H, 1, NULL);
    bench_gemm("sdxl attn proj 64x64", 2 * 4096, 640, 640, H, 1, NULL);
    bench_gemm("sdxl geglu proj 32x32", 2 * 1024, 10240, 1280, H, 1, NULL);
    bench_gemm("sdxl kv proj ctx 77", 2 * 77, 1280, 2048, H, 1, NULL);
    bench_gemm("sdxl 1024 attn proj", 2 * 4096, 640, 640, H, 1, NULL);
    bench_gemm("sdxl 1024 geglu 64x64", 2 * 4096, 5120, 640, H, 1, NULL);

    printf("\n-- conv2d (1x1: GEMM; 3x3: %s) --\n", cu_cudnn_status());
    bench_conv("sd15 res 64x64", 2, 320, 64, 64, 320, 3, 1, H);
    bench_conv("sd15 res 32x32", 2, 640, 32, 32, 640, 3, 1, H);
    bench_conv("sd15 res 8x8", 2, 1280, 8, 8, 1280, 3, 1, H);
    bench_conv("sd15 down 64->32", 2, 320, 64, 64, 320, 3, 2, H);
    bench_conv("sd15 proj 1x1", 2, 320, 64, 64, 320, 1, 1, H);
    bench_conv("sdxl res 128x128", 2, 320, 128, 128, 320, 3, 1, H);
    bench_conv("sdxl res 64x64", 2, 640, 64, 64, 640, 3, 1, H);
    bench_conv("sdxl res 32x32", 2, 1280, 32, 32, 1280, 3, 1, H);
    bench_conv("vae 512 res 512x512", 1, 128, 512, 512, 128, 3, 1, H);
    bench_conv("vae 512 res 256x256", 1, 256, 256, 256, 256, 3, 1, H);
    printf("\n-- the same 3x3 convolutions through im2col chunks + cuBLAS (the fallback without cuDNN) --\n");
    cu_conv_use_cudnn(0);
    bench_conv("sd15 res 64x64", 2, 320, 64, 64, 320, 3, 1, H);
    bench_conv("sdxl res 128x128", 2, 320, 128, 128, 320, 3, 1, H);
    bench_conv("sdxl res 32x32", 2, 1280, 32, 32, 1280, 3, 1, H);
    bench_conv("vae 512 res 512x512", 1, 128, 512, 512, 128, 3, 1, H);
    cu_conv_use_cudnn(1);
    printf("\n");
    if (!g_quick) bench_conv("vae 1024 res 1024^2", 1, 128, 1024, 1024, 128, 3, 1, CU_F32);
    if (!g_quick) bench_conv("vae 1024 res 1024^2", 1, 128, 1024, 1024, 128, 3, 1, CU_BF16);

    printf("\n-- attention (flash, tensor cores; dh 512: f32 kernel) --\n");
    bench_att("sd15 self 64x64", 2, 4096, 4096, 8, 40, 0, H);
    bench_att("sd15 cross 64x64", 2, 4096, 77, 8, 40, 0, H);
    bench_att("sd15 self 32x32", 2, 1024, 1024, 8, 80, 0, H);
    bench_att("sd15 self 8x8", 2, 64, 64, 8, 160, 0, H);
    bench_att("sdxl self 64x64", 2, 4096, 4096, 10, 64, 0, H);
    bench_att("sdxl self 32x32", 2, 1024, 1024, 20, 64, 0, H);
    bench_att("sdxl cross 32x32", 2, 1024, 77, 20, 64, 0, H);
    bench_att("sdxl 1024 self 64x64", 2, 4096, 4096, 10, 64, 0, CU_BF16);
    bench_att("clip-l causal", 2, 77, 77, 12, 64, 1, H);
    bench_att("openclip-g causal", 2, 77, 77, 20, 64, 1, H);
    bench_att("sdxl dh=128 (test)", 2, 4096, 4096, 5, 128, 0, H);
    bench_att("vae 512 mid attn", 1, 4096, 4096, 1, 512, 0, H);
    bench_att("vae 512 mid attn", 1, 4096, 4096, 1, 512, 0, CU_F32);

    printf("\n-- memory-bound ops (GB/s counts bytes read + written) --\n");
    bench_mem("group_norm+silu", M_GN_SILU, 2, 320, 64 * 64, 32, H);
    bench_mem("group_norm+silu", M_GN_SILU, 2, 320, 128 * 128, 32, H);
    bench_mem("group_norm vae 512", M_GN, 1, 128, 512 * 512, 32, H);
    bench_mem("group_norm vae 1024", M_GN, 1, 128, 1024 * 1024, 32, CU_F32);
    bench_mem("layer_norm", M_LN, 1, 320, 2 * 4096, 0, H);
    bench_mem("layer_norm", M_LN, 1, 1280, 2 * 1024, 0, H);
    bench_mem("geglu", M_GEGLU, 1, 1280, 2 * 4096, 0, H);
    bench_mem("add", M_ADD, 2, 320, 64 * 64, 0, H);
    bench_mem("silu", M_SILU, 2, 320, 128 * 128, 0, H);
    bench_mem("upsample nearest 2x", M_UP, 2, 1280, 0, 32, H);
    bench_mem("nchw_to_nhwc", M_NHWC, 2, 320, 128 * 128, 0, H);
    printf("\narena: %zu MiB held\n", cu_arena_capacity() >> 20);
    cu_shutdown();
    return 0;
}
#endif
