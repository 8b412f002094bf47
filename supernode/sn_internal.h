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
#include "tls.h"

#include <stdint.h>

/* One accepted connection (the link's arg); for an ordinary peer also its
 * session (the index's peer_ctx). */
struct sn_peer {
    struct sn_daemon *d;
    struct link *link;
    uint8_t id[WIRE_ID_LEN];
    uint8_t session;                        /* enum msg_session */
    uint8_t reachability;                   /* enum msg_reachability, as claimed */
    struct wire_addr addrs[WIRE_MAX_ADDRS]; /* where others reach it */
    size_t n_addrs;
    bool indexed; /* holds the index entry for its ID */
};

struct sn_counters {
    uint64_t searches;  /* SEARCHes answered */
    uint64_t publishes; /* PUBLISH records applied */
    uint64_t locates;
    uint64_t bytes_in_closed, bytes_out_closed; /* of links already gone */
};

struct sn_daemon {
    const struct sn_settings *s;
    struct evloop *loop;
    struct sova_identity *id;
    struct tls_ctx *tls;
    struct wire_limits limits;
    struct link_params link_params;
    struct link_group links; /* every accepted connection */
    struct sn_index *index;
    struct ctl_server *ctl;
    struct event *sweep;
    char listen_addr[64];
    uint64_t started_ms;
    size_t n_peers, n_supernodes;
    struct sn_counters counters;
};

/* sn_peer.c: take an accepted connection (fd and ssl are owned from now). */
void sn_peer_accept(struct sn_daemon *d, evutil_socket_t fd, SSL *ssl, const struct sockaddr *sa,
                    socklen_t len);
/* Drop peers silent longer than peer-timeout (runs from a timer). */
void sn_peer_sweep(struct sn_daemon *d);

/* sn_control.c */
int sn_control_start(struct sn_daemon *d, char *err, size_t errlen);

#endif
