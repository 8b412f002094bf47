/* op_folders.c - the share folders, live (op_folders.h). */
#include "op_folders.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define MOD "share"

struct folder {
    char *path;
    bool added;       /* by `share add` (in the store), not the configuration */
    bool was_missing; /* as the last scan found it: logged on change */
    bool seen;        /* a scan has looked at it */
};

struct op_folders {
    struct op_folders_config cfg;
    char *db_path;
    char state_dir[PATH_MAX]; /* canonical */
    char **excludes;
    struct folder list[OP_FOLDERS_MAX];
    size_t n;
    struct op_share *share;
    int watch_fd;         /* inotify, or -1 */
    struct event *watch;  /* watch_fd readable */
    struct event *settle; /* an inotify event: rescan when it fires */
    uint64_t events;      /* inotify events that asked for a rescan */
};

/* ---- inotify --------------------------------------------------------------------- */

/* Is this event about one of our folders (or their contents)? Events on a
 * folder's parent count only for the folder's own name; hidden names do not
 * count, but for .sovaignore. */
static bool event_matters(const struct op_folders *f, const struct inotify_event *ev)
{
    if (ev->mask & IN_Q_OVERFLOW)
        return true;
    const char *name = ev->len > 0 ? ev->name : "";
    const struct op_share_result *res = f->share ? op_share_current(f->share) : NULL;
    bool of_parent = false;
    for (size_t i = 0; res != NULL && i < res->n_folders; i++) {
        if (res->folders[i].parent_wd != ev->wd)
            continue;
        of_parent = true;
        const char *slash = strrchr(res->folders[i].path, '/');
        if (slash != NULL && strcmp(slash + 1, name) == 0)
            return true;
    }
    if (of_parent) /* another name next to a folder */
        return false;
    if (name[0] == '.')
        return strcmp(name, OP_SHARE_IGNORE_FILE) == 0;
    /* A file just created is still being written: its IN_CLOSE_WRITE
     * counts (a hard link, which has none, waits for the periodic rescan). */
    if ((ev->mask & IN_CREATE) && !(ev->mask & IN_ISDIR))
        return false;
    return !(ev->mask & IN_IGNORED);
}

static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    struct op_folders *f = arg;
    (void)what;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool rescan = false;
    /* A bounded turn: a folder written without pause must not hold the
     * loop (what is left is read at the next turn: the event persists). */
    for (int reads = 0; reads < OP_FOLDERS_READS_PER_TURN; reads++) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            break; /* EAGAIN: drained */
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            if (ev->mask & IN_Q_OVERFLOW)
                log_info(MOD, "inotify queue overflowed: rescanning every folder");
            if (event_matters(f, ev))
                rescan = true;
            p += sizeof(*ev) + ev->len;
        }
    }
    if (rescan && f->share != NULL && !evtimer_pending(f->settle, NULL)) {
        f->events++;
        struct timeval tv = {0, OP_FOLDERS_SETTLE_MS * 1000};
        evtimer_add(f->settle, &tv);
    }
}

static void on_settle(evutil_socket_t fd, short what, void *arg)
{
    struct op_folders *f = arg;
    (void)fd, (void)what;
    if (f->share != NULL)
        op_share_rescan(f->share); /* coalesced with a scan running */
}

static void watch_close(struct op_folders *f)
{
    if (f->watch != NULL)
        event_free(f->watch);
    f->watch = NULL;
    if (f->watch_fd >= 0)
        close(f->watch_fd);
    f->watch_fd = -1;
}

/* A fresh inotify descriptor (dropping every watch of the old one). */
static void watch_open(struct op_folders *f)
{
    watch_close(f);
    f->watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (f->watch_fd < 0) {
        log_warn(MOD,
                 "cannot watch the share folders (%s): changes are seen by the periodic"
                 " rescan only",
                 strerror(errno));
        return;
    }
    f->watch = event_new(f->cfg.base, f->watch_fd, EV_READ | EV_PERSIST, on_watch, f);
    if (f->watch == NULL || event_add(f->watch, NULL) != 0) {
        log_warn(MOD, "cannot watch the share folders: out of memory");
        watch_close(f);
    }
}

/* ---- the worker ------------------------------------------------------------------ */

static struct folder *find(struct op_folders *f, const char *path)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->list[i].path, path) == 0)
            return &f->list[i];
    return NULL;
}

/* Log each folder that went missing or came back. */
static void on_done(const struct op_share_result *res, void *arg)
{
    struct op_folders *f = arg;
    for (size_t i = 0; res->status == 0 && i < res->n_folders; i++) {
        const struct op_share_folder *fo = &res->folders[i];
        struct folder *mine = find(f, fo->path);
        if (mine == NULL)
            continue;
        if (fo->missing && (!mine->was_missing || !mine->seen))
            log_warn(MOD,
                     "share folder %s is missing (%s): its files are not shared until it is"
                     " back",
                     fo->path, fo->error);
        else if (!fo->missing && mine->was_missing)
            log_info(MOD, "share folder %s is back: %zu files", fo->path, fo->n_files);
        mine->was_missing = fo->missing;
        mine->seen = true;
    }
    f->cfg.done(res, f->cfg.arg);
}

/* Start a worker over the current list (none for an empty list), replacing
 * the old one. */
static int restart_worker(struct op_folders *f, char *err, size_t errlen)
{
    struct op_share *old = f->share;
    op_share_free(old); /* joins its thread: then its watches may go */
    f->share = NULL;
    if (f->settle != NULL)
        evtimer_del(f->settle);
    watch_open(f);
    int rc = 0;
    {
        /* With no folder left, a worker still runs: its scan finds the
         * store's files removed, so they are unpublished. */
        const char *paths[OP_FOLDERS_MAX];
        for (size_t i = 0; i < f->n; i++) {
            paths[i] = f->list[i].path;
            f->list[i].seen = false;
        }
        struct op_share_config sc = {
            .folders = paths,
            .n_folders = f->n,
            .missing_ok = true,
            .watch = f->watch_fd >= 0,
            .watch_fd = f->watch_fd,
            .exclude_dirs = (const char *const *)f->excludes,
            .n_exclude_dirs = f->cfg.n_exclude_dirs,
        };
        rc = op_share_new(f->cfg.base, &sc, f->db_path, on_done, f, &f->share, err, errlen);
        if (rc == 0)
            op_share_rescan(f->share);
    }
    f->cfg.replaced(f->share, f->cfg.arg);
    return rc;
}

/* ---- the list -------------------------------------------------------------------- */

static int list_add(struct op_folders *f, const char *path, bool added)
{
    if (f->n == OP_FOLDERS_MAX)
        return SOVA_ERR_TOO_LARGE;
    char *copy = strdup(path);
    if (copy == NULL)
        return SOVA_ERR_NOMEM;
    f->list[f->n++] = (struct folder){.path = copy, .added = added};
    return 0;
}

static bool contains(const char *outer, const char *inner);

static int load_added(const char *path, void *arg)
{
    struct op_folders *f = arg;
    if (find(f, path) != NULL)
        return 0; /* the configuration's folder too */
    for (size_t i = 0; i < f->n; i++) {
        if (contains(f->list[i].path, path) || contains(path, f->list[i].path)) {
            /* The configuration's folder changed since it was added. */
            log_warn(MOD, "share folder %s overlaps %s: not shared (`sova-peer share remove %s`)",
                     path, f->list[i].path, path);
            return 0;
        }
    }
    int rc = list_add(f, path, true);
    if (rc == SOVA_ERR_TOO_LARGE) {
        log_warn(MOD, "more than %d share folders: %s is not shared", OP_FOLDERS_MAX, path);
        return 0;
    }
    return rc;
}

/* path without its trailing '/'s, resolved when it exists (symbolic links,
 * "..") into out. */
static void canonical(const char *path, char *out, size_t cap)
{
    char real[PATH_MAX];
    if (realpath(path, real) != NULL)
        path = real;
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    snprintf(out, cap, "%.*s", (int)n, path);
}

/* Is inner inside outer (or the same folder)? */
static bool contains(const char *outer, const char *inner)
{
    size_t n = strlen(outer);
    if (strcmp(outer, "/") == 0)
        return true;
    return strncmp(outer, inner, n) == 0 && (inner[n] == '\0' || inner[n] == '/');
}

int op_folders_new(const struct op_folders_config *cfg, struct op_folders **out, char *err,
                   size_t errlen)
{
    *out = NULL;
    struct op_folders *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return SOVA_ERR_NOMEM;
    f->cfg = *cfg;
    f->watch_fd = -1;
    f->db_path = strdup(cfg->db_path);
    f->excludes = calloc(cfg->n_exclude_dirs + 1, sizeof(*f->excludes));
    f->settle = evtimer_new(cfg->base, on_settle, f);
    int rc = f->db_path && f->excludes && f->settle ? 0 : SOVA_ERR_NOMEM;
    for (size_t i = 0; rc == 0 && i < cfg->n_exclude_dirs; i++)
        if ((f->excludes[i] = strdup(cfg->exclude_dirs[i])) == NULL)
            rc = SOVA_ERR_NOMEM;
    f->cfg.exclude_dirs = NULL;
    f->cfg.config_folder = NULL;
    f->cfg.state_dir = NULL;
    if (cfg->state_dir != NULL)
        canonical(cfg->state_dir, f->state_dir, sizeof(f->state_dir));
    if (rc == 0 && cfg->config_folder != NULL) {
        char path[PATH_MAX];
        canonical(cfg->config_folder, path, sizeof(path));
        rc = list_add(f, path, false);
    }
    if (rc == 0 && (rc = op_store_folder_foreach(cfg->store, load_added, f)) != 0 && err)
        snprintf(err, errlen, "cannot list share folders: %s", op_store_errmsg(cfg->store));
    if (rc == SOVA_ERR_NOMEM && err)
        snprintf(err, errlen, "out of memory");
    if (rc == 0)
        rc = restart_worker(f, err, errlen);
    if (rc != 0) {
        op_folders_free(f);
        return rc;
    }
    if (f->n == 0)
        log_info(MOD, "no share folder: sharing nothing (`sova-peer share add DIR` adds one)");
    *out = f;
    return 0;
}

void op_folders_free(struct op_folders *f)
{
    if (f == NULL)
        return;
    op_share_free(f->share);
    watch_close(f);
    if (f->settle != NULL)
        event_free(f->settle);
    for (size_t i = 0; i < f->n; i++)
        free(f->list[i].path);
    for (size_t i = 0; f->excludes != NULL && i < f->cfg.n_exclude_dirs; i++)
        free(f->excludes[i]);
    free(f->excludes);
    free(f->db_path);
    free(f);
}

struct op_share *op_folders_share(const struct op_folders *f)
{
    return f->share;
}

void op_folders_rescan(struct op_folders *f)
{
    if (f->share != NULL && !op_share_busy(f->share))
        op_share_rescan(f->share);
}

/* Why path cannot be shared, into err; 0 when it can. */
static int check_new_folder(struct op_folders *f, const char *given, const char *path, char *err,
                            size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            snprintf(err, errlen, "no such folder: %s", given);
            return SOVA_ERR_NOT_FOUND;
        }
        snprintf(err, errlen, "cannot use %s: %s", given, strerror(errno));
        return SOVA_ERR_INVALID;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen,
                 "%s is not a folder: share the folder that holds it (a file is shared with"
                 " its folder)",
                 given);
        return SOVA_ERR_INVALID;
    }
    if (access(path, R_OK | X_OK) != 0) {
        snprintf(err, errlen,
                 "cannot read the folder %s: %s (the daemon's user must be able to"
                 " list it)",
                 given, strerror(errno));
        return SOVA_ERR_INVALID;
    }
    if (strcmp(path, "/") == 0) {
        snprintf(err, errlen, "refusing to share the whole file system (/)");
        return SOVA_ERR_INVALID;
    }
    if (f->state_dir[0] != '\0' && contains(f->state_dir, path)) {
        snprintf(err, errlen,
                 "%s is inside the peer's state directory %s (its identity key): not shared", path,
                 f->state_dir);
        return SOVA_ERR_INVALID;
    }
    for (size_t i = 0; i < f->n; i++) {
        const char *have = f->list[i].path;
        if (strcmp(have, path) == 0) {
            snprintf(err, errlen, "%s is shared already", path);
            return SOVA_ERR_INVALID;
        }
        if (contains(have, path) || contains(path, have)) {
            snprintf(err, errlen, "%s %s the shared folder %s: folders may not overlap", path,
                     contains(have, path) ? "is inside" : "holds", have);
            return SOVA_ERR_INVALID;
        }
    }
    if (f->n == OP_FOLDERS_MAX) {
        snprintf(err, errlen, "%d folders are shared already, the most there may be",
                 OP_FOLDERS_MAX);
        return SOVA_ERR_TOO_LARGE;
    }
    return 0;
}

int op_folders_add(struct op_folders *f, const char *given, char *err, size_t errlen)
{
    char path[PATH_MAX];
    canonical(given, path, sizeof(path));
    int rc = check_new_folder(f, given, path, err, errlen);
    if (rc != 0)
        return rc;
    if (op_store_folder_add(f->cfg.store, path) != 0) {
        snprintf(err, errlen, "cannot remember %s: %s", path, op_store_errmsg(f->cfg.store));
        return SOVA_ERR_IO;
    }
    if ((rc = list_add(f, path, true)) != 0) {
        bool removed;
        op_store_folder_remove(f->cfg.store, path, &removed);
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    log_info(MOD, "share folder %s added", path);
    return restart_worker(f, err, errlen);
}

int op_folders_remove(struct op_folders *f, const char *given, char *err, size_t errlen)
{
    char path[PATH_MAX];
    canonical(given, path, sizeof(path));
    struct folder *fo = find(f, path);
    bool removed = false;
    if (fo == NULL) {
        /* One kept in the store but not shared (it overlaps the
         * configuration's folder) may be forgotten too. */
        if (op_store_folder_remove(f->cfg.store, path, &removed) == 0 && removed) {
            log_info(MOD, "share folder %s forgotten", path);
            return 0;
        }
        snprintf(err, errlen, "%s is not a shared folder (`sova-peer share list` shows them)",
                 given);
        return SOVA_ERR_NOT_FOUND;
    }
    if (!fo->added) {
        snprintf(err, errlen,
                 "%s is the configuration's share folder (--share): change it there and"
                 " restart the daemon",
                 path);
        return SOVA_ERR_INVALID;
    }
    if (op_store_folder_remove(f->cfg.store, path, &removed) != 0) {
        snprintf(err, errlen, "cannot forget %s: %s", path, op_store_errmsg(f->cfg.store));
        return SOVA_ERR_IO;
    }
    free(fo->path);
    *fo = f->list[--f->n];
    log_info(MOD, "share folder %s removed: its files are unpublished", path);
    return restart_worker(f, err, errlen);
}

void op_folders_stats(const struct op_folders *f, struct op_folders_stats *out)
{
    *out = (struct op_folders_stats){.folders = f->n, .events = f->events};
    for (size_t i = 0; i < f->n; i++)
        out->missing += f->list[i].seen && f->list[i].was_missing;
}

json_t *op_folders_json(const struct op_folders *f)
{
    json_t *list = json_array();
    const struct op_share_result *res = f->share ? op_share_current(f->share) : NULL;
    for (size_t i = 0; list != NULL && i < f->n; i++) {
        const struct folder *mine = &f->list[i];
        const struct op_share_folder *fo = NULL;
        for (size_t j = 0; res != NULL && j < res->n_folders; j++)
            if (strcmp(res->folders[j].path, mine->path) == 0)
                fo = &res->folders[j];
        json_t *o = json_pack("{s:s, s:s, s:s}", "path", mine->path, "origin",
                              mine->added ? "added" : "config", "state",
                              fo == NULL    ? "scanning"
                              : fo->missing ? "missing"
                                            : "shared");
        if (o == NULL)
            continue;
        if (fo != NULL) {
            json_object_set_new(o, "files", json_integer((json_int_t)fo->n_files));
            json_object_set_new(o, "bytes", json_integer((json_int_t)fo->bytes));
            json_object_set_new(o, "ignored", json_integer((json_int_t)fo->n_ignored));
            json_object_set_new(o, "patterns", json_integer((json_int_t)fo->n_patterns));
            if (fo->missing)
                json_object_set_new(o, "error", json_string(fo->error));
        }
        json_array_append_new(list, o);
    }
    return list;
}
