/* sn_reports.h - what downloaders told this supernode about sources that
 * lied (chunks that failed verification) or refused (a file they are listed
 * with but do not serve). Pure: no I/O, time comes in as now_ms.
 *
 * A report comes with a weight, 1..SN_REPORTS_WEIGHT_FULL permille: what
 * the reporter's word is worth (credit/ decides it: only a reporter that
 * was introduced to the source, weighed by its credit; a stranger's report
 * never reaches this table). A reporter counts once per reported peer and
 * reason; at most SN_REPORTS_REPORTERS reporters of a peer are kept, and
 * when that is full a heavier report takes the place of the lightest.
 *
 * A peer's score is the sum over its reporters of their weight, times two
 * for bad data. Hits list sources with a higher score later, but only from
 * SN_REPORTS_RANK_MIN on (one full-weight refusal): lighter accusations
 * change no order. A peer whose bad-data weight reaches
 * SN_REPORTS_DROP_WEIGHT (three full-weight downloaders, or more lighter
 * ones) is dropped from hits (sn_reports_dropped()).
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

#define SN_REPORTS_REPORTERS   8     /* distinct reporters remembered per peer */
#define SN_REPORTS_MAX_PEERS   16384 /* reported peers kept by default */
#define SN_REPORTS_WEIGHT_FULL 1000  /* a report's weight, permille */
#define SN_REPORTS_RANK_MIN    1000  /* a score below this changes no order */
#define SN_REPORTS_DROP_WEIGHT 3000  /* bad-data weight that drops a source from hits */

struct sn_reports;

struct sn_reports *sn_reports_new(size_t max_peers, const uint8_t key[SN_HASHTAB_KEYLEN]);
void sn_reports_free(struct sn_reports *r);

/* reporter says peer lied (MSG_REPORT_BAD_DATA) or refused
 * (MSG_REPORT_REFUSED), its word worth weight permille (1..1000; larger is
 * taken as 1000). Returns true if it counted (a new reporter of that peer
 * for that reason, or one heavier than the lightest of a full list), false
 * for a repeat, a self-report, weight 0 or no room. */
bool sn_reports_add(struct sn_reports *r, const uint8_t peer[WIRE_ID_LEN],
                    const uint8_t reporter[WIRE_ID_LEN], uint8_t reason, unsigned weight,
                    uint64_t now_ms);
/* The sum of the weights (bad data twice); 0 for a peer nobody reported. */
unsigned sn_reports_score(const struct sn_reports *r, const uint8_t peer[WIRE_ID_LEN]);
/* What to rank by: the score from SN_REPORTS_RANK_MIN on, else 0. */
unsigned sn_reports_rank(const struct sn_reports *r, const uint8_t peer[WIRE_ID_LEN]);
/* Bad-data weight at SN_REPORTS_DROP_WEIGHT or more: left out of hits. */
bool sn_reports_dropped(const struct sn_reports *r, const uint8_t peer[WIRE_ID_LEN]);

struct sn_reports_stats {
    uint64_t received, counted; /* reports offered, and of them counted */
    size_t peers;               /* reported peers kept */
};
void sn_reports_stats(const struct sn_reports *r, struct sn_reports_stats *out);

#endif
