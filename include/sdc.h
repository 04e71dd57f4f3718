/* sdc.h - public C API of sdc, a text-to-image engine for the Stable
 * Diffusion family, numerically faithful to Hugging Face diffusers.
 *
 *   sdc_model *m;  sdc_model_load(&m, "path/to/diffusers-folder", &load_opts);
 *   const char *p = "a cat";
 *   sdc_request r; sdc_request_init(&r); r.prompts = &p; r.nprompts = 1; r.seed = 42;
 *   sdc_image *imgs; int n; sdc_generate(m, &r, &imgs, &n);
 *   ... sdc_images_free(imgs, n); sdc_model_free(m);
 *
 * Every fallible call returns sdc_status; sdc_last_error() then holds one
 * line that says what went wrong (file, key, value). */
#ifndef SDC_H
#define SDC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SDC_OK = 0,
    SDC_ERR_IO,          /* a file could not be opened, read or written */
    SDC_ERR_FORMAT,      /* a file or value is malformed */
    SDC_ERR_SHAPE,       /* a tensor has the wrong shape or dtype */
    SDC_ERR_ARG,         /* a caller-supplied argument is out of range */
    SDC_ERR_NOMEM,       /* allocation failed */
    SDC_ERR_UNSUPPORTED, /* valid, but not something sdc implements */
    SDC_ERR_INTERRUPTED, /* the caller's callback asked to stop */
} sdc_status;

const char *sdc_last_error(void);
const char *sdc_status_name(sdc_status st);

/* ---- models ---- */

typedef struct sdc_model sdc_model;

/* What one LoRA changed, reported after it was fused (sdc_load_options.lora_report). */
typedef struct {
    const char *path;   /* the caller's sdc_load_options.loras[i] */
    float scale;
    int modules;        /* modules changed in all components */
    int unet, te1, te2; /* of which in the UNet, the (first) text encoder, text_encoder_2 */
} sdc_lora_report;
typedef void (*sdc_lora_report_fn)(void *ctx, const sdc_lora_report *r);

typedef struct {
    const char *variant; /* "fp16": load *.fp16.safetensors where a component has them */
    int threads;         /* 0 = all cores */
    /* LoRA files (kohya/A1111 or PEFT/diffusers .safetensors) fused into the
     * weights after loading, one after another in this order:
     * W' = W + scale * (alpha / rank) * (up @ down). A LoRA that matches no
     * module, or whose shapes disagree with the model, fails the load. */
    const char *const *loras;
    const float *lora_scales; /* one per LoRA; NULL: all 1.0 */
    int nloras;
    sdc_lora_report_fn lora_report; /* called once per fused LoRA; may be NULL */
    void *lora_report_ctx;
    /* Single-file checkpoints (path is a .safetensors file in the original
     * LDM/SGM layout): config_dir is a diffusers pipeline folder whose configs,
     * tokenizers and scheduler describe the file (NULL: the built-in SD 1.x /
     * SD 2.x / SDXL ones); tokenizer_dir a CLIP tokenizer folder (vocab.json,
     * merges.txt, ...) or a folder with tokenizer/ [and tokenizer_2/]. */
    const char *config_dir;
    const char *tokenizer_dir;
    /* "epsilon" or "v_prediction" ("v"): overrides the scheduler config's
     * prediction_type (any model); NULL: the model's own. */
    const char *prediction;
    /* Compute precision, process-wide: NULL or "f32" (the default; what matches
     * diffusers), "bf16" (GEMMs, convolutions and attention round their
     * operands to bfloat16 and accumulate in float32: about 1.4x faster on CPUs
     * with AVX512_BF16, images move by ~1e-2; the load fails on other CPUs),
     * "f16" (needs a CUDA device). Weights stay as stored either way. */
    const char *dtype;
    /* NULL or "cpu" (default), or "cuda": the first NVIDIA GPU (builds made
     * with nvcc); process-wide. On cuda the UNet and text encoders run in
     * dtype (default f16, or bf16, f32), the VAE in f32 unless its config
     * says force_upcast: false. */
    const char *device;
} sdc_load_options;

/* For programs (not libraries) that run models: make the C allocator keep
 * freed activation buffers for reuse instead of returning them to the
 * system after every layer (glibc; a no-op elsewhere). Measured here: VAE
 * decode at 512x512 6.6 s -> 5.6 s, peak RSS +2 %. Process-wide: call it
 * once, first thing in main, if at all. */
void sdc_tune_allocator(void);

/* path: a diffusers pipeline folder (model_index.json + components), or a
 * single-file SD 1.x / SD 2.x / SDXL checkpoint (.safetensors, original
 * LDM/SGM key names, as A1111, ComfyUI and Civitai use). */
sdc_status sdc_model_load(sdc_model **out, const char *path, const sdc_load_options *opt);
/* The name a model goes by (infotexts, the server, data sets): a folder's
 * name, or a single file's name without its extension. */
void sdc_model_name_from_path(const char *path, int is_file, char *out, size_t n);
void sdc_model_free(sdc_model *m);

typedef struct {
    const char *name;           /* see sdc_model_name_from_path */
    const char *family;         /* "sd" (SD 1.x/2.x) or "sdxl" */
    const char *prediction;     /* "epsilon", "v_prediction" or "sample" */
    const char *scheduler;      /* default sampler, by its sdc name (sdc_sampler_info.name) */
    int default_width, default_height, default_steps;
    float default_guidance;
    int64_t params_unet, params_text, params_vae;
} sdc_model_info;
void sdc_model_get_info(const sdc_model *m, sdc_model_info *info);

/* ---- generation ---- */

/* Called after every denoising step; return non-zero to stop (the call
 * then fails with SDC_ERR_INTERRUPTED). */
typedef int (*sdc_progress_fn)(void *ctx, int step, int total);
/* Called with intermediate tensors under the fixture names (input_ids,
 * prompt_embeds, noise, latents_K, decoded, image ...). is_int: int64 data. */
typedef void (*sdc_tensor_fn)(void *ctx, const char *name, int is_int, int ndim, const int64_t *shape,
                              const void *data);

typedef struct {
    const char *const *prompts; /* one image per prompt, times `batch` */
    int nprompts;
    const char *const *negative_prompts; /* NULL: none ("" is encoded); 1 entry: shared; else one per prompt */
    int nnegative;
    int batch;               /* images per prompt (default 1) */
    int batch_size;          /* at most this many images per UNet call (0: all at once; 1..64); the
                                request then runs as consecutive chunks, image i keeping its prompt
                                and seed + i (pixels may differ from one big batch by float rounding) */
    uint64_t seed;           /* image i uses a generator seeded seed + i */
    const char *rng;         /* which torch generator the seed seeds: NULL or "cpu": torch.Generator("cpu")
                                (diffusers' CPU-generator noise); "cuda": torch.Generator("cuda"), the Philox
                                noise A1111 (RNG source GPU) and ComfyUI GPU seeds mean, computed on the CPU */
    int steps;               /* 0: model default */
    float guidance;          /* < 0: model default; <= 1 disables classifier-free guidance */
    int width, height;       /* 0: model default; multiples of 8 */
    const char *scheduler;   /* NULL: the model's own; else any name sdc_sampler_find knows (sdc name,
                                diffusers class, A1111 name); an A1111 name with " Karras" appended
                                also turns Karras sigmas on unless karras is 0 */
    const char *timestep_spacing; /* NULL: from the scheduler config */
    int karras;              /* -1: config, 0/1: use_karras_sigmas */
    float eta;               /* DDIM eta / TCD gamma (default 0) */
    int clip_skip;           /* 0/1: last layer; k: k-th layer from the end */
    int vae_tiling;          /* 0 off (default), 1 on: decode in overlapping, blended tiles as diffusers'
                                vae.enable_tiling() does (only when the latent exceeds one tile) */
    int vae_tile_size;       /* with vae_tiling: tile side in pixels, a multiple of 4 x the VAE's
                                downscale (32 for SD); 0: the VAE config's sample_size, as diffusers */
    sdc_progress_fn progress;
    void *progress_ctx;
    sdc_tensor_fn dump;
    void *dump_ctx;
} sdc_request;

void sdc_request_init(sdc_request *r);

typedef struct {
    int width, height;
    uint8_t *rgb;      /* height * width * 3 */
    uint64_t seed;
    char *infotext;    /* A1111 "parameters" text */
} sdc_image;

/* One request at a time per model (the server queues them): on a GPU the
 * model keeps the last request's step graphs and buffers for the next. */
sdc_status sdc_generate(sdc_model *m, const sdc_request *r, sdc_image **images, int *n);
void sdc_images_free(sdc_image *images, int n);

/* Write one image as PNG with its infotext (temporary file + rename). */
sdc_status sdc_image_save_png(const sdc_image *img, const char *path);

/* ---- samplers ----
 * The registry of the samplers sdc implements (src/sched/registry.c), one
 * entry per diffusers scheduler class, with every name it goes by. Help
 * texts, the A1111 server and infotexts read their names from here. */

typedef struct {
    const char *name;                 /* sdc's name (--scheduler, sdc_request.scheduler, data sets) */
    const char *const *aliases;       /* other names sdc accepts, NULL-ended */
    const char *diffusers_class;      /* the diffusers scheduler class it reproduces */
    const char *a1111_name;           /* AUTOMATIC1111's sampler name (infotexts, its API) */
    const char *const *a1111_aliases; /* A1111's aliases (k-diffusion names), NULL-ended */
    const char *a1111_option_key;     /* A1111's "options" entry in /sdapi/v1/samplers, or NULL */
    const char *a1111_option_value;
    int a1111_default;                /* the sampler A1111's API runs when a request names none */
    int ui_default;                   /* the sampler a front end offers first (sdc serve's web page) */
    int karras_ok;                    /* takes Karras sigmas (sdc_request.karras) */
    int takes_eta;                    /* its step uses sdc_request.eta */
} sdc_sampler_info;

int sdc_sampler_count(void);
const sdc_sampler_info *sdc_sampler_at(int i); /* 0 <= i < sdc_sampler_count(), else NULL */
/* By any of its names: sdc name or alias (case-insensitive, '-' = '_'), the
 * diffusers class (exact), an A1111 name or alias (case-insensitive). NULL
 * when unknown. */
const sdc_sampler_info *sdc_sampler_find(const char *name);
/* By an A1111 name or alias only, as A1111's API reads sampler_name. The
 * names A1111 used before it had a separate schedule, with " Karras" or
 * "_ka" appended, find samplers that take Karras sigmas and set *karras to 1
 * (else 0; karras may be NULL). NULL when unknown. */
const sdc_sampler_info *sdc_sampler_find_a1111(const char *name, int *karras);

/* ---- presets ----
 * The settings of fast recipes (the model cards' own diffusers calls),
 * for `sdc generate|dataset --preset NAME`. */

typedef struct {
    const char *name;
    const sdc_sampler_info *sampler;
    const char *timestep_spacing; /* NULL: the scheduler config's */
    int steps;
    float guidance;
    float eta;                    /* < 0: leave */
    int size;                     /* width = height; 0: the model's native size */
    const char *lora;             /* the LoRA file the recipe is made for, or NULL */
    const char *source;           /* where the recipe comes from (model card) */
} sdc_preset;

int sdc_preset_count(void);
const sdc_preset *sdc_preset_at(int i); /* 0 <= i < sdc_preset_count(), else NULL */
const sdc_preset *sdc_preset_find(const char *name); /* exact name; NULL when unknown */

#ifdef __cplusplus
}
#endif
#endif
