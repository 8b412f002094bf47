/* test_sn_reports.c - supernode/guard/sn_reports.h: who reported whom,
 * weighed, counted once per reporter and reason, scored, ranked, dropped,
 * bounded; and supernode/guard/sn_intro.h: which peers were introduced to
 * which sources, bounded and forgotten in time. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <string.h>

#include "msg.h"
#include "sn_intro.h"
#include "sn_reports.h"

#define FULL SN_REPORTS_WEIGHT_FULL

static const uint8_t key[SN_HASHTAB_KEYLEN] = {7};

static void id_of(uint8_t out[WIRE_ID_LEN], unsigned n)
{
    memset(out, 0, WIRE_ID_LEN);
    out[0] = (uint8_t)n;
    out[1] = (uint8_t)(n >> 8);
}

static void test_counting(void)
{
    struct sn_reports *r = sn_reports_new(16, key);
    uint8_t liar[WIRE_ID_LEN], a[WIRE_ID_LEN], b[WIRE_ID_LEN];
    id_of(liar, 1), id_of(a, 2), id_of(b, 3);
    CU_ASSERT_EQUAL(sn_reports_score(r, liar), 0);
    CU_ASSERT_TRUE(sn_reports_add(r, liar, a, MSG_REPORT_BAD_DATA, FULL, 1));
    CU_ASSERT_FALSE(sn_reports_add(r, liar, a, MSG_REPORT_BAD_DATA, FULL, 2)); /* a repeat */
    CU_ASSERT_EQUAL(sn_reports_score(r, liar), 2 * FULL);
    CU_ASSERT_TRUE(sn_reports_add(r, liar, a, MSG_REPORT_REFUSED, FULL, 3));
    CU_ASSERT_TRUE(sn_reports_add(r, liar, b, MSG_REPORT_BAD_DATA, FULL, 4));
    CU_ASSERT_EQUAL(sn_reports_score(r, liar), 5 * FULL);
    CU_ASSERT_FALSE(sn_reports_add(r, a, a, MSG_REPORT_BAD_DATA, FULL, 5)); /* oneself */
    CU_ASSERT_FALSE(sn_reports_add(r, a, b, 9, FULL, 6));                   /* no such reason */
    CU_ASSERT_FALSE(sn_reports_add(r, a, b, MSG_REPORT_BAD_DATA, 0, 6));    /* no weight */
    CU_ASSERT_EQUAL(sn_reports_score(r, a), 0);
    struct sn_reports_stats st;
    sn_reports_stats(r, &st);
    CU_ASSERT_EQUAL(st.received, 7);
    CU_ASSERT_EQUAL(st.counted, 3);
    CU_ASSERT_EQUAL(st.peers, 1);
    sn_reports_free(r);
}

static void test_reporters_bounded(void)
{
    struct sn_reports *r = sn_reports_new(16, key);
    uint8_t victim[WIRE_ID_LEN], who[WIRE_ID_LEN];
    id_of(victim, 1);
    for (unsigned i = 0; i < 100; i++) {
        id_of(who, 1000 + i);
        sn_reports_add(r, victim, who, MSG_REPORT_BAD_DATA, 1, i);
    }
    CU_ASSERT_EQUAL(sn_reports_score(r, victim), 2 * SN_REPORTS_REPORTERS);
    /* The list is full of light reports: a heavier one takes a place. */
    id_of(who, 5000);
    CU_ASSERT_TRUE(sn_reports_add(r, victim, who, MSG_REPORT_BAD_DATA, FULL, 200));
    CU_ASSERT_EQUAL(sn_reports_score(r, victim), 2 * (SN_REPORTS_REPORTERS - 1) + 2 * FULL);
    id_of(who, 5001);
    CU_ASSERT_FALSE(sn_reports_add(r, victim, who, MSG_REPORT_BAD_DATA, 1, 201)); /* no lighter */
    sn_reports_free(r);
}

/* Light accusations change no order; weighed ones do; enough bad-data
 * weight drops a source. 8 reporters of weight 100 (fresh identities would
 * have none at all: credit/ never lets them in) stay below the bar. */
static void test_rank_and_drop(void)
{
    struct sn_reports *r = sn_reports_new(16, key);
    uint8_t src[WIRE_ID_LEN], who[WIRE_ID_LEN];
    id_of(src, 1);
    for (unsigned i = 0; i < 4; i++) {
        id_of(who, 100 + i);
        sn_reports_add(r, src, who, MSG_REPORT_BAD_DATA, 100, i);
    }
    CU_ASSERT_EQUAL(sn_reports_score(r, src), 800);
    CU_ASSERT_EQUAL(sn_reports_rank(r, src), 0);
    CU_ASSERT_FALSE(sn_reports_dropped(r, src));
    id_of(who, 200);
    sn_reports_add(r, src, who, MSG_REPORT_REFUSED, 300, 9);
    CU_ASSERT_EQUAL(sn_reports_rank(r, src), 1100); /* now it ranks lower */
    CU_ASSERT_FALSE(sn_reports_dropped(r, src));
    for (unsigned i = 0; i < 3; i++) {
        id_of(who, 300 + i);
        sn_reports_add(r, src, who, MSG_REPORT_BAD_DATA, FULL, 10 + i);
    }
    CU_ASSERT_TRUE(sn_reports_dropped(r, src)); /* three full-weight downloaders */
    /* The same reporter, worth more later, counts once at its new weight. */
    uint8_t other[WIRE_ID_LEN];
    id_of(other, 2);
    id_of(who, 400);
    CU_ASSERT_TRUE(sn_reports_add(r, other, who, MSG_REPORT_BAD_DATA, 100, 20));
    CU_ASSERT_TRUE(sn_reports_add(r, other, who, MSG_REPORT_BAD_DATA, 600, 21));
    CU_ASSERT_EQUAL(sn_reports_score(r, other), 1200);
    sn_reports_free(r);
}

static void test_bounded_least_recent_goes(void)
{
    struct sn_reports *r = sn_reports_new(300, key);
    uint8_t peer[WIRE_ID_LEN], who[WIRE_ID_LEN];
    id_of(who, 60000);
    for (unsigned i = 0; i < 300; i++) {
        id_of(peer, i);
        CU_ASSERT_TRUE(sn_reports_add(r, peer, who, MSG_REPORT_REFUSED, 1, 1000 + i));
    }
    id_of(peer, 0); /* the oldest, reported again: now the newest */
    uint8_t other[WIRE_ID_LEN];
    id_of(other, 60001);
    sn_reports_add(r, peer, other, MSG_REPORT_REFUSED, 1, 5000);
    id_of(peer, 300); /* one more peer: the least recent one (1) makes room */
    CU_ASSERT_TRUE(sn_reports_add(r, peer, who, MSG_REPORT_BAD_DATA, 1, 6000));
    struct sn_reports_stats st;
    sn_reports_stats(r, &st);
    CU_ASSERT_EQUAL(st.peers, 300);
    id_of(peer, 1);
    CU_ASSERT_EQUAL(sn_reports_score(r, peer), 0);
    id_of(peer, 0);
    CU_ASSERT_EQUAL(sn_reports_score(r, peer), 2);
    for (unsigned i = 2; i <= 299; i++) { /* every other entry still found after the move */
        id_of(peer, i);
        CU_ASSERT_EQUAL(sn_reports_score(r, peer), 1);
    }
    id_of(peer, 300);
    CU_ASSERT_EQUAL(sn_reports_score(r, peer), 2);
    sn_reports_free(r);
}

static void test_intro(void)
{
    struct sn_intro *t = sn_intro_new(4, key);
    uint8_t peer[WIRE_ID_LEN], src[WIRE_ID_LEN], other[WIRE_ID_LEN];
    uint8_t file[WIRE_HASH_LEN], file2[WIRE_HASH_LEN];
    id_of(peer, 1), id_of(src, 2), id_of(other, 3);
    memset(file, 0xF1, sizeof(file));
    memset(file2, 0xF2, sizeof(file2));
    CU_ASSERT_FALSE(sn_intro_has(t, peer, src, file, 0));
    sn_intro_add(t, peer, src, file, 1000);
    CU_ASSERT_TRUE(sn_intro_has(t, peer, src, file, 2000));
    CU_ASSERT_FALSE(sn_intro_has(t, peer, src, file2, 2000)); /* another file */
    CU_ASSERT_FALSE(sn_intro_has(t, src, peer, file, 2000));  /* the other way round */
    CU_ASSERT_FALSE(sn_intro_has(t, other, src, file, 2000)); /* someone else */
    CU_ASSERT_FALSE(sn_intro_has(t, peer, src, file, 1000 + SN_INTRO_TTL_MS)); /* too old */
    sn_intro_add(t, peer, other, NULL, 3000); /* LOCATE, CONNECT, relay: any file */
    CU_ASSERT_TRUE(sn_intro_has(t, peer, other, file2, 3000));
    sn_intro_add(t, peer, peer, NULL, 3000); /* never to oneself */
    CU_ASSERT_FALSE(sn_intro_has(t, peer, peer, file, 3000));
    /* Files per pair: the last SN_INTRO_FILES. */
    for (unsigned i = 0; i < SN_INTRO_FILES + 1; i++) {
        uint8_t f[WIRE_HASH_LEN];
        memset(f, (int)(0x10 + i), sizeof(f));
        sn_intro_add(t, peer, src, f, 4000 + i);
    }
    CU_ASSERT_FALSE(sn_intro_has(t, peer, src, file, 5000)); /* pushed out */
    /* Pairs: a ring of 4; the oldest pair goes first. */
    for (unsigned i = 0; i < 4; i++) {
        uint8_t p[WIRE_ID_LEN];
        id_of(p, 100 + i);
        sn_intro_add(t, p, src, file, 6000);
    }
    struct sn_intro_stats st;
    sn_intro_stats(t, &st);
    CU_ASSERT_EQUAL(st.entries, 4);
    CU_ASSERT_EQUAL(st.evicted, 2);
    CU_ASSERT_FALSE(sn_intro_has(t, peer, other, file, 6000));
    uint8_t p[WIRE_ID_LEN];
    id_of(p, 103);
    CU_ASSERT_TRUE(sn_intro_has(t, p, src, file, 6000));
    sn_intro_free(t);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("sn_reports", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "one count per reporter and reason, scored", test_counting);
    CU_add_test(s, "at most 8 reporters of one peer count", test_reporters_bounded);
    CU_add_test(s, "bounded: the least recently reported peer makes room",
                test_bounded_least_recent_goes);
    CU_add_test(s, "weights: light reports change no order; enough bad data drops",
                test_rank_and_drop);
    CU_add_test(s, "introductions: per pair and file, in time, bounded", test_intro);
    return 0;
}
