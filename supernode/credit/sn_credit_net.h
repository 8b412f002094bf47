/* sn_credit_net.h - the credit ledger on the wire (docs/CREDITS.md):
 * receipts in from sources, credit reads for peers and for weighing
 * receipts, the records' placement on the holders (sn_credit_place.h) and
 * their moves when the federation changes, uptime reports, and relay
 * bandwidth shared by credit. The arithmetic is sn_credit.h, the store
 * sn_ledger.h.
 *
 * Ownership: the state is ctx->credit (start/stop); reads in flight hold a
 * pointer to the asking conn until sn_credit_conn_gone(). */
#ifndef SOVA_SN_CREDIT_NET_H
#define SOVA_SN_CREDIT_NET_H

#include "sn_ctx.h"

#include <jansson.h>

int sn_credit_start(struct sn_ctx *ctx);
void sn_credit_stop(struct sn_ctx *ctx);
/* RECEIPTS or CREDIT from an attached peer. */
void sn_credit_on_peer_message(struct sn_ctx *ctx, struct sn_conn *c, const struct msg *m);
/* REPORT from an attached peer: it counts only from a reporter introduced
 * to the source (guard/sn_intro.h) or holding its receipt, weighed by the
 * reporter's credit as seen by the source (sn_credit_reports.c). */
void sn_credit_on_report(struct sn_ctx *ctx, struct sn_conn *c, const struct msg *m);
/* For ranking hits: did others' receipts verify uploads of peer_id, as far
 * as this supernode knows? An unknown peer's record is read in the
 * background (the answer is false until then). */
bool sn_credit_source_verified(struct sn_ctx *ctx, const uint8_t peer_id[WIRE_ID_LEN]);
/* LEDGER_* on a supernode link. */
void sn_credit_on_fed_message(struct sn_ctx *ctx, struct sn_conn *c, const struct msg *m);
/* Membership changed / a supernode linked up: records move to their holders. */
void sn_credit_membership_changed(struct sn_ctx *ctx);
void sn_credit_link_up(struct sn_ctx *ctx, struct sn_conn *c);
/* c's link is closing: its questions are answered into the void, its
 * session's time is reported. */
void sn_credit_conn_gone(struct sn_ctx *ctx, struct sn_conn *c);
/* credit-cap-mb changed (reload). */
void sn_credit_settings_changed(struct sn_ctx *ctx);
json_t *sn_credit_status_json(const struct sn_ctx *ctx);

#endif
