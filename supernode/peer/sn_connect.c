/* sn_connect.c - connection reversal: a downloader that others can reach
 * asks (CONNECT) that a source that cannot be reached connect out to it;
 * the source's supernode delivers the request (CONNECT_REQUEST), through
 * FWD_CONNECT when the source is attached to another supernode.
 *
 * The requester's addresses are taken from what this supernode knows of
 * it, not from the request: the ones a dial-back proved, else those on the
 * IP its connection comes from, never a bare claim. So a CONNECT cannot
 * make other peers dial a third party. Requests are rate-limited per peer
 * (shared with RELAY_OPEN, sn_conn.lim.connect).
 *
 * Success is not acknowledged: the requester waits for the incoming
 * connection and gives up after its own timeout. A target nobody knows is
 * answered with ERROR(not found). */
#include "sn_connect.h"
#include "err.h"
#include "log.h"
#include "sn_fed_links.h"
#include "sn_search.h"

#include <stdlib.h>
#include <string.h>

/* A CONNECT waiting to learn where its target is attached. */
struct connect_wait {
    struct sn_conn *asker;
    struct msg_fwd_connect fwd; /* request.addrs points at addrs */
    struct wire_addr addrs[WIRE_MAX_ADDRS];
};

/* The requester's addresses worth giving out: the ones a dial-back proved,
 * else those it registered that are on the IP its connection comes from
 * (sn_attach.c keeps no bare claim; LAN claims are left out: the target may
 * be anywhere). */
static size_t requester_addrs(const struct sn_conn *p, struct wire_addr *out)
{
    size_t n = 0, n_pub;
    for (size_t i = 0; i < p->n_verified && n < WIRE_MAX_ADDRS; i++)
        out[n++] = p->verified[i];
    if (n > 0)
        return n;
    const struct wire_addr *pub = sn_conn_addrs_for(p, NULL, &n_pub);
    for (size_t i = 0; i < n_pub && n < WIRE_MAX_ADDRS; i++)
        out[n++] = pub[i];
    return n;
}

static void deliver(struct sn_ctx *d, struct sn_conn *target, const struct msg_connect *req)
{
    struct msg m = {.type = MSG_CONNECT_REQUEST};
    m.u.connect_request = *req;
    link_send(target->link, &m);
    d->counters.connects++;
    char who[NODE_ID_STR_LEN + 1];
    node_id_format(req->peer_id, who);
    log_info("sn", "%s: asked to connect out to %.*s (reversal)", link_name(target->link),
             NODE_ID_SHORT_LEN, who);
}

static void not_found(struct sn_ctx *d, struct sn_conn *asker, const char *why)
{
    d->counters.connects_failed++;
    if (asker != NULL)
        link_send_error(asker->link, MSG_ERR_NOT_FOUND, MSG_CONNECT, why);
}

static void on_located(struct sn_ctx *d, const struct msg_locate_result *found, void *arg)
{
    struct connect_wait *w = arg;
    if (found == NULL || !found->found) {
        not_found(d, w->asker, "the peer to connect is not attached to the federation");
    } else if (sn_fed_send(d, found->sn_id,
                           &(struct msg){.type = MSG_FWD_CONNECT, .u.fwd_connect = w->fwd}) != 0) {
        not_found(d, w->asker, "no link to the supernode of the peer to connect");
    } else {
        d->counters.connects++;
    }
    if (w->asker != NULL)
        w->asker->ext[SN_EXT_CONNECT] = NULL;
    free(w);
}

void sn_connect_on_connect(struct sn_ctx *d, struct sn_conn *p, const struct msg *m)
{
    const struct msg_connect *c = &m->u.connect;
    if (sn_rate_take(&p->lim.connect, 1, link_now_ms(), NULL) != 0) {
        link_send_error(p->link, MSG_ERR_RATE_LIMITED, MSG_CONNECT, "too many CONNECT requests");
        return;
    }
    struct msg_connect req = {.addrs = NULL};
    struct wire_addr addrs[WIRE_MAX_ADDRS];
    req.n_addrs = requester_addrs(p, addrs);
    req.addrs = addrs;
    memcpy(req.peer_id, p->id, WIRE_ID_LEN);
    memcpy(req.token, c->token, WIRE_TOKEN_LEN);
    /* It reached for that peer: a report of it may count (sn_intro.h). */
    sn_intro_add(d->intros, p->id, c->peer_id, NULL, link_now_ms());
    if (req.n_addrs == 0) {
        link_send_error(p->link, MSG_ERR_BAD_VALUE, MSG_CONNECT,
                        "register an address to be connected to first");
        return;
    }
    struct sn_conn *target = sn_index_peer_ctx(d->index, c->peer_id);
    if (target != NULL && target != p) {
        deliver(d, target, &req);
        return;
    }
    if (target == p) {
        link_send_error(p->link, MSG_ERR_NOT_FOUND, MSG_CONNECT, "cannot connect to yourself");
        return;
    }
    if (p->ext[SN_EXT_CONNECT] != NULL) {
        link_send_error(p->link, MSG_ERR_RATE_LIMITED, MSG_CONNECT, "one CONNECT at a time");
        return;
    }
    struct connect_wait *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        link_send_error(p->link, MSG_ERR_INTERNAL, MSG_CONNECT, "out of memory");
        return;
    }
    w->asker = p;
    memcpy(w->fwd.target_id, c->peer_id, WIRE_ID_LEN);
    w->fwd.request = req;
    memcpy(w->addrs, addrs, req.n_addrs * sizeof(addrs[0]));
    w->fwd.request.addrs = w->addrs;
    p->ext[SN_EXT_CONNECT] = w;
    sn_search_locate_cb(d, c->peer_id, on_located, w);
}

void sn_connect_on_forwarded(struct sn_ctx *d, struct sn_conn *from, const struct msg *m)
{
    const struct msg_fwd_connect *f = &m->u.fwd_connect;
    struct sn_conn *target = sn_index_peer_ctx(d->index, f->target_id);
    if (target == NULL) {
        log_info("sn", "%s: FWD_CONNECT for a peer not attached here, dropped",
                 link_name(from->link));
        d->counters.connects_failed++;
        return;
    }
    deliver(d, target, &f->request);
}

void sn_connect_conn_gone(struct sn_ctx *d, struct sn_conn *p)
{
    (void)d;
    struct connect_wait *w = p->ext[SN_EXT_CONNECT];
    if (w != NULL)
        w->asker = NULL; /* answered into the void */
    p->ext[SN_EXT_CONNECT] = NULL;
}

/* The wait itself belongs to the pending locate, never to the link. */
static void connect_ext_free(void *ext)
{
    ((struct connect_wait *)ext)->asker = NULL;
}

void sn_connect_start(struct sn_ctx *d)
{
    d->ext_free[SN_EXT_CONNECT] = connect_ext_free;
}
