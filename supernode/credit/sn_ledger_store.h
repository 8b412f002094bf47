/* sn_ledger_store.h - the credit records a supernode holds, on disk
 * (docs/STATE.md, docs/CREDITS.md "The ledger"): SQLite in the state
 * folder, ledger.sqlite3, one row per record, per entry and per session.
 *
 * How it is written: the ledger marks the records that change
 * (sn_ledger.h, track_dirty); the daemon calls sn_ledger_store_flush()
 * every SN_LEDGER_STORE_FLUSH_MS, which writes up to a batch of them in one
 * transaction. The database is in WAL mode with synchronous=NORMAL: a
 * commit appends to the WAL without an fsync, so writing never waits for
 * the disk on the loop; a thread of this module checkpoints the WAL every
 * SN_LEDGER_STORE_CHECKPOINT_MS (sqlite3_wal_checkpoint_v2, PASSIVE), and a
 * checkpoint fsyncs the WAL before it copies it into the database. What
 * that costs at most: a supernode killed (SIGKILL, a crash) loses what
 * changed since the last flush (<= 1 s: committed transactions survive a
 * process crash whatever synchronous says, they are in the OS's cache);
 * a power loss or kernel crash loses at most what changed since the last
 * completed checkpoint began (<= flush + checkpoint interval, 6 s). In
 * both cases the record's other holders still have it and push it back
 * (the placement pass, sn_credit_place.h).
 *
 * Numbers are u64 on the wire and in the ledger; SQLite's INTEGER is a
 * signed 64-bit: they are stored as their bit pattern and read back as
 * such. The schema is versioned (PRAGMA user_version); a file of another
 * version is refused with a message, never misread.
 *
 * Calls block on the disk: open and load at start (before the daemon
 * serves), flush from a timer in bounded batches, close at stop. Not
 * thread-safe, apart from the checkpoint thread it owns.
 */
#ifndef SOVA_SN_LEDGER_STORE_H
#define SOVA_SN_LEDGER_STORE_H

#include "sn_ledger.h"

#include <stddef.h>
#include <stdint.h>

#define SN_LEDGER_STORE_FILE          "ledger.sqlite3"
#define SN_LEDGER_STORE_SCHEMA        1
#define SN_LEDGER_STORE_FLUSH_MS      1000 /* changed records are written this often */
#define SN_LEDGER_STORE_BATCH         512  /* records per transaction */
#define SN_LEDGER_STORE_CHECKPOINT_MS 5000 /* the WAL is fsync'ed and folded this often */

struct sn_ledger_store;

struct sn_ledger_store_stats {
    uint64_t batches, records_written, records_deleted, checkpoints, errors;
    uint64_t loaded;
};

/* Open or create dir/ledger.sqlite3. 0, or an error with err filled. */
int sn_ledger_store_open(const char *dir, struct sn_ledger_store **out, char *err, size_t errlen);
/* Merge every stored record into l (then forget that they are dirty: they
 * are on disk). *n: records read. */
int sn_ledger_store_load(struct sn_ledger_store *s, struct sn_ledger *l, size_t *n, char *err,
                         size_t errlen);
/* Write up to max of l's changed records (sn_ledger_take_dirty) in one
 * transaction; *left: changed records still waiting. 0 or SOVA_ERR_IO (the
 * batch is then marked changed again, and retried). */
int sn_ledger_store_flush(struct sn_ledger_store *s, struct sn_ledger *l, size_t max, size_t *left);
/* Stop the checkpoint thread, checkpoint, close. NULL is fine. */
void sn_ledger_store_close(struct sn_ledger_store *s);
void sn_ledger_store_stats(struct sn_ledger_store *s, struct sn_ledger_store_stats *out);
/* The last error, "" if none. */
const char *sn_ledger_store_error(const struct sn_ledger_store *s);

#endif
