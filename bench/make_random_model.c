/* make_random_model.c - writes a full-size Stable Diffusion model with random
 * weights in diffusers layout (f16 .safetensors), from a folder of real
 * configs (../shared/configs/sd15, ../shared/configs/sdxl), so anyone can
 * benchmark full-size models without downloading gigabytes: timing does not
 * depend on weight values.
 *
 *   build/make_random_model --config ../shared/configs/sdxl -o /tmp/sdxl-random
 *
 * The configs, tokenizers and scheduler files are copied; each weighted
 * component (unet, vae, text_encoder, text_encoder_2) gets exactly the
 * tensors sdc's loader asks for (names and shapes found by running the
 * loader on a shapes-only weights object). Values: matrices and kernels
 * N(0, 1/fan_in) (activations stay O(1) layer after layer), norm scales
 * 1 + N(0, 0.02^2), biases N(0, 0.02^2), embeddings N(0, 0.02^2); fixed seed,
 * so two runs write the same files. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/json.h"
#include "nn/unet.h"
#include "nn/vae.h"
#include "text/clip_text_model.h"

static void usage(void) {
    fprintf(stderr, "usage: make_random_model --config CONFIG_DIR -o OUT_DIR [--seed N] [--dtype f16|f32]\n"
                    "  CONFIG_DIR: a diffusers pipeline folder without weights (e.g. ../shared/configs/sdxl)\n");
}

/* ---- copying the config folder */

static int copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = a ? fopen(to, "wb") : NULL;
    char buf[1 << 16];
    size_t n;
    int ok = a && b;
    while (ok && (n = fread(buf, 1, sizeof buf, a)) > 0) ok = fwrite(buf, 1, n, b) == n;
    if (a) fclose(a);
    if (b && fclose(b)) ok = 0;
    if (!ok) fprintf(stderr, "make_random_model: cannot copy %s to %s: %s\n", from, to, strerror(errno));
    return ok;
}

static int copy_tree(const char *from, const char *to) {
    if (mkdir(to, 0755) && errno != EEXIST) {
        fprintf(stderr, "make_random_model: cannot create %s: %s\n", to, strerror(errno));
        return 0;
    }
    DIR *d = opendir(from);
    if (!d) {
        fprintf(stderr, "make_random_model: cannot read %s: %s\n", from, strerror(errno));
        return 0;
    }
    struct dirent *e;
    int ok = 1;
    while (ok && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char a[4096], b[4096];
        struct stat st;
        snprintf(a, sizeof a, "%s/%s", from, e->d_name);
        snprintf(b, sizeof b, "%s/%s", to, e->d_name);
        if (stat(a, &st)) continue;
        if (S_ISDIR(st.st_mode)) ok = copy_tree(a, b);
        else if (!strstr(e->d_name, ".safetensors")) ok = copy_file(a, b);
    }
    closedir(d);
    return ok;
}

/* ---- values */

static uint64_t mix(uint64_t x) {
    x ^= x >> 33, x *= 0xff51afd7ed558ccdull, x ^= x >> 33, x *= 0xc4ceb9fe1a85ec53ull, x ^= x >> 33;
    return x;
}

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* float -> IEEE half, round to nearest even (values here are far from overflow) */
static uint16_t to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, mant = x & 0x7fffff;
    int e = (int)((x >> 23) & 0xff) - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) { /* subnormal half */
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000;
        int shift = 14 - e;
        uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = (uint32_t)e << 10 | mant >> 13, rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

typedef struct {
    float mean, std;
} init_rule;

static init_rule rule_for(const st_tensor *t) {
    const char *leaf = strrchr(t->name, '.');
    leaf = leaf ? leaf + 1 : t->name;
    int64_t fan_in = t->ndim >= 2 ? t->numel / t->shape[0] : 1;
    if (strstr(t->name, "embedding")) return (init_rule){0.0f, 0.02f}; /* token / position tables */
    if (t->ndim == 1 && !strcmp(leaf, "bias")) return (init_rule){0.0f, 0.02f};
    if (t->ndim == 1) return (init_rule){1.0f, 0.02f}; /* GroupNorm / LayerNorm scales */
    return (init_rule){0.0f, 1.0f / sqrtf((float)fan_in)};
}

/* Normal values for elements [i0, i0+n) of a tensor: Box-Muller on a counter hash,
 * so every chunk is independent (threads) and the result is deterministic. */
static void fill_normal(float *out, int64_t i0, int64_t n, uint64_t key, init_rule r) {
    for (int64_t i = 0; i < n; i++) {
        uint64_t u = mix(key ^ mix((uint64_t)((i0 + i) >> 1)));
        double u1 = ((u >> 11) + 1) * (1.0 / 9007199254740993.0), u2 = (double)(mix(u) >> 11) * (1.0 / 9007199254740992.0);
        double z = sqrt(-2.0 * log(u1)) * ((i0 + i) & 1 ? sin(2 * M_PI * u2) : cos(2 * M_PI * u2));
        out[i] = r.mean + r.std * (float)z;
    }
}

/* ---- streaming safetensors writer */

static int write_safetensors(const char *path, const weights *w, int f16, uint64_t seed) {
    size_t cap = 1 << 20, len = 0;
    char *hdr = malloc(cap);
    if (!hdr) return 0;
    len += (size_t)snprintf(hdr, cap, "{\"__metadata__\":{\"format\":\"pt\"}");
    int64_t off = 0, esz = f16 ? 2 : 4;
    for (int i = 0; i < w->nviews; i++) {
        const st_tensor *t = &w->views[i];
        if (cap - len < 1024) {
            char *h = realloc(hdr, cap *= 2);
            if (!h) return free(hdr), 0;
            hdr = h;
        }
        len += (size_t)snprintf(hdr + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name, f16 ? "F16" : "F32");
        for (int d = 0; d < t->ndim; d++) len += (size_t)snprintf(hdr + len, cap - len, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        len += (size_t)snprintf(hdr + len, cap - len, "],\"data_offsets\":[%lld,%lld]}", (long long)off,
                                (long long)(off + t->numel * esz));
        off += t->numel * esz;
    }
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    while (len % 8) hdr[len++] = ' ';
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "make_random_model: cannot write %s: %s\n", tmp, strerror(errno));
        return free(hdr), 0;
    }
    uint64_t hl = len;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(hl >> (8 * i));
    int ok = fwrite(le, 1, 8, f) == 8 && fwrite(hdr, 1, len, f) == len;
    free(hdr);
    const int64_t CH = 1 << 20;
    float *v = malloc(CH * sizeof(float));
    uint16_t *h = malloc(CH * sizeof(uint16_t));
    ok = ok && v && h;
    for (int i = 0; ok && i < w->nviews; i++) {
        const st_tensor *t = &w->views[i];
        init_rule r = rule_for(t);
        uint64_t key = mix(seed ^ hash_name(t->name));
        for (int64_t i0 = 0; ok && i0 < t->numel; i0 += CH) {
            int64_t n = t->numel - i0 < CH ? t->numel - i0 : CH;
            const int64_t P = 4096;
#pragma omp parallel for schedule(static)
            for (int64_t p = 0; p < (n + P - 1) / P; p++) {
                int64_t m = n - p * P < P ? n - p * P : P;
                fill_normal(v + p * P, i0 + p * P, m, key, r);
                if (f16)
                    for (int64_t q = 0; q < m; q++) h[p * P + q] = to_half(v[p * P + q]);
            }
            ok = f16 ? fwrite(h, 2, (size_t)n, f) == (size_t)n : fwrite(v, 4, (size_t)n, f) == (size_t)n;
        }
    }
    free(v);
    free(h);
    if (fclose(f)) ok = 0;
    if (ok && rename(tmp, path)) ok = 0;
    if (!ok) {
        fprintf(stderr, "make_random_model: writing %s failed: %s\n", path, strerror(errno));
        remove(tmp);
    }
    return ok;
}

/* ---- components */

static int exists(const char *p) {
    struct stat st;
    return !stat(p, &st);
}

static int write_component(const char *cfg_dir, const char *out_dir, const char *comp, int f16, uint64_t seed) {
    char cfgp[4096], outp[4096];
    snprintf(cfgp, sizeof cfgp, "%s/%s/config.json", cfg_dir, comp);
    if (!exists(cfgp)) return 1; /* the pipeline has no such component */
    weights w;
    if (weights_open(&w, NULL, 0)) return fprintf(stderr, "make_random_model: %s\n", sdc_last_error()), 0;
    w.synthesize = 2; /* record names and shapes only */
    sdc_status st;
    int is_text = !strncmp(comp, "text_encoder", 12);
    sdc_unet *u = NULL;
    sdc_vae *va = NULL;
    clip_text_model *te = NULL;
    if (!strcmp(comp, "unet")) {
        cJSON *j;
        unet_config c;
        if (!(st = json_load(cfgp, &j))) {
            st = unet_config_from_json(j, cfgp, &c);
            cJSON_Delete(j);
            if (!st) st = unet_load_weights(&u, NULL, &c, &w); /* never run: no context */
        }
    } else if (!strcmp(comp, "vae")) {
        vae_config c;
        if (!(st = vae_config_load(&c, cfgp))) {
            c.load_encoder = 2; /* the encoder too: img2img benchmarks need it */
            st = vae_load_weights(&va, NULL, &c, &w);
        }
    } else {
        clip_text_config c;
        if (!(st = clip_text_config_load(&c, cfgp))) {
            cJSON *j;
            /* CLIPTextModelWithProjection (SDXL's second encoder) has text_projection */
            if (!json_load(cfgp, &j)) {
                const cJSON *arch = cJSON_GetObjectItem(j, "architectures");
                const cJSON *a0 = cJSON_IsArray(arch) ? cJSON_GetArrayItem(arch, 0) : NULL;
                if (cJSON_IsString(a0) && strstr(a0->valuestring, "WithProjection")) c.with_projection = 1;
                cJSON_Delete(j);
            }
            st = clip_text_load_weights(&te, NULL, &c, &w);
        }
    }
    if (st) {
        fprintf(stderr, "make_random_model: %s: %s\n", comp, sdc_last_error());
        weights_close(&w);
        return 0;
    }
    /* the UNet moves the weights object into itself; the others borrow it */
    const weights *wl = u ? unet_weights(u) : &w;
    snprintf(outp, sizeof outp, "%s/%s/%s", out_dir, comp, is_text ? "model.safetensors" : "diffusion_pytorch_model.safetensors");
    int64_t n = 0;
    for (int i = 0; i < wl->nviews; i++) n += wl->views[i].numel;
    printf("%s: %d tensors, %.1f M parameters -> %s\n", comp, wl->nviews, (double)n / 1e6, outp);
    fflush(stdout);
    int ok = write_safetensors(outp, wl, f16, seed ^ hash_name(comp));
    if (u) unet_free(u);
    if (va) vae_free(va);
    if (te) clip_text_free(te);
    weights_close(&w);
    return ok;
}

int main(int argc, char **argv) {
    const char *cfg = NULL, *out = NULL;
    uint64_t seed = 1;
    int f16 = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return usage(), 2;
        if (!strcmp(a, "--config")) cfg = v;
        else if (!strcmp(a, "-o")) out = v;
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--dtype") && (!strcmp(v, "f16") || !strcmp(v, "f32"))) f16 = !strcmp(v, "f16");
        else return usage(), 2;
        i++;
    }
    if (!cfg || !out) return usage(), 2;
    char p[4096];
    snprintf(p, sizeof p, "%s/model_index.json", cfg);
    if (!exists(p)) {
        fprintf(stderr, "make_random_model: %s is not a diffusers pipeline folder (no model_index.json)\n", cfg);
        return 1;
    }
    if (!copy_tree(cfg, out)) return 1;
    static const char *const comps[] = {"text_encoder", "text_encoder_2", "unet", "vae"};
    for (int i = 0; i < 4; i++)
        if (!write_component(cfg, out, comps[i], f16, seed)) return 1;
    return 0;
}
