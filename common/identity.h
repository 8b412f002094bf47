/* identity.h - a node's long-lived key pair and certificate, and node IDs.
 *
 * Node ID = SHA-256 of the DER SubjectPublicKeyInfo of the node's certificate
 * (RFC 5280 SPKI, the bytes `openssl pkey -pubin -outform DER` prints), shown
 * as 52 characters of lowercase RFC 4648 base32 without padding. The ID names
 * the key, not the certificate: renewing a certificate for the same key keeps
 * the ID. docs/IDENTITY.md describes the trust model built on it.
 *
 * Two ways to get an identity:
 *  - identity_load_or_create(): ordinary peers (and any node without a
 *    configured certificate) keep STATE_DIR/node.key + node.crt, a self-signed
 *    Ed25519 certificate made on first start;
 *  - identity_load_files(): supernodes load the key and certificate made by
 *    `deploy/sova-federation issue`.
 * Both refuse a private key that group or others may read or write, or that
 * is not a regular file (SOVA_ERR_KEY_PERMS).
 *
 * Errors: functions return 0 or a negative enum sova_err and, when errbuf is
 * not NULL, write one line for a human into errbuf (errlen bytes, always
 * NUL-terminated), naming the file and the reason. They never exit() and only
 * log (common/log.h) what an operator should see once: a newly created
 * identity, an expired certificate.
 *
 * Blocking: the load/create functions do file I/O (and fsync on create); call
 * them at startup, not on the event loop. Everything else is pure.
 */
#ifndef SOVA_IDENTITY_H
#define SOVA_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "base32.h"

#define NODE_ID_LEN       32                              /* bytes of SHA-256 */
#define NODE_ID_STR_LEN   BASE32_ENCODED_LEN(NODE_ID_LEN) /* 52 characters */
#define NODE_ID_SHORT_LEN 8                               /* characters of the ID shown in logs */

/* File names inside a peer's state directory. */
#define IDENTITY_KEY_FILE  "node.key"
#define IDENTITY_CERT_FILE "node.crt"
/* Largest key or certificate file we read; a PEM chain of a few certs fits. */
#define IDENTITY_FILE_MAX (256L * 1024)

/* Opaque. Owns its key, certificate and chain. */
struct sova_identity;

/* Load STATE_DIR/node.key and node.crt, or make them on first start.
 * Creates state_dir (mode 0700, with missing parents) if needed. The key is
 * written to a temporary file created with mode 0600, fsync'ed and renamed
 * into place, so it is never visible half-written nor with a wider mode; the
 * certificate follows the same way with mode 0644. If node.key exists but
 * node.crt is missing, a new self-signed certificate is made for the existing
 * key (same node ID). If node.crt exists without node.key, fails rather than
 * silently changing the node's ID. On success *out is a new identity the
 * caller frees with identity_free(). Two processes creating the same
 * state_dir at the same moment are not arbitrated here: the daemon holds its
 * lock on state_dir first. An existing state_dir keeps its mode. */
int identity_load_or_create(const char *state_dir, struct sova_identity **out, char *errbuf,
                            size_t errlen);

/* Load a certificate (PEM; the first certificate is the node's own, any
 * further ones are sent as its chain) and its private key (PEM, unencrypted).
 * Checks the key's file mode and that the key matches the certificate. Does
 * not check the chain to the federation root: tls_ctx_new() does, for a
 * supernode context. */
int identity_load_files(const char *cert_path, const char *key_path, struct sova_identity **out,
                        char *errbuf, size_t errlen);

/* NULL is accepted. */
void identity_free(struct sova_identity *id);

/* Accessors. Pointers are borrowed: owned by id and valid until
 * identity_free(id); take a reference (EVP_PKEY_up_ref, X509_up_ref) to keep
 * one longer. */
const uint8_t *identity_id(const struct sova_identity *id);    /* NODE_ID_LEN bytes */
const char *identity_id_str(const struct sova_identity *id);   /* NODE_ID_STR_LEN chars */
const char *identity_short_id(const struct sova_identity *id); /* NODE_ID_SHORT_LEN chars */
EVP_PKEY *identity_key(const struct sova_identity *id);
X509 *identity_cert(const struct sova_identity *id);
STACK_OF(X509) * identity_chain(const struct sova_identity *id); /* may be NULL */

/* Node ID of a certificate: SHA-256 over the DER encoding of its SPKI.
 * Returns 0, SOVA_ERR_INVALID (NULL or no public key) or SOVA_ERR_CRYPTO. */
int node_id_from_x509(X509 *cert, uint8_t out[NODE_ID_LEN]);
/* 52 lowercase base32 characters and a NUL. */
void node_id_format(const uint8_t id[NODE_ID_LEN], char out[NODE_ID_STR_LEN + 1]);
/* Parse exactly NODE_ID_STR_LEN base32 characters (any case) followed by the
 * end of the string. Returns 0, SOVA_ERR_BAD_LENGTH or SOVA_ERR_BAD_VALUE. */
int node_id_parse(const char *s, uint8_t out[NODE_ID_LEN]);

/* Read every PEM certificate of path, in file order, into a new stack that
 * the caller frees with sk_X509_pop_free(certs, X509_free). Fails if the file
 * holds none or a damaged one. Used for node certificates and for the
 * federation root file (tls.c). Blocking file I/O. */
int identity_read_certs(const char *path, STACK_OF(X509) * *out, char *errbuf, size_t errlen);

/* Read the private key at path as identity_load_files() does: a regular
 * file of this user's, mode 0600 or narrower, an unencrypted PEM Ed25519
 * key; *out is the caller's (EVP_PKEY_free). For `--check-config`, which
 * reports the key's problems apart from the certificate's. Blocking file
 * I/O. */
int identity_read_key(const char *path, EVP_PKEY **out, char *errbuf, size_t errlen);

/* Error reporting shared by identity.c and tls.c: write the printf-style
 * message into errbuf (if not NULL); for code == SOVA_ERR_CRYPTO append
 * ": <reason>" from the first entry of this thread's OpenSSL error queue;
 * always clear that queue; return code. Lets callers write
 * `return identity_errorf(...)`. */
int identity_errorf(char *errbuf, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
