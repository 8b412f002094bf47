/* test_sn_kad.c - Kademlia routing (supernode/federation/sn_kad.h): bucket
 * placement by shared prefix, the replacement cache of a full bucket,
 * failed entries replaced, closest() against brute force, the owners known
 * without a lookup only when the table is sure, and the iterative lookup
 * converging to the true closest on a network of 2,000 tables, with and
 * without dead nodes, the same way every time. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sn_kad.h"

#define ID SN_KAD_ID_LEN

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void random_id(uint64_t *s, uint8_t id[ID])
{
    for (int i = 0; i < ID; i += 8) {
        uint64_t v = rng_next(s);
        memcpy(id + i, &v, 8);
    }
}

/* A random ID sharing exactly `prefix` bits with self. */
static void id_in_bucket(uint64_t *s, const uint8_t self[ID], unsigned prefix, uint8_t id[ID])
{
    random_id(s, id);
    for (unsigned bit = 0; bit <= prefix; bit++) {
        uint8_t mask = (uint8_t)(0x80 >> (bit % 8));
        uint8_t want = self[bit / 8] & mask;
        if (bit == prefix)
            want ^= mask;
        id[bit / 8] = (uint8_t)((id[bit / 8] & ~mask) | want);
    }
}

static void test_bucket_placement(void)
{
    uint64_t s = 1;
    uint8_t self[ID], id[ID];
    random_id(&s, self);
    struct sn_kad *t = sn_kad_new(self, NULL);
    CU_ASSERT_FATAL(t != NULL);
    CU_ASSERT_EQUAL(sn_kad_seen(t, self, NULL, 0, 1), SN_KAD_SELF);
    CU_ASSERT_EQUAL(sn_kad_cpl(self, self), SN_KAD_BUCKETS);
    unsigned prefixes[] = {0, 1, 7, 8, 13, 100, 255};
    for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
        id_in_bucket(&s, self, prefixes[p], id);
        CU_ASSERT_EQUAL(sn_kad_cpl(self, id), prefixes[p]);
        struct wire_addr a = {.family = WIRE_ADDR_IPV4, .ip = {192, 0, 2, 1}, .port = 7070};
        CU_ASSERT_EQUAL(sn_kad_seen(t, id, &a, 1, 10), SN_KAD_ADDED);
        const struct sn_kad_entry *e;
        size_t cached;
        size_t n = sn_kad_bucket(t, prefixes[p], &e, &cached);
        CU_ASSERT_EQUAL(n, 1);
        CU_ASSERT(n == 1 && memcmp(e[0].id, id, ID) == 0 && e[0].n_addrs == 1 &&
                  e[0].addrs[0].port == 7070);
        CU_ASSERT_PTR_EQUAL(sn_kad_find(t, id), e);
    }
    CU_ASSERT_EQUAL(sn_kad_size(t), sizeof(prefixes) / sizeof(prefixes[0]));
    sn_kad_free(t);
    CU_ASSERT_PTR_NULL(t);
}

static void test_full_bucket_cache(void)
{
    uint64_t s = 2;
    uint8_t self[ID], ids[8][ID];
    random_id(&s, self);
    struct sn_kad_config cfg = {.k = 4, .replacements = 2, .max_failures = 2};
    struct sn_kad *t = sn_kad_new(self, &cfg);
    CU_ASSERT_FATAL(t != NULL);
    for (int i = 0; i < 8; i++)
        id_in_bucket(&s, self, 0, ids[i]);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(sn_kad_seen(t, ids[i], NULL, 0, (uint64_t)i), SN_KAD_ADDED);
    /* Full: the long-lived stay, the newcomers wait in the cache (newest 2). */
    for (int i = 4; i < 7; i++)
        CU_ASSERT_EQUAL(sn_kad_seen(t, ids[i], NULL, 0, 10), SN_KAD_CACHED);
    CU_ASSERT_EQUAL(sn_kad_size(t), 4);
    CU_ASSERT_EQUAL(sn_kad_cached(t), 2);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_PTR_NOT_NULL(sn_kad_find(t, ids[i]));
    CU_ASSERT_PTR_NULL(sn_kad_find(t, ids[4]));
    /* A known entry seen again goes to the tail (least recently seen first). */
    CU_ASSERT_EQUAL(sn_kad_seen(t, ids[0], NULL, 0, 20), SN_KAD_REFRESHED);
    const struct sn_kad_entry *e;
    size_t cached;
    CU_ASSERT_EQUAL(sn_kad_bucket(t, 0, &e, &cached), 4);
    CU_ASSERT_EQUAL(cached, 2);
    CU_ASSERT(memcmp(e[0].id, ids[1], ID) == 0 && memcmp(e[3].id, ids[0], ID) == 0);
    CU_ASSERT_EQUAL(e[3].last_seen_ms, 20);
    /* The cache kept the newest two: failures bring in ids[6], then ids[5]. */
    sn_kad_failed(t, ids[1]);
    CU_ASSERT_EQUAL(sn_kad_failed(t, ids[1]), 1);
    CU_ASSERT_PTR_NOT_NULL(sn_kad_find(t, ids[6]));
    sn_kad_failed(t, ids[2]);
    CU_ASSERT_EQUAL(sn_kad_failed(t, ids[2]), 1);
    CU_ASSERT_PTR_NOT_NULL(sn_kad_find(t, ids[5]));
    CU_ASSERT_PTR_NULL(sn_kad_find(t, ids[4]));
    CU_ASSERT_EQUAL(sn_kad_cached(t), 0);
    /* A full bucket is no longer sure to hold its whole range. */
    uint8_t key[ID], out[3][ID];
    memcpy(key, ids[5], ID);
    CU_ASSERT_EQUAL(sn_kad_owners(t, key, 3, out), 0);
    sn_kad_free(t);
}

static void test_failure_replacement(void)
{
    uint64_t s = 3;
    uint8_t self[ID], ids[8][ID];
    random_id(&s, self);
    struct sn_kad_config cfg = {.k = 4, .replacements = 2, .max_failures = 2};
    struct sn_kad *t = sn_kad_new(self, &cfg);
    CU_ASSERT_FATAL(t != NULL);
    for (int i = 0; i < 8; i++)
        id_in_bucket(&s, self, 3, ids[i]);
    for (int i = 0; i < 6; i++)
        sn_kad_seen(t, ids[i], NULL, 0, (uint64_t)i);
    /* One failure is not enough; the second replaces it by the newest cached. */
    CU_ASSERT_EQUAL(sn_kad_failed(t, ids[1]), 0);
    CU_ASSERT_PTR_NOT_NULL(sn_kad_find(t, ids[1]));
    CU_ASSERT_EQUAL(sn_kad_failed(t, ids[1]), 1);
    CU_ASSERT_PTR_NULL(sn_kad_find(t, ids[1]));
    CU_ASSERT_PTR_NOT_NULL(sn_kad_find(t, ids[5]));
    CU_ASSERT_EQUAL(sn_kad_size(t), 4);
    CU_ASSERT_EQUAL(sn_kad_cached(t), 1);
    /* Being seen resets the count. */
    CU_ASSERT_EQUAL(sn_kad_failed(t, ids[2]), 0);
    sn_kad_seen(t, ids[2], NULL, 0, 30);
    CU_ASSERT_EQUAL(sn_kad_failed(t, ids[2]), 0);
    CU_ASSERT_PTR_NOT_NULL(sn_kad_find(t, ids[2]));
    /* Empty the cache: ids[4] replaces ids[3]. Then a failed entry stays, out
     * of closest(), until a newcomer takes its place. */
    sn_kad_failed(t, ids[3]);
    CU_ASSERT_EQUAL(sn_kad_failed(t, ids[3]), 1);
    CU_ASSERT_EQUAL(sn_kad_cached(t), 0);
    sn_kad_failed(t, ids[0]);
    CU_ASSERT_EQUAL(sn_kad_failed(t, ids[0]), 0);
    CU_ASSERT_PTR_NOT_NULL(sn_kad_find(t, ids[0]));
    uint8_t out[8][ID];
    size_t n = sn_kad_closest(t, ids[0], 8, false, out);
    CU_ASSERT_EQUAL(n, 3);
    for (size_t i = 0; i < n; i++)
        CU_ASSERT(memcmp(out[i], ids[0], ID) != 0);
    CU_ASSERT_EQUAL(sn_kad_seen(t, ids[7], NULL, 0, 40), SN_KAD_ADDED);
    CU_ASSERT_PTR_NULL(sn_kad_find(t, ids[0]));
    CU_ASSERT_PTR_NOT_NULL(sn_kad_find(t, ids[7]));
    CU_ASSERT_EQUAL(sn_kad_size(t), 4);
    sn_kad_free(t);
}

/* ---- brute force ---------------------------------------------------------- */
static const uint8_t *sort_target;
static int by_distance(const void *a, const void *b)
{
    return sn_kad_cmp_distance(sort_target, a, b);
}

/* The n closest of ids[0..count) to target (skipping dead ones), into out. */
static size_t brute_closest(const uint8_t (*ids)[ID], size_t count, const bool *dead,
                            const uint8_t target[ID], size_t n, uint8_t (*out)[ID])
{
    uint8_t(*all)[ID] = malloc(count * ID);
    size_t m = 0;
    for (size_t i = 0; i < count; i++)
        if (!dead || !dead[i])
            memcpy(all[m++], ids[i], ID);
    sort_target = target;
    qsort(all, m, ID, by_distance);
    size_t got = m < n ? m : n;
    memcpy(out, all, got * ID);
    free(all);
    return got;
}

static void test_closest_brute_force(void)
{
    uint64_t s = 4;
    for (int round = 0; round < 20; round++) {
        uint8_t self[ID];
        random_id(&s, self);
        struct sn_kad *t = sn_kad_new(self, NULL);
        CU_ASSERT_FATAL(t != NULL);
        size_t heard = 50 + (size_t)(rng_next(&s) % 1000);
        for (size_t i = 0; i < heard; i++) {
            uint8_t id[ID];
            random_id(&s, id);
            sn_kad_seen(t, id, NULL, 0, i);
        }
        /* What the table holds, gathered bucket by bucket. */
        uint8_t(*held)[ID] = malloc((sn_kad_size(t) + 1) * ID);
        size_t nh = 0;
        for (unsigned b = 0; b < SN_KAD_BUCKETS; b++) {
            const struct sn_kad_entry *e;
            size_t cached, n = sn_kad_bucket(t, b, &e, &cached);
            for (size_t j = 0; j < n; j++)
                memcpy(held[nh++], e[j].id, ID);
        }
        CU_ASSERT_EQUAL(nh, sn_kad_size(t));
        CU_ASSERT(nh <= heard && nh >= 16);
        for (int q = 0; q < 20; q++) {
            uint8_t target[ID], got[40][ID], want[40][ID];
            random_id(&s, target);
            size_t n = 1 + (size_t)(rng_next(&s) % 40);
            bool with_self = q % 2;
            if (with_self)
                memcpy(held[nh], self, ID);
            size_t ng = sn_kad_closest(t, target, n, with_self, got);
            size_t nw =
                brute_closest((const uint8_t(*)[ID])held, nh + with_self, NULL, target, n, want);
            CU_ASSERT_EQUAL(ng, nw);
            CU_ASSERT(memcmp(got, want, ng * ID) == 0);
            for (size_t j = 1; j < ng; j++)
                CU_ASSERT(sn_kad_cmp_distance(target, got[j - 1], got[j]) < 0);
        }
        free(held);
        sn_kad_free(t);
    }
}

/* ---- a network of tables --------------------------------------------------- */
#define NET_N 2000

struct net {
    uint8_t (*ids)[ID];
    struct sn_kad **t;
    bool *dead;
    size_t n;
};

static int find_node(const struct net *net, const uint8_t id[ID])
{
    /* ids are distinct random bytes: the first 8 are enough to look up */
    for (size_t i = 0; i < net->n; i++)
        if (memcmp(net->ids[i], id, ID) == 0)
            return (int)i;
    return -1;
}

/* Each node hears a random sample of the others and its true closest (what
 * its join lookup would find), in a random order; or everyone. */
static void net_build(struct net *net, size_t n, uint64_t seed, size_t sample, bool everyone)
{
    uint64_t s = seed;
    net->n = n;
    net->ids = malloc(n * ID);
    net->t = calloc(n, sizeof(*net->t));
    net->dead = calloc(n, sizeof(bool));
    for (size_t i = 0; i < n; i++)
        random_id(&s, net->ids[i]);
    for (size_t i = 0; i < n; i++) {
        net->t[i] = sn_kad_new(net->ids[i], NULL);
        CU_ASSERT_FATAL(net->t[i] != NULL);
        if (everyone) {
            size_t start = (size_t)(rng_next(&s) % n);
            for (size_t j = 0; j < n; j++)
                sn_kad_seen(net->t[i], net->ids[(start + j * 7919) % n], NULL, 0, j);
            continue;
        }
        for (size_t j = 0; j < sample; j++)
            sn_kad_seen(net->t[i], net->ids[rng_next(&s) % n], NULL, 0, j);
        uint8_t near[21][ID];
        size_t m = brute_closest((const uint8_t(*)[ID])net->ids, n, NULL, net->ids[i], 21, near);
        for (size_t j = 0; j < m; j++)
            sn_kad_seen(net->t[i], near[j], NULL, 0, sample + j);
    }
}

static void net_free(struct net *net)
{
    for (size_t i = 0; i < net->n; i++)
        sn_kad_free(net->t[i]);
    free(net->t);
    free(net->ids);
    free(net->dead);
}

/* One lookup from node `from`, the queried nodes answering from their own
 * tables; dead ones fail. Returns the result count; adds the queries sent. */
static size_t net_lookup(const struct net *net, size_t from, const uint8_t target[ID],
                         uint8_t (*out)[ID], size_t max, unsigned *queries)
{
    struct sn_kad_lookup *l = sn_kad_lookup_start(net->t[from], target, 3, 16);
    CU_ASSERT_FATAL(l != NULL);
    size_t n = 0;
    for (int guard = 0; guard < 10000 && !sn_kad_lookup_done(l, out, max, &n); guard++) {
        uint8_t ask[SN_KAD_ALPHA_MAX][ID];
        size_t k = 0;
        while (k < SN_KAD_ALPHA_MAX && sn_kad_lookup_next(l, ask[k]))
            k++;
        CU_ASSERT_FATAL(k > 0); /* not done: something must be in flight */
        for (size_t j = 0; j < k; j++) {
            int x = find_node(net, ask[j]);
            CU_ASSERT_FATAL(x >= 0);
            if (net->dead[x]) {
                sn_kad_lookup_failed(l, ask[j]);
                continue;
            }
            uint8_t ans[16][ID];
            size_t na = sn_kad_closest(net->t[x], target, 16, false, ans);
            sn_kad_lookup_answer(l, ask[j], (const uint8_t(*)[ID])ans, na);
        }
    }
    struct sn_kad_lookup_stats st;
    sn_kad_lookup_stats(l, &st);
    *queries += st.queries;
    CU_ASSERT(st.answers + st.failures == st.queries);
    sn_kad_lookup_free(l);
    return n;
}

/* Runs `lookups` lookups; counts exact owners (first 3) and exact k sets;
 * returns a digest of every result. */
static uint64_t run_lookups(struct net *net, uint64_t seed, int lookups, int *owners_ok,
                            int *all_ok, unsigned *queries, bool *saw_dead)
{
    uint64_t s = seed, digest = 1469598103934665603ull;
    *owners_ok = *all_ok = 0;
    *queries = 0;
    *saw_dead = false;
    for (int q = 0; q < lookups; q++) {
        uint8_t target[ID], got[16][ID], want[16][ID];
        random_id(&s, target);
        size_t from;
        do
            from = (size_t)(rng_next(&s) % net->n);
        while (net->dead[from]);
        size_t ng = net_lookup(net, from, target, got, 16, queries);
        size_t nw =
            brute_closest((const uint8_t(*)[ID])net->ids, net->n, net->dead, target, 16, want);
        *owners_ok += ng >= 3 && memcmp(got, want, 3 * ID) == 0;
        *all_ok += ng == nw && memcmp(got, want, ng * ID) == 0;
        for (size_t j = 0; j < ng; j++) {
            int x = find_node(net, got[j]);
            *saw_dead |= x < 0 || net->dead[x];
            for (int b = 0; b < ID; b++)
                digest = (digest ^ got[j][b]) * 1099511628211ull;
        }
    }
    return digest;
}

static void test_lookup_converges(void)
{
    struct net net;
    net_build(&net, NET_N, 5, 150, false);
    int owners_ok, all_ok;
    unsigned queries;
    bool saw_dead;
    run_lookups(&net, 6, 200, &owners_ok, &all_ok, &queries, &saw_dead);
    printf("\n  lookup, %d nodes: owners exact %d/200, k closest exact %d/200, %.1f queries\n",
           NET_N, owners_ok, all_ok, queries / 200.0);
    CU_ASSERT_EQUAL(owners_ok, 200);
    CU_ASSERT(all_ok >= 196);
    CU_ASSERT(queries / 200.0 < 40); /* O(log N): 16 to answer, a few hops */
    net_free(&net);
}

static void test_lookup_with_dead_nodes(void)
{
    struct net net;
    net_build(&net, NET_N, 7, 150, false);
    uint64_t s = 8;
    for (int i = 0; i < NET_N / 10; i++)
        net.dead[rng_next(&s) % NET_N] = true;
    int owners_ok, all_ok;
    unsigned queries;
    bool saw_dead;
    run_lookups(&net, 9, 200, &owners_ok, &all_ok, &queries, &saw_dead);
    printf("  lookup, %d nodes, 10 %% dead: owners exact %d/200, k closest %d/200, %.1f "
           "queries\n",
           NET_N, owners_ok, all_ok, queries / 200.0);
    CU_ASSERT_FALSE(saw_dead);
    CU_ASSERT(owners_ok >= 196);
    /* The whole k: a few miss a live node no table still lists (181 of 200). */
    CU_ASSERT(all_ok >= 170);
    net_free(&net);
}

static void test_lookup_deterministic(void)
{
    uint64_t d[2];
    unsigned q[2];
    for (int run = 0; run < 2; run++) {
        struct net net;
        net_build(&net, 500, 10, 80, false);
        net.dead[3] = net.dead[77] = true;
        int owners_ok, all_ok;
        bool saw_dead;
        d[run] = run_lookups(&net, 11, 100, &owners_ok, &all_ok, &q[run], &saw_dead);
        net_free(&net);
    }
    CU_ASSERT_EQUAL(d[0], d[1]);
    CU_ASSERT_EQUAL(q[0], q[1]);
}

/* owners() answers only when sure, and then right; in a federation of k
 * it always answers. */
static void test_owners_rule(void)
{
    struct net net;
    net_build(&net, 16, 12, 0, true);
    uint64_t s = 13;
    for (int q = 0; q < 300; q++) {
        uint8_t key[ID], got[3][ID], want[3][ID];
        random_id(&s, key);
        size_t from = (size_t)(rng_next(&s) % net.n);
        CU_ASSERT_EQUAL_FATAL(sn_kad_owners(net.t[from], key, 3, got), 3);
        brute_closest((const uint8_t(*)[ID])net.ids, net.n, NULL, key, 3, want);
        CU_ASSERT(memcmp(got, want, sizeof(got)) == 0);
    }
    net_free(&net);

    /* 2,000 supernodes: every table has full buckets, so no key is answered
     * without a lookup, not even one next to our own ID. */
    net_build(&net, NET_N, 14, 0, true);
    int local = 0;
    for (int q = 0; q < 200; q++) {
        uint8_t key[ID], got[3][ID];
        random_id(&s, key);
        size_t from = (size_t)(rng_next(&s) % net.n);
        if (q % 2)
            memcpy(key, net.ids[from], 20);
        local += sn_kad_owners(net.t[from], key, 3, got) > 0;
    }
    CU_ASSERT_EQUAL(local, 0);
    net_free(&net);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("sn_kad", NULL, NULL);
    if (!s)
        return -1;
    CU_add_test(s, "an ID goes to the bucket of its shared prefix", test_bucket_placement);
    CU_add_test(s, "a full bucket keeps its entries, newcomers wait in the cache",
                test_full_bucket_cache);
    CU_add_test(s, "a failed entry is replaced from the cache", test_failure_replacement);
    CU_add_test(s, "closest() equals brute force, sorted", test_closest_brute_force);
    CU_add_test(s, "owners() answers without a lookup only when sure", test_owners_rule);
    CU_add_test(s, "a lookup converges to the true closest (2,000 nodes)", test_lookup_converges);
    CU_add_test(s, "a lookup routes around dead nodes", test_lookup_with_dead_nodes);
    CU_add_test(s, "the same tables and targets give the same lookups", test_lookup_deterministic);
    return CU_get_error() == CUE_SUCCESS ? 0 : -1;
}
