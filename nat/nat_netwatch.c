/* nat_netwatch.c - addresses and routes changing (nat_netwatch.h). */
#include "nat_netwatch.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct nat_netwatch {
    int fd;
    struct event *readable;
    struct event *settle;
    nat_netwatch_fn *changed;
    void *arg;
};

bool nat_netwatch_relevant(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len >= sizeof(struct nlmsghdr)) {
        struct nlmsghdr h;
        memcpy(&h, p, sizeof(h)); /* the buffer need not be aligned */
        if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > len)
            return false;
        switch (h.nlmsg_type) {
        case RTM_NEWADDR:
        case RTM_DELADDR:
        case RTM_NEWROUTE:
        case RTM_DELROUTE:
            return true;
        default:
            break;
        }
        size_t step = NLMSG_ALIGN(h.nlmsg_len);
        if (step >= len)
            return false;
        p += step;
        len -= step;
    }
    return false;
}

static void on_settled(evutil_socket_t fd, short what, void *arg)
{
    struct nat_netwatch *w = arg;
    (void)fd, (void)what;
    w->changed(w->arg);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct nat_netwatch *w = arg;
    (void)what;
    /* 8 KiB is what the kernel sends at once to a reader of this size; a
     * longer burst is simply more reads. Aligned for the headers. */
    long buf[8192 / sizeof(long)];
    bool relevant = false;
    for (int i = 0; i < 64; i++) { /* bounded: the loop comes back for more */
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && errno == ENOBUFS) {
            relevant = true; /* the kernel dropped messages: assume the worst */
            continue;
        }
        if (n <= 0)
            break;
        relevant |= nat_netwatch_relevant(buf, (size_t)n);
    }
    if (relevant) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = NAT_NETWATCH_SETTLE_MS * 1000};
        evtimer_add(w->settle, &tv); /* a new message restarts the wait */
    }
}

int nat_netwatch_new(struct event_base *base, nat_netwatch_fn *changed, void *arg,
                     struct nat_netwatch **out, char *err, size_t errlen)
{
    *out = NULL;
    struct nat_netwatch *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        return SOVA_ERR_NOMEM;
    }
    w->changed = changed;
    w->arg = arg;
    w->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK,
                             .nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR |
                                          RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE};
    if (w->fd < 0 || bind(w->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        snprintf(err, errlen, "rtnetlink: %s", strerror(errno));
        nat_netwatch_free(w);
        return SOVA_ERR_IO;
    }
    w->readable = event_new(base, w->fd, EV_READ | EV_PERSIST, on_readable, w);
    w->settle = evtimer_new(base, on_settled, w);
    if (w->readable == NULL || w->settle == NULL || event_add(w->readable, NULL) != 0) {
        snprintf(err, errlen, "out of memory");
        nat_netwatch_free(w);
        return SOVA_ERR_NOMEM;
    }
    *out = w;
    return 0;
}

void nat_netwatch_free(struct nat_netwatch *w)
{
    if (w == NULL)
        return;
    if (w->readable)
        event_free(w->readable);
    if (w->settle)
        event_free(w->settle);
    if (w->fd >= 0)
        close(w->fd);
    free(w);
}
