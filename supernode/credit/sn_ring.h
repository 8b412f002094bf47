/* sn_ring.h - where a peer's credit record lives: rendezvous hashing
 * (highest random weight) over the live supernodes. docs/CREDITS.md, "The
 * ledger", says why this and not a ring of virtual nodes.
 *
 * Each (key, member) pair gets a 64-bit score; the R members with the
 * highest scores hold the key, the best first. The result depends only on
 * the key, the set of members and R - not on their order, not on any
 * state - so every supernode that sees the same membership computes the
 * same holders. When a member joins, only the keys it now outranks move to
 * it (about R/N of them); when one leaves, only its keys get a new holder,
 * the next in their own ranking.
 *
 * The score is a fixed 64-bit mix of the 32-byte key and the 32-byte member
 * ID (both SHA-256 outputs, so already uniform). It needs spread, not
 * secrecy: holders are federation members, so choosing one's own peer ID to
 * pick holders gains nothing. Ties (never seen in practice) go to the
 * bytewise smaller member ID.
 *
 * Pure: no state, no I/O, no allocation.
 */
#ifndef SOVA_SN_RING_H
#define SOVA_SN_RING_H

#include <stddef.h>
#include <stdint.h>

#define SN_RING_ID_LEN       32
#define SN_RING_MAX_REPLICAS 8 /* R is at most this */

uint64_t sn_ring_score(const uint8_t key[SN_RING_ID_LEN], const uint8_t member[SN_RING_ID_LEN]);

/* The holders of key among members[0..n) (distinct IDs): writes the
 * indices of the min(r, n, SN_RING_MAX_REPLICAS) best to out, best first,
 * and returns how many. */
size_t sn_ring_holders(const uint8_t key[SN_RING_ID_LEN], const uint8_t (*members)[SN_RING_ID_LEN],
                       size_t n, unsigned r, size_t out[SN_RING_MAX_REPLICAS]);

/* The rank (0 = best) of members[i] for key, or -1 if it is not among the
 * r holders. */
int sn_ring_rank(const uint8_t key[SN_RING_ID_LEN], const uint8_t (*members)[SN_RING_ID_LEN],
                 size_t n, unsigned r, size_t i);

#endif
