/* cmd_convert.c - `sdc convert`: a diffusers folder written again with int8
 * (q8) UNet and text encoder weights (sdc_model_convert), so that later
 * loads map the int8 weights instead of quantising the float ones. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "sdc.h"

static void help(void) {
    printf("usage: sdc convert -m MODEL --weights q8 -o DIR [options]\n"
           "\n"
           "Write the diffusers folder MODEL to the new folder DIR with its UNet's and text encoders'\n"
           "layer weights stored int8 (sdc's q8 blocks; only sdc reads them). The other files are\n"
           "copied. 'sdc generate -m DIR' then loads the int8 weights as they are, with or without\n"
           "--weights q8, and gives the same images as '--weights q8' on MODEL.\n"
           "  -m, --model DIR       diffusers folder (single-file checkpoints: not yet)\n"
           "  --weights q8          the target (the only one)\n"
           "  -o, --output DIR      the new folder (must not hold a model)\n"
           "  --variant fp16        read *.fp16.safetensors weights where a component has them\n"
           "  --lora PATH[:SCALE]   fuse a LoRA into the float weights before quantising (repeatable)\n"
           "  --threads N           CPU threads (default: all cores)\n");
}

int cmd_convert(int argc, char **argv) {
    enum { O_WEIGHTS = 256, O_VARIANT, O_LORA, O_THREADS };
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"output", required_argument, 0, 'o'},
                                         {"weights", required_argument, 0, O_WEIGHTS},
                                         {"variant", required_argument, 0, O_VARIANT},
                                         {"lora", required_argument, 0, O_LORA},
                                         {"threads", required_argument, 0, O_THREADS},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    static cli_loras loras; /* static: PATH_MAX per LoRA */
    loras.n = 0;
    sdc_load_options lo = {0};
    const char *model = NULL, *out = NULL;
    int c, threads = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'o': out = optarg; break;
        case O_WEIGHTS:
            if (!cli_weights("convert", optarg, &lo.weights)) return EXIT_USAGE;
            break;
        case O_VARIANT: lo.variant = optarg; break;
        case O_LORA:
            if (!cli_lora("convert", optarg, &loras)) return EXIT_USAGE;
            break;
        case O_THREADS:
            if (!cli_int("--threads", optarg, 1, 1024, &threads)) return EXIT_USAGE;
            break;
        case 'h': help(); return 0;
        case ':': return cli_usage_error("convert", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("convert", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("convert", "unexpected argument '%s'", argv[optind]);
    if (!model || !out) return cli_usage_error("convert", "give -m MODEL and -o DIR");
    if (!lo.weights) return cli_usage_error("convert", "give the target: --weights q8");
    if (lo.variant && strcmp(lo.variant, "fp16"))
        return cli_usage_error("convert", "--variant must be fp16, got '%s'", lo.variant);
    lo.threads = threads;
    lo.loras = loras.paths;
    lo.lora_scales = loras.scales;
    lo.nloras = loras.n;
    if (sdc_model_convert(model, out, &lo)) {
        fprintf(stderr, "sdc: %s\n", sdc_last_error());
        return 1;
    }
    return 0;
}
