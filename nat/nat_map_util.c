/* nat_map_util.c - names and pure helpers of the port-mapping state machine
 * (declared in nat_map_fsm.h): backoff, which IPv4 addresses are public,
 * NAT-PMP epoch checks, status comparison. */
#include "nat_map_fsm.h"

#include <arpa/inet.h>
#include <string.h>

/* ---- names ------------------------------------------------------------- */

const char *nat_map_state_str(enum nat_map_state s)
{
    switch (s) {
    case NAT_MAP_OFF:
        return "off";
    case NAT_MAP_DISCOVERING:
        return "discovering";
    case NAT_MAP_NO_GATEWAY:
        return "no-gateway";
    case NAT_MAP_MAPPING:
        return "mapping";
    case NAT_MAP_MAPPED:
        return "mapped";
    case NAT_MAP_FAILED:
        return "failed";
    }
    return "unknown";
}

const char *nat_method_str(enum nat_method m)
{
    switch (m) {
    case NAT_METHOD_UPNP:
        return "upnp";
    case NAT_METHOD_NATPMP:
        return "natpmp";
    case NAT_METHOD_PCP:
        return "pcp";
    case NAT_METHOD_NONE:
        break;
    }
    return NULL;
}

const char *nat_job_kind_str(enum nat_job_kind k)
{
    switch (k) {
    case NAT_JOB_DISCOVER:
        return "discover";
    case NAT_JOB_MAP:
        return "map";
    case NAT_JOB_CHECK:
        return "check";
    case NAT_JOB_NONE:
        break;
    }
    return "none";
}

const char *nat_fsm_phase_str(enum nat_fsm_phase p)
{
    static const char *const names[] = {"idle",    "will-discover", "discovering", "will-map",
                                        "mapping", "mapped",        "renewing",    "checking"};
    if ((unsigned)p < sizeof(names) / sizeof(names[0]))
        return names[p];
    return "unknown";
}

/* ---- pure helpers ------------------------------------------------------ */

uint64_t nat_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t max_ms)
{
    if (attempt == 0)
        return 0;
    if (attempt > 32)
        return max_ms;
    uint64_t d = base_ms << (attempt - 1);
    return d > max_ms || d < base_ms ? max_ms : d;
}

bool nat_addr_is_public(const char *ip)
{
    struct in6_addr a;
    if (ip && inet_pton(AF_INET6, ip, &a) == 1)
        return (a.s6_addr[0] & 0xe0) == 0x20;
    return nat_ipv4_is_public(ip);
}

bool nat_ipv4_is_public(const char *ip)
{
    struct in_addr a;
    if (!ip || inet_pton(AF_INET, ip, &a) != 1)
        return false;
    uint32_t x = ntohl(a.s_addr);
    static const struct {
        uint32_t net, mask;
    } reserved[] = {
        {0x00000000, 0xff000000}, /* 0/8 */
        {0x0a000000, 0xff000000}, /* 10/8 */
        {0x64400000, 0xffc00000}, /* 100.64/10 CGNAT */
        {0x7f000000, 0xff000000}, /* 127/8 */
        {0xa9fe0000, 0xffff0000}, /* 169.254/16 */
        {0xac100000, 0xfff00000}, /* 172.16/12 */
        {0xc0000000, 0xffffff00}, /* 192.0.0/24 */
        {0xc0000200, 0xffffff00}, /* 192.0.2/24 TEST-NET-1 */
        {0xc0a80000, 0xffff0000}, /* 192.168/16 */
        {0xc6120000, 0xfffe0000}, /* 198.18/15 */
        {0xc6336400, 0xffffff00}, /* 198.51.100/24 TEST-NET-2 */
        {0xcb007100, 0xffffff00}, /* 203.0.113/24 TEST-NET-3 */
        {0xe0000000, 0xe0000000}, /* 224/3: multicast, reserved, broadcast */
    };
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if ((x & reserved[i].mask) == reserved[i].net)
            return false;
    return true;
}

bool nat_pmp_epoch_lost(uint32_t prev_epoch, uint64_t prev_ms, uint32_t epoch, uint64_t now_ms)
{
    /* RFC 6886 3.6: expect at least the old epoch plus 7/8 of the time that
     * passed here; more than 2 s less means the gateway lost its mappings. */
    uint64_t elapsed = now_ms > prev_ms ? now_ms - prev_ms : 0;
    uint64_t expected_ms = (uint64_t)prev_epoch * 1000u + elapsed * 7u / 8u;
    return (uint64_t)epoch * 1000u + 2000u < expected_ms;
}

static bool str_eq_null(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

bool nat_status_differs(const struct nat_upnp_status *a, const struct nat_upnp_status *b)
{
    return a->state != b->state || !str_eq_null(a->method, b->method) ||
           strcmp(a->gateway, b->gateway) != 0 || strcmp(a->lan_addr, b->lan_addr) != 0 ||
           strcmp(a->external_ip, b->external_ip) != 0 || a->internal_port != b->internal_port ||
           a->external_port != b->external_port || a->lease_s != b->lease_s ||
           a->error_code != b->error_code || strcmp(a->error, b->error) != 0 ||
           a->mapped_since_ms != b->mapped_since_ms || a->remaps != b->remaps;
}
