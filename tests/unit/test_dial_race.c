/* Happy Eyeballs (common/dial_race.h) on loopback: the order of the
 * families (IPv6 first, then alternating), a refused address skipped at
 * once for the next, the winner's socket handed over, everything refused
 * reported once, and a race freed before its end calling no one. (Through
 * a broken IPv6 path to a real supernode: natbed/test_ipv6 case 4.) */
#include "cunit_main.h"
#include "dial_race.h"

#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

static void test_order(void)
{
    const int fam[] = {AF_INET, AF_INET, AF_INET6, AF_INET6, AF_INET};
    size_t order[5];
    dial_race_order(fam, 5, order);
    const size_t want[] = {2, 0, 3, 1, 4}; /* v6 first, then alternating */
    CU_ASSERT_EQUAL(memcmp(order, want, sizeof(want)), 0);
    const int v4[] = {AF_INET, AF_INET};
    dial_race_order(v4, 2, order);
    CU_ASSERT(order[0] == 0 && order[1] == 1);
}

struct outcome {
    evutil_socket_t fd;
    int index;
    char why[160];
    int calls;
};

static struct event_base *base;

static void on_done(evutil_socket_t fd, int index, const char *why, void *arg)
{
    struct outcome *o = arg;
    o->fd = fd;
    o->index = index;
    snprintf(o->why, sizeof(o->why), "%s", why ? why : "");
    o->calls++;
    event_base_loopbreak(base);
}

/* A loopback port: listening, or bound and refusing. */
static int port_of(bool listening, struct sockaddr_storage *ss, socklen_t *len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof(*ss));
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *len = sizeof(*in);
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)ss, *len) == 0);
    CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)ss, len) == 0);
    if (listening)
        CU_ASSERT_FATAL(listen(fd, 4) == 0);
    return fd;
}

static void run(void)
{
    struct timeval tv = {.tv_sec = 5};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static void test_refused_then_one_that_answers(void)
{
    base = event_base_new();
    struct sockaddr_storage a[3];
    socklen_t l[3];
    int f0 = port_of(false, &a[0], &l[0]), f1 = port_of(false, &a[1], &l[1]);
    int f2 = port_of(true, &a[2], &l[2]);
    struct outcome o = {.fd = -1};
    struct dial_race *r = dial_race_start(base, a, l, 3, NULL, 0, 3000, on_done, &o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(o.calls, 0); /* never inside dial_race_start */
    run();
    CU_ASSERT_EQUAL(o.calls, 1);
    CU_ASSERT_EQUAL(o.index, 2);
    CU_ASSERT(o.fd >= 0);
    dial_race_free(r);
    /* the winner is ours, and connected: the listener has it */
    int c = accept(f2, NULL, NULL);
    CU_ASSERT(c >= 0);
    CU_ASSERT_EQUAL(write(o.fd, "x", 1), 1);
    char b;
    CU_ASSERT_EQUAL(read(c, &b, 1), 1);
    close(c);
    close(o.fd);
    close(f0), close(f1), close(f2);
    event_base_free(base);
}

static void test_all_refused(void)
{
    base = event_base_new();
    struct sockaddr_storage a[2];
    socklen_t l[2];
    int f0 = port_of(false, &a[0], &l[0]), f1 = port_of(false, &a[1], &l[1]);
    struct outcome o = {.fd = 0};
    struct dial_race *r = dial_race_start(base, a, l, 2, NULL, 0, 3000, on_done, &o);
    run();
    CU_ASSERT_EQUAL(o.calls, 1);
    CU_ASSERT_EQUAL(o.fd, -1);
    CU_ASSERT_EQUAL(o.index, -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(o.why, "refused"));
    dial_race_free(r);
    close(f0), close(f1);
    event_base_free(base);
}

static void test_freed_early(void)
{
    base = event_base_new();
    struct sockaddr_storage a[1];
    socklen_t l[1];
    int f0 = port_of(true, &a[0], &l[0]);
    struct outcome o = {.fd = -1};
    struct dial_race *r = dial_race_start(base, a, l, 1, NULL, 0, 3000, on_done, &o);
    dial_race_free(r);
    struct timeval tv = {.tv_usec = 200000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    CU_ASSERT_EQUAL(o.calls, 0);
    close(f0);
    event_base_free(base);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("dial_race", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "IPv6 first, then alternating", test_order);
    CU_add_test(s, "refused addresses skipped at once", test_refused_then_one_that_answers);
    CU_add_test(s, "every address refused: one report", test_all_refused);
    CU_add_test(s, "freed before its end", test_freed_early);
    return 0;
}
