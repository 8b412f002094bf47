/* test_fair.c - common/fair.h: a pool shared fairly among groups. A full
 * pool makes room for a newcomer from a smaller group by displacing the
 * oldest slot (or the largest byte holder) of the group holding the most,
 * never passes a slot back and forth, caps each group, and its numbers
 * (used, groups, top) stay those of a naive model under random churn. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fair.h"

static struct wire_addr addr(const char *ip)
{
    struct wire_addr a = {.port = 1};
    if (strchr(ip, ':')) {
        a.family = WIRE_ADDR_IPV6;
        inet_pton(AF_INET6, ip, a.ip);
    } else {
        a.family = WIRE_ADDR_IPV4;
        inet_pton(AF_INET, ip, a.ip);
    }
    return a;
}

/* Join h to the prefix of ip with amount, after checking it is OK. */
static enum fair_verdict take(struct fair_pool *p, struct fair_holder *h, const char *ip,
                              uint64_t amount, struct fair_holder **victim)
{
    struct wire_addr a = addr(ip);
    uint8_t key[FAIR_KEY_MAX];
    size_t n = fair_key_prefix(&a, key);
    enum fair_verdict v = fair_check_key(p, key, n, amount, victim);
    if (v == FAIR_OK)
        CU_ASSERT_EQUAL(fair_join(p, h, key, n, amount, h), 0);
    return v;
}

static void test_slots_displace_the_largest_groups_oldest(void)
{
    struct fair_pool *p = fair_pool_new(4, 0, FAIR_VICTIM_OLDEST);
    struct fair_holder a[4] = {{0}}, b[3] = {{0}}, c = {0}, *victim = NULL;
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(take(p, &a[i], "20.0.1.9", 1, &victim), FAIR_OK);
    CU_ASSERT_EQUAL(fair_used(p), 4);
    /* Full. Another from the same /24 may not push its own out. */
    CU_ASSERT_EQUAL(take(p, &b[0], "20.0.1.200", 1, &victim), FAIR_FULL);
    CU_ASSERT_PTR_NULL(victim);
    /* A newcomer from elsewhere displaces the oldest of the largest group. */
    CU_ASSERT_EQUAL(take(p, &b[0], "20.0.2.1", 1, &victim), FAIR_DISPLACE);
    CU_ASSERT_PTR_EQUAL(victim, &a[0]);
    CU_ASSERT_PTR_EQUAL(victim->owner, &a[0]);
    fair_leave(p, victim);
    CU_ASSERT_EQUAL(take(p, &b[0], "20.0.2.1", 1, &victim), FAIR_OK);
    /* a has 3, b 1: b takes one more (2 < 3 left to a)... */
    fair_touch(p, &a[1]); /* a[1] was active: a[2] is now a's oldest */
    CU_ASSERT_EQUAL(take(p, &b[1], "20.0.2.2", 1, &victim), FAIR_DISPLACE);
    CU_ASSERT_PTR_EQUAL(victim, &a[2]);
    fair_leave(p, victim);
    CU_ASSERT_EQUAL(take(p, &b[1], "20.0.2.2", 1, &victim), FAIR_OK);
    /* ...but at 2 and 2 neither takes from the other: no ping-pong. */
    CU_ASSERT_EQUAL(take(p, &b[2], "20.0.2.3", 1, &victim), FAIR_FULL);
    CU_ASSERT_EQUAL(take(p, &a[0], "20.0.1.1", 1, &victim), FAIR_FULL);
    CU_ASSERT_EQUAL(fair_top(p), 2);
    CU_ASSERT_EQUAL(fair_groups(p), 2);
    /* A third network still gets in. */
    CU_ASSERT_EQUAL(take(p, &c, "20.0.3.1", 1, &victim), FAIR_DISPLACE);
    CU_ASSERT_PTR_NOT_NULL(victim);
    fair_leave(p, victim);
    CU_ASSERT_EQUAL(take(p, &c, "20.0.3.1", 1, &victim), FAIR_OK);
    CU_ASSERT_EQUAL(fair_used(p), 4);
    CU_ASSERT_EQUAL(fair_holders(p), 4);
    fair_leave(p, &c);
    fair_leave(p, &c); /* twice is fine */
    for (int i = 0; i < 4; i++)
        fair_leave(p, &a[i]);
    for (int i = 0; i < 3; i++)
        fair_leave(p, &b[i]);
    CU_ASSERT_EQUAL(fair_used(p), 0);
    CU_ASSERT_EQUAL(fair_groups(p), 0);
    fair_pool_free(p);
}

static void test_group_cap(void)
{
    struct fair_pool *p = fair_pool_new(0, 3, FAIR_VICTIM_OLDEST);
    struct fair_holder h[5] = {{0}}, *victim;
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(take(p, &h[i], "2001:db8:0:1a0::1", 1, &victim), FAIR_OK);
    /* the same /56 is the same group; another /56 is not */
    CU_ASSERT_EQUAL(take(p, &h[3], "2001:db8:0:1ff::9", 1, &victim), FAIR_OVER_SHARE);
    CU_ASSERT_EQUAL(take(p, &h[3], "2001:db8:0:200::9", 1, &victim), FAIR_OK);
    CU_ASSERT_EQUAL(fair_check(p, &h[0], 1, &victim), FAIR_OVER_SHARE);
    CU_ASSERT_EQUAL(fair_check(p, &h[3], 2, &victim), FAIR_OK);
    CU_ASSERT_EQUAL(fair_check(p, &h[3], 3, &victim), FAIR_OVER_SHARE);
    CU_ASSERT_EQUAL(fair_check(p, &h[4], 100, &victim), FAIR_OK); /* not in the pool */
    CU_ASSERT_EQUAL(fair_group_amount(&h[1]), 3);
    for (int i = 0; i < 4; i++)
        fair_leave(p, &h[i]);
    fair_pool_free(p);
}

static void test_bytes_displace_the_largest_holder(void)
{
    struct fair_pool *p = fair_pool_new(100, 60, FAIR_VICTIM_LARGEST);
    struct fair_holder a1 = {0}, a2 = {0}, b = {0}, *victim;
    CU_ASSERT_EQUAL(take(p, &a1, "20.0.1.1", 0, &victim), FAIR_OK);
    CU_ASSERT_EQUAL(take(p, &a2, "20.0.1.2", 0, &victim), FAIR_OK);
    CU_ASSERT_EQUAL(take(p, &b, "20.0.9.1", 0, &victim), FAIR_OK);
    CU_ASSERT_EQUAL(fair_check(p, &a1, 20, &victim), FAIR_OK);
    fair_set(p, &a1, 20);
    CU_ASSERT_EQUAL(fair_check(p, &a2, 41, &victim), FAIR_OVER_SHARE); /* 61 > 60 */
    CU_ASSERT_EQUAL(fair_check(p, &a2, 40, &victim), FAIR_OK);
    fair_set(p, &a2, 40);
    CU_ASSERT_EQUAL(fair_check(p, &b, 30, &victim), FAIR_OK);
    fair_set(p, &b, 30);
    CU_ASSERT_EQUAL(fair_used(p), 90);
    CU_ASSERT_EQUAL(fair_top(p), 60);
    /* b wants 20 more: the largest holder of the largest group goes */
    CU_ASSERT_EQUAL(fair_check(p, &b, 20, &victim), FAIR_DISPLACE);
    CU_ASSERT_PTR_EQUAL(victim, &a2);
    fair_leave(p, victim);
    CU_ASSERT_EQUAL(fair_check(p, &b, 20, &victim), FAIR_OK);
    fair_set(p, &b, 50);
    /* now b's group is the largest: when it asks, its own largest holder
     * (itself) goes; when a asks, b goes too */
    fair_set(p, &a1, 45);
    CU_ASSERT_EQUAL(fair_check(p, &b, 10, &victim), FAIR_DISPLACE);
    CU_ASSERT_PTR_EQUAL(victim, &b);
    CU_ASSERT_EQUAL(fair_check(p, &a1, 10, &victim), FAIR_DISPLACE);
    CU_ASSERT_PTR_EQUAL(victim, &b);
    /* shrinking needs no check */
    fair_set(p, &b, 5);
    CU_ASSERT_EQUAL(fair_used(p), 50);
    CU_ASSERT_EQUAL(fair_check(p, &b, 101, &victim), FAIR_OVER_SHARE);
    fair_pool_set_limits(p, 100, 0);
    CU_ASSERT_EQUAL(fair_check(p, &b, 101, &victim), FAIR_FULL); /* more than the pool */
    fair_leave(p, &a1);
    fair_leave(p, &b);
    CU_ASSERT_EQUAL(fair_groups(p), 0);
    fair_pool_free(p);
}

static void test_join_errors_and_keys(void)
{
    struct fair_pool *p = fair_pool_new(10, 0, FAIR_VICTIM_OLDEST);
    struct fair_holder h = {0};
    uint8_t big[FAIR_KEY_MAX + 1] = {0};
    CU_ASSERT_EQUAL(fair_join(p, &h, big, sizeof(big), 1, NULL), SOVA_ERR_INVALID);
    CU_ASSERT_EQUAL(fair_join(p, &h, "k", 1, 1, NULL), 0);
    CU_ASSERT_EQUAL(fair_join(p, &h, "k", 1, 1, NULL), SOVA_ERR_INVALID); /* in a pool */
    CU_ASSERT_EQUAL(fair_key_amount(p, "k", 1), 1);
    CU_ASSERT_EQUAL(fair_key_amount(p, "j", 1), 0);
    fair_leave(p, &h);

    uint8_t k1[FAIR_KEY_MAX], k2[FAIR_KEY_MAX];
    struct wire_addr a = addr("20.0.1.7"), b = addr("20.0.1.250"), c = addr("20.0.2.7");
    CU_ASSERT_EQUAL(fair_key_prefix(&a, k1), 4);
    CU_ASSERT_EQUAL(fair_key_prefix(&b, k2), 4);
    CU_ASSERT_EQUAL(memcmp(k1, k2, 4), 0);
    fair_key_prefix(&c, k2);
    CU_ASSERT_NOT_EQUAL(memcmp(k1, k2, 4), 0);
    CU_ASSERT_EQUAL(fair_key_addr(&a, k1), 5);
    fair_key_addr(&b, k2);
    CU_ASSERT_NOT_EQUAL(memcmp(k1, k2, 5), 0);
    struct wire_addr x = addr("2001:db8:1:2::10"), y = addr("2001:db8:1:2:ffff::1"),
                     z = addr("2001:db8:1:3::10");
    CU_ASSERT_EQUAL(fair_key_addr(&x, k1), 9);
    fair_key_addr(&y, k2);
    CU_ASSERT_EQUAL(memcmp(k1, k2, 9), 0); /* one /64 */
    CU_ASSERT_EQUAL(fair_key_prefix(&x, k1), 8);
    fair_key_prefix(&z, k2);
    CU_ASSERT_EQUAL(memcmp(k1, k2, 8), 0); /* one /56 */
    char buf[64];
    CU_ASSERT_STRING_EQUAL(fair_prefix_str(&a, buf, sizeof(buf)), "20.0.1.0/24");
    CU_ASSERT_STRING_EQUAL(fair_prefix_str(&x, buf, sizeof(buf)), "2001:db8:1::/56");
    fair_pool_free(p);
}

/* Random churn against a naive model: used, groups and the top agree,
 * and a verdict is what the model says. */
#define MODEL_KEYS    37
#define MODEL_HOLDERS 400
static void test_random_against_model(void)
{
    struct fair_pool *p = fair_pool_new(150, 40, FAIR_VICTIM_OLDEST);
    static struct fair_holder h[MODEL_HOLDERS];
    int key_of[MODEL_HOLDERS];
    uint64_t sum[MODEL_KEYS] = {0};
    memset(h, 0, sizeof(h));
    srand(7);
    for (int step = 0; step < 20000; step++) {
        int i = rand() % MODEL_HOLDERS;
        if (h[i].group != NULL) {
            sum[key_of[i]] -= h[i].amount;
            fair_leave(p, &h[i]);
        } else {
            uint8_t k = (uint8_t)(rand() % MODEL_KEYS);
            struct fair_holder *victim;
            enum fair_verdict v = fair_check_key(p, &k, 1, 1, &victim);
            uint64_t used = 0, top = 0;
            for (int j = 0; j < MODEL_KEYS; j++) {
                used += sum[j];
                top = sum[j] > top ? sum[j] : top;
            }
            enum fair_verdict want = sum[k] + 1 > 40    ? FAIR_OVER_SHARE
                                     : used + 1 <= 150  ? FAIR_OK
                                     : sum[k] + 1 < top ? FAIR_DISPLACE
                                                        : FAIR_FULL;
            CU_ASSERT_EQUAL(v, want);
            if (v == FAIR_DISPLACE) {
                int vi = (int)((struct fair_holder *)victim->owner - h);
                CU_ASSERT_EQUAL(sum[key_of[vi]], top);
                sum[key_of[vi]] -= victim->amount;
                fair_leave(p, victim);
                v = fair_check_key(p, &k, 1, 1, &victim);
                CU_ASSERT_EQUAL(v, FAIR_OK);
            }
            if (v == FAIR_OK) {
                CU_ASSERT_EQUAL(fair_join(p, &h[i], &k, 1, 1, &h[i]), 0);
                key_of[i] = k;
                sum[k]++;
            }
        }
        uint64_t used = 0, top = 0;
        size_t groups = 0;
        for (int j = 0; j < MODEL_KEYS; j++) {
            used += sum[j];
            top = sum[j] > top ? sum[j] : top;
        }
        for (int j = 0; j < MODEL_KEYS; j++)
            groups += fair_key_amount(p, &(uint8_t){(uint8_t)j}, 1) > 0;
        CU_ASSERT_EQUAL(fair_used(p), used);
        CU_ASSERT_EQUAL(fair_top(p), top);
        CU_ASSERT_EQUAL(fair_groups(p), groups);
        CU_ASSERT(fair_used(p) <= 150);
    }
    for (int i = 0; i < MODEL_HOLDERS; i++)
        fair_leave(p, &h[i]);
    CU_ASSERT_EQUAL(fair_groups(p), 0);
    fair_pool_free(p);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("fair", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "slots: the largest group's oldest gives way",
                test_slots_displace_the_largest_groups_oldest);
    CU_add_test(s, "cap per group", test_group_cap);
    CU_add_test(s, "bytes: the largest holder gives way", test_bytes_displace_the_largest_holder);
    CU_add_test(s, "join errors and address keys", test_join_errors_and_keys);
    CU_add_test(s, "random churn against a model", test_random_against_model);
    return 0;
}
