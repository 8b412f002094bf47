/* nat_netwatch_relevant(): which rtnetlink reads mean the addresses or
 * routes changed, and that a truncated or malformed read ends the walk.
 * (Watching a real network change: natbed/test_nat_faults case 7.) */
#include "cunit_main.h"
#include "nat_netwatch.h"

#include <CUnit/CUnit.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>

/* One message of type, payload bytes long, at buf+off; the next offset. */
static size_t put(unsigned char *buf, size_t off, unsigned type, size_t payload)
{
    struct nlmsghdr h = {.nlmsg_len = (unsigned)(NLMSG_HDRLEN + payload), .nlmsg_type = type};
    memcpy(buf + off, &h, sizeof(h));
    memset(buf + off + NLMSG_HDRLEN, 0, payload);
    return off + NLMSG_ALIGN(h.nlmsg_len);
}

static void test_relevant(void)
{
    unsigned char buf[512];
    size_t n = put(buf, 0, RTM_NEWADDR, 8);
    CU_ASSERT_TRUE(nat_netwatch_relevant(buf, n));
    n = put(buf, 0, RTM_DELROUTE, 28);
    CU_ASSERT_TRUE(nat_netwatch_relevant(buf, n));
    /* a link's statistics, then a new address: the second counts */
    n = put(buf, 0, RTM_NEWLINK, 17);
    n = put(buf, n, RTM_NEWADDR, 8);
    CU_ASSERT_TRUE(nat_netwatch_relevant(buf, n));
    /* only links and neighbours: nothing to do */
    n = put(buf, 0, RTM_NEWLINK, 16);
    n = put(buf, n, RTM_NEWNEIGH, 12);
    CU_ASSERT_FALSE(nat_netwatch_relevant(buf, n));
}

static void test_malformed_ends_the_walk(void)
{
    unsigned char buf[512];
    size_t n = put(buf, 0, RTM_NEWADDR, 8);
    CU_ASSERT_FALSE(nat_netwatch_relevant(buf, n - 1)); /* its length says more than was read */
    CU_ASSERT_FALSE(nat_netwatch_relevant(buf, 3));
    CU_ASSERT_FALSE(nat_netwatch_relevant(buf, 0));
    struct nlmsghdr h = {.nlmsg_len = 4, .nlmsg_type = RTM_NEWLINK}; /* shorter than a header */
    memcpy(buf, &h, sizeof(h));
    put(buf, NLMSG_HDRLEN, RTM_NEWADDR, 8);
    CU_ASSERT_FALSE(nat_netwatch_relevant(buf, NLMSG_HDRLEN + NLMSG_HDRLEN + 8));
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("nat_netwatch", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "relevant messages", test_relevant);
    CU_add_test(s, "a malformed read ends the walk", test_malformed_ends_the_walk);
    return 0;
}
