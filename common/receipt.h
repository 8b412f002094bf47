/* receipt.h - sign and verify the receipts of the credit system
 * (docs/CREDITS.md): a downloader signs, with its identity key, how many
 * bytes of which content it received from which source; anyone can check
 * the receipt without having seen the downloader's TLS session, because it
 * carries the downloader's raw Ed25519 public key, and the node ID it claims
 * must be SHA-256 of that key's SubjectPublicKeyInfo (docs/IDENTITY.md).
 *
 * What is signed is a canonical byte string (receipt_tbs()): the ASCII
 * domain-separation prefix "sova receipt v2", a zero byte, then the fields
 * in wire order: downloader_id, source_id, file_id, file_size (u64
 * big-endian), root, bytes, seq, time (u64 big-endian). OpenSSL does all
 * cryptography (EVP_DigestSign/Verify with a NULL digest, as Ed25519
 * requires).
 *
 * The file's size and root make a receipt's bytes checkable without the
 * file: the ID commits to (size, root) (fileid.h), so receipt_check_size()
 * refuses a receipt whose ID does not make that pair, or whose bytes exceed
 * the size.
 *
 * Pure apart from OpenSSL's own state: no I/O, no clock, never blocking.
 * Replays and freshness are the ledger's business, not this module's.
 */
#ifndef SOVA_RECEIPT_H
#define SOVA_RECEIPT_H

#include "msg.h"

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#define RECEIPT_DOMAIN "sova receipt v2" /* followed by one zero byte */
/* 176 bytes: the domain and its zero byte (16), three IDs, file_size,
 * root, bytes, seq, time. */
#define RECEIPT_TBS_LEN (sizeof(RECEIPT_DOMAIN) + 3 * WIRE_ID_LEN + 8 + WIRE_HASH_LEN + 3 * 8)

/* Why a receipt was turned down; counted under these names. */
enum receipt_verdict {
    RECEIPT_OK = 0,
    RECEIPT_FORGED,      /* the signature does not verify over the fields */
    RECEIPT_WRONG_KEY,   /* the key is not the downloader's (SPKI hash != downloader_id) */
    RECEIPT_MISDIRECTED, /* not about the peer that handed it in, or a peer about itself */
    RECEIPT_STALE,       /* older than the ledger keeps, or dated in the future */
    RECEIPT_REPLAYED,    /* its seq was counted already */
    RECEIPT_BAD_SIZE,    /* its file ID does not commit to its size and root, or bytes > size */
    RECEIPT_VERDICTS
};
/* "ok", "forged", "wrong_key", "misdirected", "stale", "replayed", "bad_size". */
const char *receipt_verdict_name(enum receipt_verdict v);

/* The bytes that are signed; returns RECEIPT_TBS_LEN. */
size_t receipt_tbs(const struct msg_receipt *r, uint8_t out[RECEIPT_TBS_LEN]);

/* Sign r with key (the downloader's Ed25519 identity key): fills r->pubkey
 * and r->signature from the other fields, which the caller set. 0,
 * SOVA_ERR_INVALID (not an Ed25519 key, or not downloader_id's key) or
 * SOVA_ERR_CRYPTO. */
int receipt_sign(struct msg_receipt *r, EVP_PKEY *key);

/* RECEIPT_OK, RECEIPT_WRONG_KEY or RECEIPT_FORGED (a key OpenSSL refuses
 * to load counts as forged). */
enum receipt_verdict receipt_verify(const struct msg_receipt *r);

/* RECEIPT_OK if file_id is the ID of (file_size, root) and 1 <= bytes <=
 * file_size; else RECEIPT_BAD_SIZE. Cheap (one SHA-256): check it before
 * the signature. */
enum receipt_verdict receipt_check_size(const struct msg_receipt *r);

/* The node ID of a raw Ed25519 public key: SHA-256 of its SPKI DER.
 * 0 or SOVA_ERR_CRYPTO. */
int receipt_key_id(const uint8_t pubkey[MSG_RECEIPT_KEY_LEN], uint8_t id[WIRE_ID_LEN]);

#endif
