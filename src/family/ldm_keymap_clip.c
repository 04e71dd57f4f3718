/* ldm_keymap_clip.c - OpenCLIP text-transformer names (SD 2.x
 * cond_stage_model.model.*, SDXL conditioner.embedders.1.model.*) against
 * Hugging Face CLIPTextModel names (see ldm_keymap.h). The prefix of the
 * component is not part of either name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "family/ldm_keymap.h"

/* whole-name pairs outside the resblocks: {OpenCLIP, HF} */
static const char *k_top[][2] = {
    {"token_embedding.weight", "text_model.embeddings.token_embedding.weight"},
    {"positional_embedding", "text_model.embeddings.position_embedding.weight"},
    {"ln_final.weight", "text_model.final_layer_norm.weight"},
    {"ln_final.bias", "text_model.final_layer_norm.bias"},
    {"text_projection", "text_projection.weight"},
};

/* module pairs inside one resblock / encoder layer: {OpenCLIP, HF} */
static const char *k_layer[][2] = {
    {"ln_1.", "layer_norm1."},       {"ln_2.", "layer_norm2."},  {"attn.out_proj.", "self_attn.out_proj."},
    {"mlp.c_fc.", "mlp.fc1."},       {"mlp.c_proj.", "mlp.fc2."},
};

#define RESBLOCKS "transformer.resblocks."
#define HF_LAYERS "text_model.encoder.layers."

/* "<digits>.<rest>" -> index and rest; -1 when malformed */
static int split_index(const char *s, const char **rest) {
    char *end;
    if (*s < '0' || *s > '9') return -1;
    long i = strtol(s, &end, 10);
    if (*end != '.' || i > 100000) return -1;
    *rest = end + 1;
    return (int)i;
}

openclip_kind openclip_to_hf(const char *oc, char *out, size_t n, int *layer) {
    *layer = -1;
    for (size_t i = 0; i < sizeof k_top / sizeof k_top[0]; i++)
        if (!strcmp(oc, k_top[i][0])) {
            if (snprintf(out, n, "%s", k_top[i][1]) >= (int)n) return OPENCLIP_UNMAPPED;
            return i == 4 ? OPENCLIP_TRANSPOSE : OPENCLIP_RENAME;
        }
    if (strncmp(oc, RESBLOCKS, strlen(RESBLOCKS))) return OPENCLIP_UNMAPPED;
    const char *rest;
    int L = split_index(oc + strlen(RESBLOCKS), &rest);
    if (L < 0) return OPENCLIP_UNMAPPED;
    *layer = L;
    if (!strcmp(rest, "attn.in_proj_weight") || !strcmp(rest, "attn.in_proj_bias")) {
        int ok = snprintf(out, n, HF_LAYERS "%d.self_attn.q_proj.%s", L, rest[13] == 'w' ? "weight" : "bias") < (int)n;
        return ok ? OPENCLIP_QKV : OPENCLIP_UNMAPPED;
    }
    for (size_t i = 0; i < sizeof k_layer / sizeof k_layer[0]; i++) {
        size_t k = strlen(k_layer[i][0]);
        if (!strncmp(rest, k_layer[i][0], k) && rest[k])
            return snprintf(out, n, HF_LAYERS "%d.%s%s", L, k_layer[i][1], rest + k) < (int)n ? OPENCLIP_RENAME
                                                                                            : OPENCLIP_UNMAPPED;
    }
    return OPENCLIP_UNMAPPED;
}

int openclip_name(const char *hf, char *out, size_t n) {
    for (size_t i = 0; i < sizeof k_top / sizeof k_top[0]; i++)
        if (!strcmp(hf, k_top[i][1])) return snprintf(out, n, "%s", k_top[i][0]) < (int)n;
    if (strncmp(hf, HF_LAYERS, strlen(HF_LAYERS))) return 0;
    const char *rest;
    int L = split_index(hf + strlen(HF_LAYERS), &rest);
    if (L < 0) return 0;
    static const char *qkv[] = {"self_attn.q_proj.", "self_attn.k_proj.", "self_attn.v_proj."};
    for (int i = 0; i < 3; i++) {
        size_t k = strlen(qkv[i]);
        if (!strncmp(rest, qkv[i], k) && (!strcmp(rest + k, "weight") || !strcmp(rest + k, "bias")))
            return snprintf(out, n, RESBLOCKS "%d.attn.in_proj_%s", L, rest + k) < (int)n;
    }
    for (size_t i = 0; i < sizeof k_layer / sizeof k_layer[0]; i++) {
        size_t k = strlen(k_layer[i][1]);
        if (!strncmp(rest, k_layer[i][1], k) && rest[k])
            return snprintf(out, n, RESBLOCKS "%d.%s%s", L, k_layer[i][0], rest + k) < (int)n;
    }
    return 0;
}
