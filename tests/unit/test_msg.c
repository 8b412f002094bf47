/* test_msg.c - every message type against docs/PROTOCOL.md: a sample of each
 * is encoded and compared with golden bytes written by hand from the
 * document, round-tripped through framing and decoding, decoded with unknown
 * extensions appended, and decoded from every prefix.
 *
 * With SOVA_WRITE_SEEDS=<dir> set, the run also writes the fuzz seed corpora
 * (<dir>/fuzz_frame/, <dir>/fuzz_msg_<family>/) from the same samples; that
 * is how tests/fuzz/corpus/ was made. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"
#include "msg.h"

/* ---- golden bytes, written straight from PROTOCOL.md ---------------------- */
#define U16(v)   (uint8_t)((v) >> 8), (uint8_t)(v)
#define U32(v)   U16((uint32_t)(v) >> 16), U16((uint32_t)(v)&0xffff)
#define U64(v)   U32((uint64_t)(v) >> 32), U32((uint64_t)(v)&0xffffffff)
#define X4(b)    b, b, b, b
#define X16(b)   X4(b), X4(b), X4(b), X4(b)
#define ID(b)    X16(b), X16(b) /* a 32-byte node ID or hash, every byte b */
#define TOKEN(b) X16(b)
#define V4ADDR   4, 192, 0, 2, 1, U16(7071) /* 192.0.2.1:7071 */
#define V6ADDR(port)                                                                               \
    6, 0x20, 0x01, 0x0d, 0xb8, X4(0), X4(0), 0, 0, 0, 1, U16(port) /* 2001:db8::1 */

static const struct wire_addr addr_v4 = {.family = 4, .ip = {192, 0, 2, 1}, .port = 7071};
static const struct wire_addr addr_v6 = {
    .family = 6, .ip = {0x20, 0x01, 0x0d, 0xb8, [15] = 1}, .port = 7070};

/* The sample receipt: IDs 0x71, 0x72, file ID 0x73 of 4 MiB with root
 * 0x76, 1 MiB, seq 5, time 1700000000, key 0x74, signature 0x75. */
#define RCPT                                                                                       \
    ID(0x71), ID(0x72), ID(0x73), U64(4194304), ID(0x76), U64(1048576), U64(5), U64(1700000000),   \
        ID(0x74), ID(0x75), ID(0x75)

/* Sample messages point at this storage (they are never decoded-owned). */
static struct wire_addr one_v4[1], one_v6[1], v4_v6[2];
static struct wire_str kw_foo_bar[2];
static struct msg_sn_info sn_a1[2];
static struct msg_publish_record records[2];
static struct msg_source sources_c1[2], sources_c2[1];
static struct msg_hit hits_c1[1], hits_c2[1];
static struct msg_dialback_probe probes[2];
static uint8_t chunk_hashes[2][WIRE_HASH_LEN];
static const uint8_t relay_bytes[] = {0x16, 0x03, 0x03};
static const uint8_t bloom_bits[] = {0xF0, 0x0F, 0xA0};
static struct msg_receipt receipt_a[1];
static uint8_t credit_ids[2][WIRE_ID_LEN];
static struct msg_credit_record credit_recs[1];
static struct msg_ledger_item ledger_items[1];
static struct msg_uptime_report uptime_reports[1];
static struct msg_ledger_entry ledger_entries[1];
static struct msg_ledger_session ledger_sessions[1];

static void setup_storage(void)
{
    one_v4[0] = addr_v4;
    one_v6[0] = addr_v6;
    v4_v6[0] = addr_v4;
    v4_v6[1] = addr_v6;
    kw_foo_bar[0] = wire_str_from("foo");
    kw_foo_bar[1] = wire_str_from("bar");
    sn_a1[0] = (struct msg_sn_info){.addrs = one_v4,
                                    .n_addrs = 1,
                                    .incarnation = 7,
                                    .state = MSG_SN_ALIVE,
                                    .attached_peers = 10,
                                    .capacity = 1000,
                                    .relay_kbps = 250};
    memset(sn_a1[0].sn_id, 0xA1, WIRE_ID_LEN);
    sn_a1[1] = (struct msg_sn_info){.incarnation = 1, .state = MSG_SN_SUSPECT, .capacity = 500};
    memset(sn_a1[1].sn_id, 0xA2, WIRE_ID_LEN);
    records[0] = (struct msg_publish_record){.action = MSG_PUBLISH_ADD,
                                             .size = 1000000,
                                             .chunk_size = 262144,
                                             .name = wire_str_from("a.txt")};
    memset(records[0].hash, 0xB1, WIRE_HASH_LEN);
    records[1] = (struct msg_publish_record){
        .action = MSG_PUBLISH_REMOVE, .size = 5, .chunk_size = 1, .name = wire_str_from("b")};
    memset(records[1].hash, 0xB2, WIRE_HASH_LEN);
    sources_c1[0] =
        (struct msg_source){.reachability = MSG_REACH_PUBLIC, .addrs = one_v4, .n_addrs = 1};
    memset(sources_c1[0].peer_id, 0xD1, WIRE_ID_LEN);
    sources_c1[1] = (struct msg_source){.reachability = MSG_REACH_UNREACHABLE};
    memset(sources_c1[1].peer_id, 0xD2, WIRE_ID_LEN);
    sources_c2[0] = (struct msg_source){.reachability = MSG_REACH_UNKNOWN};
    memset(sources_c2[0].peer_id, 0xD3, WIRE_ID_LEN);
    hits_c1[0] = (struct msg_hit){
        .size = 1234, .name = wire_str_from("song.mp3"), .sources = sources_c1, .n_sources = 2};
    memset(hits_c1[0].hash, 0xC1, WIRE_HASH_LEN);
    hits_c2[0] = (struct msg_hit){
        .size = 0, .name = wire_str_from("e"), .sources = sources_c2, .n_sources = 1};
    memset(hits_c2[0].hash, 0xC2, WIRE_HASH_LEN);
    probes[0] = (struct msg_dialback_probe){.addr = addr_v4, .outcome = MSG_DIALBACK_OK};
    probes[1] = (struct msg_dialback_probe){.addr = addr_v6, .outcome = MSG_DIALBACK_TIMEOUT};
    memset(chunk_hashes[0], 0x31, WIRE_HASH_LEN);
    memset(chunk_hashes[1], 0x32, WIRE_HASH_LEN);
    struct msg_receipt *r = &receipt_a[0];
    memset(r->downloader_id, 0x71, WIRE_ID_LEN);
    memset(r->source_id, 0x72, WIRE_ID_LEN);
    memset(r->file_id, 0x73, WIRE_HASH_LEN);
    r->file_size = 4194304;
    memset(r->root, 0x76, WIRE_HASH_LEN);
    r->bytes = 1048576;
    r->seq = 5;
    r->time_s = 1700000000;
    memset(r->pubkey, 0x74, MSG_RECEIPT_KEY_LEN);
    memset(r->signature, 0x75, MSG_RECEIPT_SIG_LEN);
    memset(credit_ids[0], 0xD1, WIRE_ID_LEN);
    memset(credit_ids[1], 0xD2, WIRE_ID_LEN);
    credit_recs[0] = (struct msg_credit_record){
        .found = 1, .credit = 300, .uploaded = 4096, .downloaded = 1024, .uptime_s = 3600};
    memset(credit_recs[0].peer_id, 0xE1, WIRE_ID_LEN);
    ledger_items[0] = (struct msg_ledger_item){.receipt = *r, .sides = 3};
    uptime_reports[0] = (struct msg_uptime_report){.start_ms = 1700000000000, .seconds = 90};
    memset(uptime_reports[0].peer_id, 0xE1, WIRE_ID_LEN);
    ledger_entries[0] = (struct msg_ledger_entry){.last_seq = 7, .last_time = 8, .bytes = 9};
    memset(ledger_entries[0].peer_id, 0xD1, WIRE_ID_LEN);
    ledger_sessions[0] = (struct msg_ledger_session){.start_ms = 11, .seconds = 12};
    memset(ledger_sessions[0].sn_id, 0xA1, WIRE_ID_LEN);
}

/* ---- one sample per type ----------------------------------------------------- */

static void build(struct msg *m, uint8_t type)
{
    memset(m, 0, sizeof(*m));
    m->type = type;
    switch (type) {
    case MSG_HELLO:
        m->u.hello = (struct msg_hello){.version_min = 1,
                                        .version_max = 3,
                                        .capabilities = 0xF,
                                        .role = MSG_ROLE_PEER,
                                        .agent = wire_str_from("sova/1"),
                                        .has_connect_token = true};
        memset(m->u.hello.connect_token, 0x5D, WIRE_TOKEN_LEN);
        break;
    case MSG_ERROR:
        m->u.error = (struct msg_error){.code = MSG_ERR_RATE_LIMITED,
                                        .offending_type = 0x15,
                                        .text = wire_str_from("slow"),
                                        .has_retry_after = true,
                                        .retry_after_ms = 1500,
                                        .has_redirect = true,
                                        .redirect = one_v4,
                                        .n_redirect = 1};
        break;
    case MSG_PING:
        m->u.ping.nonce = 0x0102030405060708;
        break;
    case MSG_PONG:
        m->u.pong.nonce = 0xFEDCBA9876543210;
        break;
    case MSG_REGISTER:
        m->u.reg = (struct msg_register){.session = MSG_SESSION_BACKUP,
                                         .reachability = MSG_REACH_MAPPED,
                                         .addrs = v4_v6,
                                         .n_addrs = 2};
        break;
    case MSG_REGISTERED:
        m->u.registered =
            (struct msg_registered){.observed = addr_v6, .keepalive_s = 30, .peer_timeout_s = 90};
        m->u.registered.observed.port = 40000;
        break;
    case MSG_SN_LIST:
        m->u.sn_list = (struct msg_sn_list){.entries = sn_a1, .n_entries = 2};
        break;
    case MSG_PUBLISH:
        m->u.publish = (struct msg_publish){.records = records, .n_records = 2};
        break;
    case MSG_PUBLISH_ACK:
        m->u.publish_ack = (struct msg_publish_ack){3, 1, MSG_ERR_BAD_VALUE, 2};
        break;
    case MSG_SEARCH:
        m->u.search = (struct msg_search){.query_id = 0x1122334455667788,
                                          .max_results = 50,
                                          .keywords = kw_foo_bar,
                                          .n_keywords = 2,
                                          .has_size_range = true,
                                          .min_size = 10,
                                          .max_size = 20};
        break;
    case MSG_SEARCH_RESULT:
        m->u.search_result = (struct msg_search_result){
            .query_id = 9, .flags = MSG_RESULT_FINAL, .hits = hits_c1, .n_hits = 1};
        break;
    case MSG_LOCATE:
        memset(m->u.locate.peer_id, 0xE1, WIRE_ID_LEN);
        break;
    case MSG_LOCATE_RESULT:
        m->u.locate_result = (struct msg_locate_result){
            .found = 1, .reachability = MSG_REACH_MAPPED, .addrs = one_v6, .n_addrs = 1};
        memset(m->u.locate_result.peer_id, 0xE1, WIRE_ID_LEN);
        memset(m->u.locate_result.sn_id, 0xA1, WIRE_ID_LEN);
        break;
    case MSG_DIALBACK:
        m->u.dialback = (struct msg_dialback){.nonce = 77, .addrs = v4_v6, .n_addrs = 2};
        break;
    case MSG_DIALBACK_RESULT:
        m->u.dialback_result = (struct msg_dialback_result){77, probes, 2};
        break;
    case MSG_CONNECT:
        m->u.connect = (struct msg_connect){.addrs = one_v4, .n_addrs = 1};
        memset(m->u.connect.peer_id, 0xD2, WIRE_ID_LEN);
        memset(m->u.connect.token, 0x5A, WIRE_TOKEN_LEN);
        break;
    case MSG_CONNECT_REQUEST:
        m->u.connect_request = (struct msg_connect){.addrs = one_v6, .n_addrs = 1};
        memset(m->u.connect_request.peer_id, 0xD1, WIRE_ID_LEN);
        memset(m->u.connect_request.token, 0x5B, WIRE_TOKEN_LEN);
        break;
    case MSG_PUNCH:
        m->u.punch = (struct msg_punch){.step = MSG_PUNCH_OFFER, .port = 40001};
        memset(m->u.punch.peer_id, 0xD2, WIRE_ID_LEN);
        memset(m->u.punch.token, 0x5E, WIRE_TOKEN_LEN);
        break;
    case MSG_PUNCH_NOTE:
        m->u.punch_note = (struct msg_punch_note){.step = MSG_PUNCH_READY, .addr = one_v4[0]};
        memset(m->u.punch_note.peer_id, 0xD1, WIRE_ID_LEN);
        memset(m->u.punch_note.token, 0x5E, WIRE_TOKEN_LEN);
        break;
    case MSG_FWD_PUNCH:
        m->u.fwd_punch.note = (struct msg_punch_note){.step = MSG_PUNCH_SYNC, .addr = one_v4[0]};
        memset(m->u.fwd_punch.target_id, 0xD2, WIRE_ID_LEN);
        memset(m->u.fwd_punch.note.peer_id, 0xD1, WIRE_ID_LEN);
        memset(m->u.fwd_punch.note.token, 0x5E, WIRE_TOKEN_LEN);
        break;
    case MSG_REPORT:
        memset(m->u.report.peer_id, 0xD2, WIRE_ID_LEN);
        memset(m->u.report.hash, 0xC1, WIRE_HASH_LEN);
        m->u.report.reason = MSG_REPORT_BAD_DATA;
        break;
    case MSG_RECEIPTS:
        m->u.receipts = (struct msg_receipts){.receipts = receipt_a, .n_receipts = 1};
        break;
    case MSG_CREDIT:
        m->u.credit = (struct msg_credit){
            .kind = MSG_CREDIT_QUERY, .query_id = 0x51, .peer_ids = credit_ids, .n_peer_ids = 2};
        break;
    case MSG_RELAY_OPEN:
        m->u.relay_open.circuit_id = 0x01020304;
        memset(m->u.relay_open.target_id, 0xD2, WIRE_ID_LEN);
        memset(m->u.relay_open.origin_id, 0xD1, WIRE_ID_LEN);
        memset(m->u.relay_open.token, 0x5C, WIRE_TOKEN_LEN);
        break;
    case MSG_RELAY_ACCEPT:
        m->u.relay_accept.circuit_id = 5;
        break;
    case MSG_RELAY_OPENED:
        m->u.relay_opened.circuit_id = 6;
        break;
    case MSG_RELAY_DATA:
        m->u.relay_data = (struct msg_relay_data){5, {relay_bytes, sizeof(relay_bytes)}};
        break;
    case MSG_RELAY_WINDOW:
        m->u.relay_window = (struct msg_relay_window){5, 65536};
        break;
    case MSG_RELAY_CLOSE:
        m->u.relay_close = (struct msg_relay_close){5, MSG_ERR_RELAY_REFUSED};
        break;
    case MSG_GOSSIP:
        m->u.gossip = (struct msg_gossip){
            .kind = MSG_GOSSIP_PING_REQ, .seq = 42, .updates = sn_a1, .n_updates = 1};
        memset(m->u.gossip.target_id, 0xA3, WIRE_ID_LEN);
        break;
    case MSG_SUMMARY:
        m->u.summary = (struct msg_summary){.version = 3,
                                            .hash_count = 4,
                                            .bit_count = 20,
                                            .bits = {bloom_bits, sizeof(bloom_bits)}};
        memset(m->u.summary.sn_id, 0xA1, WIRE_ID_LEN);
        break;
    case MSG_FWD_SEARCH:
        m->u.fwd_search = (struct msg_fwd_search){
            .ttl = 2,
            .deadline_ms = 1500,
            .search = {.query_id = 0x42, .max_results = 20, .has_hash = true}};
        memset(m->u.fwd_search.origin_sn, 0xA2, WIRE_ID_LEN);
        memset(m->u.fwd_search.search.hash, 0x77, WIRE_HASH_LEN); /* by hash, no keywords */
        break;
    case MSG_FWD_HITS:
        m->u.fwd_hits = (struct msg_search_result){.query_id = 0x42, .hits = hits_c2, .n_hits = 1};
        break;
    case MSG_FWD_LOCATE:
        m->u.fwd_locate.query_id = 0x43;
        memset(m->u.fwd_locate.peer_id, 0xE2, WIRE_ID_LEN);
        break;
    case MSG_FWD_LOCATE_RESULT:
        m->u.fwd_locate_result.query_id = 0x43;
        memset(m->u.fwd_locate_result.result.peer_id, 0xE2, WIRE_ID_LEN);
        break;
    case MSG_FWD_CONNECT:
        m->u.fwd_connect.request = (struct msg_connect){.addrs = one_v4, .n_addrs = 1};
        memset(m->u.fwd_connect.target_id, 0xD2, WIRE_ID_LEN);
        memset(m->u.fwd_connect.request.peer_id, 0xD1, WIRE_ID_LEN);
        memset(m->u.fwd_connect.request.token, 0x5B, WIRE_TOKEN_LEN);
        break;
    case MSG_LEDGER_QUERY:
        m->u.ledger_query =
            (struct msg_credit){.query_id = 0x52, .peer_ids = &credit_ids[0], .n_peer_ids = 1};
        break;
    case MSG_LEDGER_ANSWER:
        m->u.ledger_answer = (struct msg_ledger_answer){.query_id = 0x52,
                                                        .found = 1,
                                                        .record = {.base_uploaded = 1,
                                                                   .horizon_s = 5,
                                                                   .uploads = ledger_entries,
                                                                   .n_uploads = 1,
                                                                   .sessions = ledger_sessions,
                                                                   .n_sessions = 1}};
        memset(m->u.ledger_answer.record.peer_id, 0xE1, WIRE_ID_LEN);
        break;
    case MSG_LEDGER_UPDATE:
        m->u.ledger_update = (struct msg_ledger_update){.items = ledger_items, .n_items = 1};
        break;
    case MSG_LEDGER_UPTIME:
        m->u.ledger_uptime = (struct msg_ledger_uptime){.reports = uptime_reports, .n_reports = 1};
        break;
    case MSG_LEDGER_PUT:
        m->u.ledger_put = (struct msg_ledger_put){.base_uploaded = 1,
                                                  .base_downloaded = 2,
                                                  .base_uptime_s = 4,
                                                  .horizon_s = 5,
                                                  .session_horizon_ms = 6,
                                                  .uploads = ledger_entries,
                                                  .n_uploads = 1,
                                                  .sessions = ledger_sessions,
                                                  .n_sessions = 1};
        memset(m->u.ledger_put.peer_id, 0xE1, WIRE_ID_LEN);
        break;
    case MSG_MANIFEST_GET:
        m->u.manifest_get =
            (struct msg_chunk_range){.chunk_size = 262144, .first_chunk = 0, .count = 4};
        memset(m->u.manifest_get.file_id, 0xF1, WIRE_HASH_LEN);
        break;
    case MSG_MANIFEST:
        m->u.manifest = (struct msg_manifest){.file_size = 600000,
                                              .chunk_size = 262144,
                                              .first_chunk = 1,
                                              .chunk_hashes = chunk_hashes,
                                              .n_chunk_hashes = 2};
        memset(m->u.manifest.file_id, 0xF1, WIRE_HASH_LEN);
        memset(m->u.manifest.root, 0xF2, WIRE_HASH_LEN);
        break;
    case MSG_GET:
        m->u.get = (struct msg_chunk_range){.chunk_size = 65536, .first_chunk = 2, .count = 1};
        memset(m->u.get.file_id, 0xF1, WIRE_HASH_LEN);
        break;
    case MSG_DATA:
        m->u.data = (struct msg_data){
            .chunk_index = 2, .offset = 16384, .data = {(const uint8_t *)"hello", 5}};
        memset(m->u.data.file_id, 0xF1, WIRE_HASH_LEN);
        break;
    case MSG_RECEIPT:
        m->u.receipt = receipt_a[0];
        break;
    }
}

struct golden {
    uint8_t type;
    const uint8_t *payload;
    size_t len;
};

#define GOLDEN(type, ...)                                                                          \
    {                                                                                              \
        type, (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})               \
    }

/* The payload (after the type byte) of each sample, as PROTOCOL.md lays it out. */
static const struct golden goldens[] = {
    GOLDEN(MSG_HELLO, U16(1), U16(3), U32(0xF), 2, U16(6), 's', 'o', 'v', 'a', '/', '1',
           /* ext: */ U16(1), U16(16), TOKEN(0x5D)),
    GOLDEN(MSG_ERROR, U16(102), 0x15, U16(4), 's', 'l', 'o', 'w', /* ext: */ U16(1), U16(4),
           U32(1500), U16(2), U16(8), 1, V4ADDR),
    GOLDEN(MSG_PING, U64(0x0102030405060708)),
    GOLDEN(MSG_PONG, U64(0xFEDCBA9876543210)),
    GOLDEN(MSG_REGISTER, 2, 2, 2, V4ADDR, V6ADDR(7070)),
    GOLDEN(MSG_REGISTERED, V6ADDR(40000), U16(30), U16(90)),
    GOLDEN(MSG_SN_LIST, U16(2), ID(0xA1), 1, V4ADDR, U64(7), 1, U32(10), U32(1000), U32(250),
           ID(0xA2), 0, U64(1), 2, U32(0), U32(500), U32(0)),
    GOLDEN(MSG_PUBLISH, U16(2), 1, ID(0xB1), U64(1000000), U32(262144), U16(5), 'a', '.', 't', 'x',
           't', 2, ID(0xB2), U64(5), U32(1), U16(1), 'b'),
    GOLDEN(MSG_PUBLISH_ACK, U16(3), U16(1), U16(15), U16(2)),
    GOLDEN(MSG_SEARCH, U64(0x1122334455667788), U16(50), 2, U16(3), 'f', 'o', 'o', U16(3), 'b', 'a',
           'r', /* ext: */ U16(1), U16(16), U64(10), U64(20)),
    GOLDEN(MSG_SEARCH_RESULT, U64(9), 1, U16(1), ID(0xC1), U64(1234), U16(8), 's', 'o', 'n', 'g',
           '.', 'm', 'p', '3', 2, ID(0xD1), 1, 1, V4ADDR, ID(0xD2), 3, 0),
    GOLDEN(MSG_LOCATE, ID(0xE1)),
    GOLDEN(MSG_LOCATE_RESULT, ID(0xE1), 1, 2, 1, V6ADDR(7070), ID(0xA1)),
    GOLDEN(MSG_DIALBACK, U64(77), 2, V4ADDR, V6ADDR(7070)),
    GOLDEN(MSG_DIALBACK_RESULT, U64(77), 2, V4ADDR, 1, V6ADDR(7070), 3),
    GOLDEN(MSG_CONNECT, ID(0xD2), TOKEN(0x5A), 1, V4ADDR),
    GOLDEN(MSG_CONNECT_REQUEST, ID(0xD1), TOKEN(0x5B), 1, V6ADDR(7070)),
    GOLDEN(MSG_REPORT, ID(0xD2), ID(0xC1), 1),
    GOLDEN(MSG_PUNCH, ID(0xD2), TOKEN(0x5E), 1, U16(40001)),
    GOLDEN(MSG_PUNCH_NOTE, ID(0xD1), TOKEN(0x5E), 2, V4ADDR),
    GOLDEN(MSG_RECEIPTS, 1, RCPT),
    GOLDEN(MSG_CREDIT, 1, U64(0x51), 2, ID(0xD1), ID(0xD2)),
    GOLDEN(MSG_RELAY_OPEN, U32(0x01020304), ID(0xD2), ID(0xD1), TOKEN(0x5C)),
    GOLDEN(MSG_RELAY_ACCEPT, U32(5)),
    GOLDEN(MSG_RELAY_OPENED, U32(6)),
    GOLDEN(MSG_RELAY_DATA, U32(5), U32(3), 0x16, 0x03, 0x03),
    GOLDEN(MSG_RELAY_WINDOW, U32(5), U32(65536)),
    GOLDEN(MSG_RELAY_CLOSE, U32(5), U16(109)),
    GOLDEN(MSG_GOSSIP, 3, U32(42), ID(0xA3), 1, ID(0xA1), 1, V4ADDR, U64(7), 1, U32(10), U32(1000),
           U32(250)),
    GOLDEN(MSG_SUMMARY, ID(0xA1), U64(3), 4, U32(20), U32(3), 0xF0, 0x0F, 0xA0),
    GOLDEN(MSG_FWD_SEARCH, ID(0xA2), 2, U32(1500), U64(0x42), U16(20), 0, /* ext: */ U16(2),
           U16(32), ID(0x77)),
    GOLDEN(MSG_FWD_HITS, U64(0x42), 0, U16(1), ID(0xC2), U64(0), U16(1), 'e', 1, ID(0xD3), 0, 0),
    GOLDEN(MSG_FWD_LOCATE, U64(0x43), ID(0xE2)),
    GOLDEN(MSG_FWD_LOCATE_RESULT, U64(0x43), ID(0xE2), 0, 0, 0, ID(0)),
    GOLDEN(MSG_FWD_CONNECT, ID(0xD2), ID(0xD1), TOKEN(0x5B), 1, V4ADDR),
    GOLDEN(MSG_FWD_PUNCH, ID(0xD2), ID(0xD1), TOKEN(0x5E), 3, V4ADDR),
    GOLDEN(MSG_LEDGER_QUERY, U64(0x52), 1, ID(0xD1)),
    GOLDEN(MSG_LEDGER_ANSWER, U64(0x52), 1, ID(0xE1), U64(1), U64(0), U64(0), U64(5), U64(0),
           U16(1), ID(0xD1), U64(7), U64(8), U64(9), U16(0), 1, ID(0xA1), U64(11), U64(12)),
    GOLDEN(MSG_LEDGER_UPDATE, 1, RCPT, 3),
    GOLDEN(MSG_LEDGER_UPTIME, 1, ID(0xE1), U64(1700000000000), U64(90)),
    GOLDEN(MSG_LEDGER_PUT, ID(0xE1), U64(1), U64(2), U64(4), U64(5), U64(6), U16(1), ID(0xD1),
           U64(7), U64(8), U64(9), U16(0), 1, ID(0xA1), U64(11), U64(12)),
    GOLDEN(MSG_MANIFEST_GET, ID(0xF1), U32(262144), U32(0), U32(4)),
    GOLDEN(MSG_MANIFEST, ID(0xF1), U64(600000), ID(0xF2), U32(262144), U32(1), U16(2), ID(0x31),
           ID(0x32)),
    GOLDEN(MSG_GET, ID(0xF1), U32(65536), U32(2), U32(1)),
    GOLDEN(MSG_DATA, ID(0xF1), U32(2), U32(16384), U32(5), 'h', 'e', 'l', 'l', 'o'),
    GOLDEN(MSG_RECEIPT, RCPT),
};
#define N_GOLDEN (sizeof(goldens) / sizeof(goldens[0]))

static struct wire_limits lim;

static int suite_init(void)
{
    setup_storage();
    lim = wire_limits_default();
    return 0;
}

/* Report the first differing byte, so a failure says where the layout and
 * the document part ways. */
static void expect_bytes(const char *what, const uint8_t *got, size_t got_len, const uint8_t *want,
                         size_t want_len)
{
    size_t i = 0;
    while (i < got_len && i < want_len && got[i] == want[i])
        i++;
    if (i == got_len && i == want_len)
        return;
    fprintf(stderr, "\n%s: differs at byte %zu: got %zu bytes (0x%02x), want %zu bytes (0x%02x)\n",
            what, i, got_len, i < got_len ? got[i] : 0, want_len, i < want_len ? want[i] : 0);
    CU_FAIL("encoding differs from the golden bytes");
}

static void test_every_type_has_a_golden_sample(void)
{
    size_t known = 0;
    for (unsigned t = 0; t < 256; t++)
        known += msg_type_name((uint8_t)t) != NULL;
    CU_ASSERT_EQUAL(known, N_GOLDEN);
    for (size_t i = 0; i < N_GOLDEN; i++)
        CU_ASSERT_PTR_NOT_NULL(msg_type_name(goldens[i].type));
}

static void test_encode_matches_protocol_doc(void)
{
    for (size_t i = 0; i < N_GOLDEN; i++) {
        const struct golden *g = &goldens[i];
        struct msg m;
        struct wire_buf out;
        struct wire_err err;
        build(&m, g->type);
        wire_buf_init(&out);
        CU_ASSERT_EQUAL_FATAL(msg_encode(&m, &lim, &out, &err), 0);
        CU_ASSERT_EQUAL(out.len, WIRE_FRAME_HDR_SIZE + g->len);
        const uint8_t hdr[WIRE_FRAME_HDR_SIZE] = {U32(g->len + 1), g->type};
        expect_bytes("frame header", out.data, WIRE_FRAME_HDR_SIZE, hdr, sizeof(hdr));
        expect_bytes(msg_type_name(g->type), out.data + WIRE_FRAME_HDR_SIZE,
                     out.len - WIRE_FRAME_HDR_SIZE, g->payload, g->len);
        wire_buf_free(&out);
    }
}

/* encode -> frame -> peek -> decode -> compare, for every type. */
static void test_round_trip_every_type(void)
{
    for (size_t i = 0; i < N_GOLDEN; i++) {
        struct msg sample, got;
        struct wire_buf out;
        struct wire_err err;
        struct wire_frame_hdr hdr;
        build(&sample, goldens[i].type);
        wire_buf_init(&out);
        CU_ASSERT_EQUAL_FATAL(msg_encode(&sample, &lim, &out, &err), 0);
        CU_ASSERT_EQUAL(wire_frame_peek(out.data, out.len - 1, lim.max_frame, &hdr, &err),
                        (int)out.len);
        CU_ASSERT_EQUAL_FATAL(wire_frame_peek(out.data, out.len, lim.max_frame, &hdr, &err), 0);
        CU_ASSERT_EQUAL(hdr.type, sample.type);
        CU_ASSERT_EQUAL(hdr.frame_len, out.len);
        int rc =
            msg_decode(hdr.type, out.data + WIRE_FRAME_HDR_SIZE, hdr.payload_len, &lim, &got, &err);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(got.type, sample.type);
        CU_ASSERT(msg_equal(&got, &sample, &lim));
        msg_clear(&got);
        msg_clear(&got); /* twice is fine */
        wire_buf_free(&out);
    }
}

/* msg_equal compares encodings; spot-check that the decoded structs really
 * hold the values, down to the deepest nesting. */
static void test_decoded_fields_deep(void)
{
    const struct golden *g = NULL;
    for (size_t i = 0; i < N_GOLDEN; i++)
        if (goldens[i].type == MSG_SEARCH_RESULT)
            g = &goldens[i];
    if (!g) {
        CU_FAIL("no SEARCH_RESULT sample");
        return;
    }
    struct msg m;
    CU_ASSERT_EQUAL_FATAL(msg_decode(g->type, g->payload, g->len, &lim, &m, NULL), 0);
    const struct msg_search_result *r = &m.u.search_result;
    CU_ASSERT_EQUAL(r->query_id, 9);
    CU_ASSERT_EQUAL(r->flags, MSG_RESULT_FINAL);
    CU_ASSERT_EQUAL_FATAL(r->n_hits, 1);
    CU_ASSERT_EQUAL(r->hits[0].size, 1234);
    CU_ASSERT(wire_str_eq(r->hits[0].name, "song.mp3"));
    CU_ASSERT_EQUAL_FATAL(r->hits[0].n_sources, 2);
    CU_ASSERT_EQUAL(r->hits[0].sources[0].peer_id[31], 0xD1);
    CU_ASSERT_EQUAL(r->hits[0].sources[1].reachability, MSG_REACH_UNREACHABLE);
    CU_ASSERT_EQUAL_FATAL(r->hits[0].sources[0].n_addrs, 1);
    CU_ASSERT_EQUAL(r->hits[0].sources[0].addrs[0].port, 7071);
    CU_ASSERT(memcmp(r->hits[0].sources[0].addrs[0].ip, addr_v4.ip, 4) == 0);
    CU_ASSERT_PTR_NULL(r->hits[0].sources[1].addrs); /* empty lists allocate nothing */
    /* Strings borrow from the payload. */
    CU_ASSERT(r->hits[0].name.ptr > (const char *)g->payload &&
              r->hits[0].name.ptr < (const char *)g->payload + g->len);
    msg_clear(&m);
    CU_ASSERT_EQUAL(m.type, 0);
}

static void append_u16(struct wire_buf *b, uint16_t v)
{
    const uint8_t be[2] = {U16(v)};
    CU_ASSERT_EQUAL(wire_buf_append(b, be, 2), 0);
}

static void append_tlv(struct wire_buf *b, uint16_t tag, const char *value)
{
    append_u16(b, tag);
    append_u16(b, (uint16_t)strlen(value));
    CU_ASSERT_EQUAL(wire_buf_append(b, value, strlen(value)), 0);
}

/* Unknown TLVs, before and after the known ones, are skipped by every type. */
static void test_unknown_extensions_are_skipped(void)
{
    for (size_t i = 0; i < N_GOLDEN; i++) {
        const struct golden *g = &goldens[i];
        struct msg sample, got;
        struct wire_buf payload;
        struct wire_err err;
        build(&sample, g->type);
        wire_buf_init(&payload);
        CU_ASSERT_EQUAL(wire_buf_append(&payload, g->payload, g->len), 0);
        append_tlv(&payload, 0x7777, "future field");
        append_tlv(&payload, 0xFFFF, "");
        int rc = msg_decode(g->type, payload.data, payload.len, &lim, &got, &err);
        CU_ASSERT_EQUAL(rc, 0);
        if (rc != 0) {
            char why[128];
            fprintf(stderr, "\n%s\n", wire_err_format(&err, why, sizeof(why)));
        }
        CU_ASSERT(msg_equal(&got, &sample, &lim));
        msg_clear(&got);
        wire_buf_free(&payload);
    }
}

static void test_unknown_extension_between_known_ones(void)
{
    /* ERROR "x" | unknown | retry_after 9 | unknown */
    static const uint8_t payload[] = {U16(106), 0,      U16(1), 'x',    U16(0x1234), U16(2), 0xAA,
                                      0xBB,     U16(1), U16(4), U32(9), U16(0x4321), U16(0)};
    struct msg m;
    CU_ASSERT_EQUAL_FATAL(msg_decode(MSG_ERROR, payload, sizeof(payload), &lim, &m, NULL), 0);
    CU_ASSERT(m.u.error.has_retry_after);
    CU_ASSERT_EQUAL(m.u.error.retry_after_ms, 9);
    CU_ASSERT(!m.u.error.has_redirect);
    CU_ASSERT(wire_str_eq(m.u.error.text, "x"));
    msg_clear(&m);
}

/* A prefix that ends between extension TLVs is a complete message of its
 * own: it decodes (and re-encodes to exactly those bytes), or fails a rule
 * checked once all fields are read, at its very end (a hash-only search cut
 * before its hash). Only samples with known extensions have such cuts. */
static bool complete_prefix_ok(const struct golden *g, const uint8_t *bytes, size_t len, int rc,
                               const struct wire_err *err, const struct msg *m)
{
    if (g->type != MSG_HELLO && g->type != MSG_ERROR && g->type != MSG_SEARCH &&
        g->type != MSG_FWD_SEARCH)
        return false;
    if (rc == SOVA_ERR_BAD_VALUE)
        return err->offset == len;
    struct wire_buf out;
    wire_buf_init(&out);
    bool same = msg_encode(m, &lim, &out, NULL) == 0 && out.len == WIRE_FRAME_HDR_SIZE + len &&
                memcmp(out.data + WIRE_FRAME_HDR_SIZE, bytes, len) == 0;
    wire_buf_free(&out);
    return same;
}

/* Every strict prefix of every sample fails cleanly with TRUNCATED, unless
 * it is a complete message (above). */
static void test_every_prefix_is_truncated(void)
{
    for (size_t i = 0; i < N_GOLDEN; i++) {
        const struct golden *g = &goldens[i];
        for (size_t len = 0; len < g->len; len++) {
            /* A private copy, so ASan sees any read past len. */
            uint8_t *copy = malloc(len ? len : 1);
            if (!copy) {
                CU_FAIL("out of memory");
                return;
            }
            memcpy(copy, g->payload, len);
            struct msg m;
            struct wire_err err;
            int rc = msg_decode(g->type, copy, len, &lim, &m, &err);
            if (rc != SOVA_ERR_TRUNCATED && !complete_prefix_ok(g, copy, len, rc, &err, &m)) {
                char why[128];
                fprintf(stderr, "\n%s prefix %zu: rc %d %s\n", msg_type_name(g->type), len, rc,
                        rc ? wire_err_format(&err, why, sizeof(why)) : "");
                CU_FAIL("prefix did not fail with TRUNCATED");
            }
            CU_ASSERT_EQUAL(m.type, rc == 0 ? g->type : 0); /* cleared on error */
            msg_clear(&m);
            free(copy);
        }
    }
}

/* The encoder refuses what the decoder would refuse, and leaves out as it was. */
static void test_encoder_validates_input(void)
{
    struct wire_buf out;
    struct wire_err err;
    struct msg m;
    char field[96];
    wire_buf_init(&out);
    CU_ASSERT_EQUAL(wire_buf_append(&out, "keep", 4), 0);

    build(&m, MSG_HELLO);
    m.u.hello.role = 0;
    CU_ASSERT_EQUAL(msg_encode(&m, &lim, &out, &err), SOVA_ERR_BAD_VALUE);
    CU_ASSERT_STRING_EQUAL(wire_err_field(&err, field, sizeof(field)), "hello.role");
    CU_ASSERT_EQUAL(out.len, 4);

    build(&m, MSG_PUBLISH);
    struct msg_publish_record bad = records[0];
    bad.name = wire_str_from("../etc/passwd");
    m.u.publish.records = &bad;
    m.u.publish.n_records = 1;
    CU_ASSERT_EQUAL(msg_encode(&m, &lim, &out, &err), SOVA_ERR_BAD_VALUE);
    CU_ASSERT_STRING_EQUAL(wire_err_field(&err, field, sizeof(field)), "publish.records[0].name");

    build(&m, MSG_SEARCH);
    struct wire_limits one_kw = lim;
    one_kw.max_keywords = 1;
    CU_ASSERT_EQUAL(msg_encode(&m, &one_kw, &out, &err), SOVA_ERR_TOO_LARGE);
    CU_ASSERT_STRING_EQUAL(wire_err_field(&err, field, sizeof(field)), "search.keywords");

    /* Never a frame larger than max_frame. */
    build(&m, MSG_SN_LIST);
    struct wire_limits small = lim;
    small.max_frame = 64;
    CU_ASSERT_EQUAL(msg_encode(&m, &small, &out, &err), SOVA_ERR_TOO_LARGE);
    CU_ASSERT_EQUAL(out.len, 4);

    m.type = 0x7F;
    CU_ASSERT_EQUAL(msg_encode(&m, &lim, &out, &err), SOVA_ERR_UNKNOWN_TYPE);

    build(&m, MSG_CONNECT);
    m.u.connect.addrs = NULL; /* count without items */
    CU_ASSERT_EQUAL(msg_encode(&m, &lim, &out, &err), SOVA_ERR_INVALID);
    CU_ASSERT_EQUAL(out.len, 4);
    CU_ASSERT(memcmp(out.data, "keep", 4) == 0);
    wire_buf_free(&out);
}

static void test_clear_is_safe(void)
{
    struct msg m;
    memset(&m, 0, sizeof(m));
    msg_clear(&m);
    build(&m, MSG_SN_LIST); /* points at static storage: must not be freed */
    msg_clear(&m);
    CU_ASSERT_PTR_NULL(m.u.sn_list.entries);
}

static void test_decode_frame_stream(void)
{
    struct wire_buf stream;
    struct msg a, b, got;
    size_t used = 0;
    wire_buf_init(&stream);
    build(&a, MSG_PING);
    build(&b, MSG_GOSSIP);
    CU_ASSERT_EQUAL(msg_encode(&a, &lim, &stream, NULL), 0);
    size_t first = stream.len;
    CU_ASSERT_EQUAL(msg_encode(&b, &lim, &stream, NULL), 0);
    CU_ASSERT_EQUAL(msg_decode_frame(stream.data, 3, &lim, &got, &used, NULL), WIRE_FRAME_HDR_SIZE);
    CU_ASSERT_EQUAL(msg_decode_frame(stream.data, stream.len, &lim, &got, &used, NULL), 0);
    CU_ASSERT_EQUAL(used, first);
    CU_ASSERT(msg_equal(&got, &a, &lim));
    msg_clear(&got);
    CU_ASSERT_EQUAL(
        msg_decode_frame(stream.data + first, stream.len - first, &lim, &got, &used, NULL), 0);
    CU_ASSERT_EQUAL(used, stream.len - first);
    CU_ASSERT(msg_equal(&got, &b, &lim));
    CU_ASSERT(!msg_equal(&got, &a, &lim));
    msg_clear(&got);
    wire_buf_free(&stream);
}

static void test_version_negotiation(void)
{
    struct msg_hello remote = {.version_min = 1, .version_max = 3, .role = MSG_ROLE_PEER};
    uint16_t v = 0;
    CU_ASSERT_EQUAL(msg_hello_negotiate(&remote, 1, 2, &v), 0);
    CU_ASSERT_EQUAL(v, 2);
    CU_ASSERT_EQUAL(msg_hello_negotiate(&remote, 2, 5, &v), 0);
    CU_ASSERT_EQUAL(v, 3);
    CU_ASSERT_EQUAL(msg_hello_negotiate(&remote, 4, 5, &v), SOVA_ERR_VERSION);
    remote.version_min = 2;
    CU_ASSERT_EQUAL(msg_hello_negotiate(&remote, 1, 1, &v), SOVA_ERR_VERSION);
    remote.version_min = 1;
    CU_ASSERT_EQUAL(msg_hello_negotiate(&remote, MSG_PROTO_VERSION_MIN, MSG_PROTO_VERSION_MAX, &v),
                    0);
    CU_ASSERT_EQUAL(v, MSG_PROTO_VERSION_MAX);
    /* This is version 2 only: a node of version 1 (file IDs were whole-file
     * SHA-256s then) has no version in common with it. */
    CU_ASSERT_EQUAL(MSG_PROTO_VERSION_MIN, 2);
    CU_ASSERT_EQUAL(MSG_PROTO_VERSION_MAX, 2);
    struct msg_hello v1 = {.version_min = 1, .version_max = 1, .role = MSG_ROLE_PEER};
    CU_ASSERT_EQUAL(msg_hello_negotiate(&v1, MSG_PROTO_VERSION_MIN, MSG_PROTO_VERSION_MAX, &v),
                    SOVA_ERR_VERSION);
}

/* The chunk sizes a transfer message may carry, and the sizes a MANIFEST
 * may describe: each rule refused with BAD_VALUE naming its field. */
static void expect_bad(uint8_t type, const uint8_t *p, size_t n, const char *field)
{
    struct msg got;
    struct wire_err err;
    char name[96];
    CU_ASSERT_EQUAL(msg_decode(type, p, n, &lim, &got, &err), SOVA_ERR_BAD_VALUE);
    CU_ASSERT_STRING_EQUAL(wire_err_field(&err, name, sizeof(name)), field);
}

static void test_chunk_sizes(void)
{
    struct msg got;
    static const uint8_t min[] = {ID(0xF1), U32(65536), U32(0), U32(1)};
    static const uint8_t max[] = {ID(0xF1), U32(16777216), U32(0), U32(1)};
    CU_ASSERT_EQUAL(msg_decode(MSG_GET, min, sizeof(min), &lim, &got, NULL), 0);
    msg_clear(&got);
    CU_ASSERT_EQUAL(msg_decode(MSG_MANIFEST_GET, max, sizeof(max), &lim, &got, NULL), 0);
    msg_clear(&got);
    static const uint8_t small[] = {ID(0xF1), U32(32768), U32(0), U32(1)};
    static const uint8_t big[] = {ID(0xF1), U32(33554432), U32(0), U32(1)};
    static const uint8_t odd[] = {ID(0xF1), U32(1000000), U32(0), U32(1)};
    static const uint8_t zero[] = {ID(0xF1), U32(0), U32(0), U32(1)};
    expect_bad(MSG_GET, small, sizeof(small), "get.chunk_size");
    expect_bad(MSG_MANIFEST_GET, big, sizeof(big), "manifest_get.chunk_size");
    expect_bad(MSG_GET, odd, sizeof(odd), "get.chunk_size");
    expect_bad(MSG_MANIFEST_GET, zero, sizeof(zero), "manifest_get.chunk_size");
    /* A MANIFEST: its size at most FILEID_MAX_SIZE (2^62), its chunks
     * numbered by a u32, its page inside the file. */
    static const uint8_t huge[] = {ID(0xF1), U64(0x4000000000000001), ID(0xF2), U32(65536), U32(0),
                                   U16(0)};
    expect_bad(MSG_MANIFEST, huge, sizeof(huge), "manifest.file_size");
    static const uint8_t many[] = {ID(0xF1), U64(0x0001000000000000), ID(0xF2), U32(65536), U32(0),
                                   U16(0)};
    expect_bad(MSG_MANIFEST, many, sizeof(many), "manifest.chunk_size");
    static const uint8_t past[] = {ID(0xF1), U64(65536), ID(0xF2), U32(65536),
                                   U32(1),   U16(1),     ID(0x31)};
    expect_bad(MSG_MANIFEST, past, sizeof(past), "manifest.chunk_hashes");
    static const uint8_t empty[] = {ID(0xF1), U64(0), ID(0xF2), U32(65536), U32(0), U16(0)};
    CU_ASSERT_EQUAL(msg_decode(MSG_MANIFEST, empty, sizeof(empty), &lim, &got, NULL), 0);
    msg_clear(&got);
}

static void test_error_codes(void)
{
    CU_ASSERT_EQUAL(msg_error_code_from_err(SOVA_ERR_TRUNCATED), MSG_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(msg_error_code_from_err(SOVA_ERR_VERSION), 16);
    CU_ASSERT_EQUAL(msg_error_code_from_err(SOVA_ERR_UNKNOWN_TYPE), 13);
    CU_ASSERT_EQUAL(msg_error_code_from_err(SOVA_ERR_NOMEM), MSG_ERR_INTERNAL);
    CU_ASSERT_EQUAL(msg_error_code_from_err(SOVA_ERR_TIMEOUT), MSG_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(msg_error_code_from_err(SOVA_ERR_NOT_FOUND), MSG_ERR_NOT_FOUND);
    CU_ASSERT_STRING_EQUAL(msg_error_code_str(MSG_ERR_TIMEOUT), "timed out");
    CU_ASSERT_STRING_EQUAL(msg_error_code_str(MSG_ERR_BAD_VALUE), "bad field value");
    CU_ASSERT_STRING_EQUAL(msg_error_code_str(MSG_ERR_RATE_LIMITED), "rate limited");
    CU_ASSERT_STRING_EQUAL(msg_error_code_str(999), "unknown error code");

    /* An ERROR built from a decode failure encodes and names the field. */
    struct msg bad, reply;
    struct wire_err err;
    char text[128];
    static const uint8_t truncated_ping[] = {1, 2, 3};
    CU_ASSERT_EQUAL(msg_decode(MSG_PING, truncated_ping, 3, &lim, &bad, &err), SOVA_ERR_TRUNCATED);
    msg_error_from_wire_err(&reply, &err, MSG_PING, text, sizeof(text));
    CU_ASSERT_EQUAL(reply.u.error.code, MSG_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(reply.u.error.offending_type, MSG_PING);
    CU_ASSERT_STRING_EQUAL(text, "ping.nonce: truncated field (offset 0)");
    struct wire_buf out;
    wire_buf_init(&out);
    CU_ASSERT_EQUAL(msg_encode(&reply, &lim, &out, NULL), 0);
    wire_buf_free(&out);
}

/* CREDIT's other kind (the golden sample is a query), and the rules of
 * the credit messages the samples do not break. */
static void test_credit_messages(void)
{
    struct msg a = {.type = MSG_CREDIT}, got;
    a.u.credit = (struct msg_credit){
        .kind = MSG_CREDIT_ANSWER, .query_id = 9, .records = credit_recs, .n_records = 1};
    static const uint8_t answer[] = {2,        U64(9),    1,         ID(0xE1), 1,
                                     U64(300), U64(4096), U64(1024), U64(3600)};
    struct wire_buf out;
    wire_buf_init(&out);
    CU_ASSERT_EQUAL_FATAL(msg_encode(&a, &lim, &out, NULL), 0);
    expect_bytes("credit answer", out.data + WIRE_FRAME_HDR_SIZE, out.len - WIRE_FRAME_HDR_SIZE,
                 answer, sizeof(answer));
    CU_ASSERT_EQUAL(msg_decode(MSG_CREDIT, answer, sizeof(answer), &lim, &got, NULL), 0);
    CU_ASSERT_EQUAL(got.u.credit.n_records, 1);
    CU_ASSERT_EQUAL(got.u.credit.records[0].uptime_s, 3600);
    msg_clear(&got);
    wire_buf_free(&out);
    struct wire_err err;
    char field[96];
    static const uint8_t bad_kind[] = {3, U64(9), 0};
    CU_ASSERT_EQUAL(msg_decode(MSG_CREDIT, bad_kind, sizeof(bad_kind), &lim, &got, &err),
                    SOVA_ERR_BAD_VALUE);
    CU_ASSERT_STRING_EQUAL(wire_err_field(&err, field, sizeof(field)), "credit.kind");
    static const uint8_t empty_query[] = {1, U64(9), 0};
    CU_ASSERT_EQUAL(msg_decode(MSG_CREDIT, empty_query, sizeof(empty_query), &lim, &got, &err),
                    SOVA_ERR_BAD_VALUE);
    static const uint8_t zero_bytes[] = {ID(0x71), ID(0x72), ID(0x73), U64(9),   ID(0x76), U64(0),
                                         U64(5),   U64(1),   ID(0x74), ID(0x75), ID(0x75)};
    CU_ASSERT_EQUAL(msg_decode(MSG_RECEIPT, zero_bytes, sizeof(zero_bytes), &lim, &got, &err),
                    SOVA_ERR_BAD_VALUE);
    CU_ASSERT_STRING_EQUAL(wire_err_field(&err, field, sizeof(field)), "receipt.bytes");
    static const uint8_t no_side[] = {1, RCPT, 0};
    CU_ASSERT_EQUAL(msg_decode(MSG_LEDGER_UPDATE, no_side, sizeof(no_side), &lim, &got, &err),
                    SOVA_ERR_BAD_VALUE);
    /* A holder that has no record says so with nothing in it. */
    static const uint8_t not_found[] = {U64(1), 0,      ID(0xE1), U64(0), U64(0), U64(0),
                                        U64(0), U64(0), U16(0),   U16(0), 0};
    CU_ASSERT_EQUAL(msg_decode(MSG_LEDGER_ANSWER, not_found, sizeof(not_found), &lim, &got, &err),
                    0);
    msg_clear(&got);
    static const uint8_t found_0_with_data[] = {U64(1), 0,      ID(0xE1), U64(5), U64(0), U64(0),
                                                U64(0), U64(0), U16(0),   U16(0), 0};
    CU_ASSERT_EQUAL(msg_decode(MSG_LEDGER_ANSWER, found_0_with_data, sizeof(found_0_with_data),
                               &lim, &got, &err),
                    SOVA_ERR_BAD_VALUE);
    CU_ASSERT_STRING_EQUAL(wire_err_field(&err, field, sizeof(field)), "ledger_answer.found");
    CU_ASSERT_EQUAL(msg_type_family(MSG_RECEIPTS), MSG_FAMILY_OP_SN);
    CU_ASSERT_EQUAL(msg_type_family(MSG_LEDGER_PUT), MSG_FAMILY_SN_SN);
    CU_ASSERT_EQUAL(msg_type_family(MSG_RECEIPT), MSG_FAMILY_PEER);
}

static void test_type_table(void)
{
    CU_ASSERT_STRING_EQUAL(msg_type_name(MSG_FWD_HITS), "fwd_hits");
    CU_ASSERT_PTR_NULL(msg_type_name(0));
    CU_ASSERT_EQUAL(msg_type_family(MSG_PING), MSG_FAMILY_CORE);
    CU_ASSERT_EQUAL(msg_type_family(MSG_CONNECT_REQUEST), MSG_FAMILY_OP_SN);
    CU_ASSERT_EQUAL(msg_type_family(MSG_RELAY_WINDOW), MSG_FAMILY_RELAY);
    CU_ASSERT_EQUAL(msg_type_family(MSG_SUMMARY), MSG_FAMILY_SN_SN);
    CU_ASSERT_EQUAL(msg_type_family(MSG_DATA), MSG_FAMILY_PEER);
    CU_ASSERT_EQUAL(msg_type_family(0xEE), MSG_FAMILY_NONE);
}

/* ---- fuzz seeds ---------------------------------------------------------------- */

static const char *const family_dirs[] = {
    [MSG_FAMILY_CORE] = "fuzz_msg_core",   [MSG_FAMILY_OP_SN] = "fuzz_msg_op",
    [MSG_FAMILY_RELAY] = "fuzz_msg_relay", [MSG_FAMILY_SN_SN] = "fuzz_msg_sn",
    [MSG_FAMILY_PEER] = "fuzz_msg_peer",
};

static void write_seed(const char *root, const char *dir, const char *name,
                       const struct wire_buf *bytes)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", root, dir);
    CU_ASSERT(mkdir(path, 0755) == 0 || errno == EEXIST);
    snprintf(path, sizeof(path), "%s/%s/%s", root, dir, name);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(bytes->data, 1, bytes->len, f), bytes->len);
    CU_ASSERT_EQUAL(fclose(f), 0);
}

/* fuzz_frame seeds are whole frames; fuzz_msg_<family> seeds are the type
 * byte followed by the payload, once as is and once with an unknown TLV. */
static void test_write_fuzz_seeds(void)
{
    const char *root = getenv("SOVA_WRITE_SEEDS");
    if (!root || !*root)
        return;
    struct wire_buf stream; /* every sample, back to back, as a link reads them */
    wire_buf_init(&stream);
    for (size_t i = 0; i < N_GOLDEN; i++) {
        const struct golden *g = &goldens[i];
        const char *dir = family_dirs[msg_type_family(g->type)];
        char name[64];
        struct msg m;
        struct wire_buf bytes;
        wire_buf_init(&bytes);
        build(&m, g->type);
        CU_ASSERT_EQUAL_FATAL(msg_encode(&m, &lim, &bytes, NULL), 0);
        write_seed(root, "fuzz_frame", msg_type_name(g->type), &bytes);
        CU_ASSERT_EQUAL(wire_buf_append(&stream, bytes.data, bytes.len), 0);
        wire_buf_truncate(&bytes, 0);
        CU_ASSERT_EQUAL(wire_buf_append(&bytes, &g->type, 1), 0);
        CU_ASSERT_EQUAL(wire_buf_append(&bytes, g->payload, g->len), 0);
        write_seed(root, dir, msg_type_name(g->type), &bytes);
        append_tlv(&bytes, 0x7777, "future");
        snprintf(name, sizeof(name), "%s-ext", msg_type_name(g->type));
        write_seed(root, dir, name, &bytes);
        wire_buf_free(&bytes);
    }
    write_seed(root, "fuzz_frame", "stream-of-all", &stream);
    wire_buf_free(&stream);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("msg", suite_init, NULL);
    if (!s)
        return -1;
    CU_add_test(s, "every type has a golden sample", test_every_type_has_a_golden_sample);
    CU_add_test(s, "encode matches PROTOCOL.md byte for byte", test_encode_matches_protocol_doc);
    CU_add_test(s, "round trip of every type", test_round_trip_every_type);
    CU_add_test(s, "decoded fields, deepest nesting", test_decoded_fields_deep);
    CU_add_test(s, "unknown extensions are skipped", test_unknown_extensions_are_skipped);
    CU_add_test(s, "unknown extension between known ones",
                test_unknown_extension_between_known_ones);
    CU_add_test(s, "every prefix is TRUNCATED", test_every_prefix_is_truncated);
    CU_add_test(s, "encoder validates its input", test_encoder_validates_input);
    CU_add_test(s, "msg_clear is safe", test_clear_is_safe);
    CU_add_test(s, "decode a stream of frames", test_decode_frame_stream);
    CU_add_test(s, "version negotiation", test_version_negotiation);
    CU_add_test(s, "chunk sizes and manifest sizes", test_chunk_sizes);
    CU_add_test(s, "error codes", test_error_codes);
    CU_add_test(s, "type table", test_type_table);
    CU_add_test(s, "credit messages", test_credit_messages);
    CU_add_test(s, "write fuzz seeds (SOVA_WRITE_SEEDS)", test_write_fuzz_seeds);
    return CU_get_error() == CUE_SUCCESS ? 0 : -1;
}
