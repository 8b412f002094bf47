/* sova_fanout.c - the client of the search fan-out benchmark
 * (bench/bench_federation.sh fanout). Not a test: it only reports.
 *
 * One ordinary peer per supernode, over the real wire protocol (TLS 1.3,
 * common/link.h, as sova-peer and sova_loadgen): peer i attaches to
 * supernode i and publishes --files records named "k<i>w<j>", one keyword
 * each, so every keyword lives on exactly one supernode. Warm-up: for each
 * supernode, the peer of the next one searches one of its words until the
 * hit comes (the summaries have travelled). Then, on SIGUSR1 (the script
 * reads the supernodes' counters first) or at once with --go, --searches
 * searches, --inflight at a time: each from the peer of a random supernode
 * for a random word of another one, timed from sending the SEARCH to its
 * final SEARCH_RESULT; a search whose result lacks its record is a miss.
 * Prints "RESULT searches=... misses=... p50_us=... p99_us=..." and exits.
 * Everything runs on one libevent loop; identities are made (or reused) in
 * --keys-dir before it runs.
 */
#include "err.h"
#include "identity.h"
#include "link.h"
#include "log.h"
#include "msg.h"
#include "tls.h"

#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FO_MAX_SN          64
#define FO_BATCH           256 /* records per PUBLISH */
#define FO_NAME_MAX        24
#define FO_HANDSHAKE_MS    30000
#define FO_MAX_OUTPUT      (16u * 1024 * 1024)
#define FO_WARMUP_RETRY_MS 100

struct fo_peer {
    struct fanout *fo;
    unsigned index;
    struct link *link;
    SSL *ssl;
    bool registered, published;
    unsigned files_sent, batches_out;
    uint64_t query_id; /* the search in flight on this peer, 0 if none */
    uint64_t t_ns;
    unsigned want_sn, want_word; /* what it looks for */
    bool found;
};

struct fanout {
    struct event_base *base;
    struct wire_limits limits;
    struct link_params params;
    struct link_group links;
    struct fo_peer peers[FO_MAX_SN];
    struct sockaddr_storage addr[FO_MAX_SN];
    socklen_t addr_len[FO_MAX_SN];
    unsigned n, files, searches, inflight_max;
    const char *ca, *keys_dir;
    uint64_t rng;
    uint64_t next_query_id;
    /* stages */
    unsigned published, warm; /* peers done publishing; supernodes whose word was found */
    bool measuring, go;
    struct event *go_signal, *timer;
    unsigned sent, done, misses, inflight;
    unsigned refused; /* ERRORs about a measured SEARCH (e.g. the supernode's search-rate) */
    uint32_t *lat_us;
    uint64_t t0_ns, t1_ns;
    int rc;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_next(struct fanout *fo) /* splitmix64 */
{
    uint64_t z = (fo->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void name_of(unsigned sn, unsigned j, char buf[FO_NAME_MAX])
{
    snprintf(buf, FO_NAME_MAX, "k%uw%u", sn, j);
}

static void stop(struct fanout *fo, int rc)
{
    fo->rc = rc;
    event_base_loopbreak(fo->base);
}

/* ---- searches -------------------------------------------------------------------- */

static bool send_search(struct fo_peer *p, unsigned sn, unsigned word)
{
    char kw_buf[FO_NAME_MAX];
    name_of(sn, word, kw_buf);
    struct wire_str kw = wire_str_from(kw_buf);
    struct msg m = {.type = MSG_SEARCH};
    m.u.search.query_id = p->query_id = ++p->fo->next_query_id;
    m.u.search.max_results = 16;
    m.u.search.keywords = &kw;
    m.u.search.n_keywords = 1;
    p->want_sn = sn;
    p->want_word = word;
    p->found = false;
    p->t_ns = now_ns();
    if (p->link == NULL || link_send(p->link, &m) != 0) {
        p->query_id = 0;
        return false;
    }
    return true;
}

static void warm_next(struct fanout *fo, unsigned sn);

/* Measured searches: keep inflight_max going until all are sent. */
static void measure_more(struct fanout *fo)
{
    while (fo->inflight < fo->inflight_max && fo->sent < fo->searches) {
        unsigned origin = (unsigned)(rng_next(fo) % fo->n), tries = 0;
        while (fo->peers[origin].query_id != 0 && tries++ < fo->n)
            origin = (origin + 1) % fo->n;
        if (fo->peers[origin].query_id != 0)
            return;
        unsigned target = (origin + 1 + (unsigned)(rng_next(fo) % (fo->n - 1))) % fo->n;
        unsigned word = (unsigned)(rng_next(fo) % fo->files);
        if (!send_search(&fo->peers[origin], target, word)) {
            fprintf(stderr, "sova_fanout: cannot send a search on peer %u\n", origin);
            stop(fo, 1);
            return;
        }
        fo->sent++;
        fo->inflight++;
    }
    if (fo->done == fo->searches) {
        fo->t1_ns = now_ns();
        stop(fo, 0);
    }
}

static void start_measuring(struct fanout *fo)
{
    if (fo->measuring || fo->warm < fo->n)
        return;
    fo->measuring = true;
    fo->t0_ns = now_ns();
    printf("measuring: %u searches, %u in flight\n", fo->searches, fo->inflight_max);
    fflush(stdout);
    measure_more(fo);
}

static void on_result(struct fo_peer *p, const struct msg_search_result *r)
{
    struct fanout *fo = p->fo;
    if (r->query_id != p->query_id || p->query_id == 0)
        return;
    char want[FO_NAME_MAX];
    name_of(p->want_sn, p->want_word, want);
    for (size_t i = 0; i < r->n_hits; i++)
        if (r->hits[i].name.len == strlen(want) &&
            memcmp(r->hits[i].name.ptr, want, r->hits[i].name.len) == 0)
            p->found = true;
    if (!(r->flags & MSG_RESULT_FINAL))
        return;
    uint64_t t = now_ns() - p->t_ns;
    p->query_id = 0;
    if (!fo->measuring) { /* warm-up */
        if (p->found) {
            fo->warm++;
            printf("warm: supernode %u's words found from supernode %u (%u of %u)\n", p->want_sn,
                   p->index, fo->warm, fo->n);
            fflush(stdout);
            if (fo->warm == fo->n) {
                printf("ready\n");
                fflush(stdout);
                if (fo->go)
                    start_measuring(fo);
            }
        } else {
            struct timeval tv = {.tv_sec = 0, .tv_usec = FO_WARMUP_RETRY_MS * 1000};
            evtimer_add(fo->timer, &tv); /* on_timer retries every unwarmed one */
        }
        return;
    }
    fo->lat_us[fo->done++] = (uint32_t)(t / 1000 ? t / 1000 : 1);
    fo->inflight--;
    if (!p->found)
        fo->misses++;
    measure_more(fo);
}

/* Supernode sn is warm when the peer of the next one finds one of its words. */
static void warm_next(struct fanout *fo, unsigned sn)
{
    struct fo_peer *asker = &fo->peers[(sn + 1) % fo->n];
    if (asker->query_id == 0 && !send_search(asker, sn, 0)) {
        fprintf(stderr, "sova_fanout: cannot send a warm-up search\n");
        stop(fo, 1);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct fanout *fo = arg;
    (void)fd;
    (void)what;
    /* Retry the warm-up searches that came back empty. */
    for (unsigned i = 0; i < fo->n; i++) {
        struct fo_peer *asker = &fo->peers[(i + 1) % fo->n];
        if (asker->query_id == 0 && !asker->found)
            warm_next(fo, i);
    }
}

static void on_go(evutil_socket_t fd, short what, void *arg)
{
    struct fanout *fo = arg;
    (void)fd;
    (void)what;
    fo->go = true;
    start_measuring(fo);
}

/* ---- attach and publish ---------------------------------------------------------- */

static void publish_more(struct fo_peer *p)
{
    struct fanout *fo = p->fo;
    static struct msg_publish_record recs[FO_BATCH];
    static char names[FO_BATCH][FO_NAME_MAX];
    while (p->batches_out < 2 && p->files_sent < fo->files) {
        unsigned n = fo->files - p->files_sent;
        if (n > FO_BATCH)
            n = FO_BATCH;
        for (unsigned k = 0; k < n; k++) {
            unsigned j = p->files_sent + k;
            name_of(p->index, j, names[k]);
            recs[k] = (struct msg_publish_record){.action = MSG_PUBLISH_ADD,
                                                  .size = 1000 + j,
                                                  .chunk_size = 1 << 20,
                                                  .name = wire_str_from(names[k])};
            uint64_t h = ((uint64_t)p->index << 32) | j;
            memcpy(recs[k].hash, &h, sizeof(h));
            recs[k].hash[WIRE_HASH_LEN - 1] = 0xfa;
        }
        struct msg m = {.type = MSG_PUBLISH};
        m.u.publish.records = recs;
        m.u.publish.n_records = n;
        if (link_send(p->link, &m) != 0)
            return;
        p->files_sent += n;
        p->batches_out++;
    }
}

static void on_opened(struct link *l, void *arg)
{
    struct fo_peer *p = arg;
    static const uint8_t loopback[4] = {127, 0, 0, 1};
    struct wire_addr claimed = {.family = WIRE_ADDR_IPV4, .port = (uint16_t)(30000 + p->index)};
    memcpy(claimed.ip, loopback, 4);
    struct msg m = {.type = MSG_REGISTER};
    m.u.reg.session = MSG_SESSION_PRIMARY;
    m.u.reg.reachability = MSG_REACH_PUBLIC;
    m.u.reg.addrs = &claimed;
    m.u.reg.n_addrs = 1;
    link_send(l, &m);
}

static void on_message(struct link *l, const struct msg *m, void *arg)
{
    struct fo_peer *p = arg;
    struct fanout *fo = p->fo;
    (void)l;
    switch (m->type) {
    case MSG_REGISTERED:
        if (!p->registered) {
            p->registered = true;
            publish_more(p);
        }
        return;
    case MSG_PUBLISH_ACK:
        if (m->u.publish_ack.rejected > 0) {
            fprintf(stderr, "sova_fanout: supernode %u rejected %u records (error %u)\n", p->index,
                    m->u.publish_ack.rejected, m->u.publish_ack.first_error);
            stop(fo, 1);
            return;
        }
        p->batches_out--;
        publish_more(p);
        if (!p->published && p->batches_out == 0 && p->files_sent == fo->files) {
            p->published = true;
            if (++fo->published == fo->n) {
                printf("published: %u supernodes x %u records\n", fo->n, fo->files);
                fflush(stdout);
                for (unsigned i = 0; i < fo->n; i++)
                    warm_next(fo, i);
            }
        }
        return;
    case MSG_SEARCH_RESULT:
        on_result(p, &m->u.search_result);
        return;
    case MSG_ERROR:
        /* A refused search still gets its (empty) final result: count it. */
        if (m->u.error.offending_type == MSG_SEARCH && fo->measuring)
            fo->refused++;
        return;
    default:
        return;
    }
}

static void on_closed(struct link *l, int why, void *arg)
{
    struct fo_peer *p = arg;
    (void)l;
    p->link = NULL;
    fprintf(stderr, "sova_fanout: peer %u: link closed (%s)\n", p->index,
            why ? sova_err_str(why) : "by the supernode");
    stop(p->fo, 1);
}

static const struct link_hooks hooks = {
    .opened = on_opened, .message = on_message, .closed = on_closed};

/* ---- setup and report ------------------------------------------------------------ */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t pct(const uint32_t *v, unsigned n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p / 100.0 * (n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static void report(struct fanout *fo)
{
    qsort(fo->lat_us, fo->done, sizeof(fo->lat_us[0]), cmp_u32);
    double sum = 0;
    for (unsigned i = 0; i < fo->done; i++)
        sum += fo->lat_us[i];
    double secs = (double)(fo->t1_ns - fo->t0_ns) / 1e9;
    printf("RESULT searches=%u misses=%u refused=%u seconds=%.3f per_s=%.0f mean_us=%.0f p50_us=%u "
           "p90_us=%u "
           "p99_us=%u max_us=%u inflight=%u\n",
           fo->done, fo->misses, fo->refused, secs, secs > 0 ? fo->done / secs : 0,
           fo->done ? sum / fo->done : 0, pct(fo->lat_us, fo->done, 50),
           pct(fo->lat_us, fo->done, 90), pct(fo->lat_us, fo->done, 99),
           fo->done ? fo->lat_us[fo->done - 1] : 0, fo->inflight_max);
}

static int add_supernodes(struct fanout *fo, const char *list)
{
    char *copy = strdup(list), *save = NULL;
    if (copy == NULL)
        return -1;
    for (char *it = strtok_r(copy, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
        int len = (int)sizeof(fo->addr[0]);
        if (fo->n == FO_MAX_SN ||
            evutil_parse_sockaddr_port(it, (struct sockaddr *)&fo->addr[fo->n], &len) != 0) {
            fprintf(stderr, "sova_fanout: bad or too many supernodes at '%s'\n", it);
            free(copy);
            return -1;
        }
        fo->addr_len[fo->n++] = (socklen_t)len;
    }
    free(copy);
    return fo->n >= 2 ? 0 : -1;
}

static int prepare_peer(struct fanout *fo, unsigned i)
{
    struct fo_peer *p = &fo->peers[i];
    p->fo = fo;
    p->index = i;
    char dir[4096], err[512];
    snprintf(dir, sizeof(dir), "%s/peer-%u", fo->keys_dir, i);
    struct sova_identity *id = NULL;
    struct tls_ctx *ctx = NULL;
    int rc = identity_load_or_create(dir, &id, err, sizeof(err));
    if (rc == 0)
        rc = tls_ctx_new(id, fo->ca, TLS_CTX_PEER, &ctx, err, sizeof(err));
    if (rc == 0 && tls_ctx_client(ctx, TLS_EXPECT_SUPERNODE, NULL, &p->ssl) != 0) {
        snprintf(err, sizeof(err), "cannot make an SSL object");
        rc = SOVA_ERR_NOMEM;
    }
    tls_ctx_free(ctx);
    identity_free(id);
    if (rc != 0)
        fprintf(stderr, "sova_fanout: peer %u: %s\n", i, err);
    return rc;
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: sova_fanout --supernodes ADDR:PORT,... --federation-ca FILE --keys-dir DIR\n"
            "                   [--files N (200)] [--searches N (5000)] [--inflight N (1)]\n"
            "                   [--seed S (1)] [--go]\n"
            "Peer i attaches to supernode i and publishes N records whose one keyword\n"
            "lives there only; after a warm-up and SIGUSR1 (or at once with --go), timed\n"
            "searches from random supernodes for words of other ones. Prints RESULT.\n");
}

int main(int argc, char **argv)
{
    static struct fanout fo = {.files = 200, .searches = 5000, .inflight_max = 1, .rng = 1};
    const char *list = NULL;
    static const struct option opts[] = {{"supernodes", required_argument, NULL, 's'},
                                         {"federation-ca", required_argument, NULL, 'c'},
                                         {"keys-dir", required_argument, NULL, 'k'},
                                         {"files", required_argument, NULL, 'f'},
                                         {"searches", required_argument, NULL, 'n'},
                                         {"inflight", required_argument, NULL, 'i'},
                                         {"seed", required_argument, NULL, 'r'},
                                         {"go", no_argument, NULL, 'g'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            list = optarg;
            break;
        case 'c':
            fo.ca = optarg;
            break;
        case 'k':
            fo.keys_dir = optarg;
            break;
        case 'f':
            fo.files = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'n':
            fo.searches = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'i':
            fo.inflight_max = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            fo.rng = strtoull(optarg, NULL, 10);
            break;
        case 'g':
            fo.go = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (list == NULL || fo.ca == NULL || fo.keys_dir == NULL || fo.files == 0 || fo.searches == 0 ||
        fo.inflight_max == 0 || add_supernodes(&fo, list) != 0) {
        usage(stderr);
        return 2;
    }
    if (fo.inflight_max > fo.n)
        fo.inflight_max = fo.n; /* one search in flight per peer */
    sova_log_set_level(SOVA_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    struct event_config *cfg = event_config_new();
    if (cfg != NULL)
        event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    fo.base = cfg ? event_base_new_with_config(cfg) : NULL;
    event_config_free(cfg);
    fo.lat_us = calloc(fo.searches, sizeof(*fo.lat_us));
    fo.timer = fo.base ? evtimer_new(fo.base, on_timer, &fo) : NULL;
    fo.go_signal = fo.base ? evsignal_new(fo.base, SIGUSR1, on_go, &fo) : NULL;
    if (fo.base == NULL || fo.lat_us == NULL || fo.timer == NULL || fo.go_signal == NULL ||
        event_add(fo.go_signal, NULL) != 0)
        return 1;
    fo.limits = wire_limits_default();
    fo.params = (struct link_params){.limits = &fo.limits,
                                     .local_role = MSG_ROLE_PEER,
                                     .handshake_timeout_ms = FO_HANDSHAKE_MS,
                                     .max_output = FO_MAX_OUTPUT,
                                     .expect_supernode = true,
                                     .group = &fo.links};
    int rc = 0;
    for (unsigned i = 0; i < fo.n && rc == 0; i++)
        rc = prepare_peer(&fo, i);
    for (unsigned i = 0; i < fo.n && rc == 0; i++) {
        struct fo_peer *p = &fo.peers[i];
        SSL *ssl = p->ssl;
        p->ssl = NULL; /* the link owns it from now */
        p->link = link_connect(fo.base, (struct sockaddr *)&fo.addr[i], fo.addr_len[i], ssl,
                               &fo.params, &hooks, p);
        if (p->link == NULL)
            rc = 1;
    }
    if (rc == 0) {
        event_base_dispatch(fo.base);
        rc = fo.rc;
    }
    if (rc == 0)
        report(&fo);
    link_group_free_all(&fo.links);
    for (unsigned i = 0; i < fo.n; i++)
        SSL_free(fo.peers[i].ssl);
    event_free(fo.timer);
    event_free(fo.go_signal);
    event_base_free(fo.base);
    free(fo.lat_us);
    return rc;
}
