/* model_convert.c - sdc_model_convert: a diffusers folder written again
 * with int8 (q8) UNet and text encoder weights. The model is loaded with
 * weights = "q8" (LoRAs fused first), each quantised component is written
 * as one .safetensors file (nn/weights.h: weights_save) beside a copy of its
 * config, and every other file of the folder (model_index.json, tokenizers,
 * scheduler, the VAE) is copied as it is. Loading the result needs no
 * --weights flag: the int8 tensors are mapped and read in place, so it
 * loads at once and hands its pages back stage by stage like f16 files. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "family/model.h"
#include "io/paths.h"
#include "nn/weights.h"

static sdc_status copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb"), *out = in ? fopen(dst, "wb") : NULL;
    if (!in || !out) {
        sdc_status st = sdc_fail(SDC_ERR_IO, "%s: cannot copy: %s", in ? dst : src, strerror(errno));
        if (in) fclose(in);
        return st;
    }
    static char buf[1 << 16];
    size_t n;
    int ok = 1;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, n, out) == n;
    ok = ok && !ferror(in);
    fclose(in);
    if (fclose(out) || !ok) return sdc_fail(SDC_ERR_IO, "%s: write failed", dst);
    return SDC_OK;
}

static int is_weight_file(const char *name) {
    return strstr(name, ".safetensors") || strstr(name, ".bin") || strstr(name, ".ckpt") || strstr(name, ".pt");
}

/* the regular files of src into dst (made if missing); weight files too unless skip_weights */
static sdc_status copy_files(const char *src, const char *dst, int skip_weights) {
    if (mkdir(dst, 0777) && errno != EEXIST)
        return sdc_fail(SDC_ERR_IO, "%s: cannot make the folder: %s", dst, strerror(errno));
    DIR *d = opendir(src);
    if (!d) return sdc_fail(SDC_ERR_IO, "%s: cannot read the folder: %s", src, strerror(errno));
    sdc_status st = SDC_OK;
    struct dirent *e;
    while (!st && (e = readdir(d))) {
        char a[4096], b[4096];
        snprintf(a, sizeof a, "%s/%s", src, e->d_name);
        snprintf(b, sizeof b, "%s/%s", dst, e->d_name);
        if (e->d_name[0] == '.' || !path_exists(a) || (skip_weights && is_weight_file(e->d_name))) continue;
        st = copy_file(a, b);
    }
    closedir(d);
    return st;
}

sdc_status sdc_model_convert(const char *src, const char *dst, const sdc_load_options *opt) {
    if (!opt || !opt->weights || strcmp(opt->weights, "q8"))
        return sdc_fail(SDC_ERR_ARG, "convert: the only target is --weights q8");
    if (opt->random_weights) return sdc_fail(SDC_ERR_ARG, "convert: a model with made-up weights cannot be saved");
    if (!dir_exists(src))
        return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: convert takes a diffusers folder (single-file checkpoints: not yet)",
                        src);
    char p[4200];
    snprintf(p, sizeof p, "%s/model_index.json", dst);
    if (path_exists(p)) return sdc_fail(SDC_ERR_ARG, "%s: already holds a model; convert into a new folder", dst);
    sdc_model *m;
    SDC_TRY(sdc_model_load(&m, src, opt));
    /* the components rewritten, and the file each is written to */
    struct comp {
        const char *dir, *file;
        weights *w;
    } comp[3] = {{"unet", "diffusion_pytorch_model.safetensors", unet_weights(m->unet)}};
    int nc = 1;
    for (int i = 0; i < m->ntext; i++)
        comp[nc++] =
            (struct comp){i ? "text_encoder_2" : "text_encoder", "model.safetensors", clip_text_weights(m->te[i])};
    sdc_status st = copy_files(src, dst, 0);
    DIR *d = st ? NULL : opendir(src);
    if (!st && !d) st = sdc_fail(SDC_ERR_IO, "%s: cannot read the folder: %s", src, strerror(errno));
    struct dirent *e;
    while (!st && (e = readdir(d))) {
        char a[4096], b[4096];
        snprintf(a, sizeof a, "%s/%s", src, e->d_name);
        snprintf(b, sizeof b, "%s/%s", dst, e->d_name);
        if (e->d_name[0] == '.' || !dir_exists(a)) continue;
        int rewritten = 0;
        for (int i = 0; i < nc; i++) rewritten |= !strcmp(e->d_name, comp[i].dir);
        st = copy_files(a, b, rewritten);
    }
    if (d) closedir(d);
    for (int i = 0; i < nc && !st; i++) {
        snprintf(p, sizeof p, "%s/%s/%s", dst, comp[i].dir, comp[i].file);
        st = weights_save(comp[i].w, p);
    }
    sdc_model_free(m);
    return st;
}
