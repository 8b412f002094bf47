/* op_store_host.c - the supernode host cache of the peer's store. */
#define OP_STORE_INTERNAL
#include "err.h"
#include "op_store_int.h"

#include <stdlib.h>

int op_store_host_put(struct op_store *st, const uint8_t sn_id[OP_STORE_HASH_LEN],
                      const char *addrs)
{
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_HOST_PUT, &s);
    if (rc != 0)
        return rc;
    store_bind_hash(s, 1, sn_id);
    sqlite3_bind_text(s, 2, addrs, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, store_now());
    return store_run(st, s, "remember supernode");
}

int op_store_host_failed(struct op_store *st, const uint8_t sn_id[OP_STORE_HASH_LEN])
{
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_HOST_FAIL, &s);
    if (rc != 0)
        return rc;
    store_bind_hash(s, 1, sn_id);
    return store_run(st, s, "count supernode failure");
}

int op_store_host_foreach(struct op_store *st, op_store_host_fn *fn, void *arg)
{
    sqlite3_stmt *s;
    int rc = store_stmt(st, ST_HOST_ALL, &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int(s, 1, OP_STORE_HOSTS_MAX);
    while ((rc = store_next_row(st, s, "list supernodes")) > 0) {
        struct op_store_host h = {0};
        rc = store_col_hash(st, s, 0, h.sn_id, "host_cache");
        if (rc == 0)
            rc = store_col_text(st, s, 1, false, &h.addrs, "host_cache");
        h.last_seen = sqlite3_column_int64(s, 2);
        h.failures = (uint32_t)sqlite3_column_int64(s, 3);
        if (rc == 0)
            rc = fn(&h, arg);
        free(h.addrs);
        if (rc != 0) {
            store_stmt_end(s);
            break;
        }
    }
    return rc;
}
