/* test_op_slots.c - upload slots (ordinary/op_slots.h): the requester with
 * the most credit is served first, a holder yields at a chunk boundary to
 * a richer waiter, a requester without credit still gets served (at least
 * a chunk every max_wait), and slots are freed when a requester leaves. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>

#include "op_slots.h"

static int a, b, c; /* three requesters; only their addresses matter */

static void test_order_by_credit(void)
{
    struct op_slots *s = op_slots_new(1, 20000);
    CU_ASSERT_EQUAL(op_slots_want(s, &a, 0, 100), 0);
    CU_ASSERT_EQUAL(op_slots_want(s, &b, 500, 110), 0);
    CU_ASSERT_EQUAL(op_slots_want(s, &c, 100, 120), 0);
    CU_ASSERT_PTR_EQUAL(op_slots_grant(s, 130), &b); /* most credit, though it came later */
    CU_ASSERT_PTR_NULL(op_slots_grant(s, 130));      /* one slot */
    CU_ASSERT(op_slots_holds(s, &b));
    CU_ASSERT_EQUAL(op_slots_waiting(s), 2);
    op_slots_leave(s, &b);
    CU_ASSERT_PTR_EQUAL(op_slots_grant(s, 140), &c);
    op_slots_leave(s, &c);
    CU_ASSERT_PTR_EQUAL(op_slots_grant(s, 150), &a); /* no credit: served, last */
    op_slots_leave(s, &a);
    CU_ASSERT_PTR_NULL(op_slots_grant(s, 160));
    CU_ASSERT_EQUAL(op_slots_held(s), 0);
    /* Equal credit: first come, first served. */
    op_slots_want(s, &c, 7, 200);
    op_slots_want(s, &a, 7, 210);
    CU_ASSERT_PTR_EQUAL(op_slots_grant(s, 220), &c);
    op_slots_free(s);
}

/* The poorer requester asked first and holds the slot; the richer one
 * takes it at the next chunk, and the poorer one is not starved. */
static void test_preempt_and_no_starvation(void)
{
    struct op_slots *s = op_slots_new(1, 10000);
    op_slots_want(s, &a, 0, 0);
    CU_ASSERT_PTR_EQUAL(op_slots_grant(s, 0), &a);
    CU_ASSERT(op_slots_chunk_done(s, &a, 500)); /* nobody waits: keeps it */
    op_slots_want(s, &b, 0, 600);
    CU_ASSERT(op_slots_chunk_done(s, &a, 900)); /* an equal waiter: keeps it */
    op_slots_set_credit(s, &b, 1000);           /* b's credit became known */
    CU_ASSERT(!op_slots_chunk_done(s, &a, 1000));
    CU_ASSERT_FALSE(op_slots_holds(s, &a));
    CU_ASSERT_PTR_EQUAL(op_slots_grant(s, 1000), &b);
    uint64_t t = 1000;
    unsigned a_chunks = 0, b_chunks = 0;
    /* 60 s of chunks every 250 ms: b is served most, a at least every 10 s. */
    uint64_t a_last = 1000;
    while (t < 61000) {
        t += 250;
        const void *holder = op_slots_holds(s, &a) ? (const void *)&a : (const void *)&b;
        if (holder == &a) {
            a_chunks++;
            CU_ASSERT(t - a_last <= 10250);
            a_last = t;
        } else {
            b_chunks++;
        }
        if (!op_slots_chunk_done(s, holder, t))
            CU_ASSERT_PTR_NOT_NULL(op_slots_grant(s, t));
    }
    CU_ASSERT(a_chunks >= 5 && a_chunks <= 8);
    CU_ASSERT(b_chunks > 200);
    op_slots_free(s);
}

static void test_more_slots_and_reconfigure(void)
{
    struct op_slots *s = op_slots_new(2, 20000);
    op_slots_want(s, &a, 1, 0);
    op_slots_want(s, &b, 2, 0);
    op_slots_want(s, &c, 3, 0);
    CU_ASSERT_PTR_EQUAL(op_slots_grant(s, 1), &c);
    CU_ASSERT_PTR_EQUAL(op_slots_grant(s, 1), &b);
    CU_ASSERT_PTR_NULL(op_slots_grant(s, 1));
    op_slots_configure(s, 1, 20000); /* a reload: one slot */
    CU_ASSERT(!op_slots_chunk_done(s, &b, 2));
    CU_ASSERT(op_slots_chunk_done(s, &c, 2));
    CU_ASSERT_PTR_NULL(op_slots_grant(s, 3));
    op_slots_leave(s, &c);
    CU_ASSERT_PTR_EQUAL(op_slots_grant(s, 4), &b);
    op_slots_leave(s, &a); /* a waiter leaves */
    CU_ASSERT_EQUAL(op_slots_waiting(s), 0);
    op_slots_free(s);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("op_slots", NULL, NULL);
    if (!s)
        return -1;
    CU_add_test(s, "free slots go to the most credit first", test_order_by_credit);
    CU_add_test(s, "a richer waiter takes the slot at a chunk; nobody starves",
                test_preempt_and_no_starvation);
    CU_add_test(s, "several slots; fewer after a reload", test_more_slots_and_reconfigure);
    return CU_get_error() == CUE_SUCCESS ? 0 : -1;
}
