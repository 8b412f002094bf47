/* sn_connect.h - connection reversal: a downloader that others can reach
 * asks (CONNECT) that a source that cannot be reached connect out to it;
 * the source's supernode delivers the request (CONNECT_REQUEST), through
 * FWD_CONNECT when the source is attached to another supernode.
 *
 * Ownership: a CONNECT waiting to learn where its target is attached is the
 * asker's SN_EXT_CONNECT until the locate answers (search/sn_search.h owns
 * the wait; sn_connect_conn_gone() detaches it from a link that went). */
#ifndef SOVA_SN_CONNECT_H
#define SOVA_SN_CONNECT_H

#include "sn_ctx.h"

/* Register the per-link state's destructor. */
void sn_connect_start(struct sn_ctx *ctx);
/* CONNECT from an attached peer; FWD_CONNECT from a supernode. */
void sn_connect_on_connect(struct sn_ctx *ctx, struct sn_conn *c, const struct msg *m);
void sn_connect_on_forwarded(struct sn_ctx *ctx, struct sn_conn *from, const struct msg *m);
/* c's link is closing: a CONNECT of its being located is answered into the void. */
void sn_connect_conn_gone(struct sn_ctx *ctx, struct sn_conn *c);

#endif
