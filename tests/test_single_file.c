/* test_single_file.c - single-file checkpoints: the fixtures' SD 1.x and
 * SDXL files give the folder's images bit for bit; a tiny SD 2.x-shaped
 * model made here (OpenCLIP text encoder with gelu and one layer more in the
 * file than the folder uses, per-block head counts, linear projections,
 * v_prediction, bf16 VAE, f16 text encoder, EMA copies and extra keys) does
 * too, written both as a diffusers folder and as an LDM single file; the
 * tokenizer search; the built-in configs against the real ones; detection of
 * the prediction type; and a clear error for every kind of wrong file. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "family/builtin_configs.h"
#include "family/ldm_keymap.h"
#include "sdc.h"
#include "harness.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "family/single_file.h"

/* ---- small file helpers ---- */

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

static int copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = a ? fopen(to, "wb") : NULL;
    char buf[65536];
    size_t n;
    int ok = a && b;
    while (ok && (n = fread(buf, 1, sizeof buf, a)) > 0) ok = fwrite(buf, 1, n, b) == n;
    if (a) fclose(a);
    if (b && fclose(b)) ok = 0;
    return ok;
}

static int mkdirs(const char *path) {
    char p[1024];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0755);
            *s = '/';
        }
    return mkdir(p, 0755) == 0 || access(p, F_OK) == 0;
}

/* a copy of a diffusers folder's config files, without tokenizers or weights */
static int copy_configs(const char *from, const char *to, int sdxl) {
    static const char *files[] = {"model_index.json", "unet/config.json", "vae/config.json", "text_encoder/config.json",
                                  "scheduler/scheduler_config.json", "text_encoder_2/config.json"};
    char a[1024], b[1024];
    for (int i = 0; i < (sdxl ? 6 : 5); i++) {
        snprintf(a, sizeof a, "%s/%s", from, files[i]);
        snprintf(b, sizeof b, "%s/%s", to, files[i]);
        char d[1024];
        snprintf(d, sizeof d, "%s", b);
        *strrchr(d, '/') = 0;
        if (!mkdirs(d) || !copy_file(a, b)) return 0;
    }
    return 1;
}

static int copy_tokenizer(const char *from, const char *to) {
    static const char *files[] = {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"};
    char a[1024], b[1024];
    if (!mkdirs(to)) return 0;
    for (int i = 0; i < 4; i++) {
        snprintf(a, sizeof a, "%s/%s", from, files[i]);
        snprintf(b, sizeof b, "%s/%s", to, files[i]);
        if (access(a, F_OK) == 0 && !copy_file(a, b)) return 0;
    }
    return 1;
}

/* ---- generating images ---- */

typedef struct {
    uint8_t *rgb;
    int w, h;
} image;

/* One image of the model at `path` (NULL opt: defaults); 0 on failure (message in sdc_last_error). */
static int render(const char *path, const sdc_load_options *opt, const char *prompt, int steps, float g, int size,
                  image *out, sdc_model_info *info) {
    sdc_model *m;
    memset(out, 0, sizeof *out);
    if (sdc_model_load(&m, path, opt)) return 0;
    if (info) sdc_model_get_info(m, info);
    sdc_request r;
    sdc_request_init(&r);
    const char *prompts[1] = {prompt};
    r.prompts = prompts, r.nprompts = 1, r.seed = 7, r.steps = steps, r.guidance = g, r.width = r.height = size;
    sdc_image *imgs;
    int n, ok = sdc_generate(m, &r, &imgs, &n) == SDC_OK;
    sdc_model_free(m);
    if (!ok) return 0;
    out->w = imgs[0].width, out->h = imgs[0].height;
    out->rgb = malloc((size_t)out->w * out->h * 3);
    if (out->rgb) memcpy(out->rgb, imgs[0].rgb, (size_t)out->w * out->h * 3);
    sdc_images_free(imgs, n);
    return out->rgb != NULL;
}

static int same_image(const image *a, const image *b) {
    return a->w == b->w && a->h == b->h && !memcmp(a->rgb, b->rgb, (size_t)a->w * a->h * 3);
}

/* not a flat image: the comparison means something */
static int varied(const image *a) {
    int lo = 255, hi = 0;
    for (int64_t i = 0; i < (int64_t)a->w * a->h * 3; i++) {
        if (a->rgb[i] < lo) lo = a->rgb[i];
        if (a->rgb[i] > hi) hi = a->rgb[i];
    }
    return hi - lo > 20;
}

static void folder_vs_file(const char *folder, const char *file, const char *prompt) {
    image a, b;
    sdc_load_options lo = {.config_dir = fixture_path(folder)};
    CHECK(render(fixture_path(folder), NULL, prompt, 2, 5.0f, 64, &a, NULL), "folder: %s", sdc_last_error());
    int ok = render(fixture_path(file), &lo, prompt, 2, 5.0f, 64, &b, NULL);
    if (!ok) free(a.rgb);
    CHECK(ok, "single file: %s", sdc_last_error());
    int same = same_image(&a, &b), var = varied(&a);
    free(a.rgb), free(b.rgb);
    CHECK(var, "%s: the image is flat", folder);
    CHECK(same, "%s: the single file's image differs from the folder's", file);
}

TEST(single_file_sd_equals_folder) { folder_vs_file("models/tiny-sd", "models/tiny-sd.safetensors", "pigs flying"); }
TEST(single_file_sdxl_equals_folder) {
    folder_vs_file("models/tiny-sdxl", "models/tiny-sdxl.safetensors", "a cinematic photo of a castle");
}

/* ---- a tiny SD 2.x-shaped model, as a folder and as a single file ---- */

typedef struct {
    st_writer *unet, *vae, *te, *single;
    uint64_t rng;
} gen;

typedef enum { P_MAT, P_NORM, P_BIAS, P_EMB } pkind;

static float urand(gen *g) { /* [-1, 1) */
    g->rng = g->rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(g->rng >> 40) / 8388608.0f - 1.0f;
}

static float *values(gen *g, int64_t n, int64_t fan_in, pkind k) {
    float *x = malloc((size_t)n * sizeof(float));
    float a = k == P_MAT ? 1.7f / sqrtf((float)fan_in) : k == P_EMB ? 0.5f : 0.1f;
    for (int64_t i = 0; x && i < n; i++) x[i] = (k == P_NORM ? 1.0f : 0.0f) + a * urand(g);
    return x;
}

static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even */
    return (uint16_t)(u >> 16);
}

/* float32 values stored as dtype */
static sdc_status put(st_writer *w, const char *name, st_dtype dt, int ndim, const int64_t *shape, const float *x) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    if (dt == ST_F32) return st_writer_add(w, name, dt, ndim, shape, x);
    uint16_t *h = malloc((size_t)n * 2);
    if (!h) return SDC_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) h[i] = dt == ST_F16 ? sdc_f32_to_f16(x[i]) : to_bf16(x[i]);
    sdc_status st = st_writer_add(w, name, dt, ndim, shape, h);
    free(h);
    return st;
}

/* one parameter: folder name d with shape ds, single-file name l with shape ls (same values) */
static int param2(gen *g, st_writer *fw, st_dtype dt, const char *d, const char *l, int nd, const int64_t *ds,
                  int nl, const int64_t *ls, pkind k) {
    int64_t n = 1, fan = 1;
    for (int i = 0; i < nd; i++) n *= ds[i];
    for (int i = 1; i < nd; i++) fan *= ds[i];
    float *x = values(g, n, fan, k);
    int ok = x && !put(fw, d, dt, nd, ds, x) && !put(g->single, l, dt, nl, ls, x);
    free(x);
    return ok;
}

static int param(gen *g, st_writer *fw, st_dtype dt, const char *d, const char *l, int nd, const int64_t *s, pkind k) {
    return param2(g, fw, dt, d, l, nd, s, nd, s, k);
}

/* ---- UNet (LDM names from ldm_unet_name, itself checked against the fixtures) ---- */

typedef struct {
    gen *g;
    const unet_config *c;
    int ok;
} unet_gen;

static void up(unet_gen *u, const char *d, int nd, int64_t a, int64_t b, int64_t k, pkind kind) {
    char l[400], full[450];
    int64_t s[4] = {a, b, k, k};
    if (!u->ok) return;
    if (!ldm_unet_name(u->c, d, l, sizeof l)) {
        u->ok = 0;
        return;
    }
    snprintf(full, sizeof full, "model.diffusion_model.%s", l);
    u->ok = param(u->g, u->g->unet, ST_F32, d, full, nd, s, kind);
}

/* weight (+ bias) of module pfx.name: a linear (k 0) or a k x k conv */
static void ulin(unet_gen *u, const char *pfx, const char *name, int64_t out, int64_t in, int64_t k, int bias) {
    char d[400];
    snprintf(d, sizeof d, "%s%s%s.weight", pfx, *pfx ? "." : "", name);
    up(u, d, k ? 4 : 2, out, in, k, P_MAT);
    if (!bias) return;
    snprintf(d, sizeof d, "%s%s%s.bias", pfx, *pfx ? "." : "", name);
    up(u, d, 1, out, 0, 0, P_BIAS);
}

static void unorm(unet_gen *u, const char *pfx, const char *name, int64_t C) {
    char d[400];
    snprintf(d, sizeof d, "%s%s%s.weight", pfx, *pfx ? "." : "", name);
    up(u, d, 1, C, 0, 0, P_NORM);
    snprintf(d, sizeof d, "%s%s%s.bias", pfx, *pfx ? "." : "", name);
    up(u, d, 1, C, 0, 0, P_BIAS);
}

static void uresnet(unet_gen *u, const char *pfx, int cin, int cout, int T) {
    unorm(u, pfx, "norm1", cin);
    ulin(u, pfx, "conv1", cout, cin, 3, 1);
    ulin(u, pfx, "time_emb_proj", cout, T, 0, 1);
    unorm(u, pfx, "norm2", cout);
    ulin(u, pfx, "conv2", cout, cout, 3, 1);
    if (cin != cout) ulin(u, pfx, "conv_shortcut", cout, cin, 1, 1);
}

static void utransformer(unet_gen *u, const char *pfx, int C, int ctx) {
    char b[400];
    unorm(u, pfx, "norm", C);
    ulin(u, pfx, "proj_in", C, C, 0, 1); /* linear projections (use_linear_projection) */
    snprintf(b, sizeof b, "%s.transformer_blocks.0", pfx);
    unorm(u, b, "norm1", C);
    ulin(u, b, "attn1.to_q", C, C, 0, 0);
    ulin(u, b, "attn1.to_k", C, C, 0, 0);
    ulin(u, b, "attn1.to_v", C, C, 0, 0);
    ulin(u, b, "attn1.to_out.0", C, C, 0, 1);
    unorm(u, b, "norm2", C);
    ulin(u, b, "attn2.to_q", C, C, 0, 0);
    ulin(u, b, "attn2.to_k", C, ctx, 0, 0);
    ulin(u, b, "attn2.to_v", C, ctx, 0, 0);
    ulin(u, b, "attn2.to_out.0", C, C, 0, 1);
    unorm(u, b, "norm3", C);
    ulin(u, b, "ff.net.0.proj", 8 * C, C, 0, 1); /* GEGLU: 2 x 4C */
    ulin(u, b, "ff.net.2", C, 4 * C, 0, 1);
    ulin(u, pfx, "proj_out", C, C, 0, 1);
}

/* per-block head counts (diffusers' attention_head_dim naming), linear projections */
static const char k_sd2_unet_json[] =
    "{\"_class_name\":\"UNet2DConditionModel\",\"act_fn\":\"silu\",\"attention_head_dim\":[2,4,4],"
    "\"block_out_channels\":[32,64,64],\"cross_attention_dim\":48,"
    "\"down_block_types\":[\"CrossAttnDownBlock2D\",\"CrossAttnDownBlock2D\",\"DownBlock2D\"],"
    "\"up_block_types\":[\"UpBlock2D\",\"CrossAttnUpBlock2D\",\"CrossAttnUpBlock2D\"],\"in_channels\":4,"
    "\"out_channels\":4,\"layers_per_block\":1,\"norm_num_groups\":8,\"sample_size\":8,\"upcast_attention\":true,"
    "\"use_linear_projection\":true}\n";

/* every UNet2DConditionModel parameter of the config above, named as diffusers names them */
static int gen_unet(gen *g) {
    cJSON *j;
    unet_config c;
    if (json_parse(k_sd2_unet_json, strlen(k_sd2_unet_json), "unet", &j)) return 0;
    sdc_status st = unet_config_from_json(j, "unet", &c);
    cJSON_Delete(j);
    if (st) return 0;
    unet_gen u = {g, &c, 1};
    int nb = c.nblocks, T = c.time_embed_dim, ctx = c.cross_dim[0], L = c.layers_per_block[0];
    const int *b = c.block_out;
    char p[200];
    ulin(&u, "", "conv_in", b[0], 4, 3, 1);
    ulin(&u, "", "time_embedding.linear_1", T, b[0], 0, 1);
    ulin(&u, "", "time_embedding.linear_2", T, T, 0, 1);
    int prev = b[0];
    for (int i = 0; i < nb; i++) {
        for (int k = 0; k < L; k++) {
            snprintf(p, sizeof p, "down_blocks.%d.resnets.%d", i, k);
            uresnet(&u, p, k ? b[i] : prev, b[i], T);
            snprintf(p, sizeof p, "down_blocks.%d.attentions.%d", i, k);
            if (c.down_attn[i]) utransformer(&u, p, b[i], ctx);
        }
        snprintf(p, sizeof p, "down_blocks.%d.downsamplers.0", i);
        if (i < nb - 1) ulin(&u, p, "conv", b[i], b[i], 3, 1);
        prev = b[i];
    }
    int top = b[nb - 1];
    uresnet(&u, "mid_block.resnets.0", top, top, T);
    utransformer(&u, "mid_block.attentions.0", top, ctx);
    uresnet(&u, "mid_block.resnets.1", top, top, T);
    int out = top;
    for (int i = 0; i < nb; i++) { /* diffusers UNet2DConditionModel.__init__'s up path */
        int prev_out = out, in = b[nb - 1 - (i + 1 < nb ? i + 1 : nb - 1)];
        out = b[nb - 1 - i];
        for (int k = 0; k <= L; k++) {
            int skip = k == L ? in : out, rin = k ? out : prev_out;
            snprintf(p, sizeof p, "up_blocks.%d.resnets.%d", i, k);
            uresnet(&u, p, rin + skip, out, T);
            snprintf(p, sizeof p, "up_blocks.%d.attentions.%d", i, k);
            if (c.up_attn[i]) utransformer(&u, p, out, ctx);
        }
        snprintf(p, sizeof p, "up_blocks.%d.upsamplers.0", i);
        if (i < nb - 1) ulin(&u, p, "conv", out, out, 3, 1);
    }
    unorm(&u, "", "conv_norm_out", b[0]);
    ulin(&u, "", "conv_out", 4, b[0], 3, 1);
    return u.ok;
}

/* ---- VAE: LDM names written out by hand (the map under test is ldm_keymap_vae.c) ---- */

static const char k_sd2_vae_json[] =
    "{\"_class_name\":\"AutoencoderKL\",\"act_fn\":\"silu\",\"block_out_channels\":[16,32],"
    "\"down_block_types\":[\"DownEncoderBlock2D\",\"DownEncoderBlock2D\"],\"in_channels\":3,\"latent_channels\":4,"
    "\"layers_per_block\":1,\"norm_num_groups\":8,\"out_channels\":3,\"sample_size\":32,\"scaling_factor\":0.18215,"
    "\"up_block_types\":[\"UpDecoderBlock2D\",\"UpDecoderBlock2D\"]}\n";

static int vlayer(gen *g, const char *d, const char *l, int64_t out, int64_t in, int64_t k) {
    char a[300], b[300];
    int64_t s[4] = {out, in, k, k};
    snprintf(a, sizeof a, "%s.weight", d);
    snprintf(b, sizeof b, "first_stage_model.%s.weight", l);
    if (!param(g, g->vae, ST_BF16, a, b, 4, s, P_MAT)) return 0;
    snprintf(a, sizeof a, "%s.bias", d);
    snprintf(b, sizeof b, "first_stage_model.%s.bias", l);
    return param(g, g->vae, ST_BF16, a, b, 1, s, P_BIAS);
}

static int vnorm(gen *g, const char *d, const char *l, int64_t C) {
    char a[300], b[300];
    snprintf(a, sizeof a, "%s.weight", d);
    snprintf(b, sizeof b, "first_stage_model.%s.weight", l);
    if (!param(g, g->vae, ST_BF16, a, b, 1, &C, P_NORM)) return 0;
    snprintf(a, sizeof a, "%s.bias", d);
    snprintf(b, sizeof b, "first_stage_model.%s.bias", l);
    return param(g, g->vae, ST_BF16, a, b, 1, &C, P_BIAS);
}

static int vresnet(gen *g, const char *d, const char *l, int cin, int cout) {
    char a[300], b[300];
    int ok = 1;
#define PAIR(x, y) (snprintf(a, sizeof a, "%s.%s", d, x), snprintf(b, sizeof b, "%s.%s", l, y))
    ok = ok && (PAIR("norm1", "norm1"), vnorm(g, a, b, cin));
    ok = ok && (PAIR("conv1", "conv1"), vlayer(g, a, b, cout, cin, 3));
    ok = ok && (PAIR("norm2", "norm2"), vnorm(g, a, b, cout));
    ok = ok && (PAIR("conv2", "conv2"), vlayer(g, a, b, cout, cout, 3));
    if (cin != cout) ok = ok && (PAIR("conv_shortcut", "nin_shortcut"), vlayer(g, a, b, cout, cin, 1));
    return ok;
}

/* mid block; the attention's q/k/v/proj_out are (C, C) in the folder, (C, C, 1, 1) in the file */
static int vmid(gen *g, const char *part, int C) {
    char a[300], b[300];
    int ok = 1;
    static const char *attn[][2] = {{"to_q", "q"}, {"to_k", "k"}, {"to_v", "v"}, {"to_out.0", "proj_out"}};
    for (int i = 0; i < 2 && ok; i++) {
        snprintf(a, sizeof a, "%s.mid_block.resnets.%d", part, i);
        snprintf(b, sizeof b, "%s.mid.block_%d", part, i + 1);
        ok = vresnet(g, a, b, C, C);
    }
    snprintf(a, sizeof a, "%s.mid_block.attentions.0.group_norm", part);
    snprintf(b, sizeof b, "%s.mid.attn_1.norm", part);
    ok = ok && vnorm(g, a, b, C);
    for (int i = 0; i < 4 && ok; i++) {
        char w1[300], w2[300];
        int64_t s2[2] = {C, C}, s4[4] = {C, C, 1, 1}, s1[1] = {C};
        snprintf(w1, sizeof w1, "%s.mid_block.attentions.0.%s.weight", part, attn[i][0]);
        snprintf(w2, sizeof w2, "first_stage_model.%s.mid.attn_1.%s.weight", part, attn[i][1]);
        ok = param2(g, g->vae, ST_BF16, w1, w2, 2, s2, 4, s4, P_MAT);
        snprintf(w1, sizeof w1, "%s.mid_block.attentions.0.%s.bias", part, attn[i][0]);
        snprintf(w2, sizeof w2, "first_stage_model.%s.mid.attn_1.%s.bias", part, attn[i][1]);
        ok = ok && param(g, g->vae, ST_BF16, w1, w2, 1, s1, P_BIAS);
    }
    return ok;
}

static int gen_vae(gen *g) {
    const int n = 2, b[2] = {16, 32}, L = 1, lat = 4;
    char d[300], l[300];
    int ok = vlayer(g, "encoder.conv_in", "encoder.conv_in", b[0], 3, 3);
    int prev = b[0];
    for (int i = 0; i < n && ok; i++) {
        for (int k = 0; k < L && ok; k++) {
            snprintf(d, sizeof d, "encoder.down_blocks.%d.resnets.%d", i, k);
            snprintf(l, sizeof l, "encoder.down.%d.block.%d", i, k);
            ok = vresnet(g, d, l, k ? b[i] : prev, b[i]);
        }
        snprintf(d, sizeof d, "encoder.down_blocks.%d.downsamplers.0.conv", i);
        snprintf(l, sizeof l, "encoder.down.%d.downsample.conv", i);
        if (ok && i < n - 1) ok = vlayer(g, d, l, b[i], b[i], 3);
        prev = b[i];
    }
    int top = b[n - 1];
    ok = ok && vmid(g, "encoder", top) && vnorm(g, "encoder.conv_norm_out", "encoder.norm_out", top) &&
         vlayer(g, "encoder.conv_out", "encoder.conv_out", 2 * lat, top, 3) &&
         vlayer(g, "quant_conv", "quant_conv", 2 * lat, 2 * lat, 1) &&
         vlayer(g, "post_quant_conv", "post_quant_conv", lat, lat, 1) &&
         vlayer(g, "decoder.conv_in", "decoder.conv_in", top, lat, 3) && vmid(g, "decoder", top);
    prev = top;
    for (int i = 0; i < n && ok; i++) {
        int out = b[n - 1 - i], k_ldm = n - 1 - i; /* LDM numbers the decoder levels from the image end */
        for (int k = 0; k <= L && ok; k++) {
            snprintf(d, sizeof d, "decoder.up_blocks.%d.resnets.%d", i, k);
            snprintf(l, sizeof l, "decoder.up.%d.block.%d", k_ldm, k);
            ok = vresnet(g, d, l, k ? out : prev, out);
        }
        snprintf(d, sizeof d, "decoder.up_blocks.%d.upsamplers.0.conv", i);
        snprintf(l, sizeof l, "decoder.up.%d.upsample.conv", k_ldm);
        if (ok && i < n - 1) ok = vlayer(g, d, l, out, out, 3);
        prev = out;
    }
    return ok && vnorm(g, "decoder.conv_norm_out", "decoder.norm_out", b[0]) &&
           vlayer(g, "decoder.conv_out", "decoder.conv_out", 3, b[0], 3);
}

/* ---- OpenCLIP text encoder: 3 resblocks in the file, 2 layers in the folder ---- */

enum { TE_D = 48, TE_I = 96, TE_V = 1114, TE_FILE_LAYERS = 3 };

static const char k_sd2_te_json[] =
    "{\"architectures\":[\"CLIPTextModel\"],\"bos_token_id\":0,\"eos_token_id\":2,\"hidden_act\":\"gelu\","
    "\"hidden_size\":48,\"intermediate_size\":96,\"layer_norm_eps\":1e-05,\"max_position_embeddings\":77,"
    "\"model_type\":\"clip_text_model\",\"num_attention_heads\":4,\"num_hidden_layers\":2,\"pad_token_id\":1,"
    "\"projection_dim\":32,\"vocab_size\":1114}\n";

#define OC "cond_stage_model.model."

static int te_put(gen *g, const char *d, const char *l, int nd, const int64_t *s, pkind k, int layer) {
    /* the file's last layer has no folder counterpart (diffusers drops it): file only */
    if (layer == TE_FILE_LAYERS - 1) {
        int64_t n = 1;
        for (int i = 0; i < nd; i++) n *= s[i];
        float *x = values(g, n, nd > 1 ? s[1] : 1, k);
        int ok = x && !put(g->single, l, ST_F16, nd, s, x);
        free(x);
        return ok;
    }
    return param(g, g->te, ST_F16, d, l, nd, s, k);
}

static int gen_te(gen *g) {
    char d[300], l[300];
    int64_t tok[2] = {TE_V, TE_D}, pos[2] = {77, TE_D}, D1[1] = {TE_D}, DD[2] = {TE_D, TE_D}, ID[2] = {TE_I, TE_D},
            DI[2] = {TE_D, TE_I}, I1[1] = {TE_I};
    int ok = param(g, g->te, ST_F16, "text_model.embeddings.token_embedding.weight", OC "token_embedding.weight", 2, tok,
                   P_EMB) &&
             param(g, g->te, ST_F16, "text_model.embeddings.position_embedding.weight", OC "positional_embedding", 2,
                   pos, P_EMB);
    for (int L = 0; L < TE_FILE_LAYERS && ok; L++) {
        static const char *nm[][2] = {{"layer_norm1", "ln_1"}, {"layer_norm2", "ln_2"}};
        for (int i = 0; i < 2 && ok; i++) {
            snprintf(d, sizeof d, "text_model.encoder.layers.%d.%s.weight", L, nm[i][0]);
            snprintf(l, sizeof l, OC "transformer.resblocks.%d.%s.weight", L, nm[i][1]);
            ok = te_put(g, d, l, 1, D1, P_NORM, L);
            snprintf(d, sizeof d, "text_model.encoder.layers.%d.%s.bias", L, nm[i][0]);
            snprintf(l, sizeof l, OC "transformer.resblocks.%d.%s.bias", L, nm[i][1]);
            ok = ok && te_put(g, d, l, 1, D1, P_BIAS, L);
        }
        /* q, k, v: separate in the folder, stacked rows of in_proj in the file */
        float *w = values(g, 3 * TE_D * TE_D, TE_D, P_MAT), *bias = values(g, 3 * TE_D, 1, P_BIAS);
        int64_t w3[2] = {3 * TE_D, TE_D}, b3[1] = {3 * TE_D};
        snprintf(l, sizeof l, OC "transformer.resblocks.%d.attn.in_proj_weight", L);
        ok = ok && w && bias && !put(g->single, l, ST_F16, 2, w3, w);
        snprintf(l, sizeof l, OC "transformer.resblocks.%d.attn.in_proj_bias", L);
        ok = ok && !put(g->single, l, ST_F16, 1, b3, bias);
        for (int k = 0; k < 3 && ok && L < TE_FILE_LAYERS - 1; k++) {
            snprintf(d, sizeof d, "text_model.encoder.layers.%d.self_attn.%c_proj.weight", L, "qkv"[k]);
            ok = !put(g->te, d, ST_F16, 2, DD, w + k * TE_D * TE_D);
            snprintf(d, sizeof d, "text_model.encoder.layers.%d.self_attn.%c_proj.bias", L, "qkv"[k]);
            ok = ok && !put(g->te, d, ST_F16, 1, D1, bias + k * TE_D);
        }
        free(w), free(bias);
        static const char *lin[][2] = {{"self_attn.out_proj", "attn.out_proj"}, {"mlp.fc1", "mlp.c_fc"}, {"mlp.fc2", "mlp.c_proj"}};
        const int64_t *ws[3] = {DD, ID, DI}, *bs[3] = {D1, I1, D1};
        for (int i = 0; i < 3 && ok; i++) {
            snprintf(d, sizeof d, "text_model.encoder.layers.%d.%s.weight", L, lin[i][0]);
            snprintf(l, sizeof l, OC "transformer.resblocks.%d.%s.weight", L, lin[i][1]);
            ok = te_put(g, d, l, 2, ws[i], P_MAT, L);
            snprintf(d, sizeof d, "text_model.encoder.layers.%d.%s.bias", L, lin[i][0]);
            snprintf(l, sizeof l, OC "transformer.resblocks.%d.%s.bias", L, lin[i][1]);
            ok = ok && te_put(g, d, l, 1, bs[i], P_BIAS, L);
        }
    }
    int64_t proj[2] = {TE_D, 32};
    float scale = 4.6f;
    return ok && param(g, g->te, ST_F16, "text_model.final_layer_norm.weight", OC "ln_final.weight", 1, D1, P_NORM) &&
           param(g, g->te, ST_F16, "text_model.final_layer_norm.bias", OC "ln_final.bias", 1, D1, P_BIAS) &&
           te_put(g, NULL, OC "text_projection", 2, proj, P_MAT, TE_FILE_LAYERS - 1) && /* file only: unused */
           !st_writer_add(g->single, OC "logit_scale", ST_F32, 0, NULL, &scale);
}

/* EMA copies and training leftovers a real checkpoint carries: ignored */
static int gen_extras(gen *g) {
    float ac[1000], decay = 0.9999f;
    for (int i = 0; i < 1000; i++) ac[i] = 1.0f - (float)i / 1000.0f;
    int64_t n = 1000, s[4] = {32, 4, 3, 3};
    float *x = values(g, 32 * 4 * 9, 36, P_MAT);
    int ok = x && !st_writer_add(g->single, "alphas_cumprod", ST_F32, 1, &n, ac) &&
             !st_writer_add(g->single, "model_ema.decay", ST_F32, 0, NULL, &decay) &&
             !st_writer_add(g->single, "model_ema.diffusion_modelinput_blocks00weight", ST_F32, 4, s, x);
    free(x);
    return ok;
}

static const char k_sd2_sched_json[] =
    "{\"_class_name\":\"DDIMScheduler\",\"beta_end\":0.012,\"beta_schedule\":\"scaled_linear\",\"beta_start\":0.00085,"
    "\"clip_sample\":false,\"num_train_timesteps\":1000,\"prediction_type\":\"v_prediction\",\"set_alpha_to_one\":false,"
    "\"skip_prk_steps\":true,\"steps_offset\":1,\"trained_betas\":null}\n";

/* the tiny vocabulary with SD 2.x's pad token "!" */
static const char k_sd2_tokenizer_json[] =
    "{\"added_tokens_decoder\":{\"1112\":{\"content\":\"<|startoftext|>\",\"lstrip\":false,\"normalized\":true,"
    "\"rstrip\":false,\"single_word\":false,\"special\":true},\"1113\":{\"content\":\"<|endoftext|>\",\"lstrip\":false,"
    "\"normalized\":true,\"rstrip\":false,\"single_word\":false,\"special\":true}},\"bos_token\":\"<|startoftext|>\","
    "\"eos_token\":\"<|endoftext|>\",\"model_max_length\":77,\"pad_token\":\"!\",\"unk_token\":\"<|endoftext|>\"}\n";

static const char k_sd2_index_json[] =
    "{\"_class_name\":\"StableDiffusionPipeline\",\"scheduler\":[\"diffusers\",\"DDIMScheduler\"],"
    "\"text_encoder\":[\"transformers\",\"CLIPTextModel\"],\"tokenizer\":[\"transformers\",\"CLIPTokenizer\"],"
    "\"unet\":[\"diffusers\",\"UNet2DConditionModel\"],\"vae\":[\"diffusers\",\"AutoencoderKL\"]}\n";

/* <root>/sd2-tiny/ (diffusers folder) and <root>/sd2-tiny.safetensors (LDM single file); 0 on failure */
static int build_sd2(const char *root, char *folder, char *file, size_t n) {
    snprintf(folder, n, "%s/sd2-tiny", root);
    snprintf(file, n, "%s/sd2-tiny.safetensors", root);
    struct stat sb;
    if (stat(file, &sb) == 0) return 1; /* made by an earlier test of this run */
    char p[1024];
    static const char *dirs[] = {"unet", "vae", "text_encoder", "scheduler", "tokenizer"};
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", folder, dirs[i]);
        if (!mkdirs(p)) return 0;
    }
    gen g = {st_writer_new(), st_writer_new(), st_writer_new(), st_writer_new(), 0x5d2u};
    int ok = g.unet && g.vae && g.te && g.single && gen_te(&g) && gen_vae(&g) && gen_unet(&g) && gen_extras(&g);
#define SAVE(w, rel) (snprintf(p, sizeof p, "%s/%s", folder, rel), !st_writer_save(w, p))
#define TEXT(rel, s) (snprintf(p, sizeof p, "%s/%s", folder, rel), write_text(p, s))
    ok = ok && SAVE(g.unet, "unet/diffusion_pytorch_model.safetensors") &&
         SAVE(g.vae, "vae/diffusion_pytorch_model.safetensors") && SAVE(g.te, "text_encoder/model.safetensors") &&
         TEXT("model_index.json", k_sd2_index_json) && TEXT("unet/config.json", k_sd2_unet_json) &&
         TEXT("vae/config.json", k_sd2_vae_json) && TEXT("text_encoder/config.json", k_sd2_te_json) &&
         TEXT("scheduler/scheduler_config.json", k_sd2_sched_json) &&
         TEXT("tokenizer/tokenizer_config.json", k_sd2_tokenizer_json);
    char a[1024];
    snprintf(a, sizeof a, "%s", fixture_path("vocab-tiny/vocab.json"));
    ok = ok && (snprintf(p, sizeof p, "%s/tokenizer/vocab.json", folder), copy_file(a, p));
    snprintf(a, sizeof a, "%s", fixture_path("vocab-tiny/merges.txt"));
    ok = ok && (snprintf(p, sizeof p, "%s/tokenizer/merges.txt", folder), copy_file(a, p));
    ok = ok && !st_writer_save(g.single, file);
    st_writer_free(g.unet), st_writer_free(g.vae), st_writer_free(g.te), st_writer_free(g.single);
    return ok;
}

static const char *k_sd2_prompt = "a photo of a kitten in a misty forest, highly detailed";

TEST(single_file_sd2_equals_folder) {
    char folder[1024], file[1024];
    CHECK(build_sd2(tmp_path("sd2"), folder, file, sizeof folder), "cannot write the tiny SD 2.x model: %s",
          sdc_last_error());
    image a, b, c, e;
    sdc_model_info ia, ib;
    CHECK(render(folder, NULL, k_sd2_prompt, 2, 5.0f, 32, &a, &ia), "folder: %s", sdc_last_error());
    sdc_load_options lo = {.config_dir = folder};
    int ok = render(file, &lo, k_sd2_prompt, 2, 5.0f, 32, &b, &ib);
    if (!ok) free(a.rgb);
    CHECK(ok, "single file: %s", sdc_last_error());
    int same = same_image(&a, &b), var = varied(&a);
    free(b.rgb);
    if (!same || !var) free(a.rgb);
    CHECK(var, "the tiny SD 2.x image is flat");
    CHECK(same, "the SD 2.x single file's image differs from the folder's");
    CHECK(!strcmp(ia.prediction, "v_prediction") && !strcmp(ib.prediction, "v_prediction"), "prediction %s / %s",
          ia.prediction, ib.prediction);
    /* a plain CLIP tokenizer folder (pad <|endoftext|>) is padded with "!" for OpenCLIP */
    sdc_load_options lt = {.config_dir = folder, .tokenizer_dir = fixture_path("vocab-tiny")};
    ok = render(file, &lt, k_sd2_prompt, 2, 5.0f, 32, &c, NULL);
    same = ok && same_image(&a, &c);
    free(c.rgb);
    if (!same) free(a.rgb);
    CHECK(ok, "with --tokenizer: %s", sdc_last_error());
    CHECK(same, "with the plain CLIP tokenizer folder the image differs (pad token not \"!\"?)");
    /* --prediction epsilon changes the result: the flag reaches the scheduler */
    sdc_load_options le = {.config_dir = folder, .prediction = "epsilon"};
    ok = render(file, &le, k_sd2_prompt, 2, 5.0f, 32, &e, &ib);
    same = ok && same_image(&a, &e);
    free(a.rgb), free(e.rgb);
    CHECK(ok, "with --prediction epsilon: %s", sdc_last_error());
    CHECK(!same && !strcmp(ib.prediction, "epsilon"), "--prediction epsilon had no effect (%s)", ib.prediction);
}

TEST(single_file_sd2_model_shape) {
    char folder[1024], file[1024];
    CHECK(build_sd2(tmp_path("sd2"), folder, file, sizeof folder), "cannot write the tiny SD 2.x model");
    sdc_model *m;
    sdc_load_options lo = {.config_dir = folder, .tokenizer_dir = fixture_path("vocab-tiny")};
    CHECK_OK(sdc_model_load(&m, file, &lo));
    int layers = clip_text_num_layers(m->te[0]), pad = clip_tokenizer_pad(m->tok[0]), sdxl = m->ntext > 1;
    sdc_model_free(m);
    CHECK(layers == 2, "text encoder has %d layers, expected 2 (the file's last resblock unused)", layers);
    CHECK(pad == 0, "pad id %d, expected 0 (\"!\")", pad);
    CHECK(!sdxl, "family");
    /* what `sdc info` makes of it */
    sdc_model_report r;
    CHECK_OK(sdc_model_inspect(file, &lo, &r));
    CHECK(!strcmp(r.family, "sd2") && r.ncomp == 3, "family %s, %d components", r.family, r.ncomp);
    CHECK(!strcmp(r.prediction, "v_prediction") && !strcmp(r.scheduler, "ddim"), "%s / %s", r.prediction, r.scheduler);
    /* last resblock (12 tensors) + text_projection + logit_scale + alphas_cumprod unused, 2 EMA tensors */
    CHECK(r.ignored_tensors == 15 && r.ema_tensors == 2, "ignored %lld, ema %lld", (long long)r.ignored_tensors,
          (long long)r.ema_tensors);
    CHECK(!strcmp(r.comp[2].dtypes, "F16") && !strcmp(r.comp[1].dtypes, "BF16"), "dtypes %s %s", r.comp[2].dtypes,
          r.comp[1].dtypes);
    CHECK(r.comp[2].lora_targets == 12, "text encoder LoRA targets %d (2 layers x 6)", r.comp[2].lora_targets);
    sdc_model_report rf;
    CHECK_OK(sdc_model_inspect(folder, NULL, &rf));
    for (int i = 0; i < 3; i++)
        CHECK(rf.comp[i].params == r.comp[i].params && rf.comp[i].lora_targets == r.comp[i].lora_targets,
              "%s: folder %lld params / %d targets, file %lld / %d", r.comp[i].name, (long long)rf.comp[i].params,
              rf.comp[i].lora_targets, (long long)r.comp[i].params, r.comp[i].lora_targets);
}

/* ---- tokenizer search ---- */

static void set_cache(const char *dir, char *saved, size_t n) {
    const char *old = getenv("XDG_CACHE_HOME");
    snprintf(saved, n, "%s", old ? old : "");
    setenv("XDG_CACHE_HOME", dir, 1);
}

static void restore_cache(const char *saved) {
    if (*saved) setenv("XDG_CACHE_HOME", saved, 1);
    else unsetenv("XDG_CACHE_HOME");
}

TEST(single_file_tokenizer_beside_file) {
    char root[1024], p[1024], link[1024], cfg[1024], saved[1024];
    snprintf(root, sizeof root, "%s", tmp_path("tok-beside"));
    snprintf(link, sizeof link, "%s/model.safetensors", root);
    snprintf(cfg, sizeof cfg, "%s/configs", root);
    snprintf(p, sizeof p, "%s/tokenizer", root);
    CHECK(mkdirs(root) && copy_tokenizer(fixture_path("models/tiny-sd/tokenizer"), p), "setup");
    CHECK(copy_configs(fixture_path("models/tiny-sd"), cfg, 0), "setup configs");
    unlink(link);
    char target[1024];
    CHECK(realpath(fixture_path("models/tiny-sd.safetensors"), target) && symlink(target, link) == 0, "symlink");
    set_cache(tmp_path("no-cache"), saved, sizeof saved);
    image a, b;
    sdc_load_options lo = {.config_dir = cfg};
    int ok = render(link, &lo, "pigs flying", 1, 5.0f, 64, &b, NULL);
    restore_cache(saved);
    CHECK(ok, "tokenizer/ beside the file: %s", sdc_last_error());
    ok = render(fixture_path("models/tiny-sd"), NULL, "pigs flying", 1, 5.0f, 64, &a, NULL);
    int same = ok && same_image(&a, &b);
    free(a.rgb), free(b.rgb);
    CHECK(same, "image differs from the folder's");
}

TEST(single_file_tokenizer_from_cache) {
    /* SDXL with only the CLIP ViT-L tokenizer in the cache: the second one reuses it, padded with "!" */
    char root[1024], p[1024], link[1024], cfg[1024], cache[1024], saved[1024];
    snprintf(root, sizeof root, "%s", tmp_path("tok-cache"));
    snprintf(link, sizeof link, "%s/xl.safetensors", root);
    snprintf(cfg, sizeof cfg, "%s/configs", root);
    snprintf(cache, sizeof cache, "%s/cache", root);
    snprintf(p, sizeof p, "%s/sdc/tokenizers/clip-vit-large-patch14", cache);
    CHECK(mkdirs(root) && copy_tokenizer(fixture_path("models/tiny-sdxl/tokenizer"), p), "setup");
    CHECK(copy_configs(fixture_path("models/tiny-sdxl"), cfg, 1), "setup configs");
    unlink(link);
    char target[1024];
    CHECK(realpath(fixture_path("models/tiny-sdxl.safetensors"), target) && symlink(target, link) == 0, "symlink");
    set_cache(cache, saved, sizeof saved);
    image a, b;
    sdc_load_options lo = {.config_dir = cfg};
    int ok = render(link, &lo, "a castle", 1, 5.0f, 64, &b, NULL);
    restore_cache(saved);
    CHECK(ok, "tokenizers from the cache: %s", sdc_last_error());
    ok = render(fixture_path("models/tiny-sdxl"), NULL, "a castle", 1, 5.0f, 64, &a, NULL);
    int same = ok && same_image(&a, &b);
    free(a.rgb), free(b.rgb);
    CHECK(same, "image differs from the folder's (tokenizer_2 pad not \"!\"?)");

    /* nothing anywhere: the error says what to get and where to put it */
    set_cache(tmp_path("empty-cache"), saved, sizeof saved);
    sdc_model *m = NULL;
    sdc_status st = sdc_model_load(&m, link, &lo);
    restore_cache(saved);
    sdc_model_free(m);
    const char *e = sdc_last_error();
    CHECK(st == SDC_ERR_IO, "expected an i/o error, got %d", st);
    CHECK(strstr(e, "openai/clip-vit-large-patch14") && strstr(e, "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k") &&
              strstr(e, "vocab.json") && strstr(e, "merges.txt") && strstr(e, "--tokenizer"),
          "unhelpful message: %s", e);
}

/* ---- the built-in configs are the real ones ---- */

static int unet_equal(const unet_config *a, const unet_config *b) { return !memcmp(a, b, sizeof *a); }

static void check_builtin(const char *shared, ckpt_family fam) {
    const char *dir = shared_path(shared);
    if (!dir) SKIP("../shared/%s not present", shared);
    const builtin_pipeline *b = builtin_pipeline_for(fam, 0);
    char p[1024];
    cJSON *real, *mine;
    unet_config ur, ub;
    snprintf(p, sizeof p, "%s/unet/config.json", dir);
    CHECK_OK(json_load(p, &real));
    CHECK_OK(json_parse(b->unet_json, strlen(b->unet_json), "builtin", &mine));
    sdc_status s1 = unet_config_from_json(real, p, &ur), s2 = unet_config_from_json(mine, "builtin", &ub);
    int same_json = cJSON_Compare(real, mine, 1);
    cJSON_Delete(real), cJSON_Delete(mine);
    CHECK(!s1 && !s2 && unet_equal(&ur, &ub), "%s: built-in UNet config differs", shared);
    (void)same_json;
    snprintf(p, sizeof p, "%s/scheduler/scheduler_config.json", dir);
    CHECK_OK(json_load(p, &real));
    CHECK_OK(json_parse(b->scheduler_json, strlen(b->scheduler_json), "builtin", &mine));
    int same = cJSON_Compare(real, mine, 1);
    cJSON_Delete(real), cJSON_Delete(mine);
    CHECK(same, "%s: built-in scheduler config differs from the real file", shared);
    vae_config vr;
    snprintf(p, sizeof p, "%s/vae/config.json", dir);
    CHECK_OK(vae_config_load(&vr, p));
    CHECK(!memcmp(&vr, &b->vae, sizeof vr), "%s: built-in VAE config differs", shared);
    clip_text_config tr;
    snprintf(p, sizeof p, "%s/text_encoder/config.json", dir);
    CHECK_OK(clip_text_config_load(&tr, p));
    CHECK(!memcmp(&tr, &b->te, sizeof tr), "%s: built-in text encoder config differs", shared);
    if (b->has_te2) {
        snprintf(p, sizeof p, "%s/text_encoder_2/config.json", dir);
        CHECK_OK(clip_text_config_load(&tr, p));
        CHECK(!memcmp(&tr, &b->te2, sizeof tr), "%s: built-in text_encoder_2 config differs", shared);
    }
}

TEST(single_file_builtin_sd15_is_real) { check_builtin("configs/sd15", CKPT_SD1); }
TEST(single_file_builtin_sdxl_is_real) { check_builtin("configs/sdxl", CKPT_SDXL); }

TEST(single_file_builtin_sd2) {
    const builtin_pipeline *v = builtin_pipeline_for(CKPT_SD2, 1), *e = builtin_pipeline_for(CKPT_SD2, 0);
    unet_config uv, ue;
    cJSON *j;
    CHECK_OK(json_parse(v->unet_json, strlen(v->unet_json), "sd21", &j));
    sdc_status st = unet_config_from_json(j, "sd21", &uv);
    cJSON_Delete(j);
    CHECK_OK(st);
    CHECK_OK(json_parse(e->unet_json, strlen(e->unet_json), "sd2-base", &j));
    st = unet_config_from_json(j, "sd2-base", &ue);
    cJSON_Delete(j);
    CHECK_OK(st);
    CHECK(uv.sample_size == 96 && ue.sample_size == 64, "sample sizes %d %d", uv.sample_size, ue.sample_size);
    CHECK(uv.heads[0] == 5 && uv.heads[3] == 20 && uv.linear_proj && uv.cross_dim[0] == 1024, "SD 2.x UNet");
    CHECK(v->te.num_layers == 23 && v->te.hidden_size == 1024 && v->te.act == CLIP_ACT_GELU && !v->te.with_projection,
          "SD 2.x text encoder: %d layers", v->te.num_layers);
    CHECK(strstr(v->scheduler_json, "v_prediction") && strstr(e->scheduler_json, "\"epsilon\""), "prediction types");
}

/* ---- detection on synthetic headers ---- */

typedef struct {
    const char *name;
    int64_t n;
    float std; /* values: alternating +-std */
} fake_tensor;

static int write_fake(const char *path, const fake_tensor *t, int n) {
    st_writer *w = st_writer_new();
    int ok = w != NULL;
    for (int i = 0; ok && i < n; i++) {
        float *x = malloc((size_t)t[i].n * sizeof(float));
        for (int64_t k = 0; x && k < t[i].n; k++) x[k] = (k & 1) ? t[i].std : -t[i].std;
        /* conv_in is a 4-d kernel with 4 input channels; the rest are vectors */
        int nd = strstr(t[i].name, "input_blocks.0.0.weight") ? 4 : 1;
        int64_t shape[4] = {nd == 4 ? t[i].n / 4 : t[i].n, 4, 1, 1};
        ok = x && !st_writer_add(w, t[i].name, ST_F32, nd, shape, x);
        free(x);
    }
    ok = ok && !st_writer_save(w, path);
    st_writer_free(w);
    return ok;
}

static int plan_for(const char *path, const char *flag, single_file_plan *p) {
    st_file f;
    if (st_open(&f, path)) return 0;
    sdc_load_options lo = {.prediction = flag};
    int ok = !single_file_plan_make(&f, &lo, p);
    st_close(&f);
    return ok;
}

TEST(single_file_detect_sd2_prediction) {
    fake_tensor t[] = {
        {"model.diffusion_model.input_blocks.0.0.weight", 32, 0.1f},
        {"first_stage_model.decoder.conv_in.bias", 4, 0.1f},
        {"cond_stage_model.model.transformer.resblocks.23.ln_1.weight", 4, 0.1f},
        {"model.diffusion_model.output_blocks.11.1.transformer_blocks.0.norm1.bias", 320, 0.2f},
    };
    const char *path = tmp_path("fake-sd2.safetensors");
    single_file_plan p;
    CHECK(write_fake(path, t, 4), "write");
    CHECK(plan_for(path, NULL, &p), "plan: %s", sdc_last_error());
    int ok = p.det.family == CKPT_SD2 && p.det.te_layers == 24 && p.te.num_layers == 23 &&
             !strcmp(p.prediction, "v_prediction") && !strcmp(p.builtin->id, "sd21-768-v") && p.unet.sample_size == 96;
    char src[128];
    snprintf(src, sizeof src, "%s", p.prediction_source);
    single_file_plan_free(&p);
    CHECK(ok, "768-v not recognised (%s)", src);
    CHECK(strstr(src, "statistics"), "source: %s", src);
    /* a narrow spread: the epsilon 512-base model, PNDM, 64 x 8 */
    t[3].std = 0.01f;
    CHECK(write_fake(path, t, 4) && plan_for(path, NULL, &p), "plan: %s", sdc_last_error());
    ok = !strcmp(p.prediction, "epsilon") && !strcmp(p.builtin->id, "sd2-base-512") && p.unet.sample_size == 64;
    single_file_plan_free(&p);
    CHECK(ok, "512-base not recognised");
    /* the flag wins */
    CHECK(plan_for(path, "v", &p), "plan: %s", sdc_last_error());
    ok = !strcmp(p.prediction, "v_prediction") && !strcmp(p.prediction_source, "--prediction");
    single_file_plan_free(&p);
    CHECK(ok, "--prediction v ignored");
    /* no evidence: diffusers' default for SD 2.x files (stable-diffusion-2-1, v) */
    CHECK(write_fake(path, t, 3) && plan_for(path, NULL, &p), "plan: %s", sdc_last_error());
    ok = !strcmp(p.prediction, "v_prediction") && strstr(p.prediction_source, "default");
    single_file_plan_free(&p);
    CHECK(ok, "SD 2.x default");
}

TEST(single_file_detect_markers) {
    fake_tensor t[] = {
        {"model.diffusion_model.input_blocks.0.0.weight", 32, 0.1f},
        {"first_stage_model.decoder.conv_in.bias", 4, 0.1f},
        {"cond_stage_model.transformer.text_model.encoder.layers.11.layer_norm1.weight", 4, 0.1f},
        {"v_pred", 1, 0.0f},
        {"ztsnr", 1, 0.0f},
    };
    const char *path = tmp_path("fake-sd1-vpred.safetensors");
    single_file_plan p;
    CHECK(write_fake(path, t, 5) && plan_for(path, NULL, &p), "plan: %s", sdc_last_error());
    int ok = p.det.family == CKPT_SD1 && p.det.te_layers == 12 && !strcmp(p.prediction, "v_prediction") &&
             cJSON_IsTrue(cJSON_GetObjectItem(p.sched, "rescale_betas_zero_snr"));
    single_file_plan_free(&p);
    CHECK(ok, "v_pred / ztsnr markers not honoured");
    CHECK(write_fake(path, t, 3) && plan_for(path, NULL, &p), "plan: %s", sdc_last_error());
    ok = !strcmp(p.prediction, "epsilon") && !strcmp(p.builtin->id, "sd15");
    single_file_plan_free(&p);
    CHECK(ok, "plain SD 1.x");
}

/* ---- wrong files: one clear error each ---- */

static void expect_error(const char *path, const sdc_load_options *opt, sdc_status want, const char *a, const char *b) {
    sdc_model *m = NULL;
    sdc_status st = sdc_model_load(&m, path, opt);
    sdc_model_free(m);
    const char *e = sdc_last_error();
    CHECK(st == want, "%s: status %d (%s), expected %d", path, st, e, want);
    CHECK(strstr(e, a) && (!b || strstr(e, b)), "%s: message lacks '%s'%s%s: %s", path, a, b ? " / " : "", b ? b : "", e);
    CHECK(!strchr(e, '\n'), "multi-line message: %s", e);
}

/* the fixture file with one tensor left out (or, keep_only, only the tensors with that prefix) */
static int rewrite(const char *from, const char *to, const char *drop, const char *keep_only) {
    st_file f;
    if (st_open(&f, from)) return 0;
    st_writer *w = st_writer_new();
    int ok = w != NULL;
    for (int i = 0; ok && i < f.n; i++) {
        const st_tensor *t = &f.tensors[i];
        if ((drop && !strcmp(t->name, drop)) || (keep_only && strncmp(t->name, keep_only, strlen(keep_only)))) continue;
        ok = !st_writer_add(w, t->name + (keep_only ? strlen(keep_only) : 0), t->dtype, t->ndim, t->shape, t->data);
    }
    ok = ok && !st_writer_save(w, to);
    st_writer_free(w);
    st_close(&f);
    return ok;
}

TEST(single_file_errors) {
    char sd[1024], cfg[1024], p[1024];
    snprintf(sd, sizeof sd, "%s", fixture_path("models/tiny-sd.safetensors"));
    snprintf(cfg, sizeof cfg, "%s", fixture_path("models/tiny-sd"));
    sdc_load_options lo = {.config_dir = cfg};

    /* truncated: the header promises more bytes than the file has */
    snprintf(p, sizeof p, "%s", tmp_path("truncated.safetensors"));
    FILE *a = fopen(sd, "rb"), *b = fopen(p, "wb");
    char buf[65536];
    size_t n, total = 0;
    while (a && b && total < 4000000 && (n = fread(buf, 1, sizeof buf, a)) > 0) total += fwrite(buf, 1, n, b);
    if (a) fclose(a);
    if (b) fclose(b);
    expect_error(p, &lo, SDC_ERR_FORMAT, "outside the file", "truncated");
    if (test_failed()) return;

    /* a VAE on its own (first_stage_model.* without the prefix, as vae-ft-mse files are) */
    snprintf(p, sizeof p, "%s", tmp_path("vae-only.safetensors"));
    CHECK(rewrite(sd, p, NULL, "first_stage_model."), "write");
    expect_error(p, &lo, SDC_ERR_FORMAT, "VAE on its own", "model.diffusion_model.");
    if (test_failed()) return;

    /* a LoRA passed as the model */
    expect_error(fixture_path("models/loras/tiny-sdxl-lora-kohya.safetensors"), NULL, SDC_ERR_FORMAT, "is a LoRA",
                 "--lora");
    if (test_failed()) return;
    expect_error(fixture_path("models/loras/tiny-sdxl-lora-peft.safetensors"), NULL, SDC_ERR_FORMAT, "is a LoRA",
                 NULL);
    if (test_failed()) return;

    /* unrelated keys */
    snprintf(p, sizeof p, "%s", tmp_path("unrelated.safetensors"));
    fake_tensor t[] = {{"encoder.layer.0.attention.self.query.weight", 4, 0.1f}, {"pooler.dense.bias", 4, 0.1f}};
    CHECK(write_fake(p, t, 2), "write");
    expect_error(p, NULL, SDC_ERR_FORMAT, "not a Stable Diffusion checkpoint", "pooler.dense.bias");
    if (test_failed()) return;

    /* a PyTorch pickle (.ckpt is a zip archive) */
    snprintf(p, sizeof p, "%s", tmp_path("model.ckpt"));
    CHECK(write_text(p, "PK\003\004 not really a zip archive, but it starts like one"), "write");
    expect_error(p, NULL, SDC_ERR_UNSUPPORTED, "pickle", ".safetensors");
    if (test_failed()) return;

    /* a required key missing: named as the file names it */
    snprintf(p, sizeof p, "%s", tmp_path("missing-key.safetensors"));
    CHECK(rewrite(sd, p, "model.diffusion_model.input_blocks.1.1.proj_in.weight", NULL), "write");
    expect_error(p, &lo, SDC_ERR_FORMAT, "missing tensor 'model.diffusion_model.input_blocks.1.1.proj_in.weight'",
                 "incomplete");
    if (test_failed()) return;
    snprintf(p, sizeof p, "%s", tmp_path("missing-vae-key.safetensors"));
    CHECK(rewrite(sd, p, "first_stage_model.decoder.up.0.block.1.conv2.weight", NULL), "write");
    expect_error(p, &lo, SDC_ERR_FORMAT, "'first_stage_model.decoder.up.0.block.1.conv2.weight'",
                 "decoder.up_blocks.3.resnets.1.conv2.weight");
    if (test_failed()) return;

    /* no text encoder / no VAE / no UNet */
    snprintf(p, sizeof p, "%s", tmp_path("unet-vae.safetensors"));
    st_file f;
    CHECK_OK(st_open(&f, sd));
    st_writer *w = st_writer_new();
    for (int i = 0; i < f.n; i++)
        if (strncmp(f.tensors[i].name, "cond_stage_model.", 17))
            st_writer_add(w, f.tensors[i].name, f.tensors[i].dtype, f.tensors[i].ndim, f.tensors[i].shape,
                          f.tensors[i].data);
    sdc_status st = st_writer_save(w, p);
    st_writer_free(w);
    st_close(&f);
    CHECK_OK(st);
    expect_error(p, &lo, SDC_ERR_FORMAT, "without a text encoder", "cond_stage_model.transformer.");
    if (test_failed()) return;

    /* the tiny file against the built-in (real-size) SD 1.5 architecture: names the key, suggests --config */
    sdc_load_options lt = {.tokenizer_dir = fixture_path("vocab-tiny")};
    expect_error(sd, &lt, SDC_ERR_SHAPE, "'cond_stage_model.transformer.text_model.embeddings.token_embedding.weight'",
                 "--config");
    if (test_failed()) return;

    /* a config folder of the other family */
    sdc_load_options lx = {.config_dir = fixture_path("models/tiny-sdxl")};
    expect_error(sd, &lx, SDC_ERR_ARG, "StableDiffusionXLPipeline", "SD 1.x");
}

TEST(single_file_cli) {
    char cmd[2048], err[1024];
    snprintf(err, sizeof err, "%s", tmp_path("cli-err.txt"));
    snprintf(cmd, sizeof cmd, "%s generate -m %s -p x -o %s 2> %s", sdc_binary(),
             fixture_path("models/loras/tiny-sdxl-lora-kohya.safetensors"), tmp_path("x.png"), err);
    int rc = system(cmd);
    char line[2048] = "";
    FILE *f = fopen(err, "r");
    if (f) {
        if (!fgets(line, sizeof line, f)) line[0] = 0;
        fclose(f);
    }
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "exit status %d", rc);
    CHECK(strstr(line, "is a LoRA") && strstr(line, "--lora"), "stderr: %s", line);
    snprintf(cmd, sizeof cmd, "%s generate -m %s --prediction sideways -p x > /dev/null 2>&1", sdc_binary(),
             fixture_path("models/tiny-sd.safetensors"));
    rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "bad --prediction: exit status %d", rc);
}
