/* clip_tokenizer.h - the CLIP BPE tokenizer, token for token identical to
 * Hugging Face transformers' slow CLIPTokenizer (4.44, without ftfy):
 *
 *   clip_tokenizer *t;  clip_tokenizer_load(&t, "model/tokenizer");
 *   int64_t ids[77];    clip_encode(t, "a photo of a cat", 16, 77, ids, NULL, NULL);
 *   clip_tokenizer_free(t);
 *
 * Text path: split on added tokens (<|startoftext|>, <|endoftext|>, the pad
 * token and any other added token, matched literally) -> cleanup, CJK spacing,
 * NFC, whitespace split, str.lower() -> the CLIP regex -> bytes_to_unicode ->
 * BPE with merges.txt ranks -> vocab ids (unknown -> unk id).
 * A loaded tokenizer is read-only: any number of threads may use it at once. */
#ifndef SDC_TEXT_CLIP_TOKENIZER_H
#define SDC_TEXT_CLIP_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef struct clip_tokenizer clip_tokenizer;

/* dir holds vocab.json, merges.txt and optionally tokenizer_config.json and
 * special_tokens_map.json. Special tokens (bos/eos/unk/pad, a string or
 * {"content": ...}) follow transformers' loading rule: tokenizer_config.json,
 * overridden by special_tokens_map.json unless tokenizer_config.json has
 * "added_tokens_decoder"; defaults <|startoftext|>, <|endoftext|> (eos, unk,
 * pad). model_max_length from tokenizer_config.json (default 77; huge values
 * are capped at INT32_MAX). */
sdc_status clip_tokenizer_load(clip_tokenizer **out, const char *dir);
/* Same with the pad token given (transformers' from_pretrained(dir,
 * pad_token=...)): OpenCLIP-based encoders (SD 2.x, SDXL's second) pad with
 * "!" while a plain CLIP ViT-L folder says "<|endoftext|>". NULL: the files'. */
sdc_status clip_tokenizer_load_pad(clip_tokenizer **out, const char *dir, const char *pad_token);
void clip_tokenizer_free(clip_tokenizer *t);

int clip_tokenizer_bos(const clip_tokenizer *t);
int clip_tokenizer_eos(const clip_tokenizer *t);
int clip_tokenizer_pad(const clip_tokenizer *t);
int clip_tokenizer_unk(const clip_tokenizer *t);
int clip_tokenizer_max_length(const clip_tokenizer *t);
/* len(tokenizer): distinct strings in vocab.json plus added tokens. */
int clip_tokenizer_vocab_size(const clip_tokenizer *t);

/* tokenizer.tokenize(text): the BPE token strings (e.g. "cat</w>") and their
 * ids, without bos/eos. text is `len` bytes of UTF-8 (may hold NUL bytes;
 * invalid sequences decode to U+FFFD as with errors="replace", which the
 * cleanup then drops). *tokens and *ids are NULL when *n is 0. Free with
 * clip_tokens_free. */
sdc_status clip_tokenize(const clip_tokenizer *t, const char *text, size_t len, char ***tokens, int32_t **ids, int *n);
void clip_tokens_free(char **tokens, int32_t *ids, int n);

/* tokenizer(text, padding="max_length", max_length=max_len, truncation=True)
 * .input_ids into input_ids[max_len] (bos + at most max_len-2 tokens + eos,
 * then pad). When untrunc is not NULL it gets the untruncated bos + all + eos
 * (malloc'd, caller frees) and *n_untrunc its length. max_len must be >= 2. */
sdc_status clip_encode(const clip_tokenizer *t, const char *text, size_t len, int max_len, int64_t *input_ids,
                       int64_t **untrunc, int *n_untrunc);

#endif
