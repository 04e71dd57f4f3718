/* test_weights.c - parameters as stored: 16-bit matrices are handed out
 * straight from the file mapping (no float32 duplicate of the model), float
 * slots get widened copies, LoRA-style mutation widens a 16-bit slot, and
 * released pages read back unchanged. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/safetensors.h"
#include "nn/weights.h"
#include "sdc.h"

static const char *write_f16_file(void) {
    static uint16_t m[6 * 4], b[6];
    for (int i = 0; i < 24; i++) m[i] = sdc_f32_to_f16(0.25f * (float)(i - 12));
    for (int i = 0; i < 6; i++) b[i] = sdc_f32_to_f16(0.5f + (float)i);
    int64_t ms[2] = {6, 4}, bs[1] = {6};
    const char *path = tmp_path("w16.safetensors");
    st_writer *w = st_writer_new();
    if (!w || st_writer_add(w, "l.weight", ST_F16, 2, ms, m) || st_writer_add(w, "l.bias", ST_F16, 1, bs, b) ||
        st_writer_save(w, path)) {
        st_writer_free(w);
        return NULL;
    }
    st_writer_free(w);
    return path;
}

TEST(weights_keep_16bit_matrices_as_stored) {
    const char *path = write_f16_file();
    CHECK(path, "cannot write the test file");
    weights w;
    CHECK_OK(weights_open(&w, &path, 1));
    const void *mat = NULL;
    const float *bias = NULL;
    op_dtype dt = OP_F32;
    int64_t ms[2] = {6, 4}, bs[1] = {6};
    sdc_status st = weights_get_t(&w, &mat, &dt, 2, ms, "l.weight");
    if (!st) st = weights_get(&w, &bias, 1, bs, "l.bias");
    const st_tensor *t = weights_find(&w, "l.weight");
    int in_map = t && mat == t->data && dt == OP_F16;
    int widened = bias && (const void *)bias != weights_find(&w, "l.bias")->data && bias[5] == 5.5f;
    weights_release_pages(&w); /* must leave the data readable and unchanged */
    float v7 = mat ? sdc_f16_to_f32(((const uint16_t *)mat)[7]) : NAN;
    float *mut = NULL;
    if (!st) st = weights_mutable(&w, "l.weight", &mut, NULL, NULL);
    int now_f32 = !st && dt == OP_F32 && mat == mut && mut[7] == 0.25f * (7 - 12) && mut[23] == 0.25f * 11;
    weights_close(&w);
    CHECK(!st, "lookup failed: %s", sdc_last_error());
    CHECK(in_map, "the f16 matrix was not handed out from the mapping (dtype %d)", (int)dt);
    CHECK(widened, "the f16 bias was not widened to float");
    CHECK(v7 == 0.25f * (7 - 12), "data changed after releasing its pages: %g", v7);
    CHECK(now_f32, "weights_mutable did not switch the slot to an owned float32 copy");
}
