/* link.h - one TLS 1.3 connection carrying Sova frames, on libevent.
 *
 * A link owns a bufferevent with the OpenSSL filter. It runs the TLS
 * handshake (policy chosen by the SSL object from tls.h), then the HELLO
 * exchange (version negotiation, role check: a remote that says it is a
 * supernode must chain to the federation root), under one deadline. After
 * that it decodes every frame with the bounded decoders of msg.h and hands
 * the messages to its owner. It answers PING itself, remembers when the
 * remote was last heard from, and times the owner's PINGs (link_rtt_us).
 *
 * Bad input: a frame that does not decode is answered with an ERROR naming
 * the bad field, logged once, and the link is closed; other links are not
 * touched. An unknown message type gets an ERROR and the link stays up
 * (a newer peer may speak a message we do not know). A remote that stops
 * reading while we queue more than max_output bytes is dropped.
 *
 * Ownership and callbacks: the owner creates a link and receives hooks. A
 * link frees itself: after hooks->closed() returns, the link is gone, so the
 * owner drops its pointer there. link_close() never frees synchronously, so
 * it is safe to call from inside any hook; the closed hook then runs from the
 * event loop. Nothing here blocks.
 */
#ifndef SOVA_LINK_H
#define SOVA_LINK_H

#include "msg.h"
#include "tls.h"
#include "wire.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <stdbool.h>
#include <stdint.h>

struct link;

/* The links of one owner, so it can count them and free them at exit.
 * Zero-initialise; a link joins the group in its params and leaves it when
 * freed. The group's links share one encode buffer (link_group_free_all()
 * frees it). */
struct link_group {
    struct link *head;
    size_t count;
    struct wire_buf scratch;
};

struct link_hooks {
    /* TLS and HELLO are done; link_peer()/link_remote_role() are valid. */
    void (*opened)(struct link *l, void *arg);
    /* A decoded message other than HELLO and PING/PONG. m is valid only
     * during the call (it borrows the link's input buffer). */
    void (*message)(struct link *l, const struct msg *m, void *arg);
    /* The link is gone after this returns; why is 0 for a clean close by
     * the owner or a negative enum sova_err. A link that never opened says
     * why: SOVA_ERR_TIMEOUT, SOVA_ERR_REFUSED, SOVA_ERR_UNREACHABLE,
     * SOVA_ERR_ID_MISMATCH, SOVA_ERR_CERT_CHAIN, SOVA_ERR_CRYPTO or
     * SOVA_ERR_IO. */
    void (*closed)(struct link *l, int why, void *arg);
    /* Optional: queued output fell to LINK_DRAINED_BYTES or less, so a
     * sender that paces itself (file data) may queue more. */
    void (*drained)(struct link *l, void *arg);
    /* Optional: the remote sent a PING, already answered with a PONG (a
     * supernode may answer a peer's keep-alive with new keep-alive advice). */
    void (*pinged)(struct link *l, void *arg);
};

/* Output level at which the drained hook runs. */
#define LINK_DRAINED_BYTES (256u * 1024)

/* Why a link failed before it opened (TLS + HELLO), for metrics. */
enum link_hs_failure {
    LINK_HS_TIMEOUT,     /* TLS + HELLO did not finish within handshake_timeout_ms */
    LINK_HS_REFUSED,     /* we dialed: TCP connection refused */
    LINK_HS_UNREACHABLE, /* we dialed: no route to the host or network */
    LINK_HS_IO,          /* the connection failed or was closed during the handshake */
    LINK_HS_TLS,         /* TLS itself failed (not TLS 1.3, bad record, no common cipher) */
    LINK_HS_CERT,        /* the certificate does not chain to the federation root */
    LINK_HS_ID_MISMATCH, /* the remote's key is not the node ID we expected */
    LINK_HS_NO_CERT,     /* the remote presented no usable certificate */
    LINK_HS_KEY_TYPE,    /* the remote's key is not Ed25519 */
    LINK_HS_VERSION,     /* HELLO: no protocol version in common */
    LINK_HS_ROLE,        /* HELLO: a role the certificate does not allow, or not the one expected */
    LINK_HS_PROTOCOL,    /* something other than a well-formed HELLO came first */
    LINK_HS_N
};
/* "timeout", "refused", ... (the metrics label); "?" outside the enum. */
const char *link_hs_failure_name(enum link_hs_failure why);

/* ERROR codes are counted in slots by code; codes at or above this share
 * slot 0 (MSG_ERR_NONE, never sent in an ERROR). */
#define LINK_ERROR_SLOTS 128

/* Counters an owner may give its links (link_params.counters), so that
 * metrics can say why handshakes fail and which errors we send. Plain
 * increments on the loop thread; index [0] is accepted links, [1] dialed. */
struct link_counters {
    uint64_t opened[2];                        /* links through TLS and HELLO */
    uint64_t handshake_failures[2][LINK_HS_N]; /* links that never opened, by reason */
    uint64_t errors_sent[LINK_ERROR_SLOTS];    /* ERROR frames we sent, by code */
    uint64_t throttled;                        /* times a remote's frame rate paused our reading */
};

/* What all the links of one daemon may hold together (link_params.budget;
 * docs/LIMITS.md, "Fair shares"): accepted connections in their handshake
 * (TLS + HELLO), accepted connections per address, and bytes buffered for
 * frames that are not complete yet. Each is a pool shared fairly by address
 * prefix (common/fair.h: a /24 for IPv4, a /56 for IPv6):
 *
 *  - handshakes: link_admit() is asked before a connection is taken
 *    (before TLS, so no ERROR can reach it): over max_conns_per_ip from its
 *    address, refused; with max_handshakes in progress, the oldest
 *    handshake of the prefix holding the most gives way to a newcomer from
 *    a prefix holding fewer, else the newcomer is refused. Addresses that
 *    showed a federation certificate (link_budget_trust) have
 *    reserved_handshakes more of their own, so a supernode re-linking after
 *    a restart is never locked out by peers' handshakes.
 *  - incomplete frames: a link whose address prefix (or identity, once
 *    TLS is up) would hold more than its share is closed with
 *    ERROR(limit reached); when max_buffered in all is short, the link
 *    holding the most in the prefix holding the most is closed so that
 *    another's frames get in. Links to supernodes are not counted once
 *    their HELLO is checked. The input of a closing link is freed at once,
 *    and malloc_trim() gives the memory back to the system after a large
 *    release (glibc keeps freed heap otherwise).
 *
 * Refusals and displacements are counted and logged at most every
 * LINK_BUDGET_LOG_MS with totals. Owned by the daemon (link_budget_new /
 * _free, after its links are gone); every link given it in its params
 * takes part. Loop thread only. */
struct link_budget_config {
    unsigned max_handshakes;      /* accepted links in TLS + HELLO at once, fair per prefix */
    unsigned reserved_handshakes; /* more, for trusted addresses only (supernodes) */
    unsigned max_conns_per_ip;    /* accepted links from one address (IPv6: /64); 0: no cap */
    uint64_t max_buffered;        /* bytes of incomplete frames of all links; 0: no limit */
    uint64_t max_buffered_prefix; /* ... of the links from one prefix; 0: no cap */
    uint64_t max_buffered_id;     /* ... of the links of one identity; 0: no cap */
    size_t max_frame;             /* a share is never below 2 frames + LINK_READ_SLACK */
};

#define LINK_READ_SLACK    (64u * 1024) /* a link reads this much more before it is checked */
#define LINK_BUDGET_LOG_MS 10000
#define LINK_TRUSTED_MAX   256 /* trusted addresses kept (the oldest forgotten) */

struct link_budget_stats {
    size_t handshaking;          /* accepted links in their handshake now */
    size_t handshaking_reserved; /* ... of them in reserved slots */
    size_t addresses;            /* distinct addresses with accepted links */
    uint64_t refused_handshakes; /* connections refused: max-handshakes */
    uint64_t refused_ip;         /* connections refused: max-conns-per-ip */
    uint64_t displaced_handshakes;
    uint64_t buffered;           /* bytes of incomplete frames held now */
    uint64_t buffered_top;       /* ... by the prefix holding the most */
    size_t buffered_prefixes;    /* prefixes holding any */
    uint64_t closed_over_share;  /* links closed: their prefix or identity over its share */
    uint64_t displaced_buffered; /* links closed to make room in max_buffered */
    uint64_t trims;              /* malloc_trim() runs */
    size_t trusted;              /* trusted addresses known */
};

struct link_budget;
struct event_base;

/* NULL when memory is short. */
struct link_budget *link_budget_new(struct event_base *base, const struct link_budget_config *cfg);
/* New limits (a reload): what is held stays, what is asked from now on is
 * checked against them. */
void link_budget_configure(struct link_budget *b, const struct link_budget_config *cfg);
/* Every link that had the budget must be gone. NULL is fine. */
void link_budget_free(struct link_budget *b);
/* A connection from sa was accepted: take it (true; link_accept() with
 * this budget must follow for it at once) or not (false: close the socket;
 * counted and logged). May close another link's handshake (displaced). */
bool link_admit(struct link_budget *b, const struct sockaddr *sa, socklen_t len);
/* The IP of a supernode (it showed a federation certificate, or the
 * federation told us it listens there): its connections may use the
 * reserved handshake slots. */
void link_budget_trust(struct link_budget *b, const struct wire_addr *a);
void link_budget_stats(const struct link_budget *b, struct link_budget_stats *out);

struct link_params {
    const struct wire_limits *limits; /* borrowed; outlives the link */
    uint8_t local_role;               /* MSG_ROLE_SUPERNODE or MSG_ROLE_PEER */
    uint32_t capabilities;            /* HELLO capability bits we offer */
    unsigned handshake_timeout_ms;    /* TLS + HELLO must finish within this */
    size_t max_output;                /* queued bytes before the remote is dropped */
    /* Dialer only: the remote must say it is a supernode in its HELLO. */
    bool expect_supernode;
    struct link_group *group; /* may be NULL */
    /* Dialer only: bind the socket to this local address (port 0) before
     * connecting, so the remote sees the address we listen on. May be NULL. */
    const struct sockaddr *bind_addr;
    socklen_t bind_len;
    /* Dialer only: WIRE_TOKEN_LEN bytes sent as HELLO's connect_token (this
     * connection answers a CONNECT_REQUEST). Copied when the link is made. */
    const uint8_t *connect_token;
    /* Counted into if not NULL (borrowed; outlives the link). */
    struct link_counters *counters;
    /* Frames a second the remote may send once the link is open (bursts of
     * one second's worth); beyond, reading pauses until it is back within
     * the rate. 0: no limit. */
    unsigned max_frames_per_s;
    /* Shared limits of all the owner's links (borrowed; outlives them);
     * NULL: none. */
    struct link_budget *budget;
    /* Dialer only: a path that stops carrying packets (a WAN outage, a
     * router gone) closes the link within about this many ms: TCP
     * keep-alive probes after a third of it idle, and TCP_USER_TIMEOUT for
     * data the remote never acknowledges. 0: the system's defaults (hours). */
    unsigned dead_path_ms;
};

/* A paused remote is logged at most this often (each pause is counted). */
#define LINK_THROTTLE_LOG_MS 10000

/* Wrap an accepted socket (fd is owned by the link from now on, even on
 * failure) and a server-side SSL (owned by the link). NULL on allocation
 * failure. */
struct link *link_accept(struct event_base *base, evutil_socket_t fd, SSL *ssl,
                         const struct sockaddr *remote, socklen_t remote_len,
                         const struct link_params *params, const struct link_hooks *hooks,
                         void *arg);

/* Dial remote with a client-side SSL (owned by the link). The outcome comes
 * through the hooks: opened() or closed(). NULL on immediate failure. */
struct link *link_connect(struct event_base *base, const struct sockaddr *remote,
                          socklen_t remote_len, SSL *ssl, const struct link_params *params,
                          const struct link_hooks *hooks, void *arg);

/* As link_connect, over a socket already connected to remote (dial_race.h
 * raced several addresses for it): fd and ssl are the link's from now on,
 * even on failure. */
struct link *link_connected(struct event_base *base, evutil_socket_t fd,
                            const struct sockaddr *remote, socklen_t remote_len, SSL *ssl,
                            const struct link_params *params, const struct link_hooks *hooks,
                            void *arg);

/* Run a link over an existing byte stream instead of a socket: under (owned
 * by the link from now on, even on failure, and freed with it) carries the
 * TLS records, e.g. one end of a bufferevent pair that a relay circuit feeds.
 * accepting: the TLS server side. name (may be NULL) is shown in logs until
 * the remote ID is known. Otherwise as link_connect/link_accept. */
struct link *link_wrap(struct event_base *base, struct bufferevent *under, SSL *ssl, bool accepting,
                       const char *name, const struct link_params *params,
                       const struct link_hooks *hooks, void *arg);

/* Queue a message. Returns 0, or a negative enum sova_err if it could not be
 * encoded (a bug: the link is then closed). No-op on a closing link. */
int link_send(struct link *l, const struct msg *m);

/* Send an ERROR (code from enum sova_err / PROTOCOL.md, and a short text)
 * without closing. */
void link_send_error(struct link *l, int code, uint8_t about_type, const char *text);

/* Close: if code != 0, an ERROR frame with code and text goes out first;
 * queued output is flushed (bounded by a short timer) and the closed hook
 * runs from the loop. Idempotent. */
void link_close(struct link *l, int code, const char *text);
/* The same, when a message of type about_type caused the close: the ERROR
 * names it in offending_type (link_close() sends 0, for a close about the
 * link itself: keep-alive, shutdown, a replaced session). */
void link_close_about(struct link *l, int code, uint8_t about_type, const char *text);

/* Free the link now, without the closed hook: for an owner tearing
 * everything down at exit. Never call it from inside one of l's hooks. */
void link_free_now(struct link *l);
/* link_free_now() every link of the group. */
void link_group_free_all(struct link_group *g);
/* Walk a group: first link, then each next; NULL at the end. A link closed
 * during the walk stays in the group until the loop frees it, so closing
 * while walking is safe. */
struct link *link_group_first(const struct link_group *g);
struct link *link_group_next(const struct link *l);

/* The remote, once opened. */
const struct tls_peer_info *link_peer(const struct link *l);
uint8_t link_remote_role(const struct link *l);
/* The capability bits of the remote's HELLO (MSG_CAP_*). */
uint32_t link_remote_caps(const struct link *l);
/* The local end of the TCP connection (not for a link over a stream):
 * 0 or SOVA_ERR_NOT_FOUND. */
int link_local_addr(const struct link *l, struct wire_addr *out);
/* Change the frame rate limit (0: none), e.g. lift it for a supernode. */
void link_set_max_frames(struct link *l, unsigned per_s);
/* Hold reading (hold true) or let it go on: while held no frame is read or
 * delivered, so TCP slows the sender down (a download limit). Safe to call
 * from a hook of l; delivery resumes from the loop, never inside the call. */
void link_hold_reading(struct link *l, bool hold);
bool link_reading_held(const struct link *l);
/* We opened the TCP (or relayed) connection: the TLS client side. */
bool link_is_dialer(const struct link *l);
uint16_t link_version(const struct link *l);
/* Address the TCP connection came from / went to. */
const struct wire_addr *link_remote_addr(const struct link *l);
/* "abcdefgh" (short node ID) once known, else the remote address. */
const char *link_name(const struct link *l);
/* Bytes queued for sending and not yet written to the socket. */
size_t link_output_len(const struct link *l);
/* Monotonic milliseconds when the remote was last heard from. */
uint64_t link_last_heard_ms(const struct link *l);
/* ... when any bytes last arrived, even part of a frame (a large frame on a
 * slow link is progress too). */
uint64_t link_last_read_ms(const struct link *l);
void link_set_arg(struct link *l, void *arg);
/* Hand the link to another owner: its hooks and arg from now on (e.g. an
 * accepted connection that turns out to answer our CONNECT). */
void link_set_hooks(struct link *l, const struct link_hooks *hooks, void *arg);
/* The connect_token of the remote's HELLO, or NULL if it sent none. */
const uint8_t *link_connect_token(const struct link *l);
void *link_arg(const struct link *l);

/* Bytes moved over the link so far (TLS payload, not counting TLS overhead). */
uint64_t link_bytes_in(const struct link *l);
uint64_t link_bytes_out(const struct link *l);

/* Round-trip time to the remote, microseconds: the PINGs the owner sends
 * (link_send of a MSG_PING) are timed until their PONG, one at a time (a
 * PING sent while one is timed is not), and smoothed like TCP's SRTT (7/8
 * old + 1/8 new). It includes the remote's own delay in answering. 0 until
 * the first PONG. */
uint32_t link_rtt_us(const struct link *l);

/* Monotonic clock in milliseconds (shared by daemons for timers). */
uint64_t link_now_ms(void);

#endif
