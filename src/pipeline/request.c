/* request.c - sdc_request_init, and the one place a request is checked
 * (request_resolve, sdc_request_check): counts, ranges and names first (no
 * model needed), then what the model decides - its defaults, the size
 * multiple, VAE tiles, the scheduler its config makes with these settings. */
#include "pipeline/request.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn/vae_tiling.h"

void sdc_request_init(sdc_request *r) {
    memset(r, 0, sizeof *r);
    r->batch = 1;
    r->guidance = -1.0f;
    r->karras = -1;
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
    if (r->timestep_spacing && strcmp(r->timestep_spacing, "leading") && strcmp(r->timestep_spacing, "trailing") &&
        strcmp(r->timestep_spacing, "linspace"))
        return sdc_fail(SDC_ERR_ARG, "unknown timestep spacing '%s' (leading, trailing or linspace)",
                        r->timestep_spacing);
    noise_rng rng;
    SDC_TRY(noise_rng_parse(r->rng, &rng));
    if (r->vae_tile_size && !r->vae_tiling) return sdc_fail(SDC_ERR_ARG, "a VAE tile size needs VAE tiling");
    if (r->scheduler) { /* the name alone; with a model, its config decides the rest */
        sched_config sc;
        SDC_TRY(sched_config_from_json(NULL, r->scheduler, &sc));
        if (r->karras == 1) SDC_TRY(sched_check_karras(sc.def, "--karras"));
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

sdc_status request_resolve(const sdc_model *m, const sdc_request *r, request_plan *P) {
    SDC_TRY(check_fields(r));
    if (!m) return SDC_OK;
    const unet_config *uc = unet_get_config(m->unet);
    memset(P, 0, sizeof *P);
    P->W = r->width ? r->width : uc->sample_size * m->vae_scale;
    P->H = r->height ? r->height : uc->sample_size * m->vae_scale;
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
    if (r->vae_tiling) SDC_TRY(vae_tile_size(m, r, &P->vae_tile));
    sched_config *sc = &P->sched;
    SDC_TRY(sched_config_from_json(m->sched_json, r->scheduler, sc));
    if (r->timestep_spacing) snprintf(sc->timestep_spacing, sizeof sc->timestep_spacing, "%s", r->timestep_spacing);
    if (r->karras >= 0) {
        if (r->karras) SDC_TRY(sched_check_karras(sc->def, "--karras"));
        sc->use_karras_sigmas = r->karras;
    }
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
