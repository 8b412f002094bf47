/* test_sn_ledger.c - the credit arithmetic (supernode/credit/sn_credit.h)
 * and the ledger (supernode/credit/sn_ledger.h): receipts count once,
 * replays, stale receipts and those whose bytes exceed the size their
 * file ID commits to are refused and counted, no
 * number wraps whatever receipts and merges say, records merge between
 * replicas whatever the order, changed records are remembered for the
 * disk, and the ledger stays within its bounds. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "fileid.h"
#include "sn_credit.h"
#include "sn_ledger.h"

#define NOW 1700000000u
#define MIB (1024u * 1024)

static const uint8_t S[WIRE_ID_LEN] = {0x53}, D[WIRE_ID_LEN] = {0x44}, E[WIRE_ID_LEN] = {0x45},
                     SN1[WIRE_ID_LEN] = {0xA1};

static struct sn_ledger *new_ledger(size_t max_records)
{
    struct sn_ledger_config cfg = {.max_records = max_records, .track_dirty = true};
    return sn_ledger_new(&cfg);
}

/* Receipts here are taken as verified: the ledger never checks signatures,
 * but it checks the size (receipt_check_size()). A receipt of `bytes` of a
 * file of file_size bytes whose ID commits to id_size. */
static struct msg_receipt receipt_of(const uint8_t *down, const uint8_t *src, uint64_t bytes,
                                     uint64_t seq, uint64_t time_s, uint64_t file_size,
                                     uint64_t id_size)
{
    struct msg_receipt r;
    memset(&r, 0, sizeof(r));
    memcpy(r.downloader_id, down, WIRE_ID_LEN);
    memcpy(r.source_id, src, WIRE_ID_LEN);
    r.bytes = bytes;
    r.seq = seq;
    r.time_s = time_s;
    r.file_size = file_size;
    memset(r.root, 0x73, sizeof(r.root));
    fileid_make(id_size, r.root, r.file_id);
    return r;
}

/* A receipt of a whole file of `bytes` bytes. */
static struct msg_receipt receipt(const uint8_t *down, const uint8_t *src, uint64_t bytes,
                                  uint64_t seq, uint64_t time_s)
{
    return receipt_of(down, src, bytes, seq, time_s, bytes, bytes);
}

static struct msg_credit_record get(struct sn_ledger *l, const uint8_t *id)
{
    struct msg_credit_record c;
    sn_ledger_get(l, id, &c);
    return c;
}

static void test_saturating(void)
{
    CU_ASSERT_EQUAL(sn_sat_add(1, 2), 3);
    CU_ASSERT_EQUAL(sn_sat_add(UINT64_MAX - 1, 1), UINT64_MAX);
    CU_ASSERT_EQUAL(sn_sat_add(UINT64_MAX, UINT64_MAX), UINT64_MAX);
    CU_ASSERT_EQUAL(sn_sat_add(1ull << 63, 1ull << 63), UINT64_MAX); /* two sums of 2^63 */
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
    struct sn_ledger *l = new_ledger(100);
    struct msg_receipt r1 = receipt(D, S, 4 * MIB, 10, NOW);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &r1, 3, NOW), RECEIPT_OK);
    struct msg_credit_record s = get(l, S), d = get(l, D);
    CU_ASSERT_EQUAL(s.found, 1);
    CU_ASSERT_EQUAL(s.uploaded, 4 * MIB);
    CU_ASSERT_EQUAL(s.credit, 0); /* the ledger keeps bytes; credit has an evaluator */
    CU_ASSERT_EQUAL(d.downloaded, 4 * MIB);
    /* The same receipt again, and an older one: replays, nothing changes. */
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &r1, 3, NOW), RECEIPT_REPLAYED);
    struct msg_receipt old = receipt(D, S, MIB, 9, NOW);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &old, 3, NOW), RECEIPT_REPLAYED);
    CU_ASSERT_EQUAL(get(l, S).uploaded, 4 * MIB);
    CU_ASSERT_EQUAL(get(l, D).downloaded, 4 * MIB);
    /* A later one counts. */
    struct msg_receipt r2 = receipt(D, S, MIB, 11, NOW + 1);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &r2, 3, NOW + 1), RECEIPT_OK);
    CU_ASSERT_EQUAL(get(l, S).uploaded, 5 * MIB);
    /* Stale: a week old, or an hour ahead; paying oneself. */
    struct msg_receipt stale = receipt(D, S, MIB, 12, NOW - SN_LEDGER_MAX_AGE_S - 1);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &stale, 3, NOW), RECEIPT_STALE);
    struct msg_receipt ahead = receipt(D, S, MIB, 13, NOW + 2 * 3600);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &ahead, 3, NOW), RECEIPT_STALE);
    struct msg_receipt self = receipt(S, S, MIB, 14, NOW);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &self, 3, NOW), RECEIPT_MISDIRECTED);
    struct sn_ledger_stats st;
    sn_ledger_stats(l, &st);
    CU_ASSERT_EQUAL(st.records, 2);
    CU_ASSERT_EQUAL(st.rejected[RECEIPT_REPLAYED], 2);
    CU_ASSERT_EQUAL(st.rejected[RECEIPT_STALE], 2);
    CU_ASSERT_EQUAL(st.applied, 4); /* two receipts, two sides each */
    /* One side only: the holder of just the downloader's record. */
    struct msg_receipt r3 = receipt(D, S, MIB, 20, NOW);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &r3, MSG_LEDGER_SIDE_DOWNLOADER, NOW), RECEIPT_OK);
    CU_ASSERT_EQUAL(get(l, S).uploaded, 5 * MIB);
    CU_ASSERT_EQUAL(get(l, D).downloaded, 6 * MIB);
    sn_ledger_free(l);
}

/* A receipt says any number: none wraps, one whose bytes exceed the size
 * its file ID commits to is refused (so none of more than 2^62 bytes,
 * FILEID_MAX_SIZE), and merges from other holders cannot wrap a sum
 * either. */
static void test_no_wrap(void)
{
    struct sn_ledger *l = new_ledger(100);
    struct msg_receipt huge = receipt(D, S, 1ull << 63, 1, NOW); /* no ID commits to 2^63 */
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &huge, 3, NOW), RECEIPT_BAD_SIZE);
    huge = receipt(D, S, UINT64_MAX, 2, NOW);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &huge, 3, NOW), RECEIPT_BAD_SIZE);
    /* 1 TiB of a 4 MiB file, signed as such. */
    struct msg_receipt over = receipt_of(D, S, 1ull << 40, 3, NOW, 4 * MIB, 4 * MIB);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &over, 3, NOW), RECEIPT_BAD_SIZE);
    /* 1 MiB of a file said to be 1 TiB whose ID commits to 4 MiB. */
    struct msg_receipt lie = receipt_of(D, S, MIB, 4, NOW, 1ull << 40, 4 * MIB);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &lie, 3, NOW), RECEIPT_BAD_SIZE);
    CU_ASSERT_EQUAL(get(l, S).found, 0);
    CU_ASSERT_EQUAL(get(l, D).found, 0);
    /* The whole of the largest file there can be, twice, and a TiB:
     * summed; twice more: saturating at the top, never wrapping. */
    struct msg_receipt big = receipt(D, S, FILEID_MAX_SIZE, 5, NOW);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &big, 3, NOW), RECEIPT_OK);
    big = receipt(D, S, FILEID_MAX_SIZE, 6, NOW);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &big, 3, NOW), RECEIPT_OK);
    struct msg_receipt tib = receipt(E, S, 1ull << 40, 1, NOW);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &tib, 3, NOW), RECEIPT_OK);
    CU_ASSERT_EQUAL(get(l, S).uploaded, 2 * FILEID_MAX_SIZE + (1ull << 40));
    for (uint64_t seq = 7; seq <= 8; seq++) {
        big = receipt(D, S, FILEID_MAX_SIZE, seq, NOW);
        CU_ASSERT_EQUAL(sn_ledger_apply(l, &big, 3, NOW), RECEIPT_OK);
    }
    CU_ASSERT_EQUAL(get(l, S).uploaded, UINT64_MAX);
    CU_ASSERT_EQUAL(get(l, D).downloaded, UINT64_MAX);
    /* A holder's copy with entries near the top of a u64: the totals stop there. */
    struct msg_ledger_entry up[2] = {{.last_seq = 9, .last_time = NOW, .bytes = UINT64_MAX - 5},
                                     {.last_seq = 9, .last_time = NOW, .bytes = UINT64_MAX}};
    memcpy(up[0].peer_id, D, WIRE_ID_LEN);
    memcpy(up[1].peer_id, SN1, WIRE_ID_LEN);
    struct msg_ledger_session sess = {.start_ms = 1, .seconds = UINT64_MAX};
    struct msg_ledger_put p = {.base_uploaded = UINT64_MAX,
                               .base_uptime_s = UINT64_MAX,
                               .uploads = up,
                               .n_uploads = 2,
                               .sessions = &sess,
                               .n_sessions = 1};
    memcpy(p.peer_id, S, WIRE_ID_LEN);
    sn_ledger_merge(l, &p);
    struct msg_credit_record c = get(l, S);
    CU_ASSERT_EQUAL(c.uploaded, UINT64_MAX);
    CU_ASSERT_EQUAL(c.uptime_s, UINT64_MAX);
    /* More on top of a full entry: still the top, never a small number. */
    big = receipt(D, S, MIB, 10, NOW);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &big, 3, NOW), RECEIPT_OK);
    struct msg_ledger_put x;
    CU_ASSERT_FATAL(sn_ledger_export(l, S, &x));
    for (size_t i = 0; i < x.n_uploads; i++)
        if (memcmp(x.uploads[i].peer_id, D, WIRE_ID_LEN) == 0)
            CU_ASSERT_EQUAL(x.uploads[i].bytes, UINT64_MAX);
    CU_ASSERT_EQUAL(get(l, S).uploaded, UINT64_MAX);
    /* A receipt dated at the top of time is stale, not a wrapped "now". */
    struct msg_receipt late = receipt(D, S, MIB, 11, UINT64_MAX);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &late, 3, NOW), RECEIPT_STALE);
    struct sn_ledger_stats st;
    sn_ledger_stats(l, &st);
    CU_ASSERT_EQUAL(st.rejected[RECEIPT_BAD_SIZE], 4);
    sn_ledger_free(l);
}

/* Uptime: observed sessions, each only ever raised. */
static void test_uptime(void)
{
    struct sn_ledger *l = new_ledger(100);
    sn_ledger_uptime(l, S, SN1, 1000, 1800);
    sn_ledger_uptime(l, S, SN1, 1000, 3600);
    sn_ledger_uptime(l, S, SN1, 1000, 600); /* a late, smaller report */
    CU_ASSERT_EQUAL(get(l, S).uptime_s, 3600);
    sn_ledger_uptime(l, S, SN1, 2000, 60); /* another session */
    CU_ASSERT_EQUAL(get(l, S).uptime_s, 3660);
    sn_ledger_free(l);
}

/* What changed is remembered for the disk, once; what went too. */
static void test_dirty(void)
{
    struct sn_ledger *l = new_ledger(100);
    uint8_t ids[8][WIRE_ID_LEN];
    CU_ASSERT_EQUAL(sn_ledger_take_dirty(l, ids, 8), 0);
    struct msg_receipt r = receipt(D, S, MIB, 1, NOW);
    sn_ledger_apply(l, &r, 3, NOW);
    r = receipt(D, S, MIB, 2, NOW);
    sn_ledger_apply(l, &r, 3, NOW);
    CU_ASSERT_EQUAL(sn_ledger_dirty_count(l), 2); /* S and D, once each */
    CU_ASSERT_EQUAL(sn_ledger_take_dirty(l, ids, 8), 2);
    CU_ASSERT_EQUAL(sn_ledger_take_dirty(l, ids, 8), 0);
    sn_ledger_apply(l, &r, 3, NOW); /* a replay changes nothing */
    sn_ledger_uptime(l, S, SN1, 5, 10);
    sn_ledger_uptime(l, S, SN1, 5, 9); /* nor does a smaller report */
    CU_ASSERT_EQUAL(sn_ledger_take_dirty(l, ids, 8), 1);
    CU_ASSERT_EQUAL(memcmp(ids[0], S, WIRE_ID_LEN), 0);
    struct msg_ledger_put p;
    CU_ASSERT_FATAL(sn_ledger_export(l, S, &p));
    sn_ledger_merge(l, &p); /* merging what it has: no change */
    CU_ASSERT_EQUAL(sn_ledger_dirty_count(l), 0);
    sn_ledger_remove(l, D);
    CU_ASSERT_EQUAL(sn_ledger_take_dirty(l, ids, 8), 1);
    CU_ASSERT_EQUAL(memcmp(ids[0], D, WIRE_ID_LEN), 0);
    CU_ASSERT_FALSE(sn_ledger_has(l, D));
    sn_ledger_touch(l, D); /* a failed write: again */
    CU_ASSERT_EQUAL(sn_ledger_dirty_count(l), 1);
    sn_ledger_clear(l);
    CU_ASSERT_EQUAL(sn_ledger_dirty_count(l), 0);
    CU_ASSERT_FALSE(sn_ledger_has(l, S));
    sn_ledger_free(l);
}

/* Two replicas see the receipts in different subsets; merging either way
 * gives the same totals, and merging twice changes nothing. */
static void test_merge(void)
{
    struct sn_ledger *a = new_ledger(100), *b = new_ledger(100);
    struct msg_receipt r1 = receipt(D, S, MIB, 1, NOW), r2 = receipt(D, S, 2 * MIB, 2, NOW),
                       r3 = receipt(E, S, 3 * MIB, 1, NOW);
    sn_ledger_apply(a, &r1, 3, NOW);
    sn_ledger_apply(a, &r2, 3, NOW);
    sn_ledger_apply(b, &r1, 3, NOW); /* b missed r2 */
    sn_ledger_apply(b, &r3, 3, NOW); /* a missed r3 */
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
    CU_ASSERT_EQUAL(x.uptime_s, 100);
    CU_ASSERT_EQUAL(y.uptime_s, 100);
    /* After the merge a replay is a replay on both. */
    CU_ASSERT_EQUAL(sn_ledger_apply(b, &r2, 3, NOW), RECEIPT_REPLAYED);
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
    struct sn_ledger *c = new_ledger(100);
    sn_ledger_merge(c, &got.u.ledger_put);
    CU_ASSERT_EQUAL(get(c, S).uploaded, x.uploaded);
    CU_ASSERT_EQUAL(get(c, S).uptime_s, x.uptime_s);
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
    struct sn_ledger *l = new_ledger(3);
    uint8_t ids[5][WIRE_ID_LEN] = {{1}, {2}, {3}, {4}, {5}};
    struct msg_receipt r = receipt(ids[0], ids[1], MIB, 1, NOW);
    sn_ledger_apply(l, &r, 3, NOW);
    r = receipt(ids[2], ids[3], MIB, 1, NOW); /* the 4th record does not fit */
    sn_ledger_apply(l, &r, 3, NOW);
    struct sn_ledger_stats st;
    sn_ledger_stats(l, &st);
    CU_ASSERT_EQUAL(st.records, 3);
    CU_ASSERT_EQUAL(st.dropped_full, 1);
    sn_ledger_free(l);

    l = new_ledger(1000);
    uint8_t down[WIRE_ID_LEN] = {0};
    for (unsigned i = 0; i <= MSG_MAX_LEDGER_ENTRIES; i++) {
        down[0] = (uint8_t)i;
        down[1] = (uint8_t)(i >> 8) | 0x80;
        r = receipt(down, S, MIB, 7, NOW - 1000 + i); /* the first is the oldest */
        CU_ASSERT_EQUAL(sn_ledger_apply(l, &r, MSG_LEDGER_SIDE_SOURCE, NOW), RECEIPT_OK);
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
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &r, MSG_LEDGER_SIDE_SOURCE, NOW), RECEIPT_STALE);
    r = receipt(down, S, MIB, 9, NOW);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &r, MSG_LEDGER_SIDE_SOURCE, NOW), RECEIPT_OK);
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
    CU_add_test(s, "saturating sums, uptime standing", test_saturating);
    CU_add_test(s, "relay bandwidth shared by credit with a floor", test_relay_shares);
    CU_add_test(s, "receipts count once; replays and stale ones are refused",
                test_receipts_count_once);
    CU_add_test(s, "no receipt or merge wraps a number; beyond a file ID is refused", test_no_wrap);
    CU_add_test(s, "uptime: sessions only ever raised", test_uptime);
    CU_add_test(s, "changed and removed records are remembered for the disk", test_dirty);
    CU_add_test(s, "replicas merge to the same record", test_merge);
    CU_add_test(s, "the store stays within its bounds", test_bounds);
    return CU_get_error() == CUE_SUCCESS ? 0 : -1;
}
