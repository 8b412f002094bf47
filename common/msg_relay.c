/* msg_relay.c - schemas of relay circuits: open, accept/opened, data with
 * per-circuit credit, close. Layouts: docs/PROTOCOL.md, "Relay messages". */
#define SOVA_MSG_INTERNAL
#include "err.h"
#include "msg_schema.h"

/* Circuit ID 0 is never used, so a zeroed struct cannot name a circuit. */
static void circuit_id_io(struct wire_io *io, uint32_t *circuit_id)
{
    wire_io_u32_in(io, "circuit_id", circuit_id, 1, UINT32_MAX);
}

void msg_relay_open_io(struct wire_io *io, void *body)
{
    struct msg_relay_open *m = body;
    circuit_id_io(io, &m->circuit_id);
    wire_io_raw(io, "target_id", m->target_id, WIRE_ID_LEN);
    wire_io_raw(io, "origin_id", m->origin_id, WIRE_ID_LEN);
    wire_io_raw(io, "token", m->token, WIRE_TOKEN_LEN);
}

void msg_relay_circuit_io(struct wire_io *io, void *body)
{
    struct msg_relay_circuit *m = body;
    circuit_id_io(io, &m->circuit_id);
}

void msg_relay_data_io(struct wire_io *io, void *body)
{
    struct msg_relay_data *m = body;
    circuit_id_io(io, &m->circuit_id);
    wire_io_bytes(io, "data", &m->data, io->lim->max_relay_data);
    wire_io_check(io, m->data.len > 0, SOVA_ERR_BAD_VALUE, "data");
}

void msg_relay_window_io(struct wire_io *io, void *body)
{
    struct msg_relay_window *m = body;
    circuit_id_io(io, &m->circuit_id);
    wire_io_u32_in(io, "credit", &m->credit, 1, UINT32_MAX);
}

void msg_relay_close_io(struct wire_io *io, void *body)
{
    struct msg_relay_close *m = body;
    circuit_id_io(io, &m->circuit_id);
    wire_io_u16(io, "reason", &m->reason);
}
