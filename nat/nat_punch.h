/* nat_punch.h - one end of a TCP hole punch (docs/NAT.md, "Hole
 * punching"): a socket bound to a local port before anything is sent, so
 * the port can be told to the other side (through the supernodes), then a
 * connect from that port to the other side's address at the agreed moment.
 * When both ends do it at about the same time, each NAT sees its own
 * outgoing SYN first and lets the other's in as its answer: a TCP
 * simultaneous open, one connection with no listener. A NAT that keeps
 * ports (endpoint-independent mapping) maps the bound port to the same
 * public port, which is why the other side can aim at it.
 *
 * A SYN that reaches the other NAT before that NAT has seen its own side's
 * SYN is dropped (or refused); the attempt then connects again from the
 * same port every NAT_PUNCH_RETRY_MS until its deadline, and the kernel
 * retransmits a SYN that got no answer, so both ends need only be roughly
 * in step.
 *
 * Ownership: the caller owns the struct nat_punch (nat_punch_free, which
 * cancels without calling back). The connected bufferevent (plain TCP, no
 * callbacks set) handed to the callback is the callback's. Nothing blocks.
 * Uses common/ only. */
#ifndef SOVA_NAT_PUNCH_H
#define SOVA_NAT_PUNCH_H

#include "wire.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#define NAT_PUNCH_RETRY_MS 100 /* a refused or failed connect is tried again after */

struct nat_punch;

/* Connected (bev, the callback's; why NULL) or given up (bev NULL; why in
 * words, valid for the call even if the callback frees the nat_punch).
 * Runs exactly once after nat_punch_start, unless freed before. */
typedef void nat_punch_fn(struct bufferevent *bev, const char *why, void *arg);

/* A socket of family (WIRE_ADDR_IPV4 or _IPV6) bound to a free local port,
 * on the address of bind_addr (its port is ignored; NULL: any address, and
 * then family says which); NULL with err (errlen bytes) filled on failure. */
struct nat_punch *nat_punch_new(struct event_base *base, uint8_t family,
                                const struct sockaddr *bind_addr, socklen_t bind_len, char *err,
                                size_t errlen);
/* The local port it is bound to (host order). */
uint16_t nat_punch_port(const struct nat_punch *p);
/* Dial `to` from that port after delay_ms, again and again until
 * timeout_ms after that; fn reports once. 0, or -1 if already started. */
int nat_punch_start(struct nat_punch *p, const struct wire_addr *to, unsigned delay_ms,
                    unsigned timeout_ms, nat_punch_fn *fn, void *arg);
/* How many connects were made (for the log and the benchmark). */
unsigned nat_punch_attempts(const struct nat_punch *p);
/* Cancel (no callback) and free; NULL is fine. */
void nat_punch_free(struct nat_punch *p);

/* Is there a route from here to a's address (an IPv6-only host has none to
 * an IPv4 address)? A route lookup, nothing sent (a UDP connect). */
bool nat_punch_routable(const struct wire_addr *a);

/* The moment to dial, DCUtR-style: the side that measured the round trip
 * to the other (through the supernodes) sends SYNC and dials after half of
 * it, the other dials when SYNC arrives, so both SYNs leave at about the
 * same time. Pure. */
unsigned nat_punch_delay_ms(uint64_t rtt_ms);

#endif
