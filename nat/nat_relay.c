/* nat_relay.c - the peer's ends of relay circuits (nat_relay.h).
 *
 * Each circuit is a bufferevent pair: the owner's end carries its TLS
 * records, ours turns them into RELAY_DATA frames and back. Credit in
 * (recv_window) is granted back as the owner's end drains what we put in
 * its input (an evbuffer callback counts it); credit out (send_credit) is
 * what the supernode granted us. */
#include "nat_relay.h"
#include "err.h"
#include "log.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

enum circuit_state { CIRCUIT_OPENING, CIRCUIT_OPEN };

struct nat_relay_circuit {
    struct nat_relay *r;
    struct nat_relay_circuit *next, *prev;
    uint32_t id;
    enum circuit_state state;
    uint32_t send_credit, recv_window, owed;
    struct bufferevent *ours;           /* NULL until open */
    struct evbuffer *theirs_in;         /* the owner's input, while it exists */
    struct evbuffer_cb_entry *consumed; /* counts what the owner takes from it */
    nat_relay_open_fn *fn;              /* origin: told once, then NULL */
    void *fn_arg;
    struct event *timer; /* opening deadline */
};

struct nat_relay {
    struct event_base *base;
    const struct wire_limits *lim;
    struct nat_relay_hooks hooks;
    void *arg;
    struct nat_relay_circuit *circuits;
    uint32_t next_id;
    struct nat_relay_stats stats;
};

static void send_close(struct nat_relay_circuit *c, uint16_t reason)
{
    struct msg m = {.type = MSG_RELAY_CLOSE};
    m.u.relay_close = (struct msg_relay_close){c->id, reason};
    c->r->hooks.send(&m, c->r->arg);
}

/* Forget c. The owner's stream, if it still has one, gets whatever we
 * still hold for it and then EOF. */
static void circuit_end(struct nat_relay_circuit *c)
{
    struct nat_relay *r = c->r;
    if (c->ours != NULL) {
        /* theirs_in is NULL once the owner's end said it is done (it may
         * not be freed yet, but it is no longer ours to touch). */
        if (c->theirs_in != NULL && bufferevent_pair_get_partner(c->ours) != NULL) {
            evbuffer_remove_cb_entry(c->theirs_in, c->consumed);
            bufferevent_flush(c->ours, EV_WRITE, BEV_FINISHED);
        }
        bufferevent_free(c->ours);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        r->circuits = c->next;
    if (c->next)
        c->next->prev = c->prev;
    r->stats.circuits--;
    if (c->timer)
        event_free(c->timer);
    free(c);
}

/* An opening circuit failed: tell its owner, then forget it. */
static void open_failed(struct nat_relay_circuit *c, uint16_t reason)
{
    nat_relay_open_fn *fn = c->fn;
    void *arg = c->fn_arg;
    c->fn = NULL;
    circuit_end(c);
    if (fn)
        fn(NULL, reason, arg);
}

static struct nat_relay_circuit *circuit_find(const struct nat_relay *r, uint32_t id)
{
    for (struct nat_relay_circuit *c = r->circuits; c; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

static struct nat_relay_circuit *circuit_new(struct nat_relay *r, uint32_t id)
{
    struct nat_relay_circuit *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->r = r;
    c->id = id;
    c->send_credit = MSG_RELAY_INITIAL_CREDIT;
    c->recv_window = MSG_RELAY_INITIAL_CREDIT;
    c->next = r->circuits;
    if (r->circuits)
        r->circuits->prev = c;
    r->circuits = c;
    r->stats.circuits++;
    return c;
}

/* ---- bytes ------------------------------------------------------------------------ */

/* Send what the owner wrote, as far as our credit goes. */
static void pump_out(struct nat_relay_circuit *c)
{
    struct evbuffer *in = bufferevent_get_input(c->ours);
    size_t len;
    while (c->send_credit > 0 && (len = evbuffer_get_length(in)) > 0) {
        size_t n = len;
        if (n > c->send_credit)
            n = c->send_credit;
        if (n > c->r->lim->max_relay_data)
            n = c->r->lim->max_relay_data;
        struct msg m = {.type = MSG_RELAY_DATA};
        m.u.relay_data.circuit_id = c->id;
        m.u.relay_data.data.ptr = evbuffer_pullup(in, (ev_ssize_t)n);
        m.u.relay_data.data.len = n;
        if (c->r->hooks.send(&m, c->r->arg) != 0)
            return; /* the link is going; link_down follows */
        evbuffer_drain(in, n);
        c->send_credit -= (uint32_t)n;
        c->r->stats.bytes_out += n;
    }
}

static void on_ours_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    pump_out(arg);
}

/* The owner's end is gone (its link was freed and said so). */
static void on_ours_event(struct bufferevent *bev, short what, void *arg)
{
    struct nat_relay_circuit *c = arg;
    (void)bev;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    c->theirs_in = NULL; /* freed with the owner's end */
    pump_out(c);         /* its last words, as far as credit goes */
    send_close(c, MSG_ERR_NONE);
    circuit_end(c);
}

/* The owner's TLS layer took n bytes of what arrived: they may come again. */
static void on_consumed(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct nat_relay_circuit *c = arg;
    (void)buf;
    if (info->n_deleted == 0)
        return;
    c->owed += (uint32_t)info->n_deleted;
    if (c->owed < NAT_RELAY_GRANT_BYTES)
        return;
    struct msg m = {.type = MSG_RELAY_WINDOW};
    m.u.relay_window = (struct msg_relay_window){c->id, c->owed};
    if (c->r->hooks.send(&m, c->r->arg) == 0) {
        c->recv_window += c->owed;
        c->owed = 0;
    }
}

/* Make the pair; returns the owner's end, or NULL. */
static struct bufferevent *circuit_stream(struct nat_relay_circuit *c)
{
    struct bufferevent *pair[2];
    if (bufferevent_pair_new(c->r->base, BEV_OPT_DEFER_CALLBACKS, pair) != 0)
        return NULL;
    c->ours = pair[1];
    c->theirs_in = bufferevent_get_input(pair[0]);
    c->consumed = evbuffer_add_cb(c->theirs_in, on_consumed, c);
    if (c->consumed == NULL) {
        bufferevent_free(pair[0]);
        bufferevent_free(pair[1]);
        c->ours = NULL;
        return NULL;
    }
    /* Back-pressure: with no credit our input fills to this, then the
     * owner's TLS layer stops at the same mark, then the owner's link queue
     * grows, which its producer watches. */
    bufferevent_setwatermark(c->ours, EV_READ, 0, NAT_RELAY_STREAM_HIGH);
    bufferevent_setwatermark(pair[0], EV_WRITE, 0, NAT_RELAY_STREAM_HIGH);
    bufferevent_setcb(c->ours, on_ours_read, NULL, on_ours_event, c);
    bufferevent_enable(c->ours, EV_READ | EV_WRITE);
    c->state = CIRCUIT_OPEN;
    return pair[0];
}

/* After the owner had the stream: did it keep it? */
static bool owner_kept(struct nat_relay_circuit *c)
{
    return bufferevent_pair_get_partner(c->ours) != NULL;
}

/* ---- messages --------------------------------------------------------------------- */

static void on_open(struct nat_relay *r, const struct msg_relay_open *o)
{
    /* Our supernode accepted our link, so its ids are even. */
    struct nat_relay_circuit *c = NULL;
    if ((o->circuit_id & 1u) == 0 && circuit_find(r, o->circuit_id) == NULL)
        c = circuit_new(r, o->circuit_id);
    if (c == NULL) {
        struct msg m = {.type = MSG_RELAY_CLOSE};
        m.u.relay_close = (struct msg_relay_close){o->circuit_id, MSG_ERR_PROTOCOL};
        r->hooks.send(&m, r->arg);
        return;
    }
    struct bufferevent *stream = r->hooks.incoming ? circuit_stream(c) : NULL;
    if (stream == NULL) {
        send_close(c, MSG_ERR_RELAY_REFUSED);
        circuit_end(c);
        return;
    }
    struct msg m = {.type = MSG_RELAY_ACCEPT};
    m.u.relay_accept.circuit_id = c->id;
    r->hooks.send(&m, r->arg);
    r->stats.accepted++;
    r->hooks.incoming(stream, o->origin_id, o->token, r->arg);
    if (!owner_kept(c)) {
        send_close(c, MSG_ERR_RELAY_REFUSED);
        circuit_end(c);
    }
}

static void on_opened(struct nat_relay_circuit *c)
{
    if (c->state != CIRCUIT_OPENING) {
        send_close(c, MSG_ERR_PROTOCOL);
        circuit_end(c);
        return;
    }
    event_del(c->timer);
    struct bufferevent *stream = circuit_stream(c);
    if (stream == NULL) {
        send_close(c, MSG_ERR_INTERNAL);
        open_failed(c, MSG_ERR_INTERNAL);
        return;
    }
    c->r->stats.opened++;
    nat_relay_open_fn *fn = c->fn;
    c->fn = NULL;
    fn(stream, MSG_ERR_NONE, c->fn_arg);
    if (!owner_kept(c)) {
        send_close(c, MSG_ERR_NONE);
        circuit_end(c);
    }
}

static void on_data(struct nat_relay_circuit *c, const struct msg_relay_data *d)
{
    if (c->state != CIRCUIT_OPEN || d->data.len > c->recv_window) {
        log_warn("relay", "circuit %u: %s, closing it", c->id,
                 c->state != CIRCUIT_OPEN ? "data before it opened" : "more data than granted");
        send_close(c, MSG_ERR_PROTOCOL);
        circuit_end(c);
        return;
    }
    c->recv_window -= (uint32_t)d->data.len;
    c->r->stats.bytes_in += d->data.len;
    bufferevent_write(c->ours, d->data.ptr, d->data.len);
}

static void on_window(struct nat_relay_circuit *c, uint32_t credit)
{
    if (credit > (1u << 30) - c->send_credit) {
        send_close(c, MSG_ERR_PROTOCOL);
        circuit_end(c);
        return;
    }
    c->send_credit += credit;
    if (c->state == CIRCUIT_OPEN)
        pump_out(c);
}

void nat_relay_message(struct nat_relay *r, const struct msg *m)
{
    if (m->type == MSG_RELAY_OPEN) {
        on_open(r, &m->u.relay_open);
        return;
    }
    uint32_t id = msg_relay_circuit_id(m);
    struct nat_relay_circuit *c = circuit_find(r, id);
    if (c == NULL)
        return; /* ended a moment ago: frames in flight */
    switch (m->type) {
    case MSG_RELAY_OPENED:
        on_opened(c);
        return;
    case MSG_RELAY_DATA:
        on_data(c, &m->u.relay_data);
        return;
    case MSG_RELAY_WINDOW:
        on_window(c, m->u.relay_window.credit);
        return;
    case MSG_RELAY_CLOSE:
        if (c->state == CIRCUIT_OPENING)
            open_failed(c,
                        m->u.relay_close.reason ? m->u.relay_close.reason : MSG_ERR_RELAY_REFUSED);
        else
            circuit_end(c);
        return;
    default: /* RELAY_ACCEPT: supernodes only */
        return;
    }
}

/* ---- API ----------------------------------------------------------------------------- */

static void on_open_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct nat_relay_circuit *c = arg;
    (void)fd, (void)what;
    send_close(c, MSG_ERR_TIMEOUT);
    open_failed(c, MSG_ERR_TIMEOUT);
}

struct nat_relay *nat_relay_new(struct event_base *base, const struct wire_limits *lim,
                                const struct nat_relay_hooks *hooks, void *arg)
{
    struct nat_relay *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->base = base;
    r->lim = lim;
    r->hooks = *hooks;
    r->arg = arg;
    r->next_id = 1;
    return r;
}

void nat_relay_free(struct nat_relay *r)
{
    if (r == NULL)
        return;
    nat_relay_link_down(r);
    free(r);
}

int nat_relay_open(struct nat_relay *r, const uint8_t self_id[WIRE_ID_LEN],
                   const uint8_t target_id[WIRE_ID_LEN], const uint8_t token[WIRE_TOKEN_LEN],
                   unsigned timeout_ms, nat_relay_open_fn *fn, void *arg,
                   struct nat_relay_circuit **out)
{
    while (circuit_find(r, r->next_id) != NULL || r->next_id == 0)
        r->next_id += 2;
    struct nat_relay_circuit *c = circuit_new(r, r->next_id);
    if (c == NULL)
        return SOVA_ERR_NOMEM;
    r->next_id += 2;
    c->state = CIRCUIT_OPENING;
    c->fn = fn;
    c->fn_arg = arg;
    c->timer = evtimer_new(r->base, on_open_timeout, c);
    struct msg m = {.type = MSG_RELAY_OPEN};
    m.u.relay_open.circuit_id = c->id;
    memcpy(m.u.relay_open.target_id, target_id, WIRE_ID_LEN);
    memcpy(m.u.relay_open.origin_id, self_id, WIRE_ID_LEN);
    memcpy(m.u.relay_open.token, token, WIRE_TOKEN_LEN);
    int rc = c->timer ? r->hooks.send(&m, r->arg) : SOVA_ERR_NOMEM;
    if (rc != 0) {
        c->fn = NULL;
        circuit_end(c);
        return rc;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000,
                         .tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
    if (out)
        *out = c;
    return 0;
}

void nat_relay_cancel(struct nat_relay_circuit *c)
{
    if (c == NULL || c->state != CIRCUIT_OPENING)
        return;
    send_close(c, MSG_ERR_NONE);
    c->fn = NULL;
    circuit_end(c);
}

void nat_relay_link_down(struct nat_relay *r)
{
    while (r->circuits != NULL) {
        struct nat_relay_circuit *c = r->circuits;
        if (c->state == CIRCUIT_OPENING)
            open_failed(c, MSG_ERR_NOT_ATTACHED);
        else
            circuit_end(c);
    }
}

void nat_relay_stats(const struct nat_relay *r, struct nat_relay_stats *out)
{
    *out = r->stats;
}
