/* sn_route.h - routed search in the federation: which supernodes a search
 * goes to, which forwarded searches to drop (duplicates, origins over
 * their rate), and the merge of the hits that come back.
 * docs/FEDERATION.md ("Routed search") describes the policy, and
 * docs/PROTOCOL.md (SUMMARY, FWD_SEARCH, FWD_HITS) the rules on the wire.
 *
 * Sans-I/O: every call takes the time as now_ms (any monotonic clock in
 * milliseconds, the same for all calls on one object) and returns a
 * decision; the daemon sends the messages and arms the timers. No I/O, no
 * clock reads, no global state; every table has a cap, and every result is
 * a deterministic function of the calls made. Not thread-safe.
 *
 * Ownership. sn_route copies the summaries it keeps (sn_route_update()
 * does not keep the message). sn_route_merge copies every hit it keeps,
 * so the frames they came from may be freed as soon as a call returns; the
 * result it hands out borrows from the merge.
 *
 * Errors are enum sova_err values (err.h).
 */
#ifndef SOVA_SN_ROUTE_H
#define SOVA_SN_ROUTE_H

#include "msg.h"
#include "sn_summary.h"
#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- limits -----------------------------------------------------------------
 * Defaults of struct sn_route_limits; sn_route_new() clamps each value to
 * 1..its _CAP (flood_ttl and summary_max_age_ms may be 0). */
/* SNs whose summary is kept: as many as sn_member keeps members
 * (SN_MEMBER_MAX_MEMBERS); with fewer, a federation past it asks the rest
 * blind and loses results (docs/SCALING.md). */
#define SN_ROUTE_MAX_SUMMARIES_DEFAULT 1024
/* A summary not received again for this long is treated as unknown (the
 * sender re-sends every SN_SUMMARY_REFRESH_MS_DEFAULT); 0: never. */
#define SN_ROUTE_SUMMARY_MAX_AGE_MS_DEFAULT  (3 * SN_SUMMARY_REFRESH_MS_DEFAULT)
#define SN_ROUTE_FLOOD_TTL_DEFAULT           1     /* FWD_SEARCH.ttl of a query sent blind */
#define SN_ROUTE_MIN_FWD_DEADLINE_MS_DEFAULT 100   /* a relay forwards only with this much left */
#define SN_ROUTE_SEEN_MAX_DEFAULT            4096  /* (origin, query id) pairs remembered */
#define SN_ROUTE_SEEN_WINDOW_MS_DEFAULT      60000 /* ... for this long */
#define SN_ROUTE_RATE_PER_S_DEFAULT          50    /* forwarded queries a second per origin */
#define SN_ROUTE_BURST_DEFAULT               100   /* ... and in one burst */
#define SN_ROUTE_MAX_ORIGINS_DEFAULT         1024  /* origins with a token bucket */

#define SN_ROUTE_MAX_SUMMARIES_CAP 4096
#define SN_ROUTE_FLOOD_TTL_CAP     8
#define SN_ROUTE_SEEN_MAX_CAP      (1u << 20)
#define SN_ROUTE_RATE_PER_S_CAP    1000000
#define SN_ROUTE_BURST_CAP         1000000
#define SN_ROUTE_MAX_ORIGINS_CAP   4096

struct sn_route_limits {
    uint32_t max_summaries;       /* table cap; a new SN evicts the least recently received */
    uint32_t summary_max_age_ms;  /* older summaries count as unknown; 0: never */
    uint8_t flood_ttl;            /* see sn_route_targets(); larger received TTLs act as this */
    uint32_t min_fwd_deadline_ms; /* see sn_route_relay_targets() */
    uint32_t seen_max;            /* duplicate-suppression entries */
    uint32_t seen_window_ms;      /* how long an entry lasts */
    uint32_t rate_per_s;          /* token bucket refill, queries per second */
    uint32_t burst;               /* token bucket size */
    uint32_t max_origins;         /* buckets kept; a new origin evicts the least recently used */
    uint8_t hash_key[16];         /* SipHash key of the tables (the daemon draws it with
                                     RAND_bytes; tests may use any fixed value) */
};

/* The _DEFAULT values above and an all-zero hash key. */
struct sn_route_limits sn_route_limits_default(void);

/* ---- lifetime ------------------------------------------------------------------- */
struct sn_route;

/* A routing table for the supernode self_id (its own summaries are never
 * kept and it is never a target). lim is copied and clamped. NULL when
 * memory is short. */
struct sn_route *sn_route_new(const struct sn_route_limits *lim,
                              const uint8_t self_id[WIRE_ID_LEN]);
/* Free everything; NULL is fine. */
void sn_route_free(struct sn_route *r);

/* ---- summaries ------------------------------------------------------------------ */
enum sn_route_update_result {
    SN_ROUTE_SUMMARY_NEW = 1,   /* first summary of this SN */
    SN_ROUTE_SUMMARY_REPLACED,  /* a newer version (or any version over a stale one) */
    SN_ROUTE_SUMMARY_REFRESHED, /* the version held: only its age is reset */
    SN_ROUTE_SUMMARY_OLDER,     /* older than the one held: ignored */
    SN_ROUTE_SUMMARY_SELF,      /* our own: ignored */
};

/* Take a received SUMMARY (copied; m may go away afterwards). Keeps the
 * newest version per SN; an older version replaces one that has gone
 * stale (not received for summary_max_age_ms), so a sender whose versions
 * went back is heard again. Returns an enum sn_route_update_result (> 0),
 * or SOVA_ERR_BAD_VALUE / SOVA_ERR_TOO_LARGE (inconsistent k, m, bits; the
 * table is unchanged) or SOVA_ERR_NOMEM. */
int sn_route_update(struct sn_route *r, const struct msg_summary *m, uint64_t now_ms);
/* Drop the summary of an SN that died or left. True if there was one. */
bool sn_route_forget(struct sn_route *r, const uint8_t sn_id[WIRE_ID_LEN]);
/* The summary held for sn_id (stale or not), borrowed until the next
 * update/forget; NULL if none. */
const struct sn_summary *sn_route_summary(const struct sn_route *r,
                                          const uint8_t sn_id[WIRE_ID_LEN]);
/* Milliseconds since sn_id's summary was last received (0 if now_ms is
 * earlier); UINT64_MAX if none is held. */
uint64_t sn_route_summary_age(const struct sn_route *r, const uint8_t sn_id[WIRE_ID_LEN],
                              uint64_t now_ms);
/* Summaries held. */
size_t sn_route_summaries(const struct sn_route *r);

/* ---- targets -------------------------------------------------------------------- */
struct sn_route_target {
    uint8_t sn_id[WIRE_ID_LEN];
    uint8_t ttl;  /* FWD_SEARCH.ttl to send it with */
    bool flooded; /* no fresh summary of it: sent blind */
};

/* What a routing decision looked at, for logs and metrics. */
struct sn_route_plan {
    size_t matched; /* targets whose summary may match */
    size_t flooded; /* targets without a fresh summary */
    size_t skipped; /* members whose summary rules the query out */
    size_t dropped; /* targets left out because out was full */
};

/* Where a search that one of our peers sent goes, in one hop. For each
 * member of alive (distinct IDs, any order; self and repeats of self are
 * skipped):
 *   - it has a fresh summary: a target iff the summary may match the query
 *     (every word of every keyword, normalized as sn_keywords.h does; a
 *     query with a hash and no keyword matches every summary with a bit
 *     set), sent with ttl 0: it answers, it does not forward;
 *   - it has none, or only a stale one: a target, sent blind with ttl
 *     flood_ttl.
 * A query that can match nothing (no keyword and no hash; a keyword that
 * splits into no word, a too-long word, too many words) has no target.
 * Targets come in alive's order, matched ones first, then blind ones;
 * past max_out the rest are counted in plan->dropped. Returns the number
 * written to out. plan may be NULL. */
size_t sn_route_targets(const struct sn_route *r, const struct msg_search *q,
                        const uint8_t (*alive)[WIRE_ID_LEN], size_t n_alive, uint64_t now_ms,
                        struct sn_route_target *out, size_t max_out, struct sn_route_plan *plan);

/* Where a FWD_SEARCH we received from the SN `from` goes on (after
 * sn_route_seen() and sn_route_admit() let it in): when its ttl
 * (clamped to flood_ttl) is at least 1 and its deadline leaves a child
 * deadline of at least min_fwd_deadline_ms, to each member of alive other
 * than self, fwd->origin_sn and from that has no fresh summary here, with
 * ttl - 1 and deadline *child_deadline_ms = 3/4 of fwd->deadline_ms (the
 * rest is for answering in time). Members whose summary is known are left
 * to the origin, which routes by the same summaries. Otherwise nothing
 * (answer from the local index only). Same order, cap and plan as
 * sn_route_targets(). child_deadline_ms may be NULL. */
size_t sn_route_relay_targets(const struct sn_route *r, const struct msg_fwd_search *fwd,
                              const uint8_t from[WIRE_ID_LEN], const uint8_t (*alive)[WIRE_ID_LEN],
                              size_t n_alive, uint64_t now_ms, struct sn_route_target *out,
                              size_t max_out, uint32_t *child_deadline_ms,
                              struct sn_route_plan *plan);

/* ---- duplicates and rate ------------------------------------------------------------- */
/* Has the query (origin SN, query id) been seen in the last seen_window_ms?
 * Records it either way, so the first call says false and later ones true.
 * The origin records its own queries too, so that an echo is dropped. At
 * most seen_max pairs: the oldest goes first, also inside the window. */
bool sn_route_seen(struct sn_route *r, const uint8_t origin[WIRE_ID_LEN], uint64_t query_id,
                   uint64_t now_ms);
/* Token bucket of the origin SN: rate_per_s tokens a second up to burst,
 * a full bucket for an origin not seen before. True, taking a token, when
 * the forwarded query may be served; false when it must be refused. At
 * most max_origins buckets: the least recently used goes first. */
bool sn_route_admit(struct sn_route *r, const uint8_t origin[WIRE_ID_LEN], uint64_t now_ms);

/* ---- ranking sources ----------------------------------------------------------------
 * How a source ranks in hits, as the caller knows it (sn_search.c: reports
 * counted against it, and whether others' receipts ever verified its
 * uploads): lower first; SN_ROUTE_RANK_DROP leaves it out of hits; bit 0
 * set means its uploads were never verified (a bare claim). */
#define SN_ROUTE_RANK_DROP       UINT32_MAX
#define SN_ROUTE_RANK_UNVERIFIED 1u
typedef uint32_t sn_route_rank_fn(void *arg, const uint8_t peer_id[WIRE_ID_LEN]);

/* A hit's ranked sources, sizes[i] what sources[i] claims and ranks[i]
 * its rank: sort them by rank (stable: equal ranks keep their order), and
 * set the hit's size to the one its best source claims (hits are grouped
 * by content hash only: peers that claim another size for the same ID do
 * not make another hit). Returns how many sources are verified. */
size_t sn_route_rank_sources(struct msg_hit *h, uint64_t *sizes, uint32_t *ranks);
/* Order n hits: more verified sources first (verified[i] for hits[i]),
 * then more sources, then hash. verified is reordered with them. */
void sn_route_order_hits(struct msg_hit *hits, size_t *verified, size_t n);

/* ---- merging hits (sn_route_merge.c) ------------------------------------------------
 * One pending query: the hits of the local index and of every SN the query
 * went to, until each has sent its FINAL frame or the deadline passes.
 *   - a file is a content hash (its ID): its hits merge into one, whatever
 *     sizes they claim, keeping the first name received and the union of
 *     the sources by peer ID (first received first), at most
 *     WIRE_MAX_SOURCES_DEFAULT, each with the size it claimed;
 *   - each answer (the local one, each SN's) counts at most max_results
 *     hits, and at most SN_ROUTE_MERGE_KEEP_FACTOR * max_results distinct
 *     files are kept: later new files are dropped, their sources too;
 *   - the result ranks each file's sources (the caller's rank function:
 *     dropped ones leave, the best first, the file's size the one its best
 *     source claims) and is the first max_results files in the order of
 *     sn_route_order_hits(); a file left with no source is not in it.
 * Worst case memory: keep * (name + 16 sources of 16 addresses), about
 * 5.5 KB a file. */
#define SN_ROUTE_MERGE_KEEP_FACTOR  2
#define SN_ROUTE_MERGE_MAX_EXPECTED 1024 /* SNs one query may wait for */

struct sn_route_merge;

/* A pending query of at most max_results hits (capped at 1024, the most an
 * index search returns), done at the absolute time deadline_ms at the
 * latest. NULL when memory is short or max_results is 0. */
struct sn_route_merge *sn_route_merge_new(size_t max_results, uint64_t deadline_ms);
/* Free the merge and every copy it holds; NULL is fine. */
void sn_route_merge_free(struct sn_route_merge *m);
/* Wait for an answer from sn_id (a target of the query). 0, or
 * SOVA_ERR_INVALID (already expected, or SN_ROUTE_MERGE_MAX_EXPECTED
 * reached), SOVA_ERR_NOMEM. */
int sn_route_merge_expect(struct sn_route_merge *m, const uint8_t sn_id[WIRE_ID_LEN]);
/* Merge one answer: from is the SN whose FWD_HITS it is, or NULL for the
 * local index's (its flags are ignored). A FWD_HITS with MSG_RESULT_FINAL
 * closes from's answer. Returns 0, SOVA_ERR_NOT_FOUND (from is not
 * expected, or has already sent FINAL: nothing merged) or SOVA_ERR_NOMEM
 * (part of r may have been merged; the merge stays consistent). The query
 * id is the caller's to match. */
int sn_route_merge_add(struct sn_route_merge *m, const uint8_t *from,
                       const struct msg_search_result *r);
/* Expected SNs that have not sent FINAL yet. */
size_t sn_route_merge_waiting(const struct sn_route_merge *m);
/* Every expected SN has sent FINAL, or now_ms has reached the deadline. */
bool sn_route_merge_done(const struct sn_route_merge *m, uint64_t now_ms);
uint64_t sn_route_merge_deadline(const struct sn_route_merge *m);
/* Distinct files held (before the max_results cap). */
size_t sn_route_merge_files(const struct sn_route_merge *m);
/* The merged hits in result order, at most max_results, into out->hits and
 * out->n_hits (query_id and flags are left 0 for the caller), their
 * sources ranked by rank(arg, id) (NULL: every source ranks 0). They
 * borrow from m until its next add, result or free. 0 or SOVA_ERR_NOMEM. */
int sn_route_merge_result(struct sn_route_merge *m, sn_route_rank_fn *rank, void *arg,
                          struct msg_search_result *out);

#endif
