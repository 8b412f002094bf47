/* sn_reports.h - what downloaders told this supernode about sources that
 * lied (chunks that failed verification) or refused (a file they are listed
 * with but do not serve). Pure: no I/O, time comes in as now_ms.
 *
 * Counting resists one loud accuser: a reporter counts once per reported
 * peer and reason, and only the first SN_REPORTS_REPORTERS distinct
 * reporters of a peer are remembered. A peer's score is its distinct
 * bad-data reporters times two plus its distinct refused reporters; search
 * answers list sources with a lower score first (sn_search.c), so a peer
 * many have caught lying sinks below honest ones without being removed
 * (an accusation is not proof).
 *
 * Bounded: at most max_peers reported peers are kept; the one reported
 * least recently makes room (a linear scan, only when the table is full).
 *
 * Ownership: the table owns its memory (sn_reports_free). The hash is
 * keyed with the caller's random key, so IDs cannot be chosen to collide.
 */
#ifndef SOVA_SN_REPORTS_H
#define SOVA_SN_REPORTS_H

#include "sn_hashtab.h"
#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SN_REPORTS_REPORTERS 8     /* distinct reporters remembered per peer */
#define SN_REPORTS_MAX_PEERS 16384 /* reported peers kept by default */

struct sn_reports;

struct sn_reports *sn_reports_new(size_t max_peers, const uint8_t key[SN_HASHTAB_KEYLEN]);
void sn_reports_free(struct sn_reports *r);

/* reporter says peer lied (MSG_REPORT_BAD_DATA) or refused
 * (MSG_REPORT_REFUSED). Returns true if it counted (a new reporter of that
 * peer for that reason), false for a repeat, a self-report or no room. */
bool sn_reports_add(struct sn_reports *r, const uint8_t peer[WIRE_ID_LEN],
                    const uint8_t reporter[WIRE_ID_LEN], uint8_t reason, uint64_t now_ms);
/* 0 for a peer nobody reported. */
unsigned sn_reports_score(const struct sn_reports *r, const uint8_t peer[WIRE_ID_LEN]);

struct sn_reports_stats {
    uint64_t received, counted; /* REPORTs seen, and of them new */
    size_t peers;               /* reported peers kept */
};
void sn_reports_stats(const struct sn_reports *r, struct sn_reports_stats *out);

#endif
