/* statedir.c - a daemon's folders must be its user's alone (statedir.h). */
#include "statedir.h"
#include "err.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int statedir_check(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(dir, &st) != 0) {
        snprintf(err, errlen, "cannot use folder %s: %s", dir, strerror(errno));
        return SOVA_ERR_IO;
    }
    if (S_ISLNK(st.st_mode)) {
        snprintf(err, errlen,
                 "folder %s is a symbolic link: give the real path of a folder of "
                 "your own",
                 dir);
        return SOVA_ERR_UNSAFE_DIR;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is not a folder", dir);
        return SOVA_ERR_UNSAFE_DIR;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, errlen,
                 "folder %s belongs to user %u, not to this user (%u): another user could replace "
                 "its keys or control socket; use a folder of your own",
                 dir, (unsigned)st.st_uid, (unsigned)geteuid());
        return SOVA_ERR_UNSAFE_DIR;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        snprintf(err, errlen,
                 "folder %s is writable by %s (mode %04o): another user could replace its keys or "
                 "control socket; chmod go-w it, or use a new folder",
                 dir, (st.st_mode & S_IWOTH) ? "everyone" : "its group",
                 (unsigned)(st.st_mode & 07777));
        return SOVA_ERR_UNSAFE_DIR;
    }
    return 0;
}

int statedir_prepare(const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof(path)) {
        snprintf(err, errlen, "bad folder name \"%s\"", dir);
        return SOVA_ERR_INVALID;
    }
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create folder %s: %s", path, strerror(errno));
            return SOVA_ERR_IO;
        }
        path[i] = saved;
    }
    return statedir_check(dir, err, errlen);
}

int statedir_check_parent(const char *path, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return statedir_check(".", err, errlen);
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= sizeof(dir)) {
        snprintf(err, errlen, "path too long: %s", path);
        return SOVA_ERR_INVALID;
    }
    memcpy(dir, path, n);
    dir[n] = '\0';
    return statedir_check(dir, err, errlen);
}
