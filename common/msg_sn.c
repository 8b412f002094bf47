/* msg_sn.c - schemas of the supernode federation: SWIM gossip, index
 * summaries, forwarded searches and locates. FWD_HITS reuses the
 * SEARCH_RESULT schema (msg_op.c). Layouts: docs/PROTOCOL.md,
 * "Supernode <-> supernode messages". */
#define SOVA_MSG_INTERNAL
#include "err.h"
#include "msg_schema.h"

#define SUMMARY_MAX_HASHES 32

void msg_sn_info_io(struct wire_io *io, void *item)
{
    struct msg_sn_info *e = item;
    wire_io_raw(io, "sn_id", e->sn_id, WIRE_ID_LEN);
    WIRE_IO_ADDRS(io, "addrs", e->addrs, e->n_addrs);
    wire_io_u64(io, "incarnation", &e->incarnation);
    wire_io_u8_in(io, "state", &e->state, MSG_SN_ALIVE, MSG_SN_LEFT);
    wire_io_u32(io, "attached_peers", &e->attached_peers);
    wire_io_u32(io, "capacity", &e->capacity);
    wire_io_u32(io, "relay_kbps", &e->relay_kbps);
}

void msg_gossip_io(struct wire_io *io, void *body)
{
    struct msg_gossip *m = body;
    const struct wire_array_spec spec = {
        .count_size = 1,
        .limit = io->lim->max_gossip_updates,
        .item_size = sizeof(*m->updates),
        .min_wire_size = MSG_SN_INFO_MIN_SIZE,
        .item = msg_sn_info_io,
    };
    wire_io_u8_in(io, "kind", &m->kind, MSG_GOSSIP_PING, MSG_GOSSIP_PING_REQ);
    wire_io_u32(io, "seq", &m->seq);
    wire_io_raw(io, "target_id", m->target_id, WIRE_ID_LEN);
    WIRE_IO_ARRAY(io, "updates", m->updates, m->n_updates, &spec);
}

void msg_summary_io(struct wire_io *io, void *body)
{
    struct msg_summary *m = body;
    uint64_t max_bits = (uint64_t)io->lim->max_bloom_bytes * 8;
    wire_io_raw(io, "sn_id", m->sn_id, WIRE_ID_LEN);
    wire_io_u64(io, "version", &m->version);
    wire_io_u8_in(io, "hash_count", &m->hash_count, 1, SUMMARY_MAX_HASHES);
    wire_io_u32_in(io, "bit_count", &m->bit_count, 1,
                   max_bits < UINT32_MAX ? (uint32_t)max_bits : UINT32_MAX);
    wire_io_bytes(io, "bits", &m->bits, io->lim->max_bloom_bytes);
    wire_io_check(io, m->bits.len == ((uint64_t)m->bit_count + 7) / 8, SOVA_ERR_BAD_VALUE, "bits");
}

void msg_fwd_search_io(struct wire_io *io, void *body)
{
    struct msg_fwd_search *m = body;
    wire_io_raw(io, "origin_sn", m->origin_sn, WIRE_ID_LEN);
    wire_io_u8(io, "ttl", &m->ttl);
    wire_io_u32_in(io, "deadline_ms", &m->deadline_ms, 1, UINT32_MAX);
    msg_search_io(io, &m->search); /* ends with the extension area */
}

void msg_fwd_locate_io(struct wire_io *io, void *body)
{
    struct msg_fwd_locate *m = body;
    wire_io_u64(io, "query_id", &m->query_id);
    wire_io_raw(io, "peer_id", m->peer_id, WIRE_ID_LEN);
}

void msg_fwd_locate_result_io(struct wire_io *io, void *body)
{
    struct msg_fwd_locate_result *m = body;
    wire_io_u64(io, "query_id", &m->query_id);
    msg_locate_result_io(io, &m->result);
}

void msg_fwd_connect_io(struct wire_io *io, void *body)
{
    struct msg_fwd_connect *m = body;
    wire_io_raw(io, "target_id", m->target_id, WIRE_ID_LEN);
    msg_connect_io(io, &m->request);
}

void msg_fwd_punch_io(struct wire_io *io, void *body)
{
    struct msg_fwd_punch *m = body;
    wire_io_raw(io, "target_id", m->target_id, WIRE_ID_LEN);
    msg_punch_note_io(io, &m->note);
}
