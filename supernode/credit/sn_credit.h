/* sn_credit.h - the credit arithmetic (docs/CREDITS.md), pure integers.
 *
 * Credit is counted in bytes: what a peer uploaded, as its downloaders
 * signed, weighed by how much each downloader's word is worth, capped per
 * downloader, plus a little for time online.
 *  - weight: a downloader that has neither uploaded nor stayed online is a
 *    fresh identity, anyone can make thousands: its receipts count
 *    SN_CREDIT_FRESH_WEIGHT permille. The weight grows linearly to 1000 with
 *    the downloader's own uploaded bytes (full at SN_CREDIT_ESTABLISH_BYTES)
 *    or its observed time online (full at SN_CREDIT_ESTABLISH_S), whichever
 *    is further along;
 *  - cap: the credit one peer earns from any one downloader never exceeds
 *    the cap (credit-cap-mb, 1 GiB by default);
 *  - uptime: SN_CREDIT_UPTIME_PER_HOUR bytes of credit per hour a
 *    supernode saw the peer attached, up to SN_CREDIT_UPTIME_MAX_S.
 * Relay bandwidth is shared by credit with a floor (sn_credit_relay_shares).
 */
#ifndef SOVA_SN_CREDIT_H
#define SOVA_SN_CREDIT_H

#include <stddef.h>
#include <stdint.h>

#define SN_CREDIT_WEIGHT_FULL     1000                    /* permille */
#define SN_CREDIT_FRESH_WEIGHT    125                     /* a fresh identity's receipts */
#define SN_CREDIT_ESTABLISH_BYTES (64ull * 1024 * 1024)   /* uploaded: full weight */
#define SN_CREDIT_ESTABLISH_S     (6ull * 3600)           /* online: full weight */
#define SN_CREDIT_UPTIME_PER_HOUR (1024ull * 1024)        /* credit per hour online */
#define SN_CREDIT_UPTIME_MAX_S    (30ull * 24 * 3600)     /* uptime credit stops growing */
#define SN_CREDIT_CAP_DEFAULT     (1024ull * 1024 * 1024) /* credit from one downloader */

/* The weight (permille, FRESH..FULL) of receipts signed by a peer that has
 * uploaded `uploaded` bytes and been seen online `uptime_s` seconds. */
uint16_t sn_credit_weight(uint64_t uploaded, uint64_t uptime_s);

/* Credit from one downloader after `bytes` more at `weight`: have +
 * bytes x weight / 1000, never above cap (nor below have). */
uint64_t sn_credit_add(uint64_t have, uint64_t bytes, uint16_t weight, uint64_t cap);

/* Credit for uptime_s seconds online. */
uint64_t sn_credit_uptime(uint64_t uptime_s);

/* Share `total` (bytes a second) among n peers: floor_pct percent of it
 * equally, the rest in proportion to credits[i] (equally if all are 0).
 * out[i] >= total x floor_pct / 100 / n, and the shares add up to at most
 * total. */
void sn_credit_relay_shares(const uint64_t *credits, size_t n, uint64_t total, unsigned floor_pct,
                            uint64_t *out);

#endif
