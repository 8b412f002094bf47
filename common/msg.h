/* msg.h - every Sova message, defined once: type numbers, structs, and the
 * pure encoder/decoder. docs/PROTOCOL.md describes each one byte by byte; the
 * schemas in msg_core.c, msg_op.c, msg_relay.c, msg_sn.c and msg_peer.c are
 * the code it describes.
 *
 * Ownership. A struct msg filled by msg_decode() BORROWS its strings and byte
 * blobs (struct wire_str, struct wire_bytes) from the payload buffer that was
 * decoded: keep that buffer alive and unchanged while you use the message.
 * Arrays (addresses, hits, records ...) are allocated by msg_decode() and
 * freed by msg_clear(). A message you build yourself to encode points at your
 * own storage; leave `owned` false and msg_clear() will not free it.
 *
 * All functions are pure: no global state, no I/O, never blocking.
 */
#ifndef SOVA_MSG_H
#define SOVA_MSG_H

#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Protocol versions this code speaks; HELLO negotiates the highest common. */
/* Version 2: file IDs bound to content and size (common/fileid.h), chunk
 * sizes chosen by the downloader, receipts bound to the file's size.
 * Version 1 nodes are refused (ERROR VERSION): their IDs mean another thing. */
#define MSG_PROTO_VERSION_MIN 2
#define MSG_PROTO_VERSION_MAX 2

/* Message type numbers: the byte after the frame length. The high nibble
 * names the family. Never renumber; only append. */
enum msg_type {
    /* core, every link */
    MSG_HELLO = 0x01,
    MSG_ERROR = 0x02,
    MSG_PING = 0x03,
    MSG_PONG = 0x04,
    /* ordinary peer <-> its supernode */
    MSG_REGISTER = 0x10,
    MSG_REGISTERED = 0x11,
    MSG_SN_LIST = 0x12,
    MSG_PUBLISH = 0x13,
    MSG_PUBLISH_ACK = 0x14,
    MSG_SEARCH = 0x15,
    MSG_SEARCH_RESULT = 0x16,
    MSG_LOCATE = 0x17,
    MSG_LOCATE_RESULT = 0x18,
    MSG_DIALBACK = 0x19,
    MSG_DIALBACK_RESULT = 0x1A,
    MSG_CONNECT = 0x1B,
    MSG_CONNECT_REQUEST = 0x1C,
    MSG_REPORT = 0x1D,
    MSG_RECEIPTS = 0x1E, /* credit: a source hands its downloaders' receipts to its SN */
    MSG_CREDIT = 0x1F,   /* credit: query (peer -> SN) and answer (SN -> peer) */
    /* hole punching (docs/NAT.md): notes between two peers through their SNs */
    MSG_PUNCH = 0x20,      /* peer -> SN: a note for another peer */
    MSG_PUNCH_NOTE = 0x21, /* SN -> peer: a note from another peer, with its address */
    /* relay circuits: peer <-> supernode and supernode <-> supernode */
    MSG_RELAY_OPEN = 0x30,
    MSG_RELAY_ACCEPT = 0x31,
    MSG_RELAY_OPENED = 0x32,
    MSG_RELAY_DATA = 0x33,
    MSG_RELAY_WINDOW = 0x34,
    MSG_RELAY_CLOSE = 0x35,
    /* supernode <-> supernode */
    MSG_GOSSIP = 0x40,
    MSG_SUMMARY = 0x41,
    MSG_FWD_SEARCH = 0x42,
    MSG_FWD_HITS = 0x43,
    MSG_FWD_LOCATE = 0x44,
    MSG_FWD_LOCATE_RESULT = 0x45,
    MSG_FWD_CONNECT = 0x46,
    MSG_LEDGER_QUERY = 0x47,  /* credit ledger: read records from a holder */
    MSG_LEDGER_ANSWER = 0x48, /* ... its answer */
    MSG_LEDGER_UPDATE = 0x49, /* ... verified receipts for the holders to apply */
    MSG_LEDGER_UPTIME = 0x4A, /* ... session time the sender observed */
    MSG_LEDGER_PUT = 0x4B,    /* ... a whole record (replication, rebuild) */
    MSG_FWD_PUNCH = 0x4C,     /* a PUNCH_NOTE for a peer attached to the receiver */
    /* ordinary peer <-> ordinary peer */
    MSG_MANIFEST_GET = 0x50,
    MSG_MANIFEST = 0x51,
    MSG_GET = 0x52,
    MSG_DATA = 0x53,
    MSG_RECEIPT = 0x54, /* downloader -> source: signed proof of bytes received */
};

enum msg_family {
    MSG_FAMILY_NONE = 0, /* not a known type */
    MSG_FAMILY_CORE,
    MSG_FAMILY_OP_SN,
    MSG_FAMILY_RELAY,
    MSG_FAMILY_SN_SN,
    MSG_FAMILY_PEER,
};

/* ERROR.code and RELAY_CLOSE.reason values. 10..16 are the wire decoding
 * errors of enum sova_err negated; 100 and up are daemon decisions. */
enum msg_error_code {
    MSG_ERR_NONE = 0, /* RELAY_CLOSE: normal close; never in ERROR */
    MSG_ERR_INTERNAL = 1,
    MSG_ERR_TRUNCATED = 10,
    MSG_ERR_TOO_LARGE = 11,
    MSG_ERR_BAD_LENGTH = 12,
    MSG_ERR_UNKNOWN_TYPE = 13,
    MSG_ERR_TRAILING = 14,
    MSG_ERR_BAD_VALUE = 15,
    MSG_ERR_VERSION = 16,
    MSG_ERR_PROTOCOL = 100,      /* message not allowed in this state or on this link */
    MSG_ERR_LIMIT_REACHED = 101, /* a quota (records, circuits, peers) is used up */
    MSG_ERR_RATE_LIMITED = 102,  /* too fast; see the retry_after extension */
    MSG_ERR_NOT_ATTACHED = 103,  /* REGISTER first */
    MSG_ERR_NOT_FOUND = 104,     /* no such peer, file, chunk or circuit */
    MSG_ERR_UNAUTHORIZED = 105,  /* the TLS identity may not do this */
    MSG_ERR_OVERLOADED = 106,    /* try another supernode (redirect extension) */
    MSG_ERR_REDIRECT = 107,      /* go to the addresses in the redirect extension */
    MSG_ERR_SHUTTING_DOWN = 108, /* the node is going away */
    MSG_ERR_RELAY_REFUSED = 109, /* relaying is off or the target declined */
    MSG_ERR_TIMEOUT = 110,       /* the remote side did not answer in time */
    MSG_ERR_UNSAFE_NAME = 111,   /* a name with control or bidi characters, or not UTF-8 */
};

/* HELLO.capabilities bits; unknown bits are ignored. */
#define MSG_CAP_RELAY    (1u << 0) /* offers relay circuits */
#define MSG_CAP_DIALBACK (1u << 1) /* runs dial-back probes */
#define MSG_CAP_CONNECT  (1u << 2) /* forwards connection reversal */
#define MSG_CAP_IPV6     (1u << 3) /* has IPv6 connectivity */
#define MSG_CAP_PUNCH    (1u << 4) /* SN: forwards PUNCH notes; peer: takes PUNCH_NOTEs */

enum msg_role { MSG_ROLE_SUPERNODE = 1, MSG_ROLE_PEER = 2 };

enum msg_reachability {
    MSG_REACH_UNKNOWN = 0,
    MSG_REACH_PUBLIC = 1,      /* accepts connections on its own address */
    MSG_REACH_MAPPED = 2,      /* accepts them through a UPnP mapping */
    MSG_REACH_UNREACHABLE = 3, /* only reversal or relay */
};

enum msg_session { MSG_SESSION_PRIMARY = 1, MSG_SESSION_BACKUP = 2 };
enum msg_publish_action { MSG_PUBLISH_ADD = 1, MSG_PUBLISH_REMOVE = 2 };
enum msg_sn_state { MSG_SN_ALIVE = 1, MSG_SN_SUSPECT = 2, MSG_SN_DEAD = 3, MSG_SN_LEFT = 4 };
enum msg_gossip_kind { MSG_GOSSIP_PING = 1, MSG_GOSSIP_ACK = 2, MSG_GOSSIP_PING_REQ = 3 };

enum msg_dialback_outcome {
    MSG_DIALBACK_OK = 1,          /* connected and the TLS identity matched */
    MSG_DIALBACK_REFUSED = 2,     /* connection refused */
    MSG_DIALBACK_TIMEOUT = 3,     /* no answer */
    MSG_DIALBACK_TLS_FAILED = 4,  /* handshake failed */
    MSG_DIALBACK_ID_MISMATCH = 5, /* someone else answered */
    MSG_DIALBACK_NOT_TRIED = 6,   /* refused by policy (e.g. private address) */
};

/* SEARCH_RESULT/FWD_HITS flags; other bits are ignored. */
#define MSG_RESULT_FINAL 0x01 /* no more results for this query id */

/* Extension TLV tags known to this version (per message type). */
#define MSG_EXT_HELLO_CONNECT_TOKEN 0x0001 /* HELLO: token of a CONNECT_REQUEST */
#define MSG_EXT_ERROR_RETRY_AFTER   0x0001 /* ERROR: u32 milliseconds */
#define MSG_EXT_ERROR_REDIRECT      0x0002 /* ERROR: address list */
#define MSG_EXT_SEARCH_SIZE_RANGE   0x0001 /* SEARCH, FWD_SEARCH: u64 min, u64 max */
#define MSG_EXT_SEARCH_HASH         0x0002 /* SEARCH, FWD_SEARCH: file ID */

/* Chunk sizes a MANIFEST_GET or GET may ask for (and a MANIFEST carry):
 * the powers of two from 64 KiB to 16 MiB, heights 2..10 of the file ID's
 * tree. Every source serves all of them; the downloader chooses. */
#define MSG_CHUNK_SIZE_MIN (64u * 1024)
#define MSG_CHUNK_SIZE_MAX (16u * 1024 * 1024)

/* Credit (docs/CREDITS.md). Receipts carry the downloader's raw Ed25519
 * public key and signature; counts fixed by the protocol. */
#define MSG_RECEIPT_KEY_LEN 32 /* raw Ed25519 public key */
#define MSG_RECEIPT_SIG_LEN 64 /* Ed25519 signature */
/* A receipt's encoding: three IDs, file_size, root, bytes, seq, time, key, signature. */
#define MSG_RECEIPT_WIRE_SIZE                                                                      \
    (3 * WIRE_ID_LEN + 8 + WIRE_HASH_LEN + 3 * 8 + MSG_RECEIPT_KEY_LEN + MSG_RECEIPT_SIG_LEN)
#define MSG_MAX_RECEIPTS        64  /* receipts per RECEIPTS, items per LEDGER_UPDATE */
#define MSG_MAX_CREDIT_IDS      32  /* peers per query, records per answer, reports per UPTIME */
#define MSG_MAX_LEDGER_ENTRIES  128 /* entries per direction in one LEDGER_PUT */
#define MSG_MAX_LEDGER_SESSIONS 8   /* sessions in one LEDGER_PUT */
enum msg_credit_kind { MSG_CREDIT_QUERY = 1, MSG_CREDIT_ANSWER = 2 };
/* LEDGER_UPDATE item sides: which records the receiver applies it to. */
#define MSG_LEDGER_SIDE_SOURCE     0x01 /* the uploader's record: uploaded, credit */
#define MSG_LEDGER_SIDE_DOWNLOADER 0x02 /* the downloader's record: downloaded */

/* Relay flow control: RELAY_DATA bytes each side of a hop may send on a new
 * circuit before it has received any RELAY_WINDOW credit. */
#define MSG_RELAY_INITIAL_CREDIT (256 * 1024)

/* ---- core ------------------------------------------------------------------- */
struct msg_hello {
    uint16_t version_min, version_max; /* 1 <= min <= max */
    uint32_t capabilities;             /* MSG_CAP_* */
    uint8_t role;                      /* enum msg_role */
    struct wire_str agent;             /* "sova-peer/0.1.0"; may be empty */
    /* Extension MSG_EXT_HELLO_CONNECT_TOKEN: this connection answers the
     * CONNECT_REQUEST that carried this token. */
    bool has_connect_token;
    uint8_t connect_token[WIRE_TOKEN_LEN];
};

struct msg_error {
    uint16_t code;          /* enum msg_error_code, nonzero; unknown codes are kept */
    uint8_t offending_type; /* type of the message that caused it, 0 if none */
    struct wire_str text;   /* short English text for logs */
    bool has_retry_after;   /* extension MSG_EXT_ERROR_RETRY_AFTER */
    uint32_t retry_after_ms;
    bool has_redirect; /* extension MSG_EXT_ERROR_REDIRECT */
    struct wire_addr *redirect;
    size_t n_redirect;
};

struct msg_ping { /* PING and PONG: a PONG echoes the nonce */
    uint64_t nonce;
};

/* ---- ordinary peer <-> supernode -------------------------------------------- */
struct msg_register {
    uint8_t session;         /* enum msg_session */
    uint8_t reachability;    /* enum msg_reachability: what the peer claims */
    struct wire_addr *addrs; /* where it listens; may be empty */
    size_t n_addrs;
};

struct msg_registered {
    struct wire_addr observed; /* the peer's address as the supernode sees it */
    uint16_t keepalive_s;      /* send a PING at least this often */
    uint16_t peer_timeout_s;   /* silence after which the SN drops the peer */
};

/* One supernode as SN_LIST and GOSSIP describe it. */
struct msg_sn_info {
    uint8_t sn_id[WIRE_ID_LEN];
    struct wire_addr *addrs;
    size_t n_addrs;
    uint64_t incarnation; /* SWIM: only the node itself raises it */
    uint8_t state;        /* enum msg_sn_state */
    uint32_t attached_peers;
    uint32_t capacity;   /* peers it accepts at most */
    uint32_t relay_kbps; /* relay traffic now, kilobytes per second */
};

struct msg_sn_list {
    struct msg_sn_info *entries;
    size_t n_entries;
};

struct msg_publish_record {
    uint8_t action;              /* enum msg_publish_action */
    uint8_t hash[WIRE_HASH_LEN]; /* the file ID (fileid.h) */
    uint64_t size;               /* what the ID commits to (a downloader checks it) */
    uint32_t chunk_size;         /* >= 1: the chunk size of the publisher's kept layer */
    struct wire_str name;        /* one path component, nonempty */
};

struct msg_publish {
    struct msg_publish_record *records;
    size_t n_records;
};

struct msg_publish_ack {
    uint16_t accepted, rejected;
    uint16_t first_error;       /* enum msg_error_code of the first rejection, 0 if none */
    uint16_t first_error_index; /* its index in the PUBLISH */
};

struct msg_search { /* also the body of FWD_SEARCH */
    uint64_t query_id;
    uint16_t max_results;
    struct wire_str *keywords; /* 0..max_keywords, each nonempty; 0 only with has_hash */
    size_t n_keywords;
    bool has_size_range; /* extension MSG_EXT_SEARCH_SIZE_RANGE */
    uint64_t min_size, max_size;
    bool has_hash;               /* extension MSG_EXT_SEARCH_HASH: only this file ID (e.g. */
    uint8_t hash[WIRE_HASH_LEN]; /* more sources for a download) */
};

struct msg_source {
    uint8_t peer_id[WIRE_ID_LEN];
    uint8_t reachability; /* enum msg_reachability */
    struct wire_addr *addrs;
    size_t n_addrs;
};

struct msg_hit {
    uint8_t hash[WIRE_HASH_LEN]; /* the file ID */
    uint64_t size;               /* as published: a hint until a manifest proves it */
    struct wire_str name;
    struct msg_source *sources;
    size_t n_sources;
};

struct msg_search_result { /* SEARCH_RESULT and FWD_HITS */
    uint64_t query_id;
    uint8_t flags; /* MSG_RESULT_* */
    struct msg_hit *hits;
    size_t n_hits;
};

struct msg_locate {
    uint8_t peer_id[WIRE_ID_LEN];
};

struct msg_locate_result {
    uint8_t peer_id[WIRE_ID_LEN];
    uint8_t found;        /* 0 or 1; when 0 the rest is empty/zero */
    uint8_t reachability; /* enum msg_reachability */
    struct wire_addr *addrs;
    size_t n_addrs;
    uint8_t sn_id[WIRE_ID_LEN]; /* the supernode the peer is attached to */
};

struct msg_dialback {
    uint64_t nonce;          /* echoed in DIALBACK_RESULT */
    struct wire_addr *addrs; /* 1..16 addresses to try */
    size_t n_addrs;
};

struct msg_dialback_probe {
    struct wire_addr addr;
    uint8_t outcome; /* enum msg_dialback_outcome */
};

struct msg_dialback_result {
    uint64_t nonce;
    struct msg_dialback_probe *probes;
    size_t n_probes;
};

/* CONNECT (peer -> SN: "have peer_id connect to me") and CONNECT_REQUEST
 * (SN -> that peer: "peer_id wants you to connect to it"). */
struct msg_connect {
    uint8_t peer_id[WIRE_ID_LEN]; /* CONNECT: the target; CONNECT_REQUEST: the requester */
    uint8_t token[WIRE_TOKEN_LEN];
    struct wire_addr *addrs; /* the requester's addresses, 1..16 */
    size_t n_addrs;
};

/* Hole punching (a TCP simultaneous open, docs/NAT.md): the steps of the
 * notes two peers exchange through their supernodes. */
enum msg_punch_step {
    MSG_PUNCH_OFFER = 1, /* downloader: punch with me; I dial from port */
    MSG_PUNCH_READY = 2, /* source: yes; I dial from port */
    MSG_PUNCH_SYNC = 3,  /* downloader: dial now (I dial in half a round trip) */
    MSG_PUNCH_NO = 4,    /* source (or a supernode for it): not possible */
};

/* PUNCH (peer -> SN): a note for peer_id. */
struct msg_punch {
    uint8_t peer_id[WIRE_ID_LEN];  /* the peer the note is for */
    uint8_t token[WIRE_TOKEN_LEN]; /* the downloader's: names the attempt */
    uint8_t step;                  /* enum msg_punch_step */
    uint16_t port;                 /* OFFER, READY: the local port the sender dials from; else 0 */
};

/* PUNCH_NOTE (SN -> peer): the note, from peer_id, with the address the
 * sender's supernode sees it at (its IP, the port of the note; for SYNC
 * and NO the port its link comes from). */
struct msg_punch_note {
    uint8_t peer_id[WIRE_ID_LEN]; /* the sender */
    uint8_t token[WIRE_TOKEN_LEN];
    uint8_t step;
    struct wire_addr addr;
};

/* REPORT: a source lied or refused (OP -> SN). */
enum msg_report_reason {
    MSG_REPORT_BAD_DATA = 1, /* its chunks failed verification; banned for the download */
    MSG_REPORT_REFUSED = 2,  /* it does not serve a file it is listed with */
};

struct msg_report {
    uint8_t peer_id[WIRE_ID_LEN]; /* the source reported */
    uint8_t hash[WIRE_HASH_LEN];  /* the file ID */
    uint8_t reason;               /* enum msg_report_reason */
};

/* A downloader's signed statement: "I, downloader_id, received `bytes`
 * bytes of the file file_id from source_id", numbered by seq (strictly
 * increasing per downloader and source) and dated time_s (unix seconds).
 * file_size and root are what the ID commits to (fileid.h): anyone can
 * check that fileid_check(file_id, file_size, root) holds and that bytes
 * <= file_size (receipt_check_size()). common/receipt.h signs and
 * verifies it. RECEIPT is one; RECEIPTS and LEDGER_UPDATE carry several. */
struct msg_receipt {
    uint8_t downloader_id[WIRE_ID_LEN];
    uint8_t source_id[WIRE_ID_LEN];
    uint8_t file_id[WIRE_HASH_LEN];
    uint64_t file_size;
    uint8_t root[WIRE_HASH_LEN];
    uint64_t bytes;  /* >= 1 */
    uint64_t seq;    /* >= 1 */
    uint64_t time_s; /* when it was signed */
    uint8_t pubkey[MSG_RECEIPT_KEY_LEN];
    uint8_t signature[MSG_RECEIPT_SIG_LEN];
};

struct msg_receipts {
    struct msg_receipt *receipts; /* 1..MSG_MAX_RECEIPTS */
    size_t n_receipts;
};

/* What the ledger says about one peer (CREDIT answers): credit is the
 * peer's credit as seen by the asker (docs/CREDITS.md). */
struct msg_credit_record {
    uint8_t peer_id[WIRE_ID_LEN];
    uint8_t found; /* 0: no record (all numbers 0) */
    uint64_t credit;
    uint64_t uploaded, downloaded; /* bytes, as receipts prove */
    uint64_t uptime_s;             /* seconds online, as supernodes observed */
};

/* CREDIT (kind says query or answer) and LEDGER_QUERY (ids). */
struct msg_credit {
    uint8_t kind; /* CREDIT only: enum msg_credit_kind */
    uint64_t query_id;
    uint8_t (*peer_ids)[WIRE_ID_LEN]; /* query: 1..MSG_MAX_CREDIT_IDS */
    size_t n_peer_ids;
    struct msg_credit_record *records; /* answer: 0..MSG_MAX_CREDIT_IDS */
    size_t n_records;
};

/* ---- relay ------------------------------------------------------------------ */
/* Circuit IDs are per link, chosen by the side that sends RELAY_OPEN. */
struct msg_relay_open {
    uint32_t circuit_id;
    uint8_t target_id[WIRE_ID_LEN]; /* the peer at the far end */
    uint8_t origin_id[WIRE_ID_LEN]; /* the requesting peer (checked against TLS by its SN) */
    uint8_t token[WIRE_TOKEN_LEN];
};

struct msg_relay_circuit { /* RELAY_ACCEPT and RELAY_OPENED */
    uint32_t circuit_id;
};

struct msg_relay_data {
    uint32_t circuit_id;
    struct wire_bytes data; /* 1..max_relay_data bytes of the inner TLS stream */
};

struct msg_relay_window {
    uint32_t circuit_id;
    uint32_t credit; /* >= 1 more bytes the receiver may be sent */
};

struct msg_relay_close {
    uint32_t circuit_id;
    uint16_t reason; /* enum msg_error_code; MSG_ERR_NONE for a normal close */
};

/* ---- supernode <-> supernode ------------------------------------------------- */
struct msg_gossip {
    uint8_t kind; /* enum msg_gossip_kind */
    uint32_t seq;
    uint8_t target_id[WIRE_ID_LEN]; /* PING_REQ and its ACK: the probed SN; else zero */
    struct msg_sn_info *updates;    /* piggy-backed membership updates */
    size_t n_updates;
};

struct msg_summary {
    uint8_t sn_id[WIRE_ID_LEN]; /* whose attached files it summarises */
    uint64_t version;           /* newer replaces older */
    uint8_t hash_count;         /* k, 1..32 */
    uint32_t bit_count;         /* m, >= 1; bits.len == (m + 7) / 8 */
    struct wire_bytes bits;     /* bit i is byte i / 8, mask 0x80 >> (i % 8) */
};

struct msg_fwd_search {
    uint8_t origin_sn[WIRE_ID_LEN];
    uint8_t ttl;
    uint32_t deadline_ms; /* answer within this many milliseconds */
    struct msg_search search;
};

struct msg_fwd_locate {
    uint64_t query_id;
    uint8_t peer_id[WIRE_ID_LEN];
};

struct msg_fwd_locate_result {
    uint64_t query_id;
    struct msg_locate_result result;
};

/* A CONNECT for a peer attached to the receiving supernode: deliver
 * `request` to target_id as a CONNECT_REQUEST. */
struct msg_fwd_connect {
    uint8_t target_id[WIRE_ID_LEN];
    struct msg_connect request; /* peer_id: the requester */
};

/* A PUNCH_NOTE for target_id, attached to the receiving supernode. */
struct msg_fwd_punch {
    uint8_t target_id[WIRE_ID_LEN];
    struct msg_punch_note note;
};

struct msg_ledger_item {
    struct msg_receipt receipt; /* verified by the supernode that took it in */
    uint8_t sides;              /* MSG_LEDGER_SIDE_*, at least one */
};

struct msg_ledger_update {
    struct msg_ledger_item *items; /* 1..MSG_MAX_RECEIPTS */
    size_t n_items;
};

struct msg_uptime_report {
    uint8_t peer_id[WIRE_ID_LEN];
    uint64_t start_ms; /* the session's start, unix milliseconds (its key) */
    uint64_t seconds;  /* observed so far; grows */
};

struct msg_ledger_uptime {
    struct msg_uptime_report *reports; /* 1..MSG_MAX_CREDIT_IDS */
    size_t n_reports;
};

/* One counterparty of a ledger record: for an upload entry the downloader,
 * for a download entry the source. */
struct msg_ledger_entry {
    uint8_t peer_id[WIRE_ID_LEN];
    uint64_t last_seq, last_time; /* the newest receipt counted */
    uint64_t bytes;               /* counted so far */
};

struct msg_ledger_session {
    uint8_t sn_id[WIRE_ID_LEN]; /* the observer */
    uint64_t start_ms, seconds;
};

struct msg_ledger_put {
    uint8_t peer_id[WIRE_ID_LEN];
    uint64_t base_uploaded, base_downloaded, base_uptime_s; /* folded entries */
    uint64_t horizon_s;          /* receipts at or before this time are folded */
    uint64_t session_horizon_ms; /* sessions starting at or before this are folded */
    struct msg_ledger_entry *uploads, *downloads; /* each 0..MSG_MAX_LEDGER_ENTRIES */
    size_t n_uploads, n_downloads;
    struct msg_ledger_session *sessions; /* 0..MSG_MAX_LEDGER_SESSIONS */
    size_t n_sessions;
};

/* LEDGER_ANSWER: one whole record a holder keeps, for a LEDGER_QUERY (one
 * answer per asked ID, in the order asked). */
struct msg_ledger_answer {
    uint64_t query_id;
    uint8_t found;                /* 0: the holder has no record (record.peer_id only) */
    struct msg_ledger_put record; /* found 0: every number 0, every list empty */
};

/* ---- peer <-> peer ---------------------------------------------------------- */
struct msg_chunk_range { /* MANIFEST_GET and GET */
    uint8_t file_id[WIRE_HASH_LEN];
    uint32_t chunk_size; /* a power of two, MSG_CHUNK_SIZE_MIN..MAX: the downloader's choice */
    uint32_t first_chunk;
    uint32_t count; /* >= 1 */
};

/* One page of the layer of file_id's tree at chunk_size (fileid.h), with
 * the size and root the ID commits to. */
struct msg_manifest {
    uint8_t file_id[WIRE_HASH_LEN];
    uint64_t file_size; /* <= FILEID_MAX_SIZE */
    uint8_t root[WIRE_HASH_LEN];
    uint32_t chunk_size;  /* as in MANIFEST_GET; ceil(file_size / chunk_size) < 2^32 */
    uint32_t first_chunk; /* index of chunk_hashes[0] */
    uint8_t (*chunk_hashes)[WIRE_HASH_LEN];
    size_t n_chunk_hashes; /* first_chunk + n <= ceil(file_size / chunk_size) */
};

struct msg_data {
    uint8_t file_id[WIRE_HASH_LEN];
    uint32_t chunk_index;
    uint32_t offset;        /* within the chunk */
    struct wire_bytes data; /* 1..max_data bytes */
};

/* ---- the tagged union ----------------------------------------------------- */
struct msg {
    uint8_t type; /* enum msg_type: selects the member of u */
    bool owned;   /* set by msg_decode: msg_clear frees the arrays */
    union {
        struct msg_hello hello;
        struct msg_error error;
        struct msg_ping ping, pong;
        struct msg_register reg;
        struct msg_registered registered;
        struct msg_sn_list sn_list;
        struct msg_publish publish;
        struct msg_publish_ack publish_ack;
        struct msg_search search;
        struct msg_search_result search_result, fwd_hits;
        struct msg_locate locate;
        struct msg_locate_result locate_result;
        struct msg_dialback dialback;
        struct msg_dialback_result dialback_result;
        struct msg_connect connect, connect_request;
        struct msg_punch punch;
        struct msg_punch_note punch_note;
        struct msg_fwd_punch fwd_punch;
        struct msg_report report;
        struct msg_receipts receipts;
        struct msg_credit credit, ledger_query;
        struct msg_ledger_answer ledger_answer;
        struct msg_relay_open relay_open;
        struct msg_relay_circuit relay_accept, relay_opened;
        struct msg_relay_data relay_data;
        struct msg_relay_window relay_window;
        struct msg_relay_close relay_close;
        struct msg_gossip gossip;
        struct msg_summary summary;
        struct msg_fwd_search fwd_search;
        struct msg_fwd_locate fwd_locate;
        struct msg_fwd_locate_result fwd_locate_result;
        struct msg_fwd_connect fwd_connect;
        struct msg_ledger_update ledger_update;
        struct msg_ledger_uptime ledger_uptime;
        struct msg_ledger_put ledger_put;
        struct msg_chunk_range manifest_get, get;
        struct msg_manifest manifest;
        struct msg_data data;
        struct msg_receipt receipt;
    } u;
};

/* ---- API ---------------------------------------------------------------------- */

/* "search_result"; NULL for an unknown type. */
const char *msg_type_name(uint8_t type);
/* MSG_FAMILY_NONE for an unknown type. */
enum msg_family msg_type_family(uint8_t type);

/* Decode one payload (the bytes after the type byte) into *out, which is
 * overwritten (msg_clear it first if it holds a decoded message). Returns 0, or a negative sova_err
 * with *err (may be NULL) naming the field; SOVA_ERR_UNKNOWN_TYPE for a type this version does not
 * know. On error *out has been cleared: nothing to free, nothing leaks.
 * On success *out borrows from payload (see the top of this file). */
int msg_decode(uint8_t type, const uint8_t *payload, size_t len, const struct wire_limits *lim,
               struct msg *out, struct wire_err *err);

/* wire_frame_peek + msg_decode on buf[0..len). Returns 0 with *consumed set
 * to the frame's size, >0 (bytes needed, as wire_frame_peek) with *out
 * untouched, or a negative error. */
int msg_decode_frame(const uint8_t *buf, size_t len, const struct wire_limits *lim, struct msg *out,
                     size_t *consumed, struct wire_err *err);

/* Append m as one whole frame to out. Checks m against lim as a decoder
 * would (SOVA_ERR_TOO_LARGE, SOVA_ERR_BAD_VALUE ..., with *err naming the
 * field) and never produces a frame larger than lim->max_frame. On error out
 * is as it was. Reads m only. */
int msg_encode(const struct msg *m, const struct wire_limits *lim, struct wire_buf *out,
               struct wire_err *err);

/* Free what msg_decode allocated and zero *m. Safe on a zeroed struct, on a
 * failed decode, twice, and on a message you built (nothing is freed then). */
void msg_clear(struct msg *m);

/* Same type and same encoding under lim: every field the wire carries is
 * equal. False when either does not encode. For tests and fuzzers. */
bool msg_equal(const struct msg *a, const struct msg *b, const struct wire_limits *lim);

/* HELLO version negotiation: the highest version in both [local_min,
 * local_max] and the remote's range, or SOVA_ERR_VERSION (answer with ERROR
 * MSG_ERR_VERSION and close). */
int msg_hello_negotiate(const struct msg_hello *remote, uint16_t local_min, uint16_t local_max,
                        uint16_t *version);

/* The ERROR code for a local sova_err (e.g. a decode failure): decoding
 * errors map to 10..16, SOVA_ERR_NOT_FOUND and SOVA_ERR_TIMEOUT to their
 * codes, anything else to MSG_ERR_INTERNAL. */
uint16_t msg_error_code_from_err(int sova_err);
/* The circuit a relay-family message (RELAY_OPEN .. RELAY_CLOSE) is about;
 * 0 for any other message. */
uint32_t msg_relay_circuit_id(const struct msg *m);
/* "ok", "refused", "timeout", "tls-failed", "id-mismatch", "not-tried";
 * "?" for an unknown outcome. */
const char *msg_dialback_outcome_str(uint8_t outcome);

/* "bad field value", "rate limited" ...; "unknown error code" otherwise. */
const char *msg_error_code_str(uint16_t code);

/* Fill *m as an ERROR frame answering a failed decode: code from err->code,
 * text rendered into textbuf (which m then borrows). */
void msg_error_from_wire_err(struct msg *m, const struct wire_err *err, uint8_t offending_type,
                             char *textbuf, size_t textcap);

#endif
