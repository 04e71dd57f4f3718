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
/* Record the message sdc_last_error() returns and return `code`
 * (printf-style): how callbacks handed to the library report a failure. */
sdc_status sdc_fail(sdc_status code, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;

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
    int threads;         /* CPU threads of this model's ops (0 = all cores) */
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
    /* Compute precision of this model: NULL or "f32" (the default; what matches
     * diffusers), "bf16" (GEMMs, convolutions and attention round their
     * operands to bfloat16 and accumulate in float32: about 1.4x faster on CPUs
     * with AVX512_BF16, images move by ~1e-2; the load fails on other CPUs),
     * "f16" (needs a CUDA device). Weights stay as stored either way. */
    const char *dtype;
    /* NULL or "cpu" (default), or "cuda": the first NVIDIA GPU (builds made
     * with nvcc); "emulated" (tests): the CPU ops behind a device's memory
     * boundary, with a GPU's roundings for f16/bf16. Each model has its own
     * device, threads and precision: models on different devices coexist in
     * one process (the CUDA ones take turns on the GPU's stream). On cuda the
     * UNet and text encoders run in dtype (default f16, or bf16, f32), the
     * VAE in f32 unless its config says force_upcast: false. */
    const char *device;
    /* Benchmarks: a diffusers folder's configs with made-up weights (fixed
     * seed); no weight file is read, the images are noise. */
    int random_weights;
    /* TAESD (diffusers' AutoencoderTiny, madebyollin/taesd; taesdxl for
     * SDXL), loaded beside the KL VAE: a diffusers folder (config.json +
     * diffusion_pytorch_model.safetensors) or one .safetensors file
     * (diffusers' keys, or madebyollin's taesd_decoder.safetensors, whose
     * taesd_encoder.safetensors is loaded too when it lies beside it).
     * Images then decode with it instead of the KL VAE (sdc_request.vae_decode
     * chooses per request), about 18x less arithmetic, pixels a little
     * softer; it also draws sdc_request.preview's images. Its latent
     * channels and upscale must be the model's. NULL: none. */
    const char *taesd;
    /* NULL (default): weights stay as the files store them. "q8": the
     * UNet's and text encoders' linear and convolution weights are quantised
     * at load (after LoRAs are fused) to int8, in blocks of 32 consecutive
     * input values with one half-precision scale (ggml's q8_0 numbers), and
     * run with int8 dot products (AVX512-VNNI / AVX-VNNI where the CPU has
     * them, portable C elsewhere) against activations quantised the same way
     * on the fly; attention, norms and the VAE stay float32. The model then
     * holds about a quarter of its float32 size (1.0625 bytes per weight);
     * images move from the f32 ones a little (PSNR in README). With dtype
     * "bf16", q8 weights keep their int8 kernels and bf16 applies to the
     * rest (attention, the VAE). CPU only (and the emulated device in f32). */
    const char *weights;
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
/* A diffusers folder src written to the new folder dst with its UNet's and
 * text encoders' weights int8 (opt->weights must be "q8"; LoRAs, variant
 * and threads of opt apply): each of those components becomes one
 * .safetensors file whose layer weights are stored as sdc's q8 blocks
 * (NAME.q8 + NAME.q8_shape), the other files are copied. sdc_model_load
 * reads such a folder with or without weights = "q8", mapping the int8
 * weights in place: no quantising at load, and the pages of a stage that is
 * done leave memory as with f16 files. Only sdc reads these files. */
sdc_status sdc_model_convert(const char *src, const char *dst, const sdc_load_options *opt);
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
    const char *device;         /* "cpu", "cuda", "emulated device" */
    int threads;                /* CPU threads of its ops */
    int has_taesd;              /* loaded with sdc_load_options.taesd */
    int64_t params_taesd;
} sdc_model_info;
void sdc_model_get_info(const sdc_model *m, sdc_model_info *info);

/* ---- generation ---- */

typedef struct {
    int width, height;
    uint8_t *rgb;      /* height * width * 3 */
    uint64_t seed;
    char *infotext;    /* A1111 "parameters" text */
} sdc_image;

/* Called after every denoising step; return non-zero to stop (the call
 * then fails with SDC_ERR_INTERRUPTED). */
typedef int (*sdc_progress_fn)(void *ctx, int step, int total);
/* Live previews: images[n] (RGB8, no infotext, valid during the call only)
 * are the current denoised estimate of each image of the UNet batch (the
 * scheduler's pred_original_sample, or x0 from the noise prediction where
 * it has none), decoded by TAESD, after denoising step `step` of `total`
 * (steps counted as for sdc_progress_fn). */
typedef void (*sdc_preview_fn)(void *ctx, int step, int total, const sdc_image *images, int n);
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
                                also turns Karras sigmas on unless karras is 0 or schedule says otherwise */
    const char *timestep_spacing; /* NULL: from the scheduler config */
    int karras;              /* -1: config, 1: the Karras schedule (= schedule "karras"), 0: its uniform
                                schedule (= schedule "uniform"); kept for callers older than schedule */
    const char *schedule;    /* NULL: as karras says (else automatic); any name sdc_schedule_find knows
                                ("karras", "Exponential", "normal" ...); the sampler must take it */
    float eta;               /* DDIM eta / TCD gamma (default 0) */
    int clip_skip;           /* 0/1: last layer; k: k-th layer from the end */
    const char *prompt_syntax; /* NULL or "plain": the prompts go to the text encoders as written, cut at 77
                                  tokens (diffusers); "a1111": AUTOMATIC1111's syntax - (x), ((x)), (x:1.2),
                                  [x], \( escapes, BREAK - and its conditioning: chunks of 75 tokens (the
                                  comma back-track), emphasis "Original", its clip skip (SD 1.x only; SD 2.x
                                  and SDXL ignore it as A1111 does); an SDXL negative prompt "" is zeros */
    int pad_cond_uncond;     /* "a1111", prompt and negative of different chunk counts: 0 (A1111's default)
                                runs the UNet on each half at its own length; 1 appends the empty prompt's
                                conditioning to the shorter (A1111's pad_cond_uncond), one batch; plain: 0 */
    int vae_tiling;          /* 0 off (default), 1 on: decode in overlapping, blended tiles as diffusers'
                                vae.enable_tiling() does (only when the latent exceeds one tile) */
    int vae_tile_size;       /* with vae_tiling: tile side in pixels, a multiple of 4 x the VAE's
                                downscale (32 for SD); 0: the VAE config's sample_size, as diffusers */
    const char *lora_dir;    /* NULL: prompts are text as written. A folder: AUTOMATIC1111's <lora:NAME:W>
                                tags (sdc_prompt_loras) are removed from the prompts and the LoRAs they
                                name (sdc_lora_find in this folder) are fused for this request over the
                                load-time weights, then put back when a later request names others;
                                every prompt of the request must name the same LoRAs. The infotexts keep
                                the prompts as written. CPU models only. */
    sdc_progress_fn progress;
    void *progress_ctx;
    sdc_tensor_fn dump;
    void *dump_ctx;
    /* Which decoder makes the pixels (A1111's sd_vae_decode_method): NULL:
     * TAESD when the model was loaded with one, else the KL VAE; "full": the
     * KL VAE; "taesd": TAESD (the model must have one). */
    const char *vae_decode;
    /* Live previews: preview is called after every preview_every-th step
     * (and not after the last: that is the image itself) when the model has
     * a TAESD; without one, or with preview_every 0, it never is. Each call
     * decodes the batch with TAESD (at 512x512 on a CPU about an eighth of
     * an SD 1.5 step with CFG). */
    sdc_preview_fn preview;
    void *preview_ctx;
    int preview_every; /* 0..SDC_MAX_STEPS */
    /* ---- img2img and inpainting: diffusers' StableDiffusion(XL)Img2ImgPipeline and
     * StableDiffusionInpaintPipeline (docs/img2img.md) ---- */
    const uint8_t *init_image; /* NULL: text to image; else RGB8 pixels, init_width x init_height, row by row. The
                                  output is width x height when given (the image resized to it with PIL's Lanczos
                                  filter, as diffusers' VaeImageProcessor resizes), else the image's own size rounded
                                  down to a multiple of 8. Its VAE latents, noised, start the denoising */
    int init_width, init_height;
    double strength;     /* with init_image: the last min(int(steps * strength), steps) steps run; (0, 1];
                                  < 0: the pipeline's default (0.8, SDXL 0.3; 1.0 with a mask) */
    const uint8_t *mask; /* inpainting: 8-bit gray, the init image's size; white (>= 128) is repainted.
                                  NULL: none. A 9-channel inpainting UNet (latents, mask, masked-image latents)
                                  needs one; an ordinary UNet gets diffusers' blend (after each step the kept
                                  region is the init latents noised to the next step) */
    int mask_width, mask_height;
    int inpaint_fill; /* with a mask: what the masked region of the init latents is before they are noised
                                  (A1111's inpainting_fill): SDC_FILL_ORIGINAL (the image's, diffusers'),
                                  SDC_FILL_LATENT_NOISE (the noise they are noised with), SDC_FILL_LATENT_NOTHING (0) */
    /* ---- hires fix (A1111's, as diffusers pipelines composed): the image made at width x height, its
     * latents upscaled (torch interpolate), then img2img of those latents with fresh generators ---- */
    double hires_scale;            /* 0: off; 1..8: the second pass at int(width * scale) x int(height * scale) */
    int hires_width, hires_height; /* instead of hires_scale, A1111's hr_resize_x / _y: the second pass's size (one 0:
                                      keep the aspect; another aspect: upscale to cover, crop the middle) */
    int hires_steps;               /* the second pass's steps (0: steps) */
    double hires_strength;         /* its strength, (0, 1] (< 0: 0.75, A1111's default denoising strength) */
    const char *hires_upscaler;    /* NULL / "latent": bilinear; "latent-nearest", "latent-nearest-exact" */
} sdc_request;

/* sdc_request.inpaint_fill */
enum { SDC_FILL_ORIGINAL = 0, SDC_FILL_LATENT_NOISE = 1, SDC_FILL_LATENT_NOTHING = 2 };

void sdc_request_init(sdc_request *r);

/* Limits of a request (sdc_request_check refuses values past them). */
#define SDC_MAX_STEPS 1000
#define SDC_MAX_SIDE 4096       /* width and height, pixels */
#define SDC_MAX_BATCH 64        /* images through one UNet call (batch_size; batch x nprompts without it) */
#define SDC_MAX_IMAGES 4096     /* images of one request split into batch_size chunks */
#define SDC_MAX_CLIP_SKIP 12
#define SDC_MAX_PROMPT_CHUNKS 32 /* prompt_syntax "a1111": chunks of 75 tokens per prompt (2400 tokens) */
#define SDC_MAX_INIT_SIDE 8192 /* init image and mask width and height, pixels */
#define SDC_MAX_HIRES_SCALE 8
#define SDC_MAX_PROMPT_BYTES (1 << 20) /* a prompt or negative prompt (the tokenizer refuses longer text) */

/* Every field of r checked, the one place requests are validated (sdc_generate
 * calls it first; front ends call it to refuse a request before queueing
 * it). m NULL: what needs no model (ranges, counts, names of the scheduler,
 * timestep spacing and generator); with m also what the model decides (its
 * default size and steps, the size multiple, the scheduler its config makes
 * with these settings). SDC_ERR_ARG or SDC_ERR_UNSUPPORTED naming the field. */
sdc_status sdc_request_check(const sdc_model *m, const sdc_request *r);

/* One request at a time per model (the server queues them): on a GPU the
 * model keeps the last request's step graphs and buffers for the next. */
sdc_status sdc_generate(sdc_model *m, const sdc_request *r, sdc_image **images, int *n);
void sdc_images_free(sdc_image *images, int n);

/* Write one image as PNG with its infotext (temporary file + rename). */
sdc_status sdc_image_save_png(const sdc_image *img, const char *path);
/* The same PNG in memory (malloc'd; the caller frees *png). */
sdc_status sdc_image_encode_png(const sdc_image *img, void **png, size_t *len);
/* The most bytes a PNG text chunk may inflate to when it is read (256 KiB;
 * A1111 infotexts are a few KB): more is an error, not a decompression bomb. */
#define SDC_PNG_TEXT_MAX (256 * 1024)
/* A PNG file image in memory: its pixels as 8-bit RGB (rgb NULL: not
 * decoded, only the chunks are walked: no pixel memory, whatever the image
 * size) and the "parameters" text (tEXt/zTXt/iTXt, as UTF-8: tEXt/zTXt are
 * Latin-1 by the PNG spec and converted, invalid UTF-8 in an iTXt becomes
 * U+FFFD; at most SDC_PNG_TEXT_MAX bytes inflated; *params NULL when absent;
 * params NULL: not read). The caller frees *rgb and *params. */
sdc_status sdc_png_decode(const void *png, size_t len, uint8_t **rgb, int *width, int *height, char **params);
/* The same pixels as 8-bit RGBA (alpha 255 where the file has none; the caller frees *rgba). */
sdc_status sdc_png_decode_rgba(const void *png, size_t len, uint8_t **rgba, int *width, int *height);
/* 8-bit gray of n pixels of `channels` (3 or 4, the 4th ignored) interleaved bytes, as PIL's
 * convert("L") computes it: (19595 R + 38470 G + 7471 B + 32768) >> 16. */
void sdc_image_gray(const uint8_t *pixels, int channels, int64_t n, uint8_t *gray);
/* Resize 8-bit pixels of 1..4 interleaved channels from w x h to ow x oh as PIL's
 * Image.resize((ow, oh), Image.LANCZOS) does (how diffusers and A1111 fit an init image or
 * mask to the output size). out: ow * oh * channels bytes. */
sdc_status sdc_image_resize(const uint8_t *in, int w, int h, int channels, uint8_t *out, int ow, int oh);

/* ---- LoRA tags in prompts and LoRA folders (AUTOMATIC1111's conventions) ---- */

#define SDC_MAX_PROMPT_LORAS 16 /* LoRA tags in one prompt */

typedef struct {
    char name[256]; /* the file's name without .safetensors */
    float te, unet; /* scales of the text encoders and of the UNet */
} sdc_lora_tag;

/* A1111's extra-network tags <TYPE:ARGS> with TYPE lora (or lyco, its old
 * alias): <lora:NAME>, <lora:NAME:W> (te = unet = W), <lora:NAME:TE:UNET>,
 * and the named forms te=, unet=. Every such tag is removed from the text
 * (nothing else changes: the spaces and commas around it stay, as in A1111);
 * *stripped (may be NULL) gets the text without them (malloc'd). Other
 * <word:...> tags stay text, except <hypernet:...>, which is refused (sdc has
 * no hypernetworks). SDC_ERR_ARG names a malformed tag (no name, a scale that
 * is no number or outside -100..100, dyn=, more than SDC_MAX_PROMPT_LORAS). */
sdc_status sdc_prompt_loras(const char *prompt, char **stripped, sdc_lora_tag *tags, int *ntags);

/* The LoRA called name in dir, as A1111 names the files of its Lora folder:
 * NAME.safetensors in dir or in a subfolder (3 levels at most; the first in
 * sorted order wins). Names with '/', '\' or a leading '.' are never found.
 * SDC_ERR_ARG "LoRA 'NAME' not found in DIR" when absent. */
sdc_status sdc_lora_find(const char *dir, const char *name, char *path, size_t n);

typedef struct {
    char *name;          /* file name without .safetensors */
    char *path;          /* dir/relative/path.safetensors */
    char *metadata_json; /* the file's __metadata__ object as JSON ("{}" when none or unreadable) */
} sdc_lora_file;
/* Every LoRA file sdc_lora_find can find in dir, sorted by path (at most 4096). */
sdc_status sdc_lora_scan(const char *dir, sdc_lora_file **files, int *n);
void sdc_lora_files_free(sdc_lora_file *files, int n);
/* ---- infotexts: a PNG's "parameters" read back (sdc generate --from-png, png-info) ---- */

typedef struct {
    int n;
    char **keys, **values; /* in order: "Prompt", "Negative prompt", each "Key: value" of the parameters line
                              ("Size: WxH" as "Size-1" and "Size-2", a "quoted" value unquoted; a repeated
                              key keeps its last value), then what A1111 fills in when absent ("Clip skip":
                              "1", "Schedule type": "Automatic") */
    int negative_given;    /* the text has a "Negative prompt:" line (an empty one too) */
    const char *prompt[1], *negative[1]; /* the Prompt and Negative prompt values, for a request to point at */
} sdc_infotext;

/* AUTOMATIC1111's parse_generation_parameters: the last line holds the
 * parameters when it has at least three "Key: value" pairs, the lines above
 * are the prompt and (from "Negative prompt:" on) the negative prompt. Any
 * text parses (NULL: ""); SDC_ERR_NOMEM is the only failure. */
sdc_status sdc_infotext_parse(const char *text, sdc_infotext *out);
const char *sdc_infotext_get(const sdc_infotext *p, const char *key); /* NULL when absent */
void sdc_infotext_free(sdc_infotext *p);

/* The settings p holds, into r (its prompts then point into p): prompt and
 * negative prompt, Steps, Sampler and Schedule type, CFG scale, Seed, Size,
 * Clip skip, RNG (absent: A1111's default GPU noise, "cuda"), Eta / Eta DDIM,
 * Pad conds, Prompt syntax (absent: "a1111", A1111's reading; sdc marks its
 * plain one). What it cannot carry over - an unknown sampler or schedule, a
 * malformed number, a hires fix, a variation seed, another emphasis ... - is
 * left as r has it and described in notes, one line each ("" when none;
 * notes may be NULL). */
void sdc_infotext_apply(const sdc_infotext *p, sdc_request *r, char *notes, size_t n);

/* ---- intermediates: an sdc_tensor_fn that collects a .safetensors file ---- */

typedef struct sdc_dump sdc_dump;
sdc_dump *sdc_dump_new(void); /* NULL when out of memory */
/* sdc_request.dump = sdc_dump_tensor, .dump_ctx = the sdc_dump */
void sdc_dump_tensor(void *dump, const char *name, int is_int, int ndim, const int64_t *shape, const void *data);
sdc_status sdc_dump_save(sdc_dump *d, const char *path);
void sdc_dump_free(sdc_dump *d);

/* ---- prompts files: many images through one loaded model ----
 * A prompts file is plain text (one prompt per line) or JSONL (one object
 * per line: prompt and optional negative_prompt, seed, steps, guidance,
 * width, height, scheduler, count). Image j of the file (lines in order,
 * `count` or images_per_prompt images each) has seed base + j, or, when its
 * line gives a seed S, S + its offset in the line. Every error names the
 * file and the line. */

typedef struct sdc_prompts sdc_prompts;
sdc_status sdc_prompts_load(sdc_prompts **out, const char *path, int images_per_prompt, uint64_t base_seed);
int64_t sdc_prompts_images(const sdc_prompts *p);
void sdc_prompts_free(sdc_prompts *p);

typedef sdc_status (*sdc_image_fn)(void *ctx, int64_t index, const sdc_image *img);
/* Every image of p in index order, handed to on_image (a failure it returns
 * stops the run). base: the settings of every image (its prompts, seed and
 * batch are the file's; steps, guidance, size, scheduler and the negative
 * prompt are defaults a line may override). base->batch_size > 0: images of
 * consecutive lines with equal settings share UNet calls of at most that
 * many; 0: each line runs alone, SDC_MAX_BATCH images at a time. */
sdc_status sdc_prompts_generate(sdc_model *m, const sdc_request *base, const sdc_prompts *p, sdc_image_fn on_image,
                                void *ctx);

/* ---- data sets (sdc dataset, docs/dataset.md) ----
 * One slice of a data set made (or resumed) from a prompts file: image j of
 * the whole set is the prompts file's image j, named %08d.png; which images
 * share a UNet call depends only on j, the batch size and the layout, so any
 * run, slice or resume writes the same bytes for the same j on the same
 * machine type. Every file appears under its final name only when complete,
 * so a kill -9 at any moment loses at most the images in flight. */

typedef enum { SDC_DATASET_IMAGEFOLDER, SDC_DATASET_WEBDATASET } sdc_dataset_format;

typedef struct {
    int64_t total;     /* images of this slice */
    int64_t done;      /* of them on disk (present before the run + made) */
    int64_t made;      /* made by this run */
    int64_t failures;  /* images that could not be made */
    double seconds;    /* since this run started */
    const char *error; /* set for one call after a failed batch: its message */
    int64_t error_first, error_end; /* the failed images */
} sdc_dataset_progress;

typedef void (*sdc_dataset_progress_fn)(void *ctx, const sdc_dataset_progress *p);
/* Test hook: called at the named points of the n-th image this run writes
 * ("write" half of its bytes written, "file" in place, "line" half of its
 * manifest line written, "done" recorded, "close" a tar's trailer written). */
typedef void (*sdc_dataset_hook_fn)(void *ctx, const char *point, int64_t nth);

typedef struct {
    const char *model, *prompts, *out;
    /* the model: path above, loaded with these (variant, config/tokenizer
     * folders, device, dtype, threads, LoRAs; each changes the pixels and is
     * part of the data set's identity) */
    sdc_load_options load;
    /* the settings of every image: steps, guidance, width, height, scheduler
     * and a negative prompt (negative_prompts[0]) are defaults a prompts file
     * line may override; timestep_spacing, karras, eta, clip_skip and rng
     * apply to all. Its prompts, seed, batch, progress and dump are the
     * data set's own. */
    sdc_request req;
    int images_per_prompt;
    uint64_t seed;
    sdc_dataset_format format;
    int shard_size; /* images per tar (webdataset) */
    int batch_size; /* images per UNet call */
    int slice, nslices;
    sdc_dataset_progress_fn progress;
    void *progress_ctx;
    sdc_dataset_hook_fn hook;
    void *hook_ctx;
    volatile int *stop; /* non-zero: stop after the current denoising step */
} sdc_dataset_options;

void sdc_dataset_options_init(sdc_dataset_options *o);

typedef struct {
    int64_t slice_first, slice_end; /* global indices of this slice */
    int64_t total, present, made, failures;
    double seconds;
    int64_t metadata_lines; /* imagefolder: lines in train/metadata.jsonl after the merge */
} sdc_dataset_summary;

/* SDC_ERR_INTERRUPTED when *stop was raised; failed batches are counted in
 * the summary, not returned as errors. */
sdc_status sdc_dataset_run(const sdc_dataset_options *o, sdc_dataset_summary *sum);

/* Which slice of a data set this process makes: spec ("I/N", --shard) wins,
 * then a Slurm job array (SLURM_ARRAY_TASK_ID / _COUNT / _MIN / _STEP), then
 * a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, with shards = the Job's
 * completions > 0); none: slice 0 of 1. *source names where the slice came
 * from ("--shard", "Slurm array", ...). The environment is the caller's
 * (NULL: unset), so the choice is testable. */
typedef struct {
    const char *slurm_id, *slurm_count, *slurm_min, *slurm_step;
    const char *k8s_index;
} sdc_shard_env;
sdc_status sdc_shard_select(const char *spec, int shards, const sdc_shard_env *env, int *slice, int *nslices,
                            const char **source);

/* ---- what a model is (sdc info), from configs and headers only ---- */

typedef struct {
    char name[24];       /* "unet", "vae", "text_encoder", "text_encoder_2" */
    char source[80];     /* single files: the key prefix; folders: the weight file(s) */
    int64_t params;      /* elements of the tensors the engine uses */
    int64_t tensors;
    int64_t bytes;       /* their stored size */
    char dtypes[48];     /* e.g. "F16" or "F16+F32" */
    int lora_targets;    /* Linear / 1x1-conv modules a LoRA can change */
} sdc_component_report;

typedef struct {
    int single_file;
    int64_t file_bytes;         /* the file, or every weight file of the folder */
    char family[8];             /* "sd1", "sd2", "sdxl" */
    char family_title[32];      /* "SD 1.x", "SD 2.x", "SDXL" */
    char pipeline[40];          /* diffusers pipeline class */
    char configs[160];          /* where the architecture comes from */
    char prediction[16];        /* "epsilon", "v_prediction", "sample" */
    char prediction_source[128];
    char scheduler[24];         /* sdc name of the sampler (sdc_sampler_info.name) */
    char scheduler_class[48];
    int width, height;          /* default image size */
    sdc_component_report comp[4];
    int ncomp;
    int lora_targets;           /* over all components */
    int64_t ema_tensors;        /* model_ema.* copies (ignored) */
    int64_t ignored_tensors;    /* other tensors the engine does not use */
    /* single files: where the tokenizers would be taken from, or why none was found */
    char tokenizer[2][600];
    int ntokenizers, tokenizers_found;
} sdc_model_report;

/* opt: config_dir / tokenizer_dir / prediction / variant as for sdc_model_load (may be NULL). */
sdc_status sdc_model_inspect(const char *path, const sdc_load_options *opt, sdc_model_report *r);

/* ---- CLIP tokenizers (sdc tokenize) ---- */

typedef struct sdc_tokenizer sdc_tokenizer;
/* dir: vocab.json, merges.txt, tokenizer_config.json [, special_tokens_map.json] */
sdc_status sdc_tokenizer_load(sdc_tokenizer **out, const char *dir);
void sdc_tokenizer_free(sdc_tokenizer *t);

typedef struct {
    int n;                    /* BPE tokens of the text */
    char **tokens;            /* their strings, e.g. "cat</w>" */
    int64_t *token_ids;
    int nuntruncated;         /* bos + every token + eos */
    int64_t *untruncated_ids;
    int max_length;           /* the model's (77) */
    int64_t *input_ids;       /* what the text encoder reads: max_length ids, truncated and padded */
} sdc_tokens;

sdc_status sdc_tokenize(const sdc_tokenizer *t, const char *text, size_t len, sdc_tokens *out);
void sdc_tokens_free(sdc_tokens *k);

/* The same text as AUTOMATIC1111 reads it (sdc_request.prompt_syntax
 * "a1111"), as a prompt: its <lora:...> tags removed (sdc_prompt_networks_parse;
 * the text ends at a NUL), its fragments with their weights, then the 77-id
 * chunks the text encoder reads, each token with its fragment's weight as a
 * multiplier. */
typedef struct {
    int nfragments;
    char **fragment_text;      /* the parse: text pieces (a chunk break is "BREAK" with weight -1) */
    double *fragment_weight;
    int *fragment_ntokens;     /* each piece's BPE tokens (tokenized alone) */
    char ***fragment_tokens;
    int nchunks;
    int64_t *chunk_ids;        /* [nchunks, 77]: bos, 75 tokens padded, eos (OpenCLIP tokenizers: the pad
                                  token after the first eos, as the encoder reads them) */
    float *chunk_multipliers;  /* [nchunks, 77]: 1 at bos, eos and padding */
    int token_count;           /* A1111's count: 75 per chunk before the last, then the last one's tokens */
} sdc_a1111_tokens;

/* SDC_ERR_ARG for what A1111 refuses too (a "(text:1.2.3)" weight) and for
 * more than SDC_MAX_PROMPT_CHUNKS chunks. */
sdc_status sdc_tokenize_a1111(const sdc_tokenizer *t, const char *text, size_t len, sdc_a1111_tokens *out);
void sdc_a1111_tokens_free(sdc_a1111_tokens *k);

/* AUTOMATIC1111's extra-network tags in a prompt - <lora:NAME:0.8>,
 * <hypernet:NAME:1>, any <WORD:ARGS> - as its extra_networks.parse_prompt
 * finds them: the text without them (the spaces around stay) and each tag's
 * name and arguments split on ':' ("lora"; "NAME", "0.8"). With
 * prompt_syntax "a1111" sdc_generate removes them from the prompts (not the
 * negative prompts, which A1111 encodes as written) so the text encoder never
 * sees them; applying the LoRAs they name is the front end's part. */
typedef struct {
    char *name;
    int nargs; /* >= 1 */
    char **args;
} sdc_prompt_network;

typedef struct {
    char *text;
    int n;
    sdc_prompt_network *nets;
} sdc_prompt_networks;

sdc_status sdc_prompt_networks_parse(const char *prompt, sdc_prompt_networks *out); /* NULL reads as "" */
void sdc_prompt_networks_free(sdc_prompt_networks *p);

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
    int karras_ok;                    /* takes the Karras schedule (sdc_request.karras) */
    int takes_eta;                    /* its step uses sdc_request.eta */
    unsigned schedules;               /* bit i: takes schedule type sdc_schedule_at(i) */
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

/* ---- schedule types ----
 * How a sampler spaces its noise levels: A1111's "Schedule type" (its API's
 * "scheduler" field, /sdapi/v1/schedulers, the infotext). Samplers that step
 * over sigmas take them all; DDIM, PNDM, LCM and TCD only automatic and
 * uniform (sdc_sampler_info.schedules). The table is the library's
 * (src/sched/schedules.c), in A1111's order. */

typedef struct {
    const char *name;            /* A1111's name: "sgm_uniform" */
    const char *label;           /* A1111's label, the infotext's "Schedule type": "SGM Uniform" */
    const char *const *aliases;  /* other names it is found by (NULL-ended, may be NULL) */
    double default_rho;          /* A1111's default_rho (-1: none) */
    int need_inner_model;        /* A1111's flag: the formula reads the model's training sigmas */
    const char *summary;         /* what it means in sdc, one line (help texts) */
} sdc_schedule_info;

int sdc_schedule_count(void);
const sdc_schedule_info *sdc_schedule_at(int i); /* 0 <= i < sdc_schedule_count(), else NULL */
/* By name, label or alias, case-insensitive; NULL when unknown. */
const sdc_schedule_info *sdc_schedule_find(const char *name);
/* Whether sampler s takes schedule type k. */
int sdc_sampler_takes_schedule(const sdc_sampler_info *s, const sdc_schedule_info *k);

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
