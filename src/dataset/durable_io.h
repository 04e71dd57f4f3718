/* durable_io.h - the file operations a crash-safe data set is made of:
 * complete writes, fsync of files and folders, write-to-temporary + fsync +
 * rename, and advisory locks. A file renamed into place by these functions
 * is complete on disk before its name appears. */
#ifndef SDC_DATASET_DURABLE_IO_H
#define SDC_DATASET_DURABLE_IO_H

#include <stddef.h>

#include "core/status.h"

sdc_status dio_mkdirs(const char *path);                 /* mkdir -p */
sdc_status dio_write_all(int fd, const void *data, size_t n, const char *what);
sdc_status dio_fsync(int fd, const char *what);
sdc_status dio_fsync_dir(const char *dir);
/* The folder part of a path ("." when none), into out[n]. */
void dio_dirname(const char *path, char *out, size_t n);
/* path.tmp: write, fsync, rename to path, fsync the folder. */
sdc_status dio_write_atomic(const char *path, const void *data, size_t n);
/* Read a whole file (*data NUL-terminated, caller frees); *missing = 1 and
 * SDC_OK when it does not exist (missing may be NULL: then it is an error). */
sdc_status dio_read(const char *path, char **data, size_t *n, int *missing);
/* Open (creating) path and take an exclusive flock on it. wait = 0: *busy = 1
 * and SDC_OK when another process holds it. *fd stays open (the lock) until
 * dio_unlock. */
sdc_status dio_lock(const char *path, int wait, int *fd, int *busy);
void dio_unlock(int fd);
int dio_exists(const char *path);

#endif
