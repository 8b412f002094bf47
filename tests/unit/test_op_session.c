/* The peer's choice of a supernode (op_session_pick): failures first, then
 * the load class, then the least loaded (with a slack), then the measured
 * round trip with a slack, then turns; and the load spread
 * (op_session_rebalance). */
#include "cunit_main.h"
#include "op_session.h"

#include <CUnit/CUnit.h>

static void test_load_classes(void)
{
    CU_ASSERT_EQUAL(op_session_load_class(0, 0), OP_SESSION_SPARE);    /* unknown */
    CU_ASSERT_EQUAL(op_session_load_class(500, 0), OP_SESSION_SPARE);  /* unknown */
    CU_ASSERT_EQUAL(op_session_load_class(74, 100), OP_SESSION_SPARE); /* under 3/4 */
    CU_ASSERT_EQUAL(op_session_load_class(75, 100), OP_SESSION_BUSY);
    CU_ASSERT_EQUAL(op_session_load_class(99, 100), OP_SESSION_BUSY);
    CU_ASSERT_EQUAL(op_session_load_class(100, 100), OP_SESSION_FULL);
    CU_ASSERT_EQUAL(op_session_load_class(7, 1), OP_SESSION_FULL);
    CU_ASSERT_EQUAL(op_session_load_class(3000000000u, 4000000000u), OP_SESSION_BUSY);
}

static void test_nothing_to_pick(void)
{
    struct op_session_rank r[2] = {{.excluded = true}, {.excluded = true}};
    CU_ASSERT_EQUAL(op_session_pick(r, 0, 0), -1);
    CU_ASSERT_EQUAL(op_session_pick(r, 2, 0), -1);
}

static void test_fastest_measured_wins(void)
{
    /* 80 ms, 0.4 ms, 12 ms: the 0.4 ms one, wherever the turn starts. */
    struct op_session_rank r[3] = {{.rtt_us = 80000}, {.rtt_us = 400}, {.rtt_us = 12000}};
    for (size_t rot = 0; rot < 6; rot++)
        CU_ASSERT_EQUAL(op_session_pick(r, 3, rot), 1);
    r[1].excluded = true; /* the other session uses it: the next fastest */
    for (size_t rot = 0; rot < 6; rot++)
        CU_ASSERT_EQUAL(op_session_pick(r, 3, rot), 2);
}

static void test_slack_takes_turns(void)
{
    /* 10.0 and 12.4 ms are within a quarter of 10: equal, taken in turn;
     * 12.6 ms is not. Under 1 ms the slack is 1 ms. */
    struct op_session_rank r[3] = {{.rtt_us = 10000}, {.rtt_us = 12400}, {.rtt_us = 12600}};
    CU_ASSERT_EQUAL(op_session_pick(r, 3, 0), 0);
    CU_ASSERT_EQUAL(op_session_pick(r, 3, 1), 1);
    CU_ASSERT_EQUAL(op_session_pick(r, 3, 2), 0);
    struct op_session_rank lo[3] = {{.rtt_us = 90}, {.rtt_us = 1050}, {.rtt_us = 1200}};
    CU_ASSERT_EQUAL(op_session_pick(lo, 3, 1), 1);
    CU_ASSERT_EQUAL(op_session_pick(lo, 3, 2), 0);
}

static void test_measured_before_unmeasured(void)
{
    /* Nothing measured: plain turns. Something measured: it goes first
     * (it is known to answer), even slow. */
    struct op_session_rank r[3] = {{0}, {0}, {0}};
    CU_ASSERT_EQUAL(op_session_pick(r, 3, 0), 0);
    CU_ASSERT_EQUAL(op_session_pick(r, 3, 1), 1);
    CU_ASSERT_EQUAL(op_session_pick(r, 3, 5), 2);
    r[2].rtt_us = 50000;
    CU_ASSERT_EQUAL(op_session_pick(r, 3, 0), 2);
    CU_ASSERT_EQUAL(op_session_pick(r, 3, 1), 2);
}

static void test_failures_then_load_before_rtt(void)
{
    struct op_session_rank r[4] = {
        {.failures = 1, .rtt_us = 100},                     /* failed once: last */
        {.attached = 100, .capacity = 100, .rtt_us = 200},  /* full */
        {.attached = 80, .capacity = 100, .rtt_us = 300},   /* busy */
        {.attached = 10, .capacity = 100, .rtt_us = 40000}, /* spare, slow */
    };
    CU_ASSERT_EQUAL(op_session_pick(r, 4, 0), 3); /* spare beats busy and full, however fast */
    r[3].excluded = true;
    CU_ASSERT_EQUAL(op_session_pick(r, 4, 0), 2);
    r[2].excluded = true;
    CU_ASSERT_EQUAL(op_session_pick(r, 4, 0), 1); /* full, but it never failed */
    r[1].excluded = true;
    CU_ASSERT_EQUAL(op_session_pick(r, 4, 0), 0);
    /* Unknown load counts as spare. */
    struct op_session_rank u[2] = {{.attached = 90, .capacity = 100, .rtt_us = 100},
                                   {.rtt_us = 9000}};
    CU_ASSERT_EQUAL(op_session_pick(u, 2, 0), 1);
}

static void test_slow_group_is_not_mixed_in(void)
{
    /* The fastest is taken within the best group only: a fast supernode
     * that failed does not lower the bar for the others. */
    struct op_session_rank r[3] = {
        {.failures = 2, .rtt_us = 100}, {.rtt_us = 30000}, {.rtt_us = 38000}};
    CU_ASSERT_EQUAL(op_session_pick(r, 3, 0), 1);
    CU_ASSERT_EQUAL(op_session_pick(r, 3, 2), 1); /* 38 ms > 30 + 7.5 */
}

static void test_least_loaded_before_rtt(void)
{
    /* All spare; the emptiest wins over a faster one with many more peers,
     * but loads within the slack count as equal and the round trip decides. */
    struct op_session_rank r[3] = {{.attached = 40, .capacity = 1000, .rtt_us = 100},
                                   {.attached = 0, .capacity = 1000, .rtt_us = 20000},
                                   {.attached = 1, .capacity = 1000, .rtt_us = 5000}};
    CU_ASSERT_EQUAL(op_session_pick(r, 3, 0), 2); /* 1 is within two peers of 0: faster wins */
    r[2].attached = 9;
    CU_ASSERT_EQUAL(op_session_pick(r, 3, 0), 1);
    /* Slack of a quarter of the least load: 100 and 120 of 1000 are equal. */
    struct op_session_rank q[2] = {{.attached = 120, .capacity = 1000, .rtt_us = 100},
                                   {.attached = 100, .capacity = 1000, .rtt_us = 9000}};
    CU_ASSERT_EQUAL(op_session_pick(q, 2, 1), 0);
    q[0].attached = 130;
    CU_ASSERT_EQUAL(op_session_pick(q, 2, 0), 1);
}

static void test_rebalance(void)
{
    bool imb;
    double mean;
    /* Balanced (9, 9, 9): nobody moves. */
    struct op_session_rank r[3] = {{.attached = 9, .capacity = 100},
                                   {.attached = 9, .capacity = 100},
                                   {.attached = 9, .capacity = 100}};
    CU_ASSERT_EQUAL(op_session_rebalance(r, 3, 0, 0.0, 0.0, &imb, &mean), -1);
    CU_ASSERT_FALSE(imb);
    /* A restarted supernode (9, 9, 0): mean 6, excess 3 of 9 -> a third
     * of the primary's peers move, all to the empty one. */
    r[2].attached = 0;
    CU_ASSERT_EQUAL(op_session_rebalance(r, 3, 0, 0.32, 0.99, &imb, &mean), 2);
    CU_ASSERT_TRUE(imb);
    CU_ASSERT_EQUAL(op_session_rebalance(r, 3, 0, 0.34, 0.5, &imb, &mean), -1);
    CU_ASSERT_TRUE(imb); /* a decision was made: the cool-down applies */
    /* The empty one is not the primary's own load: from it, nothing moves. */
    CU_ASSERT_EQUAL(op_session_rebalance(r, 3, 2, 0.0, 0.0, &imb, &mean), -1);
    CU_ASSERT_FALSE(imb);
    /* Under the threshold: 7 vs mean 6 is 117 %, excess 1 peer. */
    struct op_session_rank t[3] = {{.attached = 7, .capacity = 100},
                                   {.attached = 6, .capacity = 100},
                                   {.attached = 5, .capacity = 100}};
    CU_ASSERT_EQUAL(op_session_rebalance(t, 3, 0, 0.0, 0.0, &imb, &mean), -1);
    CU_ASSERT_FALSE(imb);
    /* Targets in proportion to what they lack: (30, 10, 20, 0), mean 15:
     * 1 lacks 5, 3 lacks 15; 2 is over the mean, never a target. */
    struct op_session_rank w[4] = {{.attached = 30, .capacity = 100},
                                   {.attached = 10, .capacity = 100},
                                   {.attached = 20, .capacity = 100},
                                   {.attached = 0, .capacity = 100}};
    CU_ASSERT_EQUAL(op_session_rebalance(w, 4, 0, 0.0, 0.0, &imb, &mean), 1);
    CU_ASSERT_EQUAL(op_session_rebalance(w, 4, 0, 0.0, 0.24, &imb, &mean), 1);
    CU_ASSERT_EQUAL(op_session_rebalance(w, 4, 0, 0.0, 0.26, &imb, &mean), 3);
    CU_ASSERT_EQUAL(op_session_rebalance(w, 4, 0, 0.0, 0.999, &imb, &mean), 3);
    CU_ASSERT_EQUAL(op_session_rebalance(w, 4, 0, 0.49, 0.5, &imb, &mean), 3); /* p = 15/30 */
    CU_ASSERT_EQUAL(op_session_rebalance(w, 4, 0, 0.51, 0.5, &imb, &mean), -1);
    /* Unknown loads, failed ones and too few known: not counted. */
    w[3].failures = 1;
    w[1].capacity = 0; /* known now: 30 and 20, mean 25: 120 %, not over it */
    CU_ASSERT_EQUAL(op_session_rebalance(w, 4, 0, 0.0, 0.5, &imb, &mean), -1);
    CU_ASSERT_FALSE(imb);
    w[0].attached = 40; /* 40 and 20, mean 30, excess 10: to the only one under the mean */
    CU_ASSERT_EQUAL(op_session_rebalance(w, 4, 0, 0.0, 0.999, &imb, &mean), 2);
    CU_ASSERT_TRUE(imb);
    w[2].capacity = 0;
    CU_ASSERT_EQUAL(op_session_rebalance(w, 4, 0, 0.0, 0.5, &imb, &mean), -1);
    CU_ASSERT_FALSE(imb);
    /* Capacities differ: loads are fractions of each one's capacity. */
    struct op_session_rank c[2] = {{.attached = 50, .capacity = 100},
                                   {.attached = 100, .capacity = 1000}};
    CU_ASSERT_EQUAL(op_session_rebalance(c, 2, 0, 0.0, 0.5, &imb, &mean), 1); /* 50 % vs 10 % */
    CU_ASSERT_EQUAL(op_session_rebalance(c, 2, 1, 0.0, 0.5, &imb, &mean), -1);
    CU_ASSERT_FALSE(imb);
    /* Far below capacity, moving gains nothing: (4, 0) of 100,000 each is
     * 200 % of the mean, but 2 peers over it are not 1 % of the capacity. */
    struct op_session_rank idle[2] = {{.attached = 4, .capacity = 100000},
                                      {.attached = 0, .capacity = 100000}};
    CU_ASSERT_EQUAL(op_session_rebalance(idle, 2, 0, 0.0, 0.5, &imb, &mean), -1);
    CU_ASSERT_FALSE(imb);
    idle[0].attached = 2000; /* 1,000 over the mean: 1 % of the capacity */
    CU_ASSERT_EQUAL(op_session_rebalance(idle, 2, 0, 0.0, 0.5, &imb, &mean), 1);
    CU_ASSERT_TRUE(imb);
    /* On average exactly the excess leaves: 10000 peers' draws. */
    struct op_session_rank e[3] = {{.attached = 900, .capacity = 10000},
                                   {.attached = 900, .capacity = 10000},
                                   {.attached = 0, .capacity = 10000}};
    unsigned moved = 0;
    for (unsigned i = 0; i < 900; i++)
        moved += op_session_rebalance(e, 3, 0, (i + 0.5) / 900, 0.5, &imb, &mean) == 2;
    CU_ASSERT_EQUAL(moved, 300);
    CU_ASSERT_DOUBLE_EQUAL(mean, 0.06, 1e-9);
    /* The target confirms with its own fresh count: room for one more
     * under the mean (half a peer of rounding), and a known capacity. */
    CU_ASSERT_TRUE(op_session_move_ok(0, 100, 0.05));
    CU_ASSERT_TRUE(op_session_move_ok(4, 100, 0.05));
    CU_ASSERT_FALSE(op_session_move_ok(5, 100, 0.05));
    CU_ASSERT_FALSE(op_session_move_ok(0, 0, 0.05));
}

static void test_usable_addr_keeps_the_family(void)
{
    struct wire_addr a[3] = {{.family = WIRE_ADDR_IPV4, .port = 1},
                             {.family = WIRE_ADDR_IPV6, .port = 2},
                             {.family = WIRE_ADDR_IPV6, .port = 3}};
    CU_ASSERT_PTR_EQUAL(op_session_usable_addr(a, 3, WIRE_ADDR_IPV6), &a[1]); /* IPv6-only host */
    CU_ASSERT_PTR_EQUAL(op_session_usable_addr(a, 3, WIRE_ADDR_IPV4), &a[0]);
    CU_ASSERT_PTR_EQUAL(op_session_usable_addr(a, 1, WIRE_ADDR_IPV6), &a[0]); /* none: the first */
    CU_ASSERT_PTR_EQUAL(op_session_usable_addr(a, 3, 0), &a[0]);              /* not attached */
    CU_ASSERT_PTR_NULL(op_session_usable_addr(a, 0, WIRE_ADDR_IPV4));
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("op_session", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "load classes", test_load_classes);
    CU_add_test(s, "nothing to pick", test_nothing_to_pick);
    CU_add_test(s, "the fastest measured wins", test_fastest_measured_wins);
    CU_add_test(s, "round trips within the slack take turns", test_slack_takes_turns);
    CU_add_test(s, "measured before unmeasured", test_measured_before_unmeasured);
    CU_add_test(s, "failures, then load, then round trip", test_failures_then_load_before_rtt);
    CU_add_test(s, "the best group sets the bar", test_slow_group_is_not_mixed_in);
    CU_add_test(s, "a supernode's address of our family", test_usable_addr_keeps_the_family);
    CU_add_test(s, "the least loaded before the round trip", test_least_loaded_before_rtt);
    CU_add_test(s, "load spread: who moves, and where", test_rebalance);
    return 0;
}
