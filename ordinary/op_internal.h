/* op_internal.h - the sova-peer daemon's state, shared by its own files
 * (op_daemon.c: setup and glue; op_control.c: control socket commands).
 * Not for other folders. */
#ifndef SOVA_OP_INTERNAL_H
#define SOVA_OP_INTERNAL_H

#include "ctl.h"
#include "op_daemon.h"
#include "evloop.h"
#include "identity.h"
#include "link.h"
#include "op_config.h"
#include "op_credit.h"
#include "nat_relay.h"
#include "op_fetch.h"
#include "op_reach.h"
#include "op_serve.h"
#include "op_session.h"
#include "op_share.h"
#include "op_store.h"
#include "tls.h"

#define OP_HIT_CACHE_MAX      1024 /* search hits remembered for `get HASH` */
#define OP_PUBLISH_BATCH      512  /* records per PUBLISH frame */
#define OP_REPUBLISH_RETRY_MS 2000 /* after a PUBLISH refused for the supernode's publish-rate */

/* A search hit remembered so `sova-peer get HASH` knows name, size, sources. */
struct op_hit {
    uint8_t hash[WIRE_HASH_LEN];
    uint64_t size;
    char *name;
    struct msg_source *sources; /* deep copy: addrs owned */
    size_t n_sources;
    uint64_t seen_ms;
};

/* A search's answer, or its timeout (res NULL). The query is gone by then:
 * its waiter forgets the handle and may send another. */
typedef void op_query_done_fn(const struct msg_search_result *res, void *arg);

/* A SEARCH sent to the supernode that someone waits for. */
struct op_query {
    uint64_t id;
    struct op_daemon *d;
    op_query_done_fn *done;
    void *arg;
    struct event *timeout;
    struct op_query *next;
};

struct service;
struct metrics_http;

struct op_daemon {
    struct op_settings *s; /* main's; a reload (op_service.c) changes what may change */
    struct evloop *loop;
    struct sova_identity *id;
    struct tls_ctx *tls;
    struct wire_limits limits;
    struct link_params sn_params, peer_params;
    struct sockaddr_storage listen_ss;
    socklen_t listen_len;
    struct sockaddr_storage bind_ss; /* listen address, port 0: where we dial from */
    struct wire_addr listen_addrs[1];
    size_t n_listen_addrs;
    char listen_str[64];
    struct op_store *store;
    struct op_share *share;
    struct op_server *server;
    struct op_fetcher *fetcher;
    struct op_session *session;
    struct op_reach *reach;  /* are we reachable, and why */
    struct nat_relay *relay; /* relay circuits over the primary session */
    /* receipts and credit (docs/CREDITS.md) */
    struct op_credit *credit;
    struct ctl_server *ctl;
    struct event *rescan;    /* periodic share rescan */
    struct event *republish; /* a PUBLISH refused for its rate: everything again */
    struct op_hit hits[OP_HIT_CACHE_MAX];
    size_t n_hits;
    struct op_query *queries;
    uint64_t next_query_id;
    uint64_t started_ms;
    size_t published; /* records the supernode accepted since attaching */
    bool share_ready; /* the first share scan has finished */
    /* operations (op_service.c, op_metrics.c) */
    int argc;                           /* the options main loaded s from, */
    char *const *argv;                  /* loaded again on SIGHUP */
    struct service *svc;                /* systemd notify and watchdog; NULL without systemd */
    struct metrics_http *metrics;       /* the metrics-listen endpoint, if any */
    struct link_counters link_counters; /* handshake failures, errors sent */
    uint64_t searches_sent;             /* SEARCHes sent to the supernode */
    uint64_t reloads, reload_failures;  /* SIGHUPs applied / refused */
};

/* op_daemon.c */
const struct op_hit *op_hit_find(const struct op_daemon *d, const uint8_t hash[WIRE_HASH_LEN]);
/* Send a SEARCH. With done, the query is the daemon's until done runs (the
 * answer, or NULL after timeout_ms) or its waiter cancels it; *out is the
 * handle for op_query_cancel(). Without done, the SEARCH is sent and
 * forgotten: its answer only fills the hit cache (*out NULL). On an error
 * nothing waits. */
int op_query_send(struct op_daemon *d, const struct msg_search *search, unsigned timeout_ms,
                  op_query_done_fn *done, void *arg, struct op_query **out);
/* The waiter gives up (its client left): done never runs. */
void op_query_cancel(struct op_query *q);

/* op_service.c: systemd readiness and watchdog, SIGHUP */
int op_service_start(struct op_daemon *d);
void op_service_stopping(struct op_daemon *d);
void op_service_stop(struct op_daemon *d);

/* op_metrics.c: Prometheus text (control "metrics" and metrics-listen) */
void op_metrics_render(struct evbuffer *out, void *daemon);
int op_metrics_start(struct op_daemon *d, char *err, size_t errlen);
void op_metrics_stop(struct op_daemon *d);

/* op_control.c */
int op_control_start(struct op_daemon *d, char *err, size_t errlen);

#endif
