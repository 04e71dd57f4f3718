/* test_hostile.c - the library and CLI against hostile input (issue 20):
 * special files given as inputs, configs whose numbers overflow, malformed
 * headers that used to leak, PNG text chunks that inflate without end or are
 * not UTF-8, long words and prompts that were quadratic, temporaries a
 * killed run left. Each test fails with its fix reverted. Time bounds here
 * are generous guards against hangs and quadratic blowups (a quadratic
 * parser takes minutes where these allow tens of seconds), never timings. */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "family/single_file.h"
#include "harness.h"
#include "hostile_util.h"
#include "io/png_text.h"
#include "io/safetensors.h"
#include "sdc.h"
#include "text/clip_tokenizer.h"
#include "text/tokenizer_bpe.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int exists(const char *p) {
    struct stat sb;
    return lstat(p, &sb) == 0;
}

static const char *copy_model(const char *name) {
    static char dst[512];
    char cmd[2048];
    snprintf(dst, sizeof dst, "%s", tmp_path(name));
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s' && chmod -R u+w '%s'", dst,
             fixture_path("models/tiny-sd"), dst, dst);
    return system(cmd) == 0 ? dst : NULL;
}

/* ---- special files ---- */

/* A FIFO given as a LoRA, a prompts file, a config or a single-file model is
 * refused at once; opening one for reading used to wait forever for a writer.
 * Each command runs under `timeout` so a regression fails instead of hanging. */
TEST(hostile_fifo_inputs_refused) {
    const char *fifo = tmp_path("fifo.jsonl"), *fifo_st = tmp_path("fifo.safetensors");
    unlink(fifo), unlink(fifo_st);
    CHECK(mkfifo(fifo, 0600) == 0 && mkfifo(fifo_st, 0600) == 0, "mkfifo failed");
    const char *m = copy_model("fifo-model");
    CHECK(m, "copy failed");
    char cmd[4096], out[4096];
    snprintf(cmd, sizeof cmd, "rm '%s/unet/config.json' && mkfifo '%s/unet/config.json'", m, m);
    CHECK(system(cmd) == 0, "mkfifo in the model failed");
    struct {
        const char *what, *args;
    } cases[] = {
        {"--prompts", "-m '%s' --prompts '%s'"},
        {"--lora", "-m '%s' -p cat --lora '%s'"},
        {"single-file model", "-m '%s' -p cat"},
        {"config.json", "-m '%s' -p cat"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[2048];
        const char *model = i == 2 ? fifo_st : i == 3 ? m : fixture_path("models/tiny-sd");
        const char *path = i == 0 ? fifo : fifo_st;
        snprintf(args, sizeof args, cases[i].args, model, path);
        snprintf(cmd, sizeof cmd, "timeout -s KILL 120 %s generate --quiet --steps 1 -W 64 -H 64 %s -o '%s'",
                 sdc_binary(), args, tmp_path("fifo.png"));
        double t0 = now_s();
        int rc = run_cmd(cmd, out, sizeof out);
        CHECK(rc == 1, "%s as a FIFO: exit %d after %.0f s (137: it hung): %s", cases[i].what, rc, now_s() - t0, out);
        CHECK(strstr(out, "not a regular file"), "%s as a FIFO: message lacks 'not a regular file': %s", cases[i].what,
              out);
    }
}

/* ---- numbers that overflow ---- */

/* sample_size 2^31-1 made the default size sample_size * 8 overflow ("size -8x-8") */
TEST(hostile_unet_sample_size_overflow) {
    const char *m = copy_model("huge-sample");
    CHECK(m, "copy failed");
    char cmd[4096], out[4096];
    snprintf(cmd, sizeof cmd, "sed -i 's/\"sample_size\": *[0-9]*/\"sample_size\": 2147483647/' '%s/unet/config.json'",
             m);
    CHECK(system(cmd) == 0, "sed failed");
    const char *runs[] = {"generate --quiet --steps 1 -p cat -m '%s' -o '%s'", "info -m '%s'"};
    for (int i = 0; i < 2; i++) {
        char args[2048];
        snprintf(args, sizeof args, runs[i], m, tmp_path("huge.png"));
        snprintf(cmd, sizeof cmd, "%s %s", sdc_binary(), args);
        int rc = run_cmd(cmd, out, sizeof out);
        CHECK(rc == 1 && strstr(out, "sample_size") && strstr(out, "2147483647") && !strstr(out, "-8x-8"),
              "sdc %s: exit %d: %s", runs[i], rc, out);
    }
}

/* ---- malformed files that leaked ---- */

static void write_st(const char *path, const char *hdr) {
    FILE *fp = fopen(path, "wb");
    unsigned long long l = strlen(hdr);
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(l >> (8 * i));
    fwrite(b, 1, 8, fp);
    fwrite(hdr, 1, l, fp);
    fwrite("\0\0\0\0", 1, 4, fp);
    fclose(fp);
}

/* a second "__metadata__" replaced (and leaked) the first; now it is refused */
TEST(hostile_safetensors_metadata_twice) {
    const char *p = tmp_path("meta2.safetensors");
    write_st(p, "{\"__metadata__\":{\"a\":\"1\"},\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"__metadata__\":{\"b\":\"2\"}}");
    st_file f;
    sdc_status st = st_open(&f, p);
    if (!st) st_close(&f);
    CHECK(st == SDC_ERR_FORMAT && strstr(sdc_last_error(), "__metadata__"), "accepted (%d): %s", st, sdc_last_error());
    /* and refusing it 300 times does not grow the heap */
    size_t h0 = heap_in_use();
    for (int i = 0; i < 300; i++)
        if (!st_open(&f, p)) st_close(&f);
    size_t h1 = heap_in_use();
    CHECK(h1 < h0 + 4096, "heap grew by %zu bytes over 300 refused headers", h1 - h0);
}

/* The presence check ignored case, the replacement did not: with a
 * "Prediction_Type" key --prediction was silently ignored and its string leaked. */
TEST(hostile_prediction_type_other_case) {
    size_t h0 = heap_in_use();
    for (int i = 0; i < 300; i++) {
        cJSON *j = cJSON_Parse("{\"Prediction_Type\": \"epsilon\", \"beta_start\": 0.00085}");
        CHECK_OK(sched_json_set_prediction(j, "v", "test"));
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prediction_type");
        int ok = cJSON_IsString(p) && !strcmp(p->valuestring, "v_prediction");
        cJSON_Delete(j);
        CHECK(ok, "--prediction v was not applied beside a \"Prediction_Type\" key");
    }
    size_t h1 = heap_in_use();
    CHECK(h1 < h0 + 4096, "heap grew by %zu bytes over 300 calls", h1 - h0);
}

/* ---- PNG text chunks ---- */

static hbuf text_png(const char *type, const void *body, size_t n, int w, int h) {
    hbuf chunk = {0}, png = {0};
    png_chunk(&chunk, type, body, n);
    png_with_chunks(&png, w, h, &chunk);
    hbuf_free(&chunk);
    return png;
}

/* the infotext is read from the chunks alone: a PNG whose pixels are garbage
 * (or that claims 100000 x 100000 pixels) still gives its text, no pixel
 * memory is taken; decoding the pixels of the same file fails */
TEST(hostile_png_text_without_pixels) {
    static const char body[] = "parameters\0a cat\nSteps: 2, Sampler: Euler, Seed: 1";
    hbuf png = text_png("tEXt", body, sizeof body - 1, 64, 64);
    /* garble the IDAT's zlib data (it comes after our chunk) */
    uint8_t *idat = memmem(png.p, png.n, "IDAT", 4);
    CHECK(idat && idat + 12 < png.p + png.n, "no IDAT");
    memset(idat + 4, 0xAB, 6);
    char *params = NULL;
    int w = 0, h = 0;
    CHECK_OK(sdc_png_decode(png.p, png.n, NULL, &w, &h, &params));
    CHECK(params && !strcmp(params, "a cat\nSteps: 2, Sampler: Euler, Seed: 1") && w == 64 && h == 64,
          "text '%s' %dx%d", params ? params : "(none)", w, h);
    free(params);
    uint8_t *rgb = NULL;
    CHECK(sdc_png_decode(png.p, png.n, &rgb, &w, &h, NULL) != SDC_OK, "garbled pixels decoded");
    free(rgb);
    /* a huge declared size: IHDR rewritten (width/height and its CRC) */
    uint8_t *ihdr = png.p + 12;
    ihdr[4] = 0, ihdr[5] = 1, ihdr[6] = 0x86, ihdr[7] = 0xA0; /* 100000 */
    memcpy(ihdr + 8, ihdr + 4, 4);
    uint32_t crc = (uint32_t)crc32(0, ihdr, 17);
    ihdr[17] = (uint8_t)(crc >> 24), ihdr[18] = (uint8_t)(crc >> 16), ihdr[19] = (uint8_t)(crc >> 8),
    ihdr[20] = (uint8_t)crc;
    size_t h0 = heap_in_use();
    CHECK_OK(sdc_png_decode(png.p, png.n, NULL, &w, &h, &params));
    CHECK(heap_in_use() < h0 + (1 << 20) + 4096, "reading the text took pixel memory");
    CHECK(params && w == 100000 && h == 100000, "huge image: text '%s' %dx%d", params ? params : "(none)", w, h);
    free(params);
    hbuf_free(&png);
}

/* a zTXt / compressed iTXt "parameters" that inflates to 64 MB is refused
 * naming the cap, without inflating it all; a bomb under another keyword is
 * never inflated */
TEST(hostile_png_text_bomb) {
    for (int kind = 0; kind < 3; kind++) {
        hbuf body = {0};
        const char *kw = kind == 2 ? "Comment" : "parameters";
        hbuf_add(&body, kw, strlen(kw) + 1);
        if (kind == 1) hbuf_add(&body, "\1\0\0\0", 4); /* iTXt: compressed, method 0, no language, no translation */
        else hbuf_add(&body, "\0", 1);                 /* zTXt: method 0 */
        zlib_of_fill(&body, 'A', (size_t)64 << 20);
        hbuf png = text_png(kind == 1 ? "iTXt" : "zTXt", body.p, body.n, 8, 8);
        char *params = NULL;
        size_t h0 = heap_in_use();
        double t0 = now_s();
        sdc_status st = sdc_png_decode(png.p, png.n, NULL, NULL, NULL, &params);
        double dt = now_s() - t0;
        size_t grown = heap_in_use() - h0;
        int got_text = params != NULL;
        free(params);
        hbuf_free(&png);
        hbuf_free(&body);
        if (kind < 2) {
            CHECK(st == SDC_ERR_FORMAT && strstr(sdc_last_error(), "262144"), "bomb %d: status %d: %s", kind, st,
                  sdc_last_error());
        } else {
            CHECK(st == SDC_OK && !got_text, "bomb under another keyword: status %d: %s", st, sdc_last_error());
        }
        CHECK(grown < (4u << 20), "bomb %d: heap grew by %zu bytes", kind, grown);
        CHECK(dt < 10, "bomb %d took %.1f s (a hang guard)", kind, dt);
    }
}

/* the text comes back as UTF-8: tEXt is Latin-1 (PNG spec, PIL), an iTXt's
 * invalid bytes become U+FFFD */
TEST(hostile_png_text_utf8) {
    static const char latin1[] = "parameters\0caf\xe9 cr\xe8me";
    hbuf png = text_png("tEXt", latin1, sizeof latin1 - 1, 8, 8);
    char *params = NULL;
    CHECK_OK(sdc_png_decode(png.p, png.n, NULL, NULL, NULL, &params));
    CHECK(params && !strcmp(params, "caf\xc3\xa9 cr\xc3\xa8me"), "tEXt Latin-1: '%s'", params ? params : "(none)");
    free(params);
    hbuf_free(&png);
    static const char itxt[] = "parameters\0\0\0\0\0ok \xff\xfe then \xe2\x82 cut";
    png = text_png("iTXt", itxt, sizeof itxt - 1, 8, 8);
    CHECK_OK(sdc_png_decode(png.p, png.n, NULL, NULL, NULL, &params));
    CHECK(params && !strcmp(params, "ok \xef\xbf\xbd\xef\xbf\xbd then \xef\xbf\xbd\xef\xbf\xbd cut"),
          "iTXt invalid UTF-8: '%s'", params ? params : "(none)");
    free(params);
    hbuf_free(&png);
}

/* ---- tokenizer: long words in O(n log n) ---- */

static unsigned rnd_next(unsigned *x) {
    *x = *x * 1103515245u + 12345u;
    return *x >> 8;
}

/* the heap merge gives the reference loop's symbols, word for word */
TEST(hostile_bpe_heap_matches_reference) {
    const char *dir = shared_path("clip-vocab");
    tok_bpe bpe;
    char merges[1024];
    snprintf(merges, sizeof merges, "%s/merges.txt", dir ? dir : fixture_path("vocab-tiny"));
    CHECK_OK(tok_bpe_load(&bpe, merges, 49152 - 256 - 2 + 1));
    unsigned x = 7;
    unsigned char w[600];
    int32_t a[600], b[600];
    const char *alpha[] = {"ab", "abcde", "etaoinshrdlu", "abcdefghijklmnopqrstuvwxyz", "aaab"};
    int failed = 0;
    for (int it = 0; it < 3000 && !failed; it++) {
        const char *al = alpha[it % 5];
        size_t n = 1 + rnd_next(&x) % (it % 3 ? 80 : 600), an = strlen(al);
        for (size_t i = 0; i < n; i++)
            w[i] = rnd_next(&x) % 50 ? (unsigned char)al[rnd_next(&x) % an] : (unsigned char)(rnd_next(&x) % 256);
        size_t ka = tok_bpe_word_simple(&bpe, w, n, a), kb = 0;
        if (tok_bpe_word(&bpe, w, n, b, &kb) || ka != kb || memcmp(a, b, ka * sizeof *a)) {
            test_fail_at(__FILE__, __LINE__, "word %d (%zu bytes): %zu symbols by the reference, %zu by the heap", it,
                         n, ka, kb);
            failed = 1;
        }
    }
    tok_bpe_free(&bpe);
}

/* fn(arg) in a child process, killed after `seconds`: 1 when it returned 0
 * in time, 0 when it failed, -1 when it was killed (a hang or a quadratic
 * blowup ends as a failed test, not a stuck suite) */
static int run_bounded(int (*fn)(void *), void *arg, int seconds, double *took) {
    double t0 = now_s();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) _exit(fn(arg) ? 1 : 0);
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (now_s() - t0 > seconds) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            *took = now_s() - t0;
            return -1;
        }
        usleep(20000);
    }
    *took = now_s() - t0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

typedef struct {
    clip_tokenizer *t;
    const char *text;
    size_t n;
} encode_job;

static int encode_one(void *arg) {
    encode_job *j = arg;
    int64_t ids[77];
    if (clip_encode(j->t, j->text, j->n, 77, ids, NULL, NULL)) {
        fprintf(stderr, "%s\n", sdc_last_error());
        return 1;
    }
    return 0;
}

/* 1 MB prompts that were quadratic: one word of random letters (BPE merged
 * it by rescanning the word once per merge: hours) and a run of combining
 * marks of two classes (NFC's canonical ordering by adjacent swaps:
 * minutes). Each runs in a child killed after 60 s, ~30x what it takes here
 * (bench/bench_hostile_input times them): a hang guard, not a timing. */
TEST(hostile_prompt_1mb_bounded) {
    const char *dir = shared_path("clip-vocab");
    clip_tokenizer *t;
    CHECK_OK(clip_tokenizer_load(&t, dir ? dir : fixture_path("vocab-tiny")));
    size_t n = SDC_MAX_PROMPT_BYTES;
    char *s = malloc(n + 2);
    unsigned x = 3;
    for (int shape = 0; shape < 2; shape++) {
        if (shape == 0) {
            for (size_t i = 0; i < n + 1; i++) s[i] = (char)('a' + rnd_next(&x) % 26);
        } else {
            s[0] = 'a';
            for (size_t i = 1; i + 1 < n + 1; i += 2) { /* U+0301 (class 230), U+0316 (class 220) */
                s[i] = '\xcc';
                s[i + 1] = (char)((i / 2) % 2 ? 0x81 : 0x96);
            }
            s[n] = ' ';
        }
        encode_job j = {t, s, n};
        double took = 0;
        int r = run_bounded(encode_one, &j, 60, &took);
        if (r != 1) {
            free(s);
            clip_tokenizer_free(t);
            CHECK(0, "1 MB prompt (%s): %s after %.1f s", shape ? "combining marks" : "one word",
                  r < 0 ? "killed, still running" : "failed", took);
        }
    }
    /* a byte more is refused, saying the limit */
    int64_t ids[77];
    sdc_status st = clip_encode(t, s, n + 1, 77, ids, NULL, NULL);
    free(s);
    clip_tokenizer_free(t);
    CHECK(st == SDC_ERR_ARG && strstr(sdc_last_error(), "1048576"), "over the limit: %d %s", st, sdc_last_error());
}

/* ---- temporaries of a killed run ---- */

/* out.png.tmp<pid> of a process that is gone is removed by the next write of
 * out.png; one of a live process is not touched */
TEST(hostile_stale_png_temporaries_removed) {
    const char *out = tmp_path("stale.png");
    /* a pid that is certainly gone: a child that has exited and been reaped */
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    CHECK(dead > 0, "fork failed");
    waitpid(dead, NULL, 0);
    char stale[1024], live[1024], other[1024];
    snprintf(stale, sizeof stale, "%s.tmp%d", out, (int)dead);
    snprintf(live, sizeof live, "%s.tmp%d", out, (int)getppid());
    snprintf(other, sizeof other, "%s.tmpx%d", out, (int)dead);
    const char *files[] = {stale, live, other};
    for (int i = 0; i < 3; i++) {
        FILE *f = fopen(files[i], "wb");
        CHECK(f, "cannot create %s", files[i]);
        fputs("partial", f);
        fclose(f);
    }
    uint8_t rgb[8 * 8 * 3] = {0};
    sdc_image im = {.width = 8, .height = 8, .rgb = rgb, .infotext = "x"};
    CHECK_OK(sdc_image_save_png(&im, out));
    int st_gone = !exists(stale), live_kept = exists(live), other_kept = exists(other);
    unlink(live), unlink(other);
    CHECK(st_gone && live_kept && other_kept && exists(out), "stale temporary %s, live one %s, unrelated file %s",
          st_gone ? "removed" : "kept", live_kept ? "kept" : "removed", other_kept ? "kept" : "removed");
}
