/* test_sn_ledger_store.c - the credit records on disk
 * (supernode/credit/sn_ledger_store.h), real SQLite in a temporary folder:
 * what was flushed reads back the same (numbers at the top of a u64
 * too), records that went are deleted, the batch bound holds, a file of
 * another schema version is refused, and the checkpoint thread folds the
 * WAL. */
/* tsan: yes */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileid.h"
#include "sn_ledger.h"
#include "sn_ledger_store.h"

#define NOW 1700000000u
#define MIB (1024ull * 1024)

static char dir[64];

static int setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/sova-ledger-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void)
{
    char path[128];
    const char *files[] = {"ledger.sqlite3", "ledger.sqlite3-wal", "ledger.sqlite3-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    return rmdir(dir);
}

static void remove_files(void)
{
    teardown();
    mkdir(dir, 0700);
}

static void id_of(uint8_t out[WIRE_ID_LEN], unsigned n)
{
    memset(out, 0x3C, WIRE_ID_LEN);
    out[0] = (uint8_t)n;
    out[1] = (uint8_t)(n >> 8);
}

static struct sn_ledger *ledger(void)
{
    struct sn_ledger_config cfg = {.max_records = 100000, .track_dirty = true};
    return sn_ledger_new(&cfg);
}

static void give_at(struct sn_ledger *l, unsigned src, unsigned down, uint64_t bytes, uint64_t seq,
                    uint64_t time_s)
{
    struct msg_receipt r;
    memset(&r, 0, sizeof(r));
    id_of(r.source_id, src);
    id_of(r.downloader_id, down);
    r.bytes = bytes;
    r.seq = seq;
    r.time_s = time_s;
    /* The whole of a made-up file of `bytes` bytes: the ledger checks that
     * the ID commits to that size (receipt_check_size()). */
    r.file_size = bytes;
    memset(r.root, 0x73, sizeof(r.root));
    fileid_make(bytes, r.root, r.file_id);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &r, 3, NOW), RECEIPT_OK);
}

static void give(struct sn_ledger *l, unsigned src, unsigned down, uint64_t bytes, uint64_t seq)
{
    give_at(l, src, down, bytes, seq, NOW);
}

/* Two ledgers hold the same records (each export of one equals the other's). */
static void assert_same(struct sn_ledger *a, struct sn_ledger *b)
{
    struct sn_ledger_stats sa, sb;
    sn_ledger_stats(a, &sa);
    sn_ledger_stats(b, &sb);
    CU_ASSERT_EQUAL(sa.records, sb.records);
    CU_ASSERT_EQUAL(sa.entries, sb.entries);
    size_t n = 0;
    uint8_t(*keys)[WIRE_ID_LEN] = sn_ledger_keys(a, &n);
    for (size_t i = 0; i < n; i++) {
        struct msg_ledger_put x, y;
        CU_ASSERT_FATAL(sn_ledger_export(a, keys[i], &x));
        CU_ASSERT_FATAL(sn_ledger_export(b, keys[i], &y));
        CU_ASSERT_EQUAL(x.base_uploaded, y.base_uploaded);
        CU_ASSERT_EQUAL(x.base_uptime_s, y.base_uptime_s);
        CU_ASSERT_EQUAL(x.horizon_s, y.horizon_s);
        CU_ASSERT_EQUAL(x.session_horizon_ms, y.session_horizon_ms);
        CU_ASSERT_EQUAL(x.n_uploads, y.n_uploads);
        CU_ASSERT_EQUAL(x.n_downloads, y.n_downloads);
        CU_ASSERT_EQUAL(x.n_sessions, y.n_sessions);
        for (size_t k = 0; k < x.n_uploads; k++) {
            bool found = false;
            for (size_t j = 0; j < y.n_uploads; j++)
                found |= memcmp(&x.uploads[k], &y.uploads[j], sizeof(x.uploads[k])) == 0;
            CU_ASSERT(found);
        }
        struct msg_credit_record cx, cy;
        sn_ledger_get(a, keys[i], &cx);
        sn_ledger_get(b, keys[i], &cy);
        CU_ASSERT_EQUAL(cx.uploaded, cy.uploaded);
        CU_ASSERT_EQUAL(cx.downloaded, cy.downloaded);
        CU_ASSERT_EQUAL(cx.uptime_s, cy.uptime_s);
    }
    free(keys);
}

static void flush_all(struct sn_ledger_store *s, struct sn_ledger *l)
{
    size_t left = 1;
    while (left > 0)
        CU_ASSERT_EQUAL_FATAL(sn_ledger_store_flush(s, l, SN_LEDGER_STORE_BATCH, &left), 0);
}

static void test_round_trip(void)
{
    remove_files();
    char err[256];
    struct sn_ledger_store *s = NULL;
    CU_ASSERT_EQUAL_FATAL(sn_ledger_store_open(dir, &s, err, sizeof(err)), 0);
    struct sn_ledger *l = ledger();
    size_t n = 1;
    CU_ASSERT_EQUAL(sn_ledger_store_load(s, l, &n, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(n, 0);
    /* 1200 records (more than two batches), one with 200 downloaders
     * (folded past 128), sessions, and numbers at the top of a u64. */
    for (unsigned i = 0; i < 600; i++)
        give(l, 1 + i, 5000 + i, (i + 1) * MIB, 1);
    for (unsigned i = 0; i < 200; i++) /* later receipts each: the oldest fold */
        give_at(l, 9999, 20000 + i, MIB, 2, NOW - 1000 + i);
    sn_ledger_uptime(l, (uint8_t[WIRE_ID_LEN]){1}, (uint8_t[WIRE_ID_LEN]){0xAA}, 5, 77);
    uint8_t top[WIRE_ID_LEN];
    id_of(top, 42);
    struct msg_ledger_entry e = {.last_seq = UINT64_MAX, .last_time = NOW, .bytes = UINT64_MAX};
    id_of(e.peer_id, 43);
    struct msg_ledger_put p = {.base_uploaded = UINT64_MAX, .uploads = &e, .n_uploads = 1};
    memcpy(p.peer_id, top, WIRE_ID_LEN);
    sn_ledger_merge(l, &p);
    size_t left = 0, changed = sn_ledger_dirty_count(l);
    CU_ASSERT(changed > 2 * SN_LEDGER_STORE_BATCH);
    CU_ASSERT_EQUAL(sn_ledger_store_flush(s, l, SN_LEDGER_STORE_BATCH, &left), 0);
    CU_ASSERT_EQUAL(left, changed - SN_LEDGER_STORE_BATCH); /* one batch written */
    flush_all(s, l);
    CU_ASSERT_EQUAL(sn_ledger_dirty_count(l), 0);
    struct sn_ledger_store_stats st;
    sn_ledger_store_stats(s, &st);
    CU_ASSERT(st.batches >= 3);
    CU_ASSERT_EQUAL(st.errors, 0);
    sn_ledger_store_close(s);

    /* Read back into an empty ledger: the same records. */
    CU_ASSERT_EQUAL_FATAL(sn_ledger_store_open(dir, &s, err, sizeof(err)), 0);
    struct sn_ledger *back = ledger();
    CU_ASSERT_EQUAL(sn_ledger_store_load(s, back, &n, err, sizeof(err)), 0);
    struct sn_ledger_stats ls;
    sn_ledger_stats(l, &ls);
    CU_ASSERT_EQUAL(n, ls.records);
    CU_ASSERT_EQUAL(sn_ledger_dirty_count(back), 0); /* on disk already */
    assert_same(l, back);
    struct msg_credit_record c;
    sn_ledger_get(back, top, &c);
    CU_ASSERT_EQUAL(c.uploaded, UINT64_MAX);

    /* A record that goes is deleted on disk; a changed one rewritten. */
    uint8_t gone[WIRE_ID_LEN];
    id_of(gone, 1);
    sn_ledger_remove(back, gone);
    give(back, 2, 5001, MIB, 7);
    flush_all(s, back);
    sn_ledger_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.records_deleted, 1);
    sn_ledger_store_close(s);
    CU_ASSERT_EQUAL_FATAL(sn_ledger_store_open(dir, &s, err, sizeof(err)), 0);
    struct sn_ledger *again = ledger();
    CU_ASSERT_EQUAL(sn_ledger_store_load(s, again, &n, err, sizeof(err)), 0);
    CU_ASSERT_FALSE(sn_ledger_has(again, gone));
    assert_same(back, again);
    sn_ledger_store_close(s);
    sn_ledger_free(l);
    sn_ledger_free(back);
    sn_ledger_free(again);
}

/* The checkpoint thread folds the WAL into the database every
 * SN_LEDGER_STORE_CHECKPOINT_MS. */
static void test_checkpoint(void)
{
    remove_files();
    char err[256];
    struct sn_ledger_store *s = NULL;
    CU_ASSERT_EQUAL_FATAL(sn_ledger_store_open(dir, &s, err, sizeof(err)), 0);
    struct sn_ledger *l = ledger();
    give(l, 1, 2, MIB, 1);
    flush_all(s, l);
    struct sn_ledger_store_stats st = {0};
    for (int i = 0; i < 150 && st.checkpoints == 0; i++) { /* up to 15 s */
        usleep(100 * 1000);
        sn_ledger_store_stats(s, &st);
    }
    CU_ASSERT(st.checkpoints >= 1);
    sn_ledger_store_close(s);
    sn_ledger_free(l);
}

/* A file written by another schema version is refused, not misread. */
static void test_other_version(void)
{
    remove_files();
    char path[128], err[256];
    snprintf(path, sizeof(path), "%s/ledger.sqlite3", dir);
    sqlite3 *db = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(path, &db), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(db, "PRAGMA user_version = 7", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    struct sn_ledger_store *s = NULL;
    CU_ASSERT_NOT_EQUAL(sn_ledger_store_open(dir, &s, err, sizeof(err)), 0);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "schema version 7"));
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("sn_ledger_store", setup, teardown);
    if (!s)
        return -1;
    CU_add_test(s, "records flushed in batches read back the same; deletions too", test_round_trip);
    CU_add_test(s, "the checkpoint thread folds the WAL", test_checkpoint);
    CU_add_test(s, "a file of another schema version is refused", test_other_version);
    return CU_get_error() == CUE_SUCCESS ? 0 : -1;
}
