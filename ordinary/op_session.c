#include "op_session.h"
#include "dial_race.h"
#include "err.h"
#include "log.h"
#include "splitmix.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OP_KEEPALIVE_DEFAULT_S    15
#define OP_PEER_TIMEOUT_DEFAULT_S 45
#define OP_KEEPALIVE_MIN_TICK_MS  50
#define OP_BACKUP_RETRY_MS        2000 /* first retry of a lost or refused backup */

struct candidate {
    char endpoint[OP_SESSION_ENDPOINT_MAX];
    uint8_t id[WIRE_ID_LEN];
    bool id_known;
    uint32_t failures;
    uint32_t attached, capacity; /* load from SN_LIST; 0/0 unknown */
    uint32_t rtt_us;             /* last smoothed round trip of a session with it; 0 none */
    bool listed;                 /* alive in the primary's last SN_LIST */
};

enum slot_state { SLOT_IDLE, SLOT_DIALING, SLOT_OPEN, SLOT_REGISTERED };

/* One supernode session: the primary or the backup. */
struct slot {
    struct op_session *s;
    struct link *link;
    enum slot_state state;
    int cand; /* index into candidates, -1 if none */
    char sn_id[NODE_ID_STR_LEN + 1];
    uint8_t sn_raw[WIRE_ID_LEN];
    struct wire_addr observed;
    struct event *retry;
    unsigned retry_ms;
    uint64_t dial_ms; /* when the dial started: the handshake time is logged */
    /* The keep-alive this supernode asks for (REGISTERED; it may change it
     * at any time), and when we last PINGed it. */
    unsigned keepalive_ms, timeout_ms;
    uint64_t pinged_ms;
    /* A name with several addresses: raced (dial_race.h, Happy Eyeballs) */
    struct dial_race *race;
    struct sockaddr_storage race_addrs[DIAL_RACE_MAX];
    socklen_t race_lens[DIAL_RACE_MAX];
};

struct op_session {
    struct op_session_config cfg;
    struct link_params params; /* cfg.params, with dead_path_ms */
    struct candidate cands[OP_SESSION_MAX_CANDIDATES];
    size_t n_cands;
    size_t rotate; /* where the next pick starts among equals */
    struct slot slots[2];
    int primary;             /* which slot is the primary session */
    struct event *keepalive; /* both slots' PINGs and silence checks */
    uint64_t ping_nonce;
    /* What REGISTER claims (op_session_set_claim). */
    struct wire_addr addrs[WIRE_MAX_ADDRS];
    size_t n_addrs;
    uint8_t reachability;
    char refusal[512]; /* op_session_refusal(); "" when none */
    /* Load spread (op_session_rebalance): the candidate the primary moves
     * to (dialed as the backup, then the two swap), -1 none; no decision
     * before rebalance_after_ms. */
    int move_to;
    uint64_t list_sig;        /* the live supernodes of the primary's last SN_LIST */
    struct event *move_timer; /* the move starts at a random moment of the spread */
    struct event *recheck;    /* after a decision to stay: decide again on what we know */
    uint64_t rebalance_after_ms;
    uint64_t rng; /* splitmix64, seeded by RAND_bytes: each peer draws its own */
};

static void slot_dial(struct slot *sl);

static void set_timer_ms(struct event *ev, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

static bool is_primary(const struct slot *sl)
{
    return sl == &sl->s->slots[sl->s->primary];
}

static struct slot *other(struct slot *sl)
{
    return &sl->s->slots[sl == &sl->s->slots[0] ? 1 : 0];
}

/* ---- candidates --------------------------------------------------------------------- */

static int cand_find(const struct op_session *s, const uint8_t *id, const char *endpoint)
{
    for (size_t i = 0; i < s->n_cands; i++) {
        const struct candidate *c = &s->cands[i];
        if ((id && c->id_known && memcmp(c->id, id, WIRE_ID_LEN) == 0) ||
            (endpoint && strcmp(c->endpoint, endpoint) == 0))
            return (int)i;
    }
    return -1;
}

static struct candidate *cand_add(struct op_session *s, const uint8_t *id, const char *endpoint)
{
    int i = cand_find(s, id, endpoint);
    if (i < 0) {
        if (s->n_cands == OP_SESSION_MAX_CANDIDATES)
            return NULL;
        i = (int)s->n_cands++;
        memset(&s->cands[i], 0, sizeof(s->cands[i]));
    }
    struct candidate *c = &s->cands[i];
    snprintf(c->endpoint, sizeof(c->endpoint), "%s", endpoint);
    if (id != NULL) {
        memcpy(c->id, id, WIRE_ID_LEN);
        c->id_known = true;
    }
    return c;
}

/* Is candidate i the supernode the other slot uses? */
static bool cand_in_use(const struct slot *sl, int i)
{
    const struct slot *o = other((struct slot *)sl);
    if (o->state == SLOT_IDLE)
        return false;
    if (o->cand == i)
        return true;
    const struct candidate *c = &sl->s->cands[i];
    return o->state >= SLOT_OPEN && c->id_known && memcmp(c->id, o->sn_raw, WIRE_ID_LEN) == 0;
}

enum op_session_load op_session_load_class(uint32_t attached, uint32_t capacity)
{
    if (capacity == 0)
        return OP_SESSION_SPARE;
    if (attached >= capacity)
        return OP_SESSION_FULL;
    if ((uint64_t)attached * 100 >= (uint64_t)capacity * OP_SESSION_BUSY_PCT)
        return OP_SESSION_BUSY;
    return OP_SESSION_SPARE;
}

static double load_of(const struct op_session_rank *r)
{
    return r->capacity ? (double)r->attached / r->capacity : 0; /* unknown: as if empty */
}

/* Within slack of the least loaded: a quarter of its load, or two peers,
 * whichever is more (counts that close are noise). */
static bool near_least(const struct op_session_rank *r, double least)
{
    double slack = least / 4;
    if (r->capacity && 2.0 / r->capacity > slack)
        slack = 2.0 / r->capacity;
    return load_of(r) <= least + slack;
}

static bool in_group(const struct op_session_rank *r, uint32_t failures, enum op_session_load load,
                     double least)
{
    return !r->excluded && r->failures == failures &&
           op_session_load_class(r->attached, r->capacity) == load && near_least(r, least);
}

int op_session_pick(const struct op_session_rank *r, size_t n, size_t rotate)
{
    /* The best group: fewest failures, then best load class; in it those
     * near the least loaded; of them the fastest measured round trip. */
    bool any = false;
    uint32_t failures = 0, fastest = 0;
    enum op_session_load load = OP_SESSION_FULL;
    double least = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].excluded)
            continue;
        enum op_session_load c = op_session_load_class(r[i].attached, r[i].capacity);
        if (!any || r[i].failures < failures || (r[i].failures == failures && c < load)) {
            failures = r[i].failures;
            load = c;
            least = load_of(&r[i]);
        }
        any = true;
        if (r[i].failures == failures && c == load && load_of(&r[i]) < least)
            least = load_of(&r[i]);
    }
    if (!any)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (in_group(&r[i], failures, load, least) && r[i].rtt_us != 0 &&
            (fastest == 0 || r[i].rtt_us < fastest))
            fastest = r[i].rtt_us;
    uint32_t slack = fastest / OP_SESSION_RTT_SLACK_DIV;
    if (slack < OP_SESSION_RTT_SLACK_MIN_US)
        slack = OP_SESSION_RTT_SLACK_MIN_US;
    for (size_t k = 0; k < n; k++) {
        size_t i = (rotate + k) % n;
        if (in_group(&r[i], failures, load, least) &&
            (fastest == 0 || (r[i].rtt_us != 0 && r[i].rtt_us - fastest <= slack)))
            return (int)i;
    }
    return -1; /* not reached: the group holds the fastest */
}

bool op_session_move_ok(uint32_t attached, uint32_t capacity, double mean)
{
    return capacity != 0 && (double)attached + 1 <= mean * capacity + 0.5;
}

/* The mean load over the supernodes whose load we know; *known counts them. */
static double mean_load(const struct op_session_rank *r, size_t n, size_t *known)
{
    double sum = 0;
    *known = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].capacity == 0 || r[i].failures > 0 || r[i].excluded)
            continue;
        sum += (double)r[i].attached / r[i].capacity;
        (*known)++;
    }
    return *known ? sum / (double)*known : 0;
}

/* The peers r lacks to reach the mean; 0 when it is not a candidate target
 * (unknown load, failures, excluded, or at the mean or over). */
static double lack_of(const struct op_session_rank *r, double mean)
{
    if (r->capacity == 0 || r->failures > 0 || r->excluded)
        return 0;
    double lack = mean * r->capacity - r->attached;
    return lack > 0 ? lack : 0;
}

double op_session_mean_load(const struct op_session_rank *r, size_t n)
{
    size_t known;
    return mean_load(r, n, &known);
}

int op_session_rebalance(const struct op_session_rank *r, size_t n, size_t primary, double u_move,
                         double u_target, bool *imbalanced, double *mean_out)
{
    *imbalanced = false;
    *mean_out = 0;
    if (primary >= n || r[primary].capacity == 0 || r[primary].excluded || r[primary].failures > 0)
        return -1;
    size_t known;
    double mean = mean_load(r, n, &known);
    if (known < 2)
        return -1;
    *mean_out = mean;
    const struct op_session_rank *p = &r[primary];
    double load = (double)p->attached / p->capacity;
    double excess = p->attached - mean * p->capacity; /* peers over its share */
    double min_excess = p->capacity * (OP_SESSION_REBALANCE_MIN_EXCESS_PERMILLE / 1000.0);
    if (min_excess < OP_SESSION_REBALANCE_MIN_EXCESS)
        min_excess = OP_SESSION_REBALANCE_MIN_EXCESS;
    if (load * 100 <= mean * OP_SESSION_REBALANCE_OVER_PCT || excess < min_excess)
        return -1;
    *imbalanced = true;
    if (u_move >= excess / p->attached)
        return -1;
    /* Where to: weighted by the peers each supernode under the mean lacks. */
    double lack_sum = 0;
    for (size_t i = 0; i < n; i++)
        lack_sum += i == primary ? 0 : lack_of(&r[i], mean);
    double at = u_target * lack_sum;
    int last = -1;
    for (size_t i = 0; i < n; i++) {
        double lack = i == primary ? 0 : lack_of(&r[i], mean);
        if (lack <= 0)
            continue;
        last = (int)i;
        at -= lack;
        if (at < 0)
            return (int)i;
    }
    return last; /* rounding: the last under the mean */
}

/* A move is decided (move_to) and under way: its timer fired, the target is
 * being dialed as the backup or confirms. */
static bool move_begun(const struct op_session *s)
{
    return s->move_to >= 0 && !evtimer_pending(s->move_timer, NULL);
}

/* The candidate to dial for this slot (op_session_pick); ties rotate. */
static int cand_pick(struct slot *sl)
{
    struct op_session *s = sl->s;
    if (move_begun(s) && !is_primary(sl) && !cand_in_use(sl, s->move_to))
        return s->move_to;
    struct op_session_rank rank[OP_SESSION_MAX_CANDIDATES];
    for (size_t i = 0; i < s->n_cands; i++) {
        const struct candidate *c = &s->cands[i];
        rank[i] = (struct op_session_rank){.failures = c->failures,
                                           .attached = c->attached,
                                           .capacity = c->capacity,
                                           .rtt_us = c->rtt_us,
                                           .excluded = cand_in_use(sl, (int)i)};
    }
    int best = op_session_pick(rank, s->n_cands, s->rotate);
    s->rotate++;
    return best;
}

/* Remember the round trip measured on the slot's link for its candidate. */
static void cand_note_rtt(struct slot *sl)
{
    uint32_t rtt = sl->link ? link_rtt_us(sl->link) : 0;
    if (sl->cand >= 0 && rtt != 0)
        sl->s->cands[sl->cand].rtt_us = rtt;
}

static double ms_of_us(uint32_t us)
{
    return us / 1000.0;
}

/* ---- sessions ------------------------------------------------------------------------ */

/* A move given up: stay, and decide again a while later (on_recheck). */
static void move_stay(struct op_session *s)
{
    s->move_to = -1;
    s->rebalance_after_ms = link_now_ms() + OP_SESSION_REBALANCE_STAY_MS;
    set_timer_ms(s->recheck, OP_SESSION_REBALANCE_STAY_MS);
}

/* The target b of a move is no longer under the mean with us. */
static void move_filled(struct op_session *s, const struct slot *b)
{
    const struct candidate *c = &s->cands[b->cand];
    log_info("op", "supernode %s filled up meanwhile (%u of %u peers): staying where we are",
             b->sn_id, c->attached, c->capacity);
    move_stay(s);
}

/* Uniform in [0, 1). Each process its own sequence: random() unseeded
 * drew the same for every peer, so they all moved (and retried) as one. */
static double draw(struct op_session *s)
{
    return (double)(splitmix64_next(&s->rng) >> 11) / 9007199254740992.0;
}

static void slot_retry(struct slot *sl, unsigned min_ms)
{
    struct op_session *s = sl->s;
    if (move_begun(s) && !is_primary(sl) && sl->cand == s->move_to) {
        /* The dial for a move failed, or its session went: stay. */
        log_info("op", "moving to supernode %s: given up, it cannot be reached",
                 s->cands[s->move_to].endpoint);
        move_stay(s);
    }
    if (sl->retry_ms < min_ms)
        sl->retry_ms = min_ms;
    unsigned jitter = (unsigned)(draw(sl->s) * (sl->retry_ms / 4));
    set_timer_ms(sl->retry, sl->retry_ms + jitter);
    sl->retry_ms =
        sl->retry_ms * 2 > OP_SESSION_RETRY_MAX_MS ? OP_SESSION_RETRY_MAX_MS : sl->retry_ms * 2;
}

static void send_register(struct slot *sl)
{
    struct op_session *s = sl->s;
    struct msg m = {.type = MSG_REGISTER};
    m.u.reg.session = is_primary(sl) ? MSG_SESSION_PRIMARY : MSG_SESSION_BACKUP;
    m.u.reg.reachability = s->reachability;
    m.u.reg.addrs = s->addrs;
    m.u.reg.n_addrs = s->n_addrs;
    link_send(sl->link, &m);
}

static void ensure_backup(struct op_session *s)
{
    struct slot *b = &s->slots[!s->primary];
    if (s->cfg.backup && b->state == SLOT_IDLE && !evtimer_pending(b->retry, NULL))
        slot_dial(b);
}

static void on_opened(struct link *l, void *arg)
{
    struct slot *sl = arg;
    struct op_session *s = sl->s;
    const struct tls_peer_info *peer = link_peer(l);
    snprintf(sl->sn_id, sizeof(sl->sn_id), "%s", peer->id_str);
    memcpy(sl->sn_raw, peer->id, WIRE_ID_LEN);
    if (sl->cand >= 0) {
        memcpy(s->cands[sl->cand].id, peer->id, WIRE_ID_LEN);
        s->cands[sl->cand].id_known = true;
    }
    struct slot *o = other(sl);
    if (o->state >= SLOT_OPEN && memcmp(o->sn_raw, sl->sn_raw, WIRE_ID_LEN) == 0) {
        /* Backup and primary must be two supernodes. */
        link_close(l, 0, NULL);
        return;
    }
    bool won = !is_primary(sl) && o->state < SLOT_OPEN;
    if (won) /* no primary session is open: the first to open is the primary */
        s->primary = (int)(sl - s->slots);
    sl->state = SLOT_OPEN;
    log_info("op", "connected to supernode %s in %llu ms (%s%s)", sl->sn_id,
             (unsigned long long)(link_now_ms() - sl->dial_ms),
             is_primary(sl) ? "primary" : "backup", won ? ": opened first" : "");
    /* Timed by the link (link_rtt_us); its PONG comes before REGISTERED. */
    struct msg ping = {.type = MSG_PING};
    ping.u.ping.nonce = ++s->ping_nonce;
    link_send(l, &ping);
    send_register(sl);
}

/* When the keep-alive timer must next run: the first PING due, or a
 * quarter of a timeout (silence is noticed within a quarter of it). */
static unsigned keepalive_next_ms(const struct op_session *s, uint64_t now)
{
    uint64_t next = OP_KEEPALIVE_DEFAULT_S * 1000u;
    for (int i = 0; i < 2; i++) {
        const struct slot *sl = &s->slots[i];
        if (sl->state < SLOT_OPEN)
            continue;
        uint64_t due = sl->pinged_ms + sl->keepalive_ms;
        uint64_t ping_in = due > now ? due - now : 0;
        if (ping_in < next)
            next = ping_in;
        if (sl->timeout_ms / 4 < next)
            next = sl->timeout_ms / 4;
    }
    return next < OP_KEEPALIVE_MIN_TICK_MS ? OP_KEEPALIVE_MIN_TICK_MS : (unsigned)next;
}

static void keepalive_rearm(struct op_session *s)
{
    set_timer_ms(s->keepalive, keepalive_next_ms(s, link_now_ms()));
}

/* The backup session is with the supernode we move to: it becomes the
 * primary (it indexes our files: the attached hook publishes them), the old
 * primary the backup. Both re-register at once, as after a failover. */
static void swap_primary(struct op_session *s)
{
    struct slot *p = &s->slots[s->primary], *b = other(p);
    s->move_to = -1;
    if (s->cfg.hooks.detached)
        s->cfg.hooks.detached(s->cfg.arg);
    log_info("op", "moving to supernode %s as primary (less loaded); %s stays as backup", b->sn_id,
             p->sn_id);
    s->primary = (int)(b - s->slots);
    b->state = SLOT_OPEN;
    send_register(b);
    p->state = SLOT_OPEN;
    send_register(p);
}

static void on_registered(struct slot *sl, const struct msg_registered *r)
{
    struct op_session *s = sl->s;
    sl->keepalive_ms = (r->keepalive_s ? r->keepalive_s : OP_KEEPALIVE_DEFAULT_S) * 1000u;
    sl->timeout_ms = (r->peer_timeout_s ? r->peer_timeout_s : OP_PEER_TIMEOUT_DEFAULT_S) * 1000u;
    if (sl->state == SLOT_REGISTERED) {
        /* An answer to a new claim, or new keep-alive advice: nothing else changes. */
        sl->observed = r->observed;
        keepalive_rearm(s);
        return;
    }
    if (!is_primary(sl) && other(sl)->state < SLOT_OPEN) {
        /* The primary went away while this registered as backup: promote. */
        s->primary = (int)(sl - s->slots);
        log_info("op", "promoting backup supernode %s to primary", sl->sn_id);
        send_register(sl);
        return;
    }
    sl->state = SLOT_REGISTERED;
    cand_note_rtt(sl);
    sl->observed = r->observed;
    sl->retry_ms = OP_SESSION_RETRY_MIN_MS;
    if (sl->cand >= 0)
        s->cands[sl->cand].failures = 0;
    sl->pinged_ms = link_now_ms();
    keepalive_rearm(s);
    uint32_t rtt = link_rtt_us(sl->link);
    if (!is_primary(sl)) {
        log_info("op", "backup session with supernode %s (round trip %.1f ms)", sl->sn_id,
                 ms_of_us(rtt));
        return; /* a move waits for its SN_LIST (move_confirm) */
    }
    char where[64];
    wire_addr_format(&sl->observed, where, sizeof(where));
    s->refusal[0] = '\0';
    log_info("op", "attached to supernode %s, which sees us at %s (round trip %.1f ms)", sl->sn_id,
             where, ms_of_us(rtt));
    if (s->cfg.hooks.attached)
        s->cfg.hooks.attached(s->cfg.arg);
    ensure_backup(s);
}

static void endpoint_of(const struct wire_addr *a, char *buf, size_t cap)
{
    wire_addr_format(a, buf, cap);
}

const struct wire_addr *op_session_usable_addr(const struct wire_addr *addrs, size_t n,
                                               uint8_t family)
{
    for (size_t i = 0; family != 0 && i < n; i++)
        if (addrs[i].family == family)
            return &addrs[i];
    return n > 0 ? &addrs[0] : NULL;
}

/* The address of e worth dialing: one of the family our primary link
 * uses (an IPv6-only host cannot reach an IPv4 one), else its first. */
static const struct wire_addr *usable_addr(struct op_session *s, const struct msg_sn_info *e)
{
    struct wire_addr local = {0};
    const struct slot *p = &s->slots[s->primary];
    if (p->link == NULL || link_local_addr(p->link, &local) != 0)
        local.family = 0;
    return op_session_usable_addr(e->addrs, e->n_addrs, local.family);
}

/* The loads as the lists told them, for op_session_rebalance(): those
 * alive in the primary's last list (up now, whatever our dials said). */
static void load_ranks(const struct op_session *s, struct op_session_rank *rank)
{
    for (size_t i = 0; i < s->n_cands; i++)
        rank[i] = (struct op_session_rank){.attached = s->cands[i].attached,
                                           .capacity = s->cands[i].capacity,
                                           .excluded = !s->cands[i].listed};
}

/* Does the move still make sense, with the target's count fresh from its
 * own list (on_sn_list wrote it) and the mean taken again with it? */
static bool move_still_ok(const struct op_session *s, int t)
{
    struct op_session_rank rank[OP_SESSION_MAX_CANDIDATES];
    load_ranks(s, rank);
    return op_session_move_ok(s->cands[t].attached, s->cands[t].capacity,
                              op_session_mean_load(rank, s->n_cands));
}

/* The move decided by rebalance() begins: the target is dialed as the
 * backup (or already is it); its SN_LIST, with its own load fresh, confirms
 * the move (move_confirm) and the two swap. */
static void on_move_timer(evutil_socket_t fd, short what, void *arg)
{
    struct op_session *s = arg;
    (void)fd;
    (void)what;
    struct slot *p = &s->slots[s->primary], *b = other(p);
    int t = s->move_to;
    if (t < 0 || p->state != SLOT_REGISTERED) {
        s->move_to = -1;
        return;
    }
    if (b->cand == t && b->state == SLOT_REGISTERED) {
        /* Already our backup: its load as of its last SN_LIST is fresh enough. */
        if (move_still_ok(s, t))
            swap_primary(s);
        else
            move_filled(s, b);
    } else if (b->cand == t && b->state >= SLOT_DIALING) {
        /* its REGISTERED and SN_LIST confirm the move (move_confirm) */
    } else if (b->state == SLOT_IDLE) {
        evtimer_del(b->retry);
        slot_dial(b);
    } else if (b->state >= SLOT_OPEN) {
        link_close(b->link, 0, NULL); /* on_closed dials the target as the backup */
    } else {
        s->move_to = -1; /* a backup dial under way: next time */
    }
}

/* After an SN_LIST from the primary (its own load first, fresh): shed our
 * share of its excess (op_session_rebalance), at a random moment of the
 * next OP_SESSION_REBALANCE_SPREAD_MS so that the peers deciding on the
 * same list do not all arrive at once, each confirming against the
 * target's own fresh count (move_confirm). */
static void rebalance(struct op_session *s, uint64_t sig)
{
    struct slot *p = &s->slots[s->primary];
    uint64_t now = link_now_ms();
    if (sig != s->list_sig) /* a supernode came or went: a new situation */
        s->rebalance_after_ms = 0;
    s->list_sig = sig;
    if (s->move_to >= 0 || now < s->rebalance_after_ms || p->cand < 0 || !s->cfg.backup ||
        (s->cfg.hooks.may_move && !s->cfg.hooks.may_move(s->cfg.arg)))
        return;
    struct op_session_rank rank[OP_SESSION_MAX_CANDIDATES];
    load_ranks(s, rank);
    bool imbalanced;
    double mean;
    int t = op_session_rebalance(rank, s->n_cands, (size_t)p->cand, draw(s), draw(s), &imbalanced,
                                 &mean);
    if (!imbalanced)
        return;
    unsigned cool = t < 0 ? OP_SESSION_REBALANCE_STAY_MS : OP_SESSION_REBALANCE_COOLDOWN_MS;
    s->rebalance_after_ms = now + cool + (uint64_t)(draw(s) * cool / 4);
    const struct candidate *pc = &s->cands[p->cand];
    if (t < 0) {
        log_debug("op", "primary supernode %s carries %u of %u peers, over the mean: staying",
                  p->sn_id, pc->attached, pc->capacity);
        set_timer_ms(s->recheck, (unsigned)(s->rebalance_after_ms - now));
        return;
    }
    const struct candidate *tc = &s->cands[t];
    log_info("op",
             "primary supernode %s carries %u of %u peers, over the federation's mean: moving to "
             "%s (%u of %u)",
             p->sn_id, pc->attached, pc->capacity, tc->endpoint, tc->attached, tc->capacity);
    s->move_to = t;
    set_timer_ms(s->move_timer, (unsigned)(draw(s) * OP_SESSION_REBALANCE_SPREAD_MS));
}

/* The stay is over: decide again on the loads we know (the primary's own
 * count is at most a quarter off: it sends a fresh list when it moved more). */
static void on_recheck(evutil_socket_t fd, short what, void *arg)
{
    struct op_session *s = arg;
    (void)fd;
    (void)what;
    if (s->slots[s->primary].state == SLOT_REGISTERED)
        rebalance(s, s->list_sig);
}

/* The backup session with the supernode we are moving to sent its SN_LIST,
 * its own entry first: go on only if it is still under the mean with us. */
static void move_confirm(struct op_session *s, struct slot *b, const struct msg_sn_list *list)
{
    const struct msg_sn_info *self = list->n_entries ? &list->entries[0] : NULL;
    if (self == NULL || memcmp(self->sn_id, b->sn_raw, WIRE_ID_LEN) != 0)
        return; /* not its own entry first: wait for the next */
    if (other(b)->state != SLOT_REGISTERED) {
        s->move_to = -1;
        return;
    }
    if (!move_still_ok(s, s->move_to)) {
        move_filled(s, b);
        return;
    }
    swap_primary(s);
}

static void on_sn_list(struct slot *sl, const struct msg_sn_list *list)
{
    struct op_session *s = sl->s;
    uint64_t sig = list->n_entries;
    if (is_primary(sl))
        for (size_t i = 0; i < s->n_cands; i++)
            s->cands[i].listed = false;
    for (size_t i = 0; i < list->n_entries; i++) {
        const struct msg_sn_info *e = &list->entries[i];
        if (e->state != MSG_SN_ALIVE || e->n_addrs == 0)
            continue;
        uint64_t h;
        memcpy(&h, e->sn_id, sizeof(h));
        sig ^= h;
        char endpoint[OP_SESSION_ENDPOINT_MAX];
        int known = cand_find(s, e->sn_id, NULL);
        if (known >= 0) /* keep the endpoint we reach it at (a bootstrap's IPv6 one) */
            snprintf(endpoint, sizeof(endpoint), "%s", s->cands[known].endpoint);
        else
            endpoint_of(usable_addr(s, e), endpoint, sizeof(endpoint));
        bool fresh = known < 0 || is_primary(sl) || memcmp(e->sn_id, sl->sn_raw, WIRE_ID_LEN) == 0;
        struct candidate *c = cand_add(s, e->sn_id, endpoint);
        if (c != NULL && fresh) {
            /* A backup's word on third parties is gossip, older than the
             * primary's: only its own count, and new supernodes, are taken. */
            c->attached = e->attached_peers;
            c->capacity = e->capacity;
        }
        if (c != NULL)
            c->listed |= is_primary(sl);
        if (s->cfg.hooks.supernode_seen)
            s->cfg.hooks.supernode_seen(e, s->cfg.arg);
    }
    if (is_primary(sl) && sl->state == SLOT_REGISTERED)
        rebalance(s, sig);
    else if (!is_primary(sl) && sl->state == SLOT_REGISTERED && sl->cand == s->move_to &&
             move_begun(s))
        move_confirm(s, sl, list);
    ensure_backup(s);
}

/* What we do about a supernode's refusal, for people. */
static const char *refusal_next(uint16_t code)
{
    switch (code) {
    case MSG_ERR_OVERLOADED:
    case MSG_ERR_REDIRECT:
        return "trying the supernodes it named and the others known";
    case MSG_ERR_VERSION:
        return "it speaks another protocol version: upgrade sova-peer (or the supernode)";
    case MSG_ERR_LIMIT_REACHED:
    case MSG_ERR_RATE_LIMITED:
        return "one of its limits; trying again later, and the other supernodes known";
    case MSG_ERR_SHUTTING_DOWN:
        return "it is going away; trying the other supernodes known";
    default:
        return "trying again, and the other supernodes known (check --bootstrap)";
    }
}

/* A supernode sent ERROR to a session not registered: remember why. */
static void note_refusal(struct slot *sl, const struct msg_error *e)
{
    struct op_session *s = sl->s;
    const char *endpoint = sl->cand >= 0 ? s->cands[sl->cand].endpoint : "?";
    snprintf(s->refusal, sizeof(s->refusal), "supernode %s refused us: %s (%.*s); %s", endpoint,
             msg_error_code_str(e->code), (int)(e->text.len > 200 ? 200 : e->text.len), e->text.ptr,
             refusal_next(e->code));
    for (char *c = s->refusal; *c; c++) /* it came from the network */
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    log_warn("op", "%s", s->refusal);
}

static void on_message(struct link *l, const struct msg *m, void *arg)
{
    struct slot *sl = arg;
    struct op_session *s = sl->s;
    switch (m->type) {
    case MSG_REGISTERED:
        on_registered(sl, &m->u.registered);
        return;
    case MSG_SN_LIST:
        on_sn_list(sl, &m->u.sn_list);
        return;
    case MSG_ERROR:
        if (sl->state != SLOT_REGISTERED)
            note_refusal(sl, &m->u.error);
        if (sl->state != SLOT_REGISTERED &&
            (m->u.error.code == MSG_ERR_OVERLOADED || m->u.error.code == MSG_ERR_REDIRECT)) {
            /* Full: try the others it names, and another one now. */
            for (size_t i = 0; i < m->u.error.n_redirect; i++) {
                char endpoint[OP_SESSION_ENDPOINT_MAX];
                endpoint_of(&m->u.error.redirect[i], endpoint, sizeof(endpoint));
                cand_add(s, NULL, endpoint);
            }
            if (sl->cand >= 0)
                s->cands[sl->cand].failures++;
            link_close(l, 0, NULL);
            return;
        }
        break;
    default:
        break;
    }
    if (is_primary(sl) && s->cfg.hooks.message)
        s->cfg.hooks.message(m, s->cfg.arg);
}

static void on_closed(struct link *l, int why, void *arg)
{
    struct slot *sl = arg;
    struct op_session *s = sl->s;
    (void)l;
    bool was_registered = sl->state == SLOT_REGISTERED;
    bool primary = is_primary(sl);
    cand_note_rtt(sl);
    sl->link = NULL;
    sl->state = SLOT_IDLE;
    if (!was_registered && sl->cand >= 0)
        s->cands[sl->cand].failures++; /* a dead one never stays first */
    log_info("op", "%s supernode link %s closed (%s)", primary ? "primary" : "backup",
             sl->sn_id[0] ? sl->sn_id : "-", why ? sova_err_str(why) : "closed");
    if (!primary) {
        if (s->move_to >= 0 && sl->cand != s->move_to) { /* closed for a move: dial it now */
            slot_dial(sl);
            return;
        }
        slot_retry(sl, OP_BACKUP_RETRY_MS);
        return;
    }
    struct slot *b = other(sl);
    s->move_to = -1;           /* a move in progress: moot */
    s->rebalance_after_ms = 0; /* and a new situation for the next decision */
    if (was_registered && s->cfg.hooks.detached)
        s->cfg.hooks.detached(s->cfg.arg);
    if (b->state == SLOT_REGISTERED) {
        /* Promote the warm backup at once: re-register it as primary. */
        s->primary = (int)(b - s->slots);
        log_info("op", "promoting backup supernode %s to primary", b->sn_id);
        b->state = SLOT_OPEN;
        send_register(b);
        slot_retry(sl, OP_BACKUP_RETRY_MS); /* this slot becomes the new backup */
        return;
    }
    slot_retry(sl, OP_SESSION_RETRY_MIN_MS);
}

static const struct link_hooks session_hooks = {
    .opened = on_opened,
    .message = on_message,
    .closed = on_closed,
};

/* The race to a supernode's addresses is over: TLS on the winner. */
static void on_raced(evutil_socket_t fd, int index, const char *why, void *arg)
{
    struct slot *sl = arg;
    struct op_session *s = sl->s;
    dial_race_free(sl->race);
    sl->race = NULL;
    SSL *ssl = NULL;
    if (fd >= 0 && tls_ctx_client(s->cfg.tls, TLS_EXPECT_SUPERNODE, NULL, &ssl) == 0)
        sl->link = link_connected(evloop_base(s->cfg.loop), fd,
                                  (const struct sockaddr *)&sl->race_addrs[index],
                                  sl->race_lens[index], ssl, &s->params, &session_hooks, sl);
    else if (fd >= 0)
        evutil_closesocket(fd);
    if (sl->link == NULL) {
        log_info("op", "cannot connect to supernode %s: %s", s->cands[sl->cand].endpoint,
                 why ? why : "out of memory");
        s->cands[sl->cand].failures++;
        sl->state = SLOT_IDLE;
        slot_retry(sl, OP_SESSION_RETRY_MIN_MS);
    }
}

static void on_resolved(const struct evutil_addrinfo *ai, const char *err, void *arg)
{
    struct slot *sl = arg;
    struct op_session *s = sl->s;
    if (ai == NULL) {
        log_warn("op", "cannot resolve supernode %s: %s", s->cands[sl->cand].endpoint, err);
        s->cands[sl->cand].failures++;
        sl->state = SLOT_IDLE;
        slot_retry(sl, OP_SESSION_RETRY_MIN_MS);
        return;
    }
    size_t n = 0;
    for (const struct evutil_addrinfo *a = ai; a != NULL && n < DIAL_RACE_MAX; a = a->ai_next) {
        if ((size_t)a->ai_addrlen > sizeof(sl->race_addrs[0]))
            continue;
        memcpy(&sl->race_addrs[n], a->ai_addr, a->ai_addrlen);
        sl->race_lens[n++] = (socklen_t)a->ai_addrlen;
    }
    if (n > 1) { /* IPv6 and IPv4, or several of one: Happy Eyeballs */
        sl->race = dial_race_start(evloop_base(s->cfg.loop), sl->race_addrs, sl->race_lens, n,
                                   s->params.bind_addr, s->params.bind_len,
                                   s->params.handshake_timeout_ms ? s->params.handshake_timeout_ms
                                                                  : OP_SESSION_RACE_MS,
                                   on_raced, sl);
        if (sl->race != NULL)
            return;
    }
    SSL *ssl = NULL;
    if (tls_ctx_client(s->cfg.tls, TLS_EXPECT_SUPERNODE, NULL, &ssl) == 0)
        sl->link = link_connect(evloop_base(s->cfg.loop), ai->ai_addr, (socklen_t)ai->ai_addrlen,
                                ssl, &s->params, &session_hooks, sl);
    if (sl->link == NULL) {
        sl->state = SLOT_IDLE;
        slot_retry(sl, OP_SESSION_RETRY_MIN_MS);
    }
}

static void slot_dial(struct slot *sl)
{
    struct op_session *s = sl->s;
    if (sl->state != SLOT_IDLE)
        return;
    sl->cand = cand_pick(sl);
    if (sl->cand < 0) {
        if (is_primary(sl))
            slot_retry(sl, OP_SESSION_RETRY_MIN_MS);
        return; /* no second supernode known yet: SN_LIST will tell */
    }
    sl->state = SLOT_DIALING;
    sl->sn_id[0] = '\0';
    sl->dial_ms = link_now_ms();
    sl->keepalive_ms = OP_KEEPALIVE_DEFAULT_S * 1000u;
    sl->timeout_ms = OP_PEER_TIMEOUT_DEFAULT_S * 1000u;
    sl->pinged_ms = sl->dial_ms;
    log_debug("op", "dialing supernode %s (%s)", s->cands[sl->cand].endpoint,
              is_primary(sl) ? "primary" : "backup");
    if (evloop_resolve(s->cfg.loop, s->cands[sl->cand].endpoint, on_resolved, sl) != 0) {
        sl->state = SLOT_IDLE;
        slot_retry(sl, OP_SESSION_RETRY_MIN_MS);
        return;
    }
    struct slot *o = other(sl);
    if (is_primary(sl) && s->cfg.backup && o->state == SLOT_IDLE) {
        /* The race: the next best at once; whichever opens first is the
         * primary (on_opened). */
        evtimer_del(o->retry);
        slot_dial(o);
    }
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    slot_dial(arg);
}

/* Keep both sessions alive, each PINGing its supernode once per the
 * interval that supernode asks for; a supernode silent past its own
 * timeout is treated as gone (the link is closed, which promotes the
 * backup). */
static void on_keepalive(evutil_socket_t fd, short what, void *arg)
{
    struct op_session *s = arg;
    (void)fd;
    (void)what;
    uint64_t now = link_now_ms();
    for (int i = 0; i < 2; i++) {
        struct slot *sl = &s->slots[i];
        if (sl->state < SLOT_OPEN)
            continue;
        cand_note_rtt(sl);
        if (now - link_last_heard_ms(sl->link) > sl->timeout_ms) {
            log_warn("op", "supernode %s silent for %llu s: giving up on it", sl->sn_id,
                     (unsigned long long)((now - link_last_heard_ms(sl->link)) / 1000));
            link_close(sl->link, MSG_ERR_TIMEOUT, "keep-alive timeout");
            continue;
        }
        if (now - sl->pinged_ms < sl->keepalive_ms)
            continue;
        struct msg ping = {.type = MSG_PING};
        ping.u.ping.nonce = ++s->ping_nonce;
        link_send(sl->link, &ping);
        sl->pinged_ms = now;
    }
    set_timer_ms(s->keepalive, keepalive_next_ms(s, now));
}

/* ---- API ------------------------------------------------------------------------------ */

int op_session_new(const struct op_session_config *cfg, struct op_session **out)
{
    struct op_session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return SOVA_ERR_NOMEM;
    s->cfg = *cfg;
    s->params = *cfg->params;
    s->params.dead_path_ms = OP_SESSION_DEAD_PATH_MS;
    s->n_addrs = cfg->n_addrs < WIRE_MAX_ADDRS ? cfg->n_addrs : WIRE_MAX_ADDRS;
    memcpy(s->addrs, cfg->addrs, s->n_addrs * sizeof(s->addrs[0]));
    s->reachability = cfg->reachability;
    s->move_to = -1;
    if (RAND_bytes((unsigned char *)&s->rng, sizeof(s->rng)) != 1)
        s->rng = (uint64_t)link_now_ms() ^ (uint64_t)(uintptr_t)s; /* still differs per process */
    const char *p = cfg->bootstrap;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char endpoint[OP_SESSION_ENDPOINT_MAX];
        snprintf(endpoint, sizeof(endpoint), "%.*s", (int)n, p);
        cand_add(s, NULL, endpoint);
        p = comma ? comma + 1 : NULL;
    }
    struct event_base *base = evloop_base(cfg->loop);
    s->keepalive = evtimer_new(base, on_keepalive, s);
    s->move_timer = evtimer_new(base, on_move_timer, s);
    s->recheck = evtimer_new(base, on_recheck, s);
    for (int i = 0; i < 2; i++) {
        s->slots[i].s = s;
        s->slots[i].cand = -1;
        s->slots[i].retry_ms = OP_SESSION_RETRY_MIN_MS;
        s->slots[i].retry = evtimer_new(base, on_retry, &s->slots[i]);
    }
    if (s->n_cands == 0 || !s->keepalive || !s->move_timer || !s->recheck || !s->slots[0].retry ||
        !s->slots[1].retry) {
        int rc = s->n_cands == 0 ? SOVA_ERR_CONFIG : SOVA_ERR_NOMEM;
        op_session_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void op_session_add_candidate(struct op_session *s, const uint8_t sn_id[WIRE_ID_LEN],
                              const char *endpoint, uint32_t failures)
{
    struct candidate *c = cand_add(s, sn_id, endpoint);
    if (c != NULL && c->failures < failures)
        c->failures = failures;
}

void op_session_start(struct op_session *s)
{
    slot_dial(&s->slots[s->primary]);
}

void op_session_free(struct op_session *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < 2; i++) {
        dial_race_free(s->slots[i].race);
        link_free_now(s->slots[i].link);
        if (s->slots[i].retry)
            event_free(s->slots[i].retry);
    }
    if (s->keepalive)
        event_free(s->keepalive);
    if (s->move_timer)
        event_free(s->move_timer);
    if (s->recheck)
        event_free(s->recheck);
    free(s);
}

static const struct slot *primary_slot(const struct op_session *s)
{
    return &s->slots[s->primary];
}

bool op_session_attached(const struct op_session *s)
{
    return primary_slot(s)->state == SLOT_REGISTERED;
}

int op_session_send(struct op_session *s, const struct msg *m)
{
    if (!op_session_attached(s))
        return SOVA_ERR_NOT_FOUND;
    return link_send(primary_slot(s)->link, m);
}

const char *op_session_sn_id(const struct op_session *s)
{
    return op_session_attached(s) ? primary_slot(s)->sn_id : NULL;
}

const struct wire_addr *op_session_observed(const struct op_session *s)
{
    return op_session_attached(s) ? &primary_slot(s)->observed : NULL;
}

const char *op_session_backup_id(const struct op_session *s)
{
    const struct slot *b = &s->slots[!s->primary];
    return b->state == SLOT_REGISTERED ? b->sn_id : NULL;
}

const char *op_session_refusal(const struct op_session *s)
{
    return s->refusal[0] && !op_session_attached(s) ? s->refusal : NULL;
}

const char *op_session_endpoint(const struct op_session *s)
{
    int c = primary_slot(s)->cand;
    return c >= 0 ? s->cands[c].endpoint : s->cands[0].endpoint;
}

uint32_t op_session_rtt_us(const struct op_session *s, bool backup)
{
    const struct slot *sl = &s->slots[backup ? !s->primary : s->primary];
    return sl->state >= SLOT_OPEN ? link_rtt_us(sl->link) : 0;
}

unsigned op_session_keepalive_s(const struct op_session *s)
{
    const struct slot *sl = &s->slots[s->primary];
    return sl->state == SLOT_REGISTERED ? sl->keepalive_ms / 1000 : 0;
}

void op_session_set_claim(struct op_session *s, uint8_t reachability, const struct wire_addr *addrs,
                          size_t n, bool tell_primary)
{
    n = n < WIRE_MAX_ADDRS ? n : WIRE_MAX_ADDRS;
    bool same = reachability == s->reachability && n == s->n_addrs;
    /* cppcheck-suppress knownConditionTrueFalse ; cppcheck 2.10 is wrong: n may be 1..MAX */
    for (size_t i = 0; same && i < n; i++)
        same = wire_addr_equal(&addrs[i], &s->addrs[i]);
    if (same) {
        struct slot *p = &s->slots[s->primary];
        if (tell_primary && p->state == SLOT_REGISTERED)
            send_register(p);
        return;
    }
    memmove(s->addrs, addrs, n * sizeof(addrs[0]));
    s->n_addrs = n;
    s->reachability = reachability;
    for (int i = 0; i < 2; i++)
        if (s->slots[i].state == SLOT_REGISTERED)
            send_register(&s->slots[i]);
}

void op_session_addresses_changed(struct op_session *s, const struct wire_addr *addrs, size_t n)
{
    for (int i = 0; i < 2; i++) {
        struct slot *sl = &s->slots[i];
        struct wire_addr local;
        if (sl->link == NULL) {
            /* Waiting to dial again (maybe 30 s away after failures on the
             * old network): the new one may work at once. */
            if (evtimer_pending(sl->retry, NULL)) {
                sl->retry_ms = OP_SESSION_RETRY_MIN_MS;
                set_timer_ms(sl->retry, is_primary(sl) ? 0 : OP_BACKUP_RETRY_MS);
            }
            continue;
        }
        if (sl->state < SLOT_OPEN || link_local_addr(sl->link, &local) != 0)
            continue;
        bool kept = false;
        for (size_t j = 0; j < n && !kept; j++)
            kept = wire_addr_same_ip(&addrs[j], &local);
        if (kept)
            continue;
        char where[64];
        wire_addr_format(&local, where, sizeof(where));
        log_info("op", "%s supernode link %s: our address %s went away: closing it",
                 is_primary(sl) ? "primary" : "backup", sl->sn_id, where);
        link_close(sl->link, 0, NULL); /* closed() fails over or dials again */
    }
}

bool op_session_sn_offers(const struct op_session *s, uint32_t cap)
{
    return op_session_attached(s) && (link_remote_caps(primary_slot(s)->link) & cap);
}

bool op_session_relay_offered(const struct op_session *s)
{
    return op_session_sn_offers(s, MSG_CAP_RELAY);
}

size_t op_session_nat_sample(const struct op_session *s, struct wire_addr observed[2],
                             struct wire_addr local[2])
{
    size_t n = 0;
    for (int i = 0; i < 2; i++) {
        const struct slot *sl = &s->slots[i];
        if (sl->state == SLOT_REGISTERED && link_local_addr(sl->link, &local[n]) == 0)
            observed[n++] = sl->observed;
    }
    return n;
}

size_t op_session_candidates(const struct op_session *s)
{
    return s->n_cands;
}
