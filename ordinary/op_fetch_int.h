/* op_fetch_int.h - what op_fetch.c (downloads: their life and the queue),
 * op_fetch_source.c (one source of a download: its link, manifest, chunks)
 * and op_fetch_control.c (get and transfer control, calling the other two)
 * share. Private to those files. */
#ifndef SOVA_OP_FETCH_INT_H
#define SOVA_OP_FETCH_INT_H

#if !defined(SOVA_OP_FETCH_INTERNAL)
#error "op_fetch_int.h is private to ordinary/op_fetch*.c"
#endif

#include "op_bw.h"
#include "op_fetch.h"
#include "op_fetch_file.h"
#include "op_sched.h"
#include "dial_race.h"
#include "nat_punch.h"

#include <stdarg.h>

#define FETCH_RETRY_MIN_MS      500   /* first reconnect to a source */
#define FETCH_RETRY_MAX_MS      10000 /* reconnect cap */
#define FETCH_TICK_MS           1000  /* progress heartbeat and stall checks */
#define FETCH_NOTIFY_MIN_MS     200   /* progress to watchers at most this often */
#define FETCH_FIND_SOURCES_MS   10000 /* ask the supernode again when stalled this long */
#define FETCH_MANIFEST_PAGE     1024  /* chunk hashes asked per MANIFEST_GET */
#define FETCH_DIRECT_MAX_ADDRS  3     /* addresses of a source tried directly per round */
#define FETCH_DIRECT_RACE_MS    3000  /* the race to them, when no direct timeout is set */
#define FETCH_DISK_RETRY_MS     5000  /* a download waiting for disk space tries again this often */
#define FETCH_STALL_MS          20000 /* a source we wait for, silent this long, is dropped */
#define FETCH_BW_MIN_BURST      (64u * 1024) /* a limited bucket saves at least this */
#define FETCH_NO_SOURCE_MS      10000        /* every source banned or refused this long: failed */
#define FETCH_NO_SOURCE_FIND_MS 2500         /* ... meanwhile the supernode is asked this often */
#define FETCH_LOCAL_PER_TURN    4            /* chunks copied from a finished file per loop turn */
#define FETCH_SOURCES_WANTED    16           /* hits asked for when looking for sources by ID */
#define FETCH_QUEUE_TICK_MS     1000  /* queued downloads' watchers hear from them this often */
#define FETCH_UPGRADE_MS        5000  /* a source on a relay: is a cheaper way possible now? */
#define FETCH_UPGRADE_RETRY_MS  30000 /* ... after a cheaper way failed in the background */

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
    char
        route[112]; /* the way being tried or used, in words ("direct: LAN 10.1.0.11:7071, IPv4") */
    size_t n_addrs, next_addr;
    uint8_t reach; /* enum msg_reachability, from the hit or a LOCATE */
    enum source_state state;
    struct link *link;
    struct event *retry;
    /* the connection ladder (nat_path.h) */
    enum nat_path path;   /* being tried (CONNECTING) or in use (OPEN) */
    enum nat_path failed; /* the last way that failed this round */
    unsigned direct_tries;
    struct dial_race *race; /* direct to several addresses at once (Happy Eyeballs) */
    struct sockaddr_storage race_addrs[FETCH_DIRECT_MAX_ADDRS];
    socklen_t race_lens[FETCH_DIRECT_MAX_ADDRS];
    uint8_t race_index[FETCH_DIRECT_MAX_ADDRS]; /* race_addrs[i] is addrs[race_index[i]] */
    uint8_t token[WIRE_TOKEN_LEN];              /* reversal or relay */
    struct nat_relay_circuit *circuit;          /* a relay circuit opening */
    struct nat_punch *punch;                    /* a hole punch: our end, bound to its port */
    uint64_t punch_sent_ms;                     /* the OFFER left (the round trip to READY) */
    /* On a relay, a cheaper way tried in the background (the upgrade): the
     * transfer goes on over the relay until the probe's link opens, then
     * moves to it; verified chunks stay, what was in flight is asked again. */
    struct event *upgrade;     /* FETCH_UPGRADE_MS while on a relay */
    enum nat_path probe_path;  /* NAT_PATH_NONE: no probe */
    uint64_t upgrade_after_ms; /* a probe failed: none before this */
    struct link *probe;        /* its link, until it opens and takes over */
    char probe_route[112];
    uint8_t probe_token[WIRE_TOKEN_LEN]; /* a reversal probe: the source connects with it */
    struct event *path_timer;            /* reversal deadline */
    unsigned retry_ms;
    bool manifest_asked;
    struct fetch_chunk slots[OP_SCHED_PIPELINE];
    uint64_t bytes, bytes_this_tick, rate_bps; /* DATA received, for `sova-peer peers` */
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
    /* Why the download waits, in words (the disk is full), until a chunk
     * is written again; "" when it does not. */
    char waiting[384];
    char via[32];
    uint64_t run_started_ms; /* this run (download_start) */
    uint64_t first_byte_ms;  /* from then to the first DATA byte; 0 before */
    char route[112];         /* the way of the last source that opened (fetch_source.route) */
    /* the queue (op_fetch_queue.c) */
    unsigned priority;          /* OP_STORE_PRIORITY_* */
    int64_t seq;                /* the store's order of asking */
    uint32_t chunks_have_saved; /* verified chunks while not running (no scheduler) */
    bool cancelled;             /* the final report says cancelled, not failed */
    /* bandwidth (op_bw.h): this download's own limit, and reading held
     * while its bucket or the fetcher's is in debt */
    struct op_bw_bucket bw;
    uint64_t limit_bps;      /* 0: none of its own */
    struct event *bw_timer;  /* the debt of bw is paid */
    bool bw_wait;            /* bw is in debt: its sources' reading is held */
    uint64_t bw_released_ms; /* reading last let go (the stall check waits from then) */
    uint64_t bytes_in;       /* DATA bytes received in this run */
};

struct op_fetcher {
    struct op_fetch_env env;
    struct download *downloads;
    struct link_params direct_params; /* env->params with the direct timeout */
    unsigned max_active;              /* downloads running at once; 0: no limit */
    struct event *queue_tick;         /* FETCH_QUEUE_TICK_MS: queued watchers, the queue */
    struct op_bw_bucket bw;           /* every download together (download limit) */
    struct event *bw_timer;           /* its debt is paid */
    bool bw_wait;                     /* in debt: every source's reading is held */
    uint64_t bytes_in;                /* DATA bytes received by every download, this run */
};

/* op_fetch.c */
void download_pump(struct download *dl);
struct download *download_find(const struct op_fetcher *f, const uint8_t *id);
/* Tell the watchers (force: even within FETCH_NOTIFY_MIN_MS). A final
 * state (done, failed, paused) ends every watch. */
void download_notify(struct download *dl, bool force);
/* A queued download gets going: part file, sources, tick. On failure it
 * is failed (and reported) already. */
void download_start(struct download *dl);
/* A running download stops (to OP_FETCH_QUEUED or OP_FETCH_PAUSED): its
 * sources are let go, its verified chunks made durable and kept, its part
 * file closed. Not from inside a source's link hook. */
void download_suspend(struct download *dl, enum op_fetch_state to);
/* Out of the list and freed (no call to watchers). */
void download_unlink(struct op_fetcher *f, struct download *dl);

void download_progress(const struct download *dl, struct op_fetch_progress *p);
/* Stop reading a finished copy (why: it failed, say so; NULL: done). */
void download_local_end(struct download *dl, const char *why);
/* A download in memory from its stored row (queued, or paused), first in
 * the fetcher's list; nothing started. */
int download_open(struct op_fetcher *f, const struct op_store_download *row, struct download **out,
                  char *err, size_t errlen);
/* The queue. Start queued downloads while fewer than max_active run: the
 * highest priority first, then the oldest. now: at once (from a control
 * request); else on the next loop turn (from inside a download's end). */
void queue_schedule(struct op_fetcher *f, bool now);
/* Does a come before b in the queue's order? */
bool queue_before(const struct download *a, const struct download *b);
/* 1-based place of a queued download among the queued; 0 otherwise. */
unsigned queue_position(const struct download *dl);
int queue_init(struct op_fetcher *f);
void queue_free(struct op_fetcher *f);
/* n DATA bytes arrived for dl: charge the buckets; hold reading while one
 * is in debt. */
void download_charge(struct download *dl, uint64_t n);
/* Hold or release dl's source links as the buckets say (a new link too). */
void download_apply_hold(struct download *dl);
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
/* The source connected to us for a reversal probe beside its relay (its
 * token was probe_token): the transfer moves to it. */
void source_adopt_probe(struct fetch_source *s, struct link *l);
/* A source on a relay: try a cheaper way beside it if the ladder now gives
 * one (its addresses or reachability changed). */
void source_try_upgrade(struct fetch_source *s);
/* The source's answer to our hole punch (token and sender checked). */
bool source_punch_note(struct fetch_source *s, const struct msg_punch_note *n);

#endif
