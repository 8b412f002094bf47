/* sn_kwdir.h - the keyword directory an owner supernode keeps (issue 17).
 *
 * In the keyword DHT each keyword is hashed (sn_kwdir_keyword_hash()) onto
 * the ring of supernode IDs (credit/sn_ring.h, rendezvous hashing); its R
 * owners keep the keyword's postings here. A posting says "holder H (a
 * supernode) has attached peers sharing file F, named N, of size S, under
 * this keyword, with this many sources". docs/FEDERATION.md, "The keyword
 * directory", gives the rules and the figures.
 *
 *   - Key. A posting is keyed by (keyword, file ID, holder). Publishing the
 *     same key again refreshes it (name, size, sources, expiry) and never
 *     makes a second posting: peers re-publishing after a failover, or a
 *     holder refreshing its soft state, do not double anything.
 *   - Deltas. A holder publishes batches of ADD / REMOVE (sn_kwdir_apply());
 *     a REMOVE deletes that holder's posting only. sn_kwdir_drop_holder()
 *     removes all postings of a holder that died, in O(its postings).
 *   - Soft state. Every posting expires ttl_ms after it was last added;
 *     sn_kwdir_expire() removes expired postings, oldest first, at most
 *     max_expire_per_call per call (O(1) each: postings sit in one list
 *     ordered by expiry, since every expiry is now + the same ttl; a clock
 *     that goes back never reorders it, the posting keeps the later
 *     expiry). sn_kwdir_next_expiry() says when to call it again.
 *   - Caps. A new posting beyond max_per_holder postings of its holder is
 *     refused with SOVA_ERR_HOLDER_FULL (one lying holder cannot fill the
 *     owner), beyond max_per_keyword postings of its keyword with
 *     SOVA_ERR_KEYWORD_FULL, beyond max_postings in all with
 *     SOVA_ERR_INDEX_FULL; checked in that order, counted in the stats, and
 *     a refused call changes nothing. Refreshing a posting that exists is
 *     never refused by a cap. Refusing (rather than displacing an older
 *     file) keeps the directory deterministic: replicas given the same
 *     deltas hold the same postings.
 *   - Honest names. An ADD whose name does not have the keyword among its
 *     keywords (sn_keywords.h) is refused with SOVA_ERR_BAD_VALUE: a holder
 *     cannot file a name under a word it lacks. This costs the SHA-256 of
 *     the name's words (at most 16) on a new posting or a changed name.
 *   - Counts. sn_kwdir_count() is the number of distinct files of a keyword,
 *     what an owner reports so that a searcher picks the rarest keyword.
 *   - Query. sn_kwdir_query() walks a keyword's files in file-ID order,
 *     cyclically, from a position drawn from (sample_seed, keyword), and
 *     keeps the files with a name (as published by one of their holders)
 *     that has every word of the whole query; one result per file ID, with
 *     up to SN_KWDIR_MAX_HOLDERS_OUT of its holders. It stops after
 *     max_results files or max_scan postings examined. So a common keyword
 *     is answered from a bounded sample: the same for every replica that
 *     holds the same postings and is asked with the same seed (the order
 *     is that of file IDs, not of arrival), another one for another seed.
 *   - Digest. sn_kwdir_digest() is the sum, modulo 2^128, of the first 16
 *     bytes of SHA-256("sova-kp\0" keyword, file ID, holder) over the
 *     keyword's postings: independent of order, kept up to date on each
 *     change (O(1) to read; each posting keeps its 16-byte share, so a
 *     removal needs no hashing and cannot fail). Two replicas that hold
 *     the same set have the same digest; one that dropped or invented a
 *     posting differs. It detects divergence; a replica that lies about its
 *     digest is caught by comparing answers, which is the caller's job.
 *     Names, sizes and source counts are not in it.
 *   - Handoff. When membership changes, sn_kwdir_export() hands the caller
 *     every posting of the keywords its predicate selects (e.g. "I am no
 *     longer among the R owners", computed with sn_ring), and the caller
 *     then sn_kwdir_drop_keyword()s them: only this owner's share moves.
 *
 * Choices, and why:
 *   - The owners of a keyword are the caller's to compute: the ring
 *     (credit/sn_ring.h) sits above search/ in the layer map
 *     (docs/SUPERNODE.md), so this module takes keyword hashes and a
 *     predicate, and never asks who owns what.
 *   - No 32-byte keyword hash existed (the index and the Bloom summary
 *     use SipHash); sn_kwdir_keyword_hash() is that hash, over the words
 *     sn_keywords.h makes, so owners, publishers and the simulator agree.
 *   - Caps count postings, not files: memory grows with postings, and a
 *     file held by many supernodes costs as much as that many files.
 *   - A query takes the query's strings, as sn_index_query does, and
 *     filters by the names' keywords at query time; a per-posting filter
 *     would cost memory on every posting to speed up the rare hot query,
 *     which max_scan bounds anyway.
 *   - The digest is 16 bytes (truncated SHA-256 shares) rather than 32:
 *     16 bytes less a posting, and two sets that differ by chance still
 *     share a digest only with probability 2^-128.
 *   - The walk starts at a position among the files, not at a point of
 *     the ID space: publishers choose file IDs, and IDs bunched together
 *     would otherwise give every seed the same start.
 *
 * Memory: about 225 bytes a posting plus its name, when each file has one
 * holder (SN_KWDIR_BYTES_PER_POSTING; a second holder of a file costs
 * about 80 more); sn_kwdir_stats() counts what is held.
 *
 * Cost: add, remove, count and digest are O(1) expected, plus O(log files
 * + files) of a memmove of 4-byte ids when a keyword gains or loses a
 * file (its files are an array sorted by file ID, at most max_per_keyword
 * of them), plus O(holders of the file) to keep that file's holders in
 * ID order. A query examines at most max_scan postings. Nothing blocks.
 *
 * Pure: no I/O, no clock (time comes in as now_ms), no global state, no
 * randomness but the seeds passed in. Not thread-safe.
 *
 * Ownership. The directory copies everything it is given (IDs, names); the
 * caller's buffers may go away once a call returns. What it hands out
 * (query results, posting views in an export callback) is BORROWED and
 * valid until the next call that modifies the directory (add, remove,
 * apply, drop_holder, drop_keyword, expire, free); callbacks must not
 * modify the directory. A query allocates nothing: results go to the
 * caller's array (it uses about 3 KB of stack).
 */
#ifndef SOVA_SN_KWDIR_H
#define SOVA_SN_KWDIR_H

#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- limits ----------------------------------------------------------------
 * Defaults of struct sn_kwdir_config (sn_kwdir_config_default()); a zero
 * field given to sn_kwdir_new() takes its default. */
#define SN_KWDIR_MAX_PER_KEYWORD_DEFAULT     4096    /* postings of one keyword */
#define SN_KWDIR_MAX_PER_HOLDER_DEFAULT      200000  /* postings of one holder supernode */
#define SN_KWDIR_MAX_POSTINGS_DEFAULT        4000000 /* postings in all */
#define SN_KWDIR_TTL_MS_DEFAULT              600000  /* a posting lives this long unrefreshed */
#define SN_KWDIR_MAX_SCAN_DEFAULT            1024    /* postings one query examines */
#define SN_KWDIR_MAX_EXPIRE_PER_CALL_DEFAULT 4096    /* postings one sn_kwdir_expire() removes */
#define SN_KWDIR_MAX_POSTINGS_CAP            0x7ffffff0u /* ids are u32 */
#define SN_KWDIR_MAX_HOLDERS_OUT             16          /* holders listed per file in a result */
#define SN_KWDIR_MAX_NAME_LEN                WIRE_MAX_NAME_LEN_DEFAULT /* bytes of a name */
#define SN_KWDIR_BYTES_PER_POSTING           190 /* measured, one holder per file, no name */
#define SN_KWDIR_KEY_LEN                     32  /* keyword hash, file ID, holder ID */
#define SN_KWDIR_DIGEST_LEN                  16  /* bytes of sn_kwdir_digest() */

struct sn_kwdir_config {
    uint32_t max_per_keyword; /* postings of one keyword */
    uint32_t max_per_holder;  /* postings of one holder */
    uint32_t max_postings;    /* postings in all, at most SN_KWDIR_MAX_POSTINGS_CAP */
    uint64_t ttl_ms;          /* soft-state lifetime of a posting */
    uint32_t max_scan;        /* postings a query examines before it stops */
    uint32_t max_expire_per_call;
    uint8_t hash_key[16]; /* SipHash key of the tables (the daemon draws it with RAND_bytes;
                             tests may use any value); also keys the query's start point */
};

/* The _DEFAULT values and an all-zero hash key. */
struct sn_kwdir_config sn_kwdir_config_default(void);

/* ---- keywords ------------------------------------------------------------------ */
/* The 32-byte hash of a keyword, the key on the ring and in the directory:
 * SHA-256 of "sova-kw\0" followed by the word's bytes. The word is one
 * keyword as sn_keywords.h makes it (lowercased, 2..64 bytes). 0 or
 * SOVA_ERR_CRYPTO. */
int sn_kwdir_keyword_hash(const char *word, size_t len, uint8_t out[SN_KWDIR_KEY_LEN]);
/* The hashes of the keywords of a file name (sn_keywords_from_name()), in
 * the order of that rule; returns how many (at most SN_KEYWORDS_MAX, 16),
 * or SOVA_ERR_CRYPTO. What a holder publishes a file under. */
int sn_kwdir_name_keywords(const char *name, size_t len, uint8_t (*out)[SN_KWDIR_KEY_LEN]);

/* ---- lifetime ------------------------------------------------------------------ */
struct sn_kwdir;

/* A new empty directory; cfg is copied (NULL: the defaults). NULL when
 * memory is short. */
struct sn_kwdir *sn_kwdir_new(const struct sn_kwdir_config *cfg);
/* Free it and everything it holds. NULL is fine. */
void sn_kwdir_free(struct sn_kwdir *dir);

/* ---- deltas ------------------------------------------------------------------ */
enum sn_kwdir_op {
    SN_KWDIR_ADD = 1,    /* add or refresh the holder's posting */
    SN_KWDIR_REMOVE = 2, /* remove it (only keyword and file_id are read) */
};

struct sn_kwdir_delta {
    uint8_t op; /* enum sn_kwdir_op */
    uint8_t keyword[SN_KWDIR_KEY_LEN];
    uint8_t file_id[WIRE_HASH_LEN];
    struct wire_str name; /* 1..SN_KWDIR_MAX_NAME_LEN bytes, safe text (common/text.h) */
    uint64_t size;
    uint32_t sources; /* peers of the holder sharing it, >= 1 */
};

/* Apply one delta of holder at now_ms. Returns 0 (added, refreshed,
 * removed, or removing what was not there) or, checked in this order:
 *   SOVA_ERR_BAD_VALUE      unknown op; for ADD: an empty name, one longer
 *                           than SN_KWDIR_MAX_NAME_LEN, 0 sources, or a name
 *                           without the keyword among its keywords;
 *   SOVA_ERR_UNSAFE_NAME    a name that is not safe text;
 *   SOVA_ERR_HOLDER_FULL    a new posting beyond max_per_holder;
 *   SOVA_ERR_KEYWORD_FULL   a new posting beyond max_per_keyword;
 *   SOVA_ERR_INDEX_FULL     a new posting beyond max_postings;
 *   SOVA_ERR_CRYPTO, SOVA_ERR_NOMEM.
 * After an error the directory is as it was (but for the refusal counts). */
int sn_kwdir_update(struct sn_kwdir *dir, const uint8_t holder[WIRE_ID_LEN],
                    const struct sn_kwdir_delta *delta, uint64_t now_ms);
/* Apply a batch of holder's deltas in order; a refused one does not stop
 * the others. results (NULL, or n entries) gets each delta's code.
 * Returns 0 when all were applied, else the first error code. */
int sn_kwdir_apply(struct sn_kwdir *dir, const uint8_t holder[WIRE_ID_LEN],
                   const struct sn_kwdir_delta *delta, size_t n, uint64_t now_ms, int *results);
/* Remove every posting of holder (it died or left). Returns how many. */
size_t sn_kwdir_drop_holder(struct sn_kwdir *dir, const uint8_t holder[WIRE_ID_LEN]);
/* Remove the postings that expired at now_ms, oldest first, at most
 * max_expire_per_call of them. Returns how many. */
size_t sn_kwdir_expire(struct sn_kwdir *dir, uint64_t now_ms);
/* The earliest expiry held, UINT64_MAX when empty. */
uint64_t sn_kwdir_next_expiry(const struct sn_kwdir *dir);

/* ---- what owners report ----------------------------------------------------------- */
/* Distinct files of a keyword (0 if unknown). */
size_t sn_kwdir_count(const struct sn_kwdir *dir, const uint8_t keyword[SN_KWDIR_KEY_LEN]);
/* Postings (file, holder pairs) of a keyword, and of a holder. */
size_t sn_kwdir_keyword_postings(const struct sn_kwdir *dir,
                                 const uint8_t keyword[SN_KWDIR_KEY_LEN]);
size_t sn_kwdir_holder_postings(const struct sn_kwdir *dir, const uint8_t holder[WIRE_ID_LEN]);
/* The order-independent digest of the keyword's (file ID, holder) set
 * (see above); all zero for a keyword with no posting. */
void sn_kwdir_digest(const struct sn_kwdir *dir, const uint8_t keyword[SN_KWDIR_KEY_LEN],
                     uint8_t out[SN_KWDIR_DIGEST_LEN]);

/* ---- query ------------------------------------------------------------------- */
struct sn_kwdir_holder {
    const uint8_t *id; /* WIRE_ID_LEN bytes, borrowed */
    uint32_t sources;
};

struct sn_kwdir_result {
    const uint8_t *file_id; /* WIRE_HASH_LEN bytes, borrowed */
    struct wire_str name;   /* the first name (in holder ID order) that matched, borrowed */
    uint64_t size;          /* as that holder published it */
    size_t total_holders;   /* holders of this file under the keyword */
    size_t n_holders;       /* the first (by holder ID) min(total, SN_KWDIR_MAX_HOLDERS_OUT) */
    struct sn_kwdir_holder holders[SN_KWDIR_MAX_HOLDERS_OUT];
};

struct sn_kwdir_query_info {
    size_t files;    /* files of the keyword */
    size_t scanned;  /* postings whose name was examined */
    bool sampled;    /* not every file was looked at: others may match */
    bool budget_hit; /* stopped at max_scan */
};

/* The files of keyword whose name has every word of the query: words[0..
 * n_words) are the query's strings, split and normalized as names are
 * (sn_keywords_from_query()), and should include the keyword itself. At
 * most max_results (and the array out[max_results]) files, from the walk
 * described above, in walk order; the walk's start is drawn from
 * (sample_seed, keyword). Returns how many results were written (0 for an
 * unknown keyword or a query no name can match). info may be NULL. */
size_t sn_kwdir_query(const struct sn_kwdir *dir, const uint8_t keyword[SN_KWDIR_KEY_LEN],
                      const struct wire_str *words, size_t n_words, size_t max_results,
                      uint64_t sample_seed, struct sn_kwdir_result *out,
                      struct sn_kwdir_query_info *info);

/* ---- handoff ------------------------------------------------------------------- */
/* One posting, as an export callback sees it (borrowed for that call). */
struct sn_kwdir_posting {
    const uint8_t *keyword; /* SN_KWDIR_KEY_LEN bytes */
    const uint8_t *file_id; /* WIRE_HASH_LEN bytes */
    const uint8_t *holder;  /* WIRE_ID_LEN bytes */
    struct wire_str name;
    uint64_t size;
    uint32_t sources;
    uint64_t expires_ms;
};

/* Whether a keyword is to be exported (e.g. this supernode is no longer
 * among its owners); n_files is its sn_kwdir_count(). */
typedef bool sn_kwdir_pick_fn(void *arg, const uint8_t keyword[SN_KWDIR_KEY_LEN], size_t n_files);
/* Called per posting exported; nonzero stops the export, which returns it. */
typedef int sn_kwdir_posting_fn(void *arg, const struct sn_kwdir_posting *p);

/* For every keyword pick() accepts (pick NULL: every keyword), call emit()
 * once per posting, keyword after keyword (a keyword's postings together,
 * its files in file-ID order). Changes nothing; the caller then drops the
 * keywords it handed off. Returns 0 or emit()'s nonzero value. O(all
 * keywords + the postings exported). */
int sn_kwdir_export(const struct sn_kwdir *dir, sn_kwdir_pick_fn *pick, sn_kwdir_posting_fn *emit,
                    void *arg);
/* Remove every posting of a keyword. Returns how many. */
size_t sn_kwdir_drop_keyword(struct sn_kwdir *dir, const uint8_t keyword[SN_KWDIR_KEY_LEN]);

/* ---- introspection ----------------------------------------------------------- */
struct sn_kwdir_stats {
    size_t postings;
    size_t keywords;
    size_t files;   /* (keyword, file) pairs */
    size_t holders; /* holders with at least one posting */
    size_t bytes;   /* memory held, from the sizes asked of malloc */
    uint64_t refused_holder, refused_keyword, refused_full; /* caps, since creation */
    uint64_t refused_other;                                 /* bad deltas, names, memory */
    uint64_t added, refreshed, removed, expired;
};

void sn_kwdir_stats(const struct sn_kwdir *dir, struct sn_kwdir_stats *out);
/* Check every internal invariant in O(size): 0 or SOVA_ERR_INTERNAL. For
 * tests. */
int sn_kwdir_check(const struct sn_kwdir *dir);

#endif
