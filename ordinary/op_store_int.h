/* op_store_int.h - private to op_store*.c: the connection
 * struct, the statement table and the helpers both files use. */
#ifndef SOVA_OP_STORE_INT_H
#define SOVA_OP_STORE_INT_H

#ifndef OP_STORE_INTERNAL
#error "op_store_int.h is private to op_store*.c; include op_store.h"
#endif

#include "op_store.h"

#include <sqlite3.h>

/* Every statement, prepared once per connection; SQL in op_store.c. */
enum stmt_id {
    ST_BEGIN, /* IMMEDIATE */
    ST_BEGIN_DEFERRED,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SHARE_LOOKUP,
    ST_SHARE_UPSERT,
    ST_SHARE_ALL,
    ST_SHARE_BY_ID,
    ST_SEEN_CLEAR,
    ST_SEEN_ADD,
    ST_SHARE_PRUNE,
    ST_DL_CREATE,
    ST_DL_GET,
    ST_DL_ALL,
    ST_DL_SET_MANIFEST,
    ST_DL_MARK,
    ST_DL_HAVE,
    ST_DL_COMPLETE,
    ST_DL_FAIL,
    ST_DL_ACTIVATE,
    ST_DL_DELETE,
    ST_DL_PAUSE,
    ST_DL_PRIORITY,
    ST_BAD_RECORD,
    ST_BAD_BAN,
    ST_BAD_GET,
    ST_BAD_LIST,
    ST_LEGACY_ALL,
    ST_HOST_PUT,
    ST_HOST_FAIL,
    ST_HOST_ALL,
    ST_FOLDER_ADD,
    ST_FOLDER_REMOVE,
    ST_FOLDER_ALL,
    ST_COUNT
};

struct op_store {
    sqlite3 *db;
    sqlite3_stmt *stmts[ST_COUNT];
    char err[OP_STORE_ERR_MAX];
};

/* ---- errors: each sets st->err and returns its code -------------------------- */
int store_fail(struct op_store *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The connection's last SQLite error as "what: message" (call before the
 * statement is reset): SOVA_ERR_NOMEM, SOVA_ERR_INVALID for a constraint,
 * else SOVA_ERR_IO. */
int store_db_fail(struct op_store *st, const char *what);
/* SOVA_ERR_IO: a row that the schema's checks should have prevented. */
int store_corrupt(struct op_store *st, const char *table);

/* ---- statements ----------------------------------------------------------------- */
int store_stmt(struct op_store *st, enum stmt_id id, sqlite3_stmt **out);
/* Reset and clear the bindings, ready for the next use. */
void store_stmt_end(sqlite3_stmt *s);
/* Step once: 1 with a row, 0 at the end, or an error; s is reset unless a
 * row is returned. */
int store_next_row(struct op_store *st, sqlite3_stmt *s, const char *what);
/* Step a statement that returns no rows to its end. */
int store_run(struct op_store *st, sqlite3_stmt *s, const char *what);
typedef int store_body_fn(struct op_store *st, void *ctx);
/* Run body between begin (ST_BEGIN or ST_BEGIN_DEFERRED) and COMMIT, rolling
 * back when it fails: all of it or nothing, one fsync. */
int store_in_transaction(struct op_store *st, enum stmt_id begin, store_body_fn *body, void *ctx);

typedef int store_row_fn(struct op_store *st, sqlite3_stmt *s, void *out);
/* Step a bound statement for at most one row, read by read into out. */
int store_find_one(struct op_store *st, sqlite3_stmt *s, store_row_fn *read, void *out, bool *found,
                   const char *what);

/* ---- values -------------------------------------------------------------------- */
/* Bind n bytes (a zero-length blob stays a blob, not NULL). */
void store_bind_blob(sqlite3_stmt *s, int i, const void *p, size_t n);
void store_bind_hash(sqlite3_stmt *s, int i, const uint8_t hash[OP_STORE_HASH_LEN]);
/* Copy blob column col of exactly len bytes into *out (NULL when len is 0). */
int store_col_blob(struct op_store *st, sqlite3_stmt *s, int col, size_t len, uint8_t **out,
                   const char *table);
int store_col_hash(struct op_store *st, sqlite3_stmt *s, int col, uint8_t out[OP_STORE_HASH_LEN],
                   const char *table);
/* strdup of a TEXT column; SQL NULL gives NULL when nullable. */
int store_col_text(struct op_store *st, sqlite3_stmt *s, int col, bool nullable, char **out,
                   const char *table);

uint64_t store_chunk_count(uint64_t size, uint64_t chunk_size);
/* size and chunk_size describe a file the schema can hold. */
bool store_sizes_valid(int64_t size, int64_t chunk_size);
uint32_t store_popcount(const uint8_t *bits, size_t len);
int64_t store_now(void); /* unix seconds */

#endif
