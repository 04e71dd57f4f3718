/* test_info.c - `sdc info` / model_inspect: a folder and the same weights as
 * a single file are described alike (family, scheduler, per-component
 * parameters and LoRA targets: 332 for tiny-sdxl, as many as its fixture
 * LoRAs change); the built-in configs for a file without --config; the
 * JSON and text output of the command and its errors. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "sdc.h"
#include "harness.h"
#include "io/json.h"

TEST(info_sdxl_folder_equals_single_file) {
    sdc_model_report a, b;
    sdc_load_options lo = {.config_dir = fixture_path("models/tiny-sdxl")};
    CHECK_OK(sdc_model_inspect(fixture_path("models/tiny-sdxl"), NULL, &a));
    CHECK_OK(sdc_model_inspect(fixture_path("models/tiny-sdxl.safetensors"), &lo, &b));
    CHECK(!a.single_file && b.single_file, "formats");
    CHECK(!strcmp(a.family, "sdxl") && !strcmp(b.family, "sdxl"), "family %s / %s", a.family, b.family);
    CHECK(!strcmp(a.scheduler, "euler") && !strcmp(b.scheduler, "euler"), "scheduler %s / %s", a.scheduler, b.scheduler);
    CHECK(!strcmp(a.prediction, "epsilon") && !strcmp(b.prediction, "epsilon"), "prediction");
    CHECK(a.width == 128 && b.width == 128, "default size %d / %d", a.width, b.width);
    CHECK(a.ncomp == 4 && b.ncomp == 4, "components %d / %d", a.ncomp, b.ncomp);
    for (int i = 0; i < 4; i++) {
        CHECK(!strcmp(a.comp[i].name, b.comp[i].name), "component %d: %s / %s", i, a.comp[i].name, b.comp[i].name);
        CHECK(a.comp[i].params == b.comp[i].params && a.comp[i].params > 0, "%s: %lld / %lld params", a.comp[i].name,
              (long long)a.comp[i].params, (long long)b.comp[i].params);
        CHECK(a.comp[i].lora_targets == b.comp[i].lora_targets, "%s: LoRA targets %d / %d", a.comp[i].name,
              a.comp[i].lora_targets, b.comp[i].lora_targets);
        CHECK(!strcmp(a.comp[i].dtypes, "F32") && !strcmp(b.comp[i].dtypes, "F32"), "dtypes");
    }
    /* the fixture LoRAs change 332 modules: every one a LoRA can target */
    CHECK(a.lora_targets == 332 && b.lora_targets == 332, "LoRA targets %d / %d", a.lora_targets, b.lora_targets);
    CHECK(a.comp[0].lora_targets == 302 && a.comp[2].lora_targets == 12 && a.comp[3].lora_targets == 18,
          "unet %d te %d te2 %d", a.comp[0].lora_targets, a.comp[2].lora_targets, a.comp[3].lora_targets);
    CHECK(b.ntokenizers == 2 && b.tokenizers_found == 2, "tokenizers from --config");
    CHECK(b.ema_tensors == 0 && b.ignored_tensors == 0, "nothing ignored in the fixture file");
    CHECK(b.file_bytes > 20000000 && a.file_bytes > 20000000, "file sizes");
}

TEST(info_single_file_builtin_configs) {
    sdc_model_report r;
    CHECK_OK(sdc_model_inspect(fixture_path("models/tiny-sd.safetensors"), NULL, &r));
    CHECK(!strcmp(r.family, "sd1") && strstr(r.configs, "built-in SD 1.5"), "%s / %s", r.family, r.configs);
    CHECK(!strcmp(r.scheduler, "pndm") && !strcmp(r.prediction, "epsilon") && r.width == 512,
          "scheduler %s, prediction %s, size %d", r.scheduler, r.prediction, r.width);
    CHECK(r.lora_targets == 210, "LoRA targets %d (UNet 192 + text encoder 18)", r.lora_targets);
    /* --prediction reaches folders too */
    sdc_load_options lo = {.prediction = "v"};
    CHECK_OK(sdc_model_inspect(fixture_path("models/tiny-sd"), &lo, &r));
    CHECK(!strcmp(r.prediction, "v_prediction") && !strcmp(r.prediction_source, "--prediction"), "%s (%s)",
          r.prediction, r.prediction_source);
}

static int run(const char *cmd, char *out, size_t n) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t k = fread(out, 1, n - 1, p);
    out[k] = 0;
    int rc = pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(info_cli_json) {
    static char out[65536];
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s info -m %s --config %s --json", sdc_binary(),
             fixture_path("models/tiny-sd.safetensors"), fixture_path("models/tiny-sd"));
    int rc = run(cmd, out, sizeof out);
    CHECK(rc == 0, "exit status %d", rc);
    cJSON *j;
    CHECK_OK(json_parse(out, strlen(out), "sdc info --json", &j));
    const cJSON *comps = cJSON_GetObjectItem(j, "components");
    int ok = !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "family")), "sd1") &&
             !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "format")), "single_file") &&
             !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "scheduler")), "pndm") &&
             cJSON_GetObjectItem(j, "default_width")->valueint == 64 && cJSON_GetArraySize(comps) == 3 &&
             cJSON_GetObjectItem(j, "lora_targets")->valueint == 210 &&
             cJSON_IsTrue(cJSON_GetObjectItem(j, "lora_compatible")) &&
             cJSON_IsTrue(cJSON_GetObjectItem(j, "tokenizers_found")) &&
             !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(comps, 0), "dtypes")), "F32");
    cJSON_Delete(j);
    CHECK(ok, "unexpected JSON: %.400s", out);
}

TEST(info_cli_text_and_errors) {
    static char out[65536];
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s info -m %s", sdc_binary(), fixture_path("models/tiny-sdxl"));
    int rc = run(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "SDXL") && strstr(out, "LoRA targets  332") && strstr(out, "text_encoder_2"),
          "exit %d: %.400s", rc, out);
    snprintf(cmd, sizeof cmd, "%s info -m %s 2>&1", sdc_binary(),
             fixture_path("models/loras/tiny-sdxl-lora-peft.safetensors"));
    rc = run(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "is a LoRA"), "LoRA as -m: exit %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s info 2>&1", sdc_binary());
    rc = run(cmd, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "-m MODEL"), "no model: exit %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s info -m /nonexistent/model 2>&1", sdc_binary());
    rc = run(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "not found"), "missing model: exit %d: %s", rc, out);
}
