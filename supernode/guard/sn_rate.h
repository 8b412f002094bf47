/* sn_rate.h - a token bucket: `rate` units a second, at most `burst` saved
 * up. Behind every per-peer rate of the supernode (requests, receipts,
 * relay bandwidth) and its total relay bandwidth.
 *
 * Pure arithmetic on the time the caller passes (milliseconds of a
 * monotonic clock); no allocation, no I/O. Tokens are kept in thousandths
 * so a slow rate loses nothing to rounding between calls. */
#ifndef SOVA_SN_RATE_H
#define SOVA_SN_RATE_H

#include <stdint.h>

struct sn_rate {
    uint64_t tokens, burst, rate; /* rate 0: unlimited */
    uint64_t last_ms;
};

/* Start full: `burst` units (0: one second's worth) at `rate` a second. */
void sn_rate_init(struct sn_rate *r, uint64_t rate, uint64_t burst, uint64_t now_ms);
/* Take n units if they are there (0), else SOVA_ERR_NOT_FOUND and *wait_ms
 * (may be NULL) says when they will be. */
int sn_rate_take(struct sn_rate *r, uint64_t n, uint64_t now_ms, uint64_t *wait_ms);
/* Units available now (UINT64_MAX when unlimited). */
uint64_t sn_rate_available(struct sn_rate *r, uint64_t now_ms);
/* A new rate and burst, keeping the tokens saved (at most the new burst). */
void sn_rate_set(struct sn_rate *r, uint64_t rate, uint64_t burst, uint64_t now_ms);

#endif
