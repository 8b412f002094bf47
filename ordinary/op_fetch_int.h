/* op_fetch_int.h - what op_fetch.c (downloads) and op_fetch_source.c (one
 * source of a download: its link, manifest, chunks) share. Private to
 * those two files. */
#ifndef SOVA_OP_FETCH_INT_H
#define SOVA_OP_FETCH_INT_H

#if !defined(SOVA_OP_FETCH_INTERNAL)
#error "op_fetch_int.h is private to ordinary/op_fetch*.c"
#endif

#include "op_fetch.h"
#include "op_fetch_file.h"
#include "op_sched.h"

#include <stdarg.h>

#define FETCH_RETRY_MIN_MS      500   /* first reconnect to a source */
#define FETCH_RETRY_MAX_MS      10000 /* reconnect cap */
#define FETCH_TICK_MS           1000  /* progress heartbeat and stall checks */
#define FETCH_NOTIFY_MIN_MS     200   /* progress to watchers at most this often */
#define FETCH_FIND_SOURCES_MS   10000 /* ask the supernode again when stalled this long */
#define FETCH_MANIFEST_PAGE     1024  /* chunk hashes asked per MANIFEST_GET */
#define FETCH_DIRECT_MAX_ADDRS  3     /* addresses of a source tried directly per round */
#define FETCH_DISK_RETRY_MS     5000  /* a download waiting for disk space tries again this often */
#define FETCH_STALL_MS          20000 /* a source we wait for, silent this long, is dropped */
#define FETCH_NO_SOURCE_MS      10000 /* every source banned or refused this long: failed */
#define FETCH_NO_SOURCE_FIND_MS 2500  /* ... meanwhile the supernode is asked this often */
#define FETCH_LOCAL_PER_TURN    4     /* chunks copied from a finished file per loop turn */
#define FETCH_SOURCES_WANTED    16    /* hits asked for when looking for sources by ID */

struct fetch_chunk { /* a chunk being received from one source */
    int64_t index;   /* -1: slot free */
    uint32_t got;
    uint32_t len;
    uint8_t *data; /* len bytes, allocated once per slot */
    uint32_t cap;
};

enum source_state { SRC_IDLE, SRC_CONNECTING, SRC_OPEN, SRC_BANNED };

struct fetch_source {
    struct download *dl;
    unsigned idx; /* scheduler index */
    uint8_t peer_id[WIRE_ID_LEN];
    char short_id[NODE_ID_SHORT_LEN + 1];
    struct wire_addr addrs[WIRE_MAX_ADDRS];
    size_t n_addrs, next_addr;
    uint8_t reach; /* enum msg_reachability, from the hit or a LOCATE */
    enum source_state state;
    struct link *link;
    struct event *retry;
    /* the connection ladder (nat_path.h) */
    enum nat_path path;   /* being tried (CONNECTING) or in use (OPEN) */
    enum nat_path failed; /* the last way that failed this round */
    unsigned direct_tries;
    uint8_t token[WIRE_TOKEN_LEN];     /* reversal or relay */
    struct nat_relay_circuit *circuit; /* a relay circuit opening */
    struct event *path_timer;          /* reversal deadline */
    unsigned retry_ms;
    bool manifest_asked;
    struct fetch_chunk slots[OP_SCHED_PIPELINE];
};

struct op_fetch_watch {
    struct download *dl;
    op_fetch_watch_fn *fn;
    void *arg;
    struct op_fetch_watch *next;
};

/* A manifest being received from one source: nothing in it is trusted
 * until the size and root made the ID (the first page) and the chunk
 * hashes made the root (the last). */
struct manifest_in {
    struct fetch_source *from; /* asked; NULL when none is out */
    bool started;              /* the first page came: size and root made the ID */
    uint64_t size;
    uint8_t root[WIRE_HASH_LEN];
    uint32_t n_chunks;
    uint32_t have; /* hashes received so far (paged) */
    uint8_t *hashes;
};

struct download {
    struct op_fetcher *f;
    struct download *next;
    uint8_t id[WIRE_HASH_LEN];
    char hex[2 * WIRE_HASH_LEN + 1];
    char *name;
    char *out_path; /* requested, may be NULL */
    uint64_t size_hint;
    uint32_t chunk_size;
    unsigned height; /* fileid_height_of(chunk_size) */
    /* the checked manifest */
    bool has_manifest;
    uint64_t size;
    uint8_t root[WIRE_HASH_LEN];
    uint32_t n_chunks;
    uint8_t *chunk_hashes; /* n_chunks * 32 */
    struct manifest_in m;
    struct op_sched *sched; /* once the manifest is checked */
    struct fetch_file *file;
    /* get --out of a finished file: its chunks are read from there first */
    int local_fd;
    char *local_path;
    uint32_t local_next;
    struct event *local_step;
    struct fetch_source sources[OP_SCHED_MAX_SOURCES];
    unsigned n_sources;
    struct op_fetch_watch *watchers;
    struct event *tick;
    enum op_fetch_state state;
    char *final_path;
    uint8_t sha256[WIRE_HASH_LEN]; /* of the finished file */
    char error[256];
    char last_ban[160];          /* "ABCDEFGH: why", the last source banned */
    uint64_t no_source_since_ms; /* every source banned or refused since; 0: one is usable */
    bool banned_seen;            /* a source banned earlier was named again (and left out) */
    uint32_t chunks_fetched, chunks_failed;
    uint64_t rate_bps, bytes_this_tick;
    uint64_t last_notify_ms, last_progress_ms, last_find_ms;
    unsigned paths_used;   /* bit (1 << enum nat_path) per way a source was reached */
    uint64_t disk_full_ms; /* when a chunk last could not be written; 0: room */
    char via[32];
};

struct op_fetcher {
    struct op_fetch_env env;
    struct download *downloads;
    struct link_params direct_params; /* env->params with the direct timeout */
};

/* op_fetch.c */
void download_pump(struct download *dl);
/* The disk is full: stop asking for chunks, try again every
 * FETCH_DISK_RETRY_MS; what is verified stays. */
void download_disk_full(struct download *dl, const char *why);
void download_fail(struct download *dl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fetch_set_timer_ms(struct event *ev, unsigned ms);

/* A source was banned for this download (why says what it did), or
 * refused: remember it for the failure message, look for others. */
void download_banned(struct download *dl, struct fetch_source *s, const char *why);
/* The manifest was just checked (dl->has_manifest): make the scheduler and
 * the part file at the verified size. 0, or the download failed. */
int download_manifest_ready(struct download *dl);

/* op_fetch_source.c */
/* Add (or refresh the addresses of) a source and start connecting to it. */
void source_add(struct download *dl, const struct msg_source *src);
struct fetch_source *source_find(struct download *dl, const uint8_t peer_id[WIRE_ID_LEN]);
void source_set_addrs(struct fetch_source *s, const struct wire_addr *addrs, size_t n);
/* Ask source for the next page of the manifest (the first: size and root). */
void source_send_manifest_get(struct fetch_source *s);
/* Give source as many chunk requests as its pipeline allows. */
void source_request(struct fetch_source *s);
/* Does the source owe us something (a chunk or a manifest page)? */
bool source_waiting(const struct fetch_source *s);
/* Stop whatever the source is doing (download ended); frees nothing. */
void source_stop(struct fetch_source *s);
/* Free what the source holds (download freed). */
void source_free(struct fetch_source *s);
/* A reversal link for s (token and identity checked): take it. */
void source_adopt(struct fetch_source *s, struct link *l);

#endif
