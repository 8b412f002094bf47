/* sn_summary.h - the keyword summary a supernode gossips to the federation:
 * a Bloom filter of the distinct keywords of its attached peers' files, so
 * that other supernodes forward a search only to those that may answer it
 * (sn_route.h). docs/FEDERATION.md ("Routed search") explains the scheme,
 * docs/PROTOCOL.md (0x41 SUMMARY) fixes it byte by byte.
 *
 * Which bits a keyword sets is part of the wire protocol and the same on
 * every supernode: h = SipHash-2-4 of the normalized keyword bytes
 * (sn_keywords.h) under the fixed public key 00 01 02 .. 0f; h1 = h >> 32,
 * h2 = h & 0xffffffff; the keyword sets bits (h1 mod m + i * (h2 mod m))
 * mod m for i = 0 .. k-1 (Kirsch-Mitzenmacher double hashing). Bit i of the
 * filter is byte i / 8, mask 0x80 >> (i % 8), as SUMMARY carries it.
 *
 * The builder chooses k and m for a target false-positive rate p:
 * k = ceil(log2(1 / p)) (7 for 1 %), m = ceil(n * k / ln 2) bits rounded up
 * to whole bytes (about 10.1 bits per keyword at 1 %, so the rate is
 * 2^-k = 0.78 %); when that exceeds max_bytes, m is the cap and
 * k = round(m / n * ln 2) (at least 1), the best k for the bits there are.
 * Receivers take any consistent (k, m) from the wire.
 *
 * Pure: no I/O, no clock, no global state, nothing blocks. A summary owns
 * its bits; the msg_summary that sn_summary_to_msg() fills borrows them.
 */
#ifndef SOVA_SN_SUMMARY_H
#define SOVA_SN_SUMMARY_H

#include "msg.h"
#include "sn_index.h"
#include "sn_keywords.h"
#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- limits and defaults ------------------------------------------------------ */
#define SN_SUMMARY_FP_RATE_DEFAULT   0.01 /* target false-positive rate of a build */
#define SN_SUMMARY_MAX_BYTES_DEFAULT WIRE_MAX_BLOOM_BYTES_DEFAULT /* 524 288 bits */
#define SN_SUMMARY_MAX_HASHES        32                           /* k on the wire: 1..32 */
#define SN_SUMMARY_MIN_BITS          8 /* an empty index still sends one byte */
/* Rebuild (sn_summary_sched): not more often than this after a change ... */
#define SN_SUMMARY_MIN_INTERVAL_MS_DEFAULT 10000
/* ... and re-send the current one (same version) this often, so that a
 * receiver that missed it, or dropped it as stale, gets it again. */
#define SN_SUMMARY_REFRESH_MS_DEFAULT 300000

struct sn_summary_params {
    double fp_rate;   /* target rate, clamped to [2^-32, 0.5]; e.g. 0.01 */
    size_t max_bytes; /* filter cap, clamped to 1..WIRE_MAX_BLOOM_BYTES_DEFAULT
                         (a larger filter would not decode at default limits) */
};

/* SN_SUMMARY_FP_RATE_DEFAULT and SN_SUMMARY_MAX_BYTES_DEFAULT. */
struct sn_summary_params sn_summary_params_default(void);

/* The (k, m) a build of n keywords uses under params (see the top of this
 * file). For capacity planning and tests. */
void sn_summary_shape(size_t n_keywords, const struct sn_summary_params *params, uint8_t *k,
                      uint32_t *m);

/* ---- lifetime ------------------------------------------------------------------- */
struct sn_summary;

/* An empty summary shaped for n_keywords keywords (sn_summary_shape()).
 * NULL when memory is short. */
struct sn_summary *sn_summary_new(const uint8_t sn_id[WIRE_ID_LEN], uint64_t version,
                                  size_t n_keywords, const struct sn_summary_params *params);
/* The summary of every distinct keyword of idx: sn_summary_new() for the
 * index's keyword count, then sn_summary_add() of each keyword
 * (sn_index_foreach_keyword). O(keywords), about 175 ns a keyword on a
 * large index here (mostly fetching the keywords: 35 ms for 200,000), so
 * schedule it with sn_summary_sched rather than after every PUBLISH. NULL
 * when memory is short. */
struct sn_summary *sn_summary_build(const struct sn_index *idx, const uint8_t sn_id[WIRE_ID_LEN],
                                    uint64_t version, const struct sn_summary_params *params);
/* Free; NULL is fine. */
void sn_summary_free(struct sn_summary *s);

/* Add one keyword, already normalized as sn_keywords.h does (lowercased
 * ASCII, 2..64 bytes): the bytes are hashed as they are. */
void sn_summary_add(struct sn_summary *s, const char *kw, size_t len);

/* ---- wire ------------------------------------------------------------------------- */
/* Fill *out to encode as SUMMARY; out->bits borrows from s (keep s alive
 * and unchanged until the message is encoded). */
void sn_summary_to_msg(const struct sn_summary *s, struct msg_summary *out);
/* A summary holding a copy of a received SUMMARY. *out is NULL on error:
 * SOVA_ERR_BAD_VALUE when hash_count is not 1..32, bit_count is 0 or
 * bits.len is not (bit_count + 7) / 8 (what msg_decode already checks),
 * SOVA_ERR_TOO_LARGE beyond WIRE_MAX_BLOOM_BYTES_DEFAULT, SOVA_ERR_NOMEM. */
int sn_summary_from_msg(const struct msg_summary *m, struct sn_summary **out);

/* ---- queries ---------------------------------------------------------------------- */
/* A query hashed once, to test against many summaries. */
struct sn_summary_query {
    bool void_query; /* no word, a too-long word or too many: matches nothing */
    size_t n;        /* distinct words */
    struct {
        uint32_t h1, h2;
    } word[SN_KEYWORDS_MAX];
};

/* Split the keyword strings of a SEARCH as sn_keywords_from_query() does
 * (a string may give several words, all ANDed) and hash each word. */
void sn_summary_query_init(struct sn_summary_query *q, const struct wire_str *keywords, size_t n);
/* May every word of q be in s? False for a void query. Never a false
 * negative: true whenever the index s was built from holds every word. */
bool sn_summary_query_match(const struct sn_summary *s, const struct sn_summary_query *q);
/* sn_summary_query_init() + sn_summary_query_match() for one summary. */
bool sn_summary_may_match(const struct sn_summary *s, const struct wire_str *keywords, size_t n);

/* The k bit positions of one normalized keyword in a filter of m bits
 * (pos holds k entries). The protocol's definition; used by the test
 * vector in docs/PROTOCOL.md. */
void sn_summary_positions(const char *kw, size_t len, uint8_t k, uint32_t m, uint32_t *pos);

/* ---- introspection ------------------------------------------------------------------ */
const uint8_t *sn_summary_sn_id(const struct sn_summary *s); /* WIRE_ID_LEN bytes */
uint64_t sn_summary_version(const struct sn_summary *s);
uint8_t sn_summary_hash_count(const struct sn_summary *s); /* k */
uint32_t sn_summary_bit_count(const struct sn_summary *s); /* m */
/* Keywords added by this node; 0 for a summary from the wire. */
size_t sn_summary_keywords(const struct sn_summary *s);
/* Bits set; 0 means the SN has no keyword at all. O(1). */
uint32_t sn_summary_bits_set(const struct sn_summary *s);
/* The false-positive rate this filter gives a one-word query, from its fill
 * ratio: (bits_set / m)^k, in parts per million (rounded up). */
uint32_t sn_summary_fp_ppm(const struct sn_summary *s);
/* Same k, m and bits (versions and IDs aside): a rebuild that changed
 * nothing need not be sent. */
bool sn_summary_same_bits(const struct sn_summary *a, const struct sn_summary *b);

/* ---- when to rebuild ---------------------------------------------------------------
 * The daemon keeps a counter it bumps whenever the keyword set may have
 * changed (a peer attached, left or published) and asks, from a timer,
 * whether to rebuild now. At most one rebuild per min_interval_ms; the
 * first one at once. */
struct sn_summary_sched {
    uint32_t min_interval_ms; /* SN_SUMMARY_MIN_INTERVAL_MS_DEFAULT */
    bool built;               /* a summary exists */
    uint64_t built_changes;   /* the counter it was built at */
    uint64_t built_at_ms;     /* when */
};

/* Not built yet, min_interval_ms as given. */
void sn_summary_sched_init(struct sn_summary_sched *s, uint32_t min_interval_ms);
/* True when a rebuild is due now. Otherwise *next_ms (may be NULL) gets the
 * time to ask again, or UINT64_MAX when nothing changed. */
bool sn_summary_sched_due(const struct sn_summary_sched *s, uint64_t changes, uint64_t now_ms,
                          uint64_t *next_ms);
/* Record a rebuild done at now_ms from the state counted by changes. */
void sn_summary_sched_done(struct sn_summary_sched *s, uint64_t changes, uint64_t now_ms);
/* The version of the next build: the wall clock in ms since the epoch, or
 * prev + 1 when the clock has not moved past prev, so versions only grow,
 * across restarts too (receivers keep the highest). */
uint64_t sn_summary_next_version(uint64_t prev, uint64_t wall_ms);

#endif
