/* sn_relay.h - relay circuits: two peers that cannot connect to each other
 * talk through this supernode (and, when the other peer is attached to
 * another supernode, through that one too: an SN<->SN splice). The peers
 * run their own TLS session inside the circuit, so all that passes here is
 * their ciphertext in RELAY_DATA frames. The rules (who may open, flow
 * control) are sn_relay_flow.h; this is their I/O.
 *
 * Circuits live with their links: a link that closes closes every circuit
 * through it (sn_relay_conn_gone), and the other end is told, so nothing
 * outlives a reconnect. Ownership: the state is ctx->relay (start/stop);
 * each link's circuits and bandwidth are its SN_EXT_RELAY, made on first
 * use and freed with the link. */
#ifndef SOVA_SN_RELAY_H
#define SOVA_SN_RELAY_H

#include "sn_ctx.h"

#include <jansson.h>

int sn_relay_start(struct sn_ctx *ctx);
void sn_relay_stop(struct sn_ctx *ctx);
/* A RELAY_* message from a peer or a supernode link. */
void sn_relay_on_message(struct sn_ctx *ctx, struct sn_conn *c, const struct msg *m);
/* c's link is going: every circuit through it closes. */
void sn_relay_conn_gone(struct sn_ctx *ctx, struct sn_conn *c);
/* c's link has room again: circuits waiting for it move on. */
void sn_relay_conn_drained(struct sn_ctx *ctx, struct sn_conn *c);
/* relay-peer-kbps or relay-total-kbps changed (reload). */
void sn_relay_rates_changed(struct sn_ctx *ctx);
/* relay-max-circuits, relay-max-prefix-circuits or relay-idle-timeout-s
 * changed (reload): the idle timeout applies to open circuits at once. */
void sn_relay_limits_changed(struct sn_ctx *ctx);

/* Circuits of an attached peer through this supernode. */
unsigned sn_relay_conn_circuits(const struct sn_conn *c);
/* The peers at the other end of an attached peer's circuits (each once),
 * up to cap of them into out; how many. */
size_t sn_relay_conn_far_ends(const struct sn_conn *c, uint8_t (*out)[WIRE_ID_LEN], size_t cap);
/* Set an attached peer's relay bandwidth (bytes a second; credit/ shares
 * relay-total-kbps by credit). */
void sn_relay_conn_set_rate(struct sn_conn *c, uint64_t rate, uint64_t now_ms);

/* Relay traffic now, kilobytes per second (gossiped as load). */
uint32_t sn_relay_kbps(const struct sn_ctx *ctx);
json_t *sn_relay_status_json(const struct sn_ctx *ctx);

#endif
