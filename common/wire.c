/* wire.c - frames, primitive encodings and the bounded cursor (wire.h).
 *
 * The cursor is the only code in Sova that touches raw wire bytes. Every
 * read goes through io_take(), which refuses to run past io->end; every
 * write goes through io_put(), which refuses to grow the payload past the
 * frame limit. Schemas (msg_*.c) never index a buffer themselves.
 */
#include "wire.h"
#include "err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIRE_BUF_MIN_CAP 256

struct wire_limits wire_limits_default(void)
{
    struct wire_limits lim = {
        .max_frame = WIRE_MAX_FRAME_DEFAULT,
        .max_agent_len = WIRE_MAX_AGENT_LEN_DEFAULT,
        .max_error_text = WIRE_MAX_ERROR_TEXT_DEFAULT,
        .max_name_len = WIRE_MAX_NAME_LEN_DEFAULT,
        .max_keywords = WIRE_MAX_KEYWORDS_DEFAULT,
        .max_keyword_len = WIRE_MAX_KEYWORD_LEN_DEFAULT,
        .max_addrs = WIRE_MAX_ADDRS_DEFAULT,
        .max_sn_entries = WIRE_MAX_SN_ENTRIES_DEFAULT,
        .max_publish_records = WIRE_MAX_PUBLISH_DEFAULT,
        .max_hits = WIRE_MAX_HITS_DEFAULT,
        .max_sources = WIRE_MAX_SOURCES_DEFAULT,
        .max_gossip_updates = WIRE_MAX_GOSSIP_UPDATES_DEFAULT,
        .max_bloom_bytes = WIRE_MAX_BLOOM_BYTES_DEFAULT,
        .max_relay_data = WIRE_MAX_RELAY_DATA_DEFAULT,
        .max_data = WIRE_MAX_DATA_DEFAULT,
        .max_manifest_hashes = WIRE_MAX_MANIFEST_DEFAULT,
    };
    return lim;
}

/* ---- big-endian integers ------------------------------------------------ */

static uint64_t load_be(const uint8_t *p, unsigned size)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v = (v << 8) | p[i];
    return v;
}

static void store_be(uint8_t *p, uint64_t v, unsigned size)
{
    for (unsigned i = size; i > 0; i--) {
        p[i - 1] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t uint_max(unsigned size)
{
    return size >= 8 ? UINT64_MAX : (UINT64_C(1) << (8 * size)) - 1;
}

/* ---- errors ----------------------------------------------------------------- */

/* Append to buf like snprintf, keeping *used <= cap - 1 so that later calls
 * truncate instead of overflowing. */
__attribute__((format(printf, 4, 5))) static void append(char *buf, size_t cap, size_t *used,
                                                         const char *fmt, ...)
{
    if (*used + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *used, cap - *used, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    *used = (size_t)n >= cap - *used ? cap - 1 : *used + (size_t)n;
}

static size_t err_field_into(const struct wire_err *err, char *buf, size_t cap)
{
    size_t used = 0;
    const char *sep = "";
    buf[0] = '\0';
    if (err->scope) {
        append(buf, cap, &used, "%s", err->scope);
        sep = ".";
    }
    unsigned kept = err->depth < WIRE_ERR_MAX_DEPTH ? err->depth : WIRE_ERR_MAX_DEPTH;
    for (unsigned i = 0; i < kept; i++) {
        append(buf, cap, &used, "%s%s", sep, err->path[i].name);
        if (err->path[i].index != WIRE_ERR_NO_INDEX)
            append(buf, cap, &used, "[%u]", (unsigned)err->path[i].index);
        sep = ".";
    }
    if (err->depth > kept)
        append(buf, cap, &used, "%s*", sep); /* steps too deep to keep */
    if (err->field)
        append(buf, cap, &used, "%s%s", sep, err->field);
    return used;
}

const char *wire_err_field(const struct wire_err *err, char *buf, size_t cap)
{
    if (cap > 0)
        err_field_into(err, buf, cap);
    return buf;
}

const char *wire_err_format(const struct wire_err *err, char *buf, size_t cap)
{
    if (cap == 0)
        return buf;
    size_t used = err_field_into(err, buf, cap);
    append(buf, cap, &used, "%s%s (offset %zu)", used ? ": " : "", sova_err_str(err->code),
           err->offset);
    return buf;
}

/* ---- buffer ------------------------------------------------------------------ */

void wire_buf_init(struct wire_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int wire_buf_reserve(struct wire_buf *b, size_t extra)
{
    if (extra <= b->cap - b->len)
        return 0;
    if (extra > SIZE_MAX - b->len)
        return SOVA_ERR_NOMEM;
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : WIRE_BUF_MIN_CAP;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return SOVA_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int wire_buf_append(struct wire_buf *b, const void *data, size_t n)
{
    if (n == 0)
        return 0;
    int rc = wire_buf_reserve(b, n);
    if (rc)
        return rc;
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return 0;
}

void wire_buf_truncate(struct wire_buf *b, size_t len)
{
    if (len < b->len)
        b->len = len;
}

void wire_buf_free(struct wire_buf *b)
{
    if (!b)
        return;
    free(b->data);
    wire_buf_init(b);
}

/* ---- frames ------------------------------------------------------------------ */

static int frame_fail(struct wire_err *err, int code)
{
    if (err) {
        memset(err, 0, sizeof(*err));
        err->code = code;
        err->field = "frame.length";
    }
    return code;
}

int wire_frame_peek(const uint8_t *buf, size_t len, size_t max_frame, struct wire_frame_hdr *out,
                    struct wire_err *err)
{
    if (len < WIRE_LENGTH_SIZE)
        return WIRE_FRAME_HDR_SIZE;
    uint64_t length = load_be(buf, WIRE_LENGTH_SIZE);
    if (length == 0)
        return frame_fail(err, SOVA_ERR_BAD_LENGTH);
    /* max_frame bounds the whole frame; the int return bounds what we can
     * ask the caller to buffer. */
    if (max_frame < WIRE_FRAME_HDR_SIZE || length > max_frame - WIRE_LENGTH_SIZE ||
        length > (uint64_t)INT32_MAX - WIRE_LENGTH_SIZE)
        return frame_fail(err, SOVA_ERR_TOO_LARGE);
    size_t frame_len = WIRE_LENGTH_SIZE + (size_t)length;
    if (len < frame_len)
        return (int)frame_len;
    out->type = buf[WIRE_LENGTH_SIZE];
    out->payload_len = frame_len - WIRE_FRAME_HDR_SIZE;
    out->frame_len = frame_len;
    return 0;
}

int wire_frame_begin(struct wire_buf *b, uint8_t type, size_t *frame_start)
{
    uint8_t hdr[WIRE_FRAME_HDR_SIZE] = {0, 0, 0, 0, type};
    *frame_start = b->len;
    return wire_buf_append(b, hdr, sizeof(hdr));
}

int wire_frame_finish(struct wire_buf *b, size_t frame_start, size_t max_frame,
                      struct wire_err *err)
{
    size_t frame_len = b->len - frame_start;
    if (frame_len < WIRE_FRAME_HDR_SIZE)
        return frame_fail(err, SOVA_ERR_INTERNAL);
    if (frame_len > max_frame || frame_len - WIRE_LENGTH_SIZE > UINT32_MAX)
        return frame_fail(err, SOVA_ERR_TOO_LARGE);
    store_be(b->data + frame_start, frame_len - WIRE_LENGTH_SIZE, WIRE_LENGTH_SIZE);
    return 0;
}

/* ---- strings ----------------------------------------------------------------- */

struct wire_str wire_str_from(const char *cstr)
{
    struct wire_str s = {cstr ? cstr : "", cstr ? strlen(cstr) : 0};
    return s;
}

bool wire_str_eq(struct wire_str s, const char *cstr)
{
    return strlen(cstr) == s.len && (s.len == 0 || memcmp(s.ptr, cstr, s.len) == 0);
}

char *wire_str_dup(struct wire_str s)
{
    char *p = malloc(s.len + 1);
    if (!p)
        return NULL;
    if (s.len)
        memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    return p;
}

/* Decode one multi-byte sequence starting with lead byte c at s[0]; returns
 * its length, or 0 if it is not shortest-form UTF-8 of a scalar value. */
static size_t utf8_sequence(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    size_t extra;
    uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) {
        extra = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        extra = 2, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        extra = 3, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (avail <= extra)
        return 0;
    for (size_t k = 1; k <= extra; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return extra + 1;
}

bool wire_utf8_valid(const char *p, size_t len)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    while (i < len) {
        if (s[i] == 0)
            return false;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_sequence(s + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

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

/* ---- addresses --------------------------------------------------------------- */

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int wire_addr_from_sockaddr(struct wire_addr *out, const struct sockaddr *sa, socklen_t len)
{
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof(sin));
        out->family = WIRE_ADDR_IPV4;
        memcpy(out->ip, &sin.sin_addr, 4);
        out->port = ntohs(sin.sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, sa, sizeof(sin6));
        out->port = ntohs(sin6.sin6_port);
        /* A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d; the wire
         * carries them as what they are. */
        if (memcmp(sin6.sin6_addr.s6_addr, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0) {
            out->family = WIRE_ADDR_IPV4;
            memcpy(out->ip, sin6.sin6_addr.s6_addr + 12, 4);
        } else {
            out->family = WIRE_ADDR_IPV6;
            memcpy(out->ip, sin6.sin6_addr.s6_addr, 16);
        }
        return 0;
    }
    return SOVA_ERR_INVALID;
}

socklen_t wire_addr_to_sockaddr(const struct wire_addr *a, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    if (a->family == WIRE_ADDR_IPV4) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(a->port)};
        memcpy(&sin.sin_addr, a->ip, 4);
        memcpy(out, &sin, sizeof(sin));
        return (socklen_t)sizeof(sin);
    }
    if (a->family == WIRE_ADDR_IPV6) {
        struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(a->port)};
        memcpy(sin6.sin6_addr.s6_addr, a->ip, 16);
        memcpy(out, &sin6, sizeof(sin6));
        return (socklen_t)sizeof(sin6);
    }
    return 0;
}

const char *wire_addr_format(const struct wire_addr *a, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    bool v6 = a->family == WIRE_ADDR_IPV6;
    if (cap == 0)
        return buf;
    if ((!v6 && a->family != WIRE_ADDR_IPV4) ||
        !inet_ntop(v6 ? AF_INET6 : AF_INET, a->ip, ip, sizeof(ip))) {
        snprintf(buf, cap, "(bad address family %u)", (unsigned)a->family);
        return buf;
    }
    snprintf(buf, cap, v6 ? "[%s]:%u" : "%s:%u", ip, (unsigned)a->port);
    return buf;
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
    io->in = payload;
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
        *v = load_be(p, size);
    }
    if (*v < lo || *v > hi || *v > uint_max(size)) {
        io_fail(io, SOVA_ERR_BAD_VALUE, field, at);
        return;
    }
    if (io->mode == WIRE_IO_ENCODE) {
        uint8_t b[8];
        store_be(b, *v, size);
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
    uint64_t limit = spec->limit < uint_max(spec->count_size) ? spec->limit
                                                               : uint_max(spec->count_size);
    if (io->mode == WIRE_IO_DECODE)
        io_uint(io, field, &n, spec->count_size, 0, UINT64_MAX);
    if (io->rc)
        return;
    if (n > limit)
        io_fail(io, SOVA_ERR_TOO_LARGE, field, at);
    else if (n < spec->min_count)
        io_fail(io, SOVA_ERR_BAD_VALUE, field, at);
    else if (io->mode == WIRE_IO_DECODE && n > (io->end - io->pos) / spec->min_wire_size)
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
        .limit = io->lim->max_addrs < WIRE_MAX_ADDRS ? io->lim->max_addrs : WIRE_MAX_ADDRS,
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
            store_be(io->out->data + length_at, value_len, 2);
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
