/* sn_hashtab.h - the open-addressing table and keyed hash under sn_index.
 *
 * The table maps a key to a u32 id; it stores only (32-bit hash, id) in one
 * u64 per slot and leaves the keys where they live (in the index's own
 * arrays), so a lookup compares hashes first and asks the caller's eq()
 * only on a hash match. Linear probing, deletion by backward shift (no
 * tombstones), load kept between 1/8 and 3/4; the capacity is a power of
 * two.
 *
 * Keys come from the network (peers choose content hashes and names), so
 * the hash is SipHash-2-4 under a key the table's owner draws at random:
 * colliding entries cannot be precomputed. 40 lines of a published
 * algorithm did not seem worth a dependency; the unit test checks it
 * against the reference vectors.
 *
 * Pure; no global state. A table owns its slot array (sn_hashtab_free()).
 */
#ifndef SOVA_SN_HASHTAB_H
#define SOVA_SN_HASHTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SN_HASHTAB_NONE   UINT32_MAX /* "no id" */
#define SN_HASHTAB_KEYLEN 16         /* SipHash key bytes */

struct sn_hashtab {
    uint64_t *slots; /* 0: empty; else hash << 32 | (id + 1) */
    uint32_t cap;    /* 0 or a power of two */
    uint32_t count;
};

/* Does the entry with this id have this key? */
typedef bool sn_hashtab_eq_fn(const void *ctx, uint32_t id, const void *key);

/* SipHash-2-4 of data[0..len) under key. */
uint64_t sn_hashtab_siphash(const uint8_t key[SN_HASHTAB_KEYLEN], const void *data, size_t len);

void sn_hashtab_init(struct sn_hashtab *t);
void sn_hashtab_free(struct sn_hashtab *t);
/* The id whose key eq() accepts, or SN_HASHTAB_NONE. */
uint32_t sn_hashtab_find(const struct sn_hashtab *t, uint32_t hash, sn_hashtab_eq_fn *eq,
                         const void *ctx, const void *key);
/* Add id (< SN_HASHTAB_NONE) under hash; the caller knows its key is not in
 * the table yet. 0, or SOVA_ERR_NOMEM with the table unchanged. */
int sn_hashtab_insert(struct sn_hashtab *t, uint32_t hash, uint32_t id);
/* Remove id, which must be in the table under hash. Never fails. */
void sn_hashtab_remove(struct sn_hashtab *t, uint32_t hash, uint32_t id);
/* Put new_id where old_id is (same hash, so same place). Never fails. */
void sn_hashtab_replace(struct sn_hashtab *t, uint32_t hash, uint32_t old_id, uint32_t new_id);
/* Iterate over the ids in the table: start with *pos = 0 and call until it
 * returns SN_HASHTAB_NONE. The table must not change meanwhile. */
uint32_t sn_hashtab_next(const struct sn_hashtab *t, uint32_t *pos);
/* Bytes of the slot array. */
size_t sn_hashtab_bytes(const struct sn_hashtab *t);

#endif
