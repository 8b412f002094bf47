/* evloop.h - the event loop a daemon runs on: libevent base, asynchronous
 * DNS, SIGINT/SIGTERM/SIGHUP handling and TCP listeners from "HOST:PORT"
 * strings.
 *
 * Ownership: struct evloop owns its event_base and evdns_base; listeners it
 * opens are owned by it and closed by evloop_free(). Nothing here blocks:
 * names are resolved with evdns, and evloop_run() returns when a stop signal
 * arrives or evloop_stop() is called.
 */
#ifndef SOVA_EVLOOP_H
#define SOVA_EVLOOP_H

#include <event2/event.h>
#include <event2/util.h>
#include <stdint.h>

struct evloop;

/* A new connection on a listener; fd belongs to the callee. */
typedef void evloop_accept_fn(evutil_socket_t fd, const struct sockaddr *sa, socklen_t len,
                              void *arg);
/* Result of evloop_resolve: addrs (borrowed for the call) or NULL with err. */
typedef void evloop_resolved_fn(const struct evutil_addrinfo *addrs, const char *err, void *arg);

/* 0 or SOVA_ERR_NOMEM. Ignores SIGPIPE (a dead peer must not kill us). */
int evloop_new(struct evloop **out);
void evloop_free(struct evloop *loop);
struct event_base *evloop_base(const struct evloop *loop);

/* Listen on a numeric "ADDR:PORT" ("[::]:7070" is dual-stack where the host
 * has IPv6). The bound address (port 0 picks one) goes to bound/bound_len if
 * not NULL. 0, SOVA_ERR_INVALID or SOVA_ERR_IO with err filled. */
int evloop_listen(struct evloop *loop, const char *endpoint, evloop_accept_fn *cb, void *arg,
                  struct sockaddr_storage *bound, socklen_t *bound_len, char *err, size_t errlen);

/* An accept error (EMFILE, ENFILE, ENOBUFS, ENOMEM) pauses the listener,
 * EVLOOP_ACCEPT_PAUSE_MIN_MS the first time, doubling up to _MAX_MS while
 * errors follow each other, back to the minimum after an accept; one log
 * line per EVLOOP_ACCEPT_LOG_MS with the count (docs/LIMITS.md). Never a
 * busy loop, never a log line per failed accept. */
#define EVLOOP_ACCEPT_PAUSE_MIN_MS 100
#define EVLOOP_ACCEPT_PAUSE_MAX_MS 1000
#define EVLOOP_ACCEPT_LOG_MS       10000
/* Accept errors so far (each one paused a listener). */
uint64_t evloop_accept_errors(const struct evloop *loop);

/* Raise the soft limit of open files to the hard limit (each daemon does it
 * at start). The limits in force after it go to *soft and *hard
 * (UINT64_MAX: unlimited). 0, or SOVA_ERR_IO when it could not be raised
 * (the limits then are those before). */
int evloop_raise_nofile(uint64_t *soft, uint64_t *hard);

/* Resolve "HOST:PORT" (numeric or a name, via evdns) to TCP addresses. The
 * callback runs exactly once: from the loop for names, and possibly before
 * evloop_resolve() returns for numeric hosts. Returns 0, or an error (and no
 * callback) when the endpoint does not parse. */
int evloop_resolve(struct evloop *loop, const char *endpoint, evloop_resolved_fn *cb, void *arg);

/* SIGHUP: the daemon re-reads its configuration and reopens its log. The
 * callback runs from the loop (never inside the signal handler); without one
 * a SIGHUP is logged and otherwise ignored (it never kills the daemon). */
typedef void evloop_reload_fn(void *arg);
void evloop_on_reload(struct evloop *loop, evloop_reload_fn *fn, void *arg);

/* Run until SIGINT, SIGTERM or evloop_stop(). Returns the signal number that
 * stopped it, or 0. */
int evloop_run(struct evloop *loop);
void evloop_stop(struct evloop *loop);

#endif
