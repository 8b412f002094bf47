/* nat_pcp.c - PCP MAP requests (nat_pcp.h, RFC 6887). The codec is pure;
 * the exchanges run on the nat_worker thread, each bounded. */
#include "clock.h"
#include "nat_pcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <natpmp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the codec ------------------------------------------------------------------------ */

const char *nat_pcp_result_str(unsigned code)
{
    static const char *const words[] = {
        "SUCCESS",          "UNSUPP_VERSION",        "NOT_AUTHORIZED",   "MALFORMED_REQUEST",
        "UNSUPP_OPCODE",    "UNSUPP_OPTION",         "MALFORMED_OPTION", "NETWORK_FAILURE",
        "NO_RESOURCES",     "UNSUPP_PROTOCOL",       "USER_EX_QUOTA",    "CANNOT_PROVIDE_EXTERNAL",
        "ADDRESS_MISMATCH", "EXCESSIVE_REMOTE_PEERS"};
    return code < sizeof(words) / sizeof(words[0]) ? words[code] : "unknown result";
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void nat_pcp_addr_v4(uint8_t out[16], const uint8_t v4[4])
{
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, v4, 4);
}

static bool is_v4_mapped(const uint8_t a[16])
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a, prefix, 12) == 0;
}

size_t nat_pcp_map_request(uint8_t out[NAT_PCP_MAP_LEN], const uint8_t nonce[NAT_PCP_NONCE_LEN],
                           const uint8_t client[16], uint16_t internal_port,
                           uint16_t suggested_port, uint32_t lifetime_s)
{
    static const uint8_t any4[4] = {0, 0, 0, 0};
    memset(out, 0, NAT_PCP_MAP_LEN);
    out[0] = NAT_PCP_VERSION;
    out[1] = NAT_PCP_OP_MAP; /* R = 0: a request */
    put32(out + 4, lifetime_s);
    memcpy(out + 8, client, 16);
    memcpy(out + 24, nonce, NAT_PCP_NONCE_LEN);
    out[36] = 6; /* TCP */
    put16(out + 40, internal_port);
    put16(out + 42, suggested_port);
    /* No suggested external address: ::ffff:0.0.0.0 for IPv4, :: for an
     * IPv6 pinhole (RFC 6887 section 11.1). */
    if (is_v4_mapped(client))
        nat_pcp_addr_v4(out + 44, any4);
    return NAT_PCP_MAP_LEN;
}

int nat_pcp_map_answer(const uint8_t *buf, size_t len, const uint8_t nonce[NAT_PCP_NONCE_LEN],
                       uint16_t internal_port, struct nat_pcp_answer *out)
{
    memset(out, 0, sizeof(*out));
    /* Options may follow (a server may add some); we need none of them. */
    if (len < NAT_PCP_MAP_LEN || len > 1100)
        return -1;
    if (buf[0] != NAT_PCP_VERSION || buf[1] != (0x80 | NAT_PCP_OP_MAP))
        return -1;
    out->result = buf[3];
    out->lifetime_s = get32(buf + 4);
    out->epoch = get32(buf + 8);
    /* An error answer echoes the request's opcode data, nonce included. */
    if (memcmp(buf + 24, nonce, NAT_PCP_NONCE_LEN) != 0 || buf[36] != 6 ||
        get16(buf + 40) != internal_port)
        return -1;
    out->external_port = get16(buf + 42);
    memcpy(out->external_ip, buf + 44, 16);
    return 0;
}

/* ---- the exchanges (worker thread) ------------------------------------------------------ */

struct nat_pcp {
    int fd;             /* UDP, connected to the gateway's port 5351; -1 when closed */
    bool v6;            /* the socket is IPv6: a firewall pinhole, not a NAT mapping */
    uint8_t client[16]; /* our address in PCP form (IPv4-mapped for IPv4) */
    uint8_t nonce[NAT_PCP_NONCE_LEN];
    bool have_nonce;
    bool silent; /* the last discovery heard nothing on port 5351 (no NAT-PMP either) */
    char gateway[64];
    char lan_addr[64];
};

struct nat_pcp *nat_pcp_new(void)
{
    struct nat_pcp *p = calloc(1, sizeof(*p));
    if (p != NULL)
        p->fd = -1;
    return p;
}

static void pcp_close(struct nat_pcp *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    p->gateway[0] = p->lan_addr[0] = '\0';
}

void nat_pcp_free(struct nat_pcp *p)
{
    if (p == NULL)
        return;
    pcp_close(p);
    free(p);
}

bool nat_pcp_silent(const struct nat_pcp *p)
{
    return p->silent;
}

const char *nat_pcp_gateway(const struct nat_pcp *p)
{
    return p->fd >= 0 ? p->gateway : "";
}

/* The IPv6 default route's gateway and interface, from
 * /proc/net/ipv6_route (the lowest metric wins): 0, or -1. */
static int default_gateway6(struct in6_addr *gw, char ifname[IF_NAMESIZE])
{
    FILE *f = fopen("/proc/net/ipv6_route", "re");
    if (f == NULL)
        return -1;
    char line[256], dst[33], src[33], hop[33], dev[IF_NAMESIZE + 1];
    unsigned dlen, slen, metric, refs, use, flags, best = UINT32_MAX;
    int found = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "%32s %x %32s %x %32s %x %x %x %x %16s", dst, &dlen, src, &slen, hop,
                   &metric, &refs, &use, &flags, dev) != 10)
            continue;
        if (dlen != 0 || strspn(dst, "0") != 32 || !(flags & 0x2) /* RTF_GATEWAY */ ||
            (flags & 0x200) /* RTF_REJECT */ || metric >= best)
            continue;
        uint8_t b[16];
        bool ok = strlen(hop) == 32;
        for (int i = 0; ok && i < 16; i++) {
            unsigned v;
            ok = sscanf(hop + 2 * i, "%2x", &v) == 1;
            b[i] = (uint8_t)v;
        }
        if (!ok || strlen(dev) >= IF_NAMESIZE)
            continue;
        memcpy(gw->s6_addr, b, 16);
        memcpy(ifname, dev, strlen(dev) + 1);
        best = metric;
        found = 0;
    }
    fclose(f);
    return found;
}

/* A global, stable address of ours on ifname (not temporary, deprecated
 * or tentative), from /proc/net/if_inet6: the one a pinhole is for. */
static int global_addr6(const char *ifname, struct in6_addr *out)
{
    FILE *f = fopen("/proc/net/if_inet6", "re");
    if (f == NULL)
        return -1;
    char line[256], hex[33], dev[IF_NAMESIZE + 1];
    unsigned idx, plen, scope, flags;
    int found = -1;
    while (found != 0 && fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "%32s %x %x %x %x %16s", hex, &idx, &plen, &scope, &flags, dev) != 6 ||
            strcmp(dev, ifname) != 0 || scope != 0 || (flags & (0x01 | 0x20 | 0x40)) != 0)
            continue;
        bool ok = strlen(hex) == 32;
        for (int i = 0; ok && i < 16; i++) {
            unsigned v;
            ok = sscanf(hex + 2 * i, "%2x", &v) == 1;
            out->s6_addr[i] = (uint8_t)v;
        }
        if (ok && (out->s6_addr[0] & 0xe0) == 0x20) /* 2000::/3 */
            found = 0;
    }
    fclose(f);
    return found;
}

/* IPv6: a socket from our global address to the default router's PCP
 * port (RFC 6887: the PCP server is the default router). The gateway may
 * be link-local; the pinhole is for the global address we send from. */
static int pcp_open6(struct nat_pcp *p, char *err, size_t errlen)
{
    struct sockaddr_in6 gw = {.sin6_family = AF_INET6, .sin6_port = htons(NAT_PCP_PORT)};
    struct sockaddr_in6 me = {.sin6_family = AF_INET6};
    char ifname[IF_NAMESIZE];
    if (default_gateway6(&gw.sin6_addr, ifname) != 0) {
        snprintf(err, errlen, "PCP: no IPv6 default gateway");
        return -1;
    }
    if (IN6_IS_ADDR_LINKLOCAL(&gw.sin6_addr))
        gw.sin6_scope_id = if_nametoindex(ifname);
    inet_ntop(AF_INET6, &gw.sin6_addr, p->gateway, sizeof(p->gateway));
    if (global_addr6(ifname, &me.sin6_addr) != 0) {
        snprintf(err, errlen, "PCP: no global IPv6 address on %s", ifname);
        return -1;
    }
    p->fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (p->fd < 0 || bind(p->fd, (struct sockaddr *)&me, sizeof(me)) != 0 ||
        connect(p->fd, (struct sockaddr *)&gw, sizeof(gw)) != 0) {
        snprintf(err, errlen, "PCP: cannot open a socket to %s: %s", p->gateway, strerror(errno));
        pcp_close(p);
        return -1;
    }
    p->v6 = true;
    memcpy(p->client, me.sin6_addr.s6_addr, 16);
    inet_ntop(AF_INET6, &me.sin6_addr, p->lan_addr, sizeof(p->lan_addr));
    return 0;
}

/* Open a socket to the default gateway's PCP port (libnatpmp finds the
 * gateway; the address it sees us at is the socket's own). */
static int pcp_open(struct nat_pcp *p, bool v6, char *err, size_t errlen)
{
    pcp_close(p);
    if (v6)
        return pcp_open6(p, err, errlen);
    natpmp_t np;
    int rc = initnatpmp(&np, 0, 0);
    if (rc < 0) {
        snprintf(err, errlen, "PCP: no default gateway");
        return -1;
    }
    struct sockaddr_in gw = {.sin_family = AF_INET, .sin_port = htons(NAT_PCP_PORT)};
    gw.sin_addr.s_addr = np.gateway;
    closenatpmp(&np);
    inet_ntop(AF_INET, &gw.sin_addr, p->gateway, sizeof(p->gateway));
    p->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in local;
    socklen_t len = sizeof(local);
    if (p->fd < 0 || connect(p->fd, (struct sockaddr *)&gw, sizeof(gw)) != 0 ||
        getsockname(p->fd, (struct sockaddr *)&local, &len) != 0) {
        snprintf(err, errlen, "PCP: cannot open a socket to %s: %s", p->gateway, strerror(errno));
        pcp_close(p);
        return -1;
    }
    p->v6 = false;
    nat_pcp_addr_v4(p->client, (const uint8_t *)&local.sin_addr);
    inet_ntop(AF_INET, &local.sin_addr, p->lan_addr, sizeof(p->lan_addr));
    return 0;
}

/* Send a MAP and wait for its answer, resending at 250 ms, 750 ms, ... for
 * at most budget_ms. 0 with a, or -1 (no answer) with err. */
static int pcp_exchange(struct nat_pcp *p, uint16_t internal_port, uint16_t suggested,
                        uint32_t lifetime, unsigned budget_ms, struct nat_pcp_answer *a, char *err,
                        size_t errlen)
{
    uint8_t req[NAT_PCP_MAP_LEN];
    nat_pcp_map_request(req, p->nonce, p->client, internal_port, suggested, lifetime);
    uint64_t start = sova_mono_ms(), next_send = start;
    unsigned gap = 250;
    for (;;) {
        uint64_t now = sova_mono_ms();
        if (now >= start + budget_ms) {
            snprintf(err, errlen, "PCP: %s did not answer within %u ms", p->gateway, budget_ms);
            return -1;
        }
        if (now >= next_send) {
            if (send(p->fd, req, sizeof(req), 0) < 0 && errno == ECONNREFUSED) {
                p->silent = true;
                snprintf(err, errlen, "PCP: %s refused (no PCP server)", p->gateway);
                return -1;
            }
            next_send = now + gap;
            gap *= 2;
        }
        uint64_t until = next_send < start + budget_ms ? next_send : start + budget_ms;
        struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
        int n = poll(&pfd, 1, (int)(until - now));
        if (n < 0 && errno != EINTR) {
            snprintf(err, errlen, "PCP: poll: %s", strerror(errno));
            return -1;
        }
        if (n <= 0)
            continue;
        uint8_t buf[1100];
        ssize_t got = recv(p->fd, buf, sizeof(buf), 0);
        if (got < 0 && errno == ECONNREFUSED) {
            p->silent = true;
            snprintf(err, errlen, "PCP: %s refused (no PCP server)", p->gateway);
            return -1;
        }
        if (got > 0)
            p->silent = false;
        if (got >= 2 && buf[0] == 0 && buf[1] >= 128) {
            /* A NAT-PMP server's answer to a version it does not know. */
            snprintf(err, errlen, "PCP: %s speaks NAT-PMP only", p->gateway);
            return -1;
        }
        if (got > 0 && nat_pcp_map_answer(buf, (size_t)got, p->nonce, internal_port, a) == 0)
            return 0;
    }
}

/* r from an answer: the outcome, the port, lease, epoch and address. */
static void pcp_result(const struct nat_pcp_answer *a, const char *action, struct nat_job_result *r)
{
    r->have_epoch = true;
    r->epoch = a->epoch;
    if (a->result != 0) {
        r->outcome = NAT_OUT_REFUSED;
        r->code = (int)a->result;
        snprintf(r->error, sizeof(r->error), "PCP %s: %u %s", action, a->result,
                 nat_pcp_result_str(a->result));
        return;
    }
    r->outcome = NAT_OUT_OK;
    r->external_port = a->external_port;
    r->lease_s = a->lifetime_s;
    if (is_v4_mapped(a->external_ip))
        inet_ntop(AF_INET, a->external_ip + 12, r->external_ip, sizeof(r->external_ip));
    else
        inet_ntop(AF_INET6, a->external_ip, r->external_ip, sizeof(r->external_ip));
}

void nat_pcp_discover(struct nat_pcp *p, const struct nat_job *job, struct nat_job_result *r)
{
    r->method = NAT_METHOD_PCP;
    if (pcp_open(p, job->ipv6, r->error, sizeof(r->error)) != 0) {
        r->outcome = NAT_OUT_NONE;
        return;
    }
    /* A new nonce: a new mapping for the gateway (after a network change,
     * the old one names an address we no longer have). */
    if (RAND_bytes(p->nonce, sizeof(p->nonce)) != 1) {
        r->outcome = NAT_OUT_NONE;
        snprintf(r->error, sizeof(r->error), "PCP: the random generator failed");
        return;
    }
    p->have_nonce = true;
    p->silent = true;
    struct nat_pcp_answer a;
    if (pcp_exchange(p, job->internal_port, job->internal_port, NAT_PCP_DISCOVER_LEASE_S,
                     NAT_PCP_DISCOVER_MS, &a, r->error, sizeof(r->error)) != 0) {
        r->outcome = NAT_OUT_NONE;
        pcp_close(p);
        return;
    }
    pcp_result(&a, "discover", r);
    if (r->outcome != NAT_OUT_OK) {
        r->outcome = NAT_OUT_NONE; /* it speaks PCP but will not map for us: try the others */
        pcp_close(p);
        return;
    }
    r->external_port = 0;
    r->lease_s = 0;
    snprintf(r->gateway, sizeof(r->gateway), "%s", p->gateway);
    snprintf(r->lan_addr, sizeof(r->lan_addr), "%s", p->lan_addr);
}

void nat_pcp_map(struct nat_pcp *p, const struct nat_job *job, struct nat_job_result *r)
{
    if (p->fd < 0 || !p->have_nonce) {
        r->outcome = NAT_OUT_UNREACHABLE;
        snprintf(r->error, sizeof(r->error), "PCP map: no gateway");
        return;
    }
    struct nat_pcp_answer a;
    uint32_t lease = job->lease_s ? job->lease_s : NAT_PCP_DEFAULT_LEASE_S;
    if (pcp_exchange(p, job->internal_port, job->external_port, lease, NAT_PCP_REQUEST_MS, &a,
                     r->error, sizeof(r->error)) != 0) {
        r->outcome = NAT_OUT_UNREACHABLE;
        return;
    }
    pcp_result(&a, "map", r);
    if (r->outcome == NAT_OUT_OK && r->lease_s == 0) {
        r->outcome = NAT_OUT_REFUSED;
        snprintf(r->error, sizeof(r->error), "PCP map: gateway granted a lifetime of 0");
    }
}

void nat_pcp_check(struct nat_pcp *p, const struct nat_job *job, struct nat_job_result *r)
{
    struct nat_job renew = *job;
    nat_pcp_map(p, &renew, r);
    if (r->outcome == NAT_OUT_OK && r->external_port != job->external_port) {
        /* It gave the mapping another port: ours was lost (a reboot). */
        r->outcome = NAT_OUT_NONE;
        snprintf(r->error, sizeof(r->error), "PCP check: port %u is no longer ours",
                 (unsigned)job->external_port);
    }
}

int nat_pcp_unmap(struct nat_pcp *p, uint16_t internal_port, char *err, size_t errlen)
{
    if (p->fd < 0 || !p->have_nonce) {
        snprintf(err, errlen, "PCP delete: no gateway");
        return -1;
    }
    struct nat_pcp_answer a;
    if (pcp_exchange(p, internal_port, 0, 0, NAT_PCP_DISCOVER_MS, &a, err, errlen) != 0)
        return -1;
    if (a.result != 0 && p->v6) {
        /* Some routers cannot delete a pinhole on request (miniupnpd 2.3.1
         * with nftables answers NOT_AUTHORIZED: its pinhole rules do not
         * carry the mapping's nonce). The shortest lease it grants then:
         * the pinhole closes when that ends, not an hour later. */
        unsigned refused = a.result;
        struct nat_pcp_answer b;
        char ignored[160];
        if (pcp_exchange(p, internal_port, internal_port, 1, NAT_PCP_DISCOVER_MS, &b, ignored,
                         sizeof(ignored)) == 0 &&
            b.result == 0) {
            snprintf(err, errlen,
                     "PCP delete: %u %s; the pinhole now ends with the shortest lease the "
                     "router grants (%u s)",
                     refused, nat_pcp_result_str(refused), (unsigned)b.lifetime_s);
            return -1;
        }
    }
    if (a.result != 0) {
        snprintf(err, errlen, "PCP delete: %u %s", a.result, nat_pcp_result_str(a.result));
        return -1;
    }
    err[0] = '\0';
    return 0;
}
