/* op_query.c - the searches sent to the supernode and the hits they
 * brought (op_query.h). */
#include "op_query.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

struct op_query {
    uint64_t id;
    struct op_queries *qs;
    op_query_done_fn *done;
    void *arg;
    struct event *timeout;
    struct op_query *next;
};

struct op_queries {
    struct op_queries_config cfg;
    struct op_query *waiting; /* queries someone waits for */
    uint64_t next_id;
    uint64_t sent; /* SEARCHes sent */
    struct op_query_hit hits[OP_QUERY_HIT_CACHE_MAX];
    size_t n_hits;
};

/* ---- search hits --------------------------------------------------------------- */

static void hit_clear(struct op_query_hit *h)
{
    for (size_t i = 0; i < h->n_sources; i++)
        free(h->sources[i].addrs);
    free(h->sources);
    free(h->name);
    memset(h, 0, sizeof(*h));
}

const struct op_query_hit *op_queries_hit(const struct op_queries *qs,
                                          const uint8_t hash[WIRE_HASH_LEN])
{
    for (size_t i = 0; i < qs->n_hits; i++)
        if (memcmp(qs->hits[i].hash, hash, WIRE_HASH_LEN) == 0)
            return &qs->hits[i];
    return NULL;
}

/* Append src's sources that h does not name yet (deep copies). */
static void hit_add_sources(struct op_query_hit *h, const struct msg_hit *src)
{
    size_t room = h->n_sources + src->n_sources;
    struct msg_source *grown = realloc(h->sources, (room ? room : 1) * sizeof(*grown));
    if (grown == NULL)
        return;
    h->sources = grown;
    for (size_t i = 0; i < src->n_sources && h->n_sources < OP_QUERY_HIT_SOURCES_MAX; i++) {
        bool known = false;
        for (size_t j = 0; j < h->n_sources && !known; j++)
            known = memcmp(h->sources[j].peer_id, src->sources[i].peer_id, WIRE_ID_LEN) == 0;
        if (known)
            continue;
        struct msg_source *s = &h->sources[h->n_sources];
        *s = src->sources[i];
        s->addrs = calloc(s->n_addrs ? s->n_addrs : 1, sizeof(*s->addrs));
        if (s->addrs == NULL)
            break;
        if (s->n_addrs > 0) /* a source with no address has no list to copy */
            memcpy(s->addrs, src->sources[i].addrs, s->n_addrs * sizeof(*s->addrs));
        h->n_sources++;
    }
}

/* Remember a hit of the answer to query_id: an older entry for the same ID
 * (or the oldest) is replaced; another hit of the same ID in the same
 * answer (one that claims another size) adds its sources to it, so `get`
 * asks them all and the size comes from a checked manifest. */
static void hit_remember(struct op_queries *qs, const struct msg_hit *src, uint64_t query_id,
                         uint64_t now_ms)
{
    struct op_query_hit *h = (struct op_query_hit *)op_queries_hit(qs, src->hash);
    if (h != NULL && h->query_id == query_id && h->seen_ms == now_ms) {
        hit_add_sources(h, src);
        return;
    }
    if (h == NULL && qs->n_hits < OP_QUERY_HIT_CACHE_MAX)
        h = &qs->hits[qs->n_hits++];
    if (h == NULL) {
        h = &qs->hits[0];
        for (size_t i = 1; i < qs->n_hits; i++)
            if (qs->hits[i].seen_ms < h->seen_ms)
                h = &qs->hits[i];
    }
    hit_clear(h);
    memcpy(h->hash, src->hash, WIRE_HASH_LEN);
    h->size = src->size;
    h->seen_ms = now_ms;
    h->query_id = query_id;
    h->name = wire_str_dup(src->name);
    if (h->name == NULL) {
        hit_clear(h);
        return;
    }
    hit_add_sources(h, src);
}

/* ---- queries to the supernode ---------------------------------------------------- */

void op_query_cancel(struct op_query *q)
{
    struct op_queries *qs = q->qs;
    struct op_query **pp = &qs->waiting;
    while (*pp && *pp != q)
        pp = &(*pp)->next;
    if (*pp)
        *pp = q->next;
    if (q->timeout)
        event_free(q->timeout);
    free(q);
}

/* The query is freed before its waiter hears, so done may send again. */
static void query_done(struct op_query *q, const struct msg_search_result *res)
{
    op_query_done_fn *done = q->done;
    void *arg = q->arg;
    op_query_cancel(q);
    done(res, arg);
}

static void on_query_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    query_done(arg, NULL);
}

int op_query_send(struct op_queries *qs, const struct msg_search *search, unsigned timeout_ms,
                  op_query_done_fn *done, void *arg, struct op_query **out)
{
    if (out != NULL)
        *out = NULL;
    struct msg m = {.type = MSG_SEARCH};
    m.u.search = *search;
    m.u.search.query_id = ++qs->next_id;
    if (done == NULL) {
        qs->sent++;
        return qs->cfg.send(&m, qs->cfg.arg);
    }
    struct op_query *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return SOVA_ERR_NOMEM;
    q->qs = qs;
    q->id = m.u.search.query_id;
    q->done = done;
    q->arg = arg;
    q->timeout = evtimer_new(qs->cfg.base, on_query_timeout, q);
    q->next = qs->waiting;
    qs->waiting = q;
    if (q->timeout == NULL) {
        op_query_cancel(q);
        return SOVA_ERR_NOMEM;
    }
    qs->sent++;
    int rc = qs->cfg.send(&m, qs->cfg.arg);
    if (rc != 0) {
        op_query_cancel(q);
        return rc;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    evtimer_add(q->timeout, &tv);
    *out = q;
    return 0;
}

void op_queries_result(struct op_queries *qs, const struct msg_search_result *r, uint64_t now_ms)
{
    for (size_t i = 0; i < r->n_hits; i++)
        hit_remember(qs, &r->hits[i], r->query_id, now_ms);
    for (struct op_query *q = qs->waiting; q; q = q->next) {
        if (q->id == r->query_id) {
            query_done(q, r);
            return;
        }
    }
}

uint64_t op_queries_sent(const struct op_queries *qs)
{
    return qs->sent;
}

/* ---- the set ------------------------------------------------------------------------ */

int op_queries_new(const struct op_queries_config *cfg, struct op_queries **out)
{
    struct op_queries *qs = calloc(1, sizeof(*qs));
    *out = qs;
    if (qs == NULL)
        return SOVA_ERR_NOMEM;
    qs->cfg = *cfg;
    return 0;
}

void op_queries_free(struct op_queries *qs)
{
    if (qs == NULL)
        return;
    while (qs->waiting)
        op_query_cancel(qs->waiting);
    for (size_t i = 0; i < qs->n_hits; i++)
        hit_clear(&qs->hits[i]);
    free(qs);
}
