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

#define FETCH_RETRY_MIN_MS     500   /* first reconnect to a source */
#define FETCH_RETRY_MAX_MS     10000 /* reconnect cap */
#define FETCH_TICK_MS          1000  /* progress heartbeat and stall checks */
#define FETCH_NOTIFY_MIN_MS    200   /* progress to watchers at most this often */
#define FETCH_FIND_SOURCES_MS  10000 /* ask the supernode again when stalled this long */
#define FETCH_MANIFEST_PAGE    1024  /* chunk hashes asked per MANIFEST_GET */
#define FETCH_DIRECT_MAX_ADDRS 3     /* addresses of a source tried directly per round */
#define FETCH_DISK_RETRY_MS    5000  /* a download waiting for disk space tries again this often */
#define FETCH_STALL_MS         20000 /* a source we wait for, silent this long, is dropped */

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

struct download {
    struct op_fetcher *f;
    struct download *next;
    uint8_t hash[WIRE_HASH_LEN];
    char hex[2 * WIRE_HASH_LEN + 1];
    char *name;
    char *out_path; /* requested, may be NULL */
    uint64_t size;
    uint32_t chunk_size, n_chunks;
    uint8_t *chunk_hashes;  /* n_chunks * 32, once known */
    uint32_t manifest_have; /* hashes received so far (paged) */
    struct fetch_source *manifest_from;
    struct op_sched *sched;
    struct fetch_file *file;
    struct fetch_source sources[OP_SCHED_MAX_SOURCES];
    unsigned n_sources;
    struct op_fetch_watch *watchers;
    struct event *tick;
    enum op_fetch_state state;
    char *final_path;
    char error[256];
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

/* op_fetch_source.c */
/* Add (or refresh the addresses of) a source and start connecting to it. */
void source_add(struct download *dl, const struct msg_source *src);
struct fetch_source *source_find(struct download *dl, const uint8_t peer_id[WIRE_ID_LEN]);
void source_set_addrs(struct fetch_source *s, const struct wire_addr *addrs, size_t n);
/* Ask source for the next page of the manifest. */
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
