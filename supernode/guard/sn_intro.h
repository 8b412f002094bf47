/* sn_intro.h - introductions: which attached peers this supernode saw look
 * for or reach which sources (docs/INDEX.md, "Reports"). A REPORT about a
 * source counts only from a reporter that was introduced to it: the
 * supernode handed it that source in the answer to a SEARCH by the file's
 * hash (what a download asks first), or saw it LOCATE, CONNECT to or open
 * a relay circuit to that source (those name no file: any file). A stranger
 * that never looked the source up here cannot accuse it.
 *
 * Bounded: at most max entries, one per (reporter, source), each with the
 * last SN_INTRO_FILES files it was introduced for; when full, the entry
 * added longest ago makes room (a ring: O(1), whoever floods it evicts
 * only in insertion order). An introduction older than SN_INTRO_TTL_MS
 * counts no more. IDs and file hashes are kept as 8-byte prefixes (a
 * collision needs 2^64 work on a chosen target).
 *
 * Pure: time comes in as now_ms; the table owns its memory. The hash is
 * keyed with the caller's random key, so IDs cannot be chosen to collide.
 */
#ifndef SOVA_SN_INTRO_H
#define SOVA_SN_INTRO_H

#include "sn_hashtab.h"
#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SN_INTRO_MAX_DEFAULT 65536            /* (reporter, source) pairs kept */
#define SN_INTRO_FILES       4                /* files remembered per pair */
#define SN_INTRO_TTL_MS      (3600ull * 1000) /* an introduction counts this long */

struct sn_intro;

/* NULL when out of memory (max 0: the default). */
struct sn_intro *sn_intro_new(size_t max, const uint8_t key[SN_HASHTAB_KEYLEN]);
void sn_intro_free(struct sn_intro *t);

/* peer was introduced to source: for file (WIRE_HASH_LEN bytes), or, with
 * file NULL, for any file. A peer is never introduced to itself. */
void sn_intro_add(struct sn_intro *t, const uint8_t peer[WIRE_ID_LEN],
                  const uint8_t source[WIRE_ID_LEN], const uint8_t *file, uint64_t now_ms);
/* Was peer introduced to source for file (or for any file) less than
 * SN_INTRO_TTL_MS ago? */
bool sn_intro_has(const struct sn_intro *t, const uint8_t peer[WIRE_ID_LEN],
                  const uint8_t source[WIRE_ID_LEN], const uint8_t file[WIRE_HASH_LEN],
                  uint64_t now_ms);

struct sn_intro_stats {
    uint64_t added, evicted;
    size_t entries, max;
};
void sn_intro_stats(const struct sn_intro *t, struct sn_intro_stats *out);

#endif
