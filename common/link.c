/* link.c - a link's protocol (link.h): TLS then HELLO under one deadline,
 * frames in (bounded decoding, frame rate) and out (bounded queue), PING,
 * closing. Making and freeing links and their accessors: link_open.c. */
#define SOVA_LINK_INTERNAL
#include "clock.h"
#include "link_int.h"
#include "err.h"
#include "log.h"
#include "version.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t link_now_ms(void)
{
    return sova_mono_ms();
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

const char *link_hs_failure_name(enum link_hs_failure why)
{
    static const char *const names[LINK_HS_N] = {
        [LINK_HS_TIMEOUT] = "timeout",
        [LINK_HS_REFUSED] = "refused",
        [LINK_HS_UNREACHABLE] = "unreachable",
        [LINK_HS_IO] = "io",
        [LINK_HS_TLS] = "tls",
        [LINK_HS_CERT] = "cert",
        [LINK_HS_ID_MISMATCH] = "id_mismatch",
        [LINK_HS_NO_CERT] = "no_cert",
        [LINK_HS_KEY_TYPE] = "key_type",
        [LINK_HS_VERSION] = "version",
        [LINK_HS_ROLE] = "role",
        [LINK_HS_PROTOCOL] = "protocol",
    };
    return (unsigned)why < LINK_HS_N ? names[why] : "?";
}

/* A link that will never open: count why, once. */
static void count_hs_failure(struct link *l, enum link_hs_failure why)
{
    if (l->params.counters == NULL || l->was_opened || l->hs_counted)
        return;
    l->hs_counted = true;
    l->params.counters->handshake_failures[l->dialer][why]++;
}

/* A link that failed before it opened is a stranger's doing as often as
 * not (scans, floods, slow-loris): such lines go through the budget's
 * throttle (link_budget_hs_log), which says how many it held back. */
#define HS_WARN(l, ...)                                                                            \
    do {                                                                                           \
        uint64_t held_back_;                                                                       \
        if (link_budget_hs_log((l), &held_back_)) {                                                \
            log_warn("link", __VA_ARGS__);                                                         \
            if (held_back_ > 0)                                                                    \
                log_warn("link",                                                                   \
                         "%llu handshake failures before it were not logged (at most %d "          \
                         "a %d s)",                                                                \
                         (unsigned long long)held_back_, LINK_HS_LOG_BURST,                        \
                         LINK_BUDGET_LOG_MS / 1000);                                               \
        }                                                                                          \
    } while (0)

/* The reason for metrics of a TLS failure code from describe_ssl_failure(). */
static enum link_hs_failure hs_failure_of(int code)
{
    switch (code) {
    case SOVA_ERR_REFUSED:
        return LINK_HS_REFUSED;
    case SOVA_ERR_UNREACHABLE:
        return LINK_HS_UNREACHABLE;
    case SOVA_ERR_ID_MISMATCH:
        return LINK_HS_ID_MISMATCH;
    case SOVA_ERR_CERT_CHAIN:
        return LINK_HS_CERT;
    case SOVA_ERR_NO_CERT:
        return LINK_HS_NO_CERT;
    case SOVA_ERR_KEY_TYPE:
        return LINK_HS_KEY_TYPE;
    case SOVA_ERR_CRYPTO:
        return LINK_HS_TLS;
    default:
        return LINK_HS_IO;
    }
}

/* The end of every link: hand it back to its owner, then free it. Runs only
 * from a libevent callback, never from inside link_close(). */
static void link_finish(struct link *l)
{
    if (l->hooks.closed)
        l->hooks.closed(l, l->close_why, l->arg);
    link_free(l);
}

/* Why the TLS handshake (or the TCP connect before it) failed, in words and
 * as a code: SOVA_ERR_ID_MISMATCH or SOVA_ERR_CERT_CHAIN (our policy
 * rejected the remote), SOVA_ERR_REFUSED, SOVA_ERR_UNREACHABLE, SOVA_ERR_IO
 * (the socket said so), or SOVA_ERR_CRYPTO (TLS itself failed). */
static int describe_ssl_failure(struct link *l, char *buf, size_t cap)
{
    SSL *ssl = bufferevent_openssl_get_ssl(l->bev);
    const char *policy = ssl ? tls_error(ssl) : NULL;
    if (policy != NULL) {
        snprintf(buf, cap, "%s", policy);
        return tls_failure(ssl) ? tls_failure(ssl) : SOVA_ERR_CRYPTO;
    }
    unsigned long e = bufferevent_get_openssl_error(l->bev);
    if (e == 0)
        e = ERR_get_error();
    /* A TCP failure (refused, reset, unreachable) surfaces as a system
     * error or none at all: say it with the socket's own words. */
    if (e != 0 && ERR_GET_LIB(e) != 0 && ERR_GET_LIB(e) != ERR_LIB_SYS) {
        ERR_error_string_n(e, buf, cap);
        return SOVA_ERR_CRYPTO;
    }
    int sock_err = EVUTIL_SOCKET_ERROR();
    if (sock_err == 0 && e != 0)
        sock_err = ERR_GET_REASON(e);
    snprintf(buf, cap, "%s",
             sock_err && sock_err != EIO ? evutil_socket_error_to_string(sock_err)
                                         : "connection failed or closed by remote");
    switch (sock_err) {
    case ECONNREFUSED:
        return SOVA_ERR_REFUSED;
    case EHOSTUNREACH:
    case ENETUNREACH:
        return SOVA_ERR_UNREACHABLE;
    default:
        return SOVA_ERR_IO;
    }
}

static void enter_closing(struct link *l, int why)
{
    if (l->state == LINK_CLOSING)
        return;
    l->state = LINK_CLOSING;
    l->close_why = why;
    bufferevent_disable(l->bev, EV_READ);
    link_budget_closing(l); /* its slots and buffered bytes are free for others now */
    /* Flush what is queued (typically the ERROR), bounded by a timer; the
     * write callback finishes the link once the output is empty. Either way
     * the link ends from the loop, never inside the caller's stack. */
    bool empty = evbuffer_get_length(bufferevent_get_output(l->bev)) == 0;
    link_set_timer(l, empty ? 0 : LINK_FLUSH_TIMEOUT_MS);
}

static int send_msg(struct link *l, const struct msg *m)
{
    struct wire_err werr = {0};
    /* One encode buffer per group: a frame is encoded and copied out before
     * this returns, and a supernode with 100,000 links keeps one, not one each. */
    struct wire_buf *scratch = l->params.group ? &l->params.group->scratch : &l->scratch;
    wire_buf_truncate(scratch, 0);
    int rc = msg_encode(m, l->params.limits, scratch, &werr);
    if (rc != 0) {
        char why[160];
        log_error("link", "%s: cannot encode %s: %s", l->name, msg_type_name(m->type),
                  wire_err_format(&werr, why, sizeof(why)));
        return rc;
    }
    struct evbuffer *out = bufferevent_get_output(l->bev);
    if (evbuffer_get_length(out) + scratch->len > l->params.max_output) {
        log_warn("link", "%s: remote is not reading (%zu bytes queued), dropping it", l->name,
                 evbuffer_get_length(out));
        enter_closing(l, SOVA_ERR_TOO_LARGE);
        return SOVA_ERR_TOO_LARGE;
    }
    if (evbuffer_add(out, scratch->data, scratch->len) != 0)
        return SOVA_ERR_NOMEM;
    l->bytes_out += scratch->len;
    if (m->type == MSG_ERROR && l->params.counters != NULL)
        l->params.counters->errors_sent[m->u.error.code < LINK_ERROR_SLOTS ? m->u.error.code : 0]++;
    return 0;
}

int link_send(struct link *l, const struct msg *m)
{
    if (l->state == LINK_CLOSING)
        return 0;
    int rc = send_msg(l, m);
    if (rc == 0 && m->type == MSG_PING && l->ping_sent_us == 0) {
        /* Time this one; PINGs sent while it is out are not timed. */
        l->ping_sent_us = now_us();
        l->ping_nonce = m->u.ping.nonce;
    }
    if (rc == SOVA_ERR_NOMEM || rc == SOVA_ERR_TOO_LARGE || rc == 0)
        return rc;
    enter_closing(l, rc);
    return rc;
}

void link_send_error(struct link *l, int code, uint8_t about_type, const char *text)
{
    if (l->state == LINK_CLOSING)
        return;
    struct msg m = {.type = MSG_ERROR};
    m.u.error.code = (uint16_t)code;
    m.u.error.offending_type = about_type;
    size_t n = text ? strnlen(text, l->params.limits->max_error_text) : 0;
    m.u.error.text = (struct wire_str){.ptr = text ? text : "", .len = n};
    send_msg(l, &m);
}

void link_close(struct link *l, int code, const char *text)
{
    link_close_about(l, code, 0, text);
}

void link_close_about(struct link *l, int code, uint8_t about_type, const char *text)
{
    if (l->state == LINK_CLOSING)
        return;
    if (code != 0)
        link_send_error(l, code, about_type, text);
    enter_closing(l, 0);
}

static void send_hello(struct link *l)
{
    char agent[32];
    snprintf(agent, sizeof(agent), "sova/%s", SOVA_VERSION);
    struct msg m = {.type = MSG_HELLO};
    m.u.hello.version_min = MSG_PROTO_VERSION_MIN;
    m.u.hello.version_max = MSG_PROTO_VERSION_MAX;
    m.u.hello.capabilities = l->params.capabilities;
    m.u.hello.role = l->params.local_role;
    m.u.hello.agent = wire_str_from(agent);
    if (l->has_token) {
        m.u.hello.has_connect_token = true;
        memcpy(m.u.hello.connect_token, l->token, WIRE_TOKEN_LEN);
    }
    send_msg(l, &m);
}

/* Their HELLO: agree on a version and check that the role they claim is one
 * their certificate supports. */
static void handle_hello(struct link *l, const struct msg_hello *h)
{
    uint16_t version;
    if (msg_hello_negotiate(h, MSG_PROTO_VERSION_MIN, MSG_PROTO_VERSION_MAX, &version) != 0) {
        char text[96];
        snprintf(text, sizeof(text), "no common protocol version: we speak %d..%d, you %u..%u",
                 MSG_PROTO_VERSION_MIN, MSG_PROTO_VERSION_MAX, h->version_min, h->version_max);
        HS_WARN(l, "%s: %s", l->name, text);
        count_hs_failure(l, LINK_HS_VERSION);
        link_close(l, MSG_ERR_VERSION, text);
        return;
    }
    if (h->role != MSG_ROLE_SUPERNODE && h->role != MSG_ROLE_PEER) {
        HS_WARN(l, "%s: HELLO with unknown role %u", l->name, h->role);
        count_hs_failure(l, LINK_HS_ROLE);
        link_close(l, MSG_ERR_BAD_VALUE, "unknown role");
        return;
    }
    if (h->role == MSG_ROLE_SUPERNODE) {
        char why[256];
        if (tls_require_supernode(bufferevent_openssl_get_ssl(l->bev), why, sizeof(why)) != 0) {
            HS_WARN(l, "%s: claims to be a supernode but %s", l->name, why);
            count_hs_failure(l, LINK_HS_ROLE);
            link_close(l, MSG_ERR_UNAUTHORIZED,
                       "supernode role needs a certificate from the federation root");
            return;
        }
    } else if (l->params.expect_supernode) {
        HS_WARN(l, "%s: expected a supernode, remote says it is a peer", l->name);
        count_hs_failure(l, LINK_HS_ROLE);
        link_close(l, MSG_ERR_PROTOCOL, "expected a supernode");
        return;
    }
    l->remote_role = h->role;
    l->version = version;
    l->remote_caps = h->capabilities;
    if (h->has_connect_token) {
        l->has_remote_token = true;
        memcpy(l->remote_token, h->connect_token, WIRE_TOKEN_LEN);
    }
    /* Its ID and chain were read at TLS time, its role just now. */
    tls_release_policy(bufferevent_openssl_get_ssl(l->bev));
    l->state = LINK_OPEN;
    l->was_opened = true;
    evtimer_del(l->timer);
    link_budget_opened(l);
    if (l->params.counters != NULL)
        l->params.counters->opened[l->dialer]++;
    log_info("link", "%s: opened, %s, protocol %u, agent \"%.*s\"", l->name,
             h->role == MSG_ROLE_SUPERNODE ? "supernode" : "peer", version, (int)h->agent.len,
             h->agent.ptr);
    if (l->hooks.opened)
        l->hooks.opened(l, l->arg);
}

/* The PING being timed is answered: RFC 6298's smoothing (7/8 old, 1/8
 * new), the first sample taken as it is. */
static void rtt_sample(struct link *l)
{
    uint64_t d = now_us() - l->ping_sent_us;
    uint32_t rtt = d == 0 ? 1 : d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    l->srtt_us = l->srtt_us == 0 ? rtt : (uint32_t)(((uint64_t)l->srtt_us * 7 + rtt) / 8);
    l->ping_sent_us = 0;
}

static void dispatch(struct link *l, const struct msg *m)
{
    if (l->state == LINK_HELLO) {
        if (m->type != MSG_HELLO) {
            HS_WARN(l, "%s: %s before HELLO", l->name, msg_type_name(m->type));
            count_hs_failure(l, LINK_HS_PROTOCOL);
            link_close(l, MSG_ERR_PROTOCOL, "HELLO must come first");
            return;
        }
        handle_hello(l, &m->u.hello);
        return;
    }
    switch (m->type) {
    case MSG_HELLO:
        link_close(l, MSG_ERR_PROTOCOL, "HELLO sent twice");
        return;
    case MSG_PING: {
        struct msg pong = {.type = MSG_PONG};
        pong.u.pong.nonce = m->u.ping.nonce;
        link_send(l, &pong);
        if (l->hooks.pinged)
            l->hooks.pinged(l, l->arg);
        return;
    }
    case MSG_PONG:
        if (l->ping_sent_us != 0 && m->u.pong.nonce == l->ping_nonce)
            rtt_sample(l);
        return; /* the owner sees no PONG: link_rtt_us() is what it is for */
    case MSG_ERROR:
        log_warn("link", "%s: remote reports error %u (%s): %.*s", l->name, m->u.error.code,
                 msg_error_code_str(m->u.error.code), (int)m->u.error.text.len,
                 m->u.error.text.ptr);
        break; /* the owner may react too */
    default:
        break;
    }
    if (l->hooks.message)
        l->hooks.message(l, m, l->arg);
}

/* Decode and dispatch every whole frame in the input buffer. */
static void read_frames(struct link *l);

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct link *l = arg;
    (void)fd, (void)what;
    if (l->state == LINK_CLOSING || l->held)
        return;
    bufferevent_enable(l->bev, EV_READ);
    read_frames(l); /* what is buffered brings no new read event */
}

void link_hold_reading(struct link *l, bool hold)
{
    if (l->held == hold)
        return;
    l->held = hold;
    if (l->state != LINK_OPEN)
        return; /* a closing link reads nothing anyway; an opening one is
                   checked when it opens (read_frames) */
    if (hold) {
        bufferevent_disable(l->bev, EV_READ);
        return;
    }
    if (l->resume == NULL)
        l->resume = evtimer_new(bufferevent_get_base(l->bev), on_resume, l);
    if (l->resume == NULL) {
        bufferevent_enable(l->bev, EV_READ); /* frames already buffered wait for more */
        return;
    }
    event_active(l->resume, EV_TIMEOUT, 0);
}

bool link_reading_held(const struct link *l)
{
    return l->held;
}

/* One more frame within the remote's frame rate? If not, reading stops
 * until a token is back (TCP then slows the sender down): a flooding
 * remote is held back, no other link is touched, nothing is dropped. */
static bool take_frame_token(struct link *l)
{
    if (l->max_frames_per_s == 0 || l->state != LINK_OPEN)
        return true;
    uint64_t now = link_now_ms(), burst = (uint64_t)l->max_frames_per_s * 1000;
    uint64_t add = (now - l->frames_refilled_ms) * l->max_frames_per_s;
    l->frames_refilled_ms = now;
    l->frame_tokens = burst - l->frame_tokens < add ? burst : l->frame_tokens + add;
    if (l->frame_tokens >= 1000) {
        l->frame_tokens -= 1000;
        return true;
    }
    if (l->resume == NULL)
        l->resume = evtimer_new(bufferevent_get_base(l->bev), on_resume, l);
    if (l->resume == NULL)
        return true; /* cannot pause: let it through rather than stall */
    bufferevent_disable(l->bev, EV_READ);
    unsigned wait = (unsigned)((1000 - l->frame_tokens) / l->max_frames_per_s) + 1;
    struct timeval tv = {.tv_sec = 0, .tv_usec = (suseconds_t)wait * 1000};
    evtimer_add(l->resume, &tv);
    if (l->params.counters != NULL)
        l->params.counters->throttled++;
    if (now - l->throttle_logged_ms >= LINK_THROTTLE_LOG_MS) {
        l->throttle_logged_ms = now;
        log_warn("link", "%s: more than %u frames a second: reading paused", l->name,
                 l->max_frames_per_s);
    }
    return false;
}

static void read_frames(struct link *l)
{
    struct evbuffer *in = bufferevent_get_input(l->bev);
    while (l->state != LINK_CLOSING) {
        size_t avail = evbuffer_get_length(in);
        if (avail < WIRE_LENGTH_SIZE)
            break;
        /* A bad length is refused as soon as its 4 bytes are here. */
        size_t head_len = avail < WIRE_FRAME_HDR_SIZE ? avail : WIRE_FRAME_HDR_SIZE;
        struct wire_frame_hdr hdr;
        struct wire_err werr = {0};
        const uint8_t *head = evbuffer_pullup(in, (ev_ssize_t)head_len);
        int need = wire_frame_peek(head, head_len, l->params.limits->max_frame, &hdr, &werr);
        if (need < 0) {
            char why[160];
            wire_err_format(&werr, why, sizeof(why));
            log_warn("link", "%s: malformed frame: %s", l->name, why);
            count_hs_failure(l, LINK_HS_PROTOCOL);
            link_close(l, msg_error_code_from_err(need), why);
            break;
        }
        /* need > 0: bytes the frame needs (the header, or the whole frame). */
        size_t frame_len = need > 0 ? (size_t)need : WIRE_FRAME_HDR_SIZE;
        if (avail < frame_len)
            break; /* wait for the rest */
        if (l->held && l->state == LINK_OPEN) {
            bufferevent_disable(l->bev, EV_READ);
            break; /* link_hold_reading(l, false) comes back for it */
        }
        if (!take_frame_token(l))
            break; /* on_resume comes back for it */
        const uint8_t *frame = evbuffer_pullup(in, (ev_ssize_t)frame_len);
        uint8_t type = frame[WIRE_LENGTH_SIZE];
        struct msg m;
        size_t used = 0;
        int rc = msg_decode_frame(frame, frame_len, l->params.limits, &m, &used, &werr);
        l->bytes_in += frame_len;
        l->last_heard_ms = link_now_ms();
        if (rc == SOVA_ERR_UNKNOWN_TYPE) {
            log_info("link", "%s: unknown message type 0x%02x ignored", l->name, type);
            link_send_error(l, MSG_ERR_UNKNOWN_TYPE, type, "unknown message type");
        } else if (rc != 0) {
            struct msg err_msg;
            char text[160];
            msg_error_from_wire_err(&err_msg, &werr, type, text, sizeof(text));
            log_warn("link", "%s: malformed %s frame: %s", l->name,
                     msg_type_name(type) ? msg_type_name(type) : "?", text);
            count_hs_failure(l, LINK_HS_PROTOCOL);
            link_send(l, &err_msg);
            enter_closing(l, rc);
        } else {
            dispatch(l, &m);
            msg_clear(&m);
        }
        evbuffer_drain(in, frame_len);
    }
    struct link *victim;
    const char *why;
    while (l->state != LINK_CLOSING &&
           link_budget_buffered(l, evbuffer_get_length(in), &victim, &why) == LINK_BUDGET_CLOSE) {
        link_close(victim, MSG_ERR_LIMIT_REACHED, why);
        if (victim != l) { /* not reading now: its input can go at once */
            struct evbuffer *vin = bufferevent_get_input(victim->bev);
            evbuffer_drain(vin, evbuffer_get_length(vin));
        }
    }
    if (l->state == LINK_CLOSING)
        evbuffer_drain(in, evbuffer_get_length(in)); /* never read again: free it now */
}

void link_on_read(struct bufferevent *bev, void *arg)
{
    struct link *l = arg;
    (void)bev;
    l->last_read_ms = link_now_ms();
    read_frames(l);
}

void link_on_write(struct bufferevent *bev, void *arg)
{
    struct link *l = arg;
    size_t queued = evbuffer_get_length(bufferevent_get_output(bev));
    if (l->state == LINK_CLOSING) {
        if (queued == 0) {
            evtimer_del(l->timer);
            link_finish(l);
        }
        return;
    }
    if (l->state == LINK_OPEN && l->hooks.drained)
        l->hooks.drained(l, l->arg);
}

static void on_tls_connected(struct link *l)
{
    SSL *ssl = bufferevent_openssl_get_ssl(l->bev);
    if (tls_peer_info(ssl, &l->peer) != 0) {
        HS_WARN(l, "%s: handshake finished without a usable certificate", l->name);
        count_hs_failure(l, LINK_HS_NO_CERT);
        enter_closing(l, SOVA_ERR_NO_CERT);
        return;
    }
    l->peer_known = true;
    snprintf(l->name, sizeof(l->name), "%.*s", NODE_ID_SHORT_LEN, l->peer.id_str);
    log_debug("link", "%s: TLS 1.3 up (%s)", l->name,
              l->peer.chained_to_root ? "chains to federation root" : "self-signed");
    l->state = LINK_HELLO;
    link_budget_identified(l);
    send_hello(l);
    bufferevent_enable(l->bev, EV_READ);
    read_frames(l); /* HELLO may have arrived with the handshake */
}

void link_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct link *l = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        on_tls_connected(l);
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    int why = (what & BEV_EVENT_EOF) ? 0 : SOVA_ERR_IO;
    if (l->state == LINK_TLS) {
        char reason[256];
        why = describe_ssl_failure(l, reason, sizeof(reason));
        HS_WARN(l, "%s: TLS handshake failed: %s", l->name, reason);
        count_hs_failure(l, hs_failure_of(why));
    } else if (l->state != LINK_CLOSING) {
        if (l->state == LINK_HELLO)
            count_hs_failure(l, LINK_HS_IO);
        log_info("link", "%s: connection closed by remote%s", l->name,
                 (what & BEV_EVENT_ERROR) ? " (error)" : "");
    }
    if (l->state != LINK_CLOSING)
        l->close_why = why;
    evtimer_del(l->timer);
    l->state = LINK_CLOSING;
    link_finish(l);
}

void link_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct link *l = arg;
    (void)fd;
    (void)what;
    if (l->state == LINK_CLOSING) {
        link_finish(l);
        return;
    }
    HS_WARN(l, "%s: %s did not finish within %u ms", l->name,
            l->state == LINK_TLS ? "TLS handshake" : "HELLO", l->params.handshake_timeout_ms);
    count_hs_failure(l, LINK_HS_TIMEOUT);
    if (l->state == LINK_HELLO) /* an ERROR can only travel once TLS is up */
        link_send_error(l, MSG_ERR_TIMEOUT, 0, "handshake timeout");
    enter_closing(l, SOVA_ERR_TIMEOUT);
}
