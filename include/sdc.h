/* sdc.h - public C API of sdc, a text-to-image engine for the Stable
 * Diffusion family, numerically faithful to Hugging Face diffusers.
 *
 *   sdc_model *m;  sdc_model_load(&m, "path/to/diffusers-folder", &load_opts);
 *   sdc_request r; sdc_request_defaults(&r); r.prompt = "a cat"; r.seed = 42;
 *   sdc_image *imgs; int n; sdc_generate(m, &r, &imgs, &n);
 *   ... sdc_images_free(imgs, n); sdc_model_free(m);
 *
 * Every fallible call returns sdc_status; sdc_last_error() then holds one
 * line that says what went wrong (file, key, value). */
#ifndef SDC_H
#define SDC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SDC_OK = 0,
    SDC_ERR_IO,          /* a file could not be opened, read or written */
    SDC_ERR_FORMAT,      /* a file or value is malformed */
    SDC_ERR_SHAPE,       /* a tensor has the wrong shape or dtype */
    SDC_ERR_ARG,         /* a caller-supplied argument is out of range */
    SDC_ERR_NOMEM,       /* allocation failed */
    SDC_ERR_UNSUPPORTED, /* valid, but not something sdc implements */
    SDC_ERR_INTERRUPTED, /* the caller's callback asked to stop */
} sdc_status;

const char *sdc_last_error(void);
const char *sdc_status_name(sdc_status st);

#ifdef __cplusplus
}
#endif
#endif
