/* sn_ledger.h - the credit records this supernode holds (docs/CREDITS.md):
 * a bounded in-memory store, sans-I/O.
 *
 * The record of peer X holds, per counterparty, what verified receipts
 * proved: upload entries (per downloader of X: bytes, the last seq and
 * time counted), download entries (per source of X), and the sessions
 * supernodes observed (per observer and session start). It holds bytes,
 * not credit: credit is seen from an evaluator, computed from two records
 * when it is read (sn_flow.h).
 * Applying a receipt is idempotent: a seq at or below the last one counted
 * for its pair is a replay and changes nothing. Records merge (LEDGER_PUT)
 * by taking, per counterparty, the entry with the larger last seq, and the
 * larger of each base number: replicas that saw the same receipts agree,
 * and a replica that missed some catches up from any other.
 *
 * Bounds: at most max_records records (new ones beyond are dropped and
 * counted); per record MSG_MAX_LEDGER_ENTRIES entries a direction and
 * MSG_MAX_LEDGER_SESSIONS sessions. A full record folds its oldest entry
 * into base numbers and raises its horizon to that entry's last time: a
 * receipt from a counterparty without an entry, dated at or before the
 * horizon, is stale (it may have been counted in the folded entry).
 * Receipts older than max_age_s or more than max_future_s ahead of now are
 * stale too, so no replay can outlive what the ledger remembers.
 *
 * Numbers: every sum saturates at UINT64_MAX (sn_sat_add), whatever the
 * receipts or the merged records say, and a receipt whose bytes exceed the
 * size its file ID commits to, or whose ID does not commit to its size and
 * root (receipt_check_size(): so never more than FILEID_MAX_SIZE, 2^62), is
 * refused (RECEIPT_BAD_SIZE), also when it comes from another supernode:
 * nothing a peer or a supernode sends can wrap a counter.
 *
 * Persistence: with track_dirty, the ledger remembers which records
 * changed (or went) since sn_ledger_take_dirty() last asked, so the store
 * (sn_ledger_store.h) writes only those.
 *
 * Ownership: the ledger copies what it is given. Nothing blocks; the
 * caller passes the time (unix seconds). Not thread-safe.
 */
#ifndef SOVA_SN_LEDGER_H
#define SOVA_SN_LEDGER_H

#include "msg.h"
#include "receipt.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SN_LEDGER_MAX_AGE_S    (7ull * 24 * 3600) /* receipts older than this are stale */
#define SN_LEDGER_MAX_FUTURE_S 3600               /* ... and so are those this far ahead */

struct sn_ledger_config {
    size_t max_records;
    uint64_t max_age_s, max_future_s;
    bool track_dirty;     /* remember changed records for sn_ledger_take_dirty() */
    uint8_t hash_key[16]; /* SipHash key of the table (random in the daemon) */
};

struct sn_ledger_stats {
    size_t records, entries;
    uint64_t applied;                    /* receipt sides counted */
    uint64_t rejected[RECEIPT_VERDICTS]; /* replayed and stale, by verdict */
    uint64_t dropped_full;               /* a new record with the ledger full */
    uint64_t merged;                     /* LEDGER_PUTs merged */
    uint64_t uptime_reports;
};

struct sn_ledger;

/* NULL when out of memory. */
struct sn_ledger *sn_ledger_new(const struct sn_ledger_config *cfg);
void sn_ledger_free(struct sn_ledger *l);

/* Count one verified receipt on the sides asked for (MSG_LEDGER_SIDE_*):
 * the source's record (uploaded) and the downloader's (downloaded).
 * RECEIPT_OK when counted, RECEIPT_REPLAYED, RECEIPT_STALE,
 * RECEIPT_BAD_SIZE, or RECEIPT_MISDIRECTED for a peer paying itself. */
enum receipt_verdict sn_ledger_apply(struct sn_ledger *l, const struct msg_receipt *r,
                                     uint8_t sides, uint64_t now_s);

/* A supernode (sn_id) saw peer_id online `seconds` in its session begun at
 * start_ms: raises what the record holds for that session. */
void sn_ledger_uptime(struct sn_ledger *l, const uint8_t peer_id[WIRE_ID_LEN],
                      const uint8_t sn_id[WIRE_ID_LEN], uint64_t start_ms, uint64_t seconds);

/* The totals of peer_id's record into *out: uploaded, downloaded,
 * uptime_s (found 0, all zero, if none). credit is left 0: it is seen from
 * an evaluator (sn_flow.h). */
bool sn_ledger_get(const struct sn_ledger *l, const uint8_t peer_id[WIRE_ID_LEN],
                   struct msg_credit_record *out);

/* The whole record as a LEDGER_PUT body, borrowing the ledger's arrays
 * until the next change; false if there is none. */
bool sn_ledger_export(const struct sn_ledger *l, const uint8_t peer_id[WIRE_ID_LEN],
                      struct msg_ledger_put *out);
/* Merge a LEDGER_PUT (see the top of this file). */
void sn_ledger_merge(struct sn_ledger *l, const struct msg_ledger_put *put);
/* Forget a record (it moved to other holders). */
void sn_ledger_remove(struct sn_ledger *l, const uint8_t peer_id[WIRE_ID_LEN]);
/* Forget every record (a cache that grew full); nothing is marked dirty. */
void sn_ledger_clear(struct sn_ledger *l);
bool sn_ledger_has(const struct sn_ledger *l, const uint8_t peer_id[WIRE_ID_LEN]);

/* With track_dirty: up to cap IDs of records that changed or went since
 * the last call, into out; returns how many (0: none left). A record that
 * went is among them: sn_ledger_export() then finds none. */
size_t sn_ledger_take_dirty(struct sn_ledger *l, uint8_t (*out)[WIRE_ID_LEN], size_t cap);
size_t sn_ledger_dirty_count(const struct sn_ledger *l);
/* With track_dirty: mark id changed again (a write that failed). */
void sn_ledger_touch(struct sn_ledger *l, const uint8_t peer_id[WIRE_ID_LEN]);

/* The IDs of every record, malloc'd (caller frees); *n their number.
 * NULL with *n 0 when there are none or memory is short. */
uint8_t (*sn_ledger_keys(const struct sn_ledger *l, size_t *n))[WIRE_ID_LEN];

void sn_ledger_stats(const struct sn_ledger *l, struct sn_ledger_stats *out);

#endif
