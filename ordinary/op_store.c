/* op_store.c - the peer's SQLite state. docs/STATE.md explains the schema
 * and the crash-safety argument; this file is the code it describes.
 *
 * Every statement is prepared once per connection (lazily, PERSISTENT) and
 * reset after use. State changes that must be atomic are single UPDATE
 * statements (each its own transaction); multi-row changes run inside
 * BEGIN IMMEDIATE ... COMMIT so a reader never sees half of them. */
#define OP_STORE_INTERNAL
#include "clock.h"
#include "err.h"
#include "fileid.h"
#include "op_store_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The chunk count of a downloads row, in SQL (NULL without a manifest). */
#define SQL_N_CHUNKS "((size + chunk_size - 1) / chunk_size)"

/* ---- schema ------------------------------------------------------------------
 * migrations[v] takes a database from user_version v to v + 1. Append only. */
static const char *const migrations[] = {
    /* 0 -> 1: the first schema */
    "CREATE TABLE shares ("
    "  path         TEXT PRIMARY KEY NOT NULL,"
    "  size         INTEGER NOT NULL CHECK (size >= 0),"
    "  mtime_ns     INTEGER NOT NULL,"
    "  inode        INTEGER NOT NULL,"
    "  hash         BLOB NOT NULL CHECK (length(hash) = 32),"
    "  chunk_size   INTEGER NOT NULL CHECK (chunk_size >= 1),"
    "  chunk_hashes BLOB NOT NULL,"
    "  racy         INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX shares_by_hash ON shares (hash);"
    "CREATE TABLE downloads ("
    "  hash         BLOB PRIMARY KEY NOT NULL CHECK (length(hash) = 32),"
    "  name         TEXT NOT NULL,"
    "  size         INTEGER NOT NULL CHECK (size >= 0),"
    "  chunk_size   INTEGER NOT NULL CHECK (chunk_size >= 1),"
    "  chunk_hashes BLOB,"
    "  have         BLOB NOT NULL,"
    "  out_path     TEXT,"
    "  state        TEXT NOT NULL CHECK (state IN ('active', 'complete', 'failed')),"
    "  created      INTEGER NOT NULL,"
    "  updated      INTEGER NOT NULL"
    ");"
    "CREATE TABLE bad_sources ("
    "  hash         BLOB NOT NULL REFERENCES downloads (hash) ON DELETE CASCADE,"
    "  peer_id      BLOB NOT NULL CHECK (length(peer_id) = 32),"
    "  failures     INTEGER NOT NULL,"
    "  last_failure INTEGER NOT NULL,"
    "  PRIMARY KEY (hash, peer_id)"
    ");"
    "CREATE TABLE host_cache ("
    "  sn_id        BLOB PRIMARY KEY NOT NULL CHECK (length(sn_id) = 32),"
    "  addrs        TEXT NOT NULL,"
    "  last_seen    INTEGER NOT NULL,"
    "  failures     INTEGER NOT NULL DEFAULT 0"
    ");",
    /* 1 -> 2: files are known by their file ID (fileid.h), no longer by
     * the SHA-256 of their content. The share cache held SHA-256s and
     * 1 MiB chunk hashes: dropped, the next scan hashes every file again.
     * Downloads were keyed by a SHA-256, which a file ID never equals:
     * they become history (legacy_downloads), those not complete as
     * failed with OP_STORE_LEGACY_REASON, so nothing reads an old key as
     * an ID. Their bad sources go with them. */
    "DROP INDEX shares_by_hash;"
    "DROP TABLE shares;"
    "CREATE TABLE legacy_downloads ("
    "  sha256       BLOB PRIMARY KEY NOT NULL CHECK (length(sha256) = 32),"
    "  name         TEXT NOT NULL,"
    "  size         INTEGER NOT NULL CHECK (size >= 0),"
    "  out_path     TEXT,"
    "  state        TEXT NOT NULL CHECK (state IN ('complete', 'failed')),"
    "  error        TEXT,"
    "  created      INTEGER NOT NULL,"
    "  updated      INTEGER NOT NULL"
    ");"
    "INSERT INTO legacy_downloads (sha256, name, size, out_path, state, error, created, updated)"
    "  SELECT hash, name, size, out_path,"
    "    CASE state WHEN 'complete' THEN 'complete' ELSE 'failed' END,"
    "    CASE state WHEN 'complete' THEN NULL ELSE '" OP_STORE_LEGACY_REASON "' END,"
    "    created, updated FROM downloads;"
    "DROP TABLE bad_sources;"
    "DROP TABLE downloads;"
    "CREATE TABLE shares ("
    "  path         TEXT PRIMARY KEY NOT NULL,"
    "  size         INTEGER NOT NULL CHECK (size >= 0),"
    "  mtime_ns     INTEGER NOT NULL,"
    "  inode        INTEGER NOT NULL,"
    "  id           BLOB NOT NULL CHECK (length(id) = 32),"
    "  root         BLOB NOT NULL CHECK (length(root) = 32),"
    "  sha256       BLOB NOT NULL CHECK (length(sha256) = 32),"
    "  layer_height INTEGER NOT NULL CHECK (layer_height BETWEEN 0 AND 16),"
    "  layer        BLOB NOT NULL,"
    "  racy         INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX shares_by_id ON shares (id);"
    "CREATE TABLE downloads ("
    "  id           BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 32),"
    "  name         TEXT NOT NULL,"
    "  size_hint    INTEGER NOT NULL CHECK (size_hint >= 0),"
    "  chunk_size   INTEGER NOT NULL CHECK (chunk_size >= 1),"
    "  size         INTEGER CHECK (size >= 0),"
    "  root         BLOB CHECK (length(root) = 32),"
    "  chunk_hashes BLOB,"
    "  have         BLOB NOT NULL,"
    "  out_path     TEXT,"
    "  path         TEXT,"
    "  sha256       BLOB CHECK (length(sha256) = 32),"
    "  error        TEXT,"
    "  state        TEXT NOT NULL CHECK (state IN ('active', 'complete', 'failed')),"
    "  created      INTEGER NOT NULL,"
    "  updated      INTEGER NOT NULL,"
    "  CHECK ((size IS NULL) = (root IS NULL) AND (size IS NULL) = (chunk_hashes IS NULL))"
    ");"
    "CREATE TABLE bad_sources ("
    "  id           BLOB NOT NULL REFERENCES downloads (id) ON DELETE CASCADE,"
    "  peer_id      BLOB NOT NULL CHECK (length(peer_id) = 32),"
    "  failures     INTEGER NOT NULL,"
    "  banned       INTEGER NOT NULL DEFAULT 0,"
    "  reason       TEXT,"
    "  last_failure INTEGER NOT NULL,"
    "  PRIMARY KEY (id, peer_id)"
    ");",
    /* 2 -> 3: transfer control (docs/TRANSFERS.md, "Queue, pause, cancel"):
     * a download may be paused (it keeps its verified chunks and waits for
     * `resume`), has a priority (0 low, 1 normal, 2 high) and a place in
     * the queue (seq: the order it was asked for; existing rows keep the
     * order they were made in). And several share folders: a cached file
     * is known by its absolute path (the folder's path, '/', its path in
     * the folder), so the rows of relative paths go: the next scan hashes
     * again. The folders added at run time (`sova-peer share add`) are
     * kept. */
    "ALTER TABLE downloads ADD COLUMN paused INTEGER NOT NULL DEFAULT 0"
    "  CHECK (paused IN (0, 1));"
    "ALTER TABLE downloads ADD COLUMN priority INTEGER NOT NULL DEFAULT 1"
    "  CHECK (priority BETWEEN 0 AND 2);"
    "ALTER TABLE downloads ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;"
    "UPDATE downloads SET seq = rowid;"
    "DELETE FROM shares;"
    "CREATE TABLE share_folders ("
    "  path         TEXT PRIMARY KEY NOT NULL,"
    "  added        INTEGER NOT NULL"
    ");",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == OP_STORE_SCHEMA_VERSION,
               "one migration per schema version");

/* Per connection, not in the file: the paths a scan saw, for prune. */
#define SQL_TEMP_SCHEMA "CREATE TEMP TABLE IF NOT EXISTS share_seen (path TEXT PRIMARY KEY)"

#define SHARE_COLS "path, size, mtime_ns, inode, id, root, sha256, layer_height, layer, racy"
#define DOWNLOAD_COLS                                                                              \
    "id, name, size_hint, chunk_size, size, root, chunk_hashes, have, out_path, path, sha256,"     \
    " error, state, created, updated, paused, priority, seq"

/* ---- statements (enum stmt_id is in op_store_int.h) ------------------------------ */

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_BEGIN_DEFERRED] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SHARE_LOOKUP] = "SELECT " SHARE_COLS " FROM shares WHERE path = ?1 AND size = ?2"
                        " AND mtime_ns = ?3 AND inode = ?4 AND racy = 0",
    [ST_SHARE_UPSERT] = "INSERT OR REPLACE INTO shares (" SHARE_COLS ")"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [ST_SHARE_ALL] = "SELECT " SHARE_COLS " FROM shares ORDER BY path",
    [ST_SHARE_BY_ID] = "SELECT " SHARE_COLS " FROM shares WHERE id = ?1 ORDER BY path LIMIT 1",
    [ST_SEEN_CLEAR] = "DELETE FROM temp.share_seen",
    [ST_SEEN_ADD] = "INSERT OR IGNORE INTO temp.share_seen (path) VALUES (?1)",
    [ST_SHARE_PRUNE] = "DELETE FROM shares WHERE path NOT IN (SELECT path FROM temp.share_seen)",
    [ST_DL_CREATE] = "INSERT INTO downloads (id, name, size_hint, chunk_size, have, out_path,"
                     " state, created, updated, priority, seq)"
                     " VALUES (?1, ?2, ?3, ?4, zeroblob(0), ?5, 'active', ?6, ?6, ?7,"
                     " (SELECT coalesce(max(seq), 0) + 1 FROM downloads))"
                     " ON CONFLICT (id) DO NOTHING",
    [ST_DL_GET] = "SELECT " DOWNLOAD_COLS " FROM downloads WHERE id = ?1",
    [ST_DL_ALL] = "SELECT " DOWNLOAD_COLS " FROM downloads WHERE ?1 = 0 OR state = 'active'"
                  " ORDER BY seq, id",
    /* ?2 size, ?3 root, ?4 chunk hashes: the bitmap stays only for the
     * same manifest; a new one starts with nothing verified. */
    [ST_DL_SET_MANIFEST] = "UPDATE downloads SET"
                           " have = CASE WHEN size IS ?2 AND root IS ?3 AND chunk_hashes IS ?4"
                           "        THEN have"
                           "        ELSE zeroblob(((?2 + chunk_size - 1) / chunk_size + 7) / 8)"
                           "        END,"
                           " size = ?2, root = ?3, chunk_hashes = ?4, updated = ?5"
                           " WHERE id = ?1 AND state = 'active'"
                           " AND length(?4) = 32 * ((?2 + chunk_size - 1) / chunk_size)",
    [ST_DL_MARK] = "UPDATE downloads SET have = sova_bit_set(have, ?2), updated = ?3"
                   " WHERE id = ?1 AND state = 'active' AND chunk_hashes IS NOT NULL"
                   " AND ?2 < " SQL_N_CHUNKS,
    [ST_DL_HAVE] = "SELECT have, coalesce(" SQL_N_CHUNKS ", 0) FROM downloads WHERE id = ?1",
    [ST_DL_COMPLETE] = "UPDATE downloads SET state = 'complete', path = ?2, sha256 = ?3,"
                       " error = NULL, updated = ?4 WHERE id = ?1 AND state = 'active'"
                       " AND chunk_hashes IS NOT NULL AND sova_popcount(have) = " SQL_N_CHUNKS,
    [ST_DL_FAIL] = "UPDATE downloads SET state = 'failed', error = ?2, updated = ?3 WHERE id = ?1",
    [ST_DL_ACTIVATE] =
        "UPDATE downloads SET state = 'active', paused = 0, error = NULL, path = NULL,"
        " sha256 = NULL, out_path = coalesce(?2, out_path),"
        " have = CASE WHEN ?3 THEN zeroblob(length(have)) ELSE have END,"
        " updated = ?4 WHERE id = ?1",
    [ST_DL_DELETE] = "DELETE FROM downloads WHERE id = ?1",
    [ST_DL_PAUSE] = "UPDATE downloads SET paused = ?2, updated = ?3 WHERE id = ?1"
                    " AND state = 'active'",
    [ST_DL_PRIORITY] = "UPDATE downloads SET priority = ?2, updated = ?3 WHERE id = ?1",
    [ST_BAD_RECORD] = "INSERT INTO bad_sources (id, peer_id, failures, reason, last_failure)"
                      " VALUES (?1, ?2, 1, ?3, ?4) ON CONFLICT (id, peer_id) DO UPDATE"
                      " SET failures = failures + 1, reason = excluded.reason,"
                      " last_failure = excluded.last_failure"
                      " RETURNING failures",
    [ST_BAD_BAN] = "INSERT INTO bad_sources (id, peer_id, failures, banned, reason, last_failure)"
                   " VALUES (?1, ?2, 1, 1, ?3, ?4) ON CONFLICT (id, peer_id) DO UPDATE"
                   " SET banned = 1, reason = excluded.reason,"
                   " last_failure = excluded.last_failure",
    [ST_BAD_GET] = "SELECT failures, banned FROM bad_sources WHERE id = ?1 AND peer_id = ?2",
    [ST_BAD_LIST] = "SELECT peer_id, failures, banned, reason, last_failure FROM bad_sources"
                    " WHERE id = ?1 ORDER BY banned DESC, last_failure DESC, peer_id",
    [ST_FOLDER_ADD] = "INSERT OR IGNORE INTO share_folders (path, added) VALUES (?1, ?2)",
    [ST_FOLDER_REMOVE] = "DELETE FROM share_folders WHERE path = ?1",
    [ST_FOLDER_ALL] = "SELECT path FROM share_folders ORDER BY path",
    [ST_LEGACY_ALL] = "SELECT sha256, name, size, out_path, state, error, created, updated"
                      " FROM legacy_downloads ORDER BY created, sha256",
    [ST_HOST_PUT] =
        ("INSERT INTO host_cache (sn_id, addrs, last_seen, failures) VALUES (?1, ?2, ?3, 0)"
         " ON CONFLICT (sn_id) DO UPDATE SET addrs = excluded.addrs,"
         " last_seen = excluded.last_seen, failures = 0"),
    [ST_HOST_FAIL] = ("UPDATE host_cache SET failures = failures + 1 WHERE sn_id = ?1"),
    [ST_HOST_ALL] = ("SELECT sn_id, addrs, last_seen, failures FROM host_cache"
                     " ORDER BY failures, last_seen DESC LIMIT ?1"),
};

/* ---- errors -------------------------------------------------------------------- */
int store_fail(struct op_store *st, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->err, sizeof(st->err), fmt, ap);
    va_end(ap);
    return code;
}

/* The connection's last SQLite error, as "what: message". Call before the
 * statement is reset. */
int store_db_fail(struct op_store *st, const char *what)
{
    int rc = sqlite3_errcode(st->db);
    int code = SOVA_ERR_IO;
    if (rc == SQLITE_NOMEM)
        code = SOVA_ERR_NOMEM;
    else if (rc == SQLITE_CONSTRAINT)
        code = SOVA_ERR_INVALID;
    return store_fail(st, code, "%s: %s", what, sqlite3_errmsg(st->db));
}

int store_corrupt(struct op_store *st, const char *table)
{
    return store_fail(st, SOVA_ERR_IO, "%s: malformed row in the database", table);
}

const char *op_store_errmsg(const struct op_store *st)
{
    return st->err;
}

/* ---- statement helpers ---------------------------------------------------------- */
int store_stmt(struct op_store *st, enum stmt_id id, sqlite3_stmt **out)
{
    *out = NULL;
    if (st->stmts[id] == NULL &&
        sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st->stmts[id],
                           NULL) != SQLITE_OK)
        return store_db_fail(st, "prepare");
    *out = st->stmts[id];
    return 0;
}

void store_stmt_end(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* Step s once: 1 with a row, 0 at the end, or an error. Resets s unless a
 * row is returned. */
int store_next_row(struct op_store *st, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        return 1;
    int ret = rc == SQLITE_DONE ? 0 : store_db_fail(st, what);
    store_stmt_end(s);
    return ret;
}

/* Run a statement that returns no rows. */
int store_run(struct op_store *st, sqlite3_stmt *s, const char *what)
{
    int rc = store_next_row(st, s, what);
    if (rc > 0) {
        store_stmt_end(s);
        return store_fail(st, SOVA_ERR_INTERNAL, "%s: unexpected row", what);
    }
    return rc;
}

static int run_id(struct op_store *st, enum stmt_id id, const char *what)
{
    sqlite3_stmt *s;
    int rc = store_stmt(st, id, &s);
    return rc != 0 ? rc : store_run(st, s, what);
}

/* A zero-length blob must be bound as a blob, not as NULL. */
void store_bind_blob(sqlite3_stmt *s, int i, const void *p, size_t n)
{
    if (n == 0)
        sqlite3_bind_zeroblob(s, i, 0);
    else
        sqlite3_bind_blob64(s, i, p, n, SQLITE_STATIC);
}

void store_bind_hash(sqlite3_stmt *s, int i, const uint8_t hash[OP_STORE_HASH_LEN])
{
    store_bind_blob(s, i, hash, OP_STORE_HASH_LEN);
}

/* Copy blob column col of exactly len bytes into *out (NULL when len is 0). */
int store_col_blob(struct op_store *st, sqlite3_stmt *s, int col, size_t len, uint8_t **out,
                   const char *table)
{
    *out = NULL;
    if (sqlite3_column_type(s, col) != SQLITE_BLOB || (size_t)sqlite3_column_bytes(s, col) != len)
        return store_corrupt(st, table);
    if (len == 0)
        return 0;
    *out = malloc(len);
    if (*out == NULL)
        return store_fail(st, SOVA_ERR_NOMEM, "%s: out of memory", table);
    memcpy(*out, sqlite3_column_blob(s, col), len);
    return 0;
}

int store_col_hash(struct op_store *st, sqlite3_stmt *s, int col, uint8_t out[OP_STORE_HASH_LEN],
                   const char *table)
{
    if (sqlite3_column_type(s, col) != SQLITE_BLOB ||
        sqlite3_column_bytes(s, col) != OP_STORE_HASH_LEN)
        return store_corrupt(st, table);
    memcpy(out, sqlite3_column_blob(s, col), OP_STORE_HASH_LEN);
    return 0;
}

/* strdup of a TEXT column; NULL stays NULL when nullable. */
int store_col_text(struct op_store *st, sqlite3_stmt *s, int col, bool nullable, char **out,
                   const char *table)
{
    *out = NULL;
    const unsigned char *text = sqlite3_column_text(s, col);
    if (text == NULL)
        return nullable && sqlite3_column_type(s, col) == SQLITE_NULL ? 0
                                                                      : store_corrupt(st, table);
    *out = strdup((const char *)text);
    return *out != NULL ? 0 : store_fail(st, SOVA_ERR_NOMEM, "%s: out of memory", table);
}

uint64_t store_chunk_count(uint64_t size, uint64_t chunk_size)
{
    return size / chunk_size + (size % chunk_size != 0);
}

/* size and chunk_size of a row (or an argument) describe a valid file. */
bool store_sizes_valid(int64_t size, int64_t chunk_size)
{
    return size >= 0 && chunk_size >= 1 && chunk_size <= UINT32_MAX &&
           size <= INT64_MAX - chunk_size &&
           store_chunk_count((uint64_t)size, (uint64_t)chunk_size) <= UINT32_MAX;
}

int64_t store_now(void)
{
    return (int64_t)(sova_wall_ms() / 1000);
}

/* Run body inside begin (ST_BEGIN: take the write lock now) ... COMMIT;
 * roll back if it fails. */
int store_in_transaction(struct op_store *st, enum stmt_id begin, store_body_fn *body, void *ctx)
{
    int rc = run_id(st, begin, "begin");
    if (rc != 0)
        return rc;
    rc = body(st, ctx);
    if (rc == 0)
        rc = run_id(st, ST_COMMIT, "commit");
    if (rc != 0 && !sqlite3_get_autocommit(st->db)) {
        char saved[OP_STORE_ERR_MAX];
        memcpy(saved, st->err, sizeof(saved));
        run_id(st, ST_ROLLBACK, "rollback");
        memcpy(st->err, saved, sizeof(saved));
    }
    return rc;
}

/* Step a bound statement for at most one row, read by read into out. */
int store_find_one(struct op_store *st, sqlite3_stmt *s, store_row_fn *read, void *out, bool *found,
                   const char *what)
{
    *found = false;
    int rc = store_next_row(st, s, what);
    if (rc <= 0)
        return rc;
    rc = read(st, s, out);
    store_stmt_end(s);
    *found = rc == 0;
    return rc;
}

/* ---- SQL functions ------------------------------------------------------------------ */
/* sova_bit_set(bitmap, index): a copy of bitmap with bit index set. */
static void sql_bit_set(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    if (sqlite3_value_type(argv[0]) != SQLITE_BLOB) {
        sqlite3_result_error(ctx, "sova_bit_set: not a bitmap", -1);
        return;
    }
    int len = sqlite3_value_bytes(argv[0]);
    sqlite3_int64 index = sqlite3_value_int64(argv[1]);
    if (index < 0 || index >= (sqlite3_int64)len * 8) {
        sqlite3_result_error(ctx, "sova_bit_set: index out of range", -1);
        return;
    }
    uint8_t *bits = sqlite3_malloc(len);
    if (bits == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    memcpy(bits, sqlite3_value_blob(argv[0]), (size_t)len);
    bits[index / 8] |= (uint8_t)(0x80u >> (index % 8));
    sqlite3_result_blob(ctx, bits, len, sqlite3_free);
}

uint32_t store_popcount(const uint8_t *bits, size_t len)
{
    uint32_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += (uint32_t)__builtin_popcount(bits[i]);
    return n;
}

/* sova_popcount(bitmap): bits set. */
static void sql_popcount(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const uint8_t *bits = sqlite3_value_blob(argv[0]);
    int len = sqlite3_value_bytes(argv[0]);
    sqlite3_result_int64(ctx, bits != NULL ? store_popcount(bits, (size_t)len) : 0);
}

/* ---- open/close ---------------------------------------------------------------------- */
static int exec(struct op_store *st, const char *sql, const char *what)
{
    if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return store_db_fail(st, what);
    return 0;
}

/* The single value of a PRAGMA query, as text into buf. */
static int pragma_text(struct op_store *st, const char *sql, char *buf, size_t cap)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return store_db_fail(st, sql);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        rc = store_db_fail(st, sql);
        sqlite3_finalize(s);
        return rc;
    }
    const unsigned char *v = sqlite3_column_text(s, 0);
    snprintf(buf, cap, "%s", v != NULL ? (const char *)v : "");
    sqlite3_finalize(s);
    return 0;
}

static int migrate_body(struct op_store *st, void *ctx)
{
    (void)ctx;
    char buf[32];
    int rc = pragma_text(st, "PRAGMA user_version", buf, sizeof(buf));
    if (rc != 0)
        return rc;
    long version = strtol(buf, NULL, 10);
    if (version > OP_STORE_SCHEMA_VERSION)
        return store_fail(
            st, SOVA_ERR_VERSION,
            "database schema version %ld is newer than this sova-peer understands (%d);"
            " upgrade sova-peer or use another state directory",
            version, OP_STORE_SCHEMA_VERSION);
    if (version < 0)
        return store_fail(st, SOVA_ERR_IO, "database schema version %ld is invalid", version);
    for (long v = version; v < OP_STORE_SCHEMA_VERSION; v++) {
        rc = exec(st, migrations[v], "migrate");
        if (rc != 0)
            return rc;
    }
    if (version == OP_STORE_SCHEMA_VERSION)
        return 0;
    snprintf(buf, sizeof(buf), "PRAGMA user_version = %d", OP_STORE_SCHEMA_VERSION);
    return exec(st, buf, "set user_version");
}

static int configure(struct op_store *st)
{
    sqlite3_busy_timeout(st->db, OP_STORE_BUSY_TIMEOUT_MS);
    int rc = exec(st,
                  "PRAGMA foreign_keys = ON; PRAGMA trusted_schema = OFF;"
                  " PRAGMA synchronous = FULL",
                  "configure");
    if (rc != 0)
        return rc;
    char mode[16];
    rc = pragma_text(st, "PRAGMA journal_mode = WAL", mode, sizeof(mode));
    if (rc != 0)
        return rc;
    if (strcmp(mode, "wal") != 0)
        return store_fail(st, SOVA_ERR_IO, "cannot switch to WAL journal mode (got %s)", mode);
    const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY;
    if (sqlite3_create_function(st->db, "sova_bit_set", 2, flags, NULL, sql_bit_set, NULL, NULL) !=
            SQLITE_OK ||
        sqlite3_create_function(st->db, "sova_popcount", 1, flags, NULL, sql_popcount, NULL,
                                NULL) != SQLITE_OK)
        return store_db_fail(st, "register functions");
    rc = store_in_transaction(st, ST_BEGIN, migrate_body, NULL);
    if (rc != 0)
        return rc;
    return exec(st, SQL_TEMP_SCHEMA, "temp schema");
}

int op_store_open(const char *path, struct op_store **out, char *err, size_t errlen)
{
    *out = NULL;
    struct op_store *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: out of memory", path);
        return SOVA_ERR_NOMEM;
    }
    int rc;
    if (sqlite3_open_v2(path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        rc = st->db != NULL ? store_db_fail(st, "open")
                            : store_fail(st, SOVA_ERR_NOMEM, "open: out of memory");
    else
        rc = configure(st);
    if (rc != 0) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: %s", path, st->err);
        op_store_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

void op_store_close(struct op_store *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(st->stmts[i]);
    sqlite3_close_v2(st->db);
    free(st);
}

/* ---- share cache ------------------------------------------------------------------------ */
void op_store_share_clear(struct op_store_share *s)
{
    free(s->path);
    free(s->layer);
    memset(s, 0, sizeof(*s));
}

static int read_share(struct op_store *st, sqlite3_stmt *s, void *out)
{
    struct op_store_share *row = out;
    memset(row, 0, sizeof(*row));
    int64_t size = sqlite3_column_int64(s, 1), height = sqlite3_column_int64(s, 7);
    if (size < 0 || (uint64_t)size > FILEID_MAX_SIZE || height < 0 || height > FILEID_MAX_HEIGHT ||
        fileid_chunks((uint64_t)size, (unsigned)height) > UINT32_MAX)
        return store_corrupt(st, "shares");
    row->size = (uint64_t)size;
    row->mtime_ns = sqlite3_column_int64(s, 2);
    row->inode = (uint64_t)sqlite3_column_int64(s, 3);
    row->layer_height = (uint32_t)height;
    row->n_layer = (uint32_t)fileid_chunks(row->size, row->layer_height);
    row->racy = sqlite3_column_int(s, 9) != 0;
    int rc = store_col_text(st, s, 0, false, &row->path, "shares");
    if (rc == 0)
        rc = store_col_hash(st, s, 4, row->id, "shares");
    if (rc == 0)
        rc = store_col_hash(st, s, 5, row->root, "shares");
    if (rc == 0)
        rc = store_col_hash(st, s, 6, row->sha256, "shares");
    if (rc == 0)
        rc = store_col_blob(st, s, 8, (size_t)row->n_layer * OP_STORE_HASH_LEN, &row->layer,
                            "shares");
    if (rc != 0)
        op_store_share_clear(row);
    return rc;
}

int op_store_share_lookup(struct op_store *st, const char *path, uint64_t size, int64_t mtime_ns,
                          uint64_t inode, struct op_store_share *out, bool *found)
{
    sqlite3_stmt *s;
    memset(out, 0, sizeof(*out));
    *found = false;
    if (size > INT64_MAX)
        return 0; /* no row can hold it */
    int rc = store_stmt(st, ST_SHARE_LOOKUP, &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)size);
    sqlite3_bind_int64(s, 3, mtime_ns);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)inode);
    return store_find_one(st, s, read_share, out, found, "share lookup");
}

struct upsert_ctx {
    const struct op_store_share *rows;
    size_t n;
};

static int upsert_body(struct op_store *st, void *arg)
{
    const struct upsert_ctx *c = arg;
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_SHARE_UPSERT, &s);
    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        const struct op_store_share *r = &c->rows[i];
        if (r->path == NULL || r->size > FILEID_MAX_SIZE || r->layer_height > FILEID_MAX_HEIGHT ||
            r->n_layer != fileid_chunks(r->size, r->layer_height) ||
            (r->n_layer > 0 && r->layer == NULL))
            return store_fail(st, SOVA_ERR_INVALID, "share upsert: row %zu is inconsistent", i);
        sqlite3_bind_text(s, 1, r->path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)r->size);
        sqlite3_bind_int64(s, 3, r->mtime_ns);
        sqlite3_bind_int64(s, 4, (sqlite3_int64)r->inode);
        store_bind_hash(s, 5, r->id);
        store_bind_hash(s, 6, r->root);
        store_bind_hash(s, 7, r->sha256);
        sqlite3_bind_int64(s, 8, r->layer_height);
        store_bind_blob(s, 9, r->layer, (size_t)r->n_layer * OP_STORE_HASH_LEN);
        sqlite3_bind_int(s, 10, r->racy);
        rc = store_run(st, s, "share upsert");
    }
    return rc;
}

int op_store_share_upsert(struct op_store *st, const struct op_store_share *rows, size_t n)
{
    struct upsert_ctx c = {rows, n};
    return n == 0 ? 0 : store_in_transaction(st, ST_BEGIN, upsert_body, &c);
}

struct seen_ctx {
    const char *const *paths;
    size_t n;
};

/* Fill temp.share_seen with paths. The temporary database belongs to this
 * connection alone: filling it takes no lock another connection waits on. */
static int seen_fill(struct op_store *st, void *arg)
{
    const struct seen_ctx *c = arg;
    sqlite3_stmt *s;
    int rc = run_id(st, ST_SEEN_CLEAR, "prune");
    if (rc == 0)
        rc = store_stmt(st, ST_SEEN_ADD, &s);
    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        sqlite3_bind_text(s, 1, c->paths[i], -1, SQLITE_STATIC);
        rc = store_run(st, s, "prune");
    }
    return rc;
}

int op_store_share_prune(struct op_store *st, const char *const *paths, size_t n,
                         uint64_t *n_deleted)
{
    struct seen_ctx c = {paths, n};
    uint64_t deleted = 0;
    int rc = store_in_transaction(st, ST_BEGIN_DEFERRED, seen_fill, &c);
    if (rc == 0)
        rc = run_id(st, ST_SHARE_PRUNE, "prune"); /* one statement: the only write lock */
    if (rc == 0) {
        deleted = (uint64_t)sqlite3_changes64(st->db);
        rc = run_id(st, ST_SEEN_CLEAR, "prune");
    }
    if (n_deleted != NULL)
        *n_deleted = deleted;
    return rc;
}

int op_store_share_foreach(struct op_store *st, op_store_share_fn *fn, void *arg)
{
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_SHARE_ALL, &s);
    if (rc != 0)
        return rc;
    while ((rc = store_next_row(st, s, "list shares")) > 0) {
        struct op_store_share row;
        rc = read_share(st, s, &row);
        if (rc == 0) {
            rc = fn(&row, arg);
            op_store_share_clear(&row);
        }
        if (rc != 0) {
            store_stmt_end(s);
            break;
        }
    }
    return rc;
}

int op_store_share_find_id(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                           struct op_store_share *out, bool *found)
{
    sqlite3_stmt *s;
    memset(out, 0, sizeof(*out));
    *found = false;
    int rc = store_stmt(st, ST_SHARE_BY_ID, &s);
    if (rc != 0)
        return rc;
    store_bind_hash(s, 1, id);
    return store_find_one(st, s, read_share, out, found, "share by id");
}
