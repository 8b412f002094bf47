/* sn_reports.c - reports about lying or refusing sources (sn_reports.h). */
#include "sn_reports.h"
#include "msg.h"

#include <stdlib.h>
#include <string.h>

struct entry {
    uint8_t peer[WIRE_ID_LEN];
    uint8_t reporters[SN_REPORTS_REPORTERS][8]; /* ID prefixes: who said what */
    uint8_t reasons[SN_REPORTS_REPORTERS];
    uint16_t weights[SN_REPORTS_REPORTERS]; /* permille */
    uint8_t n;
    uint64_t last_ms;
};

struct sn_reports {
    struct sn_hashtab table;
    uint8_t key[SN_HASHTAB_KEYLEN];
    struct entry *entries;
    size_t n, cap;
    struct sn_reports_stats stats;
};

static uint32_t hash_of(const struct sn_reports *r, const uint8_t peer[WIRE_ID_LEN])
{
    return (uint32_t)sn_hashtab_siphash(r->key, peer, WIRE_ID_LEN);
}

static bool eq(const void *ctx, uint32_t id, const void *key)
{
    const struct sn_reports *r = ctx;
    return memcmp(r->entries[id].peer, key, WIRE_ID_LEN) == 0;
}

static uint32_t find(const struct sn_reports *r, const uint8_t peer[WIRE_ID_LEN])
{
    return sn_hashtab_find(&r->table, hash_of(r, peer), eq, r, peer);
}

struct sn_reports *sn_reports_new(size_t max_peers, const uint8_t key[SN_HASHTAB_KEYLEN])
{
    struct sn_reports *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->cap = max_peers ? max_peers : SN_REPORTS_MAX_PEERS;
    memcpy(r->key, key, SN_HASHTAB_KEYLEN);
    sn_hashtab_init(&r->table);
    return r;
}

void sn_reports_free(struct sn_reports *r)
{
    if (r == NULL)
        return;
    sn_hashtab_free(&r->table);
    free(r->entries);
    free(r);
}

/* Room for one more entry: grow the array, or give up the least recently
 * reported peer (moving the last entry into its place). */
static bool make_room(struct sn_reports *r)
{
    if (r->n < r->cap) {
        if (r->n % 256 == 0) {
            struct entry *e = realloc(r->entries, (r->n + 256) * sizeof(*e));
            if (e == NULL)
                return false;
            r->entries = e;
        }
        return true;
    }
    size_t old = 0;
    for (size_t i = 1; i < r->n; i++)
        if (r->entries[i].last_ms < r->entries[old].last_ms)
            old = i;
    sn_hashtab_remove(&r->table, hash_of(r, r->entries[old].peer), (uint32_t)old);
    size_t last = r->n - 1;
    if (old != last) {
        sn_hashtab_replace(&r->table, hash_of(r, r->entries[last].peer), (uint32_t)last,
                           (uint32_t)old);
        r->entries[old] = r->entries[last];
    }
    r->n--;
    return true;
}

bool sn_reports_add(struct sn_reports *r, const uint8_t peer[WIRE_ID_LEN],
                    const uint8_t reporter[WIRE_ID_LEN], uint8_t reason, unsigned weight,
                    uint64_t now_ms)
{
    r->stats.received++;
    if (weight > SN_REPORTS_WEIGHT_FULL)
        weight = SN_REPORTS_WEIGHT_FULL;
    if (memcmp(peer, reporter, WIRE_ID_LEN) == 0 || weight == 0 ||
        (reason != MSG_REPORT_BAD_DATA && reason != MSG_REPORT_REFUSED))
        return false;
    uint32_t id = find(r, peer);
    if (id == SN_HASHTAB_NONE) {
        if (!make_room(r) || sn_hashtab_insert(&r->table, hash_of(r, peer), (uint32_t)r->n) != 0)
            return false;
        id = (uint32_t)r->n++;
        memset(&r->entries[id], 0, sizeof(r->entries[id]));
        memcpy(r->entries[id].peer, peer, WIRE_ID_LEN);
    }
    struct entry *e = &r->entries[id];
    e->last_ms = now_ms;
    for (uint8_t i = 0; i < e->n; i++) {
        if (e->reasons[i] == reason && memcmp(e->reporters[i], reporter, 8) == 0) {
            if (weight <= e->weights[i])
                return false;                 /* said that already */
            e->weights[i] = (uint16_t)weight; /* the same reporter, worth more now */
            r->stats.counted++;
            return true;
        }
    }
    uint8_t at = e->n;
    if (e->n == SN_REPORTS_REPORTERS) {
        at = 0; /* full: the lightest report gives way to a heavier one */
        for (uint8_t i = 1; i < e->n; i++)
            if (e->weights[i] < e->weights[at])
                at = i;
        if (e->weights[at] >= weight)
            return false;
    } else {
        e->n++;
    }
    memcpy(e->reporters[at], reporter, 8);
    e->reasons[at] = reason;
    e->weights[at] = (uint16_t)weight;
    r->stats.counted++;
    return true;
}

static const struct entry *entry_of(const struct sn_reports *r, const uint8_t peer[WIRE_ID_LEN])
{
    if (r->n == 0)
        return NULL;
    uint32_t id = find(r, peer);
    return id == SN_HASHTAB_NONE ? NULL : &r->entries[id];
}

unsigned sn_reports_score(const struct sn_reports *r, const uint8_t peer[WIRE_ID_LEN])
{
    const struct entry *e = entry_of(r, peer);
    unsigned score = 0;
    for (uint8_t i = 0; e && i < e->n; i++)
        score += (e->reasons[i] == MSG_REPORT_BAD_DATA ? 2u : 1u) * e->weights[i];
    return score; /* at most 8 x 2 x 1000 */
}

unsigned sn_reports_rank(const struct sn_reports *r, const uint8_t peer[WIRE_ID_LEN])
{
    unsigned score = sn_reports_score(r, peer);
    return score >= SN_REPORTS_RANK_MIN ? score : 0;
}

bool sn_reports_dropped(const struct sn_reports *r, const uint8_t peer[WIRE_ID_LEN])
{
    const struct entry *e = entry_of(r, peer);
    unsigned bad = 0;
    for (uint8_t i = 0; e && i < e->n; i++)
        if (e->reasons[i] == MSG_REPORT_BAD_DATA)
            bad += e->weights[i];
    return bad >= SN_REPORTS_DROP_WEIGHT;
}

void sn_reports_stats(const struct sn_reports *r, struct sn_reports_stats *out)
{
    *out = r->stats;
    out->peers = r->n;
}
