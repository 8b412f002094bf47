/* sn_member_probe.c - the SWIM protocol around the member table: one probe
 * per period (direct PING, then PING_REQ through k others), suspicion and
 * its timeout, serving other nodes' PING_REQs, the table exchange when a
 * link opens, re-contacting dead members, forgetting them, and leaving.
 * The rules for which update wins are in sn_member.c. */
#define SN_MEMBER_INTERNAL
#include "sn_member_impl.h"

#include <stdlib.h>
#include <string.h>

static bool is_live(const struct member *e)
{
    return e->state == MSG_SN_ALIVE || e->state == MSG_SN_SUSPECT;
}

/* ---- the probe round ---------------------------------------------------------------
 * SWIM's round-robin: every live member once per round, in an order shuffled
 * per round; a member that joins mid-round goes to a random place of the
 * rest of it. A member is probed at most one round (N periods) after the
 * last time, which bounds detection time. */
void member_order_insert(struct sn_member *m, const uint8_t id[WIRE_ID_LEN], bool next)
{
    if (m->n_order == m->cap_order) {
        size_t cap = m->cap_order ? m->cap_order * 2 : 16;
        uint8_t(*p)[WIRE_ID_LEN] = realloc(m->order, cap * sizeof(*p));
        if (p == NULL)
            return; /* it gets its turn next round */
        m->order = p;
        m->cap_order = cap;
    }
    size_t rest = m->n_order - m->order_pos;
    size_t at = m->order_pos + (next ? 0 : member_rand_below(m, rest + 1));
    memmove(&m->order[at + 1], &m->order[at], (m->n_order - at) * sizeof(m->order[0]));
    memcpy(m->order[at], id, WIRE_ID_LEN);
    m->n_order++;
}

static void order_rebuild(struct sn_member *m)
{
    m->n_order = 0;
    m->order_pos = 0;
    if (m->cap_order < m->n_members) {
        uint8_t(*p)[WIRE_ID_LEN] = realloc(m->order, m->n_members * sizeof(*p));
        if (p == NULL)
            return;
        m->order = p;
        m->cap_order = m->n_members;
    }
    for (size_t i = 0; i < m->n_members; i++)
        if (is_live(&m->members[i]))
            memcpy(m->order[m->n_order++], m->members[i].id, WIRE_ID_LEN);
    for (size_t i = m->n_order; i > 1; i--) { /* Fisher-Yates */
        size_t j = member_rand_below(m, i);
        uint8_t tmp[WIRE_ID_LEN];
        memcpy(tmp, m->order[i - 1], WIRE_ID_LEN);
        memcpy(m->order[i - 1], m->order[j], WIRE_ID_LEN);
        memcpy(m->order[j], tmp, WIRE_ID_LEN);
    }
}

/* A member learned from gossip is given join_grace_ms to get linked before
 * it is probed, so a join does not start with false suspicions. */
static bool probe_eligible(const struct sn_member *m, const struct member *e, uint64_t now)
{
    return is_live(e) && (e->linked || now - e->first_seen >= m->cfg.join_grace_ms);
}

static struct member *pick_target(struct sn_member *m, uint64_t now)
{
    for (int pass = 0; pass < 2; pass++) {
        while (m->order_pos < m->n_order) {
            struct member *e = member_find(m, m->order[m->order_pos++]);
            if (e && probe_eligible(m, e, now))
                return e;
        }
        order_rebuild(m);
    }
    return NULL;
}

/* Ask up to indirect_k linked alive members to probe the target, and ping
 * it directly once more. */
static void probe_indirect(struct sn_member *m, uint64_t now)
{
    struct member *target = member_find(m, m->probe.target);
    m->probe.indirect_sent = true;
    m->probe.indirect_at = now;
    size_t *cand = malloc((m->n_members ? m->n_members : 1) * sizeof(*cand));
    if (cand == NULL)
        return;
    size_t n = 0;
    for (size_t i = 0; i < m->n_members; i++) {
        const struct member *e = &m->members[i];
        if (e != target && e->linked && e->state == MSG_SN_ALIVE)
            cand[n++] = i;
    }
    for (size_t k = 0; k < m->cfg.indirect_k && k < n; k++) { /* partial Fisher-Yates */
        size_t j = k + member_rand_below(m, n - k);
        size_t tmp = cand[k];
        cand[k] = cand[j];
        cand[j] = tmp;
        member_send(m, m->members[cand[k]].id, MSG_GOSSIP_PING_REQ, m->probe.seq, m->probe.target);
    }
    free(cand);
    if (target && target->linked)
        member_send(m, target->id, MSG_GOSSIP_PING, m->probe.seq, NULL);
}

static void probe_start(struct sn_member *m, uint64_t now, const struct member *target)
{
    m->probe.active = true;
    m->probe.acked = false;
    m->probe.indirect_sent = false;
    memcpy(m->probe.target, target->id, WIRE_ID_LEN);
    m->probe.seq = m->next_seq++;
    m->probe.ack_deadline = now + m->cfg.ack_timeout_ms;
    if (target->linked)
        member_send(m, target->id, MSG_GOSSIP_PING, m->probe.seq, NULL);
    else
        probe_indirect(m, now); /* no link: only others can reach it */
}

/* The period is over: a target nobody reached becomes a suspect. Unless we
 * were ticked so late that the indirect probes went out just now: then the
 * silence says more about our own loop than about the target. */
static void probe_end(struct sn_member *m, uint64_t now)
{
    if (!m->probe.active)
        return;
    m->probe.active = false;
    if (m->probe.acked || now - m->probe.indirect_at < m->cfg.ack_timeout_ms)
        return;
    struct member *e = member_find(m, m->probe.target);
    if (e == NULL || e->state != MSG_SN_ALIVE)
        return;
    e->suspect_deadline = now + sn_member_suspect_timeout_ms(m);
    e->our_suspicion = true;
    member_set_state(m, now, e, MSG_SN_SUSPECT);
    member_queue(m, e, false);
}

static void period_start(struct sn_member *m, uint64_t now)
{
    probe_end(m, now);
    m->next_period += m->cfg.period_ms;
    if (m->next_period <= now) /* we were not ticked for a while: no catching up */
        m->next_period = now + m->cfg.period_ms;
    const struct member *target = pick_target(m, now);
    if (target)
        probe_start(m, now, target);
    /* Every suspect we can reach hears of its suspicion once per period, so
     * a live one refutes well before the timeout even if gossip is slow. */
    for (size_t i = 0; i < m->n_members; i++) {
        const struct member *e = &m->members[i];
        if (e->state == MSG_SN_SUSPECT && e->linked &&
            !(target && memcmp(e->id, target->id, WIRE_ID_LEN) == 0))
            member_send(m, e->id, MSG_GOSSIP_PING, m->next_seq++, NULL);
    }
}

/* ---- timers -------------------------------------------------------------------------- */
static void forget(struct sn_member *m, uint64_t now, size_t i)
{
    struct member *e = &m->members[i];
    member_set_state(m, now, e, SN_MEMBER_GONE);
    m->members[i] = m->members[--m->n_members];
}

/* A death we established ourselves (our probe failed, nobody refuted) is
 * told to every linked live member at once rather than left to gossip:
 * deaths are rare, and this saves the log(N) periods an epidemic takes. */
static void broadcast_death(struct sn_member *m, const struct member *dead)
{
    for (size_t i = 0; i < m->n_members; i++) {
        const struct member *e = &m->members[i];
        if (e != dead && e->linked && is_live(e))
            member_send_lead(m, e->id, MSG_GOSSIP_PING, m->next_seq++, NULL, dead);
    }
}

/* We have just declared the last other member dead: far more likely we are
 * the one cut off than everyone else dead. Keep the verdicts (we stop
 * probing them; reprobe_dead() looks for a way back) but do not gossip
 * them: when the cut heals they would tell the others that all of them are
 * dead. */
static void hush_deaths(struct sn_member *m)
{
    for (size_t i = 0; i < m->n_members; i++)
        if (m->members[i].state == MSG_SN_DEAD)
            m->members[i].tx_left = 0;
}

/* Suspicion timeouts, forgetting, and CONNECTs for unlinked live members. */
static void members_timers(struct sn_member *m, uint64_t now)
{
    for (size_t i = 0; i < m->n_members;) {
        struct member *e = &m->members[i];
        if (e->state == MSG_SN_SUSPECT && now >= e->suspect_deadline) {
            member_set_state(m, now, e, MSG_SN_DEAD);
            member_queue(m, e, false);
            if (e->our_suspicion)
                broadcast_death(m, e);
            e->our_suspicion = false;
            if (member_live_count(m) == 1)
                hush_deaths(m);
        }
        if ((e->state == MSG_SN_DEAD || e->state == MSG_SN_LEFT) &&
            now - e->state_since >= m->cfg.dead_keep_ms) {
            forget(m, now, i);
            continue; /* the last one moved into slot i */
        }
        if (is_live(e) && !e->linked && now >= e->next_connect) {
            member_out_connect(m, e);
            e->next_connect = now + m->cfg.connect_retry_ms;
        }
        i++;
    }
}

/* Now and then, contact one dead member: if it is alive (a healed
 * partition), our PING tells it it was declared dead and it comes back with
 * a higher incarnation. Left members are not contacted. */
static void reprobe_dead(struct sn_member *m, uint64_t now)
{
    if (now < m->next_reprobe)
        return;
    m->next_reprobe = now + m->cfg.dead_reprobe_ms;
    size_t n_dead = sn_member_count_state(m, MSG_SN_DEAD);
    if (n_dead == 0)
        return;
    size_t pick = member_rand_below(m, n_dead);
    for (size_t i = 0; i < m->n_members; i++) {
        const struct member *e = &m->members[i];
        if (e->state != MSG_SN_DEAD || pick-- != 0)
            continue;
        if (e->linked)
            member_send(m, e->id, MSG_GOSSIP_PING, m->next_seq++, NULL);
        else
            member_out_connect(m, e);
        return;
    }
}

/* Load announcements are spaced by max(load_period_ms, one probe round of
 * N periods): each is sent refresh_mult x ceil(log2(N+1)) times by every
 * node, 61 bytes each, so with every node announcing once per round a node
 * sends about refresh_mult x ceil(log2(N+1)) x 61 bytes of load gossip per
 * period: O(log N), whatever N. */
uint64_t member_load_interval(const struct sn_member *m)
{
    uint64_t round = (uint64_t)member_live_count(m) * m->cfg.period_ms;
    return round > m->cfg.load_period_ms ? round : m->cfg.load_period_ms;
}

static void announce_load(struct sn_member *m, uint64_t now)
{
    if (!m->load_dirty || now - m->last_load_announce < member_load_interval(m))
        return;
    m->load_dirty = false;
    m->last_load_announce = now;
    m->self.incarnation++;
    member_queue(m, &m->self, true);
}

void sn_member_tick(struct sn_member *m, uint64_t now)
{
    member_outputs_reset(m);
    if (m->left)
        return;
    if (!m->started) {
        m->started = true;
        m->next_period = now;
        m->next_reprobe = now + m->cfg.dead_reprobe_ms;
        m->last_load_announce = now;
    }
    if (m->probe.active && !m->probe.acked && !m->probe.indirect_sent &&
        now >= m->probe.ack_deadline)
        probe_indirect(m, now);
    if (now >= m->next_period)
        period_start(m, now);
    members_timers(m, now);
    reprobe_dead(m, now);
    announce_load(m, now);
}

static void deadline_min(uint64_t *d, uint64_t t)
{
    if (t < *d)
        *d = t;
}

uint64_t sn_member_next_deadline(const struct sn_member *m)
{
    if (m->left)
        return UINT64_MAX;
    if (!m->started)
        return 0;
    uint64_t d = m->next_period;
    if (m->probe.active && !m->probe.acked && !m->probe.indirect_sent)
        deadline_min(&d, m->probe.ack_deadline);
    if (m->load_dirty)
        deadline_min(&d, m->last_load_announce + member_load_interval(m));
    bool any_dead = false;
    for (size_t i = 0; i < m->n_members; i++) {
        const struct member *e = &m->members[i];
        if (e->state == MSG_SN_SUSPECT)
            deadline_min(&d, e->suspect_deadline);
        if (e->state == MSG_SN_DEAD || e->state == MSG_SN_LEFT)
            deadline_min(&d, e->state_since + m->cfg.dead_keep_ms);
        if (is_live(e) && !e->linked && e->n_addrs)
            deadline_min(&d, e->next_connect);
        any_dead |= e->state == MSG_SN_DEAD;
    }
    if (any_dead)
        deadline_min(&d, m->next_reprobe);
    return d;
}

/* ---- links ---------------------------------------------------------------------------- */
void sn_member_link_up(struct sn_member *m, uint64_t now, const uint8_t id[WIRE_ID_LEN],
                       const struct wire_addr *addrs, size_t n_addrs)
{
    member_outputs_reset(m);
    if (m->left || memcmp(id, m->self.id, WIRE_ID_LEN) == 0)
        return;
    if (n_addrs > WIRE_MAX_ADDRS)
        n_addrs = WIRE_MAX_ADDRS;
    struct member *e = member_find(m, id);
    if (e == NULL) {
        /* A seed or a node that dialed us: alive, incarnation unknown until
         * its own entry arrives (in the table it sends us now). */
        if ((e = member_add(m, now, id)) == NULL)
            return;
        if (n_addrs > 0) /* memcpy from NULL is undefined even for 0 bytes */
            memcpy(e->addrs, addrs, n_addrs * sizeof(addrs[0]));
        e->n_addrs = n_addrs;
        member_out_new(m, e);
    } else if (e->n_addrs == 0 && n_addrs > 0) {
        memcpy(e->addrs, addrs, n_addrs * sizeof(addrs[0]));
        e->n_addrs = n_addrs;
    }
    e->linked = true;
    e->last_heard = now;
    member_send_table(m, id);
}

void sn_member_link_down(struct sn_member *m, uint64_t now, const uint8_t id[WIRE_ID_LEN])
{
    member_outputs_reset(m);
    struct member *e = member_find(m, id);
    if (e == NULL || !e->linked)
        return;
    e->linked = false;
    if (m->left || !is_live(e))
        return;
    member_order_insert(m, id, true); /* probe it next, through others */
    member_out_connect(m, e);
    e->next_connect = now + m->cfg.connect_retry_ms;
}

/* ---- receiving ------------------------------------------------------------------------ */
/* Someone asks us to probe target: ping it and remember whom to answer. */
static void serve_ping_req(struct sn_member *m, uint64_t now, const uint8_t from[WIRE_ID_LEN],
                           const struct msg_gossip *g)
{
    if (memcmp(g->target_id, m->self.id, WIRE_ID_LEN) == 0) {
        member_send(m, from, MSG_GOSSIP_ACK, g->seq, m->self.id);
        return;
    }
    const struct member *t = member_find(m, g->target_id);
    if (t == NULL || !t->linked)
        return; /* we cannot reach it either: no answer */
    struct relay *slot = &m->relays[0];
    for (size_t i = 0; i < SN_MEMBER_MAX_RELAYS; i++) {
        struct relay *r = &m->relays[i];
        if (!r->used || now >= r->expires) {
            slot = r;
            break;
        }
        if (r->expires < slot->expires)
            slot = r; /* all busy: replace the oldest */
    }
    slot->used = true;
    memcpy(slot->requester, from, WIRE_ID_LEN);
    memcpy(slot->target, g->target_id, WIRE_ID_LEN);
    slot->requester_seq = g->seq;
    slot->our_seq = m->next_seq++;
    slot->expires = now + m->cfg.period_ms;
    member_send(m, g->target_id, MSG_GOSSIP_PING, slot->our_seq, NULL);
}

static void handle_ack(struct sn_member *m, uint64_t now, const uint8_t from[WIRE_ID_LEN],
                       const struct msg_gossip *g)
{
    struct probe *p = &m->probe;
    if (p->active && !p->acked && g->seq == p->seq &&
        (memcmp(from, p->target, WIRE_ID_LEN) == 0 ||
         memcmp(g->target_id, p->target, WIRE_ID_LEN) == 0)) {
        p->acked = true;
        struct member *t = member_find(m, p->target);
        if (t)
            t->last_heard = now;
    }
    for (size_t i = 0; i < SN_MEMBER_MAX_RELAYS; i++) {
        struct relay *r = &m->relays[i];
        if (r->used && r->our_seq == g->seq && memcmp(r->target, from, WIRE_ID_LEN) == 0) {
            r->used = false;
            if (now < r->expires)
                member_send(m, r->requester, MSG_GOSSIP_ACK, r->requester_seq, r->target);
        }
    }
}

void sn_member_receive(struct sn_member *m, uint64_t now, const uint8_t from[WIRE_ID_LEN],
                       const struct msg_gossip *g)
{
    member_outputs_reset(m);
    if (m->left) { /* only tell whoever still pings us that we left */
        if (g->kind == MSG_GOSSIP_PING)
            member_send(m, from, MSG_GOSSIP_ACK, g->seq, NULL);
        return;
    }
    for (size_t i = 0; i < g->n_updates; i++)
        member_apply(m, now, &g->updates[i]);
    struct member *e = member_find(m, from); /* after: apply may move the table */
    if (e)
        e->last_heard = now;
    switch (g->kind) {
    case MSG_GOSSIP_PING:
        member_send(m, from, MSG_GOSSIP_ACK, g->seq, NULL);
        break;
    case MSG_GOSSIP_ACK:
        handle_ack(m, now, from, g);
        break;
    case MSG_GOSSIP_PING_REQ:
        serve_ping_req(m, now, from, g);
        break;
    default:
        break;
    }
}

/* ---- load and leaving ------------------------------------------------------------------ */
void sn_member_set_load(struct sn_member *m, uint32_t attached_peers, uint32_t capacity,
                        uint32_t relay_kbps)
{
    struct member *s = &m->self;
    if (s->peers == attached_peers && s->capacity == capacity && s->relay_kbps == relay_kbps)
        return;
    s->peers = attached_peers;
    s->capacity = capacity;
    s->relay_kbps = relay_kbps;
    m->load_dirty = true;
}

void sn_member_leave(struct sn_member *m, uint64_t now)
{
    member_outputs_reset(m);
    if (m->left)
        return;
    m->left = true;
    m->probe.active = false;
    member_set_state(m, now, &m->self, MSG_SN_LEFT);
    member_queue(m, &m->self, false);
    for (size_t i = 0; i < m->n_members; i++) {
        const struct member *e = &m->members[i];
        if (is_live(e) && e->linked)
            member_send(m, e->id, MSG_GOSSIP_PING, m->next_seq++, NULL);
    }
}
