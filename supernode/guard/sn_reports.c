/* sn_reports.c - reports about lying or refusing sources (sn_reports.h). */
#include "sn_reports.h"
#include "msg.h"

#include <stdlib.h>
#include <string.h>

struct entry {
    uint8_t peer[WIRE_ID_LEN];
    uint8_t reporters[SN_REPORTS_REPORTERS][8]; /* ID prefixes: who said what */
    uint8_t reasons[SN_REPORTS_REPORTERS];
    uint8_t n;
    uint8_t bad, refused; /* distinct reporters per reason */
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
                    const uint8_t reporter[WIRE_ID_LEN], uint8_t reason, uint64_t now_ms)
{
    r->stats.received++;
    if (memcmp(peer, reporter, WIRE_ID_LEN) == 0 ||
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
    for (uint8_t i = 0; i < e->n; i++)
        if (e->reasons[i] == reason && memcmp(e->reporters[i], reporter, 8) == 0)
            return false; /* said that already */
    if (e->n == SN_REPORTS_REPORTERS)
        return false;
    memcpy(e->reporters[e->n], reporter, 8);
    e->reasons[e->n++] = reason;
    if (reason == MSG_REPORT_BAD_DATA)
        e->bad++;
    else
        e->refused++;
    r->stats.counted++;
    return true;
}

unsigned sn_reports_score(const struct sn_reports *r, const uint8_t peer[WIRE_ID_LEN])
{
    if (r->n == 0)
        return 0;
    uint32_t id = find(r, peer);
    return id == SN_HASHTAB_NONE ? 0 : 2u * r->entries[id].bad + r->entries[id].refused;
}

void sn_reports_stats(const struct sn_reports *r, struct sn_reports_stats *out)
{
    *out = r->stats;
    out->peers = r->n;
}
