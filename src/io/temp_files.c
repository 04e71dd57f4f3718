/* temp_files.c - "<path>.tmp<pid>" names and the removal of stale ones. */
#include "io/temp_files.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int temp_name(const char *path, char *out, size_t n) {
    int k = snprintf(out, n, "%s.tmp%d", path, (int)getpid());
    return k > 0 && (size_t)k < n;
}

void temp_clean_stale(const char *path) {
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    size_t dl = slash ? (size_t)(slash - path) : 0;
    if (dl >= sizeof dir) return;
    if (slash) {
        memcpy(dir, path, dl ? dl : 1); /* "/x.png": the root */
        dir[dl ? dl : 1] = 0;
    } else {
        snprintf(dir, sizeof dir, ".");
    }
    size_t bl = strlen(base);
    if (!bl) return;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        if (strncmp(nm, base, bl) || strncmp(nm + bl, ".tmp", 4)) continue;
        const char *digits = nm + bl + 4;
        char *end;
        errno = 0;
        long pid = strtol(digits, &end, 10);
        if (!*digits || *digits == '-' || *digits == '+' || *end || errno || pid <= 0 || pid > INT_MAX) continue;
        /* ESRCH: no such process (EPERM means one exists, owned by someone else) */
        if (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char full[PATH_MAX];
        if (snprintf(full, sizeof full, "%s/%s", dir, nm) < (int)sizeof full) unlink(full);
    }
    closedir(d);
}
