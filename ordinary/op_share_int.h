/* op_share_int.h - private to op_share.c (the worker) and op_share_scan.c
 * (one scan): results as reference-counted snapshots, and the scan itself. */
#ifndef SOVA_OP_SHARE_INT_H
#define SOVA_OP_SHARE_INT_H

#ifndef OP_SHARE_INTERNAL
#error "op_share_int.h is private to op_share*.c; include op_share.h"
#endif

#include "op_share.h"

#include <stdatomic.h>
#include <stddef.h>

/* share_scan_run() status when the cancel flag stopped it (never delivered). */
#define SHARE_SCAN_CANCELLED 2

/* A result plus its hash index. Immutable once built; the worker (as the
 * baseline of its next scan) and the loop (as the current result) share it
 * by reference count. */
struct snapshot {
    struct op_share_result pub;
    const struct op_share_file **by_hash; /* files sorted by (hash, relpath) */
    atomic_int refs;
    uint64_t gen;          /* worker: the rescan request it answers */
    struct snapshot *next; /* worker: delivery queue */
};

#define SHARE_SNAPSHOT(res)                                                                        \
    ((struct snapshot *)(void *)((char *)(res)-offsetof(struct snapshot, pub)))

/* An empty snapshot with one reference, or NULL. */
struct snapshot *share_snapshot_new(void);
struct snapshot *share_snapshot_ref(struct snapshot *s);
/* Drop a reference; the last one frees. NULL is fine. */
void share_snapshot_unref(struct snapshot *s);

/* One whole scan with st. prev is the result to compare with, or NULL for
 * the store's rows; cancel (may be NULL) is polled between chunks. Returns a
 * new snapshot whose status says how it went (SHARE_SCAN_CANCELLED
 * included; a failed one holds no files), or NULL when out of memory. */
struct snapshot *share_scan_run(struct op_store *st, const struct op_share_config *cfg,
                                const struct snapshot *prev, const atomic_bool *cancel);

#endif
