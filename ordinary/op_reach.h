/* op_reach.h - can other peers reach this one, and why (not)?
 *
 * Three facts make the answer (docs/NAT.md): the port mapping on the home
 * router (nat_upnp: UPnP IGD, else NAT-PMP), the address our supernode sees
 * us at, and a dial-back — the supernode connecting back to the addresses
 * we name and proving our key. nat_path.h turns them into public, mapped or
 * unreachable with the reason in words; REGISTER then claims that, with the
 * proved address first, so search hits tell downloaders how to reach us.
 *
 * Checked again whenever something it rests on changes: a new primary
 * supernode (failover, or a re-attach from a new address — the router is
 * then asked again too), a mapping made, lost or moved to another external
 * address, and every OP_REACH_RECHECK_S in any case.
 *
 * Ownership: the session is borrowed; the port mapping is ours and is
 * deleted by op_reach_free() (which waits for the router at most
 * NAT_UPNP_STOP_WAIT_MS). Nothing else blocks.
 */
#ifndef SOVA_OP_REACH_H
#define SOVA_OP_REACH_H

#include "msg.h"
#include "op_session.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>

#define OP_REACH_RECHECK_S 300   /* dial-back again at least this often */
#define OP_REACH_RETRY_MS  2500  /* after a supernode's "one dial-back at a time" */
#define OP_REACH_ANSWER_MS 15000 /* a dial-back result that does not come by then is lost */
#define OP_REACH_LOST_MAP_MS                                                                       \
    60000 /* a dial-back failing through our mapping: remap at most this often */

struct op_reach_config {
    struct event_base *base;
    struct op_session *session;     /* borrowed */
    const struct wire_addr *listen; /* where we listen (the IP may be a wildcard) */
    bool upnp;                      /* ask the router for a port mapping */
    unsigned upnp_lease_s, upnp_check_s;
    const char *description; /* of the mapping: "sova-peer <id>" */
};

struct op_reach;

int op_reach_new(const struct op_reach_config *cfg, struct op_reach **out);
void op_reach_start(struct op_reach *r);
/* Deletes the port mapping (bounded wait). NULL ok. */
void op_reach_free(struct op_reach *r);

/* The primary session is registered (first time, failover, re-attach). */
void op_reach_attached(struct op_reach *r);
/* The host's network may have changed (nat_netwatch): if its addresses
 * did, supernode links from a vanished address close, the router is asked
 * again from the new address, and reachability is proved again. */
void op_reach_network_changed(struct op_reach *r);
/* A message from the primary supernode: DIALBACK_RESULT, or an ERROR about
 * a DIALBACK. Others are ignored. */
void op_reach_message(struct op_reach *r, const struct msg *m);

/* What we are now: enum msg_reachability. */
uint8_t op_reach_self(const struct op_reach *r);
/* The address others reach us at, if reachable (NULL otherwise). */
const struct wire_addr *op_reach_public_addr(const struct op_reach *r);
/* Everything behind the answer, for `sova-peer status`. */
json_t *op_reach_json(const struct op_reach *r);

#endif
