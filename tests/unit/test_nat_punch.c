/* One end of a TCP hole punch (nat/nat_punch.h), with real sockets on
 * loopback: an end connects from the port it told; an end whose other side
 * is late keeps dialing from that port until it is there; an end with no
 * one on the other side gives up at its deadline and says why; a freed end
 * calls no one. (The simultaneous open through real NATs: natbed/test_matrix
 * and natbed/test_punch.) */
#include "cunit_main.h"
#include "nat_punch.h"

#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

struct end {
    struct nat_punch *p;
    struct bufferevent *bev;
    char why[128];
    bool done;
};

static struct event_base *base;
static int pending;

static void on_done(struct bufferevent *bev, const char *why, void *arg)
{
    struct end *e = arg;
    e->bev = bev;
    e->done = true;
    snprintf(e->why, sizeof(e->why), "%s", why ? why : "");
    if (--pending == 0)
        event_base_loopbreak(base);
}

static struct nat_punch *bound_end(void)
{
    struct sockaddr_in lo = {.sin_family = AF_INET};
    lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char err[128];
    struct nat_punch *p =
        nat_punch_new(base, WIRE_ADDR_IPV4, (struct sockaddr *)&lo, sizeof(lo), err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT(nat_punch_port(p) != 0);
    return p;
}

static struct wire_addr loopback(uint16_t port)
{
    struct wire_addr a = {.family = WIRE_ADDR_IPV4, .ip = {127, 0, 0, 1}, .port = port};
    return a;
}

static void run(unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static void free_end(struct end *e)
{
    if (e->bev)
        bufferevent_free(e->bev);
    nat_punch_free(e->p);
}

/* A plain socket bound to a loopback port; listening if asked. */
static int other_side(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in lo = {.sin_family = AF_INET};
    lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(lo);
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&lo, sizeof(lo)) == 0);
    CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&lo, &len) == 0);
    *port = ntohs(lo.sin_port);
    return fd;
}

/* Connected: the bufferevent handed over carries bytes to the other side,
 * from the port the end told. (Loopback answers a SYN at once, so two
 * ends cannot be in SYN-SENT together here: the simultaneous open itself
 * runs through real NATs in natbed/test_matrix.) */
static void test_connects_from_its_port(void)
{
    base = event_base_new();
    uint16_t port;
    int lfd = other_side(&port);
    CU_ASSERT_FATAL(listen(lfd, 1) == 0);
    struct end a = {.p = bound_end()};
    struct wire_addr to = loopback(port);
    pending = 1;
    CU_ASSERT_EQUAL(nat_punch_start(a.p, &to, 0, 3000, on_done, &a), 0);
    CU_ASSERT_EQUAL(nat_punch_start(a.p, &to, 0, 3000, on_done, &a), -1); /* once */
    run(3000);
    CU_ASSERT_FATAL(a.done && a.bev != NULL);
    struct sockaddr_in from;
    socklen_t len = sizeof(from);
    int cfd = accept(lfd, (struct sockaddr *)&from, &len);
    CU_ASSERT_FATAL(cfd >= 0);
    CU_ASSERT_EQUAL(ntohs(from.sin_port), nat_punch_port(a.p));
    bufferevent_write(a.bev, "punched", 7);
    run(100);
    char got[8] = {0};
    CU_ASSERT_EQUAL(read(cfd, got, 7), 7);
    CU_ASSERT_STRING_EQUAL(got, "punched");
    close(cfd);
    close(lfd);
    bufferevent_free(a.bev);
    nat_punch_free(a.p);
    event_base_free(base);
}

/* The other side is not there for 400 ms (its port refuses): the end keeps
 * dialing from the same port, and connects once it is. */
static void test_late_other_side(void)
{
    base = event_base_new();
    uint16_t port;
    int lfd = other_side(&port);
    struct end a = {.p = bound_end()};
    uint16_t mine = nat_punch_port(a.p);
    struct wire_addr to = loopback(port);
    pending = 1;
    CU_ASSERT_EQUAL(nat_punch_start(a.p, &to, 0, 3000, on_done, &a), 0);
    run(400);
    CU_ASSERT(!a.done);
    CU_ASSERT(nat_punch_attempts(a.p) >= 2);
    CU_ASSERT_FATAL(listen(lfd, 1) == 0);
    run(3000);
    CU_ASSERT_FATAL(a.done && a.bev != NULL);
    struct sockaddr_in from;
    socklen_t len = sizeof(from);
    int cfd = accept(lfd, (struct sockaddr *)&from, &len);
    CU_ASSERT_FATAL(cfd >= 0);
    CU_ASSERT_EQUAL(ntohs(from.sin_port), mine); /* every connect from the port it told */
    close(cfd);
    close(lfd);
    bufferevent_free(a.bev);
    nat_punch_free(a.p);
    event_base_free(base);
}

static void test_nobody_there(void)
{
    base = event_base_new();
    struct end a = {.p = bound_end()};
    struct nat_punch *other = bound_end(); /* bound, never dialing: refuses */
    struct wire_addr to = loopback(nat_punch_port(other));
    pending = 1;
    CU_ASSERT_EQUAL(nat_punch_start(a.p, &to, 0, 500, on_done, &a), 0);
    run(3000);
    CU_ASSERT(a.done);
    CU_ASSERT_PTR_NULL(a.bev);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.why, "refused"));
    CU_ASSERT(nat_punch_attempts(a.p) >= 3);
    free_end(&a);
    nat_punch_free(other);
    event_base_free(base);
}

/* The callback frees the end, then reads why: still valid (ASan). */
static void on_done_free(struct bufferevent *bev, const char *why, void *arg)
{
    struct end *e = arg;
    nat_punch_free(e->p);
    e->p = NULL;
    on_done(bev, why, arg);
}

static void test_callback_frees(void)
{
    base = event_base_new();
    struct end a = {.p = bound_end()};
    struct nat_punch *other = bound_end();
    struct wire_addr to = loopback(nat_punch_port(other));
    pending = 1;
    CU_ASSERT_EQUAL(nat_punch_start(a.p, &to, 0, 300, on_done_free, &a), 0);
    run(2000);
    CU_ASSERT(a.done);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.why, "refused"));
    nat_punch_free(other);
    event_base_free(base);
}

/* Freed while dialing: no callback, nothing left behind. */
static void test_cancel(void)
{
    base = event_base_new();
    struct end a = {.p = bound_end()};
    struct nat_punch *other = bound_end();
    struct wire_addr to = loopback(nat_punch_port(other));
    CU_ASSERT_EQUAL(nat_punch_start(a.p, &to, 100, 2000, on_done, &a), 0);
    run(300);
    nat_punch_free(a.p);
    run(200);
    CU_ASSERT(!a.done);
    nat_punch_free(other);
    event_base_free(base);
}

static void test_routable(void)
{
    struct wire_addr lo = loopback(7071);
    CU_ASSERT(nat_punch_routable(&lo));
    struct wire_addr none = {0};
    CU_ASSERT(!nat_punch_routable(&none)); /* no family: nothing to route */
}

static void test_delay(void)
{
    CU_ASSERT_EQUAL(nat_punch_delay_ms(0), 0);
    CU_ASSERT_EQUAL(nat_punch_delay_ms(80), 40);
    CU_ASSERT_EQUAL(nat_punch_delay_ms(1000000), 5000); /* a silly round trip is capped */
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("nat_punch", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "connects from the port it told", test_connects_from_its_port);
    CU_add_test(s, "the other side starts late", test_late_other_side);
    CU_add_test(s, "nobody there: gives up at the deadline", test_nobody_there);
    CU_add_test(s, "freed while dialing", test_cancel);
    CU_add_test(s, "freed by its own callback", test_callback_frees);
    CU_add_test(s, "the moment to dial", test_delay);
    CU_add_test(s, "a route to an address", test_routable);
    return 0;
}
