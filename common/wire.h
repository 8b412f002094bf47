/* wire.h - framing, primitive encodings and the bounded cursor of the Sova
 * wire protocol. docs/PROTOCOL.md is the byte-level reference; msg.h builds
 * the messages on top of this.
 *
 * Three layers, bottom up:
 *   - struct wire_buf: a growable byte buffer, owned by the caller;
 *   - frames: u32 length | u8 type | payload (big-endian, length counts
 *     type + payload), checked against a maximum frame size the caller
 *     passes in: there is no global limit;
 *   - struct wire_io: one cursor that decodes (reads a borrowed buffer),
 *     encodes (appends to a wire_buf) or frees (releases what a decode
 *     allocated). Each message schema is written once against it, so the
 *     encoder, the decoder and msg_clear() cannot disagree about a field.
 *
 * wire.c implements the first two and the value helpers, wire_io.c the
 * cursor. Nothing here blocks, and nothing keeps global state. Every length read
 * from the wire is checked against the bytes that remain before it is used.
 */
#ifndef SOVA_WIRE_H
#define SOVA_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---- sizes fixed by the protocol ---------------------------------------- */
#define WIRE_LENGTH_SIZE    4  /* the u32 length that starts every frame */
#define WIRE_FRAME_HDR_SIZE 5  /* u32 length + u8 type: the smallest frame */
#define WIRE_ID_LEN         32 /* node ID: SHA-256 of the SPKI */
#define WIRE_HASH_LEN       32 /* content and chunk hash: SHA-256 */
#define WIRE_TOKEN_LEN      16 /* random token of CONNECT and RELAY_OPEN */
#define WIRE_ADDR_IPV4      4  /* address family byte values */
#define WIRE_ADDR_IPV6      6
#define WIRE_MAX_ADDRS      16 /* an address list never holds more */
#define WIRE_ADDR_MIN_SIZE  7  /* family + IPv4 + port */
#define WIRE_EXT_HDR_SIZE   4  /* u16 tag + u16 length of an extension TLV */

/* ---- limits ---------------------------------------------------------------
 * Defaults of struct wire_limits; docs/PROTOCOL.md lists each one. A decoder
 * never accepts, and an encoder never produces, more than these. */
#define WIRE_MAX_FRAME_DEFAULT          (1024 * 1024) /* whole frame, length field included */
#define WIRE_MAX_AGENT_LEN_DEFAULT      64            /* HELLO agent string, bytes */
#define WIRE_MAX_ERROR_TEXT_DEFAULT     256           /* ERROR text, bytes */
#define WIRE_MAX_NAME_LEN_DEFAULT       255           /* file name, bytes of UTF-8 */
#define WIRE_MAX_KEYWORDS_DEFAULT       8             /* keywords per SEARCH/FWD_SEARCH */
#define WIRE_MAX_KEYWORD_LEN_DEFAULT    64            /* bytes per keyword */
#define WIRE_MAX_ADDRS_DEFAULT          WIRE_MAX_ADDRS
#define WIRE_MAX_SN_ENTRIES_DEFAULT     256    /* SN_LIST entries */
#define WIRE_MAX_PUBLISH_DEFAULT        1024   /* PUBLISH records per frame */
#define WIRE_MAX_HITS_DEFAULT           256    /* hits per SEARCH_RESULT/FWD_HITS */
#define WIRE_MAX_SOURCES_DEFAULT        16     /* sources per hit */
#define WIRE_MAX_GOSSIP_UPDATES_DEFAULT 32     /* membership updates per GOSSIP */
#define WIRE_MAX_BLOOM_BYTES_DEFAULT    65536  /* SUMMARY filter bytes */
#define WIRE_MAX_RELAY_DATA_DEFAULT     32768  /* RELAY_DATA payload bytes */
#define WIRE_MAX_DATA_DEFAULT           262144 /* DATA bytes per frame */
#define WIRE_MAX_MANIFEST_DEFAULT       1024   /* chunk hashes per MANIFEST */

struct wire_limits {
    size_t max_frame;           /* bytes of a whole frame, u32 length included */
    size_t max_agent_len;       /* HELLO.agent */
    size_t max_error_text;      /* ERROR.text */
    size_t max_name_len;        /* PUBLISH and hit file names */
    size_t max_keywords;        /* SEARCH/FWD_SEARCH keyword count */
    size_t max_keyword_len;     /* bytes per keyword */
    size_t max_addrs;           /* entries per address list (<= WIRE_MAX_ADDRS) */
    size_t max_sn_entries;      /* SN_LIST entries */
    size_t max_publish_records; /* PUBLISH records */
    size_t max_hits;            /* hits per SEARCH_RESULT/FWD_HITS */
    size_t max_sources;         /* sources per hit */
    size_t max_gossip_updates;  /* GOSSIP membership updates */
    size_t max_bloom_bytes;     /* SUMMARY filter bytes */
    size_t max_relay_data;      /* RELAY_DATA bytes */
    size_t max_data;            /* DATA bytes */
    size_t max_manifest_hashes; /* MANIFEST chunk hashes */
};

/* The documented defaults above. */
struct wire_limits wire_limits_default(void);
/* lim->max_addrs, but never more than the protocol's WIRE_MAX_ADDRS. */
size_t wire_max_addrs(const struct wire_limits *lim);

/* ---- errors ---------------------------------------------------------------
 * A decoder or encoder that fails says which field was bad. The path is
 * kept as static names and array indices, so filling it never allocates;
 * wire_err_field() renders it as "search_result.hits[3].sources[0].port". */
#define WIRE_ERR_MAX_DEPTH 4
#define WIRE_ERR_NO_INDEX  UINT32_MAX

struct wire_err_step {
    const char *name; /* static: "hits", "ext", "observed" */
    uint32_t index;   /* array index, or WIRE_ERR_NO_INDEX */
};

struct wire_err {
    int code;          /* enum sova_err; 0 when nothing failed */
    const char *scope; /* static message name ("search"); NULL for framing errors */
    unsigned depth;    /* steps in path; may exceed WIRE_ERR_MAX_DEPTH (not all kept) */
    struct wire_err_step path[WIRE_ERR_MAX_DEPTH];
    const char *field; /* static name of the bad field below path, e.g. "port" or
                          "frame.length"; NULL when the bad thing is the array
                          element the last step names ("keywords[2]") */
    size_t offset;     /* where the bad field starts: payload offset (framing: frame offset) */
};

/* Render the dotted path of err->field into buf: "search.keywords[2]".
 * Always NUL-terminates (truncating) when cap > 0; returns buf. */
const char *wire_err_field(const struct wire_err *err, char *buf, size_t cap);
/* One line for logs and ERROR texts: "search.keywords[2]: value exceeds
 * limit (offset 14)". Always NUL-terminates when cap > 0; returns buf. */
const char *wire_err_format(const struct wire_err *err, char *buf, size_t cap);

/* ---- growable byte buffer -------------------------------------------------- */
struct wire_buf {
    uint8_t *data; /* owned; NULL until something is reserved */
    size_t len;
    size_t cap;
};

void wire_buf_init(struct wire_buf *b);
/* Make room for extra more bytes; 0 or SOVA_ERR_NOMEM (b unchanged). */
int wire_buf_reserve(struct wire_buf *b, size_t extra);
/* Append n bytes; 0 or SOVA_ERR_NOMEM (b unchanged). */
int wire_buf_append(struct wire_buf *b, const void *data, size_t n);
/* Drop everything after the first len bytes (len <= b->len); keeps memory. */
void wire_buf_truncate(struct wire_buf *b, size_t len);
/* Release the memory; b is empty and reusable afterwards. NULL is fine. */
void wire_buf_free(struct wire_buf *b);

/* ---- frames ---------------------------------------------------------------- */
struct wire_frame_hdr {
    uint8_t type;
    size_t payload_len; /* bytes after the type byte */
    size_t frame_len;   /* bytes of the whole frame: WIRE_FRAME_HDR_SIZE + payload_len */
};

/* Look at the start of buf[0..len) without copying (e.g. evbuffer_pullup'd
 * bytes). Returns:
 *   0   a whole frame is present; *out describes it, the payload starts at
 *       buf + WIRE_FRAME_HDR_SIZE;
 *   >0  the number of bytes the buffer must hold before calling again
 *       (at least WIRE_FRAME_HDR_SIZE; the whole frame once the length is
 *       known);
 *   <0  SOVA_ERR_BAD_LENGTH (length 0) or SOVA_ERR_TOO_LARGE (frame longer
 *       than max_frame), reported as soon as the length field is complete;
 *       err (may be NULL) names "frame.length". The link must be closed. */
int wire_frame_peek(const uint8_t *buf, size_t len, size_t max_frame, struct wire_frame_hdr *out,
                    struct wire_err *err);
/* Append a frame header with a placeholder length; *frame_start receives
 * where the frame starts. 0 or SOVA_ERR_NOMEM. */
int wire_frame_begin(struct wire_buf *b, uint8_t type, size_t *frame_start);
/* Fill in the length of the frame begun at frame_start, which ends at b->len.
 * SOVA_ERR_TOO_LARGE ("frame.length") if it exceeds max_frame. */
int wire_frame_finish(struct wire_buf *b, size_t frame_start, size_t max_frame,
                      struct wire_err *err);

/* ---- primitive values ------------------------------------------------------
 * Unsigned big-endian integers of size 1..8 bytes. */
uint64_t wire_get_be(const uint8_t *p, unsigned size);
void wire_put_be(uint8_t *p, uint64_t v, unsigned size);

/* A str is u16 length + UTF-8 (no NUL); bytes is u32 length + bytes. Both
 * borrow: after a decode, ptr points into the decoded payload. */
struct wire_str {
    const char *ptr; /* not NUL-terminated */
    size_t len;
};

struct wire_bytes {
    const uint8_t *ptr;
    size_t len;
};

/* u8 family (4 or 6) + 4 or 16 address bytes + u16 port. */
struct wire_addr {
    uint8_t family; /* WIRE_ADDR_IPV4 or WIRE_ADDR_IPV6 */
    uint8_t ip[16]; /* network order; IPv4 uses the first 4 bytes */
    uint16_t port;  /* host order; never 0 on the wire */
};

/* A wire_str borrowing a C string (NULL gives the empty string). */
struct wire_str wire_str_from(const char *cstr);
bool wire_str_eq(struct wire_str s, const char *cstr);
/* Malloc'd NUL-terminated copy, or NULL on allocation failure. */
char *wire_str_dup(struct wire_str s);
/* Valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF)
 * and no NUL byte. */
bool wire_utf8_valid(const char *p, size_t len);

/* sockaddr (AF_INET, AF_INET6; v4-mapped IPv6 becomes IPv4) to wire_addr.
 * 0 or SOVA_ERR_INVALID. */
int wire_addr_from_sockaddr(struct wire_addr *out, const struct sockaddr *sa, socklen_t len);
/* wire_addr to sockaddr; returns the sockaddr length, 0 for a bad family. */
socklen_t wire_addr_to_sockaddr(const struct wire_addr *a, struct sockaddr_storage *out);
/* "192.0.2.1:7070" or "[2001:db8::1]:7070"; returns buf. cap >= 48 fits all. */
const char *wire_addr_format(const struct wire_addr *a, char *buf, size_t cap);
/* Same family and IP (the bytes the family uses); with_port: and port. */
bool wire_addr_same_ip(const struct wire_addr *a, const struct wire_addr *b);
bool wire_addr_equal(const struct wire_addr *a, const struct wire_addr *b);
/* An address only its own network reaches: IPv4 10/8, 172.16/12, 192.168/16,
 * 100.64/10 (carrier-grade NAT), 169.254/16, 127/8, 0/8; IPv6 fc00::/7,
 * fe80::/10, ::1, ::. */
bool wire_addr_is_local(const struct wire_addr *a);

/* ---- the bounded cursor -------------------------------------------------- */
enum wire_io_mode {
    WIRE_IO_DECODE, /* read fields from a borrowed payload into a struct */
    WIRE_IO_ENCODE, /* append a struct's fields to a wire_buf; reads the struct only */
    WIRE_IO_FREE,   /* free the arrays a decode allocated */
};

/* Fields are public so a cursor lives on the stack; use the functions. The
 * first error sticks: every later call is a no-op, so a schema is a straight
 * list of calls and the caller checks io.rc once at the end. */
struct wire_io {
    enum wire_io_mode mode;
    int rc; /* 0 or the first error */
    const struct wire_limits *lim;
    struct wire_err *err; /* may be NULL */
    const char *scope;    /* message name for errors */
    /* decode */
    const uint8_t *in;
    size_t end; /* decoding stops here (a TLV value narrows it) */
    size_t pos;
    /* encode */
    struct wire_buf *out;
    size_t base;        /* payload starts at out->data + base */
    size_t max_payload; /* the frame limit, as payload bytes */
    /* schema state */
    bool ext_done; /* the extension area was handled */
    unsigned depth;
    struct wire_err_step path[WIRE_ERR_MAX_DEPTH];
};

/* Decode payload[0..len). lim, scope (static) required; err may be NULL. */
void wire_io_init_decode(struct wire_io *io, const uint8_t *payload, size_t len,
                         const struct wire_limits *lim, const char *scope, struct wire_err *err);
/* Encode at the end of out; at most max_payload bytes may be appended. */
void wire_io_init_encode(struct wire_io *io, struct wire_buf *out, size_t max_payload,
                         const struct wire_limits *lim, const char *scope, struct wire_err *err);
/* Walk a decoded struct and free its arrays. */
void wire_io_init_free(struct wire_io *io, const struct wire_limits *lim);
/* Bytes consumed (decode) or written (encode) so far. */
size_t wire_io_offset(const struct wire_io *io);

/* Integers, big-endian. The _in variants reject values outside [lo, hi]
 * with SOVA_ERR_BAD_VALUE, in both directions. */
void wire_io_u8(struct wire_io *io, const char *field, uint8_t *v);
void wire_io_u16(struct wire_io *io, const char *field, uint16_t *v);
void wire_io_u32(struct wire_io *io, const char *field, uint32_t *v);
void wire_io_u64(struct wire_io *io, const char *field, uint64_t *v);
void wire_io_u8_in(struct wire_io *io, const char *field, uint8_t *v, uint8_t lo, uint8_t hi);
void wire_io_u16_in(struct wire_io *io, const char *field, uint16_t *v, uint16_t lo, uint16_t hi);
void wire_io_u32_in(struct wire_io *io, const char *field, uint32_t *v, uint32_t lo, uint32_t hi);
/* n raw bytes copied to/from p: node IDs, hashes, tokens. */
void wire_io_raw(struct wire_io *io, const char *field, uint8_t *p, size_t n);

enum wire_str_flags {
    WIRE_STR_NONEMPTY = 1 << 0, /* length 0 is SOVA_ERR_BAD_VALUE */
    WIRE_STR_FILENAME = 1 << 1, /* one path component: no '/' or '\\', not "." or ".." */
};
/* u16 length + UTF-8; longer than max_len is SOVA_ERR_TOO_LARGE, bad UTF-8
 * or a NUL is SOVA_ERR_BAD_VALUE. */
void wire_io_str(struct wire_io *io, const char *field, struct wire_str *s, size_t max_len,
                 unsigned flags);
/* u32 length + bytes; longer than max_len is SOVA_ERR_TOO_LARGE. */
void wire_io_bytes(struct wire_io *io, const char *field, struct wire_bytes *b, size_t max_len);
/* One address: family other than 4/6, the unspecified address or port 0
 * are SOVA_ERR_BAD_VALUE. */
void wire_io_addr(struct wire_io *io, const char *field, struct wire_addr *a);

/* Arrays: a count (1, 2 or 4 bytes) then that many items. Decoding checks the
 * count against the limit (SOVA_ERR_TOO_LARGE) and against the bytes that
 * remain divided by the smallest item encoding (SOVA_ERR_TRUNCATED) before it
 * allocates; items are calloc'd, so a failed decode leaves a freeable struct. */
typedef void wire_io_item_fn(struct wire_io *io, void *item);

struct wire_array_spec {
    unsigned count_size;  /* bytes of the count: 1, 2 or 4 */
    size_t limit;         /* most items allowed */
    size_t min_count;     /* fewer is SOVA_ERR_BAD_VALUE */
    size_t item_size;     /* sizeof one item in memory */
    size_t min_wire_size; /* fewest bytes one item takes on the wire (>= 1) */
    wire_io_item_fn *item;
};

void wire_io_array(struct wire_io *io, const char *field, void **items, size_t *count,
                   const struct wire_array_spec *spec);
/* Address list: u8 count (<= lim->max_addrs, never more than 16) + addresses. */
void wire_io_addr_list(struct wire_io *io, const char *field, void **addrs, size_t *count);

/* The typed front ends: items is an lvalue of any pointer-to-item type. The
 * pointer goes through a void * temporary (no type punning) and is stored
 * back only when the call may change it, so encoding never writes to the
 * struct. */
#define WIRE_IO_ARRAY(io, field, items, count, spec)                                               \
    do {                                                                                           \
        void *wire_io_items_ = (items);                                                            \
        wire_io_array((io), (field), &wire_io_items_, &(count), (spec));                           \
        if ((io)->mode != WIRE_IO_ENCODE)                                                          \
            (items) = wire_io_items_;                                                              \
    } while (0)
#define WIRE_IO_ADDRS(io, field, addrs, count)                                                     \
    do {                                                                                           \
        void *wire_io_items_ = (addrs);                                                            \
        wire_io_addr_list((io), (field), &wire_io_items_, &(count));                               \
        if ((io)->mode != WIRE_IO_ENCODE)                                                          \
            (addrs) = wire_io_items_;                                                              \
    } while (0)

/* A cross-field rule the schema checks (e.g. min <= max): fails with code
 * at the current offset, naming field, unless ok. Skipped when freeing. */
void wire_io_check(struct wire_io *io, bool ok, int code, const char *field);

/* Extension area: TLVs u16 tag | u16 length | value up to the end of the
 * payload. Unknown tags are skipped; a known tag's value is decoded by its
 * handler inside exactly its length (leftover bytes: SOVA_ERR_TRAILING; a
 * repeated known tag: SOVA_ERR_BAD_VALUE). Encoding writes the known tags
 * whose present flag is set, in table order. Must be the last call of a
 * schema. */
struct wire_ext {
    uint16_t tag;
    bool *present;
    wire_io_item_fn *value; /* called with ctx */
    void *ctx;
};

void wire_io_ext(struct wire_io *io, const struct wire_ext *known, size_t n_known);

/* Push/pop a path step for errors inside a nested field ("observed"). */
void wire_io_enter(struct wire_io *io, const char *name, uint32_t index);
void wire_io_leave(struct wire_io *io);

#endif
