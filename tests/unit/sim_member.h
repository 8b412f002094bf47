/* sim_member.h - a deterministic network of sn_member modules for
 * test_sn_member.c: a fake clock, an event queue, per-message latency, loss,
 * partitions and links that open and close as a daemon's would.
 *
 * Every GOSSIP a module emits is encoded with msg_encode() (its bytes are
 * counted per sender), carried, decoded with msg_decode_frame() and handed to
 * the receiver, so the simulator also checks that the module only produces
 * messages the codec accepts. A message needs the sender's link to the
 * receiver at send time and the same link (not a newer one) at delivery.
 * CONNECT outputs open a link after link_setup_ms if both ends run and no
 * cut separates them; both ends then get sn_member_link_up().
 *
 * Header-only (static inline) so it is compiled into that one test only.
 */
#ifndef SOVA_SIM_MEMBER_H
#define SOVA_SIM_MEMBER_H

#include "msg.h"
#include "sn_member.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SIM_MAX_NODES 64
#define SIM_BASE_WALL 1700000000000ull /* "wall clock" ms at simulated time 0 */

struct sim;
/* Return true to drop this message (after it was counted as sent). */
typedef bool sim_drop_fn(struct sim *s, void *arg, int from, int to, const struct msg_gossip *g);
/* A STATE output of node `observer`. */
typedef void sim_state_fn(struct sim *s, void *arg, int observer, const struct sn_member_out *o);

enum { SIM_EV_MSG = 1, SIM_EV_LINK = 2 };

struct sim_ev {
    uint64_t at, order;
    int kind;
    int from, to;
    uint64_t epoch; /* MSG: the link it was sent on */
    uint8_t *frame; /* MSG: encoded frame, owned */
    size_t len;
};

struct sim_node {
    struct sn_member *m; /* NULL: never started */
    bool up;             /* false: crashed silently (or stopped) */
    uint8_t id[WIRE_ID_LEN];
    struct wire_addr addr;
    uint64_t deadline;                  /* cached sn_member_next_deadline() */
    bool linked[SIM_MAX_NODES];         /* the link to node j as this daemon sees it */
    uint64_t link_epoch[SIM_MAX_NODES]; /* bumped each time the link opens */
    uint64_t incarnation;               /* of the current instance */
    uint64_t bytes_sent, msgs_sent;
};

struct sim {
    uint64_t now;
    int n;
    struct sim_node nodes[SIM_MAX_NODES];
    uint64_t rng;
    struct sim_ev *heap;
    size_t n_ev, cap_ev;
    uint64_t ev_order;
    unsigned loss_permille;                 /* random message loss */
    bool cut[SIM_MAX_NODES][SIM_MAX_NODES]; /* messages from i to j are dropped */
    unsigned lat_min_ms, lat_jitter_ms, link_setup_ms;
    struct sn_member_config cfg; /* template for every node (ID, addrs, seed, inc set per node) */
    struct wire_limits lim;
    sim_drop_fn *drop;
    void *drop_arg;
    sim_state_fn *on_state;
    void *state_arg;
    unsigned encode_failures, decode_failures;
};

static inline uint64_t sim_rand(struct sim *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline void sim_init(struct sim *s, int n, uint64_t seed)
{
    memset(s, 0, sizeof(*s));
    s->n = n;
    s->rng = seed;
    s->lat_min_ms = 5;
    s->lat_jitter_ms = 20;
    s->link_setup_ms = 30;
    s->cfg = sn_member_config_default();
    s->lim = wire_limits_default();
    for (int i = 0; i < n; i++) {
        struct sim_node *nd = &s->nodes[i];
        uint64_t x = seed ^ (0x5111ull * (uint64_t)(i + 1));
        for (int b = 0; b < WIRE_ID_LEN; b++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            nd->id[b] = (uint8_t)(x >> 56);
        }
        nd->addr.family = WIRE_ADDR_IPV4;
        nd->addr.ip[0] = 10;
        nd->addr.ip[2] = (uint8_t)(i >> 8);
        nd->addr.ip[3] = (uint8_t)(i + 1);
        nd->addr.port = 7000;
    }
}

/* ---- event queue: a binary min-heap on (at, order) ---------------------------------- */
static inline bool sim_ev_less(const struct sim_ev *a, const struct sim_ev *b)
{
    return a->at != b->at ? a->at < b->at : a->order < b->order;
}

static inline void sim_push(struct sim *s, struct sim_ev ev)
{
    if (s->n_ev == s->cap_ev) {
        s->cap_ev = s->cap_ev ? s->cap_ev * 2 : 256;
        s->heap = realloc(s->heap, s->cap_ev * sizeof(*s->heap));
        if (s->heap == NULL)
            abort();
    }
    ev.order = s->ev_order++;
    size_t i = s->n_ev++;
    while (i > 0 && sim_ev_less(&ev, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = ev;
}

static inline struct sim_ev sim_pop(struct sim *s)
{
    struct sim_ev top = s->heap[0], last = s->heap[--s->n_ev];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->n_ev)
            break;
        if (c + 1 < s->n_ev && sim_ev_less(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!sim_ev_less(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->n_ev)
        s->heap[i] = last;
    s->heap[s->n_ev].frame = NULL; /* the slot left behind owns nothing */
    return top;
}

/* ---- routing outputs ------------------------------------------------------------- */
static inline int sim_index(const struct sim *s, const uint8_t id[WIRE_ID_LEN])
{
    for (int i = 0; i < s->n; i++)
        if (memcmp(s->nodes[i].id, id, WIRE_ID_LEN) == 0)
            return i;
    return -1;
}

static inline void sim_send(struct sim *s, int from, int to, const struct msg_gossip *g)
{
    struct sim_node *a = &s->nodes[from];
    if (to < 0 || !a->linked[to])
        return; /* the daemon has no link to send it on */
    struct msg m = {.type = MSG_GOSSIP};
    m.u.gossip = *g;
    struct wire_buf buf;
    wire_buf_init(&buf);
    if (msg_encode(&m, &s->lim, &buf, NULL) != 0) {
        s->encode_failures++;
        wire_buf_free(&buf);
        return;
    }
    a->bytes_sent += buf.len;
    a->msgs_sent++;
    bool lost = s->loss_permille && sim_rand(s) % 1000 < s->loss_permille;
    if (s->cut[from][to] || lost || (s->drop && s->drop(s, s->drop_arg, from, to, g))) {
        wire_buf_free(&buf);
        return;
    }
    struct sim_ev ev = {.kind = SIM_EV_MSG, .from = from, .to = to};
    ev.at = s->now + s->lat_min_ms + (s->lat_jitter_ms ? sim_rand(s) % s->lat_jitter_ms : 0);
    ev.epoch = a->link_epoch[to];
    ev.frame = buf.data; /* handed over */
    ev.len = buf.len;
    sim_push(s, ev);
}

static inline void sim_connect(struct sim *s, int from, int to)
{
    struct sim_ev ev = {.kind = SIM_EV_LINK, .from = from, .to = to};
    ev.at = s->now + s->link_setup_ms;
    sim_push(s, ev);
}

/* Route what node i's module queued, then refresh its deadline. */
static inline void sim_drain(struct sim *s, int i)
{
    struct sim_node *nd = &s->nodes[i];
    struct sn_member_out o;
    while (sn_member_next_output(nd->m, &o)) {
        int j = sim_index(s, o.id);
        if (o.kind == SN_MEMBER_SEND)
            sim_send(s, i, j, &o.msg);
        else if (o.kind == SN_MEMBER_CONNECT && j >= 0)
            sim_connect(s, i, j);
        else if (o.kind == SN_MEMBER_STATE && s->on_state)
            s->on_state(s, s->state_arg, i, &o);
    }
    nd->deadline = sn_member_next_deadline(nd->m);
}

/* ---- links --------------------------------------------------------------------------- */
static inline void sim_link_open(struct sim *s, int a, int b)
{
    struct sim_node *x = &s->nodes[a], *y = &s->nodes[b];
    if (a == b || !x->up || !y->up || s->cut[a][b] || s->cut[b][a] || x->linked[b])
        return;
    x->linked[b] = y->linked[a] = true;
    x->link_epoch[b] = y->link_epoch[a] = x->link_epoch[b] + 1;
    sn_member_link_up(x->m, s->now, y->id, &y->addr, 1);
    sim_drain(s, a);
    sn_member_link_up(y->m, s->now, x->id, &x->addr, 1);
    sim_drain(s, b);
}

/* The link a-b closes; each side that runs is told. */
static inline void sim_link_close(struct sim *s, int a, int b)
{
    int ends[2] = {a, b};
    if (!s->nodes[a].linked[b])
        return;
    s->nodes[a].linked[b] = s->nodes[b].linked[a] = false;
    for (int k = 0; k < 2; k++) {
        struct sim_node *x = &s->nodes[ends[k]];
        if (x->up) {
            sn_member_link_down(x->m, s->now, s->nodes[ends[1 - k]].id);
            sim_drain(s, ends[k]);
        }
    }
}

/* ---- node lifetime --------------------------------------------------------------------- */
/* Start node i (again, as a new instance: the old one's links close) with
 * this starting incarnation; dial `seed` unless negative. */
static inline void sim_start_inc(struct sim *s, int i, int seed, uint64_t incarnation)
{
    struct sim_node *nd = &s->nodes[i];
    for (int j = 0; j < s->n; j++)
        sim_link_close(s, i, j);
    sn_member_free(nd->m);
    struct sn_member_config c = s->cfg;
    memcpy(c.self_id, nd->id, WIRE_ID_LEN);
    c.self_addrs[0] = nd->addr;
    c.n_self_addrs = 1;
    c.incarnation = nd->incarnation = incarnation;
    c.seed = sim_rand(s);
    nd->m = sn_member_new(&c);
    if (nd->m == NULL)
        abort();
    nd->up = true;
    sn_member_tick(nd->m, s->now);
    sim_drain(s, i);
    if (seed >= 0 && seed != i)
        sim_connect(s, i, seed);
}

/* sim_start_inc() with the incarnation a daemon takes: the "wall clock". */
static inline void sim_start(struct sim *s, int i, int seed)
{
    sim_start_inc(s, i, seed, SIM_BASE_WALL + s->now);
}

/* Node i stops answering; its links stay open (a hung process, a silent
 * network failure). */
static inline void sim_kill(struct sim *s, int i)
{
    s->nodes[i].up = false;
}

/* Cut node i off from everyone (on) or heal; with drop_links, its links
 * close when the cut starts (as TLS keepalives would notice). */
static inline void sim_partition(struct sim *s, int i, bool on, bool drop_links)
{
    for (int j = 0; j < s->n; j++) {
        if (j == i)
            continue;
        s->cut[i][j] = s->cut[j][i] = on;
        if (on && drop_links)
            sim_link_close(s, i, j);
    }
}

/* ---- running ---------------------------------------------------------------------------- */
static inline void sim_deliver(struct sim *s, struct sim_ev *ev)
{
    struct sim_node *b = &s->nodes[ev->to];
    if (!b->up || !b->linked[ev->from] || b->link_epoch[ev->from] != ev->epoch)
        return;
    struct msg m;
    size_t used;
    if (msg_decode_frame(ev->frame, ev->len, &s->lim, &m, &used, NULL) != 0 ||
        m.type != MSG_GOSSIP) {
        s->decode_failures++;
        return;
    }
    sn_member_receive(b->m, s->now, s->nodes[ev->from].id, &m.u.gossip);
    msg_clear(&m);
    sim_drain(s, ev->to);
}

/* Run everything due up to `until` (inclusive), then set the clock to it. */
static inline void sim_run_to(struct sim *s, uint64_t until)
{
    for (;;) {
        int node = -1;
        uint64_t t = UINT64_MAX;
        for (int i = 0; i < s->n; i++)
            if (s->nodes[i].up && s->nodes[i].deadline < t) {
                t = s->nodes[i].deadline;
                node = i;
            }
        bool event = s->n_ev && s->heap[0].at <= t;
        if (event)
            t = s->heap[0].at;
        if (t > until)
            break;
        if (t > s->now)
            s->now = t;
        if (event) {
            struct sim_ev ev = sim_pop(s);
            if (ev.kind == SIM_EV_MSG)
                sim_deliver(s, &ev);
            else
                sim_link_open(s, ev.from, ev.to);
            free(ev.frame);
        } else {
            sn_member_tick(s->nodes[node].m, s->now);
            sim_drain(s, node);
        }
    }
    s->now = until;
}

static inline void sim_run(struct sim *s, uint64_t ms)
{
    sim_run_to(s, s->now + ms);
}

typedef bool sim_cond_fn(const struct sim *s, void *arg);

/* Run until cond holds (checked every 10 simulated ms) or `limit` ms pass.
 * Returns the ms it took, or UINT64_MAX if it never held. */
static inline uint64_t sim_run_until(struct sim *s, uint64_t limit, sim_cond_fn *cond, void *arg)
{
    uint64_t start = s->now;
    while (!cond(s, arg)) {
        if (s->now - start >= limit)
            return UINT64_MAX;
        sim_run(s, 10);
    }
    return s->now - start;
}

static inline void sim_free(struct sim *s)
{
    for (int i = 0; i < s->n; i++)
        sn_member_free(s->nodes[i].m);
    while (s->n_ev) {
        struct sim_ev ev = sim_pop(s);
        free(ev.frame);
    }
    free(s->heap);
}

/* ---- views ------------------------------------------------------------------------------- */
/* How node `observer` sees node `target`: its state, 0 if unknown. */
static inline uint8_t sim_state(const struct sim *s, int observer, int target)
{
    struct sn_member_view v;
    if (!sn_member_lookup(s->nodes[observer].m, s->nodes[target].id, &v))
        return SN_MEMBER_GONE;
    return v.info.state;
}

static inline uint64_t sim_incarnation(const struct sim *s, int observer, int target)
{
    struct sn_member_view v;
    return sn_member_lookup(s->nodes[observer].m, s->nodes[target].id, &v) ? v.info.incarnation : 0;
}

/* Every running node sees every other running node alive, at the
 * incarnation that node has now. */
static inline bool sim_converged(const struct sim *s, void *arg)
{
    (void)arg;
    for (int i = 0; i < s->n; i++) {
        if (!s->nodes[i].up)
            continue;
        for (int j = 0; j < s->n; j++) {
            if (j == i || !s->nodes[j].up)
                continue;
            struct sn_member_view self;
            sn_member_self(s->nodes[j].m, &self);
            if (sim_state(s, i, j) != MSG_SN_ALIVE ||
                sim_incarnation(s, i, j) != self.info.incarnation)
                return false;
        }
    }
    return true;
}

struct sim_target {
    int node;
    uint8_t state;
};

/* Every running node other than t->node sees it in state t->state. */
static inline bool sim_all_see(const struct sim *s, void *arg)
{
    const struct sim_target *t = arg;
    for (int i = 0; i < s->n; i++)
        if (i != t->node && s->nodes[i].up && sim_state(s, i, t->node) != t->state)
            return false;
    return true;
}

#endif
