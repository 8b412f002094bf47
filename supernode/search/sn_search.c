/* sn_search.c - search and LOCATE across the federation (sn_search.h). */
#include "sn_search.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "sn_fed_links.h"
#include "sn_membership.h"
#include "sn_prefetch.h"
#include "sn_route.h"
#include "sn_summary.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define SN_SEARCH_DEADLINE_MS 500 /* a forwarded query's answer must come within this */
#define SN_LOCATE_DEADLINE_MS 500
#define SN_SUMMARY_CHECK_MS   250 /* how often the summary rebuild is considered */
#define SN_SEARCH_MAX_PENDING 1024
#define SN_SEARCH_MAX_TARGETS SN_FED_MAX_LINKS
#define SN_SEARCH_MAX_SOURCES 64 /* sources per hit, at most (wire limit permitting) */

/* A search or locate waiting for other supernodes. */
struct pending {
    struct sn_ctx *d;
    struct pending *next;
    uint64_t qid; /* FWD query id (ours, or the origin's when relaying) */
    uint8_t origin[WIRE_ID_LEN];
    struct sn_conn *asker; /* a peer (SEARCH/LOCATE) or a supernode (relayed FWD_SEARCH) */
    uint64_t asker_qid;    /* the peer's own SEARCH query id */
    bool locate;
    uint8_t locate_id[WIRE_ID_LEN];
    size_t waiting;         /* locate: supernodes yet to answer */
    sn_located_fn *located; /* an internal locate: who gets the answer */
    void *located_arg;
    struct sn_route_merge *merge;
    struct event *timer;
    bool by_hash; /* a SEARCH by hash from a peer: its hits introduce it */
    uint8_t hash[WIRE_HASH_LEN];
};

struct sn_search {
    struct sn_search_hooks hooks;
    struct sn_route *route;
    struct sn_summary *mine;
    struct sn_summary_sched sched;
    struct event *check;
    uint64_t summary_sent_ms;
    struct pending *pending;
    size_t n_pending;
    uint64_t forwarded, relayed;
};

static void pending_free(struct pending *q)
{
    struct sn_search *s = q->d->search;
    struct pending **pp = &s->pending;
    while (*pp && *pp != q)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = q->next;
        s->n_pending--;
    }
    if (q->timer)
        event_free(q->timer);
    sn_route_merge_free(q->merge);
    free(q);
}

static struct pending *pending_find(const struct sn_ctx *d, uint64_t qid, bool locate)
{
    for (struct pending *q = d->search->pending; q; q = q->next)
        if (q->qid == qid && q->locate == locate)
            return q;
    return NULL;
}

/* ---- the local part of a search ----------------------------------------------------- */

/* How a source ranks in the hits this supernode gives (sn_route.h): its
 * report score (guard/sn_reports.h) then whether its uploads were ever
 * verified; dropped when downloaders that count caught it serving bad data. */
static uint32_t source_rank(void *arg, const uint8_t peer_id[WIRE_ID_LEN])
{
    struct sn_ctx *d = arg;
    if (sn_reports_dropped(d->reports, peer_id))
        return SN_ROUTE_RANK_DROP;
    const struct sn_search_hooks *h = &d->search->hooks;
    bool verified = h->verified != NULL && h->verified(h->arg, peer_id);
    return sn_reports_rank(d->reports, peer_id) * 2 + (verified ? 0 : SN_ROUTE_RANK_UNVERIFIED);
}

/* Builds SEARCH_RESULT hits from index hits, leaving out the asker: one hit
 * per content hash (the index keys files by hash and size), its sources
 * the per_hit best ranked of those looked at. */
struct result_builder {
    struct sn_ctx *d;
    const uint8_t *asker;
    const struct wire_addr *asker_from; /* where the asker is seen from; NULL: another SN's */
    struct msg_hit *hits;
    size_t n_hits, cap;
    struct msg_source *sources; /* per_hit slots per hit */
    uint64_t *sizes;            /* what each source claims */
    uint32_t *ranks;            /* its rank */
    size_t *verified;           /* per hit, once finished */
    size_t per_hit;
};

static int collect_hit(void *arg, const struct sn_index_hit *hit)
{
    struct result_builder *b = arg;
    struct msg_hit *h = NULL;
    for (size_t i = 0; i < b->n_hits && h == NULL; i++)
        if (memcmp(b->hits[i].hash, hit->hash, WIRE_HASH_LEN) == 0)
            h = &b->hits[i]; /* the same ID with another size: one hit */
    bool fresh = h == NULL;
    if (fresh) {
        if (b->n_hits == b->cap)
            return 1;
        h = &b->hits[b->n_hits];
        h->sources = &b->sources[b->n_hits * b->per_hit];
        h->n_sources = 0;
    }
    size_t base = (size_t)(h - b->hits) * b->per_hit;
    uint64_t *sizes = &b->sizes[base];
    uint32_t *ranks = &b->ranks[base];
    size_t keep = b->per_hit < SN_SEARCH_MAX_SOURCES ? b->per_hit : SN_SEARCH_MAX_SOURCES;
    /* Looked at: a few times what is kept, so a file with thousands of
     * sources costs a bounded number of lookups. */
    size_t look = hit->n_sources < 4 * keep ? hit->n_sources : 4 * keep;
    /* With many peers their records are far apart in memory: start every
     * source's record loading, then every address list (read when the
     * answer is encoded), so the misses overlap instead of queueing. */
    for (size_t i = 0; i < look; i++)
        SN_PREFETCH(hit->sources[i].peer_ctx);
    for (size_t i = 0; i < look; i++)
        SN_PREFETCH(((const struct sn_conn *)hit->sources[i].peer_ctx)->addrs);
    for (size_t i = 0; i < look; i++) {
        const struct sn_conn *src = hit->sources[i].peer_ctx;
        if (b->asker && memcmp(src->id, b->asker, WIRE_ID_LEN) == 0)
            continue;
        uint32_t rk = source_rank(b->d, src->id);
        if (rk == SN_ROUTE_RANK_DROP)
            continue;
        /* Into the short list sorted by rank (stable: index order among
         * equals), keeping the best `keep`. */
        size_t at = h->n_sources;
        while (at > 0 && ranks[at - 1] > rk)
            at--;
        if (at >= keep)
            continue;
        size_t last = h->n_sources < keep ? h->n_sources : keep - 1;
        memmove(&h->sources[at + 1], &h->sources[at], (last - at) * sizeof(h->sources[0]));
        memmove(&ranks[at + 1], &ranks[at], (last - at) * sizeof(ranks[0]));
        memmove(&sizes[at + 1], &sizes[at], (last - at) * sizeof(sizes[0]));
        if (h->n_sources < keep)
            h->n_sources++;
        struct msg_source *out = &h->sources[at];
        ranks[at] = rk;
        sizes[at] = hit->size;
        memcpy(out->peer_id, src->id, WIRE_ID_LEN);
        out->reachability = src->reachability;
        out->addrs = (struct wire_addr *)sn_conn_addrs_for(src, b->asker_from, &out->n_addrs);
    }
    if (fresh && h->n_sources == 0)
        return 0; /* only the asker has it, or only dropped sources */
    if (fresh) {
        memcpy(h->hash, hit->hash, WIRE_HASH_LEN);
        h->name = hit->name;
        b->n_hits++;
    }
    return 0;
}

/* Every file collected: each hit takes its best source's size; files with
 * more verified sources first. */
static void finish_hits(struct result_builder *b)
{
    for (size_t i = 0; i < b->n_hits; i++)
        b->verified[i] = sn_route_rank_sources(&b->hits[i], &b->sizes[i * b->per_hit],
                                               &b->ranks[i * b->per_hit]);
    sn_route_order_hits(b->hits, b->verified, b->n_hits);
}

static void builder_free(struct result_builder *b)
{
    free(b->hits);
    free(b->sources);
    free(b->sizes);
    free(b->ranks);
    free(b->verified);
}

/* Search the local index into res (its arrays are malloc'd into *b). */
static int local_search(struct sn_ctx *d, const struct msg_search *q, const struct sn_conn *asker,
                        struct result_builder *b, struct msg_search_result *res)
{
    size_t cap = q->max_results < d->s->max_results ? q->max_results : d->s->max_results;
    *b = (struct result_builder){.d = d,
                                 .asker = asker ? asker->id : NULL,
                                 .asker_from = asker ? link_remote_addr(asker->link) : NULL,
                                 .cap = cap,
                                 .per_hit = d->limits.max_sources};
    size_t slots = (cap ? cap : 1) * b->per_hit;
    b->hits = calloc(cap ? cap : 1, sizeof(*b->hits));
    b->sources = calloc(slots, sizeof(*b->sources));
    b->sizes = calloc(slots, sizeof(*b->sizes));
    b->ranks = calloc(slots, sizeof(*b->ranks));
    b->verified = calloc(cap ? cap : 1, sizeof(*b->verified));
    if (b->hits == NULL || b->sources == NULL || b->sizes == NULL || b->ranks == NULL ||
        b->verified == NULL) {
        builder_free(b);
        return SOVA_ERR_NOMEM;
    }
    struct sn_index_query iq = {
        .keywords = q->keywords,
        .n_keywords = q->n_keywords,
        .max_results = cap + 1, /* one more: the asker's own files are dropped */
        .has_size_range = q->has_size_range,
        .min_size = q->min_size,
        .max_size = q->max_size,
    };
    if (q->has_hash)
        sn_index_lookup_hash(d->index, q->hash, collect_hit, b);
    else
        sn_index_search(d->index, &iq, collect_hit, b, NULL);
    finish_hits(b);
    memset(res, 0, sizeof(*res));
    res->query_id = q->query_id;
    res->flags = MSG_RESULT_FINAL;
    res->hits = b->hits;
    res->n_hits = b->n_hits;
    return 0;
}

/* ---- answering ------------------------------------------------------------------------ */

/* A peer that asked for a file by hash was handed these sources for it: it
 * may go on to download from them, so a report of them may count. */
static void introduce(struct sn_ctx *d, const struct sn_conn *peer, const uint8_t *hash,
                      const struct msg_search_result *res)
{
    uint64_t now = link_now_ms();
    for (size_t h = 0; h < res->n_hits; h++)
        for (size_t i = 0; i < res->hits[h].n_sources; i++)
            sn_intro_add(d->intros, peer->id, res->hits[h].sources[i].peer_id, hash, now);
}

static void answer(struct pending *q)
{
    struct sn_ctx *d = q->d;
    struct msg m = {.type = MSG_SEARCH_RESULT};
    if (q->asker != NULL &&
        sn_route_merge_result(q->merge, source_rank, d, &m.u.search_result) == 0) {
        if (link_remote_role(q->asker->link) == MSG_ROLE_SUPERNODE) {
            m.type = MSG_FWD_HITS;
            m.u.fwd_hits.query_id = q->qid;
        } else {
            m.u.search_result.query_id = q->asker_qid;
            d->counters.searches++;
            if (q->by_hash)
                introduce(d, q->asker, q->hash, &m.u.search_result);
        }
        m.u.search_result.flags = MSG_RESULT_FINAL;
        link_send(q->asker->link, &m);
    }
    pending_free(q);
}

static void answer_locate(struct pending *q, const struct msg_locate_result *found)
{
    if (q->located != NULL) {
        sn_located_fn *fn = q->located;
        void *arg = q->located_arg;
        struct sn_ctx *d = q->d;
        pending_free(q);
        fn(d, found, arg);
        return;
    }
    struct msg m = {.type = MSG_LOCATE_RESULT};
    if (found != NULL)
        m.u.locate_result = *found;
    else
        memcpy(m.u.locate_result.peer_id, q->locate_id, WIRE_ID_LEN);
    if (q->asker != NULL)
        link_send(q->asker->link, &m);
    pending_free(q);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct pending *q = arg;
    (void)fd;
    (void)what;
    if (q->locate)
        answer_locate(q, NULL);
    else
        answer(q);
}

static struct pending *pending_new(struct sn_ctx *d, struct sn_conn *asker, unsigned deadline_ms)
{
    struct sn_search *s = d->search;
    if (s->n_pending >= SN_SEARCH_MAX_PENDING)
        return NULL;
    struct pending *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    q->d = d;
    q->asker = asker;
    q->timer = evtimer_new(evloop_base(d->loop), on_deadline, q);
    if (q->timer == NULL) {
        free(q);
        return NULL;
    }
    struct timeval tv = {.tv_sec = deadline_ms / 1000,
                         .tv_usec = (suseconds_t)(deadline_ms % 1000) * 1000};
    evtimer_add(q->timer, &tv);
    q->next = s->pending;
    s->pending = q;
    s->n_pending++;
    return q;
}

/* IDs of the alive supernodes we have a link to. */
static size_t alive_linked(const struct sn_ctx *d, uint8_t (*out)[WIRE_ID_LEN], size_t cap)
{
    return sn_membership_live(d, out, cap, true);
}

/* Send q to targets as FWD_SEARCH and wait for them in p's merge. */
static size_t forward(struct sn_ctx *d, struct pending *p, const struct msg_search *q,
                      const struct sn_route_target *targets, size_t n, unsigned deadline_ms)
{
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        struct msg m = {.type = MSG_FWD_SEARCH};
        memcpy(m.u.fwd_search.origin_sn, p->origin, WIRE_ID_LEN);
        m.u.fwd_search.ttl = targets[i].ttl;
        m.u.fwd_search.deadline_ms = deadline_ms;
        m.u.fwd_search.search = *q;
        m.u.fwd_search.search.query_id = p->qid;
        if (sn_fed_send(d, targets[i].sn_id, &m) == 0 &&
            sn_route_merge_expect(p->merge, targets[i].sn_id) == 0)
            sent++;
    }
    return sent;
}

static void search_from_peer(struct sn_ctx *d, struct sn_conn *peer, const struct msg_search *q)
{
    struct sn_search *s = d->search;
    struct result_builder b;
    struct msg_search_result local;
    if (local_search(d, q, peer, &b, &local) != 0) {
        link_send_error(peer->link, MSG_ERR_INTERNAL, MSG_SEARCH, "out of memory");
        return;
    }
    uint8_t alive[SN_SEARCH_MAX_TARGETS][WIRE_ID_LEN];
    struct sn_route_target targets[SN_SEARCH_MAX_TARGETS];
    size_t n_alive = alive_linked(d, alive, SN_SEARCH_MAX_TARGETS);
    uint64_t now = link_now_ms();
    size_t n = sn_route_targets(s->route, q, (const uint8_t(*)[WIRE_ID_LEN])alive, n_alive, now,
                                targets, SN_SEARCH_MAX_TARGETS, NULL);
    /* No other supernode may hold an answer (alone, or no summary matches):
     * the local answer as it is, in the order a merge would give it, without
     * copying every hit into a merge first. */
    struct pending *p = n > 0 ? pending_new(d, peer, SN_SEARCH_DEADLINE_MS) : NULL;
    if (p != NULL) {
        p->merge = sn_route_merge_new(b.cap, now + SN_SEARCH_DEADLINE_MS);
        RAND_bytes((unsigned char *)&p->qid, sizeof(p->qid));
        memcpy(p->origin, identity_id(d->id), WIRE_ID_LEN);
        p->asker_qid = q->query_id;
        p->by_hash = q->has_hash;
        memcpy(p->hash, q->hash, WIRE_HASH_LEN);
    }
    if (p == NULL || p->merge == NULL || sn_route_merge_add(p->merge, NULL, &local) != 0) {
        /* No room to wait for others: the local answer alone. */
        if (p != NULL)
            pending_free(p);
        struct msg m = {.type = MSG_SEARCH_RESULT};
        m.u.search_result = local;
        if (q->has_hash)
            introduce(d, peer, q->hash, &local);
        link_send(peer->link, &m);
        d->counters.searches++;
        builder_free(&b);
        return;
    }
    builder_free(&b);
    sn_route_seen(s->route, p->origin, p->qid, now); /* our own echoes are dropped */
    size_t sent = forward(d, p, q, targets, n, SN_SEARCH_DEADLINE_MS);
    s->forwarded += sent;
    log_debug("search", "%s: search of %zu keywords forwarded to %zu of %zu supernodes",
              link_name(peer->link), q->n_keywords, sent, n_alive);
    if (sent == 0)
        answer(p);
}

/* A FWD_SEARCH from supernode `from`: answer from the local index, and
 * relay to members it has no summary of while the TTL allows. */
static void on_fwd_search(struct sn_ctx *d, struct sn_conn *from, const struct msg_fwd_search *f)
{
    struct sn_search *s = d->search;
    uint64_t now = link_now_ms();
    d->counters.fwd_searches_in++;
    struct msg empty = {.type = MSG_FWD_HITS};
    empty.u.fwd_hits.query_id = f->search.query_id;
    empty.u.fwd_hits.flags = MSG_RESULT_FINAL;
    if (sn_route_seen(s->route, f->origin_sn, f->search.query_id, now) ||
        !sn_route_admit(s->route, f->origin_sn, now)) {
        link_send(from->link, &empty); /* duplicate or over the origin's rate */
        return;
    }
    struct result_builder b;
    struct msg_search_result local;
    if (local_search(d, &f->search, NULL, &b, &local) != 0) {
        link_send(from->link, &empty);
        return;
    }
    uint8_t alive[SN_SEARCH_MAX_TARGETS][WIRE_ID_LEN];
    struct sn_route_target targets[SN_SEARCH_MAX_TARGETS];
    size_t n_alive = alive_linked(d, alive, SN_SEARCH_MAX_TARGETS);
    uint32_t child_deadline = 0;
    size_t n =
        sn_route_relay_targets(s->route, f, from->id, (const uint8_t(*)[WIRE_ID_LEN])alive, n_alive,
                               now, targets, SN_SEARCH_MAX_TARGETS, &child_deadline, NULL);
    struct pending *p = n ? pending_new(d, from, f->deadline_ms) : NULL;
    if (p != NULL) {
        p->qid = f->search.query_id;
        memcpy(p->origin, f->origin_sn, WIRE_ID_LEN);
        p->merge = sn_route_merge_new(b.cap, now + f->deadline_ms);
    }
    if (p == NULL || p->merge == NULL || sn_route_merge_add(p->merge, NULL, &local) != 0 ||
        forward(d, p, &f->search, targets, n, child_deadline) == 0) {
        if (p != NULL)
            pending_free(p);
        struct msg m = {.type = MSG_FWD_HITS};
        m.u.fwd_hits = local;
        m.u.fwd_hits.query_id = f->search.query_id;
        link_send(from->link, &m);
        builder_free(&b);
        return;
    }
    s->relayed++;
    builder_free(&b);
}

static void on_fwd_hits(struct sn_ctx *d, struct sn_conn *from, const struct msg_search_result *r)
{
    struct pending *q = pending_find(d, r->query_id, false);
    if (q == NULL)
        return; /* answered already (deadline) */
    sn_route_merge_add(q->merge, from->id, r);
    if (sn_route_merge_done(q->merge, link_now_ms()))
        answer(q);
}

/* ---- LOCATE across the federation --------------------------------------------------------- */

/* Ask every linked alive supernode where peer_id is; NULL when there is
 * none to ask (or no room for another pending question). */
static struct pending *locate_start(struct sn_ctx *d, struct sn_conn *asker,
                                    const uint8_t peer_id[WIRE_ID_LEN])
{
    uint8_t alive[SN_SEARCH_MAX_TARGETS][WIRE_ID_LEN];
    size_t n = alive_linked(d, alive, SN_SEARCH_MAX_TARGETS);
    struct pending *p = n ? pending_new(d, asker, SN_LOCATE_DEADLINE_MS) : NULL;
    if (p == NULL)
        return NULL;
    p->locate = true;
    memcpy(p->locate_id, peer_id, WIRE_ID_LEN);
    RAND_bytes((unsigned char *)&p->qid, sizeof(p->qid));
    struct msg m = {.type = MSG_FWD_LOCATE};
    m.u.fwd_locate.query_id = p->qid;
    memcpy(m.u.fwd_locate.peer_id, peer_id, WIRE_ID_LEN);
    for (size_t i = 0; i < n; i++)
        p->waiting += sn_fed_send(d, alive[i], &m) == 0;
    return p;
}

/* A LOCATE from an attached peer: the index here, else the federation. */
void sn_search_on_locate(struct sn_ctx *d, struct sn_conn *peer, const struct msg *msg)
{
    const struct msg_locate *l = &msg->u.locate;
    const struct sn_conn *target = sn_index_peer_ctx(d->index, l->peer_id);
    d->counters.locates++;
    sn_intro_add(d->intros, peer->id, l->peer_id, NULL, link_now_ms());
    if (target != NULL) {
        struct msg m = {.type = MSG_LOCATE_RESULT};
        struct msg_locate_result *r = &m.u.locate_result;
        memcpy(r->peer_id, l->peer_id, WIRE_ID_LEN);
        r->found = 1;
        r->reachability = target->reachability;
        r->addrs = (struct wire_addr *)sn_conn_addrs_for(target, link_remote_addr(peer->link),
                                                         &r->n_addrs);
        memcpy(r->sn_id, identity_id(d->id), WIRE_ID_LEN);
        link_send(peer->link, &m);
        return;
    }
    if (locate_start(d, peer, l->peer_id) == NULL) { /* attached elsewhere, perhaps */
        struct msg m = {.type = MSG_LOCATE_RESULT};
        memcpy(m.u.locate_result.peer_id, l->peer_id, WIRE_ID_LEN);
        link_send(peer->link, &m);
    }
}

void sn_search_locate_cb(struct sn_ctx *d, const uint8_t peer_id[WIRE_ID_LEN], sn_located_fn *fn,
                         void *arg)
{
    struct pending *p = locate_start(d, NULL, peer_id);
    if (p == NULL) {
        fn(d, NULL, arg);
        return;
    }
    p->located = fn;
    p->located_arg = arg;
}

void sn_search_locate_cancel(struct sn_ctx *d, const void *arg)
{
    struct pending *q = d->search ? d->search->pending : NULL;
    while (q != NULL) {
        struct pending *next = q->next;
        if (q->located != NULL && q->located_arg == arg)
            pending_free(q);
        q = next;
    }
}

static void on_fwd_locate(struct sn_ctx *d, struct sn_conn *from, const struct msg_fwd_locate *l)
{
    struct msg m = {.type = MSG_FWD_LOCATE_RESULT};
    m.u.fwd_locate_result.query_id = l->query_id;
    struct msg_locate_result *r = &m.u.fwd_locate_result.result;
    memcpy(r->peer_id, l->peer_id, WIRE_ID_LEN);
    const struct sn_conn *target = sn_index_peer_ctx(d->index, l->peer_id);
    if (target != NULL) {
        r->found = 1;
        r->reachability = target->reachability;
        r->addrs = (struct wire_addr *)sn_conn_addrs_for(target, NULL, &r->n_addrs);
        memcpy(r->sn_id, identity_id(d->id), WIRE_ID_LEN);
    }
    link_send(from->link, &m);
}

static void on_fwd_locate_result(struct sn_ctx *d, const struct msg_fwd_locate_result *r)
{
    struct pending *q = pending_find(d, r->query_id, true);
    if (q == NULL)
        return;
    if (r->result.found)
        answer_locate(q, &r->result);
    else if (--q->waiting == 0)
        answer_locate(q, NULL);
}

/* ---- summaries ------------------------------------------------------------------------- */

static void send_summary(struct sn_ctx *d, struct sn_conn *to)
{
    struct sn_search *s = d->search;
    if (s->mine == NULL)
        return;
    struct msg m = {.type = MSG_SUMMARY};
    sn_summary_to_msg(s->mine, &m.u.summary);
    if (to != NULL) {
        link_send(to->link, &m);
        return;
    }
    for (size_t i = 0; i < sn_fed_links_count(d); i++)
        link_send(sn_fed_links_get(d, i)->link, &m);
    s->summary_sent_ms = link_now_ms();
}

static void rebuild_summary(struct sn_ctx *d, uint64_t now)
{
    struct sn_search *s = d->search;
    uint64_t wall = sova_wall_ms();
    uint64_t version = sn_summary_next_version(s->mine ? sn_summary_version(s->mine) : 0, wall);
    struct sn_summary_params params = sn_summary_params_default();
    struct sn_summary *fresh = sn_summary_build(d->index, identity_id(d->id), version, &params);
    if (fresh == NULL)
        return;
    sn_summary_sched_done(&s->sched, d->index_changes, now);
    bool same = s->mine && sn_summary_same_bits(s->mine, fresh);
    bool refresh = now - s->summary_sent_ms >= SN_SUMMARY_REFRESH_MS_DEFAULT;
    if (same && !refresh) {
        sn_summary_free(fresh);
        return;
    }
    sn_summary_free(s->mine);
    s->mine = fresh;
    log_info("search", "summary version %llu: %zu keywords, %u bits, k=%u, sent to %zu supernodes",
             (unsigned long long)version, sn_summary_keywords(fresh), sn_summary_bit_count(fresh),
             sn_summary_hash_count(fresh), sn_fed_links_count(d));
    send_summary(d, NULL);
}

static void on_check(evutil_socket_t fd, short what, void *arg)
{
    struct sn_ctx *d = arg;
    struct sn_search *s = d->search;
    (void)fd;
    (void)what;
    uint64_t now = link_now_ms();
    if (sn_summary_sched_due(&s->sched, d->index_changes, now, NULL) ||
        now - s->summary_sent_ms >= SN_SUMMARY_REFRESH_MS_DEFAULT)
        rebuild_summary(d, now);
    struct timeval tv = {.tv_sec = 0, .tv_usec = SN_SUMMARY_CHECK_MS * 1000};
    evtimer_add(s->check, &tv);
}

static void on_summary(struct sn_ctx *d, struct sn_conn *from, const struct msg_summary *m)
{
    if (memcmp(m->sn_id, from->id, WIRE_ID_LEN) != 0) {
        /* Summaries are never relayed: each SN speaks for itself. */
        link_send_error(from->link, MSG_ERR_UNAUTHORIZED, MSG_SUMMARY,
                        "a summary must be the sender's own");
        return;
    }
    sn_route_update(d->search->route, m, link_now_ms());
}

/* ---- hooks ------------------------------------------------------------------------------ */

void sn_search_link_up(struct sn_ctx *d, struct sn_conn *p)
{
    send_summary(d, p);
}

void sn_search_forget(struct sn_ctx *d, const uint8_t sn_id[WIRE_ID_LEN])
{
    sn_route_forget(d->search->route, sn_id);
}

/* (Not const: the daemon's table of features gives every conn_gone one type.) */
// cppcheck-suppress constParameter
void sn_search_conn_gone(struct sn_ctx *d, struct sn_conn *p)
{
    for (struct pending *q = d->search->pending; q; q = q->next)
        if (q->asker == p)
            q->asker = NULL; /* answered into the void at its deadline */
}

/* A SEARCH from an attached peer, within its search-rate. */
void sn_search_on_search(struct sn_ctx *d, struct sn_conn *p, const struct msg *m)
{
    const struct msg_search *q = &m->u.search;
    uint64_t wait = 0;
    if (sn_rate_take(&p->lim.search, 1, link_now_ms(), &wait) != 0) {
        sn_conn_rate_limited(p, MSG_SEARCH, wait, "too many searches (search-rate)");
        /* ...and an empty final answer, so the asker is not left waiting. */
        struct msg r = {.type = MSG_SEARCH_RESULT};
        r.u.search_result =
            (struct msg_search_result){.query_id = q->query_id, .flags = MSG_RESULT_FINAL};
        link_send(p->link, &r);
        return;
    }
    search_from_peer(d, p, q);
}

void sn_search_on_fed_message(struct sn_ctx *d, struct sn_conn *p, const struct msg *m)
{
    switch (m->type) {
    case MSG_SUMMARY:
        on_summary(d, p, &m->u.summary);
        return;
    case MSG_FWD_SEARCH:
        on_fwd_search(d, p, &m->u.fwd_search);
        return;
    case MSG_FWD_HITS:
        on_fwd_hits(d, p, &m->u.fwd_hits);
        return;
    case MSG_FWD_LOCATE:
        on_fwd_locate(d, p, &m->u.fwd_locate);
        return;
    case MSG_FWD_LOCATE_RESULT:
        on_fwd_locate_result(d, &m->u.fwd_locate_result);
        return;
    default:
        return;
    }
}

int sn_search_start(struct sn_ctx *d, const struct sn_search_hooks *hooks)
{
    struct sn_search *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return SOVA_ERR_NOMEM;
    d->search = s;
    s->hooks = *hooks;
    struct sn_route_limits lim = sn_route_limits_default();
    s->route = sn_route_new(&lim, identity_id(d->id));
    sn_summary_sched_init(&s->sched, (uint32_t)d->s->summary_interval_ms);
    s->check = evtimer_new(evloop_base(d->loop), on_check, d);
    if (s->route == NULL || s->check == NULL)
        return SOVA_ERR_NOMEM;
    rebuild_summary(d, link_now_ms());
    on_check(-1, 0, d);
    return 0;
}

void sn_search_stop(struct sn_ctx *d)
{
    struct sn_search *s = d->search;
    if (s == NULL)
        return;
    while (s->pending) {
        if (s->pending->located != NULL)
            answer_locate(s->pending, NULL); /* its owner frees what it holds */
        else
            pending_free(s->pending);
    }
    if (s->check)
        event_free(s->check);
    sn_summary_free(s->mine);
    sn_route_free(s->route);
    free(s);
    d->search = NULL;
}

void sn_search_stats(const struct sn_ctx *d, uint64_t *forwarded, uint64_t *relayed,
                     size_t *summaries)
{
    *forwarded = d->search->forwarded;
    *relayed = d->search->relayed;
    *summaries = sn_route_summaries(d->search->route);
}
