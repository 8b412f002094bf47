/* sim_member_net.c - N supernodes' SWIM modules (supernode/sn_member.h, the
 * code the daemon runs) on a simulated network, and the membership
 * scenarios of sova_sim: a join, silent and crash failures, a steady run
 * with loss and supernode churn.
 *
 * The network is the one tests/unit/sim_member.h models for a few dozen
 * nodes, scaled: one event heap for messages, link set-ups and each node's
 * next timer (stale timer events are skipped by a generation number); a
 * supernode's index is in the first four bytes of its ID, so routing an
 * output costs nothing. A GOSSIP needs the sender's link to the receiver
 * when it is sent and the same link (not a newer one) when it arrives;
 * CONNECT outputs open a link after link_setup_ms when both ends run. Every
 * GOSSIP is encoded with msg_encode() (its bytes are counted for the
 * sender) and decoded with msg_decode_frame() before the receiver sees it.
 *
 * Start-up: all N modules are created at once and every pair is linked
 * before any message is delivered (each link-up then exchanges tables that
 * hold only the two ends), then the network runs until the news of N
 * members has been gossiped out. A federation formed one join at a time
 * would move O(N^3) table entries to get there (measured on one join below).
 */
#include "sim.h"

#include "sn_member.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIM_BASE_WALL 1700000000000ull /* "wall clock" ms at simulated time 0 */

enum { EV_MSG = 1, EV_LINK, EV_TICK };

struct mev {
    uint64_t at, order;
    uint8_t kind;
    uint32_t a, b; /* MSG: from, to; LINK: the two ends; TICK: node */
    uint32_t tag;  /* MSG: the link's epoch; TICK: the node's timer generation */
    uint8_t *frame;
    uint32_t len;
};

struct mnode {
    struct sn_member *m;
    uint8_t id[WIRE_ID_LEN];
    struct wire_addr addr;
    bool up;
    uint32_t gen; /* of its live TICK event */
    uint64_t deadline;
    uint64_t bytes_sent, msgs_sent;
    uint64_t down_since; /* churn: when it went down */
};

/* What every observer holds about one watched node. */
struct watch {
    uint32_t node;
    uint8_t want;    /* MSG_SN_ALIVE or MSG_SN_DEAD */
    size_t have;     /* observers that reported it in that state */
    uint8_t *marked; /* per observer */
    uint64_t first_ms, all_ms, first_suspect_ms;
};

struct mnet {
    struct sim_net_params p;
    size_t n;     /* node slots */
    size_t n_run; /* slots in the federation (a joiner is the last slot) */
    struct mnode *nodes;
    uint8_t *linked; /* n x n */
    uint32_t *epoch; /* n x n */
    struct mev *heap;
    size_t n_ev, cap_ev;
    uint64_t order, now;
    struct sim_rng rng;
    struct wire_limits lim;
    struct wire_buf buf;
    struct watch *watch; /* NULL: nobody watched */
    bool count_false;    /* steady run: count suspicions of nodes that are up */
    uint64_t false_suspect, false_dead;
};

double sim_wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the event heap: a binary min-heap on (at, order) ------------------------------ */
static bool ev_less(const struct mev *a, const struct mev *b)
{
    return a->at != b->at ? a->at < b->at : a->order < b->order;
}

static void ev_push(struct mnet *s, struct mev ev)
{
    if (s->n_ev == s->cap_ev) {
        s->cap_ev = s->cap_ev ? s->cap_ev * 2 : 4096;
        s->heap = realloc(s->heap, s->cap_ev * sizeof(*s->heap));
        if (s->heap == NULL)
            abort();
    }
    ev.order = s->order++;
    size_t i = s->n_ev++;
    while (i > 0 && ev_less(&ev, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = ev;
}

static struct mev ev_pop(struct mnet *s)
{
    struct mev top = s->heap[0], last = s->heap[--s->n_ev];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->n_ev)
            break;
        if (c + 1 < s->n_ev && ev_less(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!ev_less(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->n_ev)
        s->heap[i] = last;
    return top;
}

/* ---- nodes and outputs ------------------------------------------------------------- */
static int node_of(const struct mnet *s, const uint8_t id[WIRE_ID_LEN])
{
    uint32_t i = (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 | (uint32_t)id[2] << 8 | id[3];
    if (i >= s->n || memcmp(s->nodes[i].id, id, WIRE_ID_LEN) != 0)
        return -1;
    return (int)i;
}

static size_t pair(const struct mnet *s, uint32_t a, uint32_t b)
{
    return (size_t)a * s->n + b;
}

static uint64_t latency(struct mnet *s)
{
    return s->p.lat_min_ms + (s->p.lat_jitter_ms ? sim_below(&s->rng, s->p.lat_jitter_ms) : 0);
}

static void send_gossip(struct mnet *s, uint32_t from, int to, const struct msg_gossip *g)
{
    if (to < 0 || !s->linked[pair(s, from, (uint32_t)to)])
        return; /* the daemon has no link to send it on */
    struct msg m = {.type = MSG_GOSSIP};
    m.u.gossip = *g;
    wire_buf_truncate(&s->buf, 0);
    if (msg_encode(&m, &s->lim, &s->buf, NULL) != 0) {
        fprintf(stderr, "sova_sim: a GOSSIP did not encode\n");
        abort();
    }
    s->nodes[from].bytes_sent += s->buf.len;
    s->nodes[from].msgs_sent++;
    if (s->p.loss_permille && sim_below(&s->rng, 1000) < s->p.loss_permille)
        return;
    uint8_t *frame = malloc(s->buf.len);
    if (frame == NULL)
        abort();
    memcpy(frame, s->buf.data, s->buf.len);
    ev_push(s, (struct mev){.at = s->now + latency(s),
                            .kind = EV_MSG,
                            .a = from,
                            .b = (uint32_t)to,
                            .tag = s->epoch[pair(s, from, (uint32_t)to)],
                            .frame = frame,
                            .len = (uint32_t)s->buf.len});
}

static void on_state(struct mnet *s, uint32_t observer, const struct sn_member_out *o)
{
    int t = node_of(s, o->id);
    if (t < 0)
        return;
    if (s->count_false && s->nodes[t].up) {
        s->false_suspect += o->state == MSG_SN_SUSPECT;
        s->false_dead += o->state == MSG_SN_DEAD;
    }
    struct watch *w = s->watch;
    if (w == NULL || (uint32_t)t != w->node || w->marked[observer])
        return;
    if (o->state == MSG_SN_SUSPECT && w->first_suspect_ms == UINT64_MAX)
        w->first_suspect_ms = s->now;
    if (o->state != w->want)
        return;
    w->marked[observer] = 1;
    if (w->have++ == 0)
        w->first_ms = s->now;
}

static void drain(struct mnet *s, uint32_t i, bool ticked)
{
    struct mnode *nd = &s->nodes[i];
    struct sn_member_out o;
    while (sn_member_next_output(nd->m, &o)) {
        int j = node_of(s, o.id);
        if (o.kind == SN_MEMBER_SEND)
            send_gossip(s, i, j, &o.msg);
        else if (o.kind == SN_MEMBER_CONNECT && j >= 0 && !s->linked[pair(s, i, (uint32_t)j)])
            ev_push(s, (struct mev){.at = s->now + s->p.link_setup_ms,
                                    .kind = EV_LINK,
                                    .a = i,
                                    .b = (uint32_t)j});
        else if (o.kind == SN_MEMBER_STATE)
            on_state(s, i, &o);
    }
    uint64_t d = sn_member_next_deadline(nd->m);
    if (d == nd->deadline && !ticked)
        return; /* its TICK event is still the right one */
    nd->deadline = d;
    nd->gen++;
    if (d != UINT64_MAX)
        ev_push(s, (struct mev){
                       .at = d > s->now ? d : s->now, .kind = EV_TICK, .a = i, .tag = nd->gen});
}

static void link_open(struct mnet *s, uint32_t a, uint32_t b)
{
    struct mnode *x = &s->nodes[a], *y = &s->nodes[b];
    if (a == b || !x->up || !y->up || s->linked[pair(s, a, b)])
        return;
    s->linked[pair(s, a, b)] = s->linked[pair(s, b, a)] = 1;
    uint32_t e = s->epoch[pair(s, a, b)] + 1;
    s->epoch[pair(s, a, b)] = s->epoch[pair(s, b, a)] = e;
    sn_member_link_up(x->m, s->now, y->id, &y->addr, 1);
    drain(s, a, false);
    sn_member_link_up(y->m, s->now, x->id, &x->addr, 1);
    drain(s, b, false);
}

static void link_close(struct mnet *s, uint32_t a, uint32_t b)
{
    if (!s->linked[pair(s, a, b)])
        return;
    s->linked[pair(s, a, b)] = s->linked[pair(s, b, a)] = 0;
    uint32_t ends[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        struct mnode *x = &s->nodes[ends[k]];
        if (x->up) {
            sn_member_link_down(x->m, s->now, s->nodes[ends[1 - k]].id);
            drain(s, ends[k], false);
        }
    }
}

/* A new instance in slot i (the old one's links close first). */
static void node_start(struct mnet *s, uint32_t i, int seed)
{
    struct mnode *nd = &s->nodes[i];
    for (uint32_t j = 0; j < s->n; j++)
        link_close(s, i, j);
    sn_member_free(nd->m);
    struct sn_member_config c = sn_member_config_default();
    memcpy(c.self_id, nd->id, WIRE_ID_LEN);
    c.self_addrs[0] = nd->addr;
    c.n_self_addrs = 1;
    c.incarnation = SIM_BASE_WALL + s->now;
    c.seed = sim_rng_next(&s->rng);
    nd->m = sn_member_new(&c);
    if (nd->m == NULL)
        abort();
    nd->up = true;
    sn_member_set_load(nd->m, (uint32_t)(1000 + sim_below(&s->rng, 1000)), 100000, 0);
    sn_member_tick(nd->m, s->now);
    drain(s, i, true);
    if (seed >= 0 && (uint32_t)seed != i)
        ev_push(s, (struct mev){.at = s->now + s->p.link_setup_ms,
                                .kind = EV_LINK,
                                .a = i,
                                .b = (uint32_t)seed});
}

static void deliver(struct mnet *s, const struct mev *ev)
{
    struct mnode *b = &s->nodes[ev->b];
    if (!b->up || !s->linked[pair(s, ev->b, ev->a)] || s->epoch[pair(s, ev->b, ev->a)] != ev->tag)
        return;
    struct msg m;
    size_t used;
    if (msg_decode_frame(ev->frame, ev->len, &s->lim, &m, &used, NULL) != 0 ||
        m.type != MSG_GOSSIP) {
        fprintf(stderr, "sova_sim: a GOSSIP did not decode\n");
        abort();
    }
    sn_member_receive(b->m, s->now, s->nodes[ev->a].id, &m.u.gossip);
    msg_clear(&m);
    drain(s, ev->b, false);
}

/* Run every event due up to `until`; then the clock is there. */
static void run_to(struct mnet *s, uint64_t until)
{
    while (s->n_ev && s->heap[0].at <= until) {
        struct mev ev = ev_pop(s);
        if (ev.at > s->now)
            s->now = ev.at;
        switch (ev.kind) {
        case EV_MSG:
            deliver(s, &ev);
            free(ev.frame);
            break;
        case EV_LINK:
            link_open(s, ev.a, ev.b);
            break;
        case EV_TICK:
            if (s->nodes[ev.a].up && ev.tag == s->nodes[ev.a].gen) {
                sn_member_tick(s->nodes[ev.a].m, s->now);
                drain(s, ev.a, true);
            }
            break;
        }
    }
    if (until > s->now)
        s->now = until;
}

static uint64_t bytes_total(const struct mnet *s)
{
    uint64_t b = 0;
    for (size_t i = 0; i < s->n; i++)
        b += s->nodes[i].bytes_sent;
    return b;
}

/* ---- scenarios ----------------------------------------------------------------------- */
static void watch_start(struct mnet *s, struct watch *w, uint32_t node, uint8_t want)
{
    memset(w->marked, 0, s->n);
    w->node = node;
    w->want = want;
    w->have = 0;
    w->first_ms = w->all_ms = w->first_suspect_ms = UINT64_MAX;
    s->watch = w;
}

/* Observers that run, other than the watched node. */
static size_t observers(const struct mnet *s, uint32_t node)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n_run; i++)
        k += i != node && s->nodes[i].up;
    return k;
}

/* Run in 10 ms steps until every observer reported the watched state, or
 * limit_ms pass; the time it took, or -1. */
static double watch_wait(struct mnet *s, struct watch *w, uint64_t limit_ms)
{
    uint64_t t0 = s->now;
    size_t need = observers(s, w->node);
    while (s->now - t0 < limit_ms) {
        run_to(s, s->now + 10);
        size_t have = 0;
        for (size_t i = 0; i < s->n_run; i++)
            have += i != w->node && s->nodes[i].up && w->marked[i];
        if (have >= need)
            return (double)(s->now - t0);
    }
    return -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void med_max(double *v, size_t n, double *med, double *max)
{
    qsort(v, n, sizeof(*v), cmp_double);
    *med = n ? v[n / 2] : -1;
    *max = n ? v[n - 1] : -1;
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0)
            *max = -1; /* one never finished */
}

/* A random running node other than `not`. */
static uint32_t pick_up(struct mnet *s, uint32_t not )
{
    for (;;) {
        uint32_t i = (uint32_t)sim_below(&s->rng, s->n_run);
        if (i != not &&s->nodes[i].up)
            return i;
    }
}

static void failures(struct mnet *s, struct watch *w, bool crash, double *med, double *max,
                     double *susp_med)
{
    double *t = calloc(s->p.trials + 1, sizeof(*t)), *fs = calloc(s->p.trials + 1, sizeof(*fs));
    if (t == NULL || fs == NULL)
        abort();
    for (unsigned k = 0; k < s->p.trials; k++) {
        uint32_t v = pick_up(s, UINT32_MAX);
        watch_start(s, w, v, MSG_SN_DEAD);
        uint64_t t0 = s->now;
        s->nodes[v].up = false;
        if (crash)
            for (uint32_t j = 0; j < s->n; j++)
                link_close(s, v, j);
        t[k] = watch_wait(s, w, 60000);
        fs[k] = w->first_suspect_ms == UINT64_MAX ? -1 : (double)(w->first_suspect_ms - t0);
        s->watch = NULL;
        /* Back again (a new instance), and quiet before the next trial. */
        node_start(s, v, (int)pick_up(s, v));
        run_to(s, s->now + 15000);
    }
    double dummy;
    med_max(t, s->p.trials, med, max);
    med_max(fs, s->p.trials, susp_med, &dummy);
    free(t);
    free(fs);
}

/* Steady run: loss as configured, loads changing every second, supernodes
 * crashing (links close) at random and restarting sn_down_s later. */
static void steady(struct mnet *s, struct sim_member_result *out)
{
    uint64_t b0 = bytes_total(s), t0 = s->now;
    double w0 = sim_wall_s();
    s->count_false = true;
    double mtbf_ms = s->p.sn_mtbf_s ? (double)s->p.sn_mtbf_s * 1000.0 / (double)s->n_run : 0;
    uint64_t next_crash = mtbf_ms > 0 ? t0 + (uint64_t)sim_exp(&s->rng, mtbf_ms) : UINT64_MAX;
    for (uint64_t t = t0 + 1000; t <= t0 + (uint64_t)s->p.steady_s * 1000; t += 1000) {
        while (next_crash <= t) {
            run_to(s, next_crash);
            uint32_t v = pick_up(s, UINT32_MAX);
            s->nodes[v].up = false;
            s->nodes[v].down_since = s->now;
            for (uint32_t j = 0; j < s->n; j++)
                link_close(s, v, j);
            out->sn_crashes++;
            next_crash += (uint64_t)sim_exp(&s->rng, mtbf_ms) + 1;
        }
        run_to(s, t);
        for (uint32_t i = 0; i < s->n_run; i++) {
            struct mnode *nd = &s->nodes[i];
            if (!nd->up && nd->down_since && s->now - nd->down_since >= s->p.sn_down_s * 1000ull) {
                nd->down_since = 0;
                node_start(s, i, (int)pick_up(s, i));
            } else if (nd->up) {
                sn_member_set_load(nd->m, (uint32_t)(1000 + sim_below(&s->rng, 1000)), 100000, 0);
            }
        }
    }
    s->count_false = false;
    double sim_s = (double)(s->now - t0) / 1000.0;
    out->steady_sim_s = sim_s;
    out->false_suspect = s->false_suspect;
    out->false_dead = s->false_dead;
    out->steady_bps = (double)(bytes_total(s) - b0) / sim_s / (double)s->n_run;
    out->wall_per_sim_s = (sim_wall_s() - w0) / sim_s;
}

int sim_member_run(size_t n, const struct sim_net_params *p, struct sim_member_result *out)
{
    memset(out, 0, sizeof(*out));
    out->n = n;
    if (n + 1 > SN_MEMBER_MAX_MEMBERS) {
        snprintf(out->why_not, sizeof(out->why_not),
                 "sn_member keeps at most SN_MEMBER_MAX_MEMBERS = %d others: a federation of %zu "
                 "cannot form (and a full mesh would hold %.0f million member entries)",
                 SN_MEMBER_MAX_MEMBERS, n, (double)n * (double)n / 1e6);
        return 0;
    }
    struct mnet s = {.p = *p, .n = n + 1, .n_run = n};
    sim_rng_seed(&s.rng, p->seed, 0x6d656d626572ull); /* "member" */
    s.lim = wire_limits_default();
    wire_buf_init(&s.buf);
    s.nodes = calloc(s.n, sizeof(*s.nodes));
    s.linked = calloc(s.n * s.n, 1);
    s.epoch = calloc(s.n * s.n, sizeof(*s.epoch));
    struct watch w = {.marked = calloc(s.n, 1)};
    if (!s.nodes || !s.linked || !s.epoch || !w.marked)
        return -1;
    for (uint32_t i = 0; i < s.n; i++) {
        struct mnode *nd = &s.nodes[i];
        nd->id[0] = (uint8_t)(i >> 24), nd->id[1] = (uint8_t)(i >> 16);
        nd->id[2] = (uint8_t)(i >> 8), nd->id[3] = (uint8_t)i;
        for (int b = 4; b < WIRE_ID_LEN; b++)
            nd->id[b] = (uint8_t)sim_rng_next(&s.rng);
        nd->addr.family = WIRE_ADDR_IPV4;
        nd->addr.ip[0] = 10, nd->addr.ip[1] = (uint8_t)(i >> 16);
        nd->addr.ip[2] = (uint8_t)(i >> 8), nd->addr.ip[3] = (uint8_t)i;
        nd->addr.port = 7070;
    }
    /* Start-up (see the top of the file). */
    double w0 = sim_wall_s();
    for (uint32_t i = 0; i < n; i++)
        node_start(&s, i, -1);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = i + 1; j < n; j++)
            link_open(&s, i, j);
    uint64_t warm_ms = n < 300 ? 30000 : (uint64_t)n * 100;
    run_to(&s, warm_ms);
    out->warm_sim_s = (double)warm_ms / 1000.0;
    out->warm_wall_s = sim_wall_s() - w0;
    /* Quiet rate: nothing changes. */
    uint64_t b0 = bytes_total(&s), t0 = s.now;
    run_to(&s, s.now + 20000);
    out->quiet_bps = (double)(bytes_total(&s) - b0) / 20.0 / (double)n;
    double quiet_rate = (double)(bytes_total(&s) - b0) / (double)(s.now - t0); /* bytes/ms */
    /* A join: the last slot starts, seeded with one member. */
    s.n_run = n + 1;
    watch_start(&s, &w, (uint32_t)n, MSG_SN_ALIVE);
    b0 = bytes_total(&s);
    t0 = s.now;
    node_start(&s, (uint32_t)n, (int)sim_below(&s.rng, n));
    out->join_all_know_ms = watch_wait(&s, &w, 120000);
    s.watch = NULL;
    uint64_t t_knows = UINT64_MAX;
    while (s.now - t0 < 120000) {
        if (sn_member_count_state(s.nodes[n].m, MSG_SN_ALIVE) >= n) {
            t_knows = s.now - t0;
            break;
        }
        run_to(&s, s.now + 10);
    }
    out->join_knows_all_ms = t_knows == UINT64_MAX ? -1 : (double)t_knows;
    run_to(&s, s.now + 10000); /* the join's table exchanges and news settle */
    double extra = (double)(bytes_total(&s) - b0) - quiet_rate * (double)(s.now - t0);
    out->join_mb = (extra > 0 ? extra : 0) / 1e6;
    /* Failures. */
    failures(&s, &w, false, &out->silent_med_ms, &out->silent_max_ms, &out->first_suspect_med_ms);
    double dummy;
    failures(&s, &w, true, &out->crash_med_ms, &out->crash_max_ms, &dummy);
    /* Steady run. */
    steady(&s, out);
    out->ran = true;
    for (size_t i = 0; i < s.n; i++)
        sn_member_free(s.nodes[i].m);
    while (s.n_ev) {
        struct mev ev = ev_pop(&s);
        free(ev.frame);
    }
    free(s.heap);
    free(s.nodes);
    free(s.linked);
    free(s.epoch);
    free(w.marked);
    wire_buf_free(&s.buf);
    return 0;
}
