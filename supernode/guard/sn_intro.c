/* sn_intro.c - introductions of peers to sources (sn_intro.h). */
#include "sn_intro.h"
#include "sova_assert.h"

#include <stdlib.h>
#include <string.h>

#define PREFIX 8

struct entry {
    uint8_t peer[PREFIX], source[PREFIX];
    uint8_t files[SN_INTRO_FILES][PREFIX];
    uint8_t n_files, next_file; /* the files kept, and where the next one goes */
    bool any;                   /* introduced for any file (LOCATE, CONNECT, relay) */
    bool live;
    uint64_t any_ms, files_ms[SN_INTRO_FILES];
};

struct sn_intro {
    struct sn_hashtab table; /* (peer, source) -> slot */
    uint8_t key[SN_HASHTAB_KEYLEN];
    struct entry *v; /* a ring of max slots */
    size_t max, n, head;
    struct sn_intro_stats st;
};

struct pair_key {
    const uint8_t *peer, *source;
};

static uint32_t hash_of(const struct sn_intro *t, const uint8_t *peer, const uint8_t *source)
{
    uint8_t buf[2 * PREFIX];
    memcpy(buf, peer, PREFIX);
    memcpy(buf + PREFIX, source, PREFIX);
    return (uint32_t)sn_hashtab_siphash(t->key, buf, sizeof(buf));
}

static bool eq(const void *ctx, uint32_t id, const void *key)
{
    const struct sn_intro *t = ctx;
    const struct pair_key *k = key;
    return memcmp(t->v[id].peer, k->peer, PREFIX) == 0 &&
           memcmp(t->v[id].source, k->source, PREFIX) == 0;
}

static uint32_t find(const struct sn_intro *t, const uint8_t *peer, const uint8_t *source)
{
    struct pair_key k = {peer, source};
    return sn_hashtab_find(&t->table, hash_of(t, peer, source), eq, t, &k);
}

struct sn_intro *sn_intro_new(size_t max, const uint8_t key[SN_HASHTAB_KEYLEN])
{
    struct sn_intro *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->max = max ? max : SN_INTRO_MAX_DEFAULT;
    if (t->max >= SN_HASHTAB_NONE)
        t->max = SN_HASHTAB_NONE - 1;
    t->v = calloc(t->max, sizeof(*t->v));
    if (t->v == NULL) {
        free(t);
        return NULL;
    }
    memcpy(t->key, key, SN_HASHTAB_KEYLEN);
    sn_hashtab_init(&t->table);
    t->st.max = t->max;
    return t;
}

void sn_intro_free(struct sn_intro *t)
{
    if (t == NULL)
        return;
    sn_hashtab_free(&t->table);
    free(t->v);
    free(t);
}

/* A slot for a new pair: the next one of the ring, its old pair evicted. */
static uint32_t take_slot(struct sn_intro *t)
{
    uint32_t slot = (uint32_t)t->head;
    t->head = (t->head + 1) % t->max;
    struct entry *e = &t->v[slot];
    if (e->live) {
        sn_hashtab_remove(&t->table, hash_of(t, e->peer, e->source), slot);
        t->st.evicted++;
        t->n--;
    }
    memset(e, 0, sizeof(*e));
    return slot;
}

void sn_intro_add(struct sn_intro *t, const uint8_t peer[WIRE_ID_LEN],
                  const uint8_t source[WIRE_ID_LEN], const uint8_t *file, uint64_t now_ms)
{
    if (memcmp(peer, source, WIRE_ID_LEN) == 0)
        return;
    uint32_t slot = find(t, peer, source);
    if (slot == SN_HASHTAB_NONE) {
        slot = take_slot(t);
        if (sn_hashtab_insert(&t->table, hash_of(t, peer, source), slot) != 0)
            return; /* out of memory: the slot stays empty */
        struct entry *e = &t->v[slot];
        memcpy(e->peer, peer, PREFIX);
        memcpy(e->source, source, PREFIX);
        e->live = true;
        t->n++;
        SOVA_ASSERT(t->n <= t->max && t->table.count == t->n);
    }
    struct entry *e = &t->v[slot];
    t->st.added++;
    if (file == NULL) {
        e->any = true;
        e->any_ms = now_ms;
        return;
    }
    for (uint8_t i = 0; i < e->n_files; i++) {
        if (memcmp(e->files[i], file, PREFIX) == 0) {
            e->files_ms[i] = now_ms;
            return;
        }
    }
    uint8_t at = e->n_files < SN_INTRO_FILES ? e->n_files++ : e->next_file;
    e->next_file = (uint8_t)((at + 1) % SN_INTRO_FILES);
    memcpy(e->files[at], file, PREFIX);
    e->files_ms[at] = now_ms;
}

static bool recent(uint64_t at_ms, uint64_t now_ms)
{
    return now_ms < at_ms || now_ms - at_ms < SN_INTRO_TTL_MS;
}

bool sn_intro_has(const struct sn_intro *t, const uint8_t peer[WIRE_ID_LEN],
                  const uint8_t source[WIRE_ID_LEN], const uint8_t file[WIRE_HASH_LEN],
                  uint64_t now_ms)
{
    uint32_t slot = find(t, peer, source);
    if (slot == SN_HASHTAB_NONE)
        return false;
    const struct entry *e = &t->v[slot];
    if (e->any && recent(e->any_ms, now_ms))
        return true;
    for (uint8_t i = 0; i < e->n_files; i++)
        if (memcmp(e->files[i], file, PREFIX) == 0 && recent(e->files_ms[i], now_ms))
            return true;
    return false;
}

void sn_intro_stats(const struct sn_intro *t, struct sn_intro_stats *out)
{
    *out = t->st;
    out->entries = t->n;
}
