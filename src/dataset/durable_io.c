/* durable_io.c - POSIX file plumbing for the data set writer. */
#include "dataset/durable_io.h"

#include "io/paths.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int dio_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

sdc_status dio_mkdirs(const char *path) {
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) return sdc_fail(SDC_ERR_ARG, "%s: path too long", path);
    for (char *s = p + 1;; s++) {
        char c = *s;
        if (c != '/' && c) continue;
        *s = 0;
        if (mkdir(p, 0777) && errno != EEXIST) return sdc_fail(SDC_ERR_IO, "%s: cannot create folder: %s", p, strerror(errno));
        struct stat sb;
        if (stat(p, &sb) || !S_ISDIR(sb.st_mode)) return sdc_fail(SDC_ERR_IO, "%s: exists and is not a folder", p);
        *s = c;
        if (!c) break;
    }
    return SDC_OK;
}

sdc_status dio_write_all(int fd, const void *data, size_t n, const char *what) {
    const char *p = data;
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return sdc_fail(SDC_ERR_IO, "%s: write failed: %s", what, k < 0 ? strerror(errno) : "no progress");
        p += k;
        n -= (size_t)k;
    }
    return SDC_OK;
}

sdc_status dio_fsync(int fd, const char *what) {
    if (fsync(fd) && errno != EINVAL) return sdc_fail(SDC_ERR_IO, "%s: fsync failed: %s", what, strerror(errno));
    return SDC_OK;
}

void dio_dirname(const char *path, char *out, size_t n) {
    const char *s = strrchr(path, '/');
    if (!s) snprintf(out, n, ".");
    else if (s == path) snprintf(out, n, "/");
    else snprintf(out, n, "%.*s", (int)(s - path), path);
}

sdc_status dio_fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return sdc_fail(SDC_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    sdc_status st = dio_fsync(fd, dir);
    close(fd);
    return st;
}

sdc_status dio_write_atomic(const char *path, const void *data, size_t n) {
    char tmp[PATH_MAX], dir[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) return sdc_fail(SDC_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
    sdc_status st = dio_write_all(fd, data, n, tmp);
    if (!st) st = dio_fsync(fd, tmp);
    if (close(fd) && !st) st = sdc_fail(SDC_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
    if (!st && rename(tmp, path)) st = sdc_fail(SDC_ERR_IO, "%s: cannot rename into place: %s", path, strerror(errno));
    if (st) {
        unlink(tmp);
        return st;
    }
    dio_dirname(path, dir, sizeof dir);
    return dio_fsync_dir(dir);
}

sdc_status dio_read(const char *path, char **data, size_t *n, int *missing) {
    *data = NULL;
    *n = 0;
    if (missing) *missing = 0;
    struct stat sb;
    if (missing && stat(path, &sb) && errno == ENOENT) {
        *missing = 1;
        return SDC_OK;
    }
    int fd;
    SDC_TRY(path_open_regular(path, &fd));
    if (fstat(fd, &sb)) {
        sdc_status st = sdc_fail(SDC_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
        close(fd);
        return st;
    }
    size_t size = (size_t)sb.st_size, got = 0;
    char *b = malloc(size + 1);
    if (!b) {
        close(fd);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory reading %s", path);
    }
    while (got < size) {
        ssize_t k = read(fd, b + got, size - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd);
    b[got] = 0;
    *data = b;
    *n = got;
    return SDC_OK;
}

sdc_status dio_lock(const char *path, int wait, int *fd, int *busy) {
    *fd = -1;
    if (busy) *busy = 0;
    int f = open(path, O_RDWR | O_CREAT, 0666);
    if (f < 0) return sdc_fail(SDC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    while (flock(f, LOCK_EX | (wait ? 0 : LOCK_NB))) {
        if (errno == EINTR) continue;
        int e = errno;
        close(f);
        if (e == EWOULDBLOCK && busy) {
            *busy = 1;
            return SDC_OK;
        }
        return sdc_fail(SDC_ERR_IO, "%s: cannot lock: %s", path, strerror(e));
    }
    *fd = f;
    return SDC_OK;
}

void dio_unlock(int fd) {
    if (fd >= 0) close(fd); /* closing the descriptor releases the flock */
}
