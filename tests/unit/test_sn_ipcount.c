/* test_sn_ipcount.c - supernode/sn_ipcount.h: connections per address,
 * capped, IPv6 by /64, and the table empties as connections go. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <string.h>

#include "sn_ipcount.h"

static const uint8_t key[SN_HASHTAB_KEYLEN] = {3};

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

static void test_cap_and_release(void)
{
    struct sn_ipcount *t = sn_ipcount_new(key);
    struct wire_addr a = addr("20.0.1.1"), b = addr("20.0.1.2");
    for (int i = 0; i < 3; i++)
        CU_ASSERT_TRUE(sn_ipcount_add(t, &a, 3));
    CU_ASSERT_FALSE(sn_ipcount_add(t, &a, 3)); /* the fourth from one address */
    CU_ASSERT_TRUE(sn_ipcount_add(t, &b, 3));  /* others are not affected */
    CU_ASSERT_EQUAL(sn_ipcount_get(t, &a), 3);
    sn_ipcount_del(t, &a);
    CU_ASSERT_TRUE(sn_ipcount_add(t, &a, 3));
    for (int i = 0; i < 3; i++)
        sn_ipcount_del(t, &a);
    sn_ipcount_del(t, &b);
    CU_ASSERT_EQUAL(sn_ipcount_addresses(t), 0);
    CU_ASSERT_EQUAL(sn_ipcount_get(t, &a), 0);
    sn_ipcount_free(t);
}

static void test_ipv6_by_64_and_many(void)
{
    struct sn_ipcount *t = sn_ipcount_new(key);
    struct wire_addr x = addr("2001:db8:1:2::10"), y = addr("2001:db8:1:2::99"),
                     z = addr("2001:db8:1:3::10");
    CU_ASSERT_TRUE(sn_ipcount_add(t, &x, 2));
    CU_ASSERT_TRUE(sn_ipcount_add(t, &y, 2));
    CU_ASSERT_FALSE(sn_ipcount_add(t, &y, 2)); /* same /64 */
    CU_ASSERT_TRUE(sn_ipcount_add(t, &z, 2));
    char ip[32];
    for (int i = 0; i < 5000; i++) { /* many addresses, then all gone */
        snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 250, i % 250);
        struct wire_addr a = addr(ip);
        CU_ASSERT_TRUE(sn_ipcount_add(t, &a, 0));
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 250, i % 250);
        struct wire_addr a = addr(ip);
        CU_ASSERT_EQUAL(sn_ipcount_get(t, &a), 1);
        sn_ipcount_del(t, &a);
    }
    CU_ASSERT_EQUAL(sn_ipcount_addresses(t), 2);
    CU_ASSERT_EQUAL(sn_ipcount_get(t, &x), 2);
    sn_ipcount_free(t);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("sn_ipcount", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "capped per address, released as connections go", test_cap_and_release);
    CU_add_test(s, "IPv6 counts by /64; thousands of addresses come and go",
                test_ipv6_by_64_and_many);
    return 0;
}
