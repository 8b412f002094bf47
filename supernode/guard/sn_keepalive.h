/* sn_keepalive.h - the keep-alive a supernode tells its peers (REGISTERED),
 * scaled with how many it carries. Every PING costs the supernode a wake-up,
 * a TLS record each way and a handful of system calls; at the configured
 * interval a large supernode would spend more on idle peers than on work.
 * With a budget of PINGs a second, the interval grows with the peer count
 * so the total PING rate stays within it, and the drop timeout grows in
 * step (same ratio to the interval as configured). Pure: numbers in,
 * numbers out; the caller keeps what it told each peer.
 */
#ifndef SOVA_SN_KEEPALIVE_H
#define SOVA_SN_KEEPALIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sn_keepalive {
    uint16_t keepalive_s;    /* PING at least this often */
    uint16_t peer_timeout_s; /* silence after which the peer is dropped */
};

/* The advice for `peers` links: keepalive_s (≥ 1) and peer_timeout_s (≥
 * keepalive_s) as configured while peers / keepalive_s ≤ max_pings_per_s
 * (0: no budget, always as configured); beyond, keepalive_s =
 * ceil(peers / max_pings_per_s) and the timeout scaled by the same factor,
 * both capped at 65,535 (the wire's u16). */
struct sn_keepalive sn_keepalive_advise(uint64_t keepalive_s, uint64_t peer_timeout_s,
                                        uint64_t max_pings_per_s, size_t peers);

/* Whether a peer told `told` should be told `now` instead: its interval or
 * timeout is more than an eighth off, either way (so small changes of the
 * peer count do not make every peer's next PING carry new advice). */
bool sn_keepalive_stale(struct sn_keepalive told, struct sn_keepalive now);

#endif
