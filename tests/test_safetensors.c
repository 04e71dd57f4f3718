/* test_safetensors.c - reader validation on real and deliberately broken files. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/safetensors.h"

TEST(safetensors_reads_fixture) {
    st_file f;
    CHECK_OK(st_open(&f, fixture_path("units/randn.safetensors")));
    const st_tensor *t = st_find(&f, "seed42_1x4x8x8");
    CHECK(t != NULL, "seed42_1x4x8x8 missing");
    CHECK(t->dtype == ST_F32 && t->ndim == 4 && t->numel == 256, "bad meta");
    CHECK(st_find(&f, "no-such") == NULL, "found a missing key");
    st_close(&f);
}

static void write_raw(const char *path, const char *hdr, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    unsigned long long l = strlen(hdr);
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(l >> (8 * i));
    fwrite(b, 1, 8, fp);
    fwrite(hdr, 1, l, fp);
    if (n) fwrite(data, 1, n, fp);
    fclose(fp);
}

TEST(safetensors_rejects_garbage) {
    float d[4] = {1, 2, 3, 4};
    const char *cases[][2] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,32]}}", "outside"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", "byte size"},
        {"{\"a\":{\"dtype\":\"Q4\",\"shape\":[4],\"data_offsets\":[0,16]}}", "unknown dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", "invalid shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", "overlap"},
        {"{\"a\":", "not a JSON object"},
        {"[1,2]", "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p = tmp_path("bad.safetensors");
        write_raw(p, cases[i][0], d, sizeof d);
        st_file f;
        sdc_status st = st_open(&f, p);
        CHECK(st == SDC_ERR_FORMAT, "case %zu accepted", i);
        CHECK(strstr(sdc_last_error(), cases[i][1]), "case %zu: message '%s' lacks '%s'", i, sdc_last_error(), cases[i][1]);
    }
    /* header length pointing past the end, and a file shorter than 8 bytes */
    const char *p = tmp_path("short.safetensors");
    FILE *fp = fopen(p, "wb");
    fwrite("\xff\xff\x00\x00\x00\x00\x00\x00{}", 1, 10, fp);
    fclose(fp);
    st_file f;
    CHECK(st_open(&f, p) == SDC_ERR_FORMAT, "huge header length accepted");
    fp = fopen(p, "wb");
    fwrite("abc", 1, 3, fp);
    fclose(fp);
    CHECK(st_open(&f, p) == SDC_ERR_FORMAT, "3-byte file accepted");
    CHECK(st_open(&f, "/nonexistent/x.safetensors") == SDC_ERR_IO, "missing file accepted");
}

TEST(safetensors_truncated_fixture) {
    /* cut a real model file in half: every tensor past the cut must be refused */
    char *buf;
    FILE *fp = fopen(fixture_path("units/vae_tiny.safetensors"), "rb");
    CHECK(fp, "fixture missing");
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = malloc((size_t)n);
    CHECK(fread(buf, 1, (size_t)n, fp) == (size_t)n, "read");
    fclose(fp);
    const char *p = tmp_path("trunc.safetensors");
    fp = fopen(p, "wb");
    fwrite(buf, 1, (size_t)n / 2, fp);
    fclose(fp);
    free(buf);
    st_file f;
    CHECK(st_open(&f, p) == SDC_ERR_FORMAT, "truncated file accepted");
    CHECK(strstr(sdc_last_error(), "truncated"), "message: %s", sdc_last_error());
}

TEST(safetensors_writer_roundtrip_and_f16) {
    float d[6] = {1.5f, -2.25f, 0.0f, 65504.0f, 1e-7f, 3.14159f};
    int64_t sh[2] = {2, 3};
    st_writer *w = st_writer_new();
    CHECK_OK(st_writer_add(w, "x", ST_F32, 2, sh, d));
    const char *p = tmp_path("rt.safetensors");
    CHECK_OK(st_writer_save(w, p));
    st_writer_free(w);
    st_file f;
    CHECK_OK(st_open(&f, p));
    float *o;
    CHECK_OK(st_get_f32(&f, "x", 2, sh, &o));
    CHECK(!memcmp(o, d, sizeof d), "roundtrip differs");
    free(o);
    int64_t wrong[2] = {3, 2};
    CHECK(st_get_f32(&f, "x", 2, wrong, &o) == SDC_ERR_SHAPE, "wrong shape accepted");
    st_close(&f);
    /* f16 conversions: exact values round-trip, subnormals decode */
    float vals[] = {1.0f, -2.0f, 0.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f, 0.0f};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        CHECK(sdc_f16_to_f32(sdc_f32_to_f16(vals[i])) == vals[i], "f16 roundtrip %g", vals[i]);
    CHECK(sdc_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00, "ties to even");
}
