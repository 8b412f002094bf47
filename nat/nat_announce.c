/* nat_announce.c - a gateway's announcements (nat_announce.h). Pure. */
#include "nat_announce.h"

#include <string.h>
#include <strings.h>

/* The value of header name (case-insensitive) among the lines of text
 * (len bytes, not NUL-terminated), into val (trimmed); false if absent. */
static bool header(const char *text, size_t len, const char *name, char *val, size_t cap)
{
    size_t nlen = strlen(name);
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && text[end] != '\n')
            end++;
        size_t line = end - i;
        if (line > nlen && strncasecmp(text + i, name, nlen) == 0 && text[i + nlen] == ':') {
            size_t v = i + nlen + 1, e = end;
            while (v < e && (text[v] == ' ' || text[v] == '\t'))
                v++;
            while (e > v && (text[e - 1] == '\r' || text[e - 1] == ' ' || text[e - 1] == '\t'))
                e--;
            size_t n = e - v < cap - 1 ? e - v : cap - 1;
            memcpy(val, text + v, n);
            val[n] = '\0';
            return true;
        }
        if (line == 0 || (line == 1 && text[i] == '\r'))
            return false; /* the end of the headers */
        i = end + 1;
    }
    return false;
}

static bool contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return true;
    return false;
}

/* The device types and services a gateway announces. */
static bool gateway_nt(const char *nt)
{
    static const char *const kinds[] = {"InternetGatewayDevice", "WANDevice",
                                        "WANConnectionDevice",   "WANIPConnection",
                                        "WANPPPConnection",      "upnp:rootdevice"};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (contains(nt, kinds[i]))
            return true;
    return false;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void nat_announce_parse(const uint8_t *buf, size_t len, struct nat_announce *out)
{
    memset(out, 0, sizeof(*out));
    if (len > NAT_ANNOUNCE_MAX)
        len = NAT_ANNOUNCE_MAX;
    /* NAT-PMP: version 0, opcode 128 (the answer to "public address"),
     * result 0, epoch, the external address: 12 bytes. */
    if (len == 12 && buf[0] == 0 && buf[1] == 128) {
        if (buf[2] != 0 || buf[3] != 0)
            return;
        out->kind = NAT_ANNOUNCE_NATPMP;
        out->epoch = be32(buf + 4);
        memcpy(out->external_ip, buf + 8, 4);
        return;
    }
    static const char notify[] = "NOTIFY * HTTP/1.1";
    if (len < sizeof(notify) - 1 || memcmp(buf, notify, sizeof(notify) - 1) != 0)
        return;
    const char *text = (const char *)buf;
    char nt[256], nts[64], bootid[32];
    if (!header(text, len, "NT", nt, sizeof(nt)) || !gateway_nt(nt) ||
        !header(text, len, "NTS", nts, sizeof(nts)))
        return;
    if (strcasecmp(nts, "ssdp:alive") == 0)
        out->kind = NAT_ANNOUNCE_ALIVE;
    else if (strcasecmp(nts, "ssdp:byebye") == 0)
        out->kind = NAT_ANNOUNCE_BYEBYE;
    else
        return;
    if (header(text, len, "BOOTID.UPNP.ORG", bootid, sizeof(bootid)) && bootid[0] != '\0' &&
        strspn(bootid, "0123456789") == strlen(bootid) && strlen(bootid) <= 10) {
        unsigned long long v = 0;
        for (const char *c = bootid; *c; c++)
            v = v * 10 + (unsigned)(*c - '0');
        if (v <= UINT32_MAX) {
            out->has_bootid = true;
            out->bootid = (uint32_t)v;
        }
    }
}

bool nat_announce_younger_than(const struct nat_announce *now, uint64_t seconds_mapped)
{
    /* As if the gateway had said epoch 0 when we mapped: the same rule. */
    const struct nat_announce at_mapping = {.kind = NAT_ANNOUNCE_NATPMP, .epoch = 0};
    return now->kind == NAT_ANNOUNCE_NATPMP &&
           nat_announce_restarted(now, &at_mapping, seconds_mapped);
}

bool nat_announce_restarted(const struct nat_announce *now, const struct nat_announce *before,
                            uint64_t seconds_between)
{
    switch (now->kind) {
    case NAT_ANNOUNCE_BYEBYE:
        return before->kind != NAT_ANNOUNCE_BYEBYE; /* one per device and service: once */
    case NAT_ANNOUNCE_ALIVE:
        if (before->kind == NAT_ANNOUNCE_BYEBYE)
            return true; /* back after going */
        return before->kind == NAT_ANNOUNCE_ALIVE && now->has_bootid && before->has_bootid &&
               now->bootid != before->bootid;
    case NAT_ANNOUNCE_NATPMP: {
        if (before->kind != NAT_ANNOUNCE_NATPMP)
            return false;
        uint64_t expected = (uint64_t)before->epoch + seconds_between;
        uint64_t slack = 2 + seconds_between / 8;
        return (uint64_t)now->epoch + slack < expected;
    }
    case NAT_ANNOUNCE_NONE:
        break;
    }
    return false;
}
