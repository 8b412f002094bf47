/* sn_fed_links.c - links between supernodes (sn_fed_links.h): dial the
 * seeds and the members gossip tells us about, keep one link per supernode
 * ID, and tell the daemon's hooks when one comes up or goes. */
#include "sn_fed_links.h"
#include "err.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SN_FED_RETRY_MIN_MS 500
#define SN_FED_RETRY_MAX_MS 10000

/* A configured seed supernode (--peers): dialed until a link to it is up.
 * A slot whose endpoint is NULL was dropped by a reload and is free. */
struct sn_seed {
    struct sn_fed_links *f;
    char *endpoint;
    struct sn_conn *conn;    /* the link for it, while dialing or up */
    uint8_t id[WIRE_ID_LEN]; /* learnt from its certificate on the first link */
    bool id_known;
    struct event *retry;
    unsigned retry_ms;
    bool is_self;   /* the seed turned out to be this supernode */
    bool contacted; /* its first attempt ended (link up or failed): readiness */
    bool resolving; /* its name is being looked up (evloop_resolve) */
};

/* SN_EXT_FED_LINK: what this module keeps of a link to a supernode. */
struct fed_conn {
    bool dialed;                  /* we opened it */
    bool up;                      /* counted in links[] */
    struct sn_seed *seed;         /* the seed it was dialed for, if any */
    struct wire_addr listen_addr; /* where that supernode accepts links, once known */
    bool has_listen_addr;
};

struct sn_fed_links {
    struct sn_ctx *ctx;
    struct sn_fed_links_hooks hooks;
    struct sn_seed seeds[SN_FED_MAX_SEEDS];
    size_t n_seeds;
    struct sn_conn *links[SN_FED_MAX_LINKS]; /* open supernode links, one per ID */
    size_t n_links;
};

static void seed_dial(struct sn_seed *seed);

static struct fed_conn *fconn(const struct sn_conn *c)
{
    return c->ext[SN_EXT_FED_LINK];
}

/* The link's own state, made on first need; NULL when memory is short. */
static struct fed_conn *fconn_make(struct sn_conn *c)
{
    if (c->ext[SN_EXT_FED_LINK] == NULL)
        c->ext[SN_EXT_FED_LINK] = calloc(1, sizeof(struct fed_conn));
    return c->ext[SN_EXT_FED_LINK];
}

static void fconn_free(void *ext)
{
    free(ext);
}

bool sn_fed_links_dialed(const struct sn_conn *c)
{
    return fconn(c) != NULL && fconn(c)->dialed;
}

size_t sn_fed_links_count(const struct sn_ctx *ctx)
{
    return ctx->fed_links ? ctx->fed_links->n_links : 0;
}

struct sn_conn *sn_fed_links_get(const struct sn_ctx *ctx, size_t i)
{
    return i < sn_fed_links_count(ctx) ? ctx->fed_links->links[i] : NULL;
}

struct sn_conn *sn_fed_link(const struct sn_ctx *ctx, const uint8_t id[WIRE_ID_LEN])
{
    const struct sn_fed_links *f = ctx->fed_links;
    for (size_t i = 0; f != NULL && i < f->n_links; i++)
        if (memcmp(f->links[i]->id, id, WIRE_ID_LEN) == 0)
            return f->links[i];
    return NULL;
}

int sn_fed_send(struct sn_ctx *ctx, const uint8_t id[WIRE_ID_LEN], const struct msg *m)
{
    struct sn_conn *c = sn_fed_link(ctx, id);
    return c ? link_send(c->link, m) : SOVA_ERR_NOT_FOUND;
}

/* A seed needs no dialing while any link to its supernode is up. */
static bool seed_linked(const struct sn_seed *seed)
{
    return seed->id_known && sn_fed_link(seed->f->ctx, seed->id) != NULL;
}

/* The seed's first attempt ended one way or the other (readiness). */
static void seed_contacted(struct sn_seed *seed)
{
    if (seed->contacted)
        return;
    seed->contacted = true;
    if (seed->f->hooks.seed_contacted != NULL)
        seed->f->hooks.seed_contacted(seed->f->hooks.arg);
}

static void seed_retry(struct sn_seed *seed)
{
    if (seed->endpoint == NULL || seed->is_self || seed_linked(seed))
        return;
    unsigned jitter = seed->retry_ms / 4 ? (unsigned)(random() % (seed->retry_ms / 4)) : 0;
    sn_timer_ms(seed->retry, seed->retry_ms + jitter);
    seed->retry_ms =
        seed->retry_ms * 2 > SN_FED_RETRY_MAX_MS ? SN_FED_RETRY_MAX_MS : seed->retry_ms * 2;
}

/* Open a link to a supernode at one of addrs (seed: which seed it is for). */
static int dial(struct sn_ctx *ctx, const struct sockaddr *sa, socklen_t len, struct sn_seed *seed)
{
    SSL *ssl = NULL;
    struct sn_conn *c = sn_conn_new(ctx);
    struct fed_conn *fc = c ? fconn_make(c) : NULL;
    if (fc == NULL || tls_ctx_client(ctx->tls, TLS_EXPECT_SUPERNODE, NULL, &ssl) != 0) {
        sn_conn_free(c);
        return SOVA_ERR_NOMEM;
    }
    fc->dialed = true;
    fc->seed = seed;
    struct link_params params = ctx->link_params;
    params.expect_supernode = true;
    c->link = link_connect(evloop_base(ctx->loop), sa, len, ssl, &params, ctx->link_hooks, c);
    if (c->link == NULL) {
        sn_conn_free(c);
        return SOVA_ERR_IO;
    }
    if (seed != NULL)
        seed->conn = c;
    return 0;
}

int sn_fed_dial_addrs(struct sn_ctx *ctx, const uint8_t id[WIRE_ID_LEN],
                      const struct wire_addr *addrs, size_t n)
{
    if (memcmp(id, identity_id(ctx->id), WIRE_ID_LEN) == 0 || sn_fed_link(ctx, id) != NULL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_storage ss;
        socklen_t len = wire_addr_to_sockaddr(&addrs[i], &ss);
        if (len != 0)
            return dial(ctx, (struct sockaddr *)&ss, len, NULL);
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
    if (dial(seed->f->ctx, ai->ai_addr, (socklen_t)ai->ai_addrlen, seed) != 0) {
        seed_contacted(seed);
        seed_retry(seed);
    }
}

static void seed_dial(struct sn_seed *seed)
{
    if (seed->endpoint == NULL || seed->conn != NULL || seed->is_self || seed->resolving)
        return;
    seed->resolving = true; /* (the callback may run before evloop_resolve returns) */
    if (evloop_resolve(seed->f->ctx->loop, seed->endpoint, on_seed_resolved, seed) != 0) {
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
void sn_fed_links_opened(struct sn_ctx *ctx, struct sn_conn *c)
{
    struct sn_fed_links *f = ctx->fed_links;
    struct fed_conn *fc = fconn_make(c);
    if (fc == NULL) {
        link_close(c->link, MSG_ERR_INTERNAL, "out of memory");
        return;
    }
    if (fc->seed != NULL) {
        memcpy(fc->seed->id, c->id, WIRE_ID_LEN);
        fc->seed->id_known = true;
    }
    if (memcmp(c->id, identity_id(ctx->id), WIRE_ID_LEN) == 0) {
        if (fc->seed != NULL) {
            log_info("fed", "seed %s is this supernode: not dialing it again", fc->seed->endpoint);
            fc->seed->is_self = true;
            seed_contacted(fc->seed);
        }
        link_close(c->link, 0, NULL);
        return;
    }
    if (fc->dialed) { /* we reached it there: that is where it listens */
        fc->listen_addr = *link_remote_addr(c->link);
        fc->has_listen_addr = true;
    }
    struct sn_conn *existing = sn_fed_link(ctx, c->id);
    if (existing != NULL || f->n_links == SN_FED_MAX_LINKS) {
        /* Both sides dialed at once: one link is enough, but keep what the
         * dialed one taught us. */
        struct fed_conn *ec = existing ? fconn(existing) : NULL;
        if (ec != NULL && fc->has_listen_addr && !ec->has_listen_addr) {
            ec->listen_addr = fc->listen_addr;
            ec->has_listen_addr = true;
            if (f->hooks.changed != NULL)
                f->hooks.changed(f->hooks.arg);
        }
        link_close(c->link, 0, NULL);
        return;
    }
    f->links[f->n_links++] = c;
    fc->up = true;
    if (fc->seed != NULL)
        fc->seed->retry_ms = SN_FED_RETRY_MIN_MS;
    /* The address it listens on: for a link we dialed, where it accepted us;
     * for one we accepted, gossip brings its addresses. */
    log_info("fed", "%s: supernode link up (%s, %zu supernodes linked)", link_name(c->link),
             fc->dialed ? "dialed" : "accepted", f->n_links);
    /* (never a NULL array: the hook may copy n of them) */
    f->hooks.link_up(f->hooks.arg, c, &fc->listen_addr, fc->has_listen_addr ? 1 : 0);
    if (fc->seed != NULL)
        seed_contacted(fc->seed);
}

/* A supernode link is gone: the federation logic decides what it means. */
void sn_fed_links_closed(struct sn_ctx *ctx, struct sn_conn *c)
{
    struct sn_fed_links *f = ctx->fed_links;
    struct fed_conn *fc = fconn(c);
    if (f == NULL || fc == NULL)
        return;
    if (fc->seed != NULL) {
        fc->seed->conn = NULL;
        seed_contacted(fc->seed);
    }
    if (fc->up) {
        for (size_t i = 0; i < f->n_links; i++) {
            if (f->links[i] == c) {
                f->links[i] = f->links[--f->n_links];
                break;
            }
        }
        fc->up = false;
        log_info("fed", "%s: supernode link down", link_name(c->link));
        f->hooks.link_down(f->hooks.arg, c);
    }
    /* Seeds whose supernode is no longer linked are dialed again. */
    for (size_t i = 0; i < f->n_seeds; i++)
        if (f->seeds[i].conn == NULL && !evtimer_pending(f->seeds[i].retry, NULL))
            seed_retry(&f->seeds[i]);
}

/* The seed for endpoint (n bytes), or NULL. */
static struct sn_seed *seed_find(struct sn_fed_links *f, const char *endpoint, size_t n)
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
static struct sn_seed *seed_add(struct sn_fed_links *f, const char *endpoint, size_t n)
{
    struct sn_seed *seed = NULL;
    for (size_t i = 0; i < f->n_seeds && seed == NULL; i++)
        if (f->seeds[i].endpoint == NULL && !f->seeds[i].resolving)
            seed = &f->seeds[i]; /* (a lookup still running would land in it) */
    if (seed == NULL && f->n_seeds < SN_FED_MAX_SEEDS)
        seed = &f->seeds[f->n_seeds];
    if (seed == NULL)
        return NULL;
    struct event *retry = seed->retry; /* a reused slot keeps its timer */
    memset(seed, 0, sizeof(*seed));
    seed->f = f;
    seed->retry = retry ? retry : evtimer_new(evloop_base(f->ctx->loop), on_seed_retry, seed);
    seed->retry_ms = SN_FED_RETRY_MIN_MS;
    seed->endpoint = strndup(endpoint, n);
    if (seed->retry != NULL && seed == &f->seeds[f->n_seeds])
        f->n_seeds++; /* a new slot counts once it can be freed by sn_fed_links_stop */
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
    if (seed->conn != NULL && fconn(seed->conn) != NULL)
        fconn(seed->conn)->seed = NULL;
    seed->conn = NULL;
    free(seed->endpoint);
    seed->endpoint = NULL;
}

/* Call fn for each endpoint of a comma-separated list (as checked by the
 * config: each 1..n bytes). */
static void each_endpoint(const char *list, void (*fn)(struct sn_fed_links *, const char *, size_t),
                          struct sn_fed_links *f)
{
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        fn(f, p, n);
        p = comma ? comma + 1 : NULL;
    }
}

static void start_seed(struct sn_fed_links *f, const char *endpoint, size_t n)
{
    if (seed_find(f, endpoint, n) != NULL)
        return; /* listed twice */
    if (seed_add(f, endpoint, n) == NULL)
        log_warn("fed", "seed supernode %.*s ignored: at most %d seeds (or out of memory)", (int)n,
                 endpoint, SN_FED_MAX_SEEDS);
}

static void reload_seed(struct sn_fed_links *f, const char *endpoint, size_t n)
{
    if (seed_find(f, endpoint, n) != NULL)
        return;
    struct sn_seed *seed = seed_add(f, endpoint, n);
    if (seed == NULL) {
        log_warn("fed", "reload: seed supernode %.*s ignored: at most %d seeds (or out of memory)",
                 (int)n, endpoint, SN_FED_MAX_SEEDS);
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

void sn_fed_links_reload_seeds(struct sn_ctx *ctx)
{
    struct sn_fed_links *f = ctx->fed_links;
    for (size_t i = 0; i < f->n_seeds; i++)
        if (f->seeds[i].endpoint != NULL && !listed(ctx->s->peers, f->seeds[i].endpoint))
            seed_drop(&f->seeds[i]);
    each_endpoint(ctx->s->peers, reload_seed, f);
}

bool sn_fed_links_seeds_contacted(const struct sn_ctx *ctx)
{
    const struct sn_fed_links *f = ctx->fed_links;
    for (size_t i = 0; f != NULL && i < f->n_seeds; i++)
        if (f->seeds[i].endpoint != NULL && !f->seeds[i].contacted)
            return false;
    return true;
}

size_t sn_fed_links_seeds(const struct sn_ctx *ctx)
{
    return ctx->fed_links ? ctx->fed_links->n_seeds : 0;
}

int sn_fed_links_start(struct sn_ctx *ctx, const struct sn_fed_links_hooks *hooks)
{
    struct sn_fed_links *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return SOVA_ERR_NOMEM;
    f->ctx = ctx;
    f->hooks = *hooks;
    ctx->fed_links = f;
    ctx->ext_free[SN_EXT_FED_LINK] = fconn_free;
    each_endpoint(ctx->s->peers, start_seed, f);
    for (size_t i = 0; i < f->n_seeds; i++)
        seed_dial(&f->seeds[i]);
    if (f->n_seeds)
        log_info("fed", "joining the federation through %zu seed supernode%s", f->n_seeds,
                 f->n_seeds == 1 ? "" : "s");
    return 0;
}

void sn_fed_links_stop(struct sn_ctx *ctx)
{
    struct sn_fed_links *f = ctx->fed_links;
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n_seeds; i++) {
        if (f->seeds[i].retry)
            event_free(f->seeds[i].retry);
        free(f->seeds[i].endpoint);
    }
    /* Links still open keep their fed_conn (freed with the conn), which may
     * point at a seed: forget them. */
    for (size_t i = 0; i < f->n_links; i++)
        fconn(f->links[i])->seed = NULL;
    free(f);
    ctx->fed_links = NULL;
}
