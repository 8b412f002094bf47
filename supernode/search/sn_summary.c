/* sn_summary.c - the keyword Bloom filter a supernode gossips (sn_summary.h).
 *
 * The hash is the index's SipHash-2-4 (sn_hashtab.h, checked against the
 * reference vectors) under a fixed, public key: every supernode must set
 * the same bits for a keyword, so the key cannot be secret. Nothing here
 * needs it to be: a peer that publishes many keywords fills the filter no
 * faster than by publishing many keywords, which the index limits anyway.
 */
#include "sn_summary.h"

#include "err.h"
#include "sn_hashtab.h"

#include <stdlib.h>
#include <string.h>

#define LN2 0.69314718055994530942

/* SipHash-2-4 key of the protocol: bytes 00 01 02 .. 0f (the key of the
 * SipHash paper's test vectors, so an implementation can be checked with
 * them first). */
static const uint8_t summary_key[SN_HASHTAB_KEYLEN] = {0, 1, 2,  3,  4,  5,  6,  7,
                                                       8, 9, 10, 11, 12, 13, 14, 15};

struct sn_summary {
    uint8_t sn_id[WIRE_ID_LEN];
    uint64_t version;
    uint8_t k;
    uint32_t m;
    size_t n_keywords; /* added here; 0 when from the wire */
    uint32_t bits_set; /* kept up to date, so that it costs nothing to ask */
    uint8_t *bits;     /* (m + 7) / 8 bytes */
};

static size_t bits_bytes(uint32_t m)
{
    return ((size_t)m + 7) / 8;
}

struct sn_summary_params sn_summary_params_default(void)
{
    struct sn_summary_params p = {.fp_rate = SN_SUMMARY_FP_RATE_DEFAULT,
                                  .max_bytes = SN_SUMMARY_MAX_BYTES_DEFAULT};
    return p;
}

void sn_summary_shape(size_t n_keywords, const struct sn_summary_params *params, uint8_t *k,
                      uint32_t *m)
{
    double p = params->fp_rate;
    size_t max_bytes = params->max_bytes;
    if (!(p <= 0.5)) /* also NaN */
        p = 0.5;
    if (max_bytes < 1)
        max_bytes = 1;
    if (max_bytes > WIRE_MAX_BLOOM_BYTES_DEFAULT)
        max_bytes = WIRE_MAX_BLOOM_BYTES_DEFAULT;

    /* k = ceil(log2(1/p)): the optimal filter's rate is 2^-k. */
    unsigned hashes = 1;
    for (double rate = 0.5; rate > p && hashes < SN_SUMMARY_MAX_HASHES; rate /= 2)
        hashes++;

    double want_bits = (double)n_keywords * hashes / LN2;
    double max_bits = (double)max_bytes * 8;
    if (want_bits > max_bits) {
        /* Capped: the best k for m / n bits a keyword, rounded. */
        double best = max_bits / (double)n_keywords * LN2 + 0.5;
        hashes = best < 1 ? 1 : (unsigned)best;
        want_bits = max_bits;
    }
    size_t bytes = (size_t)(want_bits / 8); /* rounded up to whole bytes */
    if ((double)bytes * 8 < want_bits)
        bytes++;
    if (bytes < SN_SUMMARY_MIN_BITS / 8)
        bytes = SN_SUMMARY_MIN_BITS / 8;
    if (bytes > max_bytes)
        bytes = max_bytes;
    *k = (uint8_t)hashes;
    *m = (uint32_t)(bytes * 8);
}

static struct sn_summary *summary_alloc(const uint8_t sn_id[WIRE_ID_LEN], uint64_t version,
                                        uint8_t k, uint32_t m)
{
    struct sn_summary *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    size_t n = bits_bytes(m); /* >= 1: m >= 1 always */
    s->bits = calloc(n > 0 ? n : 1, 1);
    if (s->bits == NULL) {
        free(s);
        return NULL;
    }
    memcpy(s->sn_id, sn_id, WIRE_ID_LEN);
    s->version = version;
    s->k = k;
    s->m = m;
    return s;
}

struct sn_summary *sn_summary_new(const uint8_t sn_id[WIRE_ID_LEN], uint64_t version,
                                  size_t n_keywords, const struct sn_summary_params *params)
{
    uint8_t k;
    uint32_t m;
    sn_summary_shape(n_keywords, params, &k, &m);
    return summary_alloc(sn_id, version, k, m);
}

void sn_summary_free(struct sn_summary *s)
{
    if (s == NULL)
        return;
    free(s->bits);
    free(s);
}

/* ---- the bits of a keyword ------------------------------------------------------- */
static void keyword_hash(const char *kw, size_t len, uint32_t *h1, uint32_t *h2)
{
    uint64_t h = sn_hashtab_siphash(summary_key, kw, len);
    *h1 = (uint32_t)(h >> 32);
    *h2 = (uint32_t)h;
}

/* The k bit positions of a keyword hashed to (h1, h2) in m bits: position i
 * is (h1 mod m + i * (h2 mod m)) mod m, computed by stepping (no overflow:
 * both terms are below m <= 2^32). */
static void hash_positions(uint32_t h1, uint32_t h2, uint8_t k, uint32_t m,
                           uint32_t pos[SN_SUMMARY_MAX_HASHES])
{
    uint64_t p = h1 % m, step = h2 % m;
    for (unsigned i = 0; i < k; i++, p = (p + step) % m)
        pos[i] = (uint32_t)p;
}

void sn_summary_positions(const char *kw, size_t len, uint8_t k, uint32_t m, uint32_t *pos)
{
    uint32_t h1, h2;
    keyword_hash(kw, len, &h1, &h2);
    hash_positions(h1, h2, k, m, pos);
}

static bool bit_get(const uint8_t *bits, uint32_t i)
{
    return (bits[i / 8] & (0x80u >> (i % 8))) != 0;
}

void sn_summary_add(struct sn_summary *s, const char *kw, size_t len)
{
    uint32_t pos[SN_SUMMARY_MAX_HASHES];
    sn_summary_positions(kw, len, s->k, s->m, pos);
    for (unsigned i = 0; i < s->k; i++) {
        uint8_t mask = (uint8_t)(0x80u >> (pos[i] % 8));
        s->bits_set += (s->bits[pos[i] / 8] & mask) == 0;
        s->bits[pos[i] / 8] |= mask;
    }
    s->n_keywords++;
}

static bool word_may_be_in(const struct sn_summary *s, uint32_t h1, uint32_t h2)
{
    uint32_t pos[SN_SUMMARY_MAX_HASHES];
    hash_positions(h1, h2, s->k, s->m, pos);
    for (unsigned i = 0; i < s->k; i++) {
        if (!bit_get(s->bits, pos[i]))
            return false;
    }
    return true;
}

/* ---- building from the index ------------------------------------------------------ */
static int add_index_keyword(void *arg, const char *kw, size_t len)
{
    sn_summary_add(arg, kw, len);
    return 0;
}

struct sn_summary *sn_summary_build(const struct sn_index *idx, const uint8_t sn_id[WIRE_ID_LEN],
                                    uint64_t version, const struct sn_summary_params *params)
{
    struct sn_index_stats st;
    sn_index_stats(idx, &st);
    struct sn_summary *s = sn_summary_new(sn_id, version, st.keywords, params);
    if (s != NULL)
        sn_index_foreach_keyword(idx, add_index_keyword, s);
    return s;
}

/* ---- wire ------------------------------------------------------------------------- */
void sn_summary_to_msg(const struct sn_summary *s, struct msg_summary *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->sn_id, s->sn_id, WIRE_ID_LEN);
    out->version = s->version;
    out->hash_count = s->k;
    out->bit_count = s->m;
    out->bits.ptr = s->bits;
    out->bits.len = bits_bytes(s->m);
}

int sn_summary_from_msg(const struct msg_summary *m, struct sn_summary **out)
{
    *out = NULL;
    if (m->hash_count < 1 || m->hash_count > SN_SUMMARY_MAX_HASHES || m->bit_count < 1 ||
        m->bits.len != bits_bytes(m->bit_count) || (m->bits.len > 0 && m->bits.ptr == NULL))
        return SOVA_ERR_BAD_VALUE;
    if (m->bits.len > WIRE_MAX_BLOOM_BYTES_DEFAULT)
        return SOVA_ERR_TOO_LARGE;
    struct sn_summary *s = summary_alloc(m->sn_id, m->version, m->hash_count, m->bit_count);
    if (s == NULL)
        return SOVA_ERR_NOMEM;
    memcpy(s->bits, m->bits.ptr, m->bits.len);
    /* Bits past m in the last byte mean nothing; clear them so that equal
     * filters compare equal. */
    if (m->bit_count % 8 != 0)
        s->bits[m->bits.len - 1] &= (uint8_t)(0xff00u >> (m->bit_count % 8));
    for (size_t i = 0; i < m->bits.len; i++)
        s->bits_set += (uint32_t)__builtin_popcount(s->bits[i]);
    *out = s;
    return 0;
}

/* ---- queries ------------------------------------------------------------------------ */
void sn_summary_query_init(struct sn_summary_query *q, const struct wire_str *keywords, size_t n)
{
    struct sn_keywords kw;
    sn_keywords_from_query(&kw, keywords, n);
    q->void_query = sn_keywords_query_void(&kw);
    q->n = kw.n;
    for (size_t i = 0; i < kw.n; i++) {
        struct wire_str w = sn_keywords_word(&kw, i);
        keyword_hash(w.ptr, w.len, &q->word[i].h1, &q->word[i].h2);
    }
}

bool sn_summary_query_match(const struct sn_summary *s, const struct sn_summary_query *q)
{
    if (q->void_query)
        return false;
    for (size_t i = 0; i < q->n; i++) {
        if (!word_may_be_in(s, q->word[i].h1, q->word[i].h2))
            return false;
    }
    return true;
}

bool sn_summary_may_match(const struct sn_summary *s, const struct wire_str *keywords, size_t n)
{
    struct sn_summary_query q;
    sn_summary_query_init(&q, keywords, n);
    return sn_summary_query_match(s, &q);
}

/* ---- introspection ---------------------------------------------------------------------- */
const uint8_t *sn_summary_sn_id(const struct sn_summary *s)
{
    return s->sn_id;
}

uint64_t sn_summary_version(const struct sn_summary *s)
{
    return s->version;
}

uint8_t sn_summary_hash_count(const struct sn_summary *s)
{
    return s->k;
}

uint32_t sn_summary_bit_count(const struct sn_summary *s)
{
    return s->m;
}

size_t sn_summary_keywords(const struct sn_summary *s)
{
    return s->n_keywords;
}

uint32_t sn_summary_bits_set(const struct sn_summary *s)
{
    return s->bits_set;
}

uint32_t sn_summary_fp_ppm(const struct sn_summary *s)
{
    double fill = (double)sn_summary_bits_set(s) / s->m, rate = 1;
    for (unsigned i = 0; i < s->k; i++)
        rate *= fill;
    double ppm = rate * 1e6;
    uint32_t r = (uint32_t)ppm;
    return (double)r < ppm ? r + 1 : r;
}

bool sn_summary_same_bits(const struct sn_summary *a, const struct sn_summary *b)
{
    return a->k == b->k && a->m == b->m && memcmp(a->bits, b->bits, bits_bytes(a->m)) == 0;
}

/* ---- when to rebuild ------------------------------------------------------------------- */
void sn_summary_sched_init(struct sn_summary_sched *s, uint32_t min_interval_ms)
{
    memset(s, 0, sizeof(*s));
    s->min_interval_ms = min_interval_ms;
}

bool sn_summary_sched_due(const struct sn_summary_sched *s, uint64_t changes, uint64_t now_ms,
                          uint64_t *next_ms)
{
    uint64_t next = UINT64_MAX;
    bool due = false;
    if (!s->built) {
        due = true;
    } else if (changes != s->built_changes) {
        uint64_t earliest = s->built_at_ms + s->min_interval_ms;
        /* A clock that went back (now < built_at) waits no longer than one interval. */
        due = now_ms >= earliest || now_ms + s->min_interval_ms < s->built_at_ms;
        next = due ? now_ms : earliest;
    }
    if (next_ms != NULL)
        *next_ms = due ? now_ms : next;
    return due;
}

void sn_summary_sched_done(struct sn_summary_sched *s, uint64_t changes, uint64_t now_ms)
{
    s->built = true;
    s->built_changes = changes;
    s->built_at_ms = now_ms;
}

uint64_t sn_summary_next_version(uint64_t prev, uint64_t wall_ms)
{
    if (wall_ms > prev)
        return wall_ms;
    return prev == UINT64_MAX ? prev : prev + 1;
}
