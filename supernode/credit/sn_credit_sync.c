/* sn_credit_sync.c - the credit ledger's background work (sn_credit_int.h):
 * the uptime of attached peers reported to their records' holders, records
 * moved to their holders when membership changes, and relay-total-kbps
 * shared by credit. docs/CREDITS.md says why each works as it does. */
#define SOVA_SN_CREDIT_INTERNAL
#include "clock.h"
#include "err.h"
#include "log.h"
#include "sn_credit.h"
#include "sn_credit_int.h"
#include "sn_fed_links.h"
#include "sn_relay.h"

#include <stdlib.h>
#include <string.h>

/* ---- uptime ------------------------------------------------------------------------------- */

static void uptime_send(struct sn_credit *c, struct uptime_box *b)
{
    if (b->n == 0)
        return;
    struct msg m = {.type = MSG_LEDGER_UPTIME};
    m.u.ledger_uptime = (struct msg_ledger_uptime){.reports = b->reports, .n_reports = b->n};
    sn_fed_send(c->d, b->to, &m);
    b->n = 0;
}

static void uptime_flush(struct sn_credit *c)
{
    for (size_t i = 0; i < c->n_up; i++)
        uptime_send(c, &c->up[i]);
    c->n_up = 0;
}

static void uptime_add(struct sn_credit *c, const uint8_t to[WIRE_ID_LEN],
                       const struct msg_uptime_report *r)
{
    struct uptime_box *b = NULL;
    for (size_t i = 0; i < c->n_up && !b; i++)
        if (memcmp(c->up[i].to, to, WIRE_ID_LEN) == 0)
            b = &c->up[i];
    if (b == NULL) {
        if (c->n_up == CREDIT_OUTBOXES)
            uptime_flush(c);
        b = &c->up[c->n_up++];
        memcpy(b->to, to, WIRE_ID_LEN);
        b->n = 0;
    }
    b->reports[b->n++] = *r;
    if (b->n == MSG_MAX_CREDIT_IDS)
        uptime_send(c, b);
}

static struct credit_conn *cconn(const struct sn_conn *p)
{
    return p->ext[SN_EXT_CREDIT];
}

/* Tell the holders of p's record how long its primary session has lasted
 * (batched: uptime_flush() sends). */
static void report_uptime(struct sn_credit *c, struct sn_conn *p, uint64_t since_ms)
{
    uint64_t now = sova_wall_ms();
    struct msg_uptime_report rep = {.start_ms = since_ms,
                                    .seconds = now > since_ms ? (now - since_ms) / 1000 : 0};
    memcpy(rep.peer_id, p->id, WIRE_ID_LEN);
    const uint8_t *h[SN_RING_MAX_REPLICAS];
    size_t n = credit_holders(c, &c->view, p->id, h);
    for (size_t i = 0; i < n; i++) {
        if (credit_is_self(c, h[i])) {
            sn_ledger_uptime(c->ledger, p->id, h[i], rep.start_ms, rep.seconds);
            continue;
        }
        uptime_add(c, h[i], &rep);
    }
}

void credit_uptime_tick(evutil_socket_t fd, short what, void *arg)
{
    struct sn_credit *c = arg;
    (void)fd, (void)what;
    for (struct link *l = link_group_first(&c->d->links); l; l = link_group_next(l)) {
        struct sn_conn *p = link_arg(l);
        if (link_remote_role(l) != MSG_ROLE_PEER)
            continue;
        if (p->indexed && cconn(p) == NULL)
            p->ext[SN_EXT_CREDIT] = calloc(1, sizeof(struct credit_conn));
        struct credit_conn *cc = cconn(p);
        if (cc == NULL)
            continue;
        if (p->indexed && cc->since_ms == 0) {
            cc->since_ms = sova_wall_ms();
            credit_learn(c, p->id); /* its standing, for ranking its files */
        }
        if (cc->since_ms == 0)
            continue;
        report_uptime(c, p, cc->since_ms);
        if (!p->indexed)
            cc->since_ms = 0; /* the session ended (a backup now) */
    }
    uptime_flush(c);
    /* Each report is a ring lookup and a ledger update (or a message), for
     * every peer: as the keep-alive grows with the peers (sn_keepalive.h),
     * so does this interval (42 s at 100,000 peers). The supernode knows a
     * peer is online no more precisely than its keep-alive anyway. */
    uint64_t cfg = c->d->s->keepalive_s ? c->d->s->keepalive_s : 1;
    uint64_t ms = CREDIT_UPTIME_MS * sn_ctx_keepalive(c->d).keepalive_s / cfg;
    sn_timer_ms(c->uptime_timer, ms > CREDIT_UPTIME_MS ? ms : CREDIT_UPTIME_MS);
}

void credit_session_end(struct sn_credit *c, struct sn_conn *p)
{
    struct credit_conn *cc = cconn(p);
    if (cc != NULL && cc->since_ms != 0 && link_remote_role(p->link) == MSG_ROLE_PEER) {
        report_uptime(c, p, cc->since_ms);
        uptime_flush(c);
    }
}

/* ---- moving records -------------------------------------------------------------------------- */

static bool is_fresh(const struct sn_credit *c, const uint8_t *id)
{
    for (size_t i = 0; i < c->n_fresh; i++)
        if (memcmp(c->fresh[i], id, WIRE_ID_LEN) == 0)
            return true;
    return false;
}

/* 1 sent, 0 no link, -1 the link is busy (try later). */
static int push(struct sn_credit *c, const uint8_t key[WIRE_ID_LEN], const uint8_t *to)
{
    struct sn_conn *p = sn_fed_link(c->d, to);
    if (p == NULL)
        return 0;
    if (link_output_len(p->link) >= CREDIT_PUSH_HIGH)
        return -1;
    struct msg m = {.type = MSG_LEDGER_PUT};
    if (!sn_ledger_export(c->ledger, key, &m.u.ledger_put))
        return 1;
    if (link_send(p->link, &m) == 0)
        c->ct.puts_sent++;
    return 1;
}

static struct credit_placement placement(const struct sn_credit *c)
{
    return (struct credit_placement){
        .self = credit_self_id(c),
        .replicas = c->replicas,
        .old = c->pass_has_old ? &c->pass_old : NULL,
        .now = &c->view,
        .fresh = (const uint8_t(*)[WIRE_ID_LEN])c->fresh,
        .n_fresh = c->n_fresh,
    };
}

/* One record: push it where it is new, hand it away if it is not ours
 * (sn_credit_place.h decides). False: a link is busy, come back to this
 * record later. */
static bool pass_one(struct sn_credit *c, const uint8_t key[WIRE_ID_LEN])
{
    struct credit_placement pl = placement(c);
    struct credit_place_plan plan;
    credit_place_plan(&pl, key, &plan);
    bool all_sent = true;
    for (size_t i = 0; i < plan.n_push; i++) {
        int rc = push(c, key, plan.push[i]);
        if (rc < 0)
            return false;
        all_sent &= rc == 1;
    }
    if (!plan.keep && all_sent)
        sn_ledger_remove(c->ledger, key);
    return true;
}

void credit_pass_end(struct sn_credit *c)
{
    free(c->pass_keys);
    c->pass_keys = NULL;
    c->pass_n = c->pass_at = 0;
    credit_view_clear(&c->pass_old);
    c->pass_has_old = false;
    c->pass_running = false;
    c->n_fresh = 0;
}

void credit_pass_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sn_credit *c = arg;
    (void)fd, (void)what;
    if (!c->pass_running) {
        /* Start (or restart) a pass over the view as it is now. */
        struct credit_view v;
        if (credit_view_compute(c, &v) != 0)
            return;
        if (!c->pass_has_old) {
            c->pass_old = c->view; /* what the records were placed by */
            c->pass_has_old = true;
        } else {
            credit_view_clear(&c->view);
        }
        c->view = v;
        struct credit_placement pl = placement(c);
        if (!credit_place_needed(&pl) && !c->pass_strays) {
            credit_pass_end(c);
            return;
        }
        c->pass_strays = false; /* this walk sees them; later ones ask again */
        free(c->pass_keys);
        c->pass_keys = sn_ledger_keys(c->ledger, &c->pass_n);
        c->pass_at = 0;
        c->pass_running = true;
        log_info("credit", "ledger: %zu records over %zu supernodes (R %u): rebalancing", c->pass_n,
                 c->view.n, c->replicas);
    }
    for (size_t k = 0; k < CREDIT_PASS_BATCH && c->pass_at < c->pass_n; k++) {
        if (!pass_one(c, c->pass_keys[c->pass_at])) {
            sn_timer_ms(c->pass_timer, CREDIT_PUSH_RETRY_MS);
            return;
        }
        c->pass_at++;
    }
    if (c->pass_at < c->pass_n) {
        sn_timer_ms(c->pass_timer, 0);
        return;
    }
    credit_pass_end(c);
    if (c->pass_strays) /* records came in during the walk that are not ours */
        sn_timer_ms(c->pass_timer, CREDIT_PASS_DELAY_MS);
}

/* A record came in (LEDGER_PUT, LEDGER_UPDATE) that this supernode does
 * not hold in its view: the sender's view differs (a supernode starting,
 * a member not yet known here). A walk soon hands it to its holders and
 * drops it, unless the views agree by then. A walk already running is not
 * restarted (a stream of such records must not keep it from finishing):
 * another follows it. */
void credit_stray(struct sn_credit *c, const uint8_t key[WIRE_ID_LEN])
{
    const uint8_t *h[SN_RING_MAX_REPLICAS];
    size_t n = credit_holders(c, &c->view, key, h);
    for (size_t i = 0; i < n; i++)
        if (credit_is_self(c, h[i]))
            return; /* ours */
    c->pass_strays = true;
    if (!c->pass_running && !evtimer_pending(c->pass_timer, NULL))
        sn_timer_ms(c->pass_timer, CREDIT_PASS_DELAY_MS);
}

/* Something changed: (re)start a pass soon; one already running starts
 * over with the records' original placement, so nothing is missed. */
static void pass_request(struct sn_credit *c)
{
    if (c->pass_running) {
        free(c->pass_keys);
        c->pass_keys = NULL;
        c->pass_n = c->pass_at = 0;
        c->pass_running = false;
    }
    sn_timer_ms(c->pass_timer, CREDIT_PASS_DELAY_MS);
}

void sn_credit_membership_changed(struct sn_ctx *d)
{
    if (d->credit != NULL)
        pass_request(d->credit);
}

void sn_credit_link_up(struct sn_ctx *d, struct sn_conn *p)
{
    struct sn_credit *c = d->credit;
    if (c == NULL)
        return;
    if (!is_fresh(c, p->id) && c->n_fresh < CREDIT_MAX_FRESH)
        memcpy(c->fresh[c->n_fresh++], p->id, WIRE_ID_LEN);
    pass_request(c);
}

/* ---- relay shares -----------------------------------------------------------------------------
 */

/* The credit of p for its relay share: as seen by the other ends of its
 * circuits (the best of them), from the records read. The other end is a
 * peer p serves or is served by through this relay: a farm can raise p
 * only at ends that are its own (docs/CREDITS.md, "Relay bandwidth"). IDs
 * whose records are not fresh are added to ask. */
static uint64_t relay_credit(struct sn_credit *c, const struct sn_conn *p,
                             uint8_t (*ask)[WIRE_ID_LEN], size_t *n_ask, size_t max_ask)
{
    uint8_t ends[CREDIT_RELAY_FAR_ENDS][WIRE_ID_LEN];
    size_t n = sn_relay_conn_far_ends(p, ends, CREDIT_RELAY_FAR_ENDS);
    uint64_t best = 0;
    for (size_t i = 0; i <= n; i++) {
        const uint8_t *id = i < n ? ends[i] : p->id;
        if (!credit_is_fresh(c, id) && *n_ask < max_ask) {
            bool dup = false;
            for (size_t k = 0; k < *n_ask && !dup; k++)
                dup = memcmp(ask[k], id, WIRE_ID_LEN) == 0;
            if (!dup)
                memcpy(ask[(*n_ask)++], id, WIRE_ID_LEN);
        }
        if (i < n) {
            uint64_t seen = credit_seen_by(c, p->id, ends[i]);
            best = seen > best ? seen : best;
        }
    }
    return best;
}

void credit_relay_tick(evutil_socket_t fd, short what, void *arg)
{
    struct sn_credit *c = arg;
    struct sn_ctx *d = c->d;
    (void)fd, (void)what;
    sn_timer_ms(c->relay_timer, CREDIT_RELAY_PERIOD_MS);
    uint64_t total = d->s->relay_total_kbps * 1000;
    if (total == 0)
        return; /* nothing to share */
    enum { MAX_SHARED = 1024 };
    struct sn_conn **peers = malloc(MAX_SHARED * sizeof(*peers));
    uint64_t *credits = malloc(MAX_SHARED * sizeof(*credits)),
             *shares = malloc(MAX_SHARED * sizeof(*shares));
    uint8_t(*ask)[WIRE_ID_LEN] = malloc(CREDIT_MAX_LOOKUP_IDS * sizeof(*ask));
    size_t n = 0, n_ask = 0;
    for (struct link *l = link_group_first(&d->links); l && peers && credits && shares && ask;
         l = link_group_next(l)) {
        struct sn_conn *p = link_arg(l);
        if (link_remote_role(l) != MSG_ROLE_PEER || sn_relay_conn_circuits(p) == 0 ||
            n == MAX_SHARED)
            continue;
        peers[n] = p;
        credits[n++] = relay_credit(c, p, ask, &n_ask, CREDIT_MAX_LOOKUP_IDS);
    }
    if (n > 0) {
        sn_credit_relay_shares(credits, n, total, (unsigned)d->s->relay_credit_floor_pct, shares);
        uint64_t now = link_now_ms(), cap = d->s->relay_peer_kbps * 1000;
        for (size_t i = 0; i < n; i++) {
            uint64_t rate = cap && cap < shares[i] ? cap : shares[i];
            sn_relay_conn_set_rate(peers[i], rate, now);
        }
    }
    if (n_ask > 0) /* known at the next tick */
        credit_lookup_start(c, (const uint8_t(*)[WIRE_ID_LEN])ask, n_ask, NULL, NULL);
    free(peers);
    free(credits);
    free(shares);
    free(ask);
}
