/* ctl_client.c - the CLI side of the control socket.
 *
 * A CLI is a short-lived process, so plain blocking I/O is the simple and
 * right tool here; SO_SNDTIMEO / SO_RCVTIMEO bound every step (on Linux they
 * also bound connect() on a UNIX socket whose backlog is full). send() uses
 * MSG_NOSIGNAL so a daemon that hangs up cannot kill the CLI with SIGPIPE.
 */
#define _GNU_SOURCE /* struct ucred, SO_PEERCRED */
#define SOVA_CTL_MODULE
#include "ctl.h"
#include "ctl_internal.h"
#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define CTL_CLIENT_READ_CHUNK 4096

/* Reply lines, read with one growing buffer. */
struct reader {
    int fd;
    int timeout_ms;
    char *buf;
    size_t len, cap;
    size_t scanned;  /* bytes already searched for '\n' */
    size_t consumed; /* bytes of lines already handed out */
};

static int set_timeouts(int fd, int timeout_ms)
{
    if (timeout_ms <= 0)
        return 0;
    struct timeval tv = ctl_timeval_ms((unsigned)timeout_ms);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
        return -1;
    return 0;
}

static int io_error(int e, int timeout_ms, const char *doing, char *err, size_t errlen)
{
    if (e == EAGAIN || e == EWOULDBLOCK) {
        snprintf(err, errlen, "%s: the daemon did not answer within %d ms", doing, timeout_ms);
        return SOVA_ERR_TIMEOUT;
    }
    snprintf(err, errlen, "%s: %s", doing, strerror(e));
    return SOVA_ERR_IO;
}

static int connect_to(const char *path, const char *hint, int timeout_ms, int *out, char *err,
                      size_t errlen)
{
    struct sockaddr_un sa;
    socklen_t salen;
    int rc = ctl_sockaddr_init(path, &sa, &salen, err, errlen);
    if (rc != 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || set_timeouts(fd, timeout_ms) != 0) {
        rc = io_error(errno, timeout_ms, "cannot create a socket", err, errlen);
        if (fd >= 0)
            close(fd);
        return rc;
    }
    if (connect(fd, (struct sockaddr *)&sa, salen) != 0) {
        int e = errno;
        close(fd);
        if (e == EAGAIN || e == EWOULDBLOCK)
            return io_error(e, timeout_ms, "connecting to the daemon", err, errlen);
        snprintf(err, errlen, "cannot reach the daemon at %s: %s%s%s%s", path, strerror(e),
                 hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
        return SOVA_ERR_IO;
    }
    /* Whoever could put a socket at path could answer for the daemon
     * ("saved ... verified" for a file never downloaded): only a daemon of
     * this user is believed (root may ask any user's daemon, as the daemon
     * itself takes requests from its own user and root). */
    struct ucred uc;
    socklen_t uclen = sizeof(uc);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &uclen) != 0 || uclen != sizeof(uc)) {
        snprintf(err, errlen, "cannot tell whose daemon answers at %s: %s", path, strerror(errno));
        close(fd);
        return SOVA_ERR_IO;
    }
    if (uc.uid != geteuid() && geteuid() != 0) {
        snprintf(err, errlen,
                 "the daemon at %s runs as user %u, not as you (%u): not talking to it (is the "
                 "folder another user's?)",
                 path, (unsigned)uc.uid, (unsigned)geteuid());
        close(fd);
        return SOVA_ERR_FOREIGN;
    }
    *out = fd;
    return 0;
}

/* req (stolen) as one line; the same bound the server applies. */
static int send_request(int fd, json_t *req, int timeout_ms, char *err, size_t errlen)
{
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (text == NULL) {
        snprintf(err, errlen, "cannot encode the request (out of memory, or not JSON)");
        return SOVA_ERR_NOMEM;
    }
    size_t n = strlen(text);
    int rc = 0;
    if (n > CTL_MAX_REQUEST) {
        snprintf(err, errlen, "request too long (%zu bytes, at most %d)", n, CTL_MAX_REQUEST);
        rc = SOVA_ERR_TOO_LARGE;
    }
    text[n] = '\n'; /* json_dumps' NUL: the string is not used as one again */
    for (size_t off = 0; rc == 0 && off < n + 1;) {
        ssize_t w = send(fd, text + off, n + 1 - off, MSG_NOSIGNAL);
        if (w > 0)
            off += (size_t)w;
        else if (errno != EINTR)
            rc = io_error(errno, timeout_ms, "sending the request", err, errlen);
    }
    free(text);
    return rc;
}

/* The next line (without '\n', NUL-terminated in place) or an error. */
static int read_line(struct reader *r, char **line, size_t *line_len, char *err, size_t errlen)
{
    if (r->consumed > 0) {
        memmove(r->buf, r->buf + r->consumed, r->len - r->consumed);
        r->len -= r->consumed;
        r->scanned = 0;
        r->consumed = 0;
    }
    for (;;) {
        char *nl =
            r->len > r->scanned ? memchr(r->buf + r->scanned, '\n', r->len - r->scanned) : NULL;
        if (nl != NULL) {
            *nl = '\0';
            *line = r->buf;
            *line_len = (size_t)(nl - r->buf);
            r->consumed = *line_len + 1;
            return 0;
        }
        r->scanned = r->len;
        if (r->len == r->cap) {
            if (r->cap > CTL_MAX_REPLY_LINE) {
                snprintf(err, errlen, "a reply line from the daemon is longer than %d bytes",
                         CTL_MAX_REPLY_LINE);
                return SOVA_ERR_TOO_LARGE;
            }
            size_t cap = r->cap ? r->cap * 2 : CTL_CLIENT_READ_CHUNK;
            if (cap > (size_t)CTL_MAX_REPLY_LINE + 1)
                cap = (size_t)CTL_MAX_REPLY_LINE + 1;
            char *grown = realloc(r->buf, cap);
            if (grown == NULL) {
                snprintf(err, errlen, "out of memory reading the reply");
                return SOVA_ERR_NOMEM;
            }
            r->buf = grown;
            r->cap = cap;
        }
        ssize_t got = recv(r->fd, r->buf + r->len, r->cap - r->len, 0);
        if (got > 0) {
            r->len += (size_t)got;
        } else if (got == 0) {
            snprintf(err, errlen, "the daemon closed the connection before its final reply");
            return SOVA_ERR_IO;
        } else if (errno != EINTR) {
            return io_error(errno, r->timeout_ms, "reading the reply", err, errlen);
        }
    }
}

/* One parsed reply line: hand it over; *done tells whether it was the last. */
static int handle_line(json_t *j, ctl_line_fn *on_line, void *arg, bool *done, char *err,
                       size_t errlen)
{
    const json_t *d = json_object_get(j, "done");
    if (!json_is_object(j) || !json_is_boolean(d)) {
        snprintf(err, errlen, "malformed reply from the daemon: not an object with \"done\"");
        return SOVA_ERR_BAD_VALUE;
    }
    *done = json_is_true(d);
    const json_t *ok = json_object_get(j, "ok");
    if (*done && !json_is_boolean(ok)) {
        snprintf(err, errlen, "malformed reply from the daemon: final line without \"ok\"");
        return SOVA_ERR_BAD_VALUE;
    }
    if (on_line != NULL) {
        int rc = on_line(j, arg);
        if (rc != 0)
            return rc;
    }
    if (*done && !json_is_true(ok)) {
        const char *text = json_string_value(json_object_get(j, "error"));
        snprintf(err, errlen, "%s", text ? text : "the daemon refused without saying why");
        ctl_sanitize_text(err, false); /* the CLI prints it on a terminal */
        return SOVA_ERR_INVALID;
    }
    return 0;
}

/* Reply lines until the final one; *done tells whether it came. */
static int read_replies(int fd, int timeout_ms, ctl_line_fn *on_line, void *arg, bool *done,
                        char *err, size_t errlen)
{
    struct reader r = {.fd = fd, .timeout_ms = timeout_ms};
    int rc = 0;
    *done = false;
    while (rc == 0 && !*done) {
        char *line;
        size_t len;
        rc = read_line(&r, &line, &len, err, errlen);
        if (rc != 0)
            break;
        json_error_t jerr;
        json_t *j = json_loadb(line, len, 0, &jerr);
        if (j == NULL) {
            snprintf(err, errlen, "malformed reply from the daemon: %s", jerr.text);
            ctl_sanitize_text(err, true);
            rc = SOVA_ERR_BAD_VALUE;
            break;
        }
        rc = handle_line(j, on_line, arg, done, err, errlen);
        json_decref(j);
    }
    free(r.buf);
    return rc;
}

int ctl_client_request(const char *path, const char *unreachable_hint, json_t *req,
                       ctl_line_fn *on_line, void *arg, int timeout_ms, char *err, size_t errlen)
{
    int fd = -1;
    int rc = connect_to(path, unreachable_hint, timeout_ms, &fd, err, errlen);
    if (rc != 0) {
        json_decref(req);
        return rc;
    }
    char send_err[CTL_ERR_MAX] = "";
    int send_rc = send_request(fd, req, timeout_ms, send_err, sizeof(send_err));
    /* Even when sending failed, the daemon may have answered first (a
     * refusal sent right at accept): its reason beats "Broken pipe". */
    bool done = false;
    if (send_rc == 0 || send_rc == SOVA_ERR_IO)
        rc = read_replies(fd, timeout_ms, on_line, arg, &done, err, errlen);
    if (send_rc != 0 && !done) {
        snprintf(err, errlen, "%s", send_err);
        rc = send_rc;
    }
    close(fd);
    return rc;
}
