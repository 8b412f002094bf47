/* loadgen_words.c - what sova_loadgen publishes and asks for, and its
 * latency percentiles.
 *
 * Names are 2-4 words of a generated vocabulary ("w1", "w2", ... with
 * Zipf-distributed ranks, s = 1, so "w1" is the commonest) and an
 * extension: "w12 w3407 w5.mp3". Queries are 1-2 words drawn the same way,
 * so most of them find something and common words find a lot (the index
 * stops at max_results). A share of every peer's records are copies of a
 * set of popular files (same hash, size and name on several peers), so hits
 * carry several sources, as real ones do. Every record is a function of
 * (seed, peer, record number): reruns publish the same bytes.
 */
#include "loadgen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Streams of the seeded generator: one per use, so they never overlap. */
#define LG_STREAM_RECORD  0x7265636f7264ULL /* "record" */
#define LG_STREAM_POPULAR 0x706f70ULL       /* "pop" */

void lg_rng_seed(struct lg_rng *r, uint64_t seed, uint64_t stream)
{
    r->state = seed * 0x9e3779b97f4a7c15ULL ^ (stream + 1) * 0xd1b54a32d192ed03ULL;
    (void)lg_rng_next(r);
}

uint64_t lg_rng_next(struct lg_rng *r) /* splitmix64 */
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double lg_rng_unit(struct lg_rng *r)
{
    return (double)(lg_rng_next(r) >> 11) / (double)(1ULL << 53);
}

int lg_zipf_init(struct lg_zipf *z, size_t n)
{
    z->n = n;
    z->cdf = malloc(n * sizeof(*z->cdf));
    if (z->cdf == NULL)
        return -1;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        z->cdf[i] = (sum += 1.0 / (double)(i + 1));
    for (size_t i = 0; i < n; i++)
        z->cdf[i] /= sum;
    return 0;
}

void lg_zipf_free(struct lg_zipf *z)
{
    free(z->cdf);
    z->cdf = NULL;
}

size_t lg_zipf_draw(const struct lg_zipf *z, struct lg_rng *r)
{
    double u = lg_rng_unit(r);
    size_t lo = 0, hi = z->n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int lg_words_init(struct lg_words *w, size_t vocab, size_t popular, unsigned shared_pct,
                  uint64_t seed)
{
    memset(w, 0, sizeof(*w));
    w->seed = seed;
    w->shared_pct = shared_pct;
    if (lg_zipf_init(&w->vocab, vocab) != 0 || lg_zipf_init(&w->popular, popular) != 0) {
        lg_words_free(w);
        return -1;
    }
    return 0;
}

void lg_words_free(struct lg_words *w)
{
    lg_zipf_free(&w->vocab);
    lg_zipf_free(&w->popular);
}

static const char *pick_extension(struct lg_rng *r)
{
    static const char *const exts[] = {"mp3", "mp3", "mp3", "mp4",  "mp4", "jpg", "jpg",
                                       "mkv", "pdf", "avi", "flac", "zip", "txt", "png"};
    return exts[lg_rng_next(r) % (sizeof(exts) / sizeof(exts[0]))];
}

/* A file drawn from r: random hash and size, a name of Zipf words. */
static void make_file(const struct lg_words *w, struct lg_rng *r, struct msg_publish_record *rec,
                      char *name)
{
    memset(rec, 0, sizeof(*rec));
    rec->action = MSG_PUBLISH_ADD;
    rec->chunk_size = 1u << 18;
    for (size_t i = 0; i < WIRE_HASH_LEN; i += 8) {
        uint64_t v = lg_rng_next(r);
        memcpy(rec->hash + i, &v, 8);
    }
    rec->size = 1 + lg_rng_next(r) % (4ULL << 30);
    unsigned n = 2 + (unsigned)(lg_rng_next(r) % 3);
    size_t used = 0;
    for (unsigned i = 0; i < n; i++) {
        size_t rank = lg_zipf_draw(&w->vocab, r) + 1;
        used += (size_t)snprintf(name + used, LG_NAME_MAX - used, "%sw%zu", i ? " " : "", rank);
    }
    used += (size_t)snprintf(name + used, LG_NAME_MAX - used, ".%s", pick_extension(r));
    rec->name = (struct wire_str){name, used < LG_NAME_MAX ? used : LG_NAME_MAX - 1};
}

void lg_words_record(const struct lg_words *w, unsigned peer, unsigned j,
                     struct msg_publish_record *rec, char *name)
{
    struct lg_rng r;
    if (j % 100 < w->shared_pct) {
        /* The k-th shared record of this peer: popular files in a
         * peer-dependent order, so one peer never holds one twice (as long
         * as it shares fewer than there are) and each is on several peers. */
        uint64_t k = (uint64_t)(j / 100) * w->shared_pct + j % 100;
        uint64_t rank = ((uint64_t)peer * 7919u + k) % w->popular.n;
        lg_rng_seed(&r, w->seed, LG_STREAM_POPULAR ^ (rank << 20));
    } else {
        lg_rng_seed(&r, w->seed, LG_STREAM_RECORD ^ ((uint64_t)peer << 32) ^ j);
    }
    make_file(w, &r, rec, name);
}

size_t lg_words_query(const struct lg_words *w, struct lg_rng *r, char bufs[][16],
                      struct wire_str *kw)
{
    size_t n = 1 + (size_t)(lg_rng_next(r) % LG_QUERY_WORDS_MAX);
    for (size_t k = 0; k < n; k++) {
        int len = snprintf(bufs[k], 16, "w%zu", lg_zipf_draw(&w->vocab, r) + 1);
        kw[k] = (struct wire_str){bufs[k], (size_t)len};
    }
    return n;
}

void lg_samples_add(struct lg_samples *s, uint64_t ns)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 65536;
        uint32_t *p = realloc(s->ns, cap * sizeof(*p));
        if (p == NULL)
            return; /* a lost sample is better than a lost run */
        s->ns = p;
        s->cap = cap;
    }
    s->ns[s->n++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

void lg_samples_sort(struct lg_samples *s)
{
    if (s->n > 1)
        qsort(s->ns, s->n, sizeof(*s->ns), cmp_u32);
}

double lg_samples_pct_us(const struct lg_samples *s, double p)
{
    if (s->n == 0)
        return 0;
    size_t i = (size_t)ceil(p / 100.0 * (double)s->n);
    i = i == 0 ? 0 : i - 1;
    if (i >= s->n)
        i = s->n - 1;
    return s->ns[i] / 1000.0;
}

void lg_samples_free(struct lg_samples *s)
{
    free(s->ns);
    memset(s, 0, sizeof(*s));
}
