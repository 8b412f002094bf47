/* msg_credit.c - schemas of the credit messages (docs/CREDITS.md): the
 * signed receipt a downloader gives its source (RECEIPT, peer <-> peer),
 * receipts handed to a supernode and credit read from it (RECEIPTS, CREDIT,
 * peer <-> supernode), and the ledger kept by the supernodes a peer's ID
 * hashes to (LEDGER_*, supernode <-> supernode). They share the receipt and
 * credit-record layouts, so they live together. Layouts: docs/PROTOCOL.md. */
#define SOVA_MSG_INTERNAL
#include "err.h"
#include "msg_schema.h"

/* Fixed sizes of the items below, for the decoder's count checks. */
#define RECEIPT_SIZE        MSG_RECEIPT_WIRE_SIZE
#define CREDIT_RECORD_SIZE  (WIRE_ID_LEN + 1 + 4 * 8)
#define LEDGER_ITEM_SIZE    (RECEIPT_SIZE + 1)
#define UPTIME_REPORT_SIZE  (WIRE_ID_LEN + 2 * 8)
#define LEDGER_ENTRY_SIZE   (WIRE_ID_LEN + 3 * 8)
#define LEDGER_SESSION_SIZE (WIRE_ID_LEN + 2 * 8)

static void receipt_io(struct wire_io *io, void *item)
{
    struct msg_receipt *r = item;
    wire_io_raw(io, "downloader_id", r->downloader_id, WIRE_ID_LEN);
    wire_io_raw(io, "source_id", r->source_id, WIRE_ID_LEN);
    wire_io_raw(io, "file_id", r->file_id, WIRE_HASH_LEN);
    wire_io_u64(io, "file_size", &r->file_size);
    wire_io_raw(io, "root", r->root, WIRE_HASH_LEN);
    wire_io_u64(io, "bytes", &r->bytes);
    wire_io_check(io, r->bytes > 0, SOVA_ERR_BAD_VALUE, "bytes");
    wire_io_u64(io, "seq", &r->seq);
    wire_io_check(io, r->seq > 0, SOVA_ERR_BAD_VALUE, "seq");
    wire_io_u64(io, "time", &r->time_s);
    wire_io_raw(io, "pubkey", r->pubkey, MSG_RECEIPT_KEY_LEN);
    wire_io_raw(io, "signature", r->signature, MSG_RECEIPT_SIG_LEN);
}

void msg_receipt_io(struct wire_io *io, void *body)
{
    receipt_io(io, body);
}

void msg_receipts_io(struct wire_io *io, void *body)
{
    struct msg_receipts *m = body;
    const struct wire_array_spec spec = {
        .count_size = 1,
        .limit = MSG_MAX_RECEIPTS,
        .min_count = 1,
        .item_size = sizeof(*m->receipts),
        .min_wire_size = RECEIPT_SIZE,
        .item = receipt_io,
    };
    WIRE_IO_ARRAY(io, "receipts", m->receipts, m->n_receipts, &spec);
}

static void peer_id_io(struct wire_io *io, void *item)
{
    wire_io_raw(io, NULL, item, WIRE_ID_LEN);
}

static void peer_ids_io(struct wire_io *io, struct msg_credit *m)
{
    const struct wire_array_spec spec = {
        .count_size = 1,
        .limit = MSG_MAX_CREDIT_IDS,
        .min_count = 1,
        .item_size = sizeof(*m->peer_ids),
        .min_wire_size = WIRE_ID_LEN,
        .item = peer_id_io,
    };
    WIRE_IO_ARRAY(io, "peer_ids", m->peer_ids, m->n_peer_ids, &spec);
}

static void credit_record_io(struct wire_io *io, void *item)
{
    struct msg_credit_record *r = item;
    wire_io_raw(io, "peer_id", r->peer_id, WIRE_ID_LEN);
    wire_io_u8_in(io, "found", &r->found, 0, 1);
    wire_io_u64(io, "credit", &r->credit);
    wire_io_u64(io, "uploaded", &r->uploaded);
    wire_io_u64(io, "downloaded", &r->downloaded);
    wire_io_u64(io, "uptime_s", &r->uptime_s);
}

static void credit_records_io(struct wire_io *io, struct msg_credit *m)
{
    const struct wire_array_spec spec = {
        .count_size = 1,
        .limit = MSG_MAX_CREDIT_IDS,
        .item_size = sizeof(*m->records),
        .min_wire_size = CREDIT_RECORD_SIZE,
        .item = credit_record_io,
    };
    WIRE_IO_ARRAY(io, "records", m->records, m->n_records, &spec);
}

/* CREDIT: the kind decides what follows the query id. */
void msg_credit_io(struct wire_io *io, void *body)
{
    struct msg_credit *m = body;
    wire_io_u8_in(io, "kind", &m->kind, MSG_CREDIT_QUERY, MSG_CREDIT_ANSWER);
    wire_io_u64(io, "query_id", &m->query_id);
    if (m->kind == MSG_CREDIT_QUERY)
        peer_ids_io(io, m);
    else
        credit_records_io(io, m);
}

void msg_ledger_query_io(struct wire_io *io, void *body)
{
    struct msg_credit *m = body;
    wire_io_u64(io, "query_id", &m->query_id);
    peer_ids_io(io, m);
}

static void ledger_item_io(struct wire_io *io, void *item)
{
    struct msg_ledger_item *it = item;
    wire_io_enter(io, "receipt", WIRE_ERR_NO_INDEX);
    receipt_io(io, &it->receipt);
    wire_io_leave(io);
    wire_io_u8_in(io, "sides", &it->sides, MSG_LEDGER_SIDE_SOURCE,
                  MSG_LEDGER_SIDE_SOURCE | MSG_LEDGER_SIDE_DOWNLOADER);
}

void msg_ledger_update_io(struct wire_io *io, void *body)
{
    struct msg_ledger_update *m = body;
    const struct wire_array_spec spec = {
        .count_size = 1,
        .limit = MSG_MAX_RECEIPTS,
        .min_count = 1,
        .item_size = sizeof(*m->items),
        .min_wire_size = LEDGER_ITEM_SIZE,
        .item = ledger_item_io,
    };
    WIRE_IO_ARRAY(io, "items", m->items, m->n_items, &spec);
}

static void uptime_report_io(struct wire_io *io, void *item)
{
    struct msg_uptime_report *r = item;
    wire_io_raw(io, "peer_id", r->peer_id, WIRE_ID_LEN);
    wire_io_u64(io, "start_ms", &r->start_ms);
    wire_io_u64(io, "seconds", &r->seconds);
}

void msg_ledger_uptime_io(struct wire_io *io, void *body)
{
    struct msg_ledger_uptime *m = body;
    const struct wire_array_spec spec = {
        .count_size = 1,
        .limit = MSG_MAX_CREDIT_IDS,
        .min_count = 1,
        .item_size = sizeof(*m->reports),
        .min_wire_size = UPTIME_REPORT_SIZE,
        .item = uptime_report_io,
    };
    WIRE_IO_ARRAY(io, "reports", m->reports, m->n_reports, &spec);
}

static void ledger_entry_io(struct wire_io *io, void *item)
{
    struct msg_ledger_entry *e = item;
    wire_io_raw(io, "peer_id", e->peer_id, WIRE_ID_LEN);
    wire_io_u64(io, "last_seq", &e->last_seq);
    wire_io_u64(io, "last_time", &e->last_time);
    wire_io_u64(io, "bytes", &e->bytes);
}

static void ledger_session_io(struct wire_io *io, void *item)
{
    struct msg_ledger_session *s = item;
    wire_io_raw(io, "sn_id", s->sn_id, WIRE_ID_LEN);
    wire_io_u64(io, "start_ms", &s->start_ms);
    wire_io_u64(io, "seconds", &s->seconds);
}

/* The fields of a record: LEDGER_PUT, and LEDGER_ANSWER after its head. */
static void ledger_record_io(struct wire_io *io, struct msg_ledger_put *m)
{
    const struct wire_array_spec entries = {
        .count_size = 2,
        .limit = MSG_MAX_LEDGER_ENTRIES,
        .item_size = sizeof(struct msg_ledger_entry),
        .min_wire_size = LEDGER_ENTRY_SIZE,
        .item = ledger_entry_io,
    };
    const struct wire_array_spec sessions = {
        .count_size = 1,
        .limit = MSG_MAX_LEDGER_SESSIONS,
        .item_size = sizeof(*m->sessions),
        .min_wire_size = LEDGER_SESSION_SIZE,
        .item = ledger_session_io,
    };
    wire_io_raw(io, "peer_id", m->peer_id, WIRE_ID_LEN);
    wire_io_u64(io, "base_uploaded", &m->base_uploaded);
    wire_io_u64(io, "base_downloaded", &m->base_downloaded);
    wire_io_u64(io, "base_uptime_s", &m->base_uptime_s);
    wire_io_u64(io, "horizon_s", &m->horizon_s);
    wire_io_u64(io, "session_horizon_ms", &m->session_horizon_ms);
    WIRE_IO_ARRAY(io, "uploads", m->uploads, m->n_uploads, &entries);
    WIRE_IO_ARRAY(io, "downloads", m->downloads, m->n_downloads, &entries);
    WIRE_IO_ARRAY(io, "sessions", m->sessions, m->n_sessions, &sessions);
}

void msg_ledger_put_io(struct wire_io *io, void *body)
{
    ledger_record_io(io, body);
}

/* LEDGER_ANSWER: a holder's whole record, or found 0 and nothing in it. */
void msg_ledger_answer_io(struct wire_io *io, void *body)
{
    struct msg_ledger_answer *m = body;
    const struct msg_ledger_put *r = &m->record;
    wire_io_u64(io, "query_id", &m->query_id);
    wire_io_u8_in(io, "found", &m->found, 0, 1);
    ledger_record_io(io, &m->record);
    wire_io_check(io,
                  m->found ||
                      (r->base_uploaded == 0 && r->base_downloaded == 0 && r->base_uptime_s == 0 &&
                       r->horizon_s == 0 && r->session_horizon_ms == 0 && r->n_uploads == 0 &&
                       r->n_downloads == 0 && r->n_sessions == 0),
                  SOVA_ERR_BAD_VALUE, "found");
}
