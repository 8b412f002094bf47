/* sn_credit_net.c - the credit ledger on the wire (docs/CREDITS.md).
 *
 *  - Receipts in: a source's RECEIPTS are checked here (about the sender,
 *    key, signature, date); for the good ones the downloader's standing is
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
 * The ledger itself (sn_ledger.c) is in memory: a supernode that restarts
 * starts empty and is refilled by the others' pushes when it links up. */
#include "err.h"
#include "log.h"
#include "receipt.h"
#include "sn_credit.h"
#include "sn_internal.h"
#include "sn_ledger.h"
#include "sn_ring.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CREDIT_LOOKUP_MS       1000           /* a read waits this long for the holders */
#define CREDIT_CACHE_MS        10000          /* standings used to weigh receipts are this fresh */
#define CREDIT_CACHE_SLOTS     4096           /* direct-mapped by ID */
#define CREDIT_MAX_LOOKUPS     1024           /* reads in flight */
#define CREDIT_UPTIME_MS       10000          /* sessions reported this often */
#define CREDIT_PASS_DELAY_MS   300            /* membership changes gathered before a pass */
#define CREDIT_PASS_BATCH      256            /* records per loop turn */
#define CREDIT_PUSH_HIGH       (1024u * 1024) /* a pass waits while a link queues this much */
#define CREDIT_PUSH_RETRY_MS   50
#define CREDIT_RELAY_PERIOD_MS 2000
#define CREDIT_RECEIPT_RATE    256  /* receipts a second one peer may hand in */
#define CREDIT_RECEIPT_BURST   1024 /* ... in bursts of this */
#define CREDIT_OUTBOXES        (2 * SN_RING_MAX_REPLICAS)
#define CREDIT_MAX_FRESH       64 /* supernodes linked up since the last pass */

typedef void lookup_done_fn(struct sn_daemon *d, const struct msg_credit_record *recs, size_t n,
                            void *arg);

struct lookup {
    struct sn_credit *c;
    struct lookup *next;
    uint64_t query_id;
    uint8_t (*ids)[WIRE_ID_LEN];
    struct msg_credit_record *recs;
    size_t n;
    uint8_t (*asked)[WIRE_ID_LEN]; /* supernodes that owe an answer */
    size_t n_asked;
    struct event *deadline;
    lookup_done_fn *fn;
    void *arg;
};

struct cache_slot {
    struct msg_credit_record rec;
    uint64_t at_ms; /* 0: empty */
};

struct view {
    uint8_t (*ids)[WIRE_ID_LEN];
    size_t n;
};

struct outbox {
    uint8_t to[WIRE_ID_LEN];
    struct msg_ledger_item items[MSG_MAX_RECEIPTS];
    size_t n;
};

struct uptime_box { /* session reports for one holder */
    uint8_t to[WIRE_ID_LEN];
    struct msg_uptime_report reports[MSG_MAX_CREDIT_IDS];
    size_t n;
};

struct peer_query { /* a CREDIT query of an attached peer being answered */
    struct sn_peer *p;
    uint64_t query_id;
};

struct ingest { /* receipts waiting for their downloaders' standing */
    struct msg_receipt *rs;
    size_t n;
};

struct counters {
    uint64_t ingested, rate_limited, rejected[RECEIPT_VERDICTS];
    uint64_t lookups, lookups_timed_out, puts_sent, puts_received, updates_sent;
};

struct sn_credit {
    struct sn_daemon *d;
    struct sn_ledger *ledger;
    unsigned replicas;
    struct view view;
    struct lookup *lookups;
    size_t n_lookups;
    uint64_t next_query;
    struct cache_slot *cache;
    struct outbox *out;
    size_t n_out;
    struct uptime_box *up;
    size_t n_up;
    /* rebalancing */
    struct view pass_old;
    bool pass_running, pass_has_old;
    uint8_t (*pass_keys)[WIRE_ID_LEN];
    size_t pass_n, pass_at;
    uint8_t fresh[CREDIT_MAX_FRESH][WIRE_ID_LEN];
    size_t n_fresh;
    struct event *pass_timer, *uptime_timer, *relay_timer;
    struct counters ct;
};

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void set_timer_ms(struct event *ev, uint64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

static const uint8_t *self_id(const struct sn_credit *c)
{
    return identity_id(c->d->id);
}

/* ---- the view and the holders ----------------------------------------------------- */

static int id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, WIRE_ID_LEN);
}

/* This supernode and every member alive or suspect, sorted by ID. */
static int view_compute(struct sn_credit *c, struct view *v)
{
    struct sn_member *m = c->d->fed.member;
    size_t cap = sn_member_count(m) + 1;
    v->ids = malloc(cap * sizeof(*v->ids));
    v->n = 0;
    if (v->ids == NULL)
        return SOVA_ERR_NOMEM;
    memcpy(v->ids[v->n++], self_id(c), WIRE_ID_LEN);
    struct sn_member_view mv;
    for (size_t i = 0; sn_member_get(m, i, &mv) && v->n < cap; i++)
        if (mv.info.state == MSG_SN_ALIVE || mv.info.state == MSG_SN_SUSPECT)
            memcpy(v->ids[v->n++], mv.info.sn_id, WIRE_ID_LEN);
    qsort(v->ids, v->n, sizeof(*v->ids), id_cmp);
    return 0;
}

static bool view_equal(const struct view *a, const struct view *b)
{
    return a->n == b->n && memcmp(a->ids, b->ids, a->n * sizeof(*a->ids)) == 0;
}

/* Holders of key in v: their IDs (pointers into v), best first. */
static size_t holders(const struct sn_credit *c, const struct view *v,
                      const uint8_t key[WIRE_ID_LEN], const uint8_t *out[SN_RING_MAX_REPLICAS])
{
    size_t idx[SN_RING_MAX_REPLICAS];
    size_t n = sn_ring_holders(key, (const uint8_t(*)[WIRE_ID_LEN])v->ids, v->n, c->replicas, idx);
    for (size_t i = 0; i < n; i++)
        out[i] = v->ids[idx[i]];
    return n;
}

static bool is_self(const struct sn_credit *c, const uint8_t *id)
{
    return memcmp(id, self_id(c), WIRE_ID_LEN) == 0;
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

static const struct msg_credit_record *cache_get(struct sn_credit *c, const uint8_t id[WIRE_ID_LEN])
{
    struct cache_slot *s = cache_slot(c, id);
    if (s->at_ms == 0 || link_now_ms() - s->at_ms > CREDIT_CACHE_MS ||
        memcmp(s->rec.peer_id, id, WIRE_ID_LEN) != 0)
        return NULL;
    return &s->rec;
}

static void cache_forget(struct sn_credit *c, const uint8_t id[WIRE_ID_LEN])
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
static void lookup_start(struct sn_credit *c, const uint8_t (*ids)[WIRE_ID_LEN], size_t n,
                         lookup_done_fn *fn, void *arg)
{
    struct sn_daemon *d = c->d;
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
        size_t k = holders(c, &c->view, ids[i], h);
        for (size_t j = 0; j < k; j++) {
            if (is_self(c, h[j])) {
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
            size_t nh = holders(c, &c->view, ids[i], h);
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
    set_timer_ms(l->deadline, CREDIT_LOOKUP_MS);
}

static void on_ledger_answer(struct sn_credit *c, struct sn_peer *from, const struct msg_credit *a)
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

static void on_ledger_query(struct sn_credit *c, struct sn_peer *from, const struct msg_credit *q)
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

static size_t items_per_frame(const struct sn_daemon *d)
{
    size_t each = 3 * WIRE_ID_LEN + 3 * 8 + MSG_RECEIPT_KEY_LEN + MSG_RECEIPT_SIG_LEN + 3;
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
    size_t ns = holders(c, &c->view, r->source_id, hs),
           nd = holders(c, &c->view, r->downloader_id, hd);
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
    uint64_t now_s = (uint64_t)time(NULL);
    for (size_t i = 0; i < n; i++) {
        if (is_self(c, dest[i])) {
            enum receipt_verdict v = sn_ledger_apply(c->ledger, r, weight, sides[i], now_s);
            if (v != RECEIPT_OK)
                log_debug("credit", "receipt seq %llu: %s", (unsigned long long)r->seq,
                          receipt_verdict_name(v));
            continue;
        }
        struct msg_ledger_item it = {.receipt = *r, .weight = weight, .sides = sides[i]};
        outbox_add(c, dest[i], &it);
    }
    cache_forget(c, r->source_id);
    cache_forget(c, r->downloader_id);
}

static void ingest_weighed(struct sn_daemon *d, const struct msg_credit_record *recs, size_t n,
                           void *arg)
{
    struct sn_credit *c = d->credit;
    struct ingest *in = arg;
    (void)recs, (void)n; /* they are in the cache now */
    for (size_t i = 0; i < in->n; i++) {
        const struct msg_credit_record *s = cache_get(c, in->rs[i].downloader_id);
        uint16_t w = s ? sn_credit_weight(s->uploaded, s->uptime_s) : SN_CREDIT_FRESH_WEIGHT;
        dispatch(c, &in->rs[i], w);
    }
    outbox_flush(c);
    c->ct.ingested += in->n;
    free(in->rs);
    free(in);
}

static void count_rejected(struct sn_credit *c, struct sn_peer *p, enum receipt_verdict v,
                           const struct msg_receipt *r)
{
    c->ct.rejected[v]++;
    char who[NODE_ID_STR_LEN + 1];
    node_id_format(r->downloader_id, who);
    log_info("credit", "%s: receipt from %.*s refused: %s (seq %llu, %llu bytes)",
             link_name(p->link), NODE_ID_SHORT_LEN, who, receipt_verdict_name(v),
             (unsigned long long)r->seq, (unsigned long long)r->bytes);
}

static void on_receipts(struct sn_credit *c, struct sn_peer *p, const struct msg_receipts *m)
{
    uint64_t now_ms = link_now_ms(), now_s = (uint64_t)time(NULL);
    if (p->receipt_rate.last_ms == 0)
        sn_rate_init(&p->receipt_rate, CREDIT_RECEIPT_RATE, CREDIT_RECEIPT_BURST, now_ms);
    if (sn_rate_take(&p->receipt_rate, m->n_receipts, now_ms, NULL) != 0) {
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
        else
            v = receipt_verify(r);
        if (v != RECEIPT_OK) {
            count_rejected(c, p, v, r);
            continue;
        }
        in->rs[in->n++] = *r;
        bool known = cache_get(c, r->downloader_id) != NULL;
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
        lookup_start(c, (const uint8_t(*)[WIRE_ID_LEN])ask, MSG_MAX_CREDIT_IDS, NULL, NULL);
        lookup_start(c, (const uint8_t(*)[WIRE_ID_LEN])ask + MSG_MAX_CREDIT_IDS,
                     n_ask - MSG_MAX_CREDIT_IDS, ingest_weighed, in);
        return;
    }
    lookup_start(c, (const uint8_t(*)[WIRE_ID_LEN])ask, n_ask, ingest_weighed, in);
}

/* ---- CREDIT from a peer --------------------------------------------------------------------- */

static void peer_answer(struct sn_daemon *d, const struct msg_credit_record *recs, size_t n,
                        void *arg)
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

static void on_credit(struct sn_credit *c, struct sn_peer *p, const struct msg_credit *q)
{
    if (q->kind != MSG_CREDIT_QUERY) {
        link_send_error(p->link, MSG_ERR_PROTOCOL, MSG_CREDIT, "answers go to peers only");
        return;
    }
    uint64_t wait = 0;
    if (sn_rate_take(&p->search_rate, 1, link_now_ms(), &wait) != 0) {
        c->d->rate_limited++;
        struct msg m = {.type = MSG_ERROR};
        m.u.error = (struct msg_error){.code = MSG_ERR_RATE_LIMITED,
                                       .offending_type = MSG_CREDIT,
                                       .text = wire_str_from("too many credit queries"),
                                       .has_retry_after = true,
                                       .retry_after_ms = (uint32_t)(wait ? wait : 1)};
        link_send(p->link, &m);
        return;
    }
    struct peer_query *pq = calloc(1, sizeof(*pq));
    if (pq == NULL)
        return;
    pq->p = p;
    pq->query_id = q->query_id;
    lookup_start(c, (const uint8_t(*)[WIRE_ID_LEN])q->peer_ids, q->n_peer_ids, peer_answer, pq);
}

void sn_credit_peer_message(struct sn_daemon *d, struct sn_peer *p, const struct msg *m)
{
    if (m->type == MSG_RECEIPTS)
        on_receipts(d->credit, p, &m->u.receipts);
    else if (m->type == MSG_CREDIT)
        on_credit(d->credit, p, &m->u.credit);
}

/* ---- supernode messages --------------------------------------------------------------------- */

static void on_ledger_update(struct sn_credit *c, const struct msg_ledger_update *u)
{
    uint64_t now_s = (uint64_t)time(NULL);
    for (size_t i = 0; i < u->n_items; i++) {
        const struct msg_ledger_item *it = &u->items[i];
        sn_ledger_apply(c->ledger, &it->receipt, it->weight, it->sides, now_s);
        cache_forget(c, it->receipt.source_id);
        cache_forget(c, it->receipt.downloader_id);
    }
}

bool sn_credit_fed_message(struct sn_daemon *d, struct sn_peer *p, const struct msg *m)
{
    struct sn_credit *c = d->credit;
    switch (m->type) {
    case MSG_LEDGER_QUERY:
        on_ledger_query(c, p, &m->u.ledger_query);
        return true;
    case MSG_LEDGER_ANSWER:
        on_ledger_answer(c, p, &m->u.ledger_answer);
        return true;
    case MSG_LEDGER_UPDATE:
        on_ledger_update(c, &m->u.ledger_update);
        return true;
    case MSG_LEDGER_UPTIME:
        for (size_t i = 0; i < m->u.ledger_uptime.n_reports; i++) {
            const struct msg_uptime_report *r = &m->u.ledger_uptime.reports[i];
            sn_ledger_uptime(c->ledger, r->peer_id, p->id, r->start_ms, r->seconds);
        }
        return true;
    case MSG_LEDGER_PUT:
        c->ct.puts_received++;
        sn_ledger_merge(c->ledger, &m->u.ledger_put);
        cache_forget(c, m->u.ledger_put.peer_id);
        return true;
    default:
        return false;
    }
}

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

/* Tell the holders of p's record how long its primary session has lasted
 * (batched: uptime_flush() sends). */
static void report_uptime(struct sn_credit *c, struct sn_peer *p)
{
    uint64_t now = wall_ms();
    struct msg_uptime_report rep = {
        .start_ms = p->credit_since_ms,
        .seconds = now > p->credit_since_ms ? (now - p->credit_since_ms) / 1000 : 0};
    memcpy(rep.peer_id, p->id, WIRE_ID_LEN);
    const uint8_t *h[SN_RING_MAX_REPLICAS];
    size_t n = holders(c, &c->view, p->id, h);
    for (size_t i = 0; i < n; i++) {
        if (is_self(c, h[i])) {
            sn_ledger_uptime(c->ledger, p->id, h[i], rep.start_ms, rep.seconds);
            continue;
        }
        uptime_add(c, h[i], &rep);
    }
}

static void on_uptime_tick(evutil_socket_t fd, short what, void *arg)
{
    struct sn_credit *c = arg;
    (void)fd, (void)what;
    for (struct link *l = link_group_first(&c->d->links); l; l = link_group_next(l)) {
        struct sn_peer *p = link_arg(l);
        if (link_remote_role(l) != MSG_ROLE_PEER)
            continue;
        if (p->indexed && p->credit_since_ms == 0)
            p->credit_since_ms = wall_ms();
        if (p->credit_since_ms == 0)
            continue;
        report_uptime(c, p);
        if (!p->indexed)
            p->credit_since_ms = 0; /* the session ended (a backup now) */
    }
    uptime_flush(c);
    set_timer_ms(c->uptime_timer, CREDIT_UPTIME_MS);
}

void sn_credit_peer_gone(struct sn_daemon *d, struct sn_peer *p)
{
    struct sn_credit *c = d->credit;
    if (c == NULL)
        return;
    for (struct lookup *l = c->lookups; l; l = l->next)
        if (l->fn == peer_answer && ((struct peer_query *)l->arg)->p == p)
            ((struct peer_query *)l->arg)->p = NULL;
    if (p->credit_since_ms != 0 && link_remote_role(p->link) == MSG_ROLE_PEER) {
        report_uptime(c, p);
        uptime_flush(c);
    }
}

/* ---- moving records -------------------------------------------------------------------------- */

static bool in_list(const uint8_t *const *list, size_t n, const uint8_t *id)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(list[i], id, WIRE_ID_LEN) == 0)
            return true;
    return false;
}

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
    struct sn_peer *p = sn_fed_link(c->d, to);
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

/* One record: push it where it is new, hand it away if it is not ours.
 * False: a link is busy, come back to this record later. */
static bool pass_one(struct sn_credit *c, const uint8_t key[WIRE_ID_LEN])
{
    const uint8_t *now[SN_RING_MAX_REPLICAS], *before[SN_RING_MAX_REPLICAS];
    size_t nn = holders(c, &c->view, key, now);
    size_t nb = c->pass_has_old ? holders(c, &c->pass_old, key, before) : 0;
    bool mine = in_list(now, nn, self_id(c)), all_sent = true;
    for (size_t i = 0; i < nn; i++) {
        if (is_self(c, now[i]))
            continue;
        if (mine && in_list(before, nb, now[i]) && !is_fresh(c, now[i]))
            continue; /* it has it already */
        int rc = push(c, key, now[i]);
        if (rc < 0)
            return false;
        all_sent &= rc == 1;
    }
    if (!mine && all_sent)
        sn_ledger_remove(c->ledger, key);
    return true;
}

static void pass_end(struct sn_credit *c)
{
    free(c->pass_keys);
    c->pass_keys = NULL;
    c->pass_n = c->pass_at = 0;
    free(c->pass_old.ids);
    c->pass_old = (struct view){0};
    c->pass_has_old = false;
    c->pass_running = false;
    c->n_fresh = 0;
}

static void on_pass_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sn_credit *c = arg;
    (void)fd, (void)what;
    if (!c->pass_running) {
        /* Start (or restart) a pass over the view as it is now. */
        struct view v;
        if (view_compute(c, &v) != 0)
            return;
        if (!c->pass_has_old) {
            c->pass_old = c->view; /* what the records were placed by */
            c->pass_has_old = true;
        } else {
            free(c->view.ids);
        }
        c->view = v;
        if (view_equal(&c->pass_old, &c->view) && c->n_fresh == 0) {
            pass_end(c);
            return;
        }
        free(c->pass_keys);
        c->pass_keys = sn_ledger_keys(c->ledger, &c->pass_n);
        c->pass_at = 0;
        c->pass_running = true;
        log_info("credit", "ledger: %zu records over %zu supernodes (R %u): rebalancing", c->pass_n,
                 c->view.n, c->replicas);
    }
    for (size_t k = 0; k < CREDIT_PASS_BATCH && c->pass_at < c->pass_n; k++) {
        if (!pass_one(c, c->pass_keys[c->pass_at])) {
            set_timer_ms(c->pass_timer, CREDIT_PUSH_RETRY_MS);
            return;
        }
        c->pass_at++;
    }
    if (c->pass_at < c->pass_n) {
        set_timer_ms(c->pass_timer, 0);
        return;
    }
    pass_end(c);
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
    set_timer_ms(c->pass_timer, CREDIT_PASS_DELAY_MS);
}

void sn_credit_membership_changed(struct sn_daemon *d)
{
    if (d->credit != NULL)
        pass_request(d->credit);
}

void sn_credit_link_up(struct sn_daemon *d, struct sn_peer *p)
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

static void on_relay_tick(evutil_socket_t fd, short what, void *arg)
{
    struct sn_credit *c = arg;
    struct sn_daemon *d = c->d;
    (void)fd, (void)what;
    set_timer_ms(c->relay_timer, CREDIT_RELAY_PERIOD_MS);
    uint64_t total = d->s->relay_total_kbps * 1000;
    if (total == 0)
        return; /* nothing to share */
    enum { MAX_SHARED = 1024 };
    struct sn_peer **peers = malloc(MAX_SHARED * sizeof(*peers));
    uint64_t *credits = malloc(MAX_SHARED * sizeof(*credits)),
             *shares = malloc(MAX_SHARED * sizeof(*shares));
    uint8_t(*ask)[WIRE_ID_LEN] = malloc(MSG_MAX_CREDIT_IDS * sizeof(*ask));
    size_t n = 0, n_ask = 0;
    for (struct link *l = link_group_first(&d->links); l && peers && credits && shares && ask;
         l = link_group_next(l)) {
        struct sn_peer *p = link_arg(l);
        if (link_remote_role(l) != MSG_ROLE_PEER || p->relay_circuits == 0 || n == MAX_SHARED)
            continue;
        const struct msg_credit_record *r = cache_get(c, p->id);
        if (r == NULL && n_ask < MSG_MAX_CREDIT_IDS)
            memcpy(ask[n_ask++], p->id, WIRE_ID_LEN);
        peers[n] = p;
        credits[n++] = r ? r->credit : 0;
    }
    if (n > 0) {
        sn_credit_relay_shares(credits, n, total, (unsigned)d->s->relay_credit_floor_pct, shares);
        uint64_t now = link_now_ms(), cap = d->s->relay_peer_kbps * 1000;
        for (size_t i = 0; i < n; i++) {
            uint64_t rate = cap && cap < shares[i] ? cap : shares[i];
            sn_rate_set(&peers[i]->relay_bucket, rate ? rate : 1,
                        rate / 4 > 65536 ? rate / 4 : 65536, now);
        }
    }
    if (n_ask > 0)
        lookup_start(c, (const uint8_t(*)[WIRE_ID_LEN])ask, n_ask, NULL, NULL);
    free(peers);
    free(credits);
    free(shares);
    free(ask);
}

/* ---- life and status --------------------------------------------------------------------------
 */

int sn_credit_start(struct sn_daemon *d)
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
    c->pass_timer = evtimer_new(base, on_pass_timer, c);
    c->uptime_timer = evtimer_new(base, on_uptime_tick, c);
    c->relay_timer = evtimer_new(base, on_relay_tick, c);
    if (!c->ledger || !c->cache || !c->out || !c->up || !c->pass_timer || !c->uptime_timer ||
        !c->relay_timer || view_compute(c, &c->view) != 0)
        return SOVA_ERR_NOMEM;
    set_timer_ms(c->uptime_timer, CREDIT_UPTIME_MS);
    set_timer_ms(c->relay_timer, CREDIT_RELAY_PERIOD_MS);
    return 0;
}

void sn_credit_stop(struct sn_daemon *d)
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
    pass_end(c);
    free(c->view.ids);
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

void sn_credit_settings_changed(struct sn_daemon *d)
{
    if (d->credit)
        sn_ledger_set_cap(d->credit->ledger, d->s->credit_cap_mb * 1024 * 1024);
}

json_t *sn_credit_status_json(const struct sn_daemon *d)
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
