/* nat_pmp.c - NAT-PMP port mapping with libnatpmp (see nat_pmp.h). */
#include "clock.h"
#include "nat_pmp.h"

#include <arpa/inet.h>
#include <errno.h>
#define ENABLE_STRNATPMPERR 1 /* declare strnatpmperr(); Debian builds it in */
#include <natpmp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct nat_pmp {
    natpmp_t np;
    bool open;
    char gateway[64];
    char lan_addr[64];
};

/* Our own marker for "no answer within the budget" (libnatpmp would keep
 * resending for about a minute). */
#define PMP_TIMEOUT (-1000)

struct nat_pmp *nat_pmp_new(void)
{
    return calloc(1, sizeof(struct nat_pmp));
}

static void pmp_close(struct nat_pmp *p)
{
    if (p->open)
        closenatpmp(&p->np);
    p->open = false;
    p->gateway[0] = '\0';
    p->lan_addr[0] = '\0';
}

void nat_pmp_free(struct nat_pmp *p)
{
    if (!p)
        return;
    pmp_close(p);
    free(p);
}

const char *nat_pmp_gateway(const struct nat_pmp *p)
{
    return p->open ? p->gateway : "";
}

static uint64_t mono_ms(void)
{
    return sova_mono_ms();
}

/* Wait for the answer to the request just sent, letting libnatpmp resend on
 * its schedule, for at most budget_ms. 0 or a libnatpmp error / PMP_TIMEOUT. */
static int pmp_wait(struct nat_pmp *p, unsigned budget_ms, natpmpresp_t *resp)
{
    uint64_t deadline = mono_ms() + budget_ms;
    for (;;) {
        uint64_t now = mono_ms();
        if (now >= deadline)
            return PMP_TIMEOUT;
        struct timeval tv = {0, 0};
        uint64_t wait = deadline - now;
        if (getnatpmprequesttimeout(&p->np, &tv) == 0) {
            uint64_t lib = (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
            if (lib < wait)
                wait = lib;
        }
        struct pollfd pfd = {.fd = p->np.s, .events = POLLIN};
        if (poll(&pfd, 1, (int)wait) < 0 && errno != EINTR)
            return NATPMP_ERR_RECVFROM;
        int rc = readnatpmpresponseorretry(&p->np, resp);
        if (rc != NATPMP_TRYAGAIN)
            return rc;
    }
}

/* Words and RFC 6886 result code for a failed exchange. */
static void pmp_error(struct nat_pmp *p, struct nat_job_result *r, const char *action, int rc,
                      const natpmpresp_t *resp, unsigned budget_ms)
{
    switch (rc) {
    case NATPMP_ERR_UNSUPPORTEDVERSION:
    case NATPMP_ERR_UNSUPPORTEDOPCODE:
    case NATPMP_ERR_NOTAUTHORIZED:
    case NATPMP_ERR_NETWORKFAILURE:
    case NATPMP_ERR_OUTOFRESOURCES:
    case NATPMP_ERR_UNDEFINEDERROR:
        r->outcome = NAT_OUT_REFUSED;
        r->code = resp->resultcode;
        snprintf(r->error, sizeof(r->error), "NAT-PMP %s: %u %s", action,
                 (unsigned)resp->resultcode, strnatpmperr(rc));
        return;
    case PMP_TIMEOUT:
        r->outcome = NAT_OUT_UNREACHABLE;
        r->code = 0;
        snprintf(r->error, sizeof(r->error), "NAT-PMP %s: %s did not answer within %u ms", action,
                 p->gateway, budget_ms);
        return;
    case NATPMP_ERR_NOGATEWAYSUPPORT:
        r->outcome = NAT_OUT_UNREACHABLE;
        r->code = rc;
        snprintf(r->error, sizeof(r->error), "NAT-PMP %s: %s does not speak NAT-PMP", action,
                 p->gateway);
        return;
    default:
        r->outcome = NAT_OUT_UNREACHABLE;
        r->code = rc;
        snprintf(r->error, sizeof(r->error), "NAT-PMP %s: %d %s", action, rc, strnatpmperr(rc));
        return;
    }
}

static void note_epoch(struct nat_job_result *r, const natpmpresp_t *resp)
{
    r->have_epoch = true;
    r->epoch = resp->epoch;
}

/* Public address request; 0 with r->external_ip and epoch, or the error in r. */
static int pmp_public_address(struct nat_pmp *p, unsigned budget_ms, struct nat_job_result *r)
{
    natpmpresp_t resp;
    memset(&resp, 0, sizeof(resp));
    int rc = sendpublicaddressrequest(&p->np);
    if (rc >= 0)
        rc = pmp_wait(p, budget_ms, &resp);
    if (rc == 0 && resp.type != NATPMP_RESPTYPE_PUBLICADDRESS)
        rc = NATPMP_ERR_UNSUPPORTEDOPCODE;
    if (rc < 0) {
        pmp_error(p, r, "public address", rc, &resp, budget_ms);
        return rc;
    }
    inet_ntop(AF_INET, &resp.pnu.publicaddress.addr, r->external_ip, sizeof(r->external_ip));
    note_epoch(r, &resp);
    return 0;
}

void nat_pmp_discover(struct nat_pmp *p, struct nat_job_result *r)
{
    pmp_close(p);
    r->method = NAT_METHOD_NATPMP;
    int rc = initnatpmp(&p->np, 0, 0);
    if (rc < 0) {
        r->outcome = NAT_OUT_NONE;
        r->code = rc;
        snprintf(r->error, sizeof(r->error), "NAT-PMP: %s",
                 rc == NATPMP_ERR_CANNOTGETGATEWAY ? "no default gateway" : strnatpmperr(rc));
        return;
    }
    p->open = true;
    struct in_addr gw = {.s_addr = p->np.gateway};
    inet_ntop(AF_INET, &gw, p->gateway, sizeof(p->gateway));
    struct sockaddr_in local;
    memset(&local, 0, sizeof(local));
    socklen_t len = sizeof(local);
    if (getsockname(p->np.s, (struct sockaddr *)&local, &len) == 0 && local.sin_family == AF_INET)
        inet_ntop(AF_INET, &local.sin_addr, p->lan_addr, sizeof(p->lan_addr));
    if (pmp_public_address(p, NAT_PMP_DISCOVER_MS, r) != 0) {
        r->outcome = NAT_OUT_NONE;
        return;
    }
    r->outcome = NAT_OUT_OK;
    snprintf(r->gateway, sizeof(r->gateway), "%s", p->gateway);
    snprintf(r->lan_addr, sizeof(r->lan_addr), "%s", p->lan_addr);
}

void nat_pmp_map(struct nat_pmp *p, const struct nat_job *job, struct nat_job_result *r)
{
    if (!p->open) {
        r->outcome = NAT_OUT_UNREACHABLE;
        snprintf(r->error, sizeof(r->error), "NAT-PMP map: no gateway");
        return;
    }
    uint32_t lease = job->lease_s ? job->lease_s : NAT_PMP_DEFAULT_LEASE_S;
    natpmpresp_t resp;
    memset(&resp, 0, sizeof(resp));
    int rc = sendnewportmappingrequest(&p->np, NATPMP_PROTOCOL_TCP, job->internal_port,
                                       job->external_port, lease);
    if (rc >= 0)
        rc = pmp_wait(p, NAT_PMP_REQUEST_MS, &resp);
    if (rc == 0 && resp.type != NATPMP_RESPTYPE_TCPPORTMAPPING)
        rc = NATPMP_ERR_UNSUPPORTEDOPCODE;
    if (rc < 0) {
        pmp_error(p, r, "map", rc, &resp, NAT_PMP_REQUEST_MS);
        return;
    }
    r->outcome = NAT_OUT_OK;
    r->external_port = resp.pnu.newportmapping.mappedpublicport;
    r->lease_s = resp.pnu.newportmapping.lifetime;
    note_epoch(r, &resp);
    if (r->lease_s == 0) { /* a gateway granting "no lease" granted nothing */
        r->outcome = NAT_OUT_REFUSED;
        snprintf(r->error, sizeof(r->error), "NAT-PMP map: gateway granted a lifetime of 0");
        return;
    }
    struct nat_job_result tmp = {0};
    if (pmp_public_address(p, NAT_PMP_REQUEST_MS, &tmp) == 0)
        snprintf(r->external_ip, sizeof(r->external_ip), "%s", tmp.external_ip);
}

void nat_pmp_check(struct nat_pmp *p, const struct nat_job *job, struct nat_job_result *r)
{
    (void)job;
    if (!p->open) {
        r->outcome = NAT_OUT_UNREACHABLE;
        snprintf(r->error, sizeof(r->error), "NAT-PMP check: no gateway");
        return;
    }
    if (pmp_public_address(p, NAT_PMP_REQUEST_MS, r) == 0)
        r->outcome = NAT_OUT_OK;
}

int nat_pmp_unmap(struct nat_pmp *p, uint16_t internal_port, char *err, size_t errlen)
{
    if (!p->open) {
        snprintf(err, errlen, "NAT-PMP delete: no gateway");
        return NATPMP_ERR_INVALIDARGS;
    }
    /* RFC 6886 3.4: lifetime 0 and external port 0 delete the mapping. */
    natpmpresp_t resp;
    memset(&resp, 0, sizeof(resp));
    int rc = sendnewportmappingrequest(&p->np, NATPMP_PROTOCOL_TCP, internal_port, 0, 0);
    if (rc >= 0)
        rc = pmp_wait(p, NAT_PMP_DISCOVER_MS, &resp);
    if (rc < 0) {
        struct nat_job_result tmp = {0};
        pmp_error(p, &tmp, "delete", rc, &resp, NAT_PMP_DISCOVER_MS);
        snprintf(err, errlen, "%s", tmp.error);
        return rc;
    }
    err[0] = '\0';
    return 0;
}
