/* sn_credit_net.c - the credit ledger on the wire (docs/CREDITS.md).
 *
 *  - Receipts in: a source's RECEIPTS are checked here (about the sender,
 *    bytes within the size its file ID commits to, date, key, signature),
 *    and LEDGER_UPDATE takes the good ones to the holders of the source's
 *    and of the downloader's record (applied at once where this supernode
 *    is one).
 *  - Reads: a record is read whole from every holder at once (LEDGER_QUERY,
 *    one LEDGER_ANSWER per record) and the copies merged as replicas merge
 *    (sn_ledger_merge) into a cache of records read, so a holder that is
 *    new, restarted or dead costs nothing but its own answer; one hop, at
 *    most CREDIT_LOOKUP_MS. Credit is then computed here, as seen by the
 *    evaluator that matters (sn_flow.h): for CREDIT, the asking peer.
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
 *    of it: relay-credit-floor-pct equally, the rest by its credit as seen
 *    by the other ends of its circuits.
 *  - Persistence: the records held are kept on disk (sn_ledger_store.h),
 *    written in batches, read back at start.
 * Uptime, moving records and relay shares are in sn_credit_sync.c; REPORT
 * and what ranking asks of credit in sn_credit_reports.c. */
#define SOVA_SN_CREDIT_INTERNAL
#include "clock.h"
#include "err.h"
#include "log.h"
#include "sn_credit.h"
#include "sn_credit_int.h"
#include "sn_fed_links.h"
#include "sn_flow.h"
#include "sn_ledger_store.h"
#include "sn_membership.h"
#include "sova_assert.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
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

/* ---- records read, and what is known of peers ---------------------------------------- */

static struct fresh_slot *fresh_slot(const struct sn_credit *c, const uint8_t id[WIRE_ID_LEN])
{
    return &c->fresh_at[sn_hashtab_siphash(c->hash_key, id, WIRE_ID_LEN) % CREDIT_FRESH_SLOTS];
}

bool credit_is_fresh(const struct sn_credit *c, const uint8_t id[WIRE_ID_LEN])
{
    const struct fresh_slot *s = fresh_slot(c, id);
    return s->at_ms != 0 && link_now_ms() - s->at_ms < CREDIT_CACHE_MS &&
           memcmp(s->id, id, WIRE_ID_LEN) == 0;
}

void credit_fresh_mark(struct sn_credit *c, const uint8_t id[WIRE_ID_LEN])
{
    struct fresh_slot *s = fresh_slot(c, id);
    memcpy(s->id, id, WIRE_ID_LEN);
    s->at_ms = link_now_ms();
}

/* A receipt or a push changed what holders have: read it again next time. */
static void fresh_forget(struct sn_credit *c, const uint8_t id[WIRE_ID_LEN])
{
    struct fresh_slot *s = fresh_slot(c, id);
    if (memcmp(s->id, id, WIRE_ID_LEN) == 0)
        s->at_ms = 0;
}

const struct msg_ledger_put *credit_record(const struct sn_credit *c, const uint8_t id[WIRE_ID_LEN],
                                           struct msg_ledger_put *buf)
{
    return sn_ledger_export(c->records, id, buf) ? buf : NULL;
}

uint64_t credit_seen_by(const struct sn_credit *c, const uint8_t x[WIRE_ID_LEN],
                        const uint8_t e[WIRE_ID_LEN])
{
    struct msg_ledger_put xb, eb;
    const struct msg_ledger_put *xr = credit_record(c, x, &xb), *er = credit_record(c, e, &eb);
    return sn_flow_credit(x, xr, e, er, c->cap);
}

static uint64_t *verified_slot(const struct sn_credit *c, const uint8_t id[WIRE_ID_LEN],
                               uint64_t *tag)
{
    uint64_t h = sn_hashtab_siphash(c->hash_key, id, WIRE_ID_LEN);
    *tag = h | 1; /* never 0: 0 is an empty slot */
    return &c->verified[(h >> 32) % CREDIT_VERIFIED_SLOTS];
}

void credit_verified_add(struct sn_credit *c, const uint8_t id[WIRE_ID_LEN])
{
    uint64_t tag;
    uint64_t *slot = verified_slot(c, id, &tag);
    *slot = tag;
}

bool credit_verified_has(const struct sn_credit *c, const uint8_t id[WIRE_ID_LEN])
{
    uint64_t tag;
    const uint64_t *slot = verified_slot(c, id, &tag);
    return *slot == tag;
}

/* A record arrived (a holder's copy, or ours): into the cache. */
static void cache_merge(struct sn_credit *c, const struct msg_ledger_put *r)
{
    sn_ledger_merge(c->records, r);
    if (r->n_uploads > 0 || r->base_uploaded > 0)
        credit_verified_add(c, r->peer_id);
}

/* ---- reads: ask every holder, merge ----------------------------------------------------- */

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
    free(l->asked);
    free(l);
}

static void lookup_finish(struct lookup *l)
{
    struct sn_credit *c = l->c;
    for (size_t i = 0; i < l->n; i++)
        credit_fresh_mark(c, l->ids[i]);
    if (l->fn)
        l->fn(c->d, l, l->arg);
    lookup_free(l);
}

static void on_lookup_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct lookup *l = arg;
    (void)fd, (void)what;
    l->c->ct.lookups_timed_out++;
    lookup_finish(l);
}

/* Ask holder h for the ids it holds among l's (LEDGER_QUERY frames of at
 * most MSG_MAX_CREDIT_IDS); how many answers it owes, 0 when none went. */
static size_t ask_holder(struct sn_credit *c, struct lookup *l, const uint8_t h[WIRE_ID_LEN])
{
    uint8_t mine[MSG_MAX_CREDIT_IDS][WIRE_ID_LEN];
    size_t k = 0, owed = 0;
    for (size_t i = 0; i <= l->n; i++) {
        if (i < l->n) {
            const uint8_t *hs[SN_RING_MAX_REPLICAS];
            size_t nh = credit_holders(c, &c->view, l->ids[i], hs);
            for (size_t j = 0; j < nh; j++)
                if (memcmp(hs[j], h, WIRE_ID_LEN) == 0)
                    memcpy(mine[k++], l->ids[i], WIRE_ID_LEN);
        }
        if (k == MSG_MAX_CREDIT_IDS || (i == l->n && k > 0)) {
            struct msg m = {.type = MSG_LEDGER_QUERY};
            m.u.ledger_query =
                (struct msg_credit){.query_id = l->query_id, .peer_ids = mine, .n_peer_ids = k};
            if (sn_fed_send(c->d, h, &m) == 0)
                owed += k;
            k = 0;
        }
    }
    return owed;
}

void credit_lookup_start(struct sn_credit *c, const uint8_t (*ids)[WIRE_ID_LEN], size_t n,
                         lookup_done_fn *fn, void *arg)
{
    struct sn_ctx *d = c->d;
    SOVA_ASSERT(n <= CREDIT_MAX_LOOKUP_IDS);
    /* The cache is bounded: when it would grow past its size, it starts
     * again (reads in flight then know less, never something wrong). */
    struct sn_ledger_stats st;
    sn_ledger_stats(c->records, &st);
    if (st.records + n > CREDIT_CACHE_RECORDS) {
        sn_ledger_clear(c->records);
        memset(c->fresh_at, 0, CREDIT_FRESH_SLOTS * sizeof(*c->fresh_at));
        c->ct.cache_resets++;
    }
    struct lookup *l = calloc(1, sizeof(*l));
    if (l != NULL) {
        l->c = c;
        l->ids = malloc((n ? n : 1) * sizeof(*l->ids));
        l->asked = calloc(c->view.n ? c->view.n : 1, sizeof(*l->asked));
        l->deadline = evtimer_new(evloop_base(d->loop), on_lookup_deadline, l);
    }
    if (l == NULL || !l->ids || !l->asked || !l->deadline || c->n_lookups >= CREDIT_MAX_LOOKUPS) {
        if (l)
            lookup_free(l);
        if (fn) { /* nothing more known than the cache holds */
            struct lookup none = {.c = c, .ids = (uint8_t(*)[WIRE_ID_LEN])ids, .n = n};
            fn(d, &none, arg);
        }
        return;
    }
    l->n = n;
    l->fn = fn;
    l->arg = arg;
    l->query_id = ++c->next_query;
    l->next = c->lookups;
    c->lookups = l;
    c->n_lookups++;
    c->ct.lookups++;
    memcpy(l->ids, ids, n * sizeof(*ids));
    /* Our own copies first; then each remote holder once, for its IDs. */
    for (size_t i = 0; i < n; i++) {
        const uint8_t *h[SN_RING_MAX_REPLICAS];
        size_t k = credit_holders(c, &c->view, ids[i], h);
        for (size_t j = 0; j < k; j++) {
            if (credit_is_self(c, h[j])) {
                struct msg_ledger_put mine;
                if (sn_ledger_export(c->ledger, ids[i], &mine))
                    cache_merge(c, &mine);
                continue;
            }
            bool dup = false;
            for (size_t a = 0; a < l->n_asked && !dup; a++)
                dup = memcmp(l->asked[a].id, h[j], WIRE_ID_LEN) == 0;
            if (!dup && sn_fed_link(d, h[j]) != NULL)
                memcpy(l->asked[l->n_asked++].id, h[j], WIRE_ID_LEN);
        }
    }
    size_t sent = 0;
    for (size_t a = 0; a < l->n_asked; a++) {
        size_t owed = ask_holder(c, l, l->asked[a].id);
        if (owed > 0) {
            memmove(l->asked[sent].id, l->asked[a].id, WIRE_ID_LEN);
            l->asked[sent++].owed = owed;
        }
    }
    l->n_asked = sent;
    if (sent == 0) {
        lookup_finish(l);
        return;
    }
    sn_timer_ms(l->deadline, CREDIT_LOOKUP_MS);
}

static void on_ledger_answer(struct sn_credit *c, struct sn_conn *from,
                             const struct msg_ledger_answer *a)
{
    for (struct lookup *l = c->lookups; l; l = l->next) {
        if (l->query_id != a->query_id)
            continue;
        size_t i = 0;
        while (i < l->n_asked && memcmp(l->asked[i].id, from->id, WIRE_ID_LEN) != 0)
            i++;
        if (i == l->n_asked)
            return;         /* not asked, or answered in full already */
        bool asked = false; /* only records of what we asked for */
        for (size_t k = 0; k < l->n && !asked; k++)
            asked = memcmp(l->ids[k], a->record.peer_id, WIRE_ID_LEN) == 0;
        if (!asked)
            return;
        c->ct.answers_received++;
        if (a->found)
            cache_merge(c, &a->record);
        if (--l->asked[i].owed == 0)
            l->asked[i] = l->asked[--l->n_asked];
        if (l->n_asked == 0)
            lookup_finish(l);
        return;
    }
}

/* A holder answers a read: each asked record whole, one frame each. A
 * link that already queues CREDIT_PUSH_HIGH gets "none" instead of more
 * records (a read takes the best of the holders' answers: one that knows
 * nothing costs it only that copy), so reads never fill a link until it
 * is dropped. */
static void on_ledger_query(struct sn_credit *c, struct sn_conn *from, const struct msg_credit *q)
{
    for (size_t i = 0; i < q->n_peer_ids; i++) {
        struct msg m = {.type = MSG_LEDGER_ANSWER};
        struct msg_ledger_answer *a = &m.u.ledger_answer;
        a->query_id = q->query_id;
        bool busy = link_output_len(from->link) >= CREDIT_PUSH_HIGH;
        a->found = !busy && sn_ledger_export(c->ledger, q->peer_ids[i], &a->record);
        if (!a->found) {
            memset(&a->record, 0, sizeof(a->record));
            memcpy(a->record.peer_id, q->peer_ids[i], WIRE_ID_LEN);
        }
        c->ct.answers_shed += busy;
        link_send(from->link, &m);
    }
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

/* Send a verified receipt to the holders of both its records. */
static void dispatch(struct sn_credit *c, const struct msg_receipt *r)
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
            enum receipt_verdict v = sn_ledger_apply(c->ledger, r, sides[i], now_s);
            if (v != RECEIPT_OK)
                log_debug("credit", "receipt seq %llu: %s", (unsigned long long)r->seq,
                          receipt_verdict_name(v));
            continue;
        }
        struct msg_ledger_item it = {.receipt = *r, .sides = sides[i]};
        outbox_add(c, dest[i], &it);
    }
    fresh_forget(c, r->source_id);
    fresh_forget(c, r->downloader_id);
    credit_verified_add(c, r->source_id);
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
    for (size_t i = 0; i < m->n_receipts; i++) {
        const struct msg_receipt *r = &m->receipts[i];
        enum receipt_verdict v = RECEIPT_OK;
        if (memcmp(r->source_id, p->id, WIRE_ID_LEN) != 0 ||
            memcmp(r->downloader_id, r->source_id, WIRE_ID_LEN) == 0)
            v = RECEIPT_MISDIRECTED;
        else if ((v = receipt_check_size(r)) != RECEIPT_OK)
            ; /* bytes beyond the size its file ID commits to (at most FILEID_MAX_SIZE) */
        else if (sn_sat_add(r->time_s, SN_LEDGER_MAX_AGE_S) < now_s ||
                 r->time_s > sn_sat_add(now_s, SN_LEDGER_MAX_FUTURE_S))
            v = RECEIPT_STALE;
        else
            v = receipt_verify(r);
        if (v != RECEIPT_OK) {
            count_rejected(c, p, v, r);
            continue;
        }
        dispatch(c, r);
        c->ct.ingested++;
    }
    outbox_flush(c);
}

/* ---- CREDIT from a peer --------------------------------------------------------------------- */

static void peer_query_free(struct peer_query *q)
{
    free(q->ids);
    free(q);
}

/* The records are read: each asked peer's credit as seen by the asker
 * (its own record: sn_flow_self), in the order asked. */
static void peer_answer(struct sn_ctx *d, struct lookup *l, void *arg)
{
    struct sn_credit *c = d->credit;
    struct peer_query *q = arg;
    (void)l;
    if (q->p != NULL) {
        struct msg_credit_record recs[MSG_MAX_CREDIT_IDS];
        struct msg_ledger_put eb;
        const struct msg_ledger_put *er = credit_record(c, q->asker, &eb);
        for (size_t i = 0; i < q->n; i++) {
            struct msg_ledger_put xb;
            const struct msg_ledger_put *xr = credit_record(c, q->ids[i], &xb);
            sn_ledger_get(c->records, q->ids[i], &recs[i]);
            if (memcmp(q->ids[i], q->asker, WIRE_ID_LEN) == 0)
                recs[i].credit = sn_flow_self(xr, c->cap);
            else
                recs[i].credit = sn_flow_credit(q->ids[i], xr, q->asker, er, c->cap);
        }
        struct msg m = {.type = MSG_CREDIT};
        m.u.credit = (struct msg_credit){
            .kind = MSG_CREDIT_ANSWER, .query_id = q->query_id, .records = recs, .n_records = q->n};
        link_send(q->p->link, &m);
    }
    peer_query_free(q);
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
    if (pq == NULL || (pq->ids = malloc(q->n_peer_ids * sizeof(*pq->ids))) == NULL) {
        free(pq);
        return;
    }
    pq->p = p;
    pq->query_id = q->query_id;
    memcpy(pq->asker, p->id, WIRE_ID_LEN);
    memcpy(pq->ids, q->peer_ids, q->n_peer_ids * sizeof(*pq->ids));
    pq->n = q->n_peer_ids;
    /* Read the asked records and the asker's own (its download entries
     * are half of every view), each once. */
    uint8_t read[MSG_MAX_CREDIT_IDS + 1][WIRE_ID_LEN];
    size_t n = 0;
    memcpy(read[n++], p->id, WIRE_ID_LEN);
    for (size_t i = 0; i < q->n_peer_ids; i++) {
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = memcmp(read[j], q->peer_ids[i], WIRE_ID_LEN) == 0;
        if (!dup)
            memcpy(read[n++], q->peer_ids[i], WIRE_ID_LEN);
    }
    credit_lookup_start(c, (const uint8_t(*)[WIRE_ID_LEN])read, n, peer_answer, pq);
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
        if (sn_ledger_apply(c->ledger, &it->receipt, it->sides, now_s) == RECEIPT_OK &&
            (it->sides & MSG_LEDGER_SIDE_SOURCE))
            credit_verified_add(c, it->receipt.source_id);
        if (it->sides & MSG_LEDGER_SIDE_SOURCE)
            credit_stray(c, it->receipt.source_id);
        if (it->sides & MSG_LEDGER_SIDE_DOWNLOADER)
            credit_stray(c, it->receipt.downloader_id);
        fresh_forget(c, it->receipt.source_id);
        fresh_forget(c, it->receipt.downloader_id);
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
            credit_stray(c, r->peer_id);
        }
        return;
    case MSG_LEDGER_PUT:
        c->ct.puts_received++;
        sn_ledger_merge(c->ledger, &m->u.ledger_put);
        credit_stray(c, m->u.ledger_put.peer_id);
        fresh_forget(c, m->u.ledger_put.peer_id);
        if (m->u.ledger_put.n_uploads > 0 || m->u.ledger_put.base_uploaded > 0)
            credit_verified_add(c, m->u.ledger_put.peer_id);
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

/* ---- what ranking asks -------------------------------------------------------------------- */

/* Ranking asks whether a source's uploads were ever verified: the peers
 * whose records showed uploads, or who handed in good receipts, are
 * remembered (credit_verified_*); others are read in the background, a
 * read's worth every CREDIT_LEARN_MS. */

void credit_learn(struct sn_credit *c, const uint8_t id[WIRE_ID_LEN])
{
    if (c->n_learn == CREDIT_LEARN_MAX || credit_is_fresh(c, id))
        return;
    /* Counted as read from now: asked once per CREDIT_CACHE_MS at most,
     * however many searches name it meanwhile. */
    credit_fresh_mark(c, id);
    memcpy(c->learn[c->n_learn++], id, WIRE_ID_LEN);
    if (!evtimer_pending(c->learn_timer, NULL))
        sn_timer_ms(c->learn_timer, CREDIT_LEARN_MS);
}

void credit_learn_tick(evutil_socket_t fd, short what, void *arg)
{
    struct sn_credit *c = arg;
    (void)fd, (void)what;
    if (c->n_learn == 0)
        return;
    size_t n = c->n_learn < CREDIT_MAX_LOOKUP_IDS ? c->n_learn : CREDIT_MAX_LOOKUP_IDS;
    credit_lookup_start(c, (const uint8_t(*)[WIRE_ID_LEN])c->learn + (c->n_learn - n), n, NULL,
                        NULL);
    c->n_learn -= n;
    if (c->n_learn > 0)
        sn_timer_ms(c->learn_timer, CREDIT_LEARN_MS);
}

bool sn_credit_source_verified(struct sn_ctx *d, const uint8_t peer_id[WIRE_ID_LEN])
{
    struct sn_credit *c = d->credit;
    if (c == NULL)
        return false;
    if (credit_verified_has(c, peer_id))
        return true;
    credit_learn(c, peer_id);
    return false;
}

/* ---- life and status ------------------------------------------------------------------------ */

/* Changed records to disk, a batch at a time (sn_ledger_store.h); more
 * waiting: again at the next loop turn, so a large backlog never holds the
 * loop for long. */
static void on_store_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sn_credit *c = arg;
    (void)fd, (void)what;
    size_t left = 0;
    if (sn_ledger_store_flush(c->store, c->ledger, SN_LEDGER_STORE_BATCH, &left) != 0) {
        log_warn("credit", "ledger: cannot write to disk: %s (retried)",
                 sn_ledger_store_error(c->store));
        sn_timer_ms(c->store_timer, SN_LEDGER_STORE_FLUSH_MS);
        return;
    }
    sn_timer_ms(c->store_timer, left > 0 ? 0 : SN_LEDGER_STORE_FLUSH_MS);
}

/* The records this supernode held when it stopped, from its state folder. */
static int store_start(struct sn_credit *c)
{
    struct sn_ctx *d = c->d;
    char err[512];
    int rc = sn_ledger_store_open(d->s->state_dir, &c->store, err, sizeof(err));
    size_t n = 0;
    if (rc == 0)
        rc = sn_ledger_store_load(c->store, c->ledger, &n, err, sizeof(err));
    if (rc != 0) {
        log_error("credit", "ledger store: %s", err);
        return rc;
    }
    struct sn_ledger_stats st;
    sn_ledger_stats(c->ledger, &st);
    log_info("credit", "ledger: %zu records read from %s/%s (%zu entries)", n, d->s->state_dir,
             SN_LEDGER_STORE_FILE, st.entries);
    c->store_timer = evtimer_new(evloop_base(d->loop), on_store_timer, c);
    if (c->store_timer == NULL)
        return SOVA_ERR_NOMEM;
    sn_timer_ms(c->store_timer, SN_LEDGER_STORE_FLUSH_MS);
    return 0;
}

int sn_credit_start(struct sn_ctx *d)
{
    struct sn_credit *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return SOVA_ERR_NOMEM;
    d->credit = c;
    c->d = d;
    c->replicas = (unsigned)d->s->ledger_replicas;
    c->cap = d->s->credit_cap_mb * 1024 * 1024;
    struct sn_ledger_config cfg = {.max_records = d->s->ledger_max_records, .track_dirty = true};
    struct sn_ledger_config cache = {.max_records = CREDIT_CACHE_RECORDS};
    if (RAND_bytes(cfg.hash_key, sizeof(cfg.hash_key)) != 1 ||
        RAND_bytes(cache.hash_key, sizeof(cache.hash_key)) != 1 ||
        RAND_bytes(c->hash_key, sizeof(c->hash_key)) != 1)
        return SOVA_ERR_CRYPTO;
    struct event_base *base = evloop_base(d->loop);
    c->ledger = sn_ledger_new(&cfg);
    c->records = sn_ledger_new(&cache);
    c->fresh_at = calloc(CREDIT_FRESH_SLOTS, sizeof(*c->fresh_at));
    c->verified = calloc(CREDIT_VERIFIED_SLOTS, sizeof(*c->verified));
    c->learn = calloc(CREDIT_LEARN_MAX, sizeof(*c->learn));
    c->out = calloc(CREDIT_OUTBOXES, sizeof(*c->out));
    c->up = calloc(CREDIT_OUTBOXES, sizeof(*c->up));
    c->pass_timer = evtimer_new(base, credit_pass_timer, c);
    c->uptime_timer = evtimer_new(base, credit_uptime_tick, c);
    c->relay_timer = evtimer_new(base, credit_relay_tick, c);
    c->learn_timer = evtimer_new(base, credit_learn_tick, c);
    d->ext_free[SN_EXT_CREDIT] = free;
    if (!c->ledger || !c->records || !c->fresh_at || !c->verified || !c->learn || !c->out ||
        !c->up || !c->pass_timer || !c->uptime_timer || !c->relay_timer || !c->learn_timer ||
        credit_view_compute(c, &c->view) != 0)
        return SOVA_ERR_NOMEM;
    int rc = store_start(c);
    if (rc != 0)
        return rc;
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
        if (l->fn == peer_answer)
            peer_query_free(l->arg);
        else if (l->fn != NULL)
            free(l->arg); /* a report being weighed */
        lookup_free(l);
    }
    credit_pass_end(c);
    credit_view_clear(&c->view);
    if (c->store != NULL) { /* everything still waiting goes to disk */
        size_t left = 1;
        while (left > 0 &&
               sn_ledger_store_flush(c->store, c->ledger, SN_LEDGER_STORE_BATCH, &left) == 0)
            ;
        if (left > 0)
            log_warn("credit", "ledger: %zu changed records not written: %s", left,
                     sn_ledger_store_error(c->store));
        sn_ledger_store_close(c->store);
    }
    struct event *timers[] = {c->pass_timer, c->uptime_timer, c->relay_timer, c->learn_timer,
                              c->store_timer};
    for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++)
        if (timers[i])
            event_free(timers[i]);
    sn_ledger_free(c->ledger);
    sn_ledger_free(c->records);
    free(c->fresh_at);
    free(c->verified);
    free(c->learn);
    free(c->out);
    free(c->up);
    free(c);
    d->credit = NULL;
}

void sn_credit_settings_changed(struct sn_ctx *d)
{
    if (d->credit)
        d->credit->cap = d->s->credit_cap_mb * 1024 * 1024;
}

/* A fingerprint of the records held: SHA-256 over them in ID order, as
 * LEDGER_PUT encodes them (tests compare it across restarts). Skipped
 * above CREDIT_DIGEST_MAX records: the status must stay quick. */
#define CREDIT_DIGEST_MAX 20000

static int id_order(const void *a, const void *b)
{
    return memcmp(a, b, WIRE_ID_LEN);
}

/* qsort, but a list of none may be NULL (qsort's base may not). */
static void sort_n(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(base, n, size, cmp);
}

static int session_order(const void *pa, const void *pb)
{
    const struct msg_ledger_session *a = pa, *b = pb;
    int k = memcmp(a->sn_id, b->sn_id, WIRE_ID_LEN);
    return k ? k : (a->start_ms > b->start_ms) - (a->start_ms < b->start_ms);
}

static json_t *ledger_digest(const struct sn_credit *c)
{
    size_t n = 0;
    uint8_t(*keys)[WIRE_ID_LEN] = sn_ledger_keys(c->ledger, &n);
    if (n > CREDIT_DIGEST_MAX || (n > 0 && keys == NULL)) {
        free(keys);
        return json_null();
    }
    sort_n(keys, n, sizeof(*keys), id_order);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    struct wire_buf wb;
    wire_buf_init(&wb);
    struct wire_limits lim = wire_limits_default();
    lim.max_frame = 1u << 24;
    for (size_t i = 0; ok && i < n; i++) {
        struct msg m = {.type = MSG_LEDGER_PUT};
        if (!sn_ledger_export(c->ledger, keys[i], &m.u.ledger_put))
            continue;
        /* Entries in a fixed order (the store may give them back in
         * another; the ledger does not care about their order). */
        sort_n(m.u.ledger_put.uploads, m.u.ledger_put.n_uploads, sizeof(struct msg_ledger_entry),
               id_order);
        sort_n(m.u.ledger_put.downloads, m.u.ledger_put.n_downloads,
               sizeof(struct msg_ledger_entry), id_order);
        sort_n(m.u.ledger_put.sessions, m.u.ledger_put.n_sessions,
               sizeof(struct msg_ledger_session), session_order);
        wire_buf_truncate(&wb, 0);
        ok = msg_encode(&m, &lim, &wb, NULL) == 0 && EVP_DigestUpdate(md, wb.data, wb.len) == 1;
    }
    wire_buf_free(&wb);
    uint8_t digest[32];
    unsigned dlen = 0;
    ok = ok && EVP_DigestFinal_ex(md, digest, &dlen) == 1;
    EVP_MD_CTX_free(md);
    free(keys);
    if (!ok)
        return json_null();
    char hex[65];
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    return json_string(hex);
}

json_t *sn_credit_status_json(const struct sn_ctx *d)
{
    const struct sn_credit *c = d->credit;
    struct sn_ledger_stats st;
    sn_ledger_stats(c->ledger, &st);
    struct sn_ledger_store_stats ss = {0};
    if (c->store)
        sn_ledger_store_stats(c->store, &ss);
    json_t *rejected = json_object();
    for (int v = RECEIPT_FORGED; v < RECEIPT_VERDICTS; v++)
        json_object_set_new(rejected, receipt_verdict_name(v),
                            json_integer((json_int_t)(c->ct.rejected[v] + st.rejected[v])));
    json_t *o = json_pack(
        "{s:I, s:I, s:i, s:I, s:I, s:{s:I, s:I, s:o, s:I}, s:{s:I, s:I, s:I, s:I, "
        "s:I, s:I, s:I, s:I}, s:I}",
        "records", (json_int_t)st.records, "entries", (json_int_t)st.entries, "replicas",
        (int)c->replicas, "supernodes", (json_int_t)c->view.n, "max_records",
        (json_int_t)d->s->ledger_max_records, "receipts", "ingested", (json_int_t)c->ct.ingested,
        "counted", (json_int_t)st.applied, "rejected", rejected, "rate_limited",
        (json_int_t)c->ct.rate_limited, "sync", "updates_sent", (json_int_t)c->ct.updates_sent,
        "records_sent", (json_int_t)c->ct.puts_sent, "records_received",
        (json_int_t)c->ct.puts_received, "lookups", (json_int_t)c->ct.lookups, "lookups_timed_out",
        (json_int_t)c->ct.lookups_timed_out, "answers_received", (json_int_t)c->ct.answers_received,
        "answers_shed", (json_int_t)c->ct.answers_shed, "cache_resets",
        (json_int_t)c->ct.cache_resets, "dropped_full", (json_int_t)st.dropped_full);
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "disk",
                        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "loaded",
                                  (json_int_t)ss.loaded, "batches", (json_int_t)ss.batches,
                                  "records_written", (json_int_t)ss.records_written,
                                  "records_deleted", (json_int_t)ss.records_deleted, "checkpoints",
                                  (json_int_t)ss.checkpoints, "errors", (json_int_t)ss.errors,
                                  "pending", (json_int_t)sn_ledger_dirty_count(c->ledger)));
    json_object_set_new(o, "reports",
                        json_pack("{s:I, s:I, s:I}", "weighed", (json_int_t)c->ct.reports_weighed,
                                  "unintroduced", (json_int_t)c->ct.reports_unintroduced,
                                  "weightless", (json_int_t)c->ct.reports_weightless));
    json_object_set_new(o, "digest", ledger_digest(c));
    return o;
}
