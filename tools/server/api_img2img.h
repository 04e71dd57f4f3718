/* api_img2img.h - img2img / inpainting fields of an A1111 request and the
 * hires fix fields of txt2img (api_img2img.c), for api_txt2img.c. */
#ifndef SDC_TOOLS_SERVER_API_IMG2IMG_H
#define SDC_TOOLS_SERVER_API_IMG2IMG_H

#include <cjson/cJSON.h>

#include "server.h"

typedef struct {
    uint8_t *init, *mask;  /* what the library gets: W x H RGB and gray (mask NULL: plain img2img) */
    uint8_t *orig;         /* the overlay's original pixels, ow x oh */
    uint8_t *overlay_mask; /* A1111's mask_for_overlay, ow x oh (NULL: no overlay) */
    int ow, oh;            /* the output: W x H, or the init image's size with inpaint_full_res */
    int full_res, box[4];  /* inpaint_full_res: the crop x1, y1, x2, y2 the run repaints */
    double strength;
} i2i_prep;

/* init_images, mask and the rest into q (its pixels owned by p) for an
 * output of W x H; 0 with a 4xx reply. */
int i2i_parse(const cJSON *req, int W, int H, sdc_request *q, i2i_prep *p, http_reply *r);
/* A1111's overlay on one finished image (it may change size); 0: out of memory */
int i2i_finish(const i2i_prep *p, sdc_image *img);
void i2i_free(i2i_prep *p);
/* enable_hr, hr_scale, hr_upscaler (the Latent modes), hr_second_pass_steps,
 * denoising_strength, hr_resize_x / _y into q; 0 with a 422 reply. */
int hires_parse(const cJSON *req, sdc_request *q, http_reply *r);
/* the img2img (or hires) fields of req echoed into the response's parameters */
void i2i_echo(cJSON *params, const cJSON *req, int img2img);

#endif
