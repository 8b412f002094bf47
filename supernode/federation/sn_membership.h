/* sn_membership.h - SWIM membership (sn_member.h) driven by the supernode
 * links and a timer, and what peers are told of the federation: SN_LIST,
 * and ERROR(overloaded) naming other supernodes when this one is full.
 *
 * A member changing state is told to the daemon's hook (search forgets its
 * summary, credit records move); this module tells attached peers itself
 * (SN_LIST, debounced). Ownership: the state is ctx->membership, made by
 * start and freed by stop. */
#ifndef SOVA_SN_MEMBERSHIP_H
#define SOVA_SN_MEMBERSHIP_H

#include "sn_ctx.h"

#include <jansson.h>

struct sn_membership_hooks {
    void *arg;
    /* A member moved from prev to state (enum msg_sn_state). */
    void (*member_state)(void *arg, const uint8_t id[WIRE_ID_LEN], uint8_t prev, uint8_t state);
    /* This supernode's relay traffic now, kB/s (gossiped as load); may be NULL. */
    uint32_t (*relay_kbps)(void *arg);
};

int sn_membership_start(struct sn_ctx *ctx, const struct sn_membership_hooks *hooks);
void sn_membership_stop(struct sn_ctx *ctx);
/* SIGTERM: tell the others we leave (LEFT, not dead) and run the loop a
 * moment for it to go out, when there is anyone to tell. */
void sn_membership_leave(struct sn_ctx *ctx);

/* A supernode link came up (listen: where it accepts links, n 0 or 1) or
 * went down; a GOSSIP arrived on one. */
void sn_membership_link_up(struct sn_ctx *ctx, struct sn_conn *c, const struct wire_addr *listen,
                           size_t n);
void sn_membership_link_down(struct sn_ctx *ctx, struct sn_conn *c);
void sn_membership_on_gossip(struct sn_ctx *ctx, struct sn_conn *c, const struct msg *m);

/* Tell a peer which supernodes make up the federation (SN_LIST). */
void sn_membership_send_sn_list(struct sn_ctx *ctx, struct sn_conn *c);
/* The federation changed: send SN_LIST to every attached peer, soon and
 * once for a burst of changes. */
void sn_membership_changed(struct sn_ctx *ctx);
/* Turn a peer away: ERROR(overloaded) naming other supernodes, then close. */
void sn_membership_send_overloaded(struct sn_ctx *ctx, struct sn_conn *c);

/* IDs of the members alive or suspect (not this supernode), at most cap;
 * linked_only: only those with a link up. Returns how many. */
size_t sn_membership_live(const struct sn_ctx *ctx, uint8_t (*out)[WIRE_ID_LEN], size_t cap,
                          bool linked_only);
/* Members known (any state), for sizing what sn_membership_live fills. */
size_t sn_membership_count(const struct sn_ctx *ctx);
/* GOSSIP frames sent to supernodes and their bytes (status "gossip"). */
void sn_membership_gossip_stats(const struct sn_ctx *ctx, uint64_t *messages, uint64_t *bytes);
/* Every member, for status: id, address, state, incarnation, load, last heard. */
json_t *sn_membership_json(const struct sn_ctx *ctx);

#endif
