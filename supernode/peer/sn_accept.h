/* sn_accept.h - admission of accepted connections: at most max-handshakes
 * in their TLS handshake at once and max-conns-per-ip from one address;
 * the rest are closed before TLS, counted, and logged at most every
 * SN_REFUSALS_LOG_MS with the totals. */
#ifndef SOVA_SN_ACCEPT_H
#define SOVA_SN_ACCEPT_H

#include "sn_ctx.h"

/* Take an accepted connection (fd and ssl are owned from now): a new
 * sn_conn on a link with ctx->link_hooks, or closed and counted. */
void sn_accept_conn(struct sn_ctx *ctx, evutil_socket_t fd, SSL *ssl, const struct sockaddr *sa,
                    socklen_t len);
/* The link of c finished its handshake (or closed during it): it no longer
 * holds a handshake slot. */
void sn_accept_handshake_done(struct sn_ctx *ctx, struct sn_conn *c);
/* c's link is closing: its address slot is given back. */
void sn_accept_conn_gone(struct sn_ctx *ctx, struct sn_conn *c);

#endif
