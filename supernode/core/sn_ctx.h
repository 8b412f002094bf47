/* sn_internal.h - the supernode daemon's state, shared by its own files
 * (sn_daemon.c: setup and accept; sn_peer.c: peer sessions and their
 * messages; sn_control.c: the control socket). Not for other folders. */
#ifndef SOVA_SN_INTERNAL_H
#define SOVA_SN_INTERNAL_H

#include "ctl.h"
#include "evloop.h"
#include "identity.h"
#include "link.h"
#include "sn_config.h"
#include "sn_index.h"
#include "sn_member.h"
#include "sn_ipcount.h"
#include "sn_keepalive.h"
#include "sn_reports.h"
#include "tls.h"

#include <stdint.h>

/* A token bucket: `rate` units a second, at most `burst` saved up. */
struct sn_rate {
    uint64_t tokens, burst, rate; /* rate 0: unlimited */
    uint64_t last_ms;
};
/* Take n units if they are there (0), else SOVA_ERR_NOT_FOUND and *wait_ms
 * (may be NULL) says when they will be. */
void sn_rate_init(struct sn_rate *r, uint64_t rate, uint64_t burst, uint64_t now_ms);
int sn_rate_take(struct sn_rate *r, uint64_t n, uint64_t now_ms, uint64_t *wait_ms);
/* Units available now (UINT64_MAX when unlimited). */
uint64_t sn_rate_available(struct sn_rate *r, uint64_t now_ms);
/* A new rate and burst, keeping the tokens saved (at most the new burst). */
void sn_rate_set(struct sn_rate *r, uint64_t rate, uint64_t burst, uint64_t now_ms);

/* One accepted connection (the link's arg); for an ordinary peer also its
 * session (the index's peer_ctx). */
struct sn_dialback;
struct sn_relay_leg;
struct connect_wait;

struct sn_peer {
    struct sn_daemon *d;
    struct link *link;
    uint8_t id[WIRE_ID_LEN];
    uint8_t session;      /* enum msg_session */
    uint8_t reachability; /* enum msg_reachability, as claimed */
    /* Where others reach it (malloc'ed, n_addrs of them; NULL when none):
     * an array of exactly what it has rather than room for WIRE_MAX_ADDRS,
     * since a supernode keeps one sn_peer per attached peer (docs/SCALING.md). */
    struct wire_addr *addrs;
    size_t n_addrs;
    bool indexed;             /* a primary session: holds the index entry for its ID */
    bool registered;          /* REGISTER done (primary or backup) */
    struct sn_keepalive told; /* the keep-alive its last REGISTERED gave; zero before */
    /* supernode links */
    bool dialed;                  /* we opened it */
    bool fed_up;                  /* counted in sn_fed.links */
    struct sn_seed *seed;         /* the seed it was dialed for, if any */
    struct wire_addr listen_addr; /* where that supernode accepts links, once known */
    bool has_listen_addr;
    /* reachability (sn_dialback.c): addresses a dial-back proved (malloc'ed
     * like addrs), and when */
    struct wire_addr *verified;
    size_t n_verified;
    uint8_t claimed_reach;        /* enum msg_reachability of its last REGISTER */
    struct sn_dialback *dialback; /* the probe running for it, if any */
    uint64_t dialback_ms;         /* when its last dial-back started */
    /* relay circuits on this link (sn_relay.c) */
    struct sn_relay_leg *relay_legs;
    unsigned relay_circuits;
    uint32_t relay_next_id;
    struct sn_rate relay_bucket; /* relay bandwidth of this peer */
    struct sn_rate connect_rate; /* CONNECT and RELAY_OPEN requests */
    struct sn_rate publish_rate; /* PUBLISH records */
    struct sn_rate search_rate;  /* SEARCH requests */
    bool handshaking;            /* accepted, TLS or HELLO not done yet */
    uint64_t rate_logged_ms;     /* its last rate-limit log line */
    bool counted_ip;             /* counted in sn_daemon.ipcount as `from` */
    struct wire_addr from;
    struct connect_wait *connect_wait; /* sn_connect.c: a CONNECT being located */
    /* credit (sn_credit_net.c) */
    uint64_t credit_since_ms;    /* wall clock start of its primary session as observed; 0 none */
    struct sn_rate receipt_rate; /* receipts it hands in; last_ms 0 until first used */
};

#define SN_MAX_SEEDS 16
/* Supernode links one supernode keeps (and targets one search may have):
 * as many as sn_member keeps members, so a full mesh holds up to there. */
#define SN_MAX_FEDERATION SN_MEMBER_MAX_MEMBERS

/* A configured seed supernode (--peers): dialed until a link to it is up. */
struct sn_seed {
    struct sn_daemon *d;
    char *endpoint;
    struct sn_peer *conn;    /* the link for it, while dialing or up */
    uint8_t id[WIRE_ID_LEN]; /* learnt from its certificate on the first link */
    bool id_known;
    struct event *retry;
    unsigned retry_ms;
    bool is_self;   /* the seed turned out to be this supernode */
    bool contacted; /* its first attempt ended (link up or failed): readiness */
    bool resolving; /* its name is being looked up (evloop_resolve) */
};
/* A seed slot whose endpoint is NULL was dropped by a reload and is free. */

struct sn_fed {
    struct sn_seed seeds[SN_MAX_SEEDS];
    size_t n_seeds;
    struct sn_peer *links[SN_MAX_FEDERATION]; /* open supernode links, one per ID */
    size_t n_links;
    struct event *announce;   /* debounced SN_LIST to every attached peer */
    struct sn_member *member; /* SWIM membership */
    struct event *tick;       /* membership timers */
};

struct sn_counters {
    uint64_t dialbacks;       /* DIALBACK requests probed */
    uint64_t dialbacks_ok;    /* of them, with at least one address reached */
    uint64_t connects;        /* CONNECT requests delivered (here or forwarded) */
    uint64_t connects_failed; /* CONNECT requests whose target was not found */
    uint64_t searches;        /* SEARCHes answered */
    uint64_t publishes;       /* PUBLISH records applied */
    uint64_t locates;
    uint64_t fwd_searches_in;                   /* FWD_SEARCHes from other supernodes */
    uint64_t gossip_sent, gossip_bytes_sent;    /* GOSSIP frames to supernodes, their bytes */
    uint64_t bytes_in_closed, bytes_out_closed; /* of links already gone */
    uint64_t reloads, reload_failures;          /* SIGHUPs applied / refused */
};

struct service;
struct metrics_http;

struct sn_daemon {
    struct sn_settings *s; /* main's; a reload (sn_service.c) changes what may change */
    struct evloop *loop;
    struct sova_identity *id;
    struct tls_ctx *tls;
    struct wire_limits limits;
    struct link_params link_params;
    struct link_group links; /* every accepted connection */
    struct sn_index *index;
    struct sn_reports *reports; /* sources reported as lying or refusing */
    struct sn_ipcount *ipcount; /* connections per source address */
    size_t n_handshaking;       /* accepted connections not through TLS + HELLO */
    uint64_t refused_handshakes, refused_ip, rate_limited; /* abuse counters */
    uint64_t refusals_logged_ms, refusals_at_log;
    struct ctl_server *ctl;
    struct event *sweep;
    char listen_addr[64];
    uint64_t started_ms;
    size_t n_peers, n_supernodes;
    size_t n_primary;           /* peers whose primary session is here (indexed) */
    struct wire_addr self_addr; /* where we listen, if a specific address */
    bool has_self_addr;
    struct sn_counters counters;
    struct sn_fed fed;
    struct sn_search *search;      /* sn_search.c */
    struct sn_relay *relay;        /* sn_relay.c */
    struct sn_dialback *dialbacks; /* sn_dialback.c: running probes */
    struct sn_credit *credit;      /* sn_credit_net.c: the credit ledger */
    uint64_t index_changes;        /* bumped when the index changes: summary rebuilds */
    /* operations (sn_service.c, sn_metrics.c) */
    int argc;                           /* the options main loaded s from, */
    char *const *argv;                  /* loaded again on SIGHUP */
    struct service *svc;                /* systemd notify and watchdog; NULL without systemd */
    struct event *ready_timer;          /* ready anyway when seeds take too long */
    bool ready;                         /* READY=1 sent (or would have been) */
    struct metrics_http *metrics;       /* the metrics-listen endpoint, if any */
    struct link_counters link_counters; /* handshake failures, errors sent */
};

/* sn_peer.c: the hooks of every link (accepted or dialed). */
const struct link_hooks *sn_link_hooks(void);
/* sn_peer.c: take an accepted connection (fd and ssl are owned from now). */
void sn_peer_accept(struct sn_daemon *d, evutil_socket_t fd, SSL *ssl, const struct sockaddr *sa,
                    socklen_t len);
/* Fill in a new connection's defaults (rates, owner). */
void sn_peer_init(struct sn_daemon *d, struct sn_peer *p);
/* Free a connection's state (its address lists too); NULL is fine. */
void sn_peer_free(struct sn_peer *p);
/* Replace *list (n_list entries, malloc'ed or NULL) by a copy of the n
 * entries of src: false (and the list emptied) when memory is short. */
bool sn_peer_set_addr_list(struct wire_addr **list, size_t *n_list, const struct wire_addr *src,
                           size_t n);
/* (Re)start p's relay bandwidth bucket at relay-peer-kbps. */
void sn_peer_set_relay_rate(struct sn_daemon *d, struct sn_peer *p, uint64_t now_ms);
/* Refused connections and rate-limited requests are logged at most this
 * often (with totals); every one is counted. */
#define SN_REFUSALS_LOG_MS 10000
/* CONNECT and RELAY_OPEN requests one peer may make: per second, burst. */
#define SN_CONNECT_RATE_PER_S 10
#define SN_CONNECT_RATE_BURST 20
/* Drop peers silent longer than peer-timeout (runs from a timer). */
void sn_peer_sweep(struct sn_daemon *d);
/* The keep-alive peers are told now (sn_keepalive.h, from the config and
 * the peers it carries). */
struct sn_keepalive sn_keepalive_now(const struct sn_daemon *d);

/* sn_fed.c: supernode links */
int sn_fed_start(struct sn_daemon *d, char *err, size_t errlen);
/* Every seed has had its first attempt (link up, refused, unresolved...). */
bool sn_fed_seeds_contacted(const struct sn_daemon *d);
/* Reload: dial the seeds new in d->s->peers, drop those no longer there
 * (a link already up to one stays: it is a member now). */
void sn_fed_reload_seeds(struct sn_daemon *d);
void sn_fed_stop(struct sn_daemon *d);
void sn_fed_link_up(struct sn_daemon *d, struct sn_peer *p);
void sn_fed_link_down(struct sn_daemon *d, struct sn_peer *p);
struct sn_peer *sn_fed_link(const struct sn_daemon *d, const uint8_t id[WIRE_ID_LEN]);
int sn_fed_send(struct sn_daemon *d, const uint8_t id[WIRE_ID_LEN], const struct msg *m);
/* Dial a supernode (known by ID from gossip) at one of its addresses,
 * unless a link to it exists. */
int sn_fed_dial_addrs(struct sn_daemon *d, const uint8_t id[WIRE_ID_LEN],
                      const struct wire_addr *addrs, size_t n);

/* sn_federation.c: what the federation does with its links */
void sn_fed_hook_link_up(struct sn_daemon *d, struct sn_peer *p, const struct wire_addr *addr,
                         size_t n_addr);
void sn_fed_hook_link_down(struct sn_daemon *d, struct sn_peer *p);
void sn_fed_hook_message(struct sn_daemon *d, struct sn_peer *p, const struct msg *m);
/* Tell a peer which supernodes make up the federation (SN_LIST). */
void sn_fed_send_sn_list(struct sn_daemon *d, struct sn_peer *p);
/* The federation changed: send SN_LIST to every attached peer, soon and
 * once for a burst of changes. */
void sn_fed_changed(struct sn_daemon *d);
/* Turn a peer away: ERROR(overloaded) naming other supernodes, then close. */
void sn_fed_send_overloaded(struct sn_daemon *d, struct sn_peer *p);

/* sn_federation.c: membership */
int sn_federation_start(struct sn_daemon *d);
void sn_federation_leave(struct sn_daemon *d);
void sn_federation_stop(struct sn_daemon *d);
json_t *sn_federation_members_json(const struct sn_daemon *d);

/* sn_search.c: search across the federation */
int sn_search_start(struct sn_daemon *d);
void sn_search_stop(struct sn_daemon *d);
/* A SEARCH from an attached peer: local index + the supernodes that may match. */
void sn_search_from_peer(struct sn_daemon *d, struct sn_peer *peer, const struct msg_search *q);
/* A LOCATE for a peer not attached here: ask the other supernodes. */
void sn_search_locate(struct sn_daemon *d, struct sn_peer *peer, const struct msg_locate *l);
/* p's link is closing: its pending questions are answered into the void. */
void sn_search_peer_gone(struct sn_daemon *d, struct sn_peer *p);
void sn_search_stats(const struct sn_daemon *d, uint64_t *forwarded, uint64_t *relayed,
                     size_t *summaries);
void sn_search_link_up(struct sn_daemon *d, struct sn_peer *p);
void sn_search_forget(struct sn_daemon *d, const uint8_t sn_id[WIRE_ID_LEN]);
/* A supernode-link message for search (SUMMARY, FWD_*); false if not one. */
bool sn_search_message(struct sn_daemon *d, struct sn_peer *p, const struct msg *m);

/* Find the supernode a peer is attached to, for internal use (relaying,
 * reversal): fn runs once, with found NULL when no one answered by the
 * deadline (also at once, when there is no other supernode). Cancel with
 * the same arg before arg goes away. */
typedef void sn_located_fn(struct sn_daemon *d, const struct msg_locate_result *found, void *arg);
void sn_search_locate_cb(struct sn_daemon *d, const uint8_t peer_id[WIRE_ID_LEN], sn_located_fn *fn,
                         void *arg);
void sn_search_locate_cancel(struct sn_daemon *d, void *arg);

/* sn_dialback.c: prove a peer's addresses by connecting to them */
void sn_dialback_request(struct sn_daemon *d, struct sn_peer *p, const struct msg_dialback *q);
/* p's link is closing: its probes go on, their result goes nowhere. */
void sn_dialback_peer_gone(struct sn_daemon *d, struct sn_peer *p);
/* The reachability to advertise for p: its claim, if a dial-back proved one
 * of the addresses it claims; unreachable if it claimed so or nothing was
 * proved; unknown until it says. */
uint8_t sn_dialback_reachability(const struct sn_peer *p);
/* Shutdown: abandon every running probe. */
void sn_dialback_stop(struct sn_daemon *d);

/* sn_connect.c: connection reversal */
void sn_connect_from_peer(struct sn_daemon *d, struct sn_peer *p, const struct msg_connect *c);
void sn_connect_forwarded(struct sn_daemon *d, struct sn_peer *from,
                          const struct msg_fwd_connect *f);
void sn_connect_peer_gone(struct sn_daemon *d, struct sn_peer *p);

/* sn_relay.c: relay circuits */
int sn_relay_start(struct sn_daemon *d);
void sn_relay_stop(struct sn_daemon *d);
/* A RELAY_* message from a peer or supernode link. */
void sn_relay_message(struct sn_daemon *d, struct sn_peer *p, const struct msg *m);
/* p's link is going: every circuit through it closes. */
void sn_relay_link_gone(struct sn_daemon *d, struct sn_peer *p);
/* p's link has room again: circuits waiting for it move on. */
void sn_relay_link_drained(struct sn_daemon *d, struct sn_peer *p);
json_t *sn_relay_status_json(const struct sn_daemon *d);
/* Relay traffic now, kilobytes per second (gossiped as load). */
uint32_t sn_relay_kbps(const struct sn_daemon *d);

/* sn_relay.c: relay-peer-kbps or relay-total-kbps changed (reload). */
void sn_relay_rates_changed(struct sn_daemon *d);

/* sn_credit_net.c: the credit ledger (docs/CREDITS.md) */
int sn_credit_start(struct sn_daemon *d);
void sn_credit_stop(struct sn_daemon *d);
/* RECEIPTS or CREDIT from an attached peer. */
void sn_credit_peer_message(struct sn_daemon *d, struct sn_peer *p, const struct msg *m);
/* A LEDGER_* message on a supernode link; false if not one. */
bool sn_credit_fed_message(struct sn_daemon *d, struct sn_peer *p, const struct msg *m);
/* Membership changed / a supernode linked up: records move to their holders. */
void sn_credit_membership_changed(struct sn_daemon *d);
void sn_credit_link_up(struct sn_daemon *d, struct sn_peer *p);
/* p's link is closing: its questions are answered into the void, its
 * session's time is reported. */
void sn_credit_peer_gone(struct sn_daemon *d, struct sn_peer *p);
/* credit-cap-mb changed (reload). */
void sn_credit_settings_changed(struct sn_daemon *d);
json_t *sn_credit_status_json(const struct sn_daemon *d);

/* sn_control.c */
int sn_control_start(struct sn_daemon *d, char *err, size_t errlen);

/* sn_service.c: systemd readiness and watchdog, SIGHUP, a clean stop */
int sn_service_start(struct sn_daemon *d);
/* A seed was contacted: READY=1 once the listener is up and every seed was. */
void sn_service_check_ready(struct sn_daemon *d);
/* Raise the open-file limit towards what max-peers needs; warn if short. */
void sn_service_check_nofile(struct sn_daemon *d);
/* After the loop stopped: STOPPING=1, peers told, the federation left. */
void sn_service_farewell(struct sn_daemon *d);
void sn_service_stop(struct sn_daemon *d);

/* sn_metrics.c: Prometheus text (control "metrics" and metrics-listen) */
void sn_metrics_render(struct evbuffer *out, void *daemon);
int sn_metrics_start(struct sn_daemon *d, char *err, size_t errlen);
void sn_metrics_stop(struct sn_daemon *d);

#endif
