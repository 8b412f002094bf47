/* sn_index_vec.c - the index's small arrays with the first 8 bytes in place
 * (sn_index_impl.h); its pools of slots are sn_pool.h. */
#define SN_INDEX_IMPL
#include "sn_index_impl.h"

#include "err.h"

#include <stdlib.h>
#include <string.h>

/* ---- sn_vec ------------------------------------------------------------------ */
static unsigned char *vec_bytes(struct sn_vec *v, size_t size)
{
    return sn_vec_on_heap(v, size) ? v->u.heap : (unsigned char *)&v->u;
}

void sn_vec_init(struct sn_vec *v, size_t size)
{
    v->n = 0;
    v->cap = (uint32_t)(SN_VEC_INLINE_BYTES / size);
}

int sn_vec_push(struct sn_index *idx, struct sn_vec *v, size_t size, const void *item)
{
    if (v->n == v->cap) {
        if (v->cap > UINT32_MAX / 2)
            return SOVA_ERR_NOMEM;
        /* Double small arrays; grow big ones (posting lists of common words)
         * by half, to keep the slack down. */
        uint32_t cap = v->cap < 64 ? v->cap * 2 : v->cap + v->cap / 2;
        unsigned char *heap;
        if (sn_vec_on_heap(v, size)) {
            heap = realloc(v->u.heap, cap * size);
            if (heap == NULL)
                return SOVA_ERR_NOMEM;
            idx->heap_bytes -= v->cap * size;
        } else {
            heap = malloc(cap * size);
            if (heap == NULL)
                return SOVA_ERR_NOMEM;
            memcpy(heap, &v->u, v->n * size);
        }
        idx->heap_bytes += cap * size;
        v->u.heap = heap;
        v->cap = cap;
    }
    memcpy(vec_bytes(v, size) + v->n * size, item, size);
    v->n++;
    return 0;
}

/* Give memory back when an array has become mostly empty. */
static void vec_shrink(struct sn_index *idx, struct sn_vec *v, size_t size)
{
    if (!sn_vec_on_heap(v, size))
        return;
    unsigned char *heap = v->u.heap;
    if (v->n * size <= SN_VEC_INLINE_BYTES) {
        memcpy(&v->u, heap, v->n * size);
        free(heap);
        idx->heap_bytes -= v->cap * size;
        v->cap = (uint32_t)(SN_VEC_INLINE_BYTES / size);
    } else if (v->n < v->cap / 4) {
        uint32_t cap = v->cap / 2;
        unsigned char *smaller = realloc(heap, cap * size);
        if (smaller == NULL)
            return; /* keep the bigger array */
        idx->heap_bytes -= (v->cap - cap) * size;
        v->u.heap = smaller;
        v->cap = cap;
    }
}

bool sn_vec_swap_remove(struct sn_index *idx, struct sn_vec *v, size_t size, uint32_t pos,
                        void *moved)
{
    unsigned char *items = vec_bytes(v, size);
    bool did = pos != v->n - 1;
    if (did) {
        memcpy(items + pos * size, items + (v->n - 1) * size, size);
        memcpy(moved, items + pos * size, size);
    }
    v->n--;
    vec_shrink(idx, v, size);
    return did;
}

void sn_vec_free(struct sn_index *idx, struct sn_vec *v, size_t size)
{
    if (sn_vec_on_heap(v, size)) {
        free(v->u.heap);
        idx->heap_bytes -= v->cap * size;
    }
    sn_vec_init(v, size);
}
