/* clip_tokenizer.c - loading a Hugging Face CLIP tokenizer folder and the
 * tokenize/encode entry points (transformers PreTrainedTokenizer.tokenize +
 * CLIPTokenizer._tokenize/bpe + prepare_for_model's truncation and padding).
 * Text normalisation lives in tokenizer_text.c, BPE in tokenizer_bpe.c. */
#include "text/clip_tokenizer.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/json.h"
#include "text/tokenizer_bpe.h"
#include "text/tokenizer_text.h"

/* merges.txt lines CLIPTokenizer reads: split("\n")[1 : 49152 - 256 - 2 + 1] */
#define CLIP_MERGE_LINES (49152 - 256 - 2 + 1)

typedef struct {
    char *str;     /* UTF-8 content */
    uint32_t *cp;  /* (ncp) the content as code points, for matching */
    size_t ncp;
    int32_t id;
    int lstrip, rstrip;
} added_token;

struct clip_tokenizer {
    tok_strmap vocab;     /* vocab.json: token string -> id */
    tok_bpe bpe;          /* merges.txt */
    int32_t *sid_id;      /* (bpe.nsym) id of every BPE symbol string */
    added_token *added;   /* (nadded) added tokens (split out before BPE) */
    int nadded;
    int32_t bos, eos, pad, unk, max_len, vocab_size;
};

/* --- ids ---------------------------------------------------------------------- */

static const added_token *find_added(const clip_tokenizer *t, const char *s, size_t len) {
    for (int i = 0; i < t->nadded; i++)
        if (strlen(t->added[i].str) == len && memcmp(t->added[i].str, s, len) == 0) return &t->added[i];
    return NULL;
}

/* convert_tokens_to_ids: added tokens first, then vocab.json, else the unk id. */
static int32_t token_id(const clip_tokenizer *t, const char *s, size_t len) {
    const added_token *a = find_added(t, s, len);
    if (a) return a->id;
    int32_t id;
    return tok_strmap_get(&t->vocab, s, len, &id) ? id : t->unk;
}

/* --- loading ------------------------------------------------------------------- */

static sdc_status load_vocab(clip_tokenizer *t, const char *path) {
    char *buf;
    size_t len;
    SDC_TRY(sdc_read_file(path, &buf, &len));
    /* json.load on a UTF-8 text file: invalid UTF-8 is an error there too */
    size_t bad;
    if (!tok_utf8_valid(buf, len, &bad)) {
        free(buf);
        return sdc_fail(SDC_ERR_FORMAT, "%s: invalid UTF-8 at byte %zu", path, bad);
    }
    cJSON *j;
    sdc_status st = json_parse(buf, len, path, &j);
    free(buf);
    if (st) return st;
    if (!cJSON_IsObject(j)) {
        st = sdc_fail(SDC_ERR_FORMAT, "%s: not a JSON object (token -> id)", path);
        goto done;
    }
    if ((st = tok_strmap_init(&t->vocab, (size_t)cJSON_GetArraySize(j)))) goto done;
    for (const cJSON *e = j->child; e; e = e->next) {
        double d = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (!(d >= 0 && d <= INT32_MAX) || d != (double)(int32_t)d) {
            st = sdc_fail(SDC_ERR_FORMAT, "%s: token \"%.64s\": id must be an integer in [0, 2^31)", path,
                          e->string ? e->string : "");
            goto done;
        }
        if ((st = tok_strmap_put(&t->vocab, e->string, strlen(e->string), (int32_t)d, NULL))) goto done;
    }
    if (t->vocab.n == 0) st = sdc_fail(SDC_ERR_FORMAT, "%s: no tokens", path);
done:
    cJSON_Delete(j);
    return st;
}

/* Optional JSON file: absent -> *out = NULL; present -> must be an object. */
static sdc_status load_optional(const char *path, cJSON **out) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0 && errno == ENOENT) return SDC_OK;
    SDC_TRY(json_load(path, out));
    if (!cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        return sdc_fail(SDC_ERR_FORMAT, "%s: not a JSON object", path);
    }
    return SDC_OK;
}

/* One special token spec: "str" or {"content": "str", "lstrip": b, "rstrip": b, ...}. */
typedef struct {
    const char *content; /* NULL: not set */
    int lstrip, rstrip;
} tok_spec;

static sdc_status parse_spec(const cJSON *v, tok_spec *s, const char *what, const char *key) {
    memset(s, 0, sizeof *s);
    if (!v || cJSON_IsNull(v)) return SDC_OK;
    if (cJSON_IsString(v)) {
        s->content = v->valuestring;
        return SDC_OK;
    }
    if (!cJSON_IsObject(v)) return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' must be a string or an object", what, key);
    int single = 0;
    SDC_TRY(json_get_str(v, "content", NULL, &s->content, what));
    SDC_TRY(json_get_bool(v, "lstrip", 0, &s->lstrip, what));
    SDC_TRY(json_get_bool(v, "rstrip", 0, &s->rstrip, what));
    SDC_TRY(json_get_bool(v, "single_word", 0, &single, what));
    if (!s->content) return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' has no \"content\"", what, key);
    if (single) return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: '%s': single_word added tokens are not supported", what, key);
    return SDC_OK;
}

/* PreTrainedTokenizer._add_tokens for one token (an existing content keeps
 * its id; a new one gets the id given). */
static sdc_status add_token(clip_tokenizer *t, const tok_spec *s, int32_t id) {
    size_t len = strlen(s->content);
    if (!len) return SDC_OK;
    added_token *a = (added_token *)find_added(t, s->content, len);
    if (!a) {
        added_token *p = realloc(t->added, (size_t)(t->nadded + 1) * sizeof *p);
        if (!p) return sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
        t->added = p;
        a = &t->added[t->nadded];
        memset(a, 0, sizeof *a);
        a->str = malloc(len + 1);
        a->cp = malloc((len + 1) * sizeof *a->cp);
        if (!a->str || !a->cp) {
            free(a->str);
            free(a->cp);
            return sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
        }
        memcpy(a->str, s->content, len + 1);
        a->ncp = tok_utf8_decode(s->content, len, a->cp);
        t->nadded++;
    }
    a->id = id;
    a->lstrip = s->lstrip;
    a->rstrip = s->rstrip;
    return SDC_OK;
}

static sdc_status load_config(clip_tokenizer *t, const char *dir, const char *pad_override) {
    char cfg_path[4096], stm_path[4096];
    snprintf(cfg_path, sizeof cfg_path, "%s/tokenizer_config.json", dir);
    snprintf(stm_path, sizeof stm_path, "%s/special_tokens_map.json", dir);
    cJSON *cfg = NULL, *stm = NULL;
    sdc_status st = load_optional(cfg_path, &cfg);
    if (!st) st = load_optional(stm_path, &stm);
    if (st) goto done;

    /* SPECIAL_TOKENS_ATTRIBUTES order; CLIPTokenizer's defaults */
    static const char *keys[] = {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"};
    static const char *defs[] = {"<|startoftext|>", "<|endoftext|>", "<|endoftext|>", NULL, "<|endoftext|>", NULL, NULL};
    enum { NKEYS = 7 };
    tok_spec spec[NKEYS];
    const cJSON *decoder = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "added_tokens_decoder") : NULL;
    if (decoder && cJSON_IsNull(decoder)) decoder = NULL;
    for (int k = 0; k < NKEYS; k++) {
        /* transformers 4.44 _from_pretrained: special_tokens_map.json
         * overrides tokenizer_config.json only in the legacy case (no
         * added_tokens_decoder) */
        const cJSON *v = NULL;
        const char *what = cfg_path;
        if (!decoder && stm && cJSON_GetObjectItemCaseSensitive(stm, keys[k])) {
            v = cJSON_GetObjectItemCaseSensitive(stm, keys[k]);
            what = stm_path;
        } else if (cfg) {
            v = cJSON_GetObjectItemCaseSensitive(cfg, keys[k]);
        }
        if ((st = parse_spec(v, &spec[k], what, keys[k]))) goto done;
        if (!spec[k].content) spec[k].content = defs[k];
    }
    /* from_pretrained(dir, pad_token=...): the argument wins over the files */
    if (pad_override) spec[4] = (tok_spec){.content = pad_override};

    /* added_tokens_decoder: {"<id>": {"content": ...}, ...} */
    if (decoder) {
        if (!cJSON_IsObject(decoder)) {
            st = sdc_fail(SDC_ERR_FORMAT, "%s: 'added_tokens_decoder' must be an object", cfg_path);
            goto done;
        }
        for (const cJSON *e = decoder->child; e; e = e->next) {
            char *endp;
            errno = 0;
            long id = strtol(e->string, &endp, 10);
            tok_spec s;
            if (!e->string[0] || *endp || errno || id < 0 || id > INT32_MAX) {
                st = sdc_fail(SDC_ERR_FORMAT, "%s: added_tokens_decoder key \"%.32s\" is not a token id", cfg_path, e->string);
                goto done;
            }
            if (!cJSON_IsObject(e)) {
                st = sdc_fail(SDC_ERR_FORMAT, "%s: added_tokens_decoder[\"%s\"] must be an object", cfg_path, e->string);
                goto done;
            }
            if ((st = parse_spec(e, &s, cfg_path, "added_tokens_decoder"))) goto done;
            if ((st = add_token(t, &s, (int32_t)id))) goto done;
        }
    }

    /* additional_special_tokens (list), same override rule */
    const cJSON *extra = NULL;
    const char *extra_what = cfg_path;
    if (!decoder && stm && cJSON_GetObjectItemCaseSensitive(stm, "additional_special_tokens")) {
        extra = cJSON_GetObjectItemCaseSensitive(stm, "additional_special_tokens");
        extra_what = stm_path;
    } else if (cfg) {
        extra = cJSON_GetObjectItemCaseSensitive(cfg, "additional_special_tokens");
    }
    if (extra && !cJSON_IsNull(extra) && !cJSON_IsArray(extra)) {
        st = sdc_fail(SDC_ERR_FORMAT, "%s: 'additional_special_tokens' must be a list", extra_what);
        goto done;
    }

    /* special tokens missing from the added tokens are added now, in order:
     * an existing vocab entry keeps its id, a new string gets len(tokenizer) */
    int32_t next = (int32_t)t->vocab.n;
    for (int i = 0; i < t->nadded; i++) {
        int32_t id;
        if (!tok_strmap_get(&t->vocab, t->added[i].str, strlen(t->added[i].str), &id)) next++;
    }
    int nextra = extra && cJSON_IsArray(extra) ? cJSON_GetArraySize(extra) : 0;
    for (int k = 0; k < NKEYS + nextra; k++) {
        tok_spec s;
        if (k < NKEYS) {
            s = spec[k];
        } else if ((st = parse_spec(cJSON_GetArrayItem(extra, k - NKEYS), &s, extra_what, "additional_special_tokens"))) {
            goto done;
        }
        if (!s.content || !s.content[0] || find_added(t, s.content, strlen(s.content))) continue;
        int32_t id;
        if (!tok_strmap_get(&t->vocab, s.content, strlen(s.content), &id)) id = next++;
        if ((st = add_token(t, &s, id))) goto done;
    }
    t->vocab_size = next;
    t->bos = token_id(t, spec[0].content, strlen(spec[0].content));
    t->eos = token_id(t, spec[1].content, strlen(spec[1].content));
    t->pad = token_id(t, spec[4].content, strlen(spec[4].content));
    /* _convert_token_to_id falls back to encoder.get(unk_token): vocab.json */
    const char *unk = spec[2].content;
    if (!tok_strmap_get(&t->vocab, unk, strlen(unk), &t->unk)) t->unk = token_id(t, unk, strlen(unk));

    double ml = 77;
    if (cfg && (st = json_get_num(cfg, "model_max_length", 77, &ml, cfg_path))) goto done;
    if (ml != ml || ml < 2 || (ml < INT32_MAX && ml != (double)(int64_t)ml)) {
        st = sdc_fail(SDC_ERR_FORMAT, "%s: 'model_max_length' must be an integer >= 2", cfg_path);
        goto done;
    }
    t->max_len = ml >= INT32_MAX ? INT32_MAX : (int32_t)ml;
done:
    cJSON_Delete(cfg);
    cJSON_Delete(stm);
    return st;
}

sdc_status clip_tokenizer_load(clip_tokenizer **out, const char *dir) {
    return clip_tokenizer_load_pad(out, dir, NULL);
}

sdc_status clip_tokenizer_load_pad(clip_tokenizer **out, const char *dir, const char *pad_token) {
    *out = NULL;
    clip_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
    char path[4096];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    sdc_status st = load_vocab(t, path);
    if (!st) {
        snprintf(path, sizeof path, "%s/merges.txt", dir);
        st = tok_bpe_load(&t->bpe, path, CLIP_MERGE_LINES);
    }
    if (!st) st = load_config(t, dir, pad_token);
    if (!st) {
        t->sid_id = malloc((size_t)t->bpe.nsym * sizeof *t->sid_id);
        if (!t->sid_id) st = sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
        for (int32_t i = 0; !st && i < t->bpe.nsym; i++)
            t->sid_id[i] = token_id(t, t->bpe.sym_str[i], strlen(t->bpe.sym_str[i]));
    }
    if (st) {
        clip_tokenizer_free(t);
        return st;
    }
    *out = t;
    return SDC_OK;
}

void clip_tokenizer_free(clip_tokenizer *t) {
    if (!t) return;
    tok_strmap_free(&t->vocab);
    tok_bpe_free(&t->bpe);
    for (int i = 0; i < t->nadded; i++) {
        free(t->added[i].str);
        free(t->added[i].cp);
    }
    free(t->added);
    free(t->sid_id);
    free(t);
}

int clip_tokenizer_bos(const clip_tokenizer *t) { return t->bos; }
int clip_tokenizer_eos(const clip_tokenizer *t) { return t->eos; }
int clip_tokenizer_pad(const clip_tokenizer *t) { return t->pad; }
int clip_tokenizer_unk(const clip_tokenizer *t) { return t->unk; }
int clip_tokenizer_max_length(const clip_tokenizer *t) { return t->max_len; }
int clip_tokenizer_vocab_size(const clip_tokenizer *t) { return t->vocab_size; }

/* --- tokenizing ---------------------------------------------------------------- */

typedef struct {
    char **tok;   /* (n) token strings, or NULL when not wanted */
    int32_t *id;  /* (n) */
    int n, cap, want_str;
} tok_out;

static sdc_status emit(tok_out *o, const char *s, int32_t id) {
    if (o->n == o->cap) {
        int cap = o->cap ? 2 * o->cap : 64;
        int32_t *ids = realloc(o->id, (size_t)cap * sizeof *ids);
        if (!ids) return sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
        o->id = ids;
        if (o->want_str) {
            char **tk = realloc(o->tok, (size_t)cap * sizeof *tk);
            if (!tk) return sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
            o->tok = tk;
        }
        o->cap = cap;
    }
    if (o->want_str) {
        size_t l = strlen(s);
        char *c = malloc(l + 1);
        if (!c) return sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
        memcpy(c, s, l + 1);
        o->tok[o->n] = c;
    }
    o->id[o->n++] = id;
    return SDC_OK;
}

/* CLIPTokenizer._tokenize of one stretch of text between added tokens. */
static sdc_status tokenize_text(const clip_tokenizer *t, const uint32_t *cp, size_t n, tok_out *o) {
    uint32_t *w;
    size_t nw;
    SDC_TRY(tok_clip_normalize(cp, n, &w, &nw));
    unsigned char *bytes = malloc(4 * nw + 1);
    int32_t *sids = malloc((4 * nw + 1) * sizeof *sids);
    sdc_status st = SDC_OK;
    if (!bytes || !sids) {
        st = sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    size_t pos = 0, b, e;
    while (!st && tok_clip_next_piece(w, nw, &pos, &b, &e)) {
        size_t nb = 0;
        for (size_t i = b; i < e; i++) nb += tok_utf8_encode(w[i], (char *)bytes + nb);
        bytes[nb] = 0;
        /* bpe()'s cache starts with these two, returned without "</w>" */
        if (!strcmp((char *)bytes, "<|startoftext|>") || !strcmp((char *)bytes, "<|endoftext|>")) {
            st = emit(o, (char *)bytes, token_id(t, (char *)bytes, nb));
            continue;
        }
        size_t k = 0;
        st = tok_bpe_word(&t->bpe, bytes, nb, sids, &k);
        for (size_t i = 0; i < k && !st; i++) st = emit(o, t->bpe.sym_str[sids[i]], t->sid_id[sids[i]]);
    }
done:
    free(w);
    free(bytes);
    free(sids);
    return st;
}

/* The longest added token starting at s[i] (trie split), or NULL. */
static const added_token *added_at(const clip_tokenizer *t, const uint32_t *s, size_t n, size_t i) {
    const added_token *best = NULL;
    for (int k = 0; k < t->nadded; k++) {
        const added_token *a = &t->added[k];
        if (a->ncp > n - i || a->cp[0] != s[i] || (best && a->ncp <= best->ncp)) continue;
        if (memcmp(a->cp, s + i, a->ncp * sizeof *s) == 0) best = a;
    }
    return best;
}

typedef struct {
    size_t b, e;
    const added_token *a; /* NULL: text */
} segment;

/* PreTrainedTokenizer.tokenize: split on added tokens, honour their
 * lstrip/rstrip, run _tokenize on the text in between. */
/* seg[*ns] (grown by doubling) = s */
static int push_seg(segment **seg, size_t *ns, size_t *cap, segment s) {
    if (*ns == *cap) {
        size_t c = *cap ? 2 * *cap : 16;
        segment *p = realloc(*seg, c * sizeof *p);
        if (!p) return 0;
        *seg = p, *cap = c;
    }
    (*seg)[(*ns)++] = s;
    return 1;
}

static sdc_status run(const clip_tokenizer *t, const char *text, size_t len, tok_out *o) {
    uint32_t *cp = malloc((len + 1) * sizeof *cp);
    segment *seg = NULL;
    size_t ns = 0, seg_cap = 0, start = 0;
    sdc_status st = SDC_OK;
    if (!cp) {
        st = sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    size_t n = tok_utf8_decode(text, len, cp);
    for (size_t i = 0; i < n;) {
        const added_token *a = t->nadded ? added_at(t, cp, n, i) : NULL;
        if (!a) {
            i++;
            continue;
        }
        if ((i > start && !push_seg(&seg, &ns, &seg_cap, (segment){start, i, NULL})) ||
            !push_seg(&seg, &ns, &seg_cap, (segment){i, i + a->ncp, a})) {
            st = sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
            goto done;
        }
        i += a->ncp;
        start = i;
    }
    if (n > start && !push_seg(&seg, &ns, &seg_cap, (segment){start, n, NULL})) {
        st = sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    for (size_t k = 0; k < ns; k++) {
        if (!seg[k].a) continue;
        if (seg[k].a->rstrip && k + 1 < ns && !seg[k + 1].a)
            while (seg[k + 1].b < seg[k + 1].e && tok_py_isspace(cp[seg[k + 1].b])) seg[k + 1].b++;
        if (seg[k].a->lstrip && k > 0 && !seg[k - 1].a)
            while (seg[k - 1].e > seg[k - 1].b && tok_py_isspace(cp[seg[k - 1].e - 1])) seg[k - 1].e--;
    }
    for (size_t k = 0; k < ns && !st; k++) {
        if (seg[k].a) st = emit(o, seg[k].a->str, seg[k].a->id);
        else if (seg[k].e > seg[k].b) st = tokenize_text(t, cp + seg[k].b, seg[k].e - seg[k].b, o);
    }
done:
    free(cp);
    free(seg);
    return st;
}

void clip_tokens_free(char **tokens, int32_t *ids, int n) {
    if (tokens)
        for (int i = 0; i < n; i++) free(tokens[i]);
    free(tokens);
    free(ids);
}

sdc_status clip_tokenize(const clip_tokenizer *t, const char *text, size_t len, char ***tokens, int32_t **ids, int *n) {
    *tokens = NULL;
    *ids = NULL;
    *n = 0;
    if (!text && len) return sdc_fail(SDC_ERR_ARG, "clip_tokenize: text is NULL");
    if (len > SDC_MAX_PROMPT_BYTES)
        return sdc_fail(SDC_ERR_ARG, "a prompt of %zu bytes is longer than the limit of %d bytes", len,
                        SDC_MAX_PROMPT_BYTES);
    tok_out o = {.want_str = 1};
    sdc_status st = run(t, text ? text : "", len, &o);
    if (st) {
        clip_tokens_free(o.tok, o.id, o.n);
        return st;
    }
    *tokens = o.tok;
    *ids = o.id;
    *n = o.n;
    return SDC_OK;
}

sdc_status clip_encode(const clip_tokenizer *t, const char *text, size_t len, int max_len, int64_t *input_ids,
                       int64_t **untrunc, int *n_untrunc) {
    if (untrunc) *untrunc = NULL;
    if (n_untrunc) *n_untrunc = 0;
    if (max_len < 2) return sdc_fail(SDC_ERR_ARG, "clip_encode: max_length %d < 2 (bos + eos)", max_len);
    if (!text && len) return sdc_fail(SDC_ERR_ARG, "clip_encode: text is NULL");
    if (len > SDC_MAX_PROMPT_BYTES)
        return sdc_fail(SDC_ERR_ARG, "a prompt of %zu bytes is longer than the limit of %d bytes", len,
                        SDC_MAX_PROMPT_BYTES);
    tok_out o = {.want_str = 0};
    sdc_status st = run(t, text ? text : "", len, &o);
    if (st) {
        free(o.id);
        return st;
    }
    /* truncation keeps the first max_len - 2 tokens; then bos/eos; then pad */
    int keep = o.n < max_len - 2 ? o.n : max_len - 2, k = 0;
    input_ids[k++] = t->bos;
    for (int i = 0; i < keep; i++) input_ids[k++] = o.id[i];
    input_ids[k++] = t->eos;
    while (k < max_len) input_ids[k++] = t->pad;
    if (untrunc) {
        int64_t *u = malloc((size_t)(o.n + 2) * sizeof *u);
        if (!u) {
            free(o.id);
            return sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
        }
        u[0] = t->bos;
        for (int i = 0; i < o.n; i++) u[i + 1] = o.id[i];
        u[o.n + 1] = t->eos;
        *untrunc = u;
        if (n_untrunc) *n_untrunc = o.n + 2;
    }
    free(o.id);
    return SDC_OK;
}
