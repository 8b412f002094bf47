/* wire.c - limits, errors, the byte buffer, frames, strings and addresses
 * of wire.h. The bounded cursor (struct wire_io) is in wire_io.c. */
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

size_t wire_max_addrs(const struct wire_limits *lim)
{
    return lim->max_addrs < WIRE_MAX_ADDRS ? lim->max_addrs : WIRE_MAX_ADDRS;
}

/* ---- big-endian integers ------------------------------------------------ */

uint64_t wire_get_be(const uint8_t *p, unsigned size)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v = (v << 8) | p[i];
    return v;
}

void wire_put_be(uint8_t *p, uint64_t v, unsigned size)
{
    for (unsigned i = size; i > 0; i--) {
        p[i - 1] = (uint8_t)v;
        v >>= 8;
    }
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
    unsigned i;
    for (i = 0; i < err->depth && i < WIRE_ERR_MAX_DEPTH; i++) {
        append(buf, cap, &used, "%s%s", sep, err->path[i].name);
        if (err->path[i].index != WIRE_ERR_NO_INDEX)
            append(buf, cap, &used, "[%u]", (unsigned)err->path[i].index);
        sep = ".";
    }
    if (err->depth > i)
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
    uint64_t length = wire_get_be(buf, WIRE_LENGTH_SIZE);
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
    wire_put_be(b->data + frame_start, frame_len - WIRE_LENGTH_SIZE, WIRE_LENGTH_SIZE);
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

bool wire_addr_same_ip(const struct wire_addr *a, const struct wire_addr *b)
{
    return a->family == b->family &&
           memcmp(a->ip, b->ip, a->family == WIRE_ADDR_IPV4 ? 4 : 16) == 0;
}

bool wire_addr_equal(const struct wire_addr *a, const struct wire_addr *b)
{
    return wire_addr_same_ip(a, b) && a->port == b->port;
}

bool wire_addr_is_local(const struct wire_addr *a)
{
    const uint8_t *ip = a->ip;
    if (a->family == WIRE_ADDR_IPV4)
        return ip[0] == 10 || ip[0] == 127 || ip[0] == 0 ||
               (ip[0] == 172 && (ip[1] & 0xF0) == 16) || (ip[0] == 192 && ip[1] == 168) ||
               (ip[0] == 169 && ip[1] == 254) || (ip[0] == 100 && (ip[1] & 0xC0) == 64);
    static const uint8_t zero[15];
    return (ip[0] & 0xFE) == 0xFC || (ip[0] == 0xFE && (ip[1] & 0xC0) == 0x80) ||
           (memcmp(ip, zero, 15) == 0 && ip[15] <= 1);
}
