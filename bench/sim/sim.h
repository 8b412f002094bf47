/* sim.h - private header of sova_sim (bench/sim, not a library): a
 * deterministic simulator of the supernode federation that runs the real
 * sans-I/O modules (sn_member for SWIM membership, sn_summary and sn_route
 * for routed search) on a fake clock.
 *
 *   sim_member_net.c  N supernodes' sn_member modules over a simulated
 *                     network (latency, loss, links that open and close as
 *                     the daemon's do); every GOSSIP goes through msg_encode()
 *                     and msg_decode_frame(), which is also how bytes are
 *                     counted. Scenarios: a join, failures, a steady run.
 *   sim_search.c      1,000,000 peers modelled by their files and their
 *                     churn, spread over N supernodes; each supernode's
 *                     summary rebuilt and sent as the daemon does it; a
 *                     query mix routed by sn_route_targets(); fan-out and
 *                     recall against the ground truth.
 *   sim_kad.c         N supernodes' Kademlia tables (sn_kad): the standard
 *                     join, the links a bounded rule keeps, lookups of
 *                     the R owners of random keys with loss and crashes.
 *   sim_main.c        options, the runs for each N, the report.
 * docs/SCALING.md reads the figures. Same seed, same figures: nothing here
 * reads a clock except to report how long the simulation itself took.
 */
#ifndef SOVA_BENCH_SIM_H
#define SOVA_BENCH_SIM_H

#include "msg.h"
#include "wire.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- deterministic randomness ---------------------------------------------- */
struct sim_rng {
    uint64_t s;
};

static inline uint64_t sim_rng_next(struct sim_rng *r) /* splitmix64 */
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline void sim_rng_seed(struct sim_rng *r, uint64_t seed, uint64_t stream)
{
    r->s = seed * 0x9e3779b97f4a7c15ull ^ (stream + 1) * 0xd1b54a32d192ed03ull;
    (void)sim_rng_next(r);
}

/* Uniform in (0, 1]: never 0, so -log() is finite. */
static inline double sim_unit(struct sim_rng *r)
{
    return ((double)(sim_rng_next(r) >> 11) + 1.0) / 9007199254740992.0;
}

static inline uint64_t sim_below(struct sim_rng *r, uint64_t n)
{
    return n ? sim_rng_next(r) % n : 0;
}

/* Exponential with this mean. */
static inline double sim_exp(struct sim_rng *r, double mean)
{
    return -mean * log(sim_unit(r));
}

/* Weibull with this shape k and median m: scale m / ln(2)^(1/k). */
static inline double sim_weibull(struct sim_rng *r, double k, double median)
{
    double scale = median / pow(log(2.0), 1.0 / k);
    return scale * pow(-log(sim_unit(r)), 1.0 / k);
}

/* Gamma(shape a >= 1 or < 1, scale 1): Marsaglia and Tsang's method. */
static inline double sim_gamma(struct sim_rng *r, double a)
{
    if (a < 1)
        return sim_gamma(r, a + 1) * pow(sim_unit(r), 1.0 / a);
    double d = a - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        /* a standard normal by Box-Muller */
        double x = sqrt(-2 * log(sim_unit(r))) * cos(6.283185307179586 * sim_unit(r));
        double v = 1 + c * x;
        if (v <= 0)
            continue;
        v = v * v * v;
        double u = sim_unit(r);
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v))
            return d * v;
    }
}

/* What is left of a Weibull session (shape k, median m) seen at a random
 * moment of a stationary process: the session holding that moment is
 * length-biased ((L/scale)^k is Gamma(1 + 1/k)), and the moment uniform in it. */
static inline double sim_weibull_residual(struct sim_rng *r, double k, double median)
{
    double scale = median / pow(log(2.0), 1.0 / k);
    return sim_unit(r) * scale * pow(sim_gamma(r, 1 + 1 / k), 1.0 / k);
}

/* Monotonic seconds of the simulator's own run (for reports only). */
double sim_wall_s(void);

/* ---- network of sn_member modules (sim_member_net.c) -------------------------- */
struct sim_net_params {
    unsigned lat_min_ms, lat_jitter_ms; /* one-way delay: uniform in [min, min + jitter) */
    unsigned loss_permille;             /* GOSSIP frames lost (the module sees a loss) */
    unsigned link_setup_ms;             /* TCP + TLS + HELLO of a new supernode link */
    unsigned sn_mtbf_s;                 /* steady run: a supernode crashes this often (mean) */
    unsigned sn_down_s;                 /* ... and restarts after this long; 0: no churn */
    unsigned steady_s;                  /* length of the steady run */
    unsigned trials;                    /* failures measured (each kind) */
    uint64_t seed;
};

struct sim_member_result {
    bool ran;
    char why_not[256];
    size_t n;
    double warm_sim_s, warm_wall_s;
    /* a join: seeded with one member */
    double join_all_know_ms; /* every other supernode holds the new one alive */
    double join_knows_all_ms;
    double join_mb; /* GOSSIP megabytes the federation sent for it (over the quiet rate) */
    /* failures, median and max over the trials */
    double silent_med_ms, silent_max_ms; /* process hangs, links stay open */
    double crash_med_ms, crash_max_ms;   /* process dies, its links close */
    double first_suspect_med_ms;
    /* the steady run */
    double steady_sim_s;
    uint64_t false_suspect, false_dead; /* transitions about supernodes that were up */
    uint64_t sn_crashes;                /* real ones, from churn */
    double quiet_bps;                   /* GOSSIP bytes per supernode per second, quiet */
    double steady_bps;                  /* ... during the steady run (loss, churn, loads) */
    double wall_per_sim_s;              /* simulator cost in the steady run */
};

int sim_member_run(size_t n, const struct sim_net_params *p, struct sim_member_result *out);

/* ---- peers, summaries and routed search (sim_search.c) -------------------------- */
struct sim_search_params {
    size_t n_sn;
    size_t n_peers;
    unsigned files_per_peer;
    unsigned vocab;           /* words of the Zipf vocabulary */
    unsigned max_results;     /* per SEARCH, as sova-peer sends */
    double session_median_s;  /* Weibull sessions */
    double session_shape;     /* k */
    double offline_mean_s;    /* exponential time away between sessions */
    double ipchange_per_day;  /* address changes of an online peer (Poisson) */
    double reattach_same_pct; /* after an address change, back on the same supernode */
    unsigned summary_interval_ms;
    unsigned route_max_summaries; /* sn_route_limits.max_summaries */
    unsigned max_targets;         /* supernodes one query may be sent to (the daemon's array) */
    unsigned lat_min_ms, lat_jitter_ms, loss_permille;
    unsigned deadline_ms; /* of a forwarded search */
    double warmup_s, duration_s;
    unsigned queries; /* issued evenly over duration_s after warm-up */
    uint64_t seed;
};

struct sim_search_result {
    bool ran;
    char why_not[256];
    size_t n_sn, online_mean;
    double churn_per_s;     /* attach + leave events a second, federation-wide */
    double summary_kb_mean; /* SUMMARY frame size */
    double keywords_per_sn; /* distinct keywords in a summary, mean */
    double fp_pct_mean;     /* estimated false-positive rate of the filters */
    double rebuilds_per_sn_s;
    double summary_bps;                         /* SUMMARY bytes one supernode sends a second */
    double fanout_mean, fanout_p50, fanout_p99; /* supernodes a query reaches */
    double matched_mean, blind_mean,
        holders_mean;                 /* summary said yes / no summary / truly hold a match */
    double fanout_rare, holders_rare; /* the same for rare queries (<= max_results matches) */
    double messages_mean;             /* FWD_SEARCH frames a query costs (relays included) */
    double dropped_mean;              /* targets left out by max_targets */
    double recall, recall_rare; /* found / what the result cap allows; rare: <= max_results exist */
    size_t queries, rare_queries, common_queries;
    double missed_holder_pct; /* holders a query did not reach (stale summaries) */
    double late_pct;          /* answers past the deadline (loss, retransmission) */
    /* issue 17's keys, for the design simulated */
    size_t links_max;          /* most supernode links any supernode holds */
    size_t view_max;           /* most membership entries any supernode holds */
    double load_max_over_mean; /* queries the busiest supernode handled over the mean */
    double wall_s;
};

int sim_search_run(const struct sim_search_params *p, struct sim_search_result *out);

/* ---- Kademlia routing (sim_kad.c) ---------------------------------------------- */
struct sim_kad_params {
    size_t n;
    unsigned queries;            /* lookups measured per pass */
    unsigned k, alpha, lookup_k; /* table's k; lookup's alpha and k */
    unsigned r;                  /* owners of a key */
    unsigned loss_permille;      /* the loss pass: queries lost */
    unsigned crash_pct;          /* the crash pass: supernodes dead */
    unsigned links_cap, links_per_bucket;
    uint64_t seed;
};

struct sim_kad_pass {
    double hops_mean, hops_p99; /* queries a lookup sends (0: owners known locally) */
    double rounds_mean;         /* round trips (alpha in parallel) */
    double recall;              /* of the true R owners, the share found */
    double local_pct;           /* keys whose owners the table knew without a lookup */
};

struct sim_kad_result {
    size_t n;
    size_t view_max;              /* most entries a table holds (buckets) */
    double view_mean, cache_mean; /* ... mean, and replacement-cache entries */
    double table_kb_mean;         /* heap a table holds */
    size_t bytes_per_entry;       /* sizeof(struct sn_kad_entry) */
    size_t links_max;             /* most links any supernode holds, both ends counted */
    double links_mean;
    size_t links_wanted_in_max; /* most supernodes that picked one as a bucket's first */
    double unlinked_bucket_pct; /* non-empty buckets the link rule left without a link */
    double join_msgs_mean;      /* FIND_NODE requests + answers a join costs */
    double join_queries_max;
    double join_wall_s;
    struct sim_kad_pass clean, loss, crash;
    double wall_s;
};

int sim_kad_run(const struct sim_kad_params *p, struct sim_kad_result *out);

#endif
