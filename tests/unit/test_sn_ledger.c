/* test_sn_ledger.c - the credit arithmetic (supernode/sn_credit.h) and the
 * ledger store (supernode/sn_ledger.h): receipts count once, replays and
 * stale receipts are refused and counted, credit from one downloader is
 * capped, a fresh identity's receipts weigh little, uptime earns a little,
 * records merge between replicas whatever the order, and the store stays
 * within its bounds. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "sn_credit.h"
#include "sn_ledger.h"

#define NOW 1700000000u
#define MIB (1024u * 1024)

static const uint8_t S[WIRE_ID_LEN] = {0x53}, D[WIRE_ID_LEN] = {0x44}, E[WIRE_ID_LEN] = {0x45},
                     SN1[WIRE_ID_LEN] = {0xA1};

static struct sn_ledger *new_ledger(size_t max_records, uint64_t cap)
{
    struct sn_ledger_config cfg = {.max_records = max_records, .cap = cap};
    return sn_ledger_new(&cfg);
}

/* Receipts here are taken as verified: the ledger never checks signatures. */
static struct msg_receipt receipt(const uint8_t *down, const uint8_t *src, uint64_t bytes,
                                  uint64_t seq, uint64_t time_s)
{
    struct msg_receipt r;
    memset(&r, 0, sizeof(r));
    memcpy(r.downloader_id, down, WIRE_ID_LEN);
    memcpy(r.source_id, src, WIRE_ID_LEN);
    r.bytes = bytes;
    r.seq = seq;
    r.time_s = time_s;
    return r;
}

static struct msg_credit_record get(struct sn_ledger *l, const uint8_t *id)
{
    struct msg_credit_record c;
    sn_ledger_get(l, id, &c);
    return c;
}

static void test_weight_and_caps(void)
{
    CU_ASSERT_EQUAL(sn_credit_weight(0, 0), SN_CREDIT_FRESH_WEIGHT);
    CU_ASSERT_EQUAL(sn_credit_weight(SN_CREDIT_ESTABLISH_BYTES, 0), 1000);
    CU_ASSERT_EQUAL(sn_credit_weight(0, SN_CREDIT_ESTABLISH_S), 1000);
    CU_ASSERT_EQUAL(sn_credit_weight(UINT64_MAX, UINT64_MAX), 1000);
    uint16_t half = sn_credit_weight(SN_CREDIT_ESTABLISH_BYTES / 2, 0);
    CU_ASSERT(half > 550 && half < 570); /* 125 + 875 / 2 */
    CU_ASSERT_EQUAL(sn_credit_weight(0, SN_CREDIT_ESTABLISH_S / 2),
                    sn_credit_weight(SN_CREDIT_ESTABLISH_BYTES / 2, 0));
    /* Whichever is further along counts. */
    CU_ASSERT_EQUAL(sn_credit_weight(SN_CREDIT_ESTABLISH_BYTES / 4, SN_CREDIT_ESTABLISH_S / 2),
                    half);
    CU_ASSERT_EQUAL(sn_credit_add(0, 1000, 125, 1000000), 125);
    CU_ASSERT_EQUAL(sn_credit_add(0, 8 * MIB, 125, 1 * MIB), 1 * MIB);
    CU_ASSERT_EQUAL(sn_credit_add(MIB, 1, 1000, MIB), MIB);
    CU_ASSERT_EQUAL(sn_credit_add(5, UINT64_MAX, 1000, UINT64_MAX), UINT64_MAX); /* no overflow */
    CU_ASSERT_EQUAL(sn_credit_uptime(3600), SN_CREDIT_UPTIME_PER_HOUR);
    CU_ASSERT_EQUAL(sn_credit_uptime(UINT64_MAX), sn_credit_uptime(SN_CREDIT_UPTIME_MAX_S));
}

static void test_relay_shares(void)
{
    uint64_t credits[3] = {0, 300, 700}, out[3];
    sn_credit_relay_shares(credits, 3, 1000000, 30, out);
    /* 300000 in equal floors of 100000; 700000 by credit. */
    CU_ASSERT_EQUAL(out[0], 100000);
    CU_ASSERT_EQUAL(out[1], 100000 + 210000);
    CU_ASSERT_EQUAL(out[2], 100000 + 490000);
    uint64_t none[2] = {0, 0};
    sn_credit_relay_shares(none, 2, 1000, 10, out);
    CU_ASSERT_EQUAL(out[0], 500);
    CU_ASSERT_EQUAL(out[1], 500);
    uint64_t huge[2] = {UINT64_MAX, UINT64_MAX};
    sn_credit_relay_shares(huge, 2, UINT64_MAX / 2, 0, out);
    CU_ASSERT(out[0] + out[1] <= UINT64_MAX / 2);
}

static void test_receipts_count_once(void)
{
    struct sn_ledger *l = new_ledger(100, SN_CREDIT_CAP_DEFAULT);
    struct msg_receipt r1 = receipt(D, S, 4 * MIB, 10, NOW);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &r1, 1000, 3, NOW), RECEIPT_OK);
    struct msg_credit_record s = get(l, S), d = get(l, D);
    CU_ASSERT_EQUAL(s.found, 1);
    CU_ASSERT_EQUAL(s.uploaded, 4 * MIB);
    CU_ASSERT_EQUAL(s.credit, 4 * MIB);
    CU_ASSERT_EQUAL(d.downloaded, 4 * MIB);
    CU_ASSERT_EQUAL(d.credit, 0);
    /* The same receipt again, and an older one: replays, nothing changes. */
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &r1, 1000, 3, NOW), RECEIPT_REPLAYED);
    struct msg_receipt old = receipt(D, S, MIB, 9, NOW);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &old, 1000, 3, NOW), RECEIPT_REPLAYED);
    CU_ASSERT_EQUAL(get(l, S).uploaded, 4 * MIB);
    CU_ASSERT_EQUAL(get(l, D).downloaded, 4 * MIB);
    /* A later one counts. */
    struct msg_receipt r2 = receipt(D, S, MIB, 11, NOW + 1);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &r2, 1000, 3, NOW + 1), RECEIPT_OK);
    CU_ASSERT_EQUAL(get(l, S).uploaded, 5 * MIB);
    /* Stale: a week old, or an hour ahead; paying oneself. */
    struct msg_receipt stale = receipt(D, S, MIB, 12, NOW - SN_LEDGER_MAX_AGE_S - 1);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &stale, 1000, 3, NOW), RECEIPT_STALE);
    struct msg_receipt ahead = receipt(D, S, MIB, 13, NOW + 2 * 3600);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &ahead, 1000, 3, NOW), RECEIPT_STALE);
    struct msg_receipt self = receipt(S, S, MIB, 14, NOW);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &self, 1000, 3, NOW), RECEIPT_MISDIRECTED);
    struct sn_ledger_stats st;
    sn_ledger_stats(l, &st);
    CU_ASSERT_EQUAL(st.records, 2);
    CU_ASSERT_EQUAL(st.rejected[RECEIPT_REPLAYED], 2);
    CU_ASSERT_EQUAL(st.rejected[RECEIPT_STALE], 2);
    CU_ASSERT_EQUAL(st.applied, 4); /* two receipts, two sides each */
    /* One side only: the holder of just the downloader's record. */
    struct msg_receipt r3 = receipt(D, S, MIB, 20, NOW);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &r3, 1000, MSG_LEDGER_SIDE_DOWNLOADER, NOW), RECEIPT_OK);
    CU_ASSERT_EQUAL(get(l, S).uploaded, 5 * MIB);
    CU_ASSERT_EQUAL(get(l, D).downloaded, 6 * MIB);
    sn_ledger_free(l);
}

static void test_cap_and_weight(void)
{
    struct sn_ledger *l = new_ledger(100, 10 * MIB);
    /* A fresh downloader: 1/8 of its bytes. */
    struct msg_receipt r = receipt(D, S, 8 * MIB, 1, NOW);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &r, sn_credit_weight(0, 0), 3, NOW), RECEIPT_OK);
    CU_ASSERT_EQUAL(get(l, S).credit, MIB);
    /* However much more D signs for, S earns at most the cap from D ... */
    for (uint64_t seq = 2; seq < 50; seq++) {
        r = receipt(D, S, 8 * MIB, seq, NOW);
        sn_ledger_apply(l, &r, 1000, 3, NOW);
    }
    CU_ASSERT_EQUAL(get(l, S).credit, 10 * MIB);
    CU_ASSERT_EQUAL(get(l, S).uploaded, 49 * 8 * MIB); /* bytes are still counted */
    /* ... while another downloader still counts. */
    r = receipt(E, S, MIB, 1, NOW);
    sn_ledger_apply(l, &r, 1000, 3, NOW);
    CU_ASSERT_EQUAL(get(l, S).credit, 11 * MIB);
    /* Uptime: observed sessions, each only ever raised. */
    sn_ledger_uptime(l, S, SN1, 1000, 1800);
    sn_ledger_uptime(l, S, SN1, 1000, 3600);
    sn_ledger_uptime(l, S, SN1, 1000, 600); /* a late, smaller report */
    CU_ASSERT_EQUAL(get(l, S).uptime_s, 3600);
    CU_ASSERT_EQUAL(get(l, S).credit, 11 * MIB + SN_CREDIT_UPTIME_PER_HOUR);
    sn_ledger_uptime(l, S, SN1, 2000, 60); /* another session */
    CU_ASSERT_EQUAL(get(l, S).uptime_s, 3660);
    sn_ledger_free(l);
}

/* Two replicas see the receipts in different subsets; merging either way
 * gives the same totals, and merging twice changes nothing. */
static void test_merge(void)
{
    struct sn_ledger *a = new_ledger(100, SN_CREDIT_CAP_DEFAULT),
                     *b = new_ledger(100, SN_CREDIT_CAP_DEFAULT);
    struct msg_receipt r1 = receipt(D, S, MIB, 1, NOW), r2 = receipt(D, S, 2 * MIB, 2, NOW),
                       r3 = receipt(E, S, 3 * MIB, 1, NOW);
    sn_ledger_apply(a, &r1, 1000, 3, NOW);
    sn_ledger_apply(a, &r2, 1000, 3, NOW);
    sn_ledger_apply(b, &r1, 1000, 3, NOW); /* b missed r2 */
    sn_ledger_apply(b, &r3, 1000, 3, NOW); /* a missed r3 */
    sn_ledger_uptime(a, S, SN1, 5, 100);
    struct msg_ledger_put p;
    CU_ASSERT_FATAL(sn_ledger_export(a, S, &p));
    sn_ledger_merge(b, &p);
    CU_ASSERT_FATAL(sn_ledger_export(b, S, &p));
    sn_ledger_merge(a, &p);
    sn_ledger_merge(a, &p);
    struct msg_credit_record x = get(a, S), y = get(b, S);
    CU_ASSERT_EQUAL(x.uploaded, 6 * MIB);
    CU_ASSERT_EQUAL(y.uploaded, 6 * MIB);
    CU_ASSERT_EQUAL(x.credit, y.credit);
    CU_ASSERT_EQUAL(x.uptime_s, 100);
    CU_ASSERT_EQUAL(y.uptime_s, 100);
    /* After the merge a replay is a replay on both. */
    CU_ASSERT_EQUAL(sn_ledger_apply(b, &r2, 1000, 3, NOW), RECEIPT_REPLAYED);
    /* The export goes over the wire and merges into an empty ledger. */
    struct msg m = {.type = MSG_LEDGER_PUT}, got;
    CU_ASSERT_FATAL(sn_ledger_export(a, S, &m.u.ledger_put));
    struct wire_limits lim = wire_limits_default();
    struct wire_buf out;
    wire_buf_init(&out);
    CU_ASSERT_EQUAL_FATAL(msg_encode(&m, &lim, &out, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(msg_decode(MSG_LEDGER_PUT, out.data + WIRE_FRAME_HDR_SIZE,
                                     out.len - WIRE_FRAME_HDR_SIZE, &lim, &got, NULL),
                          0);
    struct sn_ledger *c = new_ledger(100, SN_CREDIT_CAP_DEFAULT);
    sn_ledger_merge(c, &got.u.ledger_put);
    CU_ASSERT_EQUAL(get(c, S).credit, x.credit);
    msg_clear(&got);
    wire_buf_free(&out);
    sn_ledger_remove(a, S);
    CU_ASSERT_EQUAL(get(a, S).found, 0);
    CU_ASSERT_EQUAL(get(a, D).found, 1);
    sn_ledger_free(a);
    sn_ledger_free(b);
    sn_ledger_free(c);
}

/* Bounds: records beyond max_records are dropped; a record with more
 * counterparties than it keeps folds the oldest, and the folded
 * counterparty's old receipts cannot be counted again. */
static void test_bounds(void)
{
    struct sn_ledger *l = new_ledger(3, SN_CREDIT_CAP_DEFAULT);
    uint8_t ids[5][WIRE_ID_LEN] = {{1}, {2}, {3}, {4}, {5}};
    struct msg_receipt r = receipt(ids[0], ids[1], MIB, 1, NOW);
    sn_ledger_apply(l, &r, 1000, 3, NOW);
    r = receipt(ids[2], ids[3], MIB, 1, NOW); /* the 4th record does not fit */
    sn_ledger_apply(l, &r, 1000, 3, NOW);
    struct sn_ledger_stats st;
    sn_ledger_stats(l, &st);
    CU_ASSERT_EQUAL(st.records, 3);
    CU_ASSERT_EQUAL(st.dropped_full, 1);
    sn_ledger_free(l);

    l = new_ledger(1000, SN_CREDIT_CAP_DEFAULT);
    uint8_t down[WIRE_ID_LEN] = {0};
    for (unsigned i = 0; i <= MSG_MAX_LEDGER_ENTRIES; i++) {
        down[0] = (uint8_t)i;
        down[1] = (uint8_t)(i >> 8) | 0x80;
        r = receipt(down, S, MIB, 7, NOW - 1000 + i); /* the first is the oldest */
        CU_ASSERT_EQUAL(sn_ledger_apply(l, &r, 1000, MSG_LEDGER_SIDE_SOURCE, NOW), RECEIPT_OK);
    }
    struct msg_credit_record c = get(l, S);
    CU_ASSERT_EQUAL(c.uploaded, (MSG_MAX_LEDGER_ENTRIES + 1) * (uint64_t)MIB);
    struct msg_ledger_put p;
    CU_ASSERT_FATAL(sn_ledger_export(l, S, &p));
    CU_ASSERT_EQUAL(p.n_uploads, MSG_MAX_LEDGER_ENTRIES);
    CU_ASSERT_EQUAL(p.base_uploaded, MIB);
    CU_ASSERT_EQUAL(p.horizon_s, NOW - 1000);
    /* The folded downloader's receipt from before the horizon: stale. */
    down[0] = 0;
    down[1] = 0x80;
    r = receipt(down, S, MIB, 8, NOW - 1000);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &r, 1000, MSG_LEDGER_SIDE_SOURCE, NOW), RECEIPT_STALE);
    r = receipt(down, S, MIB, 9, NOW);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &r, 1000, MSG_LEDGER_SIDE_SOURCE, NOW), RECEIPT_OK);
    /* Sessions: at most MSG_MAX_LEDGER_SESSIONS kept, the rest folded. */
    for (uint64_t s = 1; s <= 20; s++)
        sn_ledger_uptime(l, S, SN1, s, 10);
    CU_ASSERT_EQUAL(get(l, S).uptime_s, 200);
    sn_ledger_uptime(l, S, SN1, 1, 1000); /* a folded session: ignored */
    CU_ASSERT_EQUAL(get(l, S).uptime_s, 200);
    sn_ledger_free(l);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("sn_ledger", NULL, NULL);
    if (!s)
        return -1;
    CU_add_test(s, "weight of a fresh identity, caps, uptime credit", test_weight_and_caps);
    CU_add_test(s, "relay bandwidth shared by credit with a floor", test_relay_shares);
    CU_add_test(s, "receipts count once; replays and stale ones are refused",
                test_receipts_count_once);
    CU_add_test(s, "credit from one downloader is capped; uptime", test_cap_and_weight);
    CU_add_test(s, "replicas merge to the same record", test_merge);
    CU_add_test(s, "the store stays within its bounds", test_bounds);
    return CU_get_error() == CUE_SUCCESS ? 0 : -1;
}
