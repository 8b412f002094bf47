/* test_tls.c - the three trust policies over real TCP loopback handshakes,
 * with certificates made by deploy/sova-federation and peer identities made
 * by identity_load_or_create(). Both ends run non-blocking in this thread:
 * each is stepped in turn and poll() waits for bytes when neither can move. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "err.h"
#include "identity.h"
#include "tls.h"

#define LINK_DEADLINE_MS 10000 /* a stuck handshake is a failure, not a hang */
#define POLL_SLICE_MS    100

static char tmp_root[256];
static char script[1024];

/* Supernodes of the federation, a supernode of a rogue federation, peers. */
enum node { SN1, SN2, ROGUE_SN, PEER_A, PEER_B, PEER_C, N_NODES };
static const char *const node_names[N_NODES] = {"sn1",    "sn2",    "rogue-sn",
                                                "peer-a", "peer-b", "peer-c"};
static struct sova_identity *ids[N_NODES];
static struct tls_ctx *ctxs[N_NODES]; /* PEER_C's context has no federation root */
static char root_crt[512], rogue_root_crt[512];

static int shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int shell(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return st == -1 ? -1 : WEXITSTATUS(st);
}

/* ---- one TLS link over TCP loopback -------------------------------------- */

enum side_state { SIDE_RUNNING, SIDE_OK, SIDE_FAILED };

struct side {
    SSL *ssl;
    int fd;
    enum side_state state;
    char err[512];
};

struct link {
    struct side client, server;
};

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Record why a side failed: our policy message first, then OpenSSL's. */
static void side_fail(struct side *s)
{
    char ossl[256] = "";
    unsigned long e = ERR_get_error();
    if (e != 0)
        ERR_error_string_n(e, ossl, sizeof(ossl));
    const char *policy = tls_error(s->ssl);
    snprintf(s->err, sizeof(s->err), "%s%s%s", policy ? policy : "", policy && e ? " | " : "",
             ossl);
    ERR_clear_error();
    s->state = SIDE_FAILED;
    shutdown(s->fd, SHUT_RDWR); /* the other side sees EOF instead of waiting */
}

/* One step of op (handshake, or a 1-byte read/write) on s. Returns true when
 * the step finished (ok or failed), false when it must wait for the socket. */
static bool side_step(struct side *s, int op)
{
    char byte = 'x';
    ERR_clear_error();
    int r = op == 0   ? SSL_do_handshake(s->ssl)
            : op == 1 ? SSL_read(s->ssl, &byte, 1)
                      : SSL_write(s->ssl, &byte, 1);
    if (r == 1) {
        s->state = SIDE_OK;
        return true;
    }
    int e = SSL_get_error(s->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return false;
    side_fail(s);
    return true;
}

static void wait_readable(struct link *l)
{
    struct pollfd p[2] = {{.fd = l->client.fd, .events = POLLIN},
                          {.fd = l->server.fd, .events = POLLIN}};
    (void)poll(p, 2, POLL_SLICE_MS);
}

/* Run op on every side still SIDE_RUNNING until each finished. */
static void drive(struct link *l, int client_op, int server_op, long deadline)
{
    while (l->client.state == SIDE_RUNNING || l->server.state == SIDE_RUNNING) {
        bool moved = false;
        if (l->client.state == SIDE_RUNNING)
            moved |= side_step(&l->client, client_op);
        if (l->server.state == SIDE_RUNNING)
            moved |= side_step(&l->server, server_op);
        if (now_ms() > deadline) {
            struct side *stuck = l->client.state == SIDE_RUNNING ? &l->client : &l->server;
            side_fail(stuck);
            snprintf(stuck->err, sizeof(stuck->err), "timed out");
        }
        if (!moved)
            wait_readable(l);
    }
}

static void set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    CU_ASSERT(flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0);
}

/* Handshake client with server over a fresh TCP connection on 127.0.0.1,
 * then exchange one byte each way (in TLS 1.3 the client finishes before the
 * server has checked the client's certificate; a rejection arrives as an
 * alert on the client's first read). Takes ownership of both SSLs; call
 * link_close(). */
static void link_run(struct link *l, SSL *client, SSL *server, const char *label)
{
    memset(l, 0, sizeof(*l));
    l->client.ssl = client;
    l->server.ssl = server;
    l->client.fd = l->server.fd = -1;
    CU_ASSERT_PTR_NOT_NULL_FATAL(client);
    CU_ASSERT_PTR_NOT_NULL_FATAL(server);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(addr);
    CU_ASSERT_FATAL(lfd >= 0 && bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
                    listen(lfd, 1) == 0 && getsockname(lfd, (struct sockaddr *)&addr, &alen) == 0);
    l->client.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(connect(l->client.fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
    l->server.fd = accept(lfd, NULL, NULL);
    close(lfd);
    CU_ASSERT_FATAL(l->server.fd >= 0);
    set_nonblocking(l->client.fd);
    set_nonblocking(l->server.fd);
    SSL_set_fd(client, l->client.fd);
    SSL_set_fd(server, l->server.fd);

    long deadline = now_ms() + LINK_DEADLINE_MS;
    drive(l, 0, 0, deadline);
    /* Application data both ways, only between sides that finished. */
    if (l->client.state == SIDE_OK && l->server.state == SIDE_OK) {
        l->client.state = l->server.state = SIDE_RUNNING;
        drive(l, 2, 1, deadline);
    }
    if (l->client.state == SIDE_OK && l->server.state == SIDE_OK) {
        l->client.state = l->server.state = SIDE_RUNNING;
        drive(l, 1, 2, deadline);
    } else if (l->client.state == SIDE_OK) {
        l->client.state = SIDE_RUNNING; /* read the server's alert */
        drive(l, 1, 1, deadline);
    }
    printf("\n    %-44s client %s%s%s, server %s%s%s\n", label,
           l->client.state == SIDE_OK ? "ok" : "FAILED", l->client.err[0] ? ": " : "",
           l->client.err, l->server.state == SIDE_OK ? "ok" : "FAILED",
           l->server.err[0] ? ": " : "", l->server.err);
}

static void link_close(struct link *l)
{
    SSL_free(l->client.ssl);
    SSL_free(l->server.ssl);
    if (l->client.fd >= 0)
        close(l->client.fd);
    if (l->server.fd >= 0)
        close(l->server.fd);
}

/* Client from node c with policy (expect, expected ID of node e or none),
 * server from node s expecting client ID of node se (or none). */
static SSL *client_of(enum node c, enum tls_expect expect, int expected)
{
    SSL *ssl = NULL;
    int rc =
        tls_ctx_client(ctxs[c], expect, expected >= 0 ? identity_id(ids[expected]) : NULL, &ssl);
    CU_ASSERT_EQUAL(rc, 0);
    return ssl;
}

static SSL *server_of(enum node s, int expected_client)
{
    SSL *ssl = NULL;
    CU_ASSERT_EQUAL(tls_ctx_server(ctxs[s],
                                   expected_client >= 0 ? identity_id(ids[expected_client]) : NULL,
                                   &ssl),
                    0);
    return ssl;
}

static void assert_remote_is(const SSL *ssl, enum node who, bool chained)
{
    struct tls_peer_info info;
    CU_ASSERT_EQUAL_FATAL(tls_peer_info(ssl, &info), 0);
    CU_ASSERT(memcmp(info.id, identity_id(ids[who]), NODE_ID_LEN) == 0);
    CU_ASSERT_STRING_EQUAL(info.id_str, identity_id_str(ids[who]));
    CU_ASSERT_EQUAL(info.chained_to_root, chained);
}

/* ---- fixtures ------------------------------------------------------------ */

static int fail_setup(const char *what, const char *err)
{
    fprintf(stderr, "test_tls setup: %s: %s\n", what, err);
    return -1;
}

static int suite_init(void)
{
    signal(SIGPIPE, SIG_IGN);                    /* a peer's reset must not kill the test */
    const char *data = getenv("SOVA_TEST_DATA"); /* <src>/tests/data */
    const char *suffix = "/tests/data";
    size_t dlen = data != NULL ? strlen(data) : 0;
    if (dlen < strlen(suffix) || strcmp(data + dlen - strlen(suffix), suffix) != 0)
        return fail_setup("SOVA_TEST_DATA", "must be <source root>/tests/data");
    snprintf(script, sizeof(script), "%.*s/deploy/sova-federation", (int)(dlen - strlen(suffix)),
             data);
    const char *tmp = getenv("TMPDIR");
    snprintf(tmp_root, sizeof(tmp_root), "%s/sova-test-tls-XXXXXX", tmp ? tmp : "/tmp");
    if (mkdtemp(tmp_root) == NULL)
        return fail_setup("mkdtemp", strerror(errno));
    if (shell("set -e; cd '%s'; S='%s'; $S init fed; $S issue fed sn1; $S issue fed sn2;"
              " $S init rogue; $S issue rogue rogue-sn",
              tmp_root, script) != 0)
        return fail_setup("sova-federation", "init/issue failed");
    snprintf(root_crt, sizeof(root_crt), "%s/fed/root.crt", tmp_root);
    snprintf(rogue_root_crt, sizeof(rogue_root_crt), "%s/rogue/root.crt", tmp_root);

    char err[512] = "";
    for (int n = 0; n < N_NODES; n++) {
        char cert_or_dir[512];
        int rc;
        if (n <= ROGUE_SN) {
            const char *fed = n == ROGUE_SN ? "rogue" : "fed";
            char key[512];
            snprintf(cert_or_dir, sizeof(cert_or_dir), "%s/%s/%s.crt", tmp_root, fed,
                     node_names[n]);
            snprintf(key, sizeof(key), "%s/%s/%s.key", tmp_root, fed, node_names[n]);
            rc = identity_load_files(cert_or_dir, key, &ids[n], err, sizeof(err));
        } else {
            snprintf(cert_or_dir, sizeof(cert_or_dir), "%s/%s", tmp_root, node_names[n]);
            rc = identity_load_or_create(cert_or_dir, &ids[n], err, sizeof(err));
        }
        if (rc != 0)
            return fail_setup(node_names[n], err);
        /* The rogue supernode is consistent with its own root: only the
         * other side's policy can catch it. */
        const char *ca = n == ROGUE_SN ? rogue_root_crt : n == PEER_C ? NULL : root_crt;
        rc = tls_ctx_new(ids[n], ca, n <= ROGUE_SN ? TLS_CTX_SUPERNODE : TLS_CTX_PEER, &ctxs[n],
                         err, sizeof(err));
        if (rc != 0)
            return fail_setup(node_names[n], err);
    }
    return 0;
}

static int suite_clean(void)
{
    for (int n = 0; n < N_NODES; n++) {
        tls_ctx_free(ctxs[n]);
        identity_free(ids[n]);
    }
    return shell("rm -rf '%s'", tmp_root) == 0 ? 0 : -1;
}

/* ---- (a) supernode <-> supernode ------------------------------------------ */

static void test_sn_to_sn_mutual_chain(void)
{
    struct link l;
    link_run(&l, client_of(SN1, TLS_EXPECT_SUPERNODE, -1), server_of(SN2, -1), "sn1 -> sn2");
    CU_ASSERT_EQUAL(l.client.state, SIDE_OK);
    CU_ASSERT_EQUAL(l.server.state, SIDE_OK);
    if (l.client.state == SIDE_OK && l.server.state == SIDE_OK) {
        CU_ASSERT_EQUAL(SSL_version(l.client.ssl), TLS1_3_VERSION);
        CU_ASSERT_EQUAL(EVP_PKEY_get_id(X509_get0_pubkey(SSL_get0_peer_certificate(l.client.ssl))),
                        EVP_PKEY_ED25519);
        assert_remote_is(l.client.ssl, SN2, true);
        assert_remote_is(l.server.ssl, SN1, true);
        CU_ASSERT_EQUAL(tls_require_supernode(l.server.ssl, NULL, 0), 0);
        CU_ASSERT_EQUAL(SSL_get_verify_result(l.server.ssl), X509_V_OK);
    }
    link_close(&l);
}

static void test_sn_client_pins_sn_id(void)
{
    struct link l;
    link_run(&l, client_of(SN1, TLS_EXPECT_SUPERNODE, SN2), server_of(SN2, -1),
             "sn1 -> sn2, pinned to sn2's ID");
    CU_ASSERT_EQUAL(l.client.state, SIDE_OK);
    link_close(&l);

    link_run(&l, client_of(SN1, TLS_EXPECT_SUPERNODE, SN1), server_of(SN2, -1),
             "sn1 -> sn2, pinned to another ID");
    CU_ASSERT_EQUAL(l.client.state, SIDE_FAILED);
    CU_ASSERT_EQUAL(l.server.state, SIDE_FAILED);
    CU_ASSERT_PTR_NOT_NULL(strstr(l.client.err, "supernode ID mismatch"));
    link_close(&l);
}

static void test_rogue_root_sn_refused_by_sn_client(void)
{
    struct link l;
    link_run(&l, client_of(SN1, TLS_EXPECT_SUPERNODE, -1), server_of(ROGUE_SN, -1),
             "sn1 -> rogue-sn");
    CU_ASSERT_EQUAL(l.client.state, SIDE_FAILED);
    CU_ASSERT_EQUAL(l.server.state, SIDE_FAILED);
    CU_ASSERT_PTR_NOT_NULL(strstr(l.client.err, "does not chain to the federation root"));
    CU_ASSERT_PTR_NOT_NULL(strstr(l.client.err, identity_id_str(ids[ROGUE_SN])));
    link_close(&l);
}

static void test_rogue_root_sn_client_not_classified_supernode(void)
{
    /* The shared port accepts it (it could be a peer), but it is not a
     * supernode, and the daemon's check says so. */
    struct link l;
    link_run(&l, client_of(ROGUE_SN, TLS_EXPECT_PEER_ID, SN1), server_of(SN1, -1),
             "rogue-sn -> sn1 claiming the supernode role");
    CU_ASSERT_EQUAL(l.client.state, SIDE_OK);
    CU_ASSERT_EQUAL(l.server.state, SIDE_OK);
    if (l.server.state == SIDE_OK) {
        assert_remote_is(l.server.ssl, ROGUE_SN, false);
        char err[512] = "";
        CU_ASSERT_EQUAL(tls_require_supernode(l.server.ssl, err, sizeof(err)), SOVA_ERR_CERT_CHAIN);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, identity_id_str(ids[ROGUE_SN])));
        printf("    tls_require_supernode: %s\n", err);
    }
    link_close(&l);
}

static void test_self_signed_sn_refused(void)
{
    /* A peer's self-signed certificate posing as a supernode. */
    struct link l;
    link_run(&l, client_of(SN1, TLS_EXPECT_SUPERNODE, -1), server_of(PEER_B, -1),
             "sn1 -> self-signed 'supernode'");
    CU_ASSERT_EQUAL(l.client.state, SIDE_FAILED);
    CU_ASSERT_PTR_NOT_NULL(strstr(l.client.err, "self-signed"));
    link_close(&l);
    link_run(&l, client_of(PEER_A, TLS_EXPECT_SUPERNODE, -1), server_of(PEER_B, -1),
             "peer-a -> self-signed 'supernode'");
    CU_ASSERT_EQUAL(l.client.state, SIDE_FAILED);
    CU_ASSERT_PTR_NOT_NULL(strstr(l.client.err, "does not chain to the federation root"));
    link_close(&l);
}

/* ---- (b) peer -> supernode ------------------------------------------------ */

static void test_peer_to_sn(void)
{
    struct link l;
    link_run(&l, client_of(PEER_A, TLS_EXPECT_SUPERNODE, -1), server_of(SN1, -1), "peer-a -> sn1");
    CU_ASSERT_EQUAL(l.client.state, SIDE_OK);
    CU_ASSERT_EQUAL(l.server.state, SIDE_OK);
    if (l.server.state == SIDE_OK && l.client.state == SIDE_OK) {
        assert_remote_is(l.client.ssl, SN1, true);
        assert_remote_is(l.server.ssl, PEER_A, false); /* the SN learns the peer's ID */
        CU_ASSERT_EQUAL(tls_require_supernode(l.server.ssl, NULL, 0), SOVA_ERR_CERT_CHAIN);
    }
    link_close(&l);
}

static void test_peer_refuses_rogue_sn(void)
{
    struct link l;
    link_run(&l, client_of(PEER_A, TLS_EXPECT_SUPERNODE, -1), server_of(ROGUE_SN, -1),
             "peer-a -> rogue-sn");
    CU_ASSERT_EQUAL(l.client.state, SIDE_FAILED);
    CU_ASSERT_EQUAL(l.server.state, SIDE_FAILED);
    CU_ASSERT_PTR_NOT_NULL(strstr(l.client.err, "does not chain to the federation root"));
    link_close(&l);
}

/* ---- (c) peer <-> peer ---------------------------------------------------- */

static void test_peer_to_peer_expected_id(void)
{
    struct link l;
    link_run(&l, client_of(PEER_A, TLS_EXPECT_PEER_ID, PEER_B), server_of(PEER_B, -1),
             "peer-a -> peer-b (expects b)");
    CU_ASSERT_EQUAL(l.client.state, SIDE_OK);
    CU_ASSERT_EQUAL(l.server.state, SIDE_OK);
    if (l.server.state == SIDE_OK && l.client.state == SIDE_OK) {
        assert_remote_is(l.client.ssl, PEER_B, false);
        assert_remote_is(l.server.ssl, PEER_A, false);
    }
    link_close(&l);

    /* A context without any federation root still does peer-to-peer. */
    link_run(&l, client_of(PEER_C, TLS_EXPECT_PEER_ID, PEER_A), server_of(PEER_A, -1),
             "peer-c (no root) -> peer-a");
    CU_ASSERT_EQUAL(l.client.state, SIDE_OK);
    CU_ASSERT_EQUAL(l.server.state, SIDE_OK);
    link_close(&l);
}

static void test_peer_wrong_expected_id_names_both(void)
{
    struct link l;
    link_run(&l, client_of(PEER_A, TLS_EXPECT_PEER_ID, PEER_C), server_of(PEER_B, -1),
             "peer-a -> peer-b (expects c)");
    CU_ASSERT_EQUAL(l.client.state, SIDE_FAILED);
    CU_ASSERT_EQUAL(l.server.state, SIDE_FAILED);
    char want[256];
    snprintf(want, sizeof(want), "peer ID mismatch: expected %s, got %s",
             identity_id_str(ids[PEER_C]), identity_id_str(ids[PEER_B]));
    CU_ASSERT_STRING_EQUAL(tls_error(l.client.ssl) ? tls_error(l.client.ssl) : "", want);
    struct tls_peer_info info;
    CU_ASSERT_EQUAL(tls_peer_info(l.client.ssl, &info), SOVA_ERR_INVALID);
    link_close(&l);
}

static void test_server_expects_client_id(void)
{
    /* Connection reversal: the listener knows who should call. */
    struct link l;
    link_run(&l, client_of(PEER_A, TLS_EXPECT_PEER_ID, PEER_B), server_of(PEER_B, PEER_A),
             "peer-a -> peer-b (b expects a)");
    CU_ASSERT_EQUAL(l.client.state, SIDE_OK);
    CU_ASSERT_EQUAL(l.server.state, SIDE_OK);
    link_close(&l);

    link_run(&l, client_of(PEER_C, TLS_EXPECT_PEER_ID, PEER_B), server_of(PEER_B, PEER_A),
             "peer-c -> peer-b (b expects a)");
    CU_ASSERT_EQUAL(l.server.state, SIDE_FAILED);
    CU_ASSERT_EQUAL(l.client.state, SIDE_FAILED);
    char want[256];
    snprintf(want, sizeof(want), "peer ID mismatch: expected %s, got %s",
             identity_id_str(ids[PEER_A]), identity_id_str(ids[PEER_C]));
    CU_ASSERT_STRING_EQUAL(tls_error(l.server.ssl) ? tls_error(l.server.ssl) : "", want);
    link_close(&l);
}

static void test_sn_dials_back_peer(void)
{
    /* Reachability dial-back: a supernode connects to a peer it knows. */
    struct link l;
    link_run(&l, client_of(SN1, TLS_EXPECT_PEER_ID, PEER_A), server_of(PEER_A, -1),
             "sn1 -> peer-a (dial-back)");
    CU_ASSERT_EQUAL(l.client.state, SIDE_OK);
    CU_ASSERT_EQUAL(l.server.state, SIDE_OK);
    if (l.server.state == SIDE_OK)
        CU_ASSERT_EQUAL(tls_require_supernode(l.server.ssl, NULL, 0), 0);
    link_close(&l);
}

/* ---- protocol and certificate presence ------------------------------------ */

/* A plain OpenSSL context, outside our policies, to play a foreign client or
 * server: limited to max_version, presenting node's certificate or none. */
static SSL *foreign_ssl(bool server, int max_version, int node)
{
    SSL_CTX *c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    SSL_CTX_set_max_proto_version(c, max_version);
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
    if (node >= 0) {
        CU_ASSERT(SSL_CTX_use_certificate(c, identity_cert(ids[node])) == 1);
        CU_ASSERT(SSL_CTX_use_PrivateKey(c, identity_key(ids[node])) == 1);
    }
    SSL *ssl = SSL_new(c);
    SSL_CTX_free(c); /* ssl keeps its own reference */
    if (server)
        SSL_set_accept_state(ssl);
    else
        SSL_set_connect_state(ssl);
    return ssl;
}

static void test_tls12_refused(void)
{
    struct link l;
    link_run(&l, foreign_ssl(false, TLS1_2_VERSION, PEER_A), server_of(SN1, -1),
             "TLS 1.2-only client -> sn1");
    CU_ASSERT_EQUAL(l.client.state, SIDE_FAILED);
    CU_ASSERT_EQUAL(l.server.state, SIDE_FAILED);
    CU_ASSERT_PTR_NOT_NULL(strstr(l.server.err, "unsupported protocol"));
    link_close(&l);

    link_run(&l, client_of(PEER_A, TLS_EXPECT_SUPERNODE, -1),
             foreign_ssl(true, TLS1_2_VERSION, SN1), "peer-a -> TLS 1.2-only server");
    CU_ASSERT_EQUAL(l.client.state, SIDE_FAILED);
    link_close(&l);
}

static void test_client_without_certificate_refused(void)
{
    struct link l;
    link_run(&l, foreign_ssl(false, TLS1_3_VERSION, -1), server_of(SN1, -1),
             "client with no certificate -> sn1");
    CU_ASSERT_EQUAL(l.server.state, SIDE_FAILED);
    CU_ASSERT_EQUAL(l.client.state, SIDE_FAILED);
    CU_ASSERT_PTR_NOT_NULL(strstr(l.server.err, "did not return a certificate"));
    struct tls_peer_info info;
    CU_ASSERT_NOT_EQUAL(tls_peer_info(l.server.ssl, &info), 0);
    link_close(&l);
}

/* A TLS 1.3 end with an ECDSA P-256 key: its certificate is made by the
 * openssl command line, self-signed or signed by the federation root. */
static SSL *ecdsa_ssl(bool server, bool signed_by_root)
{
    char key[600], crt[600];
    snprintf(key, sizeof(key), "%s/ecdsa%d.key", tmp_root, signed_by_root);
    snprintf(crt, sizeof(crt), "%s/ecdsa%d.crt", tmp_root, signed_by_root);
    int rc = signed_by_root
                 ? shell("set -e; cd '%s'; openssl req -new -newkey ec -pkeyopt "
                         "ec_paramgen_curve:P-256 -nodes -keyout '%s' -subj /CN=ecdsa-sn -out "
                         "ecdsa.csr 2>/dev/null; openssl x509 -req -in ecdsa.csr -CA fed/root.crt "
                         "-CAkey fed/root.key -CAcreateserial -days 30 -out '%s' 2>/dev/null",
                         tmp_root, key, crt)
                 : shell("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                         "-keyout '%s' -subj /CN=sova-peer -days 30 -out '%s' 2>/dev/null",
                         key, crt);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    SSL_CTX *c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
    CU_ASSERT(SSL_CTX_use_certificate_file(c, crt, SSL_FILETYPE_PEM) == 1);
    CU_ASSERT(SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) == 1);
    SSL *ssl = SSL_new(c);
    SSL_CTX_free(c);
    if (server)
        SSL_set_accept_state(ssl);
    else
        SSL_set_connect_state(ssl);
    return ssl;
}

/* Every key is Ed25519 (docs/IDENTITY.md): an ECDSA peer is refused by a
 * supernode and by a peer, an ECDSA "supernode" by peers and supernodes
 * even when the federation root signed it, each with a clear reason. */
static void test_ecdsa_refused(void)
{
    struct link l;
    link_run(&l, ecdsa_ssl(false, false), server_of(SN1, -1), "ECDSA peer -> sn1");
    CU_ASSERT_EQUAL(l.server.state, SIDE_FAILED);
    CU_ASSERT_EQUAL(tls_failure(l.server.ssl), SOVA_ERR_KEY_TYPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(l.server.err, "not Ed25519"));
    link_close(&l);

    link_run(&l, ecdsa_ssl(false, false), server_of(PEER_A, -1), "ECDSA peer -> peer-a");
    CU_ASSERT_EQUAL(l.server.state, SIDE_FAILED);
    CU_ASSERT_EQUAL(tls_failure(l.server.ssl), SOVA_ERR_KEY_TYPE);
    link_close(&l);

    link_run(&l, client_of(PEER_A, TLS_EXPECT_SUPERNODE, -1), ecdsa_ssl(true, true),
             "peer-a -> root-signed ECDSA supernode");
    CU_ASSERT_EQUAL(l.client.state, SIDE_FAILED);
    CU_ASSERT_EQUAL(tls_failure(l.client.ssl), SOVA_ERR_KEY_TYPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(l.client.err, "not Ed25519"));
    link_close(&l);

    link_run(&l, client_of(SN2, TLS_EXPECT_SUPERNODE, -1), ecdsa_ssl(true, true),
             "sn2 -> root-signed ECDSA supernode");
    CU_ASSERT_EQUAL(l.client.state, SIDE_FAILED);
    CU_ASSERT_EQUAL(tls_failure(l.client.ssl), SOVA_ERR_KEY_TYPE);
    link_close(&l);

    /* ...and no node loads one as its own identity */
    struct sova_identity *id = NULL;
    char key[600], crt[600], err[512] = "";
    snprintf(key, sizeof(key), "%s/ecdsa1.key", tmp_root);
    snprintf(crt, sizeof(crt), "%s/ecdsa1.crt", tmp_root);
    CU_ASSERT_EQUAL(identity_load_files(crt, key, &id, err, sizeof(err)), SOVA_ERR_KEY_TYPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not Ed25519"));
    CU_ASSERT_PTR_NULL(id);
}

/* ---- context construction ------------------------------------------------- */

static void test_ctx_new_checks(void)
{
    struct tls_ctx *ctx = NULL;
    char err[512] = "";
    /* A supernode whose certificate is not from the federation root. */
    CU_ASSERT_EQUAL(tls_ctx_new(ids[ROGUE_SN], root_crt, TLS_CTX_SUPERNODE, &ctx, err, sizeof(err)),
                    SOVA_ERR_CERT_CHAIN);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, identity_id_str(ids[ROGUE_SN])));
    printf("\n    rogue supernode at startup: %s\n", err);
    CU_ASSERT_EQUAL(tls_ctx_new(ids[PEER_A], root_crt, TLS_CTX_SUPERNODE, &ctx, err, sizeof(err)),
                    SOVA_ERR_CERT_CHAIN);
    CU_ASSERT_EQUAL(tls_ctx_new(ids[SN1], NULL, TLS_CTX_SUPERNODE, &ctx, err, sizeof(err)),
                    SOVA_ERR_INVALID);
    CU_ASSERT_EQUAL(
        tls_ctx_new(ids[SN1], "/nonexistent/root.crt", TLS_CTX_SUPERNODE, &ctx, err, sizeof(err)),
        SOVA_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/root.crt"));
    CU_ASSERT_PTR_NULL(ctx);
    tls_ctx_free(NULL);

    SSL *ssl = NULL;
    CU_ASSERT_EQUAL(tls_ctx_client(ctxs[PEER_A], TLS_EXPECT_PEER_ID, NULL, &ssl), SOVA_ERR_INVALID);
    CU_ASSERT_EQUAL(tls_ctx_client(ctxs[PEER_C], TLS_EXPECT_SUPERNODE, NULL, &ssl),
                    SOVA_ERR_INVALID);
    CU_ASSERT_PTR_NULL(ssl);
    CU_ASSERT_EQUAL(tls_ctx_server(ctxs[SN1], NULL, &ssl), 0);
    struct tls_peer_info info;
    CU_ASSERT_EQUAL(tls_peer_info(ssl, &info), SOVA_ERR_INVALID); /* no handshake yet */
    CU_ASSERT_PTR_NULL(tls_error(ssl));
    SSL_free(ssl);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("tls", suite_init, suite_clean);
    if (s == NULL)
        return -1;
    CU_add_test(s, "(a) sn -> sn: mutual chain to the root", test_sn_to_sn_mutual_chain);
    CU_add_test(s, "(a) sn client may pin the sn's ID", test_sn_client_pins_sn_id);
    CU_add_test(s, "(a) sn client refuses a rogue-root sn",
                test_rogue_root_sn_refused_by_sn_client);
    CU_add_test(s, "(a) sn server does not classify a rogue-root client as sn",
                test_rogue_root_sn_client_not_classified_supernode);
    CU_add_test(s, "(a/b) self-signed 'supernode' refused", test_self_signed_sn_refused);
    CU_add_test(s, "(b) peer -> sn: sn learns the peer's ID", test_peer_to_sn);
    CU_add_test(s, "(b) peer refuses a rogue-root sn", test_peer_refuses_rogue_sn);
    CU_add_test(s, "(c) peer -> peer with the expected ID", test_peer_to_peer_expected_id);
    CU_add_test(s, "(c) wrong expected ID fails, error names both",
                test_peer_wrong_expected_id_names_both);
    CU_add_test(s, "(c) server may expect the client's ID", test_server_expects_client_id);
    CU_add_test(s, "sn dial-back to a peer by ID", test_sn_dials_back_peer);
    CU_add_test(s, "TLS 1.2 refused both ways", test_tls12_refused);
    CU_add_test(s, "client without certificate refused", test_client_without_certificate_refused);
    CU_add_test(s, "ECDSA keys refused at every end, also root-signed", test_ecdsa_refused);
    CU_add_test(s, "tls_ctx_new / client / server argument checks", test_ctx_new_checks);
    return 0;
}
