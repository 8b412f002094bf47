/* sn_index.h - the supernode's keyword index of its attached peers' files.
 *
 * Peers are added when they attach and removed when they leave; in between
 * they publish file records (content hash, size, name). The index derives
 * the keywords of each name (sn_keywords.h) and answers AND-queries with one
 * hit per distinct (content hash, size), each listing peers that hold it.
 * docs/INDEX.md describes the data structure, its memory cost and its limits.
 *
 * Pure: no I/O, no clock, no global state; nothing here blocks, and the
 * cost of every call is bounded by what it adds, removes or reads (a search
 * reads at most max_scan posting entries). Not thread-safe: the daemon
 * calls it from its event loop only.
 *
 * Ownership. The index copies everything it keeps (IDs, hashes, names); the
 * caller's buffers may go away once a call returns. A peer_ctx belongs to
 * the caller: the index stores it and hands it back with search sources so
 * the daemon can fill msg_source without another lookup; it never
 * dereferences or frees it. What a search callback receives is borrowed
 * from the index for the duration of that call, and the callback must not
 * call any function of this header that modifies the index.
 *
 * Errors are enum sova_err values (err.h): SOVA_ERR_UNKNOWN_PEER,
 * SOVA_ERR_PEER_EXISTS, SOVA_ERR_PEER_FILES, SOVA_ERR_PEER_NAME_BYTES,
 * SOVA_ERR_INDEX_FULL, SOVA_ERR_BAD_VALUE, SOVA_ERR_NOMEM. After any error
 * the index is exactly as it was before the call.
 */
#ifndef SOVA_SN_INDEX_H
#define SOVA_SN_INDEX_H

#include "msg.h"
#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- limits ----------------------------------------------------------------
 * Defaults of struct sn_index_limits (see sn_index_limits_default()), and the
 * hard caps that sn_index_new() clamps them to. */
#define SN_INDEX_MAX_FILES_PER_PEER_DEFAULT      5000                  /* records per peer */
#define SN_INDEX_MAX_NAME_BYTES_PER_PEER_DEFAULT (256 * 1024)          /* sum of a peer's names */
#define SN_INDEX_MAX_RECORDS_DEFAULT             4000000               /* records of all peers */
#define SN_INDEX_MAX_RESULTS_DEFAULT             WIRE_MAX_HITS_DEFAULT /* hits per search */
#define SN_INDEX_MAX_SOURCES_DEFAULT             WIRE_MAX_SOURCES_DEFAULT /* sources per hit */
#define SN_INDEX_MAX_SCAN_DEFAULT                200000 /* posting entries one search reads */

#define SN_INDEX_MAX_RECORDS_CAP 0x7ffffff0u /* ids are u32 */
#define SN_INDEX_MAX_RESULTS_CAP 1024        /* a search keeps its hits on the stack */
#define SN_INDEX_MAX_SOURCES_CAP 64
#define SN_INDEX_MAX_NAME_LEN    1024 /* longer names are SOVA_ERR_BAD_VALUE */

struct sn_index_limits {
    uint32_t max_files_per_peer;      /* records one peer may have */
    uint32_t max_name_bytes_per_peer; /* sum of the name lengths of its records */
    uint32_t max_records;             /* records over all peers */
    uint32_t max_results;             /* hits a search returns at most */
    uint32_t max_sources;             /* sources listed per hit */
    uint32_t max_scan;    /* posting entries a search may read before it stops with what it
                             found (bounds the cost of a query of common words) */
    uint8_t hash_key[16]; /* random bytes for the tables' SipHash (the daemon draws them
                             with RAND_bytes; tests may use any fixed value) */
};

/* The _DEFAULT values above, and an all-zero hash key. */
struct sn_index_limits sn_index_limits_default(void);

/* ---- lifetime ---------------------------------------------------------------- */
struct sn_index;

/* A new empty index; lim is copied, each value clamped to 1..its _CAP.
 * NULL when memory is short. */
struct sn_index *sn_index_new(const struct sn_index_limits *lim);
/* Change the per-peer limits and max_results at run time (SIGHUP), clamped
 * as in sn_index_new(). Records a peer holds already stay, even beyond a
 * lowered limit; only what is published from now on is checked. */
void sn_index_set_peer_limits(struct sn_index *idx, uint32_t max_files_per_peer,
                              uint32_t max_name_bytes_per_peer, uint32_t max_results);
/* Free the index and everything it holds (not the peer contexts). NULL is
 * fine. */
void sn_index_free(struct sn_index *idx);

/* ---- peers ---------------------------------------------------------------------- */
/* Add a peer with no files. 0, SOVA_ERR_PEER_EXISTS, SOVA_ERR_NOMEM. */
int sn_index_peer_add(struct sn_index *idx, const uint8_t peer_id[WIRE_ID_LEN], void *peer_ctx);
/* Replace the context of a peer (e.g. it came back on a new link).
 * 0 or SOVA_ERR_UNKNOWN_PEER. */
int sn_index_peer_set_ctx(struct sn_index *idx, const uint8_t peer_id[WIRE_ID_LEN], void *peer_ctx);
/* Remove a peer and all its records, in O(its records). 0 or
 * SOVA_ERR_UNKNOWN_PEER. */
int sn_index_peer_remove(struct sn_index *idx, const uint8_t peer_id[WIRE_ID_LEN]);
/* The context of a peer; NULL for an unknown peer (or a NULL context). */
void *sn_index_peer_ctx(const struct sn_index *idx, const uint8_t peer_id[WIRE_ID_LEN]);
/* Number of records the peer has; 0 for an unknown peer. */
size_t sn_index_peer_files(const struct sn_index *idx, const uint8_t peer_id[WIRE_ID_LEN]);
/* Whether the peer has a record for this content hash (an ADD of it would
 * replace that record, not make one more). */
bool sn_index_peer_has(const struct sn_index *idx, const uint8_t peer_id[WIRE_ID_LEN],
                       const uint8_t hash[WIRE_HASH_LEN]);

/* ---- records --------------------------------------------------------------------
 * Apply one PUBLISH record of a peer. A peer has at most one record per
 * content hash:
 *   MSG_PUBLISH_ADD     add it, or replace the size and name of the record it
 *                       already has for that hash (never a second record);
 *   MSG_PUBLISH_REMOVE  remove its record for that hash; only rec->hash is
 *                       read, and removing what is not there succeeds.
 * Returns 0 or, checked in this order:
 *   SOVA_ERR_UNKNOWN_PEER     peer_id was not added;
 *   SOVA_ERR_BAD_VALUE        unknown action; for ADD: empty name, a name
 *                             longer than SN_INDEX_MAX_NAME_LEN or holding a
 *                             NUL byte, chunk_size 0;
 *   SOVA_ERR_UNSAFE_NAME      for ADD: a name with a control or bidi
 *                             character (common/text.h);
 *   SOVA_ERR_PEER_FILES       a new record beyond max_files_per_peer;
 *   SOVA_ERR_PEER_NAME_BYTES  the peer's names would exceed
 *                             max_name_bytes_per_peer;
 *   SOVA_ERR_INDEX_FULL       a new record beyond max_records;
 *   SOVA_ERR_NOMEM.
 * A name without keywords is accepted and counted but no search finds it.
 * chunk_size is checked, not kept: hits do not carry it. */
int sn_index_publish(struct sn_index *idx, const uint8_t peer_id[WIRE_ID_LEN],
                     const struct msg_publish_record *rec);

/* ---- search ------------------------------------------------------------------- */
struct sn_index_query {
    const struct wire_str *keywords; /* the query is the AND of all their words */
    size_t n_keywords;               /* 0: the query needs hash */
    size_t max_results;              /* 0 or above the index's max_results: that limit */
    bool has_size_range;             /* keep only files with min_size <= size <= max_size */
    uint64_t min_size, max_size;
    const uint8_t *hash; /* NULL, or keep only this content hash (WIRE_HASH_LEN bytes) */
};

struct sn_index_source {
    const uint8_t *peer_id; /* WIRE_ID_LEN bytes */
    void *peer_ctx;         /* as given to sn_index_peer_add/_set_ctx */
};

struct sn_index_hit {
    const uint8_t *hash; /* WIRE_HASH_LEN bytes */
    uint64_t size;
    struct wire_str name;                  /* a name of this file that matched the query */
    size_t total_sources;                  /* peers that publish this hash and size */
    const struct sn_index_source *sources; /* the first min(total, max_sources) of them */
    size_t n_sources;
};

/* Called once per hit, in order. Return 0 to go on; a nonzero value stops
 * the search, which returns it. */
typedef int sn_index_hit_fn(void *arg, const struct sn_index_hit *hit);

/* What one search did, for metrics and for the truncation flag. */
struct sn_index_search_info {
    size_t scanned;  /* posting entries read */
    bool more;       /* stopped at max_results: other matches may exist */
    bool budget_hit; /* stopped at max_scan: other matches may exist */
};

/* Find the files whose name (as published by at least one of their
 * sources) has every word of the query among its keywords; words are
 * normalized as names are (sn_keywords.h). Reads the posting list of the
 * rarest query word only, checking each entry's other words against its
 * name's keywords, and stops at max_results distinct files or max_scan
 * entries. A query with a hash and no keywords looks the hash up (each
 * hit's name is then that of its first source); one with neither finds
 * nothing. Hits are delivered ordered by total_sources (most first), then
 * hash, then size; when more files match than max_results, which ones come
 * back depends on the order of publication.
 * Returns the number of hits delivered (0 for an empty or impossible
 * query), or the callback's nonzero return value (use a negative one).
 * info may be NULL. Uses about 45 KB of stack. */
int sn_index_search(const struct sn_index *idx, const struct sn_index_query *q, sn_index_hit_fn *cb,
                    void *arg, struct sn_index_search_info *info);

/* The hits for one content hash, whatever its names: normally one, more
 * when peers claim different sizes for it. sn_index_search() with only
 * q.hash set. */
int sn_index_lookup_hash(const struct sn_index *idx, const uint8_t hash[WIRE_HASH_LEN],
                         sn_index_hit_fn *cb, void *arg);

/* ---- introspection ----------------------------------------------------------- */
struct sn_index_stats {
    size_t peers;
    size_t records;  /* (peer, hash) pairs */
    size_t files;    /* distinct (hash, size) */
    size_t names;    /* distinct (file, name) */
    size_t keywords; /* distinct keywords */
    size_t postings; /* (keyword, name) pairs */
    size_t bytes;    /* memory held, from the sizes asked of malloc */
};

void sn_index_stats(const struct sn_index *idx, struct sn_index_stats *out);

/* Called once per distinct keyword (bytes kw[0..len), not NUL-terminated,
 * lowercased); return nonzero to stop, which sn_index_foreach_keyword()
 * then returns. The callback must not modify the index. Order unspecified. */
typedef int sn_index_keyword_fn(void *arg, const char *kw, size_t len);

int sn_index_foreach_keyword(const struct sn_index *idx, sn_index_keyword_fn *cb, void *arg);

/* Check every internal invariant (back-pointers, counts, tables), in
 * O(size). 0, SOVA_ERR_INTERNAL, or SOVA_ERR_NOMEM. For tests. */
int sn_index_check(const struct sn_index *idx);

#endif
