/* cmd_tokenize.c - `sdc tokenize`: the 77 CLIP token ids of a text, the way
 * people count prompt tokens. "-" reads the text from stdin byte for byte. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sdc.h"

static void help(void) {
    printf("usage: sdc tokenize (--tokenizer DIR | -m MODEL) [--json] (TEXT | -)\n"
           "\n"
           "Print the CLIP token ids of TEXT (bos + tokens + eos, truncated and padded to 77).\n"
           "  --tokenizer DIR   folder with vocab.json, merges.txt, tokenizer_config.json\n"
           "  -m, --model PATH  diffusers folder: uses its tokenizer/ subfolder\n"
           "  --json            print {\"tokens\": [...], \"untruncated_ids\": [...], \"input_ids\": [...]}\n"
           "  TEXT | -          the text, or - to read it from stdin\n");
}

static char *read_stdin(size_t *len) {
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, stdin);
        n += r;
        if (r == 0) break;
        if (n == cap) {
            if (cap >= (64u << 20)) break;
            char *nb = realloc(b, cap *= 2);
            if (!nb) { free(b); return NULL; }
            b = nb;
        }
    }
    *len = n;
    return b;
}

int cmd_tokenize(int argc, char **argv) {
    static const struct option opts[] = {{"tokenizer", required_argument, 0, 't'}, {"model", required_argument, 0, 'm'},
                                         {"json", no_argument, 0, 'j'},           {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *dir = NULL, *model = NULL;
    int json = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:h", opts, NULL)) != -1) {
        switch (c) {
        case 't': dir = optarg; break;
        case 'm': model = optarg; break;
        case 'j': json = 1; break;
        case 'h': help(); return 0;
        case ':': return cli_usage_error("tokenize", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("tokenize", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!dir && !model) return cli_usage_error("tokenize", "give --tokenizer DIR or -m MODEL");
    if (dir && model) return cli_usage_error("tokenize", "give only one of --tokenizer and -m");
    if (optind != argc - 1) return cli_usage_error("tokenize", "give exactly one TEXT (or - for stdin)");
    char path[4096];
    if (model) snprintf(path, sizeof path, "%s/tokenizer", model);
    else snprintf(path, sizeof path, "%s", dir);
    sdc_tokenizer *tok;
    if (sdc_tokenizer_load(&tok, path)) {
        fprintf(stderr, "sdc: %s\n", sdc_last_error());
        return 1;
    }
    const char *text = argv[optind];
    char *owned = NULL;
    size_t len = strlen(text);
    if (!strcmp(text, "-")) {
        if (!(owned = read_stdin(&len))) {
            fprintf(stderr, "sdc: cannot read stdin\n");
            sdc_tokenizer_free(tok);
            return 1;
        }
        text = owned;
    }
    int rc = 0;
    sdc_tokens k;
    if (sdc_tokenize(tok, text, len, &k)) {
        fprintf(stderr, "sdc: %s\n", sdc_last_error());
        rc = 1;
    } else if (json) {
        cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "tokens");
        for (int i = 0; i < k.n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(k.tokens[i]));
        a = cJSON_AddArrayToObject(o, "untruncated_ids");
        for (int i = 0; i < k.nuntruncated; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)k.untruncated_ids[i]));
        a = cJSON_AddArrayToObject(o, "input_ids");
        for (int i = 0; i < k.max_length; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)k.input_ids[i]));
        char *s = cJSON_PrintUnformatted(o);
        printf("%s\n", s);
        free(s);
        cJSON_Delete(o);
    } else {
        for (int i = 0; i < k.max_length; i++) printf(i ? " %lld" : "%lld", (long long)k.input_ids[i]);
        printf("\n");
    }
    if (!rc) sdc_tokens_free(&k);
    free(owned);
    sdc_tokenizer_free(tok);
    return rc;
}
