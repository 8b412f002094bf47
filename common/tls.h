/* tls.h - TLS 1.3 contexts and the three verification policies of Sova.
 *
 * Every link is TLS 1.3 with certificates on both sides (the server requests
 * and requires a client certificate). Who is trusted (docs/IDENTITY.md):
 *
 *  (a) supernode <-> supernode: each side's certificate must chain to the
 *      federation root. A supernode dialing a supernode uses
 *      TLS_EXPECT_SUPERNODE, so the handshake fails unless the server chains.
 *      A supernode's listening port also serves peers, so the server side
 *      accepts any client certificate and classifies afterwards: the daemon
 *      calls tls_require_supernode() before accepting supernode traffic.
 *  (b) peer -> supernode: the peer dials with TLS_EXPECT_SUPERNODE (same rule
 *      as (a)); the supernode accepts the peer's self-signed certificate and
 *      learns its node ID from tls_peer_info().
 *  (c) peer <-> peer: the dialer names the node ID it expects
 *      (TLS_EXPECT_PEER_ID); the handshake fails unless the server's SPKI
 *      hashes to it, and tls_error() then reads "peer ID mismatch: expected
 *      <id>, got <id>". A server may expect a specific client ID too
 *      (connection reversal).
 * The policy check runs inside the handshake (a certificate verification
 * callback), so a rejected link never carries application data, and TLS 1.3
 * CertificateVerify proves the remote holds the key behind the ID.
 *
 * After an accepted handshake SSL_get_verify_result() is X509_V_OK (the
 * policy passed), also for a client that does not chain to the root: ask
 * tls_peer_info() for that.
 *
 * Sessions are never resumed (no tickets, no cache): every handshake runs the
 * policy on a fresh certificate.
 *
 * Ownership: a struct tls_ctx is created once per node role and owned by the
 * caller. SSL objects it makes belong to the caller (SSL_free, or a
 * bufferevent with BEV_OPT_CLOSE_ON_FREE); each holds its own reference to
 * the underlying SSL_CTX, so tls_ctx_free() may run while they live. The
 * per-connection policy state lives in the SSL's ex_data and is freed with it.
 *
 * Blocking: tls_ctx_new() reads the federation root file (startup only).
 * Nothing else blocks or does I/O: the SSL objects are not attached to any
 * socket, so the caller wraps them with bufferevent_openssl_socket_new() (or
 * SSL_set_fd) and drives the handshake from the event loop. Writing to a
 * closed socket raises SIGPIPE: daemons ignore it.
 */
#ifndef SOVA_TLS_H
#define SOVA_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "identity.h"

/* Longest chain accepted below the root: leaf + intermediates. */
#define TLS_VERIFY_DEPTH 4

enum tls_ctx_kind {
    /* A supernode: a federation root is required and the node's own
     * certificate must chain to it (checked now, so a misissued certificate
     * fails at startup rather than at every peer). */
    TLS_CTX_SUPERNODE,
    /* An ordinary peer (self-signed identity). The root is needed to dial
     * supernodes; NULL is allowed for peer-to-peer-only use (tests). */
    TLS_CTX_PEER,
};

/* What a client requires of the server it dials. */
enum tls_expect {
    TLS_EXPECT_SUPERNODE, /* chain to the federation root (+ the ID, if one is given) */
    TLS_EXPECT_PEER_ID,   /* SPKI hash equals the given ID; no chain needed */
};

struct tls_peer_info {
    uint8_t id[NODE_ID_LEN];          /* SHA-256 of the remote SPKI */
    char id_str[NODE_ID_STR_LEN + 1]; /* base32 */
    bool chained_to_root;             /* remote certificate chains to the root */
};

/* Opaque: one SSL_CTX with this node's certificate, key and root store. */
struct tls_ctx;

/* Make a context presenting id's certificate (and chain). federation_ca_path is
 * a PEM file with the federation root certificate(s) (several allow a root
 * rollover); required for TLS_CTX_SUPERNODE. id is not kept: the context
 * takes its own references. Returns 0, SOVA_ERR_INVALID, SOVA_ERR_IO (root
 * file unreadable), SOVA_ERR_CERT_CHAIN (supernode certificate does not chain
 * to the root) or SOVA_ERR_CRYPTO; the reason goes to errbuf. */
int tls_ctx_new(const struct sova_identity *id, const char *federation_ca_path,
                enum tls_ctx_kind kind, struct tls_ctx **out, char *errbuf, size_t errlen);
/* NULL is accepted. */
void tls_ctx_free(struct tls_ctx *ctx);

/* A new client-side SSL (connect state) with the given policy. expected_id
 * (NODE_ID_LEN bytes, copied) is required for TLS_EXPECT_PEER_ID and optional
 * for TLS_EXPECT_SUPERNODE (pins a known supernode). Returns 0,
 * SOVA_ERR_INVALID (no ID for PEER_ID; SUPERNODE without a root in ctx) or
 * SOVA_ERR_NOMEM. */
int tls_ctx_client(struct tls_ctx *ctx, enum tls_expect expect, const uint8_t *expected_id,
                   SSL **out);
/* A new server-side SSL (accept state). Accepts any client certificate and
 * records whether it chains to the root; if expected_id is not NULL the
 * client's ID must equal it. Returns 0 or SOVA_ERR_NOMEM. */
int tls_ctx_server(struct tls_ctx *ctx, const uint8_t *expected_id, SSL **out);

/* The remote's node ID and classification, once the handshake has finished.
 * Returns 0; SOVA_ERR_INVALID if ssl did not come from a tls_ctx or the
 * handshake has not finished (an unproven certificate is never reported);
 * SOVA_ERR_NO_CERT if there is no remote certificate. */
int tls_peer_info(const SSL *ssl, struct tls_peer_info *out);

/* For a server that is told "I am a supernode": 0 if the finished handshake's
 * client certificate chains to the federation root, else SOVA_ERR_CERT_CHAIN
 * (or tls_peer_info's errors) with the remote ID and the reason in errbuf. */
int tls_require_supernode(const SSL *ssl, char *errbuf, size_t errlen);

/* Why this side rejected the remote's certificate, e.g. "peer ID mismatch:
 * expected <id>, got <id>"; NULL if the policy did not reject it (other
 * failures, such as a refused protocol version or a missing client
 * certificate, are in OpenSSL's error queue). Valid until SSL_free. */
const char *tls_error(const SSL *ssl);
/* The same as a code: SOVA_ERR_ID_MISMATCH (the remote's ID was not the one
 * expected), SOVA_ERR_CERT_CHAIN (a supernode that does not chain to the
 * root), or 0 if the policy did not reject the remote. */
int tls_failure(const SSL *ssl);
/* The handshake is over and what the policy decided has been read (the
 * remote's ID, tls_require_supernode()): free the policy state (about 450
 * bytes, which a supernode would otherwise keep for each of its peers).
 * From then on tls_peer_info() and tls_require_supernode() fail and
 * tls_error() is NULL. Idempotent. */
void tls_release_policy(SSL *ssl);

#endif
