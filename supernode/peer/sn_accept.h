/* sn_accept.h - admission of accepted connections. Before TLS, the links'
 * budget (common/link.h, ctx->budget) decides: max-conns-per-ip from one
 * address, max-handshakes in progress shared fairly by address prefix (a
 * newcomer from a prefix holding fewer displaces the oldest handshake of
 * the prefix holding the most), federation-handshakes more for supernodes;
 * refusals are counted and logged there. */
#ifndef SOVA_SN_ACCEPT_H
#define SOVA_SN_ACCEPT_H

#include "sn_ctx.h"

/* Take an accepted connection (fd is owned from now): a new sn_conn on a
 * link with ctx->link_hooks, or closed (refused by the budget, counted). */
void sn_accept_conn(struct sn_ctx *ctx, evutil_socket_t fd, const struct sockaddr *sa,
                    socklen_t len);
/* The link of c finished its handshake (or closed during it). */
void sn_accept_handshake_done(struct sn_ctx *ctx, struct sn_conn *c);
/* c's link is closing. */
void sn_accept_conn_gone(struct sn_ctx *ctx, struct sn_conn *c);

#endif
