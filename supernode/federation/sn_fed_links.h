/* sn_fed_links.h - the links between supernodes: dial the configured seeds
 * (--peers) until each is linked, dial the members gossip names, keep one
 * link per supernode ID, and send to a supernode by ID.
 *
 * What the links mean (membership, summaries, the ledger) is not decided
 * here: a link coming up or going down, and a seed's first attempt ending,
 * are told to the hooks the daemon gives sn_fed_links_start(). Messages on
 * the links are routed by the daemon (daemon/sn_dispatch.c), not here.
 *
 * Trust: every SN link is mutual TLS chained to the federation root. The
 * dialer requires it in the handshake (TLS_EXPECT_SUPERNODE); the acceptor
 * classifies after the handshake and link.c refuses a HELLO claiming the
 * supernode role without such a certificate.
 *
 * Ownership: the module's state is ctx->fed_links (made by start, freed by
 * stop). Conns it dials are owned by their links like every sn_conn; the
 * list of links up holds pointers, dropped by sn_fed_links_closed(). */
#ifndef SOVA_SN_FED_LINKS_H
#define SOVA_SN_FED_LINKS_H

#include "sn_ctx.h"
#include "sn_member.h"

#define SN_FED_MAX_SEEDS 16
/* Supernode links one supernode keeps (and targets one search may have):
 * as many as sn_member keeps members, so a full mesh holds up to there. */
#define SN_FED_MAX_LINKS SN_MEMBER_MAX_MEMBERS

struct sn_fed_links_hooks {
    void *arg;
    /* A supernode link is up (one per ID); listen: where it accepts links,
     * if known (n 0 or 1). */
    void (*link_up)(void *arg, struct sn_conn *c, const struct wire_addr *listen, size_t n);
    /* A link that was up is gone. */
    void (*link_down)(void *arg, struct sn_conn *c);
    /* What the federation looks like to peers changed (a link learnt where
     * its supernode listens). */
    void (*changed)(void *arg);
    /* A seed's first attempt ended (link up, refused, unresolved...). */
    void (*seed_contacted)(void *arg);
};

int sn_fed_links_start(struct sn_ctx *ctx, const struct sn_fed_links_hooks *hooks);
void sn_fed_links_stop(struct sn_ctx *ctx);
/* Every seed has had its first attempt. */
bool sn_fed_links_seeds_contacted(const struct sn_ctx *ctx);
/* How many seeds are configured. */
size_t sn_fed_links_seeds(const struct sn_ctx *ctx);
/* Reload: dial the seeds new in ctx->s->peers, drop those no longer there
 * (a link already up to one stays: it is a member now). */
void sn_fed_links_reload_seeds(struct sn_ctx *ctx);

/* A link finished TLS and HELLO with a supernode (either direction), or
 * one this module dialed closed: from the link hooks. */
void sn_fed_links_opened(struct sn_ctx *ctx, struct sn_conn *c);
void sn_fed_links_closed(struct sn_ctx *ctx, struct sn_conn *c);
/* Whether this module dialed c (a supernode was expected there). */
bool sn_fed_links_dialed(const struct sn_conn *c);

/* The links up: how many, and each (i < count). */
size_t sn_fed_links_count(const struct sn_ctx *ctx);
struct sn_conn *sn_fed_links_get(const struct sn_ctx *ctx, size_t i);
/* The link up to supernode id, or NULL. */
struct sn_conn *sn_fed_link(const struct sn_ctx *ctx, const uint8_t id[WIRE_ID_LEN]);
/* Send m to supernode id: 0, SOVA_ERR_NOT_FOUND without a link, or link_send's error. */
int sn_fed_send(struct sn_ctx *ctx, const uint8_t id[WIRE_ID_LEN], const struct msg *m);
/* Dial a supernode (known by ID from gossip) at one of its addresses,
 * unless a link to it exists or it is this supernode. */
int sn_fed_dial_addrs(struct sn_ctx *ctx, const uint8_t id[WIRE_ID_LEN],
                      const struct wire_addr *addrs, size_t n);

#endif
