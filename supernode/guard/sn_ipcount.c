/* sn_ipcount.c - connections per source address (sn_ipcount.h). */
#include "sn_ipcount.h"

#include <stdlib.h>
#include <string.h>

struct key {
    uint8_t family;
    uint8_t ip[8]; /* IPv4: 4 bytes; IPv6: the /64 */
};

struct entry {
    struct key k;
    unsigned count;
};

struct sn_ipcount {
    struct sn_hashtab table;
    uint8_t hkey[SN_HASHTAB_KEYLEN];
    struct entry *entries;
    size_t n, cap;
};

static struct key key_of(const struct wire_addr *a)
{
    struct key k = {.family = a->family};
    memcpy(k.ip, a->ip, a->family == WIRE_ADDR_IPV4 ? 4 : 8);
    return k;
}

static uint32_t hash_of(const struct sn_ipcount *t, const struct key *k)
{
    return (uint32_t)sn_hashtab_siphash(t->hkey, k, sizeof(*k));
}

static bool eq(const void *ctx, uint32_t id, const void *key)
{
    const struct sn_ipcount *t = ctx;
    return memcmp(&t->entries[id].k, key, sizeof(struct key)) == 0;
}

struct sn_ipcount *sn_ipcount_new(const uint8_t key[SN_HASHTAB_KEYLEN])
{
    struct sn_ipcount *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    memcpy(t->hkey, key, SN_HASHTAB_KEYLEN);
    sn_hashtab_init(&t->table);
    return t;
}

void sn_ipcount_free(struct sn_ipcount *t)
{
    if (t == NULL)
        return;
    sn_hashtab_free(&t->table);
    free(t->entries);
    free(t);
}

bool sn_ipcount_add(struct sn_ipcount *t, const struct wire_addr *a, unsigned max)
{
    struct key k = key_of(a);
    uint32_t h = hash_of(t, &k);
    uint32_t id = sn_hashtab_find(&t->table, h, eq, t, &k);
    if (id != SN_HASHTAB_NONE) {
        if (max != 0 && t->entries[id].count >= max)
            return false;
        t->entries[id].count++;
        return true;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        struct entry *e = realloc(t->entries, cap * sizeof(*e));
        if (e == NULL)
            return false;
        t->entries = e;
        t->cap = cap;
    }
    if (sn_hashtab_insert(&t->table, h, (uint32_t)t->n) != 0)
        return false;
    t->entries[t->n] = (struct entry){.k = k, .count = 1};
    t->n++;
    return true;
}

void sn_ipcount_del(struct sn_ipcount *t, const struct wire_addr *a)
{
    struct key k = key_of(a);
    uint32_t h = hash_of(t, &k);
    uint32_t id = sn_hashtab_find(&t->table, h, eq, t, &k);
    if (id == SN_HASHTAB_NONE || --t->entries[id].count > 0)
        return;
    sn_hashtab_remove(&t->table, h, id);
    size_t last = t->n - 1;
    if (id != last) {
        sn_hashtab_replace(&t->table, hash_of(t, &t->entries[last].k), (uint32_t)last, id);
        t->entries[id] = t->entries[last];
    }
    t->n--;
}

unsigned sn_ipcount_get(const struct sn_ipcount *t, const struct wire_addr *a)
{
    struct key k = key_of(a);
    uint32_t id = sn_hashtab_find(&t->table, hash_of(t, &k), eq, t, &k);
    return id == SN_HASHTAB_NONE ? 0 : t->entries[id].count;
}

size_t sn_ipcount_addresses(const struct sn_ipcount *t)
{
    return t->n;
}
