/* api_img2img.c - what POST /sdapi/v1/img2img adds to txt2img's request
 * (api_txt2img.c runs both): A1111's img2img fields (init_images as base64
 * or data URLs, mask, denoising_strength, resize_mode, mask_blur,
 * inpainting_fill, inpaint_full_res + padding, inpainting_mask_invert) turned
 * into the library's init image, mask and strength, and A1111's overlay
 * after the run; and txt2img's hires fix fields (enable_hr ...). The pixel
 * work is inpaint_prep.c; docs/server.md lists where this differs from A1111
 * and from diffusers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api_img2img.h"
#include "inpaint_prep.h"
#include "json_util.h"

#define MAX_INIT_SIDE 8192

/* a base64 PNG or data URL -> RGBA; 0 with a 422 naming the field */
static int decode_image(const char *field, const char *s, uint8_t **rgba, int *w, int *h, http_reply *r) {
    if (!strncmp(s, "data:", 5)) { /* data:image/png;base64,.... */
        const char *comma = strchr(s, ',');
        s = comma ? comma + 1 : s + strlen(s);
    }
    uint8_t *png = NULL;
    size_t n = 0;
    if (b64_decode(s, strlen(s), &png, &n)) {
        reply_invalid(r, "%s: not valid base64", field);
        return 0;
    }
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n < 8 || memcmp(png, sig, 8)) {
        free(png);
        reply_invalid(r, "%s: not a PNG image (this server reads init images and masks as PNG)", field);
        return 0;
    }
    sdc_status st = sdc_png_decode_rgba(png, n, rgba, w, h);
    free(png);
    if (st) {
        reply_invalid(r, "%s: %s", field, sdc_last_error());
        return 0;
    }
    if (*w > MAX_INIT_SIDE || *h > MAX_INIT_SIDE) {
        free(*rgba);
        *rgba = NULL;
        reply_invalid(r, "%s: %dx%d is larger than this server reads (%d per side)", field, *w, *h, MAX_INIT_SIDE);
        return 0;
    }
    return 1;
}

static uint8_t *rgba_to_rgb(const uint8_t *rgba, int64_t n) {
    uint8_t *o = malloc((size_t)n * 3);
    for (int64_t i = 0; o && i < n; i++) memcpy(o + 3 * i, rgba + 4 * i, 3); /* images.flatten of opaque pixels */
    return o;
}

/* a bool that clients also send as 0 / 1 (A1111's own page does) */
static int flag(const cJSON *req, const char *key, int *out, http_reply *r) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, key);
    if (cJSON_IsNumber(v)) {
        *out = v->valuedouble != 0;
        return 1;
    }
    return field_bool(req, key, out, r);
}

static int oom(http_reply *r) {
    reply_error(r, 500, "MemoryError", "out of memory");
    return 0;
}

int i2i_parse(const cJSON *req, int W, int H, sdc_request *q, i2i_prep *p, http_reply *r) {
    memset(p, 0, sizeof *p);
    const cJSON *imgs = cJSON_GetObjectItemCaseSensitive(req, "init_images");
    if (!cJSON_IsArray(imgs) || cJSON_GetArraySize(imgs) < 1 || !cJSON_IsString(cJSON_GetArrayItem(imgs, 0))) {
        reply_invalid(r, "init_images: expected a list of base64 PNG images (one is used)");
        return 0;
    }
    if (cJSON_GetArraySize(imgs) > 1) {
        reply_invalid(r, "init_images: this server takes one init image per request, got %d", cJSON_GetArraySize(imgs));
        return 0;
    }
    /* StableDiffusionProcessingImg2Img's defaults */
    float strength = 0.75f, padding_f = 0;
    int resize_mode = 0, blur = 4, blur_x = -1, blur_y = -1, fill = 0, full_res = 1, padding = 0, invert = 0;
    const char *mask_s = NULL;
    if (!field_number(req, "denoising_strength", 0, 1, &strength, r) ||
        !field_int(req, "resize_mode", 0, 3, &resize_mode, r) || !field_int(req, "mask_blur", 0, 64, &blur, r) ||
        !field_int(req, "mask_blur_x", 0, 64, &blur_x, r) || !field_int(req, "mask_blur_y", 0, 64, &blur_y, r) ||
        !field_int(req, "inpainting_fill", 0, 3, &fill, r) || !flag(req, "inpaint_full_res", &full_res, r) ||
        !field_number(req, "inpaint_full_res_padding", 0, 1024, &padding_f, r) ||
        !field_int(req, "inpainting_mask_invert", 0, 1, &invert, r) || !field_string(req, "mask", &mask_s, r))
        return 0;
    padding = (int)padding_f;
    if (!(strength > 0)) {
        reply_invalid(r, "denoising_strength: must be more than 0 (img2img keeps the image at 0), got %g",
                      (double)strength);
        return 0;
    }
    if (resize_mode == 3) {
        reply_invalid(r, "resize_mode 3 (just resize, latent upscale) is not supported; use 0 (just resize), 1 (crop "
                         "and resize) or 2 (resize and fill)");
        return 0;
    }
    /* A1111's mask_blur sets both directions unless mask_blur_x / _y say otherwise */
    if (blur_x < 0) blur_x = blur;
    if (blur_y < 0) blur_y = blur;
    uint8_t *rgba = NULL, *mrgba = NULL;
    int iw, ih, mw = 0, mh = 0;
    if (!decode_image("init_images[0]", cJSON_GetArrayItem(imgs, 0)->valuestring, &rgba, &iw, &ih, r)) return 0;
    if (mask_s && *mask_s && !decode_image("mask", mask_s, &mrgba, &mw, &mh, r)) {
        free(rgba);
        return 0;
    }
    int ok = 1;
    uint8_t *orig = rgba_to_rgb(rgba, (int64_t)iw * ih), *bin = NULL;
    free(rgba);
    if (!orig) ok = oom(r);
    if (ok && mrgba) {
        if (mw != iw || mh != ih) {
            reply_invalid(r, "mask: %dx%d, but the init image is %dx%d (they must be the same size)", mw, mh, iw, ih);
            ok = 0;
        } else if (!(bin = malloc((size_t)mw * mh))) {
            ok = oom(r);
        } else {
            prep_binary_mask(mrgba, (int64_t)mw * mh, bin);
            if (invert)
                for (int64_t i = 0; i < (int64_t)mw * mh; i++) bin[i] = 255 - bin[i];
            prep_mask_blur(bin, mw, mh, blur_x, blur_y);
        }
    }
    free(mrgba);
    p->strength = strength;
    q->strength = strength;
    if (ok && bin && full_res && prep_crop_region(bin, iw, ih, padding, W, H, p->box)) {
        /* only masked: the crop of image and mask at W x H; the result goes back into the original's pixels */
        const int cw = p->box[2] - p->box[0], chh = p->box[3] - p->box[1];
        uint8_t *ci = malloc((size_t)cw * chh * 3), *cm = malloc((size_t)cw * chh);
        p->init = malloc((size_t)W * H * 3), p->mask = malloc((size_t)W * H);
        if (!ci || !cm || !p->init || !p->mask) ok = oom(r);
        for (int y = 0; ok && y < chh; y++) {
            memcpy(ci + (size_t)y * cw * 3, orig + ((size_t)(p->box[1] + y) * iw + p->box[0]) * 3, (size_t)cw * 3);
            memcpy(cm + (size_t)y * cw, bin + (size_t)(p->box[1] + y) * iw + p->box[0], (size_t)cw);
        }
        if (ok && (!prep_resize_mode(2, ci, cw, chh, 3, p->init, W, H) ||
                   !prep_resize_mode(2, cm, cw, chh, 1, p->mask, W, H)))
            ok = oom(r);
        free(ci), free(cm);
        p->full_res = 1;
        p->ow = iw, p->oh = ih;
        p->orig = orig, orig = NULL;
        p->overlay_mask = bin, bin = NULL; /* the blurred mask as it is */
    } else if (ok) {
        p->init = malloc((size_t)W * H * 3);
        if (!p->init || !prep_resize_mode(resize_mode, orig, iw, ih, 3, p->init, W, H)) ok = oom(r);
        if (ok && bin) {
            p->mask = malloc((size_t)W * H);
            p->overlay_mask = malloc((size_t)W * H);
            if (!p->mask || !p->overlay_mask || !prep_resize_mode(resize_mode, bin, iw, ih, 1, p->mask, W, H))
                ok = oom(r);
            for (int64_t i = 0; ok && i < (int64_t)W * H; i++) /* mask_for_overlay: the mask doubled, clipped */
                p->overlay_mask[i] = p->mask[i] > 127 ? 255 : (uint8_t)(2 * p->mask[i]);
            if (ok && !(p->orig = malloc((size_t)W * H * 3))) ok = oom(r);
            if (ok) memcpy(p->orig, p->init, (size_t)W * H * 3);
            p->ow = W, p->oh = H;
        }
    }
    free(orig), free(bin);
    if (ok && p->mask && fill == 0 && !prep_fill(p->init, p->mask, W, H)) ok = oom(r);
    if (!ok) {
        i2i_free(p);
        return 0;
    }
    q->init_image = p->init, q->init_width = W, q->init_height = H;
    if (p->mask) {
        q->mask = p->mask, q->mask_width = W, q->mask_height = H;
        /* A1111's 0 fill (pixels, above) and 1 original both start from the image's latents */
        q->inpaint_fill = fill == 2 ? SDC_FILL_LATENT_NOISE : fill == 3 ? SDC_FILL_LATENT_NOTHING : SDC_FILL_ORIGINAL;
    }
    return 1;
}

int i2i_finish(const i2i_prep *p, sdc_image *img) {
    if (!p->overlay_mask) return 1; /* img2img without a mask: diffusers' image as it is */
    uint8_t *out = malloc((size_t)p->ow * p->oh * 3);
    const int paste[4] = {p->box[0], p->box[1], p->box[2] - p->box[0], p->box[3] - p->box[1]};
    if (!out || !prep_overlay(img->rgb, img->width, img->height, p->orig, p->overlay_mask, p->ow, p->oh,
                              p->full_res ? paste : NULL, out)) {
        free(out);
        return 0;
    }
    free(img->rgb);
    img->rgb = out, img->width = p->ow, img->height = p->oh;
    return 1;
}

void i2i_free(i2i_prep *p) {
    free(p->init), free(p->mask), free(p->orig), free(p->overlay_mask);
    memset(p, 0, sizeof *p);
}

int hires_parse(const cJSON *req, sdc_request *q, http_reply *r) {
    int enable = 0, steps = 0, rx = 0, ry = 0;
    float scale = 2.0f, strength = 0.7f; /* A1111's hr_scale and denoising_strength defaults for the API */
    const char *up = NULL;
    if (!field_bool(req, "enable_hr", &enable, r)) return 0;
    if (!enable) return 1;
    if (!field_number(req, "hr_scale", 1, SDC_MAX_HIRES_SCALE, &scale, r) ||
        !field_int(req, "hr_second_pass_steps", 0, SDC_MAX_STEPS, &steps, r) ||
        !field_number(req, "denoising_strength", 0, 1, &strength, r) ||
        !field_int(req, "hr_resize_x", 0, SDC_MAX_SIDE, &rx, r) ||
        !field_int(req, "hr_resize_y", 0, SDC_MAX_SIDE, &ry, r) || !field_string(req, "hr_upscaler", &up, r))
        return 0;
    static const char *const modes[][2] = {{"Latent", "latent"},
                                           {"Latent (bilinear)", "latent"},
                                           {"Latent (nearest)", "latent-nearest"},
                                           {"Latent (nearest-exact)", "latent-nearest-exact"}};
    const char *mode = "latent";
    if (up && *up) {
        mode = NULL;
        for (size_t i = 0; i < sizeof modes / sizeof modes[0] && !mode; i++)
            if (!strcmp(up, modes[i][0])) mode = modes[i][1];
        if (!mode) {
            reply_invalid(r,
                          "hr_upscaler: '%.60s' is not one this server has; it has Latent, Latent (bilinear), Latent "
                          "(nearest), Latent (nearest-exact) (image upscalers such as ESRGAN or Lanczos are not "
                          "available)",
                          up);
            return 0;
        }
    }
    if (!(strength > 0)) {
        reply_invalid(r, "denoising_strength: the hires fix needs more than 0, got %g", (double)strength);
        return 0;
    }
    if (rx || ry) q->hires_width = rx, q->hires_height = ry;
    else q->hires_scale = scale;
    q->hires_steps = steps, q->hires_strength = strength, q->hires_upscaler = mode;
    return 1;
}

void i2i_echo(cJSON *params, const cJSON *req, int img2img) {
    static const char *const i2i_keys[] = {"init_images",
                                           "resize_mode",
                                           "denoising_strength",
                                           "mask",
                                           "mask_blur",
                                           "inpainting_fill",
                                           "inpaint_full_res",
                                           "inpaint_full_res_padding",
                                           "inpainting_mask_invert",
                                           NULL};
    static const char *const hr_keys[] = {"enable_hr",   "hr_scale",    "hr_upscaler",        "hr_second_pass_steps",
                                          "hr_resize_x", "hr_resize_y", "denoising_strength", NULL};
    for (const char *const *k = img2img ? i2i_keys : hr_keys; *k; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, *k);
        if (v && !cJSON_HasObjectItem(params, *k)) cJSON_AddItemToObject(params, *k, cJSON_Duplicate(v, 1));
    }
}
