/* sn_accept.h - admission of accepted connections, until they REGISTER.
 *
 * Before TLS, the links' budget (common/link.h, ctx->budget) decides:
 * max-conns-per-ip from one address, max-handshakes in progress shared
 * fairly by address prefix (a newcomer from a prefix holding fewer
 * displaces the oldest handshake of the prefix holding the most),
 * federation-handshakes more for supernodes; it counts and logs refusals.
 *
 * After HELLO, a peer's link waits for its REGISTER in a pool of
 * max-unregistered links shared the same way (common/fair.h, by /24 or
 * /56): when all are taken, the oldest of the prefix holding the most is
 * closed with ERROR(limit reached) for a newcomer from a prefix holding
 * fewer, else the newcomer is. One that has not registered after
 * register-timeout-s is closed with ERROR(timeout) by the sweep. So links
 * that finished TLS but never REGISTER hold at most their share. */
#ifndef SOVA_SN_ACCEPT_H
#define SOVA_SN_ACCEPT_H

#include "sn_ctx.h"

/* The pool of links waiting for REGISTER (ctx->unregistered and its
 * queue): 0 or SOVA_ERR_NOMEM. sn_accept_stop() frees it. */
int sn_accept_start(struct sn_ctx *ctx);
void sn_accept_stop(struct sn_ctx *ctx);
/* max-unregistered changed (reload). */
void sn_accept_settings_changed(struct sn_ctx *ctx);
/* Take an accepted connection (fd is owned from now): a new sn_conn on a
 * link with ctx->link_hooks, or closed (refused by the budget, counted). */
void sn_accept_conn(struct sn_ctx *ctx, evutil_socket_t fd, const struct sockaddr *sa,
                    socklen_t len);
/* The link of c finished its handshake (or closed during it). */
void sn_accept_handshake_done(struct sn_ctx *ctx, struct sn_conn *c);
/* c is a peer whose HELLO is done: it waits for its REGISTER (or is
 * closed, or displaces another, as above). */
void sn_accept_opened(struct sn_ctx *ctx, struct sn_conn *c);
/* c registered (primary or backup): it no longer waits. */
void sn_accept_registered(struct sn_ctx *ctx, struct sn_conn *c);
/* Close the links that waited longer than register-timeout-s. */
void sn_accept_sweep(struct sn_ctx *ctx, uint64_t now_ms);
/* c's link is closing. */
void sn_accept_conn_gone(struct sn_ctx *ctx, struct sn_conn *c);
/* Links waiting for REGISTER now. */
size_t sn_accept_unregistered(const struct sn_ctx *ctx);

#endif
