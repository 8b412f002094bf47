/* sn_credit.h - the credit arithmetic (docs/CREDITS.md), pure integers.
 *
 * Every number of the ledger is a byte or second count that strangers can
 * feed: a receipt says 2^63 bytes as easily as 1 MiB. So every sum here
 * saturates at UINT64_MAX instead of wrapping (sn_sat_add), and what is
 * derived from the sums (credit, shares) is bounded by a cap. What credit
 * a peer has, as seen by another, is sn_flow.h; this is what it is made of:
 *  - uptime: SN_CREDIT_UPTIME_PER_HOUR bytes of standing per hour a
 *    supernode saw the peer attached, up to SN_CREDIT_UPTIME_MAX_S (shown
 *    in `status`; it buys no priority: sn_flow.h counts only uploads);
 *  - relay bandwidth shared by credit with a floor (sn_credit_relay_shares).
 */
#ifndef SOVA_SN_CREDIT_H
#define SOVA_SN_CREDIT_H

#include <stddef.h>
#include <stdint.h>

#define SN_CREDIT_UPTIME_PER_HOUR (1024ull * 1024)        /* standing per hour online */
#define SN_CREDIT_UPTIME_MAX_S    (30ull * 24 * 3600)     /* uptime stops counting */
#define SN_CREDIT_CAP_DEFAULT     (1024ull * 1024 * 1024) /* credit-cap-mb: one peer's at another */

/* a + b, or UINT64_MAX where that would wrap. */
static inline uint64_t sn_sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* The smaller of a and b. */
static inline uint64_t sn_min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* Standing for uptime_s seconds online (never above
 * SN_CREDIT_UPTIME_MAX_S worth). */
uint64_t sn_credit_uptime(uint64_t uptime_s);

/* Share `total` (bytes a second) among n peers: floor_pct percent of it
 * equally, the rest in proportion to credits[i] (equally if all are 0).
 * out[i] >= total x floor_pct / 100 / n, and the shares add up to at most
 * total, whatever the credits (no product or sum can wrap). */
void sn_credit_relay_shares(const uint64_t *credits, size_t n, uint64_t total, unsigned floor_pct,
                            uint64_t *out);

#endif
