/* op_punch.c - the source's end of a hole punch (op_punch.h). */
#include "op_punch.h"
#include "log.h"
#include "nat_punch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wait {
    struct op_punch *owner;
    bool used;
    bool dialing; /* SYNC came: our end dials */
    uint8_t peer_id[WIRE_ID_LEN];
    char short_id[NODE_ID_SHORT_LEN + 1];
    uint8_t token[WIRE_TOKEN_LEN];
    struct wire_addr to; /* the downloader's address, from its OFFER */
    struct nat_punch *end;
    struct event *timer; /* the SYNC's deadline */
};

struct op_punch {
    struct op_punch_env env;
    struct wait waits[OP_PUNCH_MAX_WAITS];
    struct op_punch_stats stats;
};

static void wait_drop(struct wait *w)
{
    nat_punch_free(w->end);
    w->end = NULL;
    if (w->timer != NULL)
        evtimer_del(w->timer);
    w->used = false;
    w->dialing = false;
}

static void on_sync_late(evutil_socket_t fd, short what, void *arg)
{
    struct wait *w = arg;
    (void)fd, (void)what;
    log_info("punch", "%s: no SYNC for its punch in %u ms: dropped", w->short_id,
             OP_PUNCH_SYNC_WAIT_MS);
    w->owner->stats.failed++;
    wait_drop(w);
}

struct op_punch *op_punch_new(const struct op_punch_env *env)
{
    struct op_punch *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->env = *env;
    for (unsigned i = 0; i < OP_PUNCH_MAX_WAITS; i++) {
        p->waits[i].owner = p;
        p->waits[i].timer = evtimer_new(env->base, on_sync_late, &p->waits[i]);
        if (p->waits[i].timer == NULL) {
            op_punch_free(p);
            return NULL;
        }
    }
    return p;
}

void op_punch_free(struct op_punch *p)
{
    if (p == NULL)
        return;
    for (unsigned i = 0; i < OP_PUNCH_MAX_WAITS; i++) {
        nat_punch_free(p->waits[i].end);
        if (p->waits[i].timer != NULL)
            event_free(p->waits[i].timer);
    }
    free(p);
}

void op_punch_stats(const struct op_punch *p, struct op_punch_stats *out)
{
    *out = p->stats;
}

static void answer(struct op_punch *p, const struct msg_punch_note *n, uint8_t step, uint16_t port)
{
    struct msg_punch m = {.step = step, .port = port};
    memcpy(m.peer_id, n->peer_id, WIRE_ID_LEN);
    memcpy(m.token, n->token, WIRE_TOKEN_LEN);
    p->env.send(&m, p->env.arg);
}

static struct wait *wait_find(struct op_punch *p, const struct msg_punch_note *n)
{
    for (unsigned i = 0; i < OP_PUNCH_MAX_WAITS; i++) {
        struct wait *w = &p->waits[i];
        if (w->used && memcmp(w->peer_id, n->peer_id, WIRE_ID_LEN) == 0 &&
            memcmp(w->token, n->token, WIRE_TOKEN_LEN) == 0)
            return w;
    }
    return NULL;
}

static void on_punched(struct bufferevent *bev, const char *why, void *arg)
{
    struct wait *w = arg;
    struct op_punch *p = w->owner;
    unsigned attempts = nat_punch_attempts(w->end);
    char name[NODE_ID_SHORT_LEN + 1];
    memcpy(name, w->short_id, sizeof(name));
    uint8_t peer[WIRE_ID_LEN];
    memcpy(peer, w->peer_id, WIRE_ID_LEN);
    wait_drop(w);
    if (bev == NULL) {
        p->stats.failed++;
        log_info("punch", "%s: our end of the punch gave up after %u connects: %s", name, attempts,
                 why);
        return;
    }
    SSL *ssl = NULL;
    if (tls_ctx_server(p->env.tls, peer, &ssl) != 0) {
        bufferevent_free(bev);
        p->stats.failed++;
        return;
    }
    p->stats.connected++;
    log_info("punch", "%s: punched through (%u connects): serving it", name, attempts);
    op_server_wrap_punched(p->env.server, bev, ssl, name);
}

static void on_offer(struct op_punch *p, const struct msg_punch_note *n, const char *who)
{
    p->stats.offers++;
    if (wait_find(p, n) != NULL)
        return; /* the same OFFER again: the READY is on its way */
    if (!nat_punch_routable(&n->addr)) {
        p->stats.refused++;
        log_info("punch", "%s: punch offer refused: no route to its address (%s)", who,
                 n->addr.family == WIRE_ADDR_IPV4 ? "IPv4" : "IPv6");
        answer(p, n, MSG_PUNCH_NO, 0);
        return;
    }
    if (!p->env.keeps_ports(p->env.arg)) {
        p->stats.refused++;
        log_info("punch", "%s: punch offer refused: our NAT changes ports (or we do not know yet)",
                 who);
        answer(p, n, MSG_PUNCH_NO, 0);
        return;
    }
    struct wait *w = NULL;
    for (unsigned i = 0; i < OP_PUNCH_MAX_WAITS && w == NULL; i++)
        if (!p->waits[i].used)
            w = &p->waits[i];
    if (w == NULL) {
        p->stats.refused++;
        log_info("punch", "%s: punch offer refused: %u punches already waiting", who,
                 OP_PUNCH_MAX_WAITS);
        answer(p, n, MSG_PUNCH_NO, 0);
        return;
    }
    char err[128];
    w->end = nat_punch_new(p->env.base, n->addr.family, p->env.bind_addr, p->env.bind_len, err,
                           sizeof(err));
    if (w->end == NULL) {
        p->stats.refused++;
        log_warn("punch", "%s: cannot punch: %s", who, err);
        answer(p, n, MSG_PUNCH_NO, 0);
        return;
    }
    w->used = true;
    memcpy(w->peer_id, n->peer_id, WIRE_ID_LEN);
    memcpy(w->token, n->token, WIRE_TOKEN_LEN);
    snprintf(w->short_id, sizeof(w->short_id), "%s", who);
    w->to = n->addr;
    struct timeval tv = {.tv_sec = OP_PUNCH_SYNC_WAIT_MS / 1000,
                         .tv_usec = (OP_PUNCH_SYNC_WAIT_MS % 1000) * 1000};
    evtimer_add(w->timer, &tv);
    answer(p, n, MSG_PUNCH_READY, nat_punch_port(w->end));
    char where[64];
    log_info("punch", "%s: punch offer from %s: ready on port %u", who,
             wire_addr_format(&n->addr, where, sizeof(where)), nat_punch_port(w->end));
}

static void on_sync(struct op_punch *p, const struct msg_punch_note *n, const char *who)
{
    struct wait *w = wait_find(p, n);
    if (w == NULL || w->dialing) {
        log_info("punch", "%s: a SYNC for no punch of ours: ignored", who);
        return;
    }
    evtimer_del(w->timer);
    w->dialing = true;
    if (nat_punch_start(w->end, &w->to, 0, OP_PUNCH_CONNECT_MS, on_punched, w) != 0) {
        p->stats.failed++;
        wait_drop(w);
    }
}

void op_punch_note(struct op_punch *p, const struct msg_punch_note *n)
{
    char id[NODE_ID_STR_LEN + 1], who[NODE_ID_SHORT_LEN + 1];
    node_id_format(n->peer_id, id);
    snprintf(who, sizeof(who), "%.*s", NODE_ID_SHORT_LEN, id);
    if (n->step == MSG_PUNCH_OFFER)
        on_offer(p, n, who);
    else if (n->step == MSG_PUNCH_SYNC)
        on_sync(p, n, who);
}
