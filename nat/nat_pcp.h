/* nat_pcp.h - PCP (Port Control Protocol, RFC 6887) MAP requests: the
 * successor of NAT-PMP on the same port (5351), tried before UPnP and
 * NAT-PMP. Worker thread only for the exchanges; the codec is pure.
 *
 * A mapping is named by a 12-byte nonce we pick at random: a renewal and a
 * delete (lifetime 0) repeat it, so the gateway knows them for ours. Every
 * answer carries the gateway's epoch, which the fsm watches for a reboot
 * (as NAT-PMP's). The gateway is the default route's (libnatpmp finds it).
 *
 * IPv6 (job->ipv6): the same MAP from our global IPv6 address to the IPv6
 * default router opens an inbound pinhole in its firewall for that address
 * and port (RFC 6887's "IPv6 firewall" case; miniupnpd implements it): the
 * external address and port are our own.
 *
 * Private to nat/ (nat_worker.c), but for the codec, which fuzz_pcp and
 * the unit tests drive.
 */
#ifndef SOVA_NAT_PCP_H
#define SOVA_NAT_PCP_H

#include "nat_map_fsm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NAT_PCP_PORT             5351
#define NAT_PCP_VERSION          2
#define NAT_PCP_OP_MAP           1
#define NAT_PCP_MAP_LEN          60 /* a MAP request or answer without options */
#define NAT_PCP_NONCE_LEN        12
#define NAT_PCP_DISCOVER_MS      1000u /* a gateway that may not speak PCP */
#define NAT_PCP_REQUEST_MS       2000u /* one that answered before */
#define NAT_PCP_DISCOVER_LEASE_S 120u  /* the first MAP, which finds the gateway and our address */
#define NAT_PCP_DEFAULT_LEASE_S  3600u /* asked for when the job says permanent */

/* RFC 6887 result codes the words are given for (others: "result N"). */
const char *nat_pcp_result_str(unsigned code);

/* An IPv4 address (network order) in PCP form, ::ffff:a.b.c.d. */
void nat_pcp_addr_v4(uint8_t out[16], const uint8_t v4[4]);

/* A MAP request for TCP internal_port into out: our address as the gateway
 * sees it (client, in PCP form: IPv4-mapped, or an IPv6 address for a
 * firewall pinhole), the port we suggest (0: any) and the lifetime (0:
 * delete). Returns NAT_PCP_MAP_LEN. */
size_t nat_pcp_map_request(uint8_t out[NAT_PCP_MAP_LEN], const uint8_t nonce[NAT_PCP_NONCE_LEN],
                           const uint8_t client[16], uint16_t internal_port,
                           uint16_t suggested_port, uint32_t lifetime_s);

struct nat_pcp_answer {
    unsigned result;     /* 0: success */
    uint32_t lifetime_s; /* granted */
    uint32_t epoch;      /* the gateway's epoch time */
    uint16_t external_port;
    uint8_t external_ip[16]; /* IPv4-mapped (::ffff:a.b.c.d) for IPv4 */
};

/* The answer in buf (len bytes) to our MAP of nonce and internal_port: 0
 * and out filled, or -1 for anything else (another answer, garbage, a
 * request, a short or long datagram). Reads only within len. */
int nat_pcp_map_answer(const uint8_t *buf, size_t len, const uint8_t nonce[NAT_PCP_NONCE_LEN],
                       uint16_t internal_port, struct nat_pcp_answer *out);

#ifdef SOVA_NAT_INTERNAL
struct nat_pcp;

struct nat_pcp *nat_pcp_new(void);    /* NULL on allocation failure */
void nat_pcp_free(struct nat_pcp *p); /* NULL ok */
/* Find the default gateway (IPv6's if job->ipv6) and ask it for a short MAP
 * of job->internal_port: OK with method PCP, gateway, lan_addr,
 * external_ip and epoch; else NONE (no gateway, or it does not speak PCP)
 * with the reason. */
void nat_pcp_discover(struct nat_pcp *p, const struct nat_job *job, struct nat_job_result *r);
const char *nat_pcp_gateway(const struct nat_pcp *p); /* "" if none */
/* The last discovery heard nothing on port 5351, or was refused: a NAT-PMP
 * server (same port) is not there either. */
bool nat_pcp_silent(const struct nat_pcp *p);
/* MAP (new or renewed) with the job's lease: port and lease granted. */
void nat_pcp_map(struct nat_pcp *p, const struct nat_job *job, struct nat_job_result *r);
/* The mapping still held: a renewal of it (PCP has no "is it still
 * there"); the epoch tells a reboot, a port other than ours its loss. */
void nat_pcp_check(struct nat_pcp *p, const struct nat_job *job, struct nat_job_result *r);
/* Delete the mapping (lifetime 0); 0, or -1 with err filled. */
int nat_pcp_unmap(struct nat_pcp *p, uint16_t internal_port, char *err, size_t errlen);
#endif

#endif
