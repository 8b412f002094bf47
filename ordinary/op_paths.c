/* op_paths.c - the XDG places of a desktop peer, and `sova-peer init`
 * (op_paths.h). */
#include "op_paths.h"

#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* $VAR when it is an absolute path, else $HOME/fallback. */
static int xdg_dir(const char *var, const char *fallback, char *buf, size_t cap, char *err,
                   size_t errlen)
{
    const char *xdg = getenv(var);
    const char *home = getenv("HOME");
    int n;
    if (xdg != NULL && xdg[0] == '/')
        n = snprintf(buf, cap, "%s", xdg);
    else if (home != NULL && home[0] == '/')
        n = snprintf(buf, cap, "%s/%s", home, fallback);
    else {
        snprintf(err, errlen, "neither %s nor HOME is set", var);
        return SOVA_ERR_CONFIG;
    }
    if (n < 0 || (size_t)n >= cap) {
        snprintf(err, errlen, "$%s or $HOME is too long a path", var);
        return SOVA_ERR_CONFIG;
    }
    return 0;
}

static int join_path(char *buf, size_t cap, const char *dir, const char *name, char *err,
                     size_t errlen)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) {
        snprintf(err, errlen, "%.200s/%s: path too long", dir, name);
        return SOVA_ERR_CONFIG;
    }
    return 0;
}

int op_paths_user_config(char *buf, size_t cap, char *err, size_t errlen)
{
    char dir[4096];
    int rc = xdg_dir("XDG_CONFIG_HOME", ".config", dir, sizeof(dir), err, errlen);
    return rc ? rc : join_path(buf, cap, dir, "sova/peer.conf", err, errlen);
}

bool op_paths_find_config(char *buf, size_t cap)
{
    char err[256], dir[4096];
    if (op_paths_user_config(buf, cap, err, sizeof(err)) == 0 && access(buf, F_OK) == 0)
        return true;
    /* The name of earlier releases (one file, a [peer] section), kept so an
     * upgrade does not lose a user's settings. */
    if (xdg_dir("XDG_CONFIG_HOME", ".config", dir, sizeof(dir), err, sizeof(err)) == 0 &&
        join_path(buf, cap, dir, "sova/sova.conf", err, sizeof(err)) == 0 && access(buf, F_OK) == 0)
        return true;
    static const char *const system[] = {OP_PATHS_SYSTEM_CONFIG, OP_PATHS_SYSTEM_CONFIG_SHARED};
    for (size_t i = 0; i < sizeof(system) / sizeof(system[0]); i++) {
        if (access(system[i], F_OK) == 0) {
            snprintf(buf, cap, "%s", system[i]);
            return true;
        }
    }
    return false;
}

int op_paths_state_dir(char *buf, size_t cap, char *err, size_t errlen)
{
    char dir[4096];
    int rc = xdg_dir("XDG_STATE_HOME", ".local/state", dir, sizeof(dir), err, errlen);
    return rc ? rc : join_path(buf, cap, dir, "sova", err, errlen);
}

/* XDG_DOWNLOAD_DIR="$HOME/..." or "/..." from user-dirs.dirs (the format
 * xdg-user-dirs-update writes and xdg-user-dir reads); false if none. */
static bool user_dirs_download(const char *home, char *buf, size_t cap)
{
    char path[4096], err[256], line[1024];
    if (xdg_dir("XDG_CONFIG_HOME", ".config", path, sizeof(path), err, sizeof(err)) != 0 ||
        strlen(path) + sizeof("/user-dirs.dirs") > sizeof(path))
        return false;
    strcat(path, "/user-dirs.dirs");
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    bool found = false;
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        static const char key[] = "XDG_DOWNLOAD_DIR=\"";
        if (strncmp(line, key, sizeof(key) - 1) != 0)
            continue;
        char *v = line + sizeof(key) - 1;
        char *end = strchr(v, '"');
        if (end == NULL)
            continue;
        *end = '\0';
        int n = -1;
        if (strncmp(v, "$HOME/", 6) == 0)
            n = snprintf(buf, cap, "%s/%s", home, v + 6);
        else if (v[0] == '/')
            n = snprintf(buf, cap, "%s", v);
        /* "$HOME/" alone means the user has no download folder: ours */
        found = n > 0 && (size_t)n < cap && strcmp(v, "$HOME/") != 0;
    }
    fclose(f);
    return found;
}

int op_paths_downloads(char *buf, size_t cap, char *err, size_t errlen)
{
    const char *home = getenv("HOME");
    if (home == NULL || home[0] != '/') {
        snprintf(err, errlen, "HOME is not set");
        return SOVA_ERR_CONFIG;
    }
    if (user_dirs_download(home, buf, cap))
        return 0;
    return join_path(buf, cap, home, "Downloads", err, errlen);
}

/* "# " + text, cut at blanks into lines of at most 78 bytes. */
static void write_comment(FILE *f, const char *text)
{
    const size_t width = 76;
    while (*text) {
        size_t n = strlen(text);
        if (n > width) {
            n = width;
            while (n > 0 && text[n] != ' ')
                n--;
            if (n == 0)
                n = width;
        }
        fprintf(f, "# %.*s\n", (int)n, text);
        text += n;
        while (*text == ' ')
            text++;
    }
}

static const char *given_value(const char *name, int setc, char *const *setv)
{
    size_t n = strlen(name);
    for (int i = 0; i < setc; i++)
        if (strncmp(setv[i], "--", 2) == 0 && strncmp(setv[i] + 2, name, n) == 0 &&
            setv[i][2 + n] == '=')
            return setv[i] + 3 + n;
    return NULL;
}

static void write_config(FILE *f, const char *path, const struct config_schema *schema, int setc,
                         char *const *setv)
{
    fprintf(f,
            "# %s - the Sova peer's configuration (sova.conf(5)),\n"
            "# written by `sova-peer init`. `sova-peer run` and the other commands read it\n"
            "# when no --config is given; an option on the command line wins.\n"
            "# Remove the '#' in front of an option to set it. bootstrap and federation-ca\n"
            "# usually come from `sova-peer join BUNDLE`, which keeps them in the state\n"
            "# directory; set here, they win over the joined ones.\n"
            "\n[%s]\n",
            path, schema->section);
    for (size_t i = 0; i < schema->count; i++) {
        const struct config_option *o = &schema->options[i];
        const char *v = given_value(o->name, setc, setv);
        fputc('\n', f);
        write_comment(f, o->help);
        /* what a home user wants on from the first run: the web UI */
        if (v == NULL && strcmp(o->name, "api-listen") == 0)
            v = OP_PATHS_INIT_API_LISTEN;
        if (v != NULL)
            fprintf(f, "%s = %s\n", o->name, v);
        else
            fprintf(f, "# %s =%s%s\n", o->name, o->default_value ? " " : "",
                    o->default_value ? o->default_value : "");
    }
}

/* The folder of path, created (0700, with its parents) if missing. */
static int make_parent(const char *path, char *err, size_t errlen)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
            return SOVA_ERR_IO;
        }
        *p = '/';
    }
    return 0;
}

int op_paths_write_config(const char *path, const struct config_schema *schema, int setc,
                          char *const *setv, bool force, char *err, size_t errlen)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp)) {
        snprintf(err, errlen, "%s: path too long", path);
        return SOVA_ERR_IO;
    }
    if (!force && access(path, F_OK) == 0) {
        snprintf(err, errlen, "%s exists; not overwriting it (--force replaces it)", path);
        return SOVA_ERR_IO;
    }
    int rc = make_parent(path, err, errlen);
    if (rc != 0)
        return rc;
    /* Written whole under a temporary name, then renamed: never half a file. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        return SOVA_ERR_IO;
    }
    write_config(f, path, schema, setc, setv);
    bool bad = ferror(f) != 0;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (!bad && !force && link(tmp, path) != 0) { /* link: fails if path appeared meanwhile */
        snprintf(err, errlen, "%s: %s", path,
                 errno == EEXIST ? "exists; not overwriting it (--force replaces it)"
                                 : strerror(errno));
        unlink(tmp);
        return SOVA_ERR_IO;
    }
    if (bad || (force ? rename(tmp, path) : unlink(tmp)) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return SOVA_ERR_IO;
    }
    return 0;
}
