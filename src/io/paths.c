/* paths.c - what a path is, and opening one that must be a regular file. */
#include "io/paths.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int path_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

int dir_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

sdc_status path_open_regular(const char *path, int *fd) {
    *fd = -1;
    /* O_NONBLOCK: opening a FIFO for reading blocks until a writer comes;
     * fstat of the open file (not stat of the name) so nothing can be swapped in between */
    int f = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (f < 0) return sdc_fail(SDC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(f, &sb)) {
        int e = errno;
        close(f);
        return sdc_fail(SDC_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        const char *what = S_ISDIR(sb.st_mode)                          ? "a directory"
                           : S_ISFIFO(sb.st_mode)                       ? "a FIFO"
                           : S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode) ? "a device"
                           : S_ISSOCK(sb.st_mode)                       ? "a socket"
                                                                        : "a special file";
        close(f);
        return sdc_fail(SDC_ERR_IO, "%s: not a regular file (%s)", path, what);
    }
    int fl = fcntl(f, F_GETFL);
    if (fl < 0 || fcntl(f, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(f);
        return sdc_fail(SDC_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    *fd = f;
    return SDC_OK;
}
