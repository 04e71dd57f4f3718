/* test_demo.c - the shipped demo model (models/sdc-shapes-64) as the
 * default model: diffusers' images of it reproduced through the CLI with no
 * -m, from another working directory; pictures that show their caption; the
 * lookup beside the program. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "io/json.h"
#include "io/png_io.h"
#include "sdc.h"

/* an absolute path to the program, so that commands can run in another folder */
static const char *sdc_abs(void) {
    static char p[PATH_MAX];
    if (!realpath(sdc_binary(), p)) snprintf(p, sizeof p, "%s", sdc_binary());
    return p;
}

static int max_diff(const char *a_path, const char *b_path, int *worst) {
    uint8_t *a, *b;
    int aw, ah, bw, bh;
    if (png_read_rgb(a_path, &a, &aw, &ah, NULL)) return 0;
    if (png_read_rgb(b_path, &b, &bw, &bh, NULL)) {
        free(a);
        return 0;
    }
    int ok = aw == bw && ah == bh;
    *worst = 0;
    for (int64_t i = 0; ok && i < (int64_t)aw * ah * 3; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d > *worst) *worst = d;
    }
    free(a), free(b);
    return ok;
}

static void run_demo_case(const char *name) {
    char p[512], out[8192], cmd[4096], png[512], gold[512];
    snprintf(p, sizeof p, "tests/demo-cases/%s.json", name);
    cJSON *j;
    CHECK_OK(json_load(p, &j));
    const sdc_sampler_info *s = sdc_sampler_find(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "scheduler"), "class")->valuestring);
    snprintf(png, sizeof png, "%s", tmp_path(name));
    strcat(png, ".png");
    char *cwd = getcwd(NULL, 0);
    /* no -m: the demo model; run in /tmp so that only the program's own location can find it */
    snprintf(cmd, sizeof cmd,
             "cd /tmp && env -u SDC_MODEL %s generate --quiet -p '%s' --seed %.0f --steps %d --guidance %g "
             "--scheduler %s -W %d -H %d -o %s",
             sdc_abs(), cJSON_GetArrayItem(cJSON_GetObjectItem(j, "prompt"), 0)->valuestring,
             cJSON_GetArrayItem(cJSON_GetObjectItem(j, "seeds"), 0)->valuedouble,
             cJSON_GetObjectItem(j, "num_inference_steps")->valueint,
             cJSON_GetObjectItem(j, "guidance_scale")->valuedouble, s ? s->name : "?",
             cJSON_GetObjectItem(j, "width")->valueint, cJSON_GetObjectItem(j, "height")->valueint, png);
    cJSON_Delete(j);
    int rc = run_cmd(cmd, out, sizeof out);
    snprintf(gold, sizeof gold, "%s/tests/demo-cases/%s_0.png", cwd, name);
    free(cwd);
    CHECK(s && rc == 0, "%s: exit %d: %s", name, rc, out);
    int worst;
    CHECK(max_diff(png, gold, &worst), "%s: cannot compare %s with %s", name, png, gold);
    if (getenv("SDC_TEST_VERBOSE")) printf("     %s: max pixel difference %d/255\n", name, worst);
    CHECK(worst <= 2, "%s: max pixel difference %d/255", name, worst);
}

TEST(demo_cases_cli_default_model) {
    run_demo_case("demo-red-circle");
    run_demo_case("demo-two-shapes");
    run_demo_case("demo-star-ddim");
    run_demo_case("demo-above-euler-a");
}

/* the training palette (MODEL_CARD.md); a pixel's colour is the nearest one */
static const char *nearest_colour(const uint8_t *px) {
    static const struct {
        const char *name;
        int r, g, b;
    } pal[] = {{"red", 220, 30, 30},    {"green", 30, 160, 50},   {"blue", 30, 70, 220},     {"yellow", 250, 210, 30},
               {"purple", 130, 40, 180}, {"orange", 250, 140, 20}, {"white", 255, 255, 255}, {"black", 15, 15, 15}};
    int best = 0;
    long bd = -1;
    for (int i = 0; i < 8; i++) {
        long d = (long)(px[0] - pal[i].r) * (px[0] - pal[i].r) + (long)(px[1] - pal[i].g) * (px[1] - pal[i].g) +
                 (long)(px[2] - pal[i].b) * (px[2] - pal[i].b);
        if (bd < 0 || d < bd) bd = d, best = i;
    }
    return pal[best].name;
}

static void shows(const char *caption, int seed, const char *centre, const char *corner) {
    char cmd[2048], out[4096];
    const char *png = tmp_path("caption.png");
    snprintf(cmd, sizeof cmd, "env -u SDC_MODEL %s generate --quiet -p '%s' --seed %d -o %s", sdc_abs(), caption, seed,
             png);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "'%s': %s", caption, out);
    uint8_t *rgb;
    int w, h;
    char *params;
    CHECK_OK(png_read_rgb(png, &rgb, &w, &h, &params));
    const char *c = nearest_colour(rgb + ((h / 2) * w + w / 2) * 3), *k = nearest_colour(rgb + (2 * w + 2) * 3);
    int model_named = params && strstr(params, "Model: sdc-shapes-64");
    free(rgb);
    free(params);
    CHECK(w == 64 && h == 64, "'%s': %dx%d", caption, w, h);
    CHECK(!strcmp(c, centre) && !strcmp(k, corner), "'%s': centre %s, corner %s", caption, c, k);
    CHECK(model_named, "'%s': the infotext does not name the demo model", caption);
}

TEST(demo_pictures_show_their_caption) {
    shows("a red circle on a blue background", 42, "red", "blue");
    shows("a yellow square on a green background", 5, "yellow", "green");
}

/* the program finds the model beside itself or one folder up; without it, a
 * clear error that says where it looked */
TEST(demo_model_lookup_beside_the_program) {
    char dir[PATH_MAX], cmd[8192], out[4096];
    snprintf(dir, sizeof dir, "%s", tmp_path("demo-install"));
    char *cwd = getcwd(NULL, 0);
    snprintf(cmd, sizeof cmd, "mkdir -p %s/bin && cp %s %s/bin/sdc && cd /tmp && env -u SDC_MODEL %s/bin/sdc generate "
             "--steps 2 -p x -o %s/none.png 2>&1", dir, sdc_abs(), dir, dir, dir);
    int rc = run_cmd(cmd, out, sizeof out);
    /* (an installed demo model under the data folder is found instead: also right) */
    int said = rc == 1 ? strstr(out, "demo model sdc-shapes-64 was not found") != NULL
                       : rc == 0 && strstr(out, "installed demo model") != NULL;
    snprintf(cmd, sizeof cmd, "mkdir -p %s/models && ln -sfn %s/models/sdc-shapes-64 %s/models/sdc-shapes-64 && cd /tmp && "
             "env -u SDC_MODEL %s/bin/sdc generate --steps 2 -p 'a red circle on a blue background' -o %s/one.png 2>&1",
             dir, cwd, dir, dir, dir);
    free(cwd);
    int rc2 = run_cmd(cmd, out, sizeof out);
    CHECK(said, "no model beside the program: exit %d: %s", rc, out);
    CHECK(rc2 == 0 && strstr(out, "model ") && strstr(out, "sdc-shapes-64"), "model one folder up: exit %d: %s", rc2,
          out);
    snprintf(cmd, sizeof cmd, "SDC_MODEL=/no/such/model %s generate --quiet -p x -o %s/env.png", sdc_abs(), dir);
    CHECK(run_cmd(cmd, out, sizeof out) == 1 && strstr(out, "/no/such/model"), "SDC_MODEL: %s", out);
}
