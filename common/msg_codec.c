/* msg_codec.c - the message table and the entry points of msg.h: decode,
 * encode, clear and compare any message by running its schema (msg_*.c)
 * through a struct wire_io in the right mode. */
#define SOVA_MSG_INTERNAL
#include "err.h"
#include "msg_schema.h"

#include <stdlib.h>
#include <string.h>

struct msg_schema {
    uint8_t type;
    uint8_t family; /* enum msg_family */
    const char *name;
    msg_schema_fn *io;
};

/* The one list of message types. Several types share a layout (and so a
 * schema): PING/PONG, SEARCH_RESULT/FWD_HITS, CONNECT/CONNECT_REQUEST,
 * RELAY_ACCEPT/RELAY_OPENED, MANIFEST_GET/GET. */
static const struct msg_schema schemas[] = {
    {MSG_HELLO, MSG_FAMILY_CORE, "hello", msg_hello_io},
    {MSG_ERROR, MSG_FAMILY_CORE, "error", msg_error_io},
    {MSG_PING, MSG_FAMILY_CORE, "ping", msg_ping_io},
    {MSG_PONG, MSG_FAMILY_CORE, "pong", msg_ping_io},
    {MSG_REGISTER, MSG_FAMILY_OP_SN, "register", msg_register_io},
    {MSG_REGISTERED, MSG_FAMILY_OP_SN, "registered", msg_registered_io},
    {MSG_SN_LIST, MSG_FAMILY_OP_SN, "sn_list", msg_sn_list_io},
    {MSG_PUBLISH, MSG_FAMILY_OP_SN, "publish", msg_publish_io},
    {MSG_PUBLISH_ACK, MSG_FAMILY_OP_SN, "publish_ack", msg_publish_ack_io},
    {MSG_SEARCH, MSG_FAMILY_OP_SN, "search", msg_search_io},
    {MSG_SEARCH_RESULT, MSG_FAMILY_OP_SN, "search_result", msg_search_result_io},
    {MSG_LOCATE, MSG_FAMILY_OP_SN, "locate", msg_locate_io},
    {MSG_LOCATE_RESULT, MSG_FAMILY_OP_SN, "locate_result", msg_locate_result_io},
    {MSG_DIALBACK, MSG_FAMILY_OP_SN, "dialback", msg_dialback_io},
    {MSG_DIALBACK_RESULT, MSG_FAMILY_OP_SN, "dialback_result", msg_dialback_result_io},
    {MSG_CONNECT, MSG_FAMILY_OP_SN, "connect", msg_connect_io},
    {MSG_CONNECT_REQUEST, MSG_FAMILY_OP_SN, "connect_request", msg_connect_io},
    {MSG_REPORT, MSG_FAMILY_OP_SN, "report", msg_report_io},
    {MSG_RECEIPTS, MSG_FAMILY_OP_SN, "receipts", msg_receipts_io},
    {MSG_CREDIT, MSG_FAMILY_OP_SN, "credit", msg_credit_io},
    {MSG_PUNCH, MSG_FAMILY_OP_SN, "punch", msg_punch_io},
    {MSG_PUNCH_NOTE, MSG_FAMILY_OP_SN, "punch_note", msg_punch_note_io},
    {MSG_RELAY_OPEN, MSG_FAMILY_RELAY, "relay_open", msg_relay_open_io},
    {MSG_RELAY_ACCEPT, MSG_FAMILY_RELAY, "relay_accept", msg_relay_circuit_io},
    {MSG_RELAY_OPENED, MSG_FAMILY_RELAY, "relay_opened", msg_relay_circuit_io},
    {MSG_RELAY_DATA, MSG_FAMILY_RELAY, "relay_data", msg_relay_data_io},
    {MSG_RELAY_WINDOW, MSG_FAMILY_RELAY, "relay_window", msg_relay_window_io},
    {MSG_RELAY_CLOSE, MSG_FAMILY_RELAY, "relay_close", msg_relay_close_io},
    {MSG_GOSSIP, MSG_FAMILY_SN_SN, "gossip", msg_gossip_io},
    {MSG_SUMMARY, MSG_FAMILY_SN_SN, "summary", msg_summary_io},
    {MSG_FWD_SEARCH, MSG_FAMILY_SN_SN, "fwd_search", msg_fwd_search_io},
    {MSG_FWD_HITS, MSG_FAMILY_SN_SN, "fwd_hits", msg_search_result_io},
    {MSG_FWD_LOCATE, MSG_FAMILY_SN_SN, "fwd_locate", msg_fwd_locate_io},
    {MSG_FWD_LOCATE_RESULT, MSG_FAMILY_SN_SN, "fwd_locate_result", msg_fwd_locate_result_io},
    {MSG_FWD_CONNECT, MSG_FAMILY_SN_SN, "fwd_connect", msg_fwd_connect_io},
    {MSG_LEDGER_QUERY, MSG_FAMILY_SN_SN, "ledger_query", msg_ledger_query_io},
    {MSG_LEDGER_ANSWER, MSG_FAMILY_SN_SN, "ledger_answer", msg_ledger_answer_io},
    {MSG_LEDGER_UPDATE, MSG_FAMILY_SN_SN, "ledger_update", msg_ledger_update_io},
    {MSG_LEDGER_UPTIME, MSG_FAMILY_SN_SN, "ledger_uptime", msg_ledger_uptime_io},
    {MSG_LEDGER_PUT, MSG_FAMILY_SN_SN, "ledger_put", msg_ledger_put_io},
    {MSG_FWD_PUNCH, MSG_FAMILY_SN_SN, "fwd_punch", msg_fwd_punch_io},
    {MSG_MANIFEST_GET, MSG_FAMILY_PEER, "manifest_get", msg_chunk_range_io},
    {MSG_MANIFEST, MSG_FAMILY_PEER, "manifest", msg_manifest_io},
    {MSG_GET, MSG_FAMILY_PEER, "get", msg_chunk_range_io},
    {MSG_DATA, MSG_FAMILY_PEER, "data", msg_data_io},
    {MSG_RECEIPT, MSG_FAMILY_PEER, "receipt", msg_receipt_io},
};

static const struct msg_schema *schema_find(uint8_t type)
{
    for (size_t i = 0; i < sizeof(schemas) / sizeof(schemas[0]); i++)
        if (schemas[i].type == type)
            return &schemas[i];
    return NULL;
}

const char *msg_type_name(uint8_t type)
{
    const struct msg_schema *s = schema_find(type);
    return s ? s->name : NULL;
}

enum msg_family msg_type_family(uint8_t type)
{
    const struct msg_schema *s = schema_find(type);
    return s ? (enum msg_family)s->family : MSG_FAMILY_NONE;
}

/* Every message ends with an extension area; a schema with known tags
 * handles it itself, the others get the skip-everything default here. */
static void schema_run(const struct msg_schema *s, struct wire_io *io, void *body)
{
    s->io(io, body);
    if (!io->ext_done)
        wire_io_ext(io, NULL, 0);
}

/* A failure before any field: the type or the frame itself. */
static int fail_frame(struct wire_err *err, int code, const char *field)
{
    if (err) {
        memset(err, 0, sizeof(*err));
        err->code = code;
        err->field = field;
    }
    return code;
}

static bool payload_fits(size_t len, size_t max_frame)
{
    return max_frame >= WIRE_FRAME_HDR_SIZE && len <= max_frame - WIRE_FRAME_HDR_SIZE;
}

int msg_decode(uint8_t type, const uint8_t *payload, size_t len, const struct wire_limits *lim,
               struct msg *out, struct wire_err *err)
{
    memset(out, 0, sizeof(*out));
    const struct msg_schema *s = schema_find(type);
    if (!s)
        return fail_frame(err, SOVA_ERR_UNKNOWN_TYPE, "frame.type");
    if (!payload_fits(len, lim->max_frame))
        return fail_frame(err, SOVA_ERR_TOO_LARGE, "frame.length");
    out->type = type;
    out->owned = true; /* from here on, arrays hang off out */
    struct wire_io io;
    wire_io_init_decode(&io, payload, len, lim, s->name, err);
    schema_run(s, &io, &out->u);
    if (io.rc)
        msg_clear(out);
    return io.rc;
}

int msg_decode_frame(const uint8_t *buf, size_t len, const struct wire_limits *lim, struct msg *out,
                     size_t *consumed, struct wire_err *err)
{
    struct wire_frame_hdr hdr;
    int rc = wire_frame_peek(buf, len, lim->max_frame, &hdr, err);
    if (rc != 0)
        return rc;
    rc = msg_decode(hdr.type, buf + WIRE_FRAME_HDR_SIZE, hdr.payload_len, lim, out, err);
    if (rc == 0)
        *consumed = hdr.frame_len;
    return rc;
}

int msg_encode(const struct msg *m, const struct wire_limits *lim, struct wire_buf *out,
               struct wire_err *err)
{
    const struct msg_schema *s = schema_find(m->type);
    if (!s)
        return fail_frame(err, SOVA_ERR_UNKNOWN_TYPE, "frame.type");
    if (!payload_fits(0, lim->max_frame))
        return fail_frame(err, SOVA_ERR_TOO_LARGE, "frame.length");
    size_t start;
    if (wire_frame_begin(out, m->type, &start))
        return fail_frame(err, SOVA_ERR_NOMEM, "frame");
    struct wire_io io;
    wire_io_init_encode(&io, out, lim->max_frame - WIRE_FRAME_HDR_SIZE, lim, s->name, err);
    /* Encoding mode only reads the body (wire.h), so dropping const is safe. */
    schema_run(s, &io, (void *)&m->u);
    int rc = io.rc ? io.rc : wire_frame_finish(out, start, lim->max_frame, err);
    if (rc)
        wire_buf_truncate(out, start);
    return rc;
}

void msg_clear(struct msg *m)
{
    const struct msg_schema *s = schema_find(m->type);
    if (m->owned && s) {
        struct wire_limits lim = wire_limits_default();
        struct wire_io io;
        wire_io_init_free(&io, &lim);
        schema_run(s, &io, &m->u);
    }
    memset(m, 0, sizeof(*m));
}

bool msg_equal(const struct msg *a, const struct msg *b, const struct wire_limits *lim)
{
    struct wire_buf ea, eb;
    wire_buf_init(&ea);
    wire_buf_init(&eb);
    bool equal = a->type == b->type && msg_encode(a, lim, &ea, NULL) == 0 &&
                 msg_encode(b, lim, &eb, NULL) == 0 && ea.len == eb.len &&
                 memcmp(ea.data, eb.data, ea.len) == 0;
    wire_buf_free(&ea);
    wire_buf_free(&eb);
    return equal;
}

int msg_hello_negotiate(const struct msg_hello *remote, uint16_t local_min, uint16_t local_max,
                        uint16_t *version)
{
    uint16_t lo = remote->version_min > local_min ? remote->version_min : local_min;
    uint16_t hi = remote->version_max < local_max ? remote->version_max : local_max;
    if (lo > hi || hi == 0)
        return SOVA_ERR_VERSION;
    *version = hi;
    return 0;
}

/* ERROR codes: the value on the wire, the local error it stands for (0 for
 * daemon decisions) and its text (NULL: use sova_err_str). */
static const struct {
    uint16_t code;
    int sova_err;
    const char *text;
} error_codes[] = {
    {MSG_ERR_INTERNAL, SOVA_ERR_INTERNAL, NULL},
    {MSG_ERR_TRUNCATED, SOVA_ERR_TRUNCATED, NULL},
    {MSG_ERR_TOO_LARGE, SOVA_ERR_TOO_LARGE, NULL},
    {MSG_ERR_BAD_LENGTH, SOVA_ERR_BAD_LENGTH, NULL},
    {MSG_ERR_UNKNOWN_TYPE, SOVA_ERR_UNKNOWN_TYPE, NULL},
    {MSG_ERR_TRAILING, SOVA_ERR_TRAILING, NULL},
    {MSG_ERR_BAD_VALUE, SOVA_ERR_BAD_VALUE, NULL},
    {MSG_ERR_VERSION, SOVA_ERR_VERSION, NULL},
    {MSG_ERR_PROTOCOL, 0, "message not allowed here"},
    {MSG_ERR_LIMIT_REACHED, 0, "limit reached"},
    {MSG_ERR_RATE_LIMITED, 0, "rate limited"},
    {MSG_ERR_NOT_ATTACHED, 0, "not attached"},
    {MSG_ERR_NOT_FOUND, SOVA_ERR_NOT_FOUND, "not found"},
    {MSG_ERR_UNAUTHORIZED, 0, "unauthorized"},
    {MSG_ERR_OVERLOADED, 0, "overloaded"},
    {MSG_ERR_REDIRECT, 0, "redirected"},
    {MSG_ERR_SHUTTING_DOWN, 0, "shutting down"},
    {MSG_ERR_RELAY_REFUSED, 0, "relay refused"},
    {MSG_ERR_TIMEOUT, SOVA_ERR_TIMEOUT, "timed out"},
    {MSG_ERR_UNSAFE_NAME, SOVA_ERR_UNSAFE_NAME, "unsafe name"},
};

#define N_ERROR_CODES (sizeof(error_codes) / sizeof(error_codes[0]))

uint16_t msg_error_code_from_err(int sova_err)
{
    for (size_t i = 0; i < N_ERROR_CODES; i++)
        if (error_codes[i].sova_err != 0 && error_codes[i].sova_err == sova_err)
            return error_codes[i].code;
    return MSG_ERR_INTERNAL;
}

const char *msg_error_code_str(uint16_t code)
{
    if (code == MSG_ERR_NONE)
        return "none";
    for (size_t i = 0; i < N_ERROR_CODES; i++)
        if (error_codes[i].code == code)
            return error_codes[i].text ? error_codes[i].text
                                       : sova_err_str(error_codes[i].sova_err);
    return "unknown error code";
}

void msg_error_from_wire_err(struct msg *m, const struct wire_err *err, uint8_t offending_type,
                             char *textbuf, size_t textcap)
{
    memset(m, 0, sizeof(*m));
    m->type = MSG_ERROR;
    m->u.error.code = msg_error_code_from_err(err->code);
    m->u.error.offending_type = offending_type;
    if (textcap == 0)
        return;
    wire_err_format(err, textbuf, textcap);
    m->u.error.text = wire_str_from(textbuf);
    if (m->u.error.text.len > WIRE_MAX_ERROR_TEXT_DEFAULT)
        m->u.error.text.len = WIRE_MAX_ERROR_TEXT_DEFAULT; /* the text is ASCII */
}

uint32_t msg_relay_circuit_id(const struct msg *m)
{
    switch (m->type) {
    case MSG_RELAY_OPEN:
        return m->u.relay_open.circuit_id;
    case MSG_RELAY_ACCEPT:
    case MSG_RELAY_OPENED:
        return m->u.relay_accept.circuit_id;
    case MSG_RELAY_DATA:
        return m->u.relay_data.circuit_id;
    case MSG_RELAY_WINDOW:
        return m->u.relay_window.circuit_id;
    case MSG_RELAY_CLOSE:
        return m->u.relay_close.circuit_id;
    default:
        return 0;
    }
}

const char *msg_dialback_outcome_str(uint8_t outcome)
{
    switch (outcome) {
    case MSG_DIALBACK_OK:
        return "ok";
    case MSG_DIALBACK_REFUSED:
        return "refused";
    case MSG_DIALBACK_TIMEOUT:
        return "timeout";
    case MSG_DIALBACK_TLS_FAILED:
        return "tls-failed";
    case MSG_DIALBACK_ID_MISMATCH:
        return "id-mismatch";
    case MSG_DIALBACK_NOT_TRIED:
        return "not-tried";
    default:
        return "?";
    }
}
