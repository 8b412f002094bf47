#include "op_fetch_file.h"
#include "ctl.h"
#include "err.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FETCH_NAME_MAX      255
#define FETCH_UNIQUE_TRIES  1000 /* "name (1)" ... "name (999)" */
#define FETCH_FEED_PER_CALL 4    /* chunks read back per stored chunk for the file hash */

struct fetch_file {
    struct event_base *base;
    struct op_store *store;
    uint8_t id[OP_STORE_HASH_LEN];
    uint64_t size;
    uint32_t chunk_size;
    uint32_t n_chunks;
    int fd;
    char *part_path;
    /* chunks written but not yet durable: one fdatasync and one store
     * transaction make a whole batch durable */
    uint32_t pending[FETCH_SYNC_CHUNKS];
    size_t n_pending;
    struct event *sync_timer;
    /* The whole-file hash, fed in chunk order as the prefix of chunks on
     * disk grows, so the final check reads back only what came out of
     * order (or was already on disk when we resumed). */
    uint8_t *on_disk; /* bitmap, op_store's layout */
    EVP_MD_CTX *md;
    uint32_t fed; /* chunks fed to md */
    uint8_t *buf;
    struct event *step;
    bool verifying;
    fetch_file_hashed_fn *done;
    void *done_arg;
};

static void on_sync_timer(evutil_socket_t fd, short what, void *arg);
static void on_verify_step(evutil_socket_t fd, short what, void *arg);

static bool on_disk(const struct fetch_file *ff, uint32_t i)
{
    return (ff->on_disk[i / 8] & (0x80u >> (i % 8))) != 0;
}

static uint32_t chunk_bytes(const struct fetch_file *ff, uint32_t i)
{
    uint64_t left = ff->size - (uint64_t)i * ff->chunk_size;
    return left < ff->chunk_size ? (uint32_t)left : ff->chunk_size;
}

/* Feed chunk fed (data, or read back from the part file) to the hash. */
static int feed_next(struct fetch_file *ff, const uint8_t *data)
{
    uint32_t len = chunk_bytes(ff, ff->fed);
    if (data == NULL) {
        ssize_t r = pread(ff->fd, ff->buf, len, (off_t)ff->fed * ff->chunk_size);
        if (r != (ssize_t)len) {
            log_error("fetch", "cannot read %s: %s", ff->part_path,
                      r < 0 ? strerror(errno) : "short file");
            return SOVA_ERR_IO;
        }
        data = ff->buf;
    }
    EVP_DigestUpdate(ff->md, data, len);
    ff->fed++;
    return 0;
}

static int make_dir(const char *path, mode_t mode, char *err, size_t errlen)
{
    if (mkdir(path, mode) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return SOVA_ERR_IO;
    }
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return SOVA_ERR_IO;
    int rc = fsync(fd) == 0 ? 0 : SOVA_ERR_IO;
    close(fd);
    return rc;
}

int fetch_file_open(struct event_base *base, const char *downloads_dir, const char *hex,
                    uint64_t size, uint32_t chunk_size, struct op_store *store,
                    const uint8_t id[OP_STORE_HASH_LEN], struct fetch_file **out, char *err,
                    size_t errlen)
{
    char dir[PATH_MAX];
    if (downloads_dir == NULL) {
        snprintf(err, errlen, "no downloads folder configured (--downloads DIR)");
        return SOVA_ERR_CONFIG;
    }
    snprintf(dir, sizeof(dir), "%s/%s", downloads_dir, FETCH_PARTIAL_DIR);
    int rc = make_dir(downloads_dir, 0755, err, errlen);
    if (rc == 0)
        rc = make_dir(dir, 0700, err, errlen);
    if (rc != 0)
        return rc;
    struct fetch_file *ff = calloc(1, sizeof(*ff));
    if (ff == NULL)
        return SOVA_ERR_NOMEM;
    ff->fd = -1;
    ff->base = base;
    ff->store = store;
    memcpy(ff->id, id, OP_STORE_HASH_LEN);
    ff->size = size;
    ff->chunk_size = chunk_size;
    size_t n = strlen(dir) + strlen(hex) + 8;
    ff->part_path = malloc(n);
    if (ff->part_path == NULL) {
        free(ff);
        return SOVA_ERR_NOMEM;
    }
    snprintf(ff->part_path, n, "%s/%s.part", dir, hex);
    ff->n_chunks = chunk_size ? (uint32_t)((size + chunk_size - 1) / chunk_size) : 0;
    ff->fd = open(ff->part_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (ff->fd < 0 || ftruncate(ff->fd, (off_t)size) != 0) {
        snprintf(err, errlen, "cannot open %s: %s", ff->part_path, strerror(errno));
        fetch_file_close(ff);
        return SOVA_ERR_IO;
    }
    uint32_t stored_chunks = 0;
    uint8_t *have = NULL;
    op_store_download_get_have(store, id, &have, &stored_chunks);
    size_t map_len = ((size_t)ff->n_chunks + 7) / 8;
    ff->on_disk = calloc(map_len ? map_len : 1, 1);
    if (ff->on_disk && have && stored_chunks == ff->n_chunks)
        memcpy(ff->on_disk, have, map_len);
    free(have);
    ff->md = EVP_MD_CTX_new();
    ff->buf = malloc(chunk_size ? chunk_size : 1);
    ff->sync_timer = evtimer_new(base, on_sync_timer, ff);
    ff->step = event_new(base, -1, 0, on_verify_step, ff);
    if (!ff->on_disk || !ff->md || !ff->buf || !ff->sync_timer || !ff->step ||
        !EVP_DigestInit_ex(ff->md, EVP_sha256(), NULL)) {
        snprintf(err, errlen, "out of memory opening %s", ff->part_path);
        fetch_file_close(ff);
        return SOVA_ERR_NOMEM;
    }
    *out = ff;
    return 0;
}

/* Make every pending chunk durable, then mark them verified. */
static int sync_pending(struct fetch_file *ff)
{
    if (ff->n_pending == 0)
        return 0;
    evtimer_del(ff->sync_timer);
    /* Durable before marked verified: a crash may lose bits, never the
     * bytes behind a bit. */
    if (fdatasync(ff->fd) != 0) {
        log_error("fetch", "cannot sync %s: %s", ff->part_path, strerror(errno));
        return SOVA_ERR_IO;
    }
    if (op_store_download_mark_chunks(ff->store, ff->id, ff->pending, ff->n_pending) != 0) {
        log_error("fetch", "cannot record verified chunks: %s", op_store_errmsg(ff->store));
        return SOVA_ERR_IO;
    }
    ff->n_pending = 0;
    return 0;
}

static void on_sync_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sync_pending(arg);
}

int fetch_file_store_chunk(struct fetch_file *ff, uint32_t index, const uint8_t *data, uint32_t len,
                           char *err, size_t errlen)
{
    off_t off = (off_t)index * ff->chunk_size;
    for (uint32_t done = 0; done < len;) {
        ssize_t w = pwrite(ff->fd, data + done, len - done, off + (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC; /* a write of 0 bytes: no room */
            snprintf(err, errlen, "cannot write %s: %s", ff->part_path, strerror(e));
            return e == ENOSPC || e == EDQUOT ? SOVA_ERR_NO_SPACE : SOVA_ERR_IO;
        }
        done += (uint32_t)w;
    }
    ff->on_disk[index / 8] |= (uint8_t)(0x80u >> (index % 8));
    ff->pending[ff->n_pending++] = index;
    if (ff->n_pending == FETCH_SYNC_CHUNKS) {
        if (sync_pending(ff) != 0) {
            snprintf(err, errlen, "cannot make %s durable", ff->part_path);
            return SOVA_ERR_IO;
        }
    } else if (!evtimer_pending(ff->sync_timer, NULL)) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = FETCH_SYNC_MS * 1000};
        evtimer_add(ff->sync_timer, &tv);
    }
    /* The file hash: this chunk if it is next, then what waits behind it. */
    if (index == ff->fed && feed_next(ff, data) != 0)
        return SOVA_ERR_IO;
    for (int i = 0; i < FETCH_FEED_PER_CALL && ff->fed < ff->n_chunks && on_disk(ff, ff->fed); i++)
        if (feed_next(ff, NULL) != 0)
            return SOVA_ERR_IO;
    return 0;
}

static void verify_finish(struct fetch_file *ff, const uint8_t *sha256)
{
    ff->verifying = false;
    ff->done(sha256, ff->done_arg);
}

/* Feed the rest of the file, a few chunks per loop turn. */
static void on_verify_step(evutil_socket_t fd, short what, void *arg)
{
    struct fetch_file *ff = arg;
    (void)fd;
    (void)what;
    for (unsigned i = 0; i < FETCH_VERIFY_CHUNKS_PER_TURN && ff->fed < ff->n_chunks; i++) {
        if (feed_next(ff, NULL) != 0) {
            verify_finish(ff, NULL);
            return;
        }
    }
    if (ff->fed < ff->n_chunks) {
        event_active(ff->step, EV_TIMEOUT, 0); /* next turn: let other work run */
        return;
    }
    uint8_t digest[OP_STORE_HASH_LEN];
    unsigned len = 0;
    if (EVP_DigestFinal_ex(ff->md, digest, &len) != 1 || len != OP_STORE_HASH_LEN) {
        verify_finish(ff, NULL);
        return;
    }
    verify_finish(ff, digest);
}

int fetch_file_finish(struct fetch_file *ff, fetch_file_hashed_fn *done, void *arg, char *err,
                      size_t errlen)
{
    if (sync_pending(ff) != 0) {
        snprintf(err, errlen, "cannot make %s durable", ff->part_path);
        return SOVA_ERR_IO;
    }
    ff->done = done;
    ff->done_arg = arg;
    ff->verifying = true;
    event_active(ff->step, EV_TIMEOUT, 0);
    return 0;
}

bool fetch_file_hashing(const struct fetch_file *ff)
{
    return ff != NULL && ff->verifying;
}

/* Is name "<64 lowercase hex>.part", and which ID? */
static bool part_name(const char *name, uint8_t id[OP_STORE_HASH_LEN])
{
    if (strlen(name) != CTL_HEX32_LEN + 5 || strcmp(name + CTL_HEX32_LEN, ".part") != 0)
        return false;
    for (size_t i = 0; i < CTL_HEX32_LEN; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return false;
    return ctl_hex32_decode(name, CTL_HEX32_LEN, id) == 0;
}

unsigned fetch_file_drop_orphans(const char *downloads_dir, struct op_store *store)
{
    char dir[PATH_MAX];
    if (downloads_dir == NULL)
        return 0;
    snprintf(dir, sizeof(dir), "%s/%s", downloads_dir, FETCH_PARTIAL_DIR);
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    unsigned dropped = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint8_t id[OP_STORE_HASH_LEN];
        if (!part_name(e->d_name, id))
            continue;
        struct op_store_download row;
        bool found = false;
        if (op_store_download_get(store, id, &row, &found) != 0)
            break; /* cannot tell: keep everything */
        bool needed = found && row.state != OP_DOWNLOAD_COMPLETE;
        op_store_download_clear(&row);
        if (needed)
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0) {
            log_info("fetch", "deleted %s/%s: no download needs it (%s)", dir, e->d_name,
                     found ? "the download is complete" : "no such download");
            dropped++;
        } else {
            log_warn("fetch", "cannot delete %s/%s: %s", dir, e->d_name, strerror(errno));
        }
    }
    closedir(d);
    return dropped;
}

void fetch_file_safe_name(const char *name, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *p = name; *p && o + 1 < outlen && o < FETCH_NAME_MAX; p++) {
        unsigned char c = (unsigned char)*p;
        if (o == 0 && c == '.')
            continue; /* no hidden files, no "..": a name, not a path */
        out[o++] = (c < 0x20 || c == 0x7f || c == '/' || c == '\\') ? '_' : (char)c;
    }
    if (o == 0 && outlen > 8)
        o = (size_t)snprintf(out, outlen, "download");
    out[o] = '\0';
}

/* Link the part file to a free name (link(2) never replaces an existing
 * file), then drop the part name. */
static int place_unique(const char *from, const char *dir, const char *name, char **path)
{
    char safe[FETCH_NAME_MAX + 1];
    fetch_file_safe_name(name, safe, sizeof(safe));
    const char *dot = strrchr(safe, '.');
    int stem = dot && dot != safe ? (int)(dot - safe) : (int)strlen(safe);
    char candidate[PATH_MAX];
    for (int i = 0; i < FETCH_UNIQUE_TRIES; i++) {
        if (i == 0)
            snprintf(candidate, sizeof(candidate), "%s/%s", dir, safe);
        else
            snprintf(candidate, sizeof(candidate), "%s/%.*s (%d)%s", dir, stem, safe, i,
                     safe + stem);
        if (link(from, candidate) == 0) {
            unlink(from);
            *path = strdup(candidate);
            return *path ? 0 : SOVA_ERR_NOMEM;
        }
        if (errno != EEXIST)
            return SOVA_ERR_IO;
    }
    errno = EEXIST;
    return SOVA_ERR_IO;
}

int fetch_file_commit(struct fetch_file *ff, const char *downloads_dir, const char *name,
                      const char *out_path, char **path, char *err, size_t errlen)
{
    if (sync_pending(ff) != 0 || fsync(ff->fd) != 0) {
        snprintf(err, errlen, "cannot sync %s: %s", ff->part_path, strerror(errno));
        return SOVA_ERR_IO;
    }
    fchmod(ff->fd, 0644);
    int rc;
    if (out_path != NULL) {
        rc = link(ff->part_path, out_path) == 0 ? 0 : SOVA_ERR_IO;
        if (rc == 0) {
            unlink(ff->part_path);
            *path = strdup(out_path);
            rc = *path ? 0 : SOVA_ERR_NOMEM;
        }
    } else {
        rc = place_unique(ff->part_path, downloads_dir, name, path);
    }
    if (rc != 0) {
        snprintf(err, errlen, "cannot move the finished file to %s: %s",
                 out_path ? out_path : downloads_dir,
                 errno == EXDEV ? "--out must be on the same file system as the downloads folder"
                                : strerror(errno));
        return rc;
    }
    char *slash = strrchr(*path, '/');
    if (slash != NULL) {
        *slash = '\0';
        fsync_dir(*path[0] ? *path : "/");
        *slash = '/';
    }
    fetch_file_close(ff);
    return 0;
}

void fetch_file_close(struct fetch_file *ff)
{
    if (ff == NULL)
        return;
    if (ff->fd >= 0) {
        sync_pending(ff); /* keep what we have for the next run */
        close(ff->fd);
    }
    if (ff->step)
        event_free(ff->step);
    if (ff->sync_timer)
        event_free(ff->sync_timer);
    EVP_MD_CTX_free(ff->md);
    free(ff->on_disk);
    free(ff->buf);
    free(ff->part_path);
    free(ff);
}
