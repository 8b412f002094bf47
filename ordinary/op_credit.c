/* op_credit.c - receipts and credit at the peer (op_credit.h). */
#include "clock.h"
#include "op_credit.h"
#include "err.h"
#include "link.h"
#include "log.h"
#include "receipt.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct seen { /* the last seq taken from a downloader */
    uint8_t id[WIRE_ID_LEN];
    uint64_t seq, used_ms;
};

struct known { /* a requester's credit */
    uint8_t id[WIRE_ID_LEN];
    uint64_t credit, fetched_ms, asked_ms;
};

struct op_credit {
    struct op_credit_config cfg;
    struct event *flush, *ask;
    uint64_t last_seq;
    struct msg_receipt *queue; /* ring of receipts for the supernode */
    size_t head, count;
    struct seen seen[OP_CREDIT_SEEN_MAX];
    size_t n_seen;
    struct known known[OP_CREDIT_CACHE_MAX];
    size_t n_known;
    uint8_t pending[MSG_MAX_CREDIT_IDS][WIRE_ID_LEN]; /* to ask about */
    size_t n_pending;
    bool ask_soon; /* the ask timer is set to fire in a moment */
    uint64_t next_query, self_asked_ms;
    struct msg_credit_record self; /* our own record, once read */
    bool self_known;
    /* counters */
    uint64_t signed_n, received, accepted, submitted, dropped;
    uint64_t rejected[RECEIPT_VERDICTS];
};

static uint64_t wall_us(void)
{
    return sova_wall_ms() * 1000u;
}

static void set_timer_ms(struct event *ev, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* ---- downloader -------------------------------------------------------------- */

int op_credit_sign(struct op_credit *c, const uint8_t source_id[WIRE_ID_LEN],
                   const uint8_t file_id[WIRE_HASH_LEN], uint64_t file_size,
                   const uint8_t root[WIRE_HASH_LEN], uint64_t bytes, struct msg_receipt *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t now = wall_us();
    c->last_seq = now > c->last_seq ? now : c->last_seq + 1;
    memcpy(out->downloader_id, c->cfg.self_id, WIRE_ID_LEN);
    memcpy(out->source_id, source_id, WIRE_ID_LEN);
    memcpy(out->file_id, file_id, WIRE_HASH_LEN);
    out->file_size = file_size;
    memcpy(out->root, root, WIRE_HASH_LEN);
    out->bytes = bytes;
    out->seq = c->last_seq;
    out->time_s = now / 1000000u;
    int rc = receipt_sign(out, c->cfg.key);
    if (rc == 0)
        c->signed_n++;
    return rc;
}

/* ---- source: receipts in, to the supernode ------------------------------------ */

static struct seen *seen_find(struct op_credit *c, const uint8_t id[WIRE_ID_LEN])
{
    for (size_t i = 0; i < c->n_seen; i++)
        if (memcmp(c->seen[i].id, id, WIRE_ID_LEN) == 0)
            return &c->seen[i];
    struct seen *s;
    if (c->n_seen < OP_CREDIT_SEEN_MAX) {
        s = &c->seen[c->n_seen++];
    } else {
        s = &c->seen[0]; /* forget the one quiet longest; the ledger still knows */
        for (size_t i = 1; i < c->n_seen; i++)
            if (c->seen[i].used_ms < s->used_ms)
                s = &c->seen[i];
    }
    memset(s, 0, sizeof(*s));
    memcpy(s->id, id, WIRE_ID_LEN);
    return s;
}

static void refuse(struct op_credit *c, enum receipt_verdict v, const struct msg_receipt *r)
{
    c->rejected[v]++;
    char who[NODE_ID_STR_LEN + 1];
    node_id_format(r->downloader_id, who);
    log_info("credit", "receipt from %.*s refused: %s (seq %llu, %llu bytes)", NODE_ID_SHORT_LEN,
             who, receipt_verdict_name(v), (unsigned long long)r->seq,
             (unsigned long long)r->bytes);
}

void op_credit_receipt_in(struct op_credit *c, const uint8_t from[WIRE_ID_LEN],
                          const struct msg_receipt *r)
{
    c->received++;
    if (memcmp(r->downloader_id, from, WIRE_ID_LEN) != 0 ||
        memcmp(r->source_id, c->cfg.self_id, WIRE_ID_LEN) != 0) {
        refuse(c, RECEIPT_MISDIRECTED, r);
        return;
    }
    enum receipt_verdict v = receipt_check_size(r);
    if (v == RECEIPT_OK)
        v = receipt_verify(r);
    if (v != RECEIPT_OK) {
        refuse(c, v, r);
        return;
    }
    struct seen *s = seen_find(c, from);
    if (r->seq <= s->seq) {
        refuse(c, RECEIPT_REPLAYED, r);
        return;
    }
    s->seq = r->seq;
    s->used_ms = link_now_ms();
    c->accepted++;
    if (c->count == OP_CREDIT_QUEUE_MAX) { /* the oldest goes */
        c->head = (c->head + 1) % OP_CREDIT_QUEUE_MAX;
        c->count--;
        c->dropped++;
    }
    c->queue[(c->head + c->count++) % OP_CREDIT_QUEUE_MAX] = *r;
    if (!evtimer_pending(c->flush, NULL))
        set_timer_ms(c->flush, OP_CREDIT_FLUSH_MS);
}

static size_t receipts_per_frame(const struct op_credit *c)
{
    size_t each = MSG_RECEIPT_WIRE_SIZE;
    size_t max = c->cfg.limits->max_frame > 64 ? (c->cfg.limits->max_frame - 64) / each : 1;
    return max == 0 ? 1 : max > MSG_MAX_RECEIPTS ? MSG_MAX_RECEIPTS : max;
}

/* Hand what waits to the supernode; false when it cannot take it now. */
static bool submit(struct op_credit *c)
{
    struct msg_receipt batch[MSG_MAX_RECEIPTS];
    while (c->count > 0) {
        size_t n = 0, per = receipts_per_frame(c);
        while (n < c->count && n < per) {
            batch[n] = c->queue[(c->head + n) % OP_CREDIT_QUEUE_MAX];
            n++;
        }
        struct msg m = {.type = MSG_RECEIPTS};
        m.u.receipts = (struct msg_receipts){.receipts = batch, .n_receipts = n};
        if (c->cfg.send(&m, c->cfg.arg) != 0)
            return false;
        c->head = (c->head + n) % OP_CREDIT_QUEUE_MAX;
        c->count -= n;
        c->submitted += n;
    }
    return true;
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    struct op_credit *c = arg;
    (void)fd, (void)what;
    submit(c); /* not attached: they wait for op_credit_attached() */
}

/* ---- credit read from the supernode ------------------------------------------- */

static struct known *known_find(struct op_credit *c, const uint8_t id[WIRE_ID_LEN], bool add)
{
    for (size_t i = 0; i < c->n_known; i++)
        if (memcmp(c->known[i].id, id, WIRE_ID_LEN) == 0)
            return &c->known[i];
    if (!add)
        return NULL;
    struct known *k;
    if (c->n_known < OP_CREDIT_CACHE_MAX) {
        k = &c->known[c->n_known++];
    } else {
        k = &c->known[0];
        for (size_t i = 1; i < c->n_known; i++)
            if (c->known[i].fetched_ms < k->fetched_ms)
                k = &c->known[i];
    }
    memset(k, 0, sizeof(*k));
    memcpy(k->id, id, WIRE_ID_LEN);
    return k;
}

static void ask_soon(struct op_credit *c, const uint8_t id[WIRE_ID_LEN])
{
    for (size_t i = 0; i < c->n_pending; i++)
        if (memcmp(c->pending[i], id, WIRE_ID_LEN) == 0)
            return;
    if (c->n_pending == MSG_MAX_CREDIT_IDS)
        return; /* asked at the next chance */
    memcpy(c->pending[c->n_pending++], id, WIRE_ID_LEN);
    if (!c->ask_soon) {
        c->ask_soon = true;
        set_timer_ms(c->ask, 20); /* gather a few */
    }
}

uint64_t op_credit_of(struct op_credit *c, const uint8_t peer_id[WIRE_ID_LEN])
{
    uint64_t now = link_now_ms();
    struct known *k = known_find(c, peer_id, true);
    bool fresh = k->fetched_ms != 0 && now - k->fetched_ms < OP_CREDIT_CACHE_MS;
    if (!fresh && (k->asked_ms == 0 || now - k->asked_ms >= OP_CREDIT_ASK_MS)) {
        k->asked_ms = now;
        ask_soon(c, peer_id);
    }
    return k->credit;
}

static void on_ask(evutil_socket_t fd, short what, void *arg)
{
    struct op_credit *c = arg;
    (void)fd, (void)what;
    uint64_t now = link_now_ms();
    c->ask_soon = false;
    if (c->self_asked_ms == 0 || now - c->self_asked_ms >= OP_CREDIT_SELF_MS) {
        bool there = false;
        for (size_t i = 0; i < c->n_pending && !there; i++)
            there = memcmp(c->pending[i], c->cfg.self_id, WIRE_ID_LEN) == 0;
        if (!there && c->n_pending < MSG_MAX_CREDIT_IDS)
            memcpy(c->pending[c->n_pending++], c->cfg.self_id, WIRE_ID_LEN);
    }
    set_timer_ms(c->ask, OP_CREDIT_SELF_MS);
    if (c->n_pending == 0)
        return;
    struct msg m = {.type = MSG_CREDIT};
    m.u.credit = (struct msg_credit){.kind = MSG_CREDIT_QUERY,
                                     .query_id = ++c->next_query,
                                     .peer_ids = c->pending,
                                     .n_peer_ids = c->n_pending};
    if (c->cfg.send(&m, c->cfg.arg) != 0)
        return; /* not attached: asked again later */
    for (size_t i = 0; i < c->n_pending; i++)
        if (memcmp(c->pending[i], c->cfg.self_id, WIRE_ID_LEN) == 0)
            c->self_asked_ms = now;
    c->n_pending = 0;
}

void op_credit_message(struct op_credit *c, const struct msg *m)
{
    if (m->type != MSG_CREDIT || m->u.credit.kind != MSG_CREDIT_ANSWER)
        return;
    uint64_t now = link_now_ms();
    for (size_t i = 0; i < m->u.credit.n_records; i++) {
        const struct msg_credit_record *r = &m->u.credit.records[i];
        if (memcmp(r->peer_id, c->cfg.self_id, WIRE_ID_LEN) == 0) {
            c->self = *r;
            c->self_known = true;
            continue;
        }
        struct known *k = known_find(c, r->peer_id, false);
        if (k == NULL)
            continue; /* not asked */
        k->credit = r->credit;
        k->fetched_ms = now;
        if (c->cfg.credit_known)
            c->cfg.credit_known(r->peer_id, r->credit, c->cfg.arg);
    }
}

void op_credit_attached(struct op_credit *c)
{
    submit(c);
    c->self_asked_ms = 0;
    set_timer_ms(c->ask, 0);
}

/* ---- life and status ------------------------------------------------------------ */

int op_credit_new(const struct op_credit_config *cfg, struct op_credit **out)
{
    struct op_credit *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return SOVA_ERR_NOMEM;
    c->cfg = *cfg;
    c->queue = calloc(OP_CREDIT_QUEUE_MAX, sizeof(*c->queue));
    c->flush = evtimer_new(cfg->base, on_flush, c);
    c->ask = evtimer_new(cfg->base, on_ask, c);
    if (c->queue == NULL || c->flush == NULL || c->ask == NULL) {
        op_credit_free(c);
        return SOVA_ERR_NOMEM;
    }
    set_timer_ms(c->ask, OP_CREDIT_SELF_MS);
    *out = c;
    return 0;
}

void op_credit_free(struct op_credit *c)
{
    if (c == NULL)
        return;
    if (c->count > 0)
        log_info("credit", "%zu receipts not handed to a supernode are dropped", c->count);
    if (c->flush)
        event_free(c->flush);
    if (c->ask)
        event_free(c->ask);
    free(c->queue);
    free(c);
}

json_t *op_credit_status_json(const struct op_credit *c)
{
    json_t *rejected = json_object();
    for (int v = RECEIPT_FORGED; v < RECEIPT_VERDICTS; v++)
        json_object_set_new(rejected, receipt_verdict_name(v),
                            json_integer((json_int_t)c->rejected[v]));
    return json_pack("{s:b, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:o}}", "known",
                     c->self_known, "credit", (json_int_t)c->self.credit, "uploaded",
                     (json_int_t)c->self.uploaded, "downloaded", (json_int_t)c->self.downloaded,
                     "uptime_s", (json_int_t)c->self.uptime_s, "receipts", "signed",
                     (json_int_t)c->signed_n, "received", (json_int_t)c->received, "accepted",
                     (json_int_t)c->accepted, "submitted", (json_int_t)c->submitted, "queued",
                     (json_int_t)c->count, "dropped", (json_int_t)c->dropped, "rejected", rejected);
}
