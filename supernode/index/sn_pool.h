/* sn_pool.h - fixed-size slots found by a u32 id, with a free list: what
 * the index (sn_index_impl.h) and the keyword directory (search/sn_kwdir.c)
 * keep their entries in, each found by key through an sn_hashtab.
 *
 * A free slot holds the id of the next free one in its first 4 bytes;
 * which slots are live is what the owner's tables hold. Ids are stable
 * while a slot lives, but sn_pool_alloc() may move the array: pointers
 * into it are invalid after an alloc. Pure; a pool owns its array.
 */
#ifndef SOVA_SN_POOL_H
#define SOVA_SN_POOL_H

#include <stddef.h>
#include <stdint.h>

#define SN_POOL_MAX_SLOTS 0x7ffffff0u /* below SN_HASHTAB_NONE, with room */

struct sn_pool {
    unsigned char *items;
    size_t item_size;
    uint32_t len;  /* slots ever used */
    uint32_t cap;  /* slots allocated */
    uint32_t live; /* slots in use */
    uint32_t free_head;
};

void sn_pool_init(struct sn_pool *p, size_t item_size);
/* A zeroed slot. 0 or SOVA_ERR_NOMEM. May move p->items. */
int sn_pool_alloc(struct sn_pool *p, uint32_t *id);
void sn_pool_release(struct sn_pool *p, uint32_t id);
void sn_pool_free(struct sn_pool *p);
size_t sn_pool_bytes(const struct sn_pool *p);

/* The slot of a live id. */
static inline void *sn_pool_at(const struct sn_pool *p, uint32_t id)
{
    return p->items + (size_t)id * p->item_size;
}

#endif
