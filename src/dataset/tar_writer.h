/* tar_writer.h - the POSIX ustar subset a webdataset shard needs: regular
 * files with fixed, reproducible headers (mode 0644, uid/gid 0, mtime 0), the
 * end-of-archive marker, and a scan that finds the complete members of a
 * partly written archive so it can be resumed. */
#ifndef SDC_DATASET_TAR_WRITER_H
#define SDC_DATASET_TAR_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define TAR_BLOCK 512
#define TAR_RECORD 10240 /* archives are padded to whole records, as tar(1) writes them */

/* Bytes a member of n data bytes takes: header + data rounded up to a block. */
size_t tar_member_size(size_t n);
/* Encode one member into dst[tar_member_size(n)]. name: at most 100 bytes. */
sdc_status tar_member_encode(uint8_t *dst, const char *name, const void *data, size_t n);
/* Bytes that close an archive of `size` bytes: two zero blocks, then zeros to a record boundary. */
size_t tar_trailer_size(uint64_t size);

typedef struct {
    char name[101];
    uint64_t offset, end; /* header offset; end of the padded data */
    uint64_t size;        /* data bytes */
} tar_member;

/* The complete members at the start of the archive open as fd (stopping at
 * the first missing, torn or invalid header, or at the end marker).
 * *members is malloc'd (may be NULL when *n is 0). */
sdc_status tar_scan(int fd, tar_member **members, int *n, const char *what);

#endif
