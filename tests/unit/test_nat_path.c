/* test_nat_path.c - nat/nat_path.h: what a peer is (public, mapped,
 * unreachable) from a dial-back, and which way a download takes (direct,
 * reversal, relay) for every kind of source and downloader. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <string.h>

#include "nat_path.h"

static struct wire_addr v4(const char *ip, uint16_t port)
{
    struct wire_addr a = {.family = WIRE_ADDR_IPV4, .port = port};
    inet_pton(AF_INET, ip, a.ip);
    return a;
}

static void test_candidates(void)
{
    struct wire_addr mapped = v4("20.0.1.1", 40000), listen_any = v4("0.0.0.0", 7071),
                     listen = v4("10.1.0.2", 7071), observed = v4("20.0.1.1", 51234), out[4];
    size_t n = nat_reach_candidates(&mapped, &listen_any, &observed, 7071, out, 4);
    CU_ASSERT_EQUAL(n, 2); /* the mapping first; a wildcard listen address is no address */
    CU_ASSERT_TRUE(wire_addr_equal(&out[0], &mapped));
    struct wire_addr want = v4("20.0.1.1", 7071);
    CU_ASSERT_TRUE(wire_addr_equal(&out[1], &want));
    n = nat_reach_candidates(NULL, &listen, &observed, 7071, out, 4);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_TRUE(wire_addr_equal(&out[0], &listen));
    /* A public host that listens on its own address: one candidate. */
    struct wire_addr pub = v4("20.0.0.9", 7071), seen = v4("20.0.0.9", 40001);
    CU_ASSERT_EQUAL(nat_reach_candidates(NULL, &pub, &seen, 7071, out, 4), 1);
}

static void test_classify(void)
{
    struct wire_addr mapped = v4("20.0.1.1", 40000), fwd = v4("20.0.1.1", 7071),
                     own = v4("20.0.0.9", 7071), lan = v4("10.1.0.2", 0);
    struct msg_dialback_probe probes[2] = {{mapped, MSG_DIALBACK_OK}, {fwd, MSG_DIALBACK_TIMEOUT}};
    struct nat_reach_facts f = {probes, 2, &mapped, "mapped", &lan, 1, NULL};
    struct nat_reach r;
    nat_reach_classify(&f, &r);
    CU_ASSERT_EQUAL(r.reach, MSG_REACH_MAPPED);
    CU_ASSERT_TRUE(wire_addr_equal(&r.proved, &mapped));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.why, "port mapping"));

    probes[0].outcome = MSG_DIALBACK_TIMEOUT;
    f.mapping_state = "no UPnP or NAT-PMP gateway";
    f.mapped = NULL;
    nat_reach_classify(&f, &r);
    CU_ASSERT_EQUAL(r.reach, MSG_REACH_UNREACHABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.why, "no UPnP or NAT-PMP gateway"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.why, "dial-back to 20.0.1.1:7071 timed out"));

    /* cppcheck-suppress unreadVariable ; nat_reach_classify reads it through f.probes */
    probes[1].outcome = MSG_DIALBACK_OK; /* the router forwards the port by hand */
    nat_reach_classify(&f, &r);
    CU_ASSERT_EQUAL(r.reach, MSG_REACH_MAPPED);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.why, "port forwarded"));

    struct msg_dialback_probe mine = {own, MSG_DIALBACK_OK};
    struct wire_addr own_ip = v4("20.0.0.9", 0);
    struct nat_reach_facts g = {&mine, 1, NULL, "no gateway", &own_ip, 1, NULL};
    nat_reach_classify(&g, &r);
    CU_ASSERT_EQUAL(r.reach, MSG_REACH_PUBLIC);

    /* Our own IPv6 address, reached through the router's firewall pinhole:
     * mapped (open while the router keeps it), not public. */
    struct wire_addr v6 = {.family = WIRE_ADDR_IPV6, .port = 7071};
    v6.ip[0] = 0x20, v6.ip[1] = 0x01, v6.ip[2] = 0x0d, v6.ip[3] = 0xb8, v6.ip[15] = 0x10;
    struct msg_dialback_probe through = {v6, MSG_DIALBACK_OK};
    struct wire_addr v6_ip = v6;
    v6_ip.port = 0;
    struct nat_reach_facts h = {&through, 1, NULL, "no gateway", &v6_ip, 1, &v6};
    nat_reach_classify(&h, &r);
    CU_ASSERT_EQUAL(r.reach, MSG_REACH_MAPPED);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.why, "IPv6 firewall pinhole"));
    CU_ASSERT(wire_addr_equal(&r.proved, &v6));
    h.pinhole = NULL; /* the same success without a pinhole we asked for: public */
    nat_reach_classify(&h, &r);
    CU_ASSERT_EQUAL(r.reach, MSG_REACH_PUBLIC);
    through.outcome = MSG_DIALBACK_TIMEOUT; /* the firewall drops it: unreachable */
    h.pinhole = &v6;
    nat_reach_classify(&h, &r);
    CU_ASSERT_EQUAL(r.reach, MSG_REACH_UNREACHABLE);

    struct nat_reach_facts none = {NULL, 0, NULL, "discovering", NULL, 0, NULL};
    nat_reach_classify(&none, &r);
    CU_ASSERT_EQUAL(r.reach, MSG_REACH_UNREACHABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.why, "no address to dial back"));
}

static void test_nat_type(void)
{
    struct wire_addr seen[2] = {v4("20.0.1.1", 40000), v4("20.0.1.1", 40002)};
    struct wire_addr local[2] = {v4("10.1.0.2", 40000), v4("10.1.0.2", 40002)};
    CU_ASSERT_EQUAL(nat_type_guess(seen, local, 2), NAT_TYPE_PRESERVES);
    seen[1].port = 61000;
    CU_ASSERT_EQUAL(nat_type_guess(seen, local, 2), NAT_TYPE_REWRITES);
    CU_ASSERT_EQUAL(nat_type_guess(local, local, 2), NAT_TYPE_NONE);
    CU_ASSERT_EQUAL(nat_type_guess(seen, local, 0), NAT_TYPE_UNKNOWN);
}

/* The matrix of the NAT test bed, in miniature: every reachability of the
 * source and of the downloader gives the expected first path. */
static void test_path_matrix(void)
{
    static const uint8_t kinds[] = {MSG_REACH_PUBLIC, MSG_REACH_MAPPED, MSG_REACH_UNREACHABLE};
    for (size_t s = 0; s < 3; s++) {
        for (size_t d = 0; d < 3; d++) {
            struct nat_path_facts f = {.source_reach = kinds[s],
                                       .source_addrs = true,
                                       .self_reach = kinds[d],
                                       .attached = true,
                                       .relay_offered = true};
            char why[256];
            enum nat_path p = nat_path_next(&f, NAT_PATH_NONE, why, sizeof(why));
            enum nat_path want = kinds[s] != MSG_REACH_UNREACHABLE   ? NAT_PATH_DIRECT
                                 : kinds[d] != MSG_REACH_UNREACHABLE ? NAT_PATH_REVERSAL
                                                                     : NAT_PATH_RELAY;
            CU_ASSERT_EQUAL(p, want);
            CU_ASSERT_PTR_NOT_NULL(strstr(why, nat_path_str(want)));
        }
    }
}

static void test_path_fallbacks(void)
{
    struct nat_path_facts f = {.source_reach = MSG_REACH_MAPPED,
                               .source_addrs = true,
                               .self_reach = MSG_REACH_MAPPED,
                               .attached = true,
                               .relay_offered = true};
    char why[256];
    CU_ASSERT_EQUAL(nat_path_next(&f, NAT_PATH_DIRECT, why, sizeof(why)), NAT_PATH_REVERSAL);
    CU_ASSERT_EQUAL(nat_path_next(&f, NAT_PATH_REVERSAL, why, sizeof(why)), NAT_PATH_RELAY);
    CU_ASSERT_EQUAL(nat_path_next(&f, NAT_PATH_RELAY, why, sizeof(why)), NAT_PATH_NONE);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "no way left"));
    f.relay_offered = false;
    CU_ASSERT_EQUAL(nat_path_next(&f, NAT_PATH_REVERSAL, why, sizeof(why)), NAT_PATH_NONE);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "does not relay"));
    /* The user allows relay only: the cheaper ways are skipped, and say so. */
    f.relay_offered = true;
    f.allowed = 1u << NAT_PATH_RELAY;
    CU_ASSERT_EQUAL(nat_path_next(&f, NAT_PATH_NONE, why, sizeof(why)), NAT_PATH_RELAY);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "direct skipped: not allowed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "reversal skipped: not allowed"));
    /* An unreachable source on our own network: direct still first. */
    f = (struct nat_path_facts){.source_reach = MSG_REACH_UNREACHABLE,
                                .source_addrs = true,
                                .same_network = true,
                                .self_reach = MSG_REACH_UNREACHABLE,
                                .attached = true,
                                .relay_offered = true};
    CU_ASSERT_EQUAL(nat_path_next(&f, NAT_PATH_NONE, why, sizeof(why)), NAT_PATH_DIRECT);
    /* Detached, nothing known: nothing to try, and it says why. */
    f = (struct nat_path_facts){.source_reach = MSG_REACH_UNREACHABLE};
    CU_ASSERT_EQUAL(nat_path_next(&f, NAT_PATH_NONE, why, sizeof(why)), NAT_PATH_NONE);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "no address of the source"));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "no supernode"));
    char tiny[8];
    CU_ASSERT_EQUAL(nat_path_next(&f, NAT_PATH_NONE, tiny, sizeof(tiny)), NAT_PATH_NONE);
    CU_ASSERT_EQUAL(strlen(tiny), sizeof(tiny) - 1);
}

static struct wire_addr ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
    struct wire_addr w = {.family = WIRE_ADDR_IPV4, .port = port};
    w.ip[0] = a, w.ip[1] = b, w.ip[2] = c, w.ip[3] = d;
    return w;
}

static void test_addr_on_link_and_kind(void)
{
    struct nat_subnet nets[2] = {{ip4(10, 1, 0, 10, 0), 24}, {ip4(192, 168, 8, 2, 0), 22}};
    struct wire_addr same = ip4(10, 1, 0, 11, 7071), other_lan = ip4(10, 2, 0, 11, 7071),
                     wide = ip4(192, 168, 11, 200, 1), outside = ip4(192, 168, 12, 1, 1);
    CU_ASSERT_TRUE(nat_addr_on_link(&same, nets, 2));
    CU_ASSERT_FALSE(nat_addr_on_link(&other_lan, nets, 2)); /* another LAN: skip it */
    CU_ASSERT_TRUE(nat_addr_on_link(&wide, nets, 2));       /* a /22: bits within a byte */
    CU_ASSERT_FALSE(nat_addr_on_link(&outside, nets, 2));
    CU_ASSERT_FALSE(nat_addr_on_link(&same, nets, 0));
    struct wire_addr six = {.family = WIRE_ADDR_IPV6, .port = 1};
    six.ip[0] = 0xfd;
    CU_ASSERT_FALSE(nat_addr_on_link(&six, nets, 2)); /* another family */
    char out[96];
    nat_addr_describe(&same, MSG_REACH_UNREACHABLE, out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, "LAN 10.1.0.11:7071, IPv4");
    struct wire_addr pub = ip4(20, 0, 2, 1, 7071);
    nat_addr_describe(&pub, MSG_REACH_MAPPED, out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, "mapped 20.0.2.1:7071, IPv4");
    nat_addr_describe(&pub, MSG_REACH_PUBLIC, out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, "public 20.0.2.1:7071, IPv4");
}

/* Neither side reachable: a hole punch when our NAT keeps ports and the
 * supernode carries notes, before the relay; not when ours changes ports,
 * nor when it is not known yet. */
static void test_path_punch(void)
{
    struct nat_path_facts f = {.source_reach = MSG_REACH_UNREACHABLE,
                               .source_addrs = true,
                               .self_reach = MSG_REACH_UNREACHABLE,
                               .attached = true,
                               .relay_offered = true,
                               .punch_offered = true,
                               .self_nat = NAT_TYPE_PRESERVES};
    char why[512];
    CU_ASSERT_EQUAL(nat_path_next(&f, NAT_PATH_NONE, why, sizeof(why)), NAT_PATH_PUNCH);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "trying holepunch"));
    CU_ASSERT_EQUAL(nat_path_next(&f, NAT_PATH_PUNCH, why, sizeof(why)), NAT_PATH_RELAY);
    f.self_nat = NAT_TYPE_REWRITES;
    CU_ASSERT_EQUAL(nat_path_next(&f, NAT_PATH_NONE, why, sizeof(why)), NAT_PATH_RELAY);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "our NAT changes ports"));
    f.self_nat = NAT_TYPE_UNKNOWN;
    CU_ASSERT_EQUAL(nat_path_next(&f, NAT_PATH_NONE, why, sizeof(why)), NAT_PATH_RELAY);
    f.self_nat = NAT_TYPE_NONE; /* no NAT at all: our ports are what others see */
    CU_ASSERT_EQUAL(nat_path_next(&f, NAT_PATH_NONE, why, sizeof(why)), NAT_PATH_PUNCH);
    f.punch_offered = false;
    CU_ASSERT_EQUAL(nat_path_next(&f, NAT_PATH_NONE, why, sizeof(why)), NAT_PATH_RELAY);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "does not carry punch notes"));
    f.punch_offered = true;
    f.allowed = (1u << NAT_PATH_DIRECT) | (1u << NAT_PATH_RELAY);
    CU_ASSERT_EQUAL(nat_path_next(&f, NAT_PATH_NONE, why, sizeof(why)), NAT_PATH_RELAY);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "holepunch skipped: not allowed"));
    CU_ASSERT_STRING_EQUAL(nat_path_str(NAT_PATH_PUNCH), "holepunch");
}

/* A source behind our own public address whose direct connection failed
 * (an isolated LAN, a router with no loopback): reversal and a punch would
 * aim at our own public address too; straight to the relay. */
static void test_path_behind_us(void)
{
    struct nat_path_facts f = {.source_reach = MSG_REACH_MAPPED,
                               .source_addrs = true,
                               .same_network = true,
                               .self_reach = MSG_REACH_MAPPED,
                               .attached = true,
                               .relay_offered = true,
                               .punch_offered = true,
                               .self_nat = NAT_TYPE_PRESERVES};
    char why[512];
    CU_ASSERT_EQUAL(nat_path_next(&f, NAT_PATH_NONE, why, sizeof(why)), NAT_PATH_DIRECT);
    CU_ASSERT_EQUAL(nat_path_next(&f, NAT_PATH_DIRECT, why, sizeof(why)), NAT_PATH_RELAY);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "reversal skipped: the source is behind our own"));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "holepunch skipped: the source is behind our own"));
    f.same_network = false; /* elsewhere: reversal as before */
    CU_ASSERT_EQUAL(nat_path_next(&f, NAT_PATH_DIRECT, why, sizeof(why)), NAT_PATH_REVERSAL);
    /* ... unless it has no address of our family (an IPv4-only source, we
     * IPv6-only): it could not connect to us, nor we punch to it */
    f.family_apart = true;
    CU_ASSERT_EQUAL(nat_path_next(&f, NAT_PATH_DIRECT, why, sizeof(why)), NAT_PATH_RELAY);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(why, "reversal skipped: the source has no address of our family"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(why, "holepunch skipped: the source has no address of our family"));
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("nat_path", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "dial-back candidates, best first", test_candidates);
    CU_add_test(s, "public, mapped or unreachable, and why", test_classify);
    CU_add_test(s, "NAT type from two sessions", test_nat_type);
    CU_add_test(s, "first path for every pair of reachabilities", test_path_matrix);
    CU_add_test(s, "fallbacks in order, and what is skipped", test_path_fallbacks);
    CU_add_test(s, "an address on our network, and its kind", test_addr_on_link_and_kind);
    CU_add_test(s, "hole punching in the ladder", test_path_punch);
    CU_add_test(s, "a source behind our own public address", test_path_behind_us);
    return 0;
}
