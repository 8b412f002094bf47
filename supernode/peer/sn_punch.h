/* sn_punch.h - hole punching (docs/NAT.md): two peers that cannot be
 * reached exchange notes through their supernodes (PUNCH from a peer,
 * PUNCH_NOTE to the other, FWD_PUNCH between supernodes) and then both
 * dial at once, a TCP simultaneous open through their NATs.
 *
 * The supernode only carries the notes: it names the sender (its TLS
 * identity, never a claim) and puts in the IP the sender's connection
 * comes from, so a note cannot send a peer to a third party. A note for a
 * peer that is not attached, or that does not take notes (its HELLO lacks
 * MSG_CAP_PUNCH), comes back to the sender as a NO from that peer.
 *
 * Ownership: a note waiting to learn where its target is attached belongs
 * to the pending locate (search/sn_search.h), which always calls back. */
#ifndef SOVA_SN_PUNCH_H
#define SOVA_SN_PUNCH_H

#include "sn_ctx.h"

/* PUNCH from an attached peer; FWD_PUNCH from a supernode. */
void sn_punch_on_punch(struct sn_ctx *ctx, struct sn_conn *c, const struct msg *m);
void sn_punch_on_forwarded(struct sn_ctx *ctx, struct sn_conn *from, const struct msg *m);

#endif
