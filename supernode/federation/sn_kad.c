/* sn_kad.c - Kademlia routing table and iterative lookup (sn_kad.h). */
#include "sn_kad.h"

#include "err.h"
#include "sova_assert.h"

#include <stdlib.h>
#include <string.h>

struct sn_kad_bucket {
    struct sn_kad_entry *e; /* least recently seen first */
    struct sn_kad_entry *cache;
    uint8_t n, cap, n_cache;
    bool overflowed; /* turned a newcomer away once: no longer known complete */
};

struct sn_kad {
    uint8_t self[SN_KAD_ID_LEN];
    unsigned k, replacements, max_failures;
    struct sn_kad_bucket *b; /* b[0 .. n_b): up to the deepest bucket used */
    unsigned n_b;
    size_t size, cached;
};

/* ---- distance --------------------------------------------------------------- */
unsigned sn_kad_cpl(const uint8_t a[SN_KAD_ID_LEN], const uint8_t b[SN_KAD_ID_LEN])
{
    for (unsigned i = 0; i < SN_KAD_ID_LEN; i++) {
        uint8_t x = a[i] ^ b[i];
        if (x) {
            unsigned bits = 0;
            while (!(x & 0x80)) {
                x = (uint8_t)(x << 1);
                bits++;
            }
            return i * 8 + bits;
        }
    }
    return SN_KAD_BUCKETS;
}

int sn_kad_cmp_distance(const uint8_t target[SN_KAD_ID_LEN], const uint8_t a[SN_KAD_ID_LEN],
                        const uint8_t b[SN_KAD_ID_LEN])
{
    for (unsigned i = 0; i < SN_KAD_ID_LEN; i++) {
        uint8_t da = a[i] ^ target[i], db = b[i] ^ target[i];
        if (da != db)
            return da < db ? -1 : 1;
    }
    return 0;
}

/* ---- the table ---------------------------------------------------------------- */
static unsigned clamp_or(unsigned v, unsigned def, unsigned lo, unsigned hi)
{
    if (v == 0)
        return def;
    return v < lo ? lo : v > hi ? hi : v;
}

struct sn_kad *sn_kad_new(const uint8_t self[SN_KAD_ID_LEN], const struct sn_kad_config *cfg)
{
    struct sn_kad *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    memcpy(t->self, self, SN_KAD_ID_LEN);
    struct sn_kad_config c = cfg ? *cfg : (struct sn_kad_config){0};
    t->k = clamp_or(c.k, SN_KAD_K_DEFAULT, 1, SN_KAD_K_MAX);
    t->replacements =
        clamp_or(c.replacements, SN_KAD_REPLACEMENTS_DEFAULT, 1, SN_KAD_REPLACEMENTS_MAX);
    t->max_failures = clamp_or(c.max_failures, SN_KAD_MAX_FAILURES_DEFAULT, 1, 255);
    return t;
}

void sn_kad_free_(struct sn_kad *t)
{
    if (t == NULL)
        return;
    for (unsigned i = 0; i < t->n_b; i++) {
        free(t->b[i].e);
        free(t->b[i].cache);
    }
    free(t->b);
    free(t);
}

const uint8_t *sn_kad_self(const struct sn_kad *t)
{
    return t->self;
}

unsigned sn_kad_k(const struct sn_kad *t)
{
    return t->k;
}

size_t sn_kad_size(const struct sn_kad *t)
{
    return t->size;
}

size_t sn_kad_cached(const struct sn_kad *t)
{
    return t->cached;
}

size_t sn_kad_bytes(const struct sn_kad *t)
{
    size_t bytes = sizeof(*t) + t->n_b * sizeof(struct sn_kad_bucket);
    for (unsigned i = 0; i < t->n_b; i++)
        bytes +=
            (t->b[i].cap + (t->b[i].cache ? t->replacements : 0)) * sizeof(struct sn_kad_entry);
    return bytes;
}

size_t sn_kad_bucket(const struct sn_kad *t, unsigned i, const struct sn_kad_entry **out,
                     size_t *n_cached)
{
    if (i >= t->n_b) {
        *out = NULL;
        *n_cached = 0;
        return 0;
    }
    *out = t->b[i].e;
    *n_cached = t->b[i].n_cache;
    return t->b[i].n;
}

static int find_in(const struct sn_kad_entry *e, size_t n, const uint8_t id[SN_KAD_ID_LEN])
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(e[i].id, id, SN_KAD_ID_LEN) == 0)
            return (int)i;
    return -1;
}

const struct sn_kad_entry *sn_kad_find(const struct sn_kad *t, const uint8_t id[SN_KAD_ID_LEN])
{
    unsigned i = sn_kad_cpl(t->self, id);
    if (i >= t->n_b)
        return NULL;
    int at = find_in(t->b[i].e, t->b[i].n, id);
    return at < 0 ? NULL : &t->b[i].e[at];
}

static void fill_entry(struct sn_kad_entry *e, const uint8_t id[SN_KAD_ID_LEN],
                       const struct wire_addr *addrs, size_t n_addrs, uint64_t now_ms)
{
    memset(e, 0, sizeof(*e));
    memcpy(e->id, id, SN_KAD_ID_LEN);
    e->n_addrs = (uint8_t)(n_addrs < SN_KAD_MAX_ADDRS ? n_addrs : SN_KAD_MAX_ADDRS);
    if (e->n_addrs)
        memcpy(e->addrs, addrs, e->n_addrs * sizeof(*addrs));
    e->last_seen_ms = now_ms;
}

/* Move e[at] to the tail (most recently seen). */
static void to_tail(struct sn_kad_entry *e, size_t n, size_t at)
{
    struct sn_kad_entry keep = e[at];
    memmove(&e[at], &e[at + 1], (n - at - 1) * sizeof(*e));
    e[n - 1] = keep;
}

static void remove_at(struct sn_kad_entry *e, uint8_t *n, size_t at)
{
    memmove(&e[at], &e[at + 1], (*n - at - 1) * sizeof(*e));
    (*n)--;
}

static int grow_buckets(struct sn_kad *t, unsigned want)
{
    if (want <= t->n_b)
        return 0;
    struct sn_kad_bucket *b = realloc(t->b, want * sizeof(*b));
    if (b == NULL)
        return SOVA_ERR_NOMEM;
    memset(&b[t->n_b], 0, (want - t->n_b) * sizeof(*b));
    t->b = b;
    t->n_b = want;
    return 0;
}

/* Room for one more entry in bucket b (capacity grows 2, 4, 8 .. k). */
static int bucket_reserve(struct sn_kad *t, struct sn_kad_bucket *b)
{
    if (b->n < b->cap)
        return 0;
    unsigned cap = b->cap ? b->cap * 2u : 2u;
    if (cap > t->k)
        cap = t->k;
    struct sn_kad_entry *e = realloc(b->e, cap * sizeof(*e));
    if (e == NULL)
        return SOVA_ERR_NOMEM;
    b->e = e;
    b->cap = (uint8_t)cap;
    return 0;
}

static int cache_put(struct sn_kad *t, struct sn_kad_bucket *b, const uint8_t id[SN_KAD_ID_LEN],
                     const struct wire_addr *addrs, size_t n_addrs, uint64_t now_ms)
{
    if (b->cache == NULL) {
        b->cache = malloc(t->replacements * sizeof(*b->cache));
        if (b->cache == NULL)
            return SOVA_ERR_NOMEM;
    }
    b->overflowed = true;
    int at = find_in(b->cache, b->n_cache, id);
    if (at >= 0) {
        struct sn_kad_entry *c = &b->cache[at];
        c->last_seen_ms = now_ms;
        if (n_addrs)
            fill_entry(c, id, addrs, n_addrs, now_ms);
        to_tail(b->cache, b->n_cache, (size_t)at);
        return SN_KAD_CACHED;
    }
    if (b->n_cache == t->replacements) { /* the oldest newcomer gives way */
        remove_at(b->cache, &b->n_cache, 0);
        t->cached--;
    }
    fill_entry(&b->cache[b->n_cache++], id, addrs, n_addrs, now_ms);
    t->cached++;
    return SN_KAD_CACHED;
}

static void uncache(struct sn_kad *t, struct sn_kad_bucket *b, const uint8_t id[SN_KAD_ID_LEN])
{
    int c = find_in(b->cache, b->n_cache, id);
    if (c >= 0) {
        remove_at(b->cache, &b->n_cache, (size_t)c);
        t->cached--;
    }
}

int sn_kad_seen(struct sn_kad *t, const uint8_t id[SN_KAD_ID_LEN], const struct wire_addr *addrs,
                size_t n_addrs, uint64_t now_ms)
{
    unsigned i = sn_kad_cpl(t->self, id);
    if (i == SN_KAD_BUCKETS)
        return SN_KAD_SELF;
    if (grow_buckets(t, i + 1) != 0)
        return SOVA_ERR_NOMEM;
    struct sn_kad_bucket *b = &t->b[i];
    int at = find_in(b->e, b->n, id);
    if (at >= 0) {
        struct sn_kad_entry *e = &b->e[at];
        e->last_seen_ms = now_ms;
        e->failures = 0;
        if (n_addrs)
            fill_entry(e, id, addrs, n_addrs, now_ms);
        to_tail(b->e, b->n, (size_t)at);
        return SN_KAD_REFRESHED;
    }
    if (b->n < t->k) {
        if (bucket_reserve(t, b) != 0)
            return SOVA_ERR_NOMEM;
        uncache(t, b, id);
        fill_entry(&b->e[b->n++], id, addrs, n_addrs, now_ms);
        t->size++;
        return SN_KAD_ADDED;
    }
    /* Full: a failed entry gives way to the newcomer, else the cache. */
    for (size_t j = 0; j < b->n; j++) {
        if (b->e[j].failures >= t->max_failures) {
            uncache(t, b, id);
            remove_at(b->e, &b->n, j);
            fill_entry(&b->e[b->n++], id, addrs, n_addrs, now_ms);
            b->overflowed = true;
            return SN_KAD_ADDED;
        }
    }
    return cache_put(t, b, id, addrs, n_addrs, now_ms);
}

int sn_kad_failed(struct sn_kad *t, const uint8_t id[SN_KAD_ID_LEN])
{
    unsigned i = sn_kad_cpl(t->self, id);
    if (i >= t->n_b)
        return 0;
    struct sn_kad_bucket *b = &t->b[i];
    uncache(t, b, id);
    int at = find_in(b->e, b->n, id);
    if (at < 0)
        return 0;
    struct sn_kad_entry *e = &b->e[at];
    if (e->failures < 255)
        e->failures++;
    if (e->failures < t->max_failures || b->n_cache == 0)
        return 0;
    /* Replaced by the newest cached entry, which goes to the tail. */
    remove_at(b->e, &b->n, (size_t)at);
    b->e[b->n++] = b->cache[b->n_cache - 1];
    b->n_cache--;
    t->cached--;
    return 1;
}

/* ---- closest and owners --------------------------------------------------------- */
/* Insert id into the sorted out[0..*n) of at most max, closest first. */
static void sorted_put(const uint8_t target[SN_KAD_ID_LEN], const uint8_t id[SN_KAD_ID_LEN],
                       uint8_t (*out)[SN_KAD_ID_LEN], size_t *n, size_t max)
{
    size_t at = *n;
    while (at > 0 && sn_kad_cmp_distance(target, id, out[at - 1]) < 0)
        at--;
    if (at >= max)
        return;
    size_t keep = *n < max ? *n : max - 1;
    memmove(&out[at + 1], &out[at], (keep - at) * SN_KAD_ID_LEN);
    memcpy(out[at], id, SN_KAD_ID_LEN);
    if (*n < max)
        (*n)++;
}

size_t sn_kad_closest(const struct sn_kad *t, const uint8_t target[SN_KAD_ID_LEN], size_t n,
                      bool include_self, uint8_t (*out)[SN_KAD_ID_LEN])
{
    size_t got = 0;
    if (n == 0)
        return 0;
    if (include_self)
        sorted_put(target, t->self, out, &got, n);
    for (unsigned i = 0; i < t->n_b; i++) {
        const struct sn_kad_bucket *b = &t->b[i];
        for (size_t j = 0; j < b->n; j++)
            if (b->e[j].failures < t->max_failures)
                sorted_put(target, b->e[j].id, out, &got, n);
    }
    return got;
}

static bool bucket_complete(const struct sn_kad *t, unsigned i)
{
    if (i >= t->n_b)
        return true; /* never heard of anyone there */
    return !t->b[i].overflowed && t->b[i].n < t->k;
}

size_t sn_kad_owners(const struct sn_kad *t, const uint8_t key[SN_KAD_ID_LEN], size_t r,
                     uint8_t (*out)[SN_KAD_ID_LEN])
{
    if (r == 0)
        return 0;
    for (unsigned i = 0; i < t->n_b; i++)
        if (!bucket_complete(t, i))
            return 0;
    return sn_kad_closest(t, key, r, true, out);
}

/* ---- the lookup ----------------------------------------------------------------- */
enum cand_state { CAND_NEW, CAND_ASKED, CAND_ANSWERED, CAND_FAILED };

struct cand {
    uint8_t id[SN_KAD_ID_LEN];
    uint8_t state;
};

struct sn_kad_lookup {
    uint8_t target[SN_KAD_ID_LEN], self[SN_KAD_ID_LEN];
    unsigned alpha, k, in_flight;
    struct cand c[SN_KAD_LOOKUP_MAX_CANDIDATES]; /* closest first */
    size_t n;
    struct sn_kad_lookup_stats stats;
};

/* Add id as a new candidate (kept sorted; the farthest fall off). */
static void cand_add(struct sn_kad_lookup *l, const uint8_t id[SN_KAD_ID_LEN], uint8_t state)
{
    size_t at = l->n;
    while (at > 0) {
        int cmp = sn_kad_cmp_distance(l->target, id, l->c[at - 1].id);
        if (cmp == 0)
            return; /* known */
        if (cmp > 0)
            break;
        at--;
    }
    if (at >= SN_KAD_LOOKUP_MAX_CANDIDATES)
        return;
    size_t keep = l->n < SN_KAD_LOOKUP_MAX_CANDIDATES ? l->n : SN_KAD_LOOKUP_MAX_CANDIDATES - 1;
    if (keep < l->n && l->c[keep].state == CAND_ASKED)
        l->in_flight--; /* an asked candidate falls off: its answer no longer matters */
    memmove(&l->c[at + 1], &l->c[at], (keep - at) * sizeof(l->c[0]));
    memcpy(l->c[at].id, id, SN_KAD_ID_LEN);
    l->c[at].state = state;
    if (l->n < SN_KAD_LOOKUP_MAX_CANDIDATES)
        l->n++;
}

static struct cand *cand_find(struct sn_kad_lookup *l, const uint8_t id[SN_KAD_ID_LEN])
{
    for (size_t i = 0; i < l->n; i++)
        if (memcmp(l->c[i].id, id, SN_KAD_ID_LEN) == 0)
            return &l->c[i];
    return NULL;
}

struct sn_kad_lookup *sn_kad_lookup_start(const struct sn_kad *t,
                                          const uint8_t target[SN_KAD_ID_LEN], unsigned alpha,
                                          unsigned k)
{
    struct sn_kad_lookup *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    memcpy(l->target, target, SN_KAD_ID_LEN);
    memcpy(l->self, t->self, SN_KAD_ID_LEN);
    l->alpha = clamp_or(alpha, SN_KAD_ALPHA_DEFAULT, 1, SN_KAD_ALPHA_MAX);
    l->k = clamp_or(k, t->k, 1, SN_KAD_K_MAX);
    uint8_t seeds[SN_KAD_K_MAX][SN_KAD_ID_LEN];
    size_t n = sn_kad_closest(t, target, l->k, false, seeds);
    cand_add(l, t->self, CAND_ANSWERED); /* we know our own table */
    for (size_t i = 0; i < n; i++)
        cand_add(l, seeds[i], CAND_NEW);
    return l;
}

void sn_kad_lookup_free_(struct sn_kad_lookup *l)
{
    free(l);
}

bool sn_kad_lookup_next(struct sn_kad_lookup *l, uint8_t id[SN_KAD_ID_LEN])
{
    if (l->in_flight >= l->alpha)
        return false;
    unsigned live = 0;
    for (size_t i = 0; i < l->n && live < l->k; i++) {
        struct cand *c = &l->c[i];
        if (c->state == CAND_FAILED)
            continue;
        live++;
        if (c->state != CAND_NEW)
            continue;
        if (l->in_flight == 0)
            l->stats.rounds++;
        c->state = CAND_ASKED;
        l->in_flight++;
        l->stats.queries++;
        memcpy(id, c->id, SN_KAD_ID_LEN);
        return true;
    }
    return false;
}

void sn_kad_lookup_answer(struct sn_kad_lookup *l, const uint8_t from[SN_KAD_ID_LEN],
                          const uint8_t (*ids)[SN_KAD_ID_LEN], size_t n)
{
    struct cand *c = cand_find(l, from);
    if (c == NULL || c->state == CAND_NEW || c->state == CAND_ANSWERED)
        return;
    if (c->state == CAND_ASKED)
        l->in_flight--;
    c->state = CAND_ANSWERED;
    l->stats.answers++;
    for (size_t i = 0; i < n; i++)
        if (memcmp(ids[i], l->self, SN_KAD_ID_LEN) != 0)
            cand_add(l, ids[i], CAND_NEW);
}

void sn_kad_lookup_failed(struct sn_kad_lookup *l, const uint8_t from[SN_KAD_ID_LEN])
{
    struct cand *c = cand_find(l, from);
    if (c == NULL || c->state != CAND_ASKED)
        return;
    l->in_flight--;
    c->state = CAND_FAILED;
    l->stats.failures++;
}

bool sn_kad_lookup_done(const struct sn_kad_lookup *l, uint8_t (*out)[SN_KAD_ID_LEN], size_t max,
                        size_t *n_out)
{
    unsigned live = 0;
    size_t got = 0;
    for (size_t i = 0; i < l->n && live < l->k; i++) {
        const struct cand *c = &l->c[i];
        if (c->state == CAND_FAILED)
            continue;
        live++;
        if (c->state != CAND_ANSWERED)
            return false;
        if (got < max)
            memcpy(out[got++], c->id, SN_KAD_ID_LEN);
    }
    if (n_out)
        *n_out = got;
    return true;
}

void sn_kad_lookup_stats(const struct sn_kad_lookup *l, struct sn_kad_lookup_stats *out)
{
    *out = l->stats;
}
