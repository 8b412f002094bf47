/* sn_member_impl.h - private to sn_member.c (the table, the precedence rules,
 * dissemination, outputs, queries) and sn_member_probe.c (probes, timers,
 * link events, receiving). Not for other modules: use sn_member.h. */
#ifndef SOVA_SN_MEMBER_IMPL_H
#define SOVA_SN_MEMBER_IMPL_H

#ifndef SN_MEMBER_INTERNAL
#error "sn_member_impl.h is private to sn_member*.c; include sn_member.h"
#endif

#include "sn_member.h"

struct member {
    uint8_t id[WIRE_ID_LEN];
    struct wire_addr addrs[WIRE_MAX_ADDRS];
    size_t n_addrs;
    uint8_t state; /* enum msg_sn_state */
    uint64_t incarnation;
    bool inc_known; /* false: only a link told us of it; its own entry has not come */
    uint32_t peers, capacity, relay_kbps;
    uint64_t last_heard;       /* 0: never */
    uint64_t first_seen;       /* learned, or came back from dead/left */
    uint64_t state_since;      /* entered its current state */
    uint64_t suspect_deadline; /* SUSPECT: declared dead then */
    bool our_suspicion;        /* SUSPECT: our own probe failed (not gossip) */
    uint64_t next_connect;     /* unlinked alive/suspect: CONNECT again then */
    bool linked;
    /* dissemination */
    unsigned tx_left;  /* piggy-back it this many more times */
    unsigned tx_sent;  /* times sent since it was last queued */
    uint64_t tx_order; /* when it was queued (a counter): newer first among equals */
};

struct out_item {
    struct sn_member_out out;
    struct msg_sn_info *infos; /* out.msg.updates; owned, grown as updates are added */
    size_t cap_infos;
    struct wire_addr *addrs; /* the updates' addresses, one after the other; owned */
    size_t n_addrs, cap_addrs;
};

struct relay { /* a PING_REQ we serve: we pinged target, the ACK goes to requester */
    bool used;
    uint8_t requester[WIRE_ID_LEN];
    uint8_t target[WIRE_ID_LEN];
    uint32_t requester_seq, our_seq;
    uint64_t expires;
};

struct probe {
    bool active; /* a probe is running this period */
    bool acked;
    bool indirect_sent;
    uint8_t target[WIRE_ID_LEN];
    uint32_t seq;
    uint64_t ack_deadline;
    uint64_t indirect_at; /* when the PING_REQs went out */
};

struct sn_member {
    struct sn_member_config cfg;
    struct member self; /* state ALIVE, or LEFT after sn_member_leave() */
    bool load_dirty;    /* load changed since the last announcement */
    uint64_t last_load_announce;
    bool started; /* the first tick ran */
    bool left;
    uint64_t rng;
    uint32_t next_seq;
    uint64_t tx_counter;

    struct member *members; /* others; unordered */
    size_t n_members, cap_members;

    uint8_t (*order)[WIRE_ID_LEN]; /* probe round: shuffled IDs */
    size_t n_order, cap_order, order_pos;
    struct probe probe;
    uint64_t next_period;
    uint64_t next_reprobe;

    struct relay relays[SN_MEMBER_MAX_RELAYS];

    struct out_item *outs;
    size_t n_outs, cap_outs, out_pos;
};

/* ---- sn_member.c: table, rules, dissemination, outputs ---- */
uint64_t member_rand(struct sn_member *m);
/* Uniform in [0, n); n > 0. */
size_t member_rand_below(struct sn_member *m, size_t n);
struct member *member_find(struct sn_member *m, const uint8_t id[WIRE_ID_LEN]);
/* Add an alive member (from a link or from gossip); NULL when full or out of
 * memory. */
struct member *member_add(struct sn_member *m, uint64_t now, const uint8_t id[WIRE_ID_LEN]);
/* Alive and suspect members, self included. */
size_t member_live_count(const struct sn_member *m);
/* Queue e for dissemination (again): retransmit_mult x ceil(log2(N+1))
 * times, or refresh_mult x ... for a refresh that changes no one's state. */
void member_queue(struct sn_member *m, struct member *e, bool refresh);
/* Apply one received update by the precedence rules. */
void member_apply(struct sn_member *m, uint64_t now, const struct msg_sn_info *u);
/* Set e's state, with a STATE output. */
void member_set_state(struct sn_member *m, uint64_t now, struct member *e, uint8_t state);
/* Queue a GOSSIP to `to`: kind, seq, target (NULL: zero), piggy-backed
 * updates (to's own entry first if we do not hold it alive). */
void member_send(struct sn_member *m, const uint8_t to[WIRE_ID_LEN], uint8_t kind, uint32_t seq,
                 const uint8_t *target);
/* The same with lead's entry first (not counted as one of its sends). */
void member_send_lead(struct sn_member *m, const uint8_t to[WIRE_ID_LEN], uint8_t kind,
                      uint32_t seq, const uint8_t *target, const struct member *lead);
/* Queue PINGs to `to` carrying our whole table (link-up exchange). */
void member_send_table(struct sn_member *m, const uint8_t to[WIRE_ID_LEN]);
void member_out_connect(struct sn_member *m, const struct member *e);
/* A STATE output for a member just learned (prev_state SN_MEMBER_GONE). */
void member_out_new(struct sn_member *m, const struct member *e);
/* Drop every drained output (start of an input call). */
void member_outputs_reset(struct sn_member *m);

/* ---- sn_member_probe.c ---- */
/* Shortest time between two load announcements. */
uint64_t member_load_interval(const struct sn_member *m);
/* Put id at a random place of the rest of this probe round (next if `next`). */
void member_order_insert(struct sn_member *m, const uint8_t id[WIRE_ID_LEN], bool next);

#endif
