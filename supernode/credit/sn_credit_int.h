/* sn_credit_int.h - private to supernode/credit/sn_credit_net.c and
 * sn_credit_sync.c: the state of the credit ledger on the wire
 * (sn_credit_net.h) and what its two files share: sn_credit_net.c (reads,
 * receipts in, messages, life) and sn_credit_sync.c (uptime reports,
 * moving records between holders, relay shares). */
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

#define CREDIT_LOOKUP_MS       1000           /* a read waits this long for the holders */
#define CREDIT_CACHE_MS        10000          /* standings used to weigh receipts are this fresh */
#define CREDIT_CACHE_SLOTS     4096           /* direct-mapped by ID */
#define CREDIT_MAX_LOOKUPS     1024           /* reads in flight */
#define CREDIT_UPTIME_MS       10000          /* sessions reported this often, or longer */
#define CREDIT_PASS_DELAY_MS   300            /* membership changes gathered before a pass */
#define CREDIT_PASS_BATCH      256            /* records per loop turn */
#define CREDIT_PUSH_HIGH       (1024u * 1024) /* a pass waits while a link queues this much */
#define CREDIT_PUSH_RETRY_MS   50
#define CREDIT_RELAY_PERIOD_MS 2000
#define CREDIT_RECEIPT_RATE    256  /* receipts a second one peer may hand in */
#define CREDIT_RECEIPT_BURST   1024 /* ... in bursts of this */
#define CREDIT_OUTBOXES        (2 * SN_RING_MAX_REPLICAS)
#define CREDIT_MAX_FRESH       64 /* supernodes linked up since the last pass */

typedef void lookup_done_fn(struct sn_ctx *d, const struct msg_credit_record *recs, size_t n,
                            void *arg);

struct lookup {
    struct sn_credit *c;
    struct lookup *next;
    uint64_t query_id;
    uint8_t (*ids)[WIRE_ID_LEN];
    struct msg_credit_record *recs;
    size_t n;
    uint8_t (*asked)[WIRE_ID_LEN]; /* supernodes that owe an answer */
    size_t n_asked;
    struct event *deadline;
    lookup_done_fn *fn;
    void *arg;
};

struct cache_slot {
    struct msg_credit_record rec;
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
};

struct ingest { /* receipts waiting for their downloaders' standing */
    struct msg_receipt *rs;
    size_t n;
};

struct counters {
    uint64_t ingested, rate_limited, rejected[RECEIPT_VERDICTS];
    uint64_t lookups, lookups_timed_out, puts_sent, puts_received, updates_sent;
};

/* SN_EXT_CREDIT: an attached peer's primary session, for uptime reports. */
struct credit_conn {
    uint64_t since_ms; /* wall clock start of its primary session as observed; 0 none */
};

struct sn_credit {
    struct sn_ctx *d;
    struct sn_ledger *ledger;
    unsigned replicas;
    struct credit_view view;
    struct lookup *lookups;
    size_t n_lookups;
    uint64_t next_query;
    struct cache_slot *cache;
    struct outbox *out;
    size_t n_out;
    struct uptime_box *up;
    size_t n_up;
    /* rebalancing */
    struct credit_view pass_old;
    bool pass_running, pass_has_old;
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
/* A standing read less than CREDIT_CACHE_MS ago, or NULL. */
const struct msg_credit_record *credit_cache_get(struct sn_credit *c,
                                                 const uint8_t id[WIRE_ID_LEN]);
void credit_cache_forget(struct sn_credit *c, const uint8_t id[WIRE_ID_LEN]);
/* Read the records of ids[0..n) (n <= MSG_MAX_CREDIT_IDS) from every holder;
 * fn (may be NULL: fill the cache) gets them, maybe before this returns. */
void credit_lookup_start(struct sn_credit *c, const uint8_t (*ids)[WIRE_ID_LEN], size_t n,
                         lookup_done_fn *fn, void *arg);

/* sn_credit_sync.c (timers armed by sn_credit_start) */
void credit_uptime_tick(evutil_socket_t fd, short what, void *arg);
void credit_pass_timer(evutil_socket_t fd, short what, void *arg);
void credit_relay_tick(evutil_socket_t fd, short what, void *arg);
void credit_pass_end(struct sn_credit *c);
/* p's link closes: its session's last report goes out. */
void credit_session_end(struct sn_credit *c, struct sn_conn *p);

#endif
