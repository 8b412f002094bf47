/* sn_relay.c - relay circuits (sn_relay.h): the I/O around the rules of
 * sn_relay_flow.h.
 *
 * A circuit splices two legs, each a (link, circuit id) pair: toward the
 * peer that asked (ORIGIN: that peer, or the supernode it is attached to)
 * and toward the peer it wants (TARGET: that peer, or its supernode).
 * Circuit IDs are per link; the side that dialed the link uses odd ones,
 * the side that accepted it even ones (docs/PROTOCOL.md).
 *
 * Data received on one leg is queued for the other (leg.pending) and sent
 * as sn_relay_flow.h allows; limits reached are answered with RELAY_CLOSE
 * and a reason, counted and logged: relay off, circuits in all (a pool
 * shared fairly by the origin's address prefix: a newcomer from a prefix
 * holding fewer displaces the least recently active circuit of the prefix
 * holding the most), circuits per prefix and per attached peer, bytes,
 * idle time and lifetime per circuit, bandwidth per attached peer and in
 * all, opens per second per peer (shared with CONNECT). Lookups walk the
 * few legs of one link. A link's own relay state and the feature's life
 * and status are in sn_relay_life.c. */
#define SN_RELAY_INTERNAL
#include "err.h"
#include "log.h"
#include "sn_fed_links.h"
#include "sn_relay_int.h"
#include "sn_search.h"
#include "sova_assert.h"

#include <stdlib.h>
#include <string.h>

static void circuit_flush(struct sn_circuit *c);

static struct sn_relay_leg *other(struct sn_relay_leg *l)
{
    return &l->c->leg[l == &l->c->leg[0] ? 1 : 0];
}

/* ---- legs ------------------------------------------------------------------------ */

static struct sn_relay_leg *leg_find(const struct sn_conn *p, uint32_t id)
{
    for (struct sn_relay_leg *l = rconn(p) ? rconn(p)->legs : NULL; l; l = l->next_on_link)
        if (l->id == id)
            return l;
    return NULL;
}

/* (p's relay_conn exists: relay_conn_make() succeeded for it.) */
static void leg_attach(struct sn_circuit *c, int i, struct sn_conn *p, uint32_t id)
{
    struct relay_conn *rc = rconn(p);
    struct sn_relay_leg *l = &c->leg[i];
    l->p = p;
    l->id = id;
    relay_flow_leg_init(&l->flow, MSG_RELAY_INITIAL_CREDIT);
    l->next_on_link = rc->legs;
    l->prev_on_link = NULL;
    if (rc->legs)
        rc->legs->prev_on_link = l;
    rc->legs = l;
    if (sn_conn_is_peer(p))
        rc->circuits++;
}

static void leg_detach(struct sn_relay_leg *l)
{
    struct sn_conn *p = l->p;
    if (p == NULL)
        return;
    struct relay_conn *rc = rconn(p);
    if (l->prev_on_link)
        l->prev_on_link->next_on_link = l->next_on_link;
    else
        rc->legs = l->next_on_link;
    if (l->next_on_link)
        l->next_on_link->prev_on_link = l->prev_on_link;
    if (sn_conn_is_peer(p)) {
        SOVA_ASSERT(rc->circuits > 0);
        rc->circuits--;
    }
    l->p = NULL;
}

/* The next unused circuit id on p's link, of our parity. */
static uint32_t next_id(struct sn_conn *p)
{
    struct relay_conn *rc = rconn(p);
    uint32_t first = link_is_dialer(p->link) ? 1 : 2;
    for (;;) {
        if (rc->next_id < first || rc->next_id > UINT32_MAX - 2)
            rc->next_id = first;
        else
            rc->next_id += 2;
        if (leg_find(p, rc->next_id) == NULL)
            return rc->next_id;
    }
}

static void send_close(struct sn_relay_leg *l, uint16_t reason)
{
    if (l->p == NULL)
        return;
    struct msg m = {.type = MSG_RELAY_CLOSE};
    m.u.relay_close = (struct msg_relay_close){l->id, reason};
    link_send(l->p->link, &m);
}

/* ---- circuits -------------------------------------------------------------------- */

static void on_circuit_timer(evutil_socket_t fd, short what, void *arg);

static size_t pending_len(const struct sn_relay_leg *l)
{
    return l->pending ? evbuffer_get_length(l->pending) : 0;
}

static struct sn_circuit *circuit_new(struct sn_relay *r)
{
    struct sn_circuit *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->r = r;
    c->timer = evtimer_new(evloop_base(r->d->loop), on_circuit_timer, c);
    c->leg[0].c = c->leg[1].c = c;
    if (c->timer == NULL) {
        free(c);
        return NULL;
    }
    c->created_ms = link_now_ms();
    c->next = r->circuits;
    if (r->circuits)
        r->circuits->prev = c;
    r->circuits = c;
    r->n++;
    return c;
}

void relay_circuit_free(struct sn_circuit *c)
{
    struct sn_relay *r = c->r;
    fair_leave(r->pool, &c->slot);
    if (c->state == CIRC_LOCATING)
        sn_search_locate_cancel(r->d, c);
    leg_detach(&c->leg[0]);
    leg_detach(&c->leg[1]);
    if (c->blocked) {
        struct sn_circuit **pp = &r->blocked;
        while (*pp && *pp != c)
            pp = &(*pp)->next_blocked;
        if (*pp)
            *pp = c->next_blocked;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        r->circuits = c->next;
    if (c->next)
        c->next->prev = c->prev;
    r->n--;
    event_free(c->timer);
    for (int i = 0; i < 2; i++)
        if (c->leg[i].pending)
            evbuffer_free(c->leg[i].pending);
    free(c);
}

/* End c: every leg but `from` (the one that closed, or -1) is told why. */
static void circuit_close(struct sn_circuit *c, uint16_t reason, int from, const char *why)
{
    char o[NODE_ID_SHORT_LEN + 1], t[NODE_ID_SHORT_LEN + 1];
    log_info("relay", "circuit %s -> %s closed: %s (%llu bytes in %llu s)",
             sn_short_id(c->origin_id, o), sn_short_id(c->target_id, t), why,
             (unsigned long long)c->bytes,
             (unsigned long long)((link_now_ms() - c->created_ms) / 1000));
    for (int i = 0; i < 2; i++)
        if (i != from)
            send_close(&c->leg[i], reason);
    relay_circuit_free(c);
}

/* Turn a RELAY_OPEN down: counted, logged once, answered on its own leg. */
static void refuse(struct sn_relay *r, struct sn_conn *p, uint32_t id, uint16_t reason,
                   const char *why)
{
    r->counters.refused++;
    if (reason <= MSG_ERR_TIMEOUT)
        r->refused_by[reason]++;
    log_info("relay", "%s: circuit refused: %s", link_name(p->link), why);
    struct msg m = {.type = MSG_RELAY_CLOSE};
    m.u.relay_close = (struct msg_relay_close){id, reason};
    link_send(p->link, &m);
}

/* Ask the next hop (the target, or its supernode) to carry the circuit. */
static void circuit_extend(struct sn_circuit *c, struct sn_conn *next)
{
    if (relay_conn_make(next) == NULL) {
        circuit_close(c, MSG_ERR_INTERNAL, TARGET, "out of memory");
        return;
    }
    leg_attach(c, TARGET, next, next_id(next));
    c->state = CIRC_OPENING;
    struct msg m = {.type = MSG_RELAY_OPEN};
    m.u.relay_open.circuit_id = c->leg[TARGET].id;
    memcpy(m.u.relay_open.target_id, c->target_id, WIRE_ID_LEN);
    memcpy(m.u.relay_open.origin_id, c->origin_id, WIRE_ID_LEN);
    memcpy(m.u.relay_open.token, c->token, WIRE_TOKEN_LEN);
    link_send(next->link, &m);
}

static void on_located(struct sn_ctx *d, const struct msg_locate_result *found, void *arg)
{
    struct sn_circuit *c = arg;
    c->state = CIRC_OPENING; /* no longer waiting for the locate */
    struct sn_conn *sn = found && found->found ? sn_fed_link(d, found->sn_id) : NULL;
    if (sn == NULL) {
        c->r->refused_by[MSG_ERR_NOT_FOUND]++;
        circuit_close(c, MSG_ERR_NOT_FOUND, TARGET, "target not attached to the federation");
        return;
    }
    circuit_extend(c, sn);
}

/* ---- bandwidth -------------------------------------------------------------------- */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* Bytes c may move now: the total limit and that of each attached peer. */
static uint64_t bandwidth_available(struct sn_circuit *c, uint64_t now)
{
    uint64_t n = sn_rate_available(&c->r->total, now);
    for (int i = 0; i < 2; i++)
        if (sn_conn_is_peer(c->leg[i].p))
            n = min_u64(n, sn_rate_available(&rconn(c->leg[i].p)->bucket, now));
    return n;
}

static void bandwidth_take(struct sn_circuit *c, uint64_t n, uint64_t now)
{
    sn_rate_take(&c->r->total, n, now, NULL);
    for (int i = 0; i < 2; i++)
        if (sn_conn_is_peer(c->leg[i].p))
            sn_rate_take(&rconn(c->leg[i].p)->bucket, n, now, NULL);
}

static void block(struct sn_circuit *c)
{
    struct sn_relay *r = c->r;
    if (c->blocked)
        return;
    c->blocked = true;
    c->next_blocked = r->blocked;
    r->blocked = c;
    if (!evtimer_pending(r->retry, NULL))
        sn_timer_ms(r->retry, RELAY_RETRY_MS);
}

void relay_on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct sn_relay *r = arg;
    (void)fd, (void)what;
    /* Take the list; flushing a circuit may block it again (a new list) or
     * end it, never another one. */
    struct sn_circuit *list = r->blocked;
    r->blocked = NULL;
    while (list != NULL) {
        struct sn_circuit *c = list;
        list = c->next_blocked;
        c->next_blocked = NULL;
        c->blocked = false;
        circuit_flush(c);
    }
}

/* ---- data ------------------------------------------------------------------------- */

/* Give x's sender its credit back once a grant step is owed. */
static void grant(struct sn_relay_leg *x)
{
    if (x->p == NULL)
        return;
    uint32_t credit = relay_flow_grant(&x->flow);
    if (credit == 0)
        return;
    struct msg m = {.type = MSG_RELAY_WINDOW};
    m.u.relay_window = (struct msg_relay_window){x->id, credit};
    link_send(x->p->link, &m);
}

/* The flow-control invariant of both directions of an open circuit. */
static void check_balanced(const struct sn_circuit *c)
{
    for (int i = 0; i < 2; i++) {
        const struct sn_relay_leg *x = &c->leg[i], *y = &c->leg[1 - i];
        SOVA_ASSERT(relay_flow_balanced(&x->flow, pending_len(y), MSG_RELAY_INITIAL_CREDIT));
    }
}

/* Finish a closing circuit once what it still had for its last leg is out. */
static bool closing_done(struct sn_circuit *c)
{
    if (c->state != CIRC_CLOSING)
        return false;
    for (int i = 0; i < 2; i++)
        if (c->leg[i].p != NULL && pending_len(&c->leg[i]) > 0)
            return false;
    circuit_close(c, c->close_reason, -1, "closed by the other end");
    return true;
}

static struct relay_flow_room leg_room(struct sn_circuit *c, struct sn_relay_leg *y, size_t queued,
                                       uint64_t now)
{
    return (struct relay_flow_room){.queued = queued,
                                    .link_queued = link_output_len(y->p->link),
                                    .bandwidth = bandwidth_available(c, now),
                                    .max_frame_data = c->r->d->limits.max_relay_data};
}

/* Send what waits on each leg as far as its credit, the bandwidth and its
 * link allow (sn_relay_flow.h), and give the leg the data came from its
 * credit back. May end a closing circuit (then c is gone). */
static void circuit_flush(struct sn_circuit *c)
{
    uint64_t now = link_now_ms();
    for (int i = 0; i < 2; i++) {
        struct sn_relay_leg *y = &c->leg[i], *x = other(y);
        while (y->p != NULL) {
            size_t n;
            struct relay_flow_room room = leg_room(c, y, pending_len(y), now);
            enum relay_flow_verdict v = relay_flow_next(&y->flow, &room, &n);
            if (v == RELAY_FLOW_WAIT_BANDWIDTH)
                block(c); /* the retry timer brings us back */
            /* WAIT_LINK: its drained hook brings us back; WAIT_CREDIT: RELAY_WINDOW */
            if (v != RELAY_FLOW_SEND)
                break;
            bandwidth_take(c, n, now);
            struct msg m = {.type = MSG_RELAY_DATA};
            m.u.relay_data.circuit_id = y->id;
            m.u.relay_data.data.ptr = evbuffer_pullup(y->pending, (ev_ssize_t)n);
            m.u.relay_data.data.len = n;
            link_send(y->p->link, &m);
            evbuffer_drain(y->pending, n);
            relay_flow_sent(&y->flow, &x->flow, n);
        }
        grant(x);
    }
    if (c->state == CIRC_OPEN)
        check_balanced(c);
    closing_done(c);
}

static void on_data(struct sn_relay *r, struct sn_relay_leg *x, const struct msg_relay_data *m)
{
    struct sn_circuit *c = x->c;
    if (c->state == CIRC_CLOSING)
        return; /* the other end is gone: its last words go nowhere */
    if (c->state != CIRC_OPEN) {
        circuit_close(c, MSG_ERR_PROTOCOL, -1, "data before the circuit was open");
        return;
    }
    if (relay_flow_received(&x->flow, m->data.len) != 0) {
        circuit_close(c, MSG_ERR_PROTOCOL, -1, "more data than its window allowed");
        return;
    }
    c->bytes += m->data.len;
    r->counters.bytes += m->data.len;
    c->clock.last_data_ms = link_now_ms(); /* not idle; the last of its prefix to be displaced */
    fair_touch(r->pool, &c->slot);
    uint64_t max = r->d->s->relay_max_bytes;
    if (max != 0 && c->bytes > max) {
        r->counters.closed_limit++;
        circuit_close(c, MSG_ERR_LIMIT_REACHED, -1, "relay-max-bytes reached");
        return;
    }
    struct sn_relay_leg *y = other(x);
    size_t len = m->data.len, n = 0;
    uint64_t now = link_now_ms();
    if (pending_len(y) == 0 && y->p != NULL) {
        struct relay_flow_room room = leg_room(c, y, len, now);
        if (relay_flow_next(&y->flow, &room, &n) == RELAY_FLOW_SEND && n == len) {
            /* Nothing waits and everything allows it: straight on. */
            bandwidth_take(c, len, now);
            struct msg out = {.type = MSG_RELAY_DATA};
            out.u.relay_data = (struct msg_relay_data){y->id, m->data};
            link_send(y->p->link, &out);
            relay_flow_sent(&y->flow, &x->flow, len);
            grant(x);
            check_balanced(c);
            return;
        }
    }
    if (y->pending == NULL && (y->pending = evbuffer_new()) == NULL) {
        circuit_close(c, MSG_ERR_INTERNAL, -1, "out of memory");
        return;
    }
    evbuffer_add(y->pending, m->data.ptr, len);
    circuit_flush(c);
}

/* ---- messages ----------------------------------------------------------------------- */

/* The group a circuit counts in: the address prefix of the peer that asked
 * for it, or, for one another supernode asked for, that supernode (it
 * holds its own peers to their shares). */
static size_t pool_key(const struct sn_conn *p, bool from_sn, uint8_t key[FAIR_KEY_MAX])
{
    if (!from_sn)
        return fair_key_prefix(link_remote_addr(p->link), key);
    key[0] = 'S';
    memcpy(key + 1, p->id, WIRE_ID_LEN);
    return 1 + WIRE_ID_LEN;
}

/* Make room for a newcomer: the least recently active circuit of the prefix
 * holding the most is closed on both legs. */
static void displace(struct sn_relay *r, struct fair_holder *victim)
{
    struct sn_circuit *c = victim->owner;
    r->counters.displaced++;
    circuit_close(c, MSG_ERR_LIMIT_REACHED, -1,
                  "displaced: relay-max-circuits full and its network holds the most");
}

static void on_open(struct sn_relay *r, struct sn_conn *p, const struct msg_relay_open *o)
{
    struct sn_ctx *d = r->d;
    bool from_sn = link_remote_role(p->link) == MSG_ROLE_SUPERNODE;
    /* The remote chooses ids of its own parity: odd if it dialed the link. */
    uint32_t parity = link_is_dialer(p->link) ? 0 : 1;
    if ((o->circuit_id & 1u) != parity || leg_find(p, o->circuit_id) != NULL) {
        log_warn("relay", "%s: RELAY_OPEN with circuit id %u, which is not its to choose",
                 link_name(p->link), o->circuit_id);
        link_close_about(p->link, MSG_ERR_PROTOCOL, MSG_RELAY_OPEN, "bad circuit id");
        return;
    }
    struct sn_conn *target = sn_index_peer_ctx(d->index, o->target_id);
    uint8_t key[FAIR_KEY_MAX];
    size_t key_len = pool_key(p, from_sn, key);
    struct fair_holder *victim = NULL;
    enum fair_verdict pool = d->s->relay_max_circuits == 0
                                 ? FAIR_FULL
                                 : fair_check_key(r->pool, key, key_len, 1, &victim);
    struct relay_flow_open rules = {
        .relay_on = d->s->relay,
        .from_supernode = from_sn,
        .origin_registered = p->indexed,
        .origin_is_sender = memcmp(o->origin_id, p->id, WIRE_ID_LEN) == 0,
        .pool = pool,
        .origin_circuits = sn_relay_conn_circuits(p),
        .target_circuits = target ? sn_relay_conn_circuits(target) : 0,
        .max_peer_circuits = d->s->relay_max_peer_circuits,
        .target_here = target != NULL,
        .target_is_origin = target == p,
    };
    const char *why = NULL;
    uint16_t reason = relay_flow_admit(&rules, &p->lim.connect, link_now_ms(), &why);
    if (reason != 0) {
        refuse(r, p, o->circuit_id, reason, why);
        return;
    }
    if (relay_conn_make(p) == NULL) {
        refuse(r, p, o->circuit_id, MSG_ERR_INTERNAL, "out of memory");
        return;
    }
    /* Full: each displaced circuit frees one slot (the pool is the count). */
    while (pool == FAIR_DISPLACE) {
        displace(r, victim);
        pool = fair_check_key(r->pool, key, key_len, 1, &victim);
    }
    struct sn_circuit *c = circuit_new(r);
    if (c == NULL || fair_join(r->pool, &c->slot, key, key_len, 1, c) != 0) {
        if (c != NULL)
            relay_circuit_free(c);
        refuse(r, p, o->circuit_id, MSG_ERR_INTERNAL, "out of memory");
        return;
    }
    memcpy(c->origin_id, o->origin_id, WIRE_ID_LEN);
    memcpy(c->target_id, o->target_id, WIRE_ID_LEN);
    memcpy(c->token, o->token, WIRE_TOKEN_LEN);
    leg_attach(c, ORIGIN, p, o->circuit_id);
    if (!from_sn) /* it reached for that peer: a report of it may count (sn_intro.h) */
        sn_intro_add(d->intros, p->id, o->target_id, NULL, link_now_ms());
    sn_timer_ms(c->timer, d->s->relay_open_timeout_ms);
    if (target != NULL) {
        circuit_extend(c, target);
        return;
    }
    c->state = CIRC_LOCATING; /* attached elsewhere, perhaps: ask the federation */
    sn_search_locate_cb(d, o->target_id, on_located, c);
}

/* An open circuit looks at its clock when its idle time or its lifetime
 * may be up (not at every RELAY_DATA: the idle deadline moves with data). */
void relay_arm_open_timer(struct sn_circuit *c, uint64_t now)
{
    uint64_t next;
    if (relay_flow_due(&c->clock, now, &next) != RELAY_FLOW_DUE_NONE)
        next = now;
    if (next == UINT64_MAX)
        evtimer_del(c->timer);
    else
        sn_timer_ms(c->timer, next - now);
}

static void on_accept(struct sn_relay *r, struct sn_relay_leg *l)
{
    struct sn_circuit *c = l->c;
    if (l != &c->leg[TARGET] || c->state != CIRC_OPENING) {
        circuit_close(c, MSG_ERR_PROTOCOL, -1, "RELAY_ACCEPT out of place");
        return;
    }
    c->state = CIRC_OPEN;
    r->counters.opened++;
    uint64_t now = link_now_ms();
    c->clock = (struct relay_flow_clock){.opened_ms = now,
                                         .last_data_ms = now,
                                         .idle_ms = r->d->s->relay_idle_timeout_s * 1000,
                                         .life_ms = r->d->s->relay_max_duration_s * 1000};
    relay_arm_open_timer(c, now);
    struct sn_relay_leg *o = &c->leg[ORIGIN];
    struct msg m = {.type = sn_conn_is_peer(o->p) ? MSG_RELAY_OPENED : MSG_RELAY_ACCEPT};
    m.u.relay_opened.circuit_id = o->id;
    link_send(o->p->link, &m);
    char a[NODE_ID_SHORT_LEN + 1], b[NODE_ID_SHORT_LEN + 1];
    log_info("relay", "circuit %s -> %s open (%s -> %s), %zu circuits",
             sn_short_id(c->origin_id, a), sn_short_id(c->target_id, b), link_name(o->p->link),
             link_name(l->p->link), r->n);
}

static void on_window(struct sn_relay_leg *l, uint32_t credit)
{
    struct sn_circuit *c = l->c;
    if (relay_flow_window(&l->flow, credit) != 0) {
        circuit_close(c, MSG_ERR_PROTOCOL, -1, "window beyond any sense");
        return;
    }
    circuit_flush(c);
}

static void on_close(struct sn_relay_leg *x, uint16_t reason)
{
    struct sn_circuit *c = x->c;
    struct sn_relay_leg *y = other(x);
    if (c->state == CIRC_OPEN && y->p != NULL && pending_len(y) > 0) {
        /* Deliver what it sent before closing, then the close. */
        c->state = CIRC_CLOSING;
        c->close_reason = reason;
        leg_detach(x);
        sn_timer_ms(c->timer, RELAY_CLOSE_FLUSH_MS);
        circuit_flush(c);
        return;
    }
    circuit_close(c, reason, (int)(x - c->leg),
                  reason ? msg_error_code_str(reason) : "normal close");
}

void sn_relay_on_message(struct sn_ctx *d, struct sn_conn *p, const struct msg *m)
{
    struct sn_relay *r = d->relay;
    if (m->type == MSG_RELAY_OPEN) {
        on_open(r, p, &m->u.relay_open);
        return;
    }
    if (m->type == MSG_RELAY_OPENED) {
        link_send_error(p->link, MSG_ERR_PROTOCOL, m->type, "RELAY_OPENED goes to peers only");
        link_close(p->link, 0, NULL); /* ERROR 100 closes the link */
        return;
    }
    uint32_t id = msg_relay_circuit_id(m);
    struct sn_relay_leg *l = leg_find(p, id);
    if (l == NULL) {
        /* Closed a moment ago, most likely; frames in flight are dropped. */
        log_debug("relay", "%s: %s for unknown circuit %u", link_name(p->link),
                  msg_type_name(m->type), id);
        return;
    }
    switch (m->type) {
    case MSG_RELAY_ACCEPT:
        on_accept(r, l);
        return;
    case MSG_RELAY_DATA:
        on_data(r, l, &m->u.relay_data);
        return;
    case MSG_RELAY_WINDOW:
        on_window(l, m->u.relay_window.credit);
        return;
    default:
        on_close(l, m->u.relay_close.reason);
        return;
    }
}

static void on_circuit_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sn_circuit *c = arg;
    (void)fd, (void)what;
    switch (c->state) {
    case CIRC_LOCATING:
    case CIRC_OPENING:
        c->r->refused_by[MSG_ERR_TIMEOUT]++;
        circuit_close(c, MSG_ERR_TIMEOUT, -1, "the far end did not accept in time");
        return;
    case CIRC_OPEN: {
        uint64_t now = link_now_ms(), next;
        c->clock.idle_ms = c->r->d->s->relay_idle_timeout_s * 1000; /* reloads apply */
        switch (relay_flow_due(&c->clock, now, &next)) {
        case RELAY_FLOW_DUE_LIFETIME:
            c->r->counters.closed_limit++;
            circuit_close(c, MSG_ERR_LIMIT_REACHED, -1, "relay-max-duration-s reached");
            return;
        case RELAY_FLOW_DUE_IDLE:
            c->r->counters.closed_idle++;
            circuit_close(c, MSG_ERR_TIMEOUT, -1, "idle for relay-idle-timeout-s");
            return;
        case RELAY_FLOW_DUE_NONE:
            relay_arm_open_timer(c, now);
            return;
        }
        return;
    }
    case CIRC_CLOSING:
        circuit_close(c, c->close_reason, -1, "closed by the other end (flush timed out)");
        return;
    }
}

void sn_relay_conn_gone(struct sn_ctx *d, struct sn_conn *p)
{
    (void)d;
    while (rconn(p) != NULL && rconn(p)->legs != NULL) {
        struct sn_relay_leg *l = rconn(p)->legs;
        leg_detach(l);
        circuit_close(l->c, MSG_ERR_NONE, -1, "one end's link closed");
    }
}

void sn_relay_conn_drained(struct sn_ctx *d, struct sn_conn *p)
{
    (void)d;
    struct sn_relay_leg *l = rconn(p) ? rconn(p)->legs : NULL;
    while (l != NULL) {
        struct sn_relay_leg *next = l->next_on_link; /* flushing frees only l's circuit */
        if (pending_len(l) > 0)
            circuit_flush(l->c);
        l = next;
    }
}
