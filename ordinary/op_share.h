/* op_share.h - the shared folder: scan it, hash its files, and answer "which
 * file has this ID?" for serving.
 *
 * Hashing (docs/STATE.md): a file is known by its Sova file ID
 * (common/fileid.h): the root of a SHA-256 tree over its 16 KiB blocks,
 * bound to its size. One pass over the file computes the ID, the layer of
 * the tree at OP_SHARE_KEEP_HEIGHT (one hash per 64 KiB: a source answers
 * a MANIFEST of any chunk size from 64 KiB up from it), and the SHA-256 of
 * the whole file (what sha256sum prints, for people).
 *
 * What a scan shares: regular files under each share folder ("root"),
 * recursively, named by their path relative to their folder, and known to
 * the cache by their absolute path. It skips every symbolic link (to files
 * and to directories: nothing outside the root is ever reached, and no link
 * loop can exist), every entry whose name starts with '.', anything that is
 * not a regular file or directory, the excluded directories (the downloads'
 * temporary folder when it is inside the share), directories deeper than
 * OP_SHARE_MAX_DEPTH, and files whose name cannot travel in a PUBLISH (not
 * UTF-8, containing '\\', longer than WIRE_MAX_NAME_LEN_DEFAULT bytes). Paths
 * come only from walking the root; nothing received from the network is ever
 * turned into a path here. A folder's OP_SHARE_IGNORE_FILE lists more to
 * leave out (op_share_ignore.h); an ignored directory is not walked.
 *
 * The cache: a file whose (absolute path, size, mtime, inode) matches its
 * row in the store (op_store.h) is not read again. A file hashed within
 * OP_SHARE_RACY_NS of its mtime is hashed again by the next scan (its mtime
 * alone cannot prove that a same-size write did not follow within the file
 * system's timestamp granularity).
 *
 * Two ways to scan:
 *   - op_share_scan_once(): synchronous, on the caller's thread, with the
 *     caller's store. For tests and tools. Blocks for as long as hashing takes.
 *   - struct op_share: a worker thread with its own store connection.
 *     op_share_rescan() asks for a scan and returns at once; the result is
 *     delivered by a callback ON THE LOOP THREAD. The worker wakes the loop
 *     through a pipe watched by a libevent event (no libevent thread support
 *     is needed: only the loop thread touches libevent objects). Requests made
 *     while a scan runs are coalesced into one more scan after it.
 */
#ifndef SOVA_OP_SHARE_H
#define SOVA_OP_SHARE_H

#include "fileid.h"
#include "op_store.h"

#include <event2/event.h>
#include <sys/inotify.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The layer of a file's tree a share keeps: height 2, one hash per 64 KiB
 * (32 bytes per 65,536: 0.05 % of the file; 2 MiB for 4 GiB). Every chunk
 * size a downloader may ask for (MSG_CHUNK_SIZE_MIN = 64 KiB and up) is
 * computed from it without reading the file. */
#define OP_SHARE_KEEP_HEIGHT 2
#define OP_SHARE_KEEP_CHUNK  (FILEID_BLOCK << OP_SHARE_KEEP_HEIGHT) /* 64 KiB */
#define OP_SHARE_READ_BYTES  (1024u * 1024)                         /* bytes read at once */
#define OP_HASH_LEN          OP_STORE_HASH_LEN
#define OP_SHARE_RACY_NS     (2 * 1000000000LL) /* mtime this close to hashing: not trusted */
#define OP_SHARE_MAX_DEPTH   64                 /* directory levels below the root */
#define OP_SHARE_FLUSH_ROWS  256                /* hashed files per store transaction */
#define OP_SHARE_FLUSH_MS    1000               /* ... or at least this often */
#define OP_SHARE_ERR_MAX     256                /* bytes of an error message */
#define OP_SHARE_IGNORE_FILE ".sovaignore"      /* ignore patterns, one file per folder */
#define OP_SHARE_IGNORE_MAX  1024               /* patterns read from one .sovaignore */
#define OP_SHARE_NO_FOLDER   UINT32_MAX
/* What a scan watches with inotify (cfg->watch_fd): every directory it
 * walks, and each folder's parent (for the folder itself leaving or
 * coming back). */
#define OP_SHARE_WATCH_DIR                                                                         \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_DELETE_SELF |       \
     IN_MOVE_SELF | IN_ONLYDIR)
#define OP_SHARE_WATCH_PARENT (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR)

/* One shared file. Strings and the layer are owned by the result that
 * holds the file. */
struct op_share_file {
    char *path;          /* absolute: its folder's path, '/', relpath (the store's key) */
    const char *relpath; /* '/'-separated, relative to its share folder: points into path */
    const char *name;    /* basename: points into path */
    uint32_t folder;     /* index into the result's folders[]; OP_SHARE_NO_FOLDER if none */
    uint64_t size;
    uint8_t id[OP_HASH_LEN];     /* the Sova file ID: commits to size and root */
    uint8_t root[OP_HASH_LEN];   /* the root of the tree (fileid.h) */
    uint8_t sha256[OP_HASH_LEN]; /* of the whole file, for people */
    uint32_t n_layer;            /* fileid_chunks(size, OP_SHARE_KEEP_HEIGHT) */
    uint8_t *layer;              /* n_layer * 32 bytes; NULL in removed/before entries */
    int64_t mtime_ns;            /* as hashed: see op_share_file_unchanged() */
    uint64_t inode;
};

/* A file whose content changed: now points into files[], before is the
 * previous state (without its layer). */
struct op_share_change {
    const struct op_share_file *now;
    struct op_share_file before;
};

/* The outcome of one scan. Read-only for its users.
 *
 * The change lists compare this scan with the previous one: the previous
 * result of the same struct op_share, or (for the first scan, and for
 * op_share_scan_once) what the store remembered from the last scan. They are
 * per path: "changed" means the same path now has different content. An ID
 * may be shared under several paths, so before PUBLISHing a removal check
 * op_share_result_lookup() on the new result. After (re)attaching to a
 * supernode publish files[], not the deltas. */
/* One share folder as the scan found it. */
struct op_share_folder {
    char *path;   /* as configured (absolute) */
    bool missing; /* could not be opened: its files are not shared (error says why) */
    char error[OP_SHARE_ERR_MAX];
    size_t n_files; /* shared from it */
    uint64_t bytes;
    uint32_t n_ignored;  /* entries left out by its .sovaignore */
    uint32_t n_patterns; /* patterns read from its .sovaignore */
    int parent_wd;       /* the inotify watch of its parent folder, or -1 */
};

struct op_share_result {
    int status;                   /* 0, or the error that stopped the scan */
    char error[OP_SHARE_ERR_MAX]; /* what failed when status != 0 */
    struct op_share_file *files;  /* every shared file, sorted by relpath */
    size_t n_files;
    const struct op_share_file **added; /* new paths; point into files[] */
    size_t n_added;
    struct op_share_change *changed;
    size_t n_changed;
    struct op_share_file *removed; /* paths gone since the previous scan (old state) */
    size_t n_removed;
    uint64_t bytes_hashed; /* bytes read to hash: 0 when everything came from the cache */
    uint32_t files_hashed;
    uint32_t files_skipped;          /* unreadable, unpublishable name, or changing while hashed */
    struct op_share_folder *folders; /* one per configured folder, in the config's order */
    size_t n_folders;
};

/* The folders: folders[0..n_folders), or share_root alone when n_folders
 * is 0 (none when it is NULL too: a scan then finds every file of the
 * store removed). Absolute paths, none inside another. */
struct op_share_config {
    const char *share_root;     /* the shared folder (n_folders == 0) */
    const char *const *folders; /* several shared folders */
    size_t n_folders;
    /* A folder that cannot be opened: false, the scan fails; true, it is
     * reported in folders[] as missing, its files count as removed, and
     * the others are scanned. */
    bool missing_ok;
    /* With watch, watch_fd is an inotify descriptor: the scan adds a watch
     * for each directory it walks (OP_SHARE_WATCH_DIR, before listing it)
     * and for each folder's parent (OP_SHARE_WATCH_PARENT). Its owner reads
     * it, and closes it only after op_share_free(). */
    bool watch;
    int watch_fd;
    const char *const *exclude_dirs; /* directories never shared (may be outside the root) */
    size_t n_exclude_dirs;
};

/* ---- synchronous scan ------------------------------------------------------------ */
/* Scan cfg->share_root now, on this thread, using and updating st. On
 * success *out is the result (free with op_share_result_free). On error *out
 * is NULL and err says why; the store keeps whatever was committed. */
int op_share_scan_once(struct op_store *st, const struct op_share_config *cfg,
                       struct op_share_result **out, char *err, size_t errlen);
void op_share_result_free(struct op_share_result *res);

/* The file (first by relpath) with this file ID in res, or NULL. */
const struct op_share_file *op_share_result_lookup(const struct op_share_result *res,
                                                   const uint8_t id[OP_HASH_LEN]);

/* ---- hashing one file -------------------------------------------------------------- */
/* What one pass over a file gives. */
struct op_share_hashes {
    uint64_t size; /* bytes read */
    uint8_t id[OP_HASH_LEN], root[OP_HASH_LEN], sha256[OP_HASH_LEN];
    uint8_t *layer; /* the layer at keep_height, malloc'ed (NULL for an empty file) */
    size_t n_layer;
};
/* Read fd from its offset to its end, size bytes expected (fewer: the
 * file shrank; SOVA_ERR_IO), through buf (OP_SHARE_READ_BYTES bytes), and
 * hash it: the file ID, root and layer at keep_height, and its SHA-256.
 * cancel (may be NULL) is polled between reads (OP_SHARE_CANCELLED when
 * it is set: nothing is handed over). *read_bytes (may be NULL) counts what
 * was read. 0, OP_SHARE_CANCELLED, SOVA_ERR_IO (errno says why),
 * SOVA_ERR_NOMEM or SOVA_ERR_CRYPTO. Blocks: call it off the loop. */
#define OP_SHARE_CANCELLED 1
int op_share_hash_fd(int fd, uint64_t size, unsigned keep_height, const atomic_bool *cancel,
                     uint8_t *buf, struct op_share_hashes *out, uint64_t *read_bytes);
void op_share_hashes_clear(struct op_share_hashes *h);

/* ---- the worker ---------------------------------------------------------------------- */
struct op_share;

/* Runs on the loop thread after each finished scan, in order. res is
 * borrowed: a successful one stays valid (it is what op_share_lookup reads)
 * until the next callback returns or op_share_free(); a failed one
 * (res->status != 0) only during the call, and the previous successful
 * result stays current. The callback must not call op_share_free(). */
typedef void op_share_done_fn(const struct op_share_result *res, void *arg);

/* Open the store at db_path (a connection of the worker's own), start the
 * worker thread, and watch its wake-up pipe on base. cfg is copied. No scan
 * starts until op_share_rescan(). On error *out is NULL and err says why
 * (e.g. SOVA_ERR_VERSION from the store). Call on the loop thread. */
int op_share_new(struct event_base *base, const struct op_share_config *cfg, const char *db_path,
                 op_share_done_fn *cb, void *arg, struct op_share **out, char *err, size_t errlen);
/* Ask for a scan; coalesced with one already pending. Never blocks. */
void op_share_rescan(struct op_share *sh);
/* True from op_share_rescan() until its result has been delivered. */
bool op_share_busy(const struct op_share *sh);
/* Cancel a scan in progress (at the next chunk), join the worker, drop
 * undelivered results, close the store. NULL is fine. Loop thread only. */
void op_share_free(struct op_share *sh);

/* The last successful result delivered on the loop, or NULL before the
 * first. Borrowed, as in op_share_done_fn. */
const struct op_share_result *op_share_current(const struct op_share *sh);
/* op_share_result_lookup() on op_share_current(): no store access. */
const struct op_share_file *op_share_lookup(const struct op_share *sh,
                                            const uint8_t id[OP_HASH_LEN]);
/* f's absolute path into buf. 0, or SOVA_ERR_INVALID if it does not fit. */
int op_share_abspath(const struct op_share *sh, const struct op_share_file *f, char *buf,
                     size_t cap);

/* ---- serving ------------------------------------------------------------------------ */
/* True if the open file fd still has f's size, mtime and inode: only then
 * may its bytes be served under f's ID. One fstat(2). */
bool op_share_file_unchanged(const struct op_share_file *f, int fd);

#endif
