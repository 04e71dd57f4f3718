/* test_from_png.c - `sdc generate --from-png FILE`: the settings of a PNG's
 * infotext run again. An A1111 infotext (its keys, its defaults: A1111's
 * prompt syntax, clip skip) replays the a1111-break-ddim-skip2 case with a
 * flag overriding its seed; what sdc cannot replay is named; a plain sdc
 * PNG comes back byte for byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/png_io.h"
#include "sdc.h"

/* a PNG of w x h grey pixels carrying infotext */
static sdc_status write_png(const char *path, int w, int h, const char *infotext) {
    sdc_image img = {.width = w, .height = h, .infotext = (char *)infotext};
    if (!(img.rgb = calloc((size_t)w * h * 3, 1))) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    memset(img.rgb, 128, (size_t)w * h * 3);
    void *png = NULL;
    size_t len = 0;
    sdc_status st = sdc_image_encode_png(&img, &png, &len);
    free(img.rgb);
    FILE *f = st ? NULL : fopen(path, "wb");
    if (!st && (!f || fwrite(png, 1, len, f) != len)) st = sdc_fail(SDC_ERR_IO, "cannot write %s", path);
    if (f) fclose(f);
    free(png);
    return st;
}

/* largest channel difference between two PNGs (999: other sizes) */
static int png_diff(const char *a_path, const char *b_path, char **params_a) {
    uint8_t *a = NULL, *b = NULL;
    int aw, ah, bw, bh, worst = 999;
    if (!png_read_rgb(a_path, &a, &aw, &ah, params_a) && !png_read_rgb(b_path, &b, &bw, &bh, NULL) && aw == bw &&
        ah == bh) {
        worst = 0;
        for (int64_t i = 0; i < (int64_t)aw * ah * 3; i++)
            if (abs((int)a[i] - (int)b[i]) > worst) worst = abs((int)a[i] - (int)b[i]);
    }
    free(a), free(b);
    return worst;
}

TEST(from_png_a1111_infotext_replays_case) {
    /* as A1111 writes it: no "Prompt syntax" (its own), PLMS/DDIM names, Clip skip, a wrong seed the flag fixes */
    const char *info = "a red fox in the snow BREAK a blue lake under the moon, oil painting\n"
                       "Negative prompt: ugly\n"
                       "Steps: 6, Sampler: DDIM, Schedule type: Automatic, CFG scale: 7.5, Seed: 1, Size: 128x64, "
                       "Model hash: 0123456789, Model: tiny-sd, Clip skip: 2, RNG: CPU, Hires upscale: 2, "
                       "Version: v1.10.1";
    char in[600], out[600], cmd[2048], log[4096];
    snprintf(in, sizeof in, "%s", tmp_path("a1111-infotext.png"));
    snprintf(out, sizeof out, "%s", tmp_path("from-png-out.png"));
    CHECK_OK(write_png(in, 16, 8, info));
    snprintf(cmd, sizeof cmd, "%s generate -m '%s' --from-png '%s' --seed 202 -o '%s'", sdc_binary(),
             fixture_path("models/tiny-sd"), in, out);
    int rc = run_cmd(cmd, log, sizeof log);
    CHECK(rc == 0, "generate --from-png failed (%d): %s", rc, log);
    CHECK(strstr(log, "Hires upscale") && strstr(log, "seed 202"),
          "the unreplayed hires fix or the seed flag not "
          "reported: %s",
          log);
    char *params = NULL;
    int worst = png_diff(out, fixture_path("../fixtures2/cases/a1111-break-ddim-skip2_0.png"), &params);
    int info_ok = params && strstr(params, "BREAK a blue lake") && strstr(params, "Negative prompt: ugly") &&
                  strstr(params, "Clip skip: 2") && strstr(params, "Seed: 202") && !strstr(params, "Prompt syntax");
    free(params);
    CHECK(worst <= 2, "the replayed image differs from the case's golden by %d/255", worst);
    CHECK(info_ok, "the replay's infotext does not carry the settings");
}

/* sdc's own plain-syntax PNG: its settings (and "Prompt syntax: plain")
 * give the same file again; a flag beside it changes what it names */
TEST(from_png_sdc_plain_roundtrip) {
    const char *model = fixture_path("models/tiny-sd");
    char a[600], b[600], c[600], cmd[2048], log[4096];
    snprintf(a, sizeof a, "%s", tmp_path("plain-a.png"));
    snprintf(b, sizeof b, "%s", tmp_path("plain-b.png"));
    snprintf(c, sizeof c, "%s", tmp_path("plain-c.png"));
    snprintf(cmd, sizeof cmd,
             "%s generate --quiet -m '%s' -p 'a (red) fox' -n 'ugly' --seed 7 --steps 2 "
             "--scheduler euler_a -W 64 -H 64 -o '%s'",
             sdc_binary(), model, a);
    CHECK(run_cmd(cmd, log, sizeof log) == 0, "generate: %s", log);
    snprintf(cmd, sizeof cmd, "%s generate --quiet -m '%s' --from-png '%s' -o '%s'", sdc_binary(), model, a, b);
    CHECK(run_cmd(cmd, log, sizeof log) == 0, "generate --from-png: %s", log);
    snprintf(cmd, sizeof cmd, "cmp '%s' '%s'", a, b);
    CHECK(run_cmd(cmd, log, sizeof log) == 0, "the replay is not the same file: %s", log);
    snprintf(cmd, sizeof cmd, "%s generate --quiet -m '%s' --from-png '%s' --prompt-syntax a1111 -o '%s'", sdc_binary(),
             model, a, c);
    CHECK(run_cmd(cmd, log, sizeof log) == 0, "generate --from-png --prompt-syntax a1111: %s", log);
    char *params = NULL;
    int worst = png_diff(a, c, &params);
    free(params);
    CHECK(worst > 0 && worst < 999, "--prompt-syntax a1111 beside --from-png did not override the plain syntax");
}

TEST(from_png_refuses_what_it_cannot_read) {
    char in[600], cmd[2048], log[2048];
    snprintf(in, sizeof in, "%s", tmp_path("no-infotext.png"));
    CHECK_OK(write_png(in, 8, 8, NULL));
    snprintf(cmd, sizeof cmd, "%s generate -m '%s' --from-png '%s'", sdc_binary(), fixture_path("models/tiny-sd"), in);
    int rc = run_cmd(cmd, log, sizeof log);
    CHECK(rc == 1 && strstr(log, "parameters"), "a PNG without an infotext (%d): %s", rc, log);
    snprintf(cmd, sizeof cmd, "%s generate --from-png /nonexistent.png", sdc_binary());
    rc = run_cmd(cmd, log, sizeof log);
    CHECK(rc == 1 && strstr(log, "nonexistent"), "a missing file (%d): %s", rc, log);
    CHECK_OK(write_png(in, 8, 8, "a cat\nSteps: 2, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64"));
    snprintf(cmd, sizeof cmd, "%s generate --from-png '%s' --prompts x.txt", sdc_binary(), in);
    rc = run_cmd(cmd, log, sizeof log);
    CHECK(rc == 2 && strstr(log, "cannot be combined"), "--from-png with --prompts (%d): %s", rc, log);
}
