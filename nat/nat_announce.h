/* nat_announce.h - a home router telling its LAN that it (re)started: the
 * UPnP IGD's SSDP NOTIFYs on 239.255.255.250:1900 (ssdp:alive with a
 * BOOTID.UPNP.ORG that changes at each boot, ssdp:byebye when it goes
 * down) and NAT-PMP's announcements on 224.0.0.1:5350 (whose epoch starts
 * again from 0 after a reboot, RFC 6886 3.2.1). A router that rebooted has
 * forgotten its mappings: a peer that hears it maps again in a second
 * instead of at its next periodic check.
 *
 * nat_announce_parse() is pure and bounded (fuzz_announce): it reads only
 * len bytes and never trusts a length inside them. The listener sockets
 * are the owner's (ordinary/op_reach.c), read on its event loop.
 */
#ifndef SOVA_NAT_ANNOUNCE_H
#define SOVA_NAT_ANNOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NAT_ANNOUNCE_SSDP_GROUP   "239.255.255.250"
#define NAT_ANNOUNCE_SSDP_PORT    1900
#define NAT_ANNOUNCE_NATPMP_GROUP "224.0.0.1"
#define NAT_ANNOUNCE_NATPMP_PORT  5350
#define NAT_ANNOUNCE_MAX          2048 /* bytes of one datagram looked at */

enum nat_announce_kind {
    NAT_ANNOUNCE_NONE,   /* not an announcement of a gateway */
    NAT_ANNOUNCE_ALIVE,  /* SSDP ssdp:alive of an InternetGatewayDevice or its services */
    NAT_ANNOUNCE_BYEBYE, /* SSDP ssdp:byebye of the same */
    NAT_ANNOUNCE_NATPMP, /* a NAT-PMP announcement (opcode 128) */
};

struct nat_announce {
    enum nat_announce_kind kind;
    bool has_bootid;
    uint32_t bootid;        /* SSDP: BOOTID.UPNP.ORG, when given */
    uint32_t epoch;         /* NAT-PMP: seconds since the gateway's mappings started */
    uint8_t external_ip[4]; /* NAT-PMP: its public address */
};

/* What the datagram buf (len bytes) announces; out->kind NONE for anything
 * else (another device's NOTIFY, an M-SEARCH, garbage). */
void nat_announce_parse(const uint8_t *buf, size_t len, struct nat_announce *out);

/* Did the gateway restart since it said last (what it says now, what it
 * said before and how many seconds passed)? A new BOOTID, a byebye (the
 * first of a burst), an alive after a byebye, or a NAT-PMP epoch behind
 * where it should be by more than 2 s plus 1/8 of the time passed (RFC
 * 6886's rule). */
bool nat_announce_restarted(const struct nat_announce *now, const struct nat_announce *before,
                            uint64_t seconds_between);

/* A NAT-PMP announcement whose epoch is younger than a mapping we have
 * held for seconds_mapped: the gateway restarted since and forgot it
 * (with the same slack). Needs no earlier announcement. */
bool nat_announce_younger_than(const struct nat_announce *now, uint64_t seconds_mapped);

#endif
