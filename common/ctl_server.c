/* ctl_server.c - the daemon side of the control socket, on libevent.
 *
 * A connection moves READING -> DISPATCHED -> CLOSING. READING waits for one
 * line under a deadline and a hard length cap (the input high watermark is
 * CTL_MAX_REQUEST + 1, so more is never buffered). The decoded request goes to
 * the owner (DISPATCHED), who replies now or later. CLOSING flushes the final
 * line under a deadline and then frees the connection. A connection is freed
 * only from a libevent callback or ctl_server_free(), never inside a call the
 * owner makes, which is what makes the lifetime rule of ctl.h hold.
 */
#define _GNU_SOURCE /* struct ucred, SO_PEERCRED */
#define SOVA_CTL_MODULE
#include "ctl.h"
#include "clock.h"
#include "ctl_internal.h"
#include "err.h"
#include "statedir.h"
#include "log.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define CTL_ACCEPT_RETRY_MS 100   /* pause accepting after e.g. EMFILE */
#define CTL_ACCEPT_LOG_MS   10000 /* ... and log it at most this often */

enum conn_state {
    CONN_READING,    /* waiting for the request line */
    CONN_DISPATCHED, /* the owner holds the conn */
    CONN_CLOSING,    /* flushing the last line, or dropped; freed from the loop */
};

struct ctl_conn {
    struct ctl_server *srv;
    struct bufferevent *bev;
    struct event *finish_timer; /* flush deadline, or "finish now" */
    enum conn_state state;
    bool owner_holds; /* request handed out and no final reply yet */
    ctl_closed_fn *closed_cb;
    void *closed_arg;
    struct ctl_conn *prev, *next;
    struct ctl_request req;
    ctl_sink_fn *sink; /* not NULL: a conn of another transport (no srv, no bev) */
    void *sink_arg;
    bool in_dispatch; /* ctl_sink_conn_dispatch is running the handler */
    bool finished;    /* ... and the final reply came: freed when it returns */
};

struct ctl_server {
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *accept_retry;
    ctl_request_fn *cb;
    void *arg;
    uid_t uid;
    dev_t dev; /* the socket file we made, so free() unlinks only that */
    ino_t ino;
    struct ctl_conn *conns;
    size_t n_conns;
    uint64_t accept_errors, errors_at_log, logged_ms; /* one log line per CTL_ACCEPT_LOG_MS */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* ---- writing lines ------------------------------------------------------- */

static int add_to_evbuffer(const char *buf, size_t size, void *data)
{
    return evbuffer_add(data, buf, size);
}

/* obj (stolen) + "done" [+ "ok"] as one line at the end of out: the whole
 * line or nothing (it is built aside, then moved), so a failure never leaves
 * half a line on the stream. */
static int put_line(struct evbuffer *out, json_t *obj, bool done)
{
    if (obj == NULL)
        return SOVA_ERR_NOMEM;
    int rc = 0;
    struct evbuffer *line = NULL;
    if (!json_is_object(obj))
        rc = SOVA_ERR_INVALID;
    else if (json_object_set_new(obj, "done", json_boolean(done)) != 0 ||
             (done && json_object_get(obj, "ok") == NULL &&
              json_object_set_new(obj, "ok", json_true()) != 0) ||
             (line = evbuffer_new()) == NULL ||
             json_dump_callback(obj, add_to_evbuffer, line, JSON_COMPACT) != 0 ||
             evbuffer_add(line, "\n", 1) != 0 || evbuffer_add_buffer(out, line) != 0)
        rc = SOVA_ERR_NOMEM;
    if (line != NULL)
        evbuffer_free(line);
    json_decref(obj);
    return rc;
}

/* {"ok": false, "error": text}. Control characters go (a CLI prints the
 * text on a terminal); text that is not valid UTF-8 (a cut multi-byte
 * character, a remote's file name) is made ASCII so it still encodes. */
static json_t *error_object(char *text)
{
    ctl_sanitize_text(text, false);
    json_t *s = json_string(text);
    if (s == NULL) {
        ctl_sanitize_text(text, true);
        s = json_string(text);
    }
    return json_pack("{s:b, s:o}", "ok", 0, "error", s);
}

/* ---- connection life ----------------------------------------------------- */

static void conn_free(struct ctl_conn *c)
{
    struct ctl_server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->n_conns--;
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->finish_timer)
        event_free(c->finish_timer);
    free(c);
}

/* The end of every connection: tell the owner if it still holds it. */
static void conn_finish(struct ctl_conn *c)
{
    if (c->owner_holds && c->closed_cb) {
        c->owner_holds = false;
        c->closed_cb(c, c->closed_arg);
    }
    conn_free(c);
}

static void finish_cb(evutil_socket_t fd, short what, void *arg)
{
    conn_finish(arg);
}

/* Flush what is queued (the final line), then finish; bounded by a timer. */
static void conn_close_after_flush(struct ctl_conn *c)
{
    c->state = CONN_CLOSING;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_set_timeouts(c->bev, NULL, NULL);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        event_active(c->finish_timer, EV_TIMEOUT, 1);
        return;
    }
    struct timeval tv = ctl_timeval_ms(CTL_FLUSH_TIMEOUT_MS);
    evtimer_add(c->finish_timer, &tv);
}

/* The client is gone or misbehaves: discard output, finish from the loop. */
static void conn_drop(struct ctl_conn *c)
{
    c->state = CONN_CLOSING;
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_drain(out, evbuffer_get_length(out));
    event_active(c->finish_timer, EV_TIMEOUT, 1);
}

/* Queue a line; the bound on queued output is what keeps a client that does
 * not read from growing the daemon. */
static int conn_send(struct ctl_conn *c, json_t *obj, bool done)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int rc = put_line(out, obj, done);
    if (rc == 0 && evbuffer_get_length(out) > CTL_MAX_OUTPUT) {
        log_warn("ctl", "client is not reading (%zu bytes queued), dropping it",
                 evbuffer_get_length(out));
        conn_drop(c);
        return SOVA_ERR_TOO_LARGE;
    }
    return rc;
}

/* A final error line for a connection the owner never held. */
static void conn_refuse(struct ctl_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void conn_refuse(struct ctl_conn *c, const char *fmt, ...)
{
    char text[CTL_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    log_debug("ctl", "refusing a request: %s", text);
    if (conn_send(c, error_object(text), true) == 0)
        conn_close_after_flush(c);
    else if (c->state != CONN_CLOSING)
        conn_drop(c);
}

/* ---- owner API ----------------------------------------------------------- */

void ctl_conn_set_closed_cb(struct ctl_conn *conn, ctl_closed_fn *fn, void *arg)
{
    conn->closed_cb = fn;
    conn->closed_arg = arg;
}

/* obj (stolen) + "done" [+ "ok"], as put_line makes it, for a sink. */
static int sink_send(struct ctl_conn *c, json_t *obj, bool done)
{
    if (obj == NULL)
        return SOVA_ERR_NOMEM;
    int rc = 0;
    if (!json_is_object(obj))
        rc = SOVA_ERR_INVALID;
    else if (json_object_set_new(obj, "done", json_boolean(done)) != 0 ||
             (done && json_object_get(obj, "ok") == NULL &&
              json_object_set_new(obj, "ok", json_true()) != 0))
        rc = SOVA_ERR_NOMEM;
    else if (c->sink(obj, done, c->sink_arg) != 0)
        rc = SOVA_ERR_IO;
    json_decref(obj);
    return rc;
}

/* ctl_reply for a sink conn: a final line frees it (the transport forgot it
 * in its fn, and the owner by the lifetime rule). */
static int sink_reply(struct ctl_conn *c, json_t *obj, bool done)
{
    int rc = sink_send(c, obj, done);
    if (!done)
        return rc;
    if (rc != 0) {
        char text[] = "internal error: the daemon could not encode its reply";
        sink_send(c, error_object(text), true);
    }
    /* Inside the handler's call the request it was handed (c->req) may
     * still be read after its final reply: freed when the call returns. */
    if (c->in_dispatch)
        c->finished = true;
    else
        free(c);
    return rc;
}

void ctl_sink_conn_dispatch(struct ctl_conn *c, ctl_request_fn *cb, void *arg)
{
    c->in_dispatch = true;
    cb(c, &c->req, arg);
    c->in_dispatch = false;
    if (c->finished)
        free(c);
}

struct ctl_conn *ctl_sink_conn_new(const struct ctl_request *req, ctl_sink_fn *fn, void *arg)
{
    struct ctl_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->req = *req;
    c->sink = fn;
    c->sink_arg = arg;
    c->state = CONN_DISPATCHED;
    c->owner_holds = true;
    return c;
}

const struct ctl_request *ctl_conn_request(const struct ctl_conn *conn)
{
    return &conn->req;
}

void ctl_sink_conn_gone(struct ctl_conn *c)
{
    if (c->owner_holds && c->closed_cb) {
        c->owner_holds = false;
        c->closed_cb(c, c->closed_arg);
    }
    free(c);
}

int ctl_reply(struct ctl_conn *c, json_t *obj, bool done)
{
    if (c->sink != NULL)
        return sink_reply(c, obj, done);
    if (c->state != CONN_DISPATCHED) {
        json_decref(obj);
        return SOVA_ERR_IO;
    }
    if (done)
        c->owner_holds = false;
    int rc = conn_send(c, obj, done);
    if (rc == SOVA_ERR_TOO_LARGE)
        return rc;
    if (rc != 0 && done) {
        /* The owner's final line did not encode: the client still gets one. */
        char text[] = "internal error: the daemon could not encode its reply";
        if (conn_send(c, error_object(text), true) != 0) {
            conn_drop(c);
            return rc;
        }
    }
    if (done)
        conn_close_after_flush(c);
    return rc;
}

int ctl_reply_error(struct ctl_conn *c, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    return ctl_reply(c, error_object(text), true);
}

/* ---- reading the request ------------------------------------------------- */

static void dispatch(struct ctl_conn *c, const char *line, size_t len)
{
    char err[CTL_ERR_MAX];
    if (ctl_request_decode(line, len, &c->req, err, sizeof(err)) != 0) {
        conn_refuse(c, "%s", err);
        return;
    }
    c->state = CONN_DISPATCHED;
    c->owner_holds = true;
    /* From now on the owner decides how long it takes; the client's EOF
     * still tells us it left. */
    bufferevent_set_timeouts(c->bev, NULL, NULL);
    log_debug("ctl", "request \"%s\"", ctl_cmd_name(c->req.cmd));
    c->srv->cb(c, &c->req, c->srv->arg);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct ctl_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (c->state != CONN_READING) {
        /* One request per connection: anything after it is ignored. */
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    size_t eol_len = 0;
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
    size_t have = evbuffer_get_length(in);
    if (eol.pos >= 0 ? (size_t)eol.pos > CTL_MAX_REQUEST : have > CTL_MAX_REQUEST) {
        evbuffer_drain(in, have);
        conn_refuse(c, "request too long (more than %d bytes before the newline)", CTL_MAX_REQUEST);
        return;
    }
    if (eol.pos < 0)
        return; /* wait for the rest of the line */
    size_t len = (size_t)eol.pos;
    const char *line = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
    if (line == NULL && len > 0) {
        conn_drop(c);
        return;
    }
    dispatch(c, line ? line : "", len);
    evbuffer_drain(in, evbuffer_get_length(in));
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct ctl_conn *c = arg;
    /* The output is empty: the final line is out. */
    if (c->state == CONN_CLOSING) {
        event_del(c->finish_timer);
        conn_finish(c);
    }
}

/* After EOF on read: did the client close the socket, or only shut its
 * sending side (shutdown(SHUT_WR), as socat and nc do at the end of their
 * input)? Linux reports POLLHUP on a UNIX stream socket only in the first
 * case. */
static bool client_fully_closed(struct bufferevent *bev)
{
    struct pollfd p = {.fd = bufferevent_getfd(bev), .events = 0};
    return poll(&p, 1, 0) != 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct ctl_conn *c = arg;
    if (c->state == CONN_READING && (what & BEV_EVENT_TIMEOUT)) {
        conn_refuse(c, "no request within %d ms", CTL_REQUEST_TIMEOUT_MS);
        return;
    }
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && !client_fully_closed(bev)) {
        /* Half-closed: it still reads. libevent has stopped reading. */
        if (c->state == CONN_READING)
            conn_refuse(c, "the request ended without a newline");
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        if (c->owner_holds)
            log_debug("ctl", "client left before the reply to \"%s\"", ctl_cmd_name(c->req.cmd));
        event_del(c->finish_timer);
        conn_finish(c);
    }
}

/* ---- accepting ----------------------------------------------------------- */

static bool peer_uid(evutil_socket_t fd, uid_t *uid)
{
    struct ucred uc;
    socklen_t len = sizeof(uc);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0 || len != sizeof(uc))
        return false;
    *uid = uc.uid;
    return true;
}

static void accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct ctl_server *srv = arg;
    struct ctl_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        evutil_closesocket(fd);
        return;
    }
    c->srv = srv;
    c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->finish_timer = evtimer_new(srv->base, finish_cb, c);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    if (c->bev == NULL || c->finish_timer == NULL) {
        if (c->bev == NULL)
            evutil_closesocket(fd);
        conn_free(c);
        return;
    }
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, CTL_MAX_REQUEST + 1);
    struct timeval tv = ctl_timeval_ms(CTL_REQUEST_TIMEOUT_MS);
    bufferevent_set_timeouts(c->bev, &tv, NULL);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);

    /* Defence in depth behind the 0600 socket: only our own user and root. */
    uid_t uid;
    if (srv->n_conns > CTL_MAX_CLIENTS) {
        log_warn("ctl", "refusing a client: %d already connected", CTL_MAX_CLIENTS);
        conn_refuse(c, "too many control clients (at most %d)", CTL_MAX_CLIENTS);
    } else if (!peer_uid(fd, &uid)) {
        log_warn("ctl", "refusing a client: SO_PEERCRED failed: %s", strerror(errno));
        conn_refuse(c, "permission denied: cannot read the client's credentials");
    } else if (uid != srv->uid && uid != 0) {
        log_warn("ctl", "refusing a client with uid %ld", (long)uid);
        conn_refuse(c, "permission denied: uid %ld is not the daemon's user", (long)uid);
    }
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ctl_server *srv = arg;
    evconnlistener_enable(srv->listener);
}

/* accept() failed (EMFILE...): pause rather than spin on a readable socket,
 * and say so once per CTL_ACCEPT_LOG_MS with the count (strangers filling
 * the daemon's files would otherwise make each local client a log line). */
static void accept_error_cb(struct evconnlistener *lis, void *arg)
{
    struct ctl_server *srv = arg;
    int e = EVUTIL_SOCKET_ERROR();
    uint64_t now = sova_mono_ms();
    srv->accept_errors++;
    if (srv->logged_ms == 0 || now - srv->logged_ms >= CTL_ACCEPT_LOG_MS) {
        log_warn("ctl",
                 "accept on %s failed: %s; pausing %d ms (%llu errors since the last report)",
                 srv->path, evutil_socket_error_to_string(e), CTL_ACCEPT_RETRY_MS,
                 (unsigned long long)(srv->accept_errors - srv->errors_at_log));
        srv->logged_ms = now;
        srv->errors_at_log = srv->accept_errors;
    }
    evconnlistener_disable(lis);
    struct timeval tv = ctl_timeval_ms(CTL_ACCEPT_RETRY_MS);
    evtimer_add(srv->accept_retry, &tv);
}

/* ---- the socket file ----------------------------------------------------- */

/* Is somebody accepting on the socket at sa? */
static bool socket_is_live(const struct sockaddr_un *sa, socklen_t salen)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return true; /* cannot tell: never remove what may be live */
    int rc = connect(fd, (const struct sockaddr *)sa, salen);
    int e = errno;
    close(fd);
    /* EAGAIN: a live listener with a full backlog. */
    return rc == 0 || e == EAGAIN || e == EINPROGRESS;
}

static int bind_0600(int fd, const struct sockaddr_un *sa, socklen_t salen)
{
    mode_t old = umask(0177);
    int rc = bind(fd, (const struct sockaddr *)sa, salen);
    int e = errno;
    umask(old);
    errno = e;
    return rc;
}

/* Bind fd at path, replacing a stale socket file but nothing else. */
static int bind_socket(int fd, const char *path, const struct sockaddr_un *sa, socklen_t salen,
                       char *err, size_t errlen)
{
    if (bind_0600(fd, sa, salen) == 0)
        return 0;
    if (errno != EADDRINUSE) {
        snprintf(err, errlen, "cannot bind the control socket %s: %s", path, strerror(errno));
        return SOVA_ERR_IO;
    }
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a socket; not replacing it", path);
        return SOVA_ERR_IO;
    }
    if (socket_is_live(sa, salen)) {
        snprintf(err, errlen, "another daemon is running on %s", path);
        return SOVA_ERR_IO;
    }
    log_info("ctl", "removing the stale control socket %s", path);
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove the stale control socket %s: %s", path,
                 strerror(errno));
        return SOVA_ERR_IO;
    }
    if (bind_0600(fd, sa, salen) != 0) {
        snprintf(err, errlen, "cannot bind the control socket %s: %s", path, strerror(errno));
        return SOVA_ERR_IO;
    }
    return 0;
}

int ctl_server_new(struct event_base *base, const char *path, ctl_request_fn *cb, void *arg,
                   struct ctl_server **out, char *err, size_t errlen)
{
    *out = NULL;
    struct sockaddr_un sa;
    socklen_t salen;
    int rc = ctl_sockaddr_init(path, &sa, &salen, err, errlen);
    if (rc != 0)
        return rc;
    if (cb == NULL) {
        snprintf(err, errlen, "no request callback");
        return SOVA_ERR_INVALID;
    }
    /* A folder another user may write to lets that user put a socket of
     * theirs where the CLI looks (statedir.h). */
    rc = statedir_check_parent(path, err, errlen);
    if (rc != 0)
        return rc;
    struct ctl_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        snprintf(err, errlen, "out of memory");
        return SOVA_ERR_NOMEM;
    }
    srv->base = base;
    srv->cb = cb;
    srv->arg = arg;
    srv->uid = geteuid();
    memcpy(srv->path, sa.sun_path, sizeof(srv->path));

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create the control socket: %s", strerror(errno));
        free(srv);
        return SOVA_ERR_IO;
    }
    rc = bind_socket(fd, path, &sa, salen, err, errlen);
    if (rc != 0) {
        close(fd);
        free(srv);
        return rc;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        srv->dev = st.st_dev;
        srv->ino = st.st_ino;
    }
    if (listen(fd, SOMAXCONN) != 0) {
        snprintf(err, errlen, "cannot listen on the control socket %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        free(srv);
        return SOVA_ERR_IO;
    }
    srv->accept_retry = evtimer_new(base, accept_retry_cb, srv);
    srv->listener = evconnlistener_new(base, accept_cb, srv,
                                       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (srv->listener == NULL || srv->accept_retry == NULL) {
        snprintf(err, errlen, "out of memory");
        if (srv->listener == NULL)
            close(fd);
        ctl_server_free(srv);
        return SOVA_ERR_NOMEM;
    }
    evconnlistener_set_error_cb(srv->listener, accept_error_cb);
    log_info("ctl", "control socket listening on %s", path);
    *out = srv;
    return 0;
}

void ctl_server_free(struct ctl_server *srv)
{
    if (srv == NULL)
        return;
    if (srv->listener)
        evconnlistener_free(srv->listener);
    if (srv->accept_retry)
        event_free(srv->accept_retry);
    while (srv->conns != NULL)
        conn_finish(srv->conns);
    /* Unlink only the file we bound: never a successor's socket. */
    struct stat st;
    if (srv->ino != 0 && lstat(srv->path, &st) == 0 && st.st_dev == srv->dev &&
        st.st_ino == srv->ino)
        unlink(srv->path);
    free(srv);
}

size_t ctl_server_client_count(const struct ctl_server *srv)
{
    return srv->n_conns;
}
