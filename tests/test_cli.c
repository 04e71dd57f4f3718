/* test_cli.c - the command-line contract: exit codes (0 ok, 1 error,
 * 2 usage), one clear line on stderr, no PNG left behind on failure, and
 * `sdc tokenize` against the tokenizer goldens. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "io/json.h"
#include "io/safetensors.h"

static int exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* copy the tiny-sd folder so a test can break one file of it */
static const char *copy_model(const char *name) {
    static char dst[512];
    char cmd[2048];
    snprintf(dst, sizeof dst, "%s", tmp_path(name));
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s' && chmod -R u+w '%s'", dst,
             fixture_path("models/tiny-sd"), dst, dst);
    return system(cmd) == 0 ? dst : NULL;
}

#define GEN "%s generate --quiet --steps 2 -W 64 -H 64 --seed 1 -p cat "

TEST(cli_generate_usage_errors_exit_2) {
    const char *bad[] = {
        "-m x --steps 0",                       /* steps out of range */
        "-m x --steps 5000",
        "-m x --steps abc",
        "-m x -W 65",                           /* not a multiple of 8 */
        "-m x -W 100000",
        "-m x --guidance nan",
        "-m x --seed -3",
        "-m x --eta 2",
        "-m x --bogus-flag",
        "-m x --variant fp8",
        "-m x --device tpu",
        "-m x --batch 0",
        "-m x extra-positional",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char cmd[1024], out[4096];
        snprintf(cmd, sizeof cmd, GEN "%s -o %s", sdc_binary(), bad[i], tmp_path("usage.png"));
        int rc = run_cmd(cmd, out, sizeof out);
        CHECK(rc == 2, "'%s' exited %d, want 2: %s", bad[i], rc, out);
        CHECK(strstr(out, "sdc: "), "'%s': no message: %s", bad[i], out);
        CHECK(!exists(tmp_path("usage.png")), "'%s' left a PNG", bad[i]);
    }
    char out[16384], cmd[512];
    snprintf(cmd, sizeof cmd, "%s generate --help", sdc_binary());
    CHECK(run_cmd(cmd, out, sizeof out) == 0 && strstr(out, "--scheduler") && strstr(out, "--dump"), "--help: %s", out);
    snprintf(cmd, sizeof cmd, "%s frobnicate", sdc_binary());
    CHECK(run_cmd(cmd, out, sizeof out) == 2, "unknown command accepted");
}

/* each broken model must fail with exit 1, a message naming the problem, and no PNG */
TEST(cli_generate_bad_models_exit_1) {
    struct {
        const char *what, *prep, *expect;
    } cases[] = {
        {"missing folder", "rm -rf M", "not found"},
        {"no model_index", "rm M/model_index.json", "model_index.json"},
        {"missing component", "rm -rf M/vae", "vae"},
        {"truncated unet", "truncate -s 100000 M/unet/diffusion_pytorch_model.safetensors", "diffusion_pytorch_model"},
        {"garbled unet header", "printf 'garbage!' | dd of=M/unet/diffusion_pytorch_model.safetensors bs=1 seek=8 conv=notrunc 2>/dev/null", "diffusion_pytorch_model"},
        {"garbled config", "echo '{\"block_out_channels\": [32, 64' > M/unet/config.json", "config.json"},
        {"wrong shape config", "sed -i 's/\"cross_attention_dim\": 64/\"cross_attention_dim\": 48/' M/unet/config.json", "has shape"},
        {"truncated vocab", "truncate -s 100 M/tokenizer/vocab.json", "vocab.json"},
        {"bad scheduler config", "echo '{\"_class_name\": \"FooScheduler\"}' > M/scheduler/scheduler_config.json", "FooScheduler"},
        {"pickle weights only", "mv M/vae/diffusion_pytorch_model.safetensors M/vae/diffusion_pytorch_model.bin", ".bin"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *m = copy_model("broken");
        CHECK(m, "copy failed");
        char prep[2048], cmd[2048], out[4096], png[512];
        /* substitute M with the model path */
        const char *s = cases[i].prep;
        size_t o = 0;
        for (; *s && o + 600 < sizeof prep; s++) {
            if (*s == 'M' && (s[1] == '/' || s[1] == 0 || s[1] == ' ')) o += (size_t)snprintf(prep + o, sizeof prep - o, "%s", m);
            else prep[o++] = *s;
        }
        prep[o] = 0;
        CHECK(system(prep) == 0, "prep failed: %s", prep);
        snprintf(png, sizeof png, "%s", tmp_path("broken.png"));
        snprintf(cmd, sizeof cmd, GEN "-m '%s' -o '%s'", sdc_binary(), m, png);
        int rc = run_cmd(cmd, out, sizeof out);
        CHECK(rc == 1, "%s: exit %d, want 1: %s", cases[i].what, rc, out);
        CHECK(strstr(out, cases[i].expect), "%s: message lacks '%s': %s", cases[i].what, cases[i].expect, out);
        CHECK(!strchr(out, '\n') || strchr(out, '\n') == out + strlen(out) - 1, "%s: more than one line: %s",
              cases[i].what, out);
        CHECK(!exists(png), "%s: left a PNG", cases[i].what);
    }
}

TEST(cli_generate_bad_requests_exit_1) {
    const char *model = fixture_path("models/tiny-sd");
    struct {
        const char *flags, *expect;
    } cases[] = {
        {"--scheduler dpm_fast", "dpm_fast"},
        {"--timestep-spacing sideways", "sideways"},
        {"-o /nonexistent-dir/x.png", "/nonexistent-dir/x.png"},
        {"--dump /nonexistent-dir/x.safetensors", "/nonexistent-dir"},
        {"-n a -n b", "negative"},
        {"--scheduler ddim --karras", "--karras"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[2048], out[4096];
        snprintf(cmd, sizeof cmd, GEN "-m '%s' -o '%s' %s", sdc_binary(), model, tmp_path("req.png"), cases[i].flags);
        int rc = run_cmd(cmd, out, sizeof out);
        CHECK(rc == 1 || rc == 2, "'%s': exit %d: %s", cases[i].flags, rc, out);
        CHECK(strstr(out, cases[i].expect), "'%s': message lacks '%s': %s", cases[i].flags, cases[i].expect, out);
        CHECK(!exists(tmp_path("req.png")), "'%s' left a PNG", cases[i].flags);
    }
}

TEST(cli_generate_output_names_and_dump) {
    char cmd[2048], out[4096];
    const char *dir = tmp_path("names");
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && " GEN "--batch 2 -m '%s' -o '%s/img.png' --dump '%s/d.safetensors'",
             dir, sdc_binary(), fixture_path("models/tiny-sd"), dir, dir);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "failed: %s", out);
    char p[600];
    snprintf(p, sizeof p, "%s/img-0.png", dir);
    CHECK(exists(p), "missing %s", p);
    snprintf(p, sizeof p, "%s/img-1.png", dir);
    CHECK(exists(p), "missing %s", p);
    snprintf(p, sizeof p, "%s/d.safetensors", dir);
    CHECK(exists(p), "missing %s", p);
    snprintf(cmd, sizeof cmd, GEN "-m '%s' -o '%s/s{seed}-{index}.png'", sdc_binary(), fixture_path("models/tiny-sd"), dir);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "failed: %s", out);
    snprintf(p, sizeof p, "%s/s1-0.png", dir);
    CHECK(exists(p), "missing %s", p);
}

/* sdc tokenize --json against every tokenizer golden */
TEST(cli_tokenize_matches_goldens) {
    cJSON *j;
    CHECK_OK(json_load(fixture_path("units/tokenizer.json"), &j));
    const cJSON *e;
    int n = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "entries")) {
        const char *text = cJSON_GetObjectItem(e, "text")->valuestring;
        /* cJSON cuts strings at \u0000: prompts with control characters are covered by test_tokenizer.c */
        int ctrl = 0;
        for (const char *c = text; *c; c++) ctrl |= (unsigned char)*c < 0x20 && *c != '\t' && *c != '\n' && *c != '\r';
        if (ctrl) continue;
        char *want = cJSON_PrintUnformatted(cJSON_GetObjectItem(e, "input_ids_pad_eot"));
        char tf[600], cmd[2048], out[8192];
        snprintf(tf, sizeof tf, "%s", tmp_path("prompt.txt"));
        FILE *f = fopen(tf, "wb");
        fputs(text, f);
        fclose(f);
        snprintf(cmd, sizeof cmd, "%s tokenize -m '%s' --json - < '%s'", sdc_binary(), fixture_path("models/tiny-sd"), tf);
        int rc = run_cmd(cmd, out, sizeof out);
        cJSON *got = cJSON_Parse(out);
        char *have = got ? cJSON_PrintUnformatted(cJSON_GetObjectItem(got, "input_ids")) : NULL;
        int same = have && !strcmp(have, want);
        free(have);
        cJSON_Delete(got);
        free(want);
        if (rc != 0 || !same) {
            cJSON_Delete(j);
            CHECK(0, "tokenize '%s': exit %d, output %s", text, rc, out);
        }
        n++;
    }
    cJSON_Delete(j);
    CHECK(n >= 30, "only %d prompts checked", n);
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer '%s' 'a photo of a cat'", sdc_binary(),
             fixture_path("vocab-tiny"));
    CHECK(run_cmd(cmd, out, sizeof out) == 0 && !strncmp(out, "1112 320 600 538 320 565 339 1113 1113 ", 39),
          "plain output: %s", out);
    snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer /nonexistent cat", sdc_binary());
    CHECK(run_cmd(cmd, out, sizeof out) == 1 && strstr(out, "/nonexistent"), "missing tokenizer: %s", out);
    snprintf(cmd, sizeof cmd, "%s tokenize cat", sdc_binary());
    CHECK(run_cmd(cmd, out, sizeof out) == 2, "no tokenizer accepted: %s", out);
}

/* --dtype: bf16 runs where the CPU has AVX512_BF16 and stays within a few
 * levels of f32 (it must differ: the flag has to reach the kernels); f16 is
 * a CUDA-only precision and says so. */
TEST(cli_generate_dtype) {
    char cmd[2048], out[4096];
    const char *model = fixture_path("models/tiny-sd");
    snprintf(cmd, sizeof cmd, GEN "-m '%s' -o '%s' --dtype f16", sdc_binary(), model, tmp_path("f16.png"));
    CHECK(run_cmd(cmd, out, sizeof out) == 1 && strstr(out, "f16") && strstr(out, "CUDA"), "--dtype f16: %s", out);
    CHECK(!exists(tmp_path("f16.png")), "--dtype f16 left a PNG");
    const char *dt[2] = {"f32", "bf16"};
    char dumps[2][512];
    for (int i = 0; i < 2; i++) {
        snprintf(dumps[i], sizeof dumps[i], "%s", tmp_path(i ? "bf16.safetensors" : "f32.safetensors"));
        snprintf(cmd, sizeof cmd, GEN "-m '%s' -o '%s' --dtype %s --dump '%s'", sdc_binary(), model,
                 tmp_path("dt.png"), dt[i], dumps[i]);
        int rc = run_cmd(cmd, out, sizeof out);
        if (i == 1 && rc == 1 && strstr(out, "AVX512_BF16")) SKIP("this CPU has no AVX512_BF16: %s", out);
        CHECK(rc == 0, "--dtype %s: exit %d: %s", dt[i], rc, out);
    }
    st_file a, b;
    CHECK_OK(st_open(&a, dumps[0]));
    if (st_open(&b, dumps[1])) {
        st_close(&a);
        CHECK(0, "cannot read %s", dumps[1]);
    }
    const st_tensor *x = st_find(&a, "decoded"), *y = st_find(&b, "decoded");
    double md = -1;
    if (x && y && x->numel == y->numel && x->dtype == ST_F32 && y->dtype == ST_F32) {
        md = 0;
        for (int64_t i = 0; i < x->numel; i++) {
            double d = fabs((double)((const float *)x->data)[i] - ((const float *)y->data)[i]);
            if (!(d <= md)) md = d; /* NaN propagates as a failure */
        }
    }
    st_close(&a);
    st_close(&b);
    if (getenv("SDC_TEST_VERBOSE")) printf("      bf16 vs f32 decoded image: max |diff| %.3g (range -1..1)\n", md);
    CHECK(md > 0 && md < 0.1, "bf16 vs f32 decoded max |diff| %g, want in (0, 0.1)", md);
}

/* A model that overflows (here: a NaN planted in the VAE's last bias) is
 * reported as such, exit 1, and no PNG is written (not a black image). */
TEST(cli_generate_nan_image_reported) {
    const char *dir = copy_model("nan-model");
    CHECK(dir, "cannot copy the model");
    char src[600], dst[600];
    snprintf(src, sizeof src, "%s/vae/diffusion_pytorch_model.safetensors", dir);
    snprintf(dst, sizeof dst, "%s.new", src);
    st_file f;
    CHECK_OK(st_open(&f, src));
    st_writer *w = st_writer_new();
    float *nan_bias = NULL;
    sdc_status st = w ? SDC_OK : SDC_ERR_NOMEM;
    for (int i = 0; !st && i < f.n; i++) {
        const st_tensor *t = &f.tensors[i];
        if (!strcmp(t->name, "decoder.conv_out.bias")) {
            nan_bias = malloc((size_t)t->numel * sizeof(float));
            if (!nan_bias) st = SDC_ERR_NOMEM;
            for (int64_t k = 0; nan_bias && k < t->numel; k++) nan_bias[k] = NAN;
            if (!st) st = st_writer_add(w, t->name, ST_F32, t->ndim, t->shape, nan_bias);
        } else {
            st = st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
        }
    }
    if (!st) st = st_writer_save(w, dst);
    st_writer_free(w);
    st_close(&f);
    free(nan_bias);
    CHECK(!st && rename(dst, src) == 0, "cannot write the NaN model");
    char cmd[2048], out[4096];
    snprintf(cmd, sizeof cmd, GEN "-m '%s' -o '%s'", sdc_binary(), dir, tmp_path("nan.png"));
    int rc = run_cmd(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "NaN"), "exit %d: %s", rc, out);
    CHECK(!exists(tmp_path("nan.png")), "a PNG was written for a NaN image");
}
