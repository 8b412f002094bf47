/* sn_credit_net.c - the credit ledger on the wire (docs/CREDITS.md).
 *
 *  - Receipts in: a source's RECEIPTS are checked here (about the sender,
 *    date, bytes within the size its file ID commits to, key, signature);
 *    for the good ones the downloader's standing is
 *    read (its record, from its holders) to weigh them, and LEDGER_UPDATE
 *    goes to the holders of the source's and of the downloader's record
 *    (applied at once where this supernode is one).
 *  - Reads: CREDIT from a peer, and the weights above, ask every holder of
 *    each record in parallel (LEDGER_QUERY) and merge the answers (largest
 *    of each number), so a holder that is new, restarted or dead costs
 *    nothing but its own answer; one hop, at most CREDIT_LOOKUP_MS.
 *  - Placement: holders are sn_ring_holders() over the live view (this
 *    supernode and the members alive or suspect, by ID) with R =
 *    ledger-replicas. When the view changes, or a supernode links up, a
 *    pass over the records pushes each to the holders that are new to it
 *    (LEDGER_PUT; every current holder pushes, merges are idempotent) and
 *    hands away the records this supernode no longer holds. The pass pauses
 *    while a link's output is high, so a large ledger never floods a link.
 *  - Uptime: every CREDIT_UPTIME_MS, the sessions of peers attached here
 *    as primary are reported to their holders (LEDGER_UPTIME).
 *  - Relay: with relay-total-kbps set, each peer with circuits gets a share
 *    of it: relay-credit-floor-pct equally, the rest by credit.
 * Uptime, moving records and relay shares are in sn_credit_sync.c. The
 * ledger itself (sn_ledger.c) is in memory: a supernode that restarts
 * starts empty and is refilled by the others' pushes when it links up. */
#define SOVA_SN_CREDIT_INTERNAL
#include "clock.h"
#include "err.h"
#include "log.h"
#include "sn_credit.h"
#include "sn_credit_int.h"
#include "sn_fed_links.h"
#include "sn_membership.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

const uint8_t *credit_self_id(const struct sn_credit *c)
{
    return identity_id(c->d->id);
}

/* ---- the view and the holders ----------------------------------------------------- */

/* This supernode and every member alive or suspect, sorted by ID. */
int credit_view_compute(struct sn_credit *c, struct credit_view *v)
{
    size_t cap = sn_membership_count(c->d);
    uint8_t(*live)[WIRE_ID_LEN] = malloc((cap ? cap : 1) * sizeof(*live));
    if (live == NULL)
        return SOVA_ERR_NOMEM;
    size_t n = sn_membership_live(c->d, live, cap, false);
    int rc = credit_view_make(v, credit_self_id(c), (const uint8_t(*)[WIRE_ID_LEN])live, n);
    free(live);
    return rc;
}

/* Holders of key in v: their IDs (pointers into v), best first. */
size_t credit_holders(const struct sn_credit *c, const struct credit_view *v,
                      const uint8_t key[WIRE_ID_LEN], const uint8_t *out[SN_RING_MAX_REPLICAS])
{
    return credit_view_holders(v, key, c->replicas, out);
}

bool credit_is_self(const struct sn_credit *c, const uint8_t *id)
{
    return memcmp(id, credit_self_id(c), WIRE_ID_LEN) == 0;
}

/* ---- the standing cache --------------------------------------------------------------- */

static struct cache_slot *cache_slot(struct sn_credit *c, const uint8_t id[WIRE_ID_LEN])
{
    return &c->cache[(id[0] << 8 | id[1]) % CREDIT_CACHE_SLOTS];
}

static void cache_put(struct sn_credit *c, const struct msg_credit_record *r)
{
    struct cache_slot *s = cache_slot(c, r->peer_id);
    s->rec = *r;
    s->at_ms = link_now_ms();
}

const struct msg_credit_record *credit_cache_get(struct sn_credit *c, const uint8_t id[WIRE_ID_LEN])
{
    struct cache_slot *s = cache_slot(c, id);
    if (s->at_ms == 0 || link_now_ms() - s->at_ms > CREDIT_CACHE_MS ||
        memcmp(s->rec.peer_id, id, WIRE_ID_LEN) != 0)
        return NULL;
    return &s->rec;
}

void credit_cache_forget(struct sn_credit *c, const uint8_t id[WIRE_ID_LEN])
{
    struct cache_slot *s = cache_slot(c, id);
    if (memcmp(s->rec.peer_id, id, WIRE_ID_LEN) == 0)
        s->at_ms = 0;
}

/* ---- reads: ask every holder, merge ----------------------------------------------------- */

static void merge_record(struct msg_credit_record *into, const struct msg_credit_record *r)
{
    if (!r->found)
        return;
    into->found = 1;
#define TAKE_MAX(f) into->f = into->f > r->f ? into->f : r->f
    TAKE_MAX(credit);
    TAKE_MAX(uploaded);
    TAKE_MAX(downloaded);
    TAKE_MAX(uptime_s);
#undef TAKE_MAX
}

static void lookup_free(struct lookup *l)
{
    struct sn_credit *c = l->c;
    struct lookup **pp = &c->lookups;
    while (*pp && *pp != l)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = l->next;
        c->n_lookups--;
    }
    if (l->deadline)
        event_free(l->deadline);
    free(l->ids);
    free(l->recs);
    free(l->asked);
    free(l);
}

static void lookup_finish(struct lookup *l)
{
    struct sn_credit *c = l->c;
    for (size_t i = 0; i < l->n; i++)
        cache_put(c, &l->recs[i]);
    if (l->fn)
        l->fn(c->d, l->recs, l->n, l->arg);
    lookup_free(l);
}

static void on_lookup_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct lookup *l = arg;
    (void)fd, (void)what;
    l->c->ct.lookups_timed_out++;
    lookup_finish(l);
}

/* Read the records of ids[0..n) (n <= MSG_MAX_CREDIT_IDS): fn gets them,
 * from this loop turn (all holders local) or when the holders answered or
 * the deadline passed. fn may be NULL (fill the cache). */
void credit_lookup_start(struct sn_credit *c, const uint8_t (*ids)[WIRE_ID_LEN], size_t n,
                         lookup_done_fn *fn, void *arg)
{
    struct sn_ctx *d = c->d;
    struct lookup *l = calloc(1, sizeof(*l));
    if (l != NULL) {
        l->ids = malloc(n * sizeof(*l->ids));
        l->recs = calloc(n, sizeof(*l->recs));
        l->asked = calloc(n * SN_RING_MAX_REPLICAS, sizeof(*l->asked));
        l->deadline = evtimer_new(evloop_base(d->loop), on_lookup_deadline, l);
    }
    if (l == NULL || !l->ids || !l->recs || !l->asked || !l->deadline ||
        c->n_lookups >= CREDIT_MAX_LOOKUPS) {
        struct msg_credit_record none[MSG_MAX_CREDIT_IDS];
        memset(none, 0, sizeof(none));
        for (size_t i = 0; i < n; i++)
            memcpy(none[i].peer_id, ids[i], WIRE_ID_LEN);
        if (l)
            lookup_free(l);
        if (fn)
            fn(d, none, n, arg); /* nothing known: weighs as a stranger */
        return;
    }
    l->c = c;
    l->n = n;
    l->fn = fn;
    l->arg = arg;
    l->query_id = ++c->next_query;
    l->next = c->lookups;
    c->lookups = l;
    c->n_lookups++;
    c->ct.lookups++;
    memcpy(l->ids, ids, n * sizeof(*ids));
    /* Who holds what: ask each remote holder once, for its IDs. */
    for (size_t i = 0; i < n; i++) {
        memcpy(l->recs[i].peer_id, ids[i], WIRE_ID_LEN);
        const uint8_t *h[SN_RING_MAX_REPLICAS];
        size_t k = credit_holders(c, &c->view, ids[i], h);
        for (size_t j = 0; j < k; j++) {
            if (credit_is_self(c, h[j])) {
                struct msg_credit_record r;
                if (sn_ledger_get(c->ledger, ids[i], &r))
                    merge_record(&l->recs[i], &r);
                continue;
            }
            bool dup = false;
            for (size_t a = 0; a < l->n_asked && !dup; a++)
                dup = memcmp(l->asked[a], h[j], WIRE_ID_LEN) == 0;
            if (!dup && sn_fed_link(d, h[j]) != NULL)
                memcpy(l->asked[l->n_asked++], h[j], WIRE_ID_LEN);
        }
    }
    size_t sent = 0;
    for (size_t a = 0; a < l->n_asked; a++) {
        uint8_t(*mine)[WIRE_ID_LEN] = malloc(n * sizeof(*mine));
        size_t k = 0;
        for (size_t i = 0; mine && i < n; i++) {
            const uint8_t *h[SN_RING_MAX_REPLICAS];
            size_t nh = credit_holders(c, &c->view, ids[i], h);
            for (size_t j = 0; j < nh; j++)
                if (memcmp(h[j], l->asked[a], WIRE_ID_LEN) == 0)
                    memcpy(mine[k++], ids[i], WIRE_ID_LEN);
        }
        struct msg m = {.type = MSG_LEDGER_QUERY};
        m.u.ledger_query =
            (struct msg_credit){.query_id = l->query_id, .peer_ids = mine, .n_peer_ids = k};
        if (k > 0 && sn_fed_send(d, l->asked[a], &m) == 0) {
            memmove(l->asked[sent], l->asked[a], WIRE_ID_LEN);
            sent++;
        }
        free(mine);
    }
    l->n_asked = sent;
    if (sent == 0) {
        lookup_finish(l);
        return;
    }
    sn_timer_ms(l->deadline, CREDIT_LOOKUP_MS);
}

static void on_ledger_answer(struct sn_credit *c, struct sn_conn *from, const struct msg_credit *a)
{
    for (struct lookup *l = c->lookups; l; l = l->next) {
        if (l->query_id != a->query_id)
            continue;
        size_t i = 0;
        while (i < l->n_asked && memcmp(l->asked[i], from->id, WIRE_ID_LEN) != 0)
            i++;
        if (i == l->n_asked)
            return; /* not asked, or answered already */
        memcpy(l->asked[i], l->asked[--l->n_asked], WIRE_ID_LEN);
        for (size_t r = 0; r < a->n_records; r++)
            for (size_t k = 0; k < l->n; k++)
                if (memcmp(l->recs[k].peer_id, a->records[r].peer_id, WIRE_ID_LEN) == 0)
                    merge_record(&l->recs[k], &a->records[r]);
        if (l->n_asked == 0)
            lookup_finish(l);
        return;
    }
}

static void on_ledger_query(struct sn_credit *c, struct sn_conn *from, const struct msg_credit *q)
{
    struct msg_credit_record recs[MSG_MAX_CREDIT_IDS];
    for (size_t i = 0; i < q->n_peer_ids; i++)
        sn_ledger_get(c->ledger, q->peer_ids[i], &recs[i]);
    struct msg m = {.type = MSG_LEDGER_ANSWER};
    m.u.ledger_answer =
        (struct msg_credit){.query_id = q->query_id, .records = recs, .n_records = q->n_peer_ids};
    link_send(from->link, &m);
}

/* ---- receipts in -------------------------------------------------------------------------- */

static size_t items_per_frame(const struct sn_ctx *d)
{
    size_t each = MSG_RECEIPT_WIRE_SIZE + 3;
    size_t n = d->limits.max_frame > 64 ? (d->limits.max_frame - 64) / each : 1;
    return n == 0 ? 1 : n > MSG_MAX_RECEIPTS ? MSG_MAX_RECEIPTS : n;
}

static void outbox_flush(struct sn_credit *c)
{
    for (size_t i = 0; i < c->n_out; i++) {
        struct outbox *o = &c->out[i];
        if (o->n == 0)
            continue;
        struct msg m = {.type = MSG_LEDGER_UPDATE};
        m.u.ledger_update = (struct msg_ledger_update){.items = o->items, .n_items = o->n};
        if (sn_fed_send(c->d, o->to, &m) == 0)
            c->ct.updates_sent++;
        o->n = 0;
    }
    c->n_out = 0;
}

static void outbox_add(struct sn_credit *c, const uint8_t to[WIRE_ID_LEN],
                       const struct msg_ledger_item *it)
{
    struct outbox *o = NULL;
    for (size_t i = 0; i < c->n_out && !o; i++)
        if (memcmp(c->out[i].to, to, WIRE_ID_LEN) == 0)
            o = &c->out[i];
    if (o == NULL) {
        if (c->n_out == CREDIT_OUTBOXES)
            outbox_flush(c);
        o = &c->out[c->n_out++];
        memcpy(o->to, to, WIRE_ID_LEN);
        o->n = 0;
    }
    o->items[o->n++] = *it;
    if (o->n >= items_per_frame(c->d)) {
        struct msg m = {.type = MSG_LEDGER_UPDATE};
        m.u.ledger_update = (struct msg_ledger_update){.items = o->items, .n_items = o->n};
        if (sn_fed_send(c->d, o->to, &m) == 0)
            c->ct.updates_sent++;
        o->n = 0;
    }
}

/* Weigh and send each receipt to the holders of both its records. */
static void dispatch(struct sn_credit *c, const struct msg_receipt *r, uint16_t weight)
{
    const uint8_t *hs[SN_RING_MAX_REPLICAS], *hd[SN_RING_MAX_REPLICAS];
    size_t ns = credit_holders(c, &c->view, r->source_id, hs),
           nd = credit_holders(c, &c->view, r->downloader_id, hd);
    const uint8_t *dest[2 * SN_RING_MAX_REPLICAS];
    uint8_t sides[2 * SN_RING_MAX_REPLICAS];
    size_t n = 0;
    for (size_t i = 0; i < ns; i++) {
        dest[n] = hs[i];
        sides[n++] = MSG_LEDGER_SIDE_SOURCE;
    }
    for (size_t i = 0; i < nd; i++) {
        size_t j = 0;
        while (j < n && memcmp(dest[j], hd[i], WIRE_ID_LEN) != 0)
            j++;
        if (j == n) {
            dest[n] = hd[i];
            sides[n++] = 0;
        }
        sides[j] |= MSG_LEDGER_SIDE_DOWNLOADER;
    }
    uint64_t now_s = sova_wall_ms() / 1000;
    for (size_t i = 0; i < n; i++) {
        if (credit_is_self(c, dest[i])) {
            enum receipt_verdict v = sn_ledger_apply(c->ledger, r, weight, sides[i], now_s);
            if (v != RECEIPT_OK)
                log_debug("credit", "receipt seq %llu: %s", (unsigned long long)r->seq,
                          receipt_verdict_name(v));
            continue;
        }
        struct msg_ledger_item it = {.receipt = *r, .weight = weight, .sides = sides[i]};
        outbox_add(c, dest[i], &it);
    }
    credit_cache_forget(c, r->source_id);
    credit_cache_forget(c, r->downloader_id);
}

static void ingest_weighed(struct sn_ctx *d, const struct msg_credit_record *recs, size_t n,
                           void *arg)
{
    struct sn_credit *c = d->credit;
    struct ingest *in = arg;
    (void)recs, (void)n; /* they are in the cache now */
    for (size_t i = 0; i < in->n; i++) {
        const struct msg_credit_record *s = credit_cache_get(c, in->rs[i].downloader_id);
        uint16_t w = s ? sn_credit_weight(s->uploaded, s->uptime_s) : SN_CREDIT_FRESH_WEIGHT;
        dispatch(c, &in->rs[i], w);
    }
    outbox_flush(c);
    c->ct.ingested += in->n;
    free(in->rs);
    free(in);
}

static void count_rejected(struct sn_credit *c, struct sn_conn *p, enum receipt_verdict v,
                           const struct msg_receipt *r)
{
    c->ct.rejected[v]++;
    char who[NODE_ID_STR_LEN + 1];
    node_id_format(r->downloader_id, who);
    log_info("credit", "%s: receipt from %.*s refused: %s (seq %llu, %llu bytes)",
             link_name(p->link), NODE_ID_SHORT_LEN, who, receipt_verdict_name(v),
             (unsigned long long)r->seq, (unsigned long long)r->bytes);
}

static void on_receipts(struct sn_credit *c, struct sn_conn *p, const struct msg_receipts *m)
{
    uint64_t now_ms = link_now_ms(), now_s = sova_wall_ms() / 1000;
    if (p->lim.receipts.last_ms == 0)
        sn_rate_init(&p->lim.receipts, CREDIT_RECEIPT_RATE, CREDIT_RECEIPT_BURST, now_ms);
    if (sn_rate_take(&p->lim.receipts, m->n_receipts, now_ms, NULL) != 0) {
        c->ct.rate_limited += m->n_receipts;
        return;
    }
    struct ingest *in = calloc(1, sizeof(*in));
    if (in == NULL || (in->rs = malloc(m->n_receipts * sizeof(*in->rs))) == NULL) {
        free(in);
        return;
    }
    uint8_t ask[MSG_MAX_RECEIPTS][WIRE_ID_LEN];
    size_t n_ask = 0;
    for (size_t i = 0; i < m->n_receipts; i++) {
        const struct msg_receipt *r = &m->receipts[i];
        enum receipt_verdict v = RECEIPT_OK;
        if (memcmp(r->source_id, p->id, WIRE_ID_LEN) != 0 ||
            memcmp(r->downloader_id, r->source_id, WIRE_ID_LEN) == 0)
            v = RECEIPT_MISDIRECTED;
        else if (r->time_s + SN_LEDGER_MAX_AGE_S < now_s ||
                 r->time_s > now_s + SN_LEDGER_MAX_FUTURE_S)
            v = RECEIPT_STALE;
        else if ((v = receipt_check_size(r)) == RECEIPT_OK) /* bytes <= the size the ID binds */
            v = receipt_verify(r);
        if (v != RECEIPT_OK) {
            count_rejected(c, p, v, r);
            continue;
        }
        in->rs[in->n++] = *r;
        bool known = credit_cache_get(c, r->downloader_id) != NULL;
        for (size_t j = 0; j < n_ask && !known; j++)
            known = memcmp(ask[j], r->downloader_id, WIRE_ID_LEN) == 0;
        if (!known)
            memcpy(ask[n_ask++], r->downloader_id, WIRE_ID_LEN);
    }
    if (in->n == 0) {
        free(in->rs);
        free(in);
        return;
    }
    if (n_ask == 0) {
        ingest_weighed(c->d, NULL, 0, in);
        return;
    }
    /* n_ask <= MSG_MAX_RECEIPTS = 2 x MSG_MAX_CREDIT_IDS: at most two reads;
     * the second one finishes the ingest (both fill the cache). */
    if (n_ask > MSG_MAX_CREDIT_IDS) {
        credit_lookup_start(c, (const uint8_t(*)[WIRE_ID_LEN])ask, MSG_MAX_CREDIT_IDS, NULL, NULL);
        credit_lookup_start(c, (const uint8_t(*)[WIRE_ID_LEN])ask + MSG_MAX_CREDIT_IDS,
                            n_ask - MSG_MAX_CREDIT_IDS, ingest_weighed, in);
        return;
    }
    credit_lookup_start(c, (const uint8_t(*)[WIRE_ID_LEN])ask, n_ask, ingest_weighed, in);
}

/* ---- CREDIT from a peer --------------------------------------------------------------------- */

static void peer_answer(struct sn_ctx *d, const struct msg_credit_record *recs, size_t n, void *arg)
{
    struct peer_query *q = arg;
    (void)d;
    if (q->p != NULL) {
        struct msg m = {.type = MSG_CREDIT};
        m.u.credit = (struct msg_credit){.kind = MSG_CREDIT_ANSWER,
                                         .query_id = q->query_id,
                                         .records = (struct msg_credit_record *)recs,
                                         .n_records = n};
        link_send(q->p->link, &m);
    }
    free(q);
}

static void on_credit(struct sn_credit *c, struct sn_conn *p, const struct msg_credit *q)
{
    if (q->kind != MSG_CREDIT_QUERY) {
        link_send_error(p->link, MSG_ERR_PROTOCOL, MSG_CREDIT, "answers go to peers only");
        return;
    }
    uint64_t wait = 0;
    if (sn_rate_take(&p->lim.search, 1, link_now_ms(), &wait) != 0) {
        sn_conn_rate_limited(p, MSG_CREDIT, wait, "too many credit queries");
        return;
    }
    struct peer_query *pq = calloc(1, sizeof(*pq));
    if (pq == NULL)
        return;
    pq->p = p;
    pq->query_id = q->query_id;
    credit_lookup_start(c, (const uint8_t(*)[WIRE_ID_LEN])q->peer_ids, q->n_peer_ids, peer_answer,
                        pq);
}

void sn_credit_on_peer_message(struct sn_ctx *d, struct sn_conn *p, const struct msg *m)
{
    if (m->type == MSG_RECEIPTS)
        on_receipts(d->credit, p, &m->u.receipts);
    else if (m->type == MSG_CREDIT)
        on_credit(d->credit, p, &m->u.credit);
}

/* ---- supernode messages --------------------------------------------------------------------- */

static void on_ledger_update(struct sn_credit *c, const struct msg_ledger_update *u)
{
    uint64_t now_s = sova_wall_ms() / 1000;
    for (size_t i = 0; i < u->n_items; i++) {
        const struct msg_ledger_item *it = &u->items[i];
        sn_ledger_apply(c->ledger, &it->receipt, it->weight, it->sides, now_s);
        credit_cache_forget(c, it->receipt.source_id);
        credit_cache_forget(c, it->receipt.downloader_id);
    }
}

void sn_credit_on_fed_message(struct sn_ctx *d, struct sn_conn *p, const struct msg *m)
{
    struct sn_credit *c = d->credit;
    switch (m->type) {
    case MSG_LEDGER_QUERY:
        on_ledger_query(c, p, &m->u.ledger_query);
        return;
    case MSG_LEDGER_ANSWER:
        on_ledger_answer(c, p, &m->u.ledger_answer);
        return;
    case MSG_LEDGER_UPDATE:
        on_ledger_update(c, &m->u.ledger_update);
        return;
    case MSG_LEDGER_UPTIME:
        for (size_t i = 0; i < m->u.ledger_uptime.n_reports; i++) {
            const struct msg_uptime_report *r = &m->u.ledger_uptime.reports[i];
            sn_ledger_uptime(c->ledger, r->peer_id, p->id, r->start_ms, r->seconds);
        }
        return;
    case MSG_LEDGER_PUT:
        c->ct.puts_received++;
        sn_ledger_merge(c->ledger, &m->u.ledger_put);
        credit_cache_forget(c, m->u.ledger_put.peer_id);
        return;
    default:
        return;
    }
}

void sn_credit_conn_gone(struct sn_ctx *d, struct sn_conn *p)
{
    struct sn_credit *c = d->credit;
    if (c == NULL)
        return;
    for (struct lookup *l = c->lookups; l; l = l->next)
        if (l->fn == peer_answer && ((struct peer_query *)l->arg)->p == p)
            ((struct peer_query *)l->arg)->p = NULL;
    credit_session_end(c, p);
}

/* ---- life and status --------------------------------------------------------------------------
 */

int sn_credit_start(struct sn_ctx *d)
{
    struct sn_credit *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return SOVA_ERR_NOMEM;
    d->credit = c;
    c->d = d;
    c->replicas = (unsigned)d->s->ledger_replicas;
    struct sn_ledger_config cfg = {.max_records = d->s->ledger_max_records,
                                   .cap = d->s->credit_cap_mb * 1024 * 1024};
    if (RAND_bytes(cfg.hash_key, sizeof(cfg.hash_key)) != 1)
        return SOVA_ERR_CRYPTO;
    struct event_base *base = evloop_base(d->loop);
    c->ledger = sn_ledger_new(&cfg);
    c->cache = calloc(CREDIT_CACHE_SLOTS, sizeof(*c->cache));
    c->out = calloc(CREDIT_OUTBOXES, sizeof(*c->out));
    c->up = calloc(CREDIT_OUTBOXES, sizeof(*c->up));
    c->pass_timer = evtimer_new(base, credit_pass_timer, c);
    c->uptime_timer = evtimer_new(base, credit_uptime_tick, c);
    c->relay_timer = evtimer_new(base, credit_relay_tick, c);
    d->ext_free[SN_EXT_CREDIT] = free;
    if (!c->ledger || !c->cache || !c->out || !c->up || !c->pass_timer || !c->uptime_timer ||
        !c->relay_timer || credit_view_compute(c, &c->view) != 0)
        return SOVA_ERR_NOMEM;
    sn_timer_ms(c->uptime_timer, CREDIT_UPTIME_MS);
    sn_timer_ms(c->relay_timer, CREDIT_RELAY_PERIOD_MS);
    return 0;
}

void sn_credit_stop(struct sn_ctx *d)
{
    struct sn_credit *c = d->credit;
    if (c == NULL)
        return;
    while (c->lookups) {
        struct lookup *l = c->lookups;
        if (l->fn == peer_answer || l->fn == ingest_weighed) {
            if (l->fn == ingest_weighed)
                free(((struct ingest *)l->arg)->rs);
            free(l->arg);
        }
        lookup_free(l);
    }
    credit_pass_end(c);
    credit_view_clear(&c->view);
    if (c->pass_timer)
        event_free(c->pass_timer);
    if (c->uptime_timer)
        event_free(c->uptime_timer);
    if (c->relay_timer)
        event_free(c->relay_timer);
    sn_ledger_free(c->ledger);
    free(c->cache);
    free(c->out);
    free(c->up);
    free(c);
    d->credit = NULL;
}

void sn_credit_settings_changed(struct sn_ctx *d)
{
    if (d->credit)
        sn_ledger_set_cap(d->credit->ledger, d->s->credit_cap_mb * 1024 * 1024);
}

json_t *sn_credit_status_json(const struct sn_ctx *d)
{
    const struct sn_credit *c = d->credit;
    struct sn_ledger_stats st;
    sn_ledger_stats(c->ledger, &st);
    json_t *rejected = json_object();
    for (int v = RECEIPT_FORGED; v < RECEIPT_VERDICTS; v++)
        json_object_set_new(rejected, receipt_verdict_name(v),
                            json_integer((json_int_t)(c->ct.rejected[v] + st.rejected[v])));
    return json_pack(
        "{s:I, s:I, s:i, s:I, s:I, s:{s:I, s:I, s:o, s:I}, s:{s:I, s:I, s:I, s:I, "
        "s:I}, s:I}",
        "records", (json_int_t)st.records, "entries", (json_int_t)st.entries, "replicas",
        (int)c->replicas, "supernodes", (json_int_t)c->view.n, "max_records",
        (json_int_t)d->s->ledger_max_records, "receipts", "ingested", (json_int_t)c->ct.ingested,
        "counted", (json_int_t)st.applied, "rejected", rejected, "rate_limited",
        (json_int_t)c->ct.rate_limited, "sync", "updates_sent", (json_int_t)c->ct.updates_sent,
        "records_sent", (json_int_t)c->ct.puts_sent, "records_received",
        (json_int_t)c->ct.puts_received, "lookups", (json_int_t)c->ct.lookups, "lookups_timed_out",
        (json_int_t)c->ct.lookups_timed_out, "dropped_full", (json_int_t)st.dropped_full);
}
