/* test_wire.c - the wire layer: byte buffer, framing, error paths, UTF-8,
 * addresses, and a table of malformed payloads, each with the exact error
 * code, field and offset the decoder must report. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "msg.h"
#include "wire.h"

#define U16(v)     (uint8_t)((v) >> 8), (uint8_t)(v)
#define U32(v)     U16((uint32_t)(v) >> 16), U16((uint32_t)(v)&0xffff)
#define U64(v)     U32((uint64_t)(v) >> 32), U32((uint64_t)(v)&0xffffffff)
#define X4(b)      b, b, b, b
#define X16(b)     X4(b), X4(b), X4(b), X4(b)
#define ID(b)      X16(b), X16(b)
#define V4ADDR     4, 192, 0, 2, 1, U16(7071)
#define BYTES(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})

/* ---- buffer ---------------------------------------------------------------- */

static void test_buf_grows_and_truncates(void)
{
    struct wire_buf b;
    wire_buf_init(&b);
    CU_ASSERT_EQUAL(wire_buf_append(&b, "", 0), 0);
    CU_ASSERT_PTR_NULL(b.data);
    for (int i = 0; i < 1000; i++)
        CU_ASSERT_EQUAL_FATAL(wire_buf_append(&b, "abcdefgh", 8), 0);
    CU_ASSERT_EQUAL(b.len, 8000);
    CU_ASSERT(b.cap >= b.len);
    CU_ASSERT(memcmp(b.data + 7992, "abcdefgh", 8) == 0);
    wire_buf_truncate(&b, 3);
    CU_ASSERT_EQUAL(b.len, 3);
    wire_buf_truncate(&b, 10); /* never grows */
    CU_ASSERT_EQUAL(b.len, 3);
    CU_ASSERT_EQUAL(wire_buf_reserve(&b, SIZE_MAX), SOVA_ERR_NOMEM);
    CU_ASSERT_EQUAL(b.len, 3);
    wire_buf_free(&b);
    CU_ASSERT_PTR_NULL(b.data);
    CU_ASSERT_EQUAL(b.len, 0);
    wire_buf_free(&b);
    wire_buf_free(NULL);
}

/* ---- framing --------------------------------------------------------------- */

static const struct {
    const char *what;
    const uint8_t *bytes;
    size_t len;
    size_t max_frame;
    int want; /* wire_frame_peek's return */
} frame_cases[] = {
    {"truncated header", BYTES(0, 0, 0), WIRE_MAX_FRAME_DEFAULT, WIRE_FRAME_HDR_SIZE},
    {"length without type", BYTES(0, 0, 0, 1), WIRE_MAX_FRAME_DEFAULT, WIRE_FRAME_HDR_SIZE},
    {"length 0", BYTES(0, 0, 0, 0), WIRE_MAX_FRAME_DEFAULT, SOVA_ERR_BAD_LENGTH},
    {"length 0 with more bytes", BYTES(0, 0, 0, 0, 3, 0, 0), WIRE_MAX_FRAME_DEFAULT,
     SOVA_ERR_BAD_LENGTH},
    {"partial payload", BYTES(0, 0, 0, 9, 3, 1, 2), WIRE_MAX_FRAME_DEFAULT, 13},
    {"frame exactly max", BYTES(0, 0x0f, 0xff, 0xfc, 3), WIRE_MAX_FRAME_DEFAULT,
     WIRE_MAX_FRAME_DEFAULT},
    {"frame one past max", BYTES(0, 0x0f, 0xff, 0xfd, 3), WIRE_MAX_FRAME_DEFAULT,
     SOVA_ERR_TOO_LARGE},
    {"length 4 GiB", BYTES(0xff, 0xff, 0xff, 0xff), WIRE_MAX_FRAME_DEFAULT, SOVA_ERR_TOO_LARGE},
    {"max_frame below header size", BYTES(0, 0, 0, 1, 3), 4, SOVA_ERR_TOO_LARGE},
    {"small max_frame", BYTES(0, 0, 0, 60), 63, SOVA_ERR_TOO_LARGE},
};

static void test_frame_peek_table(void)
{
    static const uint8_t nothing[1];
    CU_ASSERT_EQUAL(wire_frame_peek(nothing, 0, WIRE_MAX_FRAME_DEFAULT, NULL, NULL),
                    WIRE_FRAME_HDR_SIZE);
    for (size_t i = 0; i < sizeof(frame_cases) / sizeof(frame_cases[0]); i++) {
        struct wire_frame_hdr hdr;
        struct wire_err err;
        memset(&err, 0, sizeof(err));
        int got = wire_frame_peek(frame_cases[i].bytes, frame_cases[i].len,
                                  frame_cases[i].max_frame, &hdr, &err);
        if (got != frame_cases[i].want)
            fprintf(stderr, "\n%s: got %d, want %d\n", frame_cases[i].what, got,
                    frame_cases[i].want);
        CU_ASSERT_EQUAL(got, frame_cases[i].want);
        if (got < 0) {
            CU_ASSERT_EQUAL(err.code, got);
            CU_ASSERT_STRING_EQUAL(err.field, "frame.length");
        }
    }
}

static void test_frame_peek_whole_frame(void)
{
    static const uint8_t frame[] = {0, 0, 0, 3, 0x42, 'h', 'i', 0xEE /* next frame */};
    struct wire_frame_hdr hdr;
    CU_ASSERT_EQUAL(wire_frame_peek(frame, sizeof(frame), 64, &hdr, NULL), 0);
    CU_ASSERT_EQUAL(hdr.type, 0x42);
    CU_ASSERT_EQUAL(hdr.payload_len, 2);
    CU_ASSERT_EQUAL(hdr.frame_len, 7);
    static const uint8_t empty[] = {0, 0, 0, 1, 0x03};
    CU_ASSERT_EQUAL(wire_frame_peek(empty, sizeof(empty), 64, &hdr, NULL), 0);
    CU_ASSERT_EQUAL(hdr.payload_len, 0);
}

static void test_frame_encode_helpers(void)
{
    struct wire_buf b;
    struct wire_err err;
    size_t start;
    wire_buf_init(&b);
    CU_ASSERT_EQUAL(wire_buf_append(&b, "xx", 2), 0);
    CU_ASSERT_EQUAL(wire_frame_begin(&b, 0x11, &start), 0);
    CU_ASSERT_EQUAL(start, 2);
    CU_ASSERT_EQUAL(wire_buf_append(&b, "abc", 3), 0);
    CU_ASSERT_EQUAL(wire_frame_finish(&b, start, 64, &err), 0);
    static const uint8_t want[] = {'x', 'x', 0, 0, 0, 4, 0x11, 'a', 'b', 'c'};
    CU_ASSERT_EQUAL_FATAL(b.len, sizeof(want));
    CU_ASSERT(memcmp(b.data, want, sizeof(want)) == 0);
    CU_ASSERT_EQUAL(wire_frame_finish(&b, start, 7, &err), SOVA_ERR_TOO_LARGE);
    CU_ASSERT_STRING_EQUAL(err.field, "frame.length");
    wire_buf_free(&b);
}

/* ---- errors, UTF-8, addresses ------------------------------------------------- */

static void test_err_rendering(void)
{
    struct wire_err err = {.code = SOVA_ERR_BAD_VALUE,
                           .scope = "search_result",
                           .depth = 3,
                           .field = "port",
                           .offset = 99};
    err.path[0] = (struct wire_err_step){"hits", 3};
    err.path[1] = (struct wire_err_step){"sources", 0};
    err.path[2] = (struct wire_err_step){"addrs", 1};
    char buf[128], tiny[8];
    CU_ASSERT_STRING_EQUAL(wire_err_field(&err, buf, sizeof(buf)),
                           "search_result.hits[3].sources[0].addrs[1].port");
    CU_ASSERT_STRING_EQUAL(wire_err_format(&err, buf, sizeof(buf)),
                           "search_result.hits[3].sources[0].addrs[1].port: bad field value "
                           "(offset 99)");
    CU_ASSERT_STRING_EQUAL(wire_err_format(&err, tiny, sizeof(tiny)), "search_");
    err.depth = 6; /* deeper than kept: the elided steps show as '*' */
    err.path[3] = (struct wire_err_step){"x", WIRE_ERR_NO_INDEX};
    CU_ASSERT_STRING_EQUAL(wire_err_field(&err, buf, sizeof(buf)),
                           "search_result.hits[3].sources[0].addrs[1].x.*.port");
    struct wire_err frame = {.code = SOVA_ERR_BAD_LENGTH, .field = "frame.length"};
    CU_ASSERT_STRING_EQUAL(wire_err_format(&frame, buf, sizeof(buf)),
                           "frame.length: bad frame length (offset 0)");
}

static const struct {
    const char *bytes;
    bool valid;
} utf8_cases[] = {
    {"", true},
    {"plain ascii", true},
    {"caf\xc3\xa9", true},       /* e-acute */
    {"\xe2\x82\xac", true},      /* euro sign */
    {"\xf0\x9f\x98\x80", true},  /* emoji, 4 bytes */
    {"\xf4\x8f\xbf\xbf", true},  /* U+10FFFF */
    {"\xc0\xaf", false},         /* overlong '/' */
    {"\xe0\x80\xaf", false},     /* overlong, 3 bytes */
    {"\xed\xa0\x80", false},     /* surrogate */
    {"\xf4\x90\x80\x80", false}, /* past U+10FFFF */
    {"\x80", false},             /* lone continuation */
    {"ab\xc3", false},           /* cut sequence */
    {"\xff", false},
};

static void test_utf8_validation(void)
{
    for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++)
        CU_ASSERT_EQUAL(wire_utf8_valid(utf8_cases[i].bytes, strlen(utf8_cases[i].bytes)),
                        utf8_cases[i].valid);
    CU_ASSERT_FALSE(wire_utf8_valid("a\0b", 3)); /* NUL */
}

static void test_addr_conversions(void)
{
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(7070)};
    inet_pton(AF_INET6, "::ffff:192.0.2.1", &sin6.sin6_addr);
    struct wire_addr a;
    char text[64];
    CU_ASSERT_EQUAL(wire_addr_from_sockaddr(&a, (struct sockaddr *)&sin6, sizeof(sin6)), 0);
    CU_ASSERT_EQUAL(a.family, WIRE_ADDR_IPV4); /* v4-mapped becomes IPv4 */
    CU_ASSERT_STRING_EQUAL(wire_addr_format(&a, text, sizeof(text)), "192.0.2.1:7070");

    inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
    CU_ASSERT_EQUAL(wire_addr_from_sockaddr(&a, (struct sockaddr *)&sin6, sizeof(sin6)), 0);
    CU_ASSERT_EQUAL(a.family, WIRE_ADDR_IPV6);
    CU_ASSERT_STRING_EQUAL(wire_addr_format(&a, text, sizeof(text)), "[2001:db8::1]:7070");
    struct sockaddr_storage ss;
    CU_ASSERT_EQUAL(wire_addr_to_sockaddr(&a, &ss), sizeof(struct sockaddr_in6));
    CU_ASSERT(memcmp(&((struct sockaddr_in6 *)&ss)->sin6_addr, &sin6.sin6_addr, 16) == 0);
    CU_ASSERT_EQUAL(((struct sockaddr_in6 *)&ss)->sin6_port, htons(7070));

    a.family = 5;
    CU_ASSERT_EQUAL(wire_addr_to_sockaddr(&a, &ss), 0);
    CU_ASSERT_STRING_EQUAL(wire_addr_format(&a, text, sizeof(text)), "(bad address family 5)");
    struct sockaddr unix_sa = {.sa_family = AF_UNIX};
    CU_ASSERT_EQUAL(wire_addr_from_sockaddr(&a, &unix_sa, sizeof(unix_sa)), SOVA_ERR_INVALID);
}

static void test_str_helpers(void)
{
    struct wire_str s = wire_str_from("abc");
    CU_ASSERT(wire_str_eq(s, "abc"));
    CU_ASSERT(!wire_str_eq(s, "ab"));
    CU_ASSERT(wire_str_eq(wire_str_from(NULL), ""));
    s.len = 2;
    char *copy = wire_str_dup(s);
    CU_ASSERT_STRING_EQUAL(copy, "ab");
    free(copy);
}

/* ---- malformed payloads --------------------------------------------------- */

/* Tight limits make the "too large" cases short. */
static struct wire_limits tight_limits(void)
{
    struct wire_limits lim = wire_limits_default();
    lim.max_frame = 64;
    lim.max_keyword_len = 2;
    lim.max_relay_data = 4;
    lim.max_addrs = 1;
    lim.max_agent_len = 2;
    return lim;
}

struct bad_case {
    const char *what;
    const uint8_t *payload;
    size_t len;
    const char *field; /* expected */
    size_t offset;     /* expected */
    int code;          /* expected */
    uint8_t type;
    bool tight; /* decode with tight_limits() */
};

#define BAD(what, type, code, field, offset, ...)                                                  \
    {                                                                                              \
        what, BYTES(__VA_ARGS__), field, offset, code, type, false                                 \
    }
#define BAD_TIGHT(what, type, code, field, offset, ...)                                            \
    {                                                                                              \
        what, BYTES(__VA_ARGS__), field, offset, code, type, true                                  \
    }

#define TRUNC SOVA_ERR_TRUNCATED
#define LARGE SOVA_ERR_TOO_LARGE
#define VALUE SOVA_ERR_BAD_VALUE

static const struct bad_case bad_cases[] = {
    /* truncated at each kind of field */
    BAD("truncated u16", MSG_HELLO, TRUNC, "hello.version_min", 0, 0),
    BAD("truncated u64", MSG_PING, TRUNC, "ping.nonce", 0, 1, 2, 3, 4, 5, 6, 7),
    BAD("truncated string body", MSG_HELLO, TRUNC, "hello.agent", 9, U16(1), U16(1), U32(0), 2,
        U16(5), 'a', 'b'),
    BAD("truncated string length", MSG_HELLO, TRUNC, "hello.agent", 9, U16(1), U16(1), U32(0), 2,
        0),
    BAD("truncated node ID", MSG_LOCATE, TRUNC, "locate.peer_id", 0, X16(1), X4(1), X4(1), X4(1), 1,
        1, 1),
    BAD("truncated IPv6 address", MSG_REGISTER, TRUNC, "register.addrs[0].ip", 4, 1, 0, 1, 6, 0x20,
        1, 0, 0, 0, 0),
    BAD("truncated port", MSG_REGISTERED, TRUNC, "registered.observed.port", 5, 4, 192, 0, 2, 1,
        0x1b),
    BAD("truncated bytes", MSG_RELAY_DATA, TRUNC, "relay_data.data", 4, U32(5), U32(10), 1, 2, 3),
    BAD("truncated token", MSG_RELAY_OPEN, TRUNC, "relay_open.token", 68, U32(1), ID(2), ID(3),
        X4(4)),
    /* unknown type */
    BAD("unknown type 0x7f", 0x7F, SOVA_ERR_UNKNOWN_TYPE, "frame.type", 0, 0),
    BAD("unknown type 0", 0x00, SOVA_ERR_UNKNOWN_TYPE, "frame.type", 0, 0),
    /* counts */
    BAD("9 keywords, limit 8", MSG_SEARCH, LARGE, "search.keywords", 10, U64(1), U16(1), 9),
    BAD("17 addresses", MSG_REGISTER, LARGE, "register.addrs", 2, 1, 0, 17),
    BAD_TIGHT("2 addresses, limit 1", MSG_REGISTER, LARGE, "register.addrs", 2, 1, 0, 2, V4ADDR,
              V4ADDR),
    BAD("keyword count past the bytes left", MSG_SEARCH, TRUNC, "search.keywords", 10, U64(1),
        U16(1), 8, U16(1), 'a'),
    BAD("1000 records, bytes for none", MSG_PUBLISH, TRUNC, "publish.records", 0, U16(1000)),
    BAD("200 hits, bytes for none", MSG_SEARCH_RESULT, TRUNC, "search_result.hits", 9, U64(1), 0,
        U16(200), ID(0)),
    BAD("1000 chunk hashes, bytes for one", MSG_MANIFEST, TRUNC, "manifest.chunk_hashes", 80,
        ID(0xF1), U64(10), ID(0xF2), U32(65536), U32(0), U16(1000), ID(1)),
    BAD("neither keywords nor hash", MSG_SEARCH, VALUE, "search.keywords", 11, U64(1), U16(1), 0),
    BAD("hash TLV too short", MSG_SEARCH, TRUNC, "search.ext[0].hash", 15, U64(1), U16(1), 0,
        U16(2), U16(4), 1, 2, 3, 4),
    BAD("empty PUBLISH", MSG_PUBLISH, VALUE, "publish.records", 0, U16(0)),
    BAD("DIALBACK without addresses", MSG_DIALBACK, VALUE, "dialback.addrs", 9, U64(1), 0),
    /* addresses */
    BAD("address family 5", MSG_REGISTER, VALUE, "register.addrs[0].family", 3, 1, 0, 1, 5, 1, 2, 3,
        4, 0, 1),
    BAD("port 0", MSG_REGISTER, VALUE, "register.addrs[0].port", 8, 1, 0, 1, 4, 192, 0, 2, 1,
        U16(0)),
    BAD("unspecified address", MSG_REGISTER, VALUE, "register.addrs[0].ip", 4, 1, 0, 1, 4, 0, 0, 0,
        0, U16(1)),
    BAD("observed address family 7", MSG_REGISTERED, VALUE, "registered.observed.family", 0, 7,
        X16(0)),
    BAD("deep: a source's address family", MSG_SEARCH_RESULT, VALUE,
        "search_result.hits[0].sources[0].addrs[0].family", 89, U64(1), 0, U16(1), ID(0xC1), U64(1),
        U16(1), 'x', 1, ID(0xD1), 1, 1, 9, 1, 2, 3, 4, 0, 1),
    /* strings */
    BAD("string with NUL", MSG_HELLO, VALUE, "hello.agent", 9, U16(1), U16(1), U32(0), 2, U16(3),
        'a', 0, 'b'),
    BAD("keyword not UTF-8", MSG_SEARCH, VALUE, "search.keywords[1]", 14, U64(1), U16(1), 2, U16(1),
        'a', U16(2), 0xC0, 0xAF),
    BAD_TIGHT("keyword longer than limit", MSG_SEARCH, LARGE, "search.keywords[0]", 11, U64(1),
              U16(1), 1, U16(3), 'a', 'b', 'c'),
    BAD_TIGHT("agent longer than limit", MSG_HELLO, LARGE, "hello.agent", 9, U16(1), U16(1), U32(0),
              2, U16(3), 'a', 'b', 'c'),
    BAD("empty keyword", MSG_SEARCH, VALUE, "search.keywords[0]", 11, U64(1), U16(1), 1, U16(0),
        U16(0x99), U16(0)),
    BAD("file name with '/'", MSG_PUBLISH, VALUE, "publish.records[0].name", 47, U16(1), 1,
        ID(0xB1), U64(1), U32(1), U16(3), 'a', '/', 'b'),
    BAD("file name '..'", MSG_PUBLISH, VALUE, "publish.records[0].name", 47, U16(1), 1, ID(0xB1),
        U64(1), U32(1), U16(2), '.', '.'),
    /* enums and ranges */
    BAD("role 3", MSG_HELLO, VALUE, "hello.role", 8, U16(1), U16(1), U32(0), 3, U16(0)),
    BAD("version_max < version_min", MSG_HELLO, VALUE, "hello.version_max", 2, U16(2), U16(1),
        U32(0), 2, U16(0)),
    BAD("version 0", MSG_HELLO, VALUE, "hello.version_min", 0, U16(0), U16(1), U32(0), 2, U16(0)),
    BAD("session 0", MSG_REGISTER, VALUE, "register.session", 0, 0, 0, 0),
    BAD("reachability 4", MSG_REGISTER, VALUE, "register.reachability", 1, 1, 4, 0),
    BAD("SN state 5", MSG_SN_LIST, VALUE, "sn_list.entries[0].state", 43, U16(1), ID(0xA1), 0,
        U64(1), 5, U32(0), U32(0), U32(0)),
    BAD("gossip kind 4", MSG_GOSSIP, VALUE, "gossip.kind", 0, 4),
    BAD("dial-back outcome 7", MSG_DIALBACK_RESULT, VALUE, "dialback_result.probes[0].outcome", 16,
        U64(1), 1, V4ADDR, 7),
    BAD("publish action 3", MSG_PUBLISH, VALUE, "publish.records[0].action", 2, U16(1), 3, ID(0),
        X16(0)),
    BAD("chunk size 0", MSG_PUBLISH, VALUE, "publish.records[0].chunk_size", 43, U16(1), 1,
        ID(0xB1), U64(1), U32(0), U16(1), 'a'),
    BAD("found 2", MSG_LOCATE_RESULT, VALUE, "locate_result.found", 32, ID(1), 2),
    BAD("timeout below keep-alive", MSG_REGISTERED, VALUE, "registered.peer_timeout_s", 9, V4ADDR,
        U16(30), U16(10)),
    BAD("error code 0", MSG_ERROR, VALUE, "error.code", 0, U16(0), 0, U16(0)),
    BAD("circuit ID 0", MSG_RELAY_ACCEPT, VALUE, "relay_accept.circuit_id", 0, U32(0)),
    BAD("credit 0", MSG_RELAY_WINDOW, VALUE, "relay_window.credit", 4, U32(1), U32(0)),
    BAD("empty relay data", MSG_RELAY_DATA, VALUE, "relay_data.data", 8, U32(1), U32(0)),
    BAD_TIGHT("relay data over limit", MSG_RELAY_DATA, LARGE, "relay_data.data", 4, U32(1), U32(5),
              1, 2, 3, 4, 5),
    BAD("bloom k 0", MSG_SUMMARY, VALUE, "summary.hash_count", 40, ID(0xA1), U64(1), 0),
    BAD("bloom bytes do not match bits", MSG_SUMMARY, VALUE, "summary.bits", 51, ID(0xA1), U64(1),
        4, U32(20), U32(2), 0, 0),
    BAD("manifest page past the file", MSG_MANIFEST, VALUE, "manifest.chunk_hashes", 146, ID(0xF1),
        U64(10), ID(0xF2), U32(65536), U32(2), U16(2), ID(1), ID(2)),
    BAD("GET count 0", MSG_GET, VALUE, "get.count", 40, ID(0xF1), U32(65536), U32(0), U32(0)),
    BAD("GET chunk size 1000", MSG_GET, VALUE, "get.chunk_size", 36, ID(0xF1), U32(1000), U32(0),
        U32(1)),
    BAD("FWD_SEARCH deadline 0", MSG_FWD_SEARCH, VALUE, "fwd_search.deadline_ms", 33, ID(0xA2), 1,
        U32(0)),
    BAD("FWD_SEARCH nested keyword", MSG_FWD_SEARCH, VALUE, "fwd_search.keywords[0]", 48, ID(0xA2),
        1, U32(100), U64(1), U16(1), 1, U16(1), 0xFF),
    /* extension area */
    BAD("1 stray byte: TLV tag cut", MSG_PING, TRUNC, "ping.ext[0].tag", 8, U64(1), 0),
    BAD("3 stray bytes: TLV length cut", MSG_PING, TRUNC, "ping.ext[0].length", 10, U64(1), U16(7),
        0),
    BAD("TLV value past the end", MSG_PING, TRUNC, "ping.ext[0].value", 12, U64(1), U16(7), U16(5),
        1, 2),
    BAD("second TLV cut", MSG_PING, TRUNC, "ping.ext[1].value", 16, U64(1), U16(7), U16(0), U16(8),
        U16(1)),
    BAD("trailing bytes in a known TLV", MSG_ERROR, SOVA_ERR_TRAILING, "error.ext[0].value", 13,
        U16(1), 0, U16(0), U16(1), U16(6), U32(9), 0, 0),
    BAD("known TLV too short", MSG_ERROR, TRUNC, "error.ext[0].retry_after_ms", 9, U16(1), 0,
        U16(0), U16(1), U16(2), 0, 9),
    BAD("repeated known TLV", MSG_ERROR, VALUE, "error.ext[1].tag", 13, U16(1), 0, U16(0), U16(1),
        U16(4), U32(1), U16(1), U16(4), U32(2)),
    BAD("bad address in redirect TLV", MSG_ERROR, VALUE, "error.ext[0].redirect[0].ip", 11,
        U16(107), 0, U16(0), U16(2), U16(8), 1, 4, 0, 0, 0, 0, U16(1)),
    BAD("size range min > max", MSG_SEARCH, VALUE, "search.ext[0].max_size", 34, U64(1), U16(1), 1,
        U16(1), 'a', U16(1), U16(16), U64(5), U64(4)),
    /* the frame limit applies to a payload handed over directly */
    BAD_TIGHT("payload beyond max_frame", MSG_PING, LARGE, "frame.length", 0, X16(0), X16(0),
              X16(0), X4(0), X4(0), X4(0)),
};

static void test_malformed_table(void)
{
    const struct wire_limits defaults = wire_limits_default(), tight = tight_limits();
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        struct msg m;
        struct wire_err err;
        char field[128];
        int rc = msg_decode(c->type, c->payload, c->len, c->tight ? &tight : &defaults, &m, &err);
        wire_err_field(&err, field, sizeof(field));
        bool ok = rc == c->code && err.code == c->code && strcmp(field, c->field) == 0 &&
                  err.offset == c->offset;
        if (!ok) {
            char line[192];
            fprintf(stderr, "\n%s: want %s: %s (offset %zu), got rc %d: %s\n", c->what, c->field,
                    sova_err_str(c->code), c->offset, rc,
                    wire_err_format(&err, line, sizeof(line)));
        }
        CU_ASSERT(ok);
        CU_ASSERT_EQUAL(m.type, 0); /* cleared */
        msg_clear(&m);
    }
    struct msg m;
    CU_ASSERT_EQUAL(msg_decode(MSG_PING, NULL, 0, &defaults, &m, NULL), SOVA_ERR_TRUNCATED);
}

/* The same payload with one byte changed anywhere never crashes or leaks,
 * and a failure always names a field. */
static void test_single_byte_corruptions(void)
{
    static const uint8_t search_result[] = {U64(1), 0, U16(1),   ID(0xC1), U64(1), U16(1),
                                            'x',    1, ID(0xD1), 1,        1,      V4ADDR};
    const struct wire_limits lim = wire_limits_default();
    uint8_t copy[sizeof(search_result)];
    for (size_t pos = 0; pos < sizeof(copy); pos++) {
        for (unsigned v = 0; v < 256; v += 17) {
            memcpy(copy, search_result, sizeof(copy));
            copy[pos] = (uint8_t)v;
            struct msg m;
            struct wire_err err;
            int rc = msg_decode(MSG_SEARCH_RESULT, copy, sizeof(copy), &lim, &m, &err);
            if (rc != 0) {
                CU_ASSERT_EQUAL(err.code, rc);
                CU_ASSERT(err.field != NULL || err.depth > 0);
                CU_ASSERT(err.offset <= sizeof(copy));
            }
            msg_clear(&m);
        }
    }
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("wire", NULL, NULL);
    if (!s)
        return -1;
    CU_add_test(s, "buffer grows and truncates", test_buf_grows_and_truncates);
    CU_add_test(s, "frame peek table", test_frame_peek_table);
    CU_add_test(s, "frame peek of a whole frame", test_frame_peek_whole_frame);
    CU_add_test(s, "frame encode helpers", test_frame_encode_helpers);
    CU_add_test(s, "error rendering", test_err_rendering);
    CU_add_test(s, "UTF-8 validation", test_utf8_validation);
    CU_add_test(s, "address conversions", test_addr_conversions);
    CU_add_test(s, "string helpers", test_str_helpers);
    CU_add_test(s, "malformed payloads name code, field and offset", test_malformed_table);
    CU_add_test(s, "single-byte corruptions", test_single_byte_corruptions);
    return CU_get_error() == CUE_SUCCESS ? 0 : -1;
}
