/* bench_search.c - the supernode's keyword index alone (no network): load
 * a million records, then search them as fast as one thread can.
 *
 * Load: peers x files records (default 50,000 x 20). Names are 2-6 words
 * drawn from a 20,000-word vocabulary with a Zipf distribution (s = 1),
 * sometimes a year, and an extension; a quarter of the records are copies
 * of 20,000 "popular" files (Zipf popularity: same hash, same name), so
 * hits have several sources. Everything comes from a fixed seed.
 *
 * Queries: 1-3 words, half taken from a published name (users look for
 * what exists), half drawn from the Zipf vocabulary (many find nothing),
 * in mixed case. Each is timed alone; the report gives searches/s, latency
 * percentiles, memory per record, and the targets with PASS/MISS.
 *
 * The bound measured in the same run is the latency of one dependent
 * random memory access over a buffer far larger than the caches: search
 * latency is reported as a multiple of it, which carries across machines
 * better than microseconds do.
 *
 * Usage: bench_search [peers [files_per_peer [seconds [max_results]]]]
 */
#include "err.h"
#include "sn_index.h"
#include "sn_keywords.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define VOCAB_WORDS       20000
#define POPULAR_FILES     20000
#define POPULAR_SHARE_PCT 25
#define N_QUERIES         (1 << 17)
#define TARGET_SEARCHES_S 50000.0
#define TARGET_P99_US     2000.0
#define BUDGET_PER_PEER   (24u * 1024u) /* bytes, daemon and index together */
#define SEED              0x5eed5ea4c4ULL
#define CHASE_BYTES       (512u << 20)
#define CHURN_PEERS       5000u

/* ---- deterministic randomness ------------------------------------------- */
static uint64_t rng_state = SEED;

static uint64_t rng_next(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static unsigned rng_below(unsigned n)
{
    return (unsigned)(rng_next() % n);
}

static double rng_unit(void)
{
    return (double)(rng_next() >> 11) / (double)(1ULL << 53);
}

static void rng_bytes(uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = rng_next();
        for (size_t j = 0; j < 8 && i + j < n; j++)
            out[i + j] = (uint8_t)(v >> (8 * j));
    }
}

/* ---- Zipf sampling over ranks 0..n-1 ------------------------------------ */
struct zipf {
    size_t n;
    double *cdf;
};

static int zipf_init(struct zipf *z, size_t n, double s)
{
    z->n = n;
    z->cdf = malloc(n * sizeof(*z->cdf));
    if (z->cdf == NULL)
        return -1;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        z->cdf[i] = (sum += 1.0 / pow((double)(i + 1), s));
    for (size_t i = 0; i < n; i++)
        z->cdf[i] /= sum;
    return 0;
}

static size_t zipf_draw(const struct zipf *z)
{
    double u = rng_unit();
    size_t lo = 0, hi = z->n - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (z->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- vocabulary and names ------------------------------------------------- */
static char vocab[VOCAB_WORDS][8];

/* Word i spells i in consonant-vowel syllables: the commonest words are
 * the shortest, as in real languages; all are distinct. */
static void vocab_init(void)
{
    static const char cons[] = "bdfgklmnprstvz", vow[] = "aeiou";
    const unsigned base = (sizeof(cons) - 1) * (sizeof(vow) - 1); /* 70 syllables */
    for (unsigned i = 0; i < VOCAB_WORDS; i++) {
        unsigned v = i < base * base ? i : i - base * base;
        unsigned syllables = i < base * base ? 2 : 3;
        char *w = vocab[i];
        for (unsigned s = 0; s < syllables; s++, v /= base) {
            *w++ = cons[(v % base) / (sizeof(vow) - 1)];
            *w++ = vow[(v % base) % (sizeof(vow) - 1)];
        }
        *w = '\0';
    }
}

static const char *pick_extension(void)
{
    static const struct {
        const char *ext;
        unsigned weight;
    } exts[] = {{"mp3", 25}, {"mp4", 15}, {"jpg", 15}, {"mkv", 10}, {"pdf", 8},  {"avi", 5},
                {"flac", 5}, {"zip", 5},  {"txt", 4},  {"png", 4},  {"epub", 2}, {"iso", 2}};
    unsigned r = rng_below(100);
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        if (r < exts[i].weight)
            return exts[i].ext;
        r -= exts[i].weight;
    }
    return "bin";
}

static size_t make_name(char *out, size_t cap, const struct zipf *words)
{
    static const char *seps[] = {" ", "_", "-", ".", " - "};
    unsigned n = 2 + rng_below(5);
    size_t used = 0;
    for (unsigned i = 0; i < n; i++) {
        const char *sep = i ? seps[rng_below(5)] : "";
        const char *w = vocab[zipf_draw(words)];
        used += (size_t)snprintf(out + used, cap - used, "%s%c%s", sep,
                                 i == 0 ? (char)(w[0] - 'a' + 'A') : w[0], w + 1);
    }
    if (rng_below(5) == 0)
        used += (size_t)snprintf(out + used, cap - used, " (%u)", 1960 + rng_below(65));
    used += (size_t)snprintf(out + used, cap - used, ".%s", pick_extension());
    return used < cap ? used : cap - 1;
}

/* A new file: random hash and size, a name of Zipf words. name has 256 bytes. */
static void random_file(struct msg_publish_record *rec, char *name, const struct zipf *words)
{
    memset(rec, 0, sizeof(*rec));
    rec->action = MSG_PUBLISH_ADD;
    rec->chunk_size = 1 << 18;
    rng_bytes(rec->hash, sizeof(rec->hash));
    rec->size = 1 + rng_next() % (4ULL << 30);
    rec->name = (struct wire_str){name, make_name(name, 256, words)};
}

/* Popular file number rank: the same hash, size and name every time. */
static void popular_file(struct msg_publish_record *rec, char *name, size_t rank,
                         const struct zipf *words)
{
    uint64_t main_stream = rng_state;
    rng_state = SEED ^ (0x9e3779b97f4a7c15ULL * (rank + 1));
    random_file(rec, name, words);
    rng_state = main_stream;
}

/* ---- measuring ---------------------------------------------------------------- */
static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nanoseconds of one dependent load at a random place in CHASE_BYTES: a
 * single cycle through all the cache lines in random order (Sattolo). */
static double miss_latency_ns(void)
{
    size_t n = CHASE_BYTES / 64;
    size_t *next = malloc(n * sizeof(*next));
    if (next == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        next[i] = i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(rng_next() % i);
        size_t t = next[i];
        next[i] = next[j];
        next[j] = t;
    }
    /* Spread the cycle over cache lines: entry k lives at line k. */
    size_t *lines = malloc(n * 64);
    if (lines == NULL) {
        free(next);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        lines[i * 8] = next[i] * 8;
    free(next);
    size_t p = 0, steps = 2u << 20;
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < steps; i++)
        p = lines[p];
    uint64_t t1 = now_ns();
    free(lines);
    return p == SIZE_MAX ? 0 : (double)(t1 - t0) / (double)steps;
}

/* ---- queries ---------------------------------------------------------------- */
struct query {
    struct wire_str kw[3];
    size_t n;
};

static char query_text[N_QUERIES][3][SN_KEYWORD_MAX_LEN + 1];
static struct query queries[N_QUERIES];

static void mixed_case(char *w)
{
    for (; *w != '\0'; w++) {
        if (*w >= 'a' && *w <= 'z' && rng_below(4) == 0)
            *w = (char)(*w - 'a' + 'A');
    }
}

static void make_queries(const struct zipf *words, const struct zipf *popular)
{
    for (size_t q = 0; q < N_QUERIES; q++) {
        struct query *qu = &queries[q];
        qu->n = 1 + rng_below(3);
        struct sn_keywords kw;
        size_t first = 0;
        if (q % 2 == 0) { /* consecutive words of a popular file's name */
            char name[256];
            struct msg_publish_record rec;
            popular_file(&rec, name, zipf_draw(popular), words);
            sn_keywords_from_name(&kw, rec.name.ptr, rec.name.len);
            if (qu->n > kw.n)
                qu->n = kw.n;
            first = rng_below((unsigned)(kw.n - qu->n + 1));
        }
        for (size_t i = 0; i < qu->n; i++) {
            char *t = query_text[q][i];
            if (q % 2 == 0) {
                struct wire_str w = sn_keywords_word(&kw, first + i);
                memcpy(t, w.ptr, w.len);
                t[w.len] = '\0';
            } else {
                snprintf(t, SN_KEYWORD_MAX_LEN + 1, "%s", vocab[zipf_draw(words)]);
            }
            mixed_case(t);
            qu->kw[i] = wire_str_from(t);
        }
    }
}

/* Mimics what the daemon does with a hit: read it, and its sources. */
static int consume_hit(void *arg, const struct sn_index_hit *hit)
{
    uint64_t *sink = arg;
    *sink += hit->size + hit->name.len + hit->hash[0];
    for (size_t i = 0; i < hit->n_sources; i++)
        *sink += hit->sources[i].peer_id[0] + (uintptr_t)hit->sources[i].peer_ctx;
    return 0;
}

/* Peers of the loaded index leave and come back with new files: what a
 * supernode does all day. out[0]: mean microseconds to remove one (all its
 * records), out[1]: to add one back and publish its files. */
static int add_peer_with_files(struct sn_index *idx, const uint8_t *id, unsigned long files,
                               const struct zipf *words)
{
    static int ctx;
    int rc = sn_index_peer_add(idx, id, &ctx);
    for (unsigned long f = 0; f < files && rc == 0; f++) {
        char name[256];
        struct msg_publish_record rec;
        random_file(&rec, name, words);
        rc = sn_index_publish(idx, id, &rec);
    }
    return rc;
}

static void churn(struct sn_index *idx, unsigned long files, const struct zipf *words,
                  double out[2])
{
    uint8_t(*ids)[WIRE_ID_LEN] = malloc(CHURN_PEERS * sizeof(*ids));
    out[0] = out[1] = 0;
    if (ids == NULL)
        return;
    for (unsigned i = 0; i < CHURN_PEERS; i++) {
        rng_bytes(ids[i], WIRE_ID_LEN);
        if (add_peer_with_files(idx, ids[i], files, words) != 0)
            goto done;
    }
    uint64_t t0 = now_ns();
    for (unsigned i = 0; i < CHURN_PEERS; i++)
        sn_index_peer_remove(idx, ids[i]);
    uint64_t t1 = now_ns();
    for (unsigned i = 0; i < CHURN_PEERS; i++) {
        if (add_peer_with_files(idx, ids[i], files, words) != 0)
            goto done;
    }
    uint64_t t2 = now_ns();
    out[0] = (double)(t1 - t0) / 1e3 / CHURN_PEERS;
    out[1] = (double)(t2 - t1) / 1e3 / CHURN_PEERS;
done:
    free(ids);
}

/* The costliest queries this data has: pairs of common words that never
 * meet (two extensions), and the commonest word alone. Mean microseconds
 * of each, and the posting entries it read. */
static void worst_cases(const struct sn_index *idx, size_t max_results)
{
    static const char *cases[][2] = {{"mp3", "jpg"}, {"mp3", "mp4"}, {"pdf", "mkv"}, {"mp3", NULL}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct wire_str kw[2] = {wire_str_from(cases[c][0]), wire_str_from(cases[c][1])};
        struct sn_index_query q = {
            .keywords = kw, .n_keywords = cases[c][1] ? 2 : 1, .max_results = max_results};
        struct sn_index_search_info info;
        uint64_t sink = 0, t0 = now_ns();
        for (int i = 0; i < 20; i++)
            sn_index_search(idx, &q, consume_hit, &sink, &info);
        printf("worst     \"%s%s%s\": %.0f us, %zu posting entries read%s\n", cases[c][0],
               cases[c][1] ? " " : "", cases[c][1] ? cases[c][1] : "",
               (double)(now_ns() - t0) / 20e3, info.scanned,
               info.budget_hit ? " (max_scan reached)" : "");
    }
}

/* ---- main ---------------------------------------------------------------------- */
static unsigned long arg_or(int argc, char **argv, int i, unsigned long def)
{
    if (argc <= i)
        return def;
    char *end;
    unsigned long v = strtoul(argv[i], &end, 10);
    if (*end != '\0' || v == 0) {
        fprintf(stderr, "usage: bench_search [peers [files_per_peer [seconds [max_results]]]]\n");
        exit(2);
    }
    return v;
}

static int load(struct sn_index *idx, unsigned long peers, unsigned long files,
                const struct zipf *words, const struct zipf *popular)
{
    static int peer_ctx; /* one context for all: only its address is handed back */
    for (unsigned long p = 0; p < peers; p++) {
        uint8_t id[WIRE_ID_LEN];
        rng_bytes(id, sizeof(id));
        if (sn_index_peer_add(idx, id, &peer_ctx) != 0)
            return -1;
        for (unsigned long f = 0; f < files; f++) {
            char name[256];
            struct msg_publish_record rec;
            size_t before = sn_index_peer_files(idx, id);
            do { /* a second copy of a popular file would only rename the first */
                if (rng_below(100) < POPULAR_SHARE_PCT)
                    popular_file(&rec, name, zipf_draw(popular), words);
                else
                    random_file(&rec, name, words);
                int rc = sn_index_publish(idx, id, &rec);
                if (rc != 0) {
                    fprintf(stderr, "publish failed: %s\n", sova_err_str(rc));
                    return -1;
                }
            } while (sn_index_peer_files(idx, id) == before);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long peers = arg_or(argc, argv, 1, 50000);
    unsigned long files = arg_or(argc, argv, 2, 20);
    unsigned long seconds = arg_or(argc, argv, 3, 3);
    unsigned long max_results = arg_or(argc, argv, 4, 100);

    struct zipf words, popular;
    if (zipf_init(&words, VOCAB_WORDS, 1.0) != 0 || zipf_init(&popular, POPULAR_FILES, 1.0) != 0)
        return 1;
    vocab_init();
    struct sn_index_limits lim = sn_index_limits_default();
    lim.max_records = (uint32_t)((peers + CHURN_PEERS) * files);
    lim.max_files_per_peer = (uint32_t)files;
    rng_bytes(lim.hash_key, sizeof(lim.hash_key));

    size_t rss0 = rss_bytes();
    struct sn_index *idx = sn_index_new(&lim);
    uint64_t t0 = now_ns();
    if (idx == NULL || load(idx, peers, files, &words, &popular) != 0)
        return 1;
    uint64_t t1 = now_ns();
    size_t rss1 = rss_bytes();
    struct sn_index_stats st;
    sn_index_stats(idx, &st);
    double load_s = (double)(t1 - t0) / 1e9;

    make_queries(&words, &popular);
    size_t cap = (size_t)seconds * 2000000u;
    uint64_t *lat = malloc(cap * sizeof(*lat));
    if (lat == NULL)
        return 1;
    uint64_t sink = 0, hits = 0, empty = 0, scanned = 0, budget_hits = 0;
    size_t n = 0;
    double cpu0 = cpu_seconds();
    uint64_t start = now_ns(), end = start + (uint64_t)seconds * 1000000000u, t = start;
    while (t < end && n < cap) {
        const struct query *q = &queries[n % N_QUERIES];
        struct sn_index_query sq = {
            .keywords = q->kw, .n_keywords = q->n, .max_results = max_results};
        struct sn_index_search_info info;
        int got = sn_index_search(idx, &sq, consume_hit, &sink, &info);
        uint64_t t2 = now_ns();
        lat[n++] = t2 - t;
        t = t2;
        hits += (uint64_t)got;
        empty += got == 0;
        scanned += info.scanned;
        budget_hits += info.budget_hit;
    }
    double elapsed = (double)(t - start) / 1e9;
    double cpu = cpu_seconds() - cpu0;
    qsort(lat, n, sizeof(*lat), cmp_u64);
    double rate = (double)n / elapsed;
    double p50 = (double)lat[n / 2] / 1e3, p99 = (double)lat[n * 99 / 100] / 1e3;
    double max = (double)lat[n - 1] / 1e3;
    double miss = miss_latency_ns();
    double churn_us[2];
    churn(idx, files, &words, churn_us);

    double rss_per_rec = (double)(rss1 - rss0) / (double)st.records;
    printf("bench_search: the keyword index alone, one thread (no network, no TLS)\n");
    printf("load      %zu peers x %lu files = %zu records, %zu files, %zu names, %zu keywords, "
           "%zu postings in %.2f s (%.0f publishes/s)\n",
           st.peers, files, st.records, st.files, st.names, st.keywords, st.postings, load_s,
           (double)st.records / load_s);
    printf("memory    %.0f bytes/record RSS, %.0f bytes/record counted by the index; "
           "%.0f bytes per peer of %lu files (budget %u per peer, daemon included)\n",
           rss_per_rec, (double)st.bytes / (double)st.records, rss_per_rec * (double)files, files,
           BUDGET_PER_PEER);
    printf("search    %zu searches of 1-3 words, max_results %lu: %.0f searches/s, "
           "%.1f hits/search, %.0f%% empty\n",
           n, max_results, rate, (double)hits / (double)n, 100.0 * (double)empty / (double)n);
    printf("work      %.0f posting entries read per search; %" PRIu64 " searches stopped by "
           "max_scan (%u)\n",
           (double)scanned / (double)n, budget_hits, lim.max_scan);
    printf("cpu       %.0f searches per CPU second (%.0f%% of the wall time on the CPU)\n",
           (double)n / cpu, 100.0 * cpu / elapsed);
    printf("latency   p50 %.1f us, p99 %.1f us, max %.1f us\n", p50, p99, max);
    printf("bound     one random memory access: %.0f ns; p50 = %.0f accesses, p99 = %.0f\n", miss,
           miss > 0 ? p50 * 1e3 / miss : 0, miss > 0 ? p99 * 1e3 / miss : 0);
    printf("churn     a peer of %lu files leaves in %.1f us and comes back in %.1f us "
           "(mean of %u)\n",
           files, churn_us[0], churn_us[1], CHURN_PEERS);
    worst_cases(idx, max_results);
    printf("target    >= %.0f searches/s: %s\n", TARGET_SEARCHES_S,
           rate >= TARGET_SEARCHES_S ? "PASS" : "MISS");
    printf("target    p99 < %.0f us: %s\n", TARGET_P99_US, p99 < TARGET_P99_US ? "PASS" : "MISS");
    printf("(checksum %" PRIu64 ")\n", sink);
    free(lat);
    free(words.cdf);
    free(popular.cdf);
    sn_index_free(idx);
    return 0;
}
