/* sn_daemon_int.h - private to supernode/daemon/: the daemon itself (the
 * features' shared context and what only the daemon keeps) and what its
 * files share: sn_daemon.c (start, run, stop), sn_dispatch.c (the link
 * hooks, the table of messages, the events features raise for others),
 * sn_service.c (systemd, SIGHUP, a clean stop), sn_control.c (the control
 * socket), sn_metrics.c (Prometheus). */
#ifndef SOVA_SN_DAEMON_INT_H
#define SOVA_SN_DAEMON_INT_H

#ifndef SOVA_SN_DAEMON_INTERNAL
#error "sn_daemon_int.h is private to supernode/daemon/"
#endif

#include "ctl.h"
#include "sn_ctx.h"
#include "sn_fed_links.h"
#include "sn_membership.h"
#include "sn_search.h"

#include <event2/buffer.h>

struct service;
struct metrics_http;

struct sn_daemon {
    struct sn_ctx ctx; /* first: what the features share (sn_ctx.h) */
    int argc;          /* the options main loaded ctx.s from, */
    char *const *argv; /* loaded again on SIGHUP */
    struct ctl_server *ctl;
    struct event *sweep;          /* silent peers looked for */
    struct service *svc;          /* systemd notify and watchdog; NULL without systemd */
    struct event *ready_timer;    /* ready anyway when seeds take too long */
    bool ready;                   /* READY=1 sent (or would have been) */
    struct metrics_http *metrics; /* the metrics-listen endpoint, if any */
};

/* sn_dispatch.c: the hooks of every link (accepted or dialed), and the
 * hooks the federation modules raise their events through. */
const struct link_hooks *sn_dispatch_link_hooks(void);
struct sn_fed_links_hooks sn_dispatch_fed_links_hooks(struct sn_daemon *d);
struct sn_membership_hooks sn_dispatch_membership_hooks(struct sn_daemon *d);
struct sn_search_hooks sn_dispatch_search_hooks(struct sn_daemon *d);

/* sn_service.c: systemd readiness and watchdog, SIGHUP, a clean stop */
int sn_service_start(struct sn_daemon *d);
/* A seed was contacted: READY=1 once the listener is up and every seed was. */
void sn_service_check_ready(struct sn_daemon *d);
/* Raise the open-file limit to the hard limit; warn if short of what
 * max-peers needs. */
void sn_service_check_nofile(struct sn_daemon *d);
/* After the loop stopped: STOPPING=1, peers told, the federation left. */
void sn_service_farewell(struct sn_daemon *d);
void sn_service_stop(struct sn_daemon *d);

/* sn_control.c */
int sn_control_start(struct sn_daemon *d, char *err, size_t errlen);

/* sn_metrics.c: Prometheus text (control "metrics" and metrics-listen) */
void sn_metrics_render(struct evbuffer *out, void *daemon);
int sn_metrics_start(struct sn_daemon *d, char *err, size_t errlen);
void sn_metrics_stop(struct sn_daemon *d);

#endif
