/* test_dataset.c - batching, `generate --prompts` and `sdc dataset` end to
 * end through the built sdc on the tiny model (64x64, 2 steps, one thread):
 * batched == one by one, kill -9 at many points then resume == an
 * uninterrupted run byte for byte, slices (flags, Slurm and Kubernetes
 * variables) == one run, tar and metadata contents, refused conflicts and
 * malformed input. Kills use SDC_TEST_KILL_AFTER=N:POINT (test-only: the
 * dataset command SIGKILLs itself at POINT of its N-th image), so nothing
 * depends on timing. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset/dataset_config.h"
#include "harness.h"
#include "io/json.h"
#include "io/png_io.h"
#include "sdc.h"

#define FAST "--steps 2 -W 64 -H 64 --threads 1 --quiet"

static int exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* 7 images: a cat x3 (seed 0..2), a dog x1 with its own seed 50, a bird x3 with its own negative prompt
 * (and a non-ASCII prompt: its infotext goes into an iTXt chunk) */
static const char *PROMPTS = "{\"prompt\": \"a cat\", \"count\": 3}\n"
                             "{\"prompt\": \"a dog \\\"on\\\" a hill\", \"seed\": 50, \"count\": 1}\n"
                             "{\"prompt\": \"a bird near a caf\u00e9\", \"negative_prompt\": \"blurry\", \"count\": 3}\n";

static const char *prompts_file(void) {
    static char p[600];
    if (!p[0]) {
        snprintf(p, sizeof p, "%s", tmp_path("dataset-prompts.jsonl"));
        write_text(p, PROMPTS);
    }
    return p;
}

/* `sdc dataset` on the tiny model into dir with extra flags, optionally under env assignments */
static int dataset(const char *env, const char *dir, const char *flags, char *out, size_t n) {
    char cmd[4096];
    /* a test suite run inside a cluster job must not pick up its slice */
    snprintf(cmd, sizeof cmd, "env -u SLURM_ARRAY_TASK_ID -u JOB_COMPLETION_INDEX %s %s dataset -m '%s' --prompts '%s' "
             "--out '%s' " FAST " %s", env ? env : "",
             sdc_binary(), fixture_path("models/tiny-sd"), prompts_file(), dir, flags);
    return run_cmd(cmd, out, n);
}

static int same_tree(const char *a, const char *b, const char *exclude, char *out, size_t n) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "diff -r %s%s '%s' '%s'", exclude ? "-x " : "", exclude ? exclude : "", a, b);
    return run_cmd(cmd, out, n) == 0;
}

/* a finished reference data set per layout, made once */
static const char *reference(const char *name, const char *flags) {
    static char dirs[4][600];
    static const char *names[4];
    for (int i = 0; i < 4; i++)
        if (names[i] && !strcmp(names[i], name)) return dirs[i];
    for (int i = 0; i < 4; i++)
        if (!names[i]) {
            char out[4096];
            snprintf(dirs[i], sizeof dirs[i], "%s", tmp_path(name));
            if (dataset(NULL, dirs[i], flags, out, sizeof out) != 0) {
                fprintf(stderr, "reference %s failed: %s\n", name, out);
                return NULL;
            }
            names[i] = name;
            return dirs[i];
        }
    return NULL;
}

#define IMAGEFOLDER "--batch-size 2"
#define WEBDATASET "--batch-size 2 --format webdataset --shard-size 3"

static void max_pixel_diff(const char *a, const char *b, int *maxd, long *ndiff, int *ok) {
    uint8_t *x, *y;
    int w1, h1, w2, h2;
    *ok = 0;
    if (png_read_rgb(a, &x, &w1, &h1, NULL)) return;
    if (png_read_rgb(b, &y, &w2, &h2, NULL)) {
        free(x);
        return;
    }
    if (w1 == w2 && h1 == h2) {
        *ok = 1;
        for (long i = 0; i < (long)w1 * h1 * 3; i++) {
            int d = abs((int)x[i] - (int)y[i]);
            if (d > *maxd) *maxd = d;
            *ndiff += d != 0;
        }
    }
    free(x);
    free(y);
}

/* --batch-size 1 (chunks of one image) == each image made alone, byte for byte;
 * one UNet batch of 4 == those within 1/255 (float summation order differs) */
TEST(dataset_batched_equals_one_by_one) {
    char cmd[4096], out[4096];
    const char *dir = tmp_path("batching");
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "mkdir");
    const char *model = fixture_path("models/tiny-sd");
    snprintf(cmd, sizeof cmd, "%s generate -m '%s' -p 'a cat' -n 'ugly' --seed 3 --batch 4 --batch-size 4 " FAST
             " -o '%s/all-{index}.png'", sdc_binary(), model, dir);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "batch 4: %s", out);
    snprintf(cmd, sizeof cmd, "%s generate -m '%s' -p 'a cat' -n 'ugly' --seed 3 --batch 4 --batch-size 1 " FAST
             " -o '%s/one-{index}.png'", sdc_binary(), model, dir);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "batch-size 1: %s", out);
    int maxd = 0;
    long ndiff = 0;
    for (int i = 0; i < 4; i++) {
        char a[700], b[700], c[700];
        snprintf(cmd, sizeof cmd, "%s generate -m '%s' -p 'a cat' -n 'ugly' --seed %d " FAST " -o '%s/alone-%d.png'",
                 sdc_binary(), model, 3 + i, dir, i);
        CHECK(run_cmd(cmd, out, sizeof out) == 0, "alone %d: %s", i, out);
        snprintf(a, sizeof a, "%s/one-%d.png", dir, i);
        snprintf(b, sizeof b, "%s/alone-%d.png", dir, i);
        snprintf(c, sizeof c, "%s/all-%d.png", dir, i);
        snprintf(cmd, sizeof cmd, "cmp '%s' '%s'", a, b);
        CHECK(run_cmd(cmd, out, sizeof out) == 0, "image %d: --batch-size 1 differs from the image made alone: %s", i, out);
        int ok;
        max_pixel_diff(a, c, &maxd, &ndiff, &ok);
        CHECK(ok, "image %d unreadable", i);
        char *pa, *pc;
        uint8_t *ra, *rc;
        int w, h;
        CHECK_OK(png_read_rgb(a, &ra, &w, &h, &pa));
        CHECK_OK(png_read_rgb(c, &rc, &w, &h, &pc));
        int same_text = pa && pc && !strcmp(pa, pc);
        free(ra), free(rc), free(pa), free(pc);
        CHECK(same_text, "image %d: infotext differs between batch sizes", i);
    }
    printf("     batch of 4 vs one by one: max |diff| %d/255, %ld of %d channel values differ\n", maxd, ndiff,
           4 * 64 * 64 * 3);
    CHECK(maxd <= 1, "batched images differ by %d/255 from one-by-one ones", maxd);
    /* dumps need one batch; a chunked request refuses them */
    snprintf(cmd, sizeof cmd, "%s generate -m '%s' -p cat --seed 3 --batch 2 --batch-size 1 " FAST
             " -o '%s/d.png' --dump '%s/d.safetensors'", sdc_binary(), model, dir, dir);
    CHECK(run_cmd(cmd, out, sizeof out) == 1 && strstr(out, "batch size"), "dump with chunks: %s", out);
}

/* generate --prompts names images by index over the file and makes the same PNGs as the data set */
TEST(dataset_generate_prompts_matches_dataset) {
    char cmd[4096], out[8192];
    const char *dir = tmp_path("genprompts"), *ds = tmp_path("genprompts-ds");
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && %s generate -m '%s' --prompts '%s' --seed 0 --batch-size 1 " FAST
             " -o '%s/img-{index}.png'", dir, sdc_binary(), fixture_path("models/tiny-sd"), prompts_file(), dir);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "generate --prompts: %s", out);
    CHECK(dataset(NULL, ds, "--batch-size 1", out, sizeof out) == 0, "dataset: %s", out);
    for (int i = 0; i < 7; i++) {
        snprintf(cmd, sizeof cmd, "cmp '%s/img-%d.png' '%s/train/%08d.png'", dir, i, ds, i);
        CHECK(run_cmd(cmd, out, sizeof out) == 0, "image %d differs: %s", i, out);
    }
    snprintf(cmd, sizeof cmd, "%s/img-7.png", dir);
    CHECK(!exists(cmd), "an eighth image was made");
    /* without --batch-size each line runs as its own batch; seeds still follow the index */
    snprintf(cmd, sizeof cmd, "%s generate -m '%s' --prompts '%s' --seed 0 " FAST " -o '%s/b-{seed}.png'",
             sdc_binary(), fixture_path("models/tiny-sd"), prompts_file(), dir);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "generate --prompts: %s", out);
    const int seeds[7] = {0, 1, 2, 50, 4, 5, 6};
    for (int i = 0; i < 7; i++) {
        snprintf(cmd, sizeof cmd, "%s/b-%d.png", dir, seeds[i]);
        CHECK(exists(cmd), "missing %s", cmd);
    }
    snprintf(cmd, sizeof cmd, "%s generate -m x -p a --prompts '%s' " FAST, sdc_binary(), prompts_file());
    CHECK(run_cmd(cmd, out, sizeof out) == 2 && strstr(out, "cannot be combined"), "-p with --prompts: %s", out);
}

/* kill -9 at each point of several images, then rerun: the folder equals an uninterrupted run */
static void kill_and_resume(const char *name, const char *ref, const char *flags, const char *const *kills,
                            int nkills) {
    for (int k = 0; k < nkills; k++) {
        char dir[600], env[128], out[4096], diff[8192];
        snprintf(dir, sizeof dir, "%s-%d", tmp_path(name), k);
        const char *s = kills[k];
        int runs = 0;
        while (*s) { /* "3:write" or "2:file,1:line": one killed run per item */
            size_t len = strcspn(s, ",");
            snprintf(env, sizeof env, "SDC_TEST_KILL_AFTER=%.*s", (int)len, s);
            int rc = dataset(env, dir, flags, out, sizeof out);
            CHECK(rc == 128 + 9 || rc == 137, "%s (%s): exit %d, want SIGKILL: %s", env, flags, rc, out);
            s += len + (s[len] == ',');
            runs++;
        }
        int rc = dataset(NULL, dir, flags, out, sizeof out);
        CHECK(rc == 0, "resume after %s (%s): exit %d: %s", kills[k], flags, rc, out);
        CHECK(same_tree(ref, dir, NULL, diff, sizeof diff), "after kills %s (%s) the folder differs:\n%s", kills[k],
              flags, diff);
        CHECK(runs > 0, "no kill");
    }
}

TEST(dataset_imagefolder_kill_resume_byte_for_byte) {
    const char *ref = reference("ref-imagefolder", IMAGEFOLDER);
    CHECK(ref, "reference run failed");
    static const char *const kills[] = {"1:write", "2:file", "3:line", "4:done", "7:write", "7:line",
                                        "2:line,1:write,3:file"};
    kill_and_resume("killed-if", ref, IMAGEFOLDER, kills, (int)(sizeof kills / sizeof kills[0]));
}

TEST(dataset_webdataset_kill_resume_byte_for_byte) {
    const char *ref = reference("ref-webdataset", WEBDATASET);
    CHECK(ref, "reference run failed");
    static const char *const kills[] = {"1:write", "2:line", "3:file", "3:close", "5:write", "7:close",
                                        "4:write,3:close,1:line"};
    kill_and_resume("killed-wds", ref, WEBDATASET, kills, (int)(sizeof kills / sizeof kills[0]));
}

/* slices from --shard, Slurm's and Kubernetes' variables; resumed with another slicing: the union is one run */
TEST(dataset_three_shards_equal_one_run) {
    char out[4096], diff[8192];
    const char *ref = reference("ref-imagefolder", IMAGEFOLDER);
    CHECK(ref, "reference run failed");
    const char *dir = tmp_path("sliced");
    CHECK(dataset(NULL, dir, IMAGEFOLDER " --shard 0/3", out, sizeof out) == 0, "slice 0: %s", out);
    CHECK(dataset("SLURM_ARRAY_TASK_ID=5 SLURM_ARRAY_TASK_COUNT=3 SLURM_ARRAY_TASK_MIN=4", dir, IMAGEFOLDER, out,
                  sizeof out) == 0, "Slurm slice 1: %s", out);
    CHECK(!same_tree(ref, dir, "manifests", diff, sizeof diff), "two slices already equal the whole set");
    CHECK(dataset("JOB_COMPLETION_INDEX=2", dir, IMAGEFOLDER " --shards 3", out, sizeof out) == 0, "k8s slice 2: %s",
          out);
    CHECK(same_tree(ref, dir, "manifests", diff, sizeof diff), "3 slices differ from one run:\n%s", diff);

    const char *wref = reference("ref-webdataset", WEBDATASET), *wdir = tmp_path("sliced-wds");
    CHECK(wref, "reference run failed");
    CHECK(dataset("SDC_TEST_KILL_AFTER=2:write", wdir, WEBDATASET, out, sizeof out) == 137, "killed run: %s", out);
    for (int i = 0; i < 3; i++) { /* a killed 1-slice run finished by 3 slices */
        char flags[128];
        snprintf(flags, sizeof flags, WEBDATASET " --shard %d/3", i);
        CHECK(dataset(NULL, wdir, flags, out, sizeof out) == 0, "slice %d: %s", i, out);
    }
    CHECK(same_tree(wref, wdir, "manifests", diff, sizeof diff), "3 webdataset slices differ from one run:\n%s", diff);
}

TEST(dataset_webdataset_tars_readable) {
    char cmd[4096], out[8192];
    const char *wds = tmp_path("tars"), *img = tmp_path("tars-images"), *x = tmp_path("tars-x");
    CHECK(dataset(NULL, wds, "--batch-size 1 --format webdataset --shard-size 3", out, sizeof out) == 0, "wds: %s",
          out);
    CHECK(dataset(NULL, img, "--batch-size 1", out, sizeof out) == 0, "imagefolder: %s", out);
    for (int s = 0; s < 3; s++) {
        snprintf(cmd, sizeof cmd, "tar -tf '%s/shard-%06d.tar'", wds, s);
        CHECK(run_cmd(cmd, out, sizeof out) == 0, "tar -tf shard %d: %s", s, out);
        char want[1024] = "";
        for (int j = 3 * s; j < 3 * s + 3 && j < 7; j++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%08d.png\n%08d.txt\n%08d.json\n", j, j, j);
        CHECK(!strcmp(out, want), "shard %d lists\n%swant\n%s", s, out, want);
    }
    snprintf(cmd, sizeof cmd, "%s/shard-000003.tar", wds);
    CHECK(!exists(cmd), "a fourth shard");
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -c part", wds);
    CHECK(run_cmd(cmd, out, sizeof out) == 1, "a .part file is left: %s", out);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && tar -xf '%s/shard-000001.tar' -C '%s'", x, wds, x);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "extract: %s", out);
    snprintf(cmd, sizeof cmd, "cmp '%s/00000004.png' '%s/train/00000004.png'", x, img);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "tar PNG differs from the imagefolder PNG: %s", out);
    snprintf(cmd, sizeof cmd, "cat '%s/00000003.txt'", x);
    CHECK(run_cmd(cmd, out, sizeof out) == 0 && !strcmp(out, "a dog \"on\" a hill"), "caption: '%s'", out);
    snprintf(cmd, sizeof cmd, "cat '%s/00000003.json'; echo; sed -n 4p '%s/train/metadata.jsonl'", x, img);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "json");
    char *nl = strchr(out, '\n');
    CHECK(nl && !strncmp(out, nl + 1, (size_t)(nl - out)), "the .json member is not the metadata line:\n%s", out);
}

/* every metadata.jsonl line is JSON with the Hugging Face ImageFolder keys and the right values */
TEST(dataset_metadata_lines_valid_json) {
    const char *ref = reference("ref-imagefolder", IMAGEFOLDER);
    CHECK(ref, "reference run failed");
    char p[700], *text;
    size_t len;
    snprintf(p, sizeof p, "%s/train/metadata.jsonl", ref);
    CHECK_OK(sdc_read_file(p, &text, &len));
    const int seeds[7] = {0, 1, 2, 50, 4, 5, 6};
    int n = 0;
    for (char *s = text, *e; *s; s = e + 1, n++) {
        e = strchr(s, '\n');
        if (!e) {
            free(text);
            CHECK(0, "line %d has no newline", n + 1);
        }
        *e = 0;
        cJSON *j = cJSON_Parse(s);
        char name[32];
        snprintf(name, sizeof name, "%08d.png", n);
        const char *keys[] = {"file_name", "text", "seed", "steps", "guidance", "scheduler", "width", "height", "model"};
        int ok = j != NULL && n < 7;
        for (size_t k = 0; ok && k < sizeof keys / sizeof keys[0]; k++) ok = cJSON_GetObjectItem(j, keys[k]) != NULL;
        ok = ok && !strcmp(cJSON_GetObjectItem(j, "file_name")->valuestring, name) &&
             cJSON_GetObjectItem(j, "seed")->valuedouble == seeds[n] &&
             cJSON_GetObjectItem(j, "steps")->valuedouble == 2 && cJSON_GetObjectItem(j, "width")->valuedouble == 64 &&
             cJSON_GetObjectItem(j, "guidance")->valuedouble == 7.5 &&
             !strcmp(cJSON_GetObjectItem(j, "scheduler")->valuestring, "pndm") &&
             !strcmp(cJSON_GetObjectItem(j, "model")->valuestring, "tiny-sd") &&
             cJSON_IsString(cJSON_GetObjectItem(j, "text"));
        if (ok && n >= 4)
            ok = !strcmp(cJSON_GetObjectItem(j, "negative_prompt")->valuestring, "blurry") &&
                 !strcmp(cJSON_GetObjectItem(j, "text")->valuestring, "a bird near a caf\xc3\xa9");
        if (ok && n == 3) ok = !strcmp(cJSON_GetObjectItem(j, "text")->valuestring, "a dog \"on\" a hill");
        cJSON_Delete(j);
        if (!ok) {
            CHECK(0, "metadata line %d is wrong: %s", n + 1, s);
        }
        char img[700];
        snprintf(img, sizeof img, "%s/train/%s", ref, name);
        if (!exists(img)) {
            free(text);
            CHECK(0, "metadata lists %s, which is missing", img);
        }
    }
    free(text);
    CHECK(n == 7, "%d lines, want 7", n);
}

/* arguments that would mix two data sets are refused, and nothing in the folder changes */
TEST(dataset_conflicting_rerun_refused) {
    char cmd[4096], out[4096], diff[8192], copy[600], other[600], mdir[600], model[600], foreign[600];
    const char *ref = reference("ref-imagefolder", IMAGEFOLDER);
    CHECK(ref, "reference run failed");
    snprintf(copy, sizeof copy, "%s", tmp_path("conflict-copy")); /* (tmp_path reuses a ring of buffers) */
    snprintf(other, sizeof other, "%s", tmp_path("other-prompts.txt"));
    snprintf(mdir, sizeof mdir, "%s", tmp_path("othermodel"));
    snprintf(model, sizeof model, "%s/tiny-sd", mdir);
    snprintf(foreign, sizeof foreign, "%s", tmp_path("foreign"));
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", copy, ref, copy);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "copy");
    struct {
        const char *flags, *expect;
    } cases[] = {
        {IMAGEFOLDER " --seed 1", "it was made with seed 0, this run has 1"},
        {"--batch-size 4", "batch_size 2, this run has 4"},
        {IMAGEFOLDER " --guidance 3", "guidance null, this run has 3"},
        {WEBDATASET, "format \"imagefolder\", this run has \"webdataset\""},
        {IMAGEFOLDER " -n ugly", "negative_prompt null"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = dataset(NULL, copy, cases[i].flags, out, sizeof out);
        CHECK(rc == 1 && strstr(out, "holds a different data set") && strstr(out, cases[i].expect),
              "'%s': exit %d: %s", cases[i].flags, rc, out);
    }
    /* other prompts */
    write_text(other, "a cat\n");
    snprintf(cmd, sizeof cmd, "%s dataset -m '%s' --prompts '%s' --out '%s' " FAST " " IMAGEFOLDER, sdc_binary(),
             fixture_path("models/tiny-sd"), other, copy);
    CHECK(run_cmd(cmd, out, sizeof out) == 1 && strstr(out, "prompts_digest"), "other prompts: %s", out);
    /* the same model name with other weights */
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp -r '%s' '%s' && chmod -R u+w '%s' && "
             "printf 'x' | dd of='%s/vae/diffusion_pytorch_model.safetensors' bs=1 seek=20000 conv=notrunc 2>/dev/null",
             mdir, fixture_path("models/tiny-sd"), mdir, mdir, model);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "model copy: %s", out);
    snprintf(cmd, sizeof cmd, "%s dataset -m '%s' --prompts '%s' --out '%s' " FAST " " IMAGEFOLDER, sdc_binary(), model,
             prompts_file(), copy);
    CHECK(run_cmd(cmd, out, sizeof out) == 1 && strstr(out, "model_fingerprint"), "other weights: %s", out);
    CHECK(same_tree(ref, copy, NULL, diff, sizeof diff), "a refused run changed the folder:\n%s", diff);
    /* a folder that is not a data set */
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && touch '%s/notes.txt'", foreign, foreign);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "mkdir");
    CHECK(dataset(NULL, foreign, IMAGEFOLDER, out, sizeof out) == 1 && strstr(out, "not empty") &&
              strstr(out, "notes.txt"),
          "foreign folder: %s", out);
    /* a finished data set reruns as a no-op */
    CHECK(dataset(NULL, copy, IMAGEFOLDER, out, sizeof out) == 0, "rerun: %s", out);
    CHECK(same_tree(ref, copy, NULL, diff, sizeof diff), "a no-op rerun changed the folder:\n%s", diff);
}

TEST(dataset_bad_input_messages) {
    char cmd[4096], out[4096];
    struct {
        const char *text, *expect;
    } files[] = {
        {"", ": no prompts"},
        {"{\"prompt\": \"a\"}\n{\"prompt\": \"b\", \"count\": 0}\n", ":2: \"count\" must be an integer"},
        {"{\"prompt\": \"a\"}\n{oops}\n", ":2: invalid JSON"},
        {"{\"prompt\": \"a\", \"colour\": \"red\"}\n", ":1: unknown key \"colour\""},
        {"{\"prompt\": \"a\"}\n\n{\"prompt\": \"a\", \"count\": 2000000}\n", ":3: \"count\" must be an integer in 1..1000000"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const char *pf = tmp_path("bad-prompts.jsonl"), *dir = tmp_path("bad-out");
        write_text(pf, files[i].text);
        snprintf(cmd, sizeof cmd, "%s dataset -m '%s' --prompts '%s' --out '%s' " FAST, sdc_binary(),
                 fixture_path("models/tiny-sd"), pf, dir);
        int rc = run_cmd(cmd, out, sizeof out);
        CHECK(rc == 1 && strstr(out, "bad-prompts.jsonl") && strstr(out, files[i].expect), "case %zu: exit %d: %s", i,
              rc, out);
        CHECK(!exists(dir), "case %zu: the output folder was created", i);
        snprintf(cmd, sizeof cmd, "%s generate -m '%s' --prompts '%s' " FAST " -o '%s.png'", sdc_binary(),
                 fixture_path("models/tiny-sd"), pf, dir);
        rc = run_cmd(cmd, out, sizeof out);
        CHECK(rc == 1 && strstr(out, files[i].expect), "generate case %zu: exit %d: %s", i, rc, out);
    }
    const char *usage[] = {"--shard 3/3", "--shard x", "--shards 2", "--batch-size 0", "--batch-size 65",
                           "--format zip", "--images-per-prompt 0", "-W 65", "--bogus"};
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        int rc = dataset(NULL, tmp_path("usage-out"), usage[i], out, sizeof out);
        CHECK(rc == 2 && strstr(out, "sdc: "), "'%s': exit %d: %s", usage[i], rc, out);
    }
    CHECK(dataset("JOB_COMPLETION_INDEX=1", tmp_path("usage-out"), "", out, sizeof out) == 2 && strstr(out, "--shards"),
          "index without --shards: %s", out);
    snprintf(cmd, sizeof cmd, "%s dataset --prompts x --out y", sdc_binary());
    /* without -m the demo model is used, and the run says so before it fails on the missing prompts file */
    CHECK(run_cmd(cmd, out, sizeof out) == 1 && strstr(out, "demo model") && strstr(out, "x: cannot open"),
          "no -m: %s", out);
    snprintf(cmd, sizeof cmd, "%s dataset --help", sdc_binary());
    CHECK(run_cmd(cmd, out, sizeof out) == 0 && strstr(out, "--shard I/N") && strstr(out, "webdataset"), "help: %s", out);
    /* a slice whose manifest is locked by a live process is refused */
    const char *ref = reference("ref-imagefolder", IMAGEFOLDER);
    CHECK(ref, "reference run failed");
    snprintf(cmd, sizeof cmd, "flock '%s/manifests/slice-0-of-1.jsonl' %s dataset -m '%s' --prompts '%s' --out '%s' "
             FAST " " IMAGEFOLDER, ref, sdc_binary(), fixture_path("models/tiny-sd"), prompts_file(), ref);
    CHECK(run_cmd(cmd, out, sizeof out) == 1 && strstr(out, "another process"), "locked slice: %s", out);
}

/* docs/slurm-array.sh runs as three array tasks; the Kubernetes manifest hands --shards its completions */
TEST(dataset_cluster_docs_work) {
    char cmd[4096], out[4096], diff[8192];
    const char *ref = reference("ref-imagefolder", IMAGEFOLDER), *dir = tmp_path("slurm-doc");
    CHECK(ref, "reference run failed");
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "SLURM_ARRAY_TASK_ID=%d SLURM_ARRAY_TASK_COUNT=3 SLURM_ARRAY_TASK_MIN=0 SDC='%s' "
                 "MODEL='%s' PROMPTS='%s' OUT='%s' EXTRA='" FAST " " IMAGEFOLDER "' bash docs/slurm-array.sh",
                 i, sdc_binary(), fixture_path("models/tiny-sd"), prompts_file(), dir);
        CHECK(run_cmd(cmd, out, sizeof out) == 0, "task %d: %s", i, out);
    }
    CHECK(same_tree(ref, dir, "manifests", diff, sizeof diff), "the Slurm script's data set differs:\n%s", diff);
    char *y;
    size_t n;
    CHECK_OK(sdc_read_file("docs/k8s-indexed-job.yaml", &y, &n));
    int ok = strstr(y, "completionMode: Indexed") && strstr(y, "completions: 4") && strstr(y, "--shards") &&
             strstr(y, "\"4\"") && strstr(y, "dataset");
    free(y);
    CHECK(ok, "docs/k8s-indexed-job.yaml lacks the Indexed Job settings");
}

/* ---- --rng, --device, --dtype: part of the identity, written only when not the default ---- */

/* `sdc dataset` of two images of "a cat" (seeds 0, 1) into dir with extra flags */
static int small_dataset(const char *dir, const char *flags, char *out, size_t n) {
    static char pf[600];
    if (!pf[0]) {
        snprintf(pf, sizeof pf, "%s", tmp_path("small-prompts.txt"));
        write_text(pf, "a cat\n");
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "env -u SLURM_ARRAY_TASK_ID -u JOB_COMPLETION_INDEX %s dataset -m '%s' --prompts '%s' "
             "--out '%s' --images-per-prompt 2 " FAST " %s", sdc_binary(), fixture_path("models/tiny-sd"), pf, dir,
             flags);
    return run_cmd(cmd, out, n);
}

/* does dir/rel contain s? */
static int file_has(const char *dir, const char *rel, const char *s) {
    char p[700], *text;
    size_t len;
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    if (sdc_read_file(p, &text, &len)) return 0;
    int has = strstr(text, s) != NULL;
    free(text);
    return has;
}

TEST(dataset_rng_is_part_of_identity) {
    char out[4096], cpu[600], cuda[600], diff[8192];
    snprintf(cpu, sizeof cpu, "%s", tmp_path("rng-cpu"));
    snprintf(cuda, sizeof cuda, "%s", tmp_path("rng-cuda"));
    CHECK(small_dataset(cpu, "", out, sizeof out) == 0, "--rng cpu: %s", out);
    CHECK(small_dataset(cuda, "--rng cuda", out, sizeof out) == 0, "--rng cuda: %s", out);
    for (int i = 0; i < 2; i++) {
        char a[700], b[700];
        snprintf(a, sizeof a, "%s/train/%08d.png", cpu, i);
        snprintf(b, sizeof b, "%s/train/%08d.png", cuda, i);
        int maxd = 0, ok;
        long ndiff = 0;
        max_pixel_diff(a, b, &maxd, &ndiff, &ok);
        CHECK(ok, "image %d unreadable", i);
        CHECK(maxd > 16, "image %d (seed %d): --rng cuda moves pixels by only %d/255", i, i, maxd);
    }
    /* defaults write no new lines, so folders made before these flags keep resuming */
    CHECK(!file_has(cpu, "sdc-dataset.json", "\"rng\"") && !file_has(cpu, "sdc-dataset.json", "\"device\"") &&
              !file_has(cpu, "sdc-dataset.json", "\"dtype\"") && !file_has(cpu, "train/metadata.jsonl", "\"rng\""),
          "a default run wrote rng/device/dtype keys");
    CHECK(file_has(cuda, "sdc-dataset.json", "\n  \"rng\": \"cuda\",\n") &&
              file_has(cuda, "train/metadata.jsonl", "\"rng\": \"cuda\"}"),
          "--rng cuda is not recorded in the config and metadata");
    char copy[600], cmd[2048];
    snprintf(copy, sizeof copy, "%s", tmp_path("rng-cuda-copy"));
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", copy, cuda, copy);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "copy");
    /* either way round, the refusal names rng and both values */
    int rc = small_dataset(cuda, "", out, sizeof out);
    CHECK(rc == 1 && strstr(out, "holds a different data set: it was made with rng \"cuda\", this run has none"),
          "cuda folder resumed with the cpu generator: exit %d: %s", rc, out);
    rc = small_dataset(cuda, "--rng cpu", out, sizeof out);
    CHECK(rc == 1 && strstr(out, "it was made with rng \"cuda\""), "explicit --rng cpu: exit %d: %s", rc, out);
    rc = small_dataset(cpu, "--rng cuda", out, sizeof out);
    CHECK(rc == 1 && strstr(out, "it was made with no rng (the default), this run has \"cuda\""),
          "cpu folder resumed with --rng cuda: exit %d: %s", rc, out);
    CHECK(same_tree(copy, cuda, NULL, diff, sizeof diff), "a refused run changed the folder:\n%s", diff);
    /* explicit defaults are the defaults; the same flags resume as a no-op */
    CHECK(small_dataset(cpu, "--rng cpu --device cpu --dtype f32", out, sizeof out) == 0, "explicit defaults: %s", out);
    CHECK(small_dataset(cuda, "--rng cuda", out, sizeof out) == 0, "--rng cuda rerun: %s", out);
    CHECK(same_tree(copy, cuda, NULL, diff, sizeof diff), "a no-op rerun changed the folder:\n%s", diff);
}

TEST(dataset_rng_device_dtype_usage_errors) {
    char out[4096];
    const char *usage[] = {"--rng gpu", "--rng CUDA", "--device tpu", "--dtype f64", "--rng"};
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        const char *dir = tmp_path("rng-usage");
        int rc = small_dataset(dir, usage[i], out, sizeof out);
        CHECK(rc == 2 && strstr(out, "sdc: ") && !exists(dir), "'%s': exit %d: %s", usage[i], rc, out);
    }
    CHECK(small_dataset(tmp_path("rng-usage"), "--rng gpu", out, sizeof out) == 2 && strstr(out, "--rng") &&
              strstr(out, "'gpu'"),
          "--rng gpu: %s", out);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s dataset --help", sdc_binary());
    CHECK(run_cmd(cmd, out, sizeof out) == 0 && strstr(out, "--rng cpu|cuda") && strstr(out, "--device cpu|cuda") &&
              strstr(out, "--dtype"),
          "help: %s", out);
}

/* a device the machine lacks fails before anything is written */
TEST(dataset_device_cuda_without_gpu) {
    char out[4096], cmd[2048];
    const char *dir = tmp_path("device-cuda");
    int rc = small_dataset(dir, "--device cuda", out, sizeof out);
    if (rc == 0) SKIP("this machine has a CUDA device");
    CHECK(rc == 1 && strstr(out, "no CUDA"), "--device cuda: exit %d: %s", rc, out);
    CHECK(!exists(dir), "--device cuda left a folder behind");
    /* an existing empty folder keeps at most the lock: the default run still makes it */
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "mkdir");
    CHECK(small_dataset(dir, "--device cuda", out, sizeof out) == 1, "--device cuda into an empty folder: %s", out);
    snprintf(cmd, sizeof cmd, "cd '%s' && ls -A", dir);
    CHECK(run_cmd(cmd, out, sizeof out) == 0 && (!out[0] || !strcmp(out, ".sdc-lock\n")),
          "the failed run left: %s", out);
    CHECK(small_dataset(dir, "", out, sizeof out) == 0, "the default run after it: %s", out);
    /* f16 is a GPU precision: on the CPU it fails the same way */
    dir = tmp_path("dtype-f16");
    rc = small_dataset(dir, "--dtype f16", out, sizeof out);
    CHECK(rc == 1 && strstr(out, "f16") && !exists(dir), "--dtype f16 on the cpu: exit %d: %s", rc, out);
}

TEST(dataset_dtype_bf16) {
    char out[4096], dir[600];
    snprintf(dir, sizeof dir, "%s", tmp_path("dtype-bf16"));
    int rc = small_dataset(dir, "--dtype bf16", out, sizeof out);
    if (rc == 1 && strstr(out, "AVX512_BF16")) SKIP("this CPU has no AVX512_BF16");
    CHECK(rc == 0, "--dtype bf16: exit %d: %s", rc, out);
    CHECK(file_has(dir, "sdc-dataset.json", "\n  \"dtype\": \"bf16\",\n") &&
              file_has(dir, "train/metadata.jsonl", "\"dtype\": \"bf16\"}"),
          "bf16 is not recorded in the config and metadata");
    rc = small_dataset(dir, "", out, sizeof out);
    CHECK(rc == 1 && strstr(out, "it was made with dtype \"bf16\", this run has none"), "f32 resume: exit %d: %s", rc,
          out);
    rc = small_dataset(dir, "--dtype f32", out, sizeof out);
    CHECK(rc == 1 && strstr(out, "dtype \"bf16\""), "explicit --dtype f32 resume: exit %d: %s", rc, out);
    CHECK(small_dataset(dir, "--dtype bf16", out, sizeof out) == 0, "bf16 rerun: %s", out);
}

/* a config written before --rng/--device/--dtype existed, byte for byte */
static const char *OLD_CONFIG = "{\n  \"sdc_dataset\": 1,\n  \"model\": \"tiny-sd\",\n"
    "  \"model_fingerprint\": \"0000000000001234\",\n  \"variant\": null,\n  \"format\": \"imagefolder\",\n"
    "  \"shard_size\": 0,\n  \"batch_size\": 2,\n  \"images_per_prompt\": 3,\n  \"seed\": 5,\n"
    "  \"negative_prompt\": null,\n  \"steps\": null,\n  \"guidance\": null,\n  \"width\": null,\n"
    "  \"height\": null,\n  \"scheduler\": null,\n  \"timestep_spacing\": null,\n  \"karras\": null,\n"
    "  \"eta\": 0,\n  \"clip_skip\": 0,\n  \"prompts_digest\": \"0000000000000abc\",\n  \"prompts\": 3,\n"
    "  \"images\": 9,\n"
    "  \"resolved\": {\"steps\": 50, \"guidance\": 7.5, \"width\": 64, \"height\": 64, \"scheduler\": \"pndm\"}\n}\n";

TEST(dataset_config_optional_keys) {
    ds_identity id = {.model = "tiny-sd", .model_fingerprint = 0x1234, .prompts_digest = 0xabc, .nprompts = 3,
                      .images = 9, .images_per_prompt = 3, .seed = 5, .guidance = -1, .karras = -1,
                      .format = "imagefolder", .batch_size = 2};
    ds_resolved res = {.steps = 50, .guidance = 7.5f, .width = 64, .height = 64, .scheduler = "pndm"}, got;
    jbuf b = {0};
    ds_config_render(&b, &id, &res);
    int same = b.p && !strcmp(b.p, OLD_CONFIG);
    jb_free(&b);
    CHECK(same, "the defaults no longer render the old config");
    CHECK_OK(ds_config_check("DIR", OLD_CONFIG, &id, &got));
    struct {
        const char *rng, *device, *dtype, *expect;
    } cases[] = {
        {"cuda", NULL, NULL, "DIR holds a different data set: it was made with no rng (the default), this run has "
                             "\"cuda\" (use another --out folder"},
        {NULL, "cuda", NULL, "it was made with no device (the default), this run has \"cuda\""},
        {NULL, NULL, "bf16", "it was made with no dtype (the default), this run has \"bf16\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ds_identity other = id;
        other.rng = cases[i].rng, other.device = cases[i].device, other.dtype = cases[i].dtype;
        CHECK(ds_config_check("DIR", OLD_CONFIG, &other, &got) == SDC_ERR_ARG &&
                  strstr(sdc_last_error(), cases[i].expect),
              "old config, case %zu: %s", i, sdc_last_error());
        /* and the other way round: a folder made with it, a run without */
        b.n = 0;
        ds_config_render(&b, &other, &res);
        CHECK_OK(ds_config_check("DIR", b.p, &other, &got));
        sdc_status st = ds_config_check("DIR", b.p, &id, &got);
        jb_free(&b);
        char want[64];
        const char *key = cases[i].rng ? "rng" : cases[i].device ? "device" : "dtype";
        snprintf(want, sizeof want, "it was made with %s \"", key);
        CHECK(st == SDC_ERR_ARG && strstr(sdc_last_error(), want) && strstr(sdc_last_error(), "this run has none"),
              "new config, case %zu: %s", i, sdc_last_error());
    }
    /* a value that differs keeps the same-key message */
    ds_identity a = id, c = id;
    a.rng = "cuda", c.rng = "other";
    ds_config_render(&b, &a, &res);
    sdc_status st = ds_config_check("DIR", b.p, &c, &got);
    jb_free(&b);
    CHECK(st == SDC_ERR_ARG && strstr(sdc_last_error(), "it was made with rng \"cuda\", this run has \"other\""), "%s",
          sdc_last_error());
    /* lines that are not keys, or keys out of order, are still a foreign file */
    char *bad = strdup(OLD_CONFIG), *at = strstr(bad, "  \"format\"");
    at[0] = 'x';
    st = ds_config_check("DIR", bad, &id, &got);
    free(bad);
    CHECK(st == SDC_ERR_ARG && strstr(sdc_last_error(), "not a data set config this sdc can continue (line 'x "),
          "garbled line: %s", sdc_last_error());
    CHECK(ds_config_check("DIR", "{\n  \"format\": \"imagefolder\",\n", &id, &got) == SDC_ERR_ARG &&
              strstr(sdc_last_error(), "not a data set config this sdc can continue: it has 'format: "
                                       "\"imagefolder\"' where this run has 'sdc_dataset: 1'"),
          "reordered keys: %s", sdc_last_error());
}

/* ---- --lora and --preset: LoRAs are part of the identity; a preset resolves into recorded keys ---- */

#define LORA_KOHYA "models/loras/tiny-sdxl-lora-kohya.safetensors"
#define LORA_PEFT "models/loras/tiny-sdxl-lora-peft.safetensors"

/* `sdc dataset` of two images of "a cat" on model (a fixture) with base flags and extra flags */
static int model_dataset(const char *model, const char *base, const char *dir, const char *flags, char *out,
                         size_t n) {
    static char pf[600];
    if (!pf[0]) {
        snprintf(pf, sizeof pf, "%s", tmp_path("lora-prompts.txt"));
        write_text(pf, "a cat\n");
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "env -u SLURM_ARRAY_TASK_ID -u JOB_COMPLETION_INDEX %s dataset -m '%s' --prompts '%s' "
             "--out '%s' --images-per-prompt 2 %s %s", sdc_binary(), fixture_path(model), pf, dir, base, flags);
    return run_cmd(cmd, out, n);
}

static int sdxl_dataset(const char *dir, const char *flags, char *out, size_t n) {
    return model_dataset("models/tiny-sdxl", FAST, dir, flags, out, n);
}

TEST(dataset_lora_changes_pixels_and_is_part_of_identity) {
    char out[4096], plain[600], lora[600], copy[600], flags[2048], cmd[4096], diff[8192];
    snprintf(plain, sizeof plain, "%s", tmp_path("lora-none"));
    snprintf(lora, sizeof lora, "%s", tmp_path("lora-kohya"));
    snprintf(copy, sizeof copy, "%s", tmp_path("lora-kohya-copy"));
    CHECK(sdxl_dataset(plain, "", out, sizeof out) == 0, "no LoRA: %s", out);
    snprintf(flags, sizeof flags, "--lora '%s:0.5'", fixture_path(LORA_KOHYA));
    CHECK(sdxl_dataset(lora, flags, out, sizeof out) == 0, "%s: %s", flags, out);
    for (int i = 0; i < 2; i++) {
        char a[700], b[700];
        snprintf(a, sizeof a, "%s/train/%08d.png", plain, i);
        snprintf(b, sizeof b, "%s/train/%08d.png", lora, i);
        int maxd = 0, ok;
        long ndiff = 0;
        max_pixel_diff(a, b, &maxd, &ndiff, &ok);
        CHECK(ok, "image %d unreadable", i);
        if (getenv("SDC_TEST_VERBOSE")) fprintf(stderr, "  lora image %d: max diff %d, %ld values differ\n", i, maxd, ndiff);
        CHECK(maxd > 2 && ndiff > 64 * 64, "image %d: the LoRA moves pixels by only %d/255 (%ld values)", i, maxd, ndiff);
    }
    CHECK(!file_has(plain, "sdc-dataset.json", "\"loras\"") && !file_has(plain, "train/metadata.jsonl", "\"loras\""),
          "a run without LoRAs wrote a loras key");
    CHECK(file_has(lora, "sdc-dataset.json",
                   "\n  \"loras\": [{\"name\": \"tiny-sdxl-lora-kohya.safetensors\", \"scale\": 0.5, \"fingerprint\": \"") &&
              file_has(lora, "train/metadata.jsonl",
                       "\"loras\": [{\"name\": \"tiny-sdxl-lora-kohya.safetensors\", \"scale\": 0.5}]}"),
          "the LoRA is not recorded in the config and metadata");
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", copy, lora, copy);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "copy");
    /* another scale, another LoRA, a second LoRA, none: refused naming loras, nothing written */
    char other[700];
    snprintf(other, sizeof other, "%s", tmp_path("tiny-sdxl-lora-kohya.safetensors")); /* same name, other bytes */
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", fixture_path(LORA_PEFT), other);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "copy LoRA");
    struct {
        const char *fmt, *arg, *expect;
    } refused[] = {
        {"--lora '%s:0.6'", fixture_path(LORA_KOHYA), "\"scale\": 0.6,"},
        {"--lora '%s'", fixture_path(LORA_KOHYA), "\"scale\": 1,"},
        {"--lora '%s:0.5'", fixture_path(LORA_PEFT), "tiny-sdxl-lora-peft.safetensors"},
        {"--lora '%s:0.5'", other, "this run has [{\"name\": \"tiny-sdxl-lora-kohya.safetensors\", \"scale\": 0.5, "
                                   "\"fingerprint\": \""},
        {"--lora '%s:0.5' --lora '%s:0.5'", fixture_path(LORA_KOHYA), "}, {\"name\""},
        {"", NULL, "this run has none (the default)"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        snprintf(flags, sizeof flags, refused[i].fmt, refused[i].arg, refused[i].arg);
        int rc = sdxl_dataset(lora, flags, out, sizeof out);
        CHECK(rc == 1 && strstr(out, "holds a different data set: it was made with loras [{\"name\": "
                                     "\"tiny-sdxl-lora-kohya.safetensors\", \"scale\": 0.5,") &&
                  strstr(out, refused[i].expect),
              "resume with '%s': exit %d: %s", flags, rc, out);
    }
    snprintf(flags, sizeof flags, "--lora '%s:0.5'", fixture_path(LORA_KOHYA));
    int rc = sdxl_dataset(plain, flags, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "it was made with no loras (the default), this run has [{\"name\": "),
          "LoRA-less folder resumed with a LoRA: exit %d: %s", rc, out);
    CHECK(same_tree(copy, lora, NULL, diff, sizeof diff), "a refused run changed the folder:\n%s", diff);
    /* the same LoRA (from another folder, scale spelled otherwise) resumes: a lost image is made again, equal */
    char moved[700];
    snprintf(moved, sizeof moved, "%s", tmp_path("moved-lora"));
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s' '%s/' && rm '%s/train/00000001.png'", moved,
             fixture_path(LORA_KOHYA), moved, lora);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "setup: %s", out);
    snprintf(flags, sizeof flags, "--lora '%s/tiny-sdxl-lora-kohya.safetensors:0.50'", moved);
    CHECK(sdxl_dataset(lora, flags, out, sizeof out) == 0, "resume with the same LoRA: %s", out);
    CHECK(same_tree(copy, lora, NULL, diff, sizeof diff), "the resumed image differs:\n%s", diff);
}

TEST(dataset_lora_bad_values_leave_no_folder) {
    char out[4096], flags[1024];
    const char *dir = tmp_path("lora-bad");
    int rc = sdxl_dataset(dir, "--lora /nonexistent/l.safetensors:0.7", out, sizeof out);
    CHECK(rc == 1 && strstr(out, "sdc: /nonexistent/l.safetensors: cannot open") && !exists(dir),
          "missing LoRA: exit %d: %s", rc, out);
    /* an SDXL LoRA matches nothing in an SD 1.x model: the load fails before the folder is made */
    snprintf(flags, sizeof flags, "--lora '%s'", fixture_path(LORA_KOHYA));
    rc = model_dataset("models/tiny-sd", FAST, dir, flags, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "sdc: ") && !exists(dir), "SDXL LoRA on tiny-sd: exit %d: %s", rc, out);
    const char *usage[] = {"--lora ''", "--lora x:1e9", "--lora x:-101", "--lora", "--preset turbo", "--preset"};
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        rc = sdxl_dataset(dir, usage[i], out, sizeof out);
        CHECK(rc == 2 && strstr(out, "sdc: ") && !exists(dir), "'%s': exit %d: %s", usage[i], rc, out);
    }
    rc = sdxl_dataset(dir, "--lora x:1e9", out, sizeof out);
    CHECK(strstr(out, "--lora expects PATH[:SCALE] with SCALE in [-100, 100], got 'x:1e9'"), "%s", out);
    rc = sdxl_dataset(dir, "--preset turbo", out, sizeof out);
    CHECK(strstr(out, "--preset must be sdxl-turbo | hyper-sd-2step | hyper-sd-1step, got 'turbo'"), "%s", out);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s dataset --help", sdc_binary());
    CHECK(run_cmd(cmd, out, sizeof out) == 0 && strstr(out, "--lora PATH[:SCALE]") && strstr(out, "--preset NAME") &&
              strstr(out, "hyper-sd-1step"),
          "help: %s", out);
}

TEST(dataset_preset_sets_recorded_settings_and_flags_win) {
    static const struct {
        const char *flags;
        const char *want[5];
    } runs[] = {
        {"--preset hyper-sd-1step",
         {"\"steps\": 1,", "\"guidance\": 0,", "\"scheduler\": \"tcd\",", "\"timestep_spacing\": null,", "\"eta\": 1,"}},
        {"--preset hyper-sd-2step",
         {"\"steps\": 2,", "\"guidance\": 0,", "\"scheduler\": \"ddim\",", "\"timestep_spacing\": \"trailing\",",
          "\"width\": 64,"}},
        /* explicit flags win, before or after the preset */
        {"--steps 3 --preset hyper-sd-2step --guidance 1.5 --timestep-spacing leading --scheduler euler",
         {"\"steps\": 3,", "\"guidance\": 1.5,", "\"scheduler\": \"euler\",", "\"timestep_spacing\": \"leading\","}},
        {"--preset hyper-sd-1step --eta 0.5", {"\"steps\": 1,", "\"scheduler\": \"tcd\",", "\"eta\": 0.5,"}},
    };
    char out[4096];
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        char dir[600];
        snprintf(dir, sizeof dir, "%s", tmp_path("preset"));
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        run_cmd(cmd, out, sizeof out);
        int rc = model_dataset("models/tiny-sd", "-W 64 -H 64 --threads 1 --quiet", dir, runs[i].flags, out, sizeof out);
        CHECK(rc == 0, "'%s': exit %d: %s", runs[i].flags, rc, out);
        for (int k = 0; k < 5 && runs[i].want[k]; k++)
            CHECK(file_has(dir, "sdc-dataset.json", runs[i].want[k]), "'%s': no '%s' in the config", runs[i].flags,
                  runs[i].want[k]);
        CHECK(!file_has(dir, "sdc-dataset.json", "preset"), "'%s': the preset has a key of its own", runs[i].flags);
    }
    /* the preset is all in recorded keys: the same preset resumes, no preset is refused */
    const char *dir = tmp_path("preset-resume");
    const char *base = "-W 64 -H 64 --threads 1 --quiet";
    CHECK(model_dataset("models/tiny-sd", base, dir, "--preset hyper-sd-2step", out, sizeof out) == 0, "%s", out);
    CHECK(file_has(dir, "train/metadata.jsonl", "\"steps\": 2, \"guidance\": 0, \"scheduler\": \"ddim\""),
          "metadata lacks the preset's settings");
    CHECK(model_dataset("models/tiny-sd", base, dir, "--preset hyper-sd-2step", out, sizeof out) == 0, "rerun: %s", out);
    int rc = model_dataset("models/tiny-sd", base, dir, "", out, sizeof out);
    CHECK(rc == 1 && strstr(out, "it was made with steps 2, this run has null"), "resume without the preset: exit %d: %s",
          rc, out);
}

/* lines are compared whole: a long negative prompt or LoRA list that differs only at its end is refused */
TEST(dataset_config_long_lines_compared_whole) {
    char neg_a[3000], neg_b[3000];
    memset(neg_a, 'x', sizeof neg_a - 1), neg_a[sizeof neg_a - 1] = 0;
    memcpy(neg_b, neg_a, sizeof neg_b);
    neg_b[sizeof neg_b - 2] = 'y';
    ds_lora la[1] = {{"a.safetensors", 0.5f, 0x1234}}, lb[1] = {{"a.safetensors", 0.5f, 0x1235}};
    ds_identity id = {.model = "tiny-sd", .negative = neg_a, .guidance = -1, .karras = -1, .format = "imagefolder",
                      .batch_size = 1, .loras = la, .nloras = 1};
    ds_resolved res = {.steps = 50, .guidance = 7.5f, .width = 64, .height = 64, .scheduler = "pndm"}, got;
    jbuf b = {0};
    ds_config_render(&b, &id, &res);
    CHECK_OK(ds_config_check("DIR", b.p, &id, &got));
    ds_identity other = id;
    other.negative = neg_b;
    CHECK(ds_config_check("DIR", b.p, &other, &got) == SDC_ERR_ARG &&
              strstr(sdc_last_error(), "it was made with negative_prompt \"xxx"),
          "a negative prompt differing at its end: %s", sdc_last_error());
    other = id;
    other.loras = lb;
    CHECK(ds_config_check("DIR", b.p, &other, &got) == SDC_ERR_ARG &&
              strstr(sdc_last_error(), "\"fingerprint\": \"0000000000001235\"}]"),
          "another LoRA fingerprint: %s", sdc_last_error());
    jb_free(&b);
}
