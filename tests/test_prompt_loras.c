/* test_prompt_loras.c - A1111's <lora:NAME:W> tags (sdc_prompt_loras), the
 * LoRA folder (sdc_lora_find, sdc_lora_scan) and per-request fusing: a tag
 * gives the image --lora DIR/NAME.safetensors:W gives, and the next request
 * without a tag gives the image of the model as loaded, bit for bit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "sdc.h"

#define KOHYA "models/loras/tiny-sdxl-lora-kohya.safetensors"

TEST(prompt_loras_tags_parse_and_strip) {
    sdc_lora_tag t[SDC_MAX_PROMPT_LORAS];
    int n = -1;
    char *s = NULL;
    CHECK_OK(sdc_prompt_loras("a <lora:foo:0.8> cat, <lora:bar:0.5:0.25>, <lyco:baz:te=0.3:unet=-1>"
                              " <lora:plain> <embed:x> (red:1.2) <lora:sub_dir-1>",
                              &s, t, &n));
    CHECK(n == 5, "%d tags", n);
    CHECK(!strcmp(s, "a  cat, ,   <embed:x> (red:1.2) "), "stripped '%s'", s);
    free(s);
    CHECK(!strcmp(t[0].name, "foo") && t[0].te == 0.8f && t[0].unet == 0.8f, "tag 0 %s %g %g", t[0].name,
          (double)t[0].te, (double)t[0].unet);
    CHECK(!strcmp(t[1].name, "bar") && t[1].te == 0.5f && t[1].unet == 0.25f, "tag 1");
    CHECK(!strcmp(t[2].name, "baz") && t[2].te == 0.3f && t[2].unet == -1.0f, "tag 2 %g %g", (double)t[2].te,
          (double)t[2].unet);
    CHECK(!strcmp(t[3].name, "plain") && t[3].te == 1.0f && t[3].unet == 1.0f, "tag 3");
    CHECK(!strcmp(t[4].name, "sub_dir-1"), "tag 4 '%s'", t[4].name);

    /* text that only looks like a tag stays text */
    CHECK_OK(sdc_prompt_loras("a <lora:> b <lora c:1> <:x> <lora:x", &s, t, &n));
    CHECK(n == 0 && !strcmp(s, "a <lora:> b <lora c:1> <:x> <lora:x"), "%d '%s'", n, s);
    free(s);

    static const char *bad[] = {"<lora:x:abc>",   "<lora:x:1e9>",   "<lora:x:1:2:3>",
                                "<lora:x:dyn=4>", "<lora:x:foo=1>", "<hypernet:h:1>"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        s = NULL;
        CHECK(sdc_prompt_loras(bad[i], &s, t, &n) != SDC_OK && !s, "'%s' accepted", bad[i]);
        CHECK(strstr(sdc_last_error(), bad[i]) || strstr(sdc_last_error(), "hypernet"), "'%s': %s", bad[i],
              sdc_last_error());
    }
    char many[2048] = "";
    for (int i = 0; i <= SDC_MAX_PROMPT_LORAS; i++) strcat(many, "<lora:a:1>");
    CHECK(sdc_prompt_loras(many, NULL, t, &n) == SDC_ERR_ARG, "17 tags accepted");
}

static int copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    int ok = a && b;
    char buf[65536];
    size_t k;
    while (ok && (k = fread(buf, 1, sizeof buf, a)) > 0) ok = fwrite(buf, 1, k, b) == k;
    if (a) fclose(a);
    if (b && fclose(b)) ok = 0;
    return ok;
}

/* a LoRA folder: style.safetensors at the top, sub/deep.safetensors, a
 * shadowed sub/style.safetensors, a hidden file and a non-LoRA file */
static const char *make_lora_dir(void) {
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s", tmp_path("loras"));
    char p[1200];
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/sub", dir);
    mkdir(p, 0755);
    const char *src = fixture_path(KOHYA);
    static const char *names[] = {"style.safetensors", "sub/deep.safetensors", "sub/style.safetensors",
                                  ".hidden.safetensors"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if (!copy_file(src, p)) return NULL;
    }
    snprintf(p, sizeof p, "%s/notes.txt", dir);
    FILE *f = fopen(p, "w");
    if (!f) return NULL;
    fputs("not a LoRA\n", f);
    fclose(f);
    return dir;
}

TEST(prompt_loras_folder_find_and_scan) {
    const char *dir = make_lora_dir();
    CHECK(dir, "cannot make the LoRA folder");
    char path[4096], want[2048];
    CHECK_OK(sdc_lora_find(dir, "style", path, sizeof path));
    snprintf(want, sizeof want, "%s/style.safetensors", dir);
    CHECK(!strcmp(path, want), "style -> %s", path);
    CHECK_OK(sdc_lora_find(dir, "deep", path, sizeof path));
    snprintf(want, sizeof want, "%s/sub/deep.safetensors", dir);
    CHECK(!strcmp(path, want), "deep -> %s", path);
    static const char *absent[] = {"nope", ".hidden", "sub/deep", "../loras/style", "notes"};
    for (int i = 0; i < 5; i++) {
        CHECK(sdc_lora_find(dir, absent[i], path, sizeof path) == SDC_ERR_ARG, "'%s' found", absent[i]);
        CHECK(strstr(sdc_last_error(), "not found"), "%s", sdc_last_error());
    }
    CHECK(sdc_lora_find(NULL, "style", path, sizeof path) == SDC_ERR_ARG, "found without a folder");

    sdc_lora_file *f;
    int n;
    CHECK_OK(sdc_lora_scan(dir, &f, &n));
    int ok = n == 3 && !strcmp(f[0].name, "style") && !strcmp(f[1].name, "deep") && !strcmp(f[2].name, "style") &&
             f[0].metadata_json && f[0].metadata_json[0] == '{';
    sdc_lora_files_free(f, n);
    CHECK(ok, "scan: %d files", n);
    CHECK(sdc_lora_scan("/nonexistent-lora-dir", &f, &n) == SDC_ERR_IO, "a missing folder scans");
}

static sdc_status gen(sdc_model *m, const char *prompt, const char *lora_dir, sdc_image **img) {
    sdc_request r;
    sdc_request_init(&r);
    r.prompts = &prompt;
    r.nprompts = 1;
    r.seed = 5;
    r.steps = 2;
    r.width = r.height = 64;
    r.lora_dir = lora_dir;
    int n;
    return sdc_generate(m, &r, img, &n);
}

static int same_pixels(const sdc_image *a, const sdc_image *b) {
    return a->width == b->width && a->height == b->height &&
           !memcmp(a->rgb, b->rgb, (size_t)a->width * (size_t)a->height * 3);
}

TEST(prompt_loras_fused_per_request_then_restored) {
    const char *dir = make_lora_dir();
    CHECK(dir, "cannot make the LoRA folder");
    char lpath[1200];
    snprintf(lpath, sizeof lpath, "%s/style.safetensors", dir);
    const char *lp[] = {lpath};
    const float ls[] = {0.7f};
    sdc_load_options lo = {.loras = lp, .lora_scales = ls, .nloras = 1};
    sdc_model *m, *fused;
    CHECK_OK(sdc_model_load(&m, fixture_path("models/tiny-sdxl"), NULL));
    sdc_status st = sdc_model_load(&fused, fixture_path("models/tiny-sdxl"), &lo);
    if (st) sdc_model_free(m);
    CHECK_OK(st);
    sdc_image *base = NULL, *want = NULL, *tag = NULL, *after = NULL, *plain_text = NULL;
    int err = 0;
    const char *why = "";
    if (gen(m, "a cat", NULL, &base) || gen(fused, "a cat", NULL, &want)) err = 1, why = sdc_last_error();
    else if (gen(m, "a cat<lora:style:0.7>", dir, &tag)) err = 1, why = sdc_last_error();
    else if (gen(m, "a cat", dir, &after)) err = 1, why = sdc_last_error();
    else if (gen(m, "a cat<lora:style:0.7>", NULL, &plain_text)) /* no folder: the tag is text */
        err = 1, why = sdc_last_error();
    int tag_eq = !err && same_pixels(tag, want), tag_ne = !err && !same_pixels(tag, base);
    int after_eq = !err && same_pixels(after, base), text_ne = !err && !same_pixels(plain_text, base);
    int info_ok = !err && !strncmp(tag->infotext, "a cat<lora:style:0.7>\n", 22);
    sdc_image *unknown = NULL;
    sdc_status ust = err ? SDC_OK : gen(m, "<lora:nope:1> a cat", dir, &unknown);
    char umsg[512];
    snprintf(umsg, sizeof umsg, "%s", sdc_last_error());
    sdc_images_free(base, 1), sdc_images_free(want, 1), sdc_images_free(tag, 1), sdc_images_free(after, 1);
    sdc_images_free(plain_text, 1);
    if (unknown) sdc_images_free(unknown, 1);
    sdc_model_free(m), sdc_model_free(fused);
    CHECK(!err, "generate: %s", why);
    CHECK(tag_ne, "the tag changed nothing");
    CHECK(tag_eq, "<lora:style:0.7> differs from --lora style.safetensors:0.7");
    CHECK(after_eq, "the next request without a tag differs from the model as loaded");
    CHECK(text_ne, "without a folder the tag should be plain text (and change the prompt)");
    CHECK(info_ok, "the infotext should keep the prompt as written");
    CHECK(ust == SDC_ERR_ARG && strstr(umsg, "'nope' not found"), "unknown LoRA: %d %s", ust, umsg);
}

TEST(prompt_loras_cli_lora_dir) {
    const char *dir = make_lora_dir();
    CHECK(dir, "cannot make the LoRA folder");
    char cmd[4096], out[4096], a[1024], b[1024];
    snprintf(a, sizeof a, "%s", tmp_path("tag.png"));
    snprintf(b, sizeof b, "%s", tmp_path("flag.png"));
    snprintf(
        cmd, sizeof cmd,
        "%s generate -m '%s' -p 'cat <lora:deep:0.5>' --lora-dir '%s' --seed 3 -W 64 -H 64 --steps 1 --quiet -o '%s'",
        sdc_binary(), fixture_path("models/tiny-sdxl"), dir, a);
    int rc = run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0, "tag: rc %d: %s", rc, out);
    snprintf(
        cmd, sizeof cmd,
        "%s generate -m '%s' -p 'cat ' --lora '%s/sub/deep.safetensors:0.5' --seed 3 -W 64 -H 64 --steps 1 --quiet "
        "-o '%s'",
        sdc_binary(), fixture_path("models/tiny-sdxl"), dir, b);
    rc = run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0, "flag: rc %d: %s", rc, out);
    /* the PNGs differ in their infotexts (the prompt as written); compare pixels */
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    CHECK(fa && fb, "missing PNG");
    static unsigned char ba[1 << 20], bb[1 << 20];
    size_t na = fread(ba, 1, sizeof ba, fa), nb = fread(bb, 1, sizeof bb, fb);
    fclose(fa), fclose(fb);
    uint8_t *ra, *rb;
    int wa, ha, wb, hb;
    char *pa;
    CHECK_OK(sdc_png_decode(ba, na, &ra, &wa, &ha, &pa));
    sdc_status st = sdc_png_decode(bb, nb, &rb, &wb, &hb, NULL);
    if (st) free(ra), free(pa);
    CHECK_OK(st);
    int same = wa == wb && ha == hb && !memcmp(ra, rb, (size_t)wa * ha * 3);
    int info = !strncmp(pa, "cat <lora:deep:0.5>\n", 20);
    free(ra), free(rb), free(pa);
    CHECK(same, "--lora-dir tag and --lora give different pixels");
    CHECK(info, "the infotext lost the tag");
    snprintf(cmd, sizeof cmd, "%s generate -m '%s' -p 'cat <lora:nope>' --lora-dir '%s' --steps 1 -W 64 -H 64 -o '%s'",
             sdc_binary(), fixture_path("models/tiny-sdxl"), dir, tmp_path("never.png"));
    rc = run_cmd(cmd, out, sizeof out);
    CHECK(rc != 0 && strstr(out, "'nope' not found"), "unknown LoRA: rc %d: %s", rc, out);
}

/* pixels of two PNG files equal */
static int same_png_pixels(const char *a, const char *b) {
    static unsigned char ba[1 << 20], bb[1 << 20];
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    size_t na = fa ? fread(ba, 1, sizeof ba, fa) : 0, nb = fb ? fread(bb, 1, sizeof bb, fb) : 0;
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    uint8_t *ra = NULL, *rb = NULL;
    int wa, ha, wb, hb;
    int ok = !sdc_png_decode(ba, na, &ra, &wa, &ha, NULL) && !sdc_png_decode(bb, nb, &rb, &wb, &hb, NULL) && wa == wb &&
             ha == hb && !memcmp(ra, rb, (size_t)wa * ha * 3);
    free(ra), free(rb);
    return ok;
}

/* generate --prompts with --batch-size: lines naming different LoRAs go to
 * different UNet batches (one set of fused weights per batch), each image
 * the one its line gives alone */
TEST(prompt_loras_prompts_file_batches_split) {
    const char *dir = make_lora_dir();
    CHECK(dir, "cannot make the LoRA folder");
    char pf[1024], cmd[4096], out[4096], a[1024], b[1024], c[1024], d[1024];
    snprintf(pf, sizeof pf, "%s", tmp_path("lora-prompts.jsonl"));
    FILE *f = fopen(pf, "w");
    CHECK(f, "cannot write %s", pf);
    fputs("{\"prompt\": \"cat <lora:style:0.7>\"}\n{\"prompt\": \"cat \"}\n", f);
    fclose(f);
    snprintf(a, sizeof a, "%s", tmp_path("lp-{index}.png"));
    snprintf(cmd, sizeof cmd,
             "%s generate -m '%s' --prompts '%s' --batch-size 2 --lora-dir '%s' --seed 3 -W 64 -H 64 --steps 1 "
             "--quiet -o '%s'",
             sdc_binary(), fixture_path("models/tiny-sdxl"), pf, dir, a);
    int rc = run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0, "--prompts with two LoRA sets: rc %d: %s", rc, out);
    snprintf(b, sizeof b, "%s", tmp_path("lp-alone-0.png"));
    snprintf(cmd, sizeof cmd,
             "%s generate -m '%s' -p 'cat ' --lora '%s/style.safetensors:0.7' --seed 3 -W 64 -H 64 --steps 1 --quiet "
             "-o '%s'",
             sdc_binary(), fixture_path("models/tiny-sdxl"), dir, b);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "alone 0: %s", out);
    snprintf(c, sizeof c, "%s", tmp_path("lp-alone-1.png"));
    snprintf(cmd, sizeof cmd, "%s generate -m '%s' -p 'cat ' --seed 4 -W 64 -H 64 --steps 1 --quiet -o '%s'",
             sdc_binary(), fixture_path("models/tiny-sdxl"), c);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "alone 1: %s", out);
    snprintf(d, sizeof d, "%s", tmp_path("lp-0.png"));
    CHECK(same_png_pixels(d, b), "image 0 differs from its line with --lora alone");
    snprintf(d, sizeof d, "%s", tmp_path("lp-1.png"));
    CHECK(same_png_pixels(d, c), "image 1 (no tag) differs from its line alone");
}
