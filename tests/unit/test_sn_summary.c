/* test_sn_summary.c - the keyword Bloom summary a supernode gossips
 * (sn_summary.h): the bits the protocol defines, its shape, no false
 * negatives, the false-positive rate it promises, the wire, rebuilds. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "msg.h"
#include "sn_index.h"
#include "sn_summary.h"

static const uint8_t sn_a[WIRE_ID_LEN] = {0xa1, 0xa2};

/* Deterministic pseudo-random numbers (xorshift64*). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

/* A normalized keyword (lowercase letters and digits) unique to (tag, i):
 * tag 'k' for members, 'q' for words never added. */
static size_t make_word(char *buf, size_t cap, char tag, unsigned i)
{
    return (size_t)snprintf(buf, cap, "%c%u%c%08x", tag, i, 'a' + (char)(i % 26),
                            (unsigned)(rng() & 0xffffffffu));
}

static struct sn_summary *summary_for(size_t n, size_t max_bytes)
{
    struct sn_summary_params p = sn_summary_params_default();
    p.max_bytes = max_bytes;
    struct sn_summary *s = sn_summary_new(sn_a, 1, n, &p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    return s;
}

static bool word_may_match(const struct sn_summary *s, const char *w, size_t len)
{
    struct wire_str q = {w, len};
    return sn_summary_may_match(s, &q, 1);
}

static int add_keyword(void *arg, const char *kw, size_t len)
{
    sn_summary_add(arg, kw, len);
    return 0;
}

/* ---- the protocol's bits ------------------------------------------------------------ */
static void test_documented_vector(void)
{
    /* docs/PROTOCOL.md, 0x41 SUMMARY: SipHash-2-4 under 00..0f, h1 = high
     * half, h2 = low half, position i = (h1 mod m + i (h2 mod m)) mod m.
     * Checked against an independent implementation. */
    uint32_t pos[7];
    sn_summary_positions("holiday", 7, 7, 1024, pos);
    const uint32_t want_holiday[7] = {737, 368, 1023, 654, 285, 940, 571};
    CU_ASSERT_EQUAL(memcmp(pos, want_holiday, sizeof(pos)), 0);
    sn_summary_positions("2019", 4, 4, 524288, pos);
    const uint32_t want_2019[4] = {302333, 236775, 171217, 105659};
    CU_ASSERT_EQUAL(memcmp(pos, want_2019, sizeof(want_2019)), 0);

    /* The 8-byte filter (m = 64, k = 3) of "Holiday_Video-2019.MP4". */
    struct sn_index_limits lim = sn_index_limits_default();
    struct sn_index *idx = sn_index_new(&lim);
    CU_ASSERT_PTR_NOT_NULL_FATAL(idx);
    uint8_t peer[WIRE_ID_LEN] = {1};
    struct msg_publish_record rec = {.action = MSG_PUBLISH_ADD, .size = 1, .chunk_size = 1};
    rec.name = wire_str_from("Holiday_Video-2019.MP4");
    CU_ASSERT_EQUAL_FATAL(sn_index_peer_add(idx, peer, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(sn_index_publish(idx, peer, &rec), 0);
    uint8_t want[8] = {0x04, 0x00, 0x41, 0x41, 0x41, 0x00, 0x80, 0xc5};
    struct msg_summary wire = {.hash_count = 3, .bit_count = 64, .bits = {want, sizeof(want)}};
    struct sn_summary *from_wire;
    CU_ASSERT_EQUAL_FATAL(sn_summary_from_msg(&wire, &from_wire), 0);
    /* Rate 1/8 gives k = 3; 14 keywords' worth of bits is 60.6, so m = 64. */
    struct sn_summary_params p = {.fp_rate = 0.125, .max_bytes = 8};
    struct sn_summary *built = sn_summary_new(sn_a, 1, 14, &p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(built);
    CU_ASSERT_EQUAL(sn_index_foreach_keyword(idx, add_keyword, built), 0);
    CU_ASSERT_EQUAL(sn_summary_hash_count(built), 3);
    CU_ASSERT_EQUAL(sn_summary_bit_count(built), 64);
    CU_ASSERT_EQUAL(sn_summary_keywords(built), 4);
    CU_ASSERT(sn_summary_same_bits(built, from_wire));
    CU_ASSERT_EQUAL(sn_summary_bits_set(built), 12); /* 4 keywords x 3, none shared */
    CU_ASSERT_EQUAL(sn_summary_bits_set(from_wire), 12);
    sn_summary_free(built);
    sn_summary_free(from_wire);
    sn_index_free(idx);
}

static void test_shape(void)
{
    struct sn_summary_params p = sn_summary_params_default();
    uint8_t k;
    uint32_t m;
    /* 1 %: k = ceil(log2 100) = 7, m = ceil(n * 7 / ln 2) rounded up to bytes. */
    sn_summary_shape(1000, &p, &k, &m);
    CU_ASSERT_EQUAL(k, 7);
    CU_ASSERT_EQUAL(m, 10104); /* 10098.9 -> 1263 bytes */
    sn_summary_shape(0, &p, &k, &m);
    CU_ASSERT_EQUAL(m, SN_SUMMARY_MIN_BITS);
    /* The most keywords that fit 64 KiB at the target: 524288 * ln 2 / 7. */
    sn_summary_shape(51916, &p, &k, &m);
    CU_ASSERT_EQUAL(k, 7);
    CU_ASSERT(m <= 524288 && m > 524280);
    /* Past it m stays at the cap and k drops to round(m / n * ln 2). */
    sn_summary_shape(51917, &p, &k, &m);
    CU_ASSERT_EQUAL(m, 524288);
    CU_ASSERT_EQUAL(k, 7);
    sn_summary_shape(100000, &p, &k, &m);
    CU_ASSERT_EQUAL(m, 524288);
    CU_ASSERT_EQUAL(k, 4);
    sn_summary_shape(2000000, &p, &k, &m);
    CU_ASSERT_EQUAL(k, 1);
    /* Other targets; out-of-range parameters are clamped. */
    p.fp_rate = 0.001;
    sn_summary_shape(1000, &p, &k, &m);
    CU_ASSERT_EQUAL(k, 10);
    p.fp_rate = 0;
    sn_summary_shape(10, &p, &k, &m);
    CU_ASSERT_EQUAL(k, SN_SUMMARY_MAX_HASHES);
    p.fp_rate = 0.9;
    p.max_bytes = 0;
    sn_summary_shape(1000, &p, &k, &m);
    CU_ASSERT_EQUAL(k, 1);
    CU_ASSERT_EQUAL(m, 8);
    p.max_bytes = (size_t)1 << 30;
    sn_summary_shape(10000000, &p, &k, &m);
    CU_ASSERT_EQUAL(m, WIRE_MAX_BLOOM_BYTES_DEFAULT * 8);
}

/* ---- no false negatives, the rate of false positives -------------------------------- */
static void test_no_false_negatives(void)
{
    const size_t sizes[] = {0, 1, 7, 100, 3000, 60000};
    const size_t caps[] = {SN_SUMMARY_MAX_BYTES_DEFAULT, 64};
    char w[32];
    for (size_t c = 0; c < 2; c++) {
        for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
            uint64_t seed = rng_state;
            struct sn_summary *s = summary_for(sizes[t], caps[c]);
            for (unsigned i = 0; i < sizes[t]; i++)
                sn_summary_add(s, w, make_word(w, sizeof(w), 'k', i));
            rng_state = seed; /* the same words again */
            size_t misses = 0;
            for (unsigned i = 0; i < sizes[t]; i++)
                misses += !word_may_match(s, w, make_word(w, sizeof(w), 'k', i));
            CU_ASSERT_EQUAL(misses, 0);
            if (sizes[t] == 0)
                CU_ASSERT_EQUAL(sn_summary_bits_set(s), 0);
            sn_summary_free(s);
        }
    }
}

/* Share of never-added words that the filter lets through. */
static double measured_fp(const struct sn_summary *s, unsigned probes)
{
    char w[32];
    unsigned fp = 0;
    for (unsigned i = 0; i < probes; i++)
        fp += word_may_match(s, w, make_word(w, sizeof(w), 'q', i));
    return (double)fp / probes;
}

static void test_false_positive_rate(void)
{
    char w[32];
    /* At the 1 % target: k = 7 and 10.1 bits a keyword, 2^-7 = 0.78 %. */
    struct sn_summary *s = summary_for(20000, SN_SUMMARY_MAX_BYTES_DEFAULT);
    for (unsigned i = 0; i < 20000; i++)
        sn_summary_add(s, w, make_word(w, sizeof(w), 'k', i));
    double fp = measured_fp(s, 200000);
    printf("\n    20000 keywords, k=%u m=%u: measured FP %.3f%% (fill estimate %.3f%%, "
           "target 1%%) ",
           sn_summary_hash_count(s), sn_summary_bit_count(s), fp * 100, sn_summary_fp_ppm(s) / 1e4);
    CU_ASSERT(fp > 0.004 && fp < 0.0115);
    CU_ASSERT(sn_summary_fp_ppm(s) > 6000 && sn_summary_fp_ppm(s) < 10000);
    /* A two-word query needs both words: about the square of the rate. */
    unsigned both = 0;
    for (unsigned i = 0; i < 20000; i++) {
        char w2[32];
        struct wire_str q[2] = {{w, make_word(w, sizeof(w), 'q', i)},
                                {w2, make_word(w2, sizeof(w2), 'q', i + 1000000)}};
        both += sn_summary_may_match(s, q, 2);
    }
    CU_ASSERT(both <= 5);
    sn_summary_free(s);

    /* At the 64 KiB cap with 100000 keywords: k = 4, m / n = 5.24, about 8.1 %. */
    s = summary_for(100000, SN_SUMMARY_MAX_BYTES_DEFAULT);
    CU_ASSERT_EQUAL(sn_summary_bit_count(s), 524288);
    CU_ASSERT_EQUAL(sn_summary_hash_count(s), 4);
    for (unsigned i = 0; i < 100000; i++)
        sn_summary_add(s, w, make_word(w, sizeof(w), 'k', i));
    fp = measured_fp(s, 100000);
    printf("\n    100000 keywords at the cap, k=%u m=%u: measured FP %.2f%% ",
           sn_summary_hash_count(s), sn_summary_bit_count(s), fp * 100);
    CU_ASSERT(fp > 0.065 && fp < 0.095);
    sn_summary_free(s);
}

/* ---- queries are normalized as the index normalizes them ---------------------------- */
static void test_queries_from_index(void)
{
    struct sn_index_limits lim = sn_index_limits_default();
    struct sn_index *idx = sn_index_new(&lim);
    CU_ASSERT_PTR_NOT_NULL_FATAL(idx);
    uint8_t peer[WIRE_ID_LEN] = {7};
    CU_ASSERT_EQUAL_FATAL(sn_index_peer_add(idx, peer, NULL), 0);
    const char *names[] = {"The.Big-Lebowski_(1998)[x264].mkv", "Caf\xc3\xa9 Tacvba - Eres.FLAC",
                           "archive.tar.gz"};
    for (unsigned i = 0; i < 3; i++) {
        struct msg_publish_record rec = {.action = MSG_PUBLISH_ADD, .size = i + 1, .chunk_size = 1};
        rec.hash[0] = (uint8_t)(i + 1);
        rec.name = wire_str_from(names[i]);
        CU_ASSERT_EQUAL_FATAL(sn_index_publish(idx, peer, &rec), 0);
    }
    struct sn_summary_params p = sn_summary_params_default();
    struct sn_summary *s = sn_summary_build(idx, sn_a, 42, &p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(sn_summary_keywords(s), 13);
    CU_ASSERT_EQUAL(sn_summary_version(s), 42);
    CU_ASSERT_EQUAL(memcmp(sn_summary_sn_id(s), sn_a, WIRE_ID_LEN), 0);

    struct wire_str q[3];
    q[0] = wire_str_from("Big-LEBOWSKI"); /* two words, both present */
    CU_ASSERT(sn_summary_may_match(s, q, 1));
    q[1] = wire_str_from("x264 a"); /* "a" is too short to be a word */
    CU_ASSERT(sn_summary_may_match(s, q, 2));
    q[0] = wire_str_from("caf\xc3\xa9");
    q[1] = wire_str_from("TACVBA");
    q[2] = wire_str_from("flac");
    CU_ASSERT(sn_summary_may_match(s, q, 3));
    q[0] = wire_str_from("Caf\xc3\x89"); /* non-ASCII is not case-folded */
    CU_ASSERT_FALSE(sn_summary_may_match(s, q, 1));
    q[0] = wire_str_from("big-lebowski-sequel"); /* one word absent */
    CU_ASSERT_FALSE(sn_summary_may_match(s, q, 1));
    /* Void queries match nothing: no word, a too-long word. */
    q[0] = wire_str_from("a - b");
    CU_ASSERT_FALSE(sn_summary_may_match(s, q, 1));
    CU_ASSERT_FALSE(sn_summary_may_match(s, q, 0));
    char long_word[SN_KEYWORD_MAX_LEN + 10];
    memset(long_word, 'g', sizeof(long_word));
    q[0] = (struct wire_str){long_word, sizeof(long_word)};
    q[1] = wire_str_from("gz");
    CU_ASSERT_FALSE(sn_summary_may_match(s, q, 2));

    /* One hashed query against several summaries. */
    struct sn_summary_query hq;
    q[0] = wire_str_from("tar");
    sn_summary_query_init(&hq, q, 1);
    CU_ASSERT_EQUAL(hq.n, 1);
    CU_ASSERT(sn_summary_query_match(s, &hq));
    struct sn_summary *empty = summary_for(0, 64);
    CU_ASSERT_FALSE(sn_summary_query_match(empty, &hq));
    sn_summary_free(empty);
    sn_summary_free(s);
    sn_index_free(idx);
}

/* ---- the wire ----------------------------------------------------------------------- */
static void test_wire_round_trip(void)
{
    char w[32];
    struct sn_summary *s = summary_for(500, SN_SUMMARY_MAX_BYTES_DEFAULT);
    uint64_t seed = rng_state;
    for (unsigned i = 0; i < 500; i++)
        sn_summary_add(s, w, make_word(w, sizeof(w), 'k', i));

    struct msg m = {.type = MSG_SUMMARY};
    sn_summary_to_msg(s, &m.u.summary);
    struct wire_limits lim = wire_limits_default();
    struct wire_buf buf;
    wire_buf_init(&buf);
    CU_ASSERT_EQUAL_FATAL(msg_encode(&m, &lim, &buf, NULL), 0);
    struct msg got;
    size_t used;
    CU_ASSERT_EQUAL_FATAL(msg_decode_frame(buf.data, buf.len, &lim, &got, &used, NULL), 0);
    CU_ASSERT_EQUAL(used, buf.len);
    struct sn_summary *back;
    CU_ASSERT_EQUAL_FATAL(sn_summary_from_msg(&got.u.summary, &back), 0);
    msg_clear(&got);
    wire_buf_free(&buf); /* back owns a copy */
    CU_ASSERT(sn_summary_same_bits(s, back));
    CU_ASSERT_EQUAL(sn_summary_bits_set(s), sn_summary_bits_set(back));
    CU_ASSERT_EQUAL(sn_summary_version(back), 1);
    CU_ASSERT_EQUAL(memcmp(sn_summary_sn_id(back), sn_a, WIRE_ID_LEN), 0);
    CU_ASSERT_EQUAL(sn_summary_keywords(back), 0);
    rng_state = seed;
    size_t misses = 0;
    for (unsigned i = 0; i < 500; i++)
        misses += !word_may_match(back, w, make_word(w, sizeof(w), 'k', i));
    CU_ASSERT_EQUAL(misses, 0);
    sn_summary_free(back);
    sn_summary_free(s);

    /* The biggest filter encodes in one frame under the default limits. */
    s = summary_for(1000000, SN_SUMMARY_MAX_BYTES_DEFAULT);
    sn_summary_to_msg(s, &m.u.summary);
    CU_ASSERT_EQUAL(m.u.summary.bits.len, WIRE_MAX_BLOOM_BYTES_DEFAULT);
    wire_buf_init(&buf);
    CU_ASSERT_EQUAL(msg_encode(&m, &lim, &buf, NULL), 0);
    wire_buf_free(&buf);
    sn_summary_free(s);
}

static void test_from_msg_checks(void)
{
    uint8_t bits[WIRE_MAX_BLOOM_BYTES_DEFAULT + 1] = {0xff, 0xff};
    struct msg_summary m = {.hash_count = 3, .bit_count = 12, .bits = {bits, 2}};
    struct sn_summary *s = (struct sn_summary *)&m; /* must come back NULL on error */
    m.hash_count = 0;
    CU_ASSERT_EQUAL(sn_summary_from_msg(&m, &s), SOVA_ERR_BAD_VALUE);
    CU_ASSERT_PTR_NULL(s);
    m.hash_count = 33;
    CU_ASSERT_EQUAL(sn_summary_from_msg(&m, &s), SOVA_ERR_BAD_VALUE);
    m.hash_count = 32;
    m.bit_count = 0;
    CU_ASSERT_EQUAL(sn_summary_from_msg(&m, &s), SOVA_ERR_BAD_VALUE);
    m.bit_count = 17; /* needs 3 bytes */
    CU_ASSERT_EQUAL(sn_summary_from_msg(&m, &s), SOVA_ERR_BAD_VALUE);
    m.bit_count = (WIRE_MAX_BLOOM_BYTES_DEFAULT + 1) * 8;
    m.bits.len = WIRE_MAX_BLOOM_BYTES_DEFAULT + 1;
    CU_ASSERT_EQUAL(sn_summary_from_msg(&m, &s), SOVA_ERR_TOO_LARGE);
    /* 12 bits: the 4 padding bits of the last byte are ignored. */
    m.bit_count = 12;
    m.bits.len = 2;
    CU_ASSERT_EQUAL_FATAL(sn_summary_from_msg(&m, &s), 0);
    CU_ASSERT_EQUAL(sn_summary_bits_set(s), 12);
    CU_ASSERT_EQUAL(sn_summary_fp_ppm(s), 1000000);
    sn_summary_free(s);
}

/* ---- rebuilds and versions -------------------------------------------------------------- */
static void test_rebuild_schedule(void)
{
    struct sn_summary_sched sc;
    uint64_t next;
    sn_summary_sched_init(&sc, 10000);
    CU_ASSERT(sn_summary_sched_due(&sc, 0, 5, &next)); /* the first build at once */
    CU_ASSERT_EQUAL(next, 5);
    sn_summary_sched_done(&sc, 0, 5);
    CU_ASSERT_FALSE(sn_summary_sched_due(&sc, 0, 100000, &next)); /* nothing changed */
    CU_ASSERT_EQUAL(next, UINT64_MAX);
    CU_ASSERT_FALSE(sn_summary_sched_due(&sc, 3, 2000, &next)); /* changed, too soon */
    CU_ASSERT_EQUAL(next, 10005);
    CU_ASSERT_FALSE(sn_summary_sched_due(&sc, 3, 10004, NULL));
    CU_ASSERT(sn_summary_sched_due(&sc, 3, 10005, &next));
    sn_summary_sched_done(&sc, 3, 10005);
    CU_ASSERT_FALSE(sn_summary_sched_due(&sc, 3, 30000, NULL));
    CU_ASSERT(sn_summary_sched_due(&sc, 4, 30000, NULL)); /* long after the last build */

    CU_ASSERT_EQUAL(sn_summary_next_version(0, 1700000000000ULL), 1700000000000ULL);
    CU_ASSERT_EQUAL(sn_summary_next_version(1700000000000ULL, 1700000000000ULL), 1700000000001ULL);
    CU_ASSERT_EQUAL(sn_summary_next_version(1700000000005ULL, 1600000000000ULL),
                    1700000000006ULL); /* the clock went back: versions still grow */
    CU_ASSERT_EQUAL(sn_summary_next_version(UINT64_MAX, 5), UINT64_MAX);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("sn_summary", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "the documented bit positions and filter bytes", test_documented_vector);
    CU_add_test(s, "k and m from the keyword count, the target and the cap", test_shape);
    CU_add_test(s, "no false negatives, also at a tiny cap", test_no_false_negatives);
    CU_add_test(s, "measured false-positive rate: target and cap", test_false_positive_rate);
    CU_add_test(s, "queries normalized as the index does; void queries", test_queries_from_index);
    CU_add_test(s, "wire round trip; the largest filter fits a frame", test_wire_round_trip);
    CU_add_test(s, "received summaries are checked", test_from_msg_checks);
    CU_add_test(s, "rebuild schedule and growing versions", test_rebuild_schedule);
    return 0;
}
