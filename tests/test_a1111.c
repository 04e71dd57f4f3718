/* test_a1111.c - AUTOMATIC1111's prompt syntax against the units of
 * tests/fixtures2/units/a1111_prompts.* (README-a1111-prompts.md): the
 * parse (texts and double weights exactly), each fragment's token ids, the
 * chunks (ids and float32 multipliers exactly, with the comma back-track on
 * and off), and the conditioning of tiny-sd (CLIP before the emphasis,
 * emphasis Original and "No norm", clip skip 1 and 2, the empty prompt)
 * within each prompt's tolerance; `sdc tokenize --prompt-syntax a1111
 * --json` prints the same chunks. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "family/a1111_cond.h"
#include "family/model.h"
#include "golden.h"
#include "harness.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "sdc.h"
#include "text/a1111_prompt.h"

#define UNITS "../fixtures2/units/a1111_prompts"

static int verbose(void) { return getenv("SDC_TEST_VERBOSE") != NULL; }

/* the units' JSON and tiny-sd (its tokenizer and text encoder) */
typedef struct {
    cJSON *j;
    sdc_model *m;
} units;

static sdc_status units_open(units *u) {
    memset(u, 0, sizeof *u);
    SDC_TRY(json_load(fixture_path(UNITS ".json"), &u->j));
    sdc_load_options lo = {0};
    sdc_status st = sdc_model_load(&u->m, fixture_path("models/tiny-sd"), &lo);
    if (st) cJSON_Delete(u->j);
    return st;
}

static void units_close(units *u) {
    sdc_model_free(u->m);
    cJSON_Delete(u->j);
}

static const char *id_of(const cJSON *p) { return cJSON_GetObjectItem(p, "id")->valuestring; }
static const char *text_of(const cJSON *p) { return cJSON_GetObjectItem(p, "text")->valuestring; }

TEST(a1111_units_parse) {
    units u;
    CHECK_OK(units_open(&u));
    const cJSON *p;
    int bad = 0, checked = 0;
    char what[256] = "";
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(u.j, "prompts")) {
        const char *t = text_of(p);
        const cJSON *want = cJSON_GetObjectItem(p, "parse"), *fids = cJSON_GetObjectItem(p, "fragment_ids");
        a1111_parse a;
        if (a1111_parse_prompt(t, strlen(t), &a)) {
            snprintf(what, sizeof what, "%s: %s", id_of(p), sdc_last_error());
            bad++;
            continue;
        }
        int ok = a.n == cJSON_GetArraySize(want) && a.n == cJSON_GetArraySize(fids);
        for (int i = 0; ok && i < a.n; i++) {
            const cJSON *w = cJSON_GetArrayItem(want, i), *ids = cJSON_GetArrayItem(fids, i);
            ok = !strcmp(a.f[i].text, cJSON_GetArrayItem(w, 0)->valuestring) &&
                 a.f[i].weight == cJSON_GetArrayItem(w, 1)->valuedouble; /* doubles exactly */
            if (!ok) break;
            /* the BREAK marker too: A1111 tokenizes it, then ignores its tokens */
            char **tokens;
            int32_t *tid;
            int n;
            if (clip_tokenize(u.m->tok[0], a.f[i].text, a.f[i].len, &tokens, &tid, &n)) {
                ok = 0;
                break;
            }
            ok = n == cJSON_GetArraySize(ids);
            for (int k = 0; ok && k < n; k++) ok = tid[k] == cJSON_GetArrayItem(ids, k)->valueint;
            clip_tokens_free(tokens, tid, n);
        }
        if (!ok) {
            snprintf(what, sizeof what, "%s: parse or fragment ids differ (%d fragments)", id_of(p), a.n);
            bad++;
        }
        checked++;
        a1111_parse_free(&a);
    }
    units_close(&u);
    CHECK(checked == 20, "%d prompts checked (the units have 20)", checked);
    CHECK(!bad, "%d prompts wrong, e.g. %s", bad, what);
}

/* chunks (a JSON list of {input_ids, multipliers}) equal to c exactly */
static int chunks_equal(const cJSON *want, const a1111_chunks *c) {
    if (cJSON_GetArraySize(want) != c->n) return 0;
    for (int k = 0; k < c->n; k++) {
        const cJSON *w = cJSON_GetArrayItem(want, k), *ids = cJSON_GetObjectItem(w, "input_ids"),
                    *mu = cJSON_GetObjectItem(w, "multipliers");
        if (cJSON_GetArraySize(ids) != A1111_CHUNK_IDS || cJSON_GetArraySize(mu) != A1111_CHUNK_IDS) return 0;
        for (int i = 0; i < A1111_CHUNK_IDS; i++)
            if (c->ids[k * A1111_CHUNK_IDS + i] != (int64_t)cJSON_GetArrayItem(ids, i)->valuedouble ||
                c->multipliers[k * A1111_CHUNK_IDS + i] != (float)cJSON_GetArrayItem(mu, i)->valuedouble)
                return 0;
    }
    return 1;
}

/* the chunks as the units' safetensors has them (<id>_input_ids, <id>_multipliers) */
static int chunks_equal_tensors(const st_file *g, const char *id, const a1111_chunks *c) {
    char n1[64], n2[64];
    snprintf(n1, sizeof n1, "%s_input_ids", id);
    snprintf(n2, sizeof n2, "%s_multipliers", id);
    const st_tensor *ti = st_find(g, n1), *tm = st_find(g, n2);
    if (!ti || !tm || ti->numel != (int64_t)c->n * A1111_CHUNK_IDS || tm->numel != ti->numel) return 0;
    int64_t *ids;
    float *mu;
    if (st_to_i64(ti, &ids)) return 0;
    if (st_to_f32(tm, &mu)) return free(ids), 0;
    int ok =
        !memcmp(ids, c->ids, (size_t)ti->numel * sizeof *ids) && !memcmp(mu, c->multipliers, (size_t)tm->numel * 4);
    free(ids), free(mu);
    return ok;
}

TEST(a1111_units_chunks) {
    units u;
    CHECK_OK(units_open(&u));
    st_file g;
    sdc_status st = st_open(&g, fixture_path(UNITS ".safetensors"));
    if (st) units_close(&u);
    CHECK(!st, "%s", sdc_last_error());
    const cJSON *p;
    int bad = 0, checked = 0, backtrack0 = 0;
    char what[256] = "";
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(u.j, "prompts")) {
        const char *t = text_of(p);
        a1111_parse a;
        a1111_chunks c, c0;
        if (a1111_parse_prompt(t, strlen(t), &a) ||
            a1111_chunk(u.m->tok[0], &a, A1111_COMMA_BACKTRACK, SDC_MAX_PROMPT_CHUNKS, &c)) {
            snprintf(what, sizeof what, "%s: %s", id_of(p), sdc_last_error());
            a1111_parse_free(&a);
            bad++;
            continue;
        }
        int ok = chunks_equal(cJSON_GetObjectItem(p, "chunks"), &c) && chunks_equal_tensors(&g, id_of(p), &c) &&
                 c.n == cJSON_GetObjectItem(p, "num_chunks")->valueint &&
                 c.token_count == cJSON_GetObjectItem(p, "token_count")->valueint;
        const cJSON *b0 = cJSON_GetObjectItem(p, "chunks_backtrack0");
        if (ok && b0) { /* the same prompt with comma_padding_backtrack 0 */
            ok = !a1111_chunk(u.m->tok[0], &a, 0, SDC_MAX_PROMPT_CHUNKS, &c0) && chunks_equal(b0, &c0);
            a1111_chunks_free(&c0);
            backtrack0++;
        }
        if (!ok) {
            snprintf(what, sizeof what, "%s: %d chunks, token count %d", id_of(p), c.n, c.token_count);
            bad++;
        }
        checked++;
        a1111_chunks_free(&c);
        a1111_parse_free(&a);
    }
    st_close(&g);
    units_close(&u);
    CHECK(checked == 20 && backtrack0 == 3, "%d prompts, %d without the back-track checked", checked, backtrack0);
    CHECK(!bad, "%d prompts' chunks wrong, e.g. %s", bad, what);
}

/* one prompt's conditioning with these options, against golden <id>_<name> */
static double cond_diff(units *u, const st_file *g, const char *id, const char *text, const char *name, int clip_skip,
                        a1111_emphasis e) {
    a1111_opts o = a1111_opts_default(clip_skip);
    o.emphasis = e;
    text_cond c;
    const char *prompts[1] = {text};
    if (u->m->fam->encode_a1111(u->m, prompts, 1, &o, &c)) return INFINITY;
    char n[64];
    snprintf(n, sizeof n, "%s%s%s", id ? id : "", id ? "_" : "", name);
    int64_t numel = 0;
    float *want = golden_f32(g, n, &numel);
    double d = want && numel == (int64_t)c.T * c.D ? max_abs_diff(c.embeds, want, numel) : INFINITY;
    free(want);
    text_cond_free(&c);
    return d;
}

TEST(a1111_units_conditioning) {
    units u;
    CHECK_OK(units_open(&u));
    st_file g;
    sdc_status st = st_open(&g, fixture_path(UNITS ".safetensors"));
    if (st) units_close(&u);
    CHECK(!st, "%s", sdc_last_error());
    const cJSON *p;
    int bad = 0, checked = 0;
    char what[256] = "";
    double worst_raw = 0, worst_ratio = 0; /* cond diff / its tolerance */
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(u.j, "prompts")) {
        const char *id = id_of(p), *t = text_of(p);
        const cJSON *tol = cJSON_GetObjectItem(p, "tolerance");
        struct {
            const char *name;
            int skip;
            a1111_emphasis e;
            double tol;
        } k[] = {
            {"raw_skip1", 1, A1111_EMPHASIS_IGNORE, 1e-5},
            {"raw_skip2", 2, A1111_EMPHASIS_IGNORE, 1e-5},
            {"cond_skip1", 1, A1111_EMPHASIS_ORIGINAL, cJSON_GetObjectItem(tol, "cond_skip1_atol")->valuedouble},
            {"cond_skip2", 2, A1111_EMPHASIS_ORIGINAL, cJSON_GetObjectItem(tol, "cond_skip2_atol")->valuedouble},
            {"cond_skip1_nonorm", 1, A1111_EMPHASIS_NO_NORM, 1e-5},
        };
        for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
            double d = cond_diff(&u, &g, id, t, k[i].name, k[i].skip, k[i].e);
            if (verbose()) printf("     %s %s: %.3g (tolerance %.3g)\n", id, k[i].name, d, k[i].tol);
            if (k[i].e == A1111_EMPHASIS_IGNORE && d > worst_raw) worst_raw = d;
            if (k[i].e == A1111_EMPHASIS_ORIGINAL && d / k[i].tol > worst_ratio) worst_ratio = d / k[i].tol;
            if (!(d <= k[i].tol)) {
                snprintf(what, sizeof what, "%s %s differs by %g (tolerance %g)", id, k[i].name, d, k[i].tol);
                bad++;
            }
        }
        checked++;
    }
    /* the block pad_cond_uncond appends: the empty prompt's conditioning */
    double e1 = cond_diff(&u, &g, NULL, "", "empty_cond_skip1", 1, A1111_EMPHASIS_ORIGINAL),
           e2 = cond_diff(&u, &g, NULL, "", "empty_cond_skip2", 2, A1111_EMPHASIS_ORIGINAL);
    st_close(&g);
    units_close(&u);
    if (verbose())
        printf("     worst raw CLIP diff %.3g; worst conditioning diff %.2f x its tolerance\n", worst_raw, worst_ratio);
    CHECK(checked == 20, "%d prompts checked", checked);
    CHECK(!bad, "%d conditionings wrong, e.g. %s", bad, what);
    CHECK(e1 <= 1e-5 && e2 <= 1e-5, "the empty prompt's conditioning differs by %g / %g", e1, e2);
}

/* `sdc tokenize --prompt-syntax a1111 --json` prints p12's two chunks (the
 * comma back-track) with their ids and multipliers and its parse */
TEST(a1111_tokenize_cli) {
    cJSON *j;
    CHECK_OK(json_load(fixture_path(UNITS ".json"), &j));
    const cJSON *p = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "prompts"), 12);
    char cmd[2048], *out = malloc(1 << 20);
    snprintf(cmd, sizeof cmd, "%s tokenize -m %s --prompt-syntax a1111 --json \"%s\"", sdc_binary(),
             fixture_path("models/tiny-sd"), text_of(p));
    int rc = run_cmd(cmd, out, 1 << 20);
    cJSON *o = rc ? NULL : cJSON_Parse(out);
    const cJSON *ch = cJSON_GetObjectItem(o, "chunks"), *fr = cJSON_GetObjectItem(o, "fragments"),
                *want = cJSON_GetObjectItem(p, "chunks"), *parse = cJSON_GetObjectItem(p, "parse");
    int ok = o && cJSON_GetArraySize(ch) == cJSON_GetArraySize(want) &&
             cJSON_GetArraySize(fr) == cJSON_GetArraySize(parse) &&
             cJSON_GetObjectItem(o, "token_count")->valueint == cJSON_GetObjectItem(p, "token_count")->valueint;
    for (int k = 0; ok && k < cJSON_GetArraySize(want); k++)
        for (int i = 0; ok && i < A1111_CHUNK_IDS; i++) {
            const cJSON *a = cJSON_GetArrayItem(ch, k), *b = cJSON_GetArrayItem(want, k);
            ok = cJSON_GetArrayItem(cJSON_GetObjectItem(a, "input_ids"), i)->valuedouble ==
                     cJSON_GetArrayItem(cJSON_GetObjectItem(b, "input_ids"), i)->valuedouble &&
                 (float)cJSON_GetArrayItem(cJSON_GetObjectItem(a, "multipliers"), i)->valuedouble ==
                     (float)cJSON_GetArrayItem(cJSON_GetObjectItem(b, "multipliers"), i)->valuedouble;
        }
    for (int f = 0; ok && f < cJSON_GetArraySize(parse); f++) {
        const cJSON *a = cJSON_GetArrayItem(fr, f), *b = cJSON_GetArrayItem(parse, f);
        ok = !strcmp(cJSON_GetObjectItem(a, "text")->valuestring, cJSON_GetArrayItem(b, 0)->valuestring) &&
             cJSON_GetObjectItem(a, "weight")->valuedouble == cJSON_GetArrayItem(b, 1)->valuedouble;
    }
    cJSON_Delete(o);
    cJSON_Delete(j);
    char head[300];
    snprintf(head, sizeof head, "%.299s", out);
    free(out);
    CHECK(rc == 0, "sdc tokenize failed (%d): %s", rc, head);
    CHECK(ok, "sdc tokenize's chunks or fragments differ from the units': %s", head);
}

/* what A1111 refuses is refused with a message, before any model */
TEST(a1111_request_refuses_bad_weight) {
    const char *bad[1] = {"a (red:1.2.3) fox"}, *good[1] = {"a (red:1.2) fox, \\(x\\) BREAK y"};
    sdc_request r;
    sdc_request_init(&r);
    r.prompt_syntax = "a1111";
    r.prompts = bad, r.nprompts = 1;
    CHECK(sdc_request_check(NULL, &r) == SDC_ERR_ARG, "a weight of 1.2.3 was accepted");
    CHECK(strstr(sdc_last_error(), "1.2.3"), "message does not name the weight: %s", sdc_last_error());
    r.prompts = good;
    CHECK_OK(sdc_request_check(NULL, &r));
    r.prompt_syntax = "plain";
    r.prompts = bad;
    CHECK_OK(sdc_request_check(NULL, &r)); /* plain: just text */
    r.pad_cond_uncond = 1; /* plain prompts have one length: nothing to pad */
    CHECK(sdc_request_check(NULL, &r) == SDC_ERR_ARG, "pad_cond_uncond with plain prompts was accepted");
    r.pad_cond_uncond = 0;
    r.prompt_syntax = "webui";
    CHECK(sdc_request_check(NULL, &r) == SDC_ERR_ARG, "an unknown prompt syntax was accepted");
}

/* <WORD:ARGS> tags as A1111's re_extra_net finds them: cut out, split on ':' */
TEST(a1111_extra_network_tags) {
    sdc_prompt_networks p;
    CHECK_OK(
        sdc_prompt_networks_parse("a <lora:foxy_v2:0.8> fox, <hypernet:h:1:x> <lora:> <:a> <lora:a\n>b> <<x:y>", &p));
    int ok = !strcmp(p.text, "a  fox,  <lora:> <:a> b> <") && p.n == 4 && !strcmp(p.nets[0].name, "lora") &&
             p.nets[0].nargs == 2 && !strcmp(p.nets[0].args[0], "foxy_v2") && !strcmp(p.nets[0].args[1], "0.8") &&
             !strcmp(p.nets[1].name, "hypernet") && p.nets[1].nargs == 3 && !strcmp(p.nets[1].args[2], "x") &&
             !strcmp(p.nets[2].name, "lora") && p.nets[2].nargs == 1 && !strcmp(p.nets[2].args[0], "a\n") &&
             !strcmp(p.nets[3].name, "x") && !strcmp(p.nets[3].args[0], "y");
    char got[200];
    snprintf(got, sizeof got, "'%s', %d tags", p.text, p.n);
    sdc_prompt_networks_free(&p);
    CHECK(ok, "parsed as %s", got);
    CHECK_OK(sdc_prompt_networks_parse(NULL, &p));
    ok = !strcmp(p.text, "") && p.n == 0;
    sdc_prompt_networks_free(&p);
    CHECK(ok, "NULL is not the empty prompt");
    CHECK_OK(sdc_prompt_networks_parse("<Łódź_1:0.5>日本", &p)); /* \w is Unicode */
    ok = !strcmp(p.text, "日本") && p.n == 1 && !strcmp(p.nets[0].name, "Łódź_1");
    sdc_prompt_networks_free(&p);
    CHECK(ok, "a Unicode tag name was not taken");
}

/* dump callback: a copy of prompt_embeds and negative_prompt_embeds */
typedef struct {
    float *pos, *neg;
    int64_t npos, nneg;
} embeds_seen;

static void keep_embeds(void *ctx, const char *name, int is_int, int ndim, const int64_t *shape, const void *data) {
    embeds_seen *e = ctx;
    int pos = !strcmp(name, "prompt_embeds");
    if (is_int || !data || (!pos && strcmp(name, "negative_prompt_embeds"))) return;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *c = malloc((size_t)n * sizeof *c);
    if (c) memcpy(c, data, (size_t)n * sizeof *c);
    free(pos ? e->pos : e->neg);
    *(pos ? &e->pos : &e->neg) = c, *(pos ? &e->npos : &e->nneg) = n;
}

/* The text encoder never sees a prompt's <lora:...> tags: sdc_generate's
 * conditioning equals the prompt's without them; a negative prompt's stay
 * text (A1111 parses only the prompts' extra networks) */
TEST(a1111_generate_drops_network_tags) {
    sdc_model *m;
    sdc_load_options lo = {0};
    CHECK_OK(sdc_model_load(&m, fixture_path("models/tiny-sd"), &lo));
    const char *prompts[2] = {"a (red:1.3) fox <lora:foxy:0.8>, snow", "a (red:1.3) fox , snow"};
    const char *negs[2] = {"<lora:foxy:0.8>", "lora foxy 0.8"};
    embeds_seen e[2];
    memset(e, 0, sizeof e);
    sdc_status st = SDC_OK;
    for (int k = 0; k < 2 && !st; k++) {
        sdc_request r;
        sdc_request_init(&r);
        r.prompts = &prompts[k], r.nprompts = 1, r.negative_prompts = &negs[k], r.nnegative = 1;
        r.prompt_syntax = "a1111", r.steps = 1, r.width = r.height = 64, r.seed = 1;
        r.dump = keep_embeds, r.dump_ctx = &e[k];
        sdc_image *imgs = NULL;
        int n = 0;
        st = sdc_generate(m, &r, &imgs, &n);
        sdc_images_free(imgs, n);
    }
    sdc_model_free(m);
    int shapes =
        !st && e[0].pos && e[1].pos && e[0].neg && e[1].neg && e[0].npos == e[1].npos && e[0].nneg == e[1].nneg;
    double dp = shapes ? max_abs_diff(e[0].pos, e[1].pos, e[0].npos) : INFINITY;
    double dn = shapes ? max_abs_diff(e[0].neg, e[1].neg, e[0].nneg) : INFINITY;
    for (int k = 0; k < 2; k++) free(e[k].pos), free(e[k].neg);
    CHECK(!st, "%s", sdc_last_error());
    CHECK(shapes, "no embeddings dumped, or of other sizes");
    CHECK(dp == 0, "the prompt's tag changed its conditioning by %g", dp);
    CHECK(dn > 0, "the negative prompt's tag was removed (A1111 encodes it as text)");
}
