/* cmd_generate.c - `sdc generate`: parse flags into an sdc_request, load
 * the model once, run, write one PNG per image (with its infotext). */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_image.h"
#include "presets.h"
#include "sdc.h"

#define MAX_PROMPTS 64

/* the registry's names joined: sdc names (which 0), A1111 names (1), the
 * samplers that take the Karras schedule (2) or eta (3) */
static void sampler_list(int which, char *out, size_t n) {
    size_t o = 0;
    out[0] = 0;
    for (int i = 0, k = 0; i < sdc_sampler_count() && o < n; i++) {
        const sdc_sampler_info *s = sdc_sampler_at(i);
        if ((which == 2 && !s->karras_ok) || (which == 3 && !s->takes_eta)) continue;
        o += (size_t)snprintf(out + o, n - o, "%s%s", !k++ ? "" : which == 0 ? " | " : ", ",
                              which == 1 ? s->a1111_name : s->name);
    }
}

/* one help line per sampler: sdc name, A1111 name, diffusers class, what it takes */
static void sampler_table(char *out, size_t n) {
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < sdc_sampler_count() && o < n; i++) {
        const sdc_sampler_info *s = sdc_sampler_at(i);
        char a1111[40];
        snprintf(a1111, sizeof a1111, "\"%s\"", s->a1111_name);
        o += (size_t)snprintf(out + o, n - o, "%30s%-14s%-16s%s%s\n", "", s->name, a1111, s->diffusers_class,
                              s->schedules == (1u << sdc_schedule_count()) - 1 ? "" : " (own schedule)");
    }
}

/* one help line per schedule type: name (label), what it means */
static void schedule_table(char *out, size_t n) {
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < sdc_schedule_count() && o < n; i++) {
        const sdc_schedule_info *k = sdc_schedule_at(i);
        o += (size_t)snprintf(out + o, n - o, "%30s%-14s%s\n", "", k->name, k->summary);
    }
}

static void help(void) {
    char karras[256], eta[128], presets[1024], table[2048], schedules[1024];
    sampler_list(2, karras, sizeof karras);
    sampler_list(3, eta, sizeof eta);
    sampler_table(table, sizeof table);
    schedule_table(schedules, sizeof schedules);
    size_t o = 0;
    presets[0] = 0;
    for (int i = 0; i < sdc_preset_count() && o < sizeof presets; i++) {
        const sdc_preset *p = sdc_preset_at(i);
        char d[160];
        preset_describe(p, d, sizeof d);
        o += (size_t)snprintf(presets + o, sizeof presets - o, "%30s%-16s%s\n", "", p->name, d);
        if (p->lora && o < sizeof presets)
            o += (size_t)snprintf(presets + o, sizeof presets - o, "%46s(with --lora %s)\n", "", p->lora);
    }
    printf(
        "usage: sdc generate [-m MODEL] -p PROMPT [options]\n"
        "\n"
        "Generate images from a text prompt with a Stable Diffusion model (diffusers folder or\n"
        "single-file checkpoint).\n"
        "The same model, prompt, seed and settings give the image diffusers gives for\n"
        "torch.Generator(\"cpu\").manual_seed(seed).\n"
        "\n"
        "  -m, --model PATH          diffusers pipeline folder (model_index.json + components), or a\n"
        "                            single-file SD 1.x / SD 2.x / SDXL checkpoint (.safetensors in\n"
        "                            the original layout of A1111, ComfyUI and Civitai)\n"
        "                            (default: the demo model sdc-shapes-64, 64x64 coloured shapes from\n"
        "                            captions like \"a red circle on a blue background\"; $SDC_MODEL\n"
        "                            overrides)\n"
        "      --config DIR          single files: take the configs, tokenizers and scheduler from this\n"
        "                            diffusers folder instead of the built-in SD 1.5 / SD 2.1 / SDXL ones\n"
        "      --tokenizer DIR       single files: CLIP tokenizer folder (vocab.json, merges.txt ...) or\n"
        "                            a folder with tokenizer/ [tokenizer_2/]. Otherwise: --config DIR,\n"
        "                            tokenizer/ beside the file, ~/.cache/sdc/tokenizers/clip-vit-large-patch14\n"
        "      --prediction P        epsilon | v: what the UNet predicts (default: the model's scheduler\n"
        "                            config; SD 2.x single files: v unless the file says otherwise)\n"
        "  -p, --prompt TEXT         the prompt; repeat for several prompts (one image each)\n"
        "  -n, --negative-prompt T   negative prompt; once for all prompts or once per prompt.\n"
        "                            Without it SD encodes \"\" (SDXL uses zeros when the model\n"
        "                            says force_zeros_for_empty_prompt); an explicit \"\" is encoded\n"
        "      --steps N             denoising steps (default 50)\n"
        "      --guidance G          classifier-free guidance scale (default 7.5, SDXL 5.0);\n"
        "                            G <= 1 disables guidance (one UNet pass per step)\n"
        "      --scheduler NAME      the sampler (default: the model's scheduler_config.json; settings\n"
        "                            in that file carry over, others take the scheduler's defaults),\n"
        "                            by its name, A1111 name or diffusers class:\n"
        "%s"
        "                            (A1111's \"NAME Karras\": that sampler with --karras)\n"
        "      --timestep-spacing S  leading | trailing | linspace\n"
        "      --schedule NAME       A1111's schedule type (default automatic; the samplers marked\n"
        "                            \"own schedule\" take only automatic and uniform):\n"
        "%s"
        "      --karras              = --schedule karras (%s)\n"
        "      --eta E               eta of %s (TCD's gamma), 0..1 (default 0)\n"
        "      --clip-skip K         use the K-th text encoder layer from the end (1 = last)\n"
        "      --prompt-syntax S     plain (default): prompts go to the text encoder as written, cut at\n"
        "                            77 tokens, as diffusers; a1111: AUTOMATIC1111's syntax - (word),\n"
        "                            ((word)), (word:1.2), [word], \\( escapes, BREAK - and its\n"
        "                            conditioning: chunks of 75 tokens (long prompts), emphasis, its\n"
        "                            clip skip (SD 1.x; SD 2.x and SDXL ignore it, as A1111 does)\n"
        "      --pad-cond-uncond     a1111, prompt and negative prompt of different chunk counts: pad\n"
        "                            the shorter with the empty prompt's conditioning (A1111's option)\n"
        "                            instead of running the UNet on each half separately (its default)\n"
        "      --from-png FILE       the parameters in FILE's infotext (sdc's or A1111's): prompts,\n"
        "                            steps, sampler, schedule, CFG, seed, size, clip skip, RNG, syntax\n"
        "                            ...; flags given beside it override them\n"
        "      --seed S              seed of image 0; image i uses S+i (default: random, printed)\n"
        "      --rng cpu|cuda        the generator the seed seeds: cpu (default) = torch.Generator(\"cpu\"),\n"
        "                            diffusers' CPU noise; cuda = torch.Generator(\"cuda\")'s Philox noise\n"
        "                            (A1111's default GPU RNG, ComfyUI on a GPU), computed on the CPU\n"
        "      --batch N             images per prompt (default 1)\n"
        "      --batch-size B        at most B images per UNet call (default: all of a request at\n"
        "                            once); image i keeps seed S+i either way\n"
        "      --prompts FILE        prompts from a file instead of -p: one per line, or JSONL lines\n"
        "                            {\"prompt\", \"negative_prompt\", \"seed\", \"steps\", \"guidance\",\n"
        "                            \"width\", \"height\", \"scheduler\", \"count\"} (all but prompt\n"
        "                            optional); the model loads once; {index} counts over the file\n"
        "  -W, --width W             image width, multiple of 8 (default: the model's size)\n"
        "  -H, --height H            image height, multiple of 8 (default: the model's size)\n"
        "      --init-image PATH     img2img: start from this PNG (its VAE latents, noised) instead of\n"
        "                            noise, as diffusers' StableDiffusion(XL)Img2ImgPipeline; resized to\n"
        "                            -W x -H with PIL's Lanczos filter when given, else its own size\n"
        "                            rounded down to a multiple of 8\n"
        "      --strength S          img2img: how much to change it, (0, 1]: the last int(steps x S)\n"
        "                            steps run (default 0.8, SDXL 0.3; 1.0 with --mask)\n"
        "      --mask PATH           inpainting: a PNG the init image's size, white = repaint (gray\n"
        "                            >= 128). An inpainting UNet (9 input channels) reads it; an\n"
        "                            ordinary one keeps the rest of the image after each step\n"
        "      --hires-scale F       A1111's hires fix: make the image, upscale its latents by F (1..8),\n"
        "                            then img2img them with fresh generators of the same seeds\n"
        "      --hires-steps N       the second pass's steps (default --steps)\n"
        "      --hires-strength S    the second pass's strength, (0, 1] (default 0.75)\n"
        "      --hires-upscaler U    latent (bilinear, A1111's \"Latent\", default) | latent-nearest\n"
        "                            (\"Latent (nearest)\") | latent-nearest-exact\n"
        "      --variant fp16        load *.fp16.safetensors weights where a component has them\n"
        "      --lora PATH[:SCALE]   fuse a LoRA (.safetensors, kohya/A1111 or PEFT/diffusers keys)\n"
        "                            into the weights before the first step: W + SCALE * alpha/rank\n"
        "                            * up @ down (SCALE default 1.0); repeatable, applied in order\n"
        "      --lora-dir DIR        AUTOMATIC1111's <lora:NAME:W> tags in prompts: removed from the\n"
        "                            text, DIR/NAME.safetensors (or a subfolder's) fused at W, the same\n"
        "                            image as --lora DIR/NAME.safetensors:W (<lora:NAME:TE:UNET> weighs\n"
        "                            the text encoders and the UNet apart); without it tags are text\n"
        "      --preset NAME         settings of a fast recipe; explicit flags still win:\n"
        "%s"
        "  -o, --output PATH         PNG path (default sdc-{seed}.png); \"{index}\" and \"{seed}\"\n"
        "                            expand; with several images and no placeholder \"-{index}\"\n"
        "                            goes before the extension\n"
        "      --dump FILE           write intermediates (input_ids, prompt_embeds, noise,\n"
        "                            latents_K, decoded, image ...) to a .safetensors file\n"
        "      --device cpu|cuda     compute device (cuda: the first NVIDIA GPU, in builds made with nvcc)\n"
        "      --dtype f32|bf16      compute precision: f32 (default) matches diffusers; bf16 rounds GEMM,\n"
        "                            convolution and attention operands to bfloat16 (float32 sums):\n"
        "                            ~1.4x faster on CPUs with AVX512_BF16, pixels move by a few levels;\n"
        "                            on cuda: f16 (default), bf16 or f32 for the UNet, text encoders and\n"
        "                            VAE, except that f16 decodes an f16-unsafe VAE (SD, SDXL) in f32\n"
        "      --weights q8          quantise the UNet's and text encoders' weights to int8 at load\n"
        "                            (blocks of 32 with a half scale, ggml's q8_0) and run them with int8\n"
        "                            dot products: ~1/4 of the float32 memory, faster on CPUs with\n"
        "                            AVX512-VNNI / AVX-VNNI; pixels move a little (CPU only)\n"
        "      --vae-tiling          decode the image in overlapping, blended VAE tiles (bounded memory\n"
        "                            for large images), as diffusers' pipe.vae.enable_tiling(); only\n"
        "                            when the image is larger than one tile\n"
        "      --vae-tile-size PX    with --vae-tiling: tile side, a multiple of 32 (default: the VAE\n"
        "                            config's sample_size, e.g. 512 for SD 1.5, as diffusers)\n"
        "      --taesd PATH          decode with TAESD (diffusers' AutoencoderTiny) instead of the KL VAE:\n"
        "                            a diffusers folder (madebyollin/taesd for SD 1.x/2.x, taesdxl for\n"
        "                            SDXL) or a .safetensors file (e.g. taesd_decoder.safetensors);\n"
        "                            about 18x less arithmetic (512x512 on 2 cores: ~0.3 s against ~4.2 s),\n"
        "                            slightly softer pixels; infotexts say \"VAE Decoder: TAESD\"\n"
        "      --threads N           CPU threads (default: all cores)\n"
        "      --quiet               no progress lines\n"
        "  -h, --help                this text\n"
        "\n"
        "Exit status: 0 success, 1 error, 2 usage error.\n",
        table, schedules, karras, eta, presets);
}

static volatile sig_atomic_t g_interrupted;
static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

typedef struct {
    int quiet, tty;
    struct timespec t0;
} progress_state;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int on_progress(void *ctx, int step, int total) {
    progress_state *p = ctx;
    if (!p->quiet) {
        double el = now_s() - ((double)p->t0.tv_sec + 1e-9 * (double)p->t0.tv_nsec);
        fprintf(stderr, "%sstep %d/%d  %.2f s/step  %.1f s%s", p->tty ? "\r" : "", step, total, el / step, el,
                p->tty ? (step == total ? "\n" : "") : "\n");
        fflush(stderr);
    }
    return g_interrupted;
}

/* "{index}" / "{seed}" expansion; several images without a placeholder get "-{index}" before the extension */
static int expand_output(const char *tmpl, int index, uint64_t seed, int many, char *out, size_t n) {
    char t[PATH_MAX];
    if (many && !strstr(tmpl, "{index}") && !strstr(tmpl, "{seed}")) {
        const char *slash = strrchr(tmpl, '/'), *dot = strrchr(tmpl, '.');
        if (!dot || (slash && dot < slash)) dot = tmpl + strlen(tmpl);
        snprintf(t, sizeof t, "%.*s-{index}%s", (int)(dot - tmpl), tmpl, dot);
    } else {
        snprintf(t, sizeof t, "%s", tmpl);
    }
    size_t o = 0;
    for (const char *p = t; *p && o + 1 < n;) {
        if (!strncmp(p, "{index}", 7)) {
            o += (size_t)snprintf(out + o, n - o, "%d", index);
            p += 7;
        } else if (!strncmp(p, "{seed}", 6)) {
            o += (size_t)snprintf(out + o, n - o, "%llu", (unsigned long long)seed);
            p += 6;
        } else {
            out[o++] = *p++;
        }
    }
    if (o >= n) return 0;
    out[o] = 0;
    return 1;
}

static int dir_writable(const char *path) {
    char d[PATH_MAX];
    snprintf(d, sizeof d, "%s", path);
    char *s = strrchr(d, '/');
    if (!s) return access(".", W_OK) == 0;
    if (s == d) s[1] = 0;
    else *s = 0;
    return access(d, W_OK) == 0;
}

static uint64_t random_seed(void) {
    uint32_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&v, sizeof v, 1, f) != 1) v = (uint32_t)time(NULL) ^ (uint32_t)getpid();
    if (f) fclose(f);
    return v;
}

enum { O_CONFIG = 512, O_TOKENIZER, O_PREDICTION }; /* single files */
enum { O_KARRAS = 256, O_SEED, O_BATCH, O_VARIANT, O_DUMP,
       O_DEVICE, O_THREADS, O_DTYPE, O_QUIET, O_CLIPSKIP, O_LORA, O_PRESET };

/* the options a preset sets share their codes with every command (presets.h) */
enum { O_STEPS = PRESET_OPT_STEPS, O_GUIDANCE = PRESET_OPT_GUIDANCE, O_SCHED = PRESET_OPT_SCHED,
       O_SPACING = PRESET_OPT_SPACING, O_ETA = PRESET_OPT_ETA };

static void on_lora(void *ctx, const sdc_lora_report *r) {
    (void)ctx;
    fprintf(stderr, "lora %s: %d modules (unet %d, te1 %d, te2 %d)\n", r->path, r->modules, r->unet, r->te1, r->te2);
}

enum { O_PROMPTS_FILE = 600, O_BATCH_SIZE }; /* --prompts FILE, --batch-size B */
enum { O_VAE_TILING = 640, O_VAE_TILE_SIZE }; /* --vae-tiling, --vae-tile-size PX */
enum { O_RNG = 660 };                          /* --rng cpu|cuda */
enum { O_PROMPT_SYNTAX = 720, O_PAD_COND, O_FROM_PNG }; /* A1111 prompts; --from-png FILE */
enum { O_SCHEDULE = 680 };                     /* --schedule NAME */
enum { O_TAESD = 700 };                        /* --taesd PATH */
enum { O_LORA_DIR = 740 };                     /* --lora-dir DIR: <lora:NAME:W> tags */
enum { O_WEIGHTS = 760 };                      /* --weights q8 */
enum { O_INIT_IMAGE = 800, O_STRENGTH, O_MASK, O_HIRES_SCALE, O_HIRES_STEPS, O_HIRES_STRENGTH, O_HIRES_UPSCALER };

/* --init-image / --mask files into r (the pixels freed by the caller) */
static int read_images(const char *init, const char *mask, sdc_request *r, uint8_t **init_px, uint8_t **mask_px) {
    if (init && cli_image_read(init, 0, init_px, &r->init_width, &r->init_height)) return 0;
    if (mask && cli_image_read(mask, 1, mask_px, &r->mask_width, &r->mask_height)) return 0;
    r->init_image = *init_px;
    r->mask = *mask_px;
    return 1;
}

/* --prompts: each image is saved as it comes, named from its index in the whole file */
typedef struct {
    const char *output;
    int many;
} prompts_out;

static sdc_status save_prompts_image(void *ctx, int64_t index, const sdc_image *img) {
    const prompts_out *o = ctx;
    char path[PATH_MAX];
    if (!expand_output(o->output, (int)index, img->seed, o->many, path, sizeof path))
        return sdc_fail(SDC_ERR_ARG, "output path for image %lld is too long", (long long)index);
    sdc_status st = sdc_image_save_png(img, path);
    if (!st) printf("%s\n", path);
    return st;
}

int cmd_generate(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},      {"prompt", required_argument, 0, 'p'},
        {"negative-prompt", required_argument, 0, 'n'}, {"steps", required_argument, 0, O_STEPS},
        {"guidance", required_argument, 0, O_GUIDANCE}, {"scheduler", required_argument, 0, O_SCHED},
        {"timestep-spacing", required_argument, 0, O_SPACING}, {"karras", no_argument, 0, O_KARRAS},
        {"eta", required_argument, 0, O_ETA},      {"seed", required_argument, 0, O_SEED},
        {"batch", required_argument, 0, O_BATCH},  {"width", required_argument, 0, 'W'},
        {"height", required_argument, 0, 'H'},     {"variant", required_argument, 0, O_VARIANT},
        {"output", required_argument, 0, 'o'},     {"dump", required_argument, 0, O_DUMP},
        {"device", required_argument, 0, O_DEVICE}, {"threads", required_argument, 0, O_THREADS},
        {"dtype", required_argument, 0, O_DTYPE},  {"quiet", no_argument, 0, O_QUIET},
        {"weights", required_argument, 0, O_WEIGHTS},
        {"clip-skip", required_argument, 0, O_CLIPSKIP}, {"help", no_argument, 0, 'h'},
        {"lora", required_argument, 0, O_LORA},    {"preset", required_argument, 0, O_PRESET},
        {"config", required_argument, 0, O_CONFIG}, {"tokenizer", required_argument, 0, O_TOKENIZER},
        {"prediction", required_argument, 0, O_PREDICTION},
        {"prompts", required_argument, 0, O_PROMPTS_FILE}, {"batch-size", required_argument, 0, O_BATCH_SIZE},
        {"vae-tiling", no_argument, 0, O_VAE_TILING}, {"vae-tile-size", required_argument, 0, O_VAE_TILE_SIZE},
        {"rng", required_argument, 0, O_RNG},      {"schedule", required_argument, 0, O_SCHEDULE},
        {"taesd", required_argument, 0, O_TAESD},  {"lora-dir", required_argument, 0, O_LORA_DIR},
        {"prompt-syntax", required_argument, 0, O_PROMPT_SYNTAX}, {"pad-cond-uncond", no_argument, 0, O_PAD_COND},
        {"from-png", required_argument, 0, O_FROM_PNG},
        {"init-image", required_argument, 0, O_INIT_IMAGE}, {"strength", required_argument, 0, O_STRENGTH},
        {"mask", required_argument, 0, O_MASK},    {"hires-scale", required_argument, 0, O_HIRES_SCALE},
        {"hires-steps", required_argument, 0, O_HIRES_STEPS}, {"hires-strength", required_argument, 0, O_HIRES_STRENGTH},
        {"hires-upscaler", required_argument, 0, O_HIRES_UPSCALER},
        {0, 0, 0, 0}};
    const char *model = NULL, *output = "sdc-{seed}.png", *dump_path = NULL;
    const char *prompts[MAX_PROMPTS], *negs[MAX_PROMPTS];
    int np = 0, nn = 0, have_seed = 0, quiet = 0, threads = 0;
    sdc_request r;
    sdc_request_init(&r);
    sdc_load_options lo = {0};
    static cli_loras loras; /* static: PATH_MAX per LoRA */
    loras.n = 0;
    const sdc_preset *preset = NULL;
    preset_given given = {0};
    const char *prompts_file = NULL;
    static sdc_prompts *plist; /* static: early returns below leave it reachable, not leaked */
    static sdc_infotext from; /* --from-png: r's prompts point into it; static for the same reason */
    const char *from_png = NULL;
    const char *init_path = NULL, *mask_path = NULL;
    static uint8_t *init_px, *mask_px; /* static, as plist */
    float fval;
    opterr = 0;
    int c;
    /* --from-png first: its settings are the base the other flags override */
    for (optind = 0; (c = getopt_long(argc, argv, ":m:p:n:W:H:o:h", opts, NULL)) != -1;)
        if (c == O_FROM_PNG) from_png = optarg;
    sdc_infotext_free(&from);
    if (from_png && !from_png_load(from_png, &from, &r)) return 1;
    int have_infotext_seed = from_png && sdc_infotext_get(&from, "Seed");
    optind = 0;
    while ((c = getopt_long(argc, argv, ":m:p:n:W:H:o:h", opts, NULL)) != -1) {
        preset_note_given(&given, c);
        switch (c) {
        case O_LORA: if (!cli_lora("generate", optarg, &loras)) return EXIT_USAGE; break;
        case O_PRESET:
            if (!(preset = preset_find(optarg)))
                return cli_usage_error("generate", "--preset must be %s, got '%s'", preset_names(), optarg);
            break;
        case O_PROMPTS_FILE: prompts_file = optarg; break;
        case O_LORA_DIR: r.lora_dir = optarg; break;
        case O_BATCH_SIZE: if (!cli_int("--batch-size", optarg, 1, INT_MAX, &r.batch_size)) return EXIT_USAGE; break;
        case O_VAE_TILING: r.vae_tiling = 1; break;
        case O_VAE_TILE_SIZE:
            if (!cli_int("--vae-tile-size", optarg, 32, 4096, &r.vae_tile_size)) return EXIT_USAGE;
            if (r.vae_tile_size % 32) /* 4 latents of 8 pixels: the SD / SDXL VAEs */
                return cli_usage_error("generate", "--vae-tile-size must be a multiple of 32, got %d", r.vae_tile_size);
            break;
        case O_INIT_IMAGE: init_path = optarg; break;
        case O_MASK: mask_path = optarg; break;
        case O_STRENGTH: /* (0, 1] is the library's check, with its message */
            if (!cli_float("--strength", optarg, 0, 1e9, &fval)) return EXIT_USAGE;
            r.strength = fval;
            break;
        case O_HIRES_SCALE: if (!cli_float("--hires-scale", optarg, 0, 1e9, &fval)) return EXIT_USAGE; r.hires_scale = fval; break;
        case O_HIRES_STEPS: if (!cli_int("--hires-steps", optarg, 1, INT_MAX, &r.hires_steps)) return EXIT_USAGE; break;
        case O_HIRES_STRENGTH:
            if (!cli_float("--hires-strength", optarg, 0, 1e9, &fval)) return EXIT_USAGE;
            r.hires_strength = fval;
            break;
        case O_HIRES_UPSCALER: r.hires_upscaler = optarg; break;
        case 'm': model = optarg; break;
        case 'p':
            if (np == MAX_PROMPTS) return cli_usage_error("generate", "at most %d prompts", MAX_PROMPTS);
            prompts[np++] = optarg;
            break;
        case 'n':
            if (nn == MAX_PROMPTS) return cli_usage_error("generate", "at most %d negative prompts", MAX_PROMPTS);
            negs[nn++] = optarg;
            break;
        case O_STEPS: if (!cli_int("--steps", optarg, 1, INT_MAX, &r.steps)) return EXIT_USAGE; break;
        case O_GUIDANCE: if (!cli_float("--guidance", optarg, 0, 1e9, &r.guidance)) return EXIT_USAGE; break;
        case O_SCHED: r.scheduler = optarg; break;
        case O_SPACING: r.timestep_spacing = optarg; break;
        case O_KARRAS: r.karras = 1; break;
        case O_SCHEDULE: r.schedule = optarg; break;
        case O_ETA: if (!cli_float("--eta", optarg, 0, 1e9, &r.eta)) return EXIT_USAGE; break;
        case O_SEED: if (!cli_u64("--seed", optarg, &r.seed)) return EXIT_USAGE; have_seed = 1; break;
        case O_RNG:
            if (strcmp(optarg, "cpu") && strcmp(optarg, "cuda"))
                return cli_usage_error("generate", "--rng must be cpu or cuda, got '%s'", optarg);
            r.rng = optarg;
            break;
        case O_PROMPT_SYNTAX:
            if (strcmp(optarg, "plain") && strcmp(optarg, "a1111"))
                return cli_usage_error("generate", "--prompt-syntax must be plain or a1111, got '%s'", optarg);
            r.prompt_syntax = optarg;
            break;
        case O_PAD_COND: r.pad_cond_uncond = 1; break;
        case O_FROM_PNG: break; /* read above */
        case O_BATCH: if (!cli_int("--batch", optarg, 1, INT_MAX, &r.batch)) return EXIT_USAGE; break;
        case 'W': if (!cli_int("--width", optarg, 1, INT_MAX, &r.width)) return EXIT_USAGE; break;
        case 'H': if (!cli_int("--height", optarg, 1, INT_MAX, &r.height)) return EXIT_USAGE; break;
        case O_VARIANT: lo.variant = optarg; break;
        case O_TAESD: lo.taesd = optarg; break;
        case O_CONFIG: lo.config_dir = optarg; break;
        case O_TOKENIZER: lo.tokenizer_dir = optarg; break;
        case O_PREDICTION:
            if (strcmp(optarg, "epsilon") && strcmp(optarg, "v") && strcmp(optarg, "v_prediction"))
                return cli_usage_error("generate", "--prediction must be epsilon or v, got '%s'", optarg);
            lo.prediction = optarg;
            break;
        case 'o': output = optarg; break;
        case O_DUMP: dump_path = optarg; break;
        case O_DEVICE: if (!cli_device("generate", optarg, &lo.device)) return EXIT_USAGE; break;
        case O_DTYPE: if (!cli_dtype("generate", optarg, &lo.dtype)) return EXIT_USAGE; break;
        case O_WEIGHTS: if (!cli_weights("generate", optarg, &lo.weights)) return EXIT_USAGE; break;
        case O_THREADS: if (!cli_int("--threads", optarg, 1, 1024, &threads)) return EXIT_USAGE; break;
        case O_QUIET: quiet = 1; break;
        case O_CLIPSKIP: if (!cli_int("--clip-skip", optarg, 1, INT_MAX, &r.clip_skip)) return EXIT_USAGE; break;
        case 'h': help(); return 0;
        case ':': return cli_usage_error("generate", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("generate", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("generate", "unexpected argument '%s'", argv[optind]);
    if (preset) preset_apply(preset, &given, &r);
    if (!np && !prompts_file && !from_png)
        return cli_usage_error("generate", "no prompt given (-p PROMPT, --prompts FILE or --from-png PNG)");
    if (np && prompts_file) return cli_usage_error("generate", "-p and --prompts cannot be combined");
    if (from_png && prompts_file) return cli_usage_error("generate", "--from-png and --prompts cannot be combined");
    if (prompts_file && (nn > 1 || dump_path))
        return cli_usage_error("generate", "with --prompts give at most one -n (lines may set negative_prompt), no --dump");
    if (lo.variant && strcmp(lo.variant, "fp16"))
        return cli_usage_error("generate", "--variant must be fp16, got '%s'", lo.variant);
    if (r.vae_tile_size && !r.vae_tiling) return cli_usage_error("generate", "--vae-tile-size needs --vae-tiling");
    if (lo.taesd && r.vae_tiling)
        return cli_usage_error("generate", "--vae-tiling tiles the KL VAE; --taesd decodes whole images");
    static const char *const file_line[1] = {""}; /* --prompts: the lines come later, checked as they run */
    if (np || !from_png) { /* else the infotext's prompt */
        r.prompts = np ? prompts : file_line;
        r.nprompts = np ? np : 1;
    }
    if (nn || !from_png) { /* else the infotext's negative prompt */
        r.negative_prompts = nn ? negs : NULL;
        r.nnegative = nn;
    }
    if (mask_path && !init_path) return cli_usage_error("generate", "--mask needs --init-image (the image to repaint)");
    if (!read_images(init_path, mask_path, &r, &init_px, &mask_px)) {
        fprintf(stderr, "sdc: %s\n", sdc_last_error());
        return 1;
    }
    if (sdc_request_check(NULL, &r)) return cli_usage_error("generate", "%s", sdc_last_error());
    if (!have_seed && !have_infotext_seed) r.seed = random_seed();
    if (prompts_file) { /* the whole file is checked before the model loads */
        if (sdc_prompts_load(&plist, prompts_file, r.batch, r.seed)) {
            fprintf(stderr, "sdc: %s\n", sdc_last_error());
            return 1;
        }
    }
    int64_t total = prompts_file ? sdc_prompts_images(plist) : np * r.batch;
    char path[PATH_MAX];
    if (!expand_output(output, 0, r.seed, total > 1, path, sizeof path) || !dir_writable(path)) {
        fprintf(stderr, "sdc: cannot write to '%s': folder missing or not writable\n", output);
        return 1;
    }
    if (dump_path && !dir_writable(dump_path)) {
        fprintf(stderr, "sdc: cannot write to '%s': folder missing or not writable\n", dump_path);
        return 1;
    }
    lo.threads = threads;
    lo.loras = loras.paths;
    lo.lora_scales = loras.scales;
    lo.nloras = loras.n;
    if (!quiet) lo.lora_report = on_lora;

    char default_model[PATH_MAX];
    if (!(model = cli_model_or_default("generate", model, quiet, default_model, sizeof default_model))) return 1;
    sdc_model *m;
    if (sdc_model_load(&m, model, &lo)) {
        fprintf(stderr, "sdc: %s\n", sdc_last_error());
        return 1;
    }
    if (from_png) from_png_check_model(&from, m);
    if (!quiet) fprintf(stderr, "seed %llu\n", (unsigned long long)r.seed);
    progress_state ps = {.quiet = quiet, .tty = isatty(2)};
    clock_gettime(CLOCK_MONOTONIC, &ps.t0);
    r.progress = on_progress;
    r.progress_ctx = &ps;
    sdc_dump *dw = NULL;
    if (dump_path) {
        if (!(dw = sdc_dump_new())) {
            fprintf(stderr, "sdc: out of memory\n");
            sdc_model_free(m);
            return 1;
        }
        r.dump = sdc_dump_tensor;
        r.dump_ctx = dw;
    }
    struct sigaction sa = {.sa_handler = on_sigint}, old_int, old_term;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sdc_image *imgs;
    int n;
    int rc = 0;
    if (prompts_file) {
        prompts_out po = {output, total > 1};
        if (sdc_prompts_generate(m, &r, plist, save_prompts_image, &po)) {
            fprintf(stderr, "sdc: %s\n", sdc_last_error());
            rc = 1;
        }
        sdc_prompts_free(plist);
        plist = NULL;
    } else if (sdc_generate(m, &r, &imgs, &n)) {
        fprintf(stderr, "sdc: %s\n", sdc_last_error());
        rc = 1;
    } else {
        for (int i = 0; i < n; i++) {
            expand_output(output, i, imgs[i].seed, n > 1, path, sizeof path);
            if (sdc_image_save_png(&imgs[i], path)) {
                fprintf(stderr, "sdc: %s\n", sdc_last_error());
                rc = 1;
                break;
            }
            printf("%s\n", path);
        }
        sdc_images_free(imgs, n);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (dw) {
        if (sdc_dump_save(dw, dump_path)) {
            fprintf(stderr, "sdc: %s\n", sdc_last_error());
            rc = 1;
        }
        sdc_dump_free(dw);
    }
    sdc_model_free(m);
    sdc_infotext_free(&from);
    free(init_px), free(mask_px);
    init_px = mask_px = NULL;
    return rc;
}
