/* fuzz_single_file.c - single-file checkpoint detection and key mapping: the
 * input is a safetensors header (JSON) over 64 MiB of zero data, so real
 * checkpoint headers (the seeds) open; ckpt_detect says what it is, the plan
 * picks configs and the prediction type, every key is mapped to its
 * diffusers name, and every UNet/VAE name maps back. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "family/ldm_keymap.h"
#include "family/single_file.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char path[64];
    int fd = fuzz_safetensors_from_header(data, n, path, sizeof path);
    if (fd < 0) return 0;
    st_file f;
    if (!st_open(&f, path)) {
        single_file_plan p;
        sdc_load_options opt = {.prediction = n % 3 == 0 ? "v" : NULL};
        if (!single_file_plan_make(&f, &opt, &p)) {
            for (int i = 0; i < f.n; i++) {
                char out[512], back[512];
                sf_component comp;
                sf_map_kind k = single_file_map_key(&p, f.tensors[i].name, &comp, out, sizeof out);
                if (k != SF_UNUSED && !out[0]) abort(); /* a mapped key has a name */
                if (k == SF_SAME && comp == SF_UNET) ldm_unet_name(&p.unet, out, back, sizeof back);
                if (k == SF_SAME && comp == SF_VAE) ldm_vae_name(&p.vae, out, back, sizeof back);
            }
            single_file_plan_free(&p);
        }
        st_close(&f);
    }
    close(fd);
    return 0;
}
