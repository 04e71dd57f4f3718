/* inpaint_prep.h - AUTOMATIC1111's pixel work around an img2img / inpaint
 * request (modules/processing.py, images.py, masking.py): fitting the init
 * image and mask to the output size (resize_mode), the mask's binarizing,
 * inversion and blur, the "only masked" crop, the "fill" content and the
 * overlay that pastes the original pixels back outside the mask. Images
 * are 8-bit, interleaved, row by row. */
#ifndef SDC_TOOLS_SERVER_INPAINT_PREP_H
#define SDC_TOOLS_SERVER_INPAINT_PREP_H

#include <stdint.h>

/* images.resize_image: 0 just resize (Lanczos), 1 crop and resize (cover,
 * middle kept), 2 resize and fill (fit, edges stretched). out: w*h*ch. */
int prep_resize_mode(int mode, const uint8_t *in, int iw, int ih, int ch, uint8_t *out, int w, int h);
/* create_binary_mask from RGBA: the alpha (> 128) when the image has
 * transparency, else the gray (> 127); 0 or 255. out: w*h. */
void prep_binary_mask(const uint8_t *rgba, int64_t n, uint8_t *out);
/* cv2.GaussianBlur of a gray image with sigma sx along x, then sy along y
 * (kernel 2 * int(2.5 s + 0.5) + 1, reflected borders; 0: none), in place. */
void prep_mask_blur(uint8_t *m, int w, int h, int sx, int sy);
/* masking.get_crop_region_v2 + expand_crop_region: the mask's bounding box
 * grown by pad, then to the aspect of pw x ph within the image; 0 when the
 * mask is empty. box: x1, y1, x2, y2. */
int prep_crop_region(const uint8_t *m, int w, int h, int pad, int pw, int ph, int box[4]);
/* masking.fill: the masked region (mask > 0) of an RGB image painted with
 * the surrounding colours (blurred at radii 256 .. 0, composited), in place;
 * 0: out of memory. */
int prep_fill(uint8_t *rgb, const uint8_t *mask, int w, int h);
/* apply_overlay: base (RGB, bw x bh) is the generated image placed at
 * (x, y) size (pw x ph) of a canvas the original's size (ow x oh; outside:
 * transparent), then the original composited over it with alpha 255 - mask.
 * out: ow*oh*3. */
int prep_overlay(const uint8_t *gen, int gw, int gh, const uint8_t *orig, const uint8_t *mask, int ow, int oh,
                 const int paste[4], uint8_t *out);

#endif
