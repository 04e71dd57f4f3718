/* request.c - sdc_request_init, and the one place a request is checked
 * (request_resolve, sdc_request_check): counts, ranges and names first (no
 * model needed), then what the model decides - its defaults, the size
 * multiple, VAE tiles, the scheduler its config makes with these settings. */
#include "pipeline/request.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn/vae_tiling.h"
#include "pipeline/prompt_loras.h"
#include "text/a1111_prompt.h"

void sdc_request_init(sdc_request *r) {
    memset(r, 0, sizeof *r);
    r->batch = 1;
    r->guidance = -1.0f;
    r->karras = -1;
    r->strength = -1.0;
    r->hires_strength = -1.0;
}

int request_steps_run(int steps, double strength) {
    double prod = (double)steps * strength; /* Python: int(num_inference_steps * strength) */
    return prod >= steps ? steps : (int)prod;
}

/* < 0: the default; else (0, 1] (NaN is neither) */
static sdc_status check_strength(const char *what, double s) {
    if (s < 0) return SDC_OK;
    if (!(s > 0 && s <= 1)) return sdc_fail(SDC_ERR_ARG, "%s %g out of range (0, 1]", what, s);
    return SDC_OK;
}

/* init image, mask and hires fix: what needs no model */
static sdc_status check_img2img(const sdc_request *r) {
    if (r->init_image) {
        if (r->init_width < 1 || r->init_height < 1 || r->init_width > SDC_MAX_INIT_SIDE ||
            r->init_height > SDC_MAX_INIT_SIDE)
            return sdc_fail(SDC_ERR_ARG, "init image size %dx%d out of range (1..%d per side)", r->init_width,
                            r->init_height, SDC_MAX_INIT_SIDE);
        SDC_TRY(check_strength("strength", r->strength));
    } else {
        if (r->mask) return sdc_fail(SDC_ERR_ARG, "a mask needs an init image (inpainting repaints part of one)");
        if (!(r->strength < 0))
            return sdc_fail(SDC_ERR_ARG,
                            "strength %g applies to img2img: give an init image (the hires fix has its own "
                            "strength)",
                            r->strength);
    }
    if (r->mask && (r->mask_width != r->init_width || r->mask_height != r->init_height))
        return sdc_fail(SDC_ERR_ARG, "the mask is %dx%d but the init image is %dx%d: they must be the same size",
                        r->mask_width, r->mask_height, r->init_width, r->init_height);
    if (r->inpaint_fill < SDC_FILL_ORIGINAL || r->inpaint_fill > SDC_FILL_LATENT_NOTHING)
        return sdc_fail(SDC_ERR_ARG, "inpaint fill %d unknown (0 original, 1 latent noise, 2 latent nothing)",
                        r->inpaint_fill);
    if (r->inpaint_fill && !r->mask) return sdc_fail(SDC_ERR_ARG, "an inpaint fill needs a mask");
    if (!isfinite(r->hires_scale) ||
        (r->hires_scale != 0 && (r->hires_scale < 1 || r->hires_scale > SDC_MAX_HIRES_SCALE)))
        return sdc_fail(SDC_ERR_ARG, "hires scale %g out of range (0: off, or 1..%d)", r->hires_scale,
                        SDC_MAX_HIRES_SCALE);
    if (r->hires_width < 0 || r->hires_height < 0 || r->hires_width > SDC_MAX_SIDE || r->hires_height > SDC_MAX_SIDE)
        return sdc_fail(SDC_ERR_ARG, "hires size %dx%d out of range (0..%d)", r->hires_width, r->hires_height,
                        SDC_MAX_SIDE);
    int hires = r->hires_scale != 0 || r->hires_width || r->hires_height;
    if (r->hires_scale != 0 && (r->hires_width || r->hires_height))
        return sdc_fail(SDC_ERR_ARG, "give a hires scale or a hires size, not both");
    if (!hires && (r->hires_steps || !(r->hires_strength < 0) || r->hires_upscaler))
        return sdc_fail(SDC_ERR_ARG, "hires steps, strength and upscaler need a hires scale (or size)");
    if (hires && r->init_image)
        return sdc_fail(SDC_ERR_ARG, "the hires fix is for text to image; with an init image ask for the output size "
                                     "(width, height) instead");
    if (r->hires_steps < 0 || r->hires_steps > SDC_MAX_STEPS)
        return sdc_fail(SDC_ERR_ARG, "hires steps %d out of range (0..%d)", r->hires_steps, SDC_MAX_STEPS);
    SDC_TRY(check_strength("hires strength", r->hires_strength));
    if (r->hires_upscaler && latent_mode_parse(r->hires_upscaler) < 0)
        return sdc_fail(SDC_ERR_ARG, "unknown hires upscaler '%s' (latent, latent-nearest or latent-nearest-exact)",
                        r->hires_upscaler);
    return SDC_OK;
}

static sdc_status check_size(const char *what, int v) {
    if (v && (v < 8 || v > SDC_MAX_SIDE || v % 8))
        return sdc_fail(SDC_ERR_ARG, "%s %d is invalid: a multiple of 8 in 8..%d", what, v, SDC_MAX_SIDE);
    return SDC_OK;
}

static sdc_status check_steps(int steps) {
    if (steps < 1 || steps > SDC_MAX_STEPS)
        return sdc_fail(SDC_ERR_ARG, "steps %d out of range (1..%d)", steps, SDC_MAX_STEPS);
    return SDC_OK;
}

static sdc_status check_guidance(float g) {
    if (!isfinite(g) || g < 0 || g > 100) return sdc_fail(SDC_ERR_ARG, "guidance %g out of range (0..100)", (double)g);
    return SDC_OK;
}

/* "a1111": every prompt parses (A1111 refuses a weight like "1.2.3" too) */
static sdc_status check_syntax(const sdc_request *r) {
    if (r->pad_cond_uncond < 0 || r->pad_cond_uncond > 1)
        return sdc_fail(SDC_ERR_ARG, "pad_cond_uncond %d (0 or 1)", r->pad_cond_uncond);
    if (!r->prompt_syntax || !strcmp(r->prompt_syntax, "plain")) /* one length, 77 tokens: nothing to pad */
        return r->pad_cond_uncond ? sdc_fail(SDC_ERR_ARG, "pad_cond_uncond needs prompt syntax a1111") : SDC_OK;
    if (strcmp(r->prompt_syntax, "a1111"))
        return sdc_fail(SDC_ERR_ARG, "unknown prompt syntax '%s' (plain or a1111)", r->prompt_syntax);
    for (int i = 0; i < r->nprompts + (r->negative_prompts ? r->nnegative : 0); i++) {
        int pos = i < r->nprompts;
        sdc_prompt_networks nets; /* a prompt is parsed without its <lora:...> tags, as it is encoded */
        SDC_TRY(sdc_prompt_networks_parse(pos ? r->prompts[i] : "", &nets));
        const char *t = pos ? nets.text : r->negative_prompts[i - r->nprompts];
        a1111_parse p;
        sdc_status st = a1111_parse_prompt(t, strlen(t), &p);
        sdc_prompt_networks_free(&nets);
        if (st) return sdc_wrap(st, "%s %d: ", pos ? "prompt" : "negative prompt", pos ? i : i - r->nprompts);
        a1111_parse_free(&p);
    }
    return SDC_OK;
}

/* The schedule type a request asks for: schedule, else karras (1: Karras, 0:
 * Uniform), else the one a legacy sampler name ("DPM++ 2M Karras") put in
 * the config, else Automatic; set on the config once the sampler is known
 * to take it. schedule and karras must agree when both are given. */
static sdc_status apply_schedule(const sdc_request *r, sched_config *sc) {
    int k = -1;
    const char *what = "--karras";
    if (r->schedule) {
        k = sched_schedule_find(r->schedule);
        if (k < 0) return sched_schedule_unknown(r->schedule);
        if (r->karras >= 0 && k != (r->karras ? SCHED_SCHEDULE_KARRAS : SCHED_SCHEDULE_UNIFORM))
            return sdc_fail(SDC_ERR_ARG, "schedule type '%s' and karras %d disagree", r->schedule, r->karras);
        what = NULL;
    } else if (r->karras >= 0) {
        k = r->karras ? SCHED_SCHEDULE_KARRAS : SCHED_SCHEDULE_UNIFORM;
    }
    if (k < 0) return SDC_OK; /* the config's own (a legacy "X Karras" name's included) */
    char how[96];
    if (!what) {
        snprintf(how, sizeof how, "schedule type %s", sdc_schedule_at(k)->label);
        what = how;
    }
    return sched_config_set_schedule(sc, (sched_schedule)k, what);
}

/* what needs no model */
static sdc_status check_fields(const sdc_request *r) {
    if (r->nprompts < 1 || !r->prompts) return sdc_fail(SDC_ERR_ARG, "no prompt given");
    for (int i = 0; i < r->nprompts; i++)
        if (!r->prompts[i]) return sdc_fail(SDC_ERR_ARG, "prompt %d is missing", i);
    if (r->batch_size < 0 || r->batch_size > SDC_MAX_BATCH)
        return sdc_fail(SDC_ERR_ARG, "batch size %d out of range (0..%d)", r->batch_size, SDC_MAX_BATCH);
    int64_t total = (int64_t)r->batch * r->nprompts, max = r->batch_size ? SDC_MAX_IMAGES : SDC_MAX_BATCH;
    if (r->batch < 1 || total > max)
        return sdc_fail(SDC_ERR_ARG, "%s of %lld images is out of range (1..%lld%s)", r->batch_size ? "request" : "batch",
                        (long long)total, (long long)max, r->batch_size ? "" : "; set a batch size to split it");
    if (r->negative_prompts && r->nnegative != 1 && r->nnegative != r->nprompts)
        return sdc_fail(SDC_ERR_ARG, "%d negative prompts for %d prompts (give one, or one per prompt)",
                        r->nnegative, r->nprompts);
    for (int i = 0; r->negative_prompts && i < r->nnegative; i++)
        if (!r->negative_prompts[i]) return sdc_fail(SDC_ERR_ARG, "negative prompt %d is missing", i);
    if (r->dump && r->batch_size && total > r->batch_size)
        return sdc_fail(SDC_ERR_ARG, "dumping intermediates needs all %lld images in one UNet batch (batch size 0)",
                        (long long)total);
    SDC_TRY(check_size("width", r->width));
    SDC_TRY(check_size("height", r->height));
    if (r->steps) SDC_TRY(check_steps(r->steps));
    if (r->guidance >= 0) SDC_TRY(check_guidance(r->guidance));
    if (!isfinite(r->eta) || r->eta < 0 || r->eta > 1)
        return sdc_fail(SDC_ERR_ARG, "eta %g out of range (0..1)", (double)r->eta);
    if (r->clip_skip < 0 || r->clip_skip > SDC_MAX_CLIP_SKIP)
        return sdc_fail(SDC_ERR_ARG, "clip skip %d out of range (0..%d)", r->clip_skip, SDC_MAX_CLIP_SKIP);
    if (r->karras < -1 || r->karras > 1) return sdc_fail(SDC_ERR_ARG, "karras %d (-1, 0 or 1)", r->karras);
    if (r->schedule && sched_schedule_find(r->schedule) < 0) return sched_schedule_unknown(r->schedule);
    if (r->timestep_spacing && strcmp(r->timestep_spacing, "leading") && strcmp(r->timestep_spacing, "trailing") &&
        strcmp(r->timestep_spacing, "linspace"))
        return sdc_fail(SDC_ERR_ARG, "unknown timestep spacing '%s' (leading, trailing or linspace)",
                        r->timestep_spacing);
    noise_rng rng;
    SDC_TRY(noise_rng_parse(r->rng, &rng));
    SDC_TRY(check_img2img(r));
    if (r->vae_tile_size && !r->vae_tiling) return sdc_fail(SDC_ERR_ARG, "a VAE tile size needs VAE tiling");
    SDC_TRY(check_syntax(r));
    if (r->vae_decode && strcmp(r->vae_decode, "full") && strcmp(r->vae_decode, "taesd"))
        return sdc_fail(SDC_ERR_ARG, "unknown VAE decode method '%s' (full or taesd)", r->vae_decode);
    if (r->preview_every < 0 || r->preview_every > SDC_MAX_STEPS)
        return sdc_fail(SDC_ERR_ARG, "preview every %d steps is out of range (0..%d)", r->preview_every, SDC_MAX_STEPS);
    if (r->scheduler) { /* the name alone; with a model, its config decides the rest */
        sched_config sc;
        SDC_TRY(sched_config_from_json(NULL, r->scheduler, &sc));
        SDC_TRY(apply_schedule(r, &sc));
    }
    return SDC_OK;
}

/* --vae-tiling: diffusers' tile is the VAE config's sample_size (a folder's
 * vae/config.json); a single file's built-in configs give the model's native
 * size (SD 1.x 512, SD 2.1 768, SDXL 1024). */
static sdc_status vae_tile_size(const sdc_model *m, const sdc_request *r, int *px) {
    int sample = unet_get_config(m->unet)->sample_size * m->vae_scale;
    if (r->vae_tile_size) {
        *px = r->vae_tile_size;
    } else {
        if (!m->is_file) {
            char p[4096];
            snprintf(p, sizeof p, "%s/vae/config.json", m->path);
            SDC_TRY(vae_tiling_config_sample_size(p, &sample));
        }
        *px = vae_tiling_default_size(sample, m->vae_scale);
    }
    vae_tile_geometry g;
    return vae_tile_geometry_make(*px, m->vae_scale, &g);
}

/* The output size from the init image where the request leaves it open
 * (diffusers: the image's size rounded down to a multiple of the VAE's
 * scale), and the strength's default. */
static sdc_status resolve_init(const sdc_model *m, const sdc_request *r, request_plan *P) {
    int f = m->vae_scale;
    if (!r->width) P->W = r->init_width - r->init_width % f;
    if (!r->height) P->H = r->init_height - r->init_height % f;
    if (P->W < 8 || P->H < 8 || P->W > SDC_MAX_SIDE || P->H > SDC_MAX_SIDE)
        return sdc_fail(SDC_ERR_ARG,
                        "the init image is %dx%d: the output would be %dx%d (8..%d per side; give width "
                        "and height to resize it)",
                        r->init_width, r->init_height, P->W, P->H, SDC_MAX_SIDE);
    P->init = 1;
    P->inpaint = r->mask != NULL;
    P->strength = r->strength >= 0 ? r->strength : r->mask ? 1.0 : m->fam->default_strength;
    if (!vae_has_encoder(m->vae))
        return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: the VAE has no encoder (no encoder.* weights), which img2img needs",
                        m->name);
    return SDC_OK;
}

/* What the UNet's input channels ask for: the latents (text to image,
 * img2img, inpainting by blending), or an inpainting UNet's latents + mask
 * + masked-image latents, which needs an init image and a mask. */
static sdc_status resolve_unet_inputs(const sdc_model *m, const sdc_request *r, request_plan *P) {
    int in = unet_get_config(m->unet)->in_channels, C = vae_latent_channels(m->vae);
    if (in == C) return SDC_OK;
    if (in != 2 * C + 1)
        return sdc_fail(SDC_ERR_UNSUPPORTED,
                        "%s: the UNet takes %d input channels; sdc runs %d (latents) and %d "
                        "(inpainting: latents, mask, masked-image latents)",
                        m->name, in, C, 2 * C + 1);
    if (!r->init_image || !r->mask)
        return sdc_fail(SDC_ERR_ARG,
                        "%s is an inpainting model (its UNet takes %d input channels: latents, mask and "
                        "masked-image latents): give an init image and a mask",
                        m->name, in);
    P->unet_extra = 1;
    return SDC_OK;
}

/* A1111's hires sizes: hr_scale (int(width * scale)), or hr_resize_x/_y
 * (one of them 0: the other from the aspect; another aspect: upscale to
 * cover, then the middle cropped, in latent pixels). */
static sdc_status resolve_hires(const sdc_model *m, const sdc_request *r, request_plan *P) {
    int f = m->vae_scale, up_w, up_h, tw, th;
    if (r->hires_scale != 0) {
        up_w = tw = (int)(P->W * r->hires_scale);
        up_h = th = (int)(P->H * r->hires_scale);
    } else if (!r->hires_height) {
        up_w = tw = r->hires_width;
        up_h = th = (int)((int64_t)r->hires_width * P->H / P->W);
    } else if (!r->hires_width) {
        up_w = tw = (int)((int64_t)r->hires_height * P->W / P->H);
        up_h = th = r->hires_height;
    } else {
        tw = r->hires_width, th = r->hires_height;
        if ((double)P->W / P->H < (double)tw / th) {
            up_w = tw;
            up_h = (int)((int64_t)tw * P->H / P->W);
        } else {
            up_w = (int)((int64_t)th * P->W / P->H);
            up_h = th;
        }
    }
    int tx = (up_w - tw) / f, ty = (up_h - th) / f; /* A1111's truncate_x / _y (never negative here) */
    P->hires_lw = up_w / f, P->hires_lh = up_h / f;
    P->hires_cx = tx / 2, P->hires_cy = ty / 2;
    P->hires_W = (P->hires_lw - tx) * f, P->hires_H = (P->hires_lh - ty) * f;
    if (P->hires_W < 8 || P->hires_H < 8 || P->hires_W > SDC_MAX_SIDE || P->hires_H > SDC_MAX_SIDE ||
        P->hires_lw > SDC_MAX_SIDE / f || P->hires_lh > SDC_MAX_SIDE / f)
        return sdc_fail(SDC_ERR_ARG, "the hires fix would make %dx%d from %dx%d (8..%d per side)", P->hires_W,
                        P->hires_H, P->W, P->H, SDC_MAX_SIDE);
    P->hires = 1;
    P->hires_steps = r->hires_steps ? r->hires_steps : P->steps;
    P->hires_strength = r->hires_strength >= 0 ? r->hires_strength : 0.75;
    P->hires_mode = r->hires_upscaler ? (latent_mode)latent_mode_parse(r->hires_upscaler) : LATENT_BILINEAR;
    if (request_steps_run(P->hires_steps, P->hires_strength) < 1)
        return sdc_fail(SDC_ERR_ARG,
                        "hires strength %g of %d steps runs no step (int(%d x %g) = 0): raise the hires "
                        "steps or strength",
                        P->hires_strength, P->hires_steps, P->hires_steps, P->hires_strength);
    return SDC_OK;
}

sdc_status request_resolve(const sdc_model *m, const sdc_request *r, request_plan *P) {
    SDC_TRY(check_fields(r));
    if (r->lora_dir) { /* the tags parse and name files of the folder (nothing is fused here) */
        prompt_loras pl;
        SDC_TRY(prompt_loras_begin(NULL, r, &pl));
        prompt_loras_end(&pl);
    }
    if (!m) return SDC_OK;
    const unet_config *uc = unet_get_config(m->unet);
    memset(P, 0, sizeof *P);
    P->W = r->width ? r->width : uc->sample_size * m->vae_scale;
    P->H = r->height ? r->height : uc->sample_size * m->vae_scale;
    if (r->init_image) SDC_TRY(resolve_init(m, r, P));
    P->steps = r->steps ? r->steps : m->fam->default_steps;
    P->g = r->guidance >= 0 ? r->guidance : m->fam->default_guidance;
    /* the model's defaults obey the same limits as a request's values */
    SDC_TRY(check_size("width", P->W));
    SDC_TRY(check_size("height", P->H));
    SDC_TRY(check_steps(P->steps));
    SDC_TRY(check_guidance(P->g));
    if (P->W % m->vae_scale || P->H % m->vae_scale)
        return sdc_fail(SDC_ERR_ARG, "size %dx%d must be a multiple of %d for this model", P->W, P->H, m->vae_scale);
    P->cfg = P->g > 1.0f && !uc->time_cond_proj_dim;
    SDC_TRY(noise_rng_parse(r->rng, &P->rng));
    /* the final image's decoder (sdc_request.vae_decode): TAESD by default when the model has one */
    const char *d = r->vae_decode;
    if (d && !strcmp(d, "taesd") && !m->taesd)
        return sdc_fail(SDC_ERR_ARG, "TAESD decoding asked for, but the model was loaded without a TAESD (--taesd)");
    P->taesd = d ? !strcmp(d, "taesd") : m->taesd != NULL;
    if (P->taesd && r->vae_tiling)
        return sdc_fail(SDC_ERR_UNSUPPORTED, "VAE tiling is the KL VAE's; TAESD decodes the whole image (decode "
                                             "with the full VAE to tile)");
    if (r->vae_tiling) SDC_TRY(vae_tile_size(m, r, &P->vae_tile));
    sched_config *sc = &P->sched;
    SDC_TRY(sched_config_from_json(m->sched_json, r->scheduler, sc));
    if (r->timestep_spacing) {
        if (!sched_takes_key(sc->def, "timestep_spacing"))
            return sdc_fail(SDC_ERR_ARG, "timestep spacing: %s (%s) has no timestep_spacing; its timesteps are its own",
                            sched_info(sc->def)->name, sched_info(sc->def)->diffusers_class);
        snprintf(sc->timestep_spacing, sizeof sc->timestep_spacing, "%s", r->timestep_spacing);
    }
    SDC_TRY(apply_schedule(r, sc));
    SDC_TRY(resolve_unet_inputs(m, r, P));
    if (P->init && request_steps_run(P->steps, P->strength) < 1)
        return sdc_fail(SDC_ERR_ARG,
                        "strength %g of %d steps runs no step (int(%d x %g) = 0): raise the steps or the "
                        "strength",
                        P->strength, P->steps, P->steps, P->strength);
    if (r->hires_scale != 0 || r->hires_width || r->hires_height) SDC_TRY(resolve_hires(m, r, P));
    return SDC_OK;
}

sdc_status sdc_request_check(const sdc_model *m, const sdc_request *r) {
    request_plan P;
    SDC_TRY(request_resolve(m, r, &P));
    if (!m) return SDC_OK;
    sdc_scheduler *s; /* what the scheduler makes of these settings (its own checks) */
    SDC_TRY(sched_create(&s, &P.sched, P.steps));
    sched_free(s);
    return SDC_OK;
}
