/* op_slots.c - upload slots ordered by credit (op_slots.h). */
#include "op_slots.h"
#include "err.h"

#include <stdlib.h>

struct slot_entry {
    const void *who;
    uint64_t credit;
    uint64_t since_ms; /* waiting: since it was last served or asked */
    bool holding;
};

struct op_slots {
    struct slot_entry *v;
    size_t n, cap;
    unsigned slots;
    uint64_t max_wait_ms;
    size_t held;
};

struct op_slots *op_slots_new(unsigned slots, uint64_t max_wait_ms)
{
    struct op_slots *s = calloc(1, sizeof(*s));
    if (s != NULL)
        op_slots_configure(s, slots, max_wait_ms);
    return s;
}

void op_slots_free(struct op_slots *s)
{
    if (s == NULL)
        return;
    free(s->v);
    free(s);
}

void op_slots_configure(struct op_slots *s, unsigned slots, uint64_t max_wait_ms)
{
    s->slots = slots ? slots : 1;
    s->max_wait_ms = max_wait_ms;
}

static struct slot_entry *find(const struct op_slots *s, const void *who)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].who == who)
            return &s->v[i];
    return NULL;
}

int op_slots_want(struct op_slots *s, const void *who, uint64_t credit, uint64_t now_ms)
{
    struct slot_entry *e = find(s, who);
    if (e != NULL) {
        e->credit = credit;
        return 0;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        struct slot_entry *v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL)
            return SOVA_ERR_NOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (struct slot_entry){.who = who, .credit = credit, .since_ms = now_ms};
    return 0;
}

void op_slots_set_credit(struct op_slots *s, const void *who, uint64_t credit)
{
    struct slot_entry *e = find(s, who);
    if (e != NULL)
        e->credit = credit;
}

void op_slots_leave(struct op_slots *s, const void *who)
{
    struct slot_entry *e = find(s, who);
    if (e == NULL)
        return;
    if (e->holding)
        s->held--;
    *e = s->v[--s->n];
}

bool op_slots_holds(const struct op_slots *s, const void *who)
{
    const struct slot_entry *e = find(s, who);
    return e != NULL && e->holding;
}

static bool starving(const struct op_slots *s, const struct slot_entry *e, uint64_t now_ms)
{
    return now_ms - e->since_ms >= s->max_wait_ms;
}

/* Does waiter a rank before waiter b? */
static bool ranks_before(const struct op_slots *s, const struct slot_entry *a,
                         const struct slot_entry *b, uint64_t now_ms)
{
    bool sa = starving(s, a, now_ms), sb = starving(s, b, now_ms);
    if (sa != sb)
        return sa;
    if (!sa && a->credit != b->credit)
        return a->credit > b->credit;
    return a->since_ms < b->since_ms;
}

static struct slot_entry *best_waiter(const struct op_slots *s, uint64_t now_ms)
{
    struct slot_entry *best = NULL;
    for (size_t i = 0; i < s->n; i++)
        if (!s->v[i].holding && (best == NULL || ranks_before(s, &s->v[i], best, now_ms)))
            best = &s->v[i];
    return best;
}

bool op_slots_chunk_done(struct op_slots *s, const void *who, uint64_t now_ms)
{
    struct slot_entry *e = find(s, who);
    if (e == NULL || !e->holding)
        return false;
    const struct slot_entry *w = best_waiter(s, now_ms);
    bool yield =
        s->held > s->slots || (w != NULL && (starving(s, w, now_ms) || w->credit > e->credit));
    if (!yield)
        return true;
    e->holding = false;
    e->since_ms = now_ms;
    s->held--;
    return false;
}

const void *op_slots_grant(struct op_slots *s, uint64_t now_ms)
{
    if (s->held >= s->slots)
        return NULL;
    struct slot_entry *w = best_waiter(s, now_ms);
    if (w == NULL)
        return NULL;
    w->holding = true;
    s->held++;
    return w->who;
}

size_t op_slots_waiting(const struct op_slots *s)
{
    return s->n - s->held;
}

size_t op_slots_held(const struct op_slots *s)
{
    return s->held;
}
