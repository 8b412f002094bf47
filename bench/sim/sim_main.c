/* sova_sim - the supernode federation at 100, 1,000 and 10,000 supernodes,
 * simulated with the real sans-I/O modules (see sim.h): membership (join,
 * failure detection, false deaths, gossip bytes) and routed search over a
 * population of peers with churn (fan-out, recall, summary bytes); with
 * --only kad, Kademlia routing (sn_kad) at up to 100,000 supernodes.
 * Deterministic: the same options and seed print the same figures (the
 * wall-clock times of the simulator itself aside). Not a test.
 *
 * The last lines are machine-readable: RESULT_MEMBER n=...,
 * RESULT_SEARCH n=... and RESULT_KAD n=... with key=value pairs.
 */
#include "sim.h"

#include "sn_kad.h"
#include "sn_member.h"
#include "sn_route.h"
#include "sn_summary.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIM_MAX_RUNS 8
/* What the daemon holds today (federation/sn_fed_links.h, search/sn_search.c): at most
 * SN_FED_MAX_LINKS = SN_MEMBER_MAX_MEMBERS supernode links, and a query's
 * targets in an array of that size (SN_SEARCH_MAX_TARGETS); sn_route's table
 * at its default. */
#define SIM_DAEMON_MAX_TARGETS SN_MEMBER_MAX_MEMBERS
/* An owner lookup waits for the 8 closest (R = 3 and a margin for failures):
 * the table's k = 16 would cost 20 queries at 10,000 supernodes for the same
 * recall (docs/FEDERATION.md, "Routing: Kademlia buckets"). */
#define SIM_KAD_LOOKUP_K 8

struct options {
    size_t sn[SIM_MAX_RUNS];
    size_t n_sn;
    bool members, search, kad;
    struct sim_net_params net;
    struct sim_kad_params kad_p;
    struct sim_search_params search_p;
    int route_caps; /* 1: the daemon's, 2: raised to N, 3: both */
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: sova_sim [OPTION]...\n"
            "Simulates the supernode federation with the real sn_member, sn_summary and sn_route\n"
            "code on a fake clock. Deterministic for a given seed.\n"
            "  --sn LIST              supernode counts (100,1000,10000)\n"
            "  --only members|search|kad  one part only (kad: only with --only)\n"
            "  --seed S               (1)\n"
            "  --lat MIN:JITTER       one-way delay, ms: uniform in [MIN, MIN+JITTER) (10:40)\n"
            "  --loss PERMILLE        messages lost, per mille (10)\n"
            "membership:\n"
            "  --steady-s S           steady run, simulated seconds (120)\n"
            "  --trials K             failures of each kind (5)\n"
            "  --sn-mtbf-h H          a supernode crashes every H hours on average (24); 0: never\n"
            "  --sn-down-s S          ... and restarts S seconds later (60)\n"
            "search:\n"
            "  --peers N              peers in the population (1000000)\n"
            "  --files F              files per peer (20)\n"
            "  --vocab V              Zipf vocabulary (100000)\n"
            "  --queries Q            queries measured (2000)\n"
            "  --search-s S           measured window, simulated seconds (120)\n"
            "  --warmup-s S           churn before measuring (60)\n"
            "  --session-median-min M Weibull session median, minutes (60)\n"
            "  --session-shape K      Weibull shape (0.5)\n"
            "  --offline-min M        mean time away between sessions, minutes (30)\n"
            "  --ipchange-per-day R   address changes of an online peer a day (1)\n"
            "  --route-caps daemon|raised|both  as the daemon is (%d summaries kept, %d targets\n"
            "                         a query), the modules' own caps (summaries up to N, at\n"
            "                         most %d; targets unlimited), or both (both)\n"
            "kad (Kademlia routing, sn_kad; --queries, --loss and --seed apply):\n"
            "  --kad-k K              bucket size (%d)\n"
            "  --kad-lookup-k K       closest a lookup waits for (%d)\n"
            "  --kad-crash-pct P      supernodes dead in the crash pass (5)\n"
            "  --kad-links CAP:PER    links a supernode holds at most, per bucket (64:4)\n",
            SN_ROUTE_MAX_SUMMARIES_DEFAULT, SIM_DAEMON_MAX_TARGETS, SN_ROUTE_MAX_SUMMARIES_CAP,
            SN_KAD_K_DEFAULT, SIM_KAD_LOOKUP_K);
}

static int parse_list(const char *s, struct options *o)
{
    o->n_sn = 0;
    char *copy = strdup(s), *save = NULL;
    if (copy == NULL)
        return -1;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end;
        unsigned long v = strtoul(t, &end, 10);
        if (*end != '\0' || v < 2 || v > 100000 || o->n_sn == SIM_MAX_RUNS) {
            free(copy);
            return -1;
        }
        o->sn[o->n_sn++] = v;
    }
    free(copy);
    return o->n_sn ? 0 : -1;
}

static int num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

static int parse(int argc, char **argv, struct options *o)
{
    enum {
        O_SN = 256,
        O_ONLY,
        O_SEED,
        O_LAT,
        O_LOSS,
        O_STEADY,
        O_TRIALS,
        O_MTBF,
        O_DOWN,
        O_PEERS,
        O_FILES,
        O_VOCAB,
        O_QUERIES,
        O_SEARCH_S,
        O_WARMUP,
        O_SMED,
        O_SHAPE,
        O_OFF,
        O_IP,
        O_CAPS,
        O_KAD_K,
        O_KAD_LOOKUP_K,
        O_KAD_CRASH,
        O_KAD_LINKS,
        O_HELP
    };
    static const struct option longopts[] = {
        {"sn", required_argument, NULL, O_SN},
        {"only", required_argument, NULL, O_ONLY},
        {"seed", required_argument, NULL, O_SEED},
        {"lat", required_argument, NULL, O_LAT},
        {"loss", required_argument, NULL, O_LOSS},
        {"steady-s", required_argument, NULL, O_STEADY},
        {"trials", required_argument, NULL, O_TRIALS},
        {"sn-mtbf-h", required_argument, NULL, O_MTBF},
        {"sn-down-s", required_argument, NULL, O_DOWN},
        {"peers", required_argument, NULL, O_PEERS},
        {"files", required_argument, NULL, O_FILES},
        {"vocab", required_argument, NULL, O_VOCAB},
        {"queries", required_argument, NULL, O_QUERIES},
        {"search-s", required_argument, NULL, O_SEARCH_S},
        {"warmup-s", required_argument, NULL, O_WARMUP},
        {"session-median-min", required_argument, NULL, O_SMED},
        {"session-shape", required_argument, NULL, O_SHAPE},
        {"offline-min", required_argument, NULL, O_OFF},
        {"ipchange-per-day", required_argument, NULL, O_IP},
        {"route-caps", required_argument, NULL, O_CAPS},
        {"kad-k", required_argument, NULL, O_KAD_K},
        {"kad-lookup-k", required_argument, NULL, O_KAD_LOOKUP_K},
        {"kad-crash-pct", required_argument, NULL, O_KAD_CRASH},
        {"kad-links", required_argument, NULL, O_KAD_LINKS},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    parse_list("100,1000,10000", o);
    o->members = o->search = true;
    o->kad = false;
    o->kad_p = (struct sim_kad_params){.k = SN_KAD_K_DEFAULT,
                                       .alpha = SN_KAD_ALPHA_DEFAULT,
                                       .lookup_k = SIM_KAD_LOOKUP_K,
                                       .r = 3,
                                       .crash_pct = 5,
                                       .links_cap = 64,
                                       .links_per_bucket = 4};
    o->route_caps = 3;
    o->net = (struct sim_net_params){.lat_min_ms = 10,
                                     .lat_jitter_ms = 40,
                                     .loss_permille = 10,
                                     .link_setup_ms = 30,
                                     .sn_mtbf_s = 24 * 3600,
                                     .sn_down_s = 60,
                                     .steady_s = 120,
                                     .trials = 5,
                                     .seed = 1};
    struct sim_search_params *s = &o->search_p;
    *s = (struct sim_search_params){.n_peers = 1000000,
                                    .files_per_peer = 20,
                                    .vocab = 100000,
                                    .max_results = 100,
                                    .session_median_s = 3600,
                                    .session_shape = 0.5,
                                    .offline_mean_s = 1800,
                                    .ipchange_per_day = 1,
                                    .reattach_same_pct = 50,
                                    .summary_interval_ms = SN_SUMMARY_MIN_INTERVAL_MS_DEFAULT,
                                    .deadline_ms = 500,
                                    .warmup_s = 60,
                                    .duration_s = 120,
                                    .queries = 2000,
                                    .seed = 1};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        double v = 0;
        int bad = 0;
        switch (c) {
        case O_SN:
            bad = parse_list(optarg, o);
            break;
        case O_ONLY:
            o->members = strcmp(optarg, "members") == 0;
            o->search = strcmp(optarg, "search") == 0;
            o->kad = strcmp(optarg, "kad") == 0;
            bad = !o->members && !o->search && !o->kad;
            break;
        case O_SEED:
            bad = num(optarg, 0, 4294967295.0, &v);
            o->net.seed = s->seed = (uint64_t)v;
            break;
        case O_LAT: {
            unsigned a, b;
            bad = sscanf(optarg, "%u:%u", &a, &b) != 2 || a > 10000 || b > 10000;
            o->net.lat_min_ms = s->lat_min_ms = a;
            o->net.lat_jitter_ms = s->lat_jitter_ms = b;
            break;
        }
        case O_LOSS:
            bad = num(optarg, 0, 500, &v);
            o->net.loss_permille = s->loss_permille = (unsigned)v;
            break;
        case O_STEADY:
            bad = num(optarg, 1, 86400, &v);
            o->net.steady_s = (unsigned)v;
            break;
        case O_TRIALS:
            bad = num(optarg, 1, 1000, &v);
            o->net.trials = (unsigned)v;
            break;
        case O_MTBF:
            bad = num(optarg, 0, 1e6, &v);
            o->net.sn_mtbf_s = (unsigned)(v * 3600);
            break;
        case O_DOWN:
            bad = num(optarg, 1, 86400, &v);
            o->net.sn_down_s = (unsigned)v;
            break;
        case O_PEERS:
            bad = num(optarg, 1, 1e8, &v);
            s->n_peers = (size_t)v;
            break;
        case O_FILES:
            bad = num(optarg, 1, 1000, &v);
            s->files_per_peer = (unsigned)v;
            break;
        case O_VOCAB:
            bad = num(optarg, 100, 1e7, &v);
            s->vocab = (unsigned)v;
            break;
        case O_QUERIES:
            bad = num(optarg, 1, 1e6, &v);
            s->queries = (unsigned)v;
            break;
        case O_SEARCH_S:
            bad = num(optarg, 1, 86400, &v);
            s->duration_s = v;
            break;
        case O_WARMUP:
            bad = num(optarg, 0, 86400, &v);
            s->warmup_s = v;
            break;
        case O_SMED:
            bad = num(optarg, 0.1, 1e6, &v);
            s->session_median_s = v * 60;
            break;
        case O_SHAPE:
            bad = num(optarg, 0.05, 10, &v);
            s->session_shape = v;
            break;
        case O_OFF:
            bad = num(optarg, 0.01, 1e6, &v);
            s->offline_mean_s = v * 60;
            break;
        case O_IP:
            bad = num(optarg, 0, 1e4, &v);
            s->ipchange_per_day = v;
            break;
        case O_CAPS:
            o->route_caps = strcmp(optarg, "daemon") == 0   ? 1
                            : strcmp(optarg, "raised") == 0 ? 2
                            : strcmp(optarg, "both") == 0   ? 3
                                                            : 0;
            bad = o->route_caps == 0;
            break;
        case O_KAD_K:
            bad = num(optarg, 1, SN_KAD_K_MAX, &v);
            o->kad_p.k = (unsigned)v;
            break;
        case O_KAD_LOOKUP_K:
            bad = num(optarg, 1, SN_KAD_K_MAX, &v);
            o->kad_p.lookup_k = (unsigned)v;
            break;
        case O_KAD_CRASH:
            bad = num(optarg, 0, 90, &v);
            o->kad_p.crash_pct = (unsigned)v;
            break;
        case O_KAD_LINKS: {
            unsigned a, b;
            bad = sscanf(optarg, "%u:%u", &a, &b) != 2 || a < 1 || a > 1024 || b < 1 || b > 64;
            o->kad_p.links_cap = a;
            o->kad_p.links_per_bucket = b;
            break;
        }
        case O_HELP:
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
        if (bad) {
            fprintf(stderr, "sova_sim: bad value for --%s: %s\n", longopts[c - O_SN].name, optarg);
            return -1;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return -1;
    }
    o->kad_p.seed = o->net.seed;
    o->kad_p.queries = s->queries;
    o->kad_p.loss_permille = o->net.loss_permille;
    return 0;
}

static void print_kad(const struct sim_kad_result *r, const struct sim_kad_params *p)
{
    printf("kad, %zu supernodes (k %u, alpha %u, lookup k %u, R %u; joins %.0f s, all %.0f s)\n",
           r->n, p->k, p->alpha, p->lookup_k, p->r, r->join_wall_s, r->wall_s);
    printf("  table: %.1f entries mean, %zu max, + %.1f cached; %zu B an entry, %.1f KB a table\n",
           r->view_mean, r->view_max, r->cache_mean, r->bytes_per_entry, r->table_kb_mean);
    printf("  join: %.1f messages mean (FIND_NODE requests + answers), %.0f queries max\n",
           r->join_msgs_mean, r->join_queries_max);
    printf("  links (the %u longest-lived of each bucket, at most %u a supernode): max %zu, mean "
           "%.1f; buckets left unlinked %.2f%%; most supernodes picking one as a bucket's first "
           "%zu\n",
           p->links_per_bucket, p->links_cap, r->links_max, r->links_mean, r->unlinked_bucket_pct,
           r->links_wanted_in_max);
    const struct sim_kad_pass *pass[3] = {&r->clean, &r->loss, &r->crash};
    const char *name[3] = {"no loss", "loss", "crashes"};
    for (int i = 0; i < 3; i++)
        printf("  lookups, %s: %.1f queries mean, p99 %.0f, %.1f round trips; owners recall "
               "%.4f; local %.2f%%\n",
               name[i], pass[i]->hops_mean, pass[i]->hops_p99, pass[i]->rounds_mean,
               pass[i]->recall, pass[i]->local_pct);
    printf(
        "RESULT_KAD n=%zu k=%u lookup_k=%u view_max=%zu view_mean=%.1f cache_mean=%.1f "
        "entry_bytes=%zu table_kb=%.1f links_max=%zu links_mean=%.1f unlinked_pct=%.2f "
        "lookup_hops_mean=%.2f lookup_hops_p99=%.0f lookup_rounds=%.2f owners_recall=%.4f "
        "local_pct=%.2f loss_permille=%u hops_loss=%.2f recall_loss=%.4f crash_pct=%u "
        "hops_crash=%.2f hops_crash_p99=%.0f recall_crash=%.4f join_msgs_mean=%.1f wall_s=%.0f\n",
        r->n, p->k, p->lookup_k, r->view_max, r->view_mean, r->cache_mean, r->bytes_per_entry,
        r->table_kb_mean, r->links_max, r->links_mean, r->unlinked_bucket_pct, r->clean.hops_mean,
        r->clean.hops_p99, r->clean.rounds_mean, r->clean.recall, r->clean.local_pct,
        p->loss_permille, r->loss.hops_mean, r->loss.recall, p->crash_pct, r->crash.hops_mean,
        r->crash.hops_p99, r->crash.recall, r->join_msgs_mean, r->wall_s);
}

static void print_member(const struct sim_member_result *r)
{
    if (!r->ran) {
        printf("membership, %zu supernodes: not simulated: %s\n", r->n, r->why_not);
        printf("RESULT_MEMBER n=%zu ran=0\n", r->n);
        return;
    }
    printf("membership, %zu supernodes (start-up: %.0f simulated s in %.1f s)\n", r->n,
           r->warm_sim_s, r->warm_wall_s);
    printf("  join (one seed): known by all in %.0f ms, knows all in %.0f ms, %.1f MB of "
           "GOSSIP for it\n",
           r->join_all_know_ms, r->join_knows_all_ms, r->join_mb);
    printf("  failure, silent (links stay open): first suspicion %.0f ms, dead everywhere "
           "median %.0f ms, max %.0f ms\n",
           r->first_suspect_med_ms, r->silent_med_ms, r->silent_max_ms);
    printf("  failure, crash (links close): dead everywhere median %.0f ms, max %.0f ms\n",
           r->crash_med_ms, r->crash_max_ms);
    printf("  steady %.0f s (loss, loads changing, %llu supernode crashes): %llu false "
           "suspicions, %llu false deaths\n",
           r->steady_sim_s, (unsigned long long)r->sn_crashes, (unsigned long long)r->false_suspect,
           (unsigned long long)r->false_dead);
    printf("  gossip per supernode: %.0f B/s quiet, %.0f B/s steady; simulator %.2f s per "
           "simulated s\n",
           r->quiet_bps, r->steady_bps, r->wall_per_sim_s);
    printf("RESULT_MEMBER n=%zu ran=1 join_all_know_ms=%.0f join_knows_all_ms=%.0f join_mb=%.2f "
           "first_suspect_ms=%.0f silent_med_ms=%.0f silent_max_ms=%.0f crash_med_ms=%.0f "
           "crash_max_ms=%.0f false_suspect=%llu false_dead=%llu quiet_bps=%.0f steady_bps=%.0f "
           "sim_wall_per_s=%.3f\n",
           r->n, r->join_all_know_ms, r->join_knows_all_ms, r->join_mb, r->first_suspect_med_ms,
           r->silent_med_ms, r->silent_max_ms, r->crash_med_ms, r->crash_max_ms,
           (unsigned long long)r->false_suspect, (unsigned long long)r->false_dead, r->quiet_bps,
           r->steady_bps, r->wall_per_sim_s);
}

static void print_search(const struct sim_search_result *r, unsigned cap, bool daemon,
                         const struct sim_member_result *m)
{
    /* Maintenance: the index's (SUMMARY) and the membership's (GOSSIP)
     * bytes a supernode sends a second; the gossip from the membership half
     * of this run at the same N, if it ran. */
    double maint_bps = r->summary_bps + (m && m->ran ? m->steady_bps : 0);
    char targets[16] = "none";
    if (daemon)
        snprintf(targets, sizeof(targets), "%d", SIM_DAEMON_MAX_TARGETS);
    printf("search, %zu supernodes, %zu peers online on average, %s: route table cap %u, "
           "targets cap %s (simulated in %.0f s)\n",
           r->n_sn, r->online_mean, daemon ? "as the daemon is" : "modules' own caps", cap, targets,
           r->wall_s);
    printf("  churn %.0f attach/leave events a second; summaries: %.0f keywords, %.1f KB, "
           "est. false positives %.2f%%, %.3f rebuilds per supernode a second\n",
           r->churn_per_s, r->keywords_per_sn, r->summary_kb_mean, r->fp_pct_mean,
           r->rebuilds_per_sn_s);
    printf("  SUMMARY bytes one supernode sends: %.0f B/s (%.2f MB/s)\n", r->summary_bps,
           r->summary_bps / 1e6);
    printf("  fan-out (supernodes a query reaches): mean %.1f, p50 %.0f, p99 %.0f; by summary "
           "%.1f, blind %.1f, left out (targets cap) %.1f; holders of a match %.1f\n",
           r->fanout_mean, r->fanout_p50, r->fanout_p99, r->matched_mean, r->blind_mean,
           r->dropped_mean, r->holders_mean);
    printf("  rare queries (<= %u matching files): fan-out %.1f for %.1f holders; FWD_SEARCH "
           "frames per query %.0f (relays included)\n",
           100u, r->fanout_rare, r->holders_rare, r->messages_mean);
    printf("  recall %.4f over %zu scored queries (%.4f over %zu rare ones; %zu common not "
           "scored); holders missed %.3f%%, answers late %.3f%%\n",
           r->recall, r->queries - r->common_queries, r->recall_rare, r->rare_queries,
           r->common_queries, r->missed_holder_pct, r->late_pct);
    printf("RESULT_SEARCH n=%zu cap=%u online=%zu churn_per_s=%.1f keywords=%.0f summary_kb=%.2f "
           "fp_pct=%.3f rebuilds_per_sn_s=%.4f summary_bps=%.0f fanout_mean=%.2f fanout_p50=%.0f "
           "fanout_p99=%.0f matched=%.2f blind=%.2f holders=%.2f recall=%.4f recall_rare=%.4f "
           "missed_pct=%.3f late_pct=%.3f fanout_rare=%.2f holders_rare=%.2f messages=%.0f "
           "dropped=%.2f links_max=%zu view_max=%zu maint_bps=%.0f maint_gossip=%d "
           "load_max_over_mean=%.2f "
           "daemon_caps=%d\n",
           r->n_sn, cap, r->online_mean, r->churn_per_s, r->keywords_per_sn, r->summary_kb_mean,
           r->fp_pct_mean, r->rebuilds_per_sn_s, r->summary_bps, r->fanout_mean, r->fanout_p50,
           r->fanout_p99, r->matched_mean, r->blind_mean, r->holders_mean, r->recall,
           r->recall_rare, r->missed_holder_pct, r->late_pct, r->fanout_rare, r->holders_rare,
           r->messages_mean, r->dropped_mean, r->links_max, r->view_max, maint_bps,
           m && m->ran ? 1 : 0, r->load_max_over_mean, daemon ? 1 : 0);
}

int main(int argc, char **argv)
{
    struct options o;
    int rc = parse(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    printf("sova_sim: seed %llu, one-way delay %u-%u ms, loss %.1f%%\n",
           (unsigned long long)o.net.seed, o.net.lat_min_ms, o.net.lat_min_ms + o.net.lat_jitter_ms,
           o.net.loss_permille / 10.0);
    if (o.search)
        printf("peers: %zu x %u files (Zipf vocabulary of %u), sessions Weibull k=%.2f median "
               "%.0f min, away %.0f min (exp.), %.1f address changes a day\n",
               o.search_p.n_peers, o.search_p.files_per_peer, o.search_p.vocab,
               o.search_p.session_shape, o.search_p.session_median_s / 60,
               o.search_p.offline_mean_s / 60, o.search_p.ipchange_per_day);
    fflush(stdout);
    for (size_t k = 0; k < o.n_sn; k++) {
        size_t n = o.sn[k];
        struct sim_member_result mr = {0};
        if (o.kad) {
            struct sim_kad_params kp = o.kad_p;
            kp.n = n;
            struct sim_kad_result kr;
            if (sim_kad_run(&kp, &kr) != 0) {
                fprintf(stderr, "sova_sim: out of memory\n");
                return 1;
            }
            print_kad(&kr, &kp);
            fflush(stdout);
        }
        if (o.members) {
            if (sim_member_run(n, &o.net, &mr) != 0) {
                fprintf(stderr, "sova_sim: out of memory\n");
                return 1;
            }
            print_member(&mr);
            fflush(stdout);
        }
        if (!o.search)
            continue;
        for (int cap_kind = 1; cap_kind <= 2; cap_kind++) {
            if (!(o.route_caps & cap_kind))
                continue;
            unsigned cap =
                cap_kind == 1
                    ? SN_ROUTE_MAX_SUMMARIES_DEFAULT
                    : (unsigned)(n < SN_ROUTE_MAX_SUMMARIES_CAP ? n : SN_ROUTE_MAX_SUMMARIES_CAP);
            if (cap_kind == 2 && o.route_caps == 3 && cap == SN_ROUTE_MAX_SUMMARIES_DEFAULT)
                continue;
            if (cap_kind == 2 && o.route_caps == 3 && n <= SN_ROUTE_MAX_SUMMARIES_DEFAULT)
                continue; /* the daemon's cap already holds them all */
            struct sim_search_params sp = o.search_p;
            sp.n_sn = n;
            sp.route_max_summaries = cap;
            sp.max_targets = cap_kind == 1 ? SIM_DAEMON_MAX_TARGETS : (unsigned)n;
            struct sim_search_result r;
            if (sim_search_run(&sp, &r) != 0) {
                fprintf(stderr, "sova_sim: out of memory\n");
                return 1;
            }
            print_search(&r, cap, cap_kind == 1, &mr);
            fflush(stdout);
        }
    }
    return 0;
}
