/* sn_accept.c - admission of accepted connections (sn_accept.h). */
#include "sn_accept.h"
#include "err.h"
#include "log.h"

#include <stdlib.h>

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

void sn_accept_conn_gone(struct sn_ctx *ctx, struct sn_conn *c)
{
    sn_accept_handshake_done(ctx, c);
}
