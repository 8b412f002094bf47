/* test_link_budget.c - common/link.h's budget with real links on loopback:
 * handshake slots shared by address prefix (a newcomer from another /24
 * displaces the oldest handshake of the prefix holding the most, one from
 * that prefix is refused), connections per address, the reserved slots of
 * trusted addresses, and bytes of incomplete frames (a link over its
 * prefix's or identity's share is closed; when the total is short, the
 * link holding the most in the prefix holding the most goes). Clients
 * connect from 127.0.x.y (all loopback) with a raw TLS bufferevent, so
 * that they can stop in the middle of a frame. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "identity.h"
#include "link.h"
#include "msg.h"
#include "tls.h"

#define MAX_FRAME 65536
#define N_LINKS   16

static char tmp_root[256];
static struct sova_identity *server_id, *client_id[2];
static struct tls_ctx *server_tls, *client_tls[2];
static struct wire_limits limits;

/* ---- the server: accepted links with a budget ----------------------------------- */

struct server {
    struct event_base *base;
    struct evconnlistener *lev;
    struct sockaddr_in addr;
    struct link_budget *budget;
    struct link_params params;
    struct link_group group;
    int accepted, refused;
    struct slot {
        int opened, closed; /* 1 once its link opened / closed */
    } links[N_LINKS];       /* by accept order */
};

static void on_opened(struct link *l, void *arg)
{
    (void)l;
    ((struct slot *)arg)->opened = 1;
}

static void on_closed(struct link *l, int why, void *arg)
{
    (void)l, (void)why;
    ((struct slot *)arg)->closed = 1;
}

static const struct link_hooks hooks = {.opened = on_opened, .closed = on_closed};

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    struct server *srv = arg;
    (void)lev;
    if (!link_admit(srv->budget, sa, (socklen_t)len)) {
        srv->refused++;
        evutil_closesocket(fd);
        return;
    }
    SSL *ssl = NULL;
    CU_ASSERT_FATAL(tls_ctx_server(server_tls, NULL, &ssl) == 0);
    CU_ASSERT_FATAL(srv->accepted < N_LINKS);
    evutil_make_socket_nonblocking(fd);
    struct link *l = link_accept(srv->base, fd, ssl, sa, (socklen_t)len, &srv->params, &hooks,
                                 &srv->links[srv->accepted]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    srv->accepted++;
}

static void server_start(struct server *srv, const struct link_budget_config *cfg)
{
    memset(srv, 0, sizeof(*srv));
    srv->base = event_base_new();
    srv->budget = link_budget_new(srv->base, cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(srv->budget);
    srv->params = (struct link_params){.limits = &limits,
                                       .local_role = MSG_ROLE_PEER,
                                       .handshake_timeout_ms = 20000,
                                       .max_output = 1 << 20,
                                       .group = &srv->group,
                                       .budget = srv->budget};
    srv->addr.sin_family = AF_INET;
    srv->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv->lev = evconnlistener_new_bind(srv->base, on_accept, srv, LEV_OPT_CLOSE_ON_FREE, 64,
                                       (struct sockaddr *)&srv->addr, sizeof(srv->addr));
    CU_ASSERT_PTR_NOT_NULL_FATAL(srv->lev);
    socklen_t alen = sizeof(srv->addr);
    getsockname(evconnlistener_get_fd(srv->lev), (struct sockaddr *)&srv->addr, &alen);
}

static void server_stop(struct server *srv)
{
    evconnlistener_free(srv->lev);
    link_group_free_all(&srv->group);
    link_budget_free(srv->budget);
    event_base_free(srv->base);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Run the loop until cond(srv) holds or 5 s pass; returns cond's last value. */
static int run_until(struct server *srv, int (*cond)(struct server *, int), int arg)
{
    long deadline = now_ms() + 5000;
    while (!cond(srv, arg) && now_ms() < deadline) {
        event_base_loop(srv->base, EVLOOP_NONBLOCK);
        usleep(2000);
    }
    return cond(srv, arg);
}

static int seen(struct server *srv, int n)
{
    return srv->accepted + srv->refused >= n;
}

static int is_closed(struct server *srv, int i)
{
    return srv->links[i].closed;
}

static int budget_holds(struct server *srv, int bytes)
{
    struct link_budget_stats st;
    link_budget_stats(srv->budget, &st);
    return st.buffered >= (uint64_t)bytes;
}

/* ---- clients ------------------------------------------------------------------------ */

/* A silent TCP connection from src (no TLS): it holds a handshake slot. */
static int silent_from(struct server *srv, const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, src, &a.sin_addr);
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&srv->addr, sizeof(srv->addr)) == 0);
    return fd;
}

/* A TLS client from src with identity k that sends HELLO then `partial`
 * bytes of a frame of MAX_FRAME bytes (never its last byte). */
static struct bufferevent *parker_from(struct server *srv, const char *src, int k, size_t partial)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, src, &a.sin_addr);
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    evutil_make_socket_nonblocking(fd);
    SSL *ssl = NULL;
    CU_ASSERT_FATAL(
        tls_ctx_client(client_tls[k], TLS_EXPECT_PEER_ID, identity_id(server_id), &ssl) == 0);
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        srv->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bev);
    CU_ASSERT_FATAL(
        bufferevent_socket_connect(bev, (struct sockaddr *)&srv->addr, sizeof(srv->addr)) == 0);
    struct msg m = {.type = MSG_HELLO};
    m.u.hello.version_min = MSG_PROTO_VERSION_MIN;
    m.u.hello.version_max = MSG_PROTO_VERSION_MAX;
    m.u.hello.role = MSG_ROLE_PEER;
    m.u.hello.agent = wire_str_from("test");
    struct wire_buf b;
    struct wire_err werr = {0};
    wire_buf_init(&b);
    CU_ASSERT_FATAL(msg_encode(&m, &limits, &b, &werr) == 0);
    bufferevent_write(bev, b.data, b.len);
    wire_buf_free(&b);
    uint8_t *frame = calloc(1, partial);
    uint32_t len = htonl(MAX_FRAME - 4);
    memcpy(frame, &len, 4);
    frame[4] = 0x7f; /* a type nobody knows: it would be skipped, were it complete */
    bufferevent_write(bev, frame, partial);
    free(frame);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    return bev;
}

/* ---- the tests ------------------------------------------------------------------------ */

static void test_handshake_slots(void)
{
    struct server srv;
    struct link_budget_config cfg = {.max_handshakes = 3,
                                     .reserved_handshakes = 1,
                                     .max_conns_per_ip = 2,
                                     .max_frame = MAX_FRAME};
    server_start(&srv, &cfg);
    int fds[10], n = 0;
    fds[n++] = silent_from(&srv, "127.0.1.1");
    fds[n++] = silent_from(&srv, "127.0.1.1");
    CU_ASSERT(run_until(&srv, seen, 2));
    fds[n++] = silent_from(&srv, "127.0.1.1"); /* a third from one address */
    CU_ASSERT(run_until(&srv, seen, 3));
    CU_ASSERT_EQUAL(srv.refused, 1);
    fds[n++] = silent_from(&srv, "127.0.1.2"); /* the last free slot */
    fds[n++] = silent_from(&srv, "127.0.1.3"); /* full, and its /24 holds them all */
    CU_ASSERT(run_until(&srv, seen, 5));
    CU_ASSERT_EQUAL(srv.accepted, 3);
    CU_ASSERT_EQUAL(srv.refused, 2);
    struct link_budget_stats st;
    link_budget_stats(srv.budget, &st);
    CU_ASSERT_EQUAL(st.handshaking, 3);
    CU_ASSERT_EQUAL(st.refused_ip, 1);
    CU_ASSERT_EQUAL(st.refused_handshakes, 1);
    CU_ASSERT_EQUAL(st.addresses, 2);
    /* a newcomer from another /24 displaces the oldest of 127.0.1.0/24 */
    fds[n++] = silent_from(&srv, "127.0.2.1");
    CU_ASSERT(run_until(&srv, seen, 6));
    CU_ASSERT_EQUAL(srv.accepted, 4);
    CU_ASSERT(run_until(&srv, is_closed, 0));
    CU_ASSERT_FALSE(srv.links[1].closed);
    link_budget_stats(srv.budget, &st);
    CU_ASSERT_EQUAL(st.displaced_handshakes, 1);
    CU_ASSERT_EQUAL(st.handshaking, 3);
    /* 127.0.2.0/24 holds 1, 127.0.1.0/24 holds 2: a second would not be fair */
    fds[n++] = silent_from(&srv, "127.0.2.2");
    CU_ASSERT(run_until(&srv, seen, 7));
    CU_ASSERT_EQUAL(srv.refused, 3);
    /* a supernode's address has its own slot, even from the busiest prefix */
    struct wire_addr sn = {.family = WIRE_ADDR_IPV4, .ip = {127, 0, 1, 9}};
    link_budget_trust(srv.budget, &sn);
    fds[n++] = silent_from(&srv, "127.0.1.9");
    fds[n++] = silent_from(&srv, "127.0.1.9"); /* its reserve is one slot */
    CU_ASSERT(run_until(&srv, seen, 9));
    CU_ASSERT_EQUAL(srv.accepted, 5);
    CU_ASSERT_EQUAL(srv.refused, 4);
    link_budget_stats(srv.budget, &st);
    CU_ASSERT_EQUAL(st.handshaking_reserved, 1);
    CU_ASSERT_EQUAL(st.trusted, 1);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    server_stop(&srv);
}

static void test_incomplete_frames(void)
{
    struct server srv;
    /* shares never go below 2 frames + 64 KiB = 196608 bytes */
    struct link_budget_config cfg = {.max_handshakes = 64,
                                     .max_buffered = 450000,
                                     .max_buffered_prefix = 200000,
                                     .max_buffered_id = 0,
                                     .max_frame = MAX_FRAME};
    server_start(&srv, &cfg);
    const size_t part = MAX_FRAME - 1;
    struct bufferevent *c[N_LINKS];
    int n = 0;
    /* three from 127.0.3.0/24 fit its share (3 x 65535 <= 200000) */
    for (int i = 0; i < 3; i++) {
        c[n++] = parker_from(&srv, i == 0 ? "127.0.3.1" : "127.0.3.2", 0, part);
        CU_ASSERT(run_until(&srv, budget_holds, (int)(part * (size_t)n)));
    }
    /* a fourth would pass it: that link is closed */
    c[n++] = parker_from(&srv, "127.0.3.3", 0, part);
    CU_ASSERT(run_until(&srv, is_closed, 3));
    struct link_budget_stats st;
    link_budget_stats(srv.budget, &st);
    CU_ASSERT_EQUAL(st.closed_over_share, 1);
    CU_ASSERT_EQUAL(st.buffered, 3 * part);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_FALSE(srv.links[i].closed);
    /* another prefix takes three more: 6 x 65535 = 393210 <= 450000 */
    for (int i = 0; i < 3; i++) {
        c[n++] = parker_from(&srv, "127.0.4.1", 0, part);
        CU_ASSERT(run_until(&srv, budget_holds, (int)(part * 6 - (size_t)(2 - i) * part)));
    }
    /* a newcomer from a third prefix: the total is short, a link of the
     * prefix holding the most gives way (both hold as much) */
    c[n++] = parker_from(&srv, "127.0.5.1", 0, part);
    int before = 0;
    for (int i = 0; i < 7; i++)
        before += srv.links[i].closed;
    CU_ASSERT_EQUAL(before, 1);
    long deadline = now_ms() + 5000;
    int closed = before;
    while (closed < 2 && now_ms() < deadline) {
        event_base_loop(srv.base, EVLOOP_NONBLOCK);
        usleep(2000);
        closed = 0;
        for (int i = 0; i < 8; i++)
            closed += srv.links[i].closed;
    }
    CU_ASSERT_EQUAL(closed, 2);
    CU_ASSERT_FALSE(srv.links[7].closed); /* the newcomer stays */
    CU_ASSERT(run_until(&srv, budget_holds, (int)(6 * part)));
    link_budget_stats(srv.budget, &st);
    CU_ASSERT_EQUAL(st.displaced_buffered, 1);
    CU_ASSERT(st.buffered <= 450000);
    CU_ASSERT_EQUAL(st.buffered_prefixes, 3);
    for (int i = 0; i < n; i++)
        bufferevent_free(c[i]);
    server_stop(&srv);
}

static void test_identity_share(void)
{
    struct server srv;
    struct link_budget_config cfg = {
        .max_handshakes = 64, .max_buffered_id = 140000, .max_frame = MAX_FRAME};
    server_start(&srv, &cfg);
    const size_t part = MAX_FRAME - 1;
    struct bufferevent *c[5];
    /* the share is raised to its least, 196608: three links of one
     * identity fit, from any address; a fourth passes it */
    static const char *const from[] = {"127.0.6.1", "127.0.7.1", "127.0.8.1"};
    for (int i = 0; i < 3; i++) {
        c[i] = parker_from(&srv, from[i], 0, part);
        CU_ASSERT(run_until(&srv, budget_holds, (int)(part * (size_t)(i + 1))));
    }
    c[3] = parker_from(&srv, "127.0.9.1", 0, part);
    CU_ASSERT(run_until(&srv, is_closed, 3));
    /* another identity is not affected */
    c[4] = parker_from(&srv, "127.0.9.1", 1, part);
    CU_ASSERT(run_until(&srv, budget_holds, (int)(4 * part)));
    struct link_budget_stats st;
    link_budget_stats(srv.budget, &st);
    CU_ASSERT_EQUAL(st.closed_over_share, 1);
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(srv.links[i].closed, i == 3);
        bufferevent_free(c[i]);
    }
    server_stop(&srv);
}

/* ---- setup ---------------------------------------------------------------------------- */

static int suite_init(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(tmp_root, sizeof(tmp_root), "%s/sova-test-budget-XXXXXX", tmp ? tmp : "/tmp");
    if (mkdtemp(tmp_root) == NULL)
        return -1;
    char dir[512], err[512];
    limits = wire_limits_default();
    limits.max_frame = MAX_FRAME;
    snprintf(dir, sizeof(dir), "%s/server", tmp_root);
    if (identity_load_or_create(dir, &server_id, err, sizeof(err)) != 0 ||
        tls_ctx_new(server_id, NULL, TLS_CTX_PEER, &server_tls, err, sizeof(err)) != 0) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    for (int k = 0; k < 2; k++) {
        snprintf(dir, sizeof(dir), "%s/client%d", tmp_root, k);
        if (identity_load_or_create(dir, &client_id[k], err, sizeof(err)) != 0 ||
            tls_ctx_new(client_id[k], NULL, TLS_CTX_PEER, &client_tls[k], err, sizeof(err)) != 0) {
            fprintf(stderr, "setup: %s\n", err);
            return -1;
        }
    }
    return 0;
}

static int suite_cleanup(void)
{
    tls_ctx_free(server_tls);
    identity_free(server_id);
    for (int k = 0; k < 2; k++) {
        tls_ctx_free(client_tls[k]);
        identity_free(client_id[k]);
    }
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
    return system(cmd) == 0 ? 0 : -1;
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("link_budget", suite_init, suite_cleanup);
    if (s == NULL)
        return -1;
    CU_add_test(s, "handshake slots: fair by prefix, per address, reserved", test_handshake_slots);
    CU_add_test(s, "incomplete frames: prefix share and total", test_incomplete_frames);
    CU_add_test(s, "incomplete frames: identity share", test_identity_share);
    return 0;
}
