/* paths.h - what a path is: a regular file, a folder; and opening a file
 * that must be a regular one. */
#ifndef SDC_IO_PATHS_H
#define SDC_IO_PATHS_H

#include "core/status.h"

int path_exists(const char *path); /* a regular file */
int dir_exists(const char *path);

/* open(path, O_RDONLY) for reading a whole file, refusing anything but a
 * regular file with SDC_ERR_IO naming the path. The open itself does not
 * block: a FIFO given as a config, LoRA or prompts file would otherwise wait
 * forever for a writer. *fd is blocking again on success; the caller closes it. */
sdc_status path_open_regular(const char *path, int *fd);

#endif
