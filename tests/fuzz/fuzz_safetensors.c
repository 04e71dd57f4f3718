/* fuzz_safetensors.c - st_open on any bytes as a .safetensors file: the
 * header length, the JSON header (dtypes, shapes, offsets, overlaps,
 * __metadata__) and the conversions of what it accepts. */
#include <stdlib.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char path[64];
    int fd = fuzz_file(data, n, 0, path, sizeof path);
    if (fd < 0) return 0;
    st_file f;
    if (!st_open(&f, path)) {
        for (int i = 0; i < f.n; i++) {
            const st_tensor *t = st_find(&f, f.tensors[i].name);
            if (t != &f.tensors[i]) abort(); /* sorted, names unique: each found at its own entry */
            if (t->numel <= 4096) {          /* every dtype converts; small ones only, for speed */
                float *x = NULL;
                int64_t *v = NULL;
                if (!st_to_f32(t, &x)) free(x);
                if (!st_to_i64(t, &v)) free(v);
            }
        }
        st_close(&f);
    }
    close(fd);
    return 0;
}
