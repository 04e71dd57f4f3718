/* fingerprint.c - sampled digest of a diffusers folder. Reading every weight
 * byte would take seconds per GB on each worker's start; sampling 200 KiB per
 * file still tells fine-tunes of one base apart, since they differ everywhere. */
#include "dataset/fingerprint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/durable_io.h"
#include "dataset/hash.h"
#include "io/paths.h"
#include "nn/weights.h"

#define EDGE (64u << 10)
#define BLOCK 4096u
#define NBLOCKS 32

static uint64_t sample(uint64_t h, const unsigned char *p, size_t n) {
    h = hash_u64(h, n);
    if (n <= 2 * EDGE + NBLOCKS * BLOCK) return hash_bytes(h, p, n);
    h = hash_bytes(h, p, EDGE);
    h = hash_bytes(h, p + n - EDGE, EDGE);
    for (int i = 0; i < NBLOCKS; i++) h = hash_bytes(h, p + EDGE + (n - 2 * EDGE - BLOCK) / (NBLOCKS - 1) * i, BLOCK);
    return h;
}

static sdc_status small_file(uint64_t *h, const char *dir, const char *name) {
    char p[4096], *data;
    size_t n;
    int missing;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    SDC_TRY(dio_read(p, &data, &n, &missing));
    *h = hash_str(*h, name);
    *h = missing ? hash_str(*h, NULL) : sample(*h, (const unsigned char *)data, n);
    free(data);
    return SDC_OK;
}

static const char *const configs[] = {
        "model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
        "text_encoder_2/config.json", "unet/config.json", "vae/config.json",
        "tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/tokenizer_config.json",
        "tokenizer/special_tokens_map.json", "tokenizer_2/vocab.json", "tokenizer_2/merges.txt",
        "tokenizer_2/tokenizer_config.json", "tokenizer_2/special_tokens_map.json", "vocab.json", "merges.txt",
        "tokenizer_config.json", "special_tokens_map.json"};
#define NCONFIGS (sizeof configs / sizeof configs[0])

sdc_status file_fingerprint(const char *path, uint64_t *out) {
    st_file f;
    SDC_TRY(st_open(&f, path));
    *out = sample(HASH_INIT, (const unsigned char *)f.map, f.map_size);
    st_close(&f);
    return SDC_OK;
}

sdc_status taesd_fingerprint(const char *path, const char *variant, uint64_t *out) {
    if (!dir_exists(path)) return file_fingerprint(path, out);
    uint64_t h = HASH_INIT;
    SDC_TRY(small_file(&h, path, "config.json"));
    weights w;
    SDC_TRY(weights_open_component(&w, path, "diffusion_pytorch_model", variant));
    for (int f = 0; f < w.nfiles; f++) h = sample(h, (const unsigned char *)w.files[f].map, w.files[f].map_size);
    weights_close(&w);
    *out = h;
    return SDC_OK;
}

sdc_status model_fingerprint(const char *model_dir, const char *variant, const char *config_dir,
                             const char *tokenizer_dir, uint64_t *out) {
    static const char *const comps[][2] = {{"text_encoder", "model"}, {"text_encoder_2", "model"},
                                           {"unet", "diffusion_pytorch_model"}, {"vae", "diffusion_pytorch_model"}};
    uint64_t h = HASH_INIT;
    if (path_exists(model_dir)) { /* a single-file checkpoint and what describes it */
        st_file f;
        SDC_TRY(st_open(&f, model_dir));
        h = sample(h, (const unsigned char *)f.map, f.map_size);
        st_close(&f);
        for (int k = 0; k < 2; k++) {
            const char *d = k ? tokenizer_dir : config_dir;
            h = hash_str(h, d ? "given" : NULL);
            for (size_t i = 0; d && i < NCONFIGS; i++) SDC_TRY(small_file(&h, d, configs[i]));
        }
        *out = h;
        return SDC_OK;
    }
    if (!dir_exists(model_dir)) return sdc_fail(SDC_ERR_IO, "%s: model not found", model_dir);
    for (size_t i = 0; i < NCONFIGS; i++) SDC_TRY(small_file(&h, model_dir, configs[i]));
    for (size_t i = 0; i < sizeof comps / sizeof comps[0]; i++) {
        char d[4096];
        snprintf(d, sizeof d, "%s/%s", model_dir, comps[i][0]);
        h = hash_str(h, comps[i][0]);
        if (!dir_exists(d)) continue;
        weights w;
        SDC_TRY(weights_open_component(&w, d, comps[i][1], variant));
        for (int f = 0; f < w.nfiles; f++) h = sample(h, (const unsigned char *)w.files[f].map, w.files[f].map_size);
        weights_close(&w);
    }
    *out = h;
    return SDC_OK;
}
