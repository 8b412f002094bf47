/* sn_route.c - summaries per supernode, routing decisions, duplicate
 * suppression and per-origin rate limits (sn_route.h).
 *
 * Three bounded tables, each found through an sn_hashtab (keyed SipHash,
 * so IDs and query ids chosen by others cannot be made to collide):
 *   - summaries and origin buckets: dense arrays keyed by an SN ID, full
 *     tables evict the entry used least recently (a linear scan, only when
 *     full);
 *   - seen queries: a ring in arrival order, so expiry and eviction both
 *     take the oldest, in O(1).
 */
#include "sn_route.h"

#include "err.h"
#include "sn_hashtab.h"

#include <stdlib.h>
#include <string.h>

/* ---- a dense table of entries keyed by an SN ID ----------------------------------- */
/* Every entry starts with this header. */
struct id_entry {
    uint8_t id[WIRE_ID_LEN];
    uint64_t last_ms; /* eviction picks the smallest */
};

struct id_table {
    unsigned char *items; /* cap entries of item_size bytes */
    size_t item_size;
    uint32_t count, cap;
    struct sn_hashtab tab;
    const uint8_t *hash_key; /* the route's */
};

static struct id_entry *id_at(const struct id_table *t, uint32_t i)
{
    return (struct id_entry *)(void *)(t->items + (size_t)i * t->item_size);
}

static bool id_eq(const void *ctx, uint32_t i, const void *key)
{
    return memcmp(id_at(ctx, i)->id, key, WIRE_ID_LEN) == 0;
}

static uint32_t id_hash(const struct id_table *t, const uint8_t id[WIRE_ID_LEN])
{
    return (uint32_t)sn_hashtab_siphash(t->hash_key, id, WIRE_ID_LEN);
}

static int id_table_init(struct id_table *t, size_t item_size, uint32_t cap,
                         const uint8_t *hash_key)
{
    memset(t, 0, sizeof(*t));
    sn_hashtab_init(&t->tab);
    t->items = calloc(cap, item_size);
    t->item_size = item_size;
    t->cap = cap;
    t->hash_key = hash_key;
    return t->items ? 0 : SOVA_ERR_NOMEM;
}

static void id_table_free(struct id_table *t)
{
    free(t->items);
    sn_hashtab_free(&t->tab);
}

static uint32_t id_find(const struct id_table *t, const uint8_t id[WIRE_ID_LEN])
{
    return sn_hashtab_find(&t->tab, id_hash(t, id), id_eq, t, id);
}

/* Remove entry i: the last entry takes its place. */
static void id_remove(struct id_table *t, uint32_t i)
{
    uint32_t last = t->count - 1;
    sn_hashtab_remove(&t->tab, id_hash(t, id_at(t, i)->id), i);
    if (i != last) {
        sn_hashtab_replace(&t->tab, id_hash(t, id_at(t, last)->id), last, i);
        memcpy(id_at(t, i), id_at(t, last), t->item_size);
    }
    t->count--;
}

/* The entry used least recently (ties: the lower index). count > 0. */
static uint32_t id_oldest(const struct id_table *t)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < t->count; i++) {
        if (id_at(t, i)->last_ms < id_at(t, best)->last_ms)
            best = i;
    }
    return best;
}

/* A zeroed entry for id, which is not in the table, at the end; the table
 * has room. SN_HASHTAB_NONE when memory is short. */
static uint32_t id_add(struct id_table *t, const uint8_t id[WIRE_ID_LEN], uint64_t now_ms)
{
    uint32_t i = t->count;
    if (sn_hashtab_insert(&t->tab, id_hash(t, id), i) != 0)
        return SN_HASHTAB_NONE;
    struct id_entry *e = id_at(t, i);
    memset(e, 0, t->item_size);
    memcpy(e->id, id, WIRE_ID_LEN);
    e->last_ms = now_ms;
    t->count++;
    return i;
}

/* ---- the route -------------------------------------------------------------------- */
struct summary_entry {
    struct id_entry hdr; /* last_ms: when last received */
    struct sn_summary *summary;
};

struct origin_entry {
    struct id_entry hdr; /* last_ms: last refill */
    uint64_t milli_tokens;
};

struct seen_entry {
    uint8_t origin[WIRE_ID_LEN];
    uint64_t query_id;
    uint64_t at_ms;
};

struct sn_route {
    struct sn_route_limits lim;
    uint8_t self[WIRE_ID_LEN];
    struct id_table summaries; /* of struct summary_entry */
    struct id_table origins;   /* of struct origin_entry */
    struct seen_entry *seen;   /* ring of lim.seen_max */
    uint32_t seen_head, seen_count;
    struct sn_hashtab seen_tab; /* ring position by (origin, query id) */
};

struct sn_route_limits sn_route_limits_default(void)
{
    struct sn_route_limits lim = {
        .max_summaries = SN_ROUTE_MAX_SUMMARIES_DEFAULT,
        .summary_max_age_ms = SN_ROUTE_SUMMARY_MAX_AGE_MS_DEFAULT,
        .flood_ttl = SN_ROUTE_FLOOD_TTL_DEFAULT,
        .min_fwd_deadline_ms = SN_ROUTE_MIN_FWD_DEADLINE_MS_DEFAULT,
        .seen_max = SN_ROUTE_SEEN_MAX_DEFAULT,
        .seen_window_ms = SN_ROUTE_SEEN_WINDOW_MS_DEFAULT,
        .rate_per_s = SN_ROUTE_RATE_PER_S_DEFAULT,
        .burst = SN_ROUTE_BURST_DEFAULT,
        .max_origins = SN_ROUTE_MAX_ORIGINS_DEFAULT,
    };
    return lim;
}

static uint32_t clamp_u32(uint32_t v, uint32_t lo, uint32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

struct sn_route *sn_route_new(const struct sn_route_limits *lim, const uint8_t self_id[WIRE_ID_LEN])
{
    struct sn_route *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->lim = *lim;
    r->lim.max_summaries = clamp_u32(lim->max_summaries, 1, SN_ROUTE_MAX_SUMMARIES_CAP);
    r->lim.flood_ttl =
        lim->flood_ttl > SN_ROUTE_FLOOD_TTL_CAP ? SN_ROUTE_FLOOD_TTL_CAP : lim->flood_ttl;
    r->lim.min_fwd_deadline_ms = clamp_u32(lim->min_fwd_deadline_ms, 1, UINT32_MAX);
    r->lim.seen_max = clamp_u32(lim->seen_max, 1, SN_ROUTE_SEEN_MAX_CAP);
    r->lim.seen_window_ms = clamp_u32(lim->seen_window_ms, 1, UINT32_MAX);
    r->lim.rate_per_s = clamp_u32(lim->rate_per_s, 1, SN_ROUTE_RATE_PER_S_CAP);
    r->lim.burst = clamp_u32(lim->burst, 1, SN_ROUTE_BURST_CAP);
    r->lim.max_origins = clamp_u32(lim->max_origins, 1, SN_ROUTE_MAX_ORIGINS_CAP);
    memcpy(r->self, self_id, WIRE_ID_LEN);
    sn_hashtab_init(&r->seen_tab);
    int rc = id_table_init(&r->summaries, sizeof(struct summary_entry), r->lim.max_summaries,
                           r->lim.hash_key);
    if (rc == 0)
        rc = id_table_init(&r->origins, sizeof(struct origin_entry), r->lim.max_origins,
                           r->lim.hash_key);
    r->seen = calloc(r->lim.seen_max, sizeof(*r->seen));
    if (rc != 0 || r->seen == NULL) {
        sn_route_free(r);
        return NULL;
    }
    return r;
}

void sn_route_free(struct sn_route *r)
{
    if (r == NULL)
        return;
    for (uint32_t i = 0; i < r->summaries.count; i++)
        sn_summary_free(((struct summary_entry *)id_at(&r->summaries, i))->summary);
    id_table_free(&r->summaries);
    id_table_free(&r->origins);
    free(r->seen);
    sn_hashtab_free(&r->seen_tab);
    free(r);
}

/* ---- summaries ------------------------------------------------------------------ */
static struct summary_entry *summary_at(const struct sn_route *r, uint32_t i)
{
    return (struct summary_entry *)id_at(&r->summaries, i);
}

static bool summary_stale(const struct sn_route *r, const struct summary_entry *e, uint64_t now_ms)
{
    return r->lim.summary_max_age_ms != 0 && now_ms > e->hdr.last_ms &&
           now_ms - e->hdr.last_ms > r->lim.summary_max_age_ms;
}

static void summary_remove(struct sn_route *r, uint32_t i)
{
    sn_summary_free(summary_at(r, i)->summary);
    id_remove(&r->summaries, i);
}

int sn_route_update(struct sn_route *r, const struct msg_summary *m, uint64_t now_ms)
{
    if (memcmp(m->sn_id, r->self, WIRE_ID_LEN) == 0)
        return SN_ROUTE_SUMMARY_SELF;
    uint32_t i = id_find(&r->summaries, m->sn_id);
    int result = SN_ROUTE_SUMMARY_NEW;
    if (i != SN_HASHTAB_NONE) {
        struct summary_entry *e = summary_at(r, i);
        uint64_t held = sn_summary_version(e->summary);
        if (m->version == held) {
            e->hdr.last_ms = now_ms;
            return SN_ROUTE_SUMMARY_REFRESHED;
        }
        if (m->version < held && !summary_stale(r, e, now_ms))
            return SN_ROUTE_SUMMARY_OLDER;
        result = SN_ROUTE_SUMMARY_REPLACED;
    }
    struct sn_summary *s;
    int rc = sn_summary_from_msg(m, &s);
    if (rc != 0)
        return rc;
    if (i == SN_HASHTAB_NONE) {
        if (r->summaries.count == r->summaries.cap)
            summary_remove(r, id_oldest(&r->summaries));
        i = id_add(&r->summaries, m->sn_id, now_ms);
        if (i == SN_HASHTAB_NONE) {
            sn_summary_free(s);
            return SOVA_ERR_NOMEM;
        }
    }
    struct summary_entry *e = summary_at(r, i);
    sn_summary_free(e->summary);
    e->summary = s;
    e->hdr.last_ms = now_ms;
    return result;
}

bool sn_route_forget(struct sn_route *r, const uint8_t sn_id[WIRE_ID_LEN])
{
    uint32_t i = id_find(&r->summaries, sn_id);
    if (i == SN_HASHTAB_NONE)
        return false;
    summary_remove(r, i);
    return true;
}

const struct sn_summary *sn_route_summary(const struct sn_route *r,
                                          const uint8_t sn_id[WIRE_ID_LEN])
{
    uint32_t i = id_find(&r->summaries, sn_id);
    return i == SN_HASHTAB_NONE ? NULL : summary_at(r, i)->summary;
}

uint64_t sn_route_summary_age(const struct sn_route *r, const uint8_t sn_id[WIRE_ID_LEN],
                              uint64_t now_ms)
{
    uint32_t i = id_find(&r->summaries, sn_id);
    if (i == SN_HASHTAB_NONE)
        return UINT64_MAX;
    uint64_t at = summary_at(r, i)->hdr.last_ms;
    return now_ms > at ? now_ms - at : 0;
}

size_t sn_route_summaries(const struct sn_route *r)
{
    return r->summaries.count;
}

/* ---- targets -------------------------------------------------------------------- */
/* One routing decision: who is left out, how the query is judged against
 * a summary, and which TTL blind targets get. */
struct route_pass {
    const uint8_t *exclude[2];        /* besides self; entries may be NULL */
    const struct sn_summary_query *q; /* NULL: members with a summary are not targets */
    bool hash_only;                   /* no keyword: any non-empty summary may match */
    bool flood;                       /* members without a fresh summary are targets */
    uint8_t matched_ttl, flood_ttl;
};

static bool excluded(const struct sn_route *r, const struct route_pass *p,
                     const uint8_t id[WIRE_ID_LEN])
{
    if (memcmp(id, r->self, WIRE_ID_LEN) == 0)
        return true;
    for (size_t i = 0; i < 2; i++) {
        if (p->exclude[i] != NULL && memcmp(id, p->exclude[i], WIRE_ID_LEN) == 0)
            return true;
    }
    return false;
}

/* The fresh summary held for id, or NULL. */
static const struct sn_summary *fresh_summary(const struct sn_route *r,
                                              const uint8_t id[WIRE_ID_LEN], uint64_t now_ms)
{
    uint32_t i = id_find(&r->summaries, id);
    if (i == SN_HASHTAB_NONE || summary_stale(r, summary_at(r, i), now_ms))
        return NULL;
    return summary_at(r, i)->summary;
}

static bool summary_admits(const struct route_pass *p, const struct sn_summary *s)
{
    if (p->hash_only)
        return sn_summary_bits_set(s) > 0;
    return sn_summary_query_match(s, p->q);
}

static size_t emit(const uint8_t id[WIRE_ID_LEN], uint8_t ttl, bool flooded,
                   struct sn_route_target *out, size_t n, size_t max_out, size_t *counter,
                   struct sn_route_plan *plan)
{
    if (n == max_out) {
        plan->dropped++;
        return n;
    }
    memcpy(out[n].sn_id, id, WIRE_ID_LEN);
    out[n].ttl = ttl;
    out[n].flooded = flooded;
    (*counter)++;
    return n + 1;
}

/* Two passes over alive: members whose summary may match, then members
 * without a fresh summary. */
static size_t route(const struct sn_route *r, const struct route_pass *p,
                    const uint8_t (*alive)[WIRE_ID_LEN], size_t n_alive, uint64_t now_ms,
                    struct sn_route_target *out, size_t max_out, struct sn_route_plan *plan)
{
    struct sn_route_plan unused;
    if (plan == NULL)
        plan = &unused;
    memset(plan, 0, sizeof(*plan));
    size_t n = 0;
    for (size_t i = 0; i < n_alive; i++) {
        if (excluded(r, p, alive[i]))
            continue;
        const struct sn_summary *s = fresh_summary(r, alive[i], now_ms);
        if (s == NULL || p->q == NULL)
            continue;
        if (summary_admits(p, s))
            n = emit(alive[i], p->matched_ttl, false, out, n, max_out, &plan->matched, plan);
        else
            plan->skipped++;
    }
    for (size_t i = 0; p->flood && i < n_alive; i++) {
        if (!excluded(r, p, alive[i]) && fresh_summary(r, alive[i], now_ms) == NULL)
            n = emit(alive[i], p->flood_ttl, true, out, n, max_out, &plan->flooded, plan);
    }
    return n;
}

size_t sn_route_targets(const struct sn_route *r, const struct msg_search *q,
                        const uint8_t (*alive)[WIRE_ID_LEN], size_t n_alive, uint64_t now_ms,
                        struct sn_route_target *out, size_t max_out, struct sn_route_plan *plan)
{
    struct sn_summary_query sq;
    sn_summary_query_init(&sq, q->keywords, q->n_keywords);
    struct route_pass p = {
        .q = &sq,
        .hash_only = q->n_keywords == 0 && q->has_hash,
        .matched_ttl = 0,
        .flood_ttl = r->lim.flood_ttl,
    };
    /* Nothing can match a void query anywhere: not worth a frame. */
    p.flood = p.hash_only || (q->n_keywords > 0 && !sq.void_query);
    if (!p.flood) {
        p.q = NULL;
        n_alive = 0;
    }
    return route(r, &p, alive, n_alive, now_ms, out, max_out, plan);
}

size_t sn_route_relay_targets(const struct sn_route *r, const struct msg_fwd_search *fwd,
                              const uint8_t from[WIRE_ID_LEN], const uint8_t (*alive)[WIRE_ID_LEN],
                              size_t n_alive, uint64_t now_ms, struct sn_route_target *out,
                              size_t max_out, uint32_t *child_deadline_ms,
                              struct sn_route_plan *plan)
{
    uint8_t ttl = fwd->ttl < r->lim.flood_ttl ? fwd->ttl : r->lim.flood_ttl;
    uint32_t child = (uint32_t)((uint64_t)fwd->deadline_ms * 3 / 4);
    struct route_pass p = {
        .exclude = {fwd->origin_sn, from},
        .flood = ttl > 0 && child >= r->lim.min_fwd_deadline_ms,
        .flood_ttl = ttl > 0 ? (uint8_t)(ttl - 1) : 0,
    };
    if (child_deadline_ms != NULL)
        *child_deadline_ms = p.flood ? child : 0;
    if (!p.flood)
        n_alive = 0;
    return route(r, &p, alive, n_alive, now_ms, out, max_out, plan);
}

/* ---- duplicates ---------------------------------------------------------------------- */
struct seen_key {
    uint8_t bytes[WIRE_ID_LEN + 8]; /* origin, then query id big-endian */
};

static struct seen_key seen_key_of(const uint8_t origin[WIRE_ID_LEN], uint64_t query_id)
{
    struct seen_key k;
    memcpy(k.bytes, origin, WIRE_ID_LEN);
    wire_put_be(k.bytes + WIRE_ID_LEN, query_id, 8);
    return k;
}

static uint32_t seen_hash(const struct sn_route *r, const struct seen_key *k)
{
    return (uint32_t)sn_hashtab_siphash(r->lim.hash_key, k->bytes, sizeof(k->bytes));
}

static bool seen_eq(const void *ctx, uint32_t pos, const void *key)
{
    const struct sn_route *r = ctx;
    const struct seen_key *k = key;
    const struct seen_entry *e = &r->seen[pos];
    return memcmp(e->origin, k->bytes, WIRE_ID_LEN) == 0 &&
           e->query_id == wire_get_be(k->bytes + WIRE_ID_LEN, 8);
}

/* Forget the oldest entry. seen_count > 0. */
static void seen_pop(struct sn_route *r)
{
    uint32_t pos = r->seen_head;
    struct seen_key k = seen_key_of(r->seen[pos].origin, r->seen[pos].query_id);
    sn_hashtab_remove(&r->seen_tab, seen_hash(r, &k), pos);
    r->seen_head = (pos + 1) % r->lim.seen_max;
    r->seen_count--;
}

bool sn_route_seen(struct sn_route *r, const uint8_t origin[WIRE_ID_LEN], uint64_t query_id,
                   uint64_t now_ms)
{
    while (r->seen_count > 0 && now_ms > r->seen[r->seen_head].at_ms &&
           now_ms - r->seen[r->seen_head].at_ms >= r->lim.seen_window_ms)
        seen_pop(r);
    struct seen_key k = seen_key_of(origin, query_id);
    uint32_t h = seen_hash(r, &k);
    if (sn_hashtab_find(&r->seen_tab, h, seen_eq, r, &k) != SN_HASHTAB_NONE)
        return true;
    if (r->seen_count == r->lim.seen_max)
        seen_pop(r);
    uint32_t pos = (r->seen_head + r->seen_count) % r->lim.seen_max;
    /* Without memory for the table the query is served unrecorded: a
     * duplicate costs one more answer, a refusal would lose a query. */
    if (sn_hashtab_insert(&r->seen_tab, h, pos) != 0)
        return false;
    memcpy(r->seen[pos].origin, origin, WIRE_ID_LEN);
    r->seen[pos].query_id = query_id;
    r->seen[pos].at_ms = now_ms;
    r->seen_count++;
    return false;
}

/* ---- rate ---------------------------------------------------------------------------- */
#define MILLI 1000u /* a token, in the bucket's unit */

bool sn_route_admit(struct sn_route *r, const uint8_t origin[WIRE_ID_LEN], uint64_t now_ms)
{
    uint64_t full = (uint64_t)r->lim.burst * MILLI;
    uint32_t i = id_find(&r->origins, origin);
    if (i == SN_HASHTAB_NONE) {
        if (r->origins.count == r->origins.cap)
            id_remove(&r->origins, id_oldest(&r->origins));
        i = id_add(&r->origins, origin, now_ms);
        if (i == SN_HASHTAB_NONE)
            return true; /* no memory to count it: serve rather than lose it */
        ((struct origin_entry *)id_at(&r->origins, i))->milli_tokens = full;
    }
    struct origin_entry *e = (struct origin_entry *)id_at(&r->origins, i);
    if (now_ms > e->hdr.last_ms) {
        /* ms * tokens/s = milli-tokens. A gap of `full` ms or more fills the
         * bucket (rate >= 1), which also keeps the product below 2^50. */
        uint64_t elapsed = now_ms - e->hdr.last_ms;
        uint64_t add = elapsed > full ? full : elapsed * r->lim.rate_per_s;
        e->milli_tokens = full - e->milli_tokens < add ? full : e->milli_tokens + add;
        e->hdr.last_ms = now_ms;
    }
    if (e->milli_tokens < MILLI)
        return false;
    e->milli_tokens -= MILLI;
    return true;
}
