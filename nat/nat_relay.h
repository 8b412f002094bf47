/* nat_relay.h - relay circuits at an ordinary peer: the ends of the
 * circuits that run through its supernode (docs/NAT.md#relay-circuits).
 *
 * A circuit looks to its owner like a byte stream: a bufferevent (one end
 * of a bufferevent pair) that the owner wraps in a TLS link with
 * link_wrap(), so the two peers run their own TLS 1.3 session inside the
 * circuit and the supernodes carry only its ciphertext. This module moves
 * the bytes between that stream and RELAY_DATA frames on the supernode
 * link, with the protocol's per-hop flow control: it sends only as much as
 * the supernode granted, and grants credit back as the owner's TLS layer
 * consumes what arrived, so a circuit buffers at most its window here.
 *
 * Who starts: nat_relay_open() (we are the origin: a downloader that can
 * reach its source no other way), or a RELAY_OPEN from the supernode (we
 * are the target: the incoming hook gets the stream). Circuit ids: we dial
 * our supernode, so ours are odd.
 *
 * Endings: RELAY_CLOSE from the supernode, or its link going
 * (nat_relay_link_down), ends the stream with EOF; the owner freeing its
 * link (which frees the stream) sends RELAY_CLOSE. A circuit never
 * outlives the supernode link it runs on.
 *
 * Ownership: the relay owns its circuits; a stream handed to the owner is
 * the owner's (link_wrap takes it). Nothing blocks. Uses common/ only.
 */
#ifndef SOVA_NAT_RELAY_H
#define SOVA_NAT_RELAY_H

#include "msg.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

/* Credit returned to the supernode in steps this big. */
#define NAT_RELAY_GRANT_BYTES (64u * 1024)
/* Ciphertext the owner's TLS layer may queue toward a circuit that has no
 * credit, before the owner's own output queue takes the back-pressure. */
#define NAT_RELAY_STREAM_HIGH (256u * 1024)

struct nat_relay;
struct nat_relay_circuit;

struct nat_relay_hooks {
    /* Send a RELAY_* frame on the supernode link; 0 or a negative error. */
    int (*send)(const struct msg *m, void *arg);
    /* Someone opened a circuit to us: stream is the owner's from now on
     * (wrap it, or bufferevent_free it to refuse). origin_id and token are
     * from the RELAY_OPEN, borrowed for the call. */
    void (*incoming)(struct bufferevent *stream, const uint8_t origin_id[WIRE_ID_LEN],
                     const uint8_t token[WIRE_TOKEN_LEN], void *arg);
};

/* When an opened circuit is ready (stream, the owner's) or failed (stream
 * NULL and reason: a RELAY_CLOSE reason, MSG_ERR_TIMEOUT, or
 * MSG_ERR_NOT_ATTACHED when the supernode link went). Runs exactly once
 * unless cancelled. */
typedef void nat_relay_open_fn(struct bufferevent *stream, uint16_t reason, void *arg);

struct nat_relay_stats {
    unsigned circuits;            /* open or opening now */
    uint64_t opened, accepted;    /* as origin, as target, since start */
    uint64_t bytes_in, bytes_out; /* RELAY_DATA payload */
};

/* lim is borrowed (max_relay_data) and outlives the relay. */
struct nat_relay *nat_relay_new(struct event_base *base, const struct wire_limits *lim,
                                const struct nat_relay_hooks *hooks, void *arg);
/* Ends every circuit (streams see EOF) without sending anything. NULL ok. */
void nat_relay_free(struct nat_relay *r);

/* Open a circuit from self_id to target_id, tagged with token. Returns 0
 * (fn will run; *out, if not NULL, is a handle for nat_relay_cancel) or a
 * negative error (fn will not run). */
int nat_relay_open(struct nat_relay *r, const uint8_t self_id[WIRE_ID_LEN],
                   const uint8_t target_id[WIRE_ID_LEN], const uint8_t token[WIRE_TOKEN_LEN],
                   unsigned timeout_ms, nat_relay_open_fn *fn, void *arg,
                   struct nat_relay_circuit **out);
/* Give up waiting for an opening circuit: fn will not run. Only valid
 * before fn has run. */
void nat_relay_cancel(struct nat_relay_circuit *c);

/* Every RELAY_* message that arrives on the supernode link. */
void nat_relay_message(struct nat_relay *r, const struct msg *m);
/* The supernode link is gone: every circuit ends. */
void nat_relay_link_down(struct nat_relay *r);

void nat_relay_stats(const struct nat_relay *r, struct nat_relay_stats *out);

#endif
