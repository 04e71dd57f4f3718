/* fuzz_util.h - what the libFuzzer harnesses in tests/fuzz share: input
 * bytes as a file the library can open by path (memfd, optionally followed
 * by a sparse hole of zeros for tensor data), a UTF-8 check that aborts (a
 * finding) when a reply or text is not valid UTF-8, and the repository
 * root the harness reads fixtures from (SDC_FUZZ_ROOT, default "."). */
#ifndef SDC_FUZZ_UTIL_H
#define SDC_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A file holding data[0..n) then `hole` zero bytes (sparse); *path gets
 * "/proc/self/fd/N". Returns the fd (close it), -1 on failure. */
int fuzz_file(const uint8_t *data, size_t n, size_t hole, char *path, size_t path_n);

/* A safetensors file from a header's JSON text: 8-byte length, the header,
 * then 64 MiB of zeros (sparse) for whatever offsets it names. */
int fuzz_safetensors_from_header(const uint8_t *json, size_t n, char *path, size_t path_n);

/* abort() unless s[0..n) is valid UTF-8 (what names the text in the report) */
void fuzz_require_utf8(const char *s, size_t n, const char *what);

/* root-relative path of a fixture, e.g. "tests/fixtures/vocab-tiny" */
const char *fuzz_root_path(const char *rel);

#endif
