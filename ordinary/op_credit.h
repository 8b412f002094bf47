/* op_credit.h - the peer's side of credit (docs/CREDITS.md).
 *
 *  - As a downloader it signs a receipt for every verified chunk
 *    (op_credit_sign): seq is the wall clock in microseconds, raised past
 *    the last one, so it grows across restarts without being stored.
 *  - As a source it checks the receipts its downloaders send (about that
 *    downloader and about us, bytes within the size the file ID commits
 *    to, the key, the signature, a seq above the last one taken from it), keeps the good ones and
 * hands them to its primary supernode in RECEIPTS, at most a second later; while it is not attached
 * they wait (at most OP_CREDIT_QUEUE_MAX, the oldest dropped).
 *  - It reads credit from the supernode (CREDIT): the requesters of our
 *    upload slots (cached OP_CREDIT_CACHE_MS; op_credit_of() answers at
 *    once from the cache and asks in the background, the answer reaching
 *    the server through the credit_known hook), and our own record every
 *    OP_CREDIT_SELF_MS, for `sova-peer status`.
 * Nothing blocks; signing and checking are OpenSSL calls on the loop.
 */
#ifndef SOVA_OP_CREDIT_H
#define SOVA_OP_CREDIT_H

#include "msg.h"

#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdint.h>

#define OP_CREDIT_QUEUE_MAX 4096  /* receipts kept for the supernode */
#define OP_CREDIT_FLUSH_MS  1000  /* receipts go to the supernode this often */
#define OP_CREDIT_CACHE_MS  30000 /* a requester's credit is asked again after this */
#define OP_CREDIT_ASK_MS    2000  /* ... and not more often than this meanwhile */
#define OP_CREDIT_SELF_MS   5000  /* our own record is read this often */
#define OP_CREDIT_CACHE_MAX 1024  /* requesters' credit remembered */
#define OP_CREDIT_SEEN_MAX  1024  /* downloaders whose last seq we remember */

struct op_credit_config {
    struct event_base *base;
    EVP_PKEY *key;          /* our identity key (borrowed) */
    const uint8_t *self_id; /* WIRE_ID_LEN bytes (borrowed) */
    const struct wire_limits *limits;
    /* Send to the primary supernode: 0, or an error when not attached. */
    int (*send)(const struct msg *m, void *arg);
    /* A requester's credit became known (op_server_credit_known). */
    void (*credit_known)(const uint8_t peer_id[WIRE_ID_LEN], uint64_t credit, void *arg);
    void *arg;
};

struct op_credit;

int op_credit_new(const struct op_credit_config *cfg, struct op_credit **out);
void op_credit_free(struct op_credit *c);

/* Downloader: a signed receipt for bytes of the file file_id (whose
 * verified size and root are file_size and root) from source_id. */
int op_credit_sign(struct op_credit *c, const uint8_t source_id[WIRE_ID_LEN],
                   const uint8_t file_id[WIRE_HASH_LEN], uint64_t file_size,
                   const uint8_t root[WIRE_HASH_LEN], uint64_t bytes, struct msg_receipt *out);
/* Source: a RECEIPT from the downloader whose TLS identity is from. */
void op_credit_receipt_in(struct op_credit *c, const uint8_t from[WIRE_ID_LEN],
                          const struct msg_receipt *r);
/* Source: what we know of peer_id's credit now (0 unknown); asks the
 * supernode when the cache is old. */
uint64_t op_credit_of(struct op_credit *c, const uint8_t peer_id[WIRE_ID_LEN]);
/* A CREDIT answer from the supernode. */
void op_credit_message(struct op_credit *c, const struct msg *m);
/* The primary session is (re)registered: hand in what waits, read our record. */
void op_credit_attached(struct op_credit *c);

/* `sova-peer status`: {"credit", "uploaded", "downloaded", "uptime_s",
 * "known", "receipts": {...}} (new reference). */
json_t *op_credit_status_json(const struct op_credit *c);

#endif
