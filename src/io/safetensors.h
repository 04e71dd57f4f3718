/* safetensors.h - read-only, memory-mapped safetensors files.
 * The header is parsed and every entry validated (dtype known, shape
 * product * element size == byte span, spans inside the file, no overlap)
 * before any tensor is handed out. Tensor data stays in the mapping. */
#ifndef SDC_IO_SAFETENSORS_H
#define SDC_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define ST_MAX_DIMS 8

typedef enum { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL } st_dtype;

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const void *data; /* points into the mapping; may be unaligned */
    size_t nbytes;
} st_tensor;

typedef struct {
    char *path;
    void *map;
    size_t map_size;
    int n;
    st_tensor *tensors; /* sorted by name for bsearch */
    char *metadata_json; /* "__metadata__" object re-serialised, or NULL */
} st_file;

sdc_status st_open(st_file *f, const char *path);
void st_close(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);
/* Drop the file's pages from this process's resident set (they stay in the
 * page cache and come back on the next read, a minor fault per 64 KiB of
 * fault-around): a pipeline stage done with its weights hands their memory
 * to the next stage's activations. Data stays valid. */
void st_release_pages(const st_file *f);
/* The same for the pages of [p, p + n) when they lie in f's mapping (rounded
 * out to whole pages: neighbours' pages leave too, and come back on their
 * next read); returns 0 and does nothing when p is not in f's mapping. */
int st_release_range(const st_file *f, const void *p, size_t n);
size_t st_dtype_size(st_dtype t);
const char *st_dtype_name(st_dtype t);

/* Convert any float dtype to newly allocated float32 (caller frees). */
sdc_status st_to_f32(const st_tensor *t, float **out);
/* Same, into a caller buffer of t->numel floats. */
void st_copy_f32(const st_tensor *t, float *dst);
/* Integer tensors (I64/I32/...) to int64 (caller frees). */
sdc_status st_to_i64(const st_tensor *t, int64_t **out);

/* Fetch a float tensor by name with an expected shape (ndim < 0: any
 * shape); returns freshly allocated float32 data. Errors name file+key. */
sdc_status st_get_f32(const st_file *f, const char *name, int ndim, const int64_t *shape, float **out);

float sdc_f16_to_f32(uint16_t h);
float sdc_bf16_to_f32(uint16_t h);
uint16_t sdc_f32_to_f16(float f);

/* Writing (used by --dump and tests): collect tensors, then write. */
typedef struct st_writer st_writer;
st_writer *st_writer_new(void);
sdc_status st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape, const void *data);
/* The same without a copy: data must stay valid until st_writer_save returns
 * (large tensors: a model's weights written as they are held). */
sdc_status st_writer_add_borrowed(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                                  const void *data);
sdc_status st_writer_save(st_writer *w, const char *path); /* temp file + rename */
void st_writer_free(st_writer *w);

#endif
