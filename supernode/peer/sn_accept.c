/* sn_accept.c - admission of accepted connections (sn_accept.h). */
#include "sn_accept.h"
#include "err.h"
#include "log.h"

#include <stdlib.h>

/* A connection turned away before TLS (no ERROR can reach it yet): counted,
 * and logged at most every SN_REFUSALS_LOG_MS with the totals. */
static void refuse_connection(struct sn_ctx *ctx, uint64_t *counter, evutil_socket_t fd, SSL *ssl)
{
    struct sn_counters *ct = &ctx->counters;
    (*counter)++;
    SSL_free(ssl);
    evutil_closesocket(fd);
    uint64_t now = link_now_ms(), total = ct->refused_handshakes + ct->refused_ip;
    if (now - ctx->refusals_logged_ms < SN_REFUSALS_LOG_MS)
        return;
    log_warn("sn",
             "refused %llu connections since the last report: %llu in all over max-handshakes "
             "(%llu), %llu over max-conns-per-ip (%llu)",
             (unsigned long long)(total - ctx->refusals_at_log),
             (unsigned long long)ct->refused_handshakes, (unsigned long long)ctx->s->max_handshakes,
             (unsigned long long)ct->refused_ip, (unsigned long long)ctx->s->max_conns_per_ip);
    ctx->refusals_logged_ms = now;
    ctx->refusals_at_log = total;
}

void sn_accept_conn(struct sn_ctx *ctx, evutil_socket_t fd, SSL *ssl, const struct sockaddr *sa,
                    socklen_t len)
{
    struct wire_addr from;
    bool known = wire_addr_from_sockaddr(&from, sa, len) == 0;
    if (ctx->n_handshaking >= ctx->s->max_handshakes) {
        refuse_connection(ctx, &ctx->counters.refused_handshakes, fd, ssl);
        return;
    }
    if (known && !sn_ipcount_add(ctx->ipcount, &from, (unsigned)ctx->s->max_conns_per_ip)) {
        refuse_connection(ctx, &ctx->counters.refused_ip, fd, ssl);
        return;
    }
    struct sn_conn *c = sn_conn_new(ctx);
    if (c == NULL) {
        if (known)
            sn_ipcount_del(ctx->ipcount, &from);
        log_error("sn", "out of memory accepting a connection");
        SSL_free(ssl);
        evutil_closesocket(fd);
        return;
    }
    c->counted_ip = known;
    c->from = from;
    c->handshaking = true;
    ctx->n_handshaking++;
    c->link = link_accept(evloop_base(ctx->loop), fd, ssl, sa, len, &ctx->link_params,
                          ctx->link_hooks, c);
    if (c->link == NULL) {
        ctx->n_handshaking--;
        if (known)
            sn_ipcount_del(ctx->ipcount, &from);
        sn_conn_free(c);
    }
}

void sn_accept_handshake_done(struct sn_ctx *ctx, struct sn_conn *c)
{
    if (c->handshaking) {
        c->handshaking = false;
        ctx->n_handshaking--;
    }
}

void sn_accept_conn_gone(struct sn_ctx *ctx, struct sn_conn *c)
{
    sn_accept_handshake_done(ctx, c);
    if (c->counted_ip)
        sn_ipcount_del(ctx->ipcount, &c->from);
    c->counted_ip = false;
}
