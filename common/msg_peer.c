/* msg_peer.c - schemas of transfers between ordinary peers: manifests and
 * chunk data. Layouts: docs/PROTOCOL.md, "Peer <-> peer messages". */
#define SOVA_MSG_INTERNAL
#include "err.h"
#include "fileid.h"
#include "msg_schema.h"

/* A chunk size a request may ask for: a power of two, 64 KiB .. 16 MiB. */
static void chunk_size_io(struct wire_io *io, uint32_t *chunk_size)
{
    wire_io_u32(io, "chunk_size", chunk_size);
    wire_io_check(io,
                  *chunk_size >= MSG_CHUNK_SIZE_MIN && *chunk_size <= MSG_CHUNK_SIZE_MAX &&
                      (*chunk_size & (*chunk_size - 1)) == 0,
                  SOVA_ERR_BAD_VALUE, "chunk_size");
}

void msg_chunk_range_io(struct wire_io *io, void *body)
{
    struct msg_chunk_range *m = body;
    wire_io_raw(io, "file_id", m->file_id, WIRE_HASH_LEN);
    chunk_size_io(io, &m->chunk_size);
    wire_io_u32(io, "first_chunk", &m->first_chunk);
    wire_io_u32_in(io, "count", &m->count, 1, UINT32_MAX);
}

static void chunk_hash_io(struct wire_io *io, void *item)
{
    wire_io_raw(io, NULL, item, WIRE_HASH_LEN);
}

static uint64_t chunk_total(uint64_t file_size, uint32_t chunk_size)
{
    if (chunk_size == 0)
        return 0;
    return file_size / chunk_size + (file_size % chunk_size != 0);
}

void msg_manifest_io(struct wire_io *io, void *body)
{
    struct msg_manifest *m = body;
    const struct wire_array_spec spec = {
        .count_size = 2,
        .limit = io->lim->max_manifest_hashes,
        .item_size = sizeof(*m->chunk_hashes),
        .min_wire_size = WIRE_HASH_LEN,
        .item = chunk_hash_io,
    };
    wire_io_raw(io, "file_id", m->file_id, WIRE_HASH_LEN);
    wire_io_u64(io, "file_size", &m->file_size);
    wire_io_check(io, m->file_size <= FILEID_MAX_SIZE, SOVA_ERR_BAD_VALUE, "file_size");
    wire_io_raw(io, "root", m->root, WIRE_HASH_LEN);
    chunk_size_io(io, &m->chunk_size);
    /* Every chunk of the file must have a u32 index at this size. */
    uint64_t total = chunk_total(m->file_size, m->chunk_size);
    wire_io_check(io, total <= UINT32_MAX, SOVA_ERR_BAD_VALUE, "chunk_size");
    wire_io_u32(io, "first_chunk", &m->first_chunk);
    WIRE_IO_ARRAY(io, "chunk_hashes", m->chunk_hashes, m->n_chunk_hashes, &spec);
    /* The page must lie inside the file. */
    wire_io_check(io, (uint64_t)m->first_chunk + m->n_chunk_hashes <= total, SOVA_ERR_BAD_VALUE,
                  "chunk_hashes");
}

void msg_data_io(struct wire_io *io, void *body)
{
    struct msg_data *m = body;
    wire_io_raw(io, "file_id", m->file_id, WIRE_HASH_LEN);
    wire_io_u32(io, "chunk_index", &m->chunk_index);
    wire_io_u32(io, "offset", &m->offset);
    wire_io_bytes(io, "data", &m->data, io->lim->max_data);
    wire_io_check(io, m->data.len > 0, SOVA_ERR_BAD_VALUE, "data");
}
