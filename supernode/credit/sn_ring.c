/* sn_ring.c - rendezvous placement of ledger records (sn_ring.h). */
#include "sn_ring.h"
#include "sova_assert.h"

#include <stdbool.h>
#include <string.h>

/* splitmix64's finalizer: a bijection that spreads every input bit. */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    x ^= x >> 31;
    return x;
}

static uint64_t load_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

uint64_t sn_ring_score(const uint8_t key[SN_RING_ID_LEN], const uint8_t member[SN_RING_ID_LEN])
{
    uint64_t h = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < SN_RING_ID_LEN; i += 8)
        h = mix(h ^ load_be64(key + i));
    for (int i = 0; i < SN_RING_ID_LEN; i += 8)
        h = mix(h ^ load_be64(member + i));
    return h;
}

/* Does member a (score sa) rank before member b (score sb)? */
static bool before(uint64_t sa, const uint8_t *a, uint64_t sb, const uint8_t *b)
{
    return sa != sb ? sa > sb : memcmp(a, b, SN_RING_ID_LEN) < 0;
}

size_t sn_ring_holders(const uint8_t key[SN_RING_ID_LEN], const uint8_t (*members)[SN_RING_ID_LEN],
                       size_t n, unsigned r, size_t out[SN_RING_MAX_REPLICAS])
{
    uint64_t score[SN_RING_MAX_REPLICAS];
    size_t want = r < SN_RING_MAX_REPLICAS ? r : SN_RING_MAX_REPLICAS, k = 0;
    /* want is 0 exactly when r is 0 (cppcheck 2.10 thinks it always is) */
    // cppcheck-suppress knownConditionTrueFalse
    if (want == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t s = sn_ring_score(key, members[i]);
        /* Insertion into the best `want` so far, kept sorted. */
        size_t at = k;
        while (at > 0 && before(s, members[i], score[at - 1], members[out[at - 1]]))
            at--;
        if (at >= want)
            continue;
        size_t last = k < want ? k : want - 1;
        for (size_t j = last; j > at; j--) {
            score[j] = score[j - 1];
            out[j] = out[j - 1];
        }
        score[at] = s;
        out[at] = i;
        if (k < want)
            k++;
    }
    SOVA_ASSERT(k <= want && k <= n); /* at most R holders, each a member */
    return k;
}

int sn_ring_rank(const uint8_t key[SN_RING_ID_LEN], const uint8_t (*members)[SN_RING_ID_LEN],
                 size_t n, unsigned r, size_t i)
{
    size_t idx[SN_RING_MAX_REPLICAS];
    size_t k = sn_ring_holders(key, members, n, r, idx);
    for (size_t j = 0; j < k; j++)
        if (idx[j] == i)
            return (int)j;
    return -1;
}
