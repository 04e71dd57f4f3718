/* cmd_dataset.c - `sdc dataset`: flags and cluster variables into
 * ds_options, a progress bar (terminal) or periodic lines (logs), the
 * closing summary. The work itself is src/dataset/dataset.c. */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "presets.h"
#include "sdc.h"

#define LOG_EVERY_S 30.0

static void help(void) {
    printf(
        "usage: sdc dataset [-m MODEL] --prompts FILE --out DIR [options]\n"
        "\n"
        "Make a data set of images for training: image j (counting over the whole prompts file) has\n"
        "seed BASE + j and the name %%08d.png, so any run, machine or slice makes the same image for the\n"
        "same j. Rerunning the same command resumes an interrupted run (even after kill -9) and ends\n"
        "with exactly the files of an uninterrupted one; a folder made with other arguments is refused.\n"
        "\n"
        "  -m, --model PATH          diffusers pipeline folder, or a single-file checkpoint (default:\n"
        "                            the demo model sdc-shapes-64; $SDC_MODEL overrides)\n"
        "      --config DIR  --tokenizer DIR   for single files, as in sdc generate\n"
        "      --prompts FILE        one prompt per line, or JSONL: {\"prompt\": ..., \"negative_prompt\",\n"
        "                            \"seed\", \"steps\", \"guidance\", \"width\", \"height\", \"scheduler\",\n"
        "                            \"count\"} (all but prompt optional)\n"
        "  -o, --out DIR             output folder (created; see docs/dataset.md for its layout)\n"
        "      --images-per-prompt K images of each line without \"count\" (default 1)\n"
        "      --seed BASE           image j uses seed BASE + j (default 0); a line's \"seed\" S gives\n"
        "                            its k-th image S + k\n"
        "      --format F            imagefolder (DIR/train/*.png + metadata.jsonl, default) or\n"
        "                            webdataset (DIR/shard-NNNNNN.tar of .png/.txt/.json members)\n"
        "      --shard-size N        images per webdataset tar (default 1000)\n"
        "      --batch-size B        images per UNet call, 1..64 (default 1); part of the data set's\n"
        "                            identity, since batching changes pixels by float rounding\n"
        "      --shard I/N           make slice I of N (0-based); without it the slice comes from\n"
        "                            SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT (Slurm job arrays)\n"
        "                            or JOB_COMPLETION_INDEX with --shards N (Kubernetes Indexed Jobs)\n"
        "      --shards N            number of slices when JOB_COMPLETION_INDEX gives the index\n"
        "  -n, --negative-prompt T   negative prompt of lines without their own\n"
        "      --steps N  --guidance G  --scheduler NAME  -W W  -H H  --timestep-spacing S\n"
        "      --karras  --schedule NAME  --eta E  --clip-skip K\n"
        "                            as in sdc generate (a JSONL line's values win)\n"
        "      --rng cpu|cuda        the generator the seeds seed, as in sdc generate: cpu (default) =\n"
        "                            torch.Generator(\"cpu\"); cuda = torch.Generator(\"cuda\")'s Philox\n"
        "                            noise (A1111's GPU RNG, ComfyUI on a GPU), computed on the CPU\n"
        "      --device cpu|cuda     compute device (cuda: the first NVIDIA GPU, in builds made with nvcc)\n"
        "      --dtype f32|bf16|f16  compute precision: f32 (default on cpu), bf16 (CPUs with\n"
        "                            AVX512_BF16, or cuda), f16 (default on cuda). --rng, --device\n"
        "                            and --dtype change pixels, so they are part of the identity\n"
        "      --variant fp16        load *.fp16.safetensors weights where a component has them\n"
        "      --lora PATH[:SCALE]   fuse a LoRA into the weights, as in sdc generate (SCALE default\n"
        "                            1.0); repeatable, applied in order. Each one's file name, scale\n"
        "                            and content digest are part of the identity\n"
        "      --preset NAME         settings of a fast recipe, as in sdc generate (%s);\n"
        "                            explicit flags still win, a JSONL line's values win over both\n"
        "      --threads N           CPU threads (default: all cores)\n"
        "      --quiet               no progress or summary lines\n"
        "  -h, --help                this text\n"
        "\n"
        "Exit status: 0 when the slice is complete, 1 on an error, failed images or an interruption\n"
        "(rerun to resume), 2 on a usage error.\n", preset_names());
}

static volatile int g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

typedef struct {
    int quiet, tty;
    double last_log;
    int64_t made_at_start;
} ui_state;

static void fmt_eta(char *b, size_t n, double s) {
    if (s < 0 || s > 1e8) snprintf(b, n, "?");
    else if (s >= 3600) snprintf(b, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else snprintf(b, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

static void on_progress(void *ctx, const sdc_dataset_progress *p) {
    ui_state *u = ctx;
    if (p->error)
        fprintf(stderr, "sdc: images %lld..%lld failed: %s\n", (long long)p->error_first, (long long)p->error_end - 1,
                p->error);
    if (u->quiet) return;
    double rate = p->seconds > 0 ? (double)p->made / p->seconds : 0;
    int64_t left = p->total - p->done - p->failures;
    char eta[32];
    fmt_eta(eta, sizeof eta, rate > 0 ? (double)left / rate : -1);
    double pct = p->total ? 100.0 * (double)p->done / (double)p->total : 100.0;
    if (u->tty) {
        char bar[31];
        int fill = (int)(pct * 30 / 100);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\r[%s] %lld/%lld %5.1f%%  %.2f images/s  ETA %s   ", bar, (long long)p->done,
                (long long)p->total, pct, rate, eta);
        fflush(stderr);
    } else if (p->seconds - u->last_log >= LOG_EVERY_S || p->done + p->failures == p->total) {
        u->last_log = p->seconds;
        fprintf(stderr, "dataset: %lld/%lld images (%.1f%%), %.2f images/s, ETA %s\n", (long long)p->done,
                (long long)p->total, pct, rate, eta);
    }
}

/* SDC_TEST_KILL_AFTER=N[:POINT] (tests only): SIGKILL this process at POINT
 * (write, file, line, done (default), close) of the N-th image it writes. */
static long g_kill_n;
static char g_kill_point[16] = "done";
static void on_hook(void *ctx, const char *point, int64_t nth) {
    (void)ctx;
    if (g_kill_n && nth == g_kill_n && !strcmp(point, g_kill_point)) raise(SIGKILL);
}

enum { O_SCHEDULE = 700 }; /* --schedule NAME */
enum { O_PROMPTS = 256, O_IPP, O_SEED, O_FORMAT, O_SHARD_SIZE, O_BATCH_SIZE, O_SHARD, O_SHARDS, O_KARRAS,
       O_CLIPSKIP, O_VARIANT, O_THREADS, O_QUIET, O_CONFIG, O_TOKENIZER, O_RNG, O_DEVICE, O_DTYPE, O_LORA, O_PRESET };

/* the options a preset sets share their codes with every command (presets.h) */
enum { O_STEPS = PRESET_OPT_STEPS, O_GUIDANCE = PRESET_OPT_GUIDANCE, O_SCHED = PRESET_OPT_SCHED,
       O_SPACING = PRESET_OPT_SPACING, O_ETA = PRESET_OPT_ETA };

/* the preset's values for the settings the command line left open; every one
 * of them is an identity key already (steps, guidance, size, scheduler,
 * timestep_spacing, eta), so the preset needs no key of its own */

static void on_lora(void *ctx, const sdc_lora_report *r) {
    (void)ctx;
    fprintf(stderr, "lora %s: %d modules (unet %d, te1 %d, te2 %d)\n", r->path, r->modules, r->unet, r->te1, r->te2);
}

int cmd_dataset(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},          {"prompts", required_argument, 0, O_PROMPTS},
        {"out", required_argument, 0, 'o'},            {"images-per-prompt", required_argument, 0, O_IPP},
        {"seed", required_argument, 0, O_SEED},        {"format", required_argument, 0, O_FORMAT},
        {"shard-size", required_argument, 0, O_SHARD_SIZE}, {"batch-size", required_argument, 0, O_BATCH_SIZE},
        {"shard", required_argument, 0, O_SHARD},      {"shards", required_argument, 0, O_SHARDS},
        {"negative-prompt", required_argument, 0, 'n'}, {"steps", required_argument, 0, O_STEPS},
        {"guidance", required_argument, 0, O_GUIDANCE}, {"scheduler", required_argument, 0, O_SCHED},
        {"width", required_argument, 0, 'W'},          {"height", required_argument, 0, 'H'},
        {"timestep-spacing", required_argument, 0, O_SPACING}, {"karras", no_argument, 0, O_KARRAS},
        {"schedule", required_argument, 0, O_SCHEDULE},
        {"eta", required_argument, 0, O_ETA},          {"clip-skip", required_argument, 0, O_CLIPSKIP},
        {"variant", required_argument, 0, O_VARIANT},  {"threads", required_argument, 0, O_THREADS},
        {"quiet", no_argument, 0, O_QUIET},            {"help", no_argument, 0, 'h'},
        {"config", required_argument, 0, O_CONFIG},    {"tokenizer", required_argument, 0, O_TOKENIZER},
        {"rng", required_argument, 0, O_RNG},          {"device", required_argument, 0, O_DEVICE},
        {"dtype", required_argument, 0, O_DTYPE},      {"lora", required_argument, 0, O_LORA},
        {"preset", required_argument, 0, O_PRESET},    {0, 0, 0, 0}};
    sdc_dataset_options o;
    sdc_dataset_options_init(&o);
    static const char *neg; /* -n: the default negative prompt */
    const char *shard = NULL;
    int shards = 0, quiet = 0;
    static cli_loras loras; /* static: PATH_MAX per LoRA */
    loras.n = 0;
    const sdc_preset *preset = NULL;
    preset_given given = {0};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":m:o:n:W:H:h", opts, NULL)) != -1) {
        preset_note_given(&given, c);
        switch (c) {
        case O_LORA: if (!cli_lora("dataset", optarg, &loras)) return EXIT_USAGE; break;
        case O_PRESET:
            if (!(preset = preset_find(optarg)))
                return cli_usage_error("dataset", "--preset must be %s, got '%s'", preset_names(), optarg);
            break;
        case 'm': o.model = optarg; break;
        case O_PROMPTS: o.prompts = optarg; break;
        case 'o': o.out = optarg; break;
        case O_IPP: if (!cli_int("--images-per-prompt", optarg, 1, 1000000, &o.images_per_prompt)) return EXIT_USAGE; break;
        case O_SEED: if (!cli_u64("--seed", optarg, &o.seed)) return EXIT_USAGE; break;
        case O_FORMAT:
            if (!strcmp(optarg, "imagefolder")) o.format = SDC_DATASET_IMAGEFOLDER;
            else if (!strcmp(optarg, "webdataset")) o.format = SDC_DATASET_WEBDATASET;
            else return cli_usage_error("dataset", "--format must be imagefolder or webdataset, got '%s'", optarg);
            break;
        case O_SHARD_SIZE: if (!cli_int("--shard-size", optarg, 1, 1000000, &o.shard_size)) return EXIT_USAGE; break;
        case O_BATCH_SIZE: if (!cli_int("--batch-size", optarg, 1, SDC_MAX_BATCH, &o.batch_size)) return EXIT_USAGE; break;
        case O_SHARD: shard = optarg; break;
        case O_SHARDS: if (!cli_int("--shards", optarg, 1, 1000000, &shards)) return EXIT_USAGE; break;
        case 'n': neg = optarg, o.req.negative_prompts = &neg, o.req.nnegative = 1; break;
        case O_STEPS: if (!cli_int("--steps", optarg, 1, INT_MAX, &o.req.steps)) return EXIT_USAGE; break;
        case O_GUIDANCE: if (!cli_float("--guidance", optarg, 0, 1e9, &o.req.guidance)) return EXIT_USAGE; break;
        case O_SCHED: o.req.scheduler = optarg; break;
        case 'W': if (!cli_int("--width", optarg, 1, INT_MAX, &o.req.width)) return EXIT_USAGE; break;
        case 'H': if (!cli_int("--height", optarg, 1, INT_MAX, &o.req.height)) return EXIT_USAGE; break;
        case O_SPACING: o.req.timestep_spacing = optarg; break;
        case O_KARRAS: o.req.karras = 1; break;
        case O_SCHEDULE: o.req.schedule = optarg; break;
        case O_ETA: if (!cli_float("--eta", optarg, 0, 1e9, &o.req.eta)) return EXIT_USAGE; break;
        case O_CLIPSKIP:
            if (!cli_int("--clip-skip", optarg, 1, INT_MAX, &o.req.clip_skip)) return EXIT_USAGE;
            break;
        case O_VARIANT: o.load.variant = optarg; break;
        case O_CONFIG: o.load.config_dir = optarg; break;
        case O_TOKENIZER: o.load.tokenizer_dir = optarg; break;
        case O_THREADS: if (!cli_int("--threads", optarg, 1, 1024, &o.load.threads)) return EXIT_USAGE; break;
        case O_RNG:
            if (strcmp(optarg, "cpu") && strcmp(optarg, "cuda"))
                return cli_usage_error("dataset", "--rng must be cpu or cuda, got '%s'", optarg);
            o.req.rng = optarg;
            break;
        case O_DEVICE: if (!cli_device("dataset", optarg, &o.load.device)) return EXIT_USAGE; break;
        case O_DTYPE: if (!cli_dtype("dataset", optarg, &o.load.dtype)) return EXIT_USAGE; break;
        case O_QUIET: quiet = 1; break;
        case 'h': help(); return 0;
        case ':': return cli_usage_error("dataset", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("dataset", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("dataset", "unexpected argument '%s'", argv[optind]);
    if (preset) preset_apply(preset, &given, &o.req);
    o.load.loras = loras.paths;
    o.load.lora_scales = loras.scales;
    o.load.nloras = loras.n;
    if (!o.prompts) return cli_usage_error("dataset", "no prompts file given (--prompts FILE)");
    if (!o.out) return cli_usage_error("dataset", "no output folder given (--out DIR)");
    if (o.load.variant && strcmp(o.load.variant, "fp16"))
        return cli_usage_error("dataset", "--variant must be fp16, got '%s'", o.load.variant);
    static const char *const file_line[1] = {""}; /* the prompts file's lines come later */
    o.req.prompts = file_line, o.req.nprompts = 1;
    if (sdc_request_check(NULL, &o.req)) return cli_usage_error("dataset", "%s", sdc_last_error());
    sdc_shard_env env = {getenv("SLURM_ARRAY_TASK_ID"), getenv("SLURM_ARRAY_TASK_COUNT"), getenv("SLURM_ARRAY_TASK_MIN"),
                     getenv("SLURM_ARRAY_TASK_STEP"), getenv("JOB_COMPLETION_INDEX")};
    const char *source;
    if (sdc_shard_select(shard, shards, &env, &o.slice, &o.nslices, &source))
        return cli_usage_error("dataset", "%s", sdc_last_error());

    const char *kill = getenv("SDC_TEST_KILL_AFTER");
    if (kill && *kill) {
        char *end;
        g_kill_n = strtol(kill, &end, 10);
        if (*end == ':') snprintf(g_kill_point, sizeof g_kill_point, "%s", end + 1);
        o.hook = on_hook;
    }
    char default_model[PATH_MAX];
    if (!(o.model = cli_model_or_default("dataset", o.model, quiet, default_model, sizeof default_model))) return 1;
    ui_state ui = {.quiet = quiet, .tty = isatty(2)};
    o.progress = on_progress;
    if (!quiet) o.load.lora_report = on_lora;
    o.progress_ctx = &ui;
    o.stop = &g_stop;
    if (!quiet && o.nslices > 1) fprintf(stderr, "dataset: slice %d/%d (from %s)\n", o.slice, o.nslices, source);
    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sdc_dataset_summary s;
    sdc_status st = sdc_dataset_run(&o, &s);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (!quiet && ui.tty) fprintf(stderr, "\n");
    if (st && st != SDC_ERR_INTERRUPTED) {
        fprintf(stderr, "sdc: %s\n", sdc_last_error());
        return 1;
    }
    if (!quiet && s.slice_end == s.slice_first && !st)
        fprintf(stderr, "dataset: slice %d/%d has no images (more slices than work units)\n", o.slice, o.nslices);
    else if (!quiet)
        fprintf(stderr,
                "dataset: slice %d/%d, images %lld..%lld: %lld made, %lld already there, %lld failed; "
                "%.1f s, %.2f images/s\n",
                o.slice, o.nslices, (long long)s.slice_first, (long long)s.slice_end - 1, (long long)s.made,
                (long long)s.present, (long long)s.failures, s.seconds,
                s.seconds > 0 ? (double)s.made / s.seconds : 0.0);
    if (st) {
        fprintf(stderr, "sdc: %s\n", sdc_last_error());
        return 1;
    }
    if (s.failures) {
        fprintf(stderr, "sdc: %lld images failed; run the same command again to retry them\n", (long long)s.failures);
        return 1;
    }
    return 0;
}
