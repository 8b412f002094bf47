/* The PCP codec (nat/nat_pcp.h, RFC 6887): a MAP request byte for byte,
 * an answer read back, and answers that are not ours refused. (Against a
 * real miniupnpd: natbed/test_upnp's PCP case.) */
#include "cunit_main.h"
#include "nat_pcp.h"

#include <CUnit/CUnit.h>
#include <string.h>

static const uint8_t nonce[NAT_PCP_NONCE_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

static void test_request(void)
{
    uint8_t req[NAT_PCP_MAP_LEN], client[16];
    const uint8_t v4[4] = {10, 1, 0, 13};
    nat_pcp_addr_v4(client, v4);
    CU_ASSERT_EQUAL(nat_pcp_map_request(req, nonce, client, 7075, 7075, 3600), NAT_PCP_MAP_LEN);
    CU_ASSERT_EQUAL(req[0], 2); /* version */
    CU_ASSERT_EQUAL(req[1], 1); /* R = 0, MAP */
    CU_ASSERT_EQUAL(req[4] << 24 | req[5] << 16 | req[6] << 8 | req[7], 3600);
    CU_ASSERT_EQUAL(req[18], 0xff); /* ::ffff:10.1.0.13 */
    CU_ASSERT_EQUAL(req[19], 0xff);
    CU_ASSERT_EQUAL(memcmp(req + 20, v4, 4), 0);
    CU_ASSERT_EQUAL(memcmp(req + 24, nonce, 12), 0);
    CU_ASSERT_EQUAL(req[36], 6);                   /* TCP */
    CU_ASSERT_EQUAL(req[40] << 8 | req[41], 7075); /* internal */
    CU_ASSERT_EQUAL(req[42] << 8 | req[43], 7075); /* suggested */
    CU_ASSERT_EQUAL(req[54], 0xff);                /* any address: ::ffff:0.0.0.0 */
    CU_ASSERT_EQUAL(req[56], 0);

    /* An IPv6 pinhole: our global address as it is, no suggested address (::). */
    uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1};
    v6[15] = 0x10;
    nat_pcp_map_request(req, nonce, v6, 7071, 7071, 3600);
    CU_ASSERT_EQUAL(memcmp(req + 8, v6, 16), 0);
    static const uint8_t zero[16];
    CU_ASSERT_EQUAL(memcmp(req + 44, zero, 16), 0);
}

static void answer(uint8_t *a, unsigned result, uint16_t port)
{
    const uint8_t v4[4] = {10, 1, 0, 13};
    uint8_t client[16];
    nat_pcp_addr_v4(client, v4);
    nat_pcp_map_request(a, nonce, client, 7075, 7075, 3600);
    a[1] = 0x81; /* R = 1 */
    a[3] = (uint8_t)result;
    a[8] = 0, a[9] = 0, a[10] = 0x01, a[11] = 0x00; /* epoch 256 */
    memset(a + 12, 0, 12);
    a[42] = (uint8_t)(port >> 8), a[43] = (uint8_t)port;
    a[56] = 20, a[57] = 0, a[58] = 1, a[59] = 99; /* 20.0.1.99 */
}

static void test_answer(void)
{
    uint8_t a[NAT_PCP_MAP_LEN + 8];
    struct nat_pcp_answer out;
    answer(a, 0, 7075);
    CU_ASSERT_EQUAL(nat_pcp_map_answer(a, NAT_PCP_MAP_LEN, nonce, 7075, &out), 0);
    CU_ASSERT_EQUAL(out.result, 0);
    CU_ASSERT_EQUAL(out.lifetime_s, 3600);
    CU_ASSERT_EQUAL(out.epoch, 256);
    CU_ASSERT_EQUAL(out.external_port, 7075);
    CU_ASSERT_EQUAL(out.external_ip[12], 20);
    CU_ASSERT_EQUAL(out.external_ip[15], 99);
    /* with an option after it */
    CU_ASSERT_EQUAL(nat_pcp_map_answer(a, sizeof(a), nonce, 7075, &out), 0);
    /* an error answer still names the mapping */
    answer(a, 2, 0);
    CU_ASSERT_EQUAL(nat_pcp_map_answer(a, NAT_PCP_MAP_LEN, nonce, 7075, &out), 0);
    CU_ASSERT_EQUAL(out.result, 2);
    CU_ASSERT_STRING_EQUAL(nat_pcp_result_str(out.result), "NOT_AUTHORIZED");
}

static void test_not_ours(void)
{
    uint8_t a[NAT_PCP_MAP_LEN];
    struct nat_pcp_answer out;
    answer(a, 0, 7075);
    uint8_t other[NAT_PCP_NONCE_LEN];
    memcpy(other, nonce, sizeof(other));
    other[11] ^= 1;
    CU_ASSERT_EQUAL(nat_pcp_map_answer(a, sizeof(a), other, 7075, &out), -1); /* another nonce */
    CU_ASSERT_EQUAL(nat_pcp_map_answer(a, sizeof(a), nonce, 7076, &out), -1); /* another port */
    CU_ASSERT_EQUAL(nat_pcp_map_answer(a, sizeof(a) - 1, nonce, 7075, &out), -1); /* short */
    a[1] = 0x01; /* a request, not an answer */
    CU_ASSERT_EQUAL(nat_pcp_map_answer(a, sizeof(a), nonce, 7075, &out), -1);
    answer(a, 0, 7075);
    a[0] = 0; /* NAT-PMP's version */
    CU_ASSERT_EQUAL(nat_pcp_map_answer(a, sizeof(a), nonce, 7075, &out), -1);
    CU_ASSERT_STRING_EQUAL(nat_pcp_result_str(200), "unknown result");
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("nat_pcp", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "a MAP request", test_request);
    CU_add_test(s, "an answer", test_answer);
    CU_add_test(s, "answers that are not ours", test_not_ours);
    return 0;
}
