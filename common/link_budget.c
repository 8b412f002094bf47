/* link_budget.c - what all the links of one daemon may hold together
 * (link.h, struct link_budget): handshake slots, accepted connections per
 * address, and bytes of incomplete frames, each a pool of common/fair.h,
 * and a link's part in them through its life (link_int.h). */
#define SOVA_LINK_INTERNAL
#include "clock.h"
#include "err.h"
#include "link_int.h"
#include "log.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* After this many bytes were released (inputs of closing links, and about
 * LINK_TRIM_PER_LINK for each link freed), the heap's free pages are given
 * back to the system LINK_TRIM_DELAY_MS later: glibc keeps freed memory in
 * the process, so 1 GB of parked frames would stay in RSS after the
 * attacker left. malloc_trim() walks the heap: at most once a second. */
#define LINK_TRIM_BYTES    (8u << 20)
#define LINK_TRIM_PER_LINK (32u << 10)
#define LINK_TRIM_DELAY_MS 1000

enum admit_kind { ADMIT_NONE, ADMIT_SLOT, ADMIT_RESERVED };

struct link_budget {
    struct link_budget_config cfg;
    struct fair_pool *hs;        /* handshake slots, by prefix */
    struct fair_pool *reserved;  /* reserved handshake slots, by address */
    struct fair_pool *per_ip;    /* accepted links, by address */
    struct fair_pool *by_prefix; /* bytes of incomplete frames, by prefix */
    struct fair_pool *by_id;     /* the same, by identity */
    struct wire_addr trusted[LINK_TRUSTED_MAX];
    size_t n_trusted, next_trusted;
    /* what link_admit() granted, for the link_accept() that follows it */
    enum admit_kind admitted;
    struct wire_addr admitted_from;
    struct link_budget_stats st; /* the counters; the rest is read from the pools */
    uint64_t refusals_logged_ms, refusals_at_log;
    uint64_t closes_logged_ms, closes_at_log;
    uint64_t released; /* bytes given back since the last trim */
    /* handshake failures logged in this window, and held back since the last */
    uint64_t hs_window_ms, hs_logged, hs_held_back;
    struct event *trim;
};

static uint64_t share_of(const struct link_budget_config *cfg, uint64_t share)
{
    uint64_t least = 2 * (uint64_t)cfg->max_frame + LINK_READ_SLACK;
    return share == 0 ? 0 : share < least ? least : share;
}

static void set_limits(struct link_budget *b)
{
    const struct link_budget_config *c = &b->cfg;
    fair_pool_set_limits(b->hs, c->max_handshakes ? c->max_handshakes : 1, 0);
    fair_pool_set_limits(b->reserved, c->reserved_handshakes ? c->reserved_handshakes : 1, 0);
    fair_pool_set_limits(b->per_ip, 0, c->max_conns_per_ip);
    fair_pool_set_limits(b->by_prefix, share_of(c, c->max_buffered),
                         share_of(c, c->max_buffered_prefix));
    fair_pool_set_limits(b->by_id, 0, share_of(c, c->max_buffered_id));
}

static void on_trim(evutil_socket_t fd, short what, void *arg);

struct link_budget *link_budget_new(struct event_base *base, const struct link_budget_config *cfg)
{
    struct link_budget *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->cfg = *cfg;
    b->hs = fair_pool_new(1, 0, FAIR_VICTIM_OLDEST);
    b->reserved = fair_pool_new(1, 0, FAIR_VICTIM_OLDEST);
    b->per_ip = fair_pool_new(0, 0, FAIR_VICTIM_OLDEST);
    b->by_prefix = fair_pool_new(0, 0, FAIR_VICTIM_LARGEST);
    b->by_id = fair_pool_new(0, 0, FAIR_VICTIM_LARGEST);
    b->trim = base ? evtimer_new(base, on_trim, b) : NULL;
    if (!b->hs || !b->reserved || !b->per_ip || !b->by_prefix || !b->by_id || (base && !b->trim)) {
        link_budget_free(b);
        return NULL;
    }
    set_limits(b);
    return b;
}

void link_budget_configure(struct link_budget *b, const struct link_budget_config *cfg)
{
    b->cfg = *cfg;
    set_limits(b);
}

void link_budget_free(struct link_budget *b)
{
    if (b == NULL)
        return;
    fair_pool_free(b->hs);
    fair_pool_free(b->reserved);
    fair_pool_free(b->per_ip);
    fair_pool_free(b->by_prefix);
    fair_pool_free(b->by_id);
    if (b->trim)
        event_free(b->trim);
    free(b);
}

void link_budget_stats(const struct link_budget *b, struct link_budget_stats *out)
{
    *out = b->st;
    out->handshaking = fair_holders(b->hs) + fair_holders(b->reserved);
    out->handshaking_reserved = fair_holders(b->reserved);
    out->addresses = fair_groups(b->per_ip);
    out->buffered = fair_used(b->by_prefix);
    out->buffered_top = fair_top(b->by_prefix);
    out->buffered_prefixes = fair_groups(b->by_prefix);
    out->trusted = b->n_trusted;
}

/* ---- trusted addresses ------------------------------------------------------------ */

static bool is_trusted(const struct link_budget *b, const struct wire_addr *a)
{
    for (size_t i = 0; i < b->n_trusted; i++)
        if (wire_addr_same_ip(&b->trusted[i], a))
            return true;
    return false;
}

void link_budget_trust(struct link_budget *b, const struct wire_addr *a)
{
    if (a->family == 0 || is_trusted(b, a))
        return;
    b->trusted[b->next_trusted] = *a;
    b->trusted[b->next_trusted].port = 0;
    b->next_trusted = (b->next_trusted + 1) % LINK_TRUSTED_MAX;
    if (b->n_trusted < LINK_TRUSTED_MAX)
        b->n_trusted++;
}

/* ---- handshakes --------------------------------------------------------------------- */

/* Connections turned away or handshakes displaced: one line per
 * LINK_BUDGET_LOG_MS with the totals. */
static void log_refusals(struct link_budget *b)
{
    const struct link_budget_stats *st = &b->st;
    uint64_t now = sova_mono_ms(),
             total = st->refused_handshakes + st->refused_ip + st->displaced_handshakes;
    if (b->refusals_logged_ms != 0 && now - b->refusals_logged_ms < LINK_BUDGET_LOG_MS)
        return;
    log_warn("net",
             "%" PRIu64 " connections refused or handshakes displaced since the last report; in "
             "all %" PRIu64 " over max-handshakes (%u) with %zu held now, %" PRIu64
             " over max-conns-per-ip (%u), %" PRIu64
             " handshakes displaced by a newcomer from another network",
             total - b->refusals_at_log, st->refused_handshakes, b->cfg.max_handshakes,
             fair_holders(b->hs), st->refused_ip, b->cfg.max_conns_per_ip,
             st->displaced_handshakes);
    b->refusals_logged_ms = now;
    b->refusals_at_log = total;
}

static void leave_handshake(struct link *l)
{
    struct link_budget *b = l->params.budget;
    fair_leave(l->hs_reserved ? b->reserved : b->hs, &l->hs_slot);
    l->hs_reserved = false;
}

/* The oldest handshake of the prefix holding the most gives way: counted,
 * its slot freed now; link_admit() closes it. */
static struct link *displace_handshake(struct link_budget *b, struct fair_holder *victim)
{
    struct link *l = victim->owner;
    b->st.displaced_handshakes++;
    leave_handshake(l);
    log_refusals(b);
    return l;
}

static enum link_budget_step grant(struct link_budget *b, enum admit_kind kind,
                                   const struct wire_addr *a)
{
    b->admitted = kind;
    b->admitted_from = *a;
    return LINK_BUDGET_OK;
}

enum link_budget_step link_budget_admit_step(struct link_budget *b, const struct wire_addr *a,
                                             struct link **victim)
{
    uint8_t key[FAIR_KEY_MAX], addr_key[FAIR_KEY_MAX];
    size_t n = fair_key_prefix(a, key), n_addr = fair_key_addr(a, addr_key);
    struct fair_holder *v;
    b->admitted = ADMIT_NONE;
    *victim = NULL;
    if (fair_check_key(b->per_ip, addr_key, n_addr, 1, &v) != FAIR_OK) {
        b->st.refused_ip++;
        log_refusals(b);
        return LINK_BUDGET_REFUSE;
    }
    /* A free slot; else a supernode's own reserved one; else make room
     * fairly; else no. */
    bool trusted = b->cfg.reserved_handshakes > 0 && is_trusted(b, a);
    enum fair_verdict slot = fair_check_key(b->hs, key, n, 1, &v);
    if (slot == FAIR_OK)
        return grant(b, ADMIT_SLOT, a);
    struct fair_holder *rv = NULL;
    enum fair_verdict reserved =
        trusted ? fair_check_key(b->reserved, addr_key, n_addr, 1, &rv) : FAIR_FULL;
    if (reserved == FAIR_OK)
        return grant(b, ADMIT_RESERVED, a);
    if (slot == FAIR_DISPLACE || reserved == FAIR_DISPLACE) {
        *victim = displace_handshake(b, slot == FAIR_DISPLACE ? v : rv);
        return LINK_BUDGET_CLOSE;
    }
    b->st.refused_handshakes++;
    log_refusals(b);
    return LINK_BUDGET_REFUSE;
}

bool link_budget_hs_log(struct link *l, uint64_t *held_back)
{
    struct link_budget *b = l->params.budget;
    *held_back = 0;
    if (b == NULL)
        return true;
    uint64_t now = sova_mono_ms();
    if (b->hs_window_ms == 0 || now - b->hs_window_ms >= LINK_BUDGET_LOG_MS) {
        b->hs_window_ms = now;
        b->hs_logged = 0;
    }
    if (b->hs_logged >= LINK_HS_LOG_BURST) {
        b->hs_held_back++;
        return false;
    }
    b->hs_logged++;
    *held_back = b->hs_held_back;
    b->hs_held_back = 0;
    return true;
}

/* ---- a link's part ------------------------------------------------------------------ */

void link_budget_joined(struct link *l, bool accepted)
{
    struct link_budget *b = l->params.budget;
    if (b == NULL)
        return;
    uint8_t key[FAIR_KEY_MAX];
    bool has_addr = l->remote_addr.family != 0;
    /* A link over a stream (a relay circuit's inner TLS) has no address of
     * its own: such links share one group. */
    size_t n = has_addr ? fair_key_prefix(&l->remote_addr, key) : (key[0] = 0, 1);
    (void)fair_join(b->by_prefix, &l->buf_prefix, key, n, 0, l); /* NOMEM: not counted */
    enum admit_kind kind = b->admitted;
    bool granted = kind != ADMIT_NONE && wire_addr_equal(&b->admitted_from, &l->remote_addr);
    b->admitted = ADMIT_NONE;
    if (!accepted || !has_addr)
        return;
    n = fair_key_addr(&l->remote_addr, key);
    (void)fair_join(b->per_ip, &l->ip_slot, key, n, 1, l);
    if (granted && kind == ADMIT_RESERVED) {
        l->hs_reserved = fair_join(b->reserved, &l->hs_slot, key, n, 1, l) == 0;
        return;
    }
    n = fair_key_prefix(&l->remote_addr, key);
    (void)fair_join(b->hs, &l->hs_slot, key, n, 1, l);
}

void link_budget_identified(struct link *l)
{
    struct link_budget *b = l->params.budget;
    if (b == NULL || l->buf_prefix.group == NULL || !l->peer_known)
        return;
    uint8_t key[FAIR_KEY_MAX];
    key[0] = 'I';
    memcpy(key + 1, l->peer.id, WIRE_ID_LEN);
    (void)fair_join(b->by_id, &l->buf_id, key, 1 + WIRE_ID_LEN, l->buf_prefix.amount, l);
}

static void leave_buffers(struct link *l)
{
    struct link_budget *b = l->params.budget;
    fair_leave(b->by_prefix, &l->buf_prefix);
    fair_leave(b->by_id, &l->buf_id);
}

void link_budget_opened(struct link *l)
{
    if (l->params.budget == NULL)
        return;
    leave_handshake(l);
    /* The federation's own links (their certificate checked in HELLO) are
     * not held to the shares of strangers. */
    if (l->remote_role == MSG_ROLE_SUPERNODE)
        leave_buffers(l);
}

/* Give back what was released, and trim the heap soon after a lot was. */
static void released(struct link_budget *b, uint64_t bytes)
{
    b->released += bytes;
    if (b->released >= LINK_TRIM_BYTES && b->trim != NULL && !evtimer_pending(b->trim, NULL)) {
        struct timeval tv = {.tv_sec = LINK_TRIM_DELAY_MS / 1000,
                             .tv_usec = (LINK_TRIM_DELAY_MS % 1000) * 1000};
        evtimer_add(b->trim, &tv);
    }
}

static void on_trim(evutil_socket_t fd, short what, void *arg)
{
    struct link_budget *b = arg;
    (void)fd, (void)what;
    uint64_t bytes = b->released;
    b->released = 0;
    b->st.trims++;
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
    log_debug("net", "about %" PRIu64 " KiB released by links: free heap given back", bytes >> 10);
}

void link_budget_closing(struct link *l)
{
    struct link_budget *b = l->params.budget;
    if (b == NULL)
        return;
    leave_handshake(l);
    uint64_t held = l->buf_prefix.amount;
    leave_buffers(l);
    released(b, held);
}

void link_budget_left(struct link *l)
{
    struct link_budget *b = l->params.budget;
    if (b == NULL)
        return;
    link_budget_closing(l);
    fair_leave(b->per_ip, &l->ip_slot);
    released(b, LINK_TRIM_PER_LINK);
}

/* ---- bytes of incomplete frames ------------------------------------------------------ */

static void log_closes(struct link_budget *b, const struct link *l, const char *why)
{
    const struct link_budget_stats *st = &b->st;
    uint64_t now = sova_mono_ms(), total = st->closed_over_share + st->displaced_buffered;
    if (b->closes_logged_ms != 0 && now - b->closes_logged_ms < LINK_BUDGET_LOG_MS)
        return;
    log_warn("net",
             "%s: closed, %s; %" PRIu64 " links closed for incomplete frames since the last "
             "report (in all %" PRIu64 " over a share, %" PRIu64 " displaced); %" PRIu64
             " KiB held, %" PRIu64 " KiB by the prefix holding the most",
             l->name, why, total - b->closes_at_log, st->closed_over_share, st->displaced_buffered,
             fair_used(b->by_prefix) >> 10, fair_top(b->by_prefix) >> 10);
    b->closes_logged_ms = now;
    b->closes_at_log = total;
}

static enum link_budget_step close_for_bytes(struct link_budget *b, struct link *l, bool displaced,
                                             const char *text, struct link **victim,
                                             const char **why)
{
    if (displaced)
        b->st.displaced_buffered++;
    else
        b->st.closed_over_share++;
    log_closes(b, l, text);
    leave_buffers(l); /* its input is freed by the caller */
    *victim = l;
    *why = text;
    return LINK_BUDGET_CLOSE;
}

#define DISPLACED_TEXT                                                                             \
    "incomplete frames: the budget is short and your network holds the most "                      \
    "(max-buffered-bytes)"

enum link_budget_step link_budget_buffered(struct link *l, size_t held, struct link **victim,
                                           const char **why)
{
    struct link_budget *b = l->params.budget;
    *victim = NULL;
    *why = NULL;
    if (b == NULL || l->buf_prefix.group == NULL)
        return LINK_BUDGET_OK;
    uint64_t have = l->buf_prefix.amount;
    if (held <= have) {
        fair_set(b->by_prefix, &l->buf_prefix, held);
        fair_set(b->by_id, &l->buf_id, held);
        return LINK_BUDGET_OK;
    }
    uint64_t more = held - have;
    struct fair_holder *v;
    if (fair_check(b->by_id, &l->buf_id, more, &v) == FAIR_OVER_SHARE)
        return close_for_bytes(b, l, false,
                               "incomplete frames of your identity over its share "
                               "(max-buffered-bytes-per-id)",
                               victim, why);
    switch (fair_check(b->by_prefix, &l->buf_prefix, more, &v)) {
    case FAIR_OK:
        fair_set(b->by_prefix, &l->buf_prefix, held);
        fair_set(b->by_id, &l->buf_id, held);
        return LINK_BUDGET_OK;
    case FAIR_OVER_SHARE:
        return close_for_bytes(b, l, false,
                               "incomplete frames from your network over its share "
                               "(max-buffered-bytes-per-prefix)",
                               victim, why);
    case FAIR_DISPLACE:
        /* The link holding the most in the prefix holding the most: l itself,
         * or another one (not reading now: only one link reads at a time). */
        return close_for_bytes(b, v->owner, true, DISPLACED_TEXT, victim, why);
    case FAIR_FULL:
    default:
        return close_for_bytes(b, l, true, DISPLACED_TEXT, victim, why);
    }
}
