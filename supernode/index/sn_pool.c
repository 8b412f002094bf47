/* sn_pool.c - fixed-size slots with a free list (sn_pool.h). */
#include "sn_pool.h"

#include "err.h"
#include "sn_hashtab.h"

#include <stdlib.h>
#include <string.h>

#define POOL_MIN_CAP 64u

void sn_pool_init(struct sn_pool *p, size_t item_size)
{
    memset(p, 0, sizeof(*p));
    p->item_size = item_size;
    p->free_head = SN_HASHTAB_NONE;
}

int sn_pool_alloc(struct sn_pool *p, uint32_t *id)
{
    if (p->free_head != SN_HASHTAB_NONE) {
        *id = p->free_head;
        memcpy(&p->free_head, p->items + (size_t)*id * p->item_size, sizeof(uint32_t));
    } else {
        if (p->len == p->cap) {
            if (p->cap >= SN_POOL_MAX_SLOTS)
                return SOVA_ERR_NOMEM;
            uint32_t cap = p->cap ? p->cap + p->cap / 2 : POOL_MIN_CAP;
            unsigned char *items = realloc(p->items, (size_t)cap * p->item_size);
            if (items == NULL)
                return SOVA_ERR_NOMEM;
            p->items = items;
            p->cap = cap;
        }
        *id = p->len++;
    }
    memset(p->items + (size_t)*id * p->item_size, 0, p->item_size);
    p->live++;
    return 0;
}

void sn_pool_release(struct sn_pool *p, uint32_t id)
{
    unsigned char *item = p->items + (size_t)id * p->item_size;
    memset(item, 0, p->item_size);
    memcpy(item, &p->free_head, sizeof(uint32_t));
    p->free_head = id;
    p->live--;
}

void sn_pool_free(struct sn_pool *p)
{
    free(p->items);
    sn_pool_init(p, p->item_size);
}

size_t sn_pool_bytes(const struct sn_pool *p)
{
    return (size_t)p->cap * p->item_size;
}
