/* tls.c - TLS 1.3 contexts and verification policies; see tls.h. */
#include "tls.h"
#include "err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#define TLS_REASON_MAX 96
#define TLS_ERROR_MAX  256

struct tls_ctx {
    SSL_CTX *ssl_ctx;
    bool has_root;
};

/* Policy and outcome of one connection, in the SSL's ex_data. */
struct tls_conn {
    enum tls_expect expect;
    bool is_server; /* servers accept any chain and classify */
    bool has_root;
    bool want_id;
    uint8_t expected_id[NODE_ID_LEN];
    bool verified; /* the callback saw the remote certificate */
    bool chained;
    uint8_t remote_id[NODE_ID_LEN];
    char chain_reason[TLS_REASON_MAX]; /* why not chained */
    char error[TLS_ERROR_MAX];         /* why rejected; "" if not */
    int failure;                       /* the same as a sova_err; 0 if not */
};

/* The ex_data slot is allocated once per process and never changes after:
 * OpenSSL needs one index to find our state from inside its callbacks. */
static pthread_once_t conn_index_once = PTHREAD_ONCE_INIT;
static int conn_index = -1;

static int conn_dup(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from, void **from_d, int idx,
                    long argl, void *argp)
{
    /* SSL_dup() copies ex_data pointers; give the copy its own state so the
     * two SSLs do not free the same block. */
    (void)to, (void)from, (void)idx, (void)argl, (void)argp;
    struct tls_conn **slot = (struct tls_conn **)from_d;
    if (*slot == NULL)
        return 1;
    struct tls_conn *copy = malloc(sizeof(*copy));
    if (copy == NULL)
        return 0;
    memcpy(copy, *slot, sizeof(*copy));
    *slot = copy;
    return 1;
}

static void conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    free(ptr);
}

static void conn_index_init(void)
{
    conn_index = SSL_get_ex_new_index(0, NULL, NULL, conn_dup, conn_free);
}

static struct tls_conn *conn_get(const SSL *ssl)
{
    return conn_index < 0 ? NULL : SSL_get_ex_data(ssl, conn_index);
}

/* Runs once per handshake in place of X509_verify_cert(), with the remote's
 * certificates in store: computes the remote ID, checks the chain to the root
 * (if we have one), and applies this connection's policy. Returning 0 makes
 * OpenSSL abort the handshake with an alert derived from the store's error. */
static int tls_verify_cb(X509_STORE_CTX *store, void *arg)
{
    (void)arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct tls_conn *conn = ssl != NULL ? conn_get(ssl) : NULL;
    if (conn == NULL) {
        X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    if (node_id_from_x509(X509_STORE_CTX_get0_cert(store), conn->remote_id) != 0) {
        snprintf(conn->error, sizeof(conn->error), "cannot compute the remote node ID");
        X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    char got[NODE_ID_STR_LEN + 1];
    node_id_format(conn->remote_id, got);
    /* Every Sova key is Ed25519 (docs/IDENTITY.md): receipts are signed
     * with it, and a node ID names exactly one kind of key. */
    const EVP_PKEY *key = X509_get0_pubkey(X509_STORE_CTX_get0_cert(store));
    if (key == NULL || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
        snprintf(conn->error, sizeof(conn->error), "%s %s: its key is %s, not Ed25519",
                 conn->expect == TLS_EXPECT_SUPERNODE ? "supernode" : "remote", got,
                 key ? EVP_PKEY_get0_type_name(key) : "missing");
        conn->failure = SOVA_ERR_KEY_TYPE;
        X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }

    conn->chained = conn->has_root && X509_verify_cert(store) == 1;
    if (!conn->has_root)
        snprintf(conn->chain_reason, sizeof(conn->chain_reason), "no federation root configured");
    else if (!conn->chained)
        snprintf(conn->chain_reason, sizeof(conn->chain_reason), "%s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(store)));
    conn->verified = true;

    const char *role = conn->expect == TLS_EXPECT_SUPERNODE ? "supernode" : "peer";
    if (!conn->is_server && conn->expect == TLS_EXPECT_SUPERNODE && !conn->chained) {
        snprintf(conn->error, sizeof(conn->error),
                 "supernode %s: certificate does not chain to the federation root (%s)", got,
                 conn->chain_reason);
        conn->failure = SOVA_ERR_CERT_CHAIN;
        if (X509_STORE_CTX_get_error(store) == X509_V_OK)
            X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    if (conn->want_id && memcmp(conn->expected_id, conn->remote_id, NODE_ID_LEN) != 0) {
        char want[NODE_ID_STR_LEN + 1];
        node_id_format(conn->expected_id, want);
        snprintf(conn->error, sizeof(conn->error), "%s ID mismatch: expected %s, got %s", role,
                 want, got);
        conn->failure = SOVA_ERR_ID_MISMATCH;
        X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    /* Accepted by policy. An unchained client is fine for a server (it is
     * classified later), and so is a self-signed peer whose ID matched: clear
     * the chain error so SSL_get_verify_result() reports the policy result. */
    X509_STORE_CTX_set_error(store, X509_V_OK);
    return 1;
}

/* A supernode's own certificate must chain to the root for both of its TLS
 * roles, or every other node would refuse it. */
static int check_own_chain(X509_STORE *store, const struct sova_identity *id, const char *ca_path,
                           char *errbuf, size_t errlen)
{
    static const int purposes[] = {X509_PURPOSE_SSL_SERVER, X509_PURPOSE_SSL_CLIENT};
    X509_STORE_CTX *vctx = X509_STORE_CTX_new();
    if (vctx == NULL)
        return identity_errorf(errbuf, errlen, SOVA_ERR_NOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof(purposes) / sizeof(purposes[0]); i++) {
        if (X509_STORE_CTX_init(vctx, store, identity_cert(id), identity_chain(id)) != 1 ||
            X509_STORE_CTX_set_purpose(vctx, purposes[i]) != 1) {
            rc = identity_errorf(errbuf, errlen, SOVA_ERR_CRYPTO, "cannot verify own certificate");
            break;
        }
        if (X509_verify_cert(vctx) != 1) {
            ERR_clear_error();
            rc = identity_errorf(
                errbuf, errlen, SOVA_ERR_CERT_CHAIN,
                "supernode certificate (node ID %s) does not chain to the federation root %s: %s",
                identity_id_str(id), ca_path,
                X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx)));
        }
        X509_STORE_CTX_cleanup(vctx);
    }
    X509_STORE_CTX_free(vctx);
    return rc;
}

static int load_root(SSL_CTX *ssl_ctx, const char *path, char *errbuf, size_t errlen)
{
    STACK_OF(X509) *roots = NULL;
    int rc = identity_read_certs(path, &roots, errbuf, errlen);
    if (rc != 0)
        return rc;
    X509_STORE *store = SSL_CTX_get_cert_store(ssl_ctx);
    for (int i = 0; rc == 0 && i < sk_X509_num(roots); i++)
        if (X509_STORE_add_cert(store, sk_X509_value(roots, i)) != 1)
            rc = identity_errorf(errbuf, errlen, SOVA_ERR_CRYPTO,
                                 "cannot add federation root from %s", path);
    sk_X509_pop_free(roots, X509_free);
    return rc;
}

/* Certificate, key and extra chain certificates of id; SSL_CTX takes its own
 * references. */
static int use_identity(SSL_CTX *ssl_ctx, const struct sova_identity *id, char *errbuf,
                        size_t errlen)
{
    STACK_OF(X509) *chain = identity_chain(id);
    int ok = SSL_CTX_use_certificate(ssl_ctx, identity_cert(id)) == 1 &&
             SSL_CTX_use_PrivateKey(ssl_ctx, identity_key(id)) == 1;
    for (int i = 0; ok && i < sk_X509_num(chain); i++)
        ok = SSL_CTX_add1_chain_cert(ssl_ctx, sk_X509_value(chain, i)) == 1;
    ok = ok && SSL_CTX_check_private_key(ssl_ctx) == 1;
    return ok ? 0
              : identity_errorf(errbuf, errlen, SOVA_ERR_CRYPTO,
                                "cannot use the certificate of node %s", identity_id_str(id));
}

int tls_ctx_new(const struct sova_identity *id, const char *federation_ca_path,
                enum tls_ctx_kind kind, struct tls_ctx **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    if (id == NULL)
        return identity_errorf(errbuf, errlen, SOVA_ERR_INVALID, "no identity");
    if (kind == TLS_CTX_SUPERNODE && federation_ca_path == NULL)
        return identity_errorf(errbuf, errlen, SOVA_ERR_INVALID,
                               "a supernode needs the federation root certificate");
    pthread_once(&conn_index_once, conn_index_init);
    if (conn_index < 0)
        return identity_errorf(errbuf, errlen, SOVA_ERR_CRYPTO, "cannot allocate SSL ex_data");

    struct tls_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return identity_errorf(errbuf, errlen, SOVA_ERR_NOMEM, "out of memory");
    ctx->ssl_ctx = SSL_CTX_new(TLS_method());
    int rc = 0;
    if (ctx->ssl_ctx == NULL || SSL_CTX_set_min_proto_version(ctx->ssl_ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_num_tickets(ctx->ssl_ctx, 0) != 1) {
        rc = identity_errorf(errbuf, errlen, SOVA_ERR_CRYPTO, "cannot create a TLS context");
        goto fail;
    }
    SSL_CTX_set_options(ctx->ssl_ctx, SSL_OP_NO_TICKET);
    /* Send exactly the chain from the certificate file: building one from
     * our store would only append the root, which every node already has. */
    SSL_CTX_set_mode(ctx->ssl_ctx, SSL_MODE_NO_AUTO_CHAIN);
    /* A supernode holds one TLS session per attached peer, nearly all idle:
     * OpenSSL's read and write buffers (about 17 KB each) are freed once a
     * record is consumed or written and made again for the next one. */
    if (kind == TLS_CTX_SUPERNODE)
        SSL_CTX_set_mode(ctx->ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx->ssl_ctx, SSL_SESS_CACHE_OFF);
    /* Both sides always present and check certificates; the policy itself is
     * tls_verify_cb, which replaces OpenSSL's chain check. */
    SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_cert_verify_callback(ctx->ssl_ctx, tls_verify_cb, NULL);
    SSL_CTX_set_verify_depth(ctx->ssl_ctx, TLS_VERIFY_DEPTH);

    if ((rc = use_identity(ctx->ssl_ctx, id, errbuf, errlen)) != 0)
        goto fail;
    if (federation_ca_path != NULL) {
        if ((rc = load_root(ctx->ssl_ctx, federation_ca_path, errbuf, errlen)) != 0)
            goto fail;
        ctx->has_root = true;
    }
    if (kind == TLS_CTX_SUPERNODE &&
        (rc = check_own_chain(SSL_CTX_get_cert_store(ctx->ssl_ctx), id, federation_ca_path, errbuf,
                              errlen)) != 0)
        goto fail;
    *out = ctx;
    return 0;
fail:
    tls_ctx_free(ctx);
    return rc;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
    if (ctx == NULL)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

/* An SSL with its policy state attached; the state is freed with the SSL. */
static int new_ssl(struct tls_ctx *ctx, const struct tls_conn *policy, SSL **out)
{
    *out = NULL;
    struct tls_conn *conn = malloc(sizeof(*conn));
    SSL *ssl = SSL_new(ctx->ssl_ctx);
    if (conn == NULL || ssl == NULL) {
        free(conn);
        SSL_free(ssl);
        ERR_clear_error();
        return SOVA_ERR_NOMEM;
    }
    memcpy(conn, policy, sizeof(*conn));
    if (SSL_set_ex_data(ssl, conn_index, conn) != 1) {
        free(conn);
        SSL_free(ssl);
        ERR_clear_error();
        return SOVA_ERR_NOMEM;
    }
    if (conn->is_server)
        SSL_set_accept_state(ssl);
    else
        SSL_set_connect_state(ssl);
    *out = ssl;
    return 0;
}

static void policy_init(struct tls_conn *policy, const struct tls_ctx *ctx, bool is_server,
                        enum tls_expect expect, const uint8_t *expected_id)
{
    memset(policy, 0, sizeof(*policy));
    policy->expect = expect;
    policy->is_server = is_server;
    policy->has_root = ctx->has_root;
    policy->want_id = expected_id != NULL;
    if (expected_id != NULL)
        memcpy(policy->expected_id, expected_id, NODE_ID_LEN);
}

int tls_ctx_client(struct tls_ctx *ctx, enum tls_expect expect, const uint8_t *expected_id,
                   SSL **out)
{
    *out = NULL;
    if (ctx == NULL || (expect == TLS_EXPECT_PEER_ID && expected_id == NULL) ||
        (expect == TLS_EXPECT_SUPERNODE && !ctx->has_root) ||
        (expect != TLS_EXPECT_PEER_ID && expect != TLS_EXPECT_SUPERNODE))
        return SOVA_ERR_INVALID;
    struct tls_conn policy;
    policy_init(&policy, ctx, false, expect, expected_id);
    return new_ssl(ctx, &policy, out);
}

int tls_ctx_server(struct tls_ctx *ctx, const uint8_t *expected_id, SSL **out)
{
    *out = NULL;
    if (ctx == NULL)
        return SOVA_ERR_INVALID;
    struct tls_conn policy;
    /* A server has no chain requirement; "peer" names the remote in errors. */
    policy_init(&policy, ctx, true, TLS_EXPECT_PEER_ID, expected_id);
    return new_ssl(ctx, &policy, out);
}

int tls_peer_info(const SSL *ssl, struct tls_peer_info *out)
{
    memset(out, 0, sizeof(*out));
    const struct tls_conn *conn = ssl != NULL ? conn_get(ssl) : NULL;
    if (conn == NULL || !SSL_is_init_finished(ssl))
        return SOVA_ERR_INVALID;
    if (!conn->verified || SSL_get0_peer_certificate(ssl) == NULL)
        return SOVA_ERR_NO_CERT;
    memcpy(out->id, conn->remote_id, NODE_ID_LEN);
    node_id_format(out->id, out->id_str);
    out->chained_to_root = conn->chained;
    return 0;
}

int tls_require_supernode(const SSL *ssl, char *errbuf, size_t errlen)
{
    struct tls_peer_info info;
    int rc = tls_peer_info(ssl, &info);
    if (rc != 0)
        return identity_errorf(errbuf, errlen, rc, "no verified remote certificate");
    if (!info.chained_to_root)
        return identity_errorf(errbuf, errlen, SOVA_ERR_CERT_CHAIN,
                               "node %s claims the supernode role but its certificate does not "
                               "chain to the federation root (%s)",
                               info.id_str, conn_get(ssl)->chain_reason);
    return 0;
}

const char *tls_error(const SSL *ssl)
{
    const struct tls_conn *conn = ssl != NULL ? conn_get(ssl) : NULL;
    return conn != NULL && conn->error[0] != '\0' ? conn->error : NULL;
}

int tls_failure(const SSL *ssl)
{
    const struct tls_conn *conn = ssl != NULL ? conn_get(ssl) : NULL;
    return conn != NULL ? conn->failure : 0;
}

void tls_release_policy(SSL *ssl)
{
    struct tls_conn *conn = ssl != NULL ? conn_get(ssl) : NULL;
    if (conn == NULL)
        return;
    SSL_set_ex_data(ssl, conn_index, NULL); /* cannot fail: the slot exists */
    free(conn);
}
