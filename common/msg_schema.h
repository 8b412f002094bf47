/* msg_schema.h - private to common/msg_*.c: the schema of every message.
 *
 * A schema is one function that walks a message body with a struct wire_io;
 * the same list of calls decodes it, encodes it and frees it, so the three
 * cannot drift apart. msg_codec.c maps type numbers to schemas; the family
 * files (msg_core.c, msg_op.c, msg_relay.c, msg_sn.c, msg_peer.c, and
 * msg_credit.c for the credit messages of several families) define
 * them. docs/PROTOCOL.md must describe exactly what these functions do.
 */
#ifndef SOVA_MSG_SCHEMA_H
#define SOVA_MSG_SCHEMA_H

#ifndef SOVA_MSG_INTERNAL
#error "msg_schema.h is private to common/msg_*.c"
#endif

#include "msg.h"

/* body points at the member of struct msg's union for the type. */
typedef void msg_schema_fn(struct wire_io *io, void *body);

/* msg_core.c */
msg_schema_fn msg_hello_io, msg_error_io, msg_ping_io;
/* msg_op.c */
msg_schema_fn msg_register_io, msg_registered_io, msg_sn_list_io, msg_publish_io,
    msg_publish_ack_io, msg_search_io, msg_search_result_io, msg_locate_io, msg_locate_result_io,
    msg_dialback_io, msg_dialback_result_io, msg_connect_io, msg_report_io, msg_punch_io,
    msg_punch_note_io;
/* msg_relay.c */
msg_schema_fn msg_relay_open_io, msg_relay_circuit_io, msg_relay_data_io, msg_relay_window_io,
    msg_relay_close_io;
/* msg_sn.c */
msg_schema_fn msg_gossip_io, msg_summary_io, msg_fwd_search_io, msg_fwd_locate_io,
    msg_fwd_locate_result_io, msg_fwd_connect_io, msg_fwd_punch_io;
/* msg_peer.c */
msg_schema_fn msg_chunk_range_io, msg_manifest_io, msg_data_io;
/* msg_credit.c (receipts and the credit ledger, several families) */
msg_schema_fn msg_receipt_io, msg_receipts_io, msg_credit_io, msg_ledger_query_io,
    msg_ledger_answer_io, msg_ledger_update_io, msg_ledger_uptime_io, msg_ledger_put_io;

/* One struct msg_sn_info (SN_LIST entries, GOSSIP updates), in msg_sn.c. */
wire_io_item_fn msg_sn_info_io;
/* Its smallest encoding: ID, empty address list, incarnation, state, load. */
#define MSG_SN_INFO_MIN_SIZE (WIRE_ID_LEN + 1 + 8 + 1 + 3 * 4)

#endif
