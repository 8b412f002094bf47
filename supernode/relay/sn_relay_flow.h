/* sn_relay_flow.h - the rules of a relay circuit, sans-I/O: who may open
 * one, and the flow control of its data (docs/NAT.md, "Relay circuits").
 *
 * Flow control, per leg and direction. A circuit splices two legs; each
 * starts with MSG_RELAY_INITIAL_CREDIT both ways. Data received on leg x
 * is charged to x's receive window, queued for the other leg y, and sent
 * on y as y's send credit, the bandwidth limits and y's link output queue
 * allow (relay_flow_next). What went out is owed back to x's sender, and
 * returned (RELAY_WINDOW) in steps of RELAY_FLOW_GRANT_BYTES
 * (relay_flow_sent, relay_flow_grant). So one circuit holds at most its window here per
 * direction, a slow reader slows its own circuit only, and no link queues
 * more than RELAY_FLOW_LINK_HIGH of relay data. For every leg x, at every
 * step: recv_window(x) + owed(x) + bytes queued from x == the initial
 * credit (relay_flow_balanced; sn_relay.c asserts it).
 *
 * Admission (relay_flow_admit): relay on, the origin registered as primary
 * and naming itself, its open rate (a token bucket, guard/sn_rate.h), the
 * pool of relay-max-circuits shared fairly by the origin's address prefix
 * (common/fair.h: at most relay-max-prefix-circuits each; when the pool is
 * full a newcomer from a prefix holding fewer displaces the least recently
 * active circuit of the prefix holding the most), the circuits per attached
 * peer, a target that is not the origin.
 *
 * Lifetime (relay_flow_due): an open circuit that carried no RELAY_DATA
 * either way for relay-idle-timeout-s is closed (PINGs on its links do not
 * count: they keep a link, not a circuit), and every circuit at
 * relay-max-duration-s.
 *
 * Pure: numbers in, numbers out; time comes in as now_ms; no allocation. */
#ifndef SOVA_SN_RELAY_FLOW_H
#define SOVA_SN_RELAY_FLOW_H

#include "fair.h"
#include "sn_rate.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RELAY_FLOW_GRANT_BYTES (64u * 1024)   /* credit is returned in steps this big */
#define RELAY_FLOW_LINK_HIGH   (1024u * 1024) /* relay data waits while a link queues this much */
#define RELAY_FLOW_MAX_CREDIT  (1u << 30)     /* a RELAY_WINDOW past this is a protocol error */

struct relay_flow_leg {
    uint32_t send_credit; /* RELAY_DATA bytes we may still send on this leg */
    uint32_t recv_window; /* bytes the other side may still send us */
    uint32_t owed;        /* bytes of its data sent on, not yet granted back */
};

/* A new leg with `initial` credit both ways. */
void relay_flow_leg_init(struct relay_flow_leg *l, uint32_t initial);

/* len bytes of RELAY_DATA arrived on leg in: 0, or SOVA_ERR_TOO_LARGE when
 * that is more than its window allowed (a protocol error; nothing changed). */
int relay_flow_received(struct relay_flow_leg *in, size_t len);

/* RELAY_WINDOW of credit arrived on leg l: 0, or SOVA_ERR_TOO_LARGE when it
 * would take the send credit past RELAY_FLOW_MAX_CREDIT (nothing changed). */
int relay_flow_window(struct relay_flow_leg *l, uint32_t credit);

/* What one leg's data may do now. */
struct relay_flow_room {
    size_t queued;         /* bytes waiting to go out on this leg */
    size_t link_queued;    /* bytes its link has not written out yet */
    uint64_t bandwidth;    /* bytes the bandwidth limits allow now (UINT64_MAX: none) */
    size_t max_frame_data; /* a RELAY_DATA payload is at most this */
};

enum relay_flow_verdict {
    RELAY_FLOW_SEND,           /* send *n bytes now */
    RELAY_FLOW_IDLE,           /* nothing waits */
    RELAY_FLOW_WAIT_LINK,      /* its link is full: wait until it drains */
    RELAY_FLOW_WAIT_CREDIT,    /* no send credit: wait for RELAY_WINDOW */
    RELAY_FLOW_WAIT_BANDWIDTH, /* over a bandwidth limit: retry in a moment */
};

/* The next frame on leg out: how many bytes (*n, with RELAY_FLOW_SEND) or
 * what it waits for. */
enum relay_flow_verdict relay_flow_next(const struct relay_flow_leg *out,
                                        const struct relay_flow_room *room, size_t *n);

/* n bytes that came in on leg in went out on leg out (n <= out's send
 * credit): out's credit is spent, in's sender is owed them back. */
void relay_flow_sent(struct relay_flow_leg *out, struct relay_flow_leg *in, size_t n);
/* The credit to grant back on leg in now (a RELAY_WINDOW of it), counted as
 * given; 0 while less than RELAY_FLOW_GRANT_BYTES is owed. */
uint32_t relay_flow_grant(struct relay_flow_leg *in);

/* Whether in's accounting holds with `queued` bytes from it waiting for
 * the other leg (see above). */
bool relay_flow_balanced(const struct relay_flow_leg *in, size_t queued, uint32_t initial);

/* Why a RELAY_OPEN may not open a circuit. */
struct relay_flow_open {
    bool relay_on;          /* option relay */
    bool from_supernode;    /* the SN<->SN leg of a circuit a peer asked for elsewhere */
    bool origin_registered; /* the asking peer holds a primary session here */
    bool origin_is_sender;  /* the origin ID it names is its own */
    /* the pool's answer for one more circuit of the origin's prefix
     * (fair_check_key on relay-max-circuits, relay-max-prefix-circuits) */
    enum fair_verdict pool;
    unsigned origin_circuits, target_circuits; /* of the peers attached here */
    uint64_t max_peer_circuits;                /* relay-max-peer-circuits */
    bool target_here;                          /* the target is attached here */
    bool target_is_origin;
};

/* 0 to open (with FAIR_DISPLACE: once the pool's victim is closed), else
 * the RELAY_CLOSE reason (enum msg_error_code) and *why a line for the log.
 * The origin's open rate is taken from `rate` only when everything before
 * it allows the circuit (peers, not supernodes). */
uint16_t relay_flow_admit(const struct relay_flow_open *o, struct sn_rate *rate, uint64_t now_ms,
                          const char **why);

/* The clock of an open circuit (0: no such limit). */
struct relay_flow_clock {
    uint64_t opened_ms;    /* when it opened */
    uint64_t last_data_ms; /* RELAY_DATA last came on either leg (opened_ms before any) */
    uint64_t idle_ms;      /* relay-idle-timeout-s */
    uint64_t life_ms;      /* relay-max-duration-s when it opened */
};

enum relay_flow_due {
    RELAY_FLOW_DUE_NONE,     /* nothing yet: look again at *next_ms */
    RELAY_FLOW_DUE_IDLE,     /* idle too long: RELAY_CLOSE(timeout) */
    RELAY_FLOW_DUE_LIFETIME, /* lived long enough: RELAY_CLOSE(limit reached) */
};

/* What is due for an open circuit at now_ms; with RELAY_FLOW_DUE_NONE,
 * *next_ms is when to look again (UINT64_MAX: never). The lifetime comes
 * first when both are due. */
enum relay_flow_due relay_flow_due(const struct relay_flow_clock *c, uint64_t now_ms,
                                   uint64_t *next_ms);

#endif
