/* op_punch.h - the source's end of a hole punch (docs/NAT.md, "Hole
 * punching"). A downloader that cannot reach us, and that we cannot reach,
 * sends an OFFER note through the supernodes; we bind a port and answer
 * READY with it; at its SYNC we dial the address its supernode saw, from
 * that port, while it dials ours. The connection that results is served
 * like any other (op_server_wrap_punched), over TLS with us as the server
 * and the downloader's key expected.
 *
 * We answer NO at once when a punch cannot work from here: our NAT changes
 * ports (so the downloader could not aim at ours), or OP_PUNCH_MAX_WAITS
 * punches are already waiting. A SYNC that never comes frees the port
 * after OP_PUNCH_SYNC_WAIT_MS. A note is believed only for what its
 * supernode vouches for: the sender is its TLS identity and the address
 * the IP its connection comes from, so a note cannot aim us at a third
 * party; a SYNC must come from the peer that sent the OFFER, with its token.
 *
 * Ownership: the daemon owns the struct op_punch; the server and tls are
 * borrowed and outlive it. Single-threaded, on the loop. */
#ifndef SOVA_OP_PUNCH_H
#define SOVA_OP_PUNCH_H

#include "msg.h"
#include "op_serve.h"
#include "tls.h"

#include <event2/event.h>
#include <stdbool.h>

#define OP_PUNCH_MAX_WAITS    8    /* punches waiting for their SYNC or connecting */
#define OP_PUNCH_SYNC_WAIT_MS 5000 /* an OFFER whose SYNC does not come is dropped */
#define OP_PUNCH_CONNECT_MS   5000 /* after SYNC, our end dials this long */

struct op_punch;

struct op_punch_env {
    struct event_base *base;
    struct tls_ctx *tls;
    struct op_server *server;
    const struct sockaddr *bind_addr; /* where we dial from (port ignored); NULL: any */
    socklen_t bind_len;
    /* Send a PUNCH note on the primary session: 0 or an error. */
    int (*send)(const struct msg_punch *note, void *arg);
    /* Does our NAT keep ports (or is there none)? */
    bool (*keeps_ports)(void *arg);
    void *arg;
};

struct op_punch *op_punch_new(const struct op_punch_env *env);
/* Every wait dropped, every port closed; NULL is fine. */
void op_punch_free(struct op_punch *p);
/* An OFFER or SYNC note from a downloader (others are not ours). */
void op_punch_note(struct op_punch *p, const struct msg_punch_note *n);

struct op_punch_stats {
    uint64_t offers, refused, connected, failed;
};
void op_punch_stats(const struct op_punch *p, struct op_punch_stats *out);

#endif
