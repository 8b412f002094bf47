/* nat_announce: a gateway's SSDP NOTIFYs and NAT-PMP announcements read
 * as miniupnpd sends them, other devices' and malformed ones ignored, and
 * when they mean the gateway restarted. (Heard from a real miniupnpd:
 * natbed/test_nat_faults case 8.) */
#include "cunit_main.h"
#include "nat_announce.h"

#include <CUnit/CUnit.h>
#include <string.h>

static struct nat_announce parse(const char *text)
{
    struct nat_announce a;
    nat_announce_parse((const uint8_t *)text, strlen(text), &a);
    return a;
}

static const char alive[] =
    "NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=120\r\n"
    "LOCATION: http://10.1.0.1:5000/rootDesc.xml\r\nSERVER: Debian/12 UPnP/1.1 MiniUPnPd/2.3.1\r\n"
    "NT: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nUSN: uuid:x::urn:schemas-upnp-"
    "org:device:InternetGatewayDevice:1\r\nNTS: ssdp:alive\r\nOPT: \"http://schemas.upnp.org/"
    "upnp/1/0/\"; ns=01\r\n01-NLS: 1765120000\r\nBOOTID.UPNP.ORG: 1765120000\r\n"
    "CONFIGID.UPNP.ORG: 1337\r\n\r\n";

static void test_ssdp(void)
{
    struct nat_announce a = parse(alive);
    CU_ASSERT_EQUAL(a.kind, NAT_ANNOUNCE_ALIVE);
    CU_ASSERT_TRUE(a.has_bootid);
    CU_ASSERT_EQUAL(a.bootid, 1765120000u);
    struct nat_announce b =
        parse("NOTIFY * HTTP/1.1\r\nnt: upnp:rootdevice\r\nNTS: ssdp:byebye\r\n\r\n");
    CU_ASSERT_EQUAL(b.kind, NAT_ANNOUNCE_BYEBYE);
    CU_ASSERT_FALSE(b.has_bootid);
    /* a television, an M-SEARCH, headers after the blank line, junk */
    CU_ASSERT_EQUAL(parse("NOTIFY * HTTP/1.1\r\nNT: urn:schemas-upnp-org:device:MediaRenderer:1\r\n"
                          "NTS: ssdp:alive\r\n\r\n")
                        .kind,
                    NAT_ANNOUNCE_NONE);
    CU_ASSERT_EQUAL(parse("M-SEARCH * HTTP/1.1\r\nST: ssdp:all\r\n\r\n").kind, NAT_ANNOUNCE_NONE);
    CU_ASSERT_EQUAL(
        parse("NOTIFY * HTTP/1.1\r\n\r\nNT: upnp:rootdevice\r\nNTS: ssdp:alive\r\n").kind,
        NAT_ANNOUNCE_NONE);
    CU_ASSERT_EQUAL(
        parse("NOTIFY * HTTP/1.1\r\nNT: upnp:rootdevice\r\nNTS: ssdp:update\r\n\r\n").kind,
        NAT_ANNOUNCE_NONE);
    struct nat_announce big =
        parse("NOTIFY * HTTP/1.1\r\nNT: upnp:rootdevice\r\nNTS: ssdp:alive\r\n"
              "BOOTID.UPNP.ORG: 99999999999\r\n\r\n");
    CU_ASSERT_EQUAL(big.kind, NAT_ANNOUNCE_ALIVE);
    CU_ASSERT_FALSE(big.has_bootid); /* out of range: not believed */
}

static void test_natpmp(void)
{
    const uint8_t ann[12] = {0, 128, 0, 0, 0, 0, 0, 3, 20, 0, 1, 1};
    struct nat_announce a;
    nat_announce_parse(ann, sizeof(ann), &a);
    CU_ASSERT_EQUAL(a.kind, NAT_ANNOUNCE_NATPMP);
    CU_ASSERT_EQUAL(a.epoch, 3);
    CU_ASSERT_EQUAL(a.external_ip[0], 20);
    const uint8_t bad[12] = {0, 128, 0, 3, 0, 0, 0, 3, 20, 0, 1, 1}; /* result 3: an error */
    nat_announce_parse(bad, sizeof(bad), &a);
    CU_ASSERT_EQUAL(a.kind, NAT_ANNOUNCE_NONE);
    nat_announce_parse(ann, 11, &a);
    CU_ASSERT_EQUAL(a.kind, NAT_ANNOUNCE_NONE);
}

static void test_restarted(void)
{
    struct nat_announce none = {0}, a1 = parse(alive), a2 = a1, bye = {.kind = NAT_ANNOUNCE_BYEBYE};
    a2.bootid++;
    CU_ASSERT_FALSE(
        nat_announce_restarted(&a1, &none, 0));            /* the first heard: nothing to compare */
    CU_ASSERT_FALSE(nat_announce_restarted(&a1, &a1, 30)); /* the periodic alive */
    CU_ASSERT_TRUE(nat_announce_restarted(&a2, &a1, 30));  /* a new boot */
    CU_ASSERT_TRUE(nat_announce_restarted(&bye, &a1, 30));
    CU_ASSERT_FALSE(nat_announce_restarted(&bye, &bye, 0)); /* the rest of the burst */
    CU_ASSERT_TRUE(nat_announce_restarted(&a1, &bye, 2));   /* back */
    struct nat_announce p1 = {.kind = NAT_ANNOUNCE_NATPMP, .epoch = 1000}, p2 = p1;
    p2.epoch = 1100;
    CU_ASSERT_FALSE(nat_announce_restarted(&p2, &p1, 100));
    p2.epoch = 1090; /* within 2 s + 1/8 */
    CU_ASSERT_FALSE(nat_announce_restarted(&p2, &p1, 100));
    p2.epoch = 5; /* began again */
    CU_ASSERT_TRUE(nat_announce_restarted(&p2, &p1, 100));
    CU_ASSERT_TRUE(nat_announce_younger_than(&p2, 600));
    CU_ASSERT_FALSE(nat_announce_younger_than(&p1, 600));
    CU_ASSERT_FALSE(nat_announce_younger_than(&a1, 600));
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("nat_announce", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "SSDP NOTIFYs", test_ssdp);
    CU_add_test(s, "NAT-PMP announcements", test_natpmp);
    CU_add_test(s, "when the gateway restarted", test_restarted);
    return 0;
}
