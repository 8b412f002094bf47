#include "evloop.h"
#include "clock.h"
#include "config.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <event2/dns.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define EVLOOP_MAX_LISTENERS 4
#define EVLOOP_BACKLOG       1024
#define EVLOOP_HOST_MAX      256

struct listener_slot {
    struct evconnlistener *lev;
    evloop_accept_fn *cb;
    void *arg;
    struct evloop *loop;
    /* After an accept error the listener pauses: libevent would retry at
     * once while the connection waits in the backlog (a busy loop at
     * EMFILE), so it is disabled for pause_ms, doubled up to the maximum at
     * each error in a row and back to the minimum after an accept. */
    struct event *resume;
    unsigned pause_ms;
    uint64_t logged_ms, errors_at_log;
    char endpoint[64];
};

struct evloop {
    struct event_base *base;
    struct evdns_base *dns;
    struct event *sigint, *sigterm, *sighup;
    int stop_signal;
    evloop_reload_fn *reload;
    void *reload_arg;
    struct listener_slot listeners[EVLOOP_MAX_LISTENERS];
    size_t n_listeners;
    uint64_t accept_errors, accept_pauses;
};

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct evloop *loop = arg;
    (void)what;
    loop->stop_signal = (int)sig;
    log_info("main", "signal %d: stopping", (int)sig);
    event_base_loopexit(loop->base, NULL);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    struct evloop *loop = arg;
    (void)sig;
    (void)what;
    if (loop->reload == NULL) {
        log_info("main", "SIGHUP: nothing to reload");
        return;
    }
    log_info("main", "SIGHUP: reloading the configuration");
    loop->reload(loop->reload_arg);
}

void evloop_on_reload(struct evloop *loop, evloop_reload_fn *fn, void *arg)
{
    loop->reload = fn;
    loop->reload_arg = arg;
}

int evloop_new(struct evloop **out)
{
    struct evloop *loop = calloc(1, sizeof(*loop));
    if (loop == NULL)
        return SOVA_ERR_NOMEM;
    signal(SIGPIPE, SIG_IGN);
    loop->base = event_base_new();
    if (loop->base)
        loop->dns = evdns_base_new(loop->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                                   EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (loop->base && loop->dns == NULL) {
        /* No usable resolv.conf (none, or no name server in it: a bare
         * netns, an offline host): names still come from /etc/hosts. */
        loop->dns = evdns_base_new(loop->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (loop->dns != NULL)
            evdns_base_load_hosts(loop->dns, NULL);
    }
    if (loop->base) {
        loop->sigint = evsignal_new(loop->base, SIGINT, on_signal, loop);
        loop->sigterm = evsignal_new(loop->base, SIGTERM, on_signal, loop);
        loop->sighup = evsignal_new(loop->base, SIGHUP, on_sighup, loop);
    }
    if (!loop->base || !loop->sigint || !loop->sigterm || !loop->sighup ||
        evsignal_add(loop->sigint, NULL) || evsignal_add(loop->sigterm, NULL) ||
        evsignal_add(loop->sighup, NULL)) {
        evloop_free(loop);
        return SOVA_ERR_NOMEM;
    }
    /* evdns may find no resolv.conf (a bare netns): numeric hosts still work. */
    *out = loop;
    return 0;
}

void evloop_free(struct evloop *loop)
{
    if (loop == NULL)
        return;
    for (size_t i = 0; i < loop->n_listeners; i++) {
        evconnlistener_free(loop->listeners[i].lev);
        event_free(loop->listeners[i].resume);
    }
    if (loop->sigint)
        event_free(loop->sigint);
    if (loop->sigterm)
        event_free(loop->sigterm);
    if (loop->sighup)
        event_free(loop->sighup);
    if (loop->dns)
        evdns_base_free(loop->dns, 0);
    if (loop->base) {
        /* A bufferevent freed while it had callbacks deferred (data came in
         * just before the stop) keeps a reference until they have run, and
         * event_base_free() drops deferred callbacks without running them:
         * its SSL, socket and buffers would never be freed. Every owner has
         * freed its links and events by now, so a few non-blocking passes
         * run only those leftovers (their user callbacks are cleared). */
        for (int i = 0; i < 4; i++)
            if (event_base_loop(loop->base, EVLOOP_NONBLOCK) != 0)
                break;
        event_base_free(loop->base);
    }
    free(loop);
}

struct event_base *evloop_base(const struct evloop *loop)
{
    return loop->base;
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    struct listener_slot *slot = arg;
    (void)lev;
    slot->pause_ms = EVLOOP_ACCEPT_PAUSE_MIN_MS;
    slot->cb(fd, sa, (socklen_t)len, slot->arg);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct listener_slot *slot = arg;
    (void)fd, (void)what;
    evconnlistener_enable(slot->lev);
}

/* EMFILE, ENFILE, ENOBUFS, ENOMEM (libevent retries EINTR, EAGAIN and
 * ECONNABORTED itself): the connection stays in the backlog, so accepting
 * again at once fails again. Pause, and say so once per interval. */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    struct listener_slot *slot = arg;
    struct evloop *loop = slot->loop;
    int e = EVUTIL_SOCKET_ERROR();
    loop->accept_errors++;
    loop->accept_pauses++;
    evconnlistener_disable(lev);
    unsigned ms = slot->pause_ms;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(slot->resume, &tv);
    slot->pause_ms = ms * 2 > EVLOOP_ACCEPT_PAUSE_MAX_MS ? EVLOOP_ACCEPT_PAUSE_MAX_MS : ms * 2;
    uint64_t now = sova_mono_ms();
    if (slot->logged_ms != 0 && now - slot->logged_ms < EVLOOP_ACCEPT_LOG_MS)
        return;
    log_warn("net",
             "accept on %s failed: %s; listener paused %u ms (%llu accept errors since the last "
             "report, %llu in all)",
             slot->endpoint, evutil_socket_error_to_string(e), ms,
             (unsigned long long)(loop->accept_errors - slot->errors_at_log),
             (unsigned long long)loop->accept_errors);
    slot->logged_ms = now;
    slot->errors_at_log = loop->accept_errors;
}

uint64_t evloop_accept_errors(const struct evloop *loop)
{
    return loop->accept_errors;
}

int evloop_raise_nofile(uint64_t *soft, uint64_t *hard)
{
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
        return SOVA_ERR_IO;
    int rc = 0;
    if (lim.rlim_cur < lim.rlim_max) {
        struct rlimit want = {.rlim_cur = lim.rlim_max, .rlim_max = lim.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) != 0)
            rc = SOVA_ERR_IO; /* an unlimited hard limit beyond fs.nr_open: keep the soft one */
        else
            lim = want;
    }
    *soft = lim.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)lim.rlim_cur;
    *hard = lim.rlim_max == RLIM_INFINITY ? UINT64_MAX : (uint64_t)lim.rlim_max;
    return rc;
}

int evloop_listen(struct evloop *loop, const char *endpoint, evloop_accept_fn *cb, void *arg,
                  struct sockaddr_storage *bound, socklen_t *bound_len, char *err, size_t errlen)
{
    char host[EVLOOP_HOST_MAX];
    char port_str[8];
    uint16_t port;
    if (loop->n_listeners == EVLOOP_MAX_LISTENERS)
        return SOVA_ERR_INVALID;
    if (config_parse_endpoint(endpoint, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "listen address '%s' is not ADDR:PORT", endpoint);
        return SOVA_ERR_INVALID;
    }
    snprintf(port_str, sizeof(port_str), "%u", port);
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC,
                                    .ai_socktype = SOCK_STREAM,
                                    .ai_flags = EVUTIL_AI_NUMERICHOST | EVUTIL_AI_PASSIVE};
    struct evutil_addrinfo *ai = NULL;
    if (evutil_getaddrinfo(host, port_str, &hints, &ai) != 0 || ai == NULL) {
        snprintf(err, errlen, "listen address '%s': host must be a numeric address", endpoint);
        return SOVA_ERR_INVALID;
    }
    struct listener_slot *slot = &loop->listeners[loop->n_listeners];
    slot->cb = cb;
    slot->arg = arg;
    slot->loop = loop;
    slot->pause_ms = EVLOOP_ACCEPT_PAUSE_MIN_MS;
    snprintf(slot->endpoint, sizeof(slot->endpoint), "%s", endpoint);
    slot->resume = evtimer_new(loop->base, on_resume, slot);
    if (slot->resume == NULL) {
        evutil_freeaddrinfo(ai);
        snprintf(err, errlen, "out of memory");
        return SOVA_ERR_NOMEM;
    }
    /* For "[::]" we clear IPV6_V6ONLY through the default of Linux
     * (bindv6only=0), so one socket takes IPv4 too. */
    slot->lev =
        evconnlistener_new_bind(loop->base, on_accept, slot,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                EVLOOP_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
    evutil_freeaddrinfo(ai);
    if (slot->lev == NULL) {
        snprintf(err, errlen, "cannot listen on %s: %s", endpoint, strerror(errno));
        event_free(slot->resume);
        slot->resume = NULL;
        return SOVA_ERR_IO;
    }
    evconnlistener_set_error_cb(slot->lev, on_accept_error);
    loop->n_listeners++;
    if (bound != NULL) {
        *bound_len = sizeof(*bound);
        getsockname(evconnlistener_get_fd(slot->lev), (struct sockaddr *)bound, bound_len);
    }
    return 0;
}

struct resolve_req {
    evloop_resolved_fn *cb;
    void *arg;
};

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    struct resolve_req *req = arg;
    if (result != 0)
        req->cb(NULL, evutil_gai_strerror(result), req->arg);
    else
        req->cb(res, NULL, req->arg);
    if (res)
        evutil_freeaddrinfo(res);
    free(req);
}

int evloop_resolve(struct evloop *loop, const char *endpoint, evloop_resolved_fn *cb, void *arg)
{
    char host[EVLOOP_HOST_MAX];
    char port_str[8];
    uint16_t port;
    if (config_parse_endpoint(endpoint, host, sizeof(host), &port) != 0)
        return SOVA_ERR_INVALID;
    snprintf(port_str, sizeof(port_str), "%u", port);
    struct resolve_req *req = calloc(1, sizeof(*req));
    if (req == NULL)
        return SOVA_ERR_NOMEM;
    req->cb = cb;
    req->arg = arg;
    struct evutil_addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
    /* The callback frees req; for numeric hosts it runs before we return. */
    evdns_getaddrinfo(loop->dns, host, port_str, &hints, on_resolved, req);
    return 0;
}

int evloop_run(struct evloop *loop)
{
    event_base_dispatch(loop->base);
    return loop->stop_signal;
}

void evloop_stop(struct evloop *loop)
{
    event_base_loopexit(loop->base, NULL);
}
