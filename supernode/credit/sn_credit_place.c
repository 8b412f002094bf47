/* sn_credit_place.c - where credit records live (sn_credit_place.h). */
#include "sn_credit_place.h"
#include "err.h"
#include "sova_assert.h"

#include <stdlib.h>
#include <string.h>

static int id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, SN_RING_ID_LEN);
}

int credit_view_make(struct credit_view *v, const uint8_t self[SN_RING_ID_LEN],
                     const uint8_t (*members)[SN_RING_ID_LEN], size_t n)
{
    v->n = 0;
    v->ids = malloc((n + 1) * sizeof(*v->ids));
    if (v->ids == NULL)
        return SOVA_ERR_NOMEM;
    memcpy(v->ids[v->n++], self, SN_RING_ID_LEN);
    for (size_t i = 0; i < n; i++)
        memcpy(v->ids[v->n++], members[i], SN_RING_ID_LEN);
    qsort(v->ids, v->n, sizeof(*v->ids), id_cmp);
    size_t out = 0;
    for (size_t i = 0; i < v->n; i++)
        if (out == 0 || memcmp(v->ids[out - 1], v->ids[i], SN_RING_ID_LEN) != 0)
            memmove(v->ids[out++], v->ids[i], SN_RING_ID_LEN);
    v->n = out;
    return 0;
}

void credit_view_clear(struct credit_view *v)
{
    free(v->ids);
    v->ids = NULL;
    v->n = 0;
}

bool credit_view_equal(const struct credit_view *a, const struct credit_view *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->ids, b->ids, a->n * sizeof(*a->ids)) == 0);
}

size_t credit_view_holders(const struct credit_view *v, const uint8_t key[SN_RING_ID_LEN],
                           unsigned replicas, const uint8_t *out[SN_RING_MAX_REPLICAS])
{
    size_t idx[SN_RING_MAX_REPLICAS];
    size_t n = sn_ring_holders(key, (const uint8_t(*)[SN_RING_ID_LEN])v->ids, v->n, replicas, idx);
    for (size_t i = 0; i < n; i++)
        out[i] = v->ids[idx[i]];
    return n;
}

static bool in_list(const uint8_t *const *list, size_t n, const uint8_t *id)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(list[i], id, SN_RING_ID_LEN) == 0)
            return true;
    return false;
}

static bool is_fresh(const struct credit_placement *pl, const uint8_t *id)
{
    for (size_t i = 0; i < pl->n_fresh; i++)
        if (memcmp(pl->fresh[i], id, SN_RING_ID_LEN) == 0)
            return true;
    return false;
}

bool credit_place_needed(const struct credit_placement *pl)
{
    return pl->n_fresh > 0 || pl->old == NULL || !credit_view_equal(pl->old, pl->now);
}

void credit_place_plan(const struct credit_placement *pl, const uint8_t key[SN_RING_ID_LEN],
                       struct credit_place_plan *out)
{
    const uint8_t *now[SN_RING_MAX_REPLICAS], *before[SN_RING_MAX_REPLICAS];
    size_t nn = credit_view_holders(pl->now, key, pl->replicas, now);
    size_t nb = pl->old ? credit_view_holders(pl->old, key, pl->replicas, before) : 0;
    out->keep = in_list(now, nn, pl->self);
    out->n_push = 0;
    for (size_t i = 0; i < nn; i++) {
        if (memcmp(now[i], pl->self, SN_RING_ID_LEN) == 0)
            continue;
        /* A holder that had it under the old view has it still, unless it
         * linked up since (it may have restarted empty). One we hand the
         * record away to gets it whatever it had. */
        if (out->keep && in_list(before, nb, now[i]) && !is_fresh(pl, now[i]))
            continue;
        out->push[out->n_push++] = now[i];
    }
    SOVA_ASSERT(out->n_push <= nn && nn <= pl->now->n);
}
