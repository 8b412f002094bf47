/* The peer's SQLite state: every call round-trips, survives close/reopen,
 * refuses what it must refuse with a clear message, a second connection
 * (the hashing thread's) works alongside under WAL, and a database written
 * by the schema-1 sova-peer (tests/data/peer-v1.sql) is migrated without
 * reading an old key as a file ID. Real files, real SQLite. */
#include "cunit_main.h"
#include "err.h"
#include "op_store.h"

#include <CUnit/CUnit.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static char db_path[128];

static int suite_init(void)
{
    snprintf(dir, sizeof(dir), "/tmp/sova-store-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(db_path, sizeof(db_path), "%s/%s", dir, OP_STORE_FILENAME);
    return 0;
}

/* Each test starts from no database at all. */
static void remove_db(void)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char p[160];
        snprintf(p, sizeof(p), "%s%s", db_path, suffixes[i]);
        unlink(p);
    }
}

static int suite_clean(void)
{
    remove_db();
    return rmdir(dir);
}

static struct op_store *open_fresh(void)
{
    remove_db();
    struct op_store *st = NULL;
    char err[256];
    int rc = op_store_open(db_path, &st, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "open: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    return st;
}

static struct op_store *reopen(struct op_store *st)
{
    op_store_close(st);
    st = NULL;
    CU_ASSERT_EQUAL_FATAL(op_store_open(db_path, &st, NULL, 0), 0);
    return st;
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 7);
}

/* An integer PRAGMA read with a plain sqlite3 connection. */
static long long pragma_int(const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    long long v = -1;
    if (sqlite3_open(db_path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
    }
    sqlite3_close(db);
    return v;
}

/* ---- open, schema ------------------------------------------------------------- */
static void test_open_creates_versioned_wal_db(void)
{
    struct op_store *st = open_fresh();
    CU_ASSERT_STRING_EQUAL(op_store_errmsg(st), "");
    CU_ASSERT_EQUAL(pragma_int("PRAGMA user_version"), OP_STORE_SCHEMA_VERSION);
    sqlite3 *db;
    sqlite3_stmt *s;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(db_path, &db), SQLITE_OK);
    CU_ASSERT_EQUAL_FATAL(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_step(s), SQLITE_ROW);
    CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
    st = reopen(st); /* an existing, current database opens as is */
    CU_ASSERT_EQUAL(pragma_int("PRAGMA user_version"), OP_STORE_SCHEMA_VERSION);
    op_store_close(st);
}

static void test_newer_schema_is_refused(void)
{
    op_store_close(open_fresh());
    sqlite3 *db;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(db_path, &db), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    struct op_store *st = (struct op_store *)1;
    char err[256] = "";
    CU_ASSERT_EQUAL(op_store_open(db_path, &st, err, sizeof(err)), SOVA_ERR_VERSION);
    CU_ASSERT_PTR_NULL(st);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "newer"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, db_path));
    CU_ASSERT_EQUAL(pragma_int("PRAGMA user_version"), 99); /* left untouched */
}

static void test_not_a_database_is_an_io_error(void)
{
    remove_db();
    FILE *f = fopen(db_path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not an SQLite database. ", f);
    fclose(f);
    struct op_store *st = NULL;
    char err[256] = "";
    CU_ASSERT_EQUAL(op_store_open(db_path, &st, err, sizeof(err)), SOVA_ERR_IO);
    CU_ASSERT_PTR_NULL(st);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a database"));
    remove_db();
}

/* ---- share cache -------------------------------------------------------------- */
#define LH 0      /* the kept layer's height in store tests: the store takes any */
#define CS 16384u /* chunk size at that height, and of the downloads below */

struct share_fixture {
    uint8_t layers[3][3 * OP_STORE_HASH_LEN];
    struct op_store_share rows[3];
};

static void make_shares(struct share_fixture *fx)
{
    memset(fx, 0, sizeof(*fx));
    static const char *const paths[] = {"b/two.bin", "a.txt", "empty"};
    static const uint64_t sizes[] = {2 * CS + 500, CS, 0};
    for (size_t i = 0; i < 3; i++) {
        fill(fx->layers[i], sizeof(fx->layers[i]), (uint8_t)(i + 1));
        struct op_store_share *r = &fx->rows[i];
        memset(r, 0, sizeof(*r));
        r->path = (char *)paths[i];
        r->size = sizes[i];
        r->mtime_ns = 1700000000123456789LL + (int64_t)i;
        r->inode = 1000 + i;
        fill(r->id, OP_STORE_HASH_LEN, (uint8_t)(0x40 + i));
        fill(r->root, OP_STORE_HASH_LEN, (uint8_t)(0x50 + i));
        fill(r->sha256, OP_STORE_HASH_LEN, (uint8_t)(0x60 + i));
        r->layer_height = LH;
        r->n_layer = (uint32_t)((sizes[i] + CS - 1) / CS);
        r->layer = r->n_layer ? fx->layers[i] : NULL;
    }
}

static void assert_share_equal(const struct op_store_share *got, const struct op_store_share *want)
{
    CU_ASSERT_STRING_EQUAL(got->path, want->path);
    CU_ASSERT_EQUAL(got->size, want->size);
    CU_ASSERT_EQUAL(got->mtime_ns, want->mtime_ns);
    CU_ASSERT_EQUAL(got->inode, want->inode);
    CU_ASSERT_EQUAL(memcmp(got->id, want->id, OP_STORE_HASH_LEN), 0);
    CU_ASSERT_EQUAL(memcmp(got->root, want->root, OP_STORE_HASH_LEN), 0);
    CU_ASSERT_EQUAL(memcmp(got->sha256, want->sha256, OP_STORE_HASH_LEN), 0);
    CU_ASSERT_EQUAL(got->layer_height, want->layer_height);
    CU_ASSERT_EQUAL_FATAL(got->n_layer, want->n_layer);
    if (want->n_layer > 0) {
        CU_ASSERT_EQUAL(memcmp(got->layer, want->layer, want->n_layer * OP_STORE_HASH_LEN), 0);
    } else {
        CU_ASSERT_PTR_NULL(got->layer);
    }
    CU_ASSERT_EQUAL(got->racy, want->racy);
}

static void assert_lookup(struct op_store *st, const struct op_store_share *key, bool expect)
{
    struct op_store_share got;
    bool found = !expect;
    CU_ASSERT_EQUAL_FATAL(
        op_store_share_lookup(st, key->path, key->size, key->mtime_ns, key->inode, &got, &found),
        0);
    CU_ASSERT_EQUAL(found, expect);
    if (found) {
        assert_share_equal(&got, key);
        op_store_share_clear(&got);
    }
}

struct collected {
    struct op_store_share rows[8];
    size_t n;
};

static int collect_share(const struct op_store_share *row, void *arg)
{
    struct collected *c = arg;
    if (c->n == 8)
        return SOVA_ERR_INTERNAL;
    struct op_store_share *dst = &c->rows[c->n++];
    *dst = *row;
    dst->path = strdup(row->path);
    dst->layer = NULL;
    if (row->n_layer > 0) {
        dst->layer = malloc(row->n_layer * OP_STORE_HASH_LEN);
        memcpy(dst->layer, row->layer, row->n_layer * OP_STORE_HASH_LEN);
    }
    return 0;
}

static void collected_clear(struct collected *c)
{
    for (size_t i = 0; i < c->n; i++)
        op_store_share_clear(&c->rows[i]);
    c->n = 0;
}

static void test_share_round_trip_and_reopen(void)
{
    struct share_fixture fx;
    make_shares(&fx);
    struct op_store *st = open_fresh();
    CU_ASSERT_EQUAL_FATAL(op_store_share_upsert(st, fx.rows, 3), 0);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < 3; i++)
            assert_lookup(st, &fx.rows[i], true);
        struct collected c = {.n = 0};
        CU_ASSERT_EQUAL(op_store_share_foreach(st, collect_share, &c), 0);
        CU_ASSERT_EQUAL_FATAL(c.n, 3);
        assert_share_equal(&c.rows[0], &fx.rows[1]); /* ordered by path */
        assert_share_equal(&c.rows[1], &fx.rows[0]);
        assert_share_equal(&c.rows[2], &fx.rows[2]);
        collected_clear(&c);
        st = reopen(st);
    }
    op_store_close(st);
}

static void test_share_lookup_needs_the_exact_key(void)
{
    struct share_fixture fx;
    make_shares(&fx);
    struct op_store *st = open_fresh();
    CU_ASSERT_EQUAL_FATAL(op_store_share_upsert(st, fx.rows, 3), 0);
    struct op_store_share key = fx.rows[0];
    key.size++;
    assert_lookup(st, &key, false);
    key = fx.rows[0];
    key.mtime_ns++;
    assert_lookup(st, &key, false);
    key = fx.rows[0];
    key.inode++;
    assert_lookup(st, &key, false);
    key = fx.rows[0];
    key.path = "b/other.bin";
    assert_lookup(st, &key, false);
    /* A racy row is kept but never vouches for the file. */
    fx.rows[0].racy = true;
    CU_ASSERT_EQUAL(op_store_share_upsert(st, fx.rows, 1), 0);
    assert_lookup(st, &fx.rows[0], false);
    struct collected c = {.n = 0};
    CU_ASSERT_EQUAL(op_store_share_foreach(st, collect_share, &c), 0);
    CU_ASSERT_EQUAL(c.n, 3);
    CU_ASSERT_TRUE(c.rows[1].racy);
    collected_clear(&c);
    op_store_close(st);
}

static void test_share_upsert_replaces_and_rejects_bad_rows(void)
{
    struct share_fixture fx;
    make_shares(&fx);
    struct op_store *st = open_fresh();
    CU_ASSERT_EQUAL_FATAL(op_store_share_upsert(st, fx.rows, 3), 0);
    struct op_store_share changed = fx.rows[1]; /* a.txt grows to 2 layer hashes */
    changed.size = CS + 500;
    changed.n_layer = 2;
    changed.layer = fx.layers[0];
    changed.id[0] ^= 0xff;
    CU_ASSERT_EQUAL(op_store_share_upsert(st, &changed, 1), 0);
    assert_lookup(st, &changed, true);
    assert_lookup(st, &fx.rows[1], false);

    struct op_store_share bad = fx.rows[0];
    bad.n_layer = 1; /* 2 * 16 KiB + 500 bytes have 3 hashes at height 0 */
    CU_ASSERT_EQUAL(op_store_share_upsert(st, &bad, 1), SOVA_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(op_store_errmsg(st), "inconsistent"));
    bad = fx.rows[0];
    bad.layer_height = 17; /* past FILEID_MAX_HEIGHT */
    CU_ASSERT_EQUAL(op_store_share_upsert(st, &bad, 1), SOVA_ERR_INVALID);
    /* A bad row rolls back the whole batch. */
    struct op_store_share batch[2] = {fx.rows[0], bad};
    batch[0].path = "new.bin";
    CU_ASSERT_EQUAL(op_store_share_upsert(st, batch, 2), SOVA_ERR_INVALID);
    assert_lookup(st, &batch[0], false);
    op_store_close(st);
}

static void test_share_prune_and_find_by_id(void)
{
    struct share_fixture fx;
    make_shares(&fx);
    struct op_store *st = open_fresh();
    CU_ASSERT_EQUAL_FATAL(op_store_share_upsert(st, fx.rows, 3), 0);

    struct op_store_share got;
    bool found = false;
    CU_ASSERT_EQUAL(op_store_share_find_id(st, fx.rows[0].id, &got, &found), 0);
    CU_ASSERT_TRUE_FATAL(found);
    assert_share_equal(&got, &fx.rows[0]);
    op_store_share_clear(&got);
    CU_ASSERT_EQUAL(op_store_share_find_id(st, fx.rows[0].sha256, &got, &found), 0);
    CU_ASSERT_FALSE(found); /* a SHA-256 is not an ID */
    uint8_t unknown[OP_STORE_HASH_LEN] = {0};
    CU_ASSERT_EQUAL(op_store_share_find_id(st, unknown, &got, &found), 0);
    CU_ASSERT_FALSE(found);

    const char *keep[] = {"a.txt", "empty", "not/in/the/db"};
    uint64_t deleted = 99;
    CU_ASSERT_EQUAL(op_store_share_prune(st, keep, 3, &deleted), 0);
    CU_ASSERT_EQUAL(deleted, 1);
    assert_lookup(st, &fx.rows[0], false);
    assert_lookup(st, &fx.rows[1], true);
    CU_ASSERT_EQUAL(op_store_share_prune(st, keep, 3, &deleted), 0);
    CU_ASSERT_EQUAL(deleted, 0);
    CU_ASSERT_EQUAL(op_store_share_prune(st, NULL, 0, &deleted), 0); /* nothing shared */
    CU_ASSERT_EQUAL(deleted, 2);
    struct collected c = {.n = 0};
    CU_ASSERT_EQUAL(op_store_share_foreach(st, collect_share, &c), 0);
    CU_ASSERT_EQUAL(c.n, 0);
    op_store_close(st);
}

static int stop_at_first(const struct op_store_share *row, void *arg)
{
    (*(int *)arg)++;
    return 42;
}

static void test_share_foreach_stops_on_nonzero(void)
{
    struct share_fixture fx;
    make_shares(&fx);
    struct op_store *st = open_fresh();
    CU_ASSERT_EQUAL_FATAL(op_store_share_upsert(st, fx.rows, 3), 0);
    int calls = 0;
    CU_ASSERT_EQUAL(op_store_share_foreach(st, stop_at_first, &calls), 42);
    CU_ASSERT_EQUAL(calls, 1);
    calls = 0; /* the statement was reset: a second walk starts over */
    CU_ASSERT_EQUAL(op_store_share_foreach(st, stop_at_first, &calls), 42);
    CU_ASSERT_EQUAL(calls, 1);
    op_store_close(st);
}

/* ---- downloads ------------------------------------------------------------------ */
static const uint8_t H1[OP_STORE_HASH_LEN] = {0xd1, 0x01};
static const uint8_t H2[OP_STORE_HASH_LEN] = {0xd2, 0x02};
static const uint8_t P1[OP_STORE_HASH_LEN] = {0xa1};
static const uint8_t P2[OP_STORE_HASH_LEN] = {0xa2};
static const uint8_t ROOT[OP_STORE_HASH_LEN] = {0x77, 0x77};
static const uint8_t SHA[OP_STORE_HASH_LEN] = {0x5a, 0x5a};

static struct op_store_download get_dl(struct op_store *st, const uint8_t *id)
{
    struct op_store_download d;
    bool found = false;
    CU_ASSERT_EQUAL_FATAL(op_store_download_get(st, id, &d, &found), 0);
    CU_ASSERT_TRUE_FATAL(found);
    return d;
}

static void test_download_create_get_and_list(void)
{
    struct op_store *st = open_fresh();
    bool existed = true;
    CU_ASSERT_EQUAL(
        op_store_download_create(st, H1, "movie.mkv", 4ull << 40, CS, "/dl/movie.mkv", &existed),
        0);
    CU_ASSERT_FALSE(existed);
    CU_ASSERT_EQUAL(op_store_download_create(st, H1, "other", 1, CS, NULL, &existed), 0);
    CU_ASSERT_TRUE(existed);
    CU_ASSERT_EQUAL(op_store_download_create(st, H2, "song.ogg", 10, CS, NULL, NULL), 0);

    struct op_store_download d = get_dl(st, H1);
    CU_ASSERT_STRING_EQUAL(d.name, "movie.mkv"); /* the second create changed nothing */
    /* The hit's size is a hint: no size, no chunks, no bitmap until a
     * checked manifest. */
    CU_ASSERT_EQUAL(d.size_hint, 4ull << 40);
    CU_ASSERT_FALSE(d.has_manifest);
    CU_ASSERT_EQUAL(d.size, 0);
    CU_ASSERT_EQUAL(d.chunk_size, CS);
    CU_ASSERT_EQUAL(d.n_chunks, 0);
    CU_ASSERT_PTR_NULL(d.chunk_hashes);
    CU_ASSERT_PTR_NULL(d.have);
    CU_ASSERT_EQUAL(d.n_have, 0);
    CU_ASSERT_STRING_EQUAL(d.out_path, "/dl/movie.mkv");
    CU_ASSERT_PTR_NULL(d.path);
    CU_ASSERT_PTR_NULL(d.error);
    CU_ASSERT_FALSE(d.has_sha256);
    CU_ASSERT_EQUAL(d.state, OP_DOWNLOAD_ACTIVE);
    CU_ASSERT_TRUE(d.created > 1600000000 && d.updated >= d.created);
    op_store_download_clear(&d);
    d = get_dl(st, H2);
    CU_ASSERT_PTR_NULL(d.out_path);
    op_store_download_clear(&d);

    bool found = true;
    static const uint8_t nothing[OP_STORE_HASH_LEN] = {0};
    CU_ASSERT_EQUAL(op_store_download_get(st, nothing, &d, &found), 0);
    CU_ASSERT_FALSE(found);

    CU_ASSERT_EQUAL(op_store_download_create(st, nothing, "", 1, CS, NULL, NULL), SOVA_ERR_INVALID);
    CU_ASSERT_EQUAL(op_store_download_create(st, nothing, "x", 1, 0, NULL, NULL), SOVA_ERR_INVALID);
    CU_ASSERT_EQUAL(op_store_download_create(st, nothing, "x", 1, 1000000, NULL, NULL),
                    SOVA_ERR_INVALID); /* not a power of two */
    op_store_close(st);
}

static int count_download(const struct op_store_download *d, void *arg)
{
    int *n = arg;
    n[d->state]++;
    return 0;
}

static void test_download_fail_and_activate(void)
{
    struct op_store *st = open_fresh();
    CU_ASSERT_EQUAL(op_store_download_create(st, H1, "a", 10, CS, NULL, NULL), 0);
    CU_ASSERT_EQUAL(op_store_download_create(st, H2, "b", 10, CS, NULL, NULL), 0);
    CU_ASSERT_EQUAL(op_store_download_fail(st, H2, "no source left"), 0);
    CU_ASSERT_EQUAL(op_store_download_fail(st, H2, NULL), SOVA_ERR_INVALID);
    int all[3] = {0}, active[3] = {0};
    CU_ASSERT_EQUAL(op_store_download_foreach(st, false, count_download, all), 0);
    CU_ASSERT_EQUAL(op_store_download_foreach(st, true, count_download, active), 0);
    CU_ASSERT_EQUAL(all[OP_DOWNLOAD_ACTIVE], 1);
    CU_ASSERT_EQUAL(all[OP_DOWNLOAD_FAILED], 1);
    CU_ASSERT_EQUAL(active[OP_DOWNLOAD_ACTIVE], 1);
    CU_ASSERT_EQUAL(active[OP_DOWNLOAD_FAILED], 0);
    struct op_store_download d = get_dl(st, H2);
    CU_ASSERT_STRING_EQUAL(d.error, "no source left"); /* why, for `downloads` */
    op_store_download_clear(&d);
    /* A failed download can be taken up again: the error goes, a new --out
     * replaces the old. */
    CU_ASSERT_EQUAL(op_store_download_activate(st, H2, "/new/place", false), 0);
    memset(active, 0, sizeof(active));
    CU_ASSERT_EQUAL(op_store_download_foreach(st, true, count_download, active), 0);
    CU_ASSERT_EQUAL(active[OP_DOWNLOAD_ACTIVE], 2);
    d = get_dl(st, H2);
    CU_ASSERT_PTR_NULL(d.error);
    CU_ASSERT_STRING_EQUAL(d.out_path, "/new/place");
    op_store_download_clear(&d);
    CU_ASSERT_EQUAL(op_store_download_activate(st, H2, NULL, false), 0); /* out_path stays */
    d = get_dl(st, H2);
    CU_ASSERT_STRING_EQUAL(d.out_path, "/new/place");
    op_store_download_clear(&d);
    static const uint8_t nothing[OP_STORE_HASH_LEN] = {0};
    CU_ASSERT_EQUAL(op_store_download_activate(st, nothing, NULL, false), SOVA_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(op_download_state_name(OP_DOWNLOAD_FAILED), "failed");
    CU_ASSERT_STRING_EQUAL(op_download_state_name((enum op_download_state)7), "?");
    op_store_close(st);
}

/* Transfer control: paused and priority are kept per download, and the
 * queue order (seq) is the order downloads were asked for. */
static void test_download_pause_and_priority(void)
{
    struct op_store *st = open_fresh();
    CU_ASSERT_EQUAL(op_store_download_create(st, H1, "a", 10, CS, NULL, NULL), 0);
    CU_ASSERT_EQUAL(op_store_download_create(st, H2, "b", 10, CS, NULL, NULL), 0);
    struct op_store_download a = get_dl(st, H1), b = get_dl(st, H2);
    CU_ASSERT_FALSE(a.paused);
    CU_ASSERT_EQUAL(a.priority, OP_STORE_PRIORITY_NORMAL);
    CU_ASSERT_TRUE(a.seq < b.seq);
    op_store_download_clear(&a);
    op_store_download_clear(&b);
    CU_ASSERT_EQUAL(op_store_download_set_paused(st, H1, true), 0);
    CU_ASSERT_EQUAL(op_store_download_set_priority(st, H2, OP_STORE_PRIORITY_HIGH), 0);
    CU_ASSERT_EQUAL(op_store_download_set_priority(st, H2, 5), SOVA_ERR_INVALID);
    a = get_dl(st, H1);
    b = get_dl(st, H2);
    CU_ASSERT_TRUE(a.paused);
    CU_ASSERT_EQUAL(b.priority, OP_STORE_PRIORITY_HIGH);
    op_store_download_clear(&a);
    op_store_download_clear(&b);
    /* get of a paused download wants it again: activate resumes it. */
    CU_ASSERT_EQUAL(op_store_download_activate(st, H1, NULL, false), 0);
    a = get_dl(st, H1);
    CU_ASSERT_FALSE(a.paused);
    op_store_download_clear(&a);
    /* Only an active download is paused; an unknown one is refused. */
    CU_ASSERT_EQUAL(op_store_download_fail(st, H2, "no source"), 0);
    CU_ASSERT_EQUAL(op_store_download_set_paused(st, H2, true), SOVA_ERR_INVALID);
    static const uint8_t nothing[OP_STORE_HASH_LEN] = {0};
    CU_ASSERT_EQUAL(op_store_download_set_paused(st, nothing, true), SOVA_ERR_INVALID);
    CU_ASSERT_EQUAL(op_store_download_set_priority(st, nothing, 0), SOVA_ERR_INVALID);
    /* A forgotten download leaves its place: a new one comes last. */
    CU_ASSERT_EQUAL(op_store_download_delete(st, H1), 0);
    CU_ASSERT_EQUAL(op_store_download_create(st, H1, "a", 10, CS, NULL, NULL), 0);
    a = get_dl(st, H1);
    b = get_dl(st, H2);
    CU_ASSERT_TRUE(a.seq > b.seq);
    op_store_download_clear(&a);
    op_store_download_clear(&b);
    op_store_close(st);
}

static void test_download_manifest_and_chunks(void)
{
    uint8_t manifest[3 * OP_STORE_HASH_LEN];
    fill(manifest, sizeof(manifest), 9);
    struct op_store *st = open_fresh();
    CU_ASSERT_EQUAL_FATAL(op_store_download_create(st, H1, "f", 1ull << 42, CS, NULL, NULL), 0);

    CU_ASSERT_EQUAL(op_store_download_mark_chunk(st, H1, 0), SOVA_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(op_store_errmsg(st), "no manifest"));
    uint8_t *bits = NULL;
    uint32_t n = 99;
    CU_ASSERT_EQUAL(op_store_download_get_have(st, H1, &bits, &n), 0);
    CU_ASSERT_EQUAL(n, 0); /* no size yet: no bitmap */
    CU_ASSERT_PTR_NULL(bits);
    /* The size comes with the manifest, not from the hit. */
    CU_ASSERT_EQUAL(op_store_download_set_manifest(st, H1, 2 * CS + 500, ROOT, manifest, 2),
                    SOVA_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(op_store_errmsg(st), "chunk hash count 2"));
    CU_ASSERT_EQUAL(op_store_download_set_manifest(st, H1, 2 * CS + 500, ROOT, manifest, 3), 0);

    CU_ASSERT_EQUAL(op_store_download_mark_chunk(st, H1, 0), 0);
    CU_ASSERT_EQUAL(op_store_download_mark_chunk(st, H1, 2), 0);
    CU_ASSERT_EQUAL(op_store_download_mark_chunk(st, H1, 2), 0); /* idempotent */
    CU_ASSERT_EQUAL(op_store_download_mark_chunk(st, H1, 3), SOVA_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(op_store_errmsg(st), "chunk index 3"));
    CU_ASSERT_EQUAL(op_store_download_mark_chunk(st, H2, 0), SOVA_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(op_store_errmsg(st), "no download"));

    CU_ASSERT_EQUAL_FATAL(op_store_download_get_have(st, H1, &bits, &n), 0);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_EQUAL(bits[0], 0xa0); /* chunks 0 and 2: 0x80 >> 0 | 0x80 >> 2 */
    CU_ASSERT_TRUE(op_store_bitmap_get(bits, 0));
    CU_ASSERT_FALSE(op_store_bitmap_get(bits, 1));
    CU_ASSERT_TRUE(op_store_bitmap_get(bits, 2));
    free(bits);
    CU_ASSERT_EQUAL(op_store_download_get_have(st, H2, &bits, &n), SOVA_ERR_INVALID);

    struct op_store_download d = get_dl(st, H1);
    CU_ASSERT_TRUE(d.has_manifest);
    CU_ASSERT_EQUAL(d.size, 2 * CS + 500);
    CU_ASSERT_EQUAL(d.size_hint, 1ull << 42);
    CU_ASSERT_EQUAL(d.n_chunks, 3);
    CU_ASSERT_EQUAL(memcmp(d.root, ROOT, OP_STORE_HASH_LEN), 0);
    CU_ASSERT_EQUAL(memcmp(d.chunk_hashes, manifest, sizeof(manifest)), 0);
    CU_ASSERT_EQUAL(d.n_have, 2);
    op_store_download_clear(&d);

    /* Setting the same manifest again keeps the bitmap ... */
    CU_ASSERT_EQUAL(op_store_download_set_manifest(st, H1, 2 * CS + 500, ROOT, manifest, 3), 0);
    d = get_dl(st, H1);
    CU_ASSERT_EQUAL(d.n_have, 2);
    op_store_download_clear(&d);
    /* ... a different one clears it. */
    manifest[0] ^= 1;
    CU_ASSERT_EQUAL(op_store_download_set_manifest(st, H1, 2 * CS + 500, ROOT, manifest, 3), 0);
    d = get_dl(st, H1);
    CU_ASSERT_EQUAL(d.n_have, 0);
    CU_ASSERT_EQUAL(d.chunk_hashes[0], manifest[0]);
    op_store_download_clear(&d);
    op_store_close(st);
}

static void test_download_complete_needs_every_chunk(void)
{
    uint8_t manifest[3 * OP_STORE_HASH_LEN];
    fill(manifest, sizeof(manifest), 3);
    struct op_store *st = open_fresh();
    CU_ASSERT_EQUAL_FATAL(op_store_download_create(st, H1, "f", 2500, CS, NULL, NULL), 0);
    CU_ASSERT_EQUAL(op_store_download_complete(st, H1, "/dl/f", SHA), SOVA_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(op_store_errmsg(st), "no manifest"));
    CU_ASSERT_EQUAL(op_store_download_set_manifest(st, H1, 2 * CS + 1, ROOT, manifest, 3), 0);
    CU_ASSERT_EQUAL(op_store_download_mark_chunk(st, H1, 0), 0);
    CU_ASSERT_EQUAL(op_store_download_mark_chunk(st, H1, 1), 0);
    CU_ASSERT_EQUAL(op_store_download_complete(st, H1, "/dl/f", SHA), SOVA_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(op_store_errmsg(st), "2 of 3 chunks"));
    CU_ASSERT_EQUAL(op_store_download_mark_chunk(st, H1, 2), 0);
    CU_ASSERT_EQUAL(op_store_download_complete(st, H1, "/dl/f", SHA), 0);
    struct op_store_download d = get_dl(st, H1);
    CU_ASSERT_EQUAL(d.state, OP_DOWNLOAD_COMPLETE);
    CU_ASSERT_STRING_EQUAL(d.path, "/dl/f");
    CU_ASSERT_TRUE(d.has_sha256);
    CU_ASSERT_EQUAL(memcmp(d.sha256, SHA, OP_STORE_HASH_LEN), 0);
    op_store_download_clear(&d);
    /* A finished download takes no more chunks or manifests. */
    CU_ASSERT_EQUAL(op_store_download_mark_chunk(st, H1, 0), SOVA_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(op_store_errmsg(st), "complete"));
    CU_ASSERT_EQUAL(op_store_download_set_manifest(st, H1, 2 * CS + 1, ROOT, manifest, 3),
                    SOVA_ERR_INVALID);
    CU_ASSERT_EQUAL(op_store_download_fail(st, H2, "x"), SOVA_ERR_INVALID);
    /* Its file gone: wanted again from the start, the checked manifest kept. */
    CU_ASSERT_EQUAL(op_store_download_activate(st, H1, "/elsewhere", true), 0);
    d = get_dl(st, H1);
    CU_ASSERT_EQUAL(d.state, OP_DOWNLOAD_ACTIVE);
    CU_ASSERT_TRUE(d.has_manifest);
    CU_ASSERT_EQUAL(d.n_have, 0);
    CU_ASSERT_PTR_NULL(d.path);
    CU_ASSERT_FALSE(d.has_sha256);
    CU_ASSERT_STRING_EQUAL(d.out_path, "/elsewhere");
    op_store_download_clear(&d);
    op_store_close(st);
}

static void test_download_empty_file(void)
{
    struct op_store *st = open_fresh();
    CU_ASSERT_EQUAL_FATAL(op_store_download_create(st, H1, "empty", 0, CS, NULL, NULL), 0);
    struct op_store_download d = get_dl(st, H1);
    CU_ASSERT_EQUAL(d.n_chunks, 0);
    CU_ASSERT_PTR_NULL(d.have);
    CU_ASSERT_FALSE(d.has_manifest);
    op_store_download_clear(&d);
    CU_ASSERT_EQUAL(op_store_download_complete(st, H1, "/e", SHA), SOVA_ERR_INVALID);
    CU_ASSERT_EQUAL(op_store_download_set_manifest(st, H1, 0, ROOT, NULL, 0), 0);
    d = get_dl(st, H1);
    CU_ASSERT_TRUE(d.has_manifest);
    CU_ASSERT_EQUAL(d.size, 0);
    op_store_download_clear(&d);
    CU_ASSERT_EQUAL(op_store_download_complete(st, H1, "/e", SHA), 0);
    op_store_close(st);
}

static void test_download_bitmap_survives_reopen(void)
{
    /* 20 chunks: the bitmap spans three bytes. */
    uint8_t manifest[20 * OP_STORE_HASH_LEN];
    fill(manifest, sizeof(manifest), 5);
    struct op_store *st = open_fresh();
    CU_ASSERT_EQUAL_FATAL(op_store_download_create(st, H1, "f", 5, CS, "/o", NULL), 0);
    CU_ASSERT_EQUAL(op_store_download_set_manifest(st, H1, 20 * CS - 1, ROOT, manifest, 20), 0);
    static const uint32_t marked[] = {0, 7, 8, 19};
    for (size_t i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(op_store_download_mark_chunk(st, H1, marked[i]), 0);
    st = reopen(st);
    struct op_store_download d = get_dl(st, H1);
    CU_ASSERT_EQUAL(d.n_chunks, 20);
    CU_ASSERT_EQUAL(d.n_have, 4);
    CU_ASSERT_EQUAL(d.have[0], 0x81);
    CU_ASSERT_EQUAL(d.have[1], 0x80);
    CU_ASSERT_EQUAL(d.have[2], 0x10);
    CU_ASSERT_EQUAL(memcmp(d.chunk_hashes, manifest, sizeof(manifest)), 0);
    CU_ASSERT_STRING_EQUAL(d.out_path, "/o");
    op_store_download_clear(&d);
    op_store_close(st);
}

/* ---- bad sources ------------------------------------------------------------------ */
struct bad_seen {
    char reasons[4][64];
    bool banned[4];
    uint32_t failures[4];
    int n;
};

static int collect_bad(const struct op_store_bad_source *b, void *arg)
{
    struct bad_seen *seen = arg;
    snprintf(seen->reasons[seen->n], sizeof(seen->reasons[0]), "%s", b->reason);
    seen->banned[seen->n] = b->banned;
    seen->failures[seen->n++] = b->failures;
    return 0;
}

static void test_bad_sources(void)
{
    struct op_store *st = open_fresh();
    uint32_t n = 99;
    bool banned = true;
    CU_ASSERT_EQUAL(op_store_bad_source_record(st, H1, P1, "chunk 0 bad", &n), SOVA_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(op_store_errmsg(st), "FOREIGN KEY"));
    CU_ASSERT_EQUAL_FATAL(op_store_download_create(st, H1, "f", 10, CS, NULL, NULL), 0);
    CU_ASSERT_EQUAL(op_store_bad_source_get(st, H1, P1, &n, &banned), 0);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_FALSE(banned);
    CU_ASSERT_EQUAL(op_store_bad_source_record(st, H1, P1, "chunk 0 bad", &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(op_store_bad_source_record(st, H1, P1, "chunk 3 bad", NULL), 0);
    CU_ASSERT_EQUAL(op_store_bad_source_ban(st, H1, P2, "its manifest lied"), 0);
    st = reopen(st);
    CU_ASSERT_EQUAL(op_store_bad_source_get(st, H1, P1, &n, &banned), 0);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_FALSE(banned); /* failures alone ban nobody: the fetcher decides */
    CU_ASSERT_EQUAL(op_store_bad_source_get(st, H1, P2, &n, &banned), 0);
    CU_ASSERT_TRUE(banned);
    CU_ASSERT_EQUAL(op_store_bad_source_ban(st, H1, P1, "2 bad chunks"), 0);
    struct bad_seen seen = {0};
    CU_ASSERT_EQUAL(op_store_bad_source_foreach(st, H1, collect_bad, &seen), 0);
    CU_ASSERT_EQUAL_FATAL(seen.n, 2);
    CU_ASSERT_TRUE(seen.banned[0] && seen.banned[1]);
    CU_ASSERT(strcmp(seen.reasons[0], "2 bad chunks") == 0 ||
              strcmp(seen.reasons[1], "2 bad chunks") == 0);
    CU_ASSERT(strcmp(seen.reasons[0], "its manifest lied") == 0 ||
              strcmp(seen.reasons[1], "its manifest lied") == 0);
    CU_ASSERT_EQUAL(op_store_bad_source_record(st, H1, P1, NULL, NULL), SOVA_ERR_INVALID);
    /* Forgetting the download forgets its bad sources. */
    CU_ASSERT_EQUAL(op_store_download_delete(st, H1), 0);
    CU_ASSERT_EQUAL(op_store_download_delete(st, H1), 0);
    CU_ASSERT_EQUAL(op_store_bad_source_get(st, H1, P1, &n, &banned), 0);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_FALSE(banned);
    op_store_close(st);
}

/* ---- supernode host cache ---------------------------------------------------------- */
struct host_seen {
    char addrs[4][64];
    uint32_t failures[4];
    int n;
};

static int collect_host(const struct op_store_host *h, void *arg)
{
    struct host_seen *seen = arg;
    snprintf(seen->addrs[seen->n], sizeof(seen->addrs[0]), "%s", h->addrs);
    seen->failures[seen->n++] = h->failures;
    return 0;
}

static int count_host(const struct op_store_host *h, void *arg)
{
    (void)h;
    (*(int *)arg)++;
    return 0;
}

static void test_host_cache(void)
{
    struct op_store *st = open_fresh();
    CU_ASSERT_EQUAL(op_store_host_put(st, P1, "10.0.0.1:7070"), 0);
    CU_ASSERT_EQUAL(op_store_host_put(st, P2, "10.0.0.2:7070,[2001:db8::2]:7070"), 0);
    CU_ASSERT_EQUAL(op_store_host_failed(st, P1), 0);
    CU_ASSERT_EQUAL(op_store_host_failed(st, H1), 0); /* unknown: ignored */
    st = reopen(st);
    struct host_seen seen = {0};
    CU_ASSERT_EQUAL(op_store_host_foreach(st, collect_host, &seen), 0);
    CU_ASSERT_EQUAL_FATAL(seen.n, 2);
    /* fewest failures first */
    CU_ASSERT_STRING_EQUAL(seen.addrs[0], "10.0.0.2:7070,[2001:db8::2]:7070");
    CU_ASSERT_EQUAL(seen.failures[1], 1);
    /* seen again: failures reset, new address kept */
    CU_ASSERT_EQUAL(op_store_host_put(st, P1, "10.0.0.9:7070"), 0);
    memset(&seen, 0, sizeof(seen));
    CU_ASSERT_EQUAL(op_store_host_foreach(st, collect_host, &seen), 0);
    CU_ASSERT_EQUAL(seen.failures[0] + seen.failures[1], 0);
    op_store_close(st);
}

/* ---- a state folder of schema 1 ------------------------------------------------------ */
/* tests/data/peer-v1.sql: the database of a peer.db written by sova-peer
 * at schema 1 (files known by their SHA-256), dumped with sqlite3 .dump:
 * one shared file, a complete and an active download. */
static void load_v1(void)
{
    remove_db();
    const char *data = getenv("SOVA_TEST_DATA");
    char path[512];
    snprintf(path, sizeof(path), "%s/peer-v1.sql", data ? data : "tests/data");
    FILE *f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    static char sql[65536];
    size_t n = fread(sql, 1, sizeof(sql) - 1, f);
    fclose(f);
    sql[n] = '\0';
    sqlite3 *db;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(db_path, &db), SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fprintf(stderr, "peer-v1.sql: %s\n", err ? err : "?");
    sqlite3_free(err);
    sqlite3_close(db);
    CU_ASSERT_EQUAL_FATAL(rc, SQLITE_OK);
    CU_ASSERT_EQUAL_FATAL(pragma_int("PRAGMA user_version"), 1);
}

struct legacy_seen {
    char names[4][32];
    enum op_download_state states[4];
    bool has_error[4];
    char error[128];
    uint8_t sha256[4][OP_STORE_HASH_LEN];
    int n;
};

static int collect_legacy(const struct op_store_legacy *l, void *arg)
{
    struct legacy_seen *seen = arg;
    snprintf(seen->names[seen->n], sizeof(seen->names[0]), "%s", l->name);
    seen->states[seen->n] = l->state;
    seen->has_error[seen->n] = l->error != NULL;
    if (l->error != NULL)
        snprintf(seen->error, sizeof(seen->error), "%s", l->error);
    memcpy(seen->sha256[seen->n++], l->sha256, OP_STORE_HASH_LEN);
    return 0;
}

static void test_schema_1_is_migrated(void)
{
    load_v1();
    struct op_store *st = NULL;
    char err[256] = "";
    int rc = op_store_open(db_path, &st, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "open: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(pragma_int("PRAGMA user_version"), OP_STORE_SCHEMA_VERSION);
    /* The share cache is empty: the next scan hashes every file again. */
    struct collected c = {.n = 0};
    CU_ASSERT_EQUAL(op_store_share_foreach(st, collect_share, &c), 0);
    CU_ASSERT_EQUAL(c.n, 0);
    /* No download is read as one keyed by a file ID ... */
    int all[3] = {0};
    CU_ASSERT_EQUAL(op_store_download_foreach(st, false, count_download, all), 0);
    CU_ASSERT_EQUAL(all[0] + all[1] + all[2], 0);
    static const uint8_t small_sha256[OP_STORE_HASH_LEN] = {
        0xcf, 0x23, 0x20, 0xe1, 0x08, 0xc9, 0x48, 0xc8, 0x05, 0xd4, 0xad,
        0xe2, 0x51, 0xfc, 0x45, 0x76, 0x58, 0xeb, 0x02, 0x8d, 0xfc, 0x9a,
        0x97, 0xdd, 0xea, 0x17, 0x4e, 0xb8, 0x1d, 0xcd, 0xb3, 0x3b};
    struct op_store_download d;
    bool found = true;
    CU_ASSERT_EQUAL(op_store_download_get(st, small_sha256, &d, &found), 0);
    CU_ASSERT_FALSE(found);
    /* ... they are history: the complete one as it was, the one in
     * progress failed with the reason. */
    struct legacy_seen seen = {0};
    CU_ASSERT_EQUAL(op_store_legacy_foreach(st, collect_legacy, &seen), 0);
    CU_ASSERT_EQUAL_FATAL(seen.n, 2);
    int small = strcmp(seen.names[0], "small.bin") == 0 ? 0 : 1, big = 1 - small;
    CU_ASSERT_STRING_EQUAL(seen.names[small], "small.bin");
    CU_ASSERT_STRING_EQUAL(seen.names[big], "big.bin");
    CU_ASSERT_EQUAL(seen.states[small], OP_DOWNLOAD_COMPLETE);
    CU_ASSERT_FALSE(seen.has_error[small]);
    CU_ASSERT_EQUAL(memcmp(seen.sha256[small], small_sha256, OP_STORE_HASH_LEN), 0);
    CU_ASSERT_EQUAL(seen.states[big], OP_DOWNLOAD_FAILED);
    CU_ASSERT_TRUE(seen.has_error[big]);
    CU_ASSERT_STRING_EQUAL(seen.error, OP_STORE_LEGACY_REASON);
    /* The host cache is kept. */
    int hosts = 0;
    CU_ASSERT_EQUAL(op_store_host_foreach(st, count_host, &hosts), 0);
    CU_ASSERT_EQUAL(hosts, 1);
    /* New downloads and shares work in the migrated database, and a reopen
     * migrates nothing again. */
    CU_ASSERT_EQUAL(op_store_download_create(st, small_sha256, "x", 1, CS, NULL, NULL), 0);
    st = reopen(st);
    seen.n = 0;
    CU_ASSERT_EQUAL(op_store_legacy_foreach(st, collect_legacy, &seen), 0);
    CU_ASSERT_EQUAL(seen.n, 2);
    op_store_close(st);
}

/* ---- two connections --------------------------------------------------------------- */
#define CONCURRENT_ROWS 300

static void *writer_thread(void *arg)
{
    struct op_store *st2 = arg;
    uint8_t chunk[OP_STORE_HASH_LEN] = {1};
    char path[32];
    intptr_t failures = 0;
    for (int i = 0; i < CONCURRENT_ROWS; i++) {
        snprintf(path, sizeof(path), "file%04d", i);
        struct op_store_share row = {
            .path = path,
            .size = 5,
            .inode = (uint64_t)i,
            .layer_height = LH,
            .n_layer = 1,
            .layer = chunk,
        };
        row.id[0] = (uint8_t)i;
        failures += op_store_share_upsert(st2, &row, 1) != 0;
    }
    return (void *)failures;
}

static int count_rows(const struct op_store_share *row, void *arg)
{
    (*(int *)arg)++;
    return 0;
}

static void test_second_connection_under_wal(void)
{
    struct op_store *st = open_fresh(), *st2 = NULL;
    CU_ASSERT_EQUAL_FATAL(op_store_open(db_path, &st2, NULL, 0), 0);
    uint8_t manifest[CONCURRENT_ROWS * OP_STORE_HASH_LEN] = {0};
    CU_ASSERT_EQUAL_FATAL(op_store_download_create(st, H1, "f", 1, CS, NULL, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(op_store_download_set_manifest(st, H1, (uint64_t)CONCURRENT_ROWS * CS,
                                                         ROOT, manifest, CONCURRENT_ROWS),
                          0);

    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, writer_thread, st2), 0);
    int mark_failures = 0, reads = 0;
    for (uint32_t i = 0; i < CONCURRENT_ROWS; i++) {
        mark_failures += op_store_download_mark_chunk(st, H1, i) != 0;
        int n = 0;
        if (op_store_share_foreach(st, count_rows, &n) == 0) /* reads while st2 writes */
            reads++;
    }
    void *writer_failures;
    pthread_join(t, &writer_failures);
    CU_ASSERT_EQUAL(mark_failures, 0);
    CU_ASSERT_EQUAL(reads, CONCURRENT_ROWS);
    CU_ASSERT_PTR_NULL(writer_failures);

    /* Each connection sees the other's committed writes. */
    int n = 0;
    CU_ASSERT_EQUAL(op_store_share_foreach(st, count_rows, &n), 0);
    CU_ASSERT_EQUAL(n, CONCURRENT_ROWS);
    struct op_store_download d = get_dl(st2, H1);
    CU_ASSERT_EQUAL(d.n_have, CONCURRENT_ROWS);
    op_store_download_clear(&d);
    op_store_close(st2);
    op_store_close(st);
}
/* ---- share folders, and schema 2 ------------------------------------------------- */
static int collect_folder(const char *path, void *arg)
{
    char *out = arg;
    size_t n = strlen(out);
    snprintf(out + n, 256 - n, "%s;", path);
    return strcmp(path, "/stop") == 0 ? 7 : 0;
}

static void test_share_folders(void)
{
    struct op_store *st = open_fresh();
    CU_ASSERT_EQUAL(op_store_folder_add(st, "/b/music"), 0);
    CU_ASSERT_EQUAL(op_store_folder_add(st, "/a/films"), 0);
    CU_ASSERT_EQUAL(op_store_folder_add(st, "/a/films"), 0); /* known: no-op */
    st = reopen(st);
    char seen[256] = "";
    CU_ASSERT_EQUAL(op_store_folder_foreach(st, collect_folder, seen), 0);
    CU_ASSERT_STRING_EQUAL(seen, "/a/films;/b/music;");
    bool removed = false;
    CU_ASSERT_EQUAL(op_store_folder_remove(st, "/a/films", &removed), 0);
    CU_ASSERT_TRUE(removed);
    CU_ASSERT_EQUAL(op_store_folder_remove(st, "/a/films", &removed), 0);
    CU_ASSERT_FALSE(removed);
    CU_ASSERT_EQUAL(op_store_folder_add(st, "/stop"), 0);
    seen[0] = '\0';
    CU_ASSERT_EQUAL(op_store_folder_foreach(st, collect_folder, seen), 7); /* stopped */
    CU_ASSERT_STRING_EQUAL(seen, "/b/music;/stop;");
    op_store_close(st);
}

/* Schema 2 kept share rows by relative path: they go, the folders table comes. */
static void test_schema_2_share_rows_go(void)
{
    op_store_close(open_fresh());
    sqlite3 *db;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(db_path, &db), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(db,
                                 "DROP TABLE share_folders;"
                                 "ALTER TABLE downloads DROP COLUMN paused;"
                                 "ALTER TABLE downloads DROP COLUMN priority;"
                                 "ALTER TABLE downloads DROP COLUMN seq;"
                                 "INSERT INTO shares VALUES ('music/a.mp3', 1, 2, 3, zeroblob(32),"
                                 " zeroblob(32), zeroblob(32), 2, zeroblob(32), 0);"
                                 "PRAGMA user_version = 2",
                                 NULL, NULL, NULL),
                    SQLITE_OK);
    sqlite3_close(db);
    CU_ASSERT_EQUAL(pragma_int("SELECT count(*) FROM shares"), 1);
    struct op_store *st = NULL;
    CU_ASSERT_EQUAL_FATAL(op_store_open(db_path, &st, NULL, 0), 0);
    CU_ASSERT_EQUAL(pragma_int("PRAGMA user_version"), OP_STORE_SCHEMA_VERSION);
    CU_ASSERT_EQUAL(pragma_int("SELECT count(*) FROM shares"), 0);
    CU_ASSERT_EQUAL(op_store_folder_add(st, "/x"), 0);
    CU_ASSERT_EQUAL(pragma_int("SELECT count(*) FROM share_folders"), 1);
    op_store_close(st);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("op_store", suite_init, suite_clean);
    if (s == NULL)
        return -1;
    CU_add_test(s, "open creates a versioned WAL database", test_open_creates_versioned_wal_db);
    CU_add_test(s, "a newer schema is refused", test_newer_schema_is_refused);
    CU_add_test(s, "not a database is an I/O error", test_not_a_database_is_an_io_error);
    CU_add_test(s, "share rows round trip and survive reopen", test_share_round_trip_and_reopen);
    CU_add_test(s, "share lookup needs the exact key", test_share_lookup_needs_the_exact_key);
    CU_add_test(s, "share upsert replaces and rejects bad rows",
                test_share_upsert_replaces_and_rejects_bad_rows);
    CU_add_test(s, "share prune and find by ID", test_share_prune_and_find_by_id);
    CU_add_test(s, "share foreach stops on nonzero", test_share_foreach_stops_on_nonzero);
    CU_add_test(s, "download create, get and list", test_download_create_get_and_list);
    CU_add_test(s, "download fails with a reason and is taken up again",
                test_download_fail_and_activate);
    CU_add_test(s, "download pause, priority and queue order", test_download_pause_and_priority);
    CU_add_test(s, "download manifest and chunks", test_download_manifest_and_chunks);
    CU_add_test(s, "download complete needs every chunk", test_download_complete_needs_every_chunk);
    CU_add_test(s, "download of an empty file", test_download_empty_file);
    CU_add_test(s, "download bitmap survives reopen", test_download_bitmap_survives_reopen);
    CU_add_test(s, "bad sources", test_bad_sources);
    CU_add_test(s, "supernode host cache", test_host_cache);
    CU_add_test(s, "second connection under WAL", test_second_connection_under_wal);
    CU_add_test(s, "a database of schema 1 is migrated, never misread", test_schema_1_is_migrated);
    CU_add_test(s, "share folders: add, list, remove, survive reopen", test_share_folders);
    CU_add_test(s, "a database of schema 2: relative share rows go", test_schema_2_share_rows_go);
    return CU_get_error() == CUE_SUCCESS ? 0 : -1;
}
