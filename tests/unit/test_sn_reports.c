/* test_sn_reports.c - supernode/sn_reports.h: who reported whom, counted
 * once per reporter and reason, scored, bounded. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <string.h>

#include "msg.h"
#include "sn_reports.h"

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
    CU_ASSERT_TRUE(sn_reports_add(r, liar, a, MSG_REPORT_BAD_DATA, 1));
    CU_ASSERT_FALSE(sn_reports_add(r, liar, a, MSG_REPORT_BAD_DATA, 2)); /* a repeat */
    CU_ASSERT_EQUAL(sn_reports_score(r, liar), 2);
    CU_ASSERT_TRUE(sn_reports_add(r, liar, a, MSG_REPORT_REFUSED, 3));
    CU_ASSERT_TRUE(sn_reports_add(r, liar, b, MSG_REPORT_BAD_DATA, 4));
    CU_ASSERT_EQUAL(sn_reports_score(r, liar), 5);
    CU_ASSERT_FALSE(sn_reports_add(r, a, a, MSG_REPORT_BAD_DATA, 5)); /* oneself */
    CU_ASSERT_FALSE(sn_reports_add(r, a, b, 9, 6));                   /* no such reason */
    CU_ASSERT_EQUAL(sn_reports_score(r, a), 0);
    struct sn_reports_stats st;
    sn_reports_stats(r, &st);
    CU_ASSERT_EQUAL(st.received, 6);
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
        sn_reports_add(r, victim, who, MSG_REPORT_BAD_DATA, i);
    }
    CU_ASSERT_EQUAL(sn_reports_score(r, victim), 2 * SN_REPORTS_REPORTERS);
    sn_reports_free(r);
}

static void test_bounded_least_recent_goes(void)
{
    struct sn_reports *r = sn_reports_new(300, key);
    uint8_t peer[WIRE_ID_LEN], who[WIRE_ID_LEN];
    id_of(who, 60000);
    for (unsigned i = 0; i < 300; i++) {
        id_of(peer, i);
        CU_ASSERT_TRUE(sn_reports_add(r, peer, who, MSG_REPORT_REFUSED, 1000 + i));
    }
    id_of(peer, 0); /* the oldest, reported again: now the newest */
    uint8_t other[WIRE_ID_LEN];
    id_of(other, 60001);
    sn_reports_add(r, peer, other, MSG_REPORT_REFUSED, 5000);
    id_of(peer, 300); /* one more peer: the least recent one (1) makes room */
    CU_ASSERT_TRUE(sn_reports_add(r, peer, who, MSG_REPORT_BAD_DATA, 6000));
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

int test_register(void)
{
    CU_pSuite s = CU_add_suite("sn_reports", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "one count per reporter and reason, scored", test_counting);
    CU_add_test(s, "at most 8 reporters of one peer count", test_reporters_bounded);
    CU_add_test(s, "bounded: the least recently reported peer makes room",
                test_bounded_least_recent_goes);
    return 0;
}
