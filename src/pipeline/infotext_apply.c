/* infotext_apply.c - sdc_infotext_*: a parsed infotext (infotext_parse.c) as
 * key/value lists, and the settings it holds put into a request, as A1111's
 * "send to txt2img" reads them (infotext_utils): for `sdc generate
 * --from-png` and the server's png-info. What sdc cannot replay is named in
 * notes, never silently dropped. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/infotext_parse.h"
#include "sdc.h"

/* "Negative prompt:" starts a line (after spaces), as the parse finds it */
static int has_negative_line(const char *t) {
    for (const char *l = t; l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        const char *s = l;
        while (*s == ' ' || *s == '\t' || *s == '\r') s++;
        if (!strncmp(s, "Negative prompt:", 16)) return 1;
    }
    return 0;
}

sdc_status sdc_infotext_parse(const char *text, sdc_infotext *out) {
    memset(out, 0, sizeof *out);
    cJSON *o = infotext_parse(text);
    int n = o ? cJSON_GetArraySize(o) : 0;
    if (!o || !(out->keys = calloc((size_t)n, sizeof(char *))) || !(out->values = calloc((size_t)n, sizeof(char *)))) {
        cJSON_Delete(o);
        sdc_infotext_free(out);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, o) {
        char *k = strdup(e->string), *v = strdup(cJSON_IsString(e) ? e->valuestring : "");
        out->keys[out->n] = k, out->values[out->n++] = v;
        if (!k || !v) {
            cJSON_Delete(o);
            sdc_infotext_free(out);
            return sdc_fail(SDC_ERR_NOMEM, "out of memory");
        }
    }
    cJSON_Delete(o);
    out->prompt[0] = sdc_infotext_get(out, "Prompt");
    out->negative[0] = sdc_infotext_get(out, "Negative prompt");
    out->negative_given = text && has_negative_line(text);
    return SDC_OK;
}

const char *sdc_infotext_get(const sdc_infotext *p, const char *key) {
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->keys[i], key)) return p->values[i];
    return NULL;
}

void sdc_infotext_free(sdc_infotext *p) {
    for (int i = 0; i < p->n; i++) free(p->keys[i]), free(p->values[i]);
    free(p->keys), free(p->values);
    memset(p, 0, sizeof *p);
}

typedef struct {
    char *b;
    size_t n, o;
} notes;

static void note(notes *nb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(notes *nb, const char *fmt, ...) {
    if (!nb->b || nb->n < 2 || nb->o + 2 > nb->n) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(nb->b + nb->o, nb->n - nb->o - 1, fmt, ap); /* room left for the newline */
    va_end(ap);
    if (k < 0) return;
    nb->o += (size_t)k < nb->n - nb->o - 2 ? (size_t)k : nb->n - nb->o - 2;
    nb->b[nb->o++] = '\n';
    nb->b[nb->o] = 0;
}

/* a whole decimal integer in [lo, hi] */
static int parse_int(const char *v, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || errno || x < lo || x > hi) return 0;
    *out = x;
    return 1;
}

static int parse_float(const char *v, double lo, double hi, float *out) {
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !isfinite(x) || x < lo || x > hi) return 0;
    *out = (float)x;
    return 1;
}

/* an integer setting, noted when malformed */
static void take_int(const sdc_infotext *p, const char *key, long long lo, long long hi, int *dst, notes *nb) {
    const char *v = sdc_infotext_get(p, key);
    long long x;
    if (!v) return;
    if (parse_int(v, lo, hi, &x)) *dst = (int)x;
    else note(nb, "%s '%.40s' is not a number in %lld..%lld; ignored", key, v, lo, hi);
}

/* settings that change the image which sdc does not replay */
static const char *const k_unreplayed[] = {
    "Hires upscale",
    "Hires steps",
    "Hires upscaler",
    "Hires resize-1",
    "Denoising strength",
    "Variation seed",
    "Variation seed strength",
    "Seed resize from-1",
    "Face restoration",
    "Tiling",
    "ENSD",
    "Eta noise seed delta",
    "Noise multiplier",
    "SGM noise multiplier",
    "Refiner",
    "Skip early CFG",
    "NGMS",
    "Pad conds v0",
    "CFG Rescale phi",
    NULL,
};

static void apply_sampler(const sdc_infotext *p, sdc_request *r, notes *nb) {
    const char *v = sdc_infotext_get(p, "Sampler");
    const sdc_sampler_info *s = NULL;
    if (v) {
        int karras = 0;
        if ((s = sdc_sampler_find_a1111(v, &karras))) {
            r->scheduler = s->name;
            if (karras) r->karras = 1;
        } else {
            note(nb, "Sampler '%.60s' is not one sdc runs; the model's own scheduler runs instead", v);
        }
    }
    const char *st = sdc_infotext_get(p, "Schedule type");
    if (st && !strcmp(st, "Karras")) {
        if (!s || s->karras_ok) r->karras = 1;
        else note(nb, "Schedule type Karras does not apply to %s; ignored", s->a1111_name);
    } else if (st && !strcmp(st, "Uniform")) {
        r->karras = 0;
    } else if (st && strcmp(st, "Automatic")) {
        note(nb, "Schedule type '%.40s' is not one sdc has (Automatic, Uniform, Karras); the sampler's own runs", st);
    }
    float eta;
    for (int k = 0; k < 2; k++) { /* sdc and A1111's k-diffusion write "Eta", A1111's DDIM "Eta DDIM" */
        const char *key = k ? "Eta DDIM" : "Eta", *e = sdc_infotext_get(p, key);
        if (!e) continue;
        if (!parse_float(e, 0, 1, &eta)) note(nb, "%s '%.40s' is not a number in 0..1; ignored", key, e);
        else if (s && s->takes_eta) r->eta = eta;
        else note(nb, "%s %s ignored: sdc's %s takes no eta", key, e, s ? s->a1111_name : "scheduler");
    }
}

void sdc_infotext_apply(const sdc_infotext *p, sdc_request *r, char *buf, size_t n) {
    notes nb = {buf, n, 0};
    if (buf && n) buf[0] = 0;
    const char *syntax = sdc_infotext_get(p, "Prompt syntax");
    if (!syntax || !strcmp(syntax, "a1111")) r->prompt_syntax = "a1111";
    else if (!strcmp(syntax, "plain")) r->prompt_syntax = "plain";
    else note(&nb, "Prompt syntax '%.40s' is unknown (plain or a1111); ignored", syntax);
    int plain = r->prompt_syntax && !strcmp(r->prompt_syntax, "plain");
    r->prompts = p->prompt;
    r->nprompts = 1;
    /* "" is what either reading encodes without a negative prompt, except
     * plain SDXL, where only an explicit "" is encoded (else zeros) */
    int neg = p->negative[0] && (p->negative[0][0] || (plain && p->negative_given));
    r->negative_prompts = neg ? p->negative : NULL;
    r->nnegative = neg;
    take_int(p, "Steps", 1, SDC_MAX_STEPS, &r->steps, &nb);
    apply_sampler(p, r, &nb);
    const char *v;
    if ((v = sdc_infotext_get(p, "CFG scale")) && !parse_float(v, 0, 100, &r->guidance))
        note(&nb, "CFG scale '%.40s' is not a number in 0..100; ignored", v);
    if ((v = sdc_infotext_get(p, "Seed"))) {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(v, &end, 10);
        if (end == v || *end || errno || *v == '-') note(&nb, "Seed '%.40s' is not a seed; ignored", v);
        else r->seed = x;
    }
    take_int(p, "Size-1", 8, SDC_MAX_SIDE, &r->width, &nb);
    take_int(p, "Size-2", 8, SDC_MAX_SIDE, &r->height, &nb);
    take_int(p, "Clip skip", 1, SDC_MAX_CLIP_SKIP, &r->clip_skip, &nb);
    v = sdc_infotext_get(p, "RNG");
    if (!v || !strcmp(v, "GPU") || !strcmp(v, "NV")) r->rng = "cuda"; /* absent: A1111's default GPU source */
    else if (!strcmp(v, "CPU")) r->rng = "cpu";
    else note(&nb, "RNG '%.40s' is not one sdc has (GPU, NV, CPU); ignored", v);
    if ((v = sdc_infotext_get(p, "Pad conds"))) r->pad_cond_uncond = !strcmp(v, "True");
    if ((v = sdc_infotext_get(p, "Emphasis")) && strcmp(v, "Original"))
        note(&nb, "Emphasis '%.40s' is not replayed: sdc uses A1111's Original", v);
    for (int i = 0; k_unreplayed[i]; i++)
        if ((v = sdc_infotext_get(p, k_unreplayed[i])))
            note(&nb, "'%s: %.40s' is not replayed by sdc: the image will differ", k_unreplayed[i], v);
}
