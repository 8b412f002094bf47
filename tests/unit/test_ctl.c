/* test_ctl.c - the control channel over real UNIX sockets in a mkdtemp
 * directory, on a real event_base run by this thread (the request decoder
 * alone is tests/unit/test_ctl_decode.c). Raw clients are
 * non-blocking sockets stepped from this thread; the blocking
 * ctl_client_request() runs in a second thread. Nothing sleeps: every wait
 * runs the loop until a condition holds, under a deadline. */
#define _GNU_SOURCE /* setresuid, setresgid */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "ctl.h"
#include "err.h"

#define WAIT_MS      10000 /* a condition that does not come is a failure, not a hang */
#define TICK_MS      5
#define HINT         "is the test server running?"
#define MAX_HELD     32
#define FLOOD_CHUNK  (64 * 1024)
#define MANY_CLIENTS 20

static char tmp_dir[64];
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static struct event_base *base;

/* ---- the loop and the test server ---------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
}

/* Run the loop until cond(arg) holds; false if the deadline passed first. */
static bool run_until(bool (*cond)(void *), void *arg)
{
    struct event *tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, TICK_MS * 1000};
    event_add(tick, &tv);
    uint64_t deadline = now_ms() + WAIT_MS;
    while (!cond(arg) && now_ms() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    bool ok = cond(arg);
    if (!ok)
        fprintf(stderr, "\n  condition not met within %d ms\n", WAIT_MS);
    return ok;
}

static bool int_at_least(void *arg)
{
    const int *p = ((const int **)arg)[0];
    const int *want = ((const int **)arg)[1];
    return *p >= *want;
}

static bool wait_count(int *counter, int want)
{
    const int *args[2] = {counter, &want};
    return run_until(int_at_least, args);
}

enum mode {
    REPLY_NOW,   /* final reply inside the callback */
    REPLY_LATER, /* a progress line now, the final one from a timer */
    REPLY_ERROR, /* ctl_reply_error */
    REPLY_BAD,   /* a final "reply" that is not an object */
    HOLD,        /* keep the conn, never reply */
    FLOOD,       /* progress lines until the client is dropped */
};

/* What the test server saw and holds. */
static struct {
    enum mode mode;
    struct ctl_server *srv;
    int requests;
    int closed;            /* closed callbacks for held conns */
    int unexpected_closed; /* closed callbacks after a final reply: must stay 0 */
    struct ctl_conn *held[MAX_HELD];
    struct ctl_request last;
    int flood_rc;
    struct event *later;
    int later_fired;
    const char *error_arg; /* REPLY_ERROR quotes it */
} h;

static void on_closed(struct ctl_conn *c, void *arg)
{
    size_t slot = (size_t)(uintptr_t)arg;
    CU_ASSERT_PTR_EQUAL(h.held[slot], c);
    h.held[slot] = NULL;
    h.closed++;
}

static void on_closed_unexpected(struct ctl_conn *c, void *arg)
{
    h.unexpected_closed++;
}

static void hold(struct ctl_conn *c)
{
    for (size_t i = 0; i < MAX_HELD; i++) {
        if (h.held[i] == NULL) {
            h.held[i] = c;
            ctl_conn_set_closed_cb(c, on_closed, (void *)(uintptr_t)i);
            return;
        }
    }
    CU_FAIL("too many held connections");
}

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
    h.later_fired++;
    for (size_t i = 0; i < MAX_HELD; i++) {
        if (h.held[i] != NULL) {
            CU_ASSERT_EQUAL(ctl_reply(h.held[i], json_pack("{s:s}", "result", "later"), true), 0);
            h.held[i] = NULL; /* no longer ours */
        }
    }
}

static void flood(struct ctl_conn *c)
{
    char *pad = malloc(FLOOD_CHUNK + 1);
    memset(pad, 'p', FLOOD_CHUNK);
    pad[FLOOD_CHUNK] = '\0';
    h.flood_rc = 0;
    for (int i = 0; i < 1000 && h.flood_rc == 0; i++)
        h.flood_rc = ctl_reply(c, json_pack("{s:s}", "pad", pad), false);
    /* Dropped, not yet closed: further replies fail harmlessly. */
    CU_ASSERT_EQUAL(ctl_reply(c, json_object(), false), SOVA_ERR_IO);
    free(pad);
}

static void on_request(struct ctl_conn *c, const struct ctl_request *req, void *arg)
{
    CU_ASSERT_PTR_EQUAL(arg, &h);
    h.requests++;
    h.last = *req;
    switch (h.mode) {
    case REPLY_NOW:
        ctl_conn_set_closed_cb(c, on_closed_unexpected, NULL);
        CU_ASSERT_EQUAL(ctl_reply(c, json_pack("{s:s}", "echo", ctl_cmd_name(req->cmd)), true), 0);
        break;
    case REPLY_LATER: {
        hold(c);
        CU_ASSERT_EQUAL(ctl_reply(c, json_pack("{s:i}", "progress", 50), false), 0);
        struct timeval tv = {0, 50 * 1000};
        evtimer_add(h.later, &tv);
        break;
    }
    case REPLY_ERROR:
        ctl_conn_set_closed_cb(c, on_closed_unexpected, NULL);
        CU_ASSERT_EQUAL(ctl_reply_error(c, "no such file: %s", h.error_arg), 0);
        break;
    case REPLY_BAD:
        CU_ASSERT_EQUAL(ctl_reply(c, json_integer(5), true), SOVA_ERR_INVALID);
        break;
    case HOLD:
        hold(c);
        break;
    case FLOOD:
        hold(c);
        flood(c);
        break;
    }
}

static void start_server(enum mode mode)
{
    memset(&h, 0, sizeof(h));
    h.mode = mode;
    h.later = evtimer_new(base, later_cb, NULL);
    char err[256] = "";
    int rc = ctl_server_new(base, sock_path, on_request, &h, &h.srv, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "\n  ctl_server_new: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
}

static void stop_server(void)
{
    ctl_server_free(h.srv);
    h.srv = NULL;
    event_free(h.later);
    CU_ASSERT_EQUAL(h.unexpected_closed, 0);
    unlink(sock_path);
}

/* ---- raw clients, stepped from this thread ------------------------------- */

static struct sockaddr_un sock_addr(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, sock_path, sizeof(sa.sun_path));
    return sa;
}

static int raw_connect(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = sock_addr();
    CU_ASSERT_EQUAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Send all of data, letting the server read when the socket is full. Stops
 * quietly if the server hangs up. */
static void raw_send(int fd, const char *data, size_t len)
{
    uint64_t deadline = now_ms() + WAIT_MS;
    for (size_t off = 0; off < len && now_ms() < deadline;) {
        ssize_t w = send(fd, data + off, len - off, MSG_NOSIGNAL);
        if (w > 0)
            off += (size_t)w;
        else if (errno == EAGAIN)
            event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        else
            return;
    }
}

struct raw_reader {
    int fd;
    char buf[8192];
    size_t len;
    bool eof;
};

static bool raw_read_to_eof(void *arg)
{
    struct raw_reader *r = arg;
    for (;;) {
        char scratch[4096];
        bool full = r->len + 1 >= sizeof(r->buf);
        ssize_t n = full ? recv(r->fd, scratch, sizeof(scratch), 0)
                         : recv(r->fd, r->buf + r->len, sizeof(r->buf) - 1 - r->len, 0);
        if (n > 0 && !full)
            r->len += (size_t)n;
        else if (n > 0)
            continue;
        else if (n == 0 || errno != EAGAIN)
            r->eof = true;
        break;
    }
    r->buf[r->len] = '\0';
    return r->eof;
}

/* Everything the server sends until it closes; r->buf holds the lines. */
static void raw_read_all(int fd, struct raw_reader *r)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    CU_ASSERT(run_until(raw_read_to_eof, r));
}

/* The reply of a raw client: exactly one final error line naming what. */
static void expect_refusal(int fd, const char *what)
{
    struct raw_reader r;
    raw_read_all(fd, &r);
    json_error_t jerr;
    json_t *j = json_loads(r.buf, 0, &jerr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT(json_is_true(json_object_get(j, "done")));
    CU_ASSERT(json_is_false(json_object_get(j, "ok")));
    const char *text = json_string_value(json_object_get(j, "error"));
    if (text == NULL || strstr(text, what) == NULL)
        fprintf(stderr, "\n  reply %s, expected an error with \"%s\"\n", r.buf, what);
    CU_ASSERT(text != NULL && strstr(text, what) != NULL);
    json_decref(j);
}

/* ---- ctl_client_request in a thread -------------------------------------- */

struct client_job {
    pthread_t thread;
    json_t *req;
    int timeout_ms;
    int rc;
    char err[512];
    json_t *lines;
    int finished; /* atomic: written by the client thread */
};

static int collect_line(json_t *line, void *arg)
{
    struct client_job *job = arg;
    return json_array_append(job->lines, line) == 0 ? 0 : SOVA_ERR_NOMEM;
}

static void *client_main(void *arg)
{
    struct client_job *job = arg;
    job->rc = ctl_client_request(sock_path, HINT, job->req, collect_line, job, job->timeout_ms,
                                 job->err, sizeof(job->err));
    __atomic_store_n(&job->finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

static bool job_finished(void *arg)
{
    struct client_job *job = arg;
    return __atomic_load_n(&job->finished, __ATOMIC_ACQUIRE) != 0;
}

/* Run one client request against the loop; the job keeps what came back. */
static void run_client(struct client_job *job, json_t *req, int timeout_ms)
{
    memset(job, 0, sizeof(*job));
    job->req = req;
    job->timeout_ms = timeout_ms;
    job->lines = json_array();
    CU_ASSERT_EQUAL_FATAL(pthread_create(&job->thread, NULL, client_main, job), 0);
    CU_ASSERT(run_until(job_finished, job));
    pthread_join(job->thread, NULL);
}

static void test_request_reply(void)
{
    start_server(REPLY_NOW);
    struct client_job job;
    run_client(&job, json_pack("{s:s}", "cmd", "status"), 5000);
    CU_ASSERT_EQUAL(job.rc, 0);
    CU_ASSERT_EQUAL(json_array_size(job.lines), 1);
    json_t *last = json_array_get(job.lines, 0);
    CU_ASSERT(json_is_true(json_object_get(last, "done")));
    CU_ASSERT(json_is_true(json_object_get(last, "ok")));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(last, "echo")), "status");
    json_decref(job.lines);
    CU_ASSERT_EQUAL(h.requests, 1);

    /* A decoded request reaches the owner as a struct. */
    run_client(&job, json_pack("{s:s, s:[s,s], s:i}", "cmd", "search", "words", "a", "b", "max", 7),
               5000);
    CU_ASSERT_EQUAL(job.rc, 0);
    CU_ASSERT_EQUAL(h.last.cmd, CTL_CMD_SEARCH);
    CU_ASSERT_EQUAL(h.last.u.search.n_words, 2);
    CU_ASSERT_EQUAL(h.last.u.search.max, 7);
    json_decref(job.lines);
    stop_server();
}

static void test_async_reply_after_timer(void)
{
    start_server(REPLY_LATER);
    struct client_job job;
    run_client(&job, json_pack("{s:s}", "cmd", "downloads"), 5000);
    CU_ASSERT_EQUAL(job.rc, 0);
    CU_ASSERT_EQUAL_FATAL(json_array_size(job.lines), 2);
    json_t *progress = json_array_get(job.lines, 0), *last = json_array_get(job.lines, 1);
    CU_ASSERT(json_is_false(json_object_get(progress, "done")));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(progress, "progress")), 50);
    CU_ASSERT(json_is_true(json_object_get(last, "done")));
    CU_ASSERT(json_is_true(json_object_get(last, "ok")));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(last, "result")), "later");
    CU_ASSERT_EQUAL(h.closed, 0);
    json_decref(job.lines);
    stop_server();
}

static void test_error_reply_reaches_client(void)
{
    static const struct {
        const char *arg, *want;
    } texts[] = {
        {"x", "no such file: x"},
        /* UTF-8 stays; a terminal escape does not reach the terminal. */
        {"caf\xc3\xa9\x1b[2J", "no such file: caf\xc3\xa9?[2J"},
        /* Not UTF-8 (a remote's name): made ASCII rather than lost. */
        {"caf\xc3\xa9\xff", "no such file: caf???"},
    };
    start_server(REPLY_ERROR);
    struct client_job job;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        h.error_arg = texts[i].arg;
        run_client(&job, json_pack("{s:s}", "cmd", "peers"), 5000);
        CU_ASSERT_EQUAL(job.rc, SOVA_ERR_INVALID);
        if (strcmp(job.err, texts[i].want) != 0)
            fprintf(stderr, "\n  got \"%s\", expected \"%s\"\n", job.err, texts[i].want);
        CU_ASSERT_STRING_EQUAL(job.err, texts[i].want);
        CU_ASSERT_EQUAL(json_array_size(job.lines), 1);
        json_decref(job.lines);
    }
    stop_server();

    /* A final reply the server cannot send still ends with a final line. */
    start_server(REPLY_BAD);
    run_client(&job, json_pack("{s:s}", "cmd", "peers"), 5000);
    CU_ASSERT_EQUAL(job.rc, SOVA_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(job.err, "internal error"));
    json_decref(job.lines);
    stop_server();
}

static void test_bad_request_over_socket(void)
{
    start_server(REPLY_NOW);
    /* Through the client, the server's decoder message becomes err. */
    struct client_job job;
    run_client(&job, json_pack("{s:s}", "cmd", "nope"), 5000);
    CU_ASSERT_EQUAL(job.rc, SOVA_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(job.err, "unknown command \"nope\""));
    json_decref(job.lines);

    int fd = raw_connect();
    raw_send(fd, "{\"cmd\":\"get\",\"id\":\"abc\"}\n", 25);
    expect_refusal(fd, "field \"id\" must be 64 hex characters, got 3");
    close(fd);
    CU_ASSERT_EQUAL(h.requests, 0);
    stop_server();
}

static void test_client_leaves_before_async_reply(void)
{
    start_server(REPLY_LATER);
    int fd = raw_connect();
    raw_send(fd, "{\"cmd\":\"status\"}\n", 17);
    CU_ASSERT(wait_count(&h.requests, 1));
    close(fd); /* before the timer replies */
    CU_ASSERT(wait_count(&h.closed, 1));
    CU_ASSERT_PTR_NULL(h.held[0]);
    CU_ASSERT_EQUAL(ctl_server_client_count(h.srv), 0);
    /* The owner's timer still fires, finds nothing held, replies to nobody. */
    CU_ASSERT(wait_count(&h.later_fired, 1));
    stop_server();
}

/* socat and nc shut their sending side at the end of their input and then
 * read: that is not leaving. */
static void test_half_closed_client_still_gets_reply(void)
{
    start_server(REPLY_LATER);
    int fd = raw_connect();
    raw_send(fd, "{\"cmd\":\"status\"}\n", 17);
    shutdown(fd, SHUT_WR);
    struct raw_reader r;
    raw_read_all(fd, &r);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.buf, "{\"progress\":50,\"done\":false}\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.buf, "\"result\":\"later\""));
    CU_ASSERT_EQUAL(h.closed, 0);
    close(fd);

    fd = raw_connect(); /* a last line without its newline */
    raw_send(fd, "{\"cmd\":\"status\"}", 16);
    shutdown(fd, SHUT_WR);
    expect_refusal(fd, "the request ended without a newline");
    close(fd);
    CU_ASSERT_EQUAL(h.requests, 1);
    stop_server();
}

static void test_too_long_line_is_refused(void)
{
    start_server(REPLY_NOW);
    size_t len = CTL_MAX_REQUEST + 100;
    char *junk = malloc(len);
    memset(junk, 'x', len);
    int fd = raw_connect();
    raw_send(fd, junk, len);
    expect_refusal(fd, "request too long");
    close(fd);
    CU_ASSERT_EQUAL(h.requests, 0);

    /* A line of exactly CTL_MAX_REQUEST bytes (leading blanks) is still fine. */
    memset(junk, ' ', CTL_MAX_REQUEST);
    memcpy(junk + CTL_MAX_REQUEST - 16, "{\"cmd\":\"status\"}", 16);
    junk[CTL_MAX_REQUEST] = '\n';
    fd = raw_connect();
    raw_send(fd, junk, CTL_MAX_REQUEST + 1);
    struct raw_reader r;
    raw_read_all(fd, &r);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.buf, "\"echo\":\"status\""));
    close(fd);
    CU_ASSERT_EQUAL(h.requests, 1);
    free(junk);
    stop_server();
}

static void test_many_concurrent_clients(void)
{
    start_server(HOLD);
    int fds[MANY_CLIENTS];
    for (int i = 0; i < MANY_CLIENTS; i++)
        fds[i] = raw_connect();
    for (int i = 0; i < MANY_CLIENTS; i++)
        raw_send(fds[i], "{\"cmd\":\"peers\"}\n", 16);
    CU_ASSERT(wait_count(&h.requests, MANY_CLIENTS));
    CU_ASSERT_EQUAL(ctl_server_client_count(h.srv), MANY_CLIENTS);
    later_cb(-1, 0, NULL); /* answer them all */
    for (int i = 0; i < MANY_CLIENTS; i++) {
        struct raw_reader r;
        raw_read_all(fds[i], &r);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.buf, "\"result\":\"later\""));
        CU_ASSERT_PTR_NOT_NULL(strstr(r.buf, "\"done\":true"));
        close(fds[i]);
    }
    CU_ASSERT_EQUAL(h.closed, 0);
    stop_server();
}

static void test_client_that_does_not_read_is_dropped(void)
{
    start_server(FLOOD);
    int fd = raw_connect();
    raw_send(fd, "{\"cmd\":\"status\"}\n", 17);
    CU_ASSERT(wait_count(&h.closed, 1));
    CU_ASSERT_EQUAL(h.flood_rc, SOVA_ERR_TOO_LARGE);
    CU_ASSERT_EQUAL(ctl_server_client_count(h.srv), 0);
    close(fd);
    stop_server();
}

static void test_client_timeout(void)
{
    start_server(HOLD);
    struct client_job job;
    run_client(&job, json_pack("{s:s}", "cmd", "status"), 200);
    CU_ASSERT_EQUAL(job.rc, SOVA_ERR_TIMEOUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(job.err, "did not answer within 200 ms"));
    json_decref(job.lines);
    /* The client gave up and closed: the held conn is reported gone. */
    CU_ASSERT(wait_count(&h.closed, 1));
    stop_server();
}

static void test_server_free_closes_held_clients(void)
{
    start_server(HOLD);
    int fd = raw_connect();
    raw_send(fd, "{\"cmd\":\"status\"}\n", 17);
    CU_ASSERT(wait_count(&h.requests, 1));
    ctl_server_free(h.srv);
    h.srv = NULL;
    CU_ASSERT_EQUAL(h.closed, 1);
    struct stat st;
    CU_ASSERT_EQUAL(lstat(sock_path, &st), -1); /* free unlinks the socket */
    struct raw_reader r;
    raw_read_all(fd, &r);
    CU_ASSERT_EQUAL(r.len, 0);
    close(fd);
    stop_server();
}

/* ---- the socket file ----------------------------------------------------- */

static void test_socket_mode_is_0600(void)
{
    mode_t old = umask(0); /* even a careless umask does not widen it */
    start_server(REPLY_NOW);
    umask(old);
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(lstat(sock_path, &st), 0);
    CU_ASSERT(S_ISSOCK(st.st_mode));
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0600);
    stop_server();
}

static void test_stale_socket_is_replaced(void)
{
    /* A socket file nobody listens on, as a crashed daemon leaves it. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = sock_addr();
    CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);

    struct client_job job;
    run_client(&job, json_pack("{s:s}", "cmd", "status"), 5000);
    CU_ASSERT_EQUAL(job.rc, SOVA_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(job.err, "Connection refused (" HINT ")"));
    json_decref(job.lines);

    start_server(REPLY_NOW);
    run_client(&job, json_pack("{s:s}", "cmd", "status"), 5000);
    CU_ASSERT_EQUAL(job.rc, 0);
    json_decref(job.lines);
    stop_server();
}

static void test_second_server_fails_clearly(void)
{
    start_server(REPLY_NOW);
    struct ctl_server *second = NULL;
    char err[256] = "";
    CU_ASSERT_EQUAL(ctl_server_new(base, sock_path, on_request, &h, &second, err, sizeof(err)),
                    SOVA_ERR_IO);
    CU_ASSERT_PTR_NULL(second);
    char want[256];
    snprintf(want, sizeof(want), "another daemon is running on %s", sock_path);
    CU_ASSERT_STRING_EQUAL(err, want);
    /* The first one is untouched and still answers. */
    struct client_job job;
    run_client(&job, json_pack("{s:s}", "cmd", "status"), 5000);
    CU_ASSERT_EQUAL(job.rc, 0);
    json_decref(job.lines);
    stop_server();
}

static void test_bad_paths(void)
{
    struct ctl_server *srv = NULL;
    char err[512] = "";
    /* Something that is not a socket is never removed. */
    FILE *f = fopen(sock_path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);
    CU_ASSERT_EQUAL(ctl_server_new(base, sock_path, on_request, &h, &srv, err, sizeof(err)),
                    SOVA_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "exists and is not a socket"));
    struct stat st;
    CU_ASSERT_EQUAL(lstat(sock_path, &st), 0);
    CU_ASSERT(S_ISREG(st.st_mode));
    unlink(sock_path);

    char long_path[200];
    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[0] = '/';
    long_path[sizeof(long_path) - 1] = '\0';
    CU_ASSERT_EQUAL(ctl_server_new(base, long_path, on_request, &h, &srv, err, sizeof(err)),
                    SOVA_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "control socket path is too long (199 bytes, at most 107)"));
    CU_ASSERT_PTR_NULL(srv);

    /* The client: nobody there at all. */
    struct client_job job;
    run_client(&job, json_pack("{s:s}", "cmd", "status"), 5000);
    CU_ASSERT_EQUAL(job.rc, SOVA_ERR_IO);
    char want[512];
    snprintf(want, sizeof(want), "cannot reach the daemon at %s: No such file or directory (%s)",
             sock_path, HINT);
    CU_ASSERT_STRING_EQUAL(job.err, want);
    json_decref(job.lines);
    char err2[256];
    CU_ASSERT_EQUAL(ctl_client_request(sock_path, NULL, json_pack("{s:s}", "cmd", "status"), NULL,
                                       NULL, 1000, err2, sizeof(err2)),
                    SOVA_ERR_IO);
    CU_ASSERT_PTR_NULL(strstr(err2, "("));
}

/* Another user (root can be one: a child drops to nobody) is refused even
 * when the socket's mode would let it in. */
struct child {
    pid_t pid;
    int status;
    bool reaped;
};

static bool child_exited(void *arg)
{
    struct child *c = arg;
    if (!c->reaped)
        c->reaped = waitpid(c->pid, &c->status, WNOHANG) == c->pid;
    return c->reaped;
}

static void test_other_user_is_refused(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "(needs root to act as another user; skipped) ");
        return;
    }
    start_server(REPLY_NOW);
    chmod(tmp_dir, 0711);
    chmod(sock_path, 0666);
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0)
            _exit(3);
        char err[256] = "";
        int rc = ctl_client_request(sock_path, NULL, json_pack("{s:s}", "cmd", "status"), NULL,
                                    NULL, 5000, err, sizeof(err));
        /* The client refuses first: the daemon is not its user's (and the
         * daemon would refuse it too). */
        if (rc != SOVA_ERR_FOREIGN)
            fprintf(stderr, "\n  child: rc %d: %s\n", rc, err);
        _exit(rc == SOVA_ERR_FOREIGN && strstr(err, "runs as user 0, not as you (65534)") ? 0 : 1);
    }
    struct child child = {.pid = pid};
    CU_ASSERT(run_until(child_exited, &child));
    CU_ASSERT(WIFEXITED(child.status) && WEXITSTATUS(child.status) == 0);
    CU_ASSERT_EQUAL(h.requests, 0);
    chmod(tmp_dir, 0700);
    stop_server();
}

/* ---- suite --------------------------------------------------------------- */

static int suite_init(void)
{
    signal(SIGPIPE, SIG_IGN); /* as evloop_new() does in the daemons */
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/sova-ctl-XXXXXX");
    if (mkdtemp(tmp_dir) == NULL)
        return -1;
    snprintf(sock_path, sizeof(sock_path), "%s/ctl.sock", tmp_dir);
    base = event_base_new();
    return base ? 0 : -1;
}

static int suite_cleanup(void)
{
    unlink(sock_path);
    rmdir(tmp_dir);
    event_base_free(base);
    return 0;
}

/* ---- sink conns (another transport, ctl.h) ---------------------------------- */

struct sink_log {
    int lines, finals, fail_first_final;
    bool last_ok;
    char last_error[256];
    int closed;
};

static int sink_fn(json_t *line, bool done, void *arg)
{
    struct sink_log *l = arg;
    CU_ASSERT_EQUAL(json_is_true(json_object_get(line, "done")), done);
    l->lines++;
    if (!done)
        return 0;
    l->finals++;
    if (l->fail_first_final && l->finals == 1)
        return -1;
    l->last_ok = json_is_true(json_object_get(line, "ok"));
    const char *e = json_string_value(json_object_get(line, "error"));
    snprintf(l->last_error, sizeof(l->last_error), "%s", e ? e : "");
    return 0;
}

static void sink_closed(struct ctl_conn *conn, void *arg)
{
    (void)conn;
    ((struct sink_log *)arg)->closed++;
}

static void test_sink_replies(void)
{
    struct ctl_request req = {.cmd = CTL_CMD_DOWNLOADS};
    struct sink_log l = {0};
    struct ctl_conn *c = ctl_sink_conn_new(&req, sink_fn, &l);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(ctl_conn_request(c)->cmd, CTL_CMD_DOWNLOADS);
    ctl_conn_set_closed_cb(c, sink_closed, &l);
    CU_ASSERT_EQUAL(ctl_reply(c, json_pack("{s:i}", "progress", 1), false), 0);
    CU_ASSERT_EQUAL(ctl_reply(c, json_pack("{s:i}", "downloads", 0), true), 0);
    /* c is freed: the closed callback never runs after a final reply */
    CU_ASSERT_EQUAL(l.lines, 2);
    CU_ASSERT_EQUAL(l.finals, 1);
    CU_ASSERT_TRUE(l.last_ok);
    CU_ASSERT_EQUAL(l.closed, 0);
}

/* A handler that answers and then still reads the request it was handed
 * (as op_control's get does): under the dispatch, the conn lives until the
 * handler returns (ASan and valgrind see a read after free otherwise). */
static void answer_then_read(struct ctl_conn *conn, const struct ctl_request *req, void *arg)
{
    ctl_reply(conn, json_pack("{s:i}", "accepted", 1), true);
    *(int *)arg = (int)req->cmd + 100;
}

static void test_sink_dispatch_keeps_request(void)
{
    struct ctl_request req = {.cmd = CTL_CMD_GET};
    struct sink_log l = {0};
    struct ctl_conn *c = ctl_sink_conn_new(&req, sink_fn, &l);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    int seen = 0;
    ctl_sink_conn_dispatch(c, answer_then_read, &seen);
    CU_ASSERT_EQUAL(seen, (int)CTL_CMD_GET + 100);
    CU_ASSERT_EQUAL(l.finals, 1);
}

static void test_sink_error_and_internal_error(void)
{
    struct ctl_request req = {.cmd = CTL_CMD_STATUS};
    struct sink_log l = {0};
    struct ctl_conn *c = ctl_sink_conn_new(&req, sink_fn, &l);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    ctl_reply_error(c, "no such \x01thing");
    CU_ASSERT_FALSE(l.last_ok);
    CU_ASSERT_STRING_EQUAL(l.last_error, "no such ?thing");
    /* a final line the transport cannot take becomes the internal error */
    struct sink_log m = {.fail_first_final = 1};
    c = ctl_sink_conn_new(&req, sink_fn, &m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_NOT_EQUAL(ctl_reply(c, json_pack("{s:i}", "x", 1), true), 0);
    CU_ASSERT_EQUAL(m.finals, 2);
    CU_ASSERT_FALSE(m.last_ok);
    CU_ASSERT_PTR_NOT_NULL(strstr(m.last_error, "internal error"));
}

static void test_sink_client_gone(void)
{
    struct ctl_request req = {.cmd = CTL_CMD_SEARCH};
    struct sink_log l = {0};
    struct ctl_conn *c = ctl_sink_conn_new(&req, sink_fn, &l);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    ctl_conn_set_closed_cb(c, sink_closed, &l);
    ctl_sink_conn_gone(c); /* the owner is told; the conn is freed */
    CU_ASSERT_EQUAL(l.closed, 1);
    CU_ASSERT_EQUAL(l.lines, 0);
}

int test_register(void)
{
    CU_pSuite srv = CU_add_suite("ctl_socket", suite_init, suite_cleanup);
    if (srv == NULL)
        return -1;
    CU_add_test(srv, "a client request gets a reply", test_request_reply);
    CU_add_test(srv, "async reply after a timer", test_async_reply_after_timer);
    CU_add_test(srv, "error replies reach the client", test_error_reply_reaches_client);
    CU_add_test(srv, "a bad request gets an error and a close", test_bad_request_over_socket);
    CU_add_test(srv, "client leaves before the async reply", test_client_leaves_before_async_reply);
    CU_add_test(srv, "a half-closed client still gets its reply",
                test_half_closed_client_still_gets_reply);
    CU_add_test(srv, "over-long line is refused", test_too_long_line_is_refused);
    CU_add_test(srv, "many concurrent clients", test_many_concurrent_clients);
    CU_add_test(srv, "a client that does not read is dropped",
                test_client_that_does_not_read_is_dropped);
    CU_add_test(srv, "client timeout", test_client_timeout);
    CU_add_test(srv, "server free closes held clients", test_server_free_closes_held_clients);
    CU_add_test(srv, "socket mode is 0600", test_socket_mode_is_0600);
    CU_add_test(srv, "stale socket is replaced", test_stale_socket_is_replaced);
    CU_add_test(srv, "second server fails clearly", test_second_server_fails_clearly);
    CU_add_test(srv, "bad paths", test_bad_paths);
    CU_add_test(srv, "another user is refused", test_other_user_is_refused);
    CU_pSuite sink = CU_add_suite("ctl_sink", NULL, NULL);
    if (sink == NULL)
        return -1;
    CU_add_test(sink, "a sink conn's replies go to its function", test_sink_replies);
    CU_add_test(sink, "a handler may read its request after answering, inside the dispatch",
                test_sink_dispatch_keeps_request);
    CU_add_test(sink, "errors and an internal error through a sink",
                test_sink_error_and_internal_error);
    CU_add_test(sink, "a sink client gone runs the closed callback", test_sink_client_gone);
    return 0;
}
