/* sn_hashtab.c - open-addressing id table and SipHash-2-4 (sn_hashtab.h). */
#include "sn_hashtab.h"
#include "sova_assert.h"

#include "err.h"

#include <stdlib.h>

#define MIN_CAP 16u

/* ---- SipHash-2-4 (Aumasson, Bernstein 2012) ------------------------------ */
#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND(v0, v1, v2, v3)                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL64(v1, 13);                                                                       \
        v1 ^= v0;                                                                                  \
        v0 = ROTL64(v0, 32);                                                                       \
        v2 += v3;                                                                                  \
        v3 = ROTL64(v3, 16);                                                                       \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL64(v3, 21);                                                                       \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL64(v1, 17);                                                                       \
        v1 ^= v2;                                                                                  \
        v2 = ROTL64(v2, 32);                                                                       \
    } while (0)

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

uint64_t sn_hashtab_siphash(const uint8_t key[SN_HASHTAB_KEYLEN], const void *data, size_t len)
{
    const uint8_t *in = data;
    uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    uint64_t v3 = 0x7465646279746573ULL ^ k1;
    size_t whole = len - len % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = load_le64(in + i);
        v3 ^= m;
        SIPROUND(v0, v1, v2, v3);
        SIPROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    uint64_t last = (uint64_t)len << 56;
    for (size_t i = 0; i < len % 8; i++)
        last |= (uint64_t)in[whole + i] << (8 * i);
    v3 ^= last;
    SIPROUND(v0, v1, v2, v3);
    SIPROUND(v0, v1, v2, v3);
    v0 ^= last;
    v2 ^= 0xff;
    for (int i = 0; i < 4; i++)
        SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- the table -------------------------------------------------------------- */
static uint32_t slot_hash(uint64_t s)
{
    return (uint32_t)(s >> 32);
}

static uint32_t slot_id(uint64_t s)
{
    return (uint32_t)s - 1;
}

void sn_hashtab_init(struct sn_hashtab *t)
{
    t->slots = NULL;
    t->cap = 0;
    t->count = 0;
}

void sn_hashtab_free(struct sn_hashtab *t)
{
    free(t->slots);
    sn_hashtab_init(t);
}

static void place(uint64_t *slots, uint32_t cap, uint64_t s)
{
    uint32_t mask = cap - 1;
    uint32_t i = slot_hash(s) & mask;
    while (slots[i] != 0)
        i = (i + 1) & mask;
    slots[i] = s;
}

static int resize(struct sn_hashtab *t, uint32_t cap)
{
    uint64_t *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return SOVA_ERR_NOMEM;
    for (uint32_t i = 0; i < t->cap; i++) {
        if (t->slots[i] != 0)
            place(slots, cap, t->slots[i]);
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

uint32_t sn_hashtab_find(const struct sn_hashtab *t, uint32_t hash, sn_hashtab_eq_fn *eq,
                         const void *ctx, const void *key)
{
    if (t->cap == 0)
        return SN_HASHTAB_NONE;
    uint32_t mask = t->cap - 1;
    /* The load stays below 3/4, so an empty slot ends every probe. */
    for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
        uint64_t s = t->slots[i];
        if (s == 0)
            return SN_HASHTAB_NONE;
        if (slot_hash(s) == hash && eq(ctx, slot_id(s), key))
            return slot_id(s);
    }
}

int sn_hashtab_insert(struct sn_hashtab *t, uint32_t hash, uint32_t id)
{
    if (id == SN_HASHTAB_NONE)
        return SOVA_ERR_INVALID;
    if ((uint64_t)(t->count + 1) * 4 > (uint64_t)t->cap * 3) {
        if (t->cap > UINT32_MAX / 2)
            return SOVA_ERR_NOMEM;
        int rc = resize(t, t->cap ? t->cap * 2 : MIN_CAP);
        if (rc != 0)
            return rc;
    }
    place(t->slots, t->cap, (uint64_t)hash << 32 | (id + 1u));
    t->count++;
    return 0;
}

/* The slot holding (hash, id), or SN_HASHTAB_NONE. */
static uint32_t slot_of(const struct sn_hashtab *t, uint32_t hash, uint32_t id)
{
    if (t->cap == 0)
        return SN_HASHTAB_NONE;
    uint32_t mask = t->cap - 1;
    uint64_t want = (uint64_t)hash << 32 | (id + 1u);
    for (uint32_t i = hash & mask; t->slots[i] != 0; i = (i + 1) & mask) {
        if (t->slots[i] == want)
            return i;
    }
    return SN_HASHTAB_NONE;
}

void sn_hashtab_replace(struct sn_hashtab *t, uint32_t hash, uint32_t old_id, uint32_t new_id)
{
    uint32_t i = slot_of(t, hash, old_id);
    if (i != SN_HASHTAB_NONE)
        t->slots[i] = (uint64_t)hash << 32 | (new_id + 1u);
}

void sn_hashtab_remove(struct sn_hashtab *t, uint32_t hash, uint32_t id)
{
    uint32_t hole = slot_of(t, hash, id);
    if (hole == SN_HASHTAB_NONE)
        return; /* not there: nothing to do */
    uint32_t mask = t->cap - 1;
    /* Backward shift: pull later entries of the cluster into the hole when
     * their home slot is not between the hole and where they sit. */
    for (uint32_t j = (hole + 1) & mask; t->slots[j] != 0; j = (j + 1) & mask) {
        uint32_t home = slot_hash(t->slots[j]) & mask;
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            t->slots[hole] = t->slots[j];
            hole = j;
        }
    }
    t->slots[hole] = 0;
    SOVA_ASSERT(t->count > 0); /* the entry was found */
    t->count--;
    /* Give memory back after a mass removal (a big peer leaving); failing
     * to shrink only keeps the larger array. */
    if (t->cap > MIN_CAP && t->count < t->cap / 8)
        (void)resize(t, t->cap / 2);
}

uint32_t sn_hashtab_next(const struct sn_hashtab *t, uint32_t *pos)
{
    while (*pos < t->cap) {
        uint64_t s = t->slots[(*pos)++];
        if (s != 0)
            return slot_id(s);
    }
    return SN_HASHTAB_NONE;
}

size_t sn_hashtab_bytes(const struct sn_hashtab *t)
{
    return (size_t)t->cap * sizeof(uint64_t);
}
