/* op_fetch.h - downloads: pull a file by its file ID from its sources,
 * verify every chunk against the ID, survive any interruption and any lie.
 *
 * The file ID commits to the file's size and to the root of its hash tree
 * (common/fileid.h), so nothing a source says is taken on trust:
 *  - the manifest (the layer of the tree at the chunk size this peer
 *    chose, with the size and root) is checked against the ID before any
 *    chunk is asked for: the size and root on its first page, the chunk
 *    hashes once the last page is in. A source whose manifest does not
 *    make the ID (a false size, false hashes, another chunk size than
 *    asked, a wrong count) is banned for the download and reported (REPORT
 *    bad data); what it sent is dropped and the next source is asked;
 *  - until a manifest is checked the download has no size (the hit's is a
 *    hint) and no part file;
 *  - each chunk is checked against the checked manifest; a source whose
 *    chunks fail OP_SCHED_MAX_FAILURES times is banned and reported.
 * A download keeps (docs/STATE.md): a part file DOWNLOADS/.sova-partial/
 * <hex>.part at the verified size, written at chunk offsets (a chunk's
 * bytes are fsync'ed before its bit is set in SQLite, so a crash never
 * leaves a "verified" chunk that is not on disk); the checked manifest and
 * the bitmap of verified chunks, in op_store. When every chunk is in, the
 * whole file's SHA-256 is computed (for people: sha256sum shows the same)
 * and the file is linked into place. Restarted daemons resume active
 * downloads from the store.
 *
 * No download fails for ever because of one source: bans are per source;
 * when every known source is banned or refused, the supernode is asked
 * again and after FETCH_NO_SOURCE_MS without a new one the download fails,
 * saying which source was banned and why; `get` again retries it (the
 * banned sources stay banned, verified chunks stay verified).
 *
 * Each source is another peer, reached directly over TLS with the
 * peer<->peer policy (its certificate must hash to the ID in the hit), or
 * by reversal or a relay circuit. The scheduler (op_sched.h) spreads
 * chunks over sources.
 *
 * Ownership: the fetcher owns its downloads, their links and files. Watchers
 * (a control-socket client following `sova-peer get`) are owned by the
 * fetcher and removed with op_fetch_unwatch() or when the download ends.
 * Nothing blocks on the network; disk writes and fsyncs of chunk data happen
 * on the loop (bounded: one chunk at a time).
 */
#ifndef SOVA_OP_FETCH_H
#define SOVA_OP_FETCH_H

#include "link.h"
#include "msg.h"
#include "nat_path.h"
#include "nat_relay.h"
#include "op_store.h"
#include "tls.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

/* What the daemon knows of us, for the connection ladder. */
struct op_fetch_self {
    uint8_t reach;             /* enum msg_reachability: ours, from the dial-back */
    bool attached;             /* a primary supernode */
    bool relay_offered;        /* it relays */
    bool punch_offered;        /* it carries hole-punch notes */
    uint8_t nat;               /* enum nat_type: what our NAT does to ports */
    struct wire_addr observed; /* our address as it sees us */
    bool has_observed;
};

/* What the fetcher needs from its daemon. */
struct op_fetch_progress;

struct op_fetch_env {
    struct event_base *base;
    struct tls_ctx *tls;
    struct op_store *store;
    const struct link_params *params; /* for links to sources */
    const char *downloads_dir;
    /* Ask the supernode where peer_id is now (LOCATE); the daemon answers
     * with op_fetch_located(). */
    void (*locate)(const uint8_t peer_id[WIRE_ID_LEN], void *arg);
    /* Ask the supernode for sources of a file (a search by file ID); the
     * daemon answers with op_fetch_add_sources(). */
    void (*find_sources)(const uint8_t id[WIRE_HASH_LEN], const char *name, void *arg);
    /* The connection ladder (docs/NAT.md): direct, else reversal, else a
     * hole punch, else a relay circuit. self() fills what we know of
     * ourselves; reverse() sends CONNECT (the source then connects to us
     * with token, and the daemon hands the link to op_fetch_adopt());
     * punch() sends a PUNCH note (the daemon hands the answers to
     * op_fetch_punch_note()); relay() opens a circuit (nat_relay_open()).
     * Each returns 0 or an error (then the next way). */
    void (*self)(struct op_fetch_self *out, void *arg);
    int (*reverse)(const uint8_t peer_id[WIRE_ID_LEN], const uint8_t token[WIRE_TOKEN_LEN],
                   void *arg);
    int (*relay)(const uint8_t peer_id[WIRE_ID_LEN], const uint8_t token[WIRE_TOKEN_LEN],
                 unsigned timeout_ms, nat_relay_open_fn *fn, void *fn_arg,
                 struct nat_relay_circuit **out, void *arg);
    int (*punch)(const struct msg_punch *note, void *arg);
    unsigned direct_timeout_ms, reversal_timeout_ms, punch_timeout_ms, relay_timeout_ms;
    unsigned ways;       /* bits 1 << enum nat_path allowed; 0 = all */
    unsigned max_active; /* downloads running at once, the rest queued; 0 = no limit */
    uint32_t chunk_size; /* asked of sources for new downloads: a power of two,
                            MSG_CHUNK_SIZE_MIN..MAX; 0 = OP_FETCH_CHUNK_SIZE */
    /* A source lied (MSG_REPORT_BAD_DATA: a manifest that does not make the
     * ID, or bad chunks) or refused (MSG_REPORT_REFUSED: said it does not
     * have the file): tell the supernode (REPORT). May be NULL. */
    void (*report)(const uint8_t peer_id[WIRE_ID_LEN], const uint8_t id[WIRE_HASH_LEN],
                   uint8_t reason, void *arg);
    /* Credit (docs/CREDITS.md): sign a receipt for `bytes` of the file id
     * (verified size and root) from source_id into *out; the fetcher sends
     * it to the source (RECEIPT) after each verified chunk. 0, or an error
     * (then nothing is sent). May be NULL. */
    int (*receipt)(const uint8_t source_id[WIRE_ID_LEN], const uint8_t id[WIRE_HASH_LEN],
                   uint64_t size, const uint8_t root[WIRE_HASH_LEN], uint64_t bytes,
                   struct msg_receipt *out, void *arg);
    /* A download completed (verified and moved into place; not one found
     * complete already): p as a watcher's last call gets it. May be NULL. */
    void (*completed)(const struct op_fetch_progress *p, void *arg);
    void *arg;
};

/* The chunk size a download asks for unless configured (download-chunk-kib). */
#define OP_FETCH_CHUNK_SIZE (1024u * 1024)
/* Hits asked for when looking for a file's sources by ID: every hit of the
 * ID (whatever size it claims) names sources worth asking. */
#define OP_FETCH_SOURCES_SEARCH 16

/* QUEUED: waiting for one of the max_active places (docs/TRANSFERS.md,
 * "Queue, pause, cancel"); PAUSED: by the user, until resumed. Neither
 * holds a link or an open file. */
enum op_fetch_state {
    OP_FETCH_RUNNING,
    OP_FETCH_DONE,
    OP_FETCH_FAILED,
    OP_FETCH_QUEUED,
    OP_FETCH_PAUSED,
};
#define OP_FETCH_N_STATES 5
/* "running", "complete", "failed", "queued", "paused". */
const char *op_fetch_state_name(enum op_fetch_state state);

struct op_fetch_progress {
    const uint8_t *id;
    const char *name;
    bool size_known;    /* a manifest made the ID: size is the file's */
    uint64_t size;      /* verified; 0 until size_known */
    uint64_t size_hint; /* from the hit */
    uint32_t chunk_size;
    uint64_t bytes_have;
    uint32_t chunks_have, n_chunks;
    uint32_t chunks_fetched; /* chunks received and verified by this daemon run */
    uint32_t chunks_failed;  /* chunks that failed verification in this run */
    unsigned sources_known, sources_connected, sources_banned;
    uint64_t rate_bps; /* bytes per second, smoothed */
    enum op_fetch_state state;
    const char *path;       /* where the file is, once done */
    const uint8_t *sha256;  /* of the file, once done (what sha256sum prints) */
    const char *error;      /* why, once failed */
    const char *via;        /* how sources were reached: "direct", "reversal", "holepunch",
                               "relay" or a mix ("direct+relay"); "" before any was */
    uint64_t first_byte_ms; /* from this run's start to the first byte of the file from a
                               source; 0 before one came */
    const char *route;      /* the last source's way with its address and kind, in words
                               ("direct: LAN 10.1.0.11:7071, IPv4"); "" before any */
    unsigned priority;      /* OP_STORE_PRIORITY_* */
    unsigned queue_pos;     /* 1-based place among the queued; 0 when not queued */
    bool cancelled;         /* a final report: `cancel` stopped it */
    const char *waiting;    /* why a running download makes no progress, in words (a full
                               disk), or NULL */
    uint64_t limit_bps;     /* its own download limit, bytes a second; 0: none */
    bool throttled;         /* reading held now by its limit or the global one */
    uint64_t bytes_in;      /* DATA bytes received in this run (what limits count) */
};

typedef void op_fetch_watch_fn(const struct op_fetch_progress *p, void *arg);

struct op_fetcher;
struct op_fetch_watch;

struct op_fetcher *op_fetcher_new(const struct op_fetch_env *env);
/* Closes every link and file; watchers are dropped without a call. */
void op_fetcher_free(struct op_fetcher *f);

/* Resume every download the store has as active. */
int op_fetcher_resume_all(struct op_fetcher *f);

/* Start a download (or join the running one for id). name and size_hint
 * come from the search hit (the size is a hint: a checked manifest gives
 * the real one); out_path (absolute, may be NULL) overrides
 * DOWNLOADS/name. If fn is not NULL a watcher is added and *watch set; it
 * is called on progress (at most a few times a second), and a last time with
 * DONE or FAILED, after which the watcher is gone. A failed download is
 * tried again. A complete one whose file is still where it was put (its
 * size intact) is reported DONE at once, unless out_path names another
 * place: then the file is copied there, each chunk checked against the
 * manifest as a source's would be (what does not match comes from the
 * sources). One whose file is gone is downloaded again. Returns 0 or an
 * error with err set. */
/* Transfer control: the download waits in the queue unless fewer than
 * max_active run (a copy of a finished file never waits); priority
 * (OP_STORE_PRIORITY_*, or OP_FETCH_PRIORITY_KEEP: normal for a new one,
 * unchanged for a known one) orders the queue. A paused download asked
 * for again is resumed. */
#define OP_FETCH_PRIORITY_KEEP 3
int op_fetch_get(struct op_fetcher *f, const uint8_t id[WIRE_HASH_LEN], const char *name,
                 uint64_t size_hint, const char *out_path, unsigned priority, op_fetch_watch_fn *fn,
                 void *arg, struct op_fetch_watch **watch, char *err, size_t errlen);
/* Stop watching (the download goes on). NULL is fine. */
void op_fetch_unwatch(struct op_fetch_watch *w);

/* Sources of the file id (from a search hit); unknown IDs are ignored. */
void op_fetch_add_sources(struct op_fetcher *f, const uint8_t id[WIRE_HASH_LEN],
                          const struct msg_source *sources, size_t n);
/* A LOCATE answer for peer_id: new addresses and reachability for every
 * download using it. */
void op_fetch_located(struct op_fetcher *f, const uint8_t peer_id[WIRE_ID_LEN],
                      uint8_t reachability, const struct wire_addr *addrs, size_t n_addrs);
/* An accepted link whose HELLO carried a connect_token (reversal): if a
 * source waits for it (token and TLS identity match), the fetcher takes the
 * link (link_set_hooks) and returns true; else false and the caller closes
 * it. */
bool op_fetch_adopt(struct op_fetcher *f, struct link *l);
/* A PUNCH_NOTE answering one of our hole punches (READY or NO): true if a
 * source waited for it (token and sender match), false otherwise. */
bool op_fetch_punch_note(struct op_fetcher *f, const struct msg_punch_note *n);

/* Download limits (docs/TRANSFERS.md, "Bandwidth"), bytes a second, 0 for
 * none: of all downloads together, and of one running download
 * (SOVA_ERR_NOT_FOUND when id is not one). What arrives is charged to both;
 * while either is in debt the sources' links stop being read, so TCP slows
 * the sources down. */
void op_fetch_set_limit(struct op_fetcher *f, uint64_t bps);
/* DATA bytes received by every download of this run (what the limit counts). */
uint64_t op_fetch_bytes_in(const struct op_fetcher *f);
int op_fetch_set_download_limit(struct op_fetcher *f, const uint8_t id[WIRE_HASH_LEN],
                                uint64_t bps);

/* Every download of this run, for `sova-peer downloads` and status. */
typedef void op_fetch_each_fn(const struct op_fetch_progress *p, void *arg);
void op_fetch_foreach(const struct op_fetcher *f, op_fetch_each_fn *fn, void *arg);
size_t op_fetch_running(const struct op_fetcher *f);
/* One source of a running download (`sova-peer peers`): borrowed. */
struct op_fetch_source_info {
    const uint8_t *download_id;
    const char *name;             /* the download's */
    const uint8_t *peer_id;       /* the source's node ID */
    const char *state;            /* "connecting", "open", "waiting" (to retry), "banned" */
    const char *path;             /* "direct", "reversal", "relay"; "none" before any */
    const struct wire_addr *addr; /* its address on the link; NULL through a relay */
    bool incoming;                /* it connected to us (reversal) */
    uint64_t bytes;               /* verified and unverified chunk bytes received */
    uint64_t rate_bps;            /* smoothed, per second */
};
typedef void op_fetch_source_fn(const struct op_fetch_source_info *s, void *arg);
void op_fetch_foreach_source(const struct op_fetcher *f, op_fetch_source_fn *fn, void *arg);

/* The download id of this run (fn called once) or false. */
bool op_fetch_lookup(const struct op_fetcher *f, const uint8_t id[WIRE_HASH_LEN],
                     op_fetch_each_fn *fn, void *arg);

/* ---- transfer control (op_fetch_queue.c; docs/TRANSFERS.md) --------------------------
 * Each returns 0, or SOVA_ERR_NOT_FOUND (no download of that ID, in this
 * run or the store), SOVA_ERR_INVALID (the download's state does not allow
 * it) or SOVA_ERR_IO (the store failed), with err saying which in words;
 * on an error nothing changed. State changes are written to the store
 * before they are made, so a crash leaves what was asked. */

/* Pause an active (running or queued) download: its verified chunks stay;
 * `resume` continues from them. Watchers get a last report (PAUSED).
 * Pausing a paused one is 0. */
int op_fetch_pause(struct op_fetcher *f, const uint8_t id[WIRE_HASH_LEN], char *err, size_t errlen);
/* A paused download goes back to the queue (and starts if there is room).
 * Resuming one that is not paused is 0. */
int op_fetch_resume(struct op_fetcher *f, const uint8_t id[WIRE_HASH_LEN], char *err,
                    size_t errlen);
/* Stop a download that is not complete and delete its partial data: its
 * store rows first (so no crash leaves bits for a missing part file), then
 * the part file (one left by a crash in between is deleted at the next
 * start: fetch_file_drop_orphans()). Watchers get a last report (FAILED,
 * cancelled). */
int op_fetch_cancel(struct op_fetcher *f, const uint8_t id[WIRE_HASH_LEN], char *err,
                    size_t errlen);
/* Forget a complete or failed download (its rows; a failed one's part
 * file); delete_data: the finished file too, at the path it was put.
 * *deleted (may be NULL) is set to that path (malloc'd) when it was
 * deleted. */
int op_fetch_remove(struct op_fetcher *f, const uint8_t id[WIRE_HASH_LEN], bool delete_data,
                    char **deleted, char *err, size_t errlen);
/* Its place in the queue (OP_STORE_PRIORITY_*), any state. */
int op_fetch_set_priority(struct op_fetcher *f, const uint8_t id[WIRE_HASH_LEN], unsigned priority,
                          char *err, size_t errlen);
/* A new limit of downloads running at once (reload; 0: none). Running
 * downloads beyond it go back to the queue (the lowest priority, newest
 * first); queued ones start if there is room now. */
void op_fetch_set_max_active(struct op_fetcher *f, unsigned max_active);

#endif
