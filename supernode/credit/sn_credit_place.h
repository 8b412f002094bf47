/* sn_credit_place.h - where credit records live, and what moves when the
 * federation changes (docs/CREDITS.md, "The ledger"), sans-I/O.
 *
 * A view is this supernode and every member alive or suspect, sorted by ID;
 * a record's holders are the R best of the view for its key (sn_ring.h).
 * When the view changes, or a supernode links up, a pass goes over every
 * record this supernode has: credit_place_plan() says, for one record,
 * which holders must be sent it (those new to it, or freshly linked, and
 * all of them if this supernode no longer holds it) and whether this
 * supernode keeps it (a record it no longer holds is dropped once every
 * push went out). Every current holder pushes and merges are idempotent, so
 * a record missed by one holder's pass arrives from another's.
 *
 * Pure: IDs in, decisions out; no clock, no I/O. A view owns its array. */
#ifndef SOVA_SN_CREDIT_PLACE_H
#define SOVA_SN_CREDIT_PLACE_H

#include "sn_ring.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct credit_view {
    uint8_t (*ids)[SN_RING_ID_LEN]; /* malloc'ed, sorted, distinct */
    size_t n;
};

/* self and members[0..n) (any order, self or duplicates among them are
 * fine) as a view: 0 or SOVA_ERR_NOMEM (v then empty). */
int credit_view_make(struct credit_view *v, const uint8_t self[SN_RING_ID_LEN],
                     const uint8_t (*members)[SN_RING_ID_LEN], size_t n);
void credit_view_clear(struct credit_view *v);
bool credit_view_equal(const struct credit_view *a, const struct credit_view *b);
/* The holders of key in v, best first (pointers into v). */
size_t credit_view_holders(const struct credit_view *v, const uint8_t key[SN_RING_ID_LEN],
                           unsigned replicas, const uint8_t *out[SN_RING_MAX_REPLICAS]);

/* What a pass places by. */
struct credit_placement {
    const uint8_t *self;
    unsigned replicas;                      /* R */
    const struct credit_view *old;          /* the view the records were placed by; NULL: none */
    const struct credit_view *now;          /* the view they move to */
    const uint8_t (*fresh)[SN_RING_ID_LEN]; /* supernodes linked up since: may have lost all */
    size_t n_fresh;
};

/* Whether a pass has anything to do. */
bool credit_place_needed(const struct credit_placement *pl);

struct credit_place_plan {
    const uint8_t *push[SN_RING_MAX_REPLICAS]; /* holders to send the record to */
    size_t n_push;
    bool keep; /* this supernode holds it now; else drop it once every push went out */
};

/* The plan for the record with key. */
void credit_place_plan(const struct credit_placement *pl, const uint8_t key[SN_RING_ID_LEN],
                       struct credit_place_plan *out);

#endif
