/* nat_igd.h - UPnP IGD port mapping with miniupnpc; worker thread only.
 *
 * Private to nat/: every call blocks (SSDP wait, HTTP/SOAP with miniupnpc's
 * 3 s socket timeouts) and runs on the nat_worker thread, never on the loop.
 * Results are filled as struct nat_job_result for nat_map_fsm.
 */
#ifndef SOVA_NAT_IGD_H
#define SOVA_NAT_IGD_H

#ifndef SOVA_NAT_INTERNAL
#error "nat_igd.h is private to nat/"
#endif

#include "nat_map_fsm.h"

#include <stddef.h>

struct nat_igd;

struct nat_igd *nat_igd_new(void);    /* NULL on allocation failure */
void nat_igd_free(struct nat_igd *g); /* NULL ok */

/* SSDP search (one delay_ms wait for all IGD types), then the IGD's
 * description and external address. OK with method UPNP, gateway (control
 * URL), lan_addr and external_ip; else NONE with the reason. */
void nat_igd_discover(struct nat_igd *g, unsigned delay_ms, struct nat_job_result *r);
/* Control URL of the IGD found last, "" if none. */
const char *nat_igd_control_url(const struct nat_igd *g);

/* AddPortMapping TCP job->external_port -> lan_addr:job->internal_port with
 * job->lease_s, then GetExternalIPAddress. */
void nat_igd_map(struct nat_igd *g, const struct nat_job *job, const char *description,
                 struct nat_job_result *r);
/* GetSpecificPortMappingEntry (ours? NONE if not), then GetExternalIPAddress. */
void nat_igd_check(struct nat_igd *g, const struct nat_job *job, struct nat_job_result *r);
/* DeletePortMapping; 0 or the router's / miniupnpc's code, err filled. */
int nat_igd_unmap(struct nat_igd *g, uint16_t external_port, char *err, size_t errlen);

#endif
