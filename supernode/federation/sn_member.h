/* sn_member.h - SWIM membership of the supernode federation, sans-I/O.
 *
 * Each supernode runs one struct sn_member. It probes one member per
 * protocol period (round-robin over a shuffled list), asks k others to probe
 * for it when the direct ping is not answered in time, suspects a member
 * that no probe reached by the end of the period, and declares it dead when
 * the suspicion is not refuted in time. Membership changes ride on the
 * GOSSIP messages it sends anyway (piggy-backed, each a bounded number of
 * times). docs/FEDERATION.md, "Membership (SWIM)", is the reference for the
 * rules (precedence, incarnations, timers, recovery after a partition);
 * docs/PROTOCOL.md, GOSSIP, states who sends what on the wire.
 *
 * Sans-I/O. Nothing here reads a clock, touches a socket or draws from a
 * global random source: the daemon passes the monotonic time (now_ms) with
 * every input, and the PRNG is seeded from the config (same seed, same
 * inputs: same outputs). The daemon
 *   - feeds inputs: sn_member_link_up/_link_down/_receive/_tick/_set_load/
 *     _leave;
 *   - after each input, drains the outputs with sn_member_next_output():
 *     GOSSIP messages to send on a supernode link (it only encodes them),
 *     supernodes to dial, and state changes to log or announce to peers;
 *   - calls sn_member_tick() at sn_member_next_deadline() (or earlier: a tick
 *     with nothing due does nothing).
 * There are no seeds here: the daemon dials its configured seeds itself and
 * reports each link that opens with sn_member_link_up(); a link to an ID the
 * module does not know makes it a member.
 *
 * Cost: the member table is an array scanned linearly; every call is
 * O(members) or O(members log members), at most SN_MEMBER_MAX_MEMBERS.
 * Nothing blocks. Not thread-safe: the daemon calls it from its loop only.
 *
 * Ownership. The module copies everything it is given (IDs, addresses,
 * messages); the caller's buffers may go away once a call returns, and a
 * decoded message passed to sn_member_receive() may be msg_clear'ed right
 * after. What the module hands out is BORROWED and stays valid until the
 * next call of an input function (link_up, link_down, receive, tick,
 * set_load, leave) or sn_member_free():
 *   - the struct msg_gossip of a SN_MEMBER_SEND output (its updates array
 *     and their address arrays): encode it, never free it;
 *   - the addresses in a struct sn_member_view.
 * Query functions never change anything and may be called at any time.
 */
#ifndef SOVA_SN_MEMBER_H
#define SOVA_SN_MEMBER_H

#include "msg.h"
#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- timers and limits -----------------------------------------------------
 * Defaults of struct sn_member_config (sn_member_config_default()). A zero
 * field in the config passed to sn_member_new() takes its default. */
#define SN_MEMBER_PERIOD_MS_DEFAULT        500  /* one probe per period */
#define SN_MEMBER_ACK_TIMEOUT_MS_DEFAULT   200  /* direct ACK expected by then, else PING_REQ */
#define SN_MEMBER_INDIRECT_K_DEFAULT       3    /* members asked to probe in a PING_REQ round */
#define SN_MEMBER_SUSPECT_MULT_DEFAULT     2    /* suspicion: mult x ceil(log10(N+1)) periods */
#define SN_MEMBER_SUSPECT_MIN_MS_DEFAULT   2000 /* ... but never shorter than this */
#define SN_MEMBER_RETRANSMIT_MULT_DEFAULT  3    /* a change rides on mult x ceil(log2(N+1)) msgs */
#define SN_MEMBER_REFRESH_MULT_DEFAULT     1    /* a load refresh on mult x ceil(log2(N+1)) */
#define SN_MEMBER_MAX_UPDATES_DEFAULT      WIRE_MAX_GOSSIP_UPDATES_DEFAULT /* per GOSSIP */
#define SN_MEMBER_DEAD_KEEP_MS_DEFAULT     120000 /* dead/left members remembered this long */
#define SN_MEMBER_DEAD_REPROBE_MS_DEFAULT  5000   /* one dead member re-contacted this often */
#define SN_MEMBER_CONNECT_RETRY_MS_DEFAULT 5000   /* CONNECT repeated for an unlinked member */
#define SN_MEMBER_JOIN_GRACE_MS_DEFAULT                                                            \
    2000 /* a member learned by gossip is probed once                                              \
            linked, or after this long */
#define SN_MEMBER_LOAD_PERIOD_MS_DEFAULT                                                           \
    2000 /* load announced at most this often (and at                                              \
            most once per N periods) */

#define SN_MEMBER_MAX_MEMBERS                                                                      \
    1024                        /* members kept (self excluded); gossip about more is              \
                                   ignored */
#define SN_MEMBER_MAX_RELAYS 64 /* PING_REQs being served at once */

/* The state of a member that was forgotten (SN_MEMBER_STATE only). */
#define SN_MEMBER_GONE 0

struct sn_member_config {
    uint8_t self_id[WIRE_ID_LEN];
    struct wire_addr self_addrs[WIRE_MAX_ADDRS]; /* where this supernode listens */
    size_t n_self_addrs;                         /* 0..WIRE_MAX_ADDRS */
    /* The starting incarnation. Nothing is persisted, so a restarted node
     * must start above whatever its previous run reached: the daemon passes
     * the wall-clock time in milliseconds (CLOCK_REALTIME). The module raises
     * it by one per refutation and per load announcement, far less than once
     * per millisecond, so a restart always beats the old instance. */
    uint64_t incarnation;
    uint64_t seed; /* PRNG seed: the daemon draws it with RAND_bytes; tests fix it */
    unsigned period_ms;
    unsigned ack_timeout_ms; /* clamped below period_ms */
    unsigned indirect_k;
    unsigned suspect_mult;
    unsigned suspect_min_ms;
    unsigned retransmit_mult;
    unsigned refresh_mult;
    unsigned max_updates; /* clamped to 1..WIRE_MAX_GOSSIP_UPDATES_DEFAULT */
    unsigned dead_keep_ms;
    unsigned dead_reprobe_ms;
    unsigned connect_retry_ms;
    unsigned join_grace_ms;
    unsigned load_period_ms;
};

/* All the _DEFAULT values above; zero ID, no addresses, incarnation 0, seed 0. */
struct sn_member_config sn_member_config_default(void);

/* ---- lifetime ------------------------------------------------------------------ */
struct sn_member;

/* A new module that knows only itself (alive, load 0/0/0). cfg is copied.
 * NULL when memory is short. */
struct sn_member *sn_member_new(const struct sn_member_config *cfg);
/* Free the module, its table and any undrained output. NULL is fine. */
void sn_member_free(struct sn_member *m);

/* ---- inputs ---------------------------------------------------------------------
 * now_ms is a monotonic clock in milliseconds, never decreasing from one
 * call to the next. Each input may queue outputs. */

/* A supernode link to id opened (either direction). addrs: where it
 * listens, if the daemon knows (it may be empty); the member's own gossip
 * overrides them. An unknown id becomes an alive member. Both sides then
 * exchange their whole tables (a few PINGs): this is how a node joins and
 * how two sides of a healed partition find out what the other thinks. */
void sn_member_link_up(struct sn_member *m, uint64_t now_ms, const uint8_t id[WIRE_ID_LEN],
                       const struct wire_addr *addrs, size_t n_addrs);
/* The link to id closed. A hint, not a verdict: the member is probed next
 * (through others, since the link is gone) and a CONNECT is queued. */
void sn_member_link_down(struct sn_member *m, uint64_t now_ms, const uint8_t id[WIRE_ID_LEN]);
/* A GOSSIP message arrived on the link of supernode `from` (its TLS
 * identity). g is read during the call only. */
void sn_member_receive(struct sn_member *m, uint64_t now_ms, const uint8_t from[WIRE_ID_LEN],
                       const struct msg_gossip *g);
/* Run the timers that are due: probes, indirect probes, suspicion
 * timeouts, forgetting, reconnects, load announcements. */
void sn_member_tick(struct sn_member *m, uint64_t now_ms);
/* This node's load now. When it changed, it is announced to the others as
 * a new incarnation, at most every max(load_period_ms, N x period_ms) (N:
 * live nodes), which keeps the load gossip per node O(log N). */
void sn_member_set_load(struct sn_member *m, uint32_t attached_peers, uint32_t capacity,
                        uint32_t relay_kbps);
/* Leave the federation cleanly: queue one PING to every alive or suspect
 * linked member announcing this node LEFT. From then on the module only
 * answers PINGs (telling the asker it left); it probes nothing and its
 * next deadline is UINT64_MAX. The daemon sends the outputs, waits briefly
 * (or for the ACKs) and closes its links. */
void sn_member_leave(struct sn_member *m, uint64_t now_ms);

/* ---- outputs ------------------------------------------------------------------- */
enum sn_member_out_kind {
    SN_MEMBER_SEND = 1,    /* encode msg as a GOSSIP frame and send it on id's link; if
                              there is no such link, drop it */
    SN_MEMBER_CONNECT = 2, /* dial id at addrs unless linked or already dialing */
    SN_MEMBER_STATE = 3,   /* id changed state (prev_state -> state); for logs, status
                              and SN_LIST announcements. prev_state SN_MEMBER_GONE: newly
                              learned; state SN_MEMBER_GONE: forgotten. Also reported for
                              this node itself when it leaves. */
};

struct sn_member_out {
    enum sn_member_out_kind kind;
    uint8_t id[WIRE_ID_LEN];                /* SEND: destination; else the member */
    struct msg_gossip msg;                  /* SEND: borrowed (see the top of this file) */
    struct wire_addr addrs[WIRE_MAX_ADDRS]; /* CONNECT, STATE: the member's addresses */
    size_t n_addrs;
    uint8_t state, prev_state; /* STATE: enum msg_sn_state or SN_MEMBER_GONE */
    uint64_t incarnation;      /* STATE: the member's incarnation */
};

/* Take the oldest queued output into *out. False when there is none. */
bool sn_member_next_output(struct sn_member *m, struct sn_member_out *out);
/* The monotonic time at which sn_member_tick() has something to do: 0 before
 * the first tick (tick now), UINT64_MAX after leaving. */
uint64_t sn_member_next_deadline(const struct sn_member *m);

/* ---- queries --------------------------------------------------------------------- */
struct sn_member_view {
    struct msg_sn_info info; /* ID, addresses (borrowed), incarnation, state, load:
                                ready to copy into an SN_LIST entry */
    uint64_t last_heard_ms;  /* last message or link-up from it (monotonic); 0 never */
    bool linked;             /* the daemon reported its link up */
    bool is_self;
};

/* This node: its ID, addresses, incarnation, state (alive, or left), load. */
void sn_member_self(const struct sn_member *m, struct sn_member_view *out);
/* Number of other members known, in any state (dead and left ones are kept
 * for dead_keep_ms). */
size_t sn_member_count(const struct sn_member *m);
/* The i-th other member, 0 <= i < sn_member_count(); false past the end.
 * Indices are stable until the next input call. */
bool sn_member_get(const struct sn_member *m, size_t i, struct sn_member_view *out);
/* The member with this ID (self included); false when unknown. */
bool sn_member_lookup(const struct sn_member *m, const uint8_t id[WIRE_ID_LEN],
                      struct sn_member_view *out);
/* Other members in this state (enum msg_sn_state). */
size_t sn_member_count_state(const struct sn_member *m, uint8_t state);
/* The suspicion timeout in force now: max(suspect_min_ms, suspect_mult x
 * ceil(log10(N + 1)) x period_ms), N the alive and suspect nodes, self
 * included. */
uint64_t sn_member_suspect_timeout_ms(const struct sn_member *m);

/* "alive", "suspect", "dead", "left", "gone"; "?" otherwise. */
const char *sn_member_state_name(uint8_t state);

#endif
