/* test_sn_keepalive.c - supernode/sn_keepalive.h: the keep-alive told to
 * peers stays as configured within the PING budget, grows with the peer
 * count beyond it (timeout in step), and only real changes are re-told. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>

#include "sn_keepalive.h"

static void test_within_budget_as_configured(void)
{
    struct sn_keepalive k = sn_keepalive_advise(30, 90, 1000, 0);
    CU_ASSERT_EQUAL(k.keepalive_s, 30);
    CU_ASSERT_EQUAL(k.peer_timeout_s, 90);
    k = sn_keepalive_advise(30, 90, 1000, 30000); /* exactly 1,000 PINGs a second */
    CU_ASSERT_EQUAL(k.keepalive_s, 30);
    CU_ASSERT_EQUAL(k.peer_timeout_s, 90);
    k = sn_keepalive_advise(30, 90, 0, 10000000); /* no budget */
    CU_ASSERT_EQUAL(k.keepalive_s, 30);
    CU_ASSERT_EQUAL(k.peer_timeout_s, 90);
}

static void test_grows_beyond_budget(void)
{
    struct sn_keepalive k = sn_keepalive_advise(30, 90, 1000, 30001);
    CU_ASSERT_EQUAL(k.keepalive_s, 31);
    CU_ASSERT_EQUAL(k.peer_timeout_s, 93);
    k = sn_keepalive_advise(30, 90, 1000, 100000);
    CU_ASSERT_EQUAL(k.keepalive_s, 100); /* 1,000 PINGs a second */
    CU_ASSERT_EQUAL(k.peer_timeout_s, 300);
    k = sn_keepalive_advise(1, 4, 1, 7); /* the e2e test's small numbers */
    CU_ASSERT_EQUAL(k.keepalive_s, 7);
    CU_ASSERT_EQUAL(k.peer_timeout_s, 28);
    /* Whatever the numbers: PINGs within budget, timeout ≥ interval, u16. */
    for (size_t peers = 1; peers < 3000000; peers = peers * 3 + 1) {
        for (uint64_t budget = 1; budget <= 100000; budget *= 10) {
            k = sn_keepalive_advise(20, 60, budget, peers);
            CU_ASSERT_TRUE(k.keepalive_s >= 20);
            CU_ASSERT_TRUE(k.peer_timeout_s >= k.keepalive_s);
            if (k.keepalive_s < UINT16_MAX)
                CU_ASSERT_TRUE(peers / k.keepalive_s <= budget);
        }
    }
    k = sn_keepalive_advise(3600, 86400, 1, 10000000);
    CU_ASSERT_EQUAL(k.keepalive_s, UINT16_MAX);
    CU_ASSERT_EQUAL(k.peer_timeout_s, UINT16_MAX);
}

static void test_odd_config(void)
{
    struct sn_keepalive k = sn_keepalive_advise(0, 0, 1000, 10);
    CU_ASSERT_EQUAL(k.keepalive_s, 1);
    CU_ASSERT_EQUAL(k.peer_timeout_s, 1);
    k = sn_keepalive_advise(60, 30, 1000, 10); /* a timeout below the interval */
    CU_ASSERT_EQUAL(k.peer_timeout_s, 60);
}

static void test_stale_only_beyond_an_eighth(void)
{
    struct sn_keepalive told = {30, 90}, zero = {0, 0};
    CU_ASSERT_FALSE(sn_keepalive_stale(told, told));
    CU_ASSERT_FALSE(sn_keepalive_stale(told, (struct sn_keepalive){33, 99}));
    CU_ASSERT_TRUE(sn_keepalive_stale(told, (struct sn_keepalive){35, 105}));
    CU_ASSERT_TRUE(sn_keepalive_stale(told, (struct sn_keepalive){20, 60}));
    CU_ASSERT_TRUE(sn_keepalive_stale(told, (struct sn_keepalive){30, 120})); /* timeout alone */
    CU_ASSERT_TRUE(sn_keepalive_stale(zero, told));
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("sn_keepalive", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "within the PING budget: as configured", test_within_budget_as_configured);
    CU_add_test(s, "beyond it: interval and timeout grow with the peers", test_grows_beyond_budget);
    CU_add_test(s, "a zero or inverted config still gives a valid advice", test_odd_config);
    CU_add_test(s, "re-told only when more than an eighth off", test_stale_only_beyond_an_eighth);
    return 0;
}
