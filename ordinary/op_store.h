/* op_store.h - the ordinary peer's persistent state: one SQLite database,
 * STATE_DIR/peer.db. docs/STATE.md describes the schema, the migrations and
 * why a crash never marks an unverified chunk as verified.
 *
 * What it keeps:
 *   - the share cache: the file ID, root, SHA-256 and kept layer of shared
 *     files keyed by (path, size, mtime, inode), so a restart does not
 *     re-hash the share (op_share.c fills it);
 *   - downloads: the file ID, the size and manifest (the layer at the chunk
 *     size chosen) once a manifest was checked against the ID, the bitmap
 *     of verified chunks, so a download resumes after any crash; where a
 *     finished one went and its SHA-256; why the last attempt failed;
 *   - bad sources: how often a peer sent data that failed verification,
 *     and whether (and why) it is banned for the download;
 *   - downloads made by sova-peer before file IDs (schema 1), as history;
 *   - the supernode host cache;
 *   - the share folders added at run time.
 *
 * Connections and threads. A struct op_store is one SQLite connection in WAL
 * mode: any number of readers and one writer at a time, across connections
 * and processes. Use one struct op_store per thread (the daemon's loop has
 * one, the share hashing thread its own); a struct may move between threads
 * but must not be used by two at once.
 *
 * Blocking. Every call does disk I/O on the calling thread: commits fsync
 * (synchronous=FULL) and a call waits up to OP_STORE_BUSY_TIMEOUT_MS while
 * another connection writes. Calls are short by design (one row, one
 * statement): the daemon makes the single-row ones on its event loop; the
 * bulk ones (share upserts, prune, listing the share cache) belong on the
 * hashing thread. Nobody holds the write lock while hashing or waiting on
 * the network.
 *
 * Errors. Functions return 0 or a negative enum sova_err:
 *   SOVA_ERR_IO       SQLite failed (disk, corruption, busy past the timeout);
 *   SOVA_ERR_VERSION  the database was written by a newer Sova (open only);
 *   SOVA_ERR_INVALID  a bad argument, or the row does not allow the call
 *                     (no such download, wrong manifest length ...);
 *   SOVA_ERR_NOMEM    out of memory.
 * After a failure op_store_errmsg() holds one line saying what failed.
 * Lookups that may find nothing return 0 and set *found; their output
 * struct is zeroed first, so clearing it is always safe.
 *
 * Ownership. Structs filled by a lookup own their strings and blobs; release
 * them with op_store_share_clear()/op_store_download_clear(). Structs passed
 * to a foreach callback are borrowed for the call. Input structs and
 * pointers are only read.
 */
#ifndef SOVA_OP_STORE_H
#define SOVA_OP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OP_STORE_FILENAME        "peer.db" /* inside the state directory */
#define OP_STORE_SCHEMA_VERSION  3         /* PRAGMA user_version this code writes */
#define OP_STORE_BUSY_TIMEOUT_MS 5000      /* wait this long for another writer */
#define OP_STORE_HASH_LEN        32        /* file IDs, roots, SHA-256s, peer IDs */
#define OP_STORE_ERR_MAX         256       /* bytes of an error message */

struct op_store;

/* Open (creating if needed) the database at path, switch it to WAL, and
 * migrate it to OP_STORE_SCHEMA_VERSION. A database from a newer version is
 * refused with SOVA_ERR_VERSION and left untouched. From schema 1 (files
 * known by their SHA-256): the share cache is emptied (the next scan
 * hashes again), and downloads move to the history of op_store_legacy_*
 * (those not complete as failed, OP_STORE_LEGACY_REASON). On error *out is
 * NULL and err (may be NULL) says why, naming the file. */
#define OP_STORE_LEGACY_REASON "made by an older Sova: file IDs changed; search and get it again"
int op_store_open(const char *path, struct op_store **out, char *err, size_t errlen);
/* Finalize statements and close. NULL is fine. */
void op_store_close(struct op_store *st);
/* One line about the last failure on this connection; "" if none. */
const char *op_store_errmsg(const struct op_store *st);

/* ---- share cache ------------------------------------------------------------- */
struct op_store_share {
    char *path;       /* absolute: the share folder's path, '/', the path in it */
    uint64_t size;    /* bytes */
    int64_t mtime_ns; /* modification time, ns since the epoch */
    uint64_t inode;
    uint8_t id[OP_STORE_HASH_LEN];     /* the file ID (fileid.h) */
    uint8_t root[OP_STORE_HASH_LEN];   /* its tree's root */
    uint8_t sha256[OP_STORE_HASH_LEN]; /* SHA-256 of the whole file */
    uint32_t layer_height;             /* 0..FILEID_MAX_HEIGHT: the kept layer */
    uint32_t n_layer;                  /* fileid_chunks(size, layer_height) */
    uint8_t *layer;                    /* n_layer * 32 bytes; NULL when n_layer == 0 */
    /* Hashed so soon after its last modification that an unchanged mtime
     * does not prove unchanged content (the file system's timestamp
     * granularity): the row names the file but is never reused. */
    bool racy;
};

void op_store_share_clear(struct op_store_share *s);

/* The cached row of path if it has exactly this size, mtime and inode and
 * is not racy; *found false otherwise. */
int op_store_share_lookup(struct op_store *st, const char *path, uint64_t size, int64_t mtime_ns,
                          uint64_t inode, struct op_store_share *out, bool *found);
/* Insert or replace rows[0..n) (keyed by path) in one transaction. */
int op_store_share_upsert(struct op_store *st, const struct op_store_share *rows, size_t n);
/* Delete every row whose path is not in paths[0..n) (the files the latest
 * scan saw), in one DELETE; *n_deleted (may be NULL) counts them. The paths
 * are staged in a temporary table first, without holding the write lock. */
int op_store_share_prune(struct op_store *st, const char *const *paths, size_t n,
                         uint64_t *n_deleted);

/* Called once per row; the row is borrowed for the call. A nonzero return
 * stops the walk and is returned by the foreach. The callback must not use
 * the same struct op_store. */
typedef int op_store_share_fn(const struct op_store_share *row, void *arg);
/* Every row, ordered by path. */
int op_store_share_foreach(struct op_store *st, op_store_share_fn *fn, void *arg);
/* A row (the first by path) holding this file ID: for serving from a tool. */
int op_store_share_find_id(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                           struct op_store_share *out, bool *found);

/* ---- downloads --------------------------------------------------------------- */
enum op_download_state {
    OP_DOWNLOAD_ACTIVE = 0, /* wanted; resumes at start */
    OP_DOWNLOAD_COMPLETE,   /* every chunk verified, the file in place */
    OP_DOWNLOAD_FAILED,     /* the last attempt failed (error says why); `get` tries again */
};

/* "active", "complete", "failed"; "?" for anything else. */
const char *op_download_state_name(enum op_download_state state);

/* A download. Nothing a source said is kept until it was checked: the
 * size, root and chunk hashes are those of a manifest that made the file
 * ID (has_manifest); before that only the hit's size hint is known, and
 * no part file exists. */
struct op_store_download {
    uint8_t id[OP_STORE_HASH_LEN]; /* the file ID: the key */
    char *name;                    /* file name from the search hit */
    uint64_t size_hint;            /* size from the hit: never trusted */
    uint32_t chunk_size;           /* asked of sources (MANIFEST_GET, GET) */
    bool has_manifest;             /* size, root and chunk_hashes were checked against the ID */
    uint64_t size;                 /* verified size; 0 without a manifest */
    uint8_t root[OP_STORE_HASH_LEN];
    uint32_t n_chunks;     /* ceil(size / chunk_size); 0 without a manifest */
    uint8_t *chunk_hashes; /* n_chunks * 32 bytes; NULL without a manifest or chunks */
    uint8_t *have;         /* verified chunks, (n_chunks + 7) / 8 bytes, see below */
    uint32_t n_have;       /* bits set in have */
    char *out_path;        /* where it is to go (--out); NULL: the downloads folder */
    char *path;            /* where the finished file was put; NULL until complete */
    bool has_sha256;       /* a complete download: the SHA-256 of the file */
    uint8_t sha256[OP_STORE_HASH_LEN];
    char *error; /* why the last attempt failed; NULL if it did not */
    enum op_download_state state;
    int64_t created, updated; /* unix seconds */
    /* transfer control (docs/TRANSFERS.md, "Queue, pause, cancel") */
    bool paused;       /* an active download the user paused: not started until resumed */
    unsigned priority; /* OP_STORE_PRIORITY_LOW .. _HIGH */
    int64_t seq;       /* its place in the queue: the order downloads were asked for */
};

#define OP_STORE_PRIORITY_LOW    0
#define OP_STORE_PRIORITY_NORMAL 1
#define OP_STORE_PRIORITY_HIGH   2

void op_store_download_clear(struct op_store_download *d);

/* Bitmap layout (have): chunk i is byte i / 8, mask 0x80 >> (i % 8). */
bool op_store_bitmap_get(const uint8_t *bitmap, uint32_t index);

/* Start tracking a download (state active, no manifest, nothing verified,
 * normal priority, last in the queue).
 * If id is already tracked nothing changes and *existed (may be NULL) is
 * true. name is required; chunk_size is a power of two; out_path may be
 * NULL. */
int op_store_download_create(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                             const char *name, uint64_t size_hint, uint32_t chunk_size,
                             const char *out_path, bool *existed);
int op_store_download_get(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                          struct op_store_download *out, bool *found);

/* Called once per download; borrowed; same rules as op_store_share_fn. */
typedef int op_store_download_fn(const struct op_store_download *d, void *arg);
/* Every download (or only the active ones: resume at start), oldest first. */
int op_store_download_foreach(struct op_store *st, bool active_only, op_store_download_fn *fn,
                              void *arg);

/* Record the manifest the caller checked against the ID (fileid_check_layer):
 * the file's size and root, and its n_chunks chunk hashes at the
 * download's chunk size (n_chunks must be ceil(size / chunk_size)). Setting
 * the same again changes nothing; anything else replaces it and clears the
 * bitmap (chunks verified against another manifest are not verified). Only
 * for an active download. */
int op_store_download_set_manifest(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                                   uint64_t size, const uint8_t root[OP_STORE_HASH_LEN],
                                   const uint8_t *chunk_hashes, uint32_t n_chunks);
/* Mark chunk index verified: one UPDATE, committed (fsync'd) before it
 * returns. The caller must have written AND fsync'd the chunk's bytes to the
 * part file first, so the bit never outlives the data it vouches for.
 * Needs an active download with a manifest and index < n_chunks. */
int op_store_download_mark_chunk(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                                 uint32_t index);
/* op_store_download_mark_chunk() for indices[0..n) in one transaction (one
 * fsync): all are marked or none. The same rule: their bytes are on disk
 * and fsync'ed first. */
int op_store_download_mark_chunks(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                                  const uint32_t *indices, size_t n);
/* A copy of the bitmap: *bitmap (malloc'd, caller frees; NULL when there
 * are no chunks or no manifest) of (*n_chunks + 7) / 8 bytes. */
int op_store_download_get_have(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                               uint8_t **bitmap, uint32_t *n_chunks);
/* The file is in place at path (its SHA-256 sha256): state complete.
 * Refused unless the download is active, has its manifest and every chunk
 * is verified. */
int op_store_download_complete(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                               const char *path, const uint8_t sha256[OP_STORE_HASH_LEN]);
/* The attempt failed: state failed, error says why (required). */
int op_store_download_fail(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                           const char *error);
/* Want it again (`get`): state active and not paused, the error, path and SHA-256
 * forgotten; out_path replaced when not NULL. With restart the verified
 * chunks are forgotten too (the finished file is gone: fetch it again; the
 * checked manifest stays). */
int op_store_download_activate(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                               const char *out_path, bool restart);
/* Pause (paused true) or resume an active download: only the flag changes
 * (verified chunks and the manifest stay). SOVA_ERR_INVALID when there is
 * no such download or it is not active. */
int op_store_download_set_paused(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                                 bool paused);
/* Its priority in the queue (OP_STORE_PRIORITY_*); any state. */
int op_store_download_set_priority(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                                   unsigned priority);
/* Forget a download and its bad sources. Deleting an unknown ID is 0. */
int op_store_download_delete(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN]);

/* ---- bad sources ------------------------------------------------------------- */
/* One more failure of peer_id for the download id (which must exist),
 * reason (required) saying what it did; *failures (may be NULL) gets the
 * new count. */
int op_store_bad_source_record(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                               const uint8_t peer_id[OP_STORE_HASH_LEN], const char *reason,
                               uint32_t *failures);
/* peer_id is banned for the download id, for reason (required): it is not
 * asked again, also after a restart or a retry. */
int op_store_bad_source_ban(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                            const uint8_t peer_id[OP_STORE_HASH_LEN], const char *reason);
/* Failures recorded so far (0 if none) and whether it is banned. */
int op_store_bad_source_get(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                            const uint8_t peer_id[OP_STORE_HASH_LEN], uint32_t *failures,
                            bool *banned);
struct op_store_bad_source {
    uint8_t peer_id[OP_STORE_HASH_LEN];
    uint32_t failures;
    bool banned;
    const char *reason; /* borrowed for the call */
    int64_t last_failure;
};
typedef int op_store_bad_source_fn(const struct op_store_bad_source *b, void *arg);
/* The bad sources of download id, the latest first; same rules as
 * op_store_share_fn. */
int op_store_bad_source_foreach(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                                op_store_bad_source_fn *fn, void *arg);

/* ---- downloads made before file IDs -------------------------------------------- */
/* A download of schema 1, known by the SHA-256 of the file: history only,
 * never resumed (its key is not a file ID). */
struct op_store_legacy {
    uint8_t sha256[OP_STORE_HASH_LEN];
    const char *name, *out_path, *error; /* borrowed; out_path and error may be NULL */
    uint64_t size;
    enum op_download_state state; /* complete or failed */
    int64_t created, updated;
};
typedef int op_store_legacy_fn(const struct op_store_legacy *l, void *arg);
int op_store_legacy_foreach(struct op_store *st, op_store_legacy_fn *fn, void *arg);

/* ---- supernode host cache ------------------------------------------------------ */
/* Supernodes this peer has heard of (SN_LIST), to bootstrap from when the
 * configured ones are gone. addrs: "HOST:PORT[,HOST:PORT...]". */
#define OP_STORE_HOSTS_MAX 64 /* rows op_store_host_foreach returns at most */

struct op_store_host {
    uint8_t sn_id[OP_STORE_HASH_LEN];
    char *addrs;
    int64_t last_seen; /* unix seconds */
    uint32_t failures; /* connection failures since it was last seen */
};

/* Insert or refresh a supernode (failures reset to 0). */
int op_store_host_put(struct op_store *st, const uint8_t sn_id[OP_STORE_HASH_LEN],
                      const char *addrs);
/* One more failed connection to it; unknown IDs are ignored. */
int op_store_host_failed(struct op_store *st, const uint8_t sn_id[OP_STORE_HASH_LEN]);
/* The cached supernodes, fewest failures first, then most recently seen;
 * rows are borrowed for the call; same rules as op_store_share_fn. */
typedef int op_store_host_fn(const struct op_store_host *h, void *arg);
int op_store_host_foreach(struct op_store *st, op_store_host_fn *fn, void *arg);

/* ---- share folders added at run time (`sova-peer share add`) ------------------ */
/* Remember the absolute path of a folder (no-op if known); forget one
 * (*removed says whether it was known). */
int op_store_folder_add(struct op_store *st, const char *path);
int op_store_folder_remove(struct op_store *st, const char *path, bool *removed);
/* Each folder, ordered by path; path is borrowed for the call. A nonzero
 * return stops the walk and is returned. */
typedef int op_store_folder_fn(const char *path, void *arg);
int op_store_folder_foreach(struct op_store *st, op_store_folder_fn *fn, void *arg);

#endif
