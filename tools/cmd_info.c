/* cmd_info.c - `sdc info`: what a model is (family, prediction type, default
 * scheduler and size, components with parameter counts, dtypes and sizes,
 * LoRA-targetable modules), read from configs and safetensors headers only:
 * nothing is loaded or computed, so it is quick even for SDXL. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sdc.h"

static void help(void) {
    printf("usage: sdc info -m MODEL [--json] [--config DIR] [--tokenizer DIR] [--prediction epsilon|v]\n"
           "\n"
           "Describe a diffusers folder or a single-file checkpoint without loading it: family\n"
           "(SD 1.x, SD 2.x, SDXL), prediction type and where it comes from, default scheduler and\n"
           "image size, each component's parameter count, dtypes and size, the modules a LoRA can\n"
           "target, and for single files the configs and tokenizers a load would use.\n"
           "  -m, --model PATH   diffusers folder or .safetensors checkpoint\n"
           "  --json             one JSON object instead of text\n"
           "  --config DIR, --tokenizer DIR, --prediction P, --variant fp16\n"
           "                     as for 'sdc generate'\n");
}

static void human_count(int64_t n, char *out, size_t len) {
    if (n >= 1000000000) snprintf(out, len, "%.2f G", (double)n / 1e9);
    else if (n >= 1000000) snprintf(out, len, "%.2f M", (double)n / 1e6);
    else if (n >= 10000) snprintf(out, len, "%.1f k", (double)n / 1e3);
    else snprintf(out, len, "%lld", (long long)n);
}

static void human_bytes(int64_t n, char *out, size_t len) {
    if (n >= (1LL << 30)) snprintf(out, len, "%.2f GiB", (double)n / (double)(1LL << 30));
    else if (n >= (1LL << 20)) snprintf(out, len, "%.1f MiB", (double)n / (double)(1LL << 20));
    else if (n >= (1LL << 10)) snprintf(out, len, "%.1f KiB", (double)n / 1024.0);
    else snprintf(out, len, "%lld B", (long long)n);
}

static void print_text(const char *path, const sdc_model_report *r) {
    char a[32], b[32];
    human_bytes(r->file_bytes, a, sizeof a);
    printf("%s\n", path);
    printf("  format        %s (%s)\n", r->single_file ? "single-file checkpoint" : "diffusers folder", a);
    printf("  family        %s (%s)\n", r->family_title, r->pipeline);
    printf("  configs       %s\n", r->configs);
    printf("  prediction    %s (%s)\n", r->prediction, r->prediction_source);
    printf("  scheduler     %s (%s)\n", r->scheduler, r->scheduler_class);
    printf("  default size  %dx%d\n", r->width, r->height);
    printf("  %-16s %11s %8s  %-10s %11s %6s  %s\n", "component", "parameters", "tensors", "dtypes", "size", "LoRA",
           "source");
    for (int i = 0; i < r->ncomp; i++) {
        const sdc_component_report *c = &r->comp[i];
        human_count(c->params, a, sizeof a);
        human_bytes(c->bytes, b, sizeof b);
        printf("  %-16s %11s %8lld  %-10s %11s %6d  %s\n", c->name, a, (long long)c->tensors, c->dtypes, b,
               c->lora_targets, c->source);
    }
    printf("  LoRA targets  %d modules %s\n", r->lora_targets,
           r->lora_targets ? "(attention, feed-forward and projection layers a LoRA can change)" : "(none found)");
    if (r->single_file) {
        printf("  ignored       %lld EMA tensors (model_ema.*), %lld others\n", (long long)r->ema_tensors,
               (long long)r->ignored_tensors);
        for (int i = 0; i < r->ntokenizers; i++) printf("  tokenizer%s    %s\n", i ? "_2" : "  ", r->tokenizer[i]);
    }
}

static int print_json(const char *path, const sdc_model_report *r) {
    cJSON *o = cJSON_CreateObject(), *comps = cJSON_CreateArray();
    if (!o || !comps) return 1;
    cJSON_AddStringToObject(o, "path", path);
    cJSON_AddStringToObject(o, "format", r->single_file ? "single_file" : "diffusers");
    cJSON_AddNumberToObject(o, "file_bytes", (double)r->file_bytes);
    cJSON_AddStringToObject(o, "family", r->family);
    cJSON_AddStringToObject(o, "family_title", r->family_title);
    cJSON_AddStringToObject(o, "pipeline", r->pipeline);
    cJSON_AddStringToObject(o, "configs", r->configs);
    cJSON_AddStringToObject(o, "prediction", r->prediction);
    cJSON_AddStringToObject(o, "prediction_source", r->prediction_source);
    cJSON_AddStringToObject(o, "scheduler", r->scheduler);
    cJSON_AddStringToObject(o, "scheduler_class", r->scheduler_class);
    cJSON_AddNumberToObject(o, "default_width", r->width);
    cJSON_AddNumberToObject(o, "default_height", r->height);
    int64_t total = 0;
    for (int i = 0; i < r->ncomp; i++) {
        const sdc_component_report *c = &r->comp[i];
        cJSON *j = cJSON_CreateObject();
        if (!j) break;
        cJSON_AddStringToObject(j, "name", c->name);
        cJSON_AddStringToObject(j, "source", c->source);
        cJSON_AddNumberToObject(j, "params", (double)c->params);
        cJSON_AddNumberToObject(j, "tensors", (double)c->tensors);
        cJSON_AddNumberToObject(j, "bytes", (double)c->bytes);
        cJSON_AddStringToObject(j, "dtypes", c->dtypes);
        cJSON_AddNumberToObject(j, "lora_targets", c->lora_targets);
        cJSON_AddItemToArray(comps, j);
        total += c->params;
    }
    cJSON_AddItemToObject(o, "components", comps);
    cJSON_AddNumberToObject(o, "params", (double)total);
    cJSON_AddNumberToObject(o, "lora_targets", r->lora_targets);
    cJSON_AddBoolToObject(o, "lora_compatible", r->lora_targets > 0);
    if (r->single_file) {
        cJSON_AddNumberToObject(o, "ema_tensors", (double)r->ema_tensors);
        cJSON_AddNumberToObject(o, "ignored_tensors", (double)r->ignored_tensors);
        cJSON *t = cJSON_CreateArray();
        for (int i = 0; t && i < r->ntokenizers; i++) cJSON_AddItemToArray(t, cJSON_CreateString(r->tokenizer[i]));
        cJSON_AddItemToObject(o, "tokenizers", t);
        cJSON_AddBoolToObject(o, "tokenizers_found", r->tokenizers_found == r->ntokenizers);
    }
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    if (!s) return 1;
    printf("%s\n", s);
    free(s);
    return 0;
}

int cmd_info(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},     {"json", no_argument, 0, 'j'},
                                         {"config", required_argument, 0, 'c'},    {"tokenizer", required_argument, 0, 't'},
                                         {"prediction", required_argument, 0, 'p'}, {"variant", required_argument, 0, 'v'},
                                         {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
    const char *model = NULL;
    int json = 0, c;
    sdc_load_options lo = {0};
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'j': json = 1; break;
        case 'c': lo.config_dir = optarg; break;
        case 't': lo.tokenizer_dir = optarg; break;
        case 'p':
            if (strcmp(optarg, "epsilon") && strcmp(optarg, "v") && strcmp(optarg, "v_prediction"))
                return cli_usage_error("info", "--prediction must be epsilon or v, got '%s'", optarg);
            lo.prediction = optarg;
            break;
        case 'v':
            if (strcmp(optarg, "fp16")) return cli_usage_error("info", "--variant must be fp16, got '%s'", optarg);
            lo.variant = optarg;
            break;
        case 'h': help(); return 0;
        case ':': return cli_usage_error("info", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("info", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("info", "unexpected argument '%s'", argv[optind]);
    if (!model) return cli_usage_error("info", "no model given (-m MODEL)");
    sdc_model_report *r = malloc(sizeof *r);
    if (!r) return 1;
    int rc = 0;
    if (sdc_model_inspect(model, &lo, r)) {
        fprintf(stderr, "sdc: %s\n", sdc_last_error());
        rc = 1;
    } else if (json) {
        rc = print_json(model, r);
    } else {
        print_text(model, r);
    }
    free(r);
    return rc;
}
