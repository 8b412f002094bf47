#include "op_daemon.h"
#include "err.h"
#include "evloop.h"
#include "identity.h"
#include "link.h"
#include "log.h"
#include "tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OP_MAX_OUTPUT_BYTES   (4u * 1024 * 1024)
#define OP_KEEPALIVE_MS       15000 /* PING the supernode at least this often */
#define OP_RETRY_MIN_MS       500   /* first reconnect delay */
#define OP_RETRY_MAX_MS       30000 /* reconnect delay cap */
#define OP_MAX_BOOTSTRAP      16

struct op_daemon {
    const struct op_settings *s;
    struct evloop *loop;
    struct sova_identity *id;
    struct tls_ctx *tls;
    struct wire_limits limits;
    struct link_params sn_params, peer_params;
    struct link *sn;          /* link to our supernode, NULL while none */
    struct link_group peers;  /* links other peers opened to us */
    struct event *retry;      /* reconnect timer */
    struct event *keepalive;  /* PING timer */
    unsigned retry_ms;
    size_t next_bootstrap;    /* index into the bootstrap list */
    char *bootstrap[OP_MAX_BOOTSTRAP];
    size_t n_bootstrap;
    uint64_t ping_nonce;
};

static void schedule_retry(struct op_daemon *d);
static void dial_next(struct op_daemon *d);

static void set_timer_ms(struct event *ev, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

static void on_sn_opened(struct link *l, void *arg)
{
    struct op_daemon *d = arg;
    d->retry_ms = OP_RETRY_MIN_MS;
    log_info("op", "attached to supernode %s", link_peer(l)->id_str);
    set_timer_ms(d->keepalive, OP_KEEPALIVE_MS);
}

static void on_sn_message(struct link *l, const struct msg *m, void *arg)
{
    (void)l;
    (void)arg;
    (void)m; /* errors are logged by the link; the overlay issue adds the rest */
}

static void on_sn_closed(struct link *l, int why, void *arg)
{
    struct op_daemon *d = arg;
    (void)l;
    d->sn = NULL;
    evtimer_del(d->keepalive);
    log_info("op", "supernode link closed (%s)", why ? sova_err_str(why) : "closed");
    schedule_retry(d);
}

static const struct link_hooks sn_hooks = {
    .opened = on_sn_opened,
    .message = on_sn_message,
    .closed = on_sn_closed,
};

static void on_keepalive(evutil_socket_t fd, short what, void *arg)
{
    struct op_daemon *d = arg;
    (void)fd;
    (void)what;
    if (d->sn == NULL)
        return;
    struct msg ping = {.type = MSG_PING};
    ping.u.ping.nonce = ++d->ping_nonce;
    link_send(d->sn, &ping);
    set_timer_ms(d->keepalive, OP_KEEPALIVE_MS);
}

static void on_resolved(const struct evutil_addrinfo *ai, const char *err, void *arg)
{
    struct op_daemon *d = arg;
    const char *endpoint = d->bootstrap[d->next_bootstrap];
    d->next_bootstrap = (d->next_bootstrap + 1) % d->n_bootstrap;
    if (ai == NULL) {
        log_warn("op", "cannot resolve supernode %s: %s", endpoint, err);
        schedule_retry(d);
        return;
    }
    SSL *ssl = NULL;
    if (tls_ctx_client(d->tls, TLS_EXPECT_SUPERNODE, NULL, &ssl) != 0) {
        schedule_retry(d);
        return;
    }
    log_info("op", "connecting to supernode %s", endpoint);
    d->sn = link_connect(evloop_base(d->loop), ai->ai_addr, (socklen_t)ai->ai_addrlen, ssl,
                         &d->sn_params, &sn_hooks, d);
    if (d->sn == NULL)
        schedule_retry(d);
}

static void dial_next(struct op_daemon *d)
{
    if (evloop_resolve(d->loop, d->bootstrap[d->next_bootstrap], on_resolved, d) != 0)
        schedule_retry(d);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dial_next(arg);
}

/* Capped exponential backoff with jitter, so peers of a restarted supernode
 * do not all come back in the same millisecond. */
static void schedule_retry(struct op_daemon *d)
{
    unsigned jitter = d->retry_ms / 4 ? (unsigned)(random() % (d->retry_ms / 4)) : 0;
    set_timer_ms(d->retry, d->retry_ms + jitter);
    d->retry_ms = d->retry_ms * 2 > OP_RETRY_MAX_MS ? OP_RETRY_MAX_MS : d->retry_ms * 2;
}

/* Other peers dialing us: TLS (peer<->peer policy) and HELLO for now. */
static void on_peer_opened(struct link *l, void *arg)
{
    (void)arg;
    log_info("op", "%s: peer connected", link_name(l));
}

static void on_peer_message(struct link *l, const struct msg *m, void *arg)
{
    (void)arg;
    if (m->type != MSG_ERROR)
        link_send_error(l, MSG_ERR_PROTOCOL, m->type, "message not served by this peer");
}

static void on_peer_closed(struct link *l, int why, void *arg)
{
    (void)arg;
    log_info("op", "%s: peer disconnected (%s)", link_name(l), why ? sova_err_str(why) : "closed");
}

static const struct link_hooks peer_hooks = {
    .opened = on_peer_opened,
    .message = on_peer_message,
    .closed = on_peer_closed,
};

static void on_accept(evutil_socket_t fd, const struct sockaddr *sa, socklen_t len, void *arg)
{
    struct op_daemon *d = arg;
    SSL *ssl = NULL;
    if (tls_ctx_server(d->tls, NULL, &ssl) != 0) {
        evutil_closesocket(fd);
        return;
    }
    evutil_make_socket_nonblocking(fd);
    link_accept(evloop_base(d->loop), fd, ssl, sa, len, &d->peer_params, &peer_hooks, d);
}

static int split_bootstrap(struct op_daemon *d)
{
    const char *p = d->s->bootstrap;
    while (p && *p && d->n_bootstrap < OP_MAX_BOOTSTRAP) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        d->bootstrap[d->n_bootstrap] = strndup(p, n);
        if (d->bootstrap[d->n_bootstrap] == NULL)
            return SOVA_ERR_NOMEM;
        d->n_bootstrap++;
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

static int op_daemon_start(struct op_daemon *d)
{
    char err[512];
    if (d->s->bootstrap == NULL || d->s->federation_ca == NULL) {
        log_error("op", "options --bootstrap and --federation-ca are required to run");
        return SOVA_ERR_CONFIG;
    }
    int rc = identity_load_or_create(d->s->state_dir, &d->id, err, sizeof(err));
    if (rc == 0)
        rc = tls_ctx_new(d->id, d->s->federation_ca, TLS_CTX_PEER, &d->tls, err, sizeof(err));
    if (rc != 0) {
        log_error("op", "%s", err);
        return rc;
    }
    sova_log_set_node(identity_short_id(d->id));
    rc = split_bootstrap(d);
    if (rc == 0)
        rc = evloop_new(&d->loop);
    if (rc != 0)
        return rc;
    d->limits = wire_limits_default();
    d->limits.max_frame = d->s->max_frame;
    d->sn_params = (struct link_params){
        .limits = &d->limits,
        .local_role = MSG_ROLE_PEER,
        .handshake_timeout_ms = (unsigned)d->s->handshake_timeout_ms,
        .max_output = OP_MAX_OUTPUT_BYTES,
        .expect_supernode = true,
    };
    d->peer_params = d->sn_params;
    d->peer_params.expect_supernode = false;
    d->peer_params.group = &d->peers;
    struct event_base *base = evloop_base(d->loop);
    d->retry = evtimer_new(base, on_retry, d);
    d->keepalive = evtimer_new(base, on_keepalive, d);
    if (d->retry == NULL || d->keepalive == NULL)
        return SOVA_ERR_NOMEM;
    rc = evloop_listen(d->loop, d->s->listen, on_accept, d, NULL, NULL, err, sizeof(err));
    if (rc != 0) {
        log_error("op", "%s", err);
        return rc;
    }
    log_info("op", "peer %s listening on %s", identity_id_str(d->id), d->s->listen);
    d->retry_ms = OP_RETRY_MIN_MS;
    dial_next(d);
    return 0;
}

int op_daemon_run(const struct op_settings *s)
{
    struct op_daemon d = {.s = s};
    int rc = op_daemon_start(&d);
    if (rc == 0) {
        evloop_run(d.loop);
        log_info("op", "stopped");
    }
    link_free_now(d.sn);
    link_group_free_all(&d.peers);
    if (d.retry)
        event_free(d.retry);
    if (d.keepalive)
        event_free(d.keepalive);
    for (size_t i = 0; i < d.n_bootstrap; i++)
        free(d.bootstrap[i]);
    tls_ctx_free(d.tls);
    identity_free(d.id);
    evloop_free(d.loop);
    return rc;
}

int op_print_id(const struct op_settings *s)
{
    char err[512];
    struct sova_identity *id = NULL;
    int rc = identity_load_or_create(s->state_dir, &id, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "sova-peer: %s\n", err);
        return rc;
    }
    printf("%s\n", identity_id_str(id));
    identity_free(id);
    return 0;
}
