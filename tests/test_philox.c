/* test_philox.c - torch's CUDA generator on the CPU (src/rng/philox.h): the
 * Philox block against Random123's known answers, randn against values
 * torch.randn / normal_ printed on real GPUs (published in PyTorch issues),
 * the element layout and offset advance against a direct re-derivation,
 * noise_gen's dispatch, and `sdc generate --rng`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/png_io.h"
#include "io/safetensors.h"
#include "rng/noise_gen.h"
#include "rng/philox.h"

static int verbose(void) { return getenv("SDC_TEST_VERBOSE") != NULL; }

/* Random123 tests/kat_vectors, the three "philox4x32 10" lines: counter, key -> output. */
TEST(philox_kat_vectors) {
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
         0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
         0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int v = 0; v < 3; v++) {
        uint32_t out[4];
        philox4x32_10(kat[v], kat[v] + 4, out);
        for (int i = 0; i < 4; i++)
            CHECK(out[i] == kat[v][6 + i], "vector %d word %d: %08x, want %08x", v, i, out[i], kat[v][6 + i]);
    }
}

/* Values printed by torch on NVIDIA GPUs (4 decimals), with the printing
 * GPU's SM count and max threads per SM (published specs) where the tensor
 * is larger than one wave of threads. Negative indices count from the end. */
typedef struct {
    const char *source;
    uint64_t seed;
    int64_t n;
    int sms, threads_per_sm; /* 0: any GPU (n within one wave) */
    float mean, std;         /* normal_(mean, std); randn is (0, 1) */
    int count;
    int64_t idx[36];
    float want[36];
} published_case;

static const published_case k_published[] = {
    {"pytorch#79496 manual_seed(10); randn(3, device=cuda)", 10, 3, 0, 0, 0, 1, 3, {0, 1, 2},
     {-0.1029f, 1.6810f, -0.2708f}},
    {"pytorch#62467 Generator(cuda).manual_seed(43), empty(1,3,128,128).normal_(), RTX A6000 [...,0,0]", 43, 49152, 84,
     1536, 0, 1, 3, {0, 16384, 32768}, {1.9983f, 0.8704f, 2.1127f}},
    {"pytorch#158398 randn([1,64,2048], Generator(cuda).manual_seed(42)), RTX 3060 (28 SMs: 3 wave components)", 42,
     131072, 28, 1536, 0, 1, 36,
     {0, 1, 2, 2045, 2046, 2047, 2048, 2049, 2050, 4093, 4094, 4095, 4096, 4097, 4098, 6141, 6142, 6143,
      124928, 124929, 124930, 126973, 126974, 126975, 126976, 126977, 126978, 129021, 129022, 129023,
      129024, 129025, 129026, -3, -2, -1},
     {0.1940f, 2.1614f, -0.1721f, 1.4540f, -2.7733f, -0.8932f, -0.4574f, 0.8063f, 0.1580f, 0.1124f, 0.2769f,
      -1.2535f, 1.1346f, -0.6329f, -0.9147f, -1.0001f, -1.1552f, -0.6955f, -0.4861f, 0.3358f, 1.0578f, -0.7282f,
      0.5087f, 0.1318f, 0.7881f, 0.8339f, -1.1424f, -0.6297f, -1.1112f, -0.4091f, -1.2356f, -0.4083f, -0.4695f,
      -0.4841f, 1.2850f, -0.0282f}},
    {"pytorch#97097 manual_seed(14); cuda.FloatTensor(1000,100).normal_(5, 5**.5), RTX A4000 (48 SMs)", 14, 100000,
     48, 1536, 5.0f, 2.2360680f, 36,
     {0, 1, 2, 97, 98, 99, 100, 101, 102, 197, 198, 199, 200, 201, 202, 297, 298, 299,
      99700, 99701, 99702, 99797, 99798, 99799, 99800, 99801, 99802, 99897, 99898, 99899,
      99900, 99901, 99902, 99997, 99998, 99999},
     {2.8731f, 5.2727f, 2.9889f, 1.6853f, 9.6331f, 6.6319f, 3.9968f, 3.8097f, 5.7328f, 4.4029f, 3.9804f, 7.4698f,
      6.5552f, 4.0857f, 4.2315f, 2.7704f, 3.5479f, 3.3063f, 8.6297f, 2.3137f, 6.2596f, 7.9358f, 4.4697f, 2.7475f,
      7.0551f, 7.8583f, 3.9990f, 4.1139f, 8.9315f, 4.2042f, 2.7337f, 2.2106f, 7.7815f, 8.2207f, 6.5395f, 4.2604f}},
    /* 9.5M elements: 9 curand_normal4 calls per thread; the tail depends on the SM count */
    {"pytorch#143086 Generator(cuda).manual_seed(1), randn(1, 49*12*112*144), H100", 1, 9483264, 132, 2048, 0, 1, 6,
     {0, 1, 2, -3, -2, -1}, {-0.2963f, 2.6764f, -0.1408f, -0.6970f, -0.7780f, 0.3267f}},
    {"pytorch#143086 the same on an A100", 1, 9483264, 108, 2048, 0, 1, 6, {0, 1, 2, -3, -2, -1},
     {-0.2963f, 2.6764f, -0.1408f, 0.1549f, -0.6797f, -0.1656f}},
};

TEST(philox_randn_matches_published_torch_cuda_values) {
    double worst = 0;
    int total = 0, same_digits = 0;
    for (size_t c = 0; c < sizeof k_published / sizeof k_published[0]; c++) {
        const published_case *pc = &k_published[c];
        philox_gen g;
        philox_gen_seed(&g, pc->seed);
        if (pc->sms) g.max_threads = philox_max_threads(pc->sms, pc->threads_per_sm);
        float *x = malloc((size_t)pc->n * sizeof *x);
        CHECK(x, "out of memory");
        philox_randn(&g, x, pc->n);
        for (int i = 0; i < pc->count; i++) {
            int64_t e = pc->idx[i] < 0 ? pc->n + pc->idx[i] : pc->idx[i];
            double got = (double)(x[e] * pc->std + pc->mean);
            /* the print rounds to 4 decimals (5e-5); the GPU's __sincosf adds ~1e-6 x std */
            double d = fabs(got - (double)pc->want[i]);
            if (d > worst) worst = d;
            total++;
            same_digits += fabs(round(got * 1e4) / 1e4 - (double)pc->want[i]) < 1e-6;
            if (d > 5e-5 + 1e-5 * pc->std) {
                free(x);
                CHECK(0, "%s: element %lld = %.6f, torch printed %.4f", pc->source, (long long)e, got,
                      (double)pc->want[i]);
            }
        }
        free(x);
    }
    if (verbose())
        printf("      %d/%d published values have sdc's value rounded to 4 decimals; worst |diff| %.2g\n",
               same_digits, total, worst);
}

/* AUTOMATIC1111's modules/rng_philox.py documents its own CPU emulation
 * (float64 Box-Muller) of randn((3, 4), device=cuda) after seed 0 to 8 digits;
 * it reads the 32-bit draws without rounding them to float, so allow ~1e-5. */
TEST(philox_randn_matches_a1111_emulation) {
    static const double want[12] = {-0.92466259, -0.42534415, -2.6438457, 0.14518388, -0.12086647, -0.57972564,
                                    -0.62285122, -0.32838709, -1.07454231, -0.36314407, -1.67105067, 2.26550497};
    philox_gen g;
    philox_gen_seed(&g, 0);
    float x[12];
    philox_randn(&g, x, 12);
    double worst = 0;
    for (int i = 0; i < 12; i++) {
        double d = fabs((double)x[i] - want[i]);
        if (d > worst) worst = d;
        CHECK(d < 1e-5, "element %d: %.8f, A1111 %.8f", i, (double)x[i], want[i]);
    }
    if (verbose()) printf("      worst |sdc - A1111 float64 emulation|: %.2g\n", worst);
}

/* Element e of randn(n) re-derived the long way: thread e % T, its
 * (e / 4T)-th curand_normal4 after curand_init(seed, thread, offset),
 * component (e / T) % 4. */
static float reference_element(uint64_t seed, uint64_t offset, int64_t T, int64_t e) {
    int64_t thread = e % T, call = e / (4 * T), comp = (e / T) % 4;
    uint64_t ctr64 = offset / 4 + (uint64_t)call;
    uint32_t ctr[4] = {(uint32_t)ctr64, (uint32_t)(ctr64 >> 32), (uint32_t)thread, (uint32_t)((uint64_t)thread >> 32)};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, r[4];
    philox4x32_10(ctr, key, r);
    float bm[2];
    philox_box_muller(r[comp < 2 ? 0 : 2], r[comp < 2 ? 1 : 3], bm);
    return bm[comp & 1];
}

TEST(philox_layout_and_offset_advance) {
    /* geometry: blocks of 256, capped at SMs x (threads per SM / 256) */
    CHECK(philox_max_threads(132, 2048) == 270336, "H100 cap %lld", (long long)philox_max_threads(132, 2048));
    CHECK(philox_max_threads(40, 1024) == 40960, "T4 cap %lld", (long long)philox_max_threads(40, 1024));
    CHECK(philox_max_threads(28, 1536) == 43008, "RTX 3060 cap %lld", (long long)philox_max_threads(28, 1536));
    philox_gen g;
    philox_gen_seed(&g, 7);
    CHECK(g.max_threads == 270336 && g.offset == 0, "default generator: cap %lld offset %llu", (long long)g.max_threads,
          (unsigned long long)g.offset);
    CHECK(philox_launch_threads(&g, 1) == 256 && philox_launch_threads(&g, 256) == 256 &&
              philox_launch_threads(&g, 257) == 512 && philox_launch_threads(&g, 16384) == 16384 &&
              philox_launch_threads(&g, 100000000) == 270336,
          "launch threads wrong");

    /* successive calls on small (1-wave) and large (several calls per thread) tensors */
    static const struct { int64_t cap, n[3]; } plans[] = {
        {270336, {16384, 16384, 5}}, /* SD latents: offset 0, 4, 8 */
        {256, {1025, 7, 2048}},      /* 1025 > 4 x 256: 2 calls per thread, offset += 8 */
        {512, {300, 3000, 513}},
    };
    for (size_t p = 0; p < sizeof plans / sizeof plans[0]; p++) {
        philox_gen_seed(&g, 0x123456789abcdefULL); /* a seed with both key words set */
        g.max_threads = plans[p].cap;
        for (int call = 0; call < 3; call++) {
            int64_t n = plans[p].n[call], T = philox_launch_threads(&g, n);
            uint64_t off = g.offset;
            float *x = malloc((size_t)n * sizeof *x);
            CHECK(x, "out of memory");
            philox_randn(&g, x, n);
            int64_t bad = -1;
            for (int64_t e = 0; e < n && bad < 0; e++) {
                float want = reference_element(g.seed, off, T, e);
                if (memcmp(&x[e], &want, sizeof want)) bad = e;
            }
            float got = bad >= 0 ? x[bad] : 0;
            free(x);
            CHECK(bad < 0, "cap %lld call %d (n %lld, offset %llu): element %lld = %g, reference %g",
                  (long long)plans[p].cap, call, (long long)n, (unsigned long long)off, (long long)bad, (double)got,
                  (double)reference_element(g.seed, off, T, bad));
            uint64_t want_adv = (uint64_t)((n - 1) / (4 * T) + 1) * 4;
            CHECK(g.offset == off + want_adv, "cap %lld call %d: offset %llu -> %llu, want +%llu",
                  (long long)plans[p].cap, call, (unsigned long long)off, (unsigned long long)g.offset,
                  (unsigned long long)want_adv);
        }
    }
    /* n <= 0 leaves the generator alone */
    philox_gen_seed(&g, 3);
    philox_randn(&g, NULL, 0);
    CHECK(g.offset == 0, "empty draw advanced the offset to %llu", (unsigned long long)g.offset);
    /* a second latent-sized draw is the first draw of counter 1: not a repeat of the first */
    float a[4], b[4];
    philox_randn(&g, a, 4);
    philox_randn(&g, b, 4);
    CHECK(g.offset == 8 && memcmp(a, b, sizeof a), "second draw repeats the first (offset %llu)",
          (unsigned long long)g.offset);
}

TEST(noise_gen_dispatch) {
    noise_gen n;
    torch_gen t;
    philox_gen p;
    float a[40], b[40];
    for (int round = 0; round < 2; round++) { /* twice: the state carries over the same way */
        if (!round) {
            noise_gen_seed(&n, NOISE_RNG_CPU, 99);
            torch_gen_seed(&t, 99);
        }
        noise_randn(&n, a, 40);
        torch_randn(&t, b, 40);
        CHECK(!memcmp(a, b, sizeof a), "cpu noise_gen differs from torch_randn (round %d)", round);
    }
    for (int round = 0; round < 2; round++) {
        if (!round) {
            noise_gen_seed(&n, NOISE_RNG_CUDA, 99);
            philox_gen_seed(&p, 99);
        }
        noise_randn(&n, a, 40);
        philox_randn(&p, b, 40);
        CHECK(!memcmp(a, b, sizeof a), "cuda noise_gen differs from philox_randn (round %d)", round);
    }
    noise_rng k = NOISE_RNG_CUDA;
    CHECK(noise_rng_parse(NULL, &k) == SDC_OK && k == NOISE_RNG_CPU, "NULL is not cpu");
    CHECK(noise_rng_parse("cuda", &k) == SDC_OK && k == NOISE_RNG_CUDA, "cuda not parsed");
    CHECK(noise_rng_parse("cpu", &k) == SDC_OK && k == NOISE_RNG_CPU, "cpu not parsed");
    CHECK(noise_rng_parse("GPU", &k) == SDC_ERR_ARG, "GPU accepted");
    CHECK(!strcmp(noise_rng_name(NOISE_RNG_CUDA), "cuda") && !strcmp(noise_rng_name(NOISE_RNG_CPU), "cpu"), "names");
}

/* ---- sdc generate --rng ---- */

#define GEN_RNG "%s generate --quiet --steps 2 -W 64 -H 64 -p cat -m '%s' "

/* the dumped float32 tensor `name` into a fresh buffer (data in the file may be unaligned) */
static float *dumped(const char *path, const char *name, int64_t *n) {
    st_file f;
    if (st_open(&f, path)) return NULL;
    const st_tensor *t = st_find(&f, name);
    float *x = t && t->dtype == ST_F32 ? malloc((size_t)t->numel * sizeof *x) : NULL;
    if (x) memcpy(x, t->data, (size_t)t->numel * sizeof *x), *n = t->numel;
    st_close(&f);
    return x;
}

TEST(cli_generate_rng_cuda) {
    char cmd[2048], out[4096];
    const char *model = fixture_path("models/tiny-sd");
    const char *png[3] = {tmp_path("rng-cuda-a.png"), tmp_path("rng-cuda-b.png"), tmp_path("rng-cpu.png")};
    const char *dump = tmp_path("rng-cuda.safetensors");
    /* euler_a draws noise every step: the step noise goes through the same generator */
    snprintf(cmd, sizeof cmd, GEN_RNG "--seed 5 --batch 2 --scheduler euler_a --rng cuda -o '%s' --dump '%s'",
             sdc_binary(), model, png[0], dump);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "--rng cuda failed: %s", out);
    snprintf(cmd, sizeof cmd, GEN_RNG "--seed 5 --batch 2 --scheduler euler_a --rng cuda -o '%s'", sdc_binary(), model,
             png[1]);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "--rng cuda (again) failed: %s", out);
    snprintf(cmd, sizeof cmd, GEN_RNG "--seed 5 --batch 2 --scheduler euler_a --rng cpu -o '%s'", sdc_binary(), model,
             png[2]);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "--rng cpu failed: %s", out);

    /* the dumped noise is philox_randn of seed 5 + b; step 1's noise its second draw */
    int64_t nn = 0, ns = 0;
    float *noise = dumped(dump, "noise", &nn), *step = dumped(dump, "scheduler_noise_1", &ns);
    int ok = noise && step && nn == 2 * 4 * 8 * 8 && ns == nn;
    for (int b = 0; ok && b < 2; b++) {
        philox_gen g;
        philox_gen_seed(&g, 5 + (uint64_t)b);
        float want[256], want2[256];
        philox_randn(&g, want, nn / 2);
        philox_randn(&g, want2, nn / 2);
        ok = !memcmp(noise + b * (nn / 2), want, (size_t)(nn / 2) * sizeof(float)) &&
             !memcmp(step + b * (nn / 2), want2, (size_t)(nn / 2) * sizeof(float));
    }
    free(noise);
    free(step);
    CHECK(ok, "dumped noise / scheduler_noise_1 (%lld, %lld floats) is not philox_randn of seeds 5, 6", (long long)nn,
          (long long)ns);

    for (int img = 0; img < 2; img++) {
        uint8_t *px[3] = {NULL, NULL, NULL};
        char *par[3] = {NULL, NULL, NULL};
        int w[3], h[3], good = 1;
        for (int k = 0; k < 3; k++) {
            char p[600];
            snprintf(p, sizeof p, "%.*s-%d.png", (int)(strlen(png[k]) - 4), png[k], img);
            good &= png_read_rgb(p, &px[k], &w[k], &h[k], &par[k]) == SDC_OK;
        }
        int same_twice = good && w[0] == w[1] && h[0] == h[1] && !memcmp(px[0], px[1], (size_t)w[0] * h[0] * 3);
        int differs = good && (w[0] != w[2] || h[0] != h[2] || memcmp(px[0], px[2], (size_t)w[0] * h[0] * 3));
        /* A1111 writes "RNG: CPU" for the CPU source and nothing for its default GPU source */
        int info = good && !strstr(par[0], "RNG:") && strstr(par[2], ", RNG: CPU");
        for (int k = 0; k < 3; k++) free(px[k]), free(par[k]);
        CHECK(good, "image %d: cannot read the PNGs", img);
        CHECK(same_twice, "image %d: --rng cuda is not deterministic for a seed", img);
        CHECK(differs, "image %d: --rng cuda gives the --rng cpu image", img);
        CHECK(info, "image %d: infotext RNG field wrong", img);
    }

    snprintf(cmd, sizeof cmd, GEN_RNG "--rng gpu -o '%s'", sdc_binary(), model, tmp_path("rng-bad.png"));
    int rc = run_cmd(cmd, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "--rng"), "--rng gpu: exit %d: %s", rc, out);
}
