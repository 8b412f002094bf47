/* op_store_folder.c - the share folders added at run time (op_store.h). */
#define OP_STORE_INTERNAL
#include "err.h"
#include "op_store_int.h"

#include <stdlib.h>

int op_store_folder_add(struct op_store *st, const char *path)
{
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_FOLDER_ADD, &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(s, 1, path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, store_now());
    return store_run(st, s, "remember share folder");
}

int op_store_folder_remove(struct op_store *st, const char *path, bool *removed)
{
    sqlite3_stmt *s;
    *removed = false;
    int rc = store_stmt(st, ST_FOLDER_REMOVE, &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(s, 1, path, -1, SQLITE_TRANSIENT);
    rc = store_run(st, s, "forget share folder");
    if (rc == 0)
        *removed = sqlite3_changes(st->db) > 0;
    return rc;
}

int op_store_folder_foreach(struct op_store *st, op_store_folder_fn *fn, void *arg)
{
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_FOLDER_ALL, &s);
    if (rc != 0)
        return rc;
    while ((rc = store_next_row(st, s, "list share folders")) > 0) {
        char *path = NULL;
        rc = store_col_text(st, s, 0, false, &path, "share_folders");
        if (rc == 0)
            rc = fn(path, arg);
        free(path);
        if (rc != 0) {
            store_stmt_end(s);
            break;
        }
    }
    return rc;
}
