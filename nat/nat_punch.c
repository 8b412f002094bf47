/* nat_punch.c - one end of a TCP hole punch (nat_punch.h). */
#include "nat_punch.h"
#include "clock.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct nat_punch {
    struct event_base *base;
    struct sockaddr_storage local; /* the address bound, port included once known */
    socklen_t local_len;
    uint16_t port;
    evutil_socket_t fd; /* bound, not yet handed to bev; -1 when bev holds it or none */
    struct bufferevent *bev;
    struct event *timer;
    struct wire_addr to;
    uint64_t deadline_ms;
    bool started;
    unsigned attempts;
    char why[128];
    nat_punch_fn *fn;
    void *arg;
};

/* A socket bound to p->local (port 0 the first time: the kernel picks,
 * and p->local keeps it for the next connects). */
static evutil_socket_t bound_socket(struct nat_punch *p, char *err, size_t errlen)
{
    evutil_socket_t fd = socket(p->local.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    socklen_t len = p->local_len;
    if (bind(fd, (struct sockaddr *)&p->local, p->local_len) != 0 ||
        getsockname(fd, (struct sockaddr *)&p->local, &len) != 0) {
        snprintf(err, errlen, "bind to port %u: %s", p->port, strerror(errno));
        close(fd);
        return -1;
    }
    p->port = ntohs(p->local.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&p->local)->sin6_port
                                                   : ((struct sockaddr_in *)&p->local)->sin_port);
    return fd;
}

struct nat_punch *nat_punch_new(struct event_base *base, uint8_t family,
                                const struct sockaddr *bind_addr, socklen_t bind_len, char *err,
                                size_t errlen)
{
    struct nat_punch *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->base = base;
    if (bind_addr != NULL && bind_len <= sizeof(p->local) &&
        (bind_addr->sa_family == AF_INET || bind_addr->sa_family == AF_INET6)) {
        memcpy(&p->local, bind_addr, bind_len);
        p->local_len = bind_len;
    } else {
        p->local.ss_family = family == WIRE_ADDR_IPV6 ? AF_INET6 : AF_INET;
        p->local_len =
            family == WIRE_ADDR_IPV6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    }
    if (p->local.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&p->local)->sin6_port = 0;
    else
        ((struct sockaddr_in *)&p->local)->sin_port = 0;
    p->fd = bound_socket(p, err, errlen);
    if (p->fd < 0) {
        free(p);
        return NULL;
    }
    return p;
}

uint16_t nat_punch_port(const struct nat_punch *p)
{
    return p->port;
}

unsigned nat_punch_attempts(const struct nat_punch *p)
{
    return p->attempts;
}

static void finish(struct nat_punch *p, struct bufferevent *bev, const char *why)
{
    evtimer_del(p->timer);
    p->started = false;
    nat_punch_fn *fn = p->fn;
    p->fn = NULL;
    /* why may be p->why, and the callback may free p: it gets a copy */
    char copy[sizeof(p->why)];
    snprintf(copy, sizeof(copy), "%s", why ? why : "");
    if (fn != NULL)
        fn(bev, why ? copy : NULL, p->arg); /* may free p */
    else if (bev != NULL)
        bufferevent_free(bev);
}

static void arm(struct nat_punch *p, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(p->timer, &tv);
}

static void attempt(struct nat_punch *p);

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct nat_punch *p = arg;
    if (what & BEV_EVENT_CONNECTED) {
        bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
        p->bev = NULL;
        finish(p, bev, NULL);
        return;
    }
    int e = EVUTIL_SOCKET_ERROR();
    snprintf(p->why, sizeof(p->why), "%s", e ? strerror(e) : "closed");
    bufferevent_free(bev); /* closes the socket: the port is free to bind again */
    p->bev = NULL;
    uint64_t now = sova_mono_ms();
    if (now + NAT_PUNCH_RETRY_MS < p->deadline_ms)
        arm(p, NAT_PUNCH_RETRY_MS);
    else
        finish(p, NULL, p->why);
}

static void attempt(struct nat_punch *p)
{
    if (p->fd < 0) {
        char err[128];
        p->fd = bound_socket(p, err, sizeof(err));
        if (p->fd < 0) {
            finish(p, NULL, err);
            return;
        }
    }
    struct sockaddr_storage ss;
    socklen_t len = wire_addr_to_sockaddr(&p->to, &ss);
    p->bev = len ? bufferevent_socket_new(p->base, p->fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (p->bev == NULL) {
        close(p->fd);
        p->fd = -1;
        finish(p, NULL, "cannot make a connection");
        return;
    }
    p->fd = -1; /* the bufferevent's now */
    p->attempts++;
    bufferevent_setcb(p->bev, NULL, NULL, on_event, p);
    if (bufferevent_socket_connect(p->bev, (struct sockaddr *)&ss, (int)len) != 0) {
        /* refused at once: libevent reports it as an event from the loop,
         * or not at all: count it as failed here */
        snprintf(p->why, sizeof(p->why), "%s", strerror(errno));
        bufferevent_free(p->bev);
        p->bev = NULL;
        arm(p, NAT_PUNCH_RETRY_MS);
    }
    /* the deadline: checked by the timer armed in start (and on each failure) */
    uint64_t now = sova_mono_ms();
    if (p->bev != NULL && !evtimer_pending(p->timer, NULL) && p->deadline_ms > now)
        arm(p, (unsigned)(p->deadline_ms - now));
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct nat_punch *p = arg;
    (void)fd, (void)what;
    if (sova_mono_ms() >= p->deadline_ms) {
        if (p->bev != NULL) {
            bufferevent_free(p->bev);
            p->bev = NULL;
        }
        finish(p, NULL, p->why[0] ? p->why : "no answer in time");
        return;
    }
    if (p->bev == NULL)
        attempt(p);
    else /* a connect in progress: wait for it, or the deadline */
        arm(p, (unsigned)(p->deadline_ms - sova_mono_ms()));
}

int nat_punch_start(struct nat_punch *p, const struct wire_addr *to, unsigned delay_ms,
                    unsigned timeout_ms, nat_punch_fn *fn, void *arg)
{
    if (p->started || p->timer != NULL)
        return -1;
    p->timer = evtimer_new(p->base, on_timer, p);
    if (p->timer == NULL)
        return -1;
    p->started = true;
    p->to = *to;
    p->fn = fn;
    p->arg = arg;
    p->deadline_ms = sova_mono_ms() + delay_ms + timeout_ms;
    snprintf(p->why, sizeof(p->why), "no answer in time");
    if (delay_ms == 0)
        attempt(p);
    else
        arm(p, delay_ms);
    return 0;
}

void nat_punch_free(struct nat_punch *p)
{
    if (p == NULL)
        return;
    if (p->bev != NULL)
        bufferevent_free(p->bev);
    if (p->fd >= 0)
        close(p->fd);
    if (p->timer != NULL)
        event_free(p->timer);
    free(p);
}

bool nat_punch_routable(const struct wire_addr *a)
{
    struct sockaddr_storage ss;
    socklen_t len = wire_addr_to_sockaddr(a, &ss);
    if (len == 0)
        return false;
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool ok = connect(fd, (struct sockaddr *)&ss, len) == 0;
    close(fd);
    return ok;
}

unsigned nat_punch_delay_ms(uint64_t rtt_ms)
{
    return (unsigned)((rtt_ms > 10000 ? 10000 : rtt_ms) / 2);
}
