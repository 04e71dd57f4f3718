/* paths.h - what a path is: a regular file, a folder. */
#ifndef SDC_IO_PATHS_H
#define SDC_IO_PATHS_H

int path_exists(const char *path); /* a regular file */
int dir_exists(const char *path);

#endif
