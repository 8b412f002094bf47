/* test_sn_credit_place.c - where credit records live and what moves
 * (supernode/credit/sn_credit_place.h): a view is sorted and distinct, a
 * pass is needed only when the view changed or a supernode linked up, a
 * holder that had a record is not sent it again unless it linked up since,
 * a supernode that no longer holds a record hands it to all its holders and
 * drops it, and after any join or leave every record reaches every one of
 * its new holders from at least one old holder. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <string.h>

#include "sn_credit_place.h"

#define N    8
#define R    3
#define KEYS 2000

static uint8_t ids[N + 1][SN_RING_ID_LEN];

static void fill_id(uint8_t id[SN_RING_ID_LEN], uint64_t seed)
{
    for (int i = 0; i < SN_RING_ID_LEN; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        id[i] = (uint8_t)(seed >> 56);
    }
}

static int suite_init(void)
{
    for (int i = 0; i <= N; i++)
        fill_id(ids[i], 77 + (uint64_t)i);
    return 0;
}

/* The view of supernode `self` over members[0..n) (self among them or not). */
static void view_of(struct credit_view *v, int self, const int *members, size_t n)
{
    uint8_t m[N + 1][SN_RING_ID_LEN];
    for (size_t i = 0; i < n; i++)
        memcpy(m[i], ids[members[i]], SN_RING_ID_LEN);
    CU_ASSERT_EQUAL_FATAL(credit_view_make(v, ids[self], (const uint8_t(*)[SN_RING_ID_LEN])m, n),
                          0);
}

static bool holds(const struct credit_view *v, const uint8_t *key, const uint8_t *id)
{
    const uint8_t *h[SN_RING_MAX_REPLICAS];
    size_t n = credit_view_holders(v, key, R, h);
    for (size_t i = 0; i < n; i++)
        if (memcmp(h[i], id, SN_RING_ID_LEN) == 0)
            return true;
    return false;
}

static void test_view(void)
{
    struct credit_view a, b;
    int members[] = {3, 1, 2, 1, 0}; /* self (0) and a duplicate among them */
    view_of(&a, 0, members, 5);
    CU_ASSERT_EQUAL(a.n, 4);
    for (size_t i = 1; i < a.n; i++)
        CU_ASSERT(memcmp(a.ids[i - 1], a.ids[i], SN_RING_ID_LEN) < 0);
    int same[] = {1, 2, 3};
    view_of(&b, 0, same, 3);
    CU_ASSERT(credit_view_equal(&a, &b));
    credit_view_clear(&b);
    int other[] = {1, 2, 4};
    view_of(&b, 0, other, 3);
    CU_ASSERT(!credit_view_equal(&a, &b));
    credit_view_clear(&a);
    credit_view_clear(&b);
}

static void test_needed(void)
{
    struct credit_view a, b;
    int m[] = {1, 2, 3};
    view_of(&a, 0, m, 3);
    view_of(&b, 0, m, 3);
    struct credit_placement pl = {.self = ids[0], .replicas = R, .old = &a, .now = &b};
    CU_ASSERT(!credit_place_needed(&pl));
    pl.fresh = (const uint8_t(*)[SN_RING_ID_LEN])ids[2];
    pl.n_fresh = 1;
    CU_ASSERT(credit_place_needed(&pl));
    pl.n_fresh = 0;
    pl.old = NULL;
    CU_ASSERT(credit_place_needed(&pl));
    credit_view_clear(&a);
    credit_view_clear(&b);
}

/* Every supernode of `before` runs its pass over the records it holds; each
 * record must end up pushed to each of its holders under `after` that did
 * not hold it before, every supernode that no longer holds a record drops
 * it, and nobody pushes to a holder that had it (no fresh links). */
static void check_move(const int *before, size_t nb, const int *after, size_t na)
{
    uint8_t key[SN_RING_ID_LEN];
    size_t pushes = 0, needed = 0;
    for (uint64_t k = 0; k < KEYS; k++) {
        fill_id(key, 5000 + k);
        bool got[N + 1] = {false}, had[N + 1] = {false};
        for (size_t i = 0; i < nb; i++) {
            int self = before[i];
            bool alive = false;
            for (size_t j = 0; j < na; j++)
                alive |= after[j] == self;
            struct credit_view old, now;
            view_of(&old, self, before, nb);
            if (!holds(&old, key, ids[self]) || !alive) {
                credit_view_clear(&old);
                continue; /* no record here, or this supernode is gone */
            }
            had[self] = true;
            view_of(&now, self, after, na);
            struct credit_placement pl = {
                .self = ids[self], .replicas = R, .old = &old, .now = &now};
            struct credit_place_plan plan;
            credit_place_plan(&pl, key, &plan);
            CU_ASSERT_EQUAL(plan.keep, holds(&now, key, ids[self]));
            for (size_t p = 0; p < plan.n_push; p++) {
                CU_ASSERT(holds(&now, key, plan.push[p]));
                if (plan.keep)
                    CU_ASSERT(!holds(&old, key, plan.push[p]));
                for (int m = 0; m <= N; m++)
                    if (memcmp(plan.push[p], ids[m], SN_RING_ID_LEN) == 0)
                        got[m] = true;
                pushes++;
            }
            credit_view_clear(&old);
            credit_view_clear(&now);
        }
        /* every new holder gets the record from someone who had it */
        struct credit_view ref;
        view_of(&ref, after[0], after, na);
        const uint8_t *h[SN_RING_MAX_REPLICAS];
        size_t nh = credit_view_holders(&ref, key, R, h);
        for (size_t i = 0; i < nh; i++) {
            int m = 0;
            while (memcmp(h[i], ids[m], SN_RING_ID_LEN) != 0)
                m++;
            if (!had[m]) {
                needed++;
                CU_ASSERT(got[m]);
            }
        }
        credit_view_clear(&ref);
    }
    CU_ASSERT(needed > 0);
    CU_ASSERT(pushes >= needed);
}

static void test_join_and_leave(void)
{
    int eight[] = {0, 1, 2, 3, 4, 5, 6, 7}, nine[] = {0, 1, 2, 3, 4, 5, 6, 7, 8},
        seven[] = {0, 1, 2, 4, 5, 6, 7};
    check_move(eight, 8, nine, 9);  /* 8 joins */
    check_move(eight, 8, seven, 7); /* 3 leaves */
}

static void test_fresh_and_handover(void)
{
    int m[] = {0, 1, 2, 3, 4, 5, 6, 7};
    struct credit_view v;
    view_of(&v, 0, m, 8);
    uint8_t key[SN_RING_ID_LEN];
    int mine = 0, theirs = 0;
    for (uint64_t k = 0; k < 200; k++) {
        fill_id(key, 900 + k);
        const uint8_t *h[SN_RING_MAX_REPLICAS];
        size_t nh = credit_view_holders(&v, key, R, h);
        /* nothing changed: no pushes for a record it holds */
        struct credit_placement pl = {.self = ids[0], .replicas = R, .old = &v, .now = &v};
        struct credit_place_plan plan;
        credit_place_plan(&pl, key, &plan);
        CU_ASSERT_EQUAL(plan.n_push, plan.keep ? 0 : nh);
        /* every other holder linked up again: each gets it from a holder */
        pl.fresh = (const uint8_t(*)[SN_RING_ID_LEN])ids;
        pl.n_fresh = N;
        credit_place_plan(&pl, key, &plan);
        if (plan.keep) {
            mine++;
            CU_ASSERT_EQUAL(plan.n_push, nh - 1);
        } else {
            /* a record this supernode has but does not hold (a stray) goes
             * to all its holders and is dropped */
            theirs++;
            CU_ASSERT_EQUAL(plan.n_push, nh);
        }
    }
    CU_ASSERT(mine > 0 && theirs > 0);
    credit_view_clear(&v);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("sn_credit_place", suite_init, NULL);
    if (!s)
        return -1;
    CU_add_test(s, "a view is this supernode and its members, sorted, distinct", test_view);
    CU_add_test(s, "a pass is needed only for a changed view or a fresh link", test_needed);
    CU_add_test(s, "after a join or a leave every new holder gets each record",
                test_join_and_leave);
    CU_add_test(s, "fresh links get what they hold; strays are handed over and dropped",
                test_fresh_and_handover);
    return CU_get_error() == CUE_SUCCESS ? 0 : -1;
}
