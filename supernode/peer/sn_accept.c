/* sn_accept.c - admission of accepted connections, until they REGISTER
 * (sn_accept.h). */
#include "sn_accept.h"
#include "err.h"
#include "log.h"

#include <inttypes.h>
#include <stdlib.h>

int sn_accept_start(struct sn_ctx *ctx)
{
    TAILQ_INIT(&ctx->unregistered_q);
    ctx->unregistered = fair_pool_new(ctx->s->max_unregistered, 0, FAIR_VICTIM_OLDEST);
    return ctx->unregistered ? 0 : SOVA_ERR_NOMEM;
}

void sn_accept_stop(struct sn_ctx *ctx)
{
    fair_pool_free(ctx->unregistered);
    ctx->unregistered = NULL;
}

void sn_accept_settings_changed(struct sn_ctx *ctx)
{
    fair_pool_set_limits(ctx->unregistered, ctx->s->max_unregistered, 0);
}

void sn_accept_conn(struct sn_ctx *ctx, evutil_socket_t fd, const struct sockaddr *sa,
                    socklen_t len)
{
    if (!link_admit(ctx->budget, sa, len)) {
        evutil_closesocket(fd); /* before TLS: no ERROR can reach it yet */
        return;
    }
    SSL *ssl = NULL;
    struct sn_conn *c = NULL;
    if (tls_ctx_server(ctx->tls, NULL, &ssl) != 0 || (c = sn_conn_new(ctx)) == NULL) {
        log_error("sn", "out of memory accepting a connection");
        SSL_free(ssl);
        evutil_closesocket(fd);
        return;
    }
    evutil_make_socket_nonblocking(fd);
    wire_addr_from_sockaddr(&c->from, sa, len);
    c->handshaking = true;
    c->link = link_accept(evloop_base(ctx->loop), fd, ssl, sa, len, &ctx->link_params,
                          ctx->link_hooks, c);
    if (c->link == NULL)
        sn_conn_free(c);
}

void sn_accept_handshake_done(struct sn_ctx *ctx, struct sn_conn *c)
{
    (void)ctx;
    c->handshaking = false;
}

/* ---- waiting for REGISTER ------------------------------------------------------------ */

static void stop_waiting(struct sn_ctx *ctx, struct sn_conn *c)
{
    if (c->unregistered.group == NULL)
        return;
    fair_leave(ctx->unregistered, &c->unregistered);
    TAILQ_REMOVE(&ctx->unregistered_q, c, unregistered_q);
}

/* Links closed before REGISTER: one log line per SN_REFUSALS_LOG_MS with
 * the totals. */
static void log_unregistered(struct sn_ctx *ctx, const struct sn_conn *c, const char *what)
{
    const struct sn_counters *ct = &ctx->counters;
    uint64_t now = link_now_ms(),
             total = ct->unregistered_refused + ct->unregistered_displaced + ct->register_timeouts;
    if (ctx->unregistered_logged_ms != 0 && now - ctx->unregistered_logged_ms < SN_REFUSALS_LOG_MS)
        return;
    log_warn("sn",
             "%s: %s; %" PRIu64
             " links closed before REGISTER since the last report (in all %" PRIu64
             " over max-unregistered (%" PRIu64 "), %" PRIu64 " displaced, %" PRIu64
             " after register-timeout-s); %zu waiting",
             link_name(c->link), what, total - ctx->unregistered_at_log, ct->unregistered_refused,
             ctx->s->max_unregistered, ct->unregistered_displaced, ct->register_timeouts,
             fair_holders(ctx->unregistered));
    ctx->unregistered_logged_ms = now;
    ctx->unregistered_at_log = total;
}

void sn_accept_opened(struct sn_ctx *ctx, struct sn_conn *c)
{
    uint8_t key[FAIR_KEY_MAX];
    size_t n = fair_key_prefix(link_remote_addr(c->link), key);
    struct fair_holder *victim;
    for (;;) {
        enum fair_verdict v = fair_check_key(ctx->unregistered, key, n, 1, &victim);
        if (v == FAIR_OK)
            break;
        if (v != FAIR_DISPLACE) {
            ctx->counters.unregistered_refused++;
            log_unregistered(ctx, c, "closed, too many links waiting for REGISTER");
            link_close(c->link, MSG_ERR_LIMIT_REACHED,
                       "too many links waiting for REGISTER from your network (max-unregistered)");
            return;
        }
        /* The oldest of the prefix holding the most gives way. */
        struct sn_conn *old = victim->owner;
        stop_waiting(ctx, old);
        ctx->counters.unregistered_displaced++;
        log_unregistered(ctx, old, "displaced before REGISTER by a newcomer from another network");
        link_close(old->link, MSG_ERR_LIMIT_REACHED,
                   "displaced before REGISTER: your network holds the most links waiting "
                   "(max-unregistered)");
    }
    if (fair_join(ctx->unregistered, &c->unregistered, key, n, 1, c) != 0)
        return; /* out of memory: not counted, still swept by the keep-alive */
    c->opened_ms = link_now_ms();
    TAILQ_INSERT_TAIL(&ctx->unregistered_q, c, unregistered_q);
}

void sn_accept_registered(struct sn_ctx *ctx, struct sn_conn *c)
{
    stop_waiting(ctx, c);
}

void sn_accept_sweep(struct sn_ctx *ctx, uint64_t now_ms)
{
    uint64_t limit = ctx->s->register_timeout_s * 1000;
    struct sn_conn *c;
    /* Oldest first: each one waited longer than those behind it. */
    while ((c = TAILQ_FIRST(&ctx->unregistered_q)) != NULL && now_ms - c->opened_ms > limit) {
        stop_waiting(ctx, c);
        ctx->counters.register_timeouts++;
        log_unregistered(ctx, c, "no REGISTER within register-timeout-s, closed");
        link_close(c->link, MSG_ERR_TIMEOUT, "no REGISTER within register-timeout-s");
    }
}

void sn_accept_conn_gone(struct sn_ctx *ctx, struct sn_conn *c)
{
    sn_accept_handshake_done(ctx, c);
    stop_waiting(ctx, c);
}

size_t sn_accept_unregistered(const struct sn_ctx *ctx)
{
    return fair_holders(ctx->unregistered);
}
