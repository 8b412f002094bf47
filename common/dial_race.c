/* dial_race.c - Happy Eyeballs for TCP (dial_race.h). */
#include "dial_race.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct attempt {
    struct dial_race *race;
    evutil_socket_t fd;
    struct event *ev; /* writable: the connect finished */
    int index;
};

struct dial_race {
    struct event_base *base;
    struct sockaddr_storage addrs[DIAL_RACE_MAX];
    socklen_t lens[DIAL_RACE_MAX];
    size_t order[DIAL_RACE_MAX];
    size_t n, next;
    struct sockaddr_storage bind;
    socklen_t bind_len;
    struct attempt at[DIAL_RACE_MAX];
    struct event *stagger, *deadline;
    char why[160];
    dial_race_fn *fn;
    void *arg;
};

void dial_race_order(const int *families, size_t n, size_t *order)
{
    size_t k = 0, a = 0, b = 0;
    int first = n ? families[0] : 0;
    for (size_t i = 0; i < n; i++) /* IPv6 first when there is one (RFC 8305) */
        if (families[i] == AF_INET6)
            first = AF_INET6;
    /* a walks the first family, b the others, taking turns */
    while (k < n) {
        while (a < n && families[a] != first)
            a++;
        if (a < n)
            order[k++] = a++;
        while (b < n && families[b] == first)
            b++;
        if (b < n && k < n)
            order[k++] = b++;
    }
}

static void attempt_close(struct attempt *t)
{
    if (t->ev != NULL) {
        event_free(t->ev);
        t->ev = NULL;
    }
    if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
    }
}

static void finish(struct dial_race *r, evutil_socket_t fd, int index)
{
    for (size_t i = 0; i < r->n; i++)
        attempt_close(&r->at[i]);
    evtimer_del(r->stagger);
    evtimer_del(r->deadline);
    dial_race_fn *fn = r->fn;
    r->fn = NULL;
    char why[sizeof(r->why)];
    snprintf(why, sizeof(why), "%s", r->why);
    if (fn != NULL)
        fn(fd, index, fd >= 0 ? NULL : why, r->arg); /* may free r */
    else if (fd >= 0)
        close(fd);
}

static bool any_pending(const struct dial_race *r)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->at[i].fd >= 0)
            return true;
    return false;
}

static void start_next(struct dial_race *r);

static void failed(struct dial_race *r, struct attempt *t, int err)
{
    char where[64] = "?";
    const struct sockaddr *sa = (const struct sockaddr *)&r->addrs[t->index];
    if (sa->sa_family == AF_INET6)
        evutil_inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, where,
                         sizeof(where));
    else if (sa->sa_family == AF_INET)
        evutil_inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, where,
                         sizeof(where));
    snprintf(r->why, sizeof(r->why), "%s: %s", where, strerror(err));
    attempt_close(t);
    if (r->next < r->n)
        start_next(r); /* a failure starts the next at once */
    else if (!any_pending(r))
        finish(r, -1, -1);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct attempt *t = arg;
    (void)what;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0) {
        failed(t->race, t, err);
        return;
    }
    event_free(t->ev);
    t->ev = NULL;
    evutil_socket_t won = t->fd;
    t->fd = -1; /* the callback's now: not closed with the others */
    finish(t->race, won, t->index);
}

static void start_next(struct dial_race *r)
{
    while (r->next < r->n) {
        size_t i = r->order[r->next++];
        struct attempt *t = &r->at[i];
        const struct sockaddr *sa = (const struct sockaddr *)&r->addrs[i];
        t->race = r;
        t->index = (int)i;
        t->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (t->fd < 0) {
            failed(r, t, errno);
            return;
        }
        if (r->bind_len != 0 && r->bind.ss_family == sa->sa_family &&
            bind(t->fd, (struct sockaddr *)&r->bind, r->bind_len) != 0) {
            failed(r, t, errno);
            return;
        }
        if (connect(t->fd, sa, r->lens[i]) != 0 && errno != EINPROGRESS) {
            failed(r, t, errno); /* refused or unreachable at once: the next now */
            return;
        }
        t->ev = event_new(r->base, t->fd, EV_WRITE, on_writable, t);
        if (t->ev == NULL || event_add(t->ev, NULL) != 0) {
            failed(r, t, ENOMEM);
            return;
        }
        if (r->next < r->n) {
            struct timeval tv = {.tv_sec = 0, .tv_usec = DIAL_RACE_STAGGER_MS * 1000};
            evtimer_add(r->stagger, &tv);
        }
        return;
    }
}

static void on_stagger(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    start_next(arg);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct dial_race *r = arg;
    (void)fd, (void)what;
    if (r->why[0] == '\0') {
        snprintf(r->why, sizeof(r->why), "no address answered in time");
    } else {
        size_t used = strlen(r->why); /* one refused, the rest silent */
        snprintf(r->why + used, sizeof(r->why) - used, "; no answer from the others in time");
    }
    finish(r, -1, -1);
}

struct dial_race *dial_race_start(struct event_base *base, const struct sockaddr_storage *addrs,
                                  const socklen_t *lens, size_t n, const struct sockaddr *bind_addr,
                                  socklen_t bind_len, unsigned timeout_ms, dial_race_fn *fn,
                                  void *arg)
{
    struct dial_race *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->base = base;
    r->n = n < DIAL_RACE_MAX ? n : DIAL_RACE_MAX;
    int fam[DIAL_RACE_MAX];
    for (size_t i = 0; i < r->n; i++) {
        r->addrs[i] = addrs[i];
        r->lens[i] = lens[i];
        fam[i] = addrs[i].ss_family;
        r->at[i].fd = -1;
    }
    dial_race_order(fam, r->n, r->order);
    if (bind_addr != NULL && bind_len <= sizeof(r->bind)) {
        memcpy(&r->bind, bind_addr, bind_len);
        r->bind_len = bind_len;
    }
    r->fn = fn;
    r->arg = arg;
    r->stagger = evtimer_new(base, on_stagger, r);
    r->deadline = evtimer_new(base, on_deadline, r);
    if (r->stagger == NULL || r->deadline == NULL) {
        dial_race_free(r);
        return NULL;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    evtimer_add(r->deadline, &tv);
    if (r->n == 0)
        snprintf(r->why, sizeof(r->why), "no address");
    /* the first attempt from the loop: the callback never runs inside
     * dial_race_start */
    event_active(r->n ? r->stagger : r->deadline, EV_TIMEOUT, 0);
    return r;
}

void dial_race_free(struct dial_race *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        attempt_close(&r->at[i]);
    if (r->stagger)
        event_free(r->stagger);
    if (r->deadline)
        event_free(r->deadline);
    free(r);
}
