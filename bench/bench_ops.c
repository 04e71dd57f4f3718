/* bench_ops.c - single ops at the shapes SD 1.5 / SDXL / the VAE use at
 * 512x512: attention, convolutions, norms and elementwise chains. Prints best
 * wall seconds, CPU seconds and GFLOP/s (GEMM-like ops) or GB/s of
 * activations touched (memory-bound ops), on --threads N. --weights q8 runs
 * the convolutions with int8 weights (implicit GEMM, no Winograd). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "backend/q8.h"
#include "bench_common.h"

static op_ctx *g_cx; /* the program's CPU context */

static int reps = 3;
static int q8;           /* --weights q8 */
static const char *only; /* run only the benchmarks whose name contains this */

static float *randn_buf(int64_t n, float scale) {
    float *p = malloc((size_t)n * sizeof(float));
    uint64_t s = 88172645463325252ull;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        p[i] = scale * ((float)(s >> 40) / (float)(1 << 24) * 2.0f - 1.0f);
    }
    return p;
}

typedef void (*op_fn)(void *ctx);

static void timeit(const char *what, op_fn f, void *ctx, double flops, double bytes) {
    if (only && !strstr(what, only)) return;
    double best = 1e30, bestc = 1e30;
    for (int r = 0; r <= reps; r++) {
        double t0 = bench_now(), c0 = bench_cpu_seconds();
        f(ctx);
        double t = bench_now() - t0, c = bench_cpu_seconds() - c0;
        if (r && t < best) best = t;
        if (r && c < bestc) bestc = c;
    }
    printf("%-40s %8.2f ms %8.2f CPU ms", what, best * 1e3, bestc * 1e3);
    if (flops > 0) printf(" %7.1f GFLOP/s", flops / best / 1e9);
    if (bytes > 0) printf(" %7.1f GB/s", bytes / best / 1e9);
    printf("\n");
}

typedef struct {
    int B, N, M, heads, dh;
    float *q, *k, *v, *o;
} attn_ctx;
static void run_attn(void *p) {
    attn_ctx *a = p;
    int64_t D = (int64_t)a->heads * a->dh;
    if (op_attention(g_cx, a->q, D, a->k, a->v, D, a->B, a->N, a->M, a->heads, a->dh, 1.0f / sqrtf((float)a->dh), 0, a->o))
        fprintf(stderr, "attention failed\n");
}
static void bench_attn(const char *what, int B, int N, int M, int heads, int dh) {
    int64_t D = (int64_t)heads * dh;
    attn_ctx a = {B, N, M, heads, dh, randn_buf(B * N * D, 1), randn_buf(B * M * D, 1), randn_buf(B * M * D, 1),
                  malloc((size_t)B * N * D * 4)};
    timeit(what, run_attn, &a, 4.0 * B * heads * (double)N * M * dh, 0);
    free(a.q), free(a.k), free(a.v), free(a.o);
}

typedef struct {
    int B, C, H, W, O, k, s, p;
    float *x, *w, *b, *y;
    q8_matrix *wq;
} conv_ctx;
static void run_conv(void *p) {
    conv_ctx *c = p;
    const void *w = c->wq ? (const void *)c->wq : c->w;
    if (op_conv2d_t(g_cx, c->x, c->B, c->C, c->H, c->W, w, c->wq ? OP_Q8 : OP_F32, c->b, c->O, c->k, c->s, c->p, c->y))
        fprintf(stderr, "conv failed\n");
}
static void bench_conv(const char *what, int B, int C, int H, int W, int O, int k, int s, int p) {
    int Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1;
    conv_ctx c = {B,
                  C,
                  H,
                  W,
                  O,
                  k,
                  s,
                  p,
                  randn_buf((int64_t)B * C * H * W, 1),
                  randn_buf((int64_t)O * C * k * k, 0.05f),
                  randn_buf(O, 0.1f),
                  malloc((size_t)B * O * Ho * Wo * 4),
                  NULL};
    if (q8 && q8_quantize(c.w, OP_F32, O, (int64_t)C * k * k, 1, &c.wq)) fprintf(stderr, "%s\n", sdc_last_error());
    timeit(what, run_conv, &c, 2.0 * B * O * (double)Ho * Wo * C * k * k, 0);
    free(c.x), free(c.w), free(c.b), free(c.y), free(c.wq);
}

typedef struct {
    int B, C, HW, G, silu;
    float *x, *y, *g, *b;
} gn_ctx;
static void run_gn(void *p) {
    gn_ctx *c = p;
    op_group_norm(g_cx, c->x, c->y, c->B, c->C, c->HW, c->G, 1e-6f, c->g, c->b, c->silu);
}
static void bench_gn(const char *what, int B, int C, int HW, int silu) {
    int64_t n = (int64_t)B * C * HW;
    gn_ctx c = {B, C, HW, 32, silu, randn_buf(n, 2), malloc((size_t)n * 4), randn_buf(C, 1), randn_buf(C, 0.1f)};
    timeit(what, run_gn, &c, 0, 8.0 * n);
    free(c.x), free(c.y), free(c.g), free(c.b);
}

typedef struct {
    int64_t rows;
    int D;
    float *x, *y, *g, *b;
} ln_ctx;
static void run_ln(void *p) {
    ln_ctx *c = p;
    op_layer_norm(g_cx, c->x, c->y, c->rows, c->D, 1e-5f, c->g, c->b);
}
static void run_geglu(void *p) {
    ln_ctx *c = p;
    op_geglu(g_cx, c->x, c->y, c->rows, c->D);
}

int main(int argc, char **argv) {
    int threads = 0, bf16 = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--only")) only = argv[i + 1];
        else if (!strcmp(argv[i], "--dtype")) bf16 = !strcmp(argv[i + 1], "bf16");
        else if (!strcmp(argv[i], "--weights")) q8 = !strcmp(argv[i + 1], "q8");
    }
    if (op_ctx_create(&g_cx, OP_DEV_CPU, threads)) {
        fprintf(stderr, "%s\n", sdc_last_error());
        return 1;
    }
    op_set_compute(g_cx, bf16 ? OP_BF16 : OP_F32);
    printf("threads: %d, compute %s%s\n", op_ctx_threads(g_cx), op_compute(g_cx) == OP_BF16 ? "bf16" : "f32",
           q8 ? ", convolutions with q8 weights" : "");
    bench_attn("attn SD1.5 L1 self 4096x4096 8x40", 1, 4096, 4096, 8, 40);
    bench_attn("attn SD1.5 L2 self 1024x1024 8x80", 1, 1024, 1024, 8, 80);
    bench_attn("attn SD1.5 L1 cross 4096x77 8x40", 1, 4096, 77, 8, 40);
    bench_attn("attn SDXL L2 self 1024x1024 10x64", 1, 1024, 1024, 10, 64);
    bench_attn("attn CLIP 77x77 12x64", 1, 77, 77, 12, 64);
    bench_attn("attn VAE mid 4096x4096 1x512", 1, 4096, 4096, 1, 512);
    bench_conv("conv3x3 SD1.5 L1 320->320 64x64", 1, 320, 64, 64, 320, 3, 1, 1);
    bench_conv("conv3x3 SD1.5 L4 1280->1280 8x8 B2", 2, 1280, 8, 8, 1280, 3, 1, 1);
    bench_conv("conv3x3 VAE 128->128 256x256", 1, 128, 256, 256, 128, 3, 1, 1);
    bench_conv("conv3x3 SD1.5 L1 320->320 64x64 B2", 2, 320, 64, 64, 320, 3, 1, 1);
    bench_conv("conv3x3 SD1.5 L2 640->640 32x32 B2", 2, 640, 32, 32, 640, 3, 1, 1);
    bench_conv("conv3x3 SD1.5 L3 1280->1280 16x16 B2", 2, 1280, 16, 16, 1280, 3, 1, 1);
    bench_conv("conv3x3 SD1.5 L2 640->640 32x32 B1", 1, 640, 32, 32, 640, 3, 1, 1);
    bench_conv("conv3x3 VAE 512->512 64x64", 1, 512, 64, 64, 512, 3, 1, 1);
    /* TAESD's decoder: 64 channels at every resolution (memory-bound at the large ones) */
    bench_conv("conv3x3 TAESD 64->64 512x512", 1, 64, 512, 512, 64, 3, 1, 1);
    bench_conv("conv3x3 TAESD 64->64 256x256", 1, 64, 256, 256, 64, 3, 1, 1);
    bench_conv("conv3x3 TAESD 64->64 128x128", 1, 64, 128, 128, 64, 3, 1, 1);
    bench_conv("conv3x3 TAESD 64->64 64x64", 1, 64, 64, 64, 64, 3, 1, 1);
    bench_conv("conv3x3 TAESD 64->3 512x512", 1, 64, 512, 512, 3, 3, 1, 1);
    bench_conv("conv1x1 SD1.5 proj 320->320 64x64", 1, 320, 64, 64, 320, 1, 1, 0);
    bench_gn("groupnorm+silu 320x64x64", 1, 320, 4096, 1);
    bench_gn("groupnorm+silu VAE 128x256x256", 1, 128, 65536, 1);
    bench_gn("groupnorm 320x64x64", 1, 320, 4096, 0);
    ln_ctx l = {4096, 320, randn_buf(4096 * 2560, 2), malloc(4096 * 1280 * 4), randn_buf(320, 1), randn_buf(320, 0.1f)};
    timeit("layernorm 4096x320", run_ln, &l, 0, 8.0 * 4096 * 320);
    l.D = 1280;
    timeit("geglu 4096x(2x1280)", run_geglu, &l, 0, 12.0 * 4096 * 1280);
    free(l.x), free(l.y), free(l.g), free(l.b);
    return 0;
}
