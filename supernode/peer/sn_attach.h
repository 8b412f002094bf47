/* sn_attach.h - ordinary peers attached to this supernode: REGISTER (primary
 * or backup session, max-peers), PUBLISH into the index, the keep-alive
 * each is told (REGISTERED, again when the advice
 * moves) and the sweep that drops the silent. The index entry for a peer
 * ID belongs to the newest primary session of that ID (a peer that
 * re-attaches, from any address, replaces the old).
 *
 * Stateless beyond the conns' own fields (sn_ctx.h). */
#ifndef SOVA_SN_ATTACH_H
#define SOVA_SN_ATTACH_H

#include "sn_ctx.h"

/* REGISTER and PUBLISH from a peer (REPORT is credit/'s: a report counts
 * by the reporter's credit). */
void sn_attach_on_register(struct sn_ctx *ctx, struct sn_conn *c, const struct msg *m);
void sn_attach_on_publish(struct sn_ctx *ctx, struct sn_conn *c, const struct msg *m);
/* A PING from c arrived: REGISTERED again if the keep-alive advice moved. */
void sn_attach_pinged(struct sn_ctx *ctx, struct sn_conn *c);
/* A peer's link is closing: its files leave the index. Returns how many. */
size_t sn_attach_conn_gone(struct sn_ctx *ctx, struct sn_conn *c);
/* Drop peers silent longer than the timeout they were told (from a timer). */
void sn_attach_sweep(struct sn_ctx *ctx);

#endif
