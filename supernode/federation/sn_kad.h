/* sn_kad.h - Kademlia routing over the supernode IDs, sans-I/O (issue 17,
 * second piece; docs/FEDERATION.md, "Routing: Kademlia buckets").
 *
 * Why Kademlia (Maymounkov & Mazieres 2002) and not a HyParView view: the
 * XOR metric gives, with one structure, both the routing (each hop at least
 * halves the distance to the target: O(log N) queries) and the answer to
 * "who are the R owners of a keyword" (the R IDs closest to its hash), so
 * the keyword directory (search/sn_kwdir.h) needs no second ring. State is
 * bounded by construction: one bucket of at most k entries per shared-prefix
 * length with our own ID, so about k * log2(N / k) entries; HyParView bounds
 * links as well but routes nothing, and a DHT would still need a ring on top.
 * Known weaknesses: Sybil and eclipse attacks (minting IDs near a target to
 * own a key or surround a node). Sova blunts them because a supernode ID is
 * a certificate signed by the federation root: IDs cannot be minted freely,
 * and the bucket policy keeps long-lived entries, so a flood of newcomers
 * cannot push them out. Also: churn costs a lookup timeouts until failures
 * are reported, and a bucket's liveness is only as fresh as its traffic.
 *
 * The routing table (struct sn_kad). Bucket i holds the IDs whose first i
 * bits equal ours and whose bit i differs (i = 0..255). Entries are kept
 * least-recently seen first. Insert and refresh (sn_kad_seen()):
 *   - a known ID moves to the tail (most recently seen), failures reset;
 *   - a newcomer enters a bucket with room;
 *   - a full bucket replaces an entry that has reached max_failures, else
 *     keeps its long-lived entries and puts the newcomer in the bucket's
 *     replacement cache (at most `replacements`, newest kept). The caller
 *     may probe the bucket's oldest entry (sn_kad_bucket()) and report the
 *     outcome: seen() or failed().
 * sn_kad_failed() counts a failure; at max_failures the entry is replaced by
 * the newest cached one, or, with an empty cache, kept but no longer handed
 * out (the paper's rule: a small table keeps stale entries rather than
 * nothing) until a newcomer takes its place.
 *
 * "We know enough" (sn_kad_owners()): the owners of a key are answered
 * locally, with no lookup, only when the table holds every supernode it
 * ever heard of: no bucket has reached k entries or turned a newcomer away.
 * That is exact in a federation of up to k supernodes (everyone hears of
 * everyone; no bucket can fill) and never claimed beyond. A finer rule,
 * trusting each bucket below k ("fewer than k means no more exist", the
 * paper's invariant) for the buckets near the key, was tried and dropped:
 * it holds only right after a bucket refresh, and the simulator found 3 %
 * of keys at 1,000 supernodes answered wrong that way (a mid-depth bucket
 * holding 10 of the 60 supernodes of its range, none of which had since
 * contacted us). Above k, one hop needs a complete view from elsewhere:
 * SWIM's, which the daemon holds below SN_MEMBER_MAX_MEMBERS.
 *
 * The lookup (struct sn_kad_lookup): the iterative FIND_NODE of the paper.
 * Started from the table's k closest (self included, as already answered);
 * sn_kad_lookup_next() hands out the closest unqueried candidate among the
 * k closest not failed while fewer than alpha queries are in flight; the
 * caller sends it, and feeds back sn_kad_lookup_answer() (the IDs that node
 * returned) or sn_kad_lookup_failed() (timeout, lost, refused). Done when
 * the k closest candidates not failed have all answered: they are the
 * result, closest first, and the R owners of the target are the first R.
 * The lookup reads the table only at its start; the caller updates the
 * table (seen/failed) with what it learns.
 *
 * Sans-I/O: no socket, no clock (now_ms comes in), no randomness. Same
 * inputs, same outputs. Not thread-safe; nothing blocks.
 *
 * Cost: a table is an array of buckets up to the deepest non-empty one,
 * each an array of at most k entries plus its cache, sizeof(struct
 * sn_kad_entry) bytes each (88 on x86-64). seen/failed/find are O(k) after
 * an O(1) bucket index; closest() is O(entries * n); a lookup holds at most
 * SN_KAD_LOOKUP_MAX_CANDIDATES candidates, each call O(candidates).
 *
 * Ownership: the module copies the IDs and addresses it is given. Entry
 * pointers handed out (find, bucket) are borrowed until the next call that
 * changes the table (seen, failed) or sn_kad_free(). Output arrays belong to
 * the caller.
 */
#ifndef SOVA_SN_KAD_H
#define SOVA_SN_KAD_H

#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SN_KAD_ID_LEN  32
#define SN_KAD_BUCKETS (SN_KAD_ID_LEN * 8) /* one per shared-prefix length */

/* ---- limits and defaults (struct sn_kad_config; 0 takes the default) ----- */
#define SN_KAD_K_DEFAULT             16 /* entries per bucket; also a lookup's result */
#define SN_KAD_K_MAX                 64
#define SN_KAD_REPLACEMENTS_DEFAULT  4 /* replacement cache per bucket */
#define SN_KAD_REPLACEMENTS_MAX      16
#define SN_KAD_MAX_FAILURES_DEFAULT  2 /* failures in a row that make an entry replaceable */
#define SN_KAD_ALPHA_DEFAULT         3 /* queries a lookup keeps in flight */
#define SN_KAD_ALPHA_MAX             8
#define SN_KAD_MAX_ADDRS             2 /* addresses kept per entry (IPv4 + IPv6) */
#define SN_KAD_LOOKUP_MAX_CANDIDATES (4 * SN_KAD_K_MAX)

struct sn_kad_config {
    unsigned k;
    unsigned replacements;
    unsigned max_failures;
};

/* One known supernode. */
struct sn_kad_entry {
    uint8_t id[SN_KAD_ID_LEN];
    struct wire_addr addrs[SN_KAD_MAX_ADDRS];
    uint64_t last_seen_ms;
    uint8_t n_addrs;
    uint8_t failures; /* in a row; reset when seen */
};

enum sn_kad_seen_result {
    SN_KAD_SELF = 0,      /* our own ID: ignored */
    SN_KAD_REFRESHED = 1, /* known: moved to the tail */
    SN_KAD_ADDED = 2,     /* entered a bucket (perhaps replacing a failed entry) */
    SN_KAD_CACHED = 3,    /* bucket full of live entries: in the replacement cache */
};

struct sn_kad;

/* NULL on allocation failure. cfg may be NULL (all defaults); values past
 * the _MAX limits are clamped. */
struct sn_kad *sn_kad_new(const uint8_t self[SN_KAD_ID_LEN], const struct sn_kad_config *cfg);
void sn_kad_free_(struct sn_kad *t);
#define sn_kad_free(t) (sn_kad_free_(t), (t) = NULL)

/* We heard from (or of) id. addrs may be NULL when n_addrs is 0; a known
 * entry keeps its addresses then. Returns an enum sn_kad_seen_result, or
 * SOVA_ERR_NOMEM (the table is unchanged). */
int sn_kad_seen(struct sn_kad *t, const uint8_t id[SN_KAD_ID_LEN], const struct wire_addr *addrs,
                size_t n_addrs, uint64_t now_ms);
/* id did not answer. Returns 1 if the entry left the table (replaced from
 * the cache), 0 otherwise (unknown, or still kept). A cached ID that fails
 * is dropped from the cache. */
int sn_kad_failed(struct sn_kad *t, const uint8_t id[SN_KAD_ID_LEN]);

/* The entry of id in a bucket (not the cache), or NULL. */
const struct sn_kad_entry *sn_kad_find(const struct sn_kad *t, const uint8_t id[SN_KAD_ID_LEN]);
/* Common prefix length of two IDs in bits (SN_KAD_BUCKETS when equal): the
 * bucket b falls in for a table of a. */
unsigned sn_kad_cpl(const uint8_t a[SN_KAD_ID_LEN], const uint8_t b[SN_KAD_ID_LEN]);
/* -1, 0, 1 as a is closer to target than b, as close (a == b), farther. */
int sn_kad_cmp_distance(const uint8_t target[SN_KAD_ID_LEN], const uint8_t a[SN_KAD_ID_LEN],
                        const uint8_t b[SN_KAD_ID_LEN]);

const uint8_t *sn_kad_self(const struct sn_kad *t);
unsigned sn_kad_k(const struct sn_kad *t);
size_t sn_kad_size(const struct sn_kad *t);   /* entries in buckets */
size_t sn_kad_cached(const struct sn_kad *t); /* entries in replacement caches */
size_t sn_kad_bytes(const struct sn_kad *t);  /* heap held by the table */
/* Bucket i's entries, least recently seen first (*out borrowed), and its
 * cache size. Returns the number of entries. */
size_t sn_kad_bucket(const struct sn_kad *t, unsigned i, const struct sn_kad_entry **out,
                     size_t *n_cached);

/* The n known IDs closest to target by XOR, closest first, written to out;
 * entries at max_failures are left out; self among them if include_self.
 * Returns how many (at most n). */
size_t sn_kad_closest(const struct sn_kad *t, const uint8_t target[SN_KAD_ID_LEN], size_t n,
                      bool include_self, uint8_t (*out)[SN_KAD_ID_LEN]);

/* The r owners of key (the r closest IDs, self included), closest first,
 * when the table knows them without a lookup (the rule above): returns how
 * many were written (min(r, what exists)), or 0 when a lookup is needed. */
size_t sn_kad_owners(const struct sn_kad *t, const uint8_t key[SN_KAD_ID_LEN], size_t r,
                     uint8_t (*out)[SN_KAD_ID_LEN]);

/* ---- the iterative lookup ----------------------------------------------- */
struct sn_kad_lookup;

/* A lookup of target seeded from t (which the lookup does not keep). alpha
 * and k: 0 takes the defaults (SN_KAD_ALPHA_DEFAULT, the table's k); k is
 * at most SN_KAD_K_MAX. NULL on allocation failure. */
struct sn_kad_lookup *sn_kad_lookup_start(const struct sn_kad *t,
                                          const uint8_t target[SN_KAD_ID_LEN], unsigned alpha,
                                          unsigned k);
void sn_kad_lookup_free_(struct sn_kad_lookup *l);
#define sn_kad_lookup_free(l) (sn_kad_lookup_free_(l), (l) = NULL)

/* The next node to query: writes its ID to id and returns true (the query
 * is then in flight), or false when none should be sent now (alpha in
 * flight, or nothing left to ask: see done()). */
bool sn_kad_lookup_next(struct sn_kad_lookup *l, uint8_t id[SN_KAD_ID_LEN]);
/* from answered with these IDs (its closest to the target). Unknown from
 * (never asked) is ignored; an answer after a failure counts. Our own ID in
 * ids is ignored (self is a candidate from the start). */
void sn_kad_lookup_answer(struct sn_kad_lookup *l, const uint8_t from[SN_KAD_ID_LEN],
                          const uint8_t (*ids)[SN_KAD_ID_LEN], size_t n);
/* from did not answer (timeout, loss, refused): out of this lookup. */
void sn_kad_lookup_failed(struct sn_kad_lookup *l, const uint8_t from[SN_KAD_ID_LEN]);
/* True when the k closest candidates not failed have all answered (or no
 * candidate is left): writes them to out (at most max), closest first, and
 * sets *n_out. */
bool sn_kad_lookup_done(const struct sn_kad_lookup *l, uint8_t (*out)[SN_KAD_ID_LEN], size_t max,
                        size_t *n_out);

struct sn_kad_lookup_stats {
    unsigned queries;  /* handed out by next() */
    unsigned answers;  /* answer() of a node asked */
    unsigned failures; /* failed() of a node asked */
    unsigned rounds;   /* times next() handed out a query with none in flight */
};
void sn_kad_lookup_stats(const struct sn_kad_lookup *l, struct sn_kad_lookup_stats *out);

#endif
