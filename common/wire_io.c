/* wire_io.c - the bounded cursor of wire.h (struct wire_io).
 *
 * The cursor is the only code in Sova that touches raw message bytes. Every
 * read goes through io_take(), which refuses to run past io->end; every
 * write goes through io_put(), which refuses to grow the payload past the
 * frame limit. Schemas (msg_*.c) never index a buffer themselves.
 */
#include "err.h"
#include "wire.h"

#include <stdlib.h>
#include <string.h>

static uint64_t uint_max(unsigned size)
{
    return size >= 8 ? UINT64_MAX : (UINT64_C(1) << (8 * size)) - 1;
}

/* What wire_io_str accepts besides the length: UTF-8 without NUL, and for
 * WIRE_STR_FILENAME a single path component. */
static bool str_allowed(const char *p, size_t len, unsigned flags)
{
    if (len > 0 && !wire_utf8_valid(p, len))
        return false;
    if (!(flags & WIRE_STR_FILENAME))
        return true;
    if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
        return false;
    return !memchr(p, '/', len) && !memchr(p, '\\', len);
}

/* ---- the cursor: state and failure ----------------------------------------- */

static void io_setup(struct wire_io *io, enum wire_io_mode mode, const struct wire_limits *lim,
                     const char *scope, struct wire_err *err)
{
    memset(io, 0, sizeof(*io));
    io->mode = mode;
    io->lim = lim;
    io->scope = scope;
    io->err = err;
    if (err)
        memset(err, 0, sizeof(*err));
}

void wire_io_init_decode(struct wire_io *io, const uint8_t *payload, size_t len,
                         const struct wire_limits *lim, const char *scope, struct wire_err *err)
{
    io_setup(io, WIRE_IO_DECODE, lim, scope, err);
    io->in = payload ? payload : (const uint8_t *)""; /* NULL + 0 is undefined */
    io->end = len;
}

void wire_io_init_encode(struct wire_io *io, struct wire_buf *out, size_t max_payload,
                         const struct wire_limits *lim, const char *scope, struct wire_err *err)
{
    io_setup(io, WIRE_IO_ENCODE, lim, scope, err);
    io->out = out;
    io->base = out->len;
    io->max_payload = max_payload;
}

void wire_io_init_free(struct wire_io *io, const struct wire_limits *lim)
{
    io_setup(io, WIRE_IO_FREE, lim, NULL, NULL);
}

size_t wire_io_offset(const struct wire_io *io)
{
    if (io->mode == WIRE_IO_DECODE)
        return io->pos;
    if (io->mode == WIRE_IO_ENCODE)
        return io->out->len - io->base;
    return 0;
}

/* Record the first failure with the current path; later ones are ignored
 * because they are consequences of the first. */
static void io_fail(struct wire_io *io, int code, const char *field, size_t offset)
{
    if (io->rc)
        return;
    io->rc = code;
    if (!io->err)
        return;
    struct wire_err *e = io->err;
    e->code = code;
    e->scope = io->scope;
    e->field = field;
    e->offset = offset;
    e->depth = io->depth;
    memcpy(e->path, io->path, sizeof(e->path));
}

/* Reading or writing is still going on (no error, not freeing). */
static bool io_active(const struct wire_io *io)
{
    return io->rc == 0 && io->mode != WIRE_IO_FREE;
}

void wire_io_enter(struct wire_io *io, const char *name, uint32_t index)
{
    if (io->depth < WIRE_ERR_MAX_DEPTH) {
        io->path[io->depth].name = name;
        io->path[io->depth].index = index;
    }
    io->depth++;
}

void wire_io_leave(struct wire_io *io)
{
    if (io->depth > 0)
        io->depth--;
}

void wire_io_check(struct wire_io *io, bool ok, int code, const char *field)
{
    if (io_active(io) && !ok)
        io_fail(io, code, field, wire_io_offset(io));
}

/* The n next input bytes, or NULL (TRUNCATED, reported at the offset at
 * where the field began) if fewer remain. */
static const uint8_t *io_take(struct wire_io *io, const char *field, size_t n, size_t at)
{
    if (io->end - io->pos < n) {
        io_fail(io, SOVA_ERR_TRUNCATED, field, at);
        return NULL;
    }
    const uint8_t *p = io->in + io->pos;
    io->pos += n;
    return p;
}

/* Append n bytes unless that would make the frame too large. */
static void io_put(struct wire_io *io, const char *field, const void *p, size_t n)
{
    size_t used = io->out->len - io->base;
    if (n > io->max_payload - used) {
        io_fail(io, SOVA_ERR_TOO_LARGE, field, used);
        return;
    }
    if (wire_buf_append(io->out, p, n))
        io_fail(io, SOVA_ERR_NOMEM, field, used);
}

/* ---- the cursor: primitives ----------------------------------------------- */

/* The one integer primitive: size bytes big-endian, value within [lo, hi]. */
static void io_uint(struct wire_io *io, const char *field, uint64_t *v, unsigned size, uint64_t lo,
                    uint64_t hi)
{
    if (!io_active(io))
        return;
    size_t at = wire_io_offset(io);
    if (io->mode == WIRE_IO_DECODE) {
        const uint8_t *p = io_take(io, field, size, at);
        if (!p)
            return;
        *v = wire_get_be(p, size);
    }
    if (*v < lo || *v > hi || *v > uint_max(size)) {
        io_fail(io, SOVA_ERR_BAD_VALUE, field, at);
        return;
    }
    if (io->mode == WIRE_IO_ENCODE) {
        uint8_t b[8];
        wire_put_be(b, *v, size);
        io_put(io, field, b, size);
    }
}

void wire_io_u8_in(struct wire_io *io, const char *field, uint8_t *v, uint8_t lo, uint8_t hi)
{
    uint64_t x = *v;
    io_uint(io, field, &x, 1, lo, hi);
    if (io->mode == WIRE_IO_DECODE)
        *v = (uint8_t)x;
}

void wire_io_u16_in(struct wire_io *io, const char *field, uint16_t *v, uint16_t lo, uint16_t hi)
{
    uint64_t x = *v;
    io_uint(io, field, &x, 2, lo, hi);
    if (io->mode == WIRE_IO_DECODE)
        *v = (uint16_t)x;
}

void wire_io_u32_in(struct wire_io *io, const char *field, uint32_t *v, uint32_t lo, uint32_t hi)
{
    uint64_t x = *v;
    io_uint(io, field, &x, 4, lo, hi);
    if (io->mode == WIRE_IO_DECODE)
        *v = (uint32_t)x;
}

void wire_io_u8(struct wire_io *io, const char *field, uint8_t *v)
{
    wire_io_u8_in(io, field, v, 0, UINT8_MAX);
}

void wire_io_u16(struct wire_io *io, const char *field, uint16_t *v)
{
    wire_io_u16_in(io, field, v, 0, UINT16_MAX);
}

void wire_io_u32(struct wire_io *io, const char *field, uint32_t *v)
{
    wire_io_u32_in(io, field, v, 0, UINT32_MAX);
}

void wire_io_u64(struct wire_io *io, const char *field, uint64_t *v)
{
    io_uint(io, field, v, 8, 0, UINT64_MAX);
}

void wire_io_raw(struct wire_io *io, const char *field, uint8_t *p, size_t n)
{
    if (!io_active(io))
        return;
    if (io->mode == WIRE_IO_ENCODE) {
        io_put(io, field, p, n);
        return;
    }
    const uint8_t *src = io_take(io, field, n, io->pos);
    if (src)
        memcpy(p, src, n);
}

/* A length prefix of size bytes, at most max_len (else TOO_LARGE). Encoding
 * checks before it writes, decoding after it reads. */
static void io_length(struct wire_io *io, const char *field, size_t *len, unsigned size,
                      size_t max_len)
{
    size_t at = wire_io_offset(io);
    uint64_t n = *len;
    if (io->mode == WIRE_IO_DECODE)
        io_uint(io, field, &n, size, 0, UINT64_MAX);
    if (!io_active(io))
        return;
    if (n > max_len || n > uint_max(size)) {
        io_fail(io, SOVA_ERR_TOO_LARGE, field, at);
        return;
    }
    if (io->mode == WIRE_IO_ENCODE)
        io_uint(io, field, &n, size, 0, UINT64_MAX);
    *len = (size_t)n;
}

/* The len bytes of a str or bytes body: borrowed from the input when
 * decoding, appended from *ptr when encoding. */
static const void *io_body(struct wire_io *io, const char *field, const void *ptr, size_t len,
                           size_t at)
{
    if (!io_active(io))
        return NULL;
    if (io->mode == WIRE_IO_DECODE)
        return io_take(io, field, len, at);
    if (len > 0 && !ptr) {
        io_fail(io, SOVA_ERR_INVALID, field, at);
        return NULL;
    }
    io_put(io, field, ptr, len);
    return ptr;
}

void wire_io_str(struct wire_io *io, const char *field, struct wire_str *s, size_t max_len,
                 unsigned flags)
{
    if (!io_active(io))
        return;
    size_t at = wire_io_offset(io);
    size_t len = s->len;
    io_length(io, field, &len, 2, max_len);
    if (io_active(io) && len == 0 && (flags & WIRE_STR_NONEMPTY))
        io_fail(io, SOVA_ERR_BAD_VALUE, field, at);
    /* Check an encoder's input before it reaches the wire. */
    if (io->mode == WIRE_IO_ENCODE && io_active(io) && s->ptr && !str_allowed(s->ptr, len, flags))
        io_fail(io, SOVA_ERR_BAD_VALUE, field, at);
    const char *p = io_body(io, field, s->ptr, len, at);
    if (!p || io->mode != WIRE_IO_DECODE)
        return;
    if (!str_allowed(p, len, flags)) {
        io_fail(io, SOVA_ERR_BAD_VALUE, field, at);
        return;
    }
    s->ptr = p;
    s->len = len;
}

void wire_io_bytes(struct wire_io *io, const char *field, struct wire_bytes *b, size_t max_len)
{
    if (!io_active(io))
        return;
    size_t at = wire_io_offset(io);
    size_t len = b->len;
    io_length(io, field, &len, 4, max_len);
    const uint8_t *p = io_body(io, field, b->ptr, len, at);
    if (p && io->mode == WIRE_IO_DECODE) {
        b->ptr = p;
        b->len = len;
    }
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* The fields of one address, without a path step of its own. */
static void addr_fields(struct wire_io *io, void *item)
{
    struct wire_addr *a = item;
    size_t at = wire_io_offset(io);
    wire_io_u8(io, "family", &a->family);
    if (!io_active(io))
        return;
    size_t ip_len = a->family == WIRE_ADDR_IPV4 ? 4 : a->family == WIRE_ADDR_IPV6 ? 16 : 0;
    if (ip_len == 0) {
        io_fail(io, SOVA_ERR_BAD_VALUE, "family", at);
        return;
    }
    at = wire_io_offset(io);
    wire_io_raw(io, "ip", a->ip, ip_len);
    if (io_active(io) && all_zero(a->ip, ip_len))
        io_fail(io, SOVA_ERR_BAD_VALUE, "ip", at);
    wire_io_u16_in(io, "port", &a->port, 1, UINT16_MAX);
}

void wire_io_addr(struct wire_io *io, const char *field, struct wire_addr *a)
{
    wire_io_enter(io, field, WIRE_ERR_NO_INDEX);
    addr_fields(io, a);
    wire_io_leave(io);
}

/* ---- the cursor: arrays ------------------------------------------------------ */

static void array_free(struct wire_io *io, void **items, size_t *count,
                       const struct wire_array_spec *spec)
{
    if (*items) {
        for (size_t i = 0; i < *count; i++)
            spec->item(io, (char *)*items + i * spec->item_size);
        free(*items);
    }
    *items = NULL;
    *count = 0;
}

void wire_io_array(struct wire_io *io, const char *field, void **items, size_t *count,
                   const struct wire_array_spec *spec)
{
    if (io->rc)
        return;
    if (io->mode == WIRE_IO_FREE) {
        array_free(io, items, count, spec);
        return;
    }
    size_t at = wire_io_offset(io);
    uint64_t n = *count;
    size_t min_wire = spec->min_wire_size ? spec->min_wire_size : 1;
    uint64_t limit =
        spec->limit < uint_max(spec->count_size) ? spec->limit : uint_max(spec->count_size);
    if (io->mode == WIRE_IO_DECODE)
        io_uint(io, field, &n, spec->count_size, 0, UINT64_MAX);
    if (io->rc)
        return;
    if (n > limit)
        io_fail(io, SOVA_ERR_TOO_LARGE, field, at);
    else if (n < spec->min_count)
        io_fail(io, SOVA_ERR_BAD_VALUE, field, at);
    else if (io->mode == WIRE_IO_DECODE && n > (io->end - io->pos) / min_wire)
        io_fail(io, SOVA_ERR_TRUNCATED, field, at); /* before allocating anything */
    else if (io->mode == WIRE_IO_ENCODE && n > 0 && !*items)
        io_fail(io, SOVA_ERR_INVALID, field, at);
    if (io->rc)
        return;
    if (io->mode == WIRE_IO_ENCODE) {
        io_uint(io, field, &n, spec->count_size, 0, UINT64_MAX);
    } else if (n > 0) {
        *items = calloc((size_t)n, spec->item_size);
        if (!*items) {
            io_fail(io, SOVA_ERR_NOMEM, field, at);
            return;
        }
        *count = (size_t)n;
    }
    for (size_t i = 0; i < n && !io->rc; i++) {
        wire_io_enter(io, field, (uint32_t)i);
        spec->item(io, (char *)*items + i * spec->item_size);
        wire_io_leave(io);
    }
}

void wire_io_addr_list(struct wire_io *io, const char *field, void **addrs, size_t *count)
{
    const struct wire_array_spec spec = {
        .count_size = 1,
        .limit = wire_max_addrs(io->lim),
        .item_size = sizeof(struct wire_addr),
        .min_wire_size = WIRE_ADDR_MIN_SIZE,
        .item = addr_fields,
    };
    wire_io_array(io, field, addrs, count, &spec);
}

/* ---- the cursor: extension area --------------------------------------------- */

static void ext_encode(struct wire_io *io, const struct wire_ext *known, size_t n_known)
{
    uint32_t index = 0;
    for (size_t i = 0; i < n_known && !io->rc; i++) {
        if (!*known[i].present)
            continue;
        wire_io_enter(io, "ext", index++);
        uint16_t tag = known[i].tag, placeholder = 0;
        wire_io_u16(io, "tag", &tag);
        size_t length_at = io->out->len;
        wire_io_u16(io, "length", &placeholder);
        known[i].value(io, known[i].ctx);
        size_t value_len = io->out->len - length_at - 2;
        if (!io->rc && value_len > UINT16_MAX)
            io_fail(io, SOVA_ERR_TOO_LARGE, "length", length_at - io->base);
        if (!io->rc)
            wire_put_be(io->out->data + length_at, value_len, 2);
        wire_io_leave(io);
    }
}

/* A known TLV: its handler sees only its len value bytes. */
static void ext_decode_known(struct wire_io *io, const struct wire_ext *e, size_t len,
                             size_t tag_at)
{
    if (*e->present) {
        io_fail(io, SOVA_ERR_BAD_VALUE, "tag", tag_at); /* a repeated known tag */
        return;
    }
    *e->present = true;
    size_t outer_end = io->end;
    io->end = io->pos + len;
    e->value(io, e->ctx);
    if (!io->rc && io->pos != io->end)
        io_fail(io, SOVA_ERR_TRAILING, "value", io->pos);
    io->end = outer_end;
}

static void ext_decode(struct wire_io *io, const struct wire_ext *known, size_t n_known)
{
    for (uint32_t index = 0; !io->rc && io->pos < io->end; index++) {
        wire_io_enter(io, "ext", index);
        size_t tag_at = io->pos;
        uint16_t tag = 0, len = 0;
        wire_io_u16(io, "tag", &tag);
        wire_io_u16(io, "length", &len);
        if (!io->rc && len > io->end - io->pos)
            io_fail(io, SOVA_ERR_TRUNCATED, "value", io->pos);
        const struct wire_ext *e = NULL;
        for (size_t i = 0; i < n_known && !e; i++)
            if (known[i].tag == tag)
                e = &known[i];
        if (!io->rc && e)
            ext_decode_known(io, e, len, tag_at);
        else if (!io->rc)
            io->pos += len; /* unknown: skip, as DESIGN.md promises */
        wire_io_leave(io);
    }
}

void wire_io_ext(struct wire_io *io, const struct wire_ext *known, size_t n_known)
{
    io->ext_done = true;
    if (io->rc)
        return;
    if (io->mode == WIRE_IO_ENCODE) {
        ext_encode(io, known, n_known);
    } else if (io->mode == WIRE_IO_DECODE) {
        ext_decode(io, known, n_known);
    } else {
        for (size_t i = 0; i < n_known; i++)
            known[i].value(io, known[i].ctx);
    }
}
