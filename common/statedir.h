/* statedir.h - a folder that holds a daemon's secrets and its control
 * socket must be its user's alone.
 *
 * A state folder (or a control socket's folder) that another local user
 * owns or may write to lets that user replace the node key, the database
 * or the control socket (and with it what the CLI reports). So a daemon
 * refuses such a folder with a clear error instead of using it: it must be
 * a real directory (not a symbolic link), owned by the effective user, and
 * not writable by group or others.
 *
 * Blocking file-system calls: for start-up, never on the loop. */
#ifndef SOVA_STATEDIR_H
#define SOVA_STATEDIR_H

#include <stddef.h>

/* Create dir (and its missing parents) with mode 0700, then check it
 * (statedir_check). 0, or SOVA_ERR_IO / SOVA_ERR_UNSAFE_DIR with err
 * filled. */
int statedir_prepare(const char *dir, char *err, size_t errlen);
/* Check that dir exists and is this user's alone: 0, or SOVA_ERR_IO (it
 * cannot be looked at) / SOVA_ERR_UNSAFE_DIR with err naming what is wrong
 * and what to do. */
int statedir_check(const char *dir, char *err, size_t errlen);
/* The same for the folder that holds path (a socket or a file). */
int statedir_check_parent(const char *path, char *err, size_t errlen);

#endif
