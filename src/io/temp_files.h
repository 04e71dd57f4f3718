/* temp_files.h - the temporary names files are written under before they
 * are renamed into place ("<path>.tmp<pid>"), and the cleanup of those a
 * killed run left behind. */
#ifndef SDC_IO_TEMP_FILES_H
#define SDC_IO_TEMP_FILES_H

#include <stddef.h>

/* "<path>.tmp<pid of this process>" into out[n]; 0 when it does not fit. */
int temp_name(const char *path, char *out, size_t n);

/* Remove every "<path>.tmp<pid>" whose process no longer exists: what a run
 * killed (kill -9, power loss) between writing and renaming left beside
 * path. Temporaries of live processes (a concurrent sdc writing the same
 * name) are left alone. Best effort: nothing here fails the write. */
void temp_clean_stale(const char *path);

#endif
