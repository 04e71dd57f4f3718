/* cmd_serve.c - `sdc serve`: parse flags, load the model once, serve the
 * AUTOMATIC1111-compatible API and the web page (tools/server/) until
 * SIGINT/SIGTERM. */
#include <getopt.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "sdc.h"
#include "server/server.h"

static void help(void) {
    printf(
        "usage: sdc serve [-m MODEL] [options]\n"
        "\n"
        "Keep the model loaded and serve AUTOMATIC1111's HTTP API (POST /sdapi/v1/txt2img,\n"
        "GET /sdapi/v1/progress, ...) and a web page at /. One image job runs at a time;\n"
        "others wait in a bounded queue (503 when it is full). Stop with Ctrl-C or SIGTERM.\n"
        "\n"
        "  -m, --model PATH          diffusers pipeline folder, or a single-file checkpoint (default:\n"
        "                            the demo model sdc-shapes-64; $SDC_MODEL overrides)\n"
        "      --host ADDR           address to bind (default 127.0.0.1: this machine only)\n"
        "      --port P              TCP port (default 7860; 0: any free port, printed)\n"
        "      --api-auth U:P[,U:P]  require HTTP basic auth on every route\n"
        "      --queue N             jobs that may wait behind the running one (default 4)\n"
        "      --max-size N          largest width/height accepted (default 2048)\n"
        "      --max-steps N         most steps accepted (default 150)\n"
        "      --max-images N        most images per request, batch_size x n_iter (default 16)\n"
        "      --max-body-mb N       largest request body in MiB (default 16)\n"
        "      --max-request-memory-mb N  memory the requests in flight may hold at once, in MiB\n"
        "                            (default 256; a request with a body of B bytes counts 3B + 8 MiB;\n"
        "                            503 when a new one does not fit)\n"
        "      --max-connections N   open connections at once (default 64; the oldest connections still\n"
        "                            sending a request are cut when fewer than 1/8 of them are free)\n"
        "      --client-timeout S    seconds a client may take to send request headers (default 10);\n"
        "                            a body must then arrive at 16 KiB/s or more\n"
        "      --variant fp16        load *.fp16.safetensors weights where a component has them\n"
        "      --threads N           CPU threads (default: all cores)\n"
        "      --device cpu|cuda     compute device (cuda: builds made with nvcc)\n"
        "      --dtype f32|bf16      compute precision (bf16: faster on CPUs with AVX512_BF16; see generate)\n"
        "      --quiet               no per-request log lines\n"
        "  -h, --help                this text\n"
        "\n"
        "Exit status: 0 after a clean shutdown, 1 error, 2 usage error.\n");
}

enum { O_HOST = 256, O_PORT, O_AUTH, O_QUEUE, O_MAXSIZE, O_MAXSTEPS, O_MAXIMAGES, O_MAXBODY, O_MAXCONN, O_VARIANT,
       O_THREADS, O_QUIET, O_DTYPE, O_DEVICE, O_MAXMEM, O_CLIENT_TIMEOUT };

int cmd_serve(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},          {"host", required_argument, 0, O_HOST},
        {"port", required_argument, 0, O_PORT},        {"api-auth", required_argument, 0, O_AUTH},
        {"queue", required_argument, 0, O_QUEUE},      {"max-size", required_argument, 0, O_MAXSIZE},
        {"max-steps", required_argument, 0, O_MAXSTEPS}, {"max-images", required_argument, 0, O_MAXIMAGES},
        {"max-body-mb", required_argument, 0, O_MAXBODY}, {"max-connections", required_argument, 0, O_MAXCONN},
        {"variant", required_argument, 0, O_VARIANT},  {"threads", required_argument, 0, O_THREADS},
        {"quiet", no_argument, 0, O_QUIET},            {"help", no_argument, 0, 'h'},
        {"dtype", required_argument, 0, O_DTYPE},      {"device", required_argument, 0, O_DEVICE},
        {"max-request-memory-mb", required_argument, 0, O_MAXMEM},
        {"client-timeout", required_argument, 0, O_CLIENT_TIMEOUT},
        {0, 0, 0, 0}};
    server_config cfg = {.host = "127.0.0.1", .port = 7860, .queue = 4, .max_side = 2048, .max_steps = 150,
                         .max_images = 16, .max_body = 16u << 20, .max_connections = 64, .client_timeout = 10};
    const char *model = NULL;
    int body_mb = 16, mem_mb = 256, threads = 0;
    sdc_load_options lo = {0};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case O_HOST: cfg.host = optarg; break;
        case O_PORT: if (!cli_int("--port", optarg, 0, 65535, &cfg.port)) return EXIT_USAGE; break;
        case O_AUTH: cfg.auth = optarg; break;
        case O_QUEUE: if (!cli_int("--queue", optarg, 1, 1024, &cfg.queue)) return EXIT_USAGE; break;
        case O_MAXSIZE: if (!cli_int("--max-size", optarg, 64, 4096, &cfg.max_side)) return EXIT_USAGE; break;
        case O_MAXSTEPS: if (!cli_int("--max-steps", optarg, 1, 1000, &cfg.max_steps)) return EXIT_USAGE; break;
        case O_MAXIMAGES: if (!cli_int("--max-images", optarg, 1, 64, &cfg.max_images)) return EXIT_USAGE; break;
        case O_MAXBODY: if (!cli_int("--max-body-mb", optarg, 1, 1024, &body_mb)) return EXIT_USAGE; break;
        case O_MAXCONN: if (!cli_int("--max-connections", optarg, 4, 4096, &cfg.max_connections)) return EXIT_USAGE; break;
        case O_MAXMEM: if (!cli_int("--max-request-memory-mb", optarg, 16, 1 << 20, &mem_mb)) return EXIT_USAGE; break;
        case O_CLIENT_TIMEOUT: if (!cli_int("--client-timeout", optarg, 1, 3600, &cfg.client_timeout)) return EXIT_USAGE; break;
        case O_VARIANT: lo.variant = optarg; break;
        case O_THREADS: if (!cli_int("--threads", optarg, 1, 1024, &threads)) return EXIT_USAGE; break;
        case O_QUIET: cfg.quiet = 1; break;
        case O_DEVICE: if (!cli_device("serve", optarg, &lo.device)) return EXIT_USAGE; break;
        case O_DTYPE: if (!cli_dtype("serve", optarg, &lo.dtype)) return EXIT_USAGE; break;
        case 'h': help(); return 0;
        case ':': return cli_usage_error("serve", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("serve", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    char default_model[PATH_MAX];
    if (!(model = cli_model_or_default("serve", model, 0, default_model, sizeof default_model))) return 1;
    if (lo.variant && strcmp(lo.variant, "fp16"))
        return cli_usage_error("serve", "--variant must be fp16, got '%s'", lo.variant);
    if (cfg.auth) {
        const char *colon = strchr(cfg.auth, ':');
        if (!colon || colon == cfg.auth) return cli_usage_error("serve", "--api-auth expects user:pass");
    }
    cfg.max_body = (size_t)body_mb << 20;
    cfg.max_request_memory = (size_t)mem_mb << 20;
    if ((size_t)mem_mb < 3 * (size_t)body_mb + 8) /* else a body of the largest size could never be taken */
        return cli_usage_error("serve", "--max-request-memory-mb %d is less than 3 x --max-body-mb + 8 = %d", mem_mb,
                               3 * body_mb + 8);
    lo.threads = threads;

    /* Blocked before any thread exists, so every thread (OpenMP's too)
     * inherits the mask and only server_run's sigwait sees the signals. */
#ifdef __GLIBC__
    /* One malloc arena for every thread: with sdc_tune_allocator's trim
     * threshold a per-thread arena keeps what its largest request held (the
     * server handles each connection on a thread of its own: measured +75 MiB
     * after rounds of 8 MB bodies), while one arena is returned to the system
     * by the server's malloc_trim after each large request. */
    mallopt(M_ARENA_MAX, 1);
#endif
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    sdc_model *m;
    if (sdc_model_load(&m, model, &lo)) {
        fprintf(stderr, "sdc: %s\n", sdc_last_error());
        return 1;
    }
    int rc = server_run(m, model, &cfg);
    sdc_model_free(m);
    return rc;
}
