/* op_store_dl.c - downloads, bad sources and the downloads of schema 1 in
 * the peer's SQLite state (op_store.h). The SQL is with the schema in
 * op_store.c. Every state change is one UPDATE, so it is atomic and
 * durable when it returns. */
#define OP_STORE_INTERNAL
#include "err.h"
#include "fileid.h"
#include "op_store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- downloads ------------------------------------------------------------------------------ */
static const char *const state_names[] = {
    [OP_DOWNLOAD_ACTIVE] = "active",
    [OP_DOWNLOAD_COMPLETE] = "complete",
    [OP_DOWNLOAD_FAILED] = "failed",
};
#define N_STATES (sizeof(state_names) / sizeof(state_names[0]))

const char *op_download_state_name(enum op_download_state state)
{
    return (unsigned)state < N_STATES ? state_names[state] : "?";
}

/* The state named by a TEXT column; N_STATES if none. */
static size_t state_of(sqlite3_stmt *s, int col)
{
    const unsigned char *state = sqlite3_column_text(s, col);
    for (size_t i = 0; state != NULL && i < N_STATES; i++)
        if (strcmp((const char *)state, state_names[i]) == 0)
            return i;
    return N_STATES;
}

void op_store_download_clear(struct op_store_download *d)
{
    free(d->name);
    free(d->chunk_hashes);
    free(d->have);
    free(d->out_path);
    free(d->path);
    free(d->error);
    memset(d, 0, sizeof(*d));
}

bool op_store_bitmap_get(const uint8_t *bitmap, uint32_t index)
{
    return (bitmap[index / 8] & (0x80u >> (index % 8))) != 0;
}

static size_t bitmap_len(uint32_t n_chunks)
{
    return ((size_t)n_chunks + 7) / 8;
}

/* A chunk size a download may have: a power of two a request can carry. */
static bool chunk_size_valid(int64_t chunk_size)
{
    return chunk_size >= FILEID_BLOCK && chunk_size <= UINT32_MAX &&
           (chunk_size & (chunk_size - 1)) == 0;
}

/* Columns: id, name, size_hint, chunk_size, size, root, chunk_hashes, have,
 * out_path, path, sha256, error, state, created, updated, paused, priority,
 * seq. */
static int read_download(struct op_store *st, sqlite3_stmt *s, void *out)
{
    struct op_store_download *d = out;
    memset(d, 0, sizeof(*d));
    int64_t hint = sqlite3_column_int64(s, 2), chunk_size = sqlite3_column_int64(s, 3);
    d->has_manifest = sqlite3_column_type(s, 4) != SQLITE_NULL;
    int64_t size = d->has_manifest ? sqlite3_column_int64(s, 4) : 0;
    if (hint < 0 || !chunk_size_valid(chunk_size) || !store_sizes_valid(size, chunk_size))
        return store_corrupt(st, "downloads");
    d->size_hint = (uint64_t)hint;
    d->chunk_size = (uint32_t)chunk_size;
    d->size = (uint64_t)size;
    d->n_chunks = (uint32_t)store_chunk_count(d->size, d->chunk_size);
    d->has_sha256 = sqlite3_column_type(s, 10) != SQLITE_NULL;
    d->created = sqlite3_column_int64(s, 13);
    d->updated = sqlite3_column_int64(s, 14);
    d->paused = sqlite3_column_int64(s, 15) != 0;
    int64_t priority = sqlite3_column_int64(s, 16);
    d->seq = sqlite3_column_int64(s, 17);
    size_t known = state_of(s, 12);
    d->state = (enum op_download_state)known;
    int rc =
        known == N_STATES || priority < OP_STORE_PRIORITY_LOW || priority > OP_STORE_PRIORITY_HIGH
            ? store_corrupt(st, "downloads")
            : 0;
    d->priority = (unsigned)priority;
    if (rc == 0)
        rc = store_col_hash(st, s, 0, d->id, "downloads");
    if (rc == 0)
        rc = store_col_text(st, s, 1, false, &d->name, "downloads");
    if (rc == 0 && d->has_manifest)
        rc = store_col_hash(st, s, 5, d->root, "downloads");
    if (rc == 0 && d->has_manifest)
        rc = store_col_blob(st, s, 6, (size_t)d->n_chunks * OP_STORE_HASH_LEN, &d->chunk_hashes,
                            "downloads");
    if (rc == 0)
        rc = store_col_blob(st, s, 7, bitmap_len(d->n_chunks), &d->have, "downloads");
    if (rc == 0)
        rc = store_col_text(st, s, 8, true, &d->out_path, "downloads");
    if (rc == 0)
        rc = store_col_text(st, s, 9, true, &d->path, "downloads");
    if (rc == 0 && d->has_sha256)
        rc = store_col_hash(st, s, 10, d->sha256, "downloads");
    if (rc == 0)
        rc = store_col_text(st, s, 11, true, &d->error, "downloads");
    if (rc != 0) {
        op_store_download_clear(d);
        return rc;
    }
    d->n_have = d->have != NULL ? store_popcount(d->have, bitmap_len(d->n_chunks)) : 0;
    return 0;
}

int op_store_download_create(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                             const char *name, uint64_t size_hint, uint32_t chunk_size,
                             const char *out_path, bool *existed)
{
    if (existed != NULL)
        *existed = false;
    if (name == NULL || name[0] == '\0' || size_hint > INT64_MAX || !chunk_size_valid(chunk_size))
        return store_fail(st, SOVA_ERR_INVALID, "download create: bad name, size or chunk size");
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_DL_CREATE, &s);
    if (rc != 0)
        return rc;
    store_bind_hash(s, 1, id);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)size_hint);
    sqlite3_bind_int64(s, 4, chunk_size);
    if (out_path != NULL)
        sqlite3_bind_text(s, 5, out_path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, store_now());
    sqlite3_bind_int(s, 7, OP_STORE_PRIORITY_NORMAL);
    rc = store_run(st, s, "download create");
    if (rc == 0 && existed != NULL)
        *existed = sqlite3_changes(st->db) == 0;
    return rc;
}

int op_store_download_get(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                          struct op_store_download *out, bool *found)
{
    sqlite3_stmt *s;
    memset(out, 0, sizeof(*out));
    *found = false;
    int rc = store_stmt(st, ST_DL_GET, &s);
    if (rc != 0)
        return rc;
    store_bind_hash(s, 1, id);
    return store_find_one(st, s, read_download, out, found, "download get");
}

int op_store_download_foreach(struct op_store *st, bool active_only, op_store_download_fn *fn,
                              void *arg)
{
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_DL_ALL, &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int(s, 1, active_only);
    while ((rc = store_next_row(st, s, "list downloads")) > 0) {
        struct op_store_download d;
        rc = read_download(st, s, &d);
        if (rc == 0) {
            rc = fn(&d, arg);
            op_store_download_clear(&d);
        }
        if (rc != 0) {
            store_stmt_end(s);
            break;
        }
    }
    return rc;
}

/* What a download update requires of its row. */
enum need {
    NEED_ACTIVE = 1 << 0,
    NEED_MANIFEST = 1 << 1,
    NEED_ALL_CHUNKS = 1 << 2,
};

/* What an UPDATE checked against the chunk count, for explain_refusal. */
struct chunk_arg {
    const char *label; /* "chunk index"; NULL if none */
    uint32_t value;
};

/* An UPDATE matched no row: say which requirement the row failed. */
static int explain_refusal(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                           const char *what, unsigned need, struct chunk_arg arg)
{
    struct op_store_download d;
    bool found;
    int rc = op_store_download_get(st, id, &d, &found);
    if (rc != 0)
        return rc;
    char hex[9];
    snprintf(hex, sizeof(hex), "%02x%02x%02x%02x", id[0], id[1], id[2], id[3]);
    if (!found)
        rc = store_fail(st, SOVA_ERR_INVALID, "%s: no download %s", what, hex);
    else if ((need & NEED_ACTIVE) && d.state != OP_DOWNLOAD_ACTIVE)
        rc = store_fail(st, SOVA_ERR_INVALID, "%s: download %s is %s", what, hex,
                        op_download_state_name(d.state));
    else if ((need & NEED_MANIFEST) && !d.has_manifest)
        rc = store_fail(st, SOVA_ERR_INVALID, "%s: download %s has no manifest yet", what, hex);
    else if ((need & NEED_ALL_CHUNKS) && d.n_have < d.n_chunks)
        rc = store_fail(st, SOVA_ERR_INVALID, "%s: download %s has %u of %u chunks verified", what,
                        hex, d.n_have, d.n_chunks);
    else if (arg.label != NULL)
        rc = store_fail(st, SOVA_ERR_INVALID, "%s: download %s: %s %u does not fit its %s", what,
                        hex, arg.label, arg.value,
                        d.has_manifest ? "chunks" : "size (no manifest yet)");
    else
        rc = store_fail(st, SOVA_ERR_INTERNAL, "%s: download %s: refused for no known reason", what,
                        hex);
    op_store_download_clear(&d);
    return rc;
}

/* Run a bound download UPDATE; when it changes nothing, explain why. */
static int update_download(struct op_store *st, sqlite3_stmt *s,
                           const uint8_t id[OP_STORE_HASH_LEN], const char *what, unsigned need,
                           struct chunk_arg arg)
{
    int rc = store_run(st, s, what);
    if (rc == 0 && sqlite3_changes(st->db) == 0)
        rc = explain_refusal(st, id, what, need, arg);
    return rc;
}

int op_store_download_set_manifest(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                                   uint64_t size, const uint8_t root[OP_STORE_HASH_LEN],
                                   const uint8_t *chunk_hashes, uint32_t n_chunks)
{
    if ((n_chunks > 0 && chunk_hashes == NULL) || size > FILEID_MAX_SIZE)
        return store_fail(st, SOVA_ERR_INVALID, "set manifest: no chunk hashes, or a bad size");
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_DL_SET_MANIFEST, &s);
    if (rc != 0)
        return rc;
    store_bind_hash(s, 1, id);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)size);
    store_bind_hash(s, 3, root);
    store_bind_blob(s, 4, chunk_hashes, (size_t)n_chunks * OP_STORE_HASH_LEN);
    sqlite3_bind_int64(s, 5, store_now());
    struct chunk_arg arg = {"chunk hash count", n_chunks};
    return update_download(st, s, id, "set manifest", NEED_ACTIVE, arg);
}

int op_store_download_mark_chunk(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                                 uint32_t index)
{
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_DL_MARK, &s);
    if (rc != 0)
        return rc;
    store_bind_hash(s, 1, id);
    sqlite3_bind_int64(s, 2, index);
    sqlite3_bind_int64(s, 3, store_now());
    struct chunk_arg arg = {"chunk index", index};
    return update_download(st, s, id, "mark chunk", NEED_ACTIVE | NEED_MANIFEST, arg);
}

struct mark_many {
    const uint8_t *id;
    const uint32_t *indices;
    size_t n;
};

static int mark_many_body(struct op_store *st, void *ctx)
{
    const struct mark_many *m = ctx;
    for (size_t i = 0; i < m->n; i++) {
        int rc = op_store_download_mark_chunk(st, m->id, m->indices[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int op_store_download_mark_chunks(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                                  const uint32_t *indices, size_t n)
{
    struct mark_many m = {id, indices, n};
    return n == 0 ? 0 : store_in_transaction(st, ST_BEGIN, mark_many_body, &m);
}

struct have_out {
    uint8_t *bitmap;
    uint32_t n_chunks;
};

static int read_have(struct op_store *st, sqlite3_stmt *s, void *out)
{
    struct have_out *h = out;
    int64_t n = sqlite3_column_int64(s, 1);
    if (n < 0 || n > UINT32_MAX)
        return store_corrupt(st, "downloads");
    h->n_chunks = (uint32_t)n;
    return store_col_blob(st, s, 0, bitmap_len(h->n_chunks), &h->bitmap, "downloads");
}

int op_store_download_get_have(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                               uint8_t **bitmap, uint32_t *n_chunks)
{
    struct have_out h = {NULL, 0};
    bool found;
    sqlite3_stmt *s;
    *bitmap = NULL;
    *n_chunks = 0;
    int rc = store_stmt(st, ST_DL_HAVE, &s);
    if (rc != 0)
        return rc;
    store_bind_hash(s, 1, id);
    rc = store_find_one(st, s, read_have, &h, &found, "get bitmap");
    if (rc == 0 && !found)
        return explain_refusal(st, id, "get bitmap", 0, (struct chunk_arg){NULL, 0});
    *bitmap = h.bitmap;
    *n_chunks = h.n_chunks;
    return rc;
}

int op_store_download_complete(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                               const char *path, const uint8_t sha256[OP_STORE_HASH_LEN])
{
    if (path == NULL || sha256 == NULL)
        return store_fail(st, SOVA_ERR_INVALID, "complete: no path or no SHA-256");
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_DL_COMPLETE, &s);
    if (rc != 0)
        return rc;
    store_bind_hash(s, 1, id);
    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
    store_bind_hash(s, 3, sha256);
    sqlite3_bind_int64(s, 4, store_now());
    struct chunk_arg none = {NULL, 0};
    return update_download(st, s, id, "complete", NEED_ACTIVE | NEED_MANIFEST | NEED_ALL_CHUNKS,
                           none);
}

int op_store_download_fail(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                           const char *error)
{
    if (error == NULL)
        return store_fail(st, SOVA_ERR_INVALID, "fail: no reason");
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_DL_FAIL, &s);
    if (rc != 0)
        return rc;
    store_bind_hash(s, 1, id);
    sqlite3_bind_text(s, 2, error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, store_now());
    return update_download(st, s, id, "fail", 0, (struct chunk_arg){NULL, 0});
}

int op_store_download_activate(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                               const char *out_path, bool restart)
{
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_DL_ACTIVATE, &s);
    if (rc != 0)
        return rc;
    store_bind_hash(s, 1, id);
    if (out_path != NULL)
        sqlite3_bind_text(s, 2, out_path, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, restart);
    sqlite3_bind_int64(s, 4, store_now());
    return update_download(st, s, id, "activate", 0, (struct chunk_arg){NULL, 0});
}

int op_store_download_set_paused(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                                 bool paused)
{
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_DL_PAUSE, &s);
    if (rc != 0)
        return rc;
    store_bind_hash(s, 1, id);
    sqlite3_bind_int(s, 2, paused);
    sqlite3_bind_int64(s, 3, store_now());
    return update_download(st, s, id, paused ? "pause" : "resume", NEED_ACTIVE,
                           (struct chunk_arg){NULL, 0});
}

int op_store_download_set_priority(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                                   unsigned priority)
{
    if (priority > OP_STORE_PRIORITY_HIGH)
        return store_fail(st, SOVA_ERR_INVALID, "set priority: %u is not a priority", priority);
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_DL_PRIORITY, &s);
    if (rc != 0)
        return rc;
    store_bind_hash(s, 1, id);
    sqlite3_bind_int(s, 2, (int)priority);
    sqlite3_bind_int64(s, 3, store_now());
    return update_download(st, s, id, "set priority", 0, (struct chunk_arg){NULL, 0});
}

int op_store_download_delete(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN])
{
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_DL_DELETE, &s);
    if (rc != 0)
        return rc;
    store_bind_hash(s, 1, id);
    return store_run(st, s, "download delete");
}

/* ---- bad sources ------------------------------------------------------------------------------
 */
int op_store_bad_source_record(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                               const uint8_t peer_id[OP_STORE_HASH_LEN], const char *reason,
                               uint32_t *failures)
{
    if (reason == NULL)
        return store_fail(st, SOVA_ERR_INVALID, "record bad source: no reason");
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_BAD_RECORD, &s);
    if (rc != 0)
        return rc;
    store_bind_hash(s, 1, id);
    store_bind_hash(s, 2, peer_id);
    sqlite3_bind_text(s, 3, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, store_now());
    /* Step for the row, then to the end: an UPDATE ... RETURNING commits
     * when the statement finishes. */
    int64_t n = 0;
    rc = store_next_row(st, s, "record bad source");
    if (rc > 0) {
        n = sqlite3_column_int64(s, 0);
        rc = store_run(st, s, "record bad source");
        if (rc == 0 && (n < 0 || n > UINT32_MAX))
            rc = store_corrupt(st, "bad_sources");
    }
    if (rc == 0 && failures != NULL)
        *failures = (uint32_t)n;
    return rc;
}

int op_store_bad_source_ban(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                            const uint8_t peer_id[OP_STORE_HASH_LEN], const char *reason)
{
    if (reason == NULL)
        return store_fail(st, SOVA_ERR_INVALID, "ban source: no reason");
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_BAD_BAN, &s);
    if (rc != 0)
        return rc;
    store_bind_hash(s, 1, id);
    store_bind_hash(s, 2, peer_id);
    sqlite3_bind_text(s, 3, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, store_now());
    return store_run(st, s, "ban source");
}

struct bad_get {
    uint32_t failures;
    bool banned;
};

static int read_bad_get(struct op_store *st, sqlite3_stmt *s, void *out)
{
    struct bad_get *b = out;
    int64_t n = sqlite3_column_int64(s, 0);
    if (n < 0 || n > UINT32_MAX)
        return store_corrupt(st, "bad_sources");
    b->failures = (uint32_t)n;
    b->banned = sqlite3_column_int(s, 1) != 0;
    return 0;
}

int op_store_bad_source_get(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                            const uint8_t peer_id[OP_STORE_HASH_LEN], uint32_t *failures,
                            bool *banned)
{
    struct bad_get b = {0, false};
    bool found;
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_BAD_GET, &s);
    if (rc != 0)
        return rc;
    store_bind_hash(s, 1, id);
    store_bind_hash(s, 2, peer_id);
    rc = store_find_one(st, s, read_bad_get, &b, &found, "bad source");
    if (failures != NULL)
        *failures = b.failures;
    if (banned != NULL)
        *banned = b.banned;
    return rc;
}

int op_store_bad_source_foreach(struct op_store *st, const uint8_t id[OP_STORE_HASH_LEN],
                                op_store_bad_source_fn *fn, void *arg)
{
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_BAD_LIST, &s);
    if (rc != 0)
        return rc;
    store_bind_hash(s, 1, id);
    while ((rc = store_next_row(st, s, "list bad sources")) > 0) {
        struct op_store_bad_source b = {0};
        int64_t n = sqlite3_column_int64(s, 1);
        const unsigned char *reason = sqlite3_column_text(s, 3);
        rc = n < 0 || n > UINT32_MAX ? store_corrupt(st, "bad_sources")
                                     : store_col_hash(st, s, 0, b.peer_id, "bad_sources");
        if (rc == 0) {
            b.failures = (uint32_t)n;
            b.banned = sqlite3_column_int(s, 2) != 0;
            b.reason = reason != NULL ? (const char *)reason : "";
            b.last_failure = sqlite3_column_int64(s, 4);
            rc = fn(&b, arg);
        }
        if (rc != 0) {
            store_stmt_end(s);
            break;
        }
    }
    return rc;
}

/* ---- downloads of schema 1 ----------------------------------------------------------------- */
int op_store_legacy_foreach(struct op_store *st, op_store_legacy_fn *fn, void *arg)
{
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_LEGACY_ALL, &s);
    if (rc != 0)
        return rc;
    while ((rc = store_next_row(st, s, "list old downloads")) > 0) {
        struct op_store_legacy l = {0};
        const unsigned char *name = sqlite3_column_text(s, 1);
        size_t state = state_of(s, 4);
        int64_t size = sqlite3_column_int64(s, 2);
        rc = name == NULL || size < 0 || state == N_STATES || state == OP_DOWNLOAD_ACTIVE
                 ? store_corrupt(st, "legacy_downloads")
                 : store_col_hash(st, s, 0, l.sha256, "legacy_downloads");
        if (rc == 0) {
            l.name = (const char *)name;
            l.size = (uint64_t)size;
            l.out_path = (const char *)sqlite3_column_text(s, 3);
            l.state = (enum op_download_state)state;
            l.error = (const char *)sqlite3_column_text(s, 5);
            l.created = sqlite3_column_int64(s, 6);
            l.updated = sqlite3_column_int64(s, 7);
            rc = fn(&l, arg);
        }
        if (rc != 0) {
            store_stmt_end(s);
            break;
        }
    }
    return rc;
}
