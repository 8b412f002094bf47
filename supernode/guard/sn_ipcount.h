/* sn_ipcount.h - connections per source address, for the supernode's
 * per-address cap (max-conns-per-ip). IPv4 addresses count one by one; an
 * IPv6 address counts with its /64 (one home or host network). Pure and
 * bounded by the connections it counts: an address leaves the table when
 * its last connection goes. The hash is keyed (the caller's random key).
 */
#ifndef SOVA_SN_IPCOUNT_H
#define SOVA_SN_IPCOUNT_H

#include "sn_hashtab.h"
#include "wire.h"

#include <stdbool.h>
#include <stddef.h>

struct sn_ipcount;

struct sn_ipcount *sn_ipcount_new(const uint8_t key[SN_HASHTAB_KEYLEN]);
void sn_ipcount_free(struct sn_ipcount *t);
/* One more connection from a's address, unless it has max already (then
 * false and nothing changes; max 0: no cap). */
bool sn_ipcount_add(struct sn_ipcount *t, const struct wire_addr *a, unsigned max);
/* That connection went. Must match an earlier successful add. */
void sn_ipcount_del(struct sn_ipcount *t, const struct wire_addr *a);
/* Connections from a's address now. */
unsigned sn_ipcount_get(const struct sn_ipcount *t, const struct wire_addr *a);
/* Distinct addresses counted. */
size_t sn_ipcount_addresses(const struct sn_ipcount *t);

#endif
