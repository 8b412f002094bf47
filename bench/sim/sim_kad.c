/* sim_kad.c - N supernodes' Kademlia tables (federation/sn_kad.h), built
 * by the standard join and measured by lookups (sim.h, docs/FEDERATION.md,
 * "Routing: Kademlia buckets").
 *
 * The network is a function call: a query from i to x is x's own
 * sn_kad_closest() answer, x having first noted i (sn_kad_seen), as a
 * FIND_NODE handler would. No latency is modelled, only who is asked.
 *
 *   join      node i (in order 1..N-1) knows one random earlier node, looks
 *             up its own ID (inserting every ID it hears) and then sends
 *             one query into each bucket farther than its nearest
 *             neighbour that is not full yet (the paper's bucket refresh,
 *             one query a bucket instead of one lookup). Its cost: the
 *             queries sent, each a request and an answer.
 *   links     the rule modelled: each supernode keeps open links to the
 *             longest-lived `links_per_bucket` entries of each bucket, a
 *             link counting on both ends, at most `links_cap` a supernode
 *             (a link is refused by an end at its cap: then the next entry
 *             of the bucket is tried). Other queries need a fresh
 *             connection. links_max is then bounded by construction; what
 *             is measured is what the rule leaves unlinked.
 *   lookups   Q random keys from random live supernodes: owners() when the
 *             table is sure (no query), else the iterative lookup (alpha 3,
 *             waiting for the lookup_k closest; a join waits for k). Three passes over fresh keys:
 * no loss; each query lost with loss_permille (the timeout path); crash_pct of the supernodes dead
 * (queries to them fail; the querier reports the failure to its table). Recall: of the true R
 * closest live IDs, the share the first R of the result hold.
 */
#include "sim.h"

#include "sn_kad.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID SN_KAD_ID_LEN

struct kad_net {
    size_t n;
    uint8_t (*ids)[ID];
    struct sn_kad **t;
    bool *dead;
    uint32_t *slot; /* open addressing: index + 1 by the ID's first 8 bytes */
    size_t slot_mask;
    unsigned k, lookup_k, alpha;
    uint64_t now_ms;
    struct sim_rng rng; /* losses */
    unsigned loss_permille;
};

static uint64_t id_word(const uint8_t id[ID])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | id[i];
    return v;
}

static long node_of(const struct kad_net *net, const uint8_t id[ID])
{
    for (size_t s = id_word(id) & net->slot_mask;; s = (s + 1) & net->slot_mask) {
        uint32_t v = net->slot[s];
        if (v == 0)
            return -1;
        if (memcmp(net->ids[v - 1], id, ID) == 0)
            return (long)v - 1;
    }
}

/* One FIND_NODE from i to x: false when it fails (x dead, or lost). */
static bool query(struct kad_net *net, size_t i, size_t x, const uint8_t target[ID],
                  uint8_t (*ans)[ID], size_t *n_ans)
{
    net->now_ms++;
    if (net->dead[x] || (net->loss_permille && sim_below(&net->rng, 1000) < net->loss_permille)) {
        sn_kad_failed(net->t[i], net->ids[x]);
        return false;
    }
    if (sn_kad_seen(net->t[x], net->ids[i], NULL, 0, net->now_ms) < 0 ||
        sn_kad_seen(net->t[i], net->ids[x], NULL, 0, net->now_ms) < 0)
        return false; /* out of memory: counted as a failure */
    *n_ans = sn_kad_closest(net->t[x], target, net->k, false, ans);
    return true;
}

/* An iterative lookup from i; `hear` inserts every ID heard into i's table
 * (the join). Writes the result and returns the queries sent (-1: no memory). */
static long lookup(struct kad_net *net, size_t i, const uint8_t target[ID], bool hear,
                   uint8_t (*out)[ID], size_t max, size_t *n_out, unsigned *rounds)
{
    /* A join waits for the table's k closest; an owner lookup for lookup_k. */
    unsigned k = hear ? net->k : net->lookup_k;
    struct sn_kad_lookup *l = sn_kad_lookup_start(net->t[i], target, net->alpha, k);
    if (l == NULL)
        return -1;
    while (!sn_kad_lookup_done(l, out, max, n_out)) {
        uint8_t ask[SN_KAD_ALPHA_MAX][ID], ans[SN_KAD_K_MAX][ID];
        size_t m = 0, n_ans = 0;
        while (m < SN_KAD_ALPHA_MAX && sn_kad_lookup_next(l, ask[m]))
            m++;
        if (m == 0)
            break; /* cannot happen: not done means something to ask */
        for (size_t j = 0; j < m; j++) {
            long x = node_of(net, ask[j]);
            if (x < 0 || !query(net, i, (size_t)x, target, ans, &n_ans)) {
                sn_kad_lookup_failed(l, ask[j]);
                continue;
            }
            sn_kad_lookup_answer(l, ask[j], (const uint8_t(*)[ID])ans, n_ans);
            for (size_t a = 0; hear && a < n_ans; a++)
                sn_kad_seen(net->t[i], ans[a], NULL, 0, net->now_ms);
        }
    }
    struct sn_kad_lookup_stats st;
    sn_kad_lookup_stats(l, &st);
    sn_kad_lookup_free(l);
    if (rounds)
        *rounds = st.rounds;
    return st.queries;
}

/* The join of node i through a random earlier one; returns its queries. */
static long join(struct kad_net *net, size_t i, struct sim_rng *r)
{
    size_t seed = (size_t)sim_below(r, i);
    sn_kad_seen(net->t[i], net->ids[seed], NULL, 0, ++net->now_ms);
    uint8_t out[SN_KAD_K_MAX][ID], ans[SN_KAD_K_MAX][ID];
    size_t n_out = 0;
    long queries = lookup(net, i, net->ids[i], true, out, SN_KAD_K_MAX, &n_out, NULL);
    if (queries < 0)
        return -1;
    uint8_t near[1][ID];
    if (sn_kad_closest(net->t[i], net->ids[i], 1, false, near) == 0)
        return queries;
    unsigned nearest = sn_kad_cpl(net->ids[i], near[0]);
    for (unsigned b = 0; b < nearest; b++) {
        const struct sn_kad_entry *e;
        size_t cached;
        if (sn_kad_bucket(net->t[i], b, &e, &cached) >= net->k)
            continue;
        uint8_t target[ID], via[1][ID];
        for (int w = 0; w < ID; w += 8) {
            uint64_t v = sim_rng_next(r);
            memcpy(target + w, &v, 8);
        }
        for (unsigned bit = 0; bit <= b; bit++) { /* the first b bits ours, bit b not */
            uint8_t m = (uint8_t)(0x80 >> (bit % 8));
            uint8_t want = (uint8_t)((net->ids[i][bit / 8] & m) ^ (bit == b ? m : 0));
            target[bit / 8] = (uint8_t)((target[bit / 8] & ~m) | want);
        }
        if (sn_kad_closest(net->t[i], target, 1, false, via) == 0)
            continue;
        long x = node_of(net, via[0]);
        size_t n_ans = 0;
        queries++;
        if (x >= 0 && query(net, i, (size_t)x, target, ans, &n_ans))
            for (size_t a = 0; a < n_ans; a++)
                sn_kad_seen(net->t[i], ans[a], NULL, 0, net->now_ms);
    }
    return queries;
}

/* ---- links ------------------------------------------------------------------ */
struct links {
    uint32_t *to; /* cap per node */
    uint16_t *n;
    unsigned cap;
};

static bool linked(const struct links *L, size_t a, size_t b)
{
    for (unsigned j = 0; j < L->n[a]; j++)
        if (L->to[a * L->cap + j] == b)
            return true;
    return false;
}

static void model_links(struct kad_net *net, unsigned cap, unsigned per_bucket,
                        struct sim_kad_result *out)
{
    struct links L = {calloc(net->n * cap, sizeof(uint32_t)), calloc(net->n, sizeof(uint16_t)),
                      cap};
    uint32_t *want_in = calloc(net->n, sizeof(uint32_t));
    uint16_t *got = calloc(net->n * SN_KAD_BUCKETS, 1);
    if (!L.to || !L.n || !want_in || !got)
        goto done;
    /* Rank by rank, so every supernode gets its first link of each bucket
     * before anyone gets a second. */
    for (unsigned rank = 0; rank < per_bucket; rank++) {
        for (size_t i = 0; i < net->n; i++) {
            for (unsigned b = 0; b < SN_KAD_BUCKETS; b++) {
                const struct sn_kad_entry *e;
                size_t cached, m = sn_kad_bucket(net->t[i], b, &e, &cached);
                if (m == 0 || got[i * SN_KAD_BUCKETS + b] > rank)
                    continue;
                if (rank < m) {
                    long x = node_of(net, e[rank].id);
                    if (x >= 0)
                        want_in[x]++;
                }
                for (size_t j = 0; j < m && L.n[i] < cap; j++) {
                    long x = node_of(net, e[j].id);
                    if (x < 0 || L.n[x] >= cap || linked(&L, i, (size_t)x))
                        continue;
                    L.to[i * cap + L.n[i]++] = (uint32_t)x;
                    L.to[(size_t)x * cap + L.n[x]++] = (uint32_t)i;
                    got[i * SN_KAD_BUCKETS + b]++;
                    break;
                }
            }
        }
    }
    size_t buckets = 0, unlinked = 0, sum = 0;
    for (size_t i = 0; i < net->n; i++) {
        if (L.n[i] > out->links_max)
            out->links_max = L.n[i];
        if (want_in[i] > out->links_wanted_in_max)
            out->links_wanted_in_max = want_in[i];
        sum += L.n[i];
        for (unsigned b = 0; b < SN_KAD_BUCKETS; b++) {
            const struct sn_kad_entry *e;
            size_t cached;
            if (sn_kad_bucket(net->t[i], b, &e, &cached) == 0)
                continue;
            buckets++;
            unlinked += got[i * SN_KAD_BUCKETS + b] == 0;
        }
    }
    out->links_mean = (double)sum / (double)net->n;
    out->unlinked_bucket_pct = buckets ? 100.0 * (double)unlinked / (double)buckets : 0;
done:
    free(L.to);
    free(L.n);
    free(want_in);
    free(got);
}

/* ---- measurement --------------------------------------------------------------- */
/* The r closest live IDs to key, by brute force (r <= 8). */
static size_t true_owners(const struct kad_net *net, const uint8_t key[ID], size_t r, size_t *out)
{
    size_t got = 0;
    for (size_t i = 0; i < net->n; i++) {
        if (net->dead[i])
            continue;
        size_t at = got;
        while (at > 0 && sn_kad_cmp_distance(key, net->ids[i], net->ids[out[at - 1]]) < 0)
            at--;
        if (at >= r)
            continue;
        size_t keep = got < r ? got : r - 1;
        memmove(&out[at + 1], &out[at], (keep - at) * sizeof(*out));
        out[at] = i;
        if (got < r)
            got++;
    }
    return got;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int measure(struct kad_net *net, const struct sim_kad_params *p, struct sim_rng *r,
                   struct sim_kad_pass *out)
{
    double *hops = calloc(p->queries, sizeof(double));
    if (hops == NULL)
        return -1;
    double found = 0, rounds = 0;
    unsigned local = 0;
    for (unsigned q = 0; q < p->queries; q++) {
        uint8_t key[ID], res[SN_KAD_K_MAX][ID];
        for (int w = 0; w < ID; w += 8) {
            uint64_t v = sim_rng_next(r);
            memcpy(key + w, &v, 8);
        }
        size_t from;
        do
            from = (size_t)sim_below(r, net->n);
        while (net->dead[from]);
        size_t n_res = sn_kad_owners(net->t[from], key, p->r, res);
        if (n_res > 0) {
            local++;
        } else {
            unsigned lr = 0;
            long qs = lookup(net, from, key, false, res, SN_KAD_K_MAX, &n_res, &lr);
            if (qs < 0) {
                free(hops);
                return -1;
            }
            hops[q] = (double)qs;
            rounds += lr;
        }
        size_t want[SN_KAD_K_MAX];
        size_t nw = true_owners(net, key, p->r, want);
        for (size_t a = 0; a < nw; a++)
            for (size_t b = 0; b < n_res && b < p->r; b++)
                if (memcmp(net->ids[want[a]], res[b], ID) == 0)
                    found += 1.0 / (double)nw;
    }
    double sum = 0;
    for (unsigned q = 0; q < p->queries; q++)
        sum += hops[q];
    qsort(hops, p->queries, sizeof(double), cmp_double);
    out->hops_mean = sum / p->queries;
    out->hops_p99 = hops[(size_t)((p->queries - 1) * 0.99)];
    out->rounds_mean = rounds / p->queries;
    out->recall = found / p->queries;
    out->local_pct = 100.0 * local / p->queries;
    free(hops);
    return 0;
}

int sim_kad_run(const struct sim_kad_params *p, struct sim_kad_result *out)
{
    double w0 = sim_wall_s();
    memset(out, 0, sizeof(*out));
    out->n = p->n;
    out->bytes_per_entry = sizeof(struct sn_kad_entry);
    struct kad_net net = {.n = p->n, .k = p->k, .lookup_k = p->lookup_k, .alpha = p->alpha};
    size_t slots = 1;
    while (slots < 2 * p->n)
        slots <<= 1;
    net.slot_mask = slots - 1;
    net.ids = malloc(p->n * ID);
    net.t = calloc(p->n, sizeof(*net.t));
    net.dead = calloc(p->n, sizeof(bool));
    net.slot = calloc(slots, sizeof(uint32_t));
    int rc = -1;
    if (!net.ids || !net.t || !net.dead || !net.slot)
        goto out;
    struct sim_rng r;
    sim_rng_seed(&r, p->seed, 17);
    sim_rng_seed(&net.rng, p->seed, 18);
    struct sn_kad_config cfg = {.k = p->k};
    for (size_t i = 0; i < p->n; i++) {
        for (int w = 0; w < ID; w += 8) {
            uint64_t v = sim_rng_next(&r);
            memcpy(net.ids[i] + w, &v, 8);
        }
        size_t s = id_word(net.ids[i]) & net.slot_mask;
        while (net.slot[s])
            s = (s + 1) & net.slot_mask;
        net.slot[s] = (uint32_t)i + 1;
        if ((net.t[i] = sn_kad_new(net.ids[i], &cfg)) == NULL)
            goto out;
    }
    /* Joins. */
    double join_q = 0;
    for (size_t i = 1; i < p->n; i++) {
        long q = join(&net, i, &r);
        if (q < 0)
            goto out;
        join_q += (double)q;
        if ((double)q > out->join_queries_max)
            out->join_queries_max = (double)q;
    }
    out->join_msgs_mean = 2 * join_q / (double)(p->n - 1);
    out->join_wall_s = sim_wall_s() - w0;
    /* State. */
    double view = 0, cache = 0, bytes = 0;
    for (size_t i = 0; i < p->n; i++) {
        size_t v = sn_kad_size(net.t[i]);
        view += (double)v;
        cache += (double)sn_kad_cached(net.t[i]);
        bytes += (double)sn_kad_bytes(net.t[i]);
        if (v > out->view_max)
            out->view_max = v;
    }
    out->view_mean = view / (double)p->n;
    out->cache_mean = cache / (double)p->n;
    out->table_kb_mean = bytes / (double)p->n / 1024;
    model_links(&net, p->links_cap, p->links_per_bucket, out);
    /* Lookups: clean, with loss, with crashes. */
    if (measure(&net, p, &r, &out->clean) != 0)
        goto out;
    net.loss_permille = p->loss_permille;
    if (measure(&net, p, &r, &out->loss) != 0)
        goto out;
    net.loss_permille = 0;
    size_t crash = p->n * p->crash_pct / 100;
    for (size_t c = 0; c < crash;) {
        size_t x = (size_t)sim_below(&r, p->n);
        if (!net.dead[x]) {
            net.dead[x] = true;
            c++;
        }
    }
    if (crash < p->n && measure(&net, p, &r, &out->crash) != 0)
        goto out;
    rc = 0;
out:
    if (net.t)
        for (size_t i = 0; i < p->n; i++)
            sn_kad_free(net.t[i]);
    free(net.t);
    free(net.ids);
    free(net.dead);
    free(net.slot);
    out->wall_s = sim_wall_s() - w0;
    return rc;
}
