/* cmd_tokenize.c - `sdc tokenize`: the 77 CLIP token ids of a text, the way
 * people count prompt tokens, or (--prompt-syntax a1111) the chunks and
 * weights AUTOMATIC1111 makes of it. "-" reads the text from stdin byte for
 * byte. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sdc.h"

static void help(void) {
    printf("usage: sdc tokenize (--tokenizer DIR | -m MODEL) [--prompt-syntax plain|a1111] [--json] (TEXT | -)\n"
           "\n"
           "Print the CLIP token ids of TEXT (bos + tokens + eos, truncated and padded to 77).\n"
           "  --tokenizer DIR   folder with vocab.json, merges.txt, tokenizer_config.json\n"
           "  -m, --model PATH  diffusers folder: uses its tokenizer/ subfolder\n"
           "  --prompt-syntax S plain (default): the text as diffusers tokenizes it; a1111: AUTOMATIC1111's\n"
           "                    syntax ((x), (x:1.2), [x], BREAK): one line of 77 ids per 75-token chunk\n"
           "  --json            print {\"tokens\": [...], \"untruncated_ids\": [...], \"input_ids\": [...]};\n"
           "                    with a1111: {\"fragments\": [{\"text\", \"weight\", \"tokens\"}], \"chunks\":\n"
           "                    [{\"input_ids\", \"multipliers\"}], \"token_count\"}\n"
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

/* a float32 as its shortest round-trip decimal (1.1, not 1.100000023841858) */
static cJSON *json_float(float v) {
    char b[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, (double)v);
        if (strtof(b, NULL) == v) break;
    }
    return cJSON_CreateRaw(b);
}

/* a double as its shortest round-trip decimal (1.2100000000000002 stays so) */
static cJSON *json_double(double v) {
    char b[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, v);
        if (strtod(b, NULL) == v) break;
    }
    return cJSON_CreateRaw(b);
}

static void print_a1111(const sdc_a1111_tokens *k, int json) {
    if (!json) {
        for (int c = 0; c < k->nchunks; c++) {
            for (int i = 0; i < 77; i++) printf(i ? " %lld" : "%lld", (long long)k->chunk_ids[c * 77 + i]);
            printf("\n");
        }
        return;
    }
    cJSON *o = cJSON_CreateObject(), *fr = cJSON_AddArrayToObject(o, "fragments");
    for (int f = 0; f < k->nfragments; f++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "text", k->fragment_text[f]);
        cJSON_AddItemToObject(e, "weight", json_double(k->fragment_weight[f]));
        cJSON *t = cJSON_AddArrayToObject(e, "tokens");
        for (int i = 0; i < k->fragment_ntokens[f]; i++)
            cJSON_AddItemToArray(t, cJSON_CreateString(k->fragment_tokens[f][i]));
        cJSON_AddItemToArray(fr, e);
    }
    cJSON *ch = cJSON_AddArrayToObject(o, "chunks");
    for (int c = 0; c < k->nchunks; c++) {
        cJSON *e = cJSON_CreateObject(), *ids = cJSON_AddArrayToObject(e, "input_ids"),
              *mu = cJSON_AddArrayToObject(e, "multipliers");
        for (int i = 0; i < 77; i++) {
            cJSON_AddItemToArray(ids, cJSON_CreateNumber((double)k->chunk_ids[c * 77 + i]));
            cJSON_AddItemToArray(mu, json_float(k->chunk_multipliers[c * 77 + i]));
        }
        cJSON_AddItemToArray(ch, e);
    }
    cJSON_AddNumberToObject(o, "token_count", k->token_count);
    char *s = cJSON_PrintUnformatted(o);
    if (s) printf("%s\n", s);
    free(s);
    cJSON_Delete(o);
}

int cmd_tokenize(int argc, char **argv) {
    static const struct option opts[] = {{"tokenizer", required_argument, 0, 't'},
                                         {"model", required_argument, 0, 'm'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {"prompt-syntax", required_argument, 0, 's'},
                                         {0, 0, 0, 0}};
    const char *dir = NULL, *model = NULL;
    int json = 0, a1111 = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:h", opts, NULL)) != -1) {
        switch (c) {
        case 't': dir = optarg; break;
        case 'm': model = optarg; break;
        case 'j': json = 1; break;
        case 's':
            if (strcmp(optarg, "plain") && strcmp(optarg, "a1111"))
                return cli_usage_error("tokenize", "--prompt-syntax must be plain or a1111, got '%s'", optarg);
            a1111 = !strcmp(optarg, "a1111");
            break;
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
    sdc_a1111_tokens ka;
    if (a1111) {
        if (sdc_tokenize_a1111(tok, text, len, &ka)) {
            fprintf(stderr, "sdc: %s\n", sdc_last_error());
            rc = 1;
        } else {
            print_a1111(&ka, json);
            sdc_a1111_tokens_free(&ka);
        }
    } else if (sdc_tokenize(tok, text, len, &k)) {
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
    if (!rc && !a1111) sdc_tokens_free(&k);
    free(owned);
    sdc_tokenizer_free(tok);
    return rc;
}
