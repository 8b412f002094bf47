/* op_session.h - an ordinary peer's session with its supernode.
 *
 * Dials the bootstrap supernodes in turn (TLS, peer->supernode policy: the
 * supernode must chain to the federation root), sends REGISTER, keeps the
 * link alive with PING at the interval the supernode asks for, and when the
 * link goes away dials again with capped exponential backoff and jitter.
 * Everything the supernode answers goes to the owner's hooks. Nothing
 * blocks; names are resolved with evdns.
 *
 * Ownership: the session owns its link; bootstrap strings are copied.
 */
#ifndef SOVA_OP_SESSION_H
#define SOVA_OP_SESSION_H

#include "evloop.h"
#include "link.h"
#include "msg.h"
#include "tls.h"

#include <stdbool.h>

#define OP_SESSION_RETRY_MIN_MS  500
#define OP_SESSION_RETRY_MAX_MS  30000
#define OP_SESSION_MAX_BOOTSTRAP 16

struct op_session_hooks {
    /* REGISTERED arrived: the peer is attached (publish now). */
    void (*attached)(void *arg);
    /* The supernode link is gone (a new attempt is scheduled). */
    void (*detached)(void *arg);
    /* Any other message from the supernode (SEARCH_RESULT, LOCATE_RESULT,
     * PUBLISH_ACK, ERROR ...); borrowed for the call. */
    void (*message)(const struct msg *m, void *arg);
};

struct op_session_config {
    struct evloop *loop;
    struct tls_ctx *tls;
    const struct link_params *params;
    const char *bootstrap; /* HOST:PORT[,HOST:PORT...] */
    /* What REGISTER claims. */
    const struct wire_addr *addrs;
    size_t n_addrs;
    uint8_t reachability;
    struct op_session_hooks hooks;
    void *arg;
};

struct op_session;

int op_session_new(const struct op_session_config *cfg, struct op_session **out);
/* Start dialing. */
void op_session_start(struct op_session *s);
void op_session_free(struct op_session *s);

bool op_session_attached(const struct op_session *s);
/* Send to the supernode; SOVA_ERR_NOT_FOUND when not attached. */
int op_session_send(struct op_session *s, const struct msg *m);
/* The supernode's ID and our address as it sees us, once attached. */
const char *op_session_sn_id(const struct op_session *s);
const struct wire_addr *op_session_observed(const struct op_session *s);
/* Which bootstrap endpoint the session uses or tries now. */
const char *op_session_endpoint(const struct op_session *s);
/* Bytes over the current link. */
uint64_t op_session_bytes_in(const struct op_session *s);
uint64_t op_session_bytes_out(const struct op_session *s);

#endif
