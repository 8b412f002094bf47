/* sn_ledger_store.c - the credit records on disk (sn_ledger_store.h). */
#include "sn_ledger_store.h"
#include "clock.h"
#include "err.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS records ("
    "  id BLOB PRIMARY KEY, base_up INTEGER NOT NULL, base_down INTEGER NOT NULL,"
    "  base_uptime INTEGER NOT NULL, horizon_s INTEGER NOT NULL,"
    "  session_horizon_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS entries ("
    "  id BLOB NOT NULL, dir INTEGER NOT NULL, peer BLOB NOT NULL, last_seq INTEGER NOT NULL,"
    "  last_time INTEGER NOT NULL, bytes INTEGER NOT NULL,"
    "  PRIMARY KEY (id, dir, peer)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS sessions ("
    "  id BLOB NOT NULL, sn BLOB NOT NULL, start_ms INTEGER NOT NULL,"
    "  seconds INTEGER NOT NULL, PRIMARY KEY (id, sn, start_ms)) WITHOUT ROWID;";

enum stmt {
    ST_DEL_ENTRIES,
    ST_DEL_SESSIONS,
    ST_DEL_RECORD,
    ST_PUT_RECORD,
    ST_PUT_ENTRY,
    ST_PUT_SESSION,
    ST_ALL_RECORDS,
    ST_ENTRIES_OF,
    ST_SESSIONS_OF,
    ST_COUNT
};

static const char *const SQL[ST_COUNT] = {
    [ST_DEL_ENTRIES] = "DELETE FROM entries WHERE id = ?1",
    [ST_DEL_SESSIONS] = "DELETE FROM sessions WHERE id = ?1",
    [ST_DEL_RECORD] = "DELETE FROM records WHERE id = ?1",
    [ST_PUT_RECORD] = "INSERT OR REPLACE INTO records VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_PUT_ENTRY] = "INSERT OR REPLACE INTO entries VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_PUT_SESSION] = "INSERT OR REPLACE INTO sessions VALUES (?1, ?2, ?3, ?4)",
    [ST_ALL_RECORDS] =
        "SELECT id, base_up, base_down, base_uptime, horizon_s, session_horizon_ms FROM records",
    [ST_ENTRIES_OF] = "SELECT dir, peer, last_seq, last_time, bytes FROM entries WHERE id = ?1",
    [ST_SESSIONS_OF] = "SELECT sn, start_ms, seconds FROM sessions WHERE id = ?1",
};

struct sn_ledger_store {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    char path[4096];
    char err[256];
    /* the checkpoint thread: its own connection; the rest under mu */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    struct sn_ledger_store_stats st_;
};

static int fail(struct sn_ledger_store *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(struct sn_ledger_store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
    return SOVA_ERR_IO;
}

static int db_fail(struct sn_ledger_store *s, const char *what)
{
    return fail(s, "%s: %s", what, sqlite3_errmsg(s->db));
}

static int exec(struct sn_ledger_store *s, const char *sql)
{
    return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : db_fail(s, sql);
}

/* ---- the checkpoint thread ---------------------------------------------------------- */

static void *checkpoint_main(void *arg)
{
    struct sn_ledger_store *s = arg;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        sqlite3_close_v2(db);
        pthread_mutex_lock(&s->mu);
        s->st_.errors++;
        pthread_mutex_unlock(&s->mu);
        return NULL;
    }
    sqlite3_busy_timeout(db, 1000);
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        struct timespec until = sova_mono_deadline(SN_LEDGER_STORE_CHECKPOINT_MS);
        while (!s->stopping && pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0)
            ;
        if (s->stopping)
            break;
        pthread_mutex_unlock(&s->mu);
        /* PASSIVE: never waits for the writer on the loop; fsyncs the WAL
         * before copying it into the database, then the database. */
        int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&s->mu);
        if (rc == SQLITE_OK)
            s->st_.checkpoints++;
        else if (rc != SQLITE_BUSY)
            s->st_.errors++;
    }
    pthread_mutex_unlock(&s->mu);
    sqlite3_close_v2(db);
    return NULL;
}

/* ---- open and close ----------------------------------------------------------------- */

static int pragma_int(struct sn_ledger_store *s, const char *sql, long *out)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK)
        return db_fail(s, sql);
    int rc = sqlite3_step(q) == SQLITE_ROW ? 0 : db_fail(s, sql);
    if (rc == 0)
        *out = (long)sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return rc;
}

static int configure(struct sn_ledger_store *s)
{
    sqlite3_busy_timeout(s->db, 1000);
    int rc = exec(s, "PRAGMA trusted_schema = OFF; PRAGMA synchronous = NORMAL;"
                     " PRAGMA wal_autocheckpoint = 0");
    if (rc != 0)
        return rc;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &q, NULL) != SQLITE_OK)
        return db_fail(s, "journal_mode");
    bool wal = sqlite3_step(q) == SQLITE_ROW &&
               strcmp((const char *)sqlite3_column_text(q, 0), "wal") == 0;
    sqlite3_finalize(q);
    if (!wal)
        return fail(s, "cannot switch to WAL journal mode");
    long version = 0;
    if ((rc = pragma_int(s, "PRAGMA user_version", &version)) != 0)
        return rc;
    if (version != 0 && version != SN_LEDGER_STORE_SCHEMA)
        return fail(s,
                    "ledger schema version %ld, this sova-supernode reads %d: move the file"
                    " away (the other holders push the records back) or run the matching"
                    " release",
                    version, SN_LEDGER_STORE_SCHEMA);
    if (version == 0) {
        if ((rc = exec(s, "BEGIN")) != 0 || (rc = exec(s, SCHEMA)) != 0 ||
            (rc = exec(s, "PRAGMA user_version = 1")) != 0 || (rc = exec(s, "COMMIT")) != 0) {
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
    }
    for (int i = 0; i < ST_COUNT; i++)
        if (sqlite3_prepare_v3(s->db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) !=
            SQLITE_OK)
            return db_fail(s, SQL[i]);
    return 0;
}

int sn_ledger_store_open(const char *dir, struct sn_ledger_store **out, char *err, size_t errlen)
{
    *out = NULL;
    struct sn_ledger_store *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "ledger store: out of memory");
        return SOVA_ERR_NOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* sova_mono_deadline() */
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    int n = snprintf(s->path, sizeof(s->path), "%s/%s", dir, SN_LEDGER_STORE_FILE);
    int rc;
    if (n < 0 || (size_t)n >= sizeof(s->path))
        rc = fail(s, "path too long");
    else if (sqlite3_open_v2(s->path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL) != SQLITE_OK)
        rc = s->db ? db_fail(s, "open") : fail(s, "open: out of memory");
    else
        rc = configure(s);
    if (rc == 0) {
        if (pthread_create(&s->thread, NULL, checkpoint_main, s) != 0)
            rc = fail(s, "cannot start the checkpoint thread");
        else
            s->thread_started = true;
    }
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", s->path, s->err);
        sn_ledger_store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void sn_ledger_store_close(struct sn_ledger_store *s)
{
    if (s == NULL)
        return;
    if (s->thread_started) {
        pthread_mutex_lock(&s->mu);
        s->stopping = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    if (s->db != NULL) /* the last changes into the database, the WAL emptied */
        sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    sqlite3_close_v2(s->db);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void sn_ledger_store_stats(struct sn_ledger_store *s, struct sn_ledger_store_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st_;
    pthread_mutex_unlock(&s->mu);
}

const char *sn_ledger_store_error(const struct sn_ledger_store *s)
{
    return s->err;
}

/* ---- writing ------------------------------------------------------------------------ */

static int step_done(struct sn_ledger_store *s, sqlite3_stmt *q)
{
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return rc == SQLITE_DONE ? 0 : db_fail(s, "write");
}

static int put_entries(struct sn_ledger_store *s, const uint8_t id[WIRE_ID_LEN], int dir,
                       const struct msg_ledger_entry *v, size_t n)
{
    sqlite3_stmt *q = s->st[ST_PUT_ENTRY];
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_blob(q, 1, id, WIRE_ID_LEN, SQLITE_STATIC);
        sqlite3_bind_int(q, 2, dir);
        sqlite3_bind_blob(q, 3, v[i].peer_id, WIRE_ID_LEN, SQLITE_STATIC);
        sqlite3_bind_int64(q, 4, (sqlite3_int64)v[i].last_seq);
        sqlite3_bind_int64(q, 5, (sqlite3_int64)v[i].last_time);
        sqlite3_bind_int64(q, 6, (sqlite3_int64)v[i].bytes);
        int rc = step_done(s, q);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* One record as it is now in l, or its deletion when l has none. */
static int write_record(struct sn_ledger_store *s, const struct sn_ledger *l,
                        const uint8_t id[WIRE_ID_LEN], bool *deleted)
{
    int rc = 0;
    for (int k = ST_DEL_ENTRIES; k <= ST_DEL_SESSIONS && rc == 0; k++) {
        sqlite3_bind_blob(s->st[k], 1, id, WIRE_ID_LEN, SQLITE_STATIC);
        rc = step_done(s, s->st[k]);
    }
    struct msg_ledger_put r;
    *deleted = !sn_ledger_export(l, id, &r);
    if (rc != 0 || *deleted) {
        if (rc == 0) {
            sqlite3_bind_blob(s->st[ST_DEL_RECORD], 1, id, WIRE_ID_LEN, SQLITE_STATIC);
            rc = step_done(s, s->st[ST_DEL_RECORD]);
        }
        return rc;
    }
    sqlite3_stmt *q = s->st[ST_PUT_RECORD];
    sqlite3_bind_blob(q, 1, id, WIRE_ID_LEN, SQLITE_STATIC);
    const uint64_t nums[5] = {r.base_uploaded, r.base_downloaded, r.base_uptime_s, r.horizon_s,
                              r.session_horizon_ms};
    for (int i = 0; i < 5; i++)
        sqlite3_bind_int64(q, 2 + i, (sqlite3_int64)nums[i]);
    if ((rc = step_done(s, q)) != 0 || (rc = put_entries(s, id, 0, r.uploads, r.n_uploads)) != 0 ||
        (rc = put_entries(s, id, 1, r.downloads, r.n_downloads)) != 0)
        return rc;
    q = s->st[ST_PUT_SESSION];
    for (size_t i = 0; i < r.n_sessions && rc == 0; i++) {
        sqlite3_bind_blob(q, 1, id, WIRE_ID_LEN, SQLITE_STATIC);
        sqlite3_bind_blob(q, 2, r.sessions[i].sn_id, WIRE_ID_LEN, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, (sqlite3_int64)r.sessions[i].start_ms);
        sqlite3_bind_int64(q, 4, (sqlite3_int64)r.sessions[i].seconds);
        rc = step_done(s, q);
    }
    return rc;
}

int sn_ledger_store_flush(struct sn_ledger_store *s, struct sn_ledger *l, size_t max, size_t *left)
{
    *left = sn_ledger_dirty_count(l);
    if (*left == 0)
        return 0;
    uint8_t(*ids)[WIRE_ID_LEN] = malloc(max * sizeof(*ids));
    if (ids == NULL)
        return SOVA_ERR_NOMEM;
    size_t n = sn_ledger_take_dirty(l, ids, max);
    uint64_t written = 0, deleted = 0;
    int rc = exec(s, "BEGIN");
    for (size_t i = 0; i < n && rc == 0; i++) {
        bool gone = false;
        rc = write_record(s, l, ids[i], &gone);
        deleted += gone;
        written += !gone;
    }
    if (rc == 0)
        rc = exec(s, "COMMIT");
    if (rc != 0) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        for (size_t i = 0; i < n; i++)
            sn_ledger_touch(l, ids[i]); /* written again next time */
    }
    free(ids);
    pthread_mutex_lock(&s->mu);
    if (rc == 0) {
        s->st_.batches++;
        s->st_.records_written += written;
        s->st_.records_deleted += deleted;
    } else {
        s->st_.errors++;
    }
    pthread_mutex_unlock(&s->mu);
    *left = sn_ledger_dirty_count(l);
    return rc;
}

/* ---- reading back ------------------------------------------------------------------- */

static int load_one(struct sn_ledger_store *s, struct sn_ledger *l, sqlite3_stmt *rec,
                    struct msg_ledger_put *r)
{
    const void *id = sqlite3_column_blob(rec, 0);
    if (id == NULL || sqlite3_column_bytes(rec, 0) != WIRE_ID_LEN)
        return 0; /* not ours: skipped */
    memcpy(r->peer_id, id, WIRE_ID_LEN);
    r->base_uploaded = (uint64_t)sqlite3_column_int64(rec, 1);
    r->base_downloaded = (uint64_t)sqlite3_column_int64(rec, 2);
    r->base_uptime_s = (uint64_t)sqlite3_column_int64(rec, 3);
    r->horizon_s = (uint64_t)sqlite3_column_int64(rec, 4);
    r->session_horizon_ms = (uint64_t)sqlite3_column_int64(rec, 5);
    r->n_uploads = r->n_downloads = r->n_sessions = 0;
    sqlite3_stmt *q = s->st[ST_ENTRIES_OF];
    sqlite3_bind_blob(q, 1, r->peer_id, WIRE_ID_LEN, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        bool up = sqlite3_column_int(q, 0) == 0;
        struct msg_ledger_entry *v = up ? r->uploads : r->downloads;
        size_t *n = up ? &r->n_uploads : &r->n_downloads;
        const void *peer = sqlite3_column_blob(q, 1);
        if (*n == MSG_MAX_LEDGER_ENTRIES || peer == NULL ||
            sqlite3_column_bytes(q, 1) != WIRE_ID_LEN)
            continue; /* more than a record keeps: not written by us */
        struct msg_ledger_entry *e = &v[(*n)++];
        memcpy(e->peer_id, peer, WIRE_ID_LEN);
        e->last_seq = (uint64_t)sqlite3_column_int64(q, 2);
        e->last_time = (uint64_t)sqlite3_column_int64(q, 3);
        e->bytes = (uint64_t)sqlite3_column_int64(q, 4);
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        return db_fail(s, "read entries");
    q = s->st[ST_SESSIONS_OF];
    sqlite3_bind_blob(q, 1, r->peer_id, WIRE_ID_LEN, SQLITE_STATIC);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const void *sn = sqlite3_column_blob(q, 0);
        if (r->n_sessions == MSG_MAX_LEDGER_SESSIONS || sn == NULL ||
            sqlite3_column_bytes(q, 0) != WIRE_ID_LEN)
            continue;
        struct msg_ledger_session *x = &r->sessions[r->n_sessions++];
        memcpy(x->sn_id, sn, WIRE_ID_LEN);
        x->start_ms = (uint64_t)sqlite3_column_int64(q, 1);
        x->seconds = (uint64_t)sqlite3_column_int64(q, 2);
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        return db_fail(s, "read sessions");
    sn_ledger_merge(l, r);
    return 1;
}

int sn_ledger_store_load(struct sn_ledger_store *s, struct sn_ledger *l, size_t *n, char *err,
                         size_t errlen)
{
    *n = 0;
    struct msg_ledger_put r;
    memset(&r, 0, sizeof(r));
    r.uploads = calloc(MSG_MAX_LEDGER_ENTRIES, sizeof(*r.uploads));
    r.downloads = calloc(MSG_MAX_LEDGER_ENTRIES, sizeof(*r.downloads));
    r.sessions = calloc(MSG_MAX_LEDGER_SESSIONS, sizeof(*r.sessions));
    int rc = r.uploads && r.downloads && r.sessions ? 0 : SOVA_ERR_NOMEM;
    sqlite3_stmt *rec = s->st[ST_ALL_RECORDS];
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(rec)) == SQLITE_ROW) {
        int got = load_one(s, l, rec, &r);
        if (got < 0)
            rc = got;
        else
            *n += (size_t)got;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(s, "read records");
    sqlite3_reset(rec);
    free(r.uploads);
    free(r.downloads);
    free(r.sessions);
    /* What was just read is on disk already. */
    uint8_t drop[256][WIRE_ID_LEN];
    while (sn_ledger_take_dirty(l, drop, 256) > 0)
        ;
    if (rc != 0)
        snprintf(err, errlen, "%s: %s", s->path, rc == SOVA_ERR_NOMEM ? "out of memory" : s->err);
    pthread_mutex_lock(&s->mu);
    s->st_.loaded += *n;
    pthread_mutex_unlock(&s->mu);
    return rc;
}
