/* sim_search.c - routed search over N supernodes and a population of peers
 * modelled by their files and their churn, with the real summary and
 * routing code (supernode/sn_summary.h, sn_route.h).
 *
 * Peers. Each has files_per_peer files named like sova_loadgen's: 2-4 words
 * of a Zipf (s = 1) vocabulary ("w1" commonest) and one of 12 extensions;
 * a file's words are a function of (seed, peer, file), regenerated when
 * needed. A peer's files do not change; its presence does:
 *   - sessions are Weibull (shape session_shape, median session_median_s),
 *     the shape measured for Gnutella, Kad and BitTorrent peers by
 *     Stutzbach & Rejaie, "Understanding churn in peer-to-peer networks"
 *     (IMC 2006): many short sessions, a long tail;
 *   - time away between sessions is exponential (offline_mean_s); a
 *     returning peer attaches to a supernode drawn at random;
 *   - while online a peer changes address at ipchange_per_day (Poisson):
 *     its link drops, it is away 1-30 s and attaches again, to the same
 *     supernode with probability reattach_same_pct, else to another.
 * At the start each peer is online with the stationary probability, with
 * what is left of a session seen at a random moment (sim_weibull_residual),
 * or away for an exponential time: the churn is stationary from the start.
 *
 * Supernodes rebuild their summaries as sn_search.c does: a change counter
 * bumped when a peer attaches or leaves, sn_summary_sched_due() for when,
 * every distinct keyword of the peers' files added, an unchanged rebuild not
 * sent, the current one re-sent every SN_SUMMARY_REFRESH_MS_DEFAULT. A sent
 * summary goes to every other supernode: its frame bytes count N - 1 times.
 * Receivers are modelled by one shared sn_route table holding what every
 * supernode has received (summaries travel one hop, so all receivers hold
 * the same ones within a latency); its max_summaries is the daemon's cap
 * (or a raised one), so with more supernodes than that it keeps the most
 * recently received ones, as each daemon's table would.
 *
 * Queries. Issued evenly over the measured window at random origins, 1-2
 * words drawn like the names' words (sova_loadgen's mix). The origin answers
 * from its own index and sends the query to sn_route_targets() of all
 * other supernodes; a blind target (no summary) passes it on with
 * sn_route_relay_targets(). Each one-way message takes lat_min + U[0,
 * jitter) ms, plus a 200 ms retransmission each time it is lost (TCP
 * carries SN links: a loss is a delay, not a loss); an answer later than
 * deadline_ms (3/4 of it for a relayed one) is not merged. A supernode
 * answers min(its matching files, max_results).
 * Recall = files the origin gets / min(max_results, matching files in the
 * federation) (the result cap is the protocol's, not a routing loss); a
 * query matching files of over SIM_COMMON_PEERS peers is routed, not scored.
 */
#include "sim.h"

#include "sn_member.h"
#include "sn_route.h"
#include "sn_summary.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIM_BASE_WALL    1700000000000ull
#define SIM_EXTENSIONS   12
#define SIM_WORDS_MAX    5 /* 2-4 words + the extension */
#define SIM_COMMON_PEERS 50000
#define SIM_RTO_MS       200
#define SIM_QUERY_WORDS  2

static const char *const extensions[SIM_EXTENSIONS] = {"mp3", "avi", "mkv", "jpg",  "pdf", "flac",
                                                       "mp4", "iso", "zip", "epub", "txt", "png"};

enum { CH_END = 1, CH_RETURN, CH_IPCHANGE, CH_REBUILD, CH_REFRESH };

struct chev {
    double at; /* ms */
    uint32_t who;
    uint8_t kind;
    uint32_t tag; /* peer: its event generation; supernode: unused */
};

struct peer {
    uint32_t sn;  /* UINT32_MAX: offline */
    uint32_t pos; /* in its supernode's list */
    uint32_t gen;
};

struct snode {
    uint8_t id[WIRE_ID_LEN];
    uint32_t *peers;
    size_t n_peers, cap_peers;
    uint64_t changes;
    struct sn_summary_sched sched;
    struct sn_summary *sent; /* the last summary sent */
    uint64_t version;
    bool rebuild_pending;
    size_t frame_bytes; /* of the last SUMMARY sent */
};

struct match {
    uint32_t peer;
    uint16_t files;
};

struct query {
    uint32_t word[SIM_QUERY_WORDS];
    size_t n_words;
    struct match *m;
    size_t n_m, cap_m;
    bool common;
};

struct world {
    struct sim_search_params p;
    struct sim_rng rng;
    /* Zipf over the vocabulary: Walker's alias tables */
    double *alias_p;
    uint32_t *alias_i;
    struct peer *peers;
    struct snode *sns;
    struct chev *heap;
    size_t n_ev, cap_ev;
    double now;
    uint32_t *stamp; /* per word: last rebuild that counted it */
    uint32_t stamp_now;
    uint32_t *distinct;
    struct sn_route *route;
    struct wire_limits lim;
    struct wire_buf buf;
    /* measured window */
    bool measuring;
    uint64_t summary_bytes, rebuilds, churn_events, sent_summaries;
    double kb_sum, kw_sum, fp_sum;
    uint64_t online_sum, online_samples;
};

/* ---- Zipf by the alias method: O(1) a draw ------------------------------------------ */
static int alias_init(struct world *w)
{
    size_t n = w->p.vocab;
    w->alias_p = malloc(n * sizeof(double));
    w->alias_i = malloc(n * sizeof(uint32_t));
    double *q = malloc(n * sizeof(double));
    uint32_t *small = malloc(n * sizeof(uint32_t)), *large = malloc(n * sizeof(uint32_t));
    if (!w->alias_p || !w->alias_i || !q || !small || !large)
        return -1;
    double h = 0;
    for (size_t i = 0; i < n; i++)
        h += 1.0 / (double)(i + 1);
    size_t ns = 0, nl = 0;
    for (size_t i = 0; i < n; i++) {
        q[i] = (double)n / ((double)(i + 1) * h);
        if (q[i] < 1)
            small[ns++] = (uint32_t)i;
        else
            large[nl++] = (uint32_t)i;
    }
    while (ns && nl) {
        uint32_t s = small[--ns], l = large[--nl];
        w->alias_p[s] = q[s];
        w->alias_i[s] = l;
        q[l] -= 1 - q[s];
        if (q[l] < 1)
            small[ns++] = l;
        else
            large[nl++] = l;
    }
    while (nl)
        w->alias_p[large[--nl]] = 1;
    while (ns)
        w->alias_p[small[--ns]] = 1;
    free(q);
    free(small);
    free(large);
    return 0;
}

static uint32_t zipf(const struct world *w, struct sim_rng *r)
{
    uint64_t x = sim_rng_next(r);
    uint32_t i = (uint32_t)((x >> 32) % w->p.vocab);
    double u = (double)(x & 0xffffffffu) / 4294967296.0;
    return u < w->alias_p[i] ? i : w->alias_i[i];
}

/* The distinct words of file j of peer i (word ids; extensions are vocab + e). */
static size_t file_words(const struct world *w, uint32_t peer, unsigned j, uint32_t *out)
{
    struct sim_rng r;
    sim_rng_seed(&r, w->p.seed, ((uint64_t)peer << 16 | j) + 0x66696c65ull); /* "file" */
    size_t k = 2 + sim_below(&r, 3), n = 0;
    for (size_t a = 0; a <= k; a++) {
        uint32_t word = a < k ? zipf(w, &r) : w->p.vocab + (uint32_t)sim_below(&r, SIM_EXTENSIONS);
        bool dup = false;
        for (size_t b = 0; b < n; b++)
            dup |= out[b] == word;
        if (!dup)
            out[n++] = word;
    }
    return n;
}

static int word_text(const struct world *w, uint32_t word, char *buf, size_t len)
{
    if (word >= w->p.vocab)
        return snprintf(buf, len, "%s", extensions[word - w->p.vocab]);
    return snprintf(buf, len, "w%u", word + 1);
}

/* ---- events ------------------------------------------------------------------------- */
static bool ch_less(const struct chev *a, const struct chev *b)
{
    return a->at != b->at ? a->at < b->at : a->who < b->who;
}

static void ch_push(struct world *w, struct chev ev)
{
    if (w->n_ev == w->cap_ev) {
        w->cap_ev = w->cap_ev ? w->cap_ev * 2 : 1 << 16;
        w->heap = realloc(w->heap, w->cap_ev * sizeof(*w->heap));
        if (w->heap == NULL)
            abort();
    }
    size_t i = w->n_ev++;
    while (i > 0 && ch_less(&ev, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = ev;
}

static struct chev ch_pop(struct world *w)
{
    struct chev top = w->heap[0], last = w->heap[--w->n_ev];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->n_ev)
            break;
        if (c + 1 < w->n_ev && ch_less(&w->heap[c + 1], &w->heap[c]))
            c++;
        if (!ch_less(&w->heap[c], &last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (w->n_ev)
        w->heap[i] = last;
    return top;
}

/* ---- summaries ---------------------------------------------------------------------- */
static void send_summary(struct world *w, struct snode *sn)
{
    struct msg m = {.type = MSG_SUMMARY};
    sn_summary_to_msg(sn->sent, &m.u.summary);
    wire_buf_truncate(&w->buf, 0);
    if (msg_encode(&m, &w->lim, &w->buf, NULL) != 0)
        abort();
    sn->frame_bytes = w->buf.len;
    if (sn_route_update(w->route, &m.u.summary, (uint64_t)w->now) < 0)
        abort();
    if (w->measuring) {
        w->summary_bytes += (uint64_t)w->buf.len * (w->p.n_sn - 1);
        w->sent_summaries++;
    }
}

static void rebuild(struct world *w, uint32_t s)
{
    struct snode *sn = &w->sns[s];
    uint32_t words[SIM_WORDS_MAX];
    size_t n = 0;
    w->stamp_now++;
    for (size_t k = 0; k < sn->n_peers; k++) {
        for (unsigned j = 0; j < w->p.files_per_peer; j++) {
            size_t nw = file_words(w, sn->peers[k], j, words);
            for (size_t a = 0; a < nw; a++) {
                if (w->stamp[words[a]] != w->stamp_now) {
                    w->stamp[words[a]] = w->stamp_now;
                    w->distinct[n++] = words[a];
                }
            }
        }
    }
    sn->version = sn_summary_next_version(sn->version, SIM_BASE_WALL + (uint64_t)w->now);
    struct sn_summary_params params = sn_summary_params_default();
    struct sn_summary *fresh = sn_summary_new(sn->id, sn->version, n, &params);
    if (fresh == NULL)
        abort();
    char text[24];
    for (size_t i = 0; i < n; i++) {
        int len = word_text(w, w->distinct[i], text, sizeof(text));
        sn_summary_add(fresh, text, (size_t)len);
    }
    sn_summary_sched_done(&sn->sched, sn->changes, (uint64_t)w->now);
    if (w->measuring) {
        w->rebuilds++;
        w->kw_sum += (double)n;
        w->fp_sum += sn_summary_fp_ppm(fresh) / 1e4;
    }
    if (sn->sent != NULL && sn_summary_same_bits(sn->sent, fresh)) {
        sn_summary_free(fresh);
        return;
    }
    sn_summary_free(sn->sent);
    sn->sent = fresh;
    send_summary(w, sn);
    if (w->measuring)
        w->kb_sum += (double)sn->frame_bytes / 1024.0;
}

/* The index of s changed: rebuild now or when sn_summary_sched says. */
static void changed(struct world *w, uint32_t s)
{
    struct snode *sn = &w->sns[s];
    sn->changes++;
    if (sn->rebuild_pending)
        return;
    uint64_t next = 0;
    if (sn_summary_sched_due(&sn->sched, sn->changes, (uint64_t)w->now, &next))
        next = (uint64_t)w->now;
    if (next == UINT64_MAX)
        return;
    sn->rebuild_pending = true;
    ch_push(w, (struct chev){.at = (double)next, .who = s, .kind = CH_REBUILD});
}

/* ---- peers -------------------------------------------------------------------------- */
static void attach(struct world *w, uint32_t i, uint32_t s)
{
    struct snode *sn = &w->sns[s];
    if (sn->n_peers == sn->cap_peers) {
        sn->cap_peers = sn->cap_peers ? sn->cap_peers * 2 : 64;
        sn->peers = realloc(sn->peers, sn->cap_peers * sizeof(*sn->peers));
        if (sn->peers == NULL)
            abort();
    }
    w->peers[i].sn = s;
    w->peers[i].pos = (uint32_t)sn->n_peers;
    sn->peers[sn->n_peers++] = i;
    changed(w, s);
}

static void detach(struct world *w, uint32_t i)
{
    struct peer *p = &w->peers[i];
    struct snode *sn = &w->sns[p->sn];
    uint32_t last = sn->peers[--sn->n_peers];
    sn->peers[p->pos] = last;
    w->peers[last].pos = p->pos;
    uint32_t s = p->sn;
    p->sn = UINT32_MAX;
    changed(w, s);
}

/* An online peer's next event: its session ends, or its address changes.
 * residual: the session was already running when the simulation began. */
static void schedule_online(struct world *w, uint32_t i, bool residual)
{
    double end =
        (residual ? sim_weibull_residual(&w->rng, w->p.session_shape, w->p.session_median_s)
                  : sim_weibull(&w->rng, w->p.session_shape, w->p.session_median_s)) *
        1000.0;
    double ip =
        w->p.ipchange_per_day > 0 ? sim_exp(&w->rng, 86400000.0 / w->p.ipchange_per_day) : end + 1;
    struct peer *p = &w->peers[i];
    p->gen++;
    ch_push(w, (struct chev){.at = w->now + (ip < end ? ip : end),
                             .who = i,
                             .kind = ip < end ? CH_IPCHANGE : CH_END,
                             .tag = p->gen});
}

static void on_peer_event(struct world *w, const struct chev *ev)
{
    struct peer *p = &w->peers[ev->who];
    if (ev->tag != p->gen)
        return;
    if (w->measuring)
        w->churn_events++;
    switch (ev->kind) {
    case CH_END:
        detach(w, ev->who);
        p->pos = UINT32_MAX; /* comes back anywhere */
        p->gen++;
        ch_push(w, (struct chev){.at = w->now + sim_exp(&w->rng, w->p.offline_mean_s * 1000.0),
                                 .who = ev->who,
                                 .kind = CH_RETURN,
                                 .tag = p->gen});
        return;
    case CH_IPCHANGE: {
        uint32_t was = p->sn;
        detach(w, ev->who);
        p->gen++;
        /* Away 1-30 s; tag's high bit: back to the same supernode. */
        bool same = sim_unit(&w->rng) * 100.0 <= w->p.reattach_same_pct;
        ch_push(w, (struct chev){.at = w->now + 1000.0 + sim_unit(&w->rng) * 29000.0,
                                 .who = ev->who,
                                 .kind = CH_RETURN,
                                 .tag = p->gen});
        p->pos = same ? was : UINT32_MAX; /* where it goes back (pos is free while away) */
        return;
    }
    case CH_RETURN: {
        uint32_t s = p->pos != UINT32_MAX && p->pos < w->p.n_sn && p->sn == UINT32_MAX
                         ? p->pos
                         : (uint32_t)sim_below(&w->rng, w->p.n_sn);
        attach(w, ev->who, s);
        schedule_online(w, ev->who, false);
        return;
    }
    default:
        return;
    }
}

static void run_until(struct world *w, double t)
{
    while (w->n_ev && w->heap[0].at <= t) {
        struct chev ev = ch_pop(w);
        w->now = ev.at;
        if (ev.kind == CH_REBUILD) {
            struct snode *sn = &w->sns[ev.who];
            sn->rebuild_pending = false;
            uint64_t next = 0;
            if (sn_summary_sched_due(&sn->sched, sn->changes, (uint64_t)w->now, &next))
                rebuild(w, ev.who);
            else if (next != UINT64_MAX) {
                sn->rebuild_pending = true;
                ch_push(w, (struct chev){.at = (double)next, .who = ev.who, .kind = CH_REBUILD});
            }
        } else if (ev.kind == CH_REFRESH) {
            if (w->sns[ev.who].sent != NULL)
                send_summary(w, &w->sns[ev.who]);
            ch_push(w, (struct chev){.at = w->now + SN_SUMMARY_REFRESH_MS_DEFAULT,
                                     .who = ev.who,
                                     .kind = CH_REFRESH});
        } else {
            on_peer_event(w, &ev);
        }
    }
    w->now = t;
}

/* ---- the query mix and its ground truth ------------------------------------------------ */
static int queries_make(struct world *w, struct query *q, size_t nq)
{
    struct sim_rng r;
    sim_rng_seed(&r, w->p.seed, 0x717565727900ull); /* "query" */
    size_t n_words = (size_t)w->p.vocab + SIM_EXTENSIONS;
    /* word -> queries whose first word it is (CSR) */
    uint32_t *start = calloc(n_words + 1, sizeof(*start)), *list = malloc(nq * sizeof(*list));
    uint16_t *cur = calloc(nq, sizeof(*cur));
    uint32_t *touched = malloc(nq * sizeof(*touched));
    if (!start || !list || !cur || !touched)
        return -1;
    for (size_t k = 0; k < nq; k++) {
        q[k].n_words = 1 + sim_below(&r, SIM_QUERY_WORDS);
        for (size_t a = 0; a < q[k].n_words; a++)
            q[k].word[a] = zipf(w, &r);
        if (q[k].n_words == 2 && q[k].word[1] == q[k].word[0])
            q[k].n_words = 1;
        start[q[k].word[0] + 1]++;
    }
    for (size_t i = 0; i < n_words; i++)
        start[i + 1] += start[i];
    uint32_t *fill = malloc(n_words * sizeof(*fill));
    if (fill == NULL)
        return -1;
    memcpy(fill, start, n_words * sizeof(*fill));
    for (size_t k = 0; k < nq; k++)
        list[fill[q[k].word[0]]++] = (uint32_t)k;
    free(fill);
    /* One pass over every file of every peer. */
    uint32_t words[SIM_WORDS_MAX];
    for (uint32_t i = 0; i < w->p.n_peers; i++) {
        size_t n_touched = 0;
        for (unsigned j = 0; j < w->p.files_per_peer; j++) {
            size_t nw = file_words(w, i, j, words);
            for (size_t a = 0; a < nw; a++) {
                for (uint32_t x = start[words[a]]; x < start[words[a] + 1]; x++) {
                    struct query *qq = &q[list[x]];
                    bool all = true;
                    for (size_t b = 1; b < qq->n_words && all; b++) {
                        bool in = false;
                        for (size_t c = 0; c < nw; c++)
                            in |= words[c] == qq->word[b];
                        all = in;
                    }
                    if (all && cur[list[x]]++ == 0)
                        touched[n_touched++] = list[x];
                }
            }
        }
        for (size_t t = 0; t < n_touched; t++) {
            struct query *qq = &q[touched[t]];
            if (!qq->common && qq->n_m == SIM_COMMON_PEERS) {
                qq->common = true;
                free(qq->m);
                qq->m = NULL;
            }
            if (!qq->common) {
                if (qq->n_m == qq->cap_m) {
                    qq->cap_m = qq->cap_m ? qq->cap_m * 2 : 16;
                    qq->m = realloc(qq->m, qq->cap_m * sizeof(*qq->m));
                    if (qq->m == NULL)
                        return -1;
                }
                qq->m[qq->n_m++] = (struct match){i, cur[touched[t]]};
            }
            cur[touched[t]] = 0;
        }
    }
    free(start);
    free(list);
    free(cur);
    free(touched);
    return 0;
}

/* One-way delay of a message, ms: latency plus a retransmission per loss. */
static double delay(struct world *w)
{
    double d = w->p.lat_min_ms + (w->p.lat_jitter_ms ? sim_unit(&w->rng) * w->p.lat_jitter_ms : 0);
    while (w->p.loss_permille && sim_below(&w->rng, 1000) < w->p.loss_permille)
        d += SIM_RTO_MS;
    return d;
}

static uint32_t sn_index_of(const uint8_t id[WIRE_ID_LEN])
{
    return (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 | (uint32_t)id[2] << 8 | id[3];
}

struct qstats {
    double *fanout;
    size_t n;
    double matched, blind, holders, missed, holders_all, late, answers;
    double messages, fanout_rare, holders_rare, dropped;
    double recall_sum, rare_sum;
    size_t scored, rare, common;
    uint64_t *load; /* per supernode: queries it handled (origin, target or relay) */
};

static void run_query(struct world *w, const struct query *q, uint64_t qid, uint32_t *count,
                      uint32_t *seen, uint32_t mark, uint8_t (*alive)[WIRE_ID_LEN],
                      struct sn_route_target *tg, struct qstats *st)
{
    uint32_t origin = (uint32_t)sim_below(&w->rng, w->p.n_sn);
    char text[SIM_QUERY_WORDS][24];
    struct wire_str kw[SIM_QUERY_WORDS];
    for (size_t a = 0; a < q->n_words; a++) {
        int len = word_text(w, q->word[a], text[a], sizeof(text[a]));
        kw[a] = (struct wire_str){text[a], (size_t)len};
    }
    struct msg_search s = {.query_id = qid,
                           .max_results = (uint16_t)w->p.max_results,
                           .keywords = kw,
                           .n_keywords = q->n_words};
    /* The alive list: every supernode but the origin (the federation is static here). */
    size_t n_alive = 0;
    for (uint32_t i = 0; i < w->p.n_sn; i++)
        if (i != origin)
            memcpy(alive[n_alive++], w->sns[i].id, WIRE_ID_LEN);
    struct sn_route_plan plan;
    size_t nt = sn_route_targets(w->route, &s, (const uint8_t(*)[WIRE_ID_LEN])alive, n_alive,
                                 (uint64_t)w->now, tg, w->p.max_targets, &plan);
    st->messages += (double)nt;
    st->dropped += (double)plan.dropped;
    /* Ground truth: matching files per supernode now. */
    uint64_t total = 0;
    if (!q->common) {
        for (size_t k = 0; k < q->n_m; k++) {
            const struct peer *p = &w->peers[q->m[k].peer];
            if (p->sn != UINT32_MAX) {
                count[p->sn] += q->m[k].files;
                total += q->m[k].files;
            }
        }
    }
    uint64_t found = count[origin] < w->p.max_results ? count[origin] : w->p.max_results;
    size_t touched = 0;
    seen[origin] = mark;
    st->load[origin]++;
    double deadline = w->p.deadline_ms;
    /* The origin's own sends first: every target gets the query straight from
     * the origin one hop before any relay could bring it, so each blind target
     * relays (the relayed copies then reach supernodes that have it already,
     * which answer empty: sn_route_seen()). */
    for (size_t t = 0; t < nt; t++) {
        uint32_t T = sn_index_of(tg[t].sn_id);
        if (seen[T] == mark)
            continue;
        seen[T] = mark;
        st->load[T]++;
        touched++;
        st->answers++;
        if (delay(w) + delay(w) <= deadline)
            found += count[T] < w->p.max_results ? count[T] : w->p.max_results;
        else
            st->late++;
    }
    /* Every blind target relays to the same set (the shared table, the same
     * alive list): asked of sn_route_relay_targets() once, sent by each. */
    size_t nr = 0, n_blind = 0;
    uint32_t first_blind = UINT32_MAX, child = 0;
    struct sn_route_target *rt = tg + nt; /* the rest of the array is free */
    for (size_t t = 0; t < nt; t++) {
        if (!tg[t].flooded || tg[t].ttl == 0)
            continue;
        n_blind++;
        if (first_blind != UINT32_MAX)
            continue;
        first_blind = sn_index_of(tg[t].sn_id);
        struct msg_fwd_search fwd = {
            .ttl = tg[t].ttl, .deadline_ms = (uint32_t)deadline, .search = s};
        memcpy(fwd.origin_sn, w->sns[origin].id, WIRE_ID_LEN);
        nr = sn_route_relay_targets(w->route, &fwd, w->sns[origin].id,
                                    (const uint8_t(*)[WIRE_ID_LEN])alive, n_alive, (uint64_t)w->now,
                                    rt, w->p.max_targets, &child, NULL);
    }
    /* nr counts the first blind target itself once more than it sends. */
    if (n_blind > 0)
        st->messages += (double)n_blind * (double)(nr > 0 ? nr - 1 : 0);
    for (size_t r = 0; r < nr; r++) {
        uint32_t U = sn_index_of(rt[r].sn_id);
        if (seen[U] == mark)
            continue; /* has it already: answers empty */
        seen[U] = mark;
        st->load[U]++;
        touched++;
        double d = delay(w) + delay(w) + delay(w) + delay(w);
        st->answers++;
        if (d <= deadline)
            found += count[U] < w->p.max_results ? count[U] : w->p.max_results;
        else
            st->late++;
    }
    st->fanout[st->n++] = (double)touched;
    st->matched += (double)plan.matched;
    st->blind += (double)plan.flooded;
    if (q->common) {
        st->common++;
    } else {
        size_t holders = 0, missed = 0;
        for (size_t k = 0; k < q->n_m; k++) {
            uint32_t h = w->peers[q->m[k].peer].sn;
            if (h == UINT32_MAX || h == origin || count[h] == 0)
                continue;
            holders++;
            missed += seen[h] != mark;
            count[h] = 0; /* counted once */
        }
        st->holders += (double)holders;
        st->holders_all += (double)holders;
        st->missed += (double)missed;
        if (total > 0) {
            uint64_t ideal = total < w->p.max_results ? total : w->p.max_results;
            double r = (double)(found < ideal ? found : ideal) / (double)ideal;
            st->recall_sum += r;
            st->scored++;
            if (total <= w->p.max_results) {
                st->rare_sum += r;
                st->rare++;
                st->fanout_rare += (double)touched;
                st->holders_rare += (double)holders;
            }
        }
    }
    for (size_t k = 0; !q->common && k < q->n_m; k++)
        if (w->peers[q->m[k].peer].sn != UINT32_MAX)
            count[w->peers[q->m[k].peer].sn] = 0;
    count[origin] = 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int sim_search_run(const struct sim_search_params *p, struct sim_search_result *out)
{
    memset(out, 0, sizeof(*out));
    out->n_sn = p->n_sn;
    double w0 = sim_wall_s();
    struct world w = {.p = *p};
    sim_rng_seed(&w.rng, p->seed, 0x636875726eull); /* "churn" */
    w.lim = wire_limits_default();
    wire_buf_init(&w.buf);
    if (alias_init(&w) != 0)
        return -1;
    struct sn_route_limits lim = sn_route_limits_default();
    lim.max_summaries = p->route_max_summaries;
    uint8_t nobody[WIRE_ID_LEN];
    memset(nobody, 0xff, sizeof(nobody));
    w.route = sn_route_new(&lim, nobody);
    w.peers = calloc(p->n_peers, sizeof(*w.peers));
    w.sns = calloc(p->n_sn, sizeof(*w.sns));
    w.stamp = calloc(p->vocab + SIM_EXTENSIONS, sizeof(*w.stamp));
    w.distinct = malloc((p->vocab + SIM_EXTENSIONS) * sizeof(*w.distinct));
    struct query *q = calloc(p->queries ? p->queries : 1, sizeof(*q));
    uint32_t *count = calloc(p->n_sn, sizeof(*count)), *seen = calloc(p->n_sn, sizeof(*seen));
    uint8_t(*alive)[WIRE_ID_LEN] = malloc(p->n_sn * WIRE_ID_LEN);
    struct sn_route_target *tg = malloc(2 * p->n_sn * sizeof(*tg));
    struct qstats st = {.fanout = calloc(p->queries ? p->queries : 1, sizeof(double)),
                        .load = calloc(p->n_sn, sizeof(uint64_t))};
    int rc = -1;
    if (!w.route || !w.peers || !w.sns || !w.stamp || !w.distinct || !q || !count || !seen ||
        !alive || !tg || !st.fanout || !st.load)
        goto out;
    if (queries_make(&w, q, p->queries) != 0)
        goto out;
    for (uint32_t s = 0; s < p->n_sn; s++) {
        struct snode *sn = &w.sns[s];
        sn->id[0] = (uint8_t)(s >> 24), sn->id[1] = (uint8_t)(s >> 16);
        sn->id[2] = (uint8_t)(s >> 8), sn->id[3] = (uint8_t)s;
        for (int b = 4; b < WIRE_ID_LEN; b++)
            sn->id[b] = (uint8_t)sim_rng_next(&w.rng);
        sn_summary_sched_init(&sn->sched, p->summary_interval_ms);
        /* Refreshes spread over the period, as daemons started at different times. */
        ch_push(&w, (struct chev){.at = sim_unit(&w.rng) * SN_SUMMARY_REFRESH_MS_DEFAULT,
                                  .who = s,
                                  .kind = CH_REFRESH});
    }
    /* The stationary share online: mean session / (mean session + mean time away). */
    double mean_session = p->session_median_s / pow(log(2.0), 1.0 / p->session_shape) *
                          tgamma(1 + 1 / p->session_shape);
    double p_on = mean_session / (mean_session + p->offline_mean_s);
    for (uint32_t i = 0; i < p->n_peers; i++) {
        w.peers[i].sn = UINT32_MAX;
        w.peers[i].pos = UINT32_MAX;
        if (sim_unit(&w.rng) <= p_on) {
            attach(&w, i, (uint32_t)sim_below(&w.rng, p->n_sn));
            schedule_online(&w, i, true);
        } else {
            w.peers[i].gen++;
            ch_push(&w, (struct chev){.at = sim_exp(&w.rng, p->offline_mean_s * 1000.0),
                                      .who = i,
                                      .kind = CH_RETURN,
                                      .tag = w.peers[i].gen});
        }
    }
    run_until(&w, p->warmup_s * 1000.0);
    /* Measured window: queries evenly spread over it. */
    w.measuring = true;
    double t0 = w.now, span = p->duration_s * 1000.0;
    for (size_t k = 0; k < p->queries; k++) {
        run_until(&w, t0 + span * (double)(k + 1) / (double)(p->queries + 1));
        size_t online = 0;
        for (uint32_t s = 0; s < p->n_sn; s++)
            online += w.sns[s].n_peers;
        w.online_sum += online;
        w.online_samples++;
        run_query(&w, &q[k], k + 1, count, seen, (uint32_t)k + 1, alive, tg, &st);
    }
    run_until(&w, t0 + span);
    double secs = span / 1000.0;
    out->online_mean = w.online_samples ? (size_t)(w.online_sum / w.online_samples) : 0;
    out->churn_per_s = (double)w.churn_events / secs;
    out->summary_bps = (double)w.summary_bytes / secs / (double)p->n_sn;
    out->rebuilds_per_sn_s = (double)w.rebuilds / secs / (double)p->n_sn;
    out->summary_kb_mean = w.sent_summaries ? w.kb_sum / (double)w.sent_summaries : 0;
    out->keywords_per_sn = w.rebuilds ? w.kw_sum / (double)w.rebuilds : 0;
    out->fp_pct_mean = w.rebuilds ? w.fp_sum / (double)w.rebuilds : 0;
    qsort(st.fanout, st.n, sizeof(double), cmp_double);
    double sum = 0;
    for (size_t k = 0; k < st.n; k++)
        sum += st.fanout[k];
    out->queries = st.n;
    out->fanout_mean = st.n ? sum / (double)st.n : 0;
    out->fanout_p50 = st.n ? st.fanout[st.n / 2] : 0;
    out->fanout_p99 = st.n ? st.fanout[(size_t)((double)(st.n - 1) * 0.99)] : 0;
    out->matched_mean = st.n ? st.matched / (double)st.n : 0;
    out->blind_mean = st.n ? st.blind / (double)st.n : 0;
    size_t scored_holders = st.n - st.common;
    out->holders_mean = scored_holders ? st.holders / (double)scored_holders : 0;
    out->missed_holder_pct = st.holders_all > 0 ? 100.0 * st.missed / st.holders_all : 0;
    out->late_pct = st.answers > 0 ? 100.0 * st.late / st.answers : 0;
    out->recall = st.scored ? st.recall_sum / (double)st.scored : 0;
    out->recall_rare = st.rare ? st.rare_sum / (double)st.rare : 0;
    out->fanout_rare = st.rare ? st.fanout_rare / (double)st.rare : 0;
    out->holders_rare = st.rare ? st.holders_rare / (double)st.rare : 0;
    out->messages_mean = st.n ? st.messages / (double)st.n : 0;
    out->dropped_mean = st.n ? st.dropped / (double)st.n : 0;
    out->rare_queries = st.rare;
    out->common_queries = st.common;
    /* The full mesh: a link to every other supernode, every one in the view
     * (the daemon keeps at most SN_MEMBER_MAX_MEMBERS of them). */
    out->links_max = p->n_sn - 1;
    out->view_max = p->n_sn - 1 < SN_MEMBER_MAX_MEMBERS ? p->n_sn - 1 : SN_MEMBER_MAX_MEMBERS;
    uint64_t load_sum = 0, load_max = 0;
    for (size_t k = 0; k < p->n_sn; k++) {
        load_sum += st.load[k];
        load_max = st.load[k] > load_max ? st.load[k] : load_max;
    }
    out->load_max_over_mean =
        load_sum ? (double)load_max / ((double)load_sum / (double)p->n_sn) : 0;
    out->ran = true;
    out->wall_s = sim_wall_s() - w0;
    rc = 0;
out:
    for (size_t k = 0; q != NULL && k < p->queries; k++)
        free(q[k].m);
    for (uint32_t s = 0; w.sns != NULL && s < p->n_sn; s++) {
        free(w.sns[s].peers);
        sn_summary_free(w.sns[s].sent);
    }
    free(q);
    free(count);
    free(seen);
    free(alive);
    free(tg);
    free(st.fanout);
    free(st.load);
    free(w.peers);
    free(w.sns);
    free(w.stamp);
    free(w.distinct);
    free(w.heap);
    free(w.alias_p);
    free(w.alias_i);
    sn_route_free(w.route);
    wire_buf_free(&w.buf);
    return rc;
}
