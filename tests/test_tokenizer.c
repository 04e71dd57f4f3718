/* test_tokenizer.c - the CLIP tokenizer against transformers' goldens
 * (units/tokenizer.json), the real CLIP vocabulary, Python's str.lower() and
 * `regex` corner cases, and broken tokenizer folders. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "io/json.h"
#include "text/clip_tokenizer.h"
#include "text/tokenizer_text.h"

/* --- helpers ------------------------------------------------------------------ */

/* Decode the JSON string literal starting after the opening quote at p into
 * out (UTF-8, may contain NUL: cJSON cannot hand those back). Returns length. */
static size_t json_unescape(const char *p, char *out) {
    size_t n = 0;
    while (*p && *p != '"') {
        if (*p != '\\') {
            out[n++] = *p++;
            continue;
        }
        p++;
        char e = *p++;
        if (e != 'u') {
            out[n++] = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'b' ? '\b' : e == 'f' ? '\f' : e;
            continue;
        }
        unsigned c = (unsigned)strtoul((char[5]){p[0], p[1], p[2], p[3], 0}, NULL, 16);
        p += 4;
        if (c >= 0xD800 && c < 0xDC00 && p[0] == '\\' && p[1] == 'u') {
            unsigned lo = (unsigned)strtoul((char[5]){p[2], p[3], p[4], p[5], 0}, NULL, 16);
            c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        }
        n += tok_utf8_encode(c, out + n);
    }
    return n;
}

/* The i-th "text" value of the fixture file, raw. */
static char *fixture_text(const char *raw, int i, size_t *len) {
    const char *p = raw;
    for (int k = 0; k <= i; k++) {
        p = strstr(p, "\"text\": \"");
        if (!p) return NULL;
        p += 9;
    }
    char *out = malloc(strlen(p) + 1);
    *len = json_unescape(p, out);
    return out;
}

static int json_int_list_eq(const cJSON *arr, const int64_t *v, int n) {
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != n) return 0;
    for (int i = 0; i < n; i++)
        if ((int64_t)cJSON_GetArrayItem(arr, i)->valuedouble != v[i]) return 0;
    return 1;
}

static void write_file(const char *path, const char *content, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(content, 1, len, f);
    fclose(f);
}

static char *strjoin(char **tok, int n) {
    size_t l = 1;
    for (int i = 0; i < n; i++) l += strlen(tok[i]) + 1;
    char *s = malloc(l);
    s[0] = 0;
    for (int i = 0; i < n; i++) {
        if (i) strcat(s, " ");
        strcat(s, tok[i]);
    }
    return s;
}

/* --- goldens from transformers ------------------------------------------------- */

static void check_fixture(const char *tok_dir, const char *var, int pad_id) {
    cJSON *j;
    char *raw;
    CHECK_OK(json_load(fixture_path("units/tokenizer.json"), &j));
    CHECK_OK(sdc_read_file(fixture_path("units/tokenizer.json"), &raw, NULL));
    clip_tokenizer *t;
    sdc_status st = clip_tokenizer_load(&t, fixture_path(tok_dir));
    if (st) {
        cJSON_Delete(j);
        free(raw);
        CHECK(0, "load %s: %s", tok_dir, sdc_last_error());
    }
    char key_tok[64], key_un[64], key_in[64];
    snprintf(key_tok, sizeof key_tok, "tokens_%s", var);
    snprintf(key_un, sizeof key_un, "untruncated_ids_%s", var);
    snprintf(key_in, sizeof key_in, "input_ids_%s", var);
    const cJSON *entries = cJSON_GetObjectItem(j, "entries");
    int ne = cJSON_GetArraySize(entries), bad = -1;
    char why[512] = "";
    if (clip_tokenizer_bos(t) != cJSON_GetObjectItem(j, "bos_token_id")->valueint ||
        clip_tokenizer_eos(t) != cJSON_GetObjectItem(j, "eos_token_id")->valueint || clip_tokenizer_pad(t) != pad_id ||
        clip_tokenizer_max_length(t) != 77)
        snprintf(why, sizeof why, "special ids bos %d eos %d pad %d (want %d) max_len %d", clip_tokenizer_bos(t),
                 clip_tokenizer_eos(t), clip_tokenizer_pad(t), pad_id, clip_tokenizer_max_length(t));
    for (int i = 0; i < ne && !why[0]; i++) {
        const cJSON *e = cJSON_GetArrayItem(entries, i);
        size_t len;
        char *text = fixture_text(raw, i, &len);
        if (!text) {
            snprintf(why, sizeof why, "entry %d: no raw text", i);
            break;
        }
        char **tok;
        int32_t *ids;
        int n;
        int64_t in[77], *un = NULL;
        int nun = 0;
        if (clip_tokenize(t, text, len, &tok, &ids, &n) || clip_encode(t, text, len, 77, in, &un, &nun)) {
            snprintf(why, sizeof why, "entry %d failed: %s", i, sdc_last_error());
            free(text);
            break;
        }
        const cJSON *et = cJSON_GetObjectItem(e, key_tok);
        int ok = cJSON_GetArraySize(et) == n;
        for (int k = 0; ok && k < n; k++) ok = strcmp(cJSON_GetArrayItem(et, k)->valuestring, tok[k]) == 0;
        int64_t ids64[1024];
        for (int k = 0; k < n && k < 1024; k++) ids64[k] = ids[k];
        if (!ok) {
            char *got = strjoin(tok, n);
            snprintf(why, sizeof why, "entry %d (%.40s): tokens differ: got '%.300s'", i, cJSON_GetObjectItem(e, "text")->valuestring, got);
            free(got);
        } else if (nun != n + 2 || !json_int_list_eq(cJSON_GetObjectItem(e, key_un), un, nun)) {
            snprintf(why, sizeof why, "entry %d (%.40s): untruncated ids differ", i, cJSON_GetObjectItem(e, "text")->valuestring);
        } else if (un[0] != clip_tokenizer_bos(t) || un[nun - 1] != clip_tokenizer_eos(t) ||
                   (n <= 1024 && memcmp(un + 1, ids64, (size_t)n * sizeof *un) != 0)) {
            snprintf(why, sizeof why, "entry %d: clip_tokenize ids != clip_encode ids", i);
        } else if (!json_int_list_eq(cJSON_GetObjectItem(e, key_in), in, 77)) {
            snprintf(why, sizeof why, "entry %d (%.40s): input_ids (77) differ", i, cJSON_GetObjectItem(e, "text")->valuestring);
        }
        if (why[0]) bad = i;
        clip_tokens_free(tok, ids, n);
        free(un);
        free(text);
    }
    clip_tokenizer_free(t);
    cJSON_Delete(j);
    free(raw);
    CHECK(ne == 42, "expected 42 fixture entries, got %d", ne);
    CHECK(!why[0], "%s: %s", tok_dir, why);
    (void)bad;
}

TEST(tokenizer_fixture_pad_eot) { check_fixture("models/tiny-sd/tokenizer", "pad_eot", 1113); }

TEST(tokenizer_fixture_pad_bang) { check_fixture("models/tiny-sdxl/tokenizer_2", "pad_bang", 0); }

TEST(tokenizer_real_clip_vocab) {
    const char *dir = shared_path("clip-vocab");
    if (!dir) SKIP("../shared/clip-vocab not present");
    clip_tokenizer *t;
    CHECK_OK(clip_tokenizer_load(&t, dir));
    int64_t ids[77];
    const char *p = "a photo of a cat";
    sdc_status st = clip_encode(t, p, strlen(p), 77, ids, NULL, NULL);
    int vs = clip_tokenizer_vocab_size(t), pad = clip_tokenizer_pad(t);
    char **tok;
    int32_t *tid;
    int n = 0;
    const char *q = "A Cinematic Shot, <|endoftext|>!!";
    sdc_status st2 = clip_tokenize(t, q, strlen(q), &tok, &tid, &n);
    char *joined = st2 ? NULL : strjoin(tok, n);
    if (!st2) clip_tokens_free(tok, tid, n);
    clip_tokenizer_free(t);
    CHECK(st == SDC_OK, "encode: %s", sdc_last_error());
    CHECK(vs == 49408 && pad == 49407, "vocab size %d pad %d", vs, pad);
    static const int64_t want[] = {49406, 320, 1125, 539, 320, 2368, 49407};
    for (int i = 0; i < 77; i++) {
        int64_t w = i < 7 ? want[i] : 49407;
        CHECK(ids[i] == w, "ids[%d] = %lld, want %lld", i, (long long)ids[i], (long long)w);
    }
    CHECK(st2 == SDC_OK, "tokenize: %s", sdc_last_error());
    int ok = !strcmp(joined, "a</w> cinematic</w> shot</w> ,</w> <|endoftext|> !!</w>");
    CHECK(ok, "tokens '%s'", joined);
    free(joined);
}

/* --- Python semantics ---------------------------------------------------------- */

TEST(tokenizer_python_lower_and_cleanup) {
    /* expected values are CPython's " ".join(BasicTokenizer().tokenize(s)):
     * final sigma by context, U+0130 -> i + U+0307, U+1E9E -> ß, NFC (A +
     * ring and the Angstrom sign -> å), U+2028/2029 split words, U+001C is a
     * control (dropped, no split) */
    const char *s = "ΟΔΟΣ ΑΣ. ΣΑ Σ xΣ'y İ ǅ ẞ A\xcc\x8a \xe2\x84\xab \xe2\x80\xa8x\xe2\x80\xa9y\x1cz";
    static const uint32_t want[] = {0x3bf, 0x3b4, 0x3bf, 0x3c2, 0x20, 0x3b1, 0x3c2, 0x2e, 0x20, 0x3c3, 0x3b1, 0x20,
                                    0x3c3, 0x20,  0x78,  0x3c3, 0x27, 0x79,  0x20,  0x69, 0x307, 0x20, 0x1c6, 0x20,
                                    0xdf,  0x20,  0xe5,  0x20,  0xe5, 0x20,  0x78,  0x20, 0x79,  0x7a};
    size_t n = strlen(s), nw = sizeof want / sizeof want[0];
    uint32_t *cp = malloc(n * sizeof *cp), *out;
    size_t ncp = tok_utf8_decode(s, n, cp), nout;
    sdc_status st = tok_clip_normalize(cp, ncp, &out, &nout);
    free(cp);
    CHECK(st == SDC_OK, "normalize: %s", sdc_last_error());
    int ok = nout == nw;
    size_t at = 0;
    for (; ok && at < nw; at++) ok = out[at] == want[at];
    uint32_t got = at > 0 && at <= nout ? out[at - 1] : 0;
    free(out);
    CHECK(ok, "normalized text differs (length %zu vs %zu, at %zu: U+%04X vs U+%04X)", nout, nw, at - 1, got,
          at > 0 ? want[at - 1] : 0);
}

TEST(tokenizer_regex_corner_cases) {
    /* from `regex` (IGNORECASE): U+0345 matches nothing, "'ſ" is a
     * contraction, "<|ſtartoftext|>" a special, "|>'" a punctuation run */
    const char *s = "a\xcd\x85" "b !\xcd\x85! '\xc5\xbf'll <|\xc5\xbftartoftext|><<|endoftext|>'S \xc2\xbd\xc2\xb2\xe2\x85\xa3" "12 i\xcc\x87x";
    static const size_t want[][2] = {{0, 1},   {2, 3},   {4, 5},   {6, 7},   {8, 10},  {10, 13}, {14, 29},
                                     {29, 32}, {32, 41}, {41, 44}, {44, 45}, {46, 47}, {47, 48}, {48, 49},
                                     {49, 50}, {50, 51}, {52, 53}, {53, 54}, {54, 55}};
    size_t n = strlen(s), nw = sizeof want / sizeof want[0];
    uint32_t cp[128];
    CHECK(n < 128, "test string too long");
    size_t ncp = tok_utf8_decode(s, n, cp), pos = 0, b, e, k = 0;
    while (tok_clip_next_piece(cp, ncp, &pos, &b, &e)) {
        CHECK(k < nw, "extra piece [%zu,%zu)", b, e);
        CHECK(b == want[k][0] && e == want[k][1], "piece %zu = [%zu,%zu), want [%zu,%zu)", k, b, e, want[k][0], want[k][1]);
        k++;
    }
    CHECK(k == nw, "%zu pieces, want %zu", k, nw);
}

TEST(tokenizer_invalid_utf8_and_nul) {
    clip_tokenizer *t;
    CHECK_OK(clip_tokenizer_load(&t, fixture_path("models/tiny-sd/tokenizer")));
    /* bytes.decode("utf-8", "replace") then cleanup drops every U+FFFD:
     * lone byte, truncated sequences, a surrogate, > U+10FFFF, a NUL */
    static const char bad[] = "a\xff" "b \xc3(\xe2\x82 cat\xed\xa0\x80 d\0og \xf4\x90\x80\x80!\xc3";
    /* the replacement char splits "<|endoftext|>" for the added-token pass,
     * but cleanup removes it and the regex then sees the special again */
    static const char split[] = "<|endof\xfftext|>x";
    char **tok;
    int32_t *ids;
    int n;
    sdc_status st = clip_tokenize(t, bad, sizeof bad - 1, &tok, &ids, &n);
    char *got = st ? NULL : strjoin(tok, n);
    int ids_ok = !st && n == 8 && ids[0] == 64 && ids[1] == 321 && ids[7] == 256;
    if (!st) clip_tokens_free(tok, ids, n);
    sdc_status st2 = clip_tokenize(t, split, sizeof split - 1, &tok, &ids, &n);
    char *got2 = st2 ? NULL : strjoin(tok, n);
    int ids2_ok = !st2 && n == 2 && ids[0] == 1113 && ids[1] == 343;
    if (!st2) clip_tokens_free(tok, ids, n);
    clip_tokenizer_free(t);
    CHECK(st == SDC_OK && st2 == SDC_OK, "tokenize failed: %s", sdc_last_error());
    int ok = !strcmp(got, "a b</w> (</w> ca t</w> do g</w> !</w>") && !strcmp(got2, "<|endoftext|> x</w>");
    CHECK(ok, "got '%s' / '%s'", got, got2);
    free(got);
    free(got2);
    CHECK(ids_ok && ids2_ok, "ids differ");
}

TEST(tokenizer_truncation_and_padding) {
    clip_tokenizer *t;
    CHECK_OK(clip_tokenizer_load(&t, fixture_path("models/tiny-sdxl/tokenizer_2")));
    int64_t ids[8], *un = NULL;
    int nun = 0;
    const char *p = "a photo of a cat";
    sdc_status st = clip_encode(t, p, strlen(p), 5, ids, &un, &nun);
    int64_t two[2];
    sdc_status st2 = clip_encode(t, p, strlen(p), 2, two, NULL, NULL);
    sdc_status st1 = clip_encode(t, p, strlen(p), 1, two, NULL, NULL);
    int64_t e8[8];
    sdc_status ste = clip_encode(t, "", 0, 8, e8, NULL, NULL);
    clip_tokenizer_free(t);
    CHECK(st == SDC_OK && st2 == SDC_OK && ste == SDC_OK, "encode failed: %s", sdc_last_error());
    static const int64_t w5[] = {1112, 320, 600, 538, 1113}, wu[] = {1112, 320, 600, 538, 320, 565, 339, 1113};
    int ok = nun == 8 && memcmp(ids, w5, sizeof w5) == 0 && memcmp(un, wu, sizeof wu) == 0;
    free(un);
    CHECK(ok, "max_length 5 truncation wrong");
    CHECK(two[0] == 1112 && two[1] == 1113, "max_length 2: %lld %lld", (long long)two[0], (long long)two[1]);
    CHECK(st1 == SDC_ERR_ARG, "max_length 1 accepted");
    CHECK(e8[0] == 1112 && e8[1] == 1113 && e8[2] == 0 && e8[7] == 0, "empty prompt not bos, eos, pad('!' = 0)...");
}

/* --- broken tokenizer folders ---------------------------------------------------- */

/* A fresh folder with the given files (NULL content: not written). */
static const char *make_dir(const char *name, const char *vocab, const char *merges, const char *cfg, const char *stm) {
    const char *dir = tmp_path(name);
    static char d[1024];
    snprintf(d, sizeof d, "%s", dir);
    mkdir(d, 0755);
    const char *names[] = {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"};
    const char *content[] = {vocab, merges, cfg, stm};
    for (int i = 0; i < 4; i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", d, names[i]);
        remove(p);
        if (content[i]) write_file(p, content[i], strlen(content[i]));
    }
    return d;
}

#define GOOD_VOCAB "{\"a</w>\": 0, \"b\": 1, \"<|startoftext|>\": 2, \"<|endoftext|>\": 3, \"ab</w>\": 4}"
#define GOOD_MERGES "#version: 0.2\nb a</w>\na b</w>\n"

TEST(tokenizer_rejects_broken_files) {
    struct {
        const char *vocab, *merges, *cfg, *stm;
        sdc_status want;
        const char *file, *msg;
    } cases[] = {
        {NULL, GOOD_MERGES, NULL, NULL, SDC_ERR_IO, "vocab.json", "cannot open"},
        {"[1, 2]", GOOD_MERGES, NULL, NULL, SDC_ERR_FORMAT, "vocab.json", "not a JSON object"},
        {"{\"a\": \"x\"}", GOOD_MERGES, NULL, NULL, SDC_ERR_FORMAT, "vocab.json", "integer"},
        {"{\"a\": 1.5}", GOOD_MERGES, NULL, NULL, SDC_ERR_FORMAT, "vocab.json", "integer"},
        {"{\"a\": -1}", GOOD_MERGES, NULL, NULL, SDC_ERR_FORMAT, "vocab.json", "integer"},
        {"{\"a\": 1e12}", GOOD_MERGES, NULL, NULL, SDC_ERR_FORMAT, "vocab.json", "integer"},
        {"{\"a\": 1, \"b", GOOD_MERGES, NULL, NULL, SDC_ERR_FORMAT, "vocab.json", "invalid JSON"},
        {"{}", GOOD_MERGES, NULL, NULL, SDC_ERR_FORMAT, "vocab.json", "no tokens"},
        {"{\"a\xff\": 1}", GOOD_MERGES, NULL, NULL, SDC_ERR_FORMAT, "vocab.json", "UTF-8"},
        {GOOD_VOCAB, NULL, NULL, NULL, SDC_ERR_IO, "merges.txt", "cannot open"},
        {GOOD_VOCAB, "", NULL, NULL, SDC_ERR_FORMAT, "merges.txt", "empty"},
        {GOOD_VOCAB, "#version: 0.2\na b c\n", NULL, NULL, SDC_ERR_FORMAT, "merges.txt", "line 2"},
        {GOOD_VOCAB, "#version: 0.2\nb a</w>\n<html>\n", NULL, NULL, SDC_ERR_FORMAT, "merges.txt", "line 3"},
        {GOOD_VOCAB, "#version: 0.2\na \xc3\n", NULL, NULL, SDC_ERR_FORMAT, "merges.txt", "UTF-8"},
        {GOOD_VOCAB, GOOD_MERGES, "{\"pad_token\": ", NULL, SDC_ERR_FORMAT, "tokenizer_config.json", "invalid JSON"},
        {GOOD_VOCAB, GOOD_MERGES, "[]", NULL, SDC_ERR_FORMAT, "tokenizer_config.json", "not a JSON object"},
        {GOOD_VOCAB, GOOD_MERGES, "{\"pad_token\": 5}", NULL, SDC_ERR_FORMAT, "tokenizer_config.json", "pad_token"},
        {GOOD_VOCAB, GOOD_MERGES, "{\"pad_token\": {\"lstrip\": true}}", NULL, SDC_ERR_FORMAT, "tokenizer_config.json", "content"},
        {GOOD_VOCAB, GOOD_MERGES, "{\"model_max_length\": \"77\"}", NULL, SDC_ERR_FORMAT, "tokenizer_config.json", "model_max_length"},
        {GOOD_VOCAB, GOOD_MERGES, "{\"model_max_length\": 1}", NULL, SDC_ERR_FORMAT, "tokenizer_config.json", "model_max_length"},
        {GOOD_VOCAB, GOOD_MERGES, "{\"added_tokens_decoder\": {\"x\": {\"content\": \"b\"}}}", NULL, SDC_ERR_FORMAT,
         "tokenizer_config.json", "not a token id"},
        {GOOD_VOCAB, GOOD_MERGES, "{\"added_tokens_decoder\": {\"1\": \"b\"}}", NULL, SDC_ERR_FORMAT,
         "tokenizer_config.json", "must be an object"},
        {GOOD_VOCAB, GOOD_MERGES, "{\"added_tokens_decoder\": {\"1\": {\"content\": \"b\", \"single_word\": true}}}", NULL,
         SDC_ERR_UNSUPPORTED, "tokenizer_config.json", "single_word"},
        {GOOD_VOCAB, GOOD_MERGES, NULL, "{\"pad_token\": [1]}", SDC_ERR_FORMAT, "special_tokens_map.json", "pad_token"},
        {GOOD_VOCAB, GOOD_MERGES, NULL, "{\"bos_token\"", SDC_ERR_FORMAT, "special_tokens_map.json", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *d = make_dir("badtok", cases[i].vocab, cases[i].merges, cases[i].cfg, cases[i].stm);
        clip_tokenizer *t = (clip_tokenizer *)1;
        sdc_status st = clip_tokenizer_load(&t, d);
        if (!st) clip_tokenizer_free(t);
        CHECK(st == cases[i].want, "case %zu: status %d, want %d (%s)", i, (int)st, (int)cases[i].want, sdc_last_error());
        CHECK(t == NULL, "case %zu: *out not NULL on failure", i);
        CHECK(strstr(sdc_last_error(), cases[i].file) && strstr(sdc_last_error(), cases[i].msg),
              "case %zu: message '%s' lacks '%s' / '%s'", i, sdc_last_error(), cases[i].file, cases[i].msg);
    }
}

TEST(tokenizer_minimal_folder_and_token_precedence) {
    struct {
        const char *cfg, *stm;
        int pad, vocab_size;
    } cases[] = {
        {NULL, NULL, 3, 5},                                                    /* class default <|endoftext|> */
        {NULL, "{\"pad_token\": \"a</w>\"}", 0, 5},                           /* special_tokens_map only */
        {"{\"pad_token\": \"b\"}", "{\"pad_token\": \"a</w>\"}", 0, 5},       /* legacy: the map overrides */
        {"{\"pad_token\": \"<|startoftext|>\", \"added_tokens_decoder\": {}}", "{\"pad_token\": \"a</w>\"}", 2, 5},
        {"{\"pad_token\": {\"content\": \"<pad>\"}}", NULL, 5, 6},            /* new token: id len(tokenizer) */
        {"{\"added_tokens_decoder\": {\"7\": {\"content\": \"<x>\"}}, \"pad_token\": \"<y>\"}", NULL, 6, 7},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *d = make_dir("oktok", GOOD_VOCAB, GOOD_MERGES, cases[i].cfg, cases[i].stm);
        clip_tokenizer *t;
        CHECK_OK(clip_tokenizer_load(&t, d));
        int pad = clip_tokenizer_pad(t), vs = clip_tokenizer_vocab_size(t), ml = clip_tokenizer_max_length(t);
        /* "ab" -> a b</w> -> (merge "a b</w>" is rank 1, "b a</w>" absent) ab</w>;
         * "ba" -> b a</w> -> ba</w> (merged symbol not in vocab -> unk 3) */
        char **tok;
        int32_t *ids;
        int n;
        sdc_status st = clip_tokenize(t, "ab ba c", 7, &tok, &ids, &n);
        char *joined = st ? NULL : strjoin(tok, n);
        int ids_ok = !st && n == 3 && ids[0] == 4 && ids[1] == 3 && ids[2] == 3;
        if (!st) clip_tokens_free(tok, ids, n);
        clip_tokenizer_free(t);
        CHECK(pad == cases[i].pad && vs == cases[i].vocab_size, "case %zu: pad %d vocab %d, want %d %d", i, pad, vs,
              cases[i].pad, cases[i].vocab_size);
        CHECK(ml == 77, "case %zu: default model_max_length %d", i, ml);
        CHECK(st == SDC_OK, "tokenize: %s", sdc_last_error());
        int ok = !strcmp(joined, "ab</w> ba</w> c</w>");
        CHECK(ok, "case %zu: tokens '%s'", i, joined);
        free(joined);
        CHECK(ids_ok, "case %zu: ids wrong", i);
    }
}

TEST(tokenizer_reads_only_clip_merge_lines) {
    /* CLIPTokenizer keeps merges.txt lines [1 : 49152 - 256 - 2 + 1]: the
     * merge on line index 48894 counts, the one on 48895 is ignored */
    size_t cap = 48900 * 24, len = 0;
    char *m = malloc(cap);
    len += (size_t)snprintf(m + len, cap - len, "#version: 0.2\n");
    for (int i = 1; i <= 48893; i++) len += (size_t)snprintf(m + len, cap - len, "q%d r%d\n", i, i);
    len += (size_t)snprintf(m + len, cap - len, "b a</w>\na b</w>\n");
    const char *d = make_dir("captok", GOOD_VOCAB, NULL, NULL, NULL);
    char p[1200];
    snprintf(p, sizeof p, "%s/merges.txt", d);
    write_file(p, m, len);
    free(m);
    clip_tokenizer *t;
    CHECK_OK(clip_tokenizer_load(&t, d));
    char **tok;
    int32_t *ids;
    int n;
    sdc_status st = clip_tokenize(t, "ba ab", 5, &tok, &ids, &n);
    char *joined = st ? NULL : strjoin(tok, n);
    if (!st) clip_tokens_free(tok, ids, n);
    clip_tokenizer_free(t);
    CHECK(st == SDC_OK, "tokenize: %s", sdc_last_error());
    int ok = !strcmp(joined, "ba</w> a b</w>");
    CHECK(ok, "tokens '%s', want 'ba</w> a b</w>'", joined);
    free(joined);
}

/* --- long prompts (speed is measured in bench/, not here) --------------------- */

TEST(tokenizer_real_vocab_long_prompt_truncates) {
    const char *dir = shared_path("clip-vocab");
    if (!dir) SKIP("../shared/clip-vocab not present");
    clip_tokenizer *t;
    CHECK_OK(clip_tokenizer_load(&t, dir));
    const char *p = "a breathtaking panoramic landscape of rolling green hills under a dramatic sky, with a winding "
                    "river reflecting the golden light of the setting sun, ancient stone bridges, small villages with "
                    "red roofs, flocks of birds, distant snowy mountains, wildflowers in the foreground, highly "
                    "detailed, intricate, sharp focus, volumetric lighting, cinematic composition, award winning "
                    "photograph, eight k resolution, trending on artstation, masterpiece, best quality";
    int64_t ids[77], *un = NULL;
    int nun = 0;
    sdc_status st = clip_encode(t, p, strlen(p), 77, ids, &un, &nun);
    int same_prefix = !st && nun > 77 && !memcmp(ids, un, 76 * sizeof(int64_t));
    free(un);
    clip_tokenizer_free(t);
    CHECK(st == SDC_OK, "encode: %s", sdc_last_error());
    CHECK(nun > 77, "prompt gave only %d tokens", nun);
    CHECK(same_prefix, "truncated ids are not the untruncated prefix");
    CHECK(ids[0] == 49406 && ids[76] == 49407, "bos/eos not kept: %lld .. %lld", (long long)ids[0], (long long)ids[76]);
}
