/* loadgen_peer.c - one simulated ordinary peer: its TLS link to the
 * supernode (common/link.h, the same code sova-peer runs), REGISTER, PUBLISH
 * batches with their acknowledgements, and the requests of the measured
 * phases, each kept in one of the peer's pipeline slots until answered.
 *
 * Matching answers to requests: a SEARCH_RESULT names its query id. A
 * LOCATE_RESULT names only the peer looked up, but the supernode answers
 * a link's requests in order, so LOCATE answers complete the oldest LOCATE.
 * PONGs never reach the owner of a link (link.c swallows them), so a ping
 * request is ping_batch PINGs followed by one LOCATE of ourselves: when its
 * answer arrives, every PONG before it has arrived too (one TLS stream, one
 * ordered loop on the supernode).
 */
#include "err.h"
#include "loadgen.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

static struct lg_slot *slot_oldest(struct lg_peer *p)
{
    struct lg_slot *best = NULL;
    for (unsigned i = 0; i < p->lg->opt.pipeline; i++) {
        struct lg_slot *s = &p->slots[i];
        if (s->used && (best == NULL || s->seq < best->seq))
            best = s;
    }
    return best;
}

static struct lg_slot *slot_by_query(struct lg_peer *p, uint64_t query_id)
{
    for (unsigned i = 0; i < p->lg->opt.pipeline; i++) {
        if (p->slots[i].used && p->slots[i].query_id == query_id)
            return &p->slots[i];
    }
    return NULL;
}

static void slot_release(struct lg_peer *p, struct lg_slot *s)
{
    s->used = false;
    p->busy--;
    p->lg->inflight--;
}

static void slot_complete(struct lg_peer *p, struct lg_slot *s, unsigned frames)
{
    struct loadgen *lg = p->lg;
    unsigned phase = s->phase;
    uint64_t t = s->t_ns;
    uint32_t hits = s->hits;
    slot_release(p, s);
    lg_op_done(lg, phase, t, hits, frames);
    lg_slot_free(lg, p);
}

static void slot_fail(struct lg_peer *p, struct lg_slot *s)
{
    unsigned phase = s->phase;
    slot_release(p, s);
    lg_op_failed(p->lg, phase);
}

void lg_peer_drop_slots(struct lg_peer *p)
{
    if (p->slots == NULL)
        return;
    for (unsigned i = 0; i < p->lg->opt.pipeline; i++) {
        if (p->slots[i].used) {
            p->lg->stats[p->slots[i].phase].unanswered++;
            slot_release(p, &p->slots[i]);
        }
    }
}

/* ---- link hooks ------------------------------------------------------------------ */

static void on_opened(struct link *l, void *arg)
{
    struct lg_peer *p = arg;
    p->state = LG_PEER_OPEN;
    struct msg m = {.type = MSG_REGISTER};
    m.u.reg.session = MSG_SESSION_PRIMARY;
    m.u.reg.reachability = MSG_REACH_PUBLIC;
    m.u.reg.addrs = &p->claimed;
    m.u.reg.n_addrs = 1;
    link_send(l, &m);
}

static void on_publish_ack(struct lg_peer *p, const struct msg_publish_ack *a)
{
    struct loadgen *lg = p->lg;
    lg->accepted += a->accepted;
    lg->rejected += a->rejected;
    if (a->rejected > 0 && lg->first_reject_code == 0)
        lg->first_reject_code = a->first_error ? a->first_error : MSG_ERR_INTERNAL;
    if (p->batches_out > 0)
        p->batches_out--;
    lg_peer_publish_more(p);
    if (!p->published && p->batches_out == 0 && p->files_sent >= lg->opt.files) {
        p->published = true;
        lg_peer_published(lg, p);
    }
}

static void on_search_result(struct lg_peer *p, const struct msg_search_result *r)
{
    struct lg_slot *s = slot_by_query(p, r->query_id);
    if (s == NULL) {
        /* An answer to a request forgotten at the end of a phase. */
        return;
    }
    s->hits += (uint32_t)r->n_hits;
    if (r->flags & MSG_RESULT_FINAL)
        slot_complete(p, s, 1);
}

static void on_locate_result(struct lg_peer *p)
{
    struct lg_slot *s = slot_oldest(p);
    if (s == NULL)
        return;
    enum lg_kind kind = p->lg->opt.phases[s->phase].kind;
    slot_complete(p, s, kind == LG_PING ? p->lg->opt.ping_batch + 1 : 1);
}

static void on_error(struct lg_peer *p, const struct msg_error *e)
{
    struct loadgen *lg = p->lg;
    switch (e->offending_type) {
    case MSG_PUBLISH:
        lg->publish_errors++; /* the PUBLISH_ACK already counted the records */
        return;
    case MSG_SEARCH:
    case MSG_LOCATE: {
        /* The request got no answer of its own; which one is unknowable,
         * so the oldest is counted as the failure. */
        struct lg_slot *s = slot_oldest(p);
        if (s != NULL) {
            slot_fail(p, s);
            lg_slot_free(lg, p);
        }
        return;
    }
    default:
        return; /* logged by link.c; a refusal closes the link, handled there */
    }
}

static void on_message(struct link *l, const struct msg *m, void *arg)
{
    struct lg_peer *p = arg;
    (void)l;
    switch (m->type) {
    case MSG_REGISTERED:
        if (p->state == LG_PEER_OPEN) {
            p->state = LG_PEER_REGISTERED;
            lg_peer_registered(p->lg, p, m->u.registered.keepalive_s);
        } else { /* new keep-alive advice */
            lg_keepalive_told(p->lg, m->u.registered.keepalive_s);
        }
        return;
    case MSG_PUBLISH_ACK:
        on_publish_ack(p, &m->u.publish_ack);
        return;
    case MSG_SEARCH_RESULT:
        on_search_result(p, &m->u.search_result);
        return;
    case MSG_LOCATE_RESULT:
        on_locate_result(p);
        return;
    case MSG_ERROR:
        on_error(p, &m->u.error);
        return;
    default:
        return; /* SN_LIST and the like: an ordinary peer would store them */
    }
}

static void on_closed(struct link *l, int why, void *arg)
{
    struct lg_peer *p = arg;
    (void)l;
    bool was_registered = p->state == LG_PEER_REGISTERED;
    p->link = NULL;
    p->state = was_registered ? LG_PEER_LOST : LG_PEER_FAILED;
    if (p->slots != NULL) {
        for (unsigned i = 0; i < p->lg->opt.pipeline; i++) {
            if (p->slots[i].used)
                slot_fail(p, &p->slots[i]);
        }
    }
    if (why != 0 || was_registered)
        log_warn("loadgen", "peer %u: link closed (%s)", p->index,
                 why ? sova_err_str(why) : "by the supernode");
    lg_peer_gone(p->lg, p, was_registered);
}

static const struct link_hooks peer_hooks = {
    .opened = on_opened,
    .message = on_message,
    .closed = on_closed,
};

/* ---- what the run asks of a peer ----------------------------------------------- */

bool lg_peer_dial(struct lg_peer *p)
{
    struct loadgen *lg = p->lg;
    struct link_params params = lg->params;
    if (lg->opt.has_source_base) {
        params.bind_addr = (const struct sockaddr *)&p->bind_addr;
        params.bind_len = sizeof(p->bind_addr);
    }
    p->state = LG_PEER_DIALING;
    SSL *ssl = p->ssl;
    p->ssl = NULL; /* the link owns it from now, also when it fails */
    p->link = link_connect(lg->base, (const struct sockaddr *)&lg->sn_addr, lg->sn_len, ssl,
                           &params, &peer_hooks, p);
    if (p->link == NULL) {
        p->state = LG_PEER_FAILED;
        return false;
    }
    return true;
}

void lg_peer_publish_more(struct lg_peer *p)
{
    struct loadgen *lg = p->lg;
    while (p->link != NULL && p->state == LG_PEER_REGISTERED &&
           p->batches_out < lg->opt.publish_window && p->files_sent < lg->opt.files) {
        unsigned n = lg->opt.files - p->files_sent;
        if (n > lg->opt.batch)
            n = lg->opt.batch;
        for (unsigned k = 0; k < n; k++)
            lg_words_record(&lg->words, p->index, p->files_sent + k, &lg->pub_recs[k],
                            lg->pub_names[k]);
        struct msg m = {.type = MSG_PUBLISH};
        m.u.publish.records = lg->pub_recs;
        m.u.publish.n_records = n;
        if (link_send(p->link, &m) != 0)
            return;
        p->files_sent += n;
        p->batches_out++;
        lg->records_sent += n;
    }
}

static struct lg_slot *slot_free_one(struct lg_peer *p)
{
    for (unsigned i = 0; i < p->lg->opt.pipeline; i++) {
        if (!p->slots[i].used)
            return &p->slots[i];
    }
    return NULL;
}

static int send_locate_self(struct lg_peer *p)
{
    struct msg m = {.type = MSG_LOCATE};
    memcpy(m.u.locate.peer_id, p->id, WIRE_ID_LEN);
    return link_send(p->link, &m);
}

bool lg_peer_send_op(struct lg_peer *p)
{
    struct loadgen *lg = p->lg;
    if (p->state != LG_PEER_REGISTERED || p->link == NULL || p->busy >= lg->opt.pipeline)
        return false;
    struct lg_slot *s = slot_free_one(p);
    if (s == NULL)
        return false;
    const struct lg_phase_spec *ph = &lg->opt.phases[lg->phase];
    int rc = 0;
    uint64_t query_id = 0;
    uint64_t t = 0;
    switch (ph->kind) {
    case LG_SEARCH: {
        char bufs[LG_QUERY_WORDS_MAX][16];
        struct wire_str kw[LG_QUERY_WORDS_MAX];
        struct msg m = {.type = MSG_SEARCH};
        m.u.search.query_id = query_id = ++lg->next_query_id;
        m.u.search.max_results = (uint16_t)lg->opt.max_results;
        m.u.search.keywords = kw;
        m.u.search.n_keywords = lg_words_query(&lg->words, &p->rng, bufs, kw);
        t = lg_now_ns();
        rc = link_send(p->link, &m);
        break;
    }
    case LG_LOCATE:
        t = lg_now_ns();
        rc = send_locate_self(p);
        break;
    case LG_PING:
        t = lg_now_ns();
        for (unsigned i = 0; i < lg->opt.ping_batch && rc == 0; i++) {
            struct msg m = {.type = MSG_PING};
            m.u.ping.nonce = ++p->seq;
            rc = link_send(p->link, &m);
        }
        if (rc == 0)
            rc = send_locate_self(p);
        break;
    case LG_IDLE:
        return false; /* only the keep-alives run */
    }
    if (rc != 0)
        return false;
    *s = (struct lg_slot){.used = true,
                          .seq = ++p->seq,
                          .query_id = query_id,
                          .t_ns = t,
                          .phase = (unsigned)lg->phase};
    p->busy++;
    lg->inflight++;
    lg->stats[lg->phase].sent++;
    return true;
}

void lg_peer_ping(struct lg_peer *p)
{
    if (p->link == NULL || p->state != LG_PEER_REGISTERED)
        return;
    struct msg m = {.type = MSG_PING};
    m.u.ping.nonce = ++p->seq;
    link_send(p->link, &m);
}
