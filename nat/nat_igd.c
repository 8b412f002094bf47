/* nat_igd.c - UPnP IGD port mapping with miniupnpc (see nat_igd.h). */
#include "nat_igd.h"

#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct nat_igd {
    bool valid; /* urls/data hold a discovered IGD */
    struct UPNPUrls urls;
    struct IGDdatas data;
    char lan_addr[64];
};

/* Searched for in one round: upnpDiscover() would wait delay_ms once per
 * type when nobody answers (4 s for 1 s), upnpDiscoverDevices() with
 * searchalltypes sends them all and waits once. */
static const char *const igd_types[] = {
    "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
    "urn:schemas-upnp-org:device:InternetGatewayDevice:2",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
    NULL,
};

struct nat_igd *nat_igd_new(void)
{
    return calloc(1, sizeof(struct nat_igd));
}

static void igd_forget(struct nat_igd *g)
{
    if (g->valid)
        FreeUPNPUrls(&g->urls);
    g->valid = false;
    memset(&g->urls, 0, sizeof(g->urls));
    memset(&g->data, 0, sizeof(g->data));
    g->lan_addr[0] = '\0';
}

void nat_igd_free(struct nat_igd *g)
{
    if (!g)
        return;
    igd_forget(g);
    free(g);
}

const char *nat_igd_control_url(const struct nat_igd *g)
{
    return g->valid && g->urls.controlURL ? g->urls.controlURL : "";
}

/* "AddPortMapping: 718 ConflictInMappingEntry"; miniupnpc's own negative
 * codes (no answer, bad answer) read the same way. */
static void upnp_error(struct nat_job_result *r, const char *action, int code)
{
    const char *text = strupnperror(code);
    r->code = code;
    r->outcome = code < 0 ? NAT_OUT_UNREACHABLE : NAT_OUT_REFUSED;
    snprintf(r->error, sizeof(r->error), "%s: %d %s", action, code, text ? text : "UnknownError");
}

static bool parse_port(const char *s, uint16_t *out)
{
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (end == s || *end != '\0' || v == 0 || v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

/* External address into r->external_ip; 0 or the failing code (r->error set). */
static int igd_external_ip(struct nat_igd *g, struct nat_job_result *r)
{
    char ip[40] = "";
    int rc = UPNP_GetExternalIPAddress(g->urls.controlURL, g->data.first.servicetype, ip);
    if (rc != UPNPCOMMAND_SUCCESS) {
        upnp_error(r, "GetExternalIPAddress", rc);
        return rc;
    }
    snprintf(r->external_ip, sizeof(r->external_ip), "%s", ip);
    return 0;
}

/* Is there an IPv4 route to the SSDP group? (An IPv6-only host has none,
 * and miniupnpc would print its sendto errors to stderr.) A route lookup
 * only: nothing is sent. */
static bool ssdp_routable(void)
{
    struct sockaddr_in ssdp = {.sin_family = AF_INET, .sin_port = htons(1900)};
    ssdp.sin_addr.s_addr = htonl(0xEFFFFFFAu); /* 239.255.255.250 */
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool ok = connect(fd, (struct sockaddr *)&ssdp, sizeof(ssdp)) == 0;
    close(fd);
    return ok;
}

void nat_igd_discover(struct nat_igd *g, unsigned delay_ms, struct nat_job_result *r)
{
    igd_forget(g);
    r->method = NAT_METHOD_UPNP;
    if (!ssdp_routable()) {
        r->outcome = NAT_OUT_NONE;
        r->code = 0;
        snprintf(r->error, sizeof(r->error), "UPnP: no IPv4 route to look for an IGD");
        return;
    }
    int err = 0;
    /* minissdpd socket "" = ask the network, not a daemon's cache (which in
     * network namespaces may even describe another network). */
    struct UPNPDev *devs =
        upnpDiscoverDevices(igd_types, (int)delay_ms, NULL, "", 0, 0, 2, &err, 1);
    if (!devs) {
        r->outcome = NAT_OUT_NONE;
        r->code = err;
        if (err == UPNPDISCOVER_SUCCESS)
            snprintf(r->error, sizeof(r->error), "UPnP: no IGD answered within %u ms", delay_ms);
        else
            snprintf(r->error, sizeof(r->error), "UPnP: discovery failed (miniupnpc %d)", err);
        return;
    }
    int rc = UPNP_GetValidIGD(devs, &g->urls, &g->data, g->lan_addr, sizeof(g->lan_addr));
    if (rc == 0 || rc == 3 || !g->urls.controlURL) {
        if (rc != 0)
            FreeUPNPUrls(&g->urls);
        r->outcome = NAT_OUT_NONE;
        snprintf(r->error, sizeof(r->error), "UPnP: %s answered but is no IGD", devs->descURL);
        freeUPNPDevlist(devs);
        g->lan_addr[0] = '\0';
        return;
    }
    freeUPNPDevlist(devs);
    g->valid = true;
    snprintf(r->gateway, sizeof(r->gateway), "%s", g->urls.controlURL);
    snprintf(r->lan_addr, sizeof(r->lan_addr), "%s", g->lan_addr);
    if (igd_external_ip(g, r) != 0) {
        /* An IGD that cannot say its address is no use to us. */
        r->outcome = NAT_OUT_NONE;
        return;
    }
    /* rc == 2: the IGD says it is not connected; its external address (often
     * 0.0.0.0) lets the state machine decide. */
    r->outcome = NAT_OUT_OK;
}

void nat_igd_map(struct nat_igd *g, const struct nat_job *job, const char *description,
                 struct nat_job_result *r)
{
    if (!g->valid) {
        r->outcome = NAT_OUT_UNREACHABLE;
        snprintf(r->error, sizeof(r->error), "AddPortMapping: no IGD");
        return;
    }
    char ext[8], in[8], lease[16];
    snprintf(ext, sizeof(ext), "%u", (unsigned)job->external_port);
    snprintf(in, sizeof(in), "%u", (unsigned)job->internal_port);
    snprintf(lease, sizeof(lease), "%u", (unsigned)job->lease_s);
    int rc = UPNP_AddPortMapping(g->urls.controlURL, g->data.first.servicetype, ext, in,
                                 g->lan_addr, description, "TCP", NULL, lease);
    if (rc != UPNPCOMMAND_SUCCESS) {
        upnp_error(r, "AddPortMapping", rc);
        return;
    }
    r->outcome = NAT_OUT_OK;
    r->external_port = job->external_port;
    r->lease_s = job->lease_s;
    /* The mapping stands; an address we cannot read now is read at the next check. */
    struct nat_job_result tmp = {0};
    if (igd_external_ip(g, &tmp) == 0)
        snprintf(r->external_ip, sizeof(r->external_ip), "%s", tmp.external_ip);
}

void nat_igd_check(struct nat_igd *g, const struct nat_job *job, struct nat_job_result *r)
{
    if (!g->valid) {
        r->outcome = NAT_OUT_UNREACHABLE;
        snprintf(r->error, sizeof(r->error), "GetSpecificPortMappingEntry: no IGD");
        return;
    }
    char ext[8];
    snprintf(ext, sizeof(ext), "%u", (unsigned)job->external_port);
    char client[64] = "", port[8] = "", desc[80] = "", enabled[8] = "", duration[16] = "";
    int rc = UPNP_GetSpecificPortMappingEntry(g->urls.controlURL, g->data.first.servicetype, ext,
                                              "TCP", NULL, client, port, desc, enabled, duration);
    if (rc == NAT_UPNP_ERR_NO_SUCH_ENTRY) {
        upnp_error(r, "GetSpecificPortMappingEntry", rc);
        r->outcome = NAT_OUT_NONE;
        return;
    }
    if (rc != UPNPCOMMAND_SUCCESS) {
        upnp_error(r, "GetSpecificPortMappingEntry", rc);
        return;
    }
    uint16_t in_port = 0;
    if (strcmp(client, g->lan_addr) != 0 || !parse_port(port, &in_port) ||
        in_port != job->internal_port) {
        r->outcome = NAT_OUT_NONE;
        snprintf(r->error, sizeof(r->error), "external port %s now goes to %.40s:%.7s", ext, client,
                 port);
        return;
    }
    if (igd_external_ip(g, r) != 0)
        return;
    r->outcome = NAT_OUT_OK;
}

int nat_igd_unmap(struct nat_igd *g, uint16_t external_port, char *err, size_t errlen)
{
    if (!g->valid) {
        snprintf(err, errlen, "DeletePortMapping: no IGD");
        return -1;
    }
    char ext[8];
    snprintf(ext, sizeof(ext), "%u", (unsigned)external_port);
    int rc =
        UPNP_DeletePortMapping(g->urls.controlURL, g->data.first.servicetype, ext, "TCP", NULL);
    if (rc != UPNPCOMMAND_SUCCESS) {
        const char *text = strupnperror(rc);
        snprintf(err, errlen, "DeletePortMapping: %d %s", rc, text ? text : "UnknownError");
        return rc;
    }
    err[0] = '\0';
    return 0;
}
