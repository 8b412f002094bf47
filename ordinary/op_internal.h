/* op_internal.h - the sova-peer daemon's state, owned by op_daemon.c (setup
 * and glue) and read by op_control.c, op_service.c and op_metrics.c. Parts
 * with a header of their own (op_query.h, op_control.h, ...) are declared
 * there, not here. Not for other folders. */
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
#include "op_folders.h"
#include "op_hook.h"
#include "op_limits.h"
#include "op_punch.h"
#include "op_query.h"
#include "op_reach.h"
#include "op_serve.h"
#include "op_session.h"
#include "op_share.h"
#include "op_store.h"
#include "tls.h"

#define OP_PUBLISH_BATCH      512  /* records per PUBLISH frame */
#define OP_REPUBLISH_RETRY_MS 2000 /* after a PUBLISH refused for the supernode's publish-rate */

struct service;
struct metrics_http;
struct op_api;

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
    struct op_folders *folders; /* the share folders, watched */
    struct op_hook *hook;       /* on-complete */
    struct op_share *share;     /* op_folders_share(folders): NULL when none */
    struct op_server *server;
    struct op_fetcher *fetcher;
    struct op_limits *bw; /* the bandwidth limits in force */
    struct op_session *session;
    struct op_reach *reach;  /* are we reachable, and why */
    struct nat_relay *relay; /* relay circuits over the primary session */
    struct op_punch *punch;  /* hole punches we answer as a source */
    /* receipts and credit (docs/CREDITS.md) */
    struct op_credit *credit;
    struct ctl_server *ctl;
    struct event *rescan;       /* periodic share rescan */
    struct event *republish;    /* a PUBLISH refused for its rate: everything again */
    struct op_queries *queries; /* searches in flight and the hits they brought */
    uint64_t started_ms;
    size_t published;    /* records the supernode accepted since attaching */
    bool share_ready;    /* the first share scan has finished */
    bool share_replaced; /* the share worker was replaced: its first result publishes all */
    /* operations (op_service.c, op_metrics.c) */
    int argc;                           /* the options main loaded s from, */
    char *const *argv;                  /* loaded again on SIGHUP */
    struct service *svc;                /* systemd notify and watchdog; NULL without systemd */
    struct metrics_http *metrics;       /* the metrics-listen endpoint, if any */
    struct op_api *api;                 /* the HTTP API (op_api.h), if api-listen is set */
    char api_address[64];               /* where it listens; "" when off */
    struct op_ui *ui;                   /* the web UI, owned by d->api; NULL when off */
    struct nat_netwatch *netwatch;      /* the host's addresses changing; NULL: none */
    char ui_base[96];                   /* "http(s)://127.0.0.1:PORT": its login links */
    struct link_counters link_counters; /* handshake failures, errors sent */
    struct link_budget *budget;         /* handshakes, connections per address, frames */
    uint64_t reloads, reload_failures;  /* SIGHUPs applied / refused */
};

/* op_service.c: systemd readiness and watchdog, SIGHUP */
int op_service_start(struct op_daemon *d);
void op_service_stopping(struct op_daemon *d);
void op_service_stop(struct op_daemon *d);

/* op_metrics.c: Prometheus text (control "metrics" and metrics-listen) */
void op_metrics_render(struct evbuffer *out, void *daemon);
int op_metrics_start(struct op_daemon *d, char *err, size_t errlen);
void op_metrics_stop(struct op_daemon *d);

#endif
