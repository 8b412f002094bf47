/* link_int.h - private to common/link.c (the protocol: TLS and HELLO, frames,
 * sending, closing) and common/link_open.c (making, wiring and freeing a
 * link, its accessors): the layout of struct link. Not for other files. */
#ifndef SOVA_LINK_INT_H
#define SOVA_LINK_INT_H

#if !defined(SOVA_LINK_INTERNAL)
#error "link_int.h is private to common/link*.c"
#endif

#include "fair.h"
#include "link.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

/* How long a closing link may take to flush its last frames (the ERROR). */
#define LINK_FLUSH_TIMEOUT_MS 2000
#define LINK_NAME_MAX         64

enum link_state {
    LINK_TLS,     /* TLS handshake running */
    LINK_HELLO,   /* our HELLO sent, waiting for theirs */
    LINK_OPEN,    /* messages flow */
    LINK_CLOSING, /* flushing, then the closed hook */
};

struct link {
    struct bufferevent *bev;
    struct event *timer; /* handshake deadline, then flush deadline */
    /* frames per second (link_params.max_frames_per_s): milli-frames */
    unsigned max_frames_per_s;
    uint64_t frame_tokens, frames_refilled_ms, throttle_logged_ms;
    struct event *resume; /* reading paused for the frame rate; made on first need */
    bool held;            /* reading held by the owner (link_hold_reading) */
    struct link_params params;
    struct link_hooks hooks;
    void *arg;
    enum link_state state;
    int close_why;
    bool dialer;
    struct tls_peer_info peer;
    bool peer_known;
    uint8_t remote_role;
    uint16_t version;
    uint32_t remote_caps;
    struct wire_addr remote_addr;
    char name[LINK_NAME_MAX];
    uint64_t last_heard_ms;
    uint64_t last_read_ms; /* any bytes, even part of a frame */
    uint64_t bytes_in, bytes_out;
    /* Round trip of PING -> PONG (link_rtt_us): the one PING being timed. */
    uint64_t ping_sent_us; /* 0: none in flight */
    uint64_t ping_nonce;
    uint32_t srtt_us;        /* smoothed; 0 before the first sample */
    struct wire_buf scratch; /* encode buffer, reused */
    bool has_token, has_remote_token;
    bool was_opened;                      /* TLS and HELLO finished (state may be CLOSING now) */
    bool hs_counted;                      /* its handshake failure is counted already */
    uint8_t token[WIRE_TOKEN_LEN];        /* ours, sent in HELLO (dialer) */
    uint8_t remote_token[WIRE_TOKEN_LEN]; /* theirs, from their HELLO */
    struct link *group_prev, *group_next;
    /* link_budget.c: this link's part of params.budget's pools */
    struct fair_holder hs_slot;    /* an accepted link in its handshake */
    struct fair_holder ip_slot;    /* an accepted link, by address */
    struct fair_holder buf_prefix; /* bytes of incomplete frames, by address prefix */
    struct fair_holder buf_id;     /* the same bytes, by identity (once TLS is up) */
    bool hs_reserved;              /* hs_slot is in the reserved pool */
};

static inline void link_set_timer(struct link *l, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(l->timer, &tv);
}

/* link_budget.c decides, link.c and link_open.c act on it (closing a
 * link is theirs): a link's part in its budget (link.h) at each step of its
 * life: made (accepted: with the slot link_admit() was granted), TLS up (its
 * identity is known), HELLO done, closing (what it held is free), freed. */
void link_budget_joined(struct link *l, bool accepted);
void link_budget_identified(struct link *l);
void link_budget_opened(struct link *l);
void link_budget_closing(struct link *l);
void link_budget_left(struct link *l);
enum link_budget_step {
    LINK_BUDGET_OK,     /* granted */
    LINK_BUDGET_REFUSE, /* refused (counted and logged) */
    LINK_BUDGET_CLOSE,  /* close *victim (its slot or bytes are free already), ask again */
};
/* Whether to log a line about l failing before it opened: at most
 * LINK_HS_LOG_BURST a LINK_BUDGET_LOG_MS per budget (always without one);
 * *held_back: lines not logged since the last one that was. */
bool link_budget_hs_log(struct link *l, uint64_t *held_back);
#define LINK_HS_LOG_BURST 32

/* One step of link_admit() for a connection from a. */
enum link_budget_step link_budget_admit_step(struct link_budget *b, const struct wire_addr *a,
                                             struct link **victim);
/* l holds `held` bytes of input after reading: OK, or CLOSE *victim (l
 * itself or a link of the prefix holding the most) with ERROR(limit
 * reached) and the text *why, then ask again unless it was l. */
enum link_budget_step link_budget_buffered(struct link *l, size_t held, struct link **victim,
                                           const char **why);

/* link_open.c: free now (closes the socket, frees the SSL and the struct). */
void link_free(struct link *l);
/* link.c: the bufferevent and timer callbacks link_open.c wires up. */
void link_on_read(struct bufferevent *bev, void *arg);
void link_on_write(struct bufferevent *bev, void *arg);
void link_on_event(struct bufferevent *bev, short what, void *arg);
void link_on_timer(evutil_socket_t fd, short what, void *arg);

#endif
