/* op_session.h - an ordinary peer's sessions with the supernode federation.
 *
 * The peer keeps two supernode links (KaZaA's primary and secondary group
 * leader): a PRIMARY session, where it publishes its files and searches,
 * and a warm BACKUP session with another supernode (registered as backup:
 * its files are not indexed twice). When the primary goes away (reset, or
 * silent past the supernode's timeout) the backup is promoted at once: it
 * re-registers as primary and the owner republishes; then a new backup is
 * opened. When every known supernode fails, dialing goes on with capped
 * exponential backoff and jitter.
 *
 * Where supernodes come from: the configured bootstrap list, the host cache
 * the owner hands in (SQLite), and the SN_LIST every supernode sends.
 *
 * Which one: whenever a session must be dialed (the first dial, a re-dial,
 * a new backup) the candidate is chosen by op_session_pick(): fewest
 * failures (a supernode that failed never stays first), then the best
 * capacity class (load from SN_LIST), then the least loaded (within a
 * slack), then the lowest measured round trip
 * (PING -> PONG on the sessions this run had with it, link_rtt_us(); one
 * measured beats one never measured), then in turn among equals. And a
 * race: when the primary must be dialed and no backup session is up, the
 * best two are dialed at once and the first to finish TLS and HELLO
 * becomes the primary, the other the backup (happy eyeballs), so a slow
 * supernode loses even when nothing is measured yet. A session that works
 * is never dropped for a faster one: a promoted backup stays primary;
 * measurements count at the next choice.
 *
 * Load spread: a primary over the federation's mean sheds its excess
 * (op_session_rebalance; docs/FEDERATION.md, "Load spread"): the target is
 * dialed as the backup, confirmed by its own fresh count, and the two
 * swap.
 *
 * Every link is TLS with the peer->supernode policy (the supernode must
 * chain to the federation root). Nothing blocks; names resolve with evdns.
 * Ownership: the session owns its links and candidate list.
 */
#ifndef SOVA_OP_SESSION_H
#define SOVA_OP_SESSION_H

#include "evloop.h"
#include "link.h"
#include "msg.h"
#include "tls.h"

#include <stdbool.h>

/* A supernode link whose path stops carrying packets (a WAN outage, a
 * router gone) is closed within about this, and the peer fails over or
 * dials again, instead of waiting out the keep-alive timeout (90 s). */
#define OP_SESSION_DEAD_PATH_MS   15000
#define OP_SESSION_RETRY_MIN_MS   500
#define OP_SESSION_RETRY_MAX_MS   30000
#define OP_SESSION_RACE_MS        10000 /* a supernode name's addresses raced this long at most */
#define OP_SESSION_MAX_CANDIDATES 64
#define OP_SESSION_ENDPOINT_MAX   64
/* Load classes: a supernode with attached >= capacity * BUSY_PCT / 100 is
 * busy, with attached >= capacity full. */
#define OP_SESSION_BUSY_PCT 75
/* Round trips within max(SLACK_MIN_US, fastest / SLACK_DIV) of the fastest
 * measured count as equal (noise; equals take turns). */
#define OP_SESSION_RTT_SLACK_MIN_US 1000
#define OP_SESSION_RTT_SLACK_DIV    4
/* Load spread (op_session_rebalance): a primary supernode carrying more
 * than OVER_PCT % of the federation's mean load, and over it by at least
 * MIN_EXCESS peers and MIN_EXCESS_PERMILLE of its capacity, sheds its
 * excess (a supernode far below its capacity serves its peers as well as
 * any: moving them would cost a republish, and a search gap, for nothing); a peer decides at most
 * once per COOLDOWN_MS (plus up to a quarter of jitter) after a move. */
#define OP_SESSION_REBALANCE_OVER_PCT            120
#define OP_SESSION_REBALANCE_MIN_EXCESS          2
#define OP_SESSION_REBALANCE_MIN_EXCESS_PERMILLE 10
#define OP_SESSION_REBALANCE_COOLDOWN_MS         30000
/* ... and after a decision to stay (the draw said so, or the target filled
 * up meanwhile); a supernode coming or going ends either at once. */
#define OP_SESSION_REBALANCE_STAY_MS 10000
/* A move starts at a random moment of this, and is confirmed against the
 * target's own count (op_session_move_ok) before the swap. */
#define OP_SESSION_REBALANCE_SPREAD_MS 3000

struct op_session_hooks {
    /* The primary session is registered: publish now. */
    void (*attached)(void *arg);
    /* The primary session is gone (a promotion or a new dial follows). */
    void (*detached)(void *arg);
    /* A supernode of the federation (from SN_LIST): remember it. */
    void (*supernode_seen)(const struct msg_sn_info *sn, void *arg);
    /* Any other message from the primary supernode; borrowed for the call. */
    void (*message)(const struct msg *m, void *arg);
    /* May the primary be moved to a less loaded supernode now? NULL: yes.
     * (Relay circuits run over the primary session: not while one is open.) */
    bool (*may_move)(void *arg);
};

struct op_session_config {
    struct evloop *loop;
    struct tls_ctx *tls;
    const struct link_params *params;
    const char *bootstrap; /* HOST:PORT[,HOST:PORT...] */
    /* What REGISTER claims at first (copied; op_session_set_claim changes it). */
    const struct wire_addr *addrs;
    size_t n_addrs;
    uint8_t reachability;
    bool backup; /* keep a backup session */
    struct op_session_hooks hooks;
    void *arg;
};

struct op_session;

int op_session_new(const struct op_session_config *cfg, struct op_session **out);
/* A supernode known from an earlier run (host cache): a candidate after
 * the configured ones. */
void op_session_add_candidate(struct op_session *s, const uint8_t sn_id[WIRE_ID_LEN],
                              const char *endpoint, uint32_t failures);
void op_session_start(struct op_session *s);
void op_session_free(struct op_session *s);

bool op_session_attached(const struct op_session *s);
/* Send on the primary session; SOVA_ERR_NOT_FOUND when not attached. */
int op_session_send(struct op_session *s, const struct msg *m);
/* The primary supernode's ID and our address as it sees us, once attached. */
const char *op_session_sn_id(const struct op_session *s);
const struct wire_addr *op_session_observed(const struct op_session *s);
/* The backup supernode's ID, or NULL when there is no backup session. */
const char *op_session_backup_id(const struct op_session *s);
/* Which endpoint the primary session uses or tries now. */
const char *op_session_endpoint(const struct op_session *s);
/* Why the last supernode that refused us did (an ERROR before or instead of
 * REGISTERED: its endpoint, code and text, and what we do about it), in
 * words; NULL once the primary session is registered, or if none did. */
const char *op_session_refusal(const struct op_session *s);
size_t op_session_candidates(const struct op_session *s);
/* The smoothed round trip to the primary (backup: the backup) supernode,
 * microseconds; 0 when there is no such session or no PONG came yet. */
uint32_t op_session_rtt_us(const struct op_session *s, bool backup);
/* The keep-alive the primary supernode asks for (its last REGISTERED),
 * seconds; 0 when not registered. */
unsigned op_session_keepalive_s(const struct op_session *s);
/* Change what REGISTER claims (after a dial-back, a new mapping): sent
 * again to each registered supernode if it changed, and to the primary
 * anyway with tell_primary (it just proved the claim: a supernode believes
 * a claim at the REGISTER after its dial-back). addrs is copied. */
void op_session_set_claim(struct op_session *s, uint8_t reachability, const struct wire_addr *addrs,
                          size_t n, bool tell_primary);
/* Of a supernode's addresses (SN_LIST), the first of family (the one our
 * own supernode link uses), else the first; NULL when n is 0. Pure. A
 * known supernode keeps the endpoint it was reached at: an IPv6-only peer
 * once lost its IPv6 bootstrap to an IPv4 address from SN_LIST and could
 * never attach again. */
const struct wire_addr *op_session_usable_addr(const struct wire_addr *addrs, size_t n,
                                               uint8_t family);
/* The host's addresses are now addrs (the network changed): a supernode
 * link from an address no longer among them is closed at once (it fails
 * over or dials again, not at a keep-alive timeout), and a session waiting
 * to dial again dials now. */
void op_session_addresses_changed(struct op_session *s, const struct wire_addr *addrs, size_t n);
/* The primary supernode offers relay circuits (its HELLO said so). */
bool op_session_relay_offered(const struct op_session *s);
/* The primary supernode's HELLO has the capability bit cap (MSG_CAP_*). */
bool op_session_sn_offers(const struct op_session *s, uint32_t cap);
/* For the NAT type: per registered session, the address the supernode
 * sees and the local address the connection comes from. Returns 0..2. */
size_t op_session_nat_sample(const struct op_session *s, struct wire_addr observed[2],
                             struct wire_addr local[2]);

/* ---- the choice, pure (unit-tested) ------------------------------------------ */
enum op_session_load { OP_SESSION_SPARE, OP_SESSION_BUSY, OP_SESSION_FULL };
/* Spare when the capacity is unknown (0). */
enum op_session_load op_session_load_class(uint32_t attached, uint32_t capacity);

struct op_session_rank {
    uint32_t failures;
    uint32_t attached, capacity; /* from SN_LIST; 0/0 unknown */
    uint32_t rtt_us;             /* measured round trip; 0 never measured */
    bool excluded;               /* in use by the other session: never picked */
};
/* Index of the candidate to dial, or -1 if every one is excluded: among
 * those not excluded, the fewest failures; of them the best load class; of
 * them, if any has a measured round trip, those within the slack of the
 * fastest (else all); of those the first at or after rotate (mod n). */
int op_session_pick(const struct op_session_rank *r, size_t n, size_t rotate);

/* Load spread: should a peer leave its primary supernode r[primary] for a
 * less loaded one? Loads are attached / capacity (entries with capacity 0,
 * failures or excluded do not count). When the primary carries more than
 * OP_SESSION_REBALANCE_OVER_PCT % of the mean and is over its share by at
 * least OP_SESSION_REBALANCE_MIN_EXCESS peers and MIN_EXCESS_PERMILLE of
 * its capacity, *imbalanced is set
 * and each of its peers leaves with probability excess / attached (u_move
 * in [0, 1) is the draw), so that on average just the excess moves; the
 * target is drawn (u_target) among the supernodes under the mean, in
 * proportion to how many peers each lacks, so the arrivals fill the gaps
 * instead of all landing on the emptiest. Returns the target's index, or
 * -1 to stay; *mean is the mean load (0 when unknown). Pure. */
int op_session_rebalance(const struct op_session_rank *r, size_t n, size_t primary, double u_move,
                         double u_target, bool *imbalanced, double *mean);
/* The mean load (attached / capacity) of the entries with a known load,
 * not excluded and without failures; 0 when none. Pure. */
double op_session_mean_load(const struct op_session_rank *r, size_t n);
/* The target of a move, now carrying attached of capacity (its own word,
 * fresh): does it stay within the mean with one more? */
bool op_session_move_ok(uint32_t attached, uint32_t capacity, double mean);

#endif
