/* tokenizer_text.h - the text side of the CLIP tokenizer: UTF-8 in, words and
 * regex pieces out, exactly as Hugging Face's slow CLIPTokenizer (no ftfy)
 * prepares text before byte-level BPE.
 *
 * Owns: UTF-8 decoding with Python's errors="replace" rule, BasicTokenizer's
 * cleanup (drop controls/U+FFFD/NUL, spaces for Zs and \t\n\r, spaces around
 * CJK ideographs), NFC, Python str.split()/str.lower() semantics, and the
 * CLIP pre-tokenizer regex. It knows nothing about vocabularies or merges. */
#ifndef SDC_TEXT_TOKENIZER_TEXT_H
#define SDC_TEXT_TOKENIZER_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Decode UTF-8 into code points; every invalid byte sequence (maximal subpart,
 * as CPython's decoder) becomes one U+FFFD. `out` must hold `len` entries.
 * Returns the number of code points. Never fails. */
size_t tok_utf8_decode(const char *s, size_t len, uint32_t *out);

/* 1 when s[0..len) is well-formed UTF-8, else 0 with *bad the offset of the
 * first bad sequence. */
int tok_utf8_valid(const char *s, size_t len, size_t *bad);

/* Encode one code point (<= 0x10FFFF, not a surrogate) into out[0..3]; returns
 * the byte count. */
size_t tok_utf8_encode(uint32_t c, char *out);

/* Python's str.isspace(). */
int tok_py_isspace(uint32_t c);

/* BasicTokenizer(strip_accents=False, do_split_on_punc=False).tokenize(text)
 * followed by " ".join: cleanup, CJK spacing, NFC, whitespace split, per-word
 * str.lower(). On success *out (malloc'd, caller frees) holds the lower-cased
 * words separated by single U+0020, with *nout code points (0 when the text is
 * blank). */
sdc_status tok_clip_normalize(const uint32_t *in, size_t n, uint32_t **out, size_t *nout);

/* The CLIP pre-tokenizer regex, applied with re.IGNORECASE:
 *   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * Finds the next match at or after *pos (re.findall semantics). Returns 1 and
 * sets [*b, *e) and *pos = *e, or returns 0 at the end. */
int tok_clip_next_piece(const uint32_t *s, size_t n, size_t *pos, size_t *b, size_t *e);

#endif
