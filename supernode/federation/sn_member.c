/* sn_member.c - the member table of SWIM membership: lifetime, the
 * precedence rules that decide which update about a member wins, the
 * piggy-back queue, outputs and queries. The protocol that drives them
 * (probes, timers, link events, receiving) is in sn_member_probe.c. */
#define SN_MEMBER_INTERNAL
#include "sn_member_impl.h"
#include "splitmix.h"

#include <stdlib.h>
#include <string.h>

/* ---- config and lifetime ------------------------------------------------------ */
struct sn_member_config sn_member_config_default(void)
{
    struct sn_member_config c;
    memset(&c, 0, sizeof(c));
    c.period_ms = SN_MEMBER_PERIOD_MS_DEFAULT;
    c.ack_timeout_ms = SN_MEMBER_ACK_TIMEOUT_MS_DEFAULT;
    c.indirect_k = SN_MEMBER_INDIRECT_K_DEFAULT;
    c.suspect_mult = SN_MEMBER_SUSPECT_MULT_DEFAULT;
    c.suspect_min_ms = SN_MEMBER_SUSPECT_MIN_MS_DEFAULT;
    c.retransmit_mult = SN_MEMBER_RETRANSMIT_MULT_DEFAULT;
    c.refresh_mult = SN_MEMBER_REFRESH_MULT_DEFAULT;
    c.max_updates = SN_MEMBER_MAX_UPDATES_DEFAULT;
    c.dead_keep_ms = SN_MEMBER_DEAD_KEEP_MS_DEFAULT;
    c.dead_reprobe_ms = SN_MEMBER_DEAD_REPROBE_MS_DEFAULT;
    c.connect_retry_ms = SN_MEMBER_CONNECT_RETRY_MS_DEFAULT;
    c.join_grace_ms = SN_MEMBER_JOIN_GRACE_MS_DEFAULT;
    c.load_period_ms = SN_MEMBER_LOAD_PERIOD_MS_DEFAULT;
    return c;
}

static void default_if_zero(unsigned *v, unsigned def)
{
    if (*v == 0)
        *v = def;
}

static void config_normalize(struct sn_member_config *c)
{
    const struct sn_member_config d = sn_member_config_default();
    default_if_zero(&c->period_ms, d.period_ms);
    default_if_zero(&c->ack_timeout_ms, d.ack_timeout_ms);
    default_if_zero(&c->indirect_k, d.indirect_k);
    default_if_zero(&c->suspect_mult, d.suspect_mult);
    default_if_zero(&c->suspect_min_ms, d.suspect_min_ms);
    default_if_zero(&c->retransmit_mult, d.retransmit_mult);
    default_if_zero(&c->refresh_mult, d.refresh_mult);
    default_if_zero(&c->max_updates, d.max_updates);
    default_if_zero(&c->dead_keep_ms, d.dead_keep_ms);
    default_if_zero(&c->dead_reprobe_ms, d.dead_reprobe_ms);
    default_if_zero(&c->connect_retry_ms, d.connect_retry_ms);
    default_if_zero(&c->join_grace_ms, d.join_grace_ms);
    default_if_zero(&c->load_period_ms, d.load_period_ms);
    if (c->ack_timeout_ms >= c->period_ms) /* leave time for the indirect round */
        c->ack_timeout_ms = c->period_ms / 2 ? c->period_ms / 2 : 1;
    if (c->max_updates > WIRE_MAX_GOSSIP_UPDATES_DEFAULT)
        c->max_updates = WIRE_MAX_GOSSIP_UPDATES_DEFAULT;
    if (c->n_self_addrs > WIRE_MAX_ADDRS)
        c->n_self_addrs = WIRE_MAX_ADDRS;
}

struct sn_member *sn_member_new(const struct sn_member_config *cfg)
{
    struct sn_member *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->cfg = *cfg;
    config_normalize(&m->cfg);
    /* Mix the ID into the seed so nodes given the same seed still differ. */
    m->rng = m->cfg.seed;
    for (size_t i = 0; i < 8; i++)
        m->rng ^= (uint64_t)m->cfg.self_id[i] << (8 * i);
    m->next_seq = (uint32_t)member_rand(m);

    struct member *s = &m->self;
    memcpy(s->id, m->cfg.self_id, WIRE_ID_LEN);
    memcpy(s->addrs, m->cfg.self_addrs, m->cfg.n_self_addrs * sizeof(s->addrs[0]));
    s->n_addrs = m->cfg.n_self_addrs;
    s->state = MSG_SN_ALIVE;
    s->incarnation = m->cfg.incarnation;
    s->inc_known = true;
    s->linked = true;
    member_queue(m, s, false);
    return m;
}

void sn_member_free(struct sn_member *m)
{
    if (m == NULL)
        return;
    member_outputs_reset(m);
    free(m->outs);
    free(m->members);
    free(m->order);
    free(m);
}

/* ---- PRNG: splitmix64, seeded from the config ------------------------------------ */
uint64_t member_rand(struct sn_member *m)
{
    return splitmix64_next(&m->rng);
}

size_t member_rand_below(struct sn_member *m, size_t n)
{
    return (size_t)(member_rand(m) % n);
}

/* ---- the table ------------------------------------------------------------------- */
struct member *member_find(struct sn_member *m, const uint8_t id[WIRE_ID_LEN])
{
    for (size_t i = 0; i < m->n_members; i++)
        if (memcmp(m->members[i].id, id, WIRE_ID_LEN) == 0)
            return &m->members[i];
    return NULL;
}

static const struct member *member_find_const(const struct sn_member *m,
                                              const uint8_t id[WIRE_ID_LEN])
{
    if (memcmp(m->self.id, id, WIRE_ID_LEN) == 0)
        return &m->self;
    for (size_t i = 0; i < m->n_members; i++)
        if (memcmp(m->members[i].id, id, WIRE_ID_LEN) == 0)
            return &m->members[i];
    return NULL;
}

struct member *member_add(struct sn_member *m, uint64_t now, const uint8_t id[WIRE_ID_LEN])
{
    if (m->n_members >= SN_MEMBER_MAX_MEMBERS)
        return NULL;
    if (m->n_members == m->cap_members) {
        size_t cap = m->cap_members ? m->cap_members * 2 : 16;
        struct member *p = realloc(m->members, cap * sizeof(*p));
        if (p == NULL)
            return NULL;
        m->members = p;
        m->cap_members = cap;
    }
    struct member *e = &m->members[m->n_members++];
    memset(e, 0, sizeof(*e));
    memcpy(e->id, id, WIRE_ID_LEN);
    e->state = MSG_SN_ALIVE;
    e->first_seen = now;
    e->state_since = now;
    member_order_insert(m, id, false);
    return e;
}

size_t member_live_count(const struct sn_member *m)
{
    size_t n = m->self.state == MSG_SN_ALIVE;
    for (size_t i = 0; i < m->n_members; i++)
        n += m->members[i].state == MSG_SN_ALIVE || m->members[i].state == MSG_SN_SUSPECT;
    return n;
}

/* Smallest k with 2^k >= x. */
static unsigned ceil_log2(size_t x)
{
    unsigned k = 0;
    while (k < 63 && ((size_t)1 << k) < x)
        k++;
    return k;
}

/* Smallest k >= 1 with 10^k >= x. */
static unsigned ceil_log10(size_t x)
{
    unsigned k = 1;
    for (size_t p = 10; p < x && k < 19; p *= 10)
        k++;
    return k;
}

uint64_t sn_member_suspect_timeout_ms(const struct sn_member *m)
{
    uint64_t t =
        (uint64_t)m->cfg.suspect_mult * ceil_log10(member_live_count(m) + 1) * m->cfg.period_ms;
    return t > m->cfg.suspect_min_ms ? t : m->cfg.suspect_min_ms;
}

void member_queue(struct sn_member *m, struct member *e, bool refresh)
{
    if (!e->inc_known)
        return; /* nothing of its own to tell yet */
    e->tx_left = (refresh ? m->cfg.refresh_mult : m->cfg.retransmit_mult) *
                 ceil_log2(member_live_count(m) + 1);
    if (e->tx_left == 0)
        e->tx_left = 1;
    e->tx_sent = 0;
    e->tx_order = ++m->tx_counter;
}

/* ---- outputs ----------------------------------------------------------------------- */
void member_outputs_reset(struct sn_member *m)
{
    for (size_t i = 0; i < m->n_outs; i++) {
        free(m->outs[i].infos);
        free(m->outs[i].addrs);
    }
    m->n_outs = 0;
    m->out_pos = 0;
}

/* A zeroed output at the end of the queue (a SEND's updates are added by
 * item_add()); NULL when memory is short (the output is then lost, as a
 * dropped message would be). */
static struct out_item *out_push(struct sn_member *m, enum sn_member_out_kind kind,
                                 const uint8_t id[WIRE_ID_LEN])
{
    if (m->n_outs == m->cap_outs) {
        size_t cap = m->cap_outs ? m->cap_outs * 2 : 16;
        struct out_item *p = realloc(m->outs, cap * sizeof(*p));
        if (p == NULL)
            return NULL;
        m->outs = p;
        m->cap_outs = cap;
    }
    struct out_item *it = &m->outs[m->n_outs];
    memset(it, 0, sizeof(*it));
    m->n_outs++;
    it->out.kind = kind;
    memcpy(it->out.id, id, WIRE_ID_LEN);
    return it;
}

void member_out_connect(struct sn_member *m, const struct member *e)
{
    if (e->n_addrs == 0)
        return; /* nowhere to dial; its gossip will say */
    struct out_item *it = out_push(m, SN_MEMBER_CONNECT, e->id);
    if (it == NULL)
        return;
    memcpy(it->out.addrs, e->addrs, e->n_addrs * sizeof(e->addrs[0]));
    it->out.n_addrs = e->n_addrs;
}

void member_set_state(struct sn_member *m, uint64_t now, struct member *e, uint8_t state)
{
    uint8_t prev = e->state;
    e->state = state;
    e->state_since = now;
    struct out_item *it = out_push(m, SN_MEMBER_STATE, e->id);
    if (it == NULL)
        return;
    memcpy(it->out.addrs, e->addrs, e->n_addrs * sizeof(e->addrs[0]));
    it->out.n_addrs = e->n_addrs;
    it->out.prev_state = prev;
    it->out.state = state;
    it->out.incarnation = e->incarnation;
}

void member_out_new(struct sn_member *m, const struct member *e)
{
    struct out_item *it = out_push(m, SN_MEMBER_STATE, e->id);
    if (it == NULL)
        return;
    memcpy(it->out.addrs, e->addrs, e->n_addrs * sizeof(e->addrs[0]));
    it->out.n_addrs = e->n_addrs;
    it->out.prev_state = SN_MEMBER_GONE;
    it->out.state = e->state;
    it->out.incarnation = e->incarnation;
}

bool sn_member_next_output(struct sn_member *m, struct sn_member_out *out)
{
    if (m->out_pos >= m->n_outs)
        return false;
    *out = m->outs[m->out_pos++].out;
    return true;
}

/* ---- precedence rules ------------------------------------------------------------ */
static void copy_addrs(struct member *e, const struct wire_addr *addrs, size_t n)
{
    if (n > WIRE_MAX_ADDRS)
        n = WIRE_MAX_ADDRS;
    if (n > 0) /* a decoded empty list may be NULL */
        memcpy(e->addrs, addrs, n * sizeof(addrs[0]));
    e->n_addrs = n;
}

/* An update about this node: anything but ALIVE at our incarnation or above
 * is refuted by raising the incarnation past it and spreading ALIVE. A
 * suspect/dead/left entry at an older incarnation means the sender missed
 * our last refutation (its copies may all have been lost): spread it again,
 * so the reply to that very message carries it. */
static void apply_self(struct sn_member *m, const struct msg_sn_info *u)
{
    struct member *s = &m->self;
    if (m->left || u->incarnation == UINT64_MAX) /* cannot be outbid: ignore */
        return;
    if (u->state == MSG_SN_ALIVE ? u->incarnation > s->incarnation
                                 : u->incarnation >= s->incarnation) {
        s->incarnation = u->incarnation + 1;
        member_queue(m, s, false);
    } else if (u->state != MSG_SN_ALIVE && s->tx_sent > 0) {
        member_queue(m, s, false);
    }
}

/* Does update u win over what we hold of e? SWIM's rules, strict about
 * incarnations so a stale message never undoes a newer one:
 *   ALIVE(i)   wins over any state at j < i;
 *   SUSPECT(i) wins over ALIVE(j <= i), over SUSPECT/DEAD/LEFT(j < i);
 *   DEAD(i)    wins over ALIVE/SUSPECT(j <= i), over DEAD/LEFT(j < i);
 *   LEFT(i)    wins over ALIVE/SUSPECT/DEAD(j <= i), over LEFT(j < i).
 * A member only a link told us of (inc_known false) is alive for sure: it
 * takes its first ALIVE entry, and no stale news of its death. */
static bool update_wins(const struct member *e, const struct msg_sn_info *u)
{
    if (!e->inc_known)
        return u->state == MSG_SN_ALIVE;
    uint64_t i = u->incarnation, j = e->incarnation;
    switch (u->state) {
    case MSG_SN_ALIVE:
        return i > j;
    case MSG_SN_SUSPECT:
        return e->state == MSG_SN_ALIVE ? i >= j : i > j;
    case MSG_SN_DEAD:
        return e->state == MSG_SN_ALIVE || e->state == MSG_SN_SUSPECT ? i >= j : i > j;
    case MSG_SN_LEFT:
        return e->state != MSG_SN_LEFT ? i >= j : i > j;
    default:
        return false;
    }
}

void member_apply(struct sn_member *m, uint64_t now, const struct msg_sn_info *u)
{
    if (u->state < MSG_SN_ALIVE || u->state > MSG_SN_LEFT)
        return;
    if (memcmp(u->sn_id, m->self.id, WIRE_ID_LEN) == 0) {
        apply_self(m, u);
        return;
    }
    struct member *e = member_find(m, u->sn_id);
    if (e == NULL) {
        /* Only ALIVE introduces a member: news of the death of a node we
         * never knew (or already forgot) must not bring it back. */
        if (u->state != MSG_SN_ALIVE || (e = member_add(m, now, u->sn_id)) == NULL)
            return;
        e->incarnation = u->incarnation;
        e->inc_known = true;
        e->peers = u->attached_peers;
        e->capacity = u->capacity;
        e->relay_kbps = u->relay_kbps;
        copy_addrs(e, u->addrs, u->n_addrs);
        member_out_new(m, e);
        member_queue(m, e, false);
        member_out_connect(m, e);
        e->next_connect = now + m->cfg.connect_retry_ms;
        return;
    }
    if (!update_wins(e, u))
        return;
    bool newer = !e->inc_known || u->incarnation > e->incarnation;
    uint8_t prev = e->state;
    e->incarnation = u->incarnation;
    e->inc_known = true;
    if (newer) { /* the load and addresses of a newer incarnation are the node's own */
        e->peers = u->attached_peers;
        e->capacity = u->capacity;
        e->relay_kbps = u->relay_kbps;
        if (u->n_addrs)
            copy_addrs(e, u->addrs, u->n_addrs);
    }
    if (u->state == MSG_SN_SUSPECT)
        e->suspect_deadline = now + sn_member_suspect_timeout_ms(m);
    e->our_suspicion = false;
    if (u->state != prev)
        member_set_state(m, now, e, u->state);
    bool was_gone = prev == MSG_SN_DEAD || prev == MSG_SN_LEFT;
    if (was_gone && (u->state == MSG_SN_ALIVE || u->state == MSG_SN_SUSPECT)) {
        /* Back from the dead with a new incarnation: a member again. */
        e->first_seen = now;
        member_order_insert(m, e->id, false);
        if (!e->linked) {
            member_out_connect(m, e);
            e->next_connect = now + m->cfg.connect_retry_ms;
        }
    }
    /* Alive at a newer incarnation and alive before: a load or address
     * refresh (or a refutation of a suspicion we never heard of), news to
     * nobody's membership: passed on with the smaller refresh budget. */
    member_queue(m, e, prev == MSG_SN_ALIVE && u->state == MSG_SN_ALIVE);
}

/* ---- building GOSSIP messages ------------------------------------------------------ */
static void fill_info(struct msg_sn_info *info, struct wire_addr *addr_store,
                      const struct member *e)
{
    memset(info, 0, sizeof(*info));
    memcpy(info->sn_id, e->id, WIRE_ID_LEN);
    if (e->n_addrs > 0) {
        memcpy(addr_store, e->addrs, e->n_addrs * sizeof(e->addrs[0]));
        info->addrs = addr_store;
    }
    info->n_addrs = e->n_addrs;
    info->incarnation = e->incarnation;
    info->state = e->state;
    info->attached_peers = e->peers;
    info->capacity = e->capacity;
    info->relay_kbps = e->relay_kbps;
}

/* Append e's entry to a SEND. Its arrays grow with what is added (most
 * messages carry one or two updates of one address each: room for
 * max_updates x WIRE_MAX_ADDRS, 10 KB, made a death broadcast to 1,000
 * members cost 13 MB). False when memory is short (the entry is left out). */
static bool item_add(struct out_item *it, const struct member *e)
{
    size_t k = it->out.msg.n_updates;
    if (k == it->cap_infos) {
        size_t cap = k ? 2 * k : 4;
        struct msg_sn_info *p = realloc(it->infos, cap * sizeof(*p));
        if (p == NULL)
            return false;
        it->infos = p;
        it->cap_infos = cap;
        it->out.msg.updates = p;
    }
    if (it->n_addrs + e->n_addrs > it->cap_addrs) {
        size_t cap = it->cap_addrs ? 2 * it->cap_addrs : 4;
        while (cap < it->n_addrs + e->n_addrs)
            cap *= 2;
        struct wire_addr *p = realloc(it->addrs, cap * sizeof(*p));
        if (p == NULL)
            return false;
        it->addrs = p;
        it->cap_addrs = cap;
        /* The entries before point into the old block: theirs lie in order. */
        size_t at = 0;
        for (size_t j = 0; j < k; j++) {
            if (it->infos[j].n_addrs > 0)
                it->infos[j].addrs = p + at;
            at += it->infos[j].n_addrs;
        }
    }
    fill_info(&it->infos[k], e->n_addrs ? &it->addrs[it->n_addrs] : NULL, e);
    it->n_addrs += e->n_addrs;
    it->out.msg.n_updates = k + 1;
    return true;
}

/* Fewest sends first, then the most recently queued. */
static int tx_cmp(const void *a, const void *b)
{
    const struct member *x = *(const struct member *const *)a;
    const struct member *y = *(const struct member *const *)b;
    if (x->tx_sent != y->tx_sent)
        return x->tx_sent < y->tx_sent ? -1 : 1;
    if (x->tx_order != y->tx_order)
        return x->tx_order > y->tx_order ? -1 : 1;
    return 0;
}

/* Fill the rest of it with the queued updates that have been sent least. */
static void piggyback(struct sn_member *m, struct out_item *it, const struct member *skip_a,
                      const struct member *skip_b)
{
    size_t room = m->cfg.max_updates - it->out.msg.n_updates;
    if (room == 0)
        return;
    struct member **cand = malloc((m->n_members + 1) * sizeof(*cand));
    if (cand == NULL)
        return;
    size_t n = 0;
    for (size_t i = 0; i <= m->n_members; i++) {
        struct member *e = i < m->n_members ? &m->members[i] : &m->self;
        if (e->tx_left && e != skip_a && e != skip_b)
            cand[n++] = e;
    }
    qsort(cand, n, sizeof(*cand), tx_cmp);
    for (size_t i = 0; i < n && i < room; i++) {
        if (!item_add(it, cand[i]))
            break;
        cand[i]->tx_left--;
        cand[i]->tx_sent++;
    }
    free(cand);
}

static struct out_item *send_begin(struct sn_member *m, const uint8_t to[WIRE_ID_LEN], uint8_t kind,
                                   uint32_t seq, const uint8_t *target)
{
    struct out_item *it = out_push(m, SN_MEMBER_SEND, to);
    if (it == NULL)
        return NULL;
    it->out.msg.kind = kind;
    it->out.msg.seq = seq;
    if (target)
        memcpy(it->out.msg.target_id, target, WIRE_ID_LEN);
    return it;
}

void member_send_lead(struct sn_member *m, const uint8_t to[WIRE_ID_LEN], uint8_t kind,
                      uint32_t seq, const uint8_t *target, const struct member *lead)
{
    struct out_item *it = send_begin(m, to, kind, seq, target);
    if (it == NULL)
        return;
    if (m->left) { /* say we left, whatever else is queued */
        lead = &m->self;
    } else if (lead == NULL) {
        /* Tell a member we do not hold alive what we hold, so it can refute
         * at once (Lifeguard's "buddy system"). */
        const struct member *e = member_find(m, to);
        if (e && e->inc_known && e->state != MSG_SN_ALIVE)
            lead = e;
    }
    if (lead)
        item_add(it, lead);
    /* A direct ACK always carries our own entry: every prober reaches every
     * member once per round, so each learns each member's current
     * incarnation and load at least once per round, whatever gossip lost. */
    struct member *self = NULL;
    if (!m->left && kind == MSG_GOSSIP_ACK && target == NULL && lead != &m->self &&
        it->out.msg.n_updates < m->cfg.max_updates) {
        self = &m->self;
        if (item_add(it, self) && self->tx_left) {
            self->tx_left--;
            self->tx_sent++;
        }
    }
    piggyback(m, it, lead, self);
}

void member_send(struct sn_member *m, const uint8_t to[WIRE_ID_LEN], uint8_t kind, uint32_t seq,
                 const uint8_t *target)
{
    member_send_lead(m, to, kind, seq, target, NULL);
}

void member_send_table(struct sn_member *m, const uint8_t to[WIRE_ID_LEN])
{
    const struct member *peer = member_find(m, to);
    size_t total = 1 + m->n_members;
    struct out_item *it = NULL;
    /* Its own entry first (a restarted node whose clock went back learns the
     * incarnation to outbid; a dead one learns it must refute), then ours, then
     * every other member alive or left. Not our suspicions and deaths of
     * third parties: each side finds those out by its own probes, and a
     * node back from a partition would otherwise tell everyone that
     * everyone is dead (they would refute, but all would flap). */
    for (size_t k = 0; k < total + 1; k++) {
        const struct member *e;
        if (k == 0)
            e = peer;
        else if (k == 1)
            e = &m->self;
        else
            e = &m->members[k - 2];
        if (e == NULL || !e->inc_known ||
            (k >= 2 && (e == peer || e->state == MSG_SN_SUSPECT || e->state == MSG_SN_DEAD)))
            continue;
        if (it == NULL || it->out.msg.n_updates == m->cfg.max_updates) {
            it = send_begin(m, to, MSG_GOSSIP_PING, m->next_seq++, NULL);
            if (it == NULL)
                return;
        }
        item_add(it, e);
    }
}

/* ---- queries ------------------------------------------------------------------------ */
static void view_fill(struct sn_member_view *v, const struct member *e, bool is_self)
{
    memset(v, 0, sizeof(*v));
    memcpy(v->info.sn_id, e->id, WIRE_ID_LEN);
    v->info.addrs = (struct wire_addr *)e->addrs;
    v->info.n_addrs = e->n_addrs;
    v->info.incarnation = e->incarnation;
    v->info.state = e->state;
    v->info.attached_peers = e->peers;
    v->info.capacity = e->capacity;
    v->info.relay_kbps = e->relay_kbps;
    v->last_heard_ms = e->last_heard;
    v->linked = e->linked;
    v->is_self = is_self;
}

void sn_member_self(const struct sn_member *m, struct sn_member_view *out)
{
    view_fill(out, &m->self, true);
}

size_t sn_member_count(const struct sn_member *m)
{
    return m->n_members;
}

bool sn_member_get(const struct sn_member *m, size_t i, struct sn_member_view *out)
{
    if (i >= m->n_members)
        return false;
    view_fill(out, &m->members[i], false);
    return true;
}

bool sn_member_lookup(const struct sn_member *m, const uint8_t id[WIRE_ID_LEN],
                      struct sn_member_view *out)
{
    const struct member *e = member_find_const(m, id);
    if (e == NULL)
        return false;
    view_fill(out, e, e == &m->self);
    return true;
}

size_t sn_member_count_state(const struct sn_member *m, uint8_t state)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_members; i++)
        n += m->members[i].state == state;
    return n;
}

const char *sn_member_state_name(uint8_t state)
{
    switch (state) {
    case MSG_SN_ALIVE:
        return "alive";
    case MSG_SN_SUSPECT:
        return "suspect";
    case MSG_SN_DEAD:
        return "dead";
    case MSG_SN_LEFT:
        return "left";
    case SN_MEMBER_GONE:
        return "gone";
    default:
        return "?";
    }
}
