#include "op_session.h"
#include "err.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OP_KEEPALIVE_DEFAULT_S 15

struct op_session {
    struct op_session_config cfg;
    char *bootstrap[OP_SESSION_MAX_BOOTSTRAP];
    size_t n_bootstrap, current;
    struct link *link;
    bool attached;
    struct event *retry, *keepalive;
    unsigned retry_ms;
    unsigned keepalive_ms;
    uint64_t ping_nonce;
    struct wire_addr observed;
    char sn_id[NODE_ID_STR_LEN + 1];
};

static void schedule_retry(struct op_session *s);

static void set_timer_ms(struct event *ev, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

static void send_register(struct op_session *s)
{
    struct msg m = {.type = MSG_REGISTER};
    m.u.reg.session = MSG_SESSION_PRIMARY;
    m.u.reg.reachability = s->cfg.reachability;
    m.u.reg.addrs = (struct wire_addr *)s->cfg.addrs;
    m.u.reg.n_addrs = s->cfg.n_addrs;
    link_send(s->link, &m);
}

static void on_opened(struct link *l, void *arg)
{
    struct op_session *s = arg;
    snprintf(s->sn_id, sizeof(s->sn_id), "%s", link_peer(l)->id_str);
    log_info("op", "connected to supernode %s at %s", s->sn_id, s->bootstrap[s->current]);
    send_register(s);
}

static void on_registered(struct op_session *s, const struct msg_registered *r)
{
    s->observed = r->observed;
    s->attached = true;
    s->retry_ms = OP_SESSION_RETRY_MIN_MS;
    unsigned ka = r->keepalive_s ? r->keepalive_s : OP_KEEPALIVE_DEFAULT_S;
    s->keepalive_ms = ka * 1000;
    set_timer_ms(s->keepalive, s->keepalive_ms);
    char where[64];
    wire_addr_format(&s->observed, where, sizeof(where));
    log_info("op", "attached to supernode %s, which sees us at %s", s->sn_id, where);
    if (s->cfg.hooks.attached)
        s->cfg.hooks.attached(s->cfg.arg);
}

static void on_message(struct link *l, const struct msg *m, void *arg)
{
    struct op_session *s = arg;
    (void)l;
    if (m->type == MSG_REGISTERED) {
        on_registered(s, &m->u.registered);
        return;
    }
    if (s->cfg.hooks.message)
        s->cfg.hooks.message(m, s->cfg.arg);
}

static void on_closed(struct link *l, int why, void *arg)
{
    struct op_session *s = arg;
    (void)l;
    bool was_attached = s->attached;
    s->link = NULL;
    s->attached = false;
    evtimer_del(s->keepalive);
    log_info("op", "supernode link closed (%s)", why ? sova_err_str(why) : "closed");
    /* Next time try the next bootstrap supernode: a dead one must not stay first. */
    s->current = (s->current + 1) % s->n_bootstrap;
    schedule_retry(s);
    if (was_attached && s->cfg.hooks.detached)
        s->cfg.hooks.detached(s->cfg.arg);
}

static const struct link_hooks session_hooks = {
    .opened = on_opened,
    .message = on_message,
    .closed = on_closed,
};

static void on_keepalive(evutil_socket_t fd, short what, void *arg)
{
    struct op_session *s = arg;
    (void)fd;
    (void)what;
    if (s->link == NULL)
        return;
    struct msg ping = {.type = MSG_PING};
    ping.u.ping.nonce = ++s->ping_nonce;
    link_send(s->link, &ping);
    set_timer_ms(s->keepalive, s->keepalive_ms);
}

static void on_resolved(const struct evutil_addrinfo *ai, const char *err, void *arg)
{
    struct op_session *s = arg;
    const char *endpoint = s->bootstrap[s->current];
    if (ai == NULL) {
        log_warn("op", "cannot resolve supernode %s: %s", endpoint, err);
        s->current = (s->current + 1) % s->n_bootstrap;
        schedule_retry(s);
        return;
    }
    SSL *ssl = NULL;
    if (tls_ctx_client(s->cfg.tls, TLS_EXPECT_SUPERNODE, NULL, &ssl) != 0) {
        schedule_retry(s);
        return;
    }
    log_debug("op", "connecting to supernode %s", endpoint);
    s->link = link_connect(evloop_base(s->cfg.loop), ai->ai_addr, (socklen_t)ai->ai_addrlen, ssl,
                           s->cfg.params, &session_hooks, s);
    if (s->link == NULL)
        schedule_retry(s);
}

static void dial(struct op_session *s)
{
    if (evloop_resolve(s->cfg.loop, s->bootstrap[s->current], on_resolved, s) != 0)
        schedule_retry(s);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dial(arg);
}

/* Capped exponential backoff with jitter, so the peers of a restarted
 * supernode do not all come back in the same millisecond. */
static void schedule_retry(struct op_session *s)
{
    unsigned jitter = s->retry_ms / 4 ? (unsigned)(random() % (s->retry_ms / 4)) : 0;
    set_timer_ms(s->retry, s->retry_ms + jitter);
    s->retry_ms =
        s->retry_ms * 2 > OP_SESSION_RETRY_MAX_MS ? OP_SESSION_RETRY_MAX_MS : s->retry_ms * 2;
}

int op_session_new(const struct op_session_config *cfg, struct op_session **out)
{
    struct op_session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return SOVA_ERR_NOMEM;
    s->cfg = *cfg;
    s->retry_ms = OP_SESSION_RETRY_MIN_MS;
    const char *p = cfg->bootstrap;
    while (p && *p && s->n_bootstrap < OP_SESSION_MAX_BOOTSTRAP) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if ((s->bootstrap[s->n_bootstrap] = strndup(p, n)) == NULL)
            break;
        s->n_bootstrap++;
        p = comma ? comma + 1 : NULL;
    }
    struct event_base *base = evloop_base(cfg->loop);
    s->retry = evtimer_new(base, on_retry, s);
    s->keepalive = evtimer_new(base, on_keepalive, s);
    if (s->n_bootstrap == 0 || !s->retry || !s->keepalive) {
        int rc = s->n_bootstrap == 0 ? SOVA_ERR_CONFIG : SOVA_ERR_NOMEM;
        op_session_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void op_session_start(struct op_session *s)
{
    dial(s);
}

void op_session_free(struct op_session *s)
{
    if (s == NULL)
        return;
    link_free_now(s->link);
    if (s->retry)
        event_free(s->retry);
    if (s->keepalive)
        event_free(s->keepalive);
    for (size_t i = 0; i < s->n_bootstrap; i++)
        free(s->bootstrap[i]);
    free(s);
}

bool op_session_attached(const struct op_session *s)
{
    return s->attached;
}

int op_session_send(struct op_session *s, const struct msg *m)
{
    if (!s->attached)
        return SOVA_ERR_NOT_FOUND;
    return link_send(s->link, m);
}

const char *op_session_sn_id(const struct op_session *s)
{
    return s->attached ? s->sn_id : NULL;
}

const struct wire_addr *op_session_observed(const struct op_session *s)
{
    return s->attached ? &s->observed : NULL;
}

const char *op_session_endpoint(const struct op_session *s)
{
    return s->bootstrap[s->current];
}

uint64_t op_session_bytes_in(const struct op_session *s)
{
    return s->link ? link_bytes_in(s->link) : 0;
}

uint64_t op_session_bytes_out(const struct op_session *s)
{
    return s->link ? link_bytes_out(s->link) : 0;
}
