/* sn_relay_int.h - private to supernode/relay/sn_relay.c (circuits: legs,
 * splicing, data, the messages) and sn_relay_life.c (a link's relay state,
 * the feature's start, stop, reloads and status): the layout of the relay's
 * state and the few functions each uses of the other. Not for other files. */
#ifndef SOVA_SN_RELAY_INT_H
#define SOVA_SN_RELAY_INT_H

#ifndef SN_RELAY_INTERNAL
#error "sn_relay_int.h is private to supernode/relay/sn_relay*.c"
#endif

#include "fair.h"
#include "sn_relay.h"
#include "sn_relay_flow.h"

#include <event2/buffer.h>
#include <event2/event.h>

#define RELAY_CLOSE_FLUSH_MS 5000 /* a closed circuit's last data may take this long */
#define RELAY_RETRY_MS       20   /* circuits held by a bandwidth limit retry this often */
#define RELAY_RATE_WINDOW_MS 2000 /* relay kB/s is measured over this */
#define RELAY_MIN_BURST      65536

enum { ORIGIN = 0, TARGET = 1 };
enum circ_state { CIRC_LOCATING, CIRC_OPENING, CIRC_OPEN, CIRC_CLOSING };

struct sn_relay_leg {
    struct sn_circuit *c;
    struct sn_conn *p; /* NULL once its link went (or before it is chosen) */
    struct sn_relay_leg *next_on_link, *prev_on_link;
    uint32_t id;
    struct relay_flow_leg flow;
    struct evbuffer *pending; /* data for this leg, waiting; made on first need */
};

/* SN_EXT_RELAY: a link's circuits and, for an attached peer, its relay
 * bandwidth. */
struct relay_conn {
    struct sn_relay_leg *legs;
    unsigned circuits; /* of an attached peer (legs toward supernodes are not counted) */
    uint32_t next_id;
    struct sn_rate bucket; /* relay bandwidth of this peer */
};

struct sn_circuit {
    struct sn_relay *r;
    struct sn_circuit *next, *prev; /* every circuit */
    struct sn_circuit *next_blocked;
    bool blocked; /* waiting for bandwidth tokens */
    struct sn_relay_leg leg[2];
    enum circ_state state;
    uint8_t origin_id[WIRE_ID_LEN], target_id[WIRE_ID_LEN], token[WIRE_TOKEN_LEN];
    uint64_t created_ms, bytes;
    uint16_t close_reason; /* CLOSING: what the remaining leg is told */
    struct event *timer;   /* open deadline, then idle time and lifetime, then the close flush */
    struct relay_flow_clock clock; /* once open */
    struct fair_holder slot;       /* in r->pool, by the origin's prefix */
};

struct relay_counters {
    uint64_t opened, refused, closed_limit, closed_idle, displaced, bytes;
};

struct sn_relay {
    struct sn_ctx *d;
    struct sn_circuit *circuits;
    size_t n;
    struct fair_pool *pool; /* relay-max-circuits, fair by the origin's prefix */
    struct sn_circuit *blocked;
    struct event *retry;
    struct sn_rate total; /* relay-total-kbps */
    struct relay_counters counters;
    uint64_t refused_by[MSG_ERR_TIMEOUT + 1]; /* by RELAY_CLOSE reason */
    uint64_t rate_bytes, rate_ms;             /* last sample for kbps */
    uint32_t kbps;
};

/* SN_EXT_RELAY of p, or NULL before its first circuit. */
static inline struct relay_conn *rconn(const struct sn_conn *p)
{
    return p->ext[SN_EXT_RELAY];
}

/* sn_relay_life.c: p's relay state, made on first need; NULL when memory
 * is short. */
struct relay_conn *relay_conn_make(struct sn_conn *p);
/* sn_relay.c: free a circuit (its legs, pool slot, timer, queues) without
 * telling anyone; the bandwidth retry timer's callback; (re)arm an open
 * circuit's timer at its next deadline (sn_relay_flow.h, relay_flow_due). */
void relay_circuit_free(struct sn_circuit *c);
void relay_on_retry(evutil_socket_t fd, short what, void *arg);
void relay_arm_open_timer(struct sn_circuit *c, uint64_t now);

#endif
