/* sn_index_impl.h - the inside of struct sn_index, shared by sn_index.c
 * (peers, records and their upkeep) and sn_index_search.c (queries and
 * walks). Nothing outside those two files may include it.
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
 *                                        that have it
 *
 * Lists are u32 arrays (struct u32vec) with back-pointers, so every removal
 * is a swap with the last element: O(1), no search.
 */
#ifndef SOVA_SN_INDEX_IMPL_H
#define SOVA_SN_INDEX_IMPL_H

#ifndef SN_INDEX_IMPL
#error "sn_index_impl.h is private to supernode/sn_index*.c"
#endif

#include "sn_hashtab.h"
#include "sn_index.h"

#include <stddef.h>
#include <stdint.h>

#define SN_NONE SN_HASHTAB_NONE

/* A hint to start loading what p points to; searches use it to have many
 * cache misses in flight at once instead of one after the other. */
#if defined(__GNUC__) || defined(__clang__)
#define SN_PREFETCH(p) __builtin_prefetch(p)
#else
#define SN_PREFETCH(p) ((void)(p))
#endif

/* A u32 array that keeps up to U32VEC_INLINE elements in place (most
 * files have one source, most words are rare) and the rest on the heap. */
#define U32VEC_INLINE 2
struct u32vec {
    uint32_t n, cap; /* cap == U32VEC_INLINE: the inline array */
    union {
        uint32_t inl[U32VEC_INLINE];
        uint32_t *heap;
    } u;
};

static inline const uint32_t *u32vec_items(const struct u32vec *v)
{
    return v->cap > U32VEC_INLINE ? v->u.heap : v->u.inl;
}

/* Fixed-size slots; a free slot holds the id of the next free one in its
 * first 4 bytes. Which slots are live is what the pool's table holds. */
struct sn_pool {
    unsigned char *items;
    size_t item_size;
    uint32_t len;  /* slots ever used */
    uint32_t cap;  /* slots allocated */
    uint32_t live; /* slots in use */
    uint32_t free_head;
};

struct peer_slot {
    uint32_t first_rec;  /* head of its record list, SN_NONE when it has none */
    uint32_t n_files;    /* records */
    uint32_t name_bytes; /* sum of their name lengths */
    uint8_t id[WIRE_ID_LEN];
    void *ctx; /* the caller's */
};

struct file_slot {
    struct u32vec sources; /* peer ids; never empty while the file lives */
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
    struct u32vec postings; /* name ids; never empty while the keyword lives */
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
    size_t heap_bytes; /* u32vec heap arrays, name entries, keyword texts */
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

/* The id of a lowercased keyword, or SN_NONE. */
uint32_t sn_index_keyword_find(const struct sn_index *idx, struct wire_str word);
/* The record of peer for a content hash, or SN_NONE. */
uint32_t sn_index_record_find(const struct sn_index *idx, uint32_t peer,
                              const uint8_t hash[WIRE_HASH_LEN]);
/* The first file with this content hash (follow next_size), or SN_NONE. */
uint32_t sn_index_file_first(const struct sn_index *idx, const uint8_t hash[WIRE_HASH_LEN]);

#endif
