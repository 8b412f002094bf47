/* sn_credit_int.h - private to supernode/credit/sn_credit_net.c,
 * sn_credit_sync.c and sn_credit_reports.c: the state of the credit
 * ledger on the wire (sn_credit_net.h) and what its three files share:
 * sn_credit_net.c (reads, receipts in, what ranking asks, messages, disk,
 * life), sn_credit_sync.c (uptime reports, moving records between holders,
 * relay shares) and sn_credit_reports.c (REPORT; it only calls the first). */
#ifndef SOVA_SN_CREDIT_INT_H
#define SOVA_SN_CREDIT_INT_H

#ifndef SOVA_SN_CREDIT_INTERNAL
#error "sn_credit_int.h is private to supernode/credit/sn_credit_*.c"
#endif

#include "receipt.h"
#include "sn_credit_net.h"
#include "sn_credit_place.h"
#include "sn_ledger.h"
#include "sn_ring.h"

#include <stdbool.h>
#include <stdint.h>

#define CREDIT_LOOKUP_MS       1000  /* a read waits this long for the holders */
#define CREDIT_CACHE_MS        10000 /* records read are used this long */
#define CREDIT_CACHE_RECORDS   4096  /* records read and kept (then all forgotten at once) */
#define CREDIT_FRESH_SLOTS     4096  /* direct-mapped: when each record was read */
#define CREDIT_MAX_LOOKUPS     1024  /* reads in flight */
#define CREDIT_MAX_LOOKUP_IDS  64    /* records one read asks for */
#define CREDIT_VERIFIED_SLOTS  65536 /* direct-mapped: peers known to have verified uploads */
#define CREDIT_UPTIME_MS       10000 /* sessions reported this often, or longer */
#define CREDIT_PASS_DELAY_MS   300   /* membership changes gathered before a pass */
#define CREDIT_PASS_BATCH      256   /* records per loop turn */
#define CREDIT_PUSH_HIGH       (1024u * 1024) /* a pass waits while a link queues this much */
#define CREDIT_PUSH_RETRY_MS   50
#define CREDIT_RELAY_PERIOD_MS 2000
#define CREDIT_RECEIPT_RATE    256  /* receipts a second one peer may hand in */
#define CREDIT_RECEIPT_BURST   1024 /* ... in bursts of this */
#define CREDIT_OUTBOXES        (2 * SN_RING_MAX_REPLICAS)
#define CREDIT_MAX_FRESH       64  /* supernodes linked up since the last pass */
#define CREDIT_RELAY_FAR_ENDS  16  /* other ends of one peer's circuits weighed */
#define CREDIT_LEARN_MAX       256 /* peers whose records wait to be read for ranking */
#define CREDIT_LEARN_MS        200 /* ... read this often, up to a read's worth */

struct lookup;
/* A read is done: the records are in the cache (credit_record()). */
typedef void lookup_done_fn(struct sn_ctx *d, struct lookup *l, void *arg);

struct lookup_holder { /* a supernode that owes answers */
    uint8_t id[WIRE_ID_LEN];
    size_t owed; /* LEDGER_ANSWERs, one per ID asked of it */
};

struct lookup {
    struct sn_credit *c;
    struct lookup *next;
    uint64_t query_id;
    uint8_t (*ids)[WIRE_ID_LEN];
    size_t n;
    struct lookup_holder *asked;
    size_t n_asked;
    struct event *deadline;
    lookup_done_fn *fn;
    void *arg;
};

struct fresh_slot {
    uint8_t id[WIRE_ID_LEN];
    uint64_t at_ms; /* 0: empty */
};

struct outbox {
    uint8_t to[WIRE_ID_LEN];
    struct msg_ledger_item items[MSG_MAX_RECEIPTS];
    size_t n;
};

struct uptime_box { /* session reports for one holder */
    uint8_t to[WIRE_ID_LEN];
    struct msg_uptime_report reports[MSG_MAX_CREDIT_IDS];
    size_t n;
};

struct peer_query { /* a CREDIT query of an attached peer being answered */
    struct sn_conn *p;
    uint64_t query_id;
    uint8_t asker[WIRE_ID_LEN];
    uint8_t (*ids)[WIRE_ID_LEN]; /* as asked, in order */
    size_t n;
};

struct counters {
    uint64_t ingested, rate_limited, rejected[RECEIPT_VERDICTS];
    uint64_t lookups, lookups_timed_out, puts_sent, puts_received, updates_sent;
    uint64_t answers_received, answers_shed, cache_resets;
    uint64_t reports_weighed, reports_unintroduced, reports_weightless;
};

/* SN_EXT_CREDIT: an attached peer's primary session, for uptime reports. */
struct credit_conn {
    uint64_t since_ms; /* wall clock start of its primary session as observed; 0 none */
};

struct sn_ledger_store;

struct sn_credit {
    struct sn_ctx *d;
    struct sn_ledger *ledger;      /* the records this supernode holds */
    struct sn_ledger_store *store; /* ... on disk (NULL: in memory only) */
    struct event *store_timer;
    unsigned replicas;
    uint64_t cap; /* credit-cap-mb in bytes */
    struct credit_view view;
    struct lookup *lookups;
    size_t n_lookups;
    uint64_t next_query;
    struct sn_ledger *records; /* records read from their holders, merged */
    struct fresh_slot *fresh_at;
    uint64_t *verified; /* ID prefixes of peers with verified uploads, 0 empty */
    uint8_t hash_key[16];
    uint8_t (*learn)[WIRE_ID_LEN]; /* peers to read for ranking */
    size_t n_learn;
    struct event *learn_timer;
    struct outbox *out;
    size_t n_out;
    struct uptime_box *up;
    size_t n_up;
    /* rebalancing */
    struct credit_view pass_old;
    bool pass_running, pass_has_old;
    bool pass_strays; /* records not ours came in: walk them (credit_stray) */
    uint8_t (*pass_keys)[WIRE_ID_LEN];
    size_t pass_n, pass_at;
    uint8_t fresh[CREDIT_MAX_FRESH][WIRE_ID_LEN];
    size_t n_fresh;
    struct event *pass_timer, *uptime_timer, *relay_timer;
    struct counters ct;
};

/* sn_credit_net.c */
const uint8_t *credit_self_id(const struct sn_credit *c);
bool credit_is_self(const struct sn_credit *c, const uint8_t *id);
/* This supernode and every member alive or suspect (v->ids malloc'd). */
int credit_view_compute(struct sn_credit *c, struct credit_view *v);
/* Holders of key in v: their IDs (pointers into v), best first. */
size_t credit_holders(const struct sn_credit *c, const struct credit_view *v,
                      const uint8_t key[WIRE_ID_LEN], const uint8_t *out[SN_RING_MAX_REPLICAS]);
/* Read the records of ids[0..n) (n <= CREDIT_MAX_LOOKUP_IDS) from every
 * holder into the cache; fn (may be NULL) is called when the holders
 * answered or CREDIT_LOOKUP_MS passed, maybe before this returns. */
void credit_lookup_start(struct sn_credit *c, const uint8_t (*ids)[WIRE_ID_LEN], size_t n,
                         lookup_done_fn *fn, void *arg);
/* Was id's record read (or asked for) less than CREDIT_CACHE_MS ago? */
bool credit_is_fresh(const struct sn_credit *c, const uint8_t id[WIRE_ID_LEN]);
void credit_fresh_mark(struct sn_credit *c, const uint8_t id[WIRE_ID_LEN]);
/* id's record as read (borrowed until the cache changes); NULL when
 * nothing is known. */
const struct msg_ledger_put *credit_record(const struct sn_credit *c, const uint8_t id[WIRE_ID_LEN],
                                           struct msg_ledger_put *buf);
/* credit of x as seen by e, from the cache (0 when unknown). */
uint64_t credit_seen_by(const struct sn_credit *c, const uint8_t x[WIRE_ID_LEN],
                        const uint8_t e[WIRE_ID_LEN]);
/* Read id's record soon, so that ranking knows whether it has uploads. */
void credit_learn(struct sn_credit *c, const uint8_t id[WIRE_ID_LEN]);
void credit_learn_tick(evutil_socket_t fd, short what, void *arg);
/* Peers known to have had uploads verified by receipts (ranking). */
void credit_verified_add(struct sn_credit *c, const uint8_t id[WIRE_ID_LEN]);
bool credit_verified_has(const struct sn_credit *c, const uint8_t id[WIRE_ID_LEN]);

/* sn_credit_sync.c (timers armed by sn_credit_start) */
void credit_uptime_tick(evutil_socket_t fd, short what, void *arg);
void credit_pass_timer(evutil_socket_t fd, short what, void *arg);
void credit_relay_tick(evutil_socket_t fd, short what, void *arg);
void credit_pass_end(struct sn_credit *c);
/* p's link closes: its session's last report goes out. */
void credit_session_end(struct sn_credit *c, struct sn_conn *p);
/* A record came in that this supernode does not hold in its view. */
void credit_stray(struct sn_credit *c, const uint8_t key[WIRE_ID_LEN]);

#endif
