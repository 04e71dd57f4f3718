/* safetensors.c - mmap reader and a small writer for the safetensors format:
 * 8-byte little-endian header length, JSON header, raw little-endian data.
 * Nothing in the header is trusted until checked against the file size. */
#include "io/safetensors.h"

#include "io/paths.h"
#include "io/temp_files.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct { const char *name; st_dtype t; size_t size; } k_dtypes[] = {
    {"F32", ST_F32, 4}, {"F16", ST_F16, 2}, {"BF16", ST_BF16, 2}, {"F64", ST_F64, 8},
    {"I64", ST_I64, 8}, {"I32", ST_I32, 4}, {"I16", ST_I16, 2},  {"I8", ST_I8, 1},
    {"U8", ST_U8, 1},   {"BOOL", ST_BOOL, 1},
};

size_t st_dtype_size(st_dtype t) {
    for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0]; i++)
        if (k_dtypes[i].t == t) return k_dtypes[i].size;
    return 0;
}

const char *st_dtype_name(st_dtype t) {
    for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0]; i++)
        if (k_dtypes[i].t == t) return k_dtypes[i].name;
    return "?";
}

static int parse_dtype(const char *s, st_dtype *t) {
    for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0]; i++)
        if (!strcmp(k_dtypes[i].name, s)) { *t = k_dtypes[i].t; return 1; }
    return 0;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

typedef struct { uint64_t begin, end; const char *name; } span;
static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* A JSON number that is an exact non-negative integer below 2^53. */
static int json_u64(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

static sdc_status parse_header(st_file *f, const char *json, size_t len, uint64_t data_size) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return sdc_fail(SDC_ERR_FORMAT, "%s: safetensors header is not a JSON object", f->path);
    }
    int count = 0;
    for (cJSON *e = root->child; e; e = e->next)
        if (strcmp(e->string, "__metadata__")) count++;
    f->tensors = calloc(count ? (size_t)count : 1, sizeof(st_tensor));
    span *spans = calloc(count ? (size_t)count : 1, sizeof(span));
    if (!f->tensors || !spans) {
        free(spans);
        cJSON_Delete(root);
        return sdc_fail(SDC_ERR_NOMEM, "%s: out of memory reading header", f->path);
    }
    sdc_status st = SDC_OK;
    int seen_metadata = 0;
    const uint8_t *data = (const uint8_t *)f->map + 8 + len;
    for (cJSON *e = root->child; e && !st; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            if (seen_metadata++) { /* a second one would replace (and leak) the first */
                st = sdc_fail(SDC_ERR_FORMAT, "%s: '__metadata__' appears twice in the header", f->path);
                break;
            }
            if (cJSON_IsObject(e)) f->metadata_json = cJSON_PrintUnformatted(e);
            continue;
        }
        st_tensor *t = &f->tensors[f->n];
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsObject(e) || !cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) ||
            cJSON_GetArraySize(off) != 2) {
            st = sdc_fail(SDC_ERR_FORMAT, "%s: tensor '%s' has a malformed header entry", f->path, e->string);
            break;
        }
        if (!parse_dtype(dt->valuestring, &t->dtype)) {
            st = sdc_fail(SDC_ERR_FORMAT, "%s: tensor '%s' has unknown dtype '%s'", f->path, e->string,
                          dt->valuestring);
            break;
        }
        int nd = cJSON_GetArraySize(sh);
        if (nd > ST_MAX_DIMS) {
            st = sdc_fail(SDC_ERR_FORMAT, "%s: tensor '%s' has %d dimensions (max %d)", f->path, e->string, nd,
                          ST_MAX_DIMS);
            break;
        }
        t->ndim = nd;
        uint64_t numel = 1;
        for (int i = 0; i < nd; i++) {
            uint64_t d;
            if (!json_u64(cJSON_GetArrayItem(sh, i), &d) || d > (1ull << 40) || (d && numel > (1ull << 50) / d)) {
                st = sdc_fail(SDC_ERR_FORMAT, "%s: tensor '%s' has an invalid shape", f->path, e->string);
                break;
            }
            t->shape[i] = (int64_t)d;
            numel *= d;
        }
        if (st) break;
        uint64_t b, en;
        if (!json_u64(cJSON_GetArrayItem(off, 0), &b) || !json_u64(cJSON_GetArrayItem(off, 1), &en) || en < b ||
            en > data_size) {
            st = sdc_fail(SDC_ERR_FORMAT,
                          "%s: tensor '%s' data lies outside the file (truncated or corrupt file?)", f->path,
                          e->string);
            break;
        }
        if (en - b != numel * st_dtype_size(t->dtype)) {
            st = sdc_fail(SDC_ERR_FORMAT, "%s: tensor '%s' byte size %llu does not match its shape and dtype",
                          f->path, e->string, (unsigned long long)(en - b));
            break;
        }
        t->name = strdup(e->string);
        if (!t->name) { st = sdc_fail(SDC_ERR_NOMEM, "out of memory"); break; }
        t->numel = (int64_t)numel;
        t->data = data + b;
        t->nbytes = (size_t)(en - b);
        spans[f->n] = (span){b, en, t->name};
        f->n++;
    }
    if (!st) {
        qsort(spans, (size_t)f->n, sizeof(span), cmp_span);
        for (int i = 1; i < f->n; i++)
            if (spans[i].begin < spans[i - 1].end) {
                st = sdc_fail(SDC_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", f->path, spans[i - 1].name,
                              spans[i].name);
                break;
            }
    }
    free(spans);
    cJSON_Delete(root);
    if (!st) {
        qsort(f->tensors, (size_t)f->n, sizeof(st_tensor), cmp_name);
        for (int i = 1; i < f->n; i++)
            if (!strcmp(f->tensors[i].name, f->tensors[i - 1].name))
                return sdc_fail(SDC_ERR_FORMAT, "%s: tensor '%s' appears twice", f->path, f->tensors[i].name);
    }
    return st;
}

sdc_status st_open(st_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (!f->path) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    int fd;
    sdc_status ost = path_open_regular(path, &fd);
    if (ost) {
        st_close(f);
        return ost;
    }
    struct stat sb;
    if (fstat(fd, &sb)) {
        ost = sdc_fail(SDC_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
        close(fd);
        st_close(f);
        return ost;
    }
    if (sb.st_size < 8) {
        close(fd);
        st_close(f);
        return sdc_fail(SDC_ERR_FORMAT, "%s: too short to be a safetensors file (%lld bytes)", path,
                        (long long)sb.st_size);
    }
    f->map_size = (size_t)sb.st_size;
    f->map = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        st_close(f);
        return sdc_fail(SDC_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
    }
    uint64_t hlen = 0;
    const uint8_t *p = f->map;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
    if (hlen == 0 || hlen > f->map_size - 8 || hlen > (100u << 20)) {
        st_close(f);
        return sdc_fail(SDC_ERR_FORMAT, "%s: invalid safetensors header length %llu (file is %zu bytes)", path,
                        (unsigned long long)hlen, (size_t)sb.st_size);
    }
    sdc_status st = parse_header(f, (const char *)p + 8, (size_t)hlen, f->map_size - 8 - hlen);
    if (st) {
        st_close(f);
        return st;
    }
    return SDC_OK;
}

void st_release_pages(const st_file *f) {
    /* read-only private mapping never written: MADV_DONTNEED only unmaps */
    if (f->map && f->map_size) madvise(f->map, f->map_size, MADV_DONTNEED);
}

void st_close(st_file *f) {
    if (f->map) munmap(f->map, f->map_size);
    for (int i = 0; i < f->n; i++) free(f->tensors[i].name);
    free(f->tensors);
    free(f->path);
    free(f->metadata_json);
    memset(f, 0, sizeof *f);
}

const st_tensor *st_find(const st_file *f, const char *name) {
    if (!f->n) return NULL;
    st_tensor key = {.name = (char *)name};
    return bsearch(&key, f->tensors, (size_t)f->n, sizeof(st_tensor), cmp_name);
}

float sdc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float sdc_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t sdc_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t man = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)exp << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* round to nearest even; carries into exp */
    return (uint16_t)half;
}

void st_copy_f32(const st_tensor *t, float *dst) {
    const uint8_t *s = t->data;
    for (int64_t i = 0; i < t->numel; i++) {
        switch (t->dtype) {
        case ST_F32: memcpy(&dst[i], s + 4 * i, 4); break;
        case ST_F16: { uint16_t h; memcpy(&h, s + 2 * i, 2); dst[i] = sdc_f16_to_f32(h); } break;
        case ST_BF16: { uint16_t h; memcpy(&h, s + 2 * i, 2); dst[i] = sdc_bf16_to_f32(h); } break;
        case ST_F64: { double d; memcpy(&d, s + 8 * i, 8); dst[i] = (float)d; } break;
        default: dst[i] = 0; break;
        }
    }
}

sdc_status st_to_f32(const st_tensor *t, float **out) {
    *out = NULL;
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16 && t->dtype != ST_F64)
        return sdc_fail(SDC_ERR_SHAPE, "tensor '%s' has dtype %s, expected a float type", t->name,
                        st_dtype_name(t->dtype));
    float *d = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
    if (!d) return sdc_fail(SDC_ERR_NOMEM, "out of memory for tensor '%s'", t->name);
    st_copy_f32(t, d);
    *out = d;
    return SDC_OK;
}

sdc_status st_to_i64(const st_tensor *t, int64_t **out) {
    *out = NULL;
    int64_t *d = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(int64_t));
    if (!d) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    const uint8_t *s = t->data;
    for (int64_t i = 0; i < t->numel; i++) {
        switch (t->dtype) {
        case ST_I64: memcpy(&d[i], s + 8 * i, 8); break;
        case ST_I32: { int32_t v; memcpy(&v, s + 4 * i, 4); d[i] = v; } break;
        case ST_I16: { int16_t v; memcpy(&v, s + 2 * i, 2); d[i] = v; } break;
        case ST_I8: d[i] = (int8_t)s[i]; break;
        case ST_U8: case ST_BOOL: d[i] = s[i]; break;
        default:
            free(d);
            return sdc_fail(SDC_ERR_SHAPE, "tensor '%s' has dtype %s, expected an integer type", t->name,
                            st_dtype_name(t->dtype));
        }
    }
    *out = d;
    return SDC_OK;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t o = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < ndim && o < n; i++) o += (size_t)snprintf(buf + o, n - o, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (o < n) snprintf(buf + o, n - o, ")");
}

sdc_status st_get_f32(const st_file *f, const char *name, int ndim, const int64_t *shape, float **out) {
    *out = NULL;
    const st_tensor *t = st_find(f, name);
    if (!t) return sdc_fail(SDC_ERR_FORMAT, "%s: missing tensor '%s'", f->path, name);
    if (ndim >= 0) {
        int ok = t->ndim == ndim;
        for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
        if (!ok) {
            char a[128], b[128];
            shape_str(a, sizeof a, t->ndim, t->shape);
            shape_str(b, sizeof b, ndim, shape);
            return sdc_fail(SDC_ERR_SHAPE, "%s: tensor '%s' has shape %s, expected %s", f->path, name, a, b);
        }
    }
    return st_to_f32(t, out);
}

/* ---- writer ---- */

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    void *data;
    size_t nbytes;
} wt;

struct st_writer {
    wt *items;
    int n, cap;
};

st_writer *st_writer_new(void) { return calloc(1, sizeof(st_writer)); }

sdc_status st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                         const void *data) {
    if (ndim > ST_MAX_DIMS) return sdc_fail(SDC_ERR_ARG, "too many dimensions for '%s'", name);
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 16;
        wt *it = realloc(w->items, (size_t)cap * sizeof(wt));
        if (!it) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
        w->items = it;
        w->cap = cap;
    }
    wt *t = &w->items[w->n];
    memset(t, 0, sizeof *t);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) { t->shape[i] = shape[i]; numel *= (size_t)shape[i]; }
    t->nbytes = numel * st_dtype_size(dtype);
    t->name = strdup(name);
    t->data = malloc(t->nbytes ? t->nbytes : 1);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    memcpy(t->data, data, t->nbytes);
    t->dtype = dtype;
    t->ndim = ndim;
    w->n++;
    return SDC_OK;
}

sdc_status st_writer_save(st_writer *w, const char *path) {
    cJSON *root = cJSON_CreateObject();
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        cJSON *e = cJSON_AddObjectToObject(root, w->items[i].name);
        cJSON_AddStringToObject(e, "dtype", st_dtype_name(w->items[i].dtype));
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < w->items[i].ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)w->items[i].shape[d]));
        cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        off += w->items[i].nbytes;
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
    }
    char *js = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!js) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    size_t jl = strlen(js), padded = (jl + 7) & ~(size_t)7;
    char tmp[PATH_MAX];
    if (!temp_name(path, tmp, sizeof tmp)) {
        free(js);
        return sdc_fail(SDC_ERR_IO, "%s: path too long", path);
    }
    temp_clean_stale(path);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        free(js);
        return sdc_fail(SDC_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    }
    uint8_t hdr[8];
    for (int i = 0; i < 8; i++) hdr[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    int ok = fwrite(hdr, 1, 8, fp) == 8 && fwrite(js, 1, jl, fp) == jl;
    for (size_t i = jl; ok && i < padded; i++) ok = fputc(' ', fp) != EOF;
    for (int i = 0; ok && i < w->n; i++) ok = fwrite(w->items[i].data, 1, w->items[i].nbytes, fp) == w->items[i].nbytes;
    free(js);
    if (fclose(fp) || !ok) {
        unlink(tmp);
        return sdc_fail(SDC_ERR_IO, "%s: write failed", path);
    }
    if (rename(tmp, path)) {
        unlink(tmp);
        return sdc_fail(SDC_ERR_IO, "%s: cannot rename into place: %s", path, strerror(errno));
    }
    return SDC_OK;
}

void st_writer_free(st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        free(w->items[i].name);
        free(w->items[i].data);
    }
    free(w->items);
    free(w);
}
