/* test_prompts_file.c - the pieces of `sdc dataset` / `generate --prompts`
 * that need no model: prompts file parsing (and its line-numbered errors),
 * index plans and batching runs, slices from flags and cluster variables,
 * the ustar writer and scan, manifest repair, JSON text and the data set
 * config check. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset/dataset_config.h"
#include "dataset/jsonw.h"
#include "dataset/manifest.h"
#include "dataset/plan.h"
#include "dataset/prompts_file.h"
#include "dataset/shard.h"
#include "dataset/tar_writer.h"
#include "harness.h"

static sdc_status parse(const char *text, prompt_list *l) { return prompts_parse(text, strlen(text), "p.txt", 0, l); }

TEST(prompts_text_lines) {
    prompt_list l;
    CHECK_OK(parse("\xEF\xBB\xBF" "a cat\r\n\n   \nsecond line  \nlast without newline", &l));
    CHECK(!l.jsonl && l.n == 3, "jsonl %d n %d", l.jsonl, l.n);
    CHECK(!strcmp(l.e[0].prompt, "a cat") && l.e[0].line == 1, "line 1: '%s' %d", l.e[0].prompt, l.e[0].line);
    CHECK(!strcmp(l.e[1].prompt, "second line  ") && l.e[1].line == 4, "line 4: '%s' %d", l.e[1].prompt, l.e[1].line);
    CHECK(!strcmp(l.e[2].prompt, "last without newline") && l.e[2].line == 5, "line 5");
    CHECK(l.e[0].guidance < 0 && !l.e[0].steps && !l.e[0].count && !l.e[0].has_seed && !l.e[0].negative,
          "text lines set nothing but the prompt");
    prompts_free(&l);
}

TEST(prompts_jsonl_all_keys) {
    prompt_list l;
    CHECK_OK(parse("\n{\"prompt\": \"a \\\"cat\\\"\", \"negative_prompt\": \"blurry\", \"seed\": 9007199254740992, "
                   "\"steps\": 20, \"guidance\": 6.5, \"width\": 512, \"height\": 768, "
                   "\"scheduler\": \"EulerAncestralDiscreteScheduler\", \"count\": 3}\n"
                   "{\"prompt\": \"\", \"negative_prompt\": null, \"seed\": null, \"count\": null}\n",
                   &l));
    CHECK(l.jsonl && l.n == 2, "jsonl %d n %d", l.jsonl, l.n);
    prompt_entry *e = &l.e[0];
    CHECK(e->line == 2 && !strcmp(e->prompt, "a \"cat\"") && !strcmp(e->negative, "blurry"), "strings");
    CHECK(e->has_seed && e->seed == 9007199254740992ull && e->steps == 20 && e->guidance == 6.5f, "numbers");
    CHECK(e->width == 512 && e->height == 768 && e->count == 3, "size/count");
    CHECK(!strcmp(e->scheduler, "euler_a"), "scheduler normalised to sdc's name, got %s", e->scheduler);
    e = &l.e[1];
    CHECK(!strcmp(e->prompt, "") && !e->negative && !e->has_seed && !e->count, "nulls are unset");
    prompts_free(&l);
}

/* every malformed file fails with the file name, the line number and the fault */
TEST(prompts_malformed_files) {
    struct {
        const char *text, *expect;
    } bad[] = {
        {"", "p.txt: no prompts"},
        {"\n  \n\r\n", "p.txt: no prompts"},
        {"{\"prompt\": \"a\"}\n{\"prompt\": \"b\",}\n", "p.txt:2: invalid JSON"},
        {"{\"prompt\": \"a\"}\nnot json\n", "p.txt:2: invalid JSON"},
        {"{\"prompt\": \"a\", \"stpes\": 3}", "p.txt:1: unknown key \"stpes\""},
        {"{\"prompt\": 3}", "p.txt:1: \"prompt\" must be a string"},
        {"{\"negative_prompt\": \"x\"}", "p.txt:1: no \"prompt\""},
        {"{\"prompt\": \"a\"}\n[\"a\"]", "p.txt:2: expected a JSON object"},
        {"{\"prompt\": \"a\"} {\"prompt\": \"b\"}", "p.txt:1: text after the JSON object"},
        {"{\"prompt\": \"a\", \"prompt\": \"b\"}", "p.txt:1: key \"prompt\" appears twice"},
        {"{\"prompt\": \"a\", \"steps\": \"20\"}", "p.txt:1: \"steps\" must be an integer in 1..1000, got \"20\""},
        {"{\"prompt\": \"a\", \"steps\": 2.5}", "p.txt:1: \"steps\" must be an integer"},
        {"{\"prompt\": \"a\", \"count\": 0}", "p.txt:1: \"count\" must be an integer in 1..1000000"},
        {"\n\n{\"prompt\": \"a\", \"count\": 1e12}", "p.txt:3: \"count\" must be an integer in 1..1000000"},
        {"{\"prompt\": \"a\", \"seed\": -1}", "p.txt:1: \"seed\" must be an integer"},
        {"{\"prompt\": \"a\", \"seed\": 1e300}", "p.txt:1: \"seed\" must be an integer"},
        {"{\"prompt\": \"a\", \"width\": 65}", "p.txt:1: \"width\" must be a multiple of 8"},
        {"{\"prompt\": \"a\", \"height\": 100000}", "p.txt:1: \"height\" must be an integer in 8..4096"},
        {"{\"prompt\": \"a\", \"guidance\": 1000}", "p.txt:1: \"guidance\" must be a number in 0..100"},
        {"{\"prompt\": \"a\", \"guidance\": \"7\"}", "p.txt:1: \"guidance\" must be a number"},
        {"{\"prompt\": \"a\", \"scheduler\": \"dpm_fast\"}", "p.txt:1: \"scheduler\""},
        {"{\"prompt\": \"a\", \"scheduler\": 3}", "p.txt:1: \"scheduler\" must be a string"},
        {"{\"prompt\": \"a\\u0000b\"}", "p.txt:1: \\u0000 is not allowed"},
        {"fine\nbad \xff byte\n", "p.txt:2: not valid UTF-8"},
        {"overlong \xc0\xaf", "p.txt:1: not valid UTF-8"},
        {"surrogate \xed\xa0\x80", "p.txt:1: not valid UTF-8"},
        {"cut \xe2\x82", "p.txt:1: not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        prompt_list l;
        sdc_status st = parse(bad[i].text, &l);
        CHECK(st == SDC_ERR_FORMAT, "case %zu ('%s') gave status %d", i, bad[i].text, (int)st);
        CHECK(strstr(sdc_last_error(), bad[i].expect), "case %zu: '%s' lacks '%s'", i, sdc_last_error(), bad[i].expect);
        CHECK(!strchr(sdc_last_error(), '\n'), "case %zu: message is not one line", i);
    }
    prompt_list l; /* a text line with a NUL byte */
    CHECK(prompts_parse("ok\nbad\0line\n", 12, "p.txt", 0, &l) == SDC_ERR_FORMAT &&
              strstr(sdc_last_error(), "p.txt:2: contains a NUL byte"),
          "NUL: %s", sdc_last_error());
    CHECK(prompts_file_load("/nonexistent/prompts.txt", &l) == SDC_ERR_IO &&
              strstr(sdc_last_error(), "/nonexistent/prompts.txt"),
          "missing file: %s", sdc_last_error());
}

TEST(prompts_plan_indices_seeds_and_runs) {
    prompt_list l;
    /* line 1: 2 images (default), line 2: 3 with seed 100, line 3: 2 with other steps, line 4-5: 2 each */
    CHECK_OK(parse("{\"prompt\": \"a\"}\n{\"prompt\": \"b\", \"seed\": 100, \"count\": 3}\n"
                   "{\"prompt\": \"c\", \"steps\": 7}\n{\"prompt\": \"d\"}\n{\"prompt\": \"e\", \"negative_prompt\": \"n\"}\n",
                   &l));
    plan p;
    sdc_request def;
    sdc_request_init(&def);
    def.steps = 4;
    CHECK_OK(plan_build(&p, &l, 2, 10, &def, "p.txt"));
    CHECK(p.total == 11, "total %lld", (long long)p.total);
    int64_t firsts[] = {0, 2, 5, 7, 9, 11};
    for (int i = 0; i <= 5; i++) CHECK(p.first[i] == firsts[i], "first[%d] = %lld", i, (long long)p.first[i]);
    CHECK(plan_seed(&p, 0) == 10 && plan_seed(&p, 1) == 11, "base seeds");
    CHECK(plan_seed(&p, 2) == 100 && plan_seed(&p, 4) == 102, "line seed");
    CHECK(plan_seed(&p, 5) == 15 && plan_seed(&p, 10) == 20, "base + index after a seeded line");
    CHECK(plan_line_of(&p, 4) == 1 && plan_line_of(&p, 5) == 2 && plan_line_of(&p, 10) == 4, "line_of");
    sdc_request s;
    plan_request_of(&p, 5, &s);
    CHECK(s.steps == 7 && !strcmp(s.prompts[0], "c") && s.nprompts == 1 && s.seed == 15, "line steps win");
    plan_request_of(&p, 7, &s);
    CHECK(s.steps == 4 && s.guidance < 0 && !s.negative_prompts, "flags fill the rest");
    plan_request_of(&p, 9, &s);
    CHECK(s.negative_prompts && !strcmp(s.negative_prompts[0], "n") && s.nnegative == 1, "a line's negative prompt");
    /* runs: seeds must continue and settings match */
    CHECK(plan_run_end(&p, 0, 11) == 2, "seed jump ends a run: %lld", (long long)plan_run_end(&p, 0, 11));
    CHECK(plan_run_end(&p, 2, 11) == 5, "line 2 alone (next line's seeds jump back)");
    CHECK(plan_run_end(&p, 5, 11) == 7, "steps differ: %lld", (long long)plan_run_end(&p, 5, 11));
    CHECK(plan_run_end(&p, 7, 11) == 9, "negative presence differs");
    CHECK(plan_run_end(&p, 7, 8) == 8, "limit");
    uint64_t d1 = plan_digest(&p);
    plan_free(&p);
    def.steps = 5;
    CHECK_OK(plan_build(&p, &l, 2, 10, &def, "p.txt"));
    CHECK(plan_digest(&p) == d1, "the digest covers the file, not the flags");
    l.e[2].steps = 8;
    CHECK(plan_digest(&p) != d1, "the digest ignores a line's steps");
    l.e[2].steps = 7;
    free(l.e[4].negative);
    l.e[4].negative = NULL;
    CHECK(plan_digest(&p) != d1, "the digest ignores a line's negative prompt");
    plan_free(&p);
    prompts_free(&l);

    CHECK_OK(parse("a\nb\n", &l)); /* text lines with equal settings join into one run */
    CHECK_OK(plan_build(&p, &l, 3, 0, NULL, "p.txt"));
    CHECK(plan_run_end(&p, 1, 6) == 6, "text run %lld", (long long)plan_run_end(&p, 1, 6));
    plan_free(&p);
    prompts_free(&l);
}

TEST(prompts_plan_absurd_total) {
    char *big = malloc(200 * 40);
    size_t o = 0;
    for (int i = 0; i < 200; i++) o += (size_t)sprintf(big + o, "{\"prompt\": \"x\", \"count\": 1000000}\n");
    prompt_list l;
    CHECK_OK(prompts_parse(big, o, "big.jsonl", 0, &l));
    free(big);
    plan p;
    sdc_status st = plan_build(&p, &l, 1, 0, NULL, "big.jsonl");
    prompts_free(&l);
    CHECK(st == SDC_ERR_ARG && strstr(sdc_last_error(), "big.jsonl:101: more than 100000000 images"),
          "status %d: %s", (int)st, sdc_last_error());
}

TEST(prompts_shard_selection) {
    int i, n;
    const char *src;
    CHECK_OK(shard_parse("2/5", &i, &n));
    CHECK(i == 2 && n == 5, "2/5 -> %d/%d", i, n);
    const char *bad[] = {"5/5", "-1/3", "1", "1/0", "a/b", "1/3x", "/3", "1/", "01234567890123456789012345678901/2"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        CHECK(shard_parse(bad[k], &i, &n) == SDC_ERR_ARG && strstr(sdc_last_error(), "--shard"), "'%s' accepted",
              bad[k]);
    shard_env none = {0};
    CHECK_OK(shard_select(NULL, 0, &none, &i, &n, &src));
    CHECK(i == 0 && n == 1, "default slice");
    shard_env slurm = {.slurm_id = "7", .slurm_count = "3", .slurm_min = "3", .slurm_step = "2"};
    CHECK_OK(shard_select(NULL, 0, &slurm, &i, &n, &src)); /* --array=3-7:2 -> tasks 3,5,7 */
    CHECK(i == 2 && n == 3 && strstr(src, "Slurm"), "slurm %d/%d", i, n);
    CHECK_OK(shard_select("0/2", 0, &slurm, &i, &n, &src));
    CHECK(i == 0 && n == 2, "--shard wins over Slurm");
    shard_env slurm_bad = {.slurm_id = "9", .slurm_count = "3", .slurm_min = "3", .slurm_step = "2"};
    CHECK(shard_select(NULL, 0, &slurm_bad, &i, &n, &src) == SDC_ERR_ARG, "task 9 of 3,5,7 accepted");
    shard_env slurm_partial = {.slurm_id = "1"};
    CHECK(shard_select(NULL, 0, &slurm_partial, &i, &n, &src) == SDC_ERR_ARG &&
              strstr(sdc_last_error(), "SLURM_ARRAY_TASK_COUNT"),
          "missing count: %s", sdc_last_error());
    shard_env k8s = {.k8s_index = "3"};
    CHECK_OK(shard_select(NULL, 4, &k8s, &i, &n, &src));
    CHECK(i == 3 && n == 4, "k8s %d/%d", i, n);
    CHECK(shard_select(NULL, 0, &k8s, &i, &n, &src) == SDC_ERR_ARG && strstr(sdc_last_error(), "--shards"),
          "index without --shards: %s", sdc_last_error());
    CHECK(shard_select(NULL, 3, &k8s, &i, &n, &src) == SDC_ERR_ARG, "index 3 of 3 accepted");
    CHECK(shard_select(NULL, 3, &none, &i, &n, &src) == SDC_ERR_ARG, "--shards without an index accepted");
    for (int64_t units = 0; units < 40; units += 7) /* slices tile the units exactly */
        for (int N = 1; N <= 9; N++) {
            int64_t next = 0;
            for (int k = 0; k < N; k++) {
                int64_t a, b;
                shard_range(units, k, N, &a, &b);
                CHECK(a == next && b >= a && b - a <= units / N + 1, "units %lld slice %d/%d: [%lld,%lld)",
                      (long long)units, k, N, (long long)a, (long long)b);
                next = b;
            }
            CHECK(next == units, "slices of %lld units end at %lld", (long long)units, (long long)next);
        }
}

TEST(prompts_tar_writer_and_scan) {
    const char *path = tmp_path("unit.tar");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0, "open %s", path);
    const char *names[3] = {"00000007.png", "00000007.txt", "00000007.json"};
    const char *data[3] = {"PNGDATA", "", "{\"a\": 1}"};
    size_t total = 0;
    for (int k = 0; k < 3; k++) {
        size_t n = strlen(data[k]), sz = tar_member_size(n);
        uint8_t *b = malloc(sz);
        CHECK_OK(tar_member_encode(b, names[k], data[k], n));
        CHECK(write(fd, b, sz) == (ssize_t)sz, "write");
        free(b);
        total += sz;
    }
    CHECK(total == 512 * 5, "member sizes %zu", total);
    tar_member *m;
    int nm;
    CHECK_OK(tar_scan(fd, &m, &nm, path));
    CHECK(nm == 3 && !strcmp(m[2].name, "00000007.json") && m[2].size == 8 && m[2].end == total, "scan %d", nm);
    free(m);
    CHECK(ftruncate(fd, (off_t)total - 1) == 0, "truncate");
    CHECK_OK(tar_scan(fd, &m, &nm, path));
    CHECK(nm == 2, "a torn last member is not complete: %d", nm);
    free(m);
    uint8_t junk[512];
    memset(junk, 'x', sizeof junk);
    CHECK(pwrite(fd, junk, 512, 1024) == 512, "garble"); /* the second member's header */
    CHECK_OK(tar_scan(fd, &m, &nm, path));
    CHECK(nm == 1, "scan stops at a bad checksum: %d", nm);
    free(m);
    /* a whole archive, read by tar(1) */
    CHECK(ftruncate(fd, 0) == 0, "truncate");
    uint8_t b[2048];
    CHECK_OK(tar_member_encode(b, "00000001.txt", "hello", 5));
    CHECK(pwrite(fd, b, 1024, 0) == 1024, "write");
    size_t tn = tar_trailer_size(1024);
    CHECK(tn == 10240 - 1024, "trailer %zu", tn);
    uint8_t *z = calloc(1, tn);
    CHECK(pwrite(fd, z, tn, 1024) == (ssize_t)tn, "write trailer");
    free(z);
    close(fd);
    char cmd[1200], out[256] = "";
    snprintf(cmd, sizeof cmd, "tar -tvf '%s' 2>&1", path);
    FILE *p = popen(cmd, "r");
    CHECK(p && fgets(out, sizeof out, p), "tar -tvf ran");
    int rc = pclose(p);
    CHECK(rc == 0 && strstr(out, "-rw-r--r--") && strstr(out, " 5 ") && strstr(out, "00000001.txt"), "tar -tvf: %s",
          out);
    CHECK(tar_member_encode(b, "", "x", 1) == SDC_ERR_ARG, "empty name accepted");
}

TEST(prompts_manifest_repair) {
    const char *path = tmp_path("manifest.jsonl");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0644);
    CHECK(fd >= 0, "open");
    const char *want = "{\"file_name\": \"00000000.png\"}\n{\"file_name\": \"00000001.png\"}\n";
    const char *states[] = {"", "{\"file_name\": \"00000000.png\"}\n{\"file_na", "{\"file_name\": \"00000000.png\"}\n",
                            "{\"file_name\": \"00000000.png\"}\n{\"file_name\": \"00000001.png\"}\n{\"x\"}\n",
                            "garbage\n", "{\"file_name\": \"00000000.png\"}\n{\"file_name\": \"00000001.png\"}\n"};
    for (size_t k = 0; k < sizeof states / sizeof states[0]; k++) {
        CHECK(ftruncate(fd, 0) == 0 && write(fd, states[k], strlen(states[k])) == (ssize_t)strlen(states[k]), "prep");
        CHECK_OK(manifest_repair(fd, path, want, strlen(want)));
        char got[256] = "";
        ssize_t n = pread(fd, got, sizeof got - 1, 0);
        got[n > 0 ? n : 0] = 0;
        CHECK(!strcmp(got, want), "state %zu repaired to '%s'", k, got);
    }
    close(fd);
}

TEST(prompts_json_text) {
    jbuf b = {0};
    jb_str(&b, "q\"b\\s\n\t\x01é");
    jb_puts(&b, " ");
    jb_float(&b, 7.5f);
    jb_puts(&b, " ");
    jb_float(&b, 1.1f);
    jb_puts(&b, " ");
    jb_float(&b, 100.0f);
    jb_puts(&b, " ");
    jb_float(&b, 1e-7f);
    jb_puts(&b, " ");
    jb_str(&b, NULL);
    CHECK(!strcmp(b.p, "\"q\\\"b\\\\s\\n\\t\\u0001é\" 7.5 1.1 100 0.0000001 null"), "got %s", b.p);
    jb_free(&b);
}

TEST(prompts_dataset_config_check) {
    ds_identity id = {.model = "tiny-sd", .model_fingerprint = 0x1234, .prompts_digest = 0xabc, .nprompts = 3,
                      .images = 9, .images_per_prompt = 3, .seed = 5, .guidance = -1, .karras = -1,
                      .format = "imagefolder", .batch_size = 2};
    ds_resolved res = {.steps = 50, .guidance = 7.5f, .width = 64, .height = 64, .scheduler = "pndm"}, got;
    jbuf b = {0};
    ds_config_render(&b, &id, &res);
    CHECK_OK(ds_config_check("DIR", b.p, &id, &got));
    CHECK(got.steps == 50 && got.guidance == 7.5f && got.width == 64 && !strcmp(got.scheduler, "pndm"), "resolved");
    ds_identity other = id;
    other.seed = 6;
    CHECK(ds_config_check("DIR", b.p, &other, &got) == SDC_ERR_ARG &&
              strstr(sdc_last_error(), "DIR holds a different data set: it was made with seed 5, this run has 6"),
          "seed: %s", sdc_last_error());
    other = id;
    other.model_fingerprint = 0x999;
    CHECK(ds_config_check("DIR", b.p, &other, &got) == SDC_ERR_ARG && strstr(sdc_last_error(), "model_fingerprint"),
          "model: %s", sdc_last_error());
    other = id;
    other.batch_size = 4;
    CHECK(ds_config_check("DIR", b.p, &other, &got) == SDC_ERR_ARG && strstr(sdc_last_error(), "batch_size 2"),
          "batch: %s", sdc_last_error());
    CHECK(ds_config_check("DIR", "{\"foo\": 1}", &id, &got) == SDC_ERR_ARG, "foreign file accepted");
    jb_free(&b);
}
