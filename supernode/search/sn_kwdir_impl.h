/* sn_kwdir_impl.h - the inside of struct sn_kwdir, shared by sn_kwdir.c
 * (entries, updates, expiry) and sn_kwdir_query.c (what is read: counts,
 * digests, queries, export, stats, invariants). Nothing else may include it.
 *
 * Four kinds of entries, each in a pool of slots (index/sn_pool.h) and found
 * by key through its own keyed table (index/sn_hashtab.h):
 *
 *   keyword  32-byte hash          -> its files: an array of file ids kept
 *                                     sorted by file ID (what the query's
 *                                     walk and the export go through), its
 *                                     posting count and digest
 *   file     (keyword, file ID)    -> its postings, one per holder, linked
 *                                     in holder ID order
 *   holder   32-byte supernode ID  -> its postings, doubly linked
 *   posting  (file, holder)        -> name, size, sources, expiry, and its
 *                                     share of the keyword's digest
 *
 * Every posting is also on one list ordered by expiry (the soft state), so
 * sn_kwdir_expire() pops from its head. An entry left with nothing under it
 * (a file without postings, a keyword without files, a holder without
 * postings) is released at once, so the tables hold only live keys.
 *
 */
#ifndef SOVA_SN_KWDIR_IMPL_H
#define SOVA_SN_KWDIR_IMPL_H

#ifndef SN_KWDIR_IMPL
#error "sn_kwdir_impl.h is private to supernode/search/sn_kwdir*.c"
#endif

#include "sn_hashtab.h"
#include "sn_kwdir.h"
#include "sn_pool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NONE SN_HASHTAB_NONE
#define KEY  SN_KWDIR_KEY_LEN

struct kw_slot {
    uint8_t hash[KEY];
    uint32_t *files; /* file ids, sorted by file ID; malloc'd */
    uint32_t n_files, cap_files;
    uint32_t postings;
    uint8_t digest[SN_KWDIR_DIGEST_LEN]; /* sum of the postings' shares, mod 2^128 */
};

struct file_slot {
    uint8_t id[WIRE_HASH_LEN];
    uint32_t kw;
    uint32_t first;   /* its first posting; next_in_file goes on, by holder ID */
    uint32_t holders; /* postings */
};

struct holder_slot {
    uint8_t id[WIRE_ID_LEN];
    uint32_t first; /* its postings, through hprev/hnext */
    uint32_t postings;
};

struct posting_slot {
    uint32_t file, holder;
    uint32_t next_in_file;
    uint32_t hprev, hnext; /* the holder's list */
    uint32_t eprev, enext; /* the expiry list */
    uint32_t sources;
    uint32_t name_len;
    char *name; /* malloc'd, name_len bytes */
    uint64_t size;
    uint64_t expires;
    uint8_t share[SN_KWDIR_DIGEST_LEN]; /* SHA-256 of (keyword, file, holder), truncated */
};

struct sn_kwdir {
    struct sn_kwdir_config cfg;
    struct sn_pool kws, files, holders, postings;
    struct sn_hashtab kw_tab, file_tab, holder_tab, posting_tab;
    uint32_t exp_head, exp_tail;  /* the expiry list, earliest first */
    size_t heap_bytes;            /* names and keywords' file arrays */
    struct sn_kwdir_stats counts; /* the counters of sn_kwdir_stats() */
};

static inline struct kw_slot *kw_at(const struct sn_kwdir *d, uint32_t id)
{
    return sn_pool_at(&d->kws, id);
}

static inline struct file_slot *file_at(const struct sn_kwdir *d, uint32_t id)
{
    return sn_pool_at(&d->files, id);
}

static inline struct holder_slot *holder_at(const struct sn_kwdir *d, uint32_t id)
{
    return sn_pool_at(&d->holders, id);
}

static inline struct posting_slot *posting_at(const struct sn_kwdir *d, uint32_t id)
{
    return sn_pool_at(&d->postings, id);
}

/* ---- sn_kwdir.c ---- */
/* The id of a keyword, holder, (keyword, file) or (file, holder), or NONE. */
uint32_t sn_kwdir_kw_find(const struct sn_kwdir *d, const uint8_t *hash);
uint32_t sn_kwdir_holder_find(const struct sn_kwdir *d, const uint8_t *id);
uint32_t sn_kwdir_file_find(const struct sn_kwdir *d, uint32_t kw, const uint8_t *id);
uint32_t sn_kwdir_posting_find(const struct sn_kwdir *d, uint32_t file, uint32_t holder);
/* A posting's share of its keyword's digest. 0 or SOVA_ERR_CRYPTO. */
int sn_kwdir_posting_share(const uint8_t *kw, const uint8_t *file, const uint8_t *holder,
                           uint8_t share[SN_KWDIR_DIGEST_LEN]);
/* acc += v (sub: acc -= v) modulo 2^(8 * SN_KWDIR_DIGEST_LEN). */
void sn_kwdir_digest_add(uint8_t *acc, const uint8_t *v, bool sub);

#endif
