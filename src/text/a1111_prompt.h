/* a1111_prompt.h - AUTOMATIC1111's prompt syntax, up to the token ids and
 * per-token weights its text encoder reads (README-a1111-prompts.md of the
 * fixtures states the rules):
 *
 *   a1111_parse_prompt  prompt_parser.parse_prompt_attention: "(red:1.2)",
 *                       "((x))", "[x]", escapes, BREAK -> fragments + weights
 *   a1111_chunk         sd_hijack_clip.tokenize_line: each fragment tokenized
 *                       on its own, 75-token chunks (BREAK closes one, the
 *                       comma back-track moves a tail to the next), each
 *                       chunk wrapped as bos + 75 + eos = 77 ids
 *
 * What the chunks become (CLIP, the emphasis, the conditioning) is
 * family/a1111_cond.c's job. Prompt editing ([a:b:when], [a|b]), AND and
 * textual inversion are not handled: their text is parsed as above. */
#ifndef SDC_TEXT_A1111_PROMPT_H
#define SDC_TEXT_A1111_PROMPT_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "text/clip_tokenizer.h"

#define A1111_CHUNK_TOKENS 75    /* prompt tokens per chunk */
#define A1111_CHUNK_IDS 77       /* bos + 75 + eos */
#define A1111_COMMA_BACKTRACK 20 /* A1111's comma_padding_backtrack default */

typedef struct {
    char *text; /* the fragment's bytes, NUL-terminated (len excludes it) */
    size_t len;
    double weight; /* products of 1.1, 1/1.1 and (x:w) weights, in A1111's order */
} a1111_fragment;

typedef struct {
    a1111_fragment *f;
    int n; /* >= 1 */
} a1111_parse;

/* text[0..len) (UTF-8; invalid bytes pass through as text) -> fragments,
 * neighbours of equal weight merged. SDC_ERR_ARG where A1111 fails too (a
 * "(x:w)" weight that Python's float() refuses, e.g. "1.2.3" or ".") and for
 * bracket nesting so deep that the weights would take more than ~3e7
 * multiplications (A1111 would take minutes; no real prompt comes near). */
sdc_status a1111_parse_prompt(const char *text, size_t len, a1111_parse *out);
/* The whole text as one fragment of weight 1 (A1111's emphasis "None"). */
sdc_status a1111_parse_literal(const char *text, size_t len, a1111_parse *out);
void a1111_parse_free(a1111_parse *p);
/* A1111's BREAK marker: text "BREAK" with weight exactly -1 (a BREAK inside
 * brackets is multiplied with them and is plain text again). */
int a1111_fragment_is_break(const a1111_fragment *f);

/* Python's \w for one code point (letters, numbers, '_'), as re sees it. */
int a1111_py_word(int32_t c);

/* An extra-network tag <(\w+):([^>]+)> starting at s[i] (s[i] == '<'): the
 * index of its '>' with *colon set to the ':' after the name, or 0 when
 * there is none at i (re.sub then goes on at the next byte). The one place
 * both sdc_prompt_networks_parse and sdc_prompt_loras find tags. */
size_t a1111_network_tag_at(const char *s, size_t n, size_t i, size_t *colon);

typedef struct {
    int n;              /* chunks (>= 1) */
    int64_t *ids;       /* [n, 77]: bos, 75 tokens padded with eos, eos */
    float *multipliers; /* [n, 77]: each token's fragment weight as float32; 1 at bos, eos and padding */
    int token_count;    /* A1111's count: 75 per chunk before the last, the last chunk's tokens */
} a1111_chunks;

/* The chunks of a parsed prompt for tokenizer t; backtrack: the comma
 * back-track (A1111_COMMA_BACKTRACK; 0 turns it off). More than max_chunks
 * chunks is SDC_ERR_ARG. */
sdc_status a1111_chunk(const clip_tokenizer *t, const a1111_parse *p, int backtrack, int max_chunks, a1111_chunks *out);
void a1111_chunks_free(a1111_chunks *c);

/* What an encoder whose padding token is not its eos (OpenCLIP: SD 2.x,
 * SDXL's second) reads, as A1111's process_tokens makes it: every id after
 * the first eos of each 77-id chunk becomes the pad id. */
void a1111_pad_after_eos(int64_t *ids, int nchunks, int64_t eos, int64_t pad);

#endif
