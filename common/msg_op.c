/* msg_op.c - schemas of the messages between an ordinary peer and its
 * supernode: attach, publish, search, locate, dial-back, connection reversal.
 * Layouts: docs/PROTOCOL.md, "Peer <-> supernode messages". */
#define SOVA_MSG_INTERNAL
#include "err.h"
#include "msg_schema.h"

/* Smallest encodings of the array items below, for the decoder's check of a
 * count against the bytes that remain. A name or keyword is at least 1 byte. */
#define PUBLISH_RECORD_MIN_SIZE (1 + WIRE_HASH_LEN + 8 + 4 + 2 + 1)
#define KEYWORD_MIN_SIZE        (2 + 1)
#define SOURCE_MIN_SIZE         (WIRE_ID_LEN + 1 + 1)
#define HIT_MIN_SIZE            (WIRE_HASH_LEN + 8 + 2 + 1 + 1)
#define PROBE_MIN_SIZE          (WIRE_ADDR_MIN_SIZE + 1)

void msg_register_io(struct wire_io *io, void *body)
{
    struct msg_register *m = body;
    wire_io_u8_in(io, "session", &m->session, MSG_SESSION_PRIMARY, MSG_SESSION_BACKUP);
    wire_io_u8_in(io, "reachability", &m->reachability, MSG_REACH_UNKNOWN, MSG_REACH_UNREACHABLE);
    WIRE_IO_ADDRS(io, "addrs", m->addrs, m->n_addrs);
}

void msg_registered_io(struct wire_io *io, void *body)
{
    struct msg_registered *m = body;
    wire_io_addr(io, "observed", &m->observed);
    wire_io_u16_in(io, "keepalive_s", &m->keepalive_s, 1, UINT16_MAX);
    /* A timeout shorter than the keep-alive would drop healthy peers. */
    wire_io_u16_in(io, "peer_timeout_s", &m->peer_timeout_s, m->keepalive_s, UINT16_MAX);
}

void msg_sn_list_io(struct wire_io *io, void *body)
{
    struct msg_sn_list *m = body;
    const struct wire_array_spec spec = {
        .count_size = 2,
        .limit = io->lim->max_sn_entries,
        .item_size = sizeof(*m->entries),
        .min_wire_size = MSG_SN_INFO_MIN_SIZE,
        .item = msg_sn_info_io,
    };
    WIRE_IO_ARRAY(io, "entries", m->entries, m->n_entries, &spec);
}

static void publish_record_io(struct wire_io *io, void *item)
{
    struct msg_publish_record *r = item;
    wire_io_u8_in(io, "action", &r->action, MSG_PUBLISH_ADD, MSG_PUBLISH_REMOVE);
    wire_io_raw(io, "hash", r->hash, WIRE_HASH_LEN);
    wire_io_u64(io, "size", &r->size);
    wire_io_u32_in(io, "chunk_size", &r->chunk_size, 1, UINT32_MAX);
    wire_io_str(io, "name", &r->name, io->lim->max_name_len, WIRE_STR_NONEMPTY | WIRE_STR_FILENAME);
}

void msg_publish_io(struct wire_io *io, void *body)
{
    struct msg_publish *m = body;
    const struct wire_array_spec spec = {
        .count_size = 2,
        .limit = io->lim->max_publish_records,
        .min_count = 1,
        .item_size = sizeof(*m->records),
        .min_wire_size = PUBLISH_RECORD_MIN_SIZE,
        .item = publish_record_io,
    };
    WIRE_IO_ARRAY(io, "records", m->records, m->n_records, &spec);
}

void msg_publish_ack_io(struct wire_io *io, void *body)
{
    struct msg_publish_ack *m = body;
    wire_io_u16(io, "accepted", &m->accepted);
    wire_io_u16(io, "rejected", &m->rejected);
    wire_io_u16(io, "first_error", &m->first_error);
    wire_io_u16(io, "first_error_index", &m->first_error_index);
}

static void keyword_io(struct wire_io *io, void *item)
{
    /* No field name: errors name the element, "search.keywords[2]". */
    wire_io_str(io, NULL, item, io->lim->max_keyword_len, WIRE_STR_NONEMPTY);
}

static void search_size_range_io(struct wire_io *io, void *ctx)
{
    struct msg_search *m = ctx;
    wire_io_u64(io, "min_size", &m->min_size);
    wire_io_u64(io, "max_size", &m->max_size);
    wire_io_check(io, m->min_size <= m->max_size, SOVA_ERR_BAD_VALUE, "max_size");
}

static void search_hash_io(struct wire_io *io, void *ctx)
{
    struct msg_search *m = ctx;
    wire_io_raw(io, "hash", m->hash, WIRE_HASH_LEN);
}

void msg_search_io(struct wire_io *io, void *body)
{
    struct msg_search *m = body;
    const struct wire_array_spec spec = {
        .count_size = 1,
        .limit = io->lim->max_keywords,
        .item_size = sizeof(*m->keywords),
        .min_wire_size = KEYWORD_MIN_SIZE,
        .item = keyword_io,
    };
    wire_io_u64(io, "query_id", &m->query_id);
    wire_io_u16_in(io, "max_results", &m->max_results, 1, UINT16_MAX);
    WIRE_IO_ARRAY(io, "keywords", m->keywords, m->n_keywords, &spec);
    const struct wire_ext ext[] = {
        {MSG_EXT_SEARCH_SIZE_RANGE, &m->has_size_range, search_size_range_io, m},
        {MSG_EXT_SEARCH_HASH, &m->has_hash, search_hash_io, m},
    };
    wire_io_ext(io, ext, sizeof(ext) / sizeof(ext[0]));
    /* A query with neither would match every file in the index. */
    wire_io_check(io, m->n_keywords > 0 || m->has_hash, SOVA_ERR_BAD_VALUE, "keywords");
}

static void source_io(struct wire_io *io, void *item)
{
    struct msg_source *s = item;
    wire_io_raw(io, "peer_id", s->peer_id, WIRE_ID_LEN);
    wire_io_u8_in(io, "reachability", &s->reachability, MSG_REACH_UNKNOWN, MSG_REACH_UNREACHABLE);
    WIRE_IO_ADDRS(io, "addrs", s->addrs, s->n_addrs);
}

static void hit_io(struct wire_io *io, void *item)
{
    struct msg_hit *h = item;
    const struct wire_array_spec spec = {
        .count_size = 1,
        .limit = io->lim->max_sources,
        .item_size = sizeof(*h->sources),
        .min_wire_size = SOURCE_MIN_SIZE,
        .item = source_io,
    };
    wire_io_raw(io, "hash", h->hash, WIRE_HASH_LEN);
    wire_io_u64(io, "size", &h->size);
    wire_io_str(io, "name", &h->name, io->lim->max_name_len, WIRE_STR_NONEMPTY | WIRE_STR_FILENAME);
    WIRE_IO_ARRAY(io, "sources", h->sources, h->n_sources, &spec);
}

void msg_search_result_io(struct wire_io *io, void *body)
{
    struct msg_search_result *m = body;
    const struct wire_array_spec spec = {
        .count_size = 2,
        .limit = io->lim->max_hits,
        .item_size = sizeof(*m->hits),
        .min_wire_size = HIT_MIN_SIZE,
        .item = hit_io,
    };
    wire_io_u64(io, "query_id", &m->query_id);
    wire_io_u8(io, "flags", &m->flags);
    WIRE_IO_ARRAY(io, "hits", m->hits, m->n_hits, &spec);
}

void msg_locate_io(struct wire_io *io, void *body)
{
    struct msg_locate *m = body;
    wire_io_raw(io, "peer_id", m->peer_id, WIRE_ID_LEN);
}

void msg_locate_result_io(struct wire_io *io, void *body)
{
    struct msg_locate_result *m = body;
    wire_io_raw(io, "peer_id", m->peer_id, WIRE_ID_LEN);
    wire_io_u8_in(io, "found", &m->found, 0, 1);
    wire_io_u8_in(io, "reachability", &m->reachability, MSG_REACH_UNKNOWN, MSG_REACH_UNREACHABLE);
    WIRE_IO_ADDRS(io, "addrs", m->addrs, m->n_addrs);
    wire_io_raw(io, "sn_id", m->sn_id, WIRE_ID_LEN);
}

void msg_dialback_io(struct wire_io *io, void *body)
{
    struct msg_dialback *m = body;
    wire_io_u64(io, "nonce", &m->nonce);
    WIRE_IO_ADDRS(io, "addrs", m->addrs, m->n_addrs);
    wire_io_check(io, m->n_addrs > 0, SOVA_ERR_BAD_VALUE, "addrs");
}

static void probe_io(struct wire_io *io, void *item)
{
    struct msg_dialback_probe *p = item;
    wire_io_addr(io, "addr", &p->addr);
    wire_io_u8_in(io, "outcome", &p->outcome, MSG_DIALBACK_OK, MSG_DIALBACK_NOT_TRIED);
}

void msg_dialback_result_io(struct wire_io *io, void *body)
{
    struct msg_dialback_result *m = body;
    const struct wire_array_spec spec = {
        .count_size = 1,
        .limit = wire_max_addrs(io->lim),
        .item_size = sizeof(*m->probes),
        .min_wire_size = PROBE_MIN_SIZE,
        .item = probe_io,
    };
    wire_io_u64(io, "nonce", &m->nonce);
    WIRE_IO_ARRAY(io, "probes", m->probes, m->n_probes, &spec);
}

void msg_connect_io(struct wire_io *io, void *body)
{
    struct msg_connect *m = body;
    wire_io_raw(io, "peer_id", m->peer_id, WIRE_ID_LEN);
    wire_io_raw(io, "token", m->token, WIRE_TOKEN_LEN);
    WIRE_IO_ADDRS(io, "addrs", m->addrs, m->n_addrs);
    wire_io_check(io, m->n_addrs > 0, SOVA_ERR_BAD_VALUE, "addrs");
}

void msg_punch_io(struct wire_io *io, void *body)
{
    struct msg_punch *m = body;
    wire_io_raw(io, "peer_id", m->peer_id, WIRE_ID_LEN);
    wire_io_raw(io, "token", m->token, WIRE_TOKEN_LEN);
    wire_io_u8_in(io, "step", &m->step, MSG_PUNCH_OFFER, MSG_PUNCH_NO);
    wire_io_u16(io, "port", &m->port);
    /* OFFER and READY name the port they dial from; SYNC and NO none */
    wire_io_check(io, (m->port != 0) == (m->step == MSG_PUNCH_OFFER || m->step == MSG_PUNCH_READY),
                  SOVA_ERR_BAD_VALUE, "port");
}

void msg_punch_note_io(struct wire_io *io, void *body)
{
    struct msg_punch_note *m = body;
    wire_io_raw(io, "peer_id", m->peer_id, WIRE_ID_LEN);
    wire_io_raw(io, "token", m->token, WIRE_TOKEN_LEN);
    wire_io_u8_in(io, "step", &m->step, MSG_PUNCH_OFFER, MSG_PUNCH_NO);
    wire_io_addr(io, "addr", &m->addr);
}

void msg_report_io(struct wire_io *io, void *body)
{
    struct msg_report *m = body;
    wire_io_raw(io, "peer_id", m->peer_id, WIRE_ID_LEN);
    wire_io_raw(io, "hash", m->hash, WIRE_HASH_LEN);
    wire_io_u8_in(io, "reason", &m->reason, MSG_REPORT_BAD_DATA, MSG_REPORT_REFUSED);
}
