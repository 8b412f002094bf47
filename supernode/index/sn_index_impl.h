/* sn_index_impl.h - the inside of struct sn_index, shared by sn_index.c
 * (peers, records and their upkeep), sn_index_query.c (queries and
 * walks), sn_index_vec.c (containers) and sn_index_check.c (invariants).
 * Nothing outside those files may include it.
 *
 * Five kinds of entries live in five pools (arrays of fixed-size slots with
 * an intrusive free list), each found by key through its own sn_hashtab:
 *
 *   peer    32-byte node ID          -> its records (doubly linked through
 *                                        the record slots), counters, ctx
 *   file    (content hash, size)     -> sources: the ids of the peers that
 *                                        have it (a search reads the peer
 *                                        slot without a record in between).
 *                                        The table holds the first file of
 *                                        each content hash; files with the
 *                                        same hash and other sizes follow
 *                                        it through next_size, so a size
 *                                        claimed by many peers cannot grow
 *                                        a probe cluster others share
 *   record  (peer, content hash)     -> peer, file, name, back-pointers
 *   name    (file, name string)      -> refcount (records using it), the ids
 *                                        of its keywords and its position in
 *                                        each keyword's posting list
 *   keyword lowercased word          -> posting list: the ids of the names
 *                                        that have it, each with the name's
 *                                        keyword signature
 *
 * Lists are arrays (struct sn_vec) with back-pointers, so every removal is
 * a swap with the last element: O(1), no search.
 *
 * The signature is a 32-bit Bloom filter of a name's keyword ids (two bits
 * per keyword). A search walks the rarest word's posting list and looks at
 * a name only when the signature says it may hold the other words too: a
 * query of two common words reads its posting list sequentially instead of
 * taking a cache miss per entry.
 */
#ifndef SOVA_SN_INDEX_IMPL_H
#define SOVA_SN_INDEX_IMPL_H

#ifndef SN_INDEX_IMPL
#error "sn_index_impl.h is private to supernode/index/sn_index*.c"
#endif

#include "sn_hashtab.h"
#include "sn_index.h"
#include "sn_pool.h"
#include "sn_prefetch.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SN_NONE SN_HASHTAB_NONE

/* One entry of a posting list. */
struct posting {
    uint32_t name; /* name id */
    uint32_t sig;  /* the name's keyword signature */
};

/* An array of 4-byte (peer ids) or 8-byte (postings) items that keeps
 * 8 bytes in place, since most files have one source and most words are
 * rare, and the rest on the heap. The item size is given to each call. */
#define SN_VEC_INLINE_BYTES 8
struct sn_vec {
    uint32_t n, cap; /* items; cap == SN_VEC_INLINE_BYTES / size: in place */
    union {
        uint32_t ids[SN_VEC_INLINE_BYTES / sizeof(uint32_t)];
        struct posting posting;
        void *heap;
    } u;
};

static inline bool sn_vec_on_heap(const struct sn_vec *v, size_t item_size)
{
    return v->cap > SN_VEC_INLINE_BYTES / item_size;
}

static inline const uint32_t *vec_ids(const struct sn_vec *v)
{
    return sn_vec_on_heap(v, sizeof(uint32_t)) ? v->u.heap : v->u.ids;
}

static inline const struct posting *vec_postings(const struct sn_vec *v)
{
    return sn_vec_on_heap(v, sizeof(struct posting)) ? v->u.heap : &v->u.posting;
}

/* The signature bits of one keyword id. */
static inline uint32_t keyword_sig(uint32_t kw)
{
    uint32_t h = kw * 0x9e3779b1u;
    return 1u << (h >> 27) | 1u << (h >> 22 & 31);
}

struct peer_slot {
    uint32_t first_rec;  /* head of its record list, SN_NONE when it has none */
    uint32_t n_files;    /* records */
    uint32_t name_bytes; /* sum of their name lengths */
    uint8_t id[WIRE_ID_LEN];
    void *ctx; /* the caller's */
};

struct file_slot {
    struct sn_vec sources; /* peer ids; never empty while the file lives */
    uint64_t size;
    uint32_t next_size; /* next file with this content hash (another size), or SN_NONE */
    uint8_t hash[WIRE_HASH_LEN];
};

struct record_slot {
    uint32_t peer, file, name;
    uint32_t file_pos;             /* index of peer in file->sources */
    uint32_t peer_prev, peer_next; /* the peer's record list */
};

/* One malloc'd block: the header, then kw[0..n_kw) keyword ids, then
 * kw[n_kw..2*n_kw) the name's position in each keyword's posting list, then
 * the name's bytes (not NUL-terminated). */
struct name_entry {
    uint32_t file;
    uint32_t refs; /* records that use this name */
    uint16_t len;
    uint8_t n_kw;
    uint32_t kw[];
};

static inline const char *name_entry_text(const struct name_entry *ne)
{
    return (const char *)(ne->kw + 2 * (size_t)ne->n_kw);
}

struct keyword_slot {
    struct sn_vec postings; /* struct posting; never empty while the keyword lives */
    char *text;             /* malloc'd, len bytes */
    uint32_t len;
};

struct sn_index {
    struct sn_index_limits lim;
    struct sn_pool peers;    /* struct peer_slot */
    struct sn_pool files;    /* struct file_slot */
    struct sn_pool records;  /* struct record_slot */
    struct sn_pool names;    /* struct name_entry * */
    struct sn_pool keywords; /* struct keyword_slot */
    struct sn_hashtab peer_tab, file_tab, record_tab, name_tab, keyword_tab;
    size_t postings;   /* sum of the posting list lengths */
    size_t heap_bytes; /* sn_vec heap arrays, name entries, keyword texts */
};

static inline struct peer_slot *peer_at(const struct sn_index *idx, uint32_t id)
{
    return (struct peer_slot *)(void *)idx->peers.items + id;
}

static inline struct file_slot *file_at(const struct sn_index *idx, uint32_t id)
{
    return (struct file_slot *)(void *)idx->files.items + id;
}

static inline struct record_slot *record_at(const struct sn_index *idx, uint32_t id)
{
    return (struct record_slot *)(void *)idx->records.items + id;
}

static inline struct name_entry *name_at(const struct sn_index *idx, uint32_t id)
{
    return ((struct name_entry **)(void *)idx->names.items)[id];
}

static inline struct keyword_slot *keyword_at(const struct sn_index *idx, uint32_t id)
{
    return (struct keyword_slot *)(void *)idx->keywords.items + id;
}

/* ---- sn_index_vec.c ---- */
void sn_vec_init(struct sn_vec *v, size_t item_size);
/* Append a copy of item. 0 or SOVA_ERR_NOMEM (v unchanged). */
int sn_vec_push(struct sn_index *idx, struct sn_vec *v, size_t item_size, const void *item);
/* Remove item pos by moving the last one into it. Returns true, with a
 * copy of that item in *moved, when an item moved. Gives memory back when
 * the array has become mostly empty. */
bool sn_vec_swap_remove(struct sn_index *idx, struct sn_vec *v, size_t item_size, uint32_t pos,
                        void *moved);
void sn_vec_free(struct sn_index *idx, struct sn_vec *v, size_t item_size);

/* ---- sn_index.c ---- */
/* The id of a lowercased keyword, or SN_NONE. */
uint32_t sn_index_keyword_find(const struct sn_index *idx, struct wire_str word);
/* The record of peer for a content hash, or SN_NONE. */
uint32_t sn_index_record_find(const struct sn_index *idx, uint32_t peer,
                              const uint8_t hash[WIRE_HASH_LEN]);
/* The first file with this content hash (follow next_size), or SN_NONE. */
uint32_t sn_index_file_first(const struct sn_index *idx, const uint8_t hash[WIRE_HASH_LEN]);

#endif
