/* weights.h - a model component's parameters, looked up by their diffusers
 * names in one or more safetensors files. F32 tensors that are aligned are
 * used straight from the mapping. Matrices and kernels (weights_get_t) stay
 * F16/BF16 as stored, also straight from the mapping, and are widened while
 * GEMM panels are packed: the model then costs its file size in memory, not
 * twice that. Small tensors asked for as float (weights_get: norms, biases,
 * embeddings) are widened once into owned buffers. Every lookup checks the
 * shape and names file and key on error. */
#ifndef SDC_NN_WEIGHTS_H
#define SDC_NN_WEIGHTS_H

#include <stdint.h>

#include "backend/ops.h"
#include "io/safetensors.h"

/* A parameter slot handed out by weights_get: the model reads *slot. */
typedef struct {
    char *name;
    const void **slot;     /* the model's pointer (a const float * when dtype is NULL) */
    op_dtype *dtype;       /* the model's dtype of *slot (weights_get_t), NULL for float-only slots */
    float *mutable_copy;   /* set once weights_mutable made the slot point to an owned copy */
    /* an overlay's change (weights_overlay_begin): the copy the slot reads
     * now, and what it read before (put back by weights_overlay_drop) */
    float *overlay_copy;
    const void *overlay_base;
    op_dtype overlay_base_dt;
    int overlay_owner; /* this slot frees overlay_copy (one per name) */
    int64_t rows, cols;    /* a layer's weight (weights_get_layer) as a matrix; rows 0 for other slots */
    int conv_c, conv_k;    /* a square convolution kernel [rows][conv_c][conv_k][conv_k]; 0 for matrices */
} weights_slot;

typedef struct {
    st_file *files;
    int nfiles;
    char prefix[128]; /* prepended to every name ("" for diffusers folders) */
    void **owned;
    int nowned, cap;
    int64_t nparams; /* parameters handed out so far */
    int synthesize;  /* benchmarks: make missing tensors up (random, fixed seed) instead of failing;
                        2: only record each one's name and shape as a view without data (tools that
                        write random-weight model files; the model must not be run) */
    uint64_t synth_state;
    st_tensor *views; /* extra tensors by name (single-file key maps): checked before the files */
    int nviews, views_cap, views_sorted;
    weights_slot *slots;
    int nslots, slots_cap;
    void **device; /* device copies made by weights_to_device, in device_cx */
    int ndevice;
    op_ctx *device_cx;
    int overlay; /* weights_overlay_begin was called (and not yet dropped) */
    op_dtype quant;    /* OP_Q8: weights_get_layer quantises at once (set before the model loads; the
                          default OP_F32 leaves layer weights as stored until weights_quantize) */
    int quant_threads; /* threads quantising (0: one) */
} weights;

sdc_status weights_open(weights *w, const char *const *paths, int n);
/* A diffusers component's weights: <base>[.<variant>].safetensors, or the
 * shards listed in <base>.safetensors.index[.<variant>].json, in dir. A
 * requested variant the component lacks falls back to the plain file, as
 * diffusers does. base: "diffusion_pytorch_model" (diffusers) or "model"
 * (transformers). */
sdc_status weights_open_component(weights *w, const char *dir, const char *base, const char *variant);
void weights_close(weights *w);
const st_tensor *weights_find(const weights *w, const char *name);
int weights_has(const weights *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Look up prefix+name; ndim < 0 skips the shape check. */
sdc_status weights_get(weights *w, const float **out, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The same for a matrix or kernel the model reads through the _t ops:
 * *dt says what *out holds (OP_F16 / OP_BF16 as stored in the file when the
 * data is 2-byte aligned, else OP_F32). */
sdc_status weights_get_t(weights *w, const void **out, op_dtype *dt, int ndim, const int64_t *shape, const char *fmt,
                         ...) __attribute__((format(printf, 6, 7)));

/* The weight of a linear or convolution layer ([out][in] or [out][in][k][k]):
 * weights_get_t, remembered as a matrix [shape[0]][rest] that
 * weights_quantize may turn into int8 blocks (and does at once when w->quant
 * is OP_Q8: a model made up of random weights then never holds them all as
 * float32). */
sdc_status weights_get_layer(weights *w, const void **out, op_dtype *dt, int ndim, const int64_t *shape,
                             const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Quantise every layer weight taken so far (weights_get_layer) that is not
 * yet in q (OP_Q8: backend/q8.h) on `threads` threads, after LoRAs are
 * fused: each slot of the name then points to the owned int8 copy, and the
 * float source is let go at once (an owned float32 copy freed, file pages
 * dropped from the resident set: MADV_DONTNEED, they stay valid), so the
 * memory a model holds is the quantised size (at the end the files' pages
 * are dropped once more: weights_release_pages). A LoRA fused later
 * (weights_mutable) starts again from the stored tensor; quantise again
 * after it. */
sdc_status weights_quantize(weights *w, op_dtype q, int threads);

/* Every parameter the model has taken, written to one .safetensors file at
 * path as held: int8 layer weights as NAME.q8 (U8 [panels][nb][Q8_PBLOCK],
 * backend/q8.h) and NAME.q8_shape (I64 rows, cols, ch, kk), which
 * weights_get_layer maps back in place; the others as their file stores
 * them. Stored names without the prefix (diffusers folders). */
sdc_status weights_save(const weights *w, const char *path);

/* Make `name` (no prefix applied) resolve to a tensor view: data may point into
 * an open file's mapping (e.g. a row slice of a fused q/k/v matrix) or to a
 * malloc'd buffer the weights object then owns (take_ownership). */
sdc_status weights_add_view(weights *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                            const void *data, int take_ownership);

/* st_release_pages on every file this object opened (not on views into
 * other objects' mappings, e.g. single-file checkpoints). */
void weights_release_pages(const weights *w);

/* Device backends: upload every parameter the model has taken (matrices and
 * kernels in `dt`, the GEMM precision its component will run in; norms,
 * biases and embeddings in float32) into cx's device and point the model's
 * slots at the device copies; weights_close frees them (cx must outlive w).
 * The host data stays as it was (mapped files, owned buffers). Call after
 * LoRAs are fused. */
sdc_status weights_to_device(weights *w, op_ctx *cx, op_dtype dt);

/* Parameters the model has taken (weights_get) and where it keeps them. */
int weights_slot_count(const weights *w);
const char *weights_slot_name(const weights *w, int i);
/* An owned float32 copy of an already-taken parameter that every slot of
 * that name now points to (16-bit slots switch to OP_F32), for fusing deltas (LoRA) one tensor at a time;
 * later calls return the same buffer. SDC_ERR_ARG when the model has no
 * parameter of that name. shape may be NULL. */
sdc_status weights_mutable(weights *w, const char *name, float **data, int *ndim, int64_t *shape);

/* Changes that must be undone (per-request LoRAs): after weights_overlay_begin,
 * weights_mutable never writes into a buffer the model already reads; it
 * makes a new float32 copy of the current values (load-time LoRAs included)
 * and remembers what each slot pointed to. weights_overlay_drop points every
 * slot back there and frees the copies, so the model reads bit for bit what
 * it read before the overlay, without ever keeping a second copy of an
 * unchanged tensor. Host weights only (not after weights_to_device). */
void weights_overlay_begin(weights *w);
void weights_overlay_drop(weights *w);

#endif
