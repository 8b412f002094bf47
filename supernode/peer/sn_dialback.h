/* sn_dialback.h - reachability proofs: a peer asks (DIALBACK) and the
 * supernode connects back to the addresses it names, runs a TLS handshake
 * that must show the peer's own key, and reports each outcome
 * (DIALBACK_RESULT). What a dial-back proved is kept in the peer's
 * sn_conn.verified: a REGISTER claiming public or mapped reachability is
 * believed only for an address proved this way.
 *
 * Ownership: the running probes are ctx->dialbacks (start/stop); a probe
 * outlives its asker's link (its result then goes nowhere). */
#ifndef SOVA_SN_DIALBACK_H
#define SOVA_SN_DIALBACK_H

#include "sn_ctx.h"

int sn_dialback_start(struct sn_ctx *ctx);
/* Shutdown: abandon every running probe. */
void sn_dialback_stop(struct sn_ctx *ctx);
/* DIALBACK from an attached peer. */
void sn_dialback_on_request(struct sn_ctx *ctx, struct sn_conn *c, const struct msg *m);
/* c's link is closing: its probes go on, their result goes nowhere. */
void sn_dialback_conn_gone(struct sn_ctx *ctx, struct sn_conn *c);
/* The reachability to advertise for c: its claim, if a dial-back proved one
 * of the addresses it claims; unreachable if it claimed so or nothing was
 * proved; unknown until it says. */
uint8_t sn_dialback_reachability(const struct sn_conn *c);

#endif
