/* loadgen_options.c - sova_loadgen's command line (getopt_long), with the
 * defaults and bounds of every option and the --mode phase list. */
#include "loadgen.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: sova_loadgen --supernode ADDR:PORT --federation-ca FILE --keys-dir DIR "
            "[OPTION]...\n"
            "Plays many ordinary peers (TLS 1.3, the Sova wire protocol) against one supernode:\n"
            "attach, publish, then measured request phases. Not a test: it only reports.\n"
            "\n"
            "  --supernode ADDR:PORT     numeric address of the supernode\n"
            "  --federation-ca FILE      federation root certificate (root.crt)\n"
            "  --keys-dir DIR            identities DIR/peer-<i>, created once, reused after\n"
            "  --peers N                 attached peers (100)\n"
            "  --files F                 records each peer publishes (100)\n"
            "  --batch B                 records per PUBLISH, 1..512 (512)\n"
            "  --publish-window W        PUBLISH frames in flight per peer (2)\n"
            "  --connect-window C        TLS handshakes in flight while attaching (64)\n"
            "  --searchers S             peers that send requests (min(peers, 16))\n"
            "  --pipeline P              requests in flight per searcher (4)\n"
            "  --mode LIST               phases KIND[:SECONDS[:RATE|PCT%%]],... with KIND search,\n"
            "                            locate, ping or idle (nothing but keep-alives) (search)\n"
            "  --duration SECONDS        default phase length (10)\n"
            "  --rate R                  default requests/s offered in total, 0 = unpaced (0)\n"
            "  --max-results N           SEARCH max_results (100, as sova-peer search)\n"
            "  --ping-batch B            PINGs per LOCATE marker in ping phases (8)\n"
            "  --vocab N                 words in the vocabulary (20000)\n"
            "  --popular N               popular files shared by several peers (20000)\n"
            "  --shared-pct PCT          records that copy a popular file (10)\n"
            "  --seed S                  seed of names and queries (1)\n"
            "  --source-base A.B.C.D     bind peer i to A.B.C.D + 1 + i (skipping .0/.255), e.g.\n"
            "                            127.0.0.0, so source ports do not run out\n"
            "  --peers-per-addr K        with --source-base: K peers share each address (1)\n"
            "  --publish-on-attach       publish right after REGISTERED; attach then times\n"
            "                            TLS + HELLO + REGISTER + PUBLISH (acknowledged)\n"
            "  --hold SECONDS            stay attached after the phases (0)\n"
            "  --stage-timeout SECONDS   limit of the attach and publish stages (300)\n"
            "  --sn-pid PID              report the supernode's CPU and RSS from /proc\n"
            "  --progress                a line a second while a phase runs\n"
            "  --log-level LEVEL         error, warn, info, debug (warn)\n");
}

static int parse_uint(const char *s, unsigned long max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > max || s[0] == '-')
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= 0) || v > 1e9)
        return -1;
    *out = v;
    return 0;
}

/* "search", "search:10", "search:10:50000", "search:10:80%". */
static int parse_phase(char *item, const struct lg_options *o, struct lg_phase_spec *ph)
{
    char *save = NULL;
    char *kind = strtok_r(item, ":", &save);
    char *dur = strtok_r(NULL, ":", &save);
    char *rate = strtok_r(NULL, ":", &save);
    if (kind == NULL || strtok_r(NULL, ":", &save) != NULL)
        return -1;
    if (strcmp(kind, "search") == 0)
        ph->kind = LG_SEARCH;
    else if (strcmp(kind, "locate") == 0)
        ph->kind = LG_LOCATE;
    else if (strcmp(kind, "ping") == 0)
        ph->kind = LG_PING;
    else if (strcmp(kind, "idle") == 0)
        ph->kind = LG_IDLE;
    else
        return -1;
    ph->seconds = o->duration;
    ph->rate = o->rate;
    ph->rate_pct = false;
    if (dur != NULL && (parse_double(dur, &ph->seconds) != 0 || ph->seconds <= 0))
        return -1;
    if (rate != NULL) {
        size_t n = strlen(rate);
        if (n > 1 && rate[n - 1] == '%') {
            rate[n - 1] = '\0';
            ph->rate_pct = true;
        }
        if (parse_double(rate, &ph->rate) != 0)
            return -1;
    }
    return 0;
}

static int parse_modes(const char *list, struct lg_options *o)
{
    char *copy = strdup(list);
    if (copy == NULL)
        return -1;
    char *save = NULL;
    int rc = 0;
    o->n_phases = 0;
    for (char *it = strtok_r(copy, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
        if (o->n_phases == LG_MAX_PHASES) {
            rc = -1;
            break;
        }
        /* strtok_r on the item itself: it is a separate string now. */
        char item[64];
        snprintf(item, sizeof(item), "%s", it);
        if (parse_phase(item, o, &o->phases[o->n_phases++]) != 0) {
            rc = -1;
            break;
        }
    }
    free(copy);
    return o->n_phases == 0 ? -1 : rc;
}

enum {
    OPT_SUPERNODE = 256,
    OPT_CA,
    OPT_KEYS,
    OPT_PEERS,
    OPT_FILES,
    OPT_BATCH,
    OPT_PUBWIN,
    OPT_CONNWIN,
    OPT_SEARCHERS,
    OPT_PIPELINE,
    OPT_MODE,
    OPT_DURATION,
    OPT_RATE,
    OPT_MAXRES,
    OPT_PINGBATCH,
    OPT_VOCAB,
    OPT_POPULAR,
    OPT_SHARED,
    OPT_SEED,
    OPT_SOURCE,
    OPT_HOLD,
    OPT_STAGE,
    OPT_SNPID,
    OPT_LOG,
    OPT_PROGRESS,
    OPT_HELP,
    OPT_PERADDR,
    OPT_PUBATTACH,
};

int lg_parse_options(int argc, char **argv, struct lg_options *o)
{
    static const struct option longopts[] = {
        {"supernode", required_argument, NULL, OPT_SUPERNODE},
        {"federation-ca", required_argument, NULL, OPT_CA},
        {"keys-dir", required_argument, NULL, OPT_KEYS},
        {"peers", required_argument, NULL, OPT_PEERS},
        {"files", required_argument, NULL, OPT_FILES},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"publish-window", required_argument, NULL, OPT_PUBWIN},
        {"connect-window", required_argument, NULL, OPT_CONNWIN},
        {"searchers", required_argument, NULL, OPT_SEARCHERS},
        {"pipeline", required_argument, NULL, OPT_PIPELINE},
        {"mode", required_argument, NULL, OPT_MODE},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"rate", required_argument, NULL, OPT_RATE},
        {"max-results", required_argument, NULL, OPT_MAXRES},
        {"ping-batch", required_argument, NULL, OPT_PINGBATCH},
        {"vocab", required_argument, NULL, OPT_VOCAB},
        {"popular", required_argument, NULL, OPT_POPULAR},
        {"shared-pct", required_argument, NULL, OPT_SHARED},
        {"seed", required_argument, NULL, OPT_SEED},
        {"source-base", required_argument, NULL, OPT_SOURCE},
        {"hold", required_argument, NULL, OPT_HOLD},
        {"stage-timeout", required_argument, NULL, OPT_STAGE},
        {"sn-pid", required_argument, NULL, OPT_SNPID},
        {"log-level", required_argument, NULL, OPT_LOG},
        {"progress", no_argument, NULL, OPT_PROGRESS},
        {"help", no_argument, NULL, OPT_HELP},
        {"peers-per-addr", required_argument, NULL, OPT_PERADDR},
        {"publish-on-attach", no_argument, NULL, OPT_PUBATTACH},
        {NULL, 0, NULL, 0},
    };
    *o = (struct lg_options){.peers = 100,
                             .files = 100,
                             .batch = LG_PUBLISH_BATCH_MAX,
                             .publish_window = 2,
                             .connect_window = 64,
                             .pipeline = 4,
                             .max_results = 100,
                             .ping_batch = 8,
                             .vocab = 20000,
                             .popular = 20000,
                             .shared_pct = 10,
                             .seed = 1,
                             .per_addr = 1,
                             .duration = 10,
                             .stage_timeout = 300,
                             .log_level = SOVA_LOG_WARN};
    const char *modes = "search";
    bool searchers_set = false;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int bad = 0;
        unsigned u = 0;
        switch (c) {
        case OPT_SUPERNODE:
            o->supernode = optarg;
            break;
        case OPT_CA:
            o->federation_ca = optarg;
            break;
        case OPT_KEYS:
            o->keys_dir = optarg;
            break;
        case OPT_PEERS:
            bad = parse_uint(optarg, 1000000, &o->peers) || o->peers == 0;
            break;
        case OPT_FILES:
            bad = parse_uint(optarg, 10000000, &o->files);
            break;
        case OPT_BATCH:
            bad = parse_uint(optarg, LG_PUBLISH_BATCH_MAX, &o->batch) || o->batch == 0;
            break;
        case OPT_PUBWIN:
            bad = parse_uint(optarg, 1024, &o->publish_window) || o->publish_window == 0;
            break;
        case OPT_CONNWIN:
            bad = parse_uint(optarg, 1000000, &o->connect_window) || o->connect_window == 0;
            break;
        case OPT_SEARCHERS:
            bad = parse_uint(optarg, 1000000, &o->searchers);
            searchers_set = true;
            break;
        case OPT_PIPELINE:
            bad = parse_uint(optarg, 4096, &o->pipeline) || o->pipeline == 0;
            break;
        case OPT_MODE:
            modes = optarg;
            break;
        case OPT_DURATION:
            bad = parse_double(optarg, &o->duration) || o->duration <= 0;
            break;
        case OPT_RATE:
            bad = parse_double(optarg, &o->rate);
            break;
        case OPT_MAXRES:
            bad = parse_uint(optarg, UINT16_MAX, &o->max_results) || o->max_results == 0;
            break;
        case OPT_PINGBATCH:
            bad = parse_uint(optarg, 1024, &o->ping_batch);
            break;
        case OPT_VOCAB:
            bad = parse_uint(optarg, 10000000, &o->vocab) || o->vocab == 0;
            break;
        case OPT_POPULAR:
            bad = parse_uint(optarg, 10000000, &o->popular) || o->popular == 0;
            break;
        case OPT_SHARED:
            bad = parse_uint(optarg, 100, &o->shared_pct);
            break;
        case OPT_SEED:
            bad = parse_uint(optarg, UINT32_MAX, &u);
            o->seed = u;
            break;
        case OPT_SOURCE: {
            struct in_addr a;
            bad = inet_pton(AF_INET, optarg, &a) != 1;
            o->has_source_base = true;
            o->source_base = ntohl(a.s_addr);
            break;
        }
        case OPT_HOLD:
            bad = parse_double(optarg, &o->hold);
            break;
        case OPT_STAGE:
            bad = parse_double(optarg, &o->stage_timeout) || o->stage_timeout <= 0;
            break;
        case OPT_SNPID:
            bad = parse_uint(optarg, 1u << 30, &u);
            o->sn_pid = (long)u;
            break;
        case OPT_LOG: {
            enum sova_log_level lvl;
            bad = sova_log_level_parse(optarg, &lvl) != 0;
            o->log_level = (int)lvl;
            break;
        }
        case OPT_PROGRESS:
            o->progress = true;
            break;
        case OPT_PERADDR:
            bad = parse_uint(optarg, 65536, &o->per_addr) || o->per_addr == 0;
            break;
        case OPT_PUBATTACH:
            o->publish_on_attach = true;
            break;
        case OPT_HELP:
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
        if (bad) {
            fprintf(stderr, "sova_loadgen: bad value for --%s: %s\n",
                    longopts[c - OPT_SUPERNODE].name, optarg);
            return -1;
        }
    }
    if (optind < argc || !o->supernode || !o->federation_ca || !o->keys_dir) {
        fprintf(stderr, "sova_loadgen: --supernode, --federation-ca and --keys-dir are "
                        "required (--help)\n");
        return -1;
    }
    if (parse_modes(modes, o) != 0) {
        fprintf(stderr,
                "sova_loadgen: bad --mode %s (KIND[:SECONDS[:RATE|PCT%%]],..., at "
                "most %d)\n",
                modes, LG_MAX_PHASES);
        return -1;
    }
    if (!searchers_set)
        o->searchers = o->peers < 16 ? o->peers : 16;
    if (o->searchers > o->peers)
        o->searchers = o->peers;
    return 0;
}
