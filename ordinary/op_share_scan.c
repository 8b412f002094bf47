/* op_share_scan.c - one scan of the shared folder (op_share.h), on
 * whatever thread calls it.
 *
 * A scan: load the previous state (the last result, or the store's rows),
 * walk the root with openat/fdopendir so no symbolic link is ever followed,
 * hash each file the store cannot vouch for (one pass: the file ID with its
 * kept layer, and the whole-file SHA-256), commit hashed rows in small batches (never holding the
 * store's write lock while reading a file), prune rows of files that are
 * gone, and compare with the previous state. */
#define OP_SHARE_INTERNAL
#include "clock.h"
#include "op_share_int.h"
#include "err.h"
#include "op_share_ignore.h"
#include "log.h"
#include "wire.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MOD "share"

/* hash_file(): not shared this time, the scan goes on (besides sova_err). */
#define FILE_SKIPPED 1

static int64_t ts_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static int64_t clock_ns(clockid_t clk)
{
    return (int64_t)(clk == CLOCK_REALTIME ? sova_wall_ms() : sova_mono_ms()) * 1000000LL;
}

/* Make room for need elements in a growable array. 0 or SOVA_ERR_NOMEM. */
static int grow(void *arrayp, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    if (n > SIZE_MAX / elem)
        return SOVA_ERR_NOMEM;
    void **array = arrayp;
    void *p = realloc(*array, n * elem);
    if (p == NULL)
        return SOVA_ERR_NOMEM;
    *array = p;
    *cap = n;
    return 0;
}

/* ---- files and results ------------------------------------------------------------ */
static void file_clear(struct op_share_file *f)
{
    free(f->path);
    free(f->layer);
    memset(f, 0, sizeof(*f));
}

/* f->path = a copy of path; relpath starts rel_off bytes into it. */
static int file_set_path(struct op_share_file *f, const char *path, size_t rel_off)
{
    f->path = strdup(path);
    if (f->path == NULL)
        return SOVA_ERR_NOMEM;
    f->relpath = f->path + (rel_off <= strlen(path) ? rel_off : 0);
    const char *slash = strrchr(f->path, '/');
    f->name = slash != NULL ? slash + 1 : f->path;
    return 0;
}

/* Everything but the layer: for removed and before entries. */
static int file_copy_meta(struct op_share_file *dst, const struct op_share_file *src)
{
    *dst = *src;
    dst->layer = NULL;
    return file_set_path(dst, src->path, (size_t)(src->relpath - src->path));
}

static void snapshot_free(struct snapshot *s)
{
    struct op_share_result *r = &s->pub;
    for (size_t i = 0; i < r->n_files; i++)
        file_clear(&r->files[i]);
    for (size_t i = 0; i < r->n_changed; i++)
        file_clear(&r->changed[i].before);
    for (size_t i = 0; i < r->n_removed; i++)
        file_clear(&r->removed[i]);
    free(r->files);
    free(r->added);
    free(r->changed);
    free(r->removed);
    for (size_t i = 0; i < r->n_folders; i++)
        free(r->folders[i].path);
    free(r->folders);
    free(s->by_hash);
    free(s);
}

struct snapshot *share_snapshot_ref(struct snapshot *s)
{
    atomic_fetch_add(&s->refs, 1);
    return s;
}

void share_snapshot_unref(struct snapshot *s)
{
    if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1)
        snapshot_free(s);
}

void op_share_result_free(struct op_share_result *res)
{
    if (res != NULL)
        share_snapshot_unref(SHARE_SNAPSHOT(res));
}

static int cmp_path(const void *a, const void *b)
{
    return strcmp(((const struct op_share_file *)a)->path, ((const struct op_share_file *)b)->path);
}

/* qsort() must not see a NULL array, even an empty one. */
static void sort_files(struct op_share_file *files, size_t n)
{
    if (n > 1)
        qsort(files, n, sizeof(*files), cmp_path);
}

static int cmp_by_hash(const void *a, const void *b)
{
    const struct op_share_file *fa = *(const struct op_share_file *const *)a;
    const struct op_share_file *fb = *(const struct op_share_file *const *)b;
    int c = memcmp(fa->id, fb->id, OP_HASH_LEN);
    return c != 0 ? c : strcmp(fa->path, fb->path);
}

const struct op_share_file *op_share_result_lookup(const struct op_share_result *res,
                                                   const uint8_t id[OP_HASH_LEN])
{
    if (res == NULL)
        return NULL;
    const struct snapshot *s = SHARE_SNAPSHOT(res);
    size_t lo = 0, hi = res->n_files; /* first entry with ID >= the key */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(s->by_hash[mid]->id, id, OP_HASH_LEN) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < res->n_files && memcmp(s->by_hash[lo]->id, id, OP_HASH_LEN) == 0)
        return s->by_hash[lo];
    return NULL;
}

bool op_share_file_unchanged(const struct op_share_file *f, int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == f->size &&
           ts_ns(&st.st_mtim) == f->mtime_ns && (uint64_t)st.st_ino == f->inode;
}

/* ---- one scan ---------------------------------------------------------------------- */
struct dev_ino {
    dev_t dev;
    ino_t ino;
};

struct pending {
    size_t file; /* index into files[] */
    bool racy;
};

struct scan {
    struct op_store *st;
    const struct op_share_config *cfg;
    const atomic_bool *cancel; /* may be NULL */
    struct snapshot *snap;     /* being built */
    size_t files_cap;
    struct dev_ino *excluded;
    size_t n_excluded;
    struct pending *pending; /* hashed, not yet in the store */
    size_t n_pending, pending_cap;
    int64_t last_flush_ns;         /* CLOCK_MONOTONIC */
    uint8_t *buf;                  /* OP_SHARE_READ_BYTES */
    uint32_t folder;               /* the folder being walked */
    size_t rel_off;                /* where its relative paths start in path[] */
    struct op_share_ignore ignore; /* its .sovaignore */
    char rel[PATH_MAX];            /* absolute path of the entry being looked at */
};

__attribute__((format(printf, 3, 4))) static int scan_fail(struct scan *sc, int code,
                                                           const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sc->snap->pub.error, sizeof(sc->snap->pub.error), fmt, ap);
    va_end(ap);
    return code;
}

/* An error that says nothing about the file or folder, only that this
 * process is short of descriptors or memory now (a flood of connections
 * can do it): the scan fails and the last good one stays, rather than
 * counting what it could not open as removed. */
static bool short_of_resources(int e)
{
    return e == EMFILE || e == ENFILE || e == ENOMEM || e == ENOBUFS;
}

static int resource_fail(struct scan *sc, const char *what)
{
    int e = errno;
    return scan_fail(sc, SOVA_ERR_IO, "cannot open %s: %s (the scan is tried again later)", what,
                     strerror(e));
}

static int cache_fail(struct scan *sc, int code)
{
    return scan_fail(sc, code, "share cache: %s", op_store_errmsg(sc->st));
}

static bool cancelled(const struct scan *sc)
{
    return sc->cancel != NULL && atomic_load(sc->cancel);
}

/* Can this name travel in a PUBLISH record? */
static bool name_publishable(const char *name)
{
    size_t len = strlen(name);
    return len <= WIRE_MAX_NAME_LEN_DEFAULT && strchr(name, '\\') == NULL &&
           wire_utf8_valid(name, len);
}

/* Watch the directory dfd (sc->rel) for changes, if asked to. */
static void watch_dir(const struct scan *sc, int dfd)
{
    if (!sc->cfg->watch)
        return;
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dfd);
    if (inotify_add_watch(sc->cfg->watch_fd, proc, OP_SHARE_WATCH_DIR) < 0)
        log_warn(MOD, "cannot watch %s: %s%s", sc->rel, strerror(errno),
                 errno == ENOSPC ? " (raise fs.inotify.max_user_watches; the periodic rescan"
                                   " still sees changes)"
                                 : "");
}

static bool is_excluded(const struct scan *sc, const struct stat *st)
{
    for (size_t i = 0; i < sc->n_excluded; i++)
        if (sc->excluded[i].dev == st->st_dev && sc->excluded[i].ino == st->st_ino)
            return true;
    return false;
}

/* Hash size bytes of fd into f (its ID, root, SHA-256 and kept layer). */
static int hash_fd(struct scan *sc, int fd, uint64_t size, struct op_share_file *f)
{
    if (fileid_chunks(size, OP_SHARE_KEEP_HEIGHT) > UINT32_MAX || size > FILEID_MAX_SIZE)
        return FILE_SKIPPED;
    struct op_share_hashes h;
    int rc = op_share_hash_fd(fd, size, OP_SHARE_KEEP_HEIGHT, sc->cancel, sc->buf, &h,
                              &sc->snap->pub.bytes_hashed);
    if (rc == OP_SHARE_CANCELLED)
        return SHARE_SCAN_CANCELLED;
    if (rc == SOVA_ERR_IO) {
        log_warn(MOD, "cannot read %s: %s", sc->rel, strerror(errno));
        return FILE_SKIPPED;
    }
    if (rc == SOVA_ERR_NOMEM)
        return scan_fail(sc, rc, "out of memory hashing %s", sc->rel);
    if (rc != 0)
        return scan_fail(sc, rc, "SHA-256 failed");
    memcpy(f->id, h.id, OP_HASH_LEN);
    memcpy(f->root, h.root, OP_HASH_LEN);
    memcpy(f->sha256, h.sha256, OP_HASH_LEN);
    f->n_layer = (uint32_t)h.n_layer;
    f->layer = h.layer; /* handed over */
    return 0;
}

static bool same_version(const struct stat *a, const struct stat *b)
{
    return a->st_size == b->st_size && ts_ns(&a->st_mtim) == ts_ns(&b->st_mtim) &&
           a->st_ino == b->st_ino && a->st_dev == b->st_dev;
}

/* Open name in dfd and hash it, filling f's hashes, size, mtime and inode
 * from the descriptor. A file that changes while it is read is tried once
 * more, then skipped. 0, FILE_SKIPPED, SHARE_SCAN_CANCELLED or an error. */
static int hash_file(struct scan *sc, int dfd, const char *name, struct op_share_file *f,
                     bool *racy)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat before, after;
        if (fd < 0 && short_of_resources(errno))
            return resource_fail(sc, sc->rel);
        if (fd < 0 || fstat(fd, &before) != 0 || !S_ISREG(before.st_mode)) {
            log_warn(MOD, "cannot open %s: %s", sc->rel, fd < 0 ? strerror(errno) : "not a file");
            if (fd >= 0)
                close(fd);
            return FILE_SKIPPED;
        }
        int64_t start_ns = clock_ns(CLOCK_REALTIME);
        int rc = hash_fd(sc, fd, (uint64_t)before.st_size, f);
        bool stable = fstat(fd, &after) == 0 && same_version(&before, &after);
        close(fd);
        if (rc == 0 && stable) {
            f->size = (uint64_t)before.st_size;
            f->mtime_ns = ts_ns(&before.st_mtim);
            f->inode = (uint64_t)before.st_ino;
            *racy = f->mtime_ns > start_ns - OP_SHARE_RACY_NS;
            return 0;
        }
        free(f->layer);
        f->layer = NULL;
        if (rc != 0)
            return rc;
    }
    log_warn(MOD, "skipping %s: it changes while being hashed", sc->rel);
    return FILE_SKIPPED;
}

/* Write the hashed files not yet in the store, in one transaction. */
static int flush_pending(struct scan *sc)
{
    if (sc->n_pending == 0)
        return 0;
    struct op_store_share *rows = calloc(sc->n_pending, sizeof(*rows));
    if (rows == NULL)
        return scan_fail(sc, SOVA_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < sc->n_pending; i++) {
        const struct op_share_file *f = &sc->snap->pub.files[sc->pending[i].file];
        rows[i] = (struct op_store_share){
            .path = f->path,
            .size = f->size,
            .mtime_ns = f->mtime_ns,
            .inode = f->inode,
            .layer_height = OP_SHARE_KEEP_HEIGHT,
            .n_layer = f->n_layer,
            .layer = f->layer,
            .racy = sc->pending[i].racy,
        };
        memcpy(rows[i].id, f->id, OP_HASH_LEN);
        memcpy(rows[i].root, f->root, OP_HASH_LEN);
        memcpy(rows[i].sha256, f->sha256, OP_HASH_LEN);
    }
    int rc = op_store_share_upsert(sc->st, rows, sc->n_pending);
    free(rows);
    sc->n_pending = 0;
    sc->last_flush_ns = clock_ns(CLOCK_MONOTONIC);
    return rc != 0 ? cache_fail(sc, rc) : 0;
}

/* Append f to the result (taking its memory); remember to store it if it
 * was hashed. */
static int add_result(struct scan *sc, struct op_share_file *f, bool hashed, bool racy)
{
    struct op_share_result *r = &sc->snap->pub;
    if (grow(&r->files, &sc->files_cap, r->n_files + 1, sizeof(*r->files)) != 0 ||
        (hashed &&
         grow(&sc->pending, &sc->pending_cap, sc->n_pending + 1, sizeof(*sc->pending)) != 0)) {
        file_clear(f);
        return scan_fail(sc, SOVA_ERR_NOMEM, "out of memory");
    }
    r->files[r->n_files++] = *f;
    if (!hashed)
        return 0;
    r->files_hashed++;
    sc->pending[sc->n_pending++] = (struct pending){r->n_files - 1, racy};
    if (sc->n_pending >= OP_SHARE_FLUSH_ROWS ||
        clock_ns(CLOCK_MONOTONIC) - sc->last_flush_ns >= OP_SHARE_FLUSH_MS * 1000000LL)
        return flush_pending(sc);
    return 0;
}

/* One regular file, sc->rel being its relative path. */
static int scan_file(struct scan *sc, int dfd, const char *name, const struct stat *st)
{
    struct op_share_result *r = &sc->snap->pub;
    if (!name_publishable(name)) {
        log_debug(MOD, "skipping %s: its name cannot be published", sc->rel);
        r->files_skipped++;
        return 0;
    }
    struct op_share_file f = {.folder = sc->folder};
    if (file_set_path(&f, sc->rel, sc->rel_off) != 0)
        return scan_fail(sc, SOVA_ERR_NOMEM, "out of memory");
    struct op_store_share row;
    bool found;
    int rc = op_store_share_lookup(sc->st, sc->rel, (uint64_t)st->st_size, ts_ns(&st->st_mtim),
                                   (uint64_t)st->st_ino, &row, &found);
    if (rc != 0) {
        file_clear(&f);
        return cache_fail(sc, rc);
    }
    if (found && row.layer_height == OP_SHARE_KEEP_HEIGHT) {
        f.size = row.size;
        f.mtime_ns = row.mtime_ns;
        f.inode = row.inode;
        f.n_layer = row.n_layer;
        memcpy(f.id, row.id, OP_HASH_LEN);
        memcpy(f.root, row.root, OP_HASH_LEN);
        memcpy(f.sha256, row.sha256, OP_HASH_LEN);
        f.layer = row.layer;
        row.layer = NULL;
        op_store_share_clear(&row);
        return add_result(sc, &f, false, false);
    }
    if (found)
        op_store_share_clear(&row);
    bool racy = false;
    rc = hash_file(sc, dfd, name, &f, &racy);
    if (rc != 0) {
        file_clear(&f);
        if (rc == FILE_SKIPPED)
            r->files_skipped++;
        return rc == FILE_SKIPPED ? 0 : rc;
    }
    return add_result(sc, &f, true, racy);
}

/* Walk the directory dfd (owned: closed here), whose path is
 * sc->rel[0..rel_len). */
static int scan_dir(struct scan *sc, int dfd, size_t rel_len, unsigned depth)
{
    watch_dir(sc, dfd);
    DIR *dir = fdopendir(dfd);
    if (dir == NULL) {
        close(dfd);
        return scan_fail(sc, SOVA_ERR_IO, "cannot list %s: %s", sc->rel, strerror(errno));
    }
    int rc = 0;
    while (rc == 0) {
        errno = 0;
        const struct dirent *e = readdir(dir);
        if (e == NULL) {
            if (errno != 0) /* a partial listing would look like removals */
                rc = scan_fail(sc, SOVA_ERR_IO, "cannot list %s: %s", sc->rel, strerror(errno));
            break;
        }
        if (e->d_name[0] == '.') /* hidden, ".", ".." */
            continue;
        if (cancelled(sc)) {
            rc = SHARE_SCAN_CANCELLED;
            break;
        }
        size_t len = rel_len + 1 + strlen(e->d_name);
        struct stat st;
        if (len >= sizeof(sc->rel) || fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW))
            continue; /* too deep a path, or gone since readdir */
        snprintf(sc->rel + rel_len, sizeof(sc->rel) - rel_len, "/%s", e->d_name);
        if (op_share_ignore_match(&sc->ignore, sc->rel + sc->rel_off, e->d_name,
                                  S_ISDIR(st.st_mode))) {
            sc->snap->pub.folders[sc->folder].n_ignored++;
            log_debug(MOD, "ignoring %s (%s)", sc->rel, OP_SHARE_IGNORE_FILE);
        } else if (S_ISREG(st.st_mode)) {
            rc = scan_file(sc, dirfd(dir), e->d_name, &st);
        } else if (S_ISDIR(st.st_mode) && depth < OP_SHARE_MAX_DEPTH && !is_excluded(sc, &st)) {
            int sub =
                openat(dirfd(dir), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                rc = scan_dir(sc, sub, len, depth + 1);
            else if (short_of_resources(errno))
                rc = resource_fail(sc, sc->rel);
            else
                log_warn(MOD, "skipping directory %s: %s", sc->rel, strerror(errno));
        }
        sc->rel[rel_len] = '\0';
    }
    closedir(dir);
    return rc;
}

/* ---- previous state and changes ------------------------------------------------------ */
struct snapshot *share_snapshot_new(void)
{
    struct snapshot *s = calloc(1, sizeof(*s));
    if (s != NULL)
        atomic_init(&s->refs, 1);
    return s;
}

struct collect {
    struct op_share_result *res;
    size_t cap;
    const struct op_share_folder *folders; /* of the scan, to place each row */
    size_t n_folders;
};

/* The folder holding the absolute path, or OP_SHARE_NO_FOLDER; *rel_off is
 * where its relative path starts. */
static uint32_t folder_of(const struct collect *c, const char *path, size_t *rel_off)
{
    for (size_t i = 0; i < c->n_folders; i++) {
        size_t n = strlen(c->folders[i].path);
        if (strncmp(path, c->folders[i].path, n) == 0 && path[n] == '/') {
            *rel_off = n + 1;
            return (uint32_t)i;
        }
    }
    *rel_off = 0;
    return OP_SHARE_NO_FOLDER;
}

static int collect_row(const struct op_store_share *row, void *arg)
{
    struct collect *c = arg;
    struct op_share_result *r = c->res;
    if (grow(&r->files, &c->cap, r->n_files + 1, sizeof(*r->files)) != 0)
        return SOVA_ERR_NOMEM;
    struct op_share_file f = {
        .size = row->size,
        .n_layer = row->n_layer,
        .mtime_ns = row->mtime_ns,
        .inode = row->inode,
    };
    memcpy(f.id, row->id, OP_HASH_LEN);
    memcpy(f.root, row->root, OP_HASH_LEN);
    memcpy(f.sha256, row->sha256, OP_HASH_LEN);
    size_t rel_off;
    f.folder = folder_of(c, row->path, &rel_off);
    if (file_set_path(&f, row->path, rel_off) != 0)
        return SOVA_ERR_NOMEM;
    r->files[r->n_files++] = f;
    return 0;
}

/* What the store remembers of the last scan, as a result holding files. */
static int load_previous(struct scan *sc, struct snapshot **out)
{
    *out = share_snapshot_new();
    if (*out == NULL)
        return scan_fail(sc, SOVA_ERR_NOMEM, "out of memory");
    struct collect c = {&(*out)->pub, 0, sc->snap->pub.folders, sc->snap->pub.n_folders};
    int rc = op_store_share_foreach(sc->st, collect_row, &c);
    if (rc == SOVA_ERR_NOMEM)
        return scan_fail(sc, rc, "out of memory");
    if (rc != 0)
        return cache_fail(sc, rc);
    sort_files(c.res->files, c.res->n_files);
    return 0;
}

/* calloc of at least one element, so an empty list is not an error. */
static void *alloc_list(size_t n, size_t elem)
{
    return calloc(n ? n : 1, elem);
}

/* Fill the change lists: both file lists are sorted by path. */
static int diff(struct scan *sc, const struct op_share_result *prev)
{
    struct op_share_result *r = &sc->snap->pub;
    r->added = alloc_list(r->n_files, sizeof(*r->added));
    r->changed = alloc_list(r->n_files, sizeof(*r->changed));
    r->removed = alloc_list(prev->n_files, sizeof(*r->removed));
    if (r->added == NULL || r->changed == NULL || r->removed == NULL)
        return scan_fail(sc, SOVA_ERR_NOMEM, "out of memory");
    size_t i = 0, j = 0;
    while (i < r->n_files || j < prev->n_files) {
        int c = i == r->n_files      ? 1
                : j == prev->n_files ? -1
                                     : strcmp(r->files[i].path, prev->files[j].path);
        if (c < 0) {
            r->added[r->n_added++] = &r->files[i++];
        } else if (c > 0) {
            if (file_copy_meta(&r->removed[r->n_removed], &prev->files[j++]) != 0)
                return scan_fail(sc, SOVA_ERR_NOMEM, "out of memory");
            r->n_removed++;
        } else {
            if (memcmp(r->files[i].id, prev->files[j].id, OP_HASH_LEN) != 0) {
                struct op_share_change *ch = &r->changed[r->n_changed];
                ch->now = &r->files[i];
                if (file_copy_meta(&ch->before, &prev->files[j]) != 0)
                    return scan_fail(sc, SOVA_ERR_NOMEM, "out of memory");
                r->n_changed++;
            }
            i++;
            j++;
        }
    }
    return 0;
}

static int build_index(struct scan *sc)
{
    struct op_share_result *r = &sc->snap->pub;
    sc->snap->by_hash = alloc_list(r->n_files, sizeof(*sc->snap->by_hash));
    if (sc->snap->by_hash == NULL)
        return scan_fail(sc, SOVA_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < r->n_files; i++)
        sc->snap->by_hash[i] = &r->files[i];
    qsort(sc->snap->by_hash, r->n_files, sizeof(*sc->snap->by_hash), cmp_by_hash);
    return 0;
}

/* Forget every row of files this scan did not share. */
static int prune(struct scan *sc)
{
    struct op_share_result *r = &sc->snap->pub;
    const char **paths = alloc_list(r->n_files, sizeof(*paths));
    if (paths == NULL)
        return scan_fail(sc, SOVA_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < r->n_files; i++)
        paths[i] = r->files[i].path;
    int rc = op_store_share_prune(sc->st, paths, r->n_files, NULL);
    free(paths);
    return rc != 0 ? cache_fail(sc, rc) : 0;
}

static int scan_setup(struct scan *sc)
{
    sc->buf = malloc(OP_SHARE_READ_BYTES);
    sc->excluded = alloc_list(sc->cfg->n_exclude_dirs, sizeof(*sc->excluded));
    if (sc->buf == NULL || sc->excluded == NULL)
        return scan_fail(sc, SOVA_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < sc->cfg->n_exclude_dirs; i++) {
        struct stat st;
        if (stat(sc->cfg->exclude_dirs[i], &st) == 0 && S_ISDIR(st.st_mode))
            sc->excluded[sc->n_excluded++] = (struct dev_ino){st.st_dev, st.st_ino};
    }
    sc->last_flush_ns = clock_ns(CLOCK_MONOTONIC);
    struct op_share_result *r = &sc->snap->pub;
    size_t n = sc->cfg->n_folders ? sc->cfg->n_folders : sc->cfg->share_root != NULL;
    r->folders = alloc_list(n, sizeof(*r->folders));
    if (r->folders == NULL)
        return scan_fail(sc, SOVA_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++, r->n_folders++) {
        r->folders[i].parent_wd = -1;
        const char *path = sc->cfg->n_folders ? sc->cfg->folders[i] : sc->cfg->share_root;
        size_t len = strlen(path);
        while (len > 1 && path[len - 1] == '/')
            len--;
        if ((r->folders[i].path = strndup(path, len)) == NULL)
            return scan_fail(sc, SOVA_ERR_NOMEM, "out of memory");
    }
    return 0;
}

static void scan_teardown(struct scan *sc)
{
    op_share_ignore_clear(&sc->ignore);
    free(sc->buf);
    free(sc->excluded);
    free(sc->pending);
}

static void scan_log(const struct scan *sc, int rc, int64_t start_ns)
{
    const struct op_share_result *r = &sc->snap->pub;
    char what[PATH_MAX + 32];
    if (r->n_folders == 1)
        snprintf(what, sizeof(what), "%s", r->folders[0].path);
    else
        snprintf(what, sizeof(what), "%zu folders", r->n_folders);
    long long ms = (long long)((clock_ns(CLOCK_MONOTONIC) - start_ns) / 1000000);
    if (rc == SHARE_SCAN_CANCELLED)
        log_info(MOD, "scan of %s cancelled after %lld ms", what, ms);
    else if (rc != 0)
        log_warn(MOD, "scan of %s failed: %s", what, r->error);
    else
        /* A rescan that found nothing new is not an event worth a line. */
        sova_log(r->n_added || r->n_changed || r->n_removed || r->files_hashed || r->files_skipped
                     ? SOVA_LOG_INFO
                     : SOVA_LOG_DEBUG,
                 MOD,
                 "scan of %s: %zu files, %u hashed (%llu bytes), %zu added, %zu changed,"
                 " %zu removed, %u skipped, %lld ms",
                 what, r->n_files, r->files_hashed, (unsigned long long)r->bytes_hashed, r->n_added,
                 r->n_changed, r->n_removed, r->files_skipped, ms);
}

/* Watch the parent of the folder sc->rel (its own leaving, or coming back). */
static void watch_parent(struct scan *sc, struct op_share_folder *fo)
{
    if (!sc->cfg->watch)
        return;
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", fo->path);
    char *slash = strrchr(parent, '/');
    if (slash == NULL)
        return;
    if (slash == parent)
        slash[1] = '\0'; /* the folder is in "/" */
    else
        *slash = '\0';
    fo->parent_wd = inotify_add_watch(sc->cfg->watch_fd, parent, OP_SHARE_WATCH_PARENT);
}

/* Walk folder i. One that cannot be opened is an error, or with
 * cfg->missing_ok, reported in folders[i] (and *all_there cleared). */
static int scan_folder(struct scan *sc, uint32_t i, bool *all_there)
{
    struct op_share_folder *fo = &sc->snap->pub.folders[i];
    watch_parent(sc, fo);
    int root = open(fo->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0 && short_of_resources(errno))
        return resource_fail(sc, fo->path);
    if (root < 0 && !sc->cfg->missing_ok)
        return scan_fail(sc, SOVA_ERR_IO, "cannot open share root %s: %s", fo->path,
                         strerror(errno));
    if (root < 0) {
        fo->missing = true;
        snprintf(fo->error, sizeof(fo->error), "%s", strerror(errno));
        *all_there = false;
        return 0;
    }
    size_t len = strlen(fo->path);
    if (fo->path[len - 1] == '/') /* the root folder "/" */
        len--;
    if (len >= sizeof(sc->rel)) {
        close(root);
        return scan_fail(sc, SOVA_ERR_INVALID, "share folder path too long: %s", fo->path);
    }
    memcpy(sc->rel, fo->path, len);
    sc->rel[len] = '\0';
    sc->folder = i;
    sc->rel_off = len + 1;
    int rc = op_share_ignore_load(&sc->ignore, root, fo->path);
    fo->n_patterns = (uint32_t)sc->ignore.n;
    if (rc == SOVA_ERR_IO)
        rc = scan_fail(sc, rc, "cannot read %s/%s: the folder's files stay as they were", fo->path,
                       OP_SHARE_IGNORE_FILE);
    else if (rc != 0)
        rc = scan_fail(sc, rc, "out of memory");
    if (rc != 0) {
        close(root);
        return rc;
    }
    return scan_dir(sc, root, len, 0);
}

/* One whole scan. prev is the result to compare with, or NULL for the
 * store's rows. Returns a new snapshot whose status says how it went
 * (SHARE_SCAN_CANCELLED included), or NULL when out of memory. */
struct snapshot *share_scan_run(struct op_store *st, const struct op_share_config *cfg,
                                const struct snapshot *prev, const atomic_bool *cancel)
{
    struct snapshot *snap = share_snapshot_new(), *loaded = NULL;
    if (snap == NULL)
        return NULL;
    struct scan sc = {.st = st, .cfg = cfg, .cancel = cancel, .snap = snap};
    int64_t start_ns = clock_ns(CLOCK_MONOTONIC);
    int rc = scan_setup(&sc);
    if (rc == 0 && prev == NULL) {
        rc = load_previous(&sc, &loaded);
        prev = loaded;
    }
    bool all_there = true;
    for (size_t i = 0; rc == 0 && i < snap->pub.n_folders; i++)
        rc = scan_folder(&sc, (uint32_t)i, &all_there);
    if (rc == 0)
        rc = flush_pending(&sc);
    else if (rc == SHARE_SCAN_CANCELLED)
        flush_pending(&sc); /* keep what was hashed; the next start reuses it */
    if (rc == 0) {
        sort_files(snap->pub.files, snap->pub.n_files);
        /* A missing folder's rows stay: when it comes back, its files are
         * not hashed again. Rows of folders no longer shared go at the
         * next scan that finds every folder. */
        if (all_there)
            rc = prune(&sc);
        for (size_t i = 0; i < snap->pub.n_files; i++) {
            struct op_share_folder *fo = &snap->pub.folders[snap->pub.files[i].folder];
            fo->n_files++;
            fo->bytes += snap->pub.files[i].size;
        }
    }
    if (rc == 0)
        rc = diff(&sc, &prev->pub);
    if (rc == 0)
        rc = build_index(&sc);
    scan_log(&sc, rc, start_ns);
    scan_teardown(&sc);
    share_snapshot_unref(loaded);
    if (rc != 0) { /* a failed result carries its error only */
        struct snapshot *failed = share_snapshot_new();
        if (failed != NULL) {
            failed->pub.status = rc;
            memcpy(failed->pub.error, snap->pub.error, sizeof(failed->pub.error));
        }
        share_snapshot_unref(snap);
        return failed;
    }
    return snap;
}

int op_share_scan_once(struct op_store *st, const struct op_share_config *cfg,
                       struct op_share_result **out, char *err, size_t errlen)
{
    *out = NULL;
    struct snapshot *s = share_scan_run(st, cfg, NULL, NULL);
    int rc = s == NULL ? SOVA_ERR_NOMEM : s->pub.status;
    if (rc != 0) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s", s != NULL ? s->pub.error : "out of memory");
        share_snapshot_unref(s);
        return rc;
    }
    *out = &s->pub;
    return 0;
}
