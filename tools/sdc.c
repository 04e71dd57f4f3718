/* sdc.c - the command-line program: dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "sdc.h"

static void usage(FILE *f) {
    fprintf(f,
            "sdc - Stable Diffusion text-to-image, numerically faithful to diffusers\n"
            "\n"
            "usage: sdc <command> [options]\n"
            "\n"
            "commands:\n"
            "  generate   text to image (sdc generate -m MODEL -p PROMPT -o out.png)\n"
            "  tokenize   print the CLIP token ids of a text\n"
            "  info       what a model is: family, prediction, components, sizes (sdc info -m MODEL)\n"
            "  dataset    many images from a prompts file, resumable and sharded (sdc dataset --help)\n"
            "  serve      HTTP server: AUTOMATIC1111-compatible API and a web page (sdc serve -m MODEL)\n"
            "  convert    a model folder saved with int8 weights (sdc convert -m MODEL --weights q8 -o DIR)\n"
            "\n"
            "Run 'sdc <command> --help' for the options of a command.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    sdc_tune_allocator();
    if (!strcmp(argv[1], "generate")) return cmd_generate(argc - 1, argv + 1);
    if (!strcmp(argv[1], "tokenize")) return cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(argv[1], "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(argv[1], "dataset")) return cmd_dataset(argc - 1, argv + 1);
    if (!strcmp(argv[1], "serve")) return cmd_serve(argc - 1, argv + 1);
    if (!strcmp(argv[1], "convert")) return cmd_convert(argc - 1, argv + 1);
    fprintf(stderr, "sdc: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
