/* sn_ctx.h - what every feature of the supernode shares: the daemon's
 * context (settings, loop, identity, TLS, the links, the index, counters)
 * and the record of one link (struct sn_conn).
 *
 * The map of the folders is docs/SUPERNODE.md. In short: daemon/ creates
 * the context, starts each feature and wires them together (the link hooks,
 * the table of messages, the events one feature raises for others); a
 * feature reaches only the features below it, through their own headers,
 * and never calls up. This header declares no feature's functions.
 *
 * Ownership: the daemon owns the context and everything in it; the feature
 * objects (fed_links, membership, search, ...) are each owned by their
 * feature's start/stop functions and are opaque here. A struct sn_conn is
 * owned by its link (it is the link's arg): made by whoever opens the link
 * (peer/sn_accept.c, federation/sn_fed_links.c), freed by sn_conn_free()
 * when the link closes. Single-threaded: everything here runs on the loop. */
#ifndef SOVA_SN_CTX_H
#define SOVA_SN_CTX_H

#include "evloop.h"
#include "fair.h"
#include "identity.h"
#include "link.h"
#include "sn_config.h"
#include "sn_index.h"
#include "sn_intro.h"
#include "sn_keepalive.h"
#include "sn_rate.h"
#include "sn_reports.h"
#include "tls.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

/* Per-link state a feature keeps for itself, hung on the link's record
 * (sn_conn.ext[]) when it first needs it and freed through the function it
 * registers in sn_ctx.ext_free[]. The feature's own .c file is the only one
 * that knows the type. */
enum sn_ext {
    SN_EXT_FED_LINK, /* federation/sn_fed_links.c: a supernode link (seed, listen address) */
    SN_EXT_DIALBACK, /* peer/sn_dialback.c: the probe running for it, the last one's time */
    SN_EXT_CONNECT,  /* peer/sn_connect.c: a CONNECT being located */
    SN_EXT_RELAY,    /* relay/sn_relay.c: its circuits, its relay bandwidth */
    SN_EXT_CREDIT,   /* credit/sn_credit_net.c: its primary session's start */
    SN_EXT_COUNT
};

/* Requests one remote may make (guard/sn_rate.h buckets), checked by the
 * feature that serves each. */
struct sn_conn_limits {
    struct sn_rate connect;  /* CONNECT, RELAY_OPEN and REPORT */
    struct sn_rate publish;  /* PUBLISH records */
    struct sn_rate search;   /* SEARCH and CREDIT queries */
    struct sn_rate receipts; /* receipts handed in; last_ms 0 until first used */
    uint64_t logged_ms;      /* its last rate-limit log line */
};

/* One link (accepted or dialed): a peer's session, a supernode link, or a
 * connection still in its handshake. The fields here are those that more
 * than one feature reads; a feature's own per-link state is in ext[]. */
struct sn_conn {
    struct sn_ctx *ctx;
    struct link *link;
    uint8_t id[WIRE_ID_LEN]; /* the remote's node ID, once the handshake is done */
    /* admission (peer/sn_accept.c) */
    bool handshaking; /* accepted, TLS or HELLO not done yet */
    struct wire_addr from;
    /* a peer's link through HELLO, not registered yet: in the fair pool of
     * max-unregistered and in the queue register-timeout-s is swept from */
    struct fair_holder unregistered;
    uint64_t opened_ms;
    TAILQ_ENTRY(sn_conn) unregistered_q;
    /* an ordinary peer's session (peer/sn_attach.c) */
    uint8_t session;            /* enum msg_session */
    uint8_t claimed_reach;      /* enum msg_reachability of its last REGISTER */
    uint8_t reachability;       /* the one advertised: its claim if a dial-back proved it */
    bool indexed;               /* a primary session: holds the index entry for its ID */
    struct fair_holder records; /* while indexed: its records, by its address prefix */
    bool registered;            /* REGISTER done (primary or backup) */
    struct sn_keepalive told;   /* the keep-alive its last REGISTERED gave; zero before */
    uint32_t told_load;         /* our attached peers in the last SN_LIST it got */
    /* Where others reach it (malloc'ed, n_addrs of them; NULL when none):
     * an array of exactly what it has rather than room for WIRE_MAX_ADDRS,
     * since a supernode keeps one sn_conn per attached peer
     * (docs/SCALING.md). Never a bare claim (peer/sn_attach.c): the first
     * n_lan are LAN addresses it claims, handed only to peers behind the
     * same public IP; the rest are proved by dial-back or on the IP its
     * connection comes from. Search hits, LOCATE and CONNECT hand these out
     * through sn_conn_addrs_for(). */
    struct wire_addr *addrs;
    size_t n_addrs, n_lan;
    /* Addresses a dial-back proved (peer/sn_dialback.c writes them; malloc'ed
     * like addrs). */
    struct wire_addr *verified;
    size_t n_verified;
    struct sn_conn_limits lim;
    void *ext[SN_EXT_COUNT];
};

typedef void sn_ext_free_fn(void *ext);

struct sn_counters {
    uint64_t dialbacks;       /* DIALBACK requests probed */
    uint64_t dialbacks_ok;    /* of them, with at least one address reached */
    uint64_t connects;        /* CONNECT requests delivered (here or forwarded) */
    uint64_t connects_failed; /* CONNECT requests whose target was not found */
    uint64_t punches;         /* PUNCH notes delivered (here or forwarded) */
    uint64_t punches_failed;  /* PUNCH notes that went back as NO */
    uint64_t searches;        /* SEARCHes answered */
    uint64_t publishes;       /* PUBLISH records applied */
    uint64_t locates;
    uint64_t fwd_searches_in;                   /* FWD_SEARCHes from other supernodes */
    uint64_t bytes_in_closed, bytes_out_closed; /* of links already gone */
    uint64_t reloads, reload_failures;          /* SIGHUPs applied / refused */
    uint64_t rate_limited;                      /* requests over a per-peer rate */
    /* links through HELLO that did not REGISTER (peer/sn_accept.c): turned
     * away with max-unregistered taken, displaced by a newcomer from a
     * prefix holding fewer, closed at register-timeout-s */
    uint64_t unregistered_refused, unregistered_displaced, register_timeouts;
    uint64_t publish_prefix_refused; /* PUBLISH records over max-records-per-prefix */
};

TAILQ_HEAD(sn_conn_queue, sn_conn);

/* The features' objects: opaque here, each declared by its own header. */
struct sn_fed_links;
struct sn_membership;
struct sn_search;
struct sn_relay;
struct sn_credit;
struct sn_dialbacks;

struct sn_ctx {
    struct sn_settings *s; /* main's; a reload (daemon/sn_service.c) changes what may change */
    struct evloop *loop;
    struct sova_identity *id;
    struct tls_ctx *tls;
    struct wire_limits limits;
    struct link_params link_params;
    const struct link_hooks *link_hooks; /* of every sn_conn's link (daemon/sn_dispatch.c) */
    struct link_group links;             /* every connection, accepted or dialed */
    struct link_counters link_counters;  /* handshake failures, errors sent */
    struct sn_index *index;
    struct sn_reports *reports;     /* sources reported as lying or refusing, weighed */
    struct sn_intro *intros;        /* which peers looked up or reached which sources */
    struct link_budget *budget;     /* handshakes, connections per address, incomplete frames */
    struct fair_pool *unregistered; /* peers' links waiting for REGISTER, by prefix */
    struct fair_pool *records;      /* index records of primary sessions, by prefix */
    struct sn_conn_queue unregistered_q;                  /* the same, oldest first */
    uint64_t unregistered_logged_ms, unregistered_at_log; /* peer/sn_accept.c's last report */
    struct sn_counters counters;
    size_t n_peers, n_supernodes; /* links past their handshake, by role */
    size_t n_primary;             /* peers whose primary session is here (indexed) */
    uint64_t index_changes;       /* bumped when the index changes: summary rebuilds */
    unsigned punch_waits;         /* PUNCH notes being located (peer/sn_punch.c) */
    char listen_addr[64];
    struct wire_addr self_addr; /* where we listen, if a specific address */
    bool has_self_addr;
    uint64_t started_ms;
    /* the features (each made by its own _start, NULL before and after) */
    struct sn_fed_links *fed_links;
    struct sn_membership *membership;
    struct sn_search *search;
    struct sn_relay *relay;
    struct sn_credit *credit;
    struct sn_dialbacks *dialbacks;
    sn_ext_free_fn *ext_free[SN_EXT_COUNT]; /* registered by the feature owning each slot */
};

/* A new record for a link about to be opened (limits started, no link
 * yet); NULL when memory is short. */
struct sn_conn *sn_conn_new(struct sn_ctx *ctx);
/* Free c, its address lists and every feature's ext; NULL is fine. */
void sn_conn_free(struct sn_conn *c);
/* Replace *list (n_list entries, malloc'ed or NULL) by a copy of the n
 * entries of src: false (and the list emptied) when memory is short. */
bool sn_conn_set_addr_list(struct wire_addr **list, size_t *n_list, const struct wire_addr *src,
                           size_t n);
/* The addresses of c to hand to a remote seen at `asker` (its observed
 * address; NULL when not known, e.g. for another supernode's peer): its
 * LAN claims only when asker has the same IP; *n says how many. */
const struct wire_addr *sn_conn_addrs_for(const struct sn_conn *c, const struct wire_addr *asker,
                                          size_t *n);
/* Whether the remote is an ordinary peer (past its HELLO). */
bool sn_conn_is_peer(const struct sn_conn *c);
/* Over a per-peer rate: ERROR(rate limited) saying when to come back,
 * counted in ctx->counters; a log line at most every SN_REFUSALS_LOG_MS per
 * link. */
void sn_conn_rate_limited(struct sn_conn *c, uint8_t type, uint64_t wait_ms, const char *what);

/* The keep-alive peers are told now (sn_keepalive.h, from the settings and
 * the peers the supernode carries). */
struct sn_keepalive sn_ctx_keepalive(const struct sn_ctx *ctx);
/* The short form of a node ID, for log lines (buf: NODE_ID_SHORT_LEN + 1). */
const char *sn_short_id(const uint8_t id[WIRE_ID_LEN], char *buf);
/* Arm a timer ms from now. */
void sn_timer_ms(struct event *ev, uint64_t ms);

/* Refused connections and rate-limited requests are logged at most this
 * often (with totals); every one is counted. */
#define SN_REFUSALS_LOG_MS 10000
/* CONNECT, RELAY_OPEN and REPORT requests one peer may make: per second, burst. */
#define SN_CONNECT_RATE_PER_S 10
#define SN_CONNECT_RATE_BURST 20

#endif
