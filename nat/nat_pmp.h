/* nat_pmp.h - NAT-PMP (RFC 6886) port mapping with libnatpmp; worker thread only.
 *
 * Private to nat/: every call waits for the gateway's answer (bounded by the
 * budgets below) and runs on the nat_worker thread, never on the loop. The
 * gateway is the default route's (libnatpmp reads /proc/net/route).
 */
#ifndef SOVA_NAT_PMP_H
#define SOVA_NAT_PMP_H

#ifndef SOVA_NAT_INTERNAL
#error "nat_pmp.h is private to nat/"
#endif

#include "nat_map_fsm.h"

#include <stddef.h>

/* How long to wait for a NAT-PMP answer (libnatpmp resends at 250 ms, 750 ms...). */
#define NAT_PMP_DISCOVER_MS 1000u /* a gateway that may not speak NAT-PMP */
#define NAT_PMP_REQUEST_MS  2000u /* a gateway that answered before */
/* Lease asked for when the job says permanent (NAT-PMP lease 0 means delete). */
#define NAT_PMP_DEFAULT_LEASE_S 3600u

struct nat_pmp;

struct nat_pmp *nat_pmp_new(void);    /* NULL on allocation failure */
void nat_pmp_free(struct nat_pmp *p); /* NULL ok */

/* Public address request to the default gateway: OK with method NATPMP,
 * gateway, lan_addr, external_ip and epoch; else NONE/REFUSED with the reason. */
void nat_pmp_discover(struct nat_pmp *p, struct nat_job_result *r);
/* Gateway address of the last discovery, "" if none. */
const char *nat_pmp_gateway(const struct nat_pmp *p);
/* New (or renewed) TCP mapping; the gateway may grant another port and lease. */
void nat_pmp_map(struct nat_pmp *p, const struct nat_job *job, struct nat_job_result *r);
/* Public address request: external_ip and epoch (the fsm spots a reboot). */
void nat_pmp_check(struct nat_pmp *p, const struct nat_job *job, struct nat_job_result *r);
/* Delete the mapping of internal_port; 0 or a negative libnatpmp code, err filled. */
int nat_pmp_unmap(struct nat_pmp *p, uint16_t internal_port, char *err, size_t errlen);

#endif
