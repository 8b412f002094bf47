/* sn_fed_links.c - links between supernodes: dial the seeds and the members gossip
 * tells us about, keep one link per supernode ID, and hand what arrives on
 * them to the federation logic (membership, summaries, forwarded queries).
 *
 * Trust: every SN link is mutual TLS chained to the federation root. The
 * dialer requires it in the handshake (TLS_EXPECT_SUPERNODE); the acceptor
 * classifies after the handshake and link.c refuses a HELLO claiming the
 * supernode role without such a certificate. */
#include "err.h"
#include "log.h"
#include "sn_ctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SN_FED_RETRY_MIN_MS 500
#define SN_FED_RETRY_MAX_MS 10000

static void seed_dial(struct sn_seed *seed);

static void set_timer_ms(struct event *ev, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

struct sn_peer *sn_fed_link(const struct sn_daemon *d, const uint8_t id[WIRE_ID_LEN])
{
    for (size_t i = 0; i < d->fed.n_links; i++)
        if (memcmp(d->fed.links[i]->id, id, WIRE_ID_LEN) == 0)
            return d->fed.links[i];
    return NULL;
}

int sn_fed_send(struct sn_daemon *d, const uint8_t id[WIRE_ID_LEN], const struct msg *m)
{
    struct sn_peer *p = sn_fed_link(d, id);
    return p ? link_send(p->link, m) : SOVA_ERR_NOT_FOUND;
}

/* A seed needs no dialing while any link to its supernode is up. */
static bool seed_linked(const struct sn_seed *seed)
{
    return seed->id_known && sn_fed_link(seed->d, seed->id) != NULL;
}

/* The seed's first attempt ended one way or the other (readiness). */
static void seed_contacted(struct sn_seed *seed)
{
    if (seed->contacted)
        return;
    seed->contacted = true;
    sn_service_check_ready(seed->d);
}

static void seed_retry(struct sn_seed *seed)
{
    if (seed->endpoint == NULL || seed->is_self || seed_linked(seed))
        return;
    unsigned jitter = seed->retry_ms / 4 ? (unsigned)(random() % (seed->retry_ms / 4)) : 0;
    set_timer_ms(seed->retry, seed->retry_ms + jitter);
    seed->retry_ms =
        seed->retry_ms * 2 > SN_FED_RETRY_MAX_MS ? SN_FED_RETRY_MAX_MS : seed->retry_ms * 2;
}

/* Open a link to a supernode at one of addrs (seed: which seed it is for). */
static int dial(struct sn_daemon *d, const struct sockaddr *sa, socklen_t len, struct sn_seed *seed)
{
    SSL *ssl = NULL;
    struct sn_peer *p = calloc(1, sizeof(*p));
    if (p == NULL || tls_ctx_client(d->tls, TLS_EXPECT_SUPERNODE, NULL, &ssl) != 0) {
        free(p);
        return SOVA_ERR_NOMEM;
    }
    sn_peer_init(d, p);
    p->dialed = true;
    p->seed = seed;
    struct link_params params = d->link_params;
    params.expect_supernode = true;
    p->link = link_connect(evloop_base(d->loop), sa, len, ssl, &params, sn_link_hooks(), p);
    if (p->link == NULL) {
        free(p);
        return SOVA_ERR_IO;
    }
    if (seed != NULL)
        seed->conn = p;
    return 0;
}

int sn_fed_dial_addrs(struct sn_daemon *d, const uint8_t id[WIRE_ID_LEN],
                      const struct wire_addr *addrs, size_t n)
{
    if (memcmp(id, identity_id(d->id), WIRE_ID_LEN) == 0 || sn_fed_link(d, id) != NULL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_storage ss;
        socklen_t len = wire_addr_to_sockaddr(&addrs[i], &ss);
        if (len != 0)
            return dial(d, (struct sockaddr *)&ss, len, NULL);
    }
    return SOVA_ERR_INVALID;
}

static void on_seed_resolved(const struct evutil_addrinfo *ai, const char *err, void *arg)
{
    struct sn_seed *seed = arg;
    seed->resolving = false;
    if (seed->endpoint == NULL)
        return; /* dropped by a reload while its name was being looked up */
    if (ai == NULL) {
        log_warn("fed", "cannot resolve seed supernode %s: %s", seed->endpoint, err);
        seed_contacted(seed);
        seed_retry(seed);
        return;
    }
    if (dial(seed->d, ai->ai_addr, (socklen_t)ai->ai_addrlen, seed) != 0) {
        seed_contacted(seed);
        seed_retry(seed);
    }
}

static void seed_dial(struct sn_seed *seed)
{
    if (seed->endpoint == NULL || seed->conn != NULL || seed->is_self || seed->resolving)
        return;
    seed->resolving = true; /* (the callback may run before evloop_resolve returns) */
    if (evloop_resolve(seed->d->loop, seed->endpoint, on_seed_resolved, seed) != 0) {
        seed->resolving = false;
        seed_contacted(seed);
        seed_retry(seed);
    }
}

static void on_seed_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    seed_dial(arg);
}

/* A supernode link finished TLS and HELLO (either direction). */
void sn_fed_link_up(struct sn_daemon *d, struct sn_peer *p)
{
    struct sn_fed *f = &d->fed;
    if (p->seed != NULL) {
        memcpy(p->seed->id, p->id, WIRE_ID_LEN);
        p->seed->id_known = true;
    }
    if (memcmp(p->id, identity_id(d->id), WIRE_ID_LEN) == 0) {
        if (p->seed != NULL) {
            log_info("fed", "seed %s is this supernode: not dialing it again", p->seed->endpoint);
            p->seed->is_self = true;
            seed_contacted(p->seed);
        }
        link_close(p->link, 0, NULL);
        return;
    }
    if (p->dialed) { /* we reached it there: that is where it listens */
        p->listen_addr = *link_remote_addr(p->link);
        p->has_listen_addr = true;
    }
    struct sn_peer *existing = sn_fed_link(d, p->id);
    if (existing != NULL || f->n_links == SN_MAX_FEDERATION) {
        /* Both sides dialed at once: one link is enough, but keep what the
         * dialed one taught us. */
        if (existing != NULL && p->has_listen_addr && !existing->has_listen_addr) {
            existing->listen_addr = p->listen_addr;
            existing->has_listen_addr = true;
            sn_fed_changed(d);
        }
        link_close(p->link, 0, NULL);
        return;
    }
    f->links[f->n_links++] = p;
    p->fed_up = true;
    if (p->seed != NULL)
        p->seed->retry_ms = SN_FED_RETRY_MIN_MS;
    /* The address it listens on: for a link we dialed, where it accepted us;
     * for one we accepted, gossip brings its addresses. */
    log_info("fed", "%s: supernode link up (%s, %zu supernodes linked)", link_name(p->link),
             p->dialed ? "dialed" : "accepted", f->n_links);
    /* (never a NULL array: the module copies n_addrs of them) */
    sn_fed_hook_link_up(d, p, &p->listen_addr, p->has_listen_addr ? 1 : 0);
    sn_fed_changed(d);
    if (p->seed != NULL)
        seed_contacted(p->seed);
}

/* A supernode link is gone: the federation logic decides what it means. */
void sn_fed_link_down(struct sn_daemon *d, struct sn_peer *p)
{
    struct sn_fed *f = &d->fed;
    if (p->seed != NULL) {
        p->seed->conn = NULL;
        seed_contacted(p->seed);
    }
    if (p->fed_up) {
        for (size_t i = 0; i < f->n_links; i++) {
            if (f->links[i] == p) {
                f->links[i] = f->links[--f->n_links];
                break;
            }
        }
        p->fed_up = false;
        sn_fed_hook_link_down(d, p);
        sn_fed_changed(d);
    }
    /* Seeds whose supernode is no longer linked are dialed again. */
    for (size_t i = 0; i < f->n_seeds; i++)
        if (f->seeds[i].conn == NULL && !evtimer_pending(f->seeds[i].retry, NULL))
            seed_retry(&f->seeds[i]);
}

/* The seed for endpoint (n bytes), or NULL. */
static struct sn_seed *seed_find(struct sn_fed *f, const char *endpoint, size_t n)
{
    for (size_t i = 0; i < f->n_seeds; i++) {
        const char *e = f->seeds[i].endpoint;
        if (e != NULL && strlen(e) == n && memcmp(e, endpoint, n) == 0)
            return &f->seeds[i];
    }
    return NULL;
}

/* A new seed in a free slot (one a reload dropped, else the next); not
 * dialed yet. NULL when all SN_MAX_SEEDS are taken or memory is short. */
static struct sn_seed *seed_add(struct sn_daemon *d, const char *endpoint, size_t n)
{
    struct sn_fed *f = &d->fed;
    struct sn_seed *seed = NULL;
    for (size_t i = 0; i < f->n_seeds && seed == NULL; i++)
        if (f->seeds[i].endpoint == NULL && !f->seeds[i].resolving)
            seed = &f->seeds[i]; /* (a lookup still running would land in it) */
    if (seed == NULL && f->n_seeds < SN_MAX_SEEDS)
        seed = &f->seeds[f->n_seeds];
    if (seed == NULL)
        return NULL;
    struct event *retry = seed->retry; /* a reused slot keeps its timer */
    memset(seed, 0, sizeof(*seed));
    seed->d = d;
    seed->retry = retry ? retry : evtimer_new(evloop_base(d->loop), on_seed_retry, seed);
    seed->retry_ms = SN_FED_RETRY_MIN_MS;
    seed->endpoint = strndup(endpoint, n);
    if (seed->retry != NULL && seed == &f->seeds[f->n_seeds])
        f->n_seeds++; /* a new slot counts once it can be freed by sn_fed_stop */
    if (seed->endpoint == NULL || seed->retry == NULL) {
        free(seed->endpoint);
        seed->endpoint = NULL;
        return NULL;
    }
    return seed;
}

/* A seed no longer configured: stop dialing it; its link, if up, stays. */
static void seed_drop(struct sn_seed *seed)
{
    log_info("fed", "reload: seed supernode %s dropped", seed->endpoint);
    evtimer_del(seed->retry);
    if (seed->conn != NULL)
        seed->conn->seed = NULL;
    seed->conn = NULL;
    free(seed->endpoint);
    seed->endpoint = NULL;
}

/* Call fn for each endpoint of a comma-separated list (as checked by the
 * config: each 1..n bytes). */
static void each_endpoint(const char *list, void (*fn)(struct sn_daemon *, const char *, size_t),
                          struct sn_daemon *d)
{
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        fn(d, p, n);
        p = comma ? comma + 1 : NULL;
    }
}

static void start_seed(struct sn_daemon *d, const char *endpoint, size_t n)
{
    if (seed_find(&d->fed, endpoint, n) != NULL)
        return; /* listed twice */
    if (seed_add(d, endpoint, n) == NULL)
        log_warn("fed", "seed supernode %.*s ignored: at most %d seeds (or out of memory)", (int)n,
                 endpoint, SN_MAX_SEEDS);
}

static void reload_seed(struct sn_daemon *d, const char *endpoint, size_t n)
{
    if (seed_find(&d->fed, endpoint, n) != NULL)
        return;
    struct sn_seed *seed = seed_add(d, endpoint, n);
    if (seed == NULL) {
        log_warn("fed", "reload: seed supernode %.*s ignored: at most %d seeds (or out of memory)",
                 (int)n, endpoint, SN_MAX_SEEDS);
        return;
    }
    log_info("fed", "reload: seed supernode %s added, dialing it", seed->endpoint);
    seed->contacted = true; /* readiness is long past */
    seed_dial(seed);
}

/* Whether endpoint is one of the comma-separated list. */
static bool listed(const char *list, const char *endpoint)
{
    size_t n = strlen(endpoint);
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && memcmp(p, endpoint, n) == 0)
            return true;
        p = comma ? comma + 1 : NULL;
    }
    return false;
}

void sn_fed_reload_seeds(struct sn_daemon *d)
{
    struct sn_fed *f = &d->fed;
    for (size_t i = 0; i < f->n_seeds; i++)
        if (f->seeds[i].endpoint != NULL && !listed(d->s->peers, f->seeds[i].endpoint))
            seed_drop(&f->seeds[i]);
    each_endpoint(d->s->peers, reload_seed, d);
}

bool sn_fed_seeds_contacted(const struct sn_daemon *d)
{
    const struct sn_fed *f = &d->fed;
    for (size_t i = 0; i < f->n_seeds; i++)
        if (f->seeds[i].endpoint != NULL && !f->seeds[i].contacted)
            return false;
    return true;
}

int sn_fed_start(struct sn_daemon *d, char *err, size_t errlen)
{
    struct sn_fed *f = &d->fed;
    (void)err;
    (void)errlen;
    each_endpoint(d->s->peers, start_seed, d);
    for (size_t i = 0; i < f->n_seeds; i++)
        seed_dial(&f->seeds[i]);
    if (f->n_seeds)
        log_info("fed", "joining the federation through %zu seed supernode%s", f->n_seeds,
                 f->n_seeds == 1 ? "" : "s");
    return 0;
}

void sn_fed_stop(struct sn_daemon *d)
{
    struct sn_fed *f = &d->fed;
    for (size_t i = 0; i < f->n_seeds; i++) {
        if (f->seeds[i].retry)
            event_free(f->seeds[i].retry);
        free(f->seeds[i].endpoint);
    }
    f->n_seeds = 0;
    f->n_links = 0;
    if (f->announce)
        event_free(f->announce);
    f->announce = NULL;
}
