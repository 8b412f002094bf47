/* link_open.c - making a link (over an accepted or dialed socket, or over
 * another stream), wiring it to libevent, freeing it, and its accessors
 * (link.h). The protocol itself is in link.c. */
#define SOVA_LINK_INTERNAL
#include "link_int.h"
#include "err.h"
#include "log.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void link_free(struct link *l)
{
    link_budget_left(l);
    struct link_group *g = l->params.group;
    if (g != NULL) {
        if (l->group_prev)
            l->group_prev->group_next = l->group_next;
        else
            g->head = l->group_next;
        if (l->group_next)
            l->group_next->group_prev = l->group_prev;
        g->count--;
    }
    if (l->bev) {
        /* A link over a stream (link_wrap): tell whatever is below that we
         * are done, so a relay circuit ends too. */
        struct bufferevent *under = bufferevent_get_underlying(l->bev);
        if (under != NULL)
            bufferevent_flush(under, EV_READ | EV_WRITE, BEV_FINISHED);
        bufferevent_free(l->bev); /* closes the socket and frees the SSL */
    }
    if (l->timer)
        event_free(l->timer);
    if (l->resume)
        event_free(l->resume);
    wire_buf_free(&l->scratch);
    free(l);
}

static struct link *link_new(struct event_base *base, const struct sockaddr *remote,
                             socklen_t remote_len, const struct link_params *params,
                             const struct link_hooks *hooks, void *arg)
{
    struct link *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->params = *params;
    l->hooks = *hooks;
    l->arg = arg;
    l->state = LINK_TLS;
    l->last_heard_ms = l->last_read_ms = link_now_ms();
    l->max_frames_per_s = params->max_frames_per_s;
    l->frame_tokens = (uint64_t)l->max_frames_per_s * 1000;
    l->frames_refilled_ms = l->last_heard_ms;
    wire_buf_init(&l->scratch);
    if (params->connect_token != NULL) {
        l->has_token = true;
        memcpy(l->token, params->connect_token, WIRE_TOKEN_LEN);
        l->params.connect_token = NULL; /* the caller's storage may go */
    }
    if (remote == NULL || wire_addr_from_sockaddr(&l->remote_addr, remote, remote_len) != 0)
        snprintf(l->name, sizeof(l->name), "?");
    else
        wire_addr_format(&l->remote_addr, l->name, sizeof(l->name));
    l->timer = evtimer_new(base, link_on_timer, l);
    if (l->timer == NULL) {
        free(l);
        return NULL;
    }
    struct link_group *g = params->group;
    if (g != NULL) {
        l->group_next = g->head;
        if (g->head)
            g->head->group_prev = l;
        g->head = l;
        g->count++;
    }
    return l;
}

static void link_start(struct link *l)
{
    bufferevent_openssl_set_allow_dirty_shutdown(l->bev, 1);
    bufferevent_setcb(l->bev, link_on_read, link_on_write, link_on_event, l);
    /* Bound what one link may buffer on input: at most two frames. */
    bufferevent_setwatermark(l->bev, EV_READ, 0, 2 * l->params.limits->max_frame);
    bufferevent_setwatermark(l->bev, EV_WRITE, LINK_DRAINED_BYTES, 0);
    bufferevent_enable(l->bev, EV_READ | EV_WRITE);
    link_set_timer(l, l->params.handshake_timeout_ms);
}

/* Frames go out when queued: with Nagle's algorithm a small frame waits
 * for the ACK of the previous one, which the remote delays up to 40 ms, so
 * a PING's round trip measured 42 ms on loopback instead of 0.1 ms, and a
 * request sent just after another frame waited as long. Best effort. */
static void set_nodelay(evutil_socket_t fd)
{
    int one = 1;
    if (fd >= 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* A dead path seen within about ms (link_params.dead_path_ms): keep-alive
 * probes after ms/3 idle, every ms/6, three of them (5/6 of ms in all), and
 * unacknowledged data given up after ms. Best effort. */
static void set_dead_path(evutil_socket_t fd, unsigned ms)
{
    if (fd < 0 || ms == 0)
        return;
    int on = 1, idle = (int)(ms / 3000), intvl = (int)(ms / 6000), cnt = 3;
    unsigned user = ms;
    idle = idle < 1 ? 1 : idle;
    intvl = intvl < 1 ? 1 : intvl;
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user, sizeof(user));
}

struct link *link_accept(struct event_base *base, evutil_socket_t fd, SSL *ssl,
                         const struct sockaddr *remote, socklen_t remote_len,
                         const struct link_params *params, const struct link_hooks *hooks,
                         void *arg)
{
    set_nodelay(fd);
    struct link *l = link_new(base, remote, remote_len, params, hooks, arg);
    if (l != NULL)
        l->bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (l == NULL || l->bev == NULL) {
        if (l)
            link_free(l);
        SSL_free(ssl);
        evutil_closesocket(fd);
        return NULL;
    }
    link_budget_joined(l, true);
    link_start(l);
    return l;
}

bool link_admit(struct link_budget *b, const struct sockaddr *sa, socklen_t len)
{
    struct wire_addr a;
    if (wire_addr_from_sockaddr(&a, sa, len) != 0)
        return true; /* not an IP address: nothing to count it by */
    struct link *victim;
    enum link_budget_step step;
    /* Each step that closes a handshake frees a slot: at most as many
     * steps as there are slots. */
    while ((step = link_budget_admit_step(b, &a, &victim)) == LINK_BUDGET_CLOSE)
        link_close(victim, victim->state == LINK_HELLO ? MSG_ERR_LIMIT_REACHED : 0,
                   "handshake displaced: your network holds the most handshakes (max-handshakes)");
    return step == LINK_BUDGET_OK;
}

/* A socket bound to params.bind_addr for the bufferevent to connect from. */
static int bind_socket(struct link *l, int family)
{
    if (l->params.bind_addr->sa_family != family)
        return 0; /* e.g. an IPv6 remote while we listen on IPv4 only */
    evutil_socket_t fd = socket(family, SOCK_STREAM, 0);
    if (fd < 0)
        return SOVA_ERR_IO;
    if (evutil_make_socket_nonblocking(fd) != 0 || evutil_make_socket_closeonexec(fd) != 0 ||
        bind(fd, l->params.bind_addr, l->params.bind_len) != 0) {
        log_warn("link", "cannot bind outgoing socket: %s", strerror(errno));
        evutil_closesocket(fd);
        return SOVA_ERR_IO;
    }
    bufferevent_setfd(l->bev, fd);
    return 0;
}

struct link *link_connect(struct event_base *base, const struct sockaddr *remote,
                          socklen_t remote_len, SSL *ssl, const struct link_params *params,
                          const struct link_hooks *hooks, void *arg)
{
    struct link *l = link_new(base, remote, remote_len, params, hooks, arg);
    if (l != NULL)
        l->bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (l == NULL || l->bev == NULL) {
        if (l)
            link_free(l);
        SSL_free(ssl);
        return NULL;
    }
    l->dialer = true;
    link_budget_joined(l, false);
    if (params->bind_addr != NULL && bind_socket(l, remote->sa_family) != 0) {
        link_free(l);
        return NULL;
    }
    link_start(l);
    if (bufferevent_socket_connect(l->bev, remote, (int)remote_len) != 0) {
        link_free(l);
        return NULL;
    }
    set_nodelay(bufferevent_getfd(l->bev));
    set_dead_path(bufferevent_getfd(l->bev), params->dead_path_ms);
    return l;
}

struct link *link_connected(struct event_base *base, evutil_socket_t fd,
                            const struct sockaddr *remote, socklen_t remote_len, SSL *ssl,
                            const struct link_params *params, const struct link_hooks *hooks,
                            void *arg)
{
    struct link *l = link_new(base, remote, remote_len, params, hooks, arg);
    if (l != NULL)
        l->bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (l == NULL || l->bev == NULL) {
        if (l)
            link_free(l);
        SSL_free(ssl);
        evutil_closesocket(fd);
        return NULL;
    }
    l->dialer = true;
    link_budget_joined(l, false);
    set_nodelay(fd);
    set_dead_path(fd, params->dead_path_ms);
    link_start(l);
    return l;
}

struct link *link_wrap(struct event_base *base, struct bufferevent *under, SSL *ssl, bool accepting,
                       const char *name, const struct link_params *params,
                       const struct link_hooks *hooks, void *arg)
{
    struct link *l = link_new(base, NULL, 0, params, hooks, arg);
    if (l != NULL)
        l->bev = bufferevent_openssl_filter_new(
            base, under, ssl, accepting ? BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING,
            BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (l == NULL || l->bev == NULL) {
        if (l)
            link_free(l);
        SSL_free(ssl);
        bufferevent_free(under);
        return NULL;
    }
    l->dialer = !accepting;
    link_budget_joined(l, false);
    if (name != NULL)
        snprintf(l->name, sizeof(l->name), "%s", name);
    link_start(l);
    return l;
}

void link_free_now(struct link *l)
{
    if (l != NULL)
        link_free(l);
}

void link_group_free_all(struct link_group *g)
{
    while (g->head)
        link_free(g->head);
    wire_buf_free(&g->scratch);
}

struct link *link_group_first(const struct link_group *g)
{
    return g->head;
}

struct link *link_group_next(const struct link *l)
{
    return l->group_next;
}

const struct tls_peer_info *link_peer(const struct link *l)
{
    return l->peer_known ? &l->peer : NULL;
}

uint8_t link_remote_role(const struct link *l)
{
    return l->remote_role;
}

uint32_t link_remote_caps(const struct link *l)
{
    return l->remote_caps;
}

int link_local_addr(const struct link *l, struct wire_addr *out)
{
    evutil_socket_t fd = bufferevent_getfd(l->bev);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return SOVA_ERR_NOT_FOUND;
    return wire_addr_from_sockaddr(out, (struct sockaddr *)&ss, len);
}

void link_set_max_frames(struct link *l, unsigned per_s)
{
    l->max_frames_per_s = per_s;
    l->frame_tokens = (uint64_t)per_s * 1000;
    l->frames_refilled_ms = link_now_ms();
}

bool link_is_dialer(const struct link *l)
{
    return l->dialer;
}

uint16_t link_version(const struct link *l)
{
    return l->version;
}

const struct wire_addr *link_remote_addr(const struct link *l)
{
    return &l->remote_addr;
}

const char *link_name(const struct link *l)
{
    return l->name;
}

size_t link_output_len(const struct link *l)
{
    return evbuffer_get_length(bufferevent_get_output(l->bev));
}

uint64_t link_last_heard_ms(const struct link *l)
{
    return l->last_heard_ms;
}

uint64_t link_last_read_ms(const struct link *l)
{
    return l->last_read_ms;
}

const uint8_t *link_connect_token(const struct link *l)
{
    return l->has_remote_token ? l->remote_token : NULL;
}

void link_set_hooks(struct link *l, const struct link_hooks *hooks, void *arg)
{
    l->hooks = *hooks;
    l->arg = arg;
}

void link_set_arg(struct link *l, void *arg)
{
    l->arg = arg;
}

void *link_arg(const struct link *l)
{
    return l->arg;
}

uint64_t link_bytes_in(const struct link *l)
{
    return l->bytes_in;
}

uint64_t link_bytes_out(const struct link *l)
{
    return l->bytes_out;
}

uint32_t link_rtt_us(const struct link *l)
{
    return l->srtt_us;
}
