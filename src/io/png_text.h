/* png_text.h - the text chunks of a PNG file image, read without decoding
 * its pixels (what `sdc serve`'s png-info and a PNG's infotext need). */
#ifndef SDC_IO_PNG_TEXT_H
#define SDC_IO_PNG_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* The inflated text of one chunk is at most this many bytes (SDC_PNG_TEXT_MAX
 * in sdc.h); a compressed chunk that inflates to more is an error, so a
 * small zTXt/iTXt cannot expand into gigabytes. */
#define PNG_TEXT_MAX SDC_PNG_TEXT_MAX

/* Walk the chunks of the PNG in png[0..len): check the signature, the IHDR
 * (first, CRC-checked) and every chunk's length against the buffer. *w, *h
 * (may be NULL) get the IHDR size. *text (may be NULL: not read) gets the
 * first tEXt/zTXt/iTXt chunk whose keyword is `keyword`, as NUL-terminated
 * UTF-8 (caller frees; NULL when there is none): tEXt and zTXt are Latin-1
 * by the PNG spec and are converted, as PIL reads them; invalid UTF-8 in an
 * iTXt becomes U+FFFD. The pixels (IDAT) are never inflated. */
sdc_status png_text_read(const void *png, size_t len, const char *keyword, char **text, uint32_t *w, uint32_t *h);

#endif
